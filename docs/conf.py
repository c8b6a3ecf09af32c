"""Sphinx configuration of the pnd-theory documentation.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (the test suite does, in
``tests/test_docs.py``).  The notebooks are rendered with the outputs they were committed with
(never executed here), the figures come from ``paper_figures/``, and the reference has one page
per public name (``pnd_theory``, ``pnd_theory.nn``, ``pnd_theory.deep``), from its docstring.

A build writes only under its output folder: ``docs/notebooks`` is a link to the repository's
``notebooks/``, the gallery shows the images of ``paper_figures/`` where they are, the page
``gallery.md`` is filled in memory when Sphinx reads it (``source-read``), and the reference's
pages per name are sources in ``docs/reference/``, written by ``docs/reference_pages.py``
(autosummary's own generation, which writes into the source tree, is off).  A build warns
(fails under ``-W``) while a public name has no page, or a page is stale or left over.
"""

import ast
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import pnd_theory  # noqa: E402  (after the path, so that the checkout is documented)
import reference_pages  # noqa: E402
from paper_figures import FIGURES  # noqa: E402
from sphinx.util import logging  # noqa: E402

project = "pnd-theory"
author = "the pnd-theory authors"
release = version = pnd_theory.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.mathjax", "numpydoc", "myst_nb"]
autosummary_generate = False  # the pages per name are sources (reference_pages.py): a build writes none
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


GENERATED_PAGES = {"gallery": _gallery_page}
MARK = "<!-- filled in when the site is built -->"


def _fill(app, docname, source):
    """Put the generated text of ``gallery`` in place of its mark, in memory only."""
    if docname in GENERATED_PAGES:
        source[0] = source[0].replace(MARK, GENERATED_PAGES[docname]())


def _headings_as_rubrics(app, what, name, obj, options, lines):
    """A module docstring's section titles become rubrics: inside a directive they cannot be
    sections of the page (and "References" in two docstrings would be the same section twice)."""
    if what != "module":
        return
    for i in range(len(lines) - 1):
        title, underline = lines[i].strip(), lines[i + 1].strip()
        if title and len(underline) >= 3 and set(underline) <= set("-=~^") and len(underline) == len(title):
            lines[i], lines[i + 1] = f".. rubric:: {title}", ""


def _check_reference_pages(app):
    """One warning per public name without its page, per stale page and per page left over."""
    for problem in reference_pages.problems():
        logging.getLogger(__name__).warning(f"{problem} (run python docs/reference_pages.py)")


def setup(app):
    app.connect("builder-inited", _check_reference_pages)
    app.connect("source-read", _fill)
    app.connect("autodoc-process-docstring", _headings_as_rubrics)
    return {"parallel_read_safe": True}
