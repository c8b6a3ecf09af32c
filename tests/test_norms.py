"""Tests for the (spectral) k-support norm, its dual and the prox of its square."""

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose
from scipy.optimize import minimize

from pnd_theory.regularizers.norms import (
    dual_k_support_norm,
    dual_spectral_k_support_norm,
    k_support_norm,
    prox_squared_k_support,
    prox_squared_k_support_vector,
    spectral_k_support_norm,
)

RTOL = 1e-10  # float64 rounding through a sort/SVD and a few sums, with ample margin

# (m, n, rank): full-rank, rank-deficient and rank-one matrices
SHAPES = [(4, 4, 4), (5, 3, 3), (6, 5, 2), (3, 7, 1)]


def random_matrix(rng, m, n, rank):
    return rng.normal(size=(m, rank)) @ rng.normal(size=(rank, n))


def random_orthogonal(rng, n):
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def nuclear(A):
    return np.linalg.norm(A, "nuc")


def l2(x):
    """Euclidean / Frobenius norm without the underflow of squaring tiny entries."""
    scale = np.abs(x).max()
    return scale * np.linalg.norm(x / scale) if scale > 0 else 0.0


# --------------------------------------------------------------------- the two extremes


@pytest.mark.parametrize("m, n, rank", SHAPES)
def test_k1_is_nuclear_and_k_at_least_rank_is_frobenius(m, n, rank):
    A = random_matrix(np.random.default_rng(m * 100 + n * 10 + rank), m, n, rank)
    fro = np.linalg.norm(A)
    assert_allclose(spectral_k_support_norm(A, 1), nuclear(A), rtol=RTOL)
    assert_allclose(dual_spectral_k_support_norm(A, 1), np.linalg.norm(A, 2), rtol=RTOL)
    for k in range(rank, min(m, n) + 3):
        assert_allclose(spectral_k_support_norm(A, k), fro, rtol=RTOL)
        assert_allclose(dual_spectral_k_support_norm(A, k), fro, rtol=RTOL)
    if rank > 1:  # strictly between the extremes otherwise
        assert spectral_k_support_norm(A, rank - 1) > fro * (1 + 1e-6)


def test_vector_k1_is_l1_and_k_at_least_support_is_l2():
    rng = np.random.default_rng(1)
    w = rng.normal(size=7)
    w[[1, 4]] = 0.0  # 5 nonzeros
    assert_allclose(k_support_norm(w, 1), np.abs(w).sum(), rtol=RTOL)
    assert_allclose(dual_k_support_norm(w, 1), np.abs(w).max(), rtol=RTOL)
    for k in range(5, 10):
        assert_allclose(k_support_norm(w, k), np.linalg.norm(w), rtol=RTOL)
    assert k_support_norm(w, 4) > np.linalg.norm(w) * (1 + 1e-6)


def test_closed_form_on_a_hand_example():
    # |w| = (3, 2, 1), k = 2: r = 1 since s_0 = inf > 6/2 >= s_1 = 3, so the norm^2 is 6^2/2 = 18
    # (a tie: r = 0 fails s_1 = 3 > 2 + 1 but gives the same 3^2 + 3^2).
    assert_allclose(k_support_norm([3.0, -2.0, 1.0], 2), np.sqrt(18.0), rtol=RTOL)
    # |w| = (4, 1, 1): r = 0, norm^2 = 16 + (1 + 1)^2 = 20
    assert_allclose(k_support_norm([1.0, -4.0, 1.0], 2), np.sqrt(20.0), rtol=RTOL)
    assert_allclose(dual_k_support_norm([1.0, -4.0, 2.0], 2), np.sqrt(20.0), rtol=RTOL)


# ------------------------------------------------- independent route: dual of the dual norm


def norm_as_dual_of_dual(w, k):
    r"""max <w, z> subject to ||z_G||_2 <= 1 for every k-subset G, solved with SLSQP.

    The dual unit ball {z : l2 norm of the top-k |z_i| <= 1} is exactly this intersection
    of smooth constraints, so nothing of the closed form is used here.
    """
    subsets = [list(G) for G in combinations(range(w.size), k)]
    masks = [np.isin(np.arange(w.size), G) for G in subsets]
    constraints = [
        {"type": "ineq", "fun": lambda z, G=G: 1.0 - z[G] @ z[G], "jac": lambda z, M=M: -2.0 * M * z}
        for G, M in zip(subsets, masks)
    ]
    z0 = w / np.sqrt(np.sort(w**2)[::-1][:k].sum())
    res = minimize(
        lambda z: -w @ z, z0, jac=lambda z: -w, constraints=constraints, method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    # SLSQP may stop at its precision limit without reporting success; rescaling onto the dual
    # ball keeps the value a certified lower bound (weak duality), and closeness is checked after.
    z = res.x / max(1.0, np.sqrt(max(res.x[G] @ res.x[G] for G in subsets)))
    return w @ z


@pytest.mark.parametrize("n", [3, 4, 6])
def test_norm_equals_the_dual_of_the_dual_norm(n):
    rng = np.random.default_rng(n)
    vectors = [rng.normal(size=n), rng.exponential(size=n) ** 3]
    vectors.append(np.r_[2.0, -1.0, 1.0, np.zeros(n - 3)])  # ties and zeros
    for w in vectors:
        for k in range(1, n + 1):
            value, lower = k_support_norm(w, k), norm_as_dual_of_dual(w, k)
            assert lower <= value * (1 + RTOL)
            assert_allclose(value, lower, rtol=1e-7)


# ------------------------------------------------------------------------------- duality


@pytest.mark.parametrize("m, n, rank", SHAPES)
def test_duality_inequality_and_its_attainment(m, n, rank):
    rng = np.random.default_rng(7 + m + n + rank)
    for k in range(1, min(m, n) + 1):
        for _ in range(5):
            A, B = random_matrix(rng, m, n, rank), rng.normal(size=(m, n))
            bound = spectral_k_support_norm(A, k) * dual_spectral_k_support_norm(B, k)
            assert np.sum(A * B) <= bound * (1 + RTOL)
        # The prox optimality condition makes G = (A - X)/c a subgradient of 1/2||.||^2 at
        # X = prox(A), which attains the bound: <X, G> = ||X||^2 and ||G||^* = ||X||.
        c = rng.uniform(0.2, 3.0)
        X = prox_squared_k_support(A, k, c)
        G = (A - X) / c
        norm_X = spectral_k_support_norm(X, k)
        assert_allclose(np.sum(X * G), norm_X**2, rtol=RTOL, atol=RTOL * np.sum(A**2))
        assert_allclose(dual_spectral_k_support_norm(G, k), norm_X, rtol=RTOL, atol=RTOL * np.linalg.norm(A))


# --------------------------------------------------------------------- norm axioms


@pytest.mark.parametrize("m, n, rank", SHAPES)
def test_triangle_homogeneity_and_unitary_invariance(m, n, rank):
    rng = np.random.default_rng(11 * m + n + rank)
    for k in range(1, min(m, n) + 1):
        for norm in (spectral_k_support_norm, dual_spectral_k_support_norm):
            A, B = random_matrix(rng, m, n, rank), random_matrix(rng, m, n, rank)
            assert norm(A + B, k) <= (norm(A, k) + norm(B, k)) * (1 + RTOL)
            a = rng.normal() * 10.0 ** rng.integers(-3, 4)
            assert_allclose(norm(a * A, k), abs(a) * norm(A, k), rtol=RTOL)
            U, V = random_orthogonal(rng, m), random_orthogonal(rng, n)
            assert_allclose(norm(U @ A @ V, k), norm(A, k), rtol=RTOL)
            assert_allclose(norm(A.T, k), norm(A, k), rtol=RTOL)


def test_no_overflow_or_underflow_at_extreme_scales():
    w = np.array([3.0, -2.0, 1.0, 0.5])
    for scale in (1e-300, 1e300):
        for k in (1, 2, 4):
            assert_allclose(k_support_norm(scale * w, k), scale * k_support_norm(w, k), rtol=RTOL)
            assert_allclose(dual_k_support_norm(scale * w, k), scale * dual_k_support_norm(w, k), rtol=RTOL)
            assert_allclose(prox_squared_k_support_vector(scale * w, k, 0.7),
                            scale * prox_squared_k_support_vector(w, k, 0.7), rtol=RTOL)


@pytest.mark.parametrize("m, n, rank", SHAPES)
def test_monotone_in_k_from_nuclear_to_frobenius(m, n, rank):
    A = random_matrix(np.random.default_rng(3 * m + n + rank), m, n, rank)
    values = [spectral_k_support_norm(A, k) for k in range(1, min(m, n) + 1)]
    duals = [dual_spectral_k_support_norm(A, k) for k in range(1, min(m, n) + 1)]
    assert_allclose([values[0], values[-1]], [nuclear(A), np.linalg.norm(A)], rtol=RTOL)
    assert np.all(np.diff(values) <= RTOL * values[0])
    assert np.all(np.diff(values[:rank]) < 0)  # strictly, below the rank
    assert np.all(np.diff(duals) >= -RTOL * duals[-1])


# ---------------------------------------------------------------------------- the prox


@pytest.mark.parametrize("n", [4, 9])
def test_prox_matches_modopt(n):
    proximity = pytest.importorskip("modopt.opt.proximity")
    rng = np.random.default_rng(20 + n)
    for k in range(1, n + 1):
        for c in (0.1, 1.0, 7.5):
            w = rng.normal(size=n)
            # ModOpt's KSupportNorm(beta, k).op(w) is the prox of (beta/2)||.||_(k)^2, i.e. our
            # c = beta.  op(w, extra_factor) is left at 1: it uses beta * extra_factor to find
            # alpha but plain beta when it recomputes theta (ModOpt 1.7.2).
            expected = proximity.KSupportNorm(beta=c, k_value=k).op(w.copy())
            assert_allclose(prox_squared_k_support_vector(w, k, c), expected, rtol=1e-9, atol=1e-12)


def prox_objective(w, k, c):
    return lambda x: 0.5 * np.sum((w - x) ** 2) + 0.5 * c * k_support_norm(x, k) ** 2


PROX_CASES = [
    (np.array([0.3, -1.2, 2.0, 0.9, -0.1]), 2, 0.8),
    (np.array([2.0, 1.0, 1.0, 1.0, 0.0]), 2, 0.5),  # ties and a zero
    (np.array([1.0, -1.0, 0.0, 0.0]), 3, 1.0),  # fewer nonzeros than k
    (np.array([5.0, 0.1, 0.1, -0.1]), 1, 3.0),
    (np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 3, 40.0),
]


@pytest.mark.parametrize("w, k, c", PROX_CASES)
def test_prox_minimizes_its_objective(w, k, c):
    rng = np.random.default_rng(5)
    f = prox_objective(w, k, c)
    x = prox_squared_k_support_vector(w, k, c)
    fx = f(x)
    # strong convexity: f(x + d) >= f(x) + ||d||^2 / 2 at the minimizer
    for _ in range(200):
        d = rng.normal(size=w.size) * 10.0 ** rng.integers(-6, 1)
        assert f(x + d) >= fx + 0.5 * (d @ d) * (1 - 1e-6) - 1e-12
    for start in (np.zeros_like(w), w, rng.normal(size=w.size)):
        res = minimize(f, start, method="Powell", options={"xtol": 1e-10, "ftol": 1e-14, "maxfev": 20000})
        assert fx <= res.fun + 1e-12
        assert_allclose(res.x, x, atol=1e-5)


def test_prox_against_the_subgradient_condition():
    rng = np.random.default_rng(8)
    for n in (3, 6, 10):
        for k in range(1, n + 1):
            w, c = rng.normal(size=n), rng.uniform(0.05, 5.0)
            x = prox_squared_k_support_vector(w, k, c)
            g = (w - x) / c  # must lie in the subdifferential of 1/2||.||_(k)^2 at x
            norm_x = k_support_norm(x, k)
            assert_allclose(x @ g, norm_x**2, rtol=RTOL, atol=RTOL * (w @ w))
            assert_allclose(dual_k_support_norm(g, k), norm_x, rtol=RTOL, atol=RTOL * np.linalg.norm(w))


def test_prox_special_cases():
    rng = np.random.default_rng(9)
    w = rng.normal(size=6)
    for k in (6, 7, 50):
        assert_allclose(prox_squared_k_support_vector(w, k, 2.5), w / 3.5, rtol=RTOL)
    sparse = np.array([0.0, 1.5, 0.0, -2.0, 0.0, 0.0])
    assert_allclose(prox_squared_k_support_vector(sparse, 2, 1.0), sparse / 2.0, rtol=RTOL)
    for k in (1, 3, 6):
        assert_allclose(prox_squared_k_support_vector(w, k, 0.0), w, rtol=0)
        x = prox_squared_k_support_vector(w, k, 0.4)
        assert_allclose(prox_squared_k_support_vector(-w, k, 0.4), -x, rtol=0)
    assert_allclose(prox_squared_k_support_vector(np.zeros(4), 2, 1.0), np.zeros(4), atol=0)
    # k = 1: the prox of (c/2)||.||_1^2 keeps the top entry at s_1 - c * (sum of the kept x)
    assert_allclose(prox_squared_k_support_vector([3.0, 0.5, -0.25], 1, 1.0), [1.5, 0.0, 0.0], rtol=RTOL)


@pytest.mark.parametrize("m, n, rank", SHAPES)
def test_matrix_prox_acts_on_singular_values(m, n, rank):
    rng = np.random.default_rng(30 + m * n + rank)
    A = random_matrix(rng, m, n, rank)
    P, sigma, Qt = np.linalg.svd(A, full_matrices=False)
    for k in range(1, min(m, n) + 2):
        c = rng.uniform(0.1, 4.0)
        X = prox_squared_k_support(A, k, c)
        core = P.T @ X @ Qt.T  # diagonal iff X shares the singular vectors of A
        expected = prox_squared_k_support_vector(sigma, k, c)
        assert_allclose(core, np.diag(expected), atol=RTOL * sigma[0])
        assert_allclose(X, (P * expected) @ Qt, atol=RTOL * sigma[0])
    assert_allclose(prox_squared_k_support(A, 2, 0.0), A, atol=RTOL * sigma[0])


@pytest.mark.parametrize(
    "function, core_ndim, args",
    [
        (k_support_norm, 1, ()),
        (dual_k_support_norm, 1, ()),
        (prox_squared_k_support_vector, 1, (0.9,)),
        (spectral_k_support_norm, 2, ()),
        (dual_spectral_k_support_norm, 2, ()),
        (prox_squared_k_support, 2, (0.9,)),
    ],
)
def test_batches_match_one_at_a_time(function, core_ndim, args):
    stack = np.random.default_rng(12).normal(size=(2, 3, 4, 5))
    core = stack.shape[stack.ndim - core_ndim :]
    for k in (1, 2, 4):
        single = np.array([function(item, k, *args) for item in stack.reshape((-1,) + core)])
        expected = single.reshape(stack.shape[: stack.ndim - core_ndim] + single.shape[1:])
        assert_allclose(function(stack, k, *args), expected, rtol=RTOL, atol=1e-14)


def test_single_inputs_give_floats():
    assert isinstance(k_support_norm([1.0, 2.0], 1), float)
    assert isinstance(spectral_k_support_norm([[1.0, 2.0]], 1), float)


def test_accepts_lists_and_torch_tensors():
    torch = pytest.importorskip("torch")
    A = np.random.default_rng(13).normal(size=(3, 4))
    t = torch.tensor(A, requires_grad=True)
    assert_allclose(spectral_k_support_norm(t, 2), spectral_k_support_norm(A.tolist(), 2), rtol=0)
    assert_allclose(prox_squared_k_support(t.float(), 2, 1.0), prox_squared_k_support(A, 2, 1.0), rtol=1e-6)
    assert_allclose(k_support_norm(torch.tensor([3, -4]), 1), 7.0, rtol=0)


# ------------------------------------------------------------------------ properties

matrices = arrays(
    np.float64,
    st.tuples(st.integers(1, 4), st.integers(1, 4)),
    elements=st.floats(-10, 10, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=50, deadline=None)
@given(A=matrices, k=st.integers(1, 5))
def test_property_between_frobenius_and_nuclear(A, k):
    value = spectral_k_support_norm(A, k)
    fro, nuc = l2(A), nuclear(A)
    atol = RTOL * max(nuc, 1e-300)
    assert value >= 0
    assert fro - atol <= value <= nuc + atol
    assert value <= spectral_k_support_norm(A, max(k - 1, 1)) + atol


@settings(max_examples=50, deadline=None)
@given(A=matrices, k=st.integers(1, 5))
def test_property_dual_norm_consistency(A, k):
    value, dual = spectral_k_support_norm(A, k), dual_spectral_k_support_norm(A, k)
    fro = l2(A)
    atol = RTOL * max(fro, 1e-300)
    assert np.linalg.norm(A, 2) - atol <= dual <= fro + atol
    if fro > 0:  # <A, A> <= ||A|| ||A||^*, with equality when k >= rank
        ratio = (value / fro) * (dual / fro)
        assert ratio >= 1 - RTOL
        if k >= min(A.shape):
            assert_allclose(ratio, 1.0, rtol=RTOL)


@settings(max_examples=50, deadline=None)
@given(w=arrays(np.float64, st.integers(1, 6), elements=st.floats(-10, 10)), k=st.integers(1, 7),
       c=st.floats(0, 10))
def test_property_vector_prox_and_norms(w, k, c):
    value, dual = k_support_norm(w, k), dual_k_support_norm(w, k)
    l1, euclid = np.abs(w).sum(), l2(w)
    atol = RTOL * max(l1, 1e-300)
    assert euclid - atol <= value <= l1 + atol
    assert np.abs(w).max() - atol <= dual <= euclid + atol
    x = prox_squared_k_support_vector(w, k, c)
    assert np.all(np.abs(x) <= np.abs(w) * (1 + RTOL)) and np.all(x * w >= 0)
    if c >= 1e-3 and l1 > 0:  # (w - x) / c is a subgradient of 1/2||.||^2 at x; unit scale
        w = w / np.abs(w).max()
        x = prox_squared_k_support_vector(w, k, c)
        g, norm_x = (w - x) / c, k_support_norm(x, k)
        assert_allclose(x @ g, norm_x**2, rtol=1e-9, atol=1e-9)
        assert_allclose(dual_k_support_norm(g, k), norm_x, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------- bad inputs

BAD_CALLS = [
    ("k", lambda: k_support_norm([1.0, 2.0], 0)),
    ("k", lambda: spectral_k_support_norm(np.eye(2), 1.5)),
    ("k", lambda: dual_k_support_norm([1.0, 2.0], True)),
    ("k", lambda: prox_squared_k_support(np.eye(2), -2, 1.0)),
    ("c", lambda: prox_squared_k_support_vector([1.0, 2.0], 1, -1.0)),
    ("c", lambda: prox_squared_k_support(np.eye(2), 1, float("nan"))),
    ("c", lambda: prox_squared_k_support(np.eye(2), 1, "1")),
    ("w", lambda: k_support_norm([1.0, np.nan], 1)),
    ("w", lambda: prox_squared_k_support_vector([np.inf, 1.0], 1, 1.0)),
    ("w", lambda: k_support_norm(3.0, 1)),
    ("w", lambda: dual_k_support_norm(["a", "b"], 1)),
    ("w", lambda: k_support_norm([[1.0], [1.0, 2.0]], 1)),
    ("A", lambda: spectral_k_support_norm([1.0, 2.0], 1)),
    ("A", lambda: dual_spectral_k_support_norm(np.zeros((3, 0)), 1)),
    ("A", lambda: prox_squared_k_support([[1.0, np.nan]], 1, 1.0)),
]


@pytest.mark.parametrize("name, call", BAD_CALLS)
def test_bad_inputs_name_the_parameter(name, call):
    with pytest.raises((ValueError, TypeError), match=rf"^{name} must"):
        call()
