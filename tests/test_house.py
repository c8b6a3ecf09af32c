"""The shape of the house: no import cycle among the package's modules, no relative import
hidden inside a function to dodge one, and no module far over 700 lines."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "pnd_theory"
#: a module may run a little over 700 lines; far over means it holds more than one idea
MAX_LINES = 750


def _module_name(path):
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module, level, target, is_package):
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports(name, path, inside_functions=False):
    """Package modules that ``name`` imports (at module level, or only inside functions)."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    found = set()

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            func = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom) and func == inside_functions:
                if child.level:
                    target = _resolve(name, child.level, child.module, is_package)
                elif child.module and child.module.startswith("pnd_theory"):
                    target = child.module
                else:
                    continue
                for alias in child.names:  # `from . import nn` names a submodule
                    sub = f"{target}.{alias.name}"
                    found.add(sub if sub in MODULES else target)
            elif isinstance(child, ast.Import) and func == inside_functions:
                for alias in child.names:
                    if alias.name.startswith("pnd_theory"):
                        found.add(alias.name)
            visit(child, func)

    visit(tree, False)
    return {m for m in found if m in MODULES and m != name}


def _graph():
    graph = {}
    for name, path in MODULES.items():
        edges = _imports(name, path)
        # a package's __init__ importing its own submodules is how a package re-exports
        graph[name] = {m for m in edges if not (path.name == "__init__.py" and m.startswith(name + "."))}
    return graph


def test_the_reader_finds_imports():
    graph = _graph()
    assert "pnd_theory.laws" in graph["pnd_theory.strategies"]
    assert "pnd_theory.nn" in graph["pnd_theory.layers"]


def test_no_import_cycle():
    graph = _graph()
    state, stack, cycles = {}, [], []

    def dfs(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            dfs(node)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_package_import_inside_a_function():
    hidden = {name: sorted(_imports(name, path, inside_functions=True)) for name, path in MODULES.items()}
    hidden = {k: v for k, v in hidden.items() if v}
    assert not hidden, f"imports of package modules inside functions: {hidden}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    n = len(MODULES[name].read_text().splitlines())
    assert n <= MAX_LINES, f"{name} has {n} lines: split it by idea"
