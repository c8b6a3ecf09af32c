"""The documentation site builds without a single warning, and the README points to it."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from paper_figures import FIGURES

ROOT = Path(__file__).resolve().parent.parent


def _reference_pages():
    """``docs/reference_pages.py``, the writer of the reference's pages per public name."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("reference_pages", ROOT / "docs" / "reference_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _listed(page):
    """The names in the autosummary tables of a page (one dotted name per indented line)."""
    return re.findall(r"^   (pnd_theory(?:\.\w+)+)$", page, re.M)


def _files_under(*folders):
    """The files under the given folders of the checkout (links not followed, byte-code left out)."""
    found = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*"):
            if "__pycache__" not in path.parts and path.is_file() and not path.is_symlink():
                found.add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.slow
def test_sphinx_builds_warning_free(tmp_path):
    source_tree = _files_under("docs", "notebooks", "paper_figures")
    run = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                          str(ROOT / "docs"), str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    # the build writes only under its output folder: it adds no file to the source tree
    after = _files_under("docs", "notebooks", "paper_figures")
    assert after == source_tree, sorted(after ^ source_tree)
    assert not (ROOT / "docs" / "_generated").exists()
    for page in ("index.html", "theory.html", "usage.html", "design.html", "results.html", "gallery.html",
                 "reference.html", "notebooks/05_gradient_noise.html"):
        assert (tmp_path / page).is_file(), page
    assert not (tmp_path / "api.html").exists()
    assert 'id="module-pnd_theory.apps.cli"' in (tmp_path / "usage.html").read_text()
    # the reference by public name: one page per name, each with its docstring's math and
    # examples; no internal module and no object under an internal module's name anywhere
    import inspect
    names = _reference_pages().public_names()
    for name in names:
        page = (tmp_path / "reference" / f"{name}.html").read_text()
        body = page[page.index('<div class="body"'):]
        assert f'id="{name}"' in body or f'id="module-{name}"' in body, name
        if "The same object as" in body:  # a second name of an object documented on the first one's page
            continue
        doc = inspect.getdoc(_object(name)) if not isinstance(_object(name), (dict, tuple)) else ""
        if ":math:" in (doc or "") or ".. math::" in (doc or ""):
            assert 'class="math' in body, name
        if re.search(r"^Examples\n--------$", doc or "", re.M):
            assert ">Examples<" in body and "&gt;&gt;&gt;" in body, name
    reference = (tmp_path / "reference.html").read_text()
    assert all(f'href="reference/{name}.html' in reference for name in names)
    public_modules = {"pnd_theory.nn", "pnd_theory.deep", "pnd_theory.apps.cli"}
    for page in tmp_path.rglob("*.html"):
        text = page.read_text()
        modules = set(re.findall(r'id="module-([\w.]+)"', text))
        assert modules <= public_modules, (page.name, modules - public_modules)
        internal = re.findall(r'id="(pnd_theory\.(?:laws|kernels|routes|regularizers|gradient_covariance|studies|'
                              r'_\w+)\.[\w.]+)"', text)
        assert not internal, (page.name, internal[:3])
    # every figure of the registry is in the gallery, every notebook is rendered
    gallery = (tmp_path / "gallery.html").read_text()

    drawn = [name for name in FIGURES if (ROOT / "paper_figures" / f"{name}.png").is_file()]
    assert drawn and all(f'alt="{name}"' in gallery for name in drawn)
    # each figure with its command and the numbers of its JSON file, read when the site is built
    text = re.sub(r"<[^>]+>", "", gallery)
    assert all(f"pnd-theory figures --only {name}" in text for name in FIGURES)
    with_json = [name for name in FIGURES if (ROOT / "paper_figures" / f"{name}.json").is_file()]
    assert gallery.count("<table") == len(with_json)
    objective = json.loads((ROOT / "paper_figures" / "objective.json").read_text())
    assert re.search(r"problem\.n_samples\s+%d\s" % objective["problem"]["n_samples"], text)
    rendered = {p.stem for p in (tmp_path / "notebooks").glob("*.html")}
    assert rendered == {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    # the theory page is typeset: its formulas are math, not code, and the penalty table has
    # three cells in every row (a || inside a code span once split them)
    theory = (tmp_path / "theory.html").read_text()
    assert theory.count('class="math') >= 20 and 'id="equation-penalty"' in theory
    table = theory[theory.index("<table"):theory.index("</table>")]
    rows = table.split("<tr")[2:]  # after the header row
    assert len(rows) == 7 and all(row.count("<td") == 3 and "math" in row.split("<td")[3] for row in rows)
    # every section is typeset: the numbered equations the text refers to exist, every {eq}
    # reference resolves, and no code span holds a formula (its symbols are math only)
    for label in ("batch-covariance", "induced", "minimizer", "k-support", "deep-loss", "ydrop-loss",
                  "site-penalty", "second-order"):
        assert f'id="equation-{label}"' in theory, label
    assert 'href="#equation-induced"' in theory and "$" not in theory.split('<div class="body"')[-1]
    codes = re.findall(r"<code[^>]*>(.*?)</code>", theory, re.S)
    assert not [code for code in codes if re.search(r"Σ|\|\||\^|λ|≥|→|−|_\{", code)]


def test_readme_links_the_theory_page_and_says_how_to_build_the_site():
    readme = (ROOT / "README.md").read_text()
    assert "(docs/theory.md)" in readme
    assert "python -m sphinx -W -b html docs docs/_build/html" in readme


def test_the_readme_is_a_first_screen_that_links_the_rest():
    """Title, pitch, the two commands and a short tour in the first 60 lines; the long sections
    (design, measured figures, benchmarks, layout) live on documentation pages the README links."""
    readme = (ROOT / "README.md").read_text()
    lines = readme.splitlines()
    assert lines[0] == "# pnd-theory" and len(lines) <= 90
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[:2] == ["## Two commands", "## A short tour"]
    tour_end = lines.index(headings[2]) if len(headings) > 2 else len(lines)
    assert tour_end <= 60, f"the short tour ends at line {tour_end}"
    pitch = "\n".join(lines[1:lines.index("## Two commands")]).strip()
    assert 2 <= len(pitch.splitlines()) <= 4
    toctree = (ROOT / "docs" / "index.md").read_text()
    moved = {"## One law, every route": "design", "## Layout": "design", "## What is checked, and how": "design",
             "## Figures": "results", "## Benchmarks": "results", "## Deep linear networks": "usage",
             "## Sweeps: a study on every core, or on a cluster": "usage"}
    for heading, page in moved.items():
        assert heading not in readme and heading in (ROOT / "docs" / f"{page}.md").read_text(), heading
    for page in ("getting_started", "theory", "usage", "design", "results", "reference"):
        assert f"(docs/{page}.md)" in readme and f"\n{page}\n" in toctree, page


def test_getting_started_is_the_readme_first_screen():
    """``docs/getting_started.md`` holds the README's two commands and its short tour, verbatim."""
    readme = (ROOT / "README.md").read_text()
    page = (ROOT / "docs" / "getting_started.md").read_text()
    assert "getting_started" in (ROOT / "docs" / "index.md").read_text()
    commands = re.findall(r"```bash\n(.*?)```", readme.split("## Two commands")[1].split("\n## ")[0], re.S)
    assert len(commands) >= 2 and all(command in page for command in commands[:2])
    tour = readme.split("## A short tour")[1].split("\n## ")[0]
    assert tour.strip() and tour.strip() in page


def _object(name):
    import importlib
    package, attribute = name.rsplit(".", 1)
    return getattr(importlib.import_module(package), attribute)


def test_the_reference_page_has_every_public_name():
    """``docs/reference.md`` lists each name of ``pt.__all__``, ``pt.nn.__all__`` and
    ``pt.deep.__all__`` once (and nothing that is not one), in autosummary tables that link
    one page per name."""
    import pnd_theory as pt
    page = (ROOT / "docs" / "reference.md").read_text()
    listed = _listed(page)
    assert len(listed) == len(set(listed))
    assert set(listed) == set(_reference_pages().public_names())
    assert {f"pnd_theory.{name}" for name in pt.__all__} | {"pnd_theory.nn.YDrop", "pnd_theory.deep.train"} <= set(listed)
    assert {"pnd_theory.InvalidParameterError", "pnd_theory.sweep_plot"} <= set(listed)
    assert ".. automodule::" not in page and ":toctree: reference" in page


def test_every_public_name_has_its_reference_page():
    """The pages of ``docs/reference/`` are those ``docs/reference_pages.py`` writes: one per public
    name, none missing, stale or left over (the build, which writes none, warns the same)."""
    pages = _reference_pages()
    assert pages.problems() == []
    assert {path.stem for path in (ROOT / "docs" / "reference").glob("*.rst")} == set(pages.public_names())
    conf = (ROOT / "docs" / "conf.py").read_text()
    assert "autosummary_generate = False" in conf and "reference_pages.problems()" in conf


def test_a_missing_or_stale_reference_page_is_found(tmp_path):
    pages = _reference_pages()
    for name, text in pages.pages().items():
        (tmp_path / name).write_text(text)
    assert pages.problems(tmp_path) == []
    (tmp_path / "pnd_theory.expected_penalty.rst").unlink()
    (tmp_path / "pnd_theory.derive.rst").write_text("stale")
    (tmp_path / "pnd_theory.gone.rst").write_text("")
    assert pages.problems(tmp_path) == [
        "reference page missing: docs/reference/pnd_theory.expected_penalty.rst",
        "reference page left over (not a public name): docs/reference/pnd_theory.gone.rst",
        "reference page stale: docs/reference/pnd_theory.derive.rst"]
