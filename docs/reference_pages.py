"""The reference's pages, one per public name: ``docs/reference/<dotted name>.rst``.

The public names are those of ``pnd_theory.__all__``, ``pnd_theory.nn.__all__`` and
``pnd_theory.deep.__all__``, and nothing else: internal modules have no page.  Each page
documents its name with autodoc, so it shows the docstring's formula, parameters, returns,
references and examples; ``docs/reference.md`` lists the names in autosummary tables that link
to these pages.

The pages are sources of the site, kept in the repository, so that a build writes nothing
outside its output folder (autosummary's own generation writes into the source tree; it is off
in ``conf.py``).  After adding or removing a public name, run::

    python docs/reference_pages.py

``conf.py`` fails a ``-W`` build, and ``tests/test_docs.py`` fails, while a page is missing,
stale or left over.
"""

import importlib
import inspect
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FOLDER = HERE / "reference"
PACKAGES = ("pnd_theory", "pnd_theory.nn", "pnd_theory.deep")


def public_names():
    """Every public name, dotted in full, in the order of the packages' ``__all__``."""
    names = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names += [f"{package}.{name}" for name in module.__all__]
    return names


def _object(name):
    package, attribute = name.rsplit(".", 1)
    return getattr(importlib.import_module(package), attribute)


def _escape(text):
    return text.replace("_", r"\_")


def page(name, first=None):
    """The reStructuredText of one public name's page; ``first`` is the name under which the same
    object was documented already (one object has one index entry: the other names point to it)."""
    obj = _object(name)
    lines = [_escape(name), "=" * len(_escape(name)), "", f".. currentmodule:: {name.rsplit('.', 1)[0]}", ""]
    if first is not None:  # its own entry (links to the name land here), pointing to the documented one
        kind = "class" if inspect.isclass(obj) else "function" if callable(obj) else "data"
        lines += [f".. py:{kind}:: {name.rsplit('.', 1)[1]}", "",
                  f"   The same object as :py:obj:`{first}`, documented on its page."]
        return "\n".join(lines) + "\n"
    if inspect.ismodule(obj):
        members = [f"   {member}" for member in obj.__all__]
        lines += [f".. automodule:: {name}", "   :no-members:", "", ".. rubric:: Public names", "",
                  ".. autosummary::", "   :nosignatures:", "", *members]
    elif inspect.isclass(obj) and issubclass(obj, BaseException):
        lines += [f".. autoexception:: {name}"]
    elif inspect.isclass(obj):
        lines += [f".. autoclass:: {name}"]
    elif callable(obj):
        lines += [f".. autofunction:: {name}"]
    else:
        lines += [f".. autodata:: {name}", ""] + [f"   {line}".rstrip() for line in _comment_doc(name, obj)]
    return "\n".join(lines).rstrip("\n") + "\n"


def _comment_doc(name, obj):
    """The ``#:`` comment above a constant where the package defines it (a constant has no
    docstring of its own, and autodoc looks for the comment only in the module it is named from)."""
    from sphinx.pycode import ModuleAnalyzer

    attribute = name.rsplit(".", 1)[1]
    for module_name, module in sorted(sys.modules.items()):
        if module_name.startswith("pnd_theory") and getattr(module, attribute, None) is obj:
            try:
                found = ModuleAnalyzer.for_module(module_name).find_attr_docs().get(("", attribute))
            except Exception:  # a module without source
                continue
            if found:
                return [line for line in found if line.strip()]
    return []


def pages():
    """File name -> text, one page per public name."""
    found, seen = {}, {}
    for name in public_names():
        obj = _object(name)
        first = next((other for other, known in seen.items() if known is obj), None)
        found[f"{name}.rst"] = page(name, first)
        if first is None and not isinstance(obj, (str, int, float, tuple, dict)):
            seen[name] = obj
    folded = {name.lower() for name in found}
    assert len(folded) == len(found), "two public names differ only in case: one file would hide the other"
    return found


def problems(folder=FOLDER):
    """What differs between the pages on disk and the public names: one line each."""
    want = pages()
    have = {path.name for path in folder.glob("*.rst")} if folder.is_dir() else set()
    lines = [f"reference page missing: docs/reference/{name}" for name in sorted(set(want) - have)]
    lines += [f"reference page left over (not a public name): docs/reference/{name}"
              for name in sorted(have - set(want))]
    lines += [f"reference page stale: docs/reference/{name}" for name in sorted(set(want) & have)
              if (folder / name).read_text() != want[name]]
    return lines


def main():
    """Write the pages, remove those of names that are no longer public."""
    FOLDER.mkdir(exist_ok=True)
    want = pages()
    for path in FOLDER.glob("*.rst"):
        if path.name not in want:
            path.unlink()
    for name, text in want.items():
        path = FOLDER / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    print(f"{len(want)} reference pages in {FOLDER}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))  # document the checkout
    main()
