"""Monte Carlo training with real sampled masks lands on the closed-form optimum.

The network: the sampled forward pass has the mean network as its mean, the mini-batch loss
has ``pt.expected_loss`` as its expectation (both within 5 standard errors), per-batch laws
share one mask across the batch, evaluation is the mean network.  Training: with the width
condition of the induced regularizer met, the end point is within 1% of ``global_minimizer(...).objective``
and within 2% on every non-negligible singular value, for Dropout, DropBlock, output-layer
DropConnect (one mask per mini-batch) and input-layer PerNodeDrop with correlated inputs.
"""

import json
import math
import warnings

import numpy as np
import pytest
import torch

import pnd_theory as pt
from pnd_theory.nn.network import LinearNetwork
from pnd_theory.studies.training import TrainingHistory, TrainingResult, lr_multiplier, train

from conftest import STRATEGIES, make_problem

torch.set_num_threads(1)

#: landing tolerances: relative gap of the objective, of each non-negligible singular value
OBJECTIVE_RTOL = 0.01
SINGULAR_RTOL = 0.02
#: a singular value of the optimum below this fraction of the largest one is negligible
NEGLIGIBLE = 0.05


def regression_problem(n=4, n_samples=512, correlation=0.0, seed=0, singular_values=(4.0, 3.0, 2.5, 0.2),
                       noise=0.3):
    """``Y = A0 X + noise`` with a target of well separated singular values.

    The inputs are equicorrelated (``S`` far from diagonal when ``correlation > 0``).  After
    the noise shrinkage the optimum keeps three singular values of order one and sets the
    fourth to zero, so the width condition holds for ``d >= 3`` (``G = d / b >= 3``).
    """
    rng = np.random.default_rng(seed)
    cov = (1 - correlation) * np.eye(n) + correlation * np.ones((n, n))
    X = np.linalg.cholesky(cov) @ rng.standard_normal((n, n_samples))
    left, _ = np.linalg.qr(rng.standard_normal((n, n)))
    right, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A0 = left @ np.diag(singular_values[:n]) @ right.T
    Y = A0 @ X + noise * rng.standard_normal((n, n_samples))
    return X, Y


def least_squares_singular_values(X, Y):
    A = np.linalg.solve(X @ X.T, X @ Y.T).T
    return np.linalg.svd(A, compute_uv=False)


def singular_gaps(trained, optimum):
    """Relative gaps on the non-negligible singular values, and the largest trained value
    where the optimum's is negligible (relative to the largest)."""
    keep = optimum >= NEGLIGIBLE * optimum[0]
    rel = np.abs(trained[keep] - optimum[keep]) / optimum[keep]
    rest = trained[~keep].max(initial=0.0) / optimum[0]
    return rel, rest


# --------------------------------------------------------------------------- the network

NETWORK_STRATEGIES = [
    pt.Dropout(0.5),
    pt.GaussianDropout(0.4),
    pt.DropBlock(0.5, 2),
    pt.DropConnect(0.5, "output"),
    pt.DropConnect(0.3, "both", per_sample=True),
    pt.PerNodeDrop(0.5, "input"),
    pt.PerNodeDrop(0.3, "both", stir="gaussian"),
]


def test_parameters_follow_theory_conventions(rng):
    net = LinearNetwork(3, 4, 2, pt.Dropout(0.3), init_generator=torch.Generator().manual_seed(0))
    assert dict(net.named_parameters()).keys() == {"U", "V"}
    assert net.U.shape == (2, 4) and net.V.shape == (3, 4)
    assert net.U.dtype == torch.float64
    _, _, X, Y = make_problem(rng)
    S = X @ X.T / X.shape[1]
    expected = pt.expected_penalty(pt.Dropout(0.3), net.U.detach().numpy(), net.V.detach().numpy(), S)
    assert float(pt.expected_penalty(pt.Dropout(0.3), net.U, net.V, S)) == pytest.approx(expected, rel=1e-12)
    assert torch.equal(net.product(), (net.U @ net.V.T).detach())


def test_initialization_small_random_or_given(rng):
    width = 64
    net = LinearNetwork(50, width, 40, pt.Dropout(0.5), init_scale=0.2,
                        init_generator=torch.Generator().manual_seed(1))
    std = 0.2 / math.sqrt(width)
    for W in (net.U, net.V):
        # the standard deviation of about 3000 Gaussian entries, within 10%
        assert float(W.detach().std()) == pytest.approx(std, rel=0.1)
    again = LinearNetwork(50, width, 40, pt.Dropout(0.5), init_scale=0.2,
                          init_generator=torch.Generator().manual_seed(1))
    assert torch.equal(net.U, again.U) and torch.equal(net.V, again.V)
    U, V = rng.normal(size=(2, 4)), rng.normal(size=(3, 4))
    given = LinearNetwork(3, 4, 2, pt.Dropout(0.5), U=U, V=torch.as_tensor(V))
    np.testing.assert_array_equal(given.U.detach().numpy(), U)
    np.testing.assert_array_equal(given.V.detach().numpy(), V)


def test_eval_mode_is_the_deterministic_mean_network(rng):
    U, V, X, _ = make_problem(rng, n_samples=10)
    for s in NETWORK_STRATEGIES:
        net = LinearNetwork(3, 4, 2, s, U=U, V=V, generator=torch.Generator().manual_seed(0)).eval()
        x = torch.as_tensor(X.T)
        first, second = net(x), net(x)
        assert torch.equal(first, second)
        np.testing.assert_allclose(first.detach().numpy(), (U @ V.T @ X).T, rtol=1e-12, atol=1e-12)
        net.train()
        assert not torch.equal(net(x), net(x)), s  # training mode samples masks


def sampled_outputs(net, x, draws):
    """``draws`` independent sampled forward passes of the batch ``x``, shape
    ``(draws, batch, n_out)``.  Per-sample laws: one pass over ``draws`` copies of the batch
    (every copy of a sample gets its own mask); per-batch laws: one pass per draw."""
    with torch.no_grad():
        if net.law.per_sample:
            return net(x.repeat(draws, 1)).reshape(draws, *x.shape[:1], -1).numpy()
        return torch.stack([net(x) for _ in range(draws)]).numpy()


@pytest.mark.parametrize("strategy", NETWORK_STRATEGIES, ids=repr)
def test_sampled_forward_has_the_mean_network_as_mean(strategy, rng):
    U, V, X, _ = make_problem(rng, n_samples=5)
    net = LinearNetwork(3, 4, 2, strategy, U=U, V=V, generator=torch.Generator().manual_seed(2))
    draws = 4000
    outputs = sampled_outputs(net, torch.as_tensor(X.T), draws)
    mean = outputs.mean(0)
    se = outputs.std(0, ddof=1) / math.sqrt(draws)
    target = (U @ V.T @ X).T
    assert np.all(se > 0)
    assert np.all(np.abs(mean - target) < 5 * se)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_minibatch_loss_has_the_expected_loss_as_expectation(strategy, rng):
    U, V, X, Y = make_problem(rng, n_samples=6)
    net = LinearNetwork(3, 4, 2, strategy, U=U, V=V, generator=torch.Generator().manual_seed(3))
    draws = 3000
    outputs = sampled_outputs(net, torch.as_tensor(X.T), draws)
    losses = ((Y.T - outputs) ** 2).sum(-1).mean(-1)  # the mini-batch loss of each draw
    exact = pt.expected_loss(strategy, U, V, X, Y)
    se = losses.std(ddof=1) / math.sqrt(draws)
    assert se > 0
    assert abs(losses.mean() - exact) < 5 * se


def test_per_batch_laws_share_one_mask_across_the_batch(rng):
    U, V, _, _ = make_problem(rng)
    x = torch.as_tensor(rng.normal(size=(1, 3))).repeat(16, 1)  # one sample, repeated
    shared = LinearNetwork(3, 4, 2, pt.DropConnect(0.5, "output"), U=U, V=V,
                           generator=torch.Generator().manual_seed(4))
    assert shared.sample_masks(16)["output"].shape == (1, 1, 2, 4)
    for _ in range(5):
        out = shared(x)
        assert torch.equal(out, out[:1].expand_as(out))
    for s in (pt.DropConnect(0.5, "output", per_sample=True), pt.PerNodeDrop(0.5, "input"), pt.Dropout(0.5)):
        own = LinearNetwork(3, 4, 2, s, U=U, V=V, generator=torch.Generator().manual_seed(4))
        assert next(iter(own.sample_masks(16).values())).shape[1] == 16
        out = own(x)
        assert len(torch.unique(out, dim=0)) > 1, s


def test_given_masks_are_applied_by_the_law(rng):
    U, V, X, _ = make_problem(rng)
    s = pt.PerNodeDrop(0.5, "both")
    net = LinearNetwork(3, 4, 2, s, U=U, V=V, generator=torch.Generator().manual_seed(5))
    x = torch.as_tensor(X.T)
    masks = net.sample_masks(x.shape[0])
    expected = net.law.predict(net.U, net.V, x.T, masks)[0]
    assert torch.equal(net(x, masks=masks), expected)


def test_extra_repr_names_sizes_and_strategy():
    text = repr(LinearNetwork(3, 4, 2, pt.DropConnect(0.3, "output")))
    for part in ("n_in=3", "width=4", "n_out=2", "DropConnect(p=0.3", "per_sample_masks=False"):
        assert part in text


def test_network_bad_arguments(rng):
    with pytest.raises(TypeError, match="strategy"):
        LinearNetwork(3, 4, 2, "dropout")
    with pytest.raises(ValueError, match="n_in"):
        LinearNetwork(0, 4, 2, pt.Dropout(0.5))
    with pytest.raises(TypeError, match="width"):
        LinearNetwork(3, 4.0, 2, pt.Dropout(0.5))
    with pytest.raises(ValueError, match="block_size must divide the width"):
        LinearNetwork(3, 5, 2, pt.DropBlock(0.5, 2))
    with pytest.raises(TypeError, match="dtype"):
        LinearNetwork(3, 4, 2, pt.Dropout(0.5), dtype=torch.int64)
    with pytest.raises(TypeError, match="generator"):
        LinearNetwork(3, 4, 2, pt.Dropout(0.5), generator=0)
    with pytest.raises(ValueError, match="init_scale"):
        LinearNetwork(3, 4, 2, pt.Dropout(0.5), init_scale=0.0)
    with pytest.raises(ValueError, match=r"U must have shape \(n_out, width\) = \(2, 4\)"):
        LinearNetwork(3, 4, 2, pt.Dropout(0.5), U=np.ones((4, 2)))
    with pytest.raises(ValueError, match="V has non-finite"):
        LinearNetwork(3, 4, 2, pt.Dropout(0.5), V=np.full((3, 4), np.nan))
    import sympy

    with pytest.raises(TypeError, match="symbolic"):
        LinearNetwork(3, 2, 2, pt.HiddenNoise(sympy.Matrix([[sympy.Symbol("a"), 0], [0, 1]])))
    net = LinearNetwork(3, 4, 2, pt.Dropout(0.5))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, n_in=3\)"):
        net(torch.ones(5, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="x must be a torch tensor"):
        net(np.ones((5, 3)))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            LinearNetwork(3, 4, 2, pt.Dropout(0.5), device="cuda")


# --------------------------------------------------------------------------- training lands on the theory

def _minimizer():
    return pytest.importorskip("pnd_theory.regularizers.minimizers").global_minimizer


LANDING_CASES = [
    # strategy, width, input correlation, epochs (full-batch steps)
    pytest.param(pt.Dropout(0.5), 4, 0.0, 4000, id="dropout"),
    pytest.param(pt.DropBlock(0.5, 2), 8, 0.0, 4000, id="dropblock-b2"),
    # one mask per mini-batch: the mask noise does not average over the batch (per-sample against shared masks), so more steps
    pytest.param(pt.DropConnect(0.3, "output"), 8, 0.0, 8000, id="dropconnect-output"),
]


def assert_training_lands(strategy, width, correlation, epochs, seed=1):
    """Train on :func:`regression_problem` and hold the end point against the global minimizer."""
    global_minimizer = _minimizer()
    X, Y = regression_problem(correlation=correlation)
    optimum = global_minimizer(strategy, X, Y, width)
    result = train(strategy, X, Y, width, epochs=epochs, seed=seed, progress=False)

    # the noise matters: the optimum is far from plain least squares, beyond the tolerance
    plain = least_squares_singular_values(X, Y)
    keep = optimum.singular_values >= NEGLIGIBLE * optimum.singular_values[0]
    assert np.max(np.abs(plain[keep] - optimum.singular_values[keep]) / optimum.singular_values[keep]) > 5 * SINGULAR_RTOL

    assert result.objective == pytest.approx(pt.expected_loss(strategy, result.U, result.V, X, Y), rel=1e-12)
    assert result.objective >= optimum.objective * (1 - 1e-8)  # nothing beats the global minimum
    assert (result.objective - optimum.objective) / optimum.objective < OBJECTIVE_RTOL
    rel, rest = singular_gaps(result.singular_values, optimum.singular_values)
    assert np.all(rel < SINGULAR_RTOL), (rel, result.singular_values, optimum.singular_values)
    assert rest < NEGLIGIBLE
    return result


@pytest.mark.parametrize("strategy, width, correlation, epochs", LANDING_CASES)
def test_training_lands_on_the_global_minimizer(strategy, width, correlation, epochs):
    assert_training_lands(strategy, width, correlation, epochs)


def test_pernodedrop_lands_on_its_convex_solution_not_on_dropout():
    """Correlated inputs: input-layer PerNodeDrop penalizes ``A D^{1/2}``, Dropout ``A S^{1/2}``
    (input-layer weight noise).  The two optima differ by far more than the tolerance, and training with
    PerNodeDrop masks lands on its own (convex, numerically solved) optimum."""
    global_minimizer = _minimizer()
    width = 8
    X, Y = regression_problem(correlation=0.6)
    pnd = global_minimizer(pt.PerNodeDrop(0.5, "input"), X, Y, width)
    drop = global_minimizer(pt.Dropout(0.5), X, Y, width)
    assert pnd.method == "convex" and drop.method == "closed_form"
    keep = pnd.singular_values >= NEGLIGIBLE * pnd.singular_values[0]
    apart = np.abs(drop.singular_values[keep] - pnd.singular_values[keep]) / pnd.singular_values[keep]
    assert apart.max() > 10 * SINGULAR_RTOL
    # the Dropout product, factored as well as possible for PerNodeDrop, is measurably worse
    induced_penalty = pytest.importorskip("pnd_theory.regularizers.induced").induced_penalty
    A = drop.product
    data_fit = float(((Y - A @ X) ** 2).sum()) / X.shape[1]
    theta = induced_penalty(pt.PerNodeDrop(0.5, "input"), A, width, X @ X.T / X.shape[1])
    assert data_fit + theta > pnd.objective * (1 + 5 * OBJECTIVE_RTOL)
    result = assert_training_lands(pt.PerNodeDrop(0.5, "input"), width, 0.6, 4000)
    rel_dropout, _ = singular_gaps(result.singular_values, drop.singular_values)
    assert rel_dropout.max() > 5 * SINGULAR_RTOL


# --------------------------------------------------------------------------- the training loop

def _small_run(**kwargs):
    X, Y = regression_problem(n_samples=64)
    settings = dict(epochs=30, batch_size=16, seed=0, progress=False)
    settings.update(kwargs)
    return train(pt.DropConnect(0.5, "output"), X, Y, 4, **settings), X, Y


def test_same_seed_same_result_and_seed_matters():
    a, _, _ = _small_run()
    b, _, _ = _small_run()
    np.testing.assert_array_equal(a.U, b.U)
    np.testing.assert_array_equal(a.V, b.V)
    np.testing.assert_array_equal(a.history.batch_loss, b.history.batch_loss)
    np.testing.assert_array_equal(a.history.objective, b.history.objective)
    c, _, _ = _small_run(seed=1)
    assert not np.array_equal(a.U, c.U)


def test_torch_inputs_train_like_numpy_inputs():
    a, X, Y = _small_run(epochs=10)
    b = train(pt.DropConnect(0.5, "output"), torch.as_tensor(X), torch.as_tensor(Y), 4, epochs=10, batch_size=16,
              seed=0, progress=False)
    np.testing.assert_array_equal(a.U, b.U)
    np.testing.assert_array_equal(a.history.objective, b.history.objective)


def test_history_records_and_serializes():
    result, X, Y = _small_run(record_every=7)
    assert isinstance(result, TrainingResult) and isinstance(result.history, TrainingHistory)
    steps = 30 * 4
    assert result.steps == steps
    h = result.history
    expected_steps = list(range(7, steps + 1, 7)) + ([steps] if steps % 7 else [])
    assert list(h.step) == expected_steps and len(h) == len(expected_steps)
    assert h.singular_values.shape == (len(h), 4)
    assert np.all(np.diff(h.singular_values, axis=1) <= 0)
    assert np.all(np.isfinite(h.batch_loss)) and np.all(np.isfinite(h.mean_batch_loss))
    assert h.objective[-1] == pytest.approx(result.last_objective)
    assert h.objective[-1] == pytest.approx(pt.expected_loss(result.strategy, result.last_U, result.last_V, X, Y))
    assert h.objective[-1] < h.objective[0]
    assert h.lr[0] == pytest.approx(0.003) and h.lr[-1] < 0.003 / steps * 8
    d = json.loads(json.dumps(h.to_dict()))
    assert d["step"] == expected_steps and len(d["singular_values"]) == len(h)
    full = json.loads(json.dumps(result.to_dict()))
    assert full["objective"] == pytest.approx(result.objective) and full["width"] == 4
    np.testing.assert_allclose(result.product, result.U @ result.V.T)


def test_averaging_is_in_the_balanced_gauge_and_the_network_holds_it():
    steps = 30 * 4
    assert _small_run(average=0.5)[0].averaged_steps == steps // 2
    # an average over the last step alone is the last iterate, rebalanced unit by unit
    result, _, _ = _small_run(average=1 / steps)
    assert result.averaged_steps == 1
    np.testing.assert_allclose(np.linalg.norm(result.U, axis=0), np.linalg.norm(result.V, axis=0), rtol=1e-12)
    np.testing.assert_allclose(result.product, result.last_U @ result.last_V.T, rtol=1e-12, atol=1e-14)
    assert result.objective == pytest.approx(result.last_objective, rel=1e-12)
    assert not result.network.training
    np.testing.assert_array_equal(result.network.U.detach().numpy(), result.U)
    last, _, _ = _small_run(average=0.0)
    assert last.averaged_steps == 0
    np.testing.assert_array_equal(last.U, last.last_U)
    assert last.objective == last.last_objective


def test_other_settings_run(capsys):
    for kwargs in (dict(optimizer="sgd", lr=0.002, momentum=0.5), dict(schedule="cosine"),
                   dict(schedule=lambda fraction: 1 - fraction), dict(dtype=torch.float32),
                   dict(U_init=np.ones((4, 4)), V_init=np.ones((4, 4)))):
        result, _, _ = _small_run(epochs=10, **kwargs)
        assert result.U.dtype == np.float64 and np.all(np.isfinite(result.U))
    _small_run(epochs=5, progress=True)
    assert "train DropConnect" in capsys.readouterr().err


def test_lr_schedules():
    assert lr_multiplier("hold-linear", 0.1, hold=0.25) == 1.0
    assert lr_multiplier("hold-linear", 0.625, hold=0.25) == pytest.approx(0.5)
    assert lr_multiplier("linear", 0.75) == pytest.approx(0.25)
    assert lr_multiplier("cosine", 0.5) == pytest.approx(0.5)
    assert lr_multiplier("constant", 0.99) == 1.0


def test_divergence_is_reported_as_the_one_error_naming_lr_and_as_arithmetic():
    with pytest.raises(FloatingPointError, match="lower lr") as caught:
        _small_run(optimizer="sgd", lr=10.0, init_scale=1.0)
    assert isinstance(caught.value, pt.InvalidParameterError)
    assert str(caught.value).startswith("lr must be small enough for training") and "with this X and Y" in str(caught.value)



def test_adam_runs_that_end_far_above_zero_factors_warn_with_the_numbers():
    # Adam's steps have the size of lr whatever the gradient: nothing overflows, the end point
    # is 1e120 times worse than U = V = 0, and the runs say so
    X, Y = np.random.default_rng(0).normal(size=(2, 2, 8))
    zero = (Y ** 2).sum(0).mean()
    for name, run in (("train_ydrop", lambda: pt.train_ydrop(X, Y, 3, epochs=20, lr=1e30)),
                      ("pt.deep.train", lambda: pt.deep.train(X, Y, (3,), hidden=[pt.Dropout(0.3)], epochs=20, lr=1e30))):
        with pytest.warns(RuntimeWarning, match=rf"{name}\(lr=1e\+30, epochs=20\) did not converge: its objective "
                          rf".* times that of zero factors \({zero:.6g}, an upper bound on the optimum\)"):
            result = run()
        assert result.objective > 1e100 * zero
    with warnings.catch_warnings():  # a run that converges says nothing
        warnings.simplefilter("error")
        pt.deep.train(X, Y, (3,), hidden=[pt.Dropout(0.3)], epochs=300, lr=0.01)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(strategy="dropout"), TypeError, "strategy"),
    (dict(X=np.ones(10)), ValueError, "X must be a 2-D array"),
    (dict(X=np.full((4, 10), np.nan)), ValueError, "X has non-finite"),
    (dict(Y=np.ones((4, 9))), ValueError, "same number of samples"),
    (dict(width=0), ValueError, "width"),
    (dict(strategy=pt.DropBlock(0.5, 3)), ValueError, "block_size must divide the width"),
    (dict(epochs=0), ValueError, "epochs"),
    (dict(epochs=2.5), TypeError, "epochs"),
    (dict(lr=0.0), ValueError, "lr"),
    (dict(lr="fast"), TypeError, "lr"),
    (dict(batch_size=11), ValueError, "batch_size must be at most"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=1.0), TypeError, "seed"),
    (dict(device=3), TypeError, "device"),
    (dict(device="nonsense"), ValueError, "device"),
    (dict(dtype=torch.float16), TypeError, "dtype"),
    (dict(progress="yes"), TypeError, "progress"),
    (dict(record_every=0), ValueError, "record_every"),
    (dict(init_scale=-1.0), ValueError, "init_scale"),
    (dict(schedule="step"), ValueError, "schedule"),
    (dict(schedule=lambda fraction: -1.0), ValueError, "schedule must return"),
    (dict(hold=1.0), ValueError, "hold"),
    (dict(average=1.0), ValueError, "average"),
    (dict(optimizer="lbfgs"), ValueError, "optimizer"),
    (dict(momentum=1.0), ValueError, "momentum"),
    (dict(U_init=np.ones((2, 4))), ValueError, r"U_init must have shape \(n_out, width\) = \(4, 4\)"),
    (dict(V_init=[["a"] * 4] * 4), TypeError, "V_init must be a numeric array"),
])
def test_train_bad_arguments(kwargs, error, match):
    X, Y = regression_problem(n_samples=10)
    args = dict(strategy=pt.Dropout(0.5), X=X, Y=Y, width=4, epochs=1, progress=False)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        train(**args)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_train_cuda_requested_without_gpu():
    X, Y = regression_problem(n_samples=10)
    with pytest.raises(ValueError, match="no CUDA device"):
        train(pt.Dropout(0.5), X, Y, 4, epochs=1, device="cuda", progress=False)


GPU_SINGULAR_VALUES = tuple(np.linspace(8.0, 5.0, 12)) + (0.3,) * 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("strategy, correlation", [(pt.Dropout(0.5), 0.0), (pt.PerNodeDrop(0.5, "input"), 0.5)],
                         ids=["dropout", "pernodedrop-input-correlated"])
def test_training_on_gpu_lands_on_the_global_minimizer(strategy, correlation):
    """Larger sizes on the GPU: 16 inputs and outputs, width 16, 8192 samples, full batch."""
    global_minimizer = _minimizer()
    n, width = 16, 16
    X, Y = regression_problem(n=n, n_samples=8192, correlation=correlation, seed=5,
                              singular_values=GPU_SINGULAR_VALUES)
    optimum = global_minimizer(strategy, X, Y, width)
    result = train(strategy, X, Y, width, epochs=4000, seed=0, device="cuda", progress=False)
    assert result.device.startswith("cuda") and result.network.U.is_cuda
    assert (result.objective - optimum.objective) / optimum.objective < OBJECTIVE_RTOL
    rel, rest = singular_gaps(result.singular_values, optimum.singular_values)
    assert np.all(rel < SINGULAR_RTOL), (rel, result.singular_values, optimum.singular_values)
    assert rest < NEGLIGIBLE


@pytest.mark.parametrize("strategy, kwargs, says", [
    (pt.Dropout(0.3), {"lr": 10.0}, "far from a stationary point"),                 # the step is far too large
    (pt.Dropout(0.3), {"lr": 1e6}, "times that of zero factors"),                   # the 2e43 x optimum
    (pt.Dropout(1 - 1e-6), {}, "times that of zero factors"),                       # p next to 1: 55x the optimum
])
def test_run_ending_far_from_stationarity_warns_with_the_numbers(strategy, kwargs, says):
    _, _, X, Y = pt.random_problem(4, 8, 3, 128, seed=0)
    with pytest.warns(RuntimeWarning, match="did not converge") as caught:
        result = train(strategy, X, Y, 8, epochs=300, progress=False, device="cpu", **kwargs)
    message = str(caught[0].message)
    assert says in message and "relative gradient" in message
    assert caught[0].filename == __file__  # the warning points at the caller of train
    zero = float((Y ** 2).sum(axis=0).mean())  # the objective of zero factors: >= the optimum
    if "zero factors" in says:
        assert result.objective > 10 * zero >= 10 * pt.global_minimizer(strategy, X, Y, 8).objective


def test_a_converged_run_does_not_warn():
    import warnings

    _, _, X, Y = pt.random_problem(4, 8, 3, 128, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kwargs in ({"epochs": 15}, {"epochs": 300}, {"epochs": 300, "optimizer": "sgd", "lr": 0.002},
                       {"epochs": 300, "batch_size": 16}):
            train(pt.Dropout(0.3), X, Y, 8, progress=False, device="cpu", **kwargs)
