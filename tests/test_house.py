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
    assert "pnd_theory.laws.masks" in graph["pnd_theory.laws.strategies"]
    assert "pnd_theory.nn.layers" in graph["pnd_theory.nn.table"]
    assert "pnd_theory" in graph["pnd_theory.apps.cli"]


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


def _wing(module):
    """The wing of a module: its first package below the root (the root's own modules: None)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else None


#: what each wing may import besides itself (the root's internal helpers are named)
ALLOWED = {
    # the ground floor: laws stand on the validation layer only
    "laws": {"pnd_theory._validation"},
    # the kernels import no other part of the package
    "kernels": set(),
    # the applications use the public face (the root's names, nn, deep) and the presentation helpers
    "apps": {"pnd_theory", "pnd_theory._validation", "pnd_theory._display"},
}


@pytest.mark.parametrize("wing", sorted(ALLOWED))
def test_wings_import_only_what_they_may(wing):
    graph = _graph()
    bad = {}
    for module, targets in graph.items():
        if _wing(module) != wing:
            continue
        for target in targets:
            if _wing(target) == wing or target in ALLOWED[wing]:
                continue
            if wing == "apps" and _wing(target) in ("nn", "deep") and target.count(".") == 1:
                continue  # the public subpackages pnd_theory.nn and pnd_theory.deep
            bad.setdefault(module, []).append(target)
    assert not bad, f"{wing} imports outside what it may: {bad}"


def test_no_wing_imports_the_applications():
    graph = _graph()
    bad = {m: sorted(t for t in ts if _wing(t) == "apps") for m, ts in graph.items()
           if _wing(m) != "apps" and m != "pnd_theory.__main__"}  # python -m pnd_theory is the command line
    assert not any(bad.values()), bad


def test_the_root_holds_at_most_a_dozen_modules():
    root = sorted(p.name for p in PACKAGE.iterdir() if p.suffix == ".py")
    assert len(root) <= 12, root


def test_importing_the_package_loads_no_heavy_dependency():
    """``import pnd_theory`` loads names on first use: none of the heavy libraries at import."""
    import subprocess
    import sys
    code = ("import sys, pnd_theory; print(sorted(m for m in ('numba', 'triton', 'sympy', 'pandas', 'dask', "
            "'matplotlib', 'scipy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


def test_no_module_is_shadowed_by_a_name_of_its_package():
    """``import pnd_theory.X as m`` gives the module X: no public name rebinds a submodule's name."""
    import pnd_theory
    submodules = {p.stem if p.suffix else p.name for p in PACKAGE.iterdir()
                  if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert not (submodules & set(pnd_theory._PUBLIC)), submodules & set(pnd_theory._PUBLIC)


def test_no_package_import_inside_a_function():
    hidden = {name: sorted(_imports(name, path, inside_functions=True)) for name, path in MODULES.items()}
    hidden = {k: v for k, v in hidden.items() if v}
    assert not hidden, f"imports of package modules inside functions: {hidden}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    n = len(MODULES[name].read_text().splitlines())
    assert n <= MAX_LINES, f"{name} has {n} lines: split it by idea"


def test_the_layout_shows_every_wing_and_root_module():
    """The "Layout" section of the design page (linked from the README) shows every wing and root module."""
    page = (PACKAGE.parent / "docs" / "design.md").read_text()
    layout = page[page.index("## Layout"):]
    layout = layout[: layout.find("\n## ") if "\n## " in layout else None]
    names = [p.name + "/" for p in PACKAGE.iterdir() if (p / "__init__.py").exists()]
    names += [p.name for p in PACKAGE.iterdir() if p.suffix == ".py" and p.name != "__main__.py"]
    missing = [n for n in names if f"pnd_theory/{n}" not in layout]
    assert not missing, f"the layout section of docs/design.md does not show {missing}"


def _code_lines(path, node):
    """Lines of code of a function's body: no docstring, blank line or comment."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    src = path.read_text().splitlines()
    return {n for stmt in body for n in range(stmt.lineno, stmt.end_lineno + 1)
            if src[n - 1].strip() and not src[n - 1].strip().startswith("#")}


def test_no_function_over_150_lines_of_code():
    long = {}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = len(_code_lines(path, node))
                if n > 150:
                    long[f"{name}.{node.name}"] = n
    assert not long, f"functions over 150 lines of code: {long}"


def test_figures_and_benchmarks_use_names_the_public_face_has():
    """Every ``pt.NAME`` that a figure or benchmark script reads exists on the package (a
    figure that ran only in a full run would otherwise fail there first)."""
    import pnd_theory
    root = PACKAGE.parent
    missing = {}
    for path in sorted([*root.glob("paper_figures/*.py"), *root.glob("benchmarks/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "pt":
                if not hasattr(pnd_theory, node.attr):
                    missing.setdefault(path.name, set()).add(node.attr)
    assert not missing, f"names the package does not have: {missing}"
