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
    (pt.dual_k_support_norm, dict(w=np.array([3.0, -1.0, 2.0]), k=2), ("w",)),
    (pt.dual_spectral_k_support_norm, dict(A=A, k=1), ("A",)),
    (pt.prox_squared_k_support_vector, dict(w=np.array([3.0, -1.0, 2.0]), k=2, c=0.5), ("w",)),
    (pt.prox_squared_k_support, dict(A=A, k=1, c=0.5), ("A",)),
    (pt.monte_carlo_gradient_noise, dict(strategy=D, U=U, V=V, X_batch=X, Y_batch=Y, draws=40, groups=4,
                                         progress=False), ("U", "X_batch")),
    (pt.train, dict(strategy=D, X=X, Y=Y, width=4, epochs=2, progress=False, device="cpu"), ("X", "Y")),
    (pt.deep.train, dict(X=X, Y=Y, widths=[4], epochs=2, progress=False, device="cpu"), ("X", "Y")),
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


# ----------------------------------------------------------------------------- scaling laws
# Each answer is representable at these scales, and the test states the exact law it obeys.
def test_expected_loss_is_invariant_to_moving_a_scale_from_U_to_X():
    """f(x) = U V^T x: (U / c, X c) is the same network on the same data, so the same loss."""
    reference = pt.expected_loss(D, U, V, X, Y)
    for c in (1e160, 1e-160, 1e300):
        assert pt.expected_loss(D, U / c, V, X * c, Y) == pytest.approx(reference, rel=1e-12)
        assert pt.deep.expected_loss([V.T / c, U], X * c, Y, hidden=[D]) == pytest.approx(reference, rel=1e-12)


def test_global_minimizer_objective_is_invariant_to_scaling_X_and_quadratic_in_Y():
    """X -> c X leaves min_A L + Theta unchanged (A -> A / c); Y -> t Y multiplies it by t^2."""
    reference = pt.global_minimizer(D, X, Y, 4)
    for c in (1e300, 1e-300):
        scaled = pt.global_minimizer(D, X * c, Y, 4)
        assert scaled.objective == pytest.approx(reference.objective, rel=1e-12)
        np.testing.assert_allclose(scaled.product * c, reference.product, rtol=1e-10, atol=1e-12)
        U_c, V_c = scaled.factors()
        np.testing.assert_allclose(U_c @ V_c.T * c, reference.product, rtol=1e-10, atol=1e-12)
    assert pt.global_minimizer(D, X, Y * 2.0**-500, 4).objective == pytest.approx(
        reference.objective * 2.0**-1000, rel=1e-12)
    deep = pt.deep.global_minimizer(X * 1e150, Y, [4], hidden=[D], starts=2)
    assert deep.objective == pytest.approx(reference.objective, rel=1e-8)


def test_unit_contributions_are_homogeneous_of_degree_one():
    reference = pt.unit_contributions(U, V, S)
    np.testing.assert_allclose(pt.unit_contributions(U * 1e300, V, S), reference * 1e300, rtol=1e-12)
    np.testing.assert_allclose(pt.unit_contributions(U, V * 1e-300, S), reference * 1e-300, rtol=1e-12)


def test_gradient_noise_follows_the_rescaling_symmetry_and_overflows_to_inf_with_a_warning():
    """(U c, V / c) is the same network: the U-gradients scale by 1/c, the V-gradients by c."""
    reference = pt.gradient_noise(D, U, V, X, Y)
    for c in (2.0**100, 2.0**-100):
        noise = pt.gradient_noise(D, U * c, V / c, X, Y)
        assert noise.trace_U == pytest.approx(reference.trace_U / c**2, rel=1e-12)
        assert noise.trace_V == pytest.approx(reference.trace_V * c**2, rel=1e-12)
    with pytest.warns(RuntimeWarning, match="overflows float64"):
        noise = pt.gradient_noise(D, U * 1e80, V, X, Y)
    assert noise.trace_V == math.inf and noise.trace == math.inf  # true trace_V ~ 1e160^2
    assert 0 < noise.trace_U < math.inf  # ~ 1e80^2: representable


def test_activation_sparsity_is_invariant_to_scaling_the_activations():
    reference = pt.activation_sparsity(ACTIVATIONS)
    assert pt.activation_sparsity(ACTIVATIONS * 1e307 / ACTIVATIONS.max()) == pytest.approx(
        pt.activation_sparsity(ACTIVATIONS / ACTIVATIONS.max()), rel=1e-12)
    assert pt.activation_sparsity(ACTIVATIONS * 1e300) == pytest.approx(reference, rel=1e-12)


def test_ydrop_rates_are_invariant_to_scaling_the_importances_up():
    """z is scale-free but for eps, which matters less as the importances grow."""
    big = pt.ydrop_rates(IMPORTANCE * 1e300)
    np.testing.assert_allclose(big, pt.ydrop_rates(IMPORTANCE, eps=1e-306), rtol=1e-12)
    assert np.all(np.isfinite(big))


# ----------------------------------------------------------------------------- domains and sizes
@pytest.mark.parametrize("fn, kwargs, name", [
    (pt.noise_strength, dict(p=1.0), "p"), (pt.noise_strength, dict(p=1.5), "p"),
    (pt.noise_strength, dict(p=float("nan")), "p"), (pt.drop_probability, dict(lam=-1), "lam"),
    (pt.drop_probability, dict(lam=float("inf")), "lam"),
    (pt.exact_expected_loss, dict(strategy=D, U=U, V=V, X=X, Y=Y, max_configurations=float("nan")),
     "max_configurations"),
    (pt.random_problem, dict(n_in=10**30), "n_in"),
    (pt.induced_penalty, dict(strategy=D, A=A, width=10**9), "width"),
    (pt.global_minimizer, dict(strategy=D, X=X, Y=Y, width=10**12), "width"),
    (pt.train, dict(strategy=D, X=X, Y=Y, width=10**12, progress=False), "width"),
    (pt.derive, dict(strategy=D, n_in=3, width=10**9, n_out=2), "width"),
    (pt.deep.train, dict(X=X, Y=Y, widths=[10**7, 10**7], progress=False), "sizes"),
    (pt.deep.global_minimizer, dict(X=X, Y=Y, widths=[10**7, 10**7]), "sizes"),
    (pt.deep.derive, dict(sizes=[3, 10**7, 10**7, 2]), "sizes"),
    (pt.deep.deep_law, dict(sizes=[3, 10**8, 10**8, 2]), "sizes"),
    (pt.deep.envelope_coefficient, dict(sizes=[3, 10**8, 10**8, 2]), "sizes"),
    (pt.deep.equalized_factors, dict(A=np.outer([1.0, 2.0], [1.0, 0.5, 0.2]), widths=[10**7, 10**7]), "sizes"),
])
def test_values_outside_the_domain_and_sizes_beyond_memory_are_refused(fn, kwargs, name):
    with pytest.raises(pt.InvalidParameterError, match=name):
        fn(**kwargs)


def test_noise_strength_and_drop_probability_are_inverse():
    for p in (0.0, 0.3, 0.9):
        assert pt.noise_strength(p) == pytest.approx(p / (1 - p), rel=1e-15)
        assert pt.drop_probability(pt.noise_strength(p)) == pytest.approx(p, rel=1e-15, abs=0)


def test_train_divergence_is_a_floating_point_error_naming_its_cause():
    with pytest.raises(FloatingPointError, match="lr=1e[+]300"):
        pt.train(D, X, Y, 4, epochs=50, lr=1e300, progress=False)
    # data whose squares overflow are refused before training, naming them
    with pytest.raises(pt.InvalidParameterError, match="^X must be data whose entries squared"):
        pt.train(D, X * 1e200, Y, 4, epochs=2, progress=False)
    with pytest.raises(pt.InvalidParameterError, match="^Y must be data"):
        pt.train(D, X, Y * 1e154, 4, epochs=2, progress=False)


# ----------------------------------------------------------------------------- laws that lie
class _Liar(pt.ScalarLaw):
    """Triangular on [0, 2] (E[m^k] = (2^(k+2) - 2) / ((k+1)(k+2))), with one lie switched on."""

    def __init__(self, lie):
        object.__setattr__(self, "lie", lie)

    def moment(self, k):
        true = (2 ** (k + 2) - 2) / ((k + 1) * (k + 2))
        if self.lie == "mean 2" and k == 1:
            return 2.0
        if self.lie == "negative variance" and k == 2:
            return 0.5
        if self.lie == "nan moment" and k == 2:
            return float("nan")
        return true

    def sample(self, shape, generator=None, device=None, dtype=None):
        u = torch.rand((2,) + tuple(shape), generator=generator, device=device, dtype=dtype or torch.float64)
        if self.lie == "wrong shape":
            return (u[0] + u[1]).reshape(-1)[:1]
        if self.lie == "complex sample":
            return (u[0] + u[1]) * (1 + 1j)
        return u[0] + u[1]


LIES = ["mean 2", "negative variance", "nan moment", "wrong shape", "complex sample"]
PROPERTY = {"mean 2": "mean 1", "negative variance": "variance >= 0", "nan moment": "finite moment(2)",
            "wrong shape": "of that shape", "complex sample": "of that shape and dtype"}


@pytest.mark.parametrize("lie", LIES)
@pytest.mark.parametrize("build", [lambda law: pt.UnitNoise(law), lambda law: pt.WeightNoise(law),
                                   lambda law: pt.UnitNoise([law, law])], ids=["UnitNoise", "WeightNoise", "per-unit"])
def test_a_law_that_lies_is_refused_at_the_door_naming_the_property(lie, build):
    with pytest.raises(pt.InvalidParameterError, match=PROPERTY[lie].replace("(", r"\(").replace(")", r"\)")):
        build(_Liar(lie))


def test_an_honest_user_law_is_accepted_and_checked_once():
    class Counting(_Liar):
        calls = 0

        def moment(self, k):
            Counting.calls += 1
            return super().moment(k)

    law = Counting("none")
    pt.UnitNoise(law)
    first = Counting.calls
    assert first == 2  # moment(1) and moment(2), once
    pt.UnitNoise(law)
    pt.WeightNoise(law)
    assert Counting.calls == first
    # the closed form of an honest law: Var = E[m^2] - 1 = 7/6 - 1 = 1/6, R = (1/6) sum_j a_j s_j
    penalty = pt.expected_penalty(pt.UnitNoise(law), U, V, S)
    expected = (U * U).sum(0) @ (V * (S @ V)).sum(0) / 6
    assert penalty == pytest.approx(expected, rel=1e-12)


def test_monte_carlo_says_when_its_draws_overflow():
    """At U, V * 1e77 every draw of the loss exceeds the largest float (A ~ 1e154, loss ~ 1e308
    times a factor above 1): inf and inf with a warning, never a finite estimate with an infinite
    standard error in silence."""
    with pytest.warns(RuntimeWarning, match="overflow"):
        estimate, se = pt.monte_carlo_loss(D, U * 1e77, V * 1e77, X, Y, samples=50)
    assert estimate == math.inf and se == math.inf
    estimate, se = pt.monte_carlo_loss(D, U, V, X, Y, samples=400)
    assert abs(estimate - pt.expected_loss(D, U, V, X, Y)) < 5 * se and 0 < se < math.inf
