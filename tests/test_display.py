"""How results show themselves in Jupyter: LaTeX, short reprs, HTML tables, tidy tables, plots."""

import matplotlib
import numpy as np
import pytest

import pnd_theory as pt
from pnd_theory._display import ResultDisplay, format_value

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402,F401  (the notebook extra; to_dataframe needs it)


@pytest.fixture(scope="module")
def problem():
    return pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=1)


@pytest.fixture(scope="module")
def trained(problem):
    _, _, X, Y = problem
    return pt.train(pt.Dropout(0.3), X, Y, 4, epochs=60, progress=False, device="cpu")


def test_format_value_shows_arrays_by_shape_and_numbers_short():
    assert format_value(np.zeros((3, 4))) == "array(3x4)"
    assert format_value(1 / 3) == "0.333333"
    assert format_value(7) == "7" and format_value(None) == "None" and format_value(np.bool_(True)) == "True"
    assert len(format_value("x" * 500)) == 80


def test_derivation_shows_latex_with_the_value_of_lambda():
    d = pt.derive(pt.PerNodeDrop(0.3, "both"), 2, 2, 2)
    latex = d._repr_latex_()
    assert latex.startswith("$") and latex.endswith("$")
    assert d.compact().latex in latex
    assert r"\lambda = 0.428571" in latex  # 0.3 / 0.7
    assert d.compact()._repr_latex_() == latex
    short = repr(d)
    assert len(short) < 400 and "\n" not in short and "penalty_terms=" in short
    # a formula offers no HTML: notebook front ends prefer HTML to LaTeX when both are there
    from IPython.core.formatters import DisplayFormatter
    assert d._repr_html_() is None and d.compact()._repr_html_() is None
    assert set(DisplayFormatter().format(d)[0]) == {"text/plain", "text/latex"}
    assert set(DisplayFormatter().format(d.compact())[0]) == {"text/plain", "text/latex"}
    # one lambda per rate: per-unit rates give one strength each
    d = pt.derive(pt.NodeDropout([0.2, 0.5]), 2, 2, 1)
    assert d.strengths() == pytest.approx({"lambda_1": 0.25, "lambda_2": 1.0})


def test_minimizer_result_table_and_export(problem):
    _, _, X, Y = problem
    r = pt.global_minimizer(pt.DropBlock(0.5, 2), X, Y, 4)
    short = repr(r)
    assert len(short) < 400 and f"objective={r.objective:.6g}" in short and "product=array(2x3)" in short
    html = r._repr_html_()
    for name in ("strategy", "objective", "data_fit", "penalty", "method", "singular_values"):
        assert f">{name}<" in html
    frame = r.to_dataframe()
    assert len(frame) == 1 and frame["objective"][0] == r.objective and frame["method"][0] == r.method
    _, ax = plt.subplots()
    assert r.plot() is None and r.plot(ax=ax) is None  # a notebook shows the picture, no repr of axes
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), r.singular_values)


def test_training_result_is_short_and_history_is_a_tidy_table(trained, problem):
    short = repr(trained)
    assert len(short) < 500 and "\n" not in short
    assert f"TrainingHistory({len(trained.history)} records)" in short
    frame = trained.history.to_dataframe()
    assert len(frame) == len(trained.history)
    np.testing.assert_array_equal(frame["objective"].to_numpy(), trained.history.objective)
    np.testing.assert_array_equal(frame["step"].to_numpy(), trained.history.step)
    assert trained.to_dataframe()["objective"][0] == trained.objective


def test_training_plot_draws_history_against_the_optimum(trained, problem):
    _, _, X, Y = problem
    optimum = pt.global_minimizer(pt.Dropout(0.3), X, Y, 4)
    _, (left, right) = plt.subplots(1, 2)
    assert trained.plot(optimum, ax=(left, right)) is None
    drawn = {line.get_label(): line for line in left.lines}
    np.testing.assert_array_equal(drawn["L + R of the iterates"].get_ydata(), trained.history.objective)
    assert drawn[f"global minimum: {optimum.objective:.6g}"].get_ydata()[0] == optimum.objective
    np.testing.assert_array_equal(right.lines[1].get_ydata(), optimum.singular_values)


def test_a_result_without_a_plot_says_so():
    class Table(ResultDisplay):
        def __init__(self):
            self.value = 1.5

    with pytest.raises(TypeError, match="has no plot"):
        Table().plot()
    assert repr(Table()) == "Table(value=1.5)"


def test_gradient_noise_results_are_tables_and_pictures(problem):
    U, V, X, Y = problem
    s = pt.PerNodeDrop(0.3, "output")
    sweep = pt.gradient_noise_vs_batch_size(s, U, V, X, Y, [1, 2, 4])
    frame = sweep.to_dataframe()  # one row per batch size
    np.testing.assert_array_equal(frame["batch_sizes"].to_numpy(), [1, 2, 4])
    np.testing.assert_array_equal(frame["per_batch"].to_numpy(), sweep.per_batch)
    assert (frame["sampling"] == sweep.sampling).all()
    noise = pt.gradient_noise(s, U, V, X, Y)
    assert f"trace={noise.trace:.6g}" in repr(noise) and "covariance=array(" in repr(noise)
    _, ax = plt.subplots()
    sweep.plot(ax=ax)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), sweep.per_sample)


def test_explorer_state_and_widgets(problem):
    from pnd_theory.apps.explorer import explore, explorer_state

    state = explorer_state("dropblock", p=0.5, block_size=2, width=4, correlation=0.6, n_in=3, n_out=2,
                           n_samples=8, seed=1)
    U, V, X, Y = problem  # the same random problem
    S = pt.second_moment(X)
    assert state.penalty == pt.expected_penalty(pt.DropBlock(0.5, 2), U, V, S)
    assert state.induced_penalty == pt.induced_penalty(pt.DropBlock(0.5, 2), U @ V.T, 4, second_moment=S)
    # without noise the minimizer is least squares (width 4 >= rank): an independent route by lstsq
    ols = np.linalg.lstsq(X.T, Y.T, rcond=None)[0].T
    np.testing.assert_allclose(state.unregularized_singular_values, np.linalg.svd(ols, compute_uv=False),
                               rtol=1e-9, atol=1e-12)
    assert np.all(state.singular_values <= state.unregularized_singular_values + 1e-12)  # shrunk by the noise
    box = explore(strategy="dropout", n_in=3, n_out=2, n_samples=8, seed=1)
    controls = [c for row in box.children[:2] for c in row.children]
    assert [c.description for c in controls] == ["strategy", "p", "block size", "width", "correlation"]
    assert box.state.strategy == pt.Dropout(0.3)
    assert (controls[4].min, controls[4].max) == (0.0, 1.0)  # the input correlation's range, not 0 to 2
    controls[0].value = "node-dropout"  # per-unit strategies take p for every unit
    assert box.state.strategy == pt.NodeDropout([0.3] * 4)
    controls[2].value = 3  # a block size that does not divide the width is refused, not raised
    controls[0].value = "dropblock"
    assert box.state is None


def test_conformance_report_shows_its_table():
    report = pt.check_strategy(pt.Dropout(0.3), samples=400, seed=2)
    short = repr(report)
    assert short.startswith("ConformanceReport(Dropout(p=0.3): ") and len(short) < 120 and "\n" not in short
    assert f"of {len(report.results)} routes)" in short
    from IPython.core.formatters import DisplayFormatter
    shown = DisplayFormatter().format(report)[0]
    assert shown["text/plain"] == report.table() == str(report)  # IPython shows the table, not the fields
    assert shown["text/html"].count("<tr>") == len(report.results) + 1
    assert all(f">{r.route}<" in shown["text/html"] for r in report.results)
