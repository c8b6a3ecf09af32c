"""Every notebook runs top to bottom on a fresh kernel (small sizes: PND_THEORY_QUICK=1)."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, monkeypatch, tmp_path):
    monkeypatch.setenv("PND_THEORY_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


def test_a_derivation_shows_as_latex_in_a_notebook(tmp_path):
    """Run by a kernel, a derivation's output offers LaTeX and no HTML, so JupyterLab and the
    classic notebook (which prefer HTML) show the formula; a table of numbers stays HTML."""
    cells = ["import pnd_theory as pt\npt.derive(pt.PerNodeDrop(0.3, layer='both'), n_in=2, width=2, n_out=2)",
             "pt.derive(pt.Dropout(0.3), n_in=2, width=2, n_out=1).compact()",
             "m = pt.global_minimizer(pt.Dropout(0.3), *pt.random_problem()[2:], 4)\nm"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = [next(o for o in c.outputs if o.output_type == "execute_result").data for c in nb.cells]
    for data in shown[:2]:
        assert "text/latex" in data and "text/html" not in data
        assert data["text/latex"].startswith("$") and "R(U, V) =" in data["text/latex"]
    assert "text/html" in shown[2] and "<table>" in shown[2]["text/html"]


def test_notebook_07_shows_its_derivation_as_latex():
    nb = nbformat.read(Path(__file__).parents[1] / "notebooks" / "07_explorer.ipynb", as_version=4)
    heading = next(i for i, c in enumerate(nb.cells) if "A derivation, as LaTeX" in c.source)
    cell = next(c for c in nb.cells[heading:] if c.cell_type == "code")
    data = next(o for o in cell.outputs if o.output_type == "execute_result").data
    assert "text/latex" in data and "text/html" not in data
