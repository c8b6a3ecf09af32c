"""Figures 1 to 6: files written, the data behind the plots, and one scientific claim each.

Each figure runs once in quick mode (a module-scoped fixture shared by its tests); the claims
are checked on the written JSON, the numbers the figure plots.  The whole file takes about
1.5 minutes on one loaded core.  Tolerances are stated where they are used, from what limits
the precision: the SGD noise left by a finite run, the Monte Carlo standard error, or float64
rounding of an optimizer's end point.  The figure modules run torch single-threaded
themselves (tiny tensors: thread contention costs more than it gives).
"""

import importlib
import json

import numpy as np
import pytest

FIGURES = {
    "objective": "paper_figures.fig1_objective",
    "singular_values": "paper_figures.fig2_singular_values",
    "correlation": "paper_figures.fig3_correlation",
    "equalization": "paper_figures.fig4_equalization",
    "monte_carlo": "paper_figures.fig5_monte_carlo",
    "width_condition": "paper_figures.fig6_width_condition",
}


def _run(tmp_path_factory, name):
    module = importlib.import_module(FIGURES[name])
    out = tmp_path_factory.mktemp(name)
    paths = module.make(out, quick=True)
    data = json.loads((out / f"{name}.json").read_text())
    return {"out": out, "paths": paths, "data": data}


@pytest.fixture(scope="module")
def objective(tmp_path_factory):
    return _run(tmp_path_factory, "objective")


@pytest.fixture(scope="module")
def singular_values(tmp_path_factory):
    return _run(tmp_path_factory, "singular_values")


@pytest.fixture(scope="module")
def correlation(tmp_path_factory):
    return _run(tmp_path_factory, "correlation")


@pytest.fixture(scope="module")
def equalization(tmp_path_factory):
    return _run(tmp_path_factory, "equalization")


@pytest.fixture(scope="module")
def monte_carlo(tmp_path_factory):
    return _run(tmp_path_factory, "monte_carlo")


@pytest.fixture(scope="module")
def width_condition(tmp_path_factory):
    return _run(tmp_path_factory, "width_condition")


def test_registry_names_these_modules():
    import paper_figures

    for name, module in FIGURES.items():
        assert paper_figures.FIGURES[name] == module


@pytest.mark.parametrize("name", list(FIGURES))
def test_writes_png_pdf_and_json(name, request):
    run = request.getfixturevalue(name)
    out = run["out"]
    expected = {out / f"{name}.{ext}" for ext in ("png", "pdf", "json")}
    assert {p.resolve() for p in map(type(out), run["paths"])} == {p.resolve() for p in expected}
    assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    assert run["data"]["quick"] is True
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


def test_objective_training_ends_on_the_closed_form_optimum(objective):
    # Final deterministic objective L + R of the last iterate within 1% of the closed-form
    # optimum, and never below it (it is the global minimum).  What is left after 1200 steps of
    # lr decaying to zero is SGD noise: measured 0.1-0.5% over seeds 0-3 (0.3-0.5% for
    # DropConnect, whose mask is shared by the batch and does not average out); 1% is twice
    # the largest.
    for label, e in objective["data"]["strategies"].items():
        final, optimum = e["final_objective"], e["optimum"]
        assert final == e["objective"][-1]
        assert final >= optimum * (1 - 1e-9), label
        assert final <= optimum * 1.01, (label, final / optimum - 1)
        # the plotted mini-batch losses are real samples: they scatter around the objective
        assert np.std(e["batch_loss"][-50:]) > 10 * np.std(e["objective"][-50:]), label


def test_singular_values_trained_match_closed_form(singular_values):
    # Trained singular values (last iterate) within 3% of the largest one of the closed-form
    # minimizer's, for every block size and p.  What is left is SGD noise: measured 0.1-1.5% of
    # sigma_1 over seeds 0-3 after 600 full-batch steps (the largest for Dropout at p = 0.5,
    # whose weakest direction learns slowest); 3% is twice the largest.  The closed forms of
    # b = 1 and b = 4 differ by more than 10% of sigma_1 (the claim is not vacuous).
    runs = singular_values["data"]["runs"]
    assert len(runs) == 6
    for run in runs:
        closed, trained = np.array(run["closed_form"]), np.array(run["trained"])
        assert run["method"] == "closed_form"
        assert np.max(np.abs(trained - closed)) <= 0.03 * closed[0], (run["p"], run["block_size"])
    at_half = {r["block_size"]: np.array(r["closed_form"]) for r in runs if r["p"] == 0.5}
    assert np.max(np.abs(at_half[1] - at_half[4])) > 0.1 * at_half[1][0]


def test_correlation_separates_dropout_and_input_pernodedrop(correlation):
    # input-layer noise and Dropout: with S diagonal (rho = 0) the two induced regularizers coincide to rounding; with
    # correlated inputs they part.  Training lands on each strategy's own minimizer: trained
    # objective within 1% of it (SGD noise; measured < 0.1%) and never below it.
    data = correlation["data"]
    dropout, pernode = data["strategies"]["Dropout"], data["strategies"]["PerNodeDrop (input)"]
    rho = np.array(data["rho_lines"])
    theta_d = np.array(dropout["lines"]["induced_penalty"])
    theta_p = np.array(pernode["lines"]["induced_penalty"])
    assert rho[0] == 0.0
    np.testing.assert_allclose(theta_d[0], theta_p[0], rtol=1e-10)
    assert abs(theta_d[-1] - theta_p[-1]) > 0.2 * theta_p[-1]
    obj_d = np.array(dropout["lines"]["optimum_objective"])
    obj_p = np.array(pernode["lines"]["optimum_objective"])
    np.testing.assert_allclose(obj_d[0], obj_p[0], rtol=1e-8)
    assert abs(obj_d[-1] - obj_p[-1]) > 0.1 * obj_p[-1]
    for e in (dropout, pernode):
        trained = np.array(e["points"]["trained_objective"])
        optimum = np.array(e["points"]["optimum_objective"])
        assert np.all(trained >= optimum * (1 - 1e-9))
        assert np.all(trained <= optimum * 1.01)


def test_equalization_spread_shrinks_with_noise_only(equalization):
    # the optimum has equal unit (Dropout) or block (DropBlock) contributions.  The balanced
    # factors of the closed-form minimizer are equal to rounding; training with noise ends with
    # a spread below 5% (measured 0.007-0.022 over seeds 0-3: SGD noise as the step decays to
    # zero), at least 5 times below training without noise from the same start (measured
    # 0.3-0.75: nothing equalizes).
    for key, e in equalization["data"]["panels"].items():
        assert e["balanced_cv"] < 1e-8, key
        assert e["cv"][-1] < 0.05, (key, e["cv"][-1])
        assert e["cv"][-1] < e["cv_no_noise"][-1] / 5, key
        assert e["final_objective"] <= e["optimum_objective"] * 1.01, key


def test_monte_carlo_band_holds_the_exact_value(monte_carlo):
    # The exact value lies inside the final +-5 standard-error band (|z| <= 5: a false alarm
    # probability below 1e-6 per strategy for a normal estimate of 10^5 draws), and the closed
    # form equals the enumeration to float64 rounding.
    for label, e in monte_carlo["data"]["strategies"].items():
        final, se = e["estimate"][-1], e["standard_error"][-1]
        assert abs(final - e["exact"]) <= 5 * se, (label, e["final_z"])
        np.testing.assert_allclose(e["closed_form"], e["exact"], rtol=1e-12)
        # the error bars shrink like T^(-1/2) over the range of T
        T = np.array(monte_carlo["data"]["draws"])
        ratio = e["standard_error"][0] / e["standard_error"][-1]
        assert 0.3 * np.sqrt(T[-1] / T[0]) < ratio < 3 * np.sqrt(T[-1] / T[0]), label


def test_width_condition_gap(width_condition):
    # The closed form is a lower bound on the factorized optimum: no gap below -1e-10 relative
    # (float64 rounding of two objectives of order 1).  With at least rank(A*) blocks the best
    # L-BFGS end point reaches it to optimizer tolerance (measured <= 2e-14; 1e-10 allowed);
    # where the library refuses the closed form (too few blocks, no certificate) the gap is
    # real (measured 1.5e-2 and 0.33, far above any tolerance).
    data = width_condition["data"]
    gap = np.array(data["relative_gap"])
    G = np.array(data["blocks"])
    rank = np.array(data["rank"])
    refused = np.array(["equivalent" in s for s in data["source"]])
    assert np.all(gap >= -1e-10)
    assert np.all(np.abs(gap[G >= rank]) <= 1e-10)
    assert refused.any() and np.all(gap[refused] > 1e-3)
    assert np.all(G[refused] < rank[refused])
    # the optimizer's own objective (enumeration over masks) and the closed form agree
    np.testing.assert_allclose(data["factorized"], data["factorized_enumeration"], rtol=1e-12)


def test_quick_mark_and_size_do_not_depend_on_earlier_figures(tmp_path):
    """A figure drawn in a style context and saved with the global settings at their defaults
    (as when it runs alone) has the same pixels' size, QUICK RUN mark included, as one saved
    after another figure changed the global settings (as in a full run)."""
    import matplotlib
    import matplotlib.image
    import matplotlib.pyplot as plt

    from paper_figures._style import STYLE, save_figure

    def draw(name, quick):
        with plt.rc_context(STYLE):
            fig, ax = plt.subplots(figsize=(4, 3))
            ax.plot([0, 1], [0, 1])
        return matplotlib.image.imread(save_figure(fig, tmp_path, name, quick=quick)[0]).shape[:2]

    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        alone = draw("alone", quick=True)
        plt.rcParams.update(STYLE)
        after_others = draw("after", quick=True)
        plain = draw("plain", quick=False)
    assert alone == after_others
    assert alone[0] > plain[0]  # the mark below the axes is inside the image
