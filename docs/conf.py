"""Sphinx configuration of the pnd-theory documentation.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (the test suite does, in
``tests/test_docs.py``).  The notebooks are rendered with the outputs they were committed with
(never executed here), the figures come from ``paper_figures/``, and the module pages are
generated from the docstrings of every public module of the package.

A build writes only under its output folder: ``docs/notebooks`` is a link to the repository's
``notebooks/``, the gallery shows the images of ``paper_figures/`` where they are, and the pages
``api.md`` and ``gallery.md`` are filled in memory when Sphinx reads them (``source-read``).
"""

import ast
import json
import pkgutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import pnd_theory  # noqa: E402  (after the path, so that the checkout is documented)
from paper_figures import FIGURES  # noqa: E402

project = "pnd-theory"
author = "the pnd-theory authors"
release = version = pnd_theory.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.mathjax", "numpydoc", "myst_nb"]
nb_execution_mode = "off"  # notebooks are shown with their committed outputs
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "ignore-module-all": True}
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()
html_theme = "alabaster"
html_title = f"pnd-theory {release}"
# a numpydoc References section lists papers the text need not cite inline
suppress_warnings = ["mystnb.unknown_mime_type", "ref.citation"]


def _public_modules():
    """Every module of the package whose dotted name has no part starting with ``_``."""
    names = ["pnd_theory"]
    for info in pkgutil.walk_packages(pnd_theory.__path__, "pnd_theory."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def _api_page():
    """The modules page: every public module, from its docstrings."""
    lines = []
    for name in _public_modules():
        lines += [f"## `{name}`", "", "```{eval-rst}", f".. automodule:: {name}", "```", ""]
    return "\n".join(lines)


def _gallery_page():
    """The figures of the registry, each with its summary, its writer and its image."""
    lines = []
    for name, module in FIGURES.items():
        path = ROOT / (module.replace(".", "/") + ".py")
        doc = ast.get_docstring(ast.parse(path.read_text())) or name
        summary = doc.split("\n\n")[0].replace("\n", " ")
        lines += [f"## {summary}", "", f"`pnd-theory figures --only {name}` (module `{module}`) writes "
                  f"`{name}.png`, `{name}.pdf` and `{name}.json`.", ""]
        if (ROOT / "paper_figures" / f"{name}.png").is_file():
            lines += [f"```{{image}} ../paper_figures/{name}.png", f":alt: {name}", "```", ""]
        else:
            lines += ["(Not generated in this checkout.)", ""]
        lines += _figure_numbers(name)
    return "\n".join(lines)


def _scalars(data, prefix=""):
    """The numbers of a JSON object, by dotted key (lists left out)."""
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _scalars(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{prefix}{key}", value


def _figure_numbers(name, most=40):
    """A table of the numbers of the figure's JSON file, read when the site is built."""
    path = ROOT / "paper_figures" / f"{name}.json"
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    numbers = list(_scalars(data))
    lines = [f"Its numbers, from `{name}.json`" + (" (a quick run: small sizes)" if data.get("quick") else "") + ":", ""]
    lines += ["| quantity | value |", "|---|---|"] + [f"| `{key}` | {value:.6g} |" for key, value in numbers[:most]]
    if len(numbers) > most:
        lines += ["", f"and {len(numbers) - most} more numbers in the file, with its lists."]
    return lines + [""]


GENERATED_PAGES = {"api": _api_page, "gallery": _gallery_page}
MARK = "<!-- filled in when the site is built -->"


def _fill(app, docname, source):
    """Put the generated text of ``api`` and ``gallery`` in place of their mark, in memory only."""
    if docname in GENERATED_PAGES:
        source[0] = source[0].replace(MARK, GENERATED_PAGES[docname]())


def _headings_as_rubrics(app, what, name, obj, options, lines):
    """A module docstring's section titles become rubrics: the modules share one page, where
    titles such as "References" in several docstrings would be the same section twice."""
    if what != "module":
        return
    for i in range(len(lines) - 1):
        title, underline = lines[i].strip(), lines[i + 1].strip()
        if title and len(underline) >= 3 and set(underline) <= set("-=~^") and len(underline) == len(title):
            lines[i], lines[i + 1] = f".. rubric:: {title}", ""


def setup(app):
    app.connect("source-read", _fill)
    app.connect("autodoc-process-docstring", _headings_as_rubrics)
    return {"parallel_read_safe": True}
