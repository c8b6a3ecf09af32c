"""A property-based walk over every public function and constructor of ``pnd_theory.__all__``
and ``pnd_theory.deep.__all__``.

Hypothesis (fixed seed, a bounded number of examples) replaces one argument of a valid call
by a generated bad or extreme value: a wrong kind, None, complex, NaN/inf, empty, 0-d, integer
and bool tensors, tensors that require grad, the valid value scaled by 10^-300..10^300.  Each
call either returns an answer without NaN (infinite only with a warning; the numpy answer for
a tensor that requires grad) or raises the one ``pt.InvalidParameterError`` naming the
parameter.  Never another exception, and never a run that does not end: counts beyond 2^40
steps and sizes beyond the machine's memory are refused before any work (``huge_int``).
"""

import inspect
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pnd_theory as pt
from test_robustness import ACTIVATIONS, IMPORTANCE, RATES, A, D, S, U, V, X, Y, _numbers

W = np.array([3.0, -1.0, 2.0])
LAW = pt.Bernoulli(0.3)

# name -> valid keyword arguments (small and quick); every name of __all__ is here or in SKIP
VALID = {
    "Bernoulli": dict(p=0.3), "Gaussian": dict(p=0.3), "Uniform": dict(low=0.5, high=1.5),
    "DiscreteLaw": dict(values=np.array([0.0, 2.0]), probs=np.array([0.5, 0.5])),
    "UnitNoise": dict(law=LAW, block_size=2), "WeightNoise": dict(law=LAW, layer="input", per_sample=True),
    "LinearNetwork": dict(n_in=3, width=4, n_out=2, strategy=D, U=U, V=V),
    "layers_for": dict(law=D.law(3, 4, 2)),
    "DropBlock": dict(p=0.3, block_size=2), "DropConnect": dict(p=0.3), "Dropout": dict(p=0.3),
    "GaussianDropout": dict(p=0.3), "HiddenNoise": dict(covariance=0.1 * np.eye(4)), "NodeDropout": dict(p=RATES),
    "PerNodeDrop": dict(p=0.3), "MaskLaw": dict(n_in=3, width=4, n_out=2, per_sample=True),
    "strategy_from_name": dict(name="dropout", p=0.3),
    "verify": dict(strategies=[D], U=U, V=V, X=X, Y=Y, samples=50),
    "default_strategies": dict(width=4, p=0.3),
    "expected_loss": dict(strategy=D, U=U, V=V, X=X, Y=Y), "plain_loss": dict(U=U, V=V, X=X, Y=Y),
    "expected_penalty": dict(strategy=D, U=U, V=V, second_moment=S), "second_moment": dict(X=X),
    "exact_expected_loss": dict(strategy=D, U=U, V=V, X=X, Y=Y),
    "monte_carlo_loss": dict(strategy=D, U=U, V=V, X=X, Y=Y, samples=8),
    "derive": dict(strategy=D, n_in=2, width=2, n_out=1),
    "random_problem": dict(n_in=3, width=4, n_out=2, n_samples=6, correlation=0.6, seed=0),
    "induced_penalty": dict(strategy=D, A=A, width=4, second_moment=S),
    "balanced_factors": dict(strategy=D, A=A, width=4), "unit_contributions": dict(U=U, V=V, second_moment=S),
    "noise_strength": dict(p=0.3), "drop_probability": dict(lam=0.5),
    "global_minimizer": dict(strategy=D, X=X, Y=Y, width=4),
    "train": dict(strategy=D, X=X, Y=Y, width=4, epochs=2, lr=0.003, progress=False, device="cpu"),
    "gradient_noise": dict(strategy=D, U=U, V=V, X_batch=X, Y_batch=Y),
    "gradient_noise_vs_batch_size": dict(strategy=D, U=U, V=V, X=X, Y=Y, batch_sizes=[1, 2]),
    "mask_sharing_pair": dict(strategy=pt.PerNodeDrop(0.3)),
    "monte_carlo_gradient_noise": dict(strategy=D, U=U, V=V, X_batch=X, Y_batch=Y, draws=40, groups=4,
                                       progress=False),
    "monte_carlo_gradient_noise_vs_batch_size": dict(strategy=D, U=U, V=V, X=X, Y=Y, batch_sizes=[2], batches=2,
                                                     draws=20, progress=False),
    "stationary_spread": dict(strategy=D, X=X, Y=Y, width=4, lr=0.01, steps=4, seeds=2, snapshots=2,
                              progress=False),
    "check_strategy": dict(strategy=D, samples=50, routes=("numeric",)),
    "conductance": dict(U=U, V=V, X=X), "unit_importance": dict(U=U, V=V, X=X),
    "ydrop_rates": dict(importance=IMPORTANCE, p=0.5), "ydrop_map": dict(rates=RATES, X=X, Y=Y, width=4),
    "ydrop_fixed_point": dict(X=X, Y=Y, width=4, max_iter=3),
    "train_ydrop": dict(X=X, Y=Y, width=4, epochs=2, lr=0.01),
    "noise_mode_spread": dict(strategy=D, X=X, Y=Y, width=4, noise="masks", lr=0.01, steps=4, snapshots=2, seeds=2),
    "iterate_moments": dict(strategy=D, X=X, Y=Y, U0=U, lr=0.01, steps=3, V=V),
    "stationary_moments": dict(strategy=D, X=X, Y=Y, lr=0.01, V=V),
    "linearized_spread": dict(strategy=D, X=X, Y=Y, width=2, lr=0.01),
    "activation_sparsity": dict(activations=ACTIVATIONS),
    "k_support_norm": dict(w=W, k=2), "dual_k_support_norm": dict(w=W, k=2),
    "prox_squared_k_support_vector": dict(w=W, k=2, c=0.5),
    "spectral_k_support_norm": dict(A=A, k=1), "dual_spectral_k_support_norm": dict(A=A, k=1),
    "prox_squared_k_support": dict(A=A, k=1, c=0.5),
}
# pt.deep: a depth-3 network (3 -> 4 -> 3 -> 2) with dropout on the first hidden layer
_rng = np.random.default_rng(7)
WEIGHTS = [_rng.normal(size=(4, 3)), _rng.normal(size=(3, 4)), _rng.normal(size=(2, 3))]
HIDDEN = [pt.Dropout(0.3), None]
VALID.update({
    "deep.expected_loss": dict(weights=WEIGHTS, X=X, Y=Y, hidden=HIDDEN),
    "deep.expected_penalty": dict(weights=WEIGHTS, second_moment=S, hidden=HIDDEN),
    "deep.plain_loss": dict(weights=WEIGHTS, X=X, Y=Y), "deep.mean_map": dict(weights=WEIGHTS),
    "deep.exact_expected_loss": dict(weights=WEIGHTS, X=X, Y=Y, hidden=HIDDEN),
    "deep.monte_carlo_loss": dict(weights=WEIGHTS, X=X, Y=Y, samples=20, hidden=HIDDEN),
    "deep.derive": dict(sizes=(2, 2, 2, 1), hidden=[pt.Dropout(0.3), None]),
    "deep.induced_penalty": dict(A=A, widths=[4, 3], hidden=HIDDEN, starts=2, max_iter=50),
    "deep.envelope_coefficient": dict(sizes=(3, 4, 3, 2), hidden=HIDDEN),
    "deep.equalized_factors": dict(A=np.outer([1.0, -2.0], [0.5, 1.0, 1.5]), widths=[4, 3], hidden=HIDDEN),
    "deep.global_minimizer": dict(X=X, Y=Y, widths=[4, 3], hidden=HIDDEN, starts=2, max_iter=50),
    "deep.train": dict(X=X, Y=Y, widths=[4, 3], hidden=HIDDEN, epochs=3, lr=0.01),
    "deep.deep_law": dict(sizes=(3, 4, 3, 2), hidden=HIDDEN),
})
# names that take no user input to walk, with the reason
SKIP = {
    "InvalidParameterError": "the error itself", "ScalarLaw": "abstract base", "Strategy": "abstract base",
    "STRATEGY_NAMES": "a table, not callable", "deep": "a module", "nn": "a module",
    "Derivation": "result record", "MinimizerResult": "result record", "TrainingResult": "result record",
    "ConformanceReport": "result record", "YDropFixedPoint": "result record", "YDropTraining": "result record",
    "NoiseModeSpread": "result record", "IterateMoments": "result record", "StationaryMoments": "result record",
    "LinearizedSpread": "result record", "ExplicitImplicit": "result record",
    "sweep": "walked by tests/test_sweep.py (a cluster per call)", "sweep_plot": "takes a sweep's DataFrame",
    "explicit_implicit_digits": "a study of minutes per call", "SparsityMonitor": "takes torch layers",
    "explicit_penalty": "takes a torch model", "penalized_loss": "takes a torch model",
    "deep.DeepDerivation": "result record", "deep.DeepCompactForm": "result record", "deep.InducedResult": "result record",
    "deep.DeepMinimizerResult": "result record", "deep.DeepTrainingResult": "result record",
    "deep.DeepLaw": "made by deep.deep_law, walked there",
}


def _public(name):
    """The public object of a walked name: ``NAME`` of ``pnd_theory``, ``deep.NAME`` of ``pnd_theory.deep``."""
    module, _, attr = name.rpartition(".")
    return getattr(getattr(pt, module) if module else pt, attr)


def test_every_public_name_is_walked_or_skipped_with_a_reason():
    public = set(pt.__all__) | {f"deep.{n}" for n in pt.deep.__all__}
    assert set(VALID) | set(SKIP) == public, public ^ (set(VALID) | set(SKIP))
    assert not set(VALID) & set(SKIP)
    for name, kwargs in VALID.items():
        parameters = inspect.signature(_public(name)).parameters
        assert set(kwargs) <= set(parameters) or any(p.kind is p.VAR_KEYWORD for p in parameters.values()), name


KINDS = ("none", "string", "complex", "nan", "inf", "empty", "zero_d", "int_tensor", "bool_tensor",
         "requires_grad", "scaled", "negative", "huge_int", "list_of_none")


def _bad(value, kind, exponent):
    """A bad or extreme value of the kind, made from the valid ``value``."""
    numeric = isinstance(value, (int, float, np.ndarray)) and not isinstance(value, bool)
    a = np.asarray(value, dtype=np.float64) if numeric else np.array([0.5, 1.0])
    first = np.arange(a.size).reshape(a.shape) == 0
    return {
        "none": lambda: None, "string": lambda: "abc", "complex": lambda: a + 1j,
        "nan": lambda: np.where(first, np.nan, a), "inf": lambda: np.where(first, np.inf, a),
        "empty": lambda: np.zeros((0,) * max(a.ndim, 1)), "zero_d": lambda: np.float64(a.ravel()[0]),
        "int_tensor": lambda: torch.tensor(np.round(4 * a).astype(np.int64)),
        "bool_tensor": lambda: torch.tensor(a > 0.5), "requires_grad": lambda: torch.tensor(a, requires_grad=True),
        "scaled": lambda: a * 10.0**exponent, "negative": lambda: -a - 1.0, "huge_int": lambda: 10**30,
        "list_of_none": lambda: [None] * max(a.size, 1),
    }[kind]()


def _call(fn, kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(**kwargs)
    return out, caught


#: counts of work (epochs, steps, draws, ...): a count scaled up is valid and merely long (up to the
#: 2^40 every count is bounded by), so they are scaled down only
COUNTS = {"epochs", "steps", "draws", "samples", "max_iter", "seeds", "snapshots", "batches", "groups", "starts"}
CASES = [(name, param) for name, kwargs in VALID.items() for param in kwargs]


@pytest.mark.parametrize("name", list(VALID))
def test_the_valid_call_of_each_name_is_valid_and_answers_without_nan(name):
    # the walk's starting point: were it refused, every case of the name would test nothing
    out, caught = _call(_public(name), VALID[name])
    numbers = _numbers(out)
    assert not np.any(np.isnan(numbers)) and (np.all(np.isfinite(numbers)) or caught), name


@pytest.mark.parametrize("name, param", CASES, ids=[f"{n}-{p}" for n, p in CASES])
@settings(derandomize=True, max_examples=30, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(kind=st.sampled_from(KINDS), exponent=st.integers(-300, 300))
def test_a_bad_or_extreme_argument_is_refused_naming_it_or_answered_without_nan(name, param, kind, exponent):
    fn, valid = _public(name), VALID[name]
    if param in COUNTS:  # a count of work scaled up is valid and merely long: scaled down only
        exponent = min(exponent, 0)
    bad = _bad(valid[param], kind, exponent)
    try:
        out, caught = _call(fn, dict(valid, **{param: bad}))
    except pt.InvalidParameterError as error:
        assert param in str(error) or name == "strategy_from_name", f"{name}({param}={kind}): {error}"
        return
    numbers = _numbers(out)
    assert not np.any(np.isnan(numbers)), f"{name}({param}={kind}) returned NaN"
    if np.any(np.isinf(numbers)):
        assert caught, f"{name}({param}={kind}) returned inf without a warning"
    if kind == "requires_grad":  # the values of the tensor: the numpy answer
        expected = _numbers(_call(fn, dict(valid, **{param: valid[param]}))[0])
        if name not in ("random_problem",) and numbers.shape == expected.shape:
            np.testing.assert_allclose(numbers, expected, rtol=1e-9, atol=1e-12)
