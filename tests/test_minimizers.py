"""Global minimizers: closed form and convex solver against descent on the factorized loss.

The descent is independent of the closed forms and the convex solver: the expected loss is the
plain loss plus the library's closed-form penalty on torch tensors (itself checked against
enumeration), its gradient comes from autograd, and scipy's L-BFGS runs in float64 over (U, V) from several random starts.
"""


import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy.linalg import sqrtm
from scipy.optimize import minimize

import pnd_theory as pt
from pnd_theory.regularizers.minimizers import MinimizerResult, global_minimizer
from pnd_theory.regularizers.norms import k_support_norm, prox_squared_k_support_vector

from conftest import STRATEGIES, make_problem
from test_induced import torch_penalty


# L-BFGS stops on a relative objective change of ~1e-15; the objective is then known to far
# better than 1e-8.  Near a minimum the objective is quadratic in A, so the product (and its
# singular values) is only known to about the square root of that: 1e-5 leaves room.
OBJ_RTOL = 1e-8
SV_ATOL = 1e-5


def lam(p):
    return p / (1 - p)


def correlated_data(rng, n_in=3, n_out=3, n_samples=10, correlation=0.6, noise=0.5):
    X = (np.eye(n_in) + correlation * rng.normal(size=(n_in, n_in))) @ rng.normal(size=(n_in, n_samples))
    Y = rng.normal(size=(n_out, n_in)) @ X + noise * rng.normal(size=(n_out, n_samples))
    return X, Y


def descend(strategy, X, Y, width, starts=3, seed=0):
    """Local minima of L + R over (U, V) from random starts: list of (value, product)."""
    rng = np.random.default_rng(seed)
    n_in, N = X.shape
    n_out = Y.shape[0]
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
    St = Xt @ Xt.T / N
    size = n_out * width

    def fun(x):
        z = torch.tensor(x, requires_grad=True)
        U, V = z[:size].reshape(n_out, width), z[size:].reshape(n_in, width)
        residual = Yt - U @ V.T @ Xt
        value = (residual * residual).sum() / N + torch_penalty(strategy, U, V, St)
        value.backward()
        return value.item(), z.grad.numpy().copy()

    out = []
    for _ in range(starts):
        x0 = 0.5 * rng.normal(size=(n_out + n_in) * width)
        sol = minimize(fun, x0, jac=True, method="L-BFGS-B",
                       options={"maxiter": 20000, "maxcor": 30, "ftol": 1e-16, "gtol": 1e-12})
        U, V = sol.x[:size].reshape(n_out, width), sol.x[size:].reshape(n_in, width)
        out.append((sol.fun, U @ V.T))
    return out


def assert_descent_reaches(result, runs, projector=None):
    """Every descent stays above the claimed minimum and the best one reaches it.

    ``projector``: compare the products on this subspace only (a singular S leaves the part
    of A outside its range free when the penalty cannot see it either).
    """
    values = np.array([v for v, _ in runs])
    assert np.all(values >= result.objective * (1 - 1e-10)), "descent went below the claimed global minimum"
    best, product = min(runs, key=lambda run: run[0])
    assert_allclose(best, result.objective, rtol=OBJ_RTOL)
    expected = result.product if projector is None else result.product @ projector
    product = product if projector is None else product @ projector
    sv = np.linalg.svd(product, compute_uv=False)
    assert_allclose(sv, np.linalg.svd(expected, compute_uv=False), atol=SV_ATOL * result.singular_values[0])


DESCENT_CASES = [
    (pt.Dropout(0.3), 3, "closed_form"),
    (pt.Dropout(0.5), 2, "closed_form"),  # width below the rank of the least-squares fit
    (pt.DropBlock(0.4, 2), 6, "closed_form"),
    (pt.DropBlock(0.4, 3), 6, "closed_form"),
    (pt.NodeDropout([0.05, 0.3, 0.6, 0.2]), 4, "closed_form"),
    (pt.NodeDropout([0.0, 0.4, 0.7]), 3, "closed_form"),
    (pt.PerNodeDrop(0.3, "input"), 3, "convex"),
    (pt.PerNodeDrop(0.2, "both", stir="gaussian"), 3, "convex"),
]


@pytest.mark.parametrize("strategy,width,method", DESCENT_CASES,
                         ids=lambda c: repr(c) if not isinstance(c, (int, str)) else str(c))
def test_descent_on_factors_reaches_the_global_minimum(strategy, width, method):
    rng = np.random.default_rng(21)
    X, Y = correlated_data(rng)
    result = global_minimizer(strategy, X, Y, width)
    assert result.method == method
    assert_descent_reaches(result, descend(strategy, X, Y, width))
    U, V = result.factors()
    assert_allclose(U @ V.T, result.product, atol=1e-12 * np.abs(result.product).max() * width)
    assert_allclose(pt.expected_loss(strategy, U, V, X, Y), result.objective, rtol=1e-11)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_objective_is_attained_and_below_every_factorization(strategy, rng):
    U, V, X, Y = make_problem(rng, n_samples=8)
    if isinstance(strategy, pt.HiddenNoise):  # a general covariance: no closed form
        with pytest.raises(ValueError, match="method='numeric'"):
            global_minimizer(strategy, X, Y, 4)
        return
    result = global_minimizer(strategy, X, Y, 4)
    U_star, V_star = result.factors()
    assert_allclose(pt.expected_loss(strategy, U_star, V_star, X, Y), result.objective, rtol=1e-11)
    for _ in range(20):
        U, V = rng.normal(size=U.shape), rng.normal(size=V.shape)
        for scale in (0.1, 1.0):
            assert pt.expected_loss(strategy, scale * U, scale * V, X, Y) >= result.objective * (1 - 1e-12)
        # perturbations of the optimum: a strict local check of minimality
        eps = 1e-3
        assert pt.expected_loss(strategy, U_star + eps * U, V_star + eps * V, X, Y) >= result.objective * (1 - 1e-12)


def test_nodedropout_minimizer_where_the_cauchy_schwarz_shares_are_not_attainable():
    rng = np.random.default_rng(22)
    X, Y = correlated_data(rng, noise=0.1)
    strategy = pt.NodeDropout([0.01, 0.6, 0.6])
    result = global_minimizer(strategy, X, Y, 3)
    U, V = result.factors()
    beta = np.linalg.norm(U, axis=0) * np.linalg.norm(np.real(sqrtm(result.second_moment)) @ V, axis=0)
    w = np.array([lam(p) for p in strategy.p])
    assert not np.allclose(beta / beta.sum(), (1 / w) / np.sum(1 / w), rtol=1e-3)  # the constraint binds
    assert_descent_reaches(result, descend(strategy, X, Y, 3))


def strong_signal_data(seed):
    """4 x 4 data whose fit keeps all four directions under DropBlock shrinkage."""
    rng = np.random.default_rng(seed)
    X = (np.eye(4) + 0.3 * rng.normal(size=(4, 4))) @ rng.normal(size=(4, 12))
    W = np.diag([3.0, 2.5, 2.0, 1.5]) @ np.linalg.qr(rng.normal(size=(4, 4)))[0]
    return X, W @ X + 0.1 * rng.normal(size=(4, 12))


@pytest.mark.parametrize("seed", [24, 26])
def test_dropblock_with_too_few_blocks_falls_short_of_the_formula(seed):
    X, Y = strong_signal_data(seed)
    strategy = pt.DropBlock(0.5, 2)  # width 4: G = 2 blocks, the formula's minimizer has rank > 2
    with pytest.raises(ValueError, match=r"more than the number of blocks G = 2.*method='numeric'"):
        global_minimizer(strategy, X, Y, 4)
    # the value the formula would give: minimize ||M' - B||^2 + (lam b / d) ||B||_(b)^2
    N = X.shape[1]
    S = X @ X.T / N
    Mp = Y @ X.T / N @ np.linalg.inv(np.real(sqrtm(S)))
    s = np.linalg.svd(Mp, compute_uv=False)
    c = lam(0.5) * 2 / 4
    q = prox_squared_k_support_vector(s, 2, c)
    assert np.count_nonzero(q > 1e-12) > 2
    formula = float((Y * Y).sum() / N - (s**2).sum() + ((s - q) ** 2).sum() + c * k_support_norm(q, 2) ** 2)
    runs = descend(strategy, X, Y, 4, starts=4)
    best = min(v for v, _ in runs)
    # strictly larger (measured: 7e-5 and 1.4e-3 relative), far beyond the L-BFGS accuracy
    assert best > formula * (1 + 1e-5)
    numeric = global_minimizer(strategy, X, Y, 4, method="numeric")
    assert numeric.method == "numeric"
    assert_allclose(numeric.objective, best, rtol=1e-7)
    U, V = numeric.factors()
    assert_allclose(pt.expected_loss(strategy, U, V, X, Y), numeric.objective, rtol=1e-12)


def test_dropblock_below_the_rank_condition_but_certified():
    # G = 2 < rank 3 = rank(A*), b = 2: the bound is still attained (an equal split of the
    # 2-support decomposition over 2 blocks exists), and descent agrees
    rng = np.random.default_rng(23)
    X, Y = correlated_data(rng, n_in=4, n_out=4, n_samples=12, noise=0.2)
    strategy = pt.DropBlock(0.5, 2)
    result = global_minimizer(strategy, X, Y, 4)
    assert (result.method, result.rank) == ("closed_form", 3)
    assert_descent_reaches(result, descend(strategy, X, Y, 4))
    U, V = result.factors()
    assert_allclose(pt.expected_loss(strategy, U, V, X, Y), result.objective, rtol=1e-11)


def test_whitened_dropout_is_the_soft_threshold_of_the_global_minimizer():
    rng = np.random.default_rng(24)
    n_in, N = 4, 8
    X = np.sqrt(N) * np.linalg.qr(rng.normal(size=(N, n_in)))[0].T  # X X^T / N = I
    Y = rng.normal(size=(3, n_in)) @ X + 0.3 * rng.normal(size=(3, N))
    p, d = 0.4, 5
    result = global_minimizer(pt.Dropout(p), X, Y, d)
    s = np.linalg.svd(Y @ X.T / N, compute_uv=False)
    lam_ = lam(p)
    rho = max(j for j in range(1, s.size + 1) if s[j - 1] > lam_ * s[:j].sum() / (d + lam_ * j))
    tau = lam_ / (d + lam_ * rho) * s[:rho].sum()
    assert_allclose(result.singular_values, np.maximum(s - tau, 0), atol=1e-13)
    # input-layer noise is the same as Dropout on whitened data (input-layer weight noise)
    same = global_minimizer(pt.PerNodeDrop(p, "input"), X, Y, d)
    assert same.method == "closed_form"
    assert_allclose(same.product, result.product, atol=1e-12)
    assert_allclose(same.objective, result.objective, rtol=1e-12)


def test_zero_drop_probability_is_least_squares_and_reduced_rank_regression():
    rng = np.random.default_rng(25)
    X, Y = correlated_data(rng, n_in=4, n_out=3, n_samples=9)
    ols = np.linalg.lstsq(X.T, Y.T, rcond=None)[0].T
    full = global_minimizer(pt.Dropout(0.0), X, Y, 3)
    assert_allclose(full.product, ols, atol=1e-11 * np.abs(ols).max())
    assert full.penalty == 0.0
    assert_allclose(full.objective, pt.plain_loss(*full.factors(), X, Y), rtol=1e-12)
    # width 1 < rank: the rank-1 reduced-rank regression, P_1 P_1^T M S^-1
    S = X @ X.T / X.shape[1]
    root = np.real(sqrtm(S))
    P = np.linalg.svd(Y @ X.T / X.shape[1] @ np.linalg.inv(root))[0][:, :1]
    rrr = P @ P.T @ ols
    reduced = global_minimizer(pt.NodeDropout([0.0]), X, Y, 1)
    assert_allclose(reduced.product, rrr, atol=1e-11 * np.abs(rrr).max())
    assert_descent_reaches(reduced, descend(pt.Dropout(0.0), X, Y, 1))


@pytest.mark.parametrize("strategy,width", [
    (pt.Dropout(0.3), 3),
    (pt.NodeDropout([0.1, 0.5, 0.3]), 3),
    (pt.DropBlock(0.3, 2), 4),
    (pt.DropConnect(0.3, "input"), 3),
], ids=repr)
def test_singular_second_moment(strategy, width):
    rng = np.random.default_rng(26)
    X = rng.normal(size=(4, 2))  # N = 2 < n_in = 4
    Y = rng.normal(size=(3, 2))
    result = global_minimizer(strategy, X, Y, width)
    projector = np.linalg.pinv(X.T) @ X.T  # onto the range of S
    if result.method == "closed_form":
        # L and R see A only through A S^(1/2): the part outside the range of S is free, and
        # the minimizer returned is the one without it
        assert_allclose(result.product @ projector, result.product, atol=1e-12)
        assert_descent_reaches(result, descend(strategy, X, Y, width), projector)
    else:  # input-layer noise sees diag(S), which is invertible: the minimizer is unique
        assert_descent_reaches(result, descend(strategy, X, Y, width))
    U, V = result.factors()
    assert_allclose(pt.expected_loss(strategy, U, V, X, Y), result.objective, rtol=1e-11)


def test_rank_deficient_target():
    rng = np.random.default_rng(27)
    X, _ = correlated_data(rng, n_in=4)
    Y = np.outer(rng.normal(size=3), rng.normal(size=4)) @ X  # noise-free, rank one
    for strategy in (pt.Dropout(0.3), pt.NodeDropout([0.2, 0.3, 0.5]), pt.PerNodeDrop(0.3, "input")):
        result = global_minimizer(strategy, X, Y, 3)
        assert result.rank == 1
        assert_descent_reaches(result, descend(strategy, X, Y, 3, starts=2))


def test_convex_solver_agrees_with_the_closed_form():
    rng = np.random.default_rng(28)
    X, Y = correlated_data(rng, n_in=4)
    for strategy in (pt.Dropout(0.3), pt.DropConnect(0.4, "output")):
        closed = global_minimizer(strategy, X, Y, 3)
        convex = global_minimizer(strategy, X, Y, 3, method="convex")
        assert (closed.method, convex.method) == ("closed_form", "convex")
        assert convex.residual <= 1e-12 * max(1.0, 2 * np.linalg.norm(Y @ X.T / X.shape[1])) * 10
        assert_allclose(convex.objective, closed.objective, rtol=1e-12)
        assert_allclose(convex.product, closed.product, atol=1e-9 * np.abs(closed.product).max())


def test_result_summary_and_fields():
    rng = np.random.default_rng(29)
    X, Y = correlated_data(rng)
    result = global_minimizer(pt.Dropout(0.3), X, Y, 3)
    assert isinstance(result, MinimizerResult)
    assert result.product.shape == (3, 3) and result.singular_values.shape == (3,)
    assert_allclose(result.objective, result.data_fit + result.penalty, rtol=1e-15)
    text = result.summary()
    assert "Dropout(p=0.3)" in text and "closed_form" in text and f"{result.objective:.12g}" in text
    assert str(result) == text
    with pytest.raises(AttributeError):
        result.objective = 0.0
    tensors = global_minimizer(pt.Dropout(0.3), torch.as_tensor(X), torch.as_tensor(Y), 3)
    assert_allclose(tensors.product, result.product, atol=1e-14)


def test_refusals_and_bad_inputs_name_the_problem():
    rng = np.random.default_rng(30)
    X, Y = correlated_data(rng)
    with pytest.raises(ValueError, match="Q is not proportional to S.*method='convex'"):
        global_minimizer(pt.PerNodeDrop(0.3, "input"), X, Y, 3, method="closed_form")
    B = rng.normal(size=(3, 3))
    with pytest.raises(ValueError, match="neither diagonal nor block.*method='numeric'"):
        global_minimizer(pt.HiddenNoise(B @ B.T), X, Y, 3)
    with pytest.raises(ValueError, match="equal unit weights"):
        global_minimizer(pt.DropBlock(0.3, 3), X, Y, 3, method="convex")
    with pytest.raises(TypeError, match="strategy"):
        global_minimizer("dropout", X, Y, 3)
    with pytest.raises(ValueError, match="same number of samples"):
        global_minimizer(pt.Dropout(0.3), X, Y[:, :-1], 3)
    with pytest.raises(ValueError, match="X must be a 2-D"):
        global_minimizer(pt.Dropout(0.3), X[0], Y, 3)
    with pytest.raises(ValueError, match="Y has non-finite"):
        global_minimizer(pt.Dropout(0.3), X, np.full_like(Y, np.inf), 3)
    with pytest.raises(TypeError, match="width"):
        global_minimizer(pt.Dropout(0.3), X, Y, "3")
    with pytest.raises(ValueError, match="width"):
        global_minimizer(pt.Dropout(0.3), X, Y, -1)
    with pytest.raises(ValueError, match="method must be one of"):
        global_minimizer(pt.Dropout(0.3), X, Y, 3, method="sgd")
    with pytest.raises(ValueError, match="tol must be"):
        global_minimizer(pt.Dropout(0.3), X, Y, 3, tol=0)
    with pytest.raises(ValueError, match="width must equal len"):
        global_minimizer(pt.NodeDropout([0.1, 0.2]), X, Y, 3)
