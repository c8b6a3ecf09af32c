"""A generated walk over the public functions with bad and extreme arrays.

Every call either returns a finite answer that the test checks (the numpy answer for the same
values given as integers or as tensors that require grad; a scaling law for scaled inputs) or
raises the one ``pt.InvalidParameterError`` naming the parameter.  Never another exception,
never NaN.
"""

import math
import warnings

import numpy as np
import pytest
import torch

import pnd_theory as pt

U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=6, seed=0)
S = pt.second_moment(X)
A = U @ V.T
D = pt.Dropout(0.3)
IMPORTANCE = np.array([0.2, 0.5, 0.9, 1.4])
RATES = np.array([0.2, 0.3, 0.4, 0.5])
ACTIVATIONS = np.abs(np.random.default_rng(0).normal(size=(8, 5)))


def _numbers(out):
    """The numbers of a result, as one float64 vector (results of every kind the table returns)."""
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().double().numpy().ravel()
    if isinstance(out, (float, int, np.floating, np.ndarray)):
        return np.asarray(out, dtype=np.float64).ravel()
    if isinstance(out, (tuple, list)):
        return np.concatenate([_numbers(o) for o in out]) if out else np.zeros(0)
    for attribute in ("objective", "trace", "penalty"):
        if hasattr(out, attribute):
            return _numbers(getattr(out, attribute))
    return np.zeros(0)  # an object without numbers (a strategy): its construction is the check


# function, valid keyword arguments (numpy), the array parameters to walk
TABLE = [
    (pt.expected_penalty, dict(strategy=D, U=U, V=V, second_moment=S), ("U", "V", "second_moment")),
    (pt.expected_loss, dict(strategy=D, U=U, V=V, X=X, Y=Y), ("U", "V", "X", "Y")),
    (pt.plain_loss, dict(U=U, V=V, X=X, Y=Y), ("U", "V", "X", "Y")),
    (pt.second_moment, dict(X=X), ("X",)),
    (pt.exact_expected_loss, dict(strategy=D, U=U, V=V, X=X, Y=Y), ("U", "V", "X", "Y")),
    (pt.monte_carlo_loss, dict(strategy=D, U=U, V=V, X=X, Y=Y, samples=8), ("U", "X")),
    (pt.induced_penalty, dict(strategy=D, A=A, width=4, second_moment=S), ("A", "second_moment")),
    (pt.balanced_factors, dict(strategy=D, A=A, width=4), ("A",)),
    (pt.global_minimizer, dict(strategy=D, X=X, Y=Y, width=4), ("X", "Y")),
    (pt.gradient_noise, dict(strategy=D, U=U, V=V, X_batch=X, Y_batch=Y), ("U", "V", "X_batch", "Y_batch")),
    (pt.unit_contributions, dict(U=U, V=V, second_moment=S), ("U", "V", "second_moment")),
    (pt.conductance, dict(U=U, V=V, X=X), ("U", "V", "X")),
    (pt.unit_importance, dict(U=U, V=V, X=X), ("U", "V", "X")),
    (pt.ydrop_rates, dict(importance=IMPORTANCE), ("importance",)),
    (pt.ydrop_map, dict(rates=RATES, X=X, Y=Y, width=4), ("rates", "X", "Y")),
    (pt.activation_sparsity, dict(activations=ACTIVATIONS), ("activations",)),
    (pt.HiddenNoise, dict(covariance=0.1 * np.eye(4)), ("covariance",)),
    (pt.NodeDropout, dict(p=RATES), ("p",)),
    (pt.spectral_k_support_norm, dict(A=A, k=1), ("A",)),
    (pt.k_support_norm, dict(w=np.array([3.0, -1.0, 2.0]), k=2), ("w",)),
    (pt.deep.expected_loss, dict(weights=[V.T, U], X=X, Y=Y), ("X", "Y")),
    (pt.deep.global_minimizer, dict(X=X, Y=Y, widths=[4], hidden=[D], starts=2), ("X", "Y")),
]
NAMES = {fn: fn.__module__.rsplit(".", 1)[-1] + "." + fn.__name__ for fn, _, _ in TABLE}
REFERENCE = {}


def _reference(fn, valid):
    if fn not in REFERENCE:
        REFERENCE[fn] = _numbers(fn(**valid))
    return REFERENCE[fn]


def _bad_values(value):
    """Generated bad arrays for a parameter whose valid value is ``value``."""
    a = np.asarray(value, dtype=np.float64)
    bad = {
        "none": None,
        "string": "abc",
        "object": np.array([object()] * max(a.size, 1), dtype=object).reshape(a.shape if a.size else (1,)),
        "complex": a + 1j,
        "complex_tensor": torch.tensor(a) * (1 + 1j),
        "zero_d": np.float64(1.0),
        "empty": np.zeros((0,) * a.ndim),
        "nan": np.where(np.arange(a.size).reshape(a.shape) == 0, np.nan, a),
        "inf": np.where(np.arange(a.size).reshape(a.shape) == 0, np.inf, a),
        "three_d": a[..., None, None],
    }
    return bad


CASES = [(fn, valid, param, kind, bad) for fn, valid, params in TABLE for param in params
         for kind, bad in _bad_values(valid[param]).items()]


def _call(fn, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(**kwargs)


@pytest.mark.parametrize("fn, valid, param, kind, bad", CASES,
                         ids=[f"{NAMES[c[0]]}-{c[2]}-{c[3]}" for c in CASES])
def test_bad_array_is_refused_naming_the_parameter_or_answered_finitely(fn, valid, param, kind, bad):
    try:
        out = _call(fn, dict(valid, **{param: bad}))
    except pt.InvalidParameterError as error:
        assert param in str(error), str(error)
        return
    numbers = _numbers(out)
    assert np.all(np.isfinite(numbers)), f"{NAMES[fn]}({param}={kind}) returned non-finite {numbers}"
    if kind == "none" and param == "second_moment":  # optional: the identity (whitened inputs)
        np.testing.assert_allclose(numbers, _numbers(_call(fn, dict(valid, **{param: np.eye(3)}))), rtol=1e-12)
        return
    assert kind in ("zero_d", "empty", "three_d"), f"{NAMES[fn]} accepted {param}={kind}: {numbers}"


EXACT = [(fn, valid, param) for fn, valid, params in TABLE for param in params]


def _outcome(fn, kwargs):
    """The numbers of the answer, or the message of the one error."""
    try:
        return _numbers(_call(fn, kwargs))
    except pt.InvalidParameterError as error:
        return str(error)


@pytest.mark.parametrize("fn, valid, param", EXACT, ids=[f"{NAMES[c[0]]}-{c[2]}" for c in EXACT])
def test_integer_values_and_tensors_that_require_grad_give_the_numpy_answer(fn, valid, param):
    """A float tensor that requires grad gives the numpy answer; integer values (an int64 array
    or tensor) give the answer of the same values as float64 (to rounding, float64 throughout;
    a Monte Carlo estimate draws the same masks), or the same refusal."""
    value = np.asarray(valid[param], dtype=np.float64)
    rounded = np.round(4 * value)  # integers, not all zero
    cases = [(torch.tensor(value, requires_grad=True), value), (rounded.astype(np.int64), rounded),
             (torch.tensor(rounded.astype(np.int64)), rounded)]
    for given, same in cases:
        out, expected = _outcome(fn, dict(valid, **{param: given})), _outcome(fn, dict(valid, **{param: same}))
        assert type(out) is type(expected), (type(given), out, expected)
        if isinstance(expected, str):
            assert param in expected
            continue
        assert out.shape == expected.shape, (out, expected)
        np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12, err_msg=f"{NAMES[fn]} {param}={type(given)}")
