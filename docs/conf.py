"""Sphinx configuration of the pnd-theory documentation.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (the test suite does, in
``tests/test_docs.py``).  The notebooks are rendered with the outputs they were committed with
(never executed here), the figures come from ``paper_figures/``, and the API reference is
generated from the docstrings of every public module of the package.
"""

import ast
import pkgutil
import shutil
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
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "ignore-module-all": True}
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()
html_theme = "alabaster"
html_title = f"pnd-theory {release}"
# a numpydoc References section lists papers the text need not cite inline
suppress_warnings = ["mystnb.unknown_mime_type", "ref.citation"]

GENERATED = HERE / "_generated"


def _public_modules():
    """Every module of the package whose dotted name has no part starting with ``_``."""
    names = ["pnd_theory"]
    for info in pkgutil.walk_packages(pnd_theory.__path__, "pnd_theory."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def _write_generated():
    """The API pages, the notebooks and the figures, copied or written under ``_generated/``."""
    shutil.rmtree(GENERATED, ignore_errors=True)
    (GENERATED / "notebooks").mkdir(parents=True)
    (GENERATED / "figures").mkdir()
    lines = ["# API reference", "", "Every public module, from its docstrings.", "", "```{toctree}", ":maxdepth: 1", ""]
    for name in _public_modules():
        page = GENERATED / f"{name}.rst"
        title = f"``{name}``"
        page.write_text(f"{title}\n{'=' * len(title)}\n\n.. automodule:: {name}\n")
        lines.append(name)
    lines.append("```")
    (GENERATED / "api.md").write_text("\n".join(lines) + "\n")
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        shutil.copy2(notebook, GENERATED / "notebooks" / notebook.name)
    gallery = ["# Figures", "", "The figures of `paper_figures/`, each written with the data behind it (JSON) by",
               "`pnd-theory figures` (`--quick` for small sizes).  The numbers quoted in the README are",
               "read from those JSON files.", ""]
    for name, module in FIGURES.items():
        path = ROOT / (module.replace(".", "/") + ".py")
        doc = ast.get_docstring(ast.parse(path.read_text())) or name
        summary = doc.split("\n\n")[0].replace("\n", " ")
        gallery += [f"## {summary}", "", f"`{module}` writes `{name}.png`, `{name}.pdf` and `{name}.json`.", ""]
        image = ROOT / "paper_figures" / f"{name}.png"
        if image.is_file():
            shutil.copy2(image, GENERATED / "figures" / image.name)
            gallery += [f"```{{image}} figures/{name}.png", f":alt: {name}", "```", ""]
        else:
            gallery += ["(Not generated in this checkout: run `pnd-theory figures --only " + name + "`.)", ""]
    (GENERATED / "gallery.md").write_text("\n".join(gallery))


_write_generated()
