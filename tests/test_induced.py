"""Induced regularizer Theta(A) and balanced factors: closed forms against direct minimization.

The direct minimizations here are independent of the closed forms: the penalty is the
library's one closed form evaluated on torch tensors (itself checked against enumeration over
masks), its gradient comes from autograd, and every factorization of ``A`` is reached exactly as ``U = U0 G``, ``V = V0 G^{-T}`` with
``U0 V0^T = A`` and an invertible mixing ``G`` (scipy L-BFGS, float64, several random starts).
"""

from itertools import combinations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy.linalg import sqrtm
from scipy.optimize import minimize

import pnd_theory as pt
from pnd_theory.regularizers.induced import (
    balanced_factors,
    induced_penalty,
    schur_horn_rotation,
    weighted_split,
)
from pnd_theory.regularizers.norms import spectral_k_support_norm

from conftest import STRATEGIES


RTOL = 1e-11  # closed form against the penalty at explicit factors: a few SVDs and rotations
LBFGS_RTOL = 1e-8  # L-BFGS stops on a relative objective change of ~1e-15; 1e-8 leaves room


def lam(p):
    return p / (1 - p)


def correlated_second_moment(rng, n_in, n_samples=12, correlation=0.6):
    X = (np.eye(n_in) + correlation * rng.normal(size=(n_in, n_in))) @ rng.normal(size=(n_in, n_samples))
    return X @ X.T / n_samples


def random_matrix(rng, m, n, rank):
    return rng.normal(size=(m, rank)) @ rng.normal(size=(rank, n))


# --------------------------------------------------------------------------- independent penalty

def torch_penalty(strategy, U, V, S):
    """R(U, V) as a differentiable torch scalar (the package's one closed form, torch backend)."""
    return pt.expected_penalty(strategy, U, V, S)


def direct_minimum(strategy, A, width, S, starts=4, seed=0):
    """min R(U0 G, V0 G^-T) over invertible G by L-BFGS; the smallest value over the starts."""
    rng = np.random.default_rng(seed)
    P, s, Qt = np.linalg.svd(A, full_matrices=False)
    r = int(np.sum(s > 1e-10 * s[0]))
    St = torch.as_tensor(S)
    values = []
    for start in range(starts):
        U0 = np.zeros((A.shape[0], width))
        V0 = np.zeros((A.shape[1], width))
        U0[:, :r] = P[:, :r] * np.sqrt(s[:r])
        V0[:, :r] = Qt[:r].T * np.sqrt(s[:r])
        if start % 2 == 1 and width > r:  # directions outside col(A) that cancel in U V^T
            U0[:, r:] = rng.normal(size=(A.shape[0], width - r))
        U0t, V0t = torch.as_tensor(U0), torch.as_tensor(V0)

        def fun(g):
            G = torch.tensor(g.reshape(width, width), requires_grad=True)
            value = torch_penalty(strategy, U0t @ G, V0t @ torch.linalg.inv(G).T, St)
            value.backward()
            return value.item(), G.grad.numpy().ravel().copy()

        G0 = np.linalg.qr(rng.normal(size=(width, width)))[0]
        sol = minimize(fun, G0.ravel(), jac=True, method="L-BFGS-B",
                       options={"maxiter": 5000, "ftol": 1e-16, "gtol": 1e-12})
        values.append(sol.fun)
    return min(values)


def test_torch_penalty_equals_enumeration():
    """The torch backend of the closed form (a differentiable tensor) against exact enumeration
    over masks minus the plain loss, on data whose second moment is S."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 5)) + 0.8 * rng.normal(size=(3, 1))
    Y = rng.normal(size=(2, 5))
    S = X @ X.T / X.shape[1]
    for strategy in STRATEGIES:
        U, V = rng.normal(size=(2, 4)), rng.normal(size=(3, 4))
        expected = pt.exact_expected_loss(strategy, U, V, X, Y) - pt.plain_loss(U, V, X, Y)
        got = torch_penalty(strategy, torch.as_tensor(U), torch.as_tensor(V), torch.as_tensor(S))
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
        assert_allclose(got.item(), expected, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_penalty_gradient_matches_finite_differences(strategy):
    """The autograd gradient of the closed form (used by the numeric minimizations) against
    central differences of the numpy value: truncation O(h^2) plus rounding O(eps / h)."""
    from pnd_theory.routes.penalty import penalty_and_gradient

    rng = np.random.default_rng(1)
    S = correlated_second_moment(rng, 3)
    U, V = rng.normal(size=(2, 4)), rng.normal(size=(3, 4))
    value, gU, gV = penalty_and_gradient(strategy.law(3, 4, 2), U, V, S)
    h = 1e-5
    for X, g, which in ((U, gU, "U"), (V, gV, "V")):
        fd = np.zeros_like(X)
        for idx in np.ndindex(X.shape):
            E = np.zeros_like(X)
            E[idx] = h
            args = (U + E, V) if which == "U" else (U, V + E)
            args_m = (U - E, V) if which == "U" else (U, V - E)
            fd[idx] = (pt.expected_penalty(strategy, *args, S) - pt.expected_penalty(strategy, *args_m, S)) / (2 * h)
        assert_allclose(g, fd, rtol=1e-6, atol=1e-6 * max(1.0, abs(value)))


# --------------------------------------------------------------------------- lower bound, attained

BOUND_CASES = [
    (pt.Dropout(0.3), 4, 2),
    (pt.GaussianDropout(0.4), 3, 3),
    (pt.DropBlock(0.35, 2), 6, 3),
    (pt.DropBlock(0.35, 3), 6, 2),
    (pt.DropBlock(0.35, 2), 4, 2),
    (pt.DropBlock(0.35, 3), 3, 2),  # one block of size b >= rank: Theta = lam ||A S^1/2||_F^2
    (pt.NodeDropout([0.05, 0.3, 0.5, 0.7]), 4, 3),
    (pt.NodeDropout([0.0, 0.3, 0.5, 0.7]), 4, 3),
    (pt.DropConnect(0.3, "input"), 4, 3),
    (pt.DropConnect(0.3, "output"), 3, 2),
    (pt.PerNodeDrop(0.2, "both"), 4, 3),
    (pt.PerNodeDrop(0.3, "input", stir="gaussian"), 4, 2),
    (pt.HiddenNoise(0.4 * np.eye(4)), 4, 3),
    (pt.HiddenNoise(0.4 * np.kron(np.eye(2), np.ones((2, 2)))), 4, 2),
]


@pytest.mark.parametrize("whitened", [True, False], ids=["whitened", "correlated"])
@pytest.mark.parametrize("strategy,width,rank", BOUND_CASES, ids=lambda c: repr(c) if not isinstance(c, int) else str(c))
def test_theta_is_a_lower_bound_attained_by_balanced_factors(strategy, width, rank, whitened):
    rng = np.random.default_rng(7)
    n_out, n_in = 3, 4
    S = np.eye(n_in) if whitened else correlated_second_moment(rng, n_in)
    A = random_matrix(rng, n_out, n_in, rank)
    theta = induced_penalty(strategy, A, width, S)
    assert theta > 0
    for _ in range(5):  # random factorizations of A: a random mixing of a balanced one
        U0, V0 = balanced_factors(strategy, A, width, S)
        G = rng.normal(size=(width, width))
        U, V = U0 @ G, V0 @ np.linalg.inv(G).T
        assert_allclose(U @ V.T, A, atol=1e-9 * np.abs(A).max())
        assert pt.expected_penalty(strategy, U, V, S) >= theta * (1 - 1e-12)
    U, V = balanced_factors(strategy, A, width, S)
    assert U.shape == (n_out, width) and V.shape == (n_in, width)
    assert_allclose(U @ V.T, A, atol=1e-12 * np.abs(A).max() * width)
    assert_allclose(pt.expected_penalty(strategy, U, V, S), theta, rtol=RTOL)


@pytest.mark.parametrize("block_size,width", [(2, 8), (3, 12)])
def test_dropblock_with_rank_above_block_size(block_size, width):
    # b < rank <= G: the tail of the b-support decomposition is split over the blocks
    rng = np.random.default_rng(4)
    S = correlated_second_moment(rng, 5)
    # B = A S^1/2 with close singular values: the b-support norm averages them all (no head),
    # so each block carries a rank-b piece of the tail (the Gauss-Newton split, not Schur-Horn)
    P = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    Qt = np.linalg.qr(rng.normal(size=(5, 4)))[0].T
    B = P @ np.diag([1.0, 0.9, 0.8, 0.7]) @ Qt
    A = B @ np.linalg.inv(np.real(sqrtm(S)))
    strategy = pt.DropBlock(0.3, block_size)
    theta = induced_penalty(strategy, A, width, S)
    U, V = balanced_factors(strategy, A, width, S)
    assert_allclose(U @ V.T, A, atol=1e-11 * np.abs(A).max())
    assert_allclose(pt.expected_penalty(strategy, U, V, S), theta, rtol=1e-10)
    G = rng.normal(size=(width, width))
    assert pt.expected_penalty(strategy, U @ G, V @ np.linalg.inv(G).T, S) > theta


def test_balanced_factors_are_equalized():
    rng = np.random.default_rng(2)
    S = correlated_second_moment(rng, 4)
    root = np.real(sqrtm(S))
    A = random_matrix(rng, 3, 4, 2)
    U, V = balanced_factors(pt.Dropout(0.4), A, 5, S)
    products = np.linalg.norm(U, axis=0) * np.linalg.norm(root @ V, axis=0)
    assert_allclose(products, np.full(5, np.linalg.svd(A @ root, compute_uv=False).sum() / 5), rtol=1e-10)
    U, V = balanced_factors(pt.DropBlock(0.4, 2), random_matrix(rng, 3, 4, 3), 6, S)
    blocks = [np.linalg.norm(U[:, g:g + 2] @ V[:, g:g + 2].T @ root) for g in (0, 2, 4)]
    assert_allclose(blocks, np.full(3, blocks[0]), rtol=1e-10)


# --------------------------------------------------------------------------- closed forms of the induced regularizer

def test_dropout_and_input_layer_formulas_of_the_induced_regularizer():
    rng = np.random.default_rng(3)
    S = correlated_second_moment(rng, 4)
    A = random_matrix(rng, 3, 4, 3)
    nuc = lambda M: np.linalg.svd(M, compute_uv=False).sum()
    D = np.diag(np.diag(S))
    assert_allclose(induced_penalty(pt.Dropout(0.3), A, 5, S), lam(0.3) / 5 * nuc(A @ np.real(sqrtm(S))) ** 2, rtol=RTOL)
    assert_allclose(induced_penalty(pt.PerNodeDrop(0.3, "input"), A, 5, S), lam(0.3) / 5 * nuc(A @ np.sqrt(D)) ** 2,
                    rtol=RTOL)
    # both layers: Q = lam_U S + lam_V (1 + lam_U) D
    Q = lam(0.2) * S + lam(0.2) * (1 + lam(0.2)) * D
    assert_allclose(induced_penalty(pt.DropConnect(0.2, "both"), A, 4, S), nuc(A @ np.real(sqrtm(Q))) ** 2 / 4,
                    rtol=RTOL)
    # DropBlock: (lam b / d) ||A S^1/2||_(b)^2
    value = induced_penalty(pt.DropBlock(0.3, 2), A, 6, S)
    assert_allclose(value, lam(0.3) * 2 / 6 * spectral_k_support_norm(A @ np.real(sqrtm(S)), 2) ** 2,
                    rtol=RTOL)


CLOSED_FORM_CASES = [
    (pt.Dropout(0.3), 3, 2),
    (pt.DropBlock(0.4, 2), 6, 3),  # G = 3 >= rank 3
    (pt.DropBlock(0.4, 3), 6, 2),  # G = 2 >= rank 2, b = 3 > rank
    (pt.DropBlock(0.4, 2), 4, 2),
    (pt.NodeDropout([0.1, 0.4, 0.6]), 3, 2),
    (pt.PerNodeDrop(0.3, "input"), 3, 2),
    (pt.PerNodeDrop(0.3, "both"), 3, 3),
]


@pytest.mark.parametrize("strategy,width,rank", CLOSED_FORM_CASES, ids=lambda c: repr(c) if not isinstance(c, int) else str(c))
def test_closed_form_equals_direct_minimization(strategy, width, rank):
    rng = np.random.default_rng(11)
    S = correlated_second_moment(rng, 3)
    A = random_matrix(rng, 3, 3, rank)
    theta = induced_penalty(strategy, A, width, S)
    direct = direct_minimum(strategy, A, width, S)
    assert direct >= theta * (1 - 1e-10)
    assert_allclose(direct, theta, rtol=LBFGS_RTOL)
    assert_allclose(induced_penalty(strategy, A, width, S, method="numeric"), theta, rtol=LBFGS_RTOL)


# --------------------------------------------------------------------------- NodeDropout

def test_nodedropout_cauchy_schwarz_value_when_shares_are_majorized():
    rng = np.random.default_rng(5)
    p = [0.3, 0.4, 0.5]
    A = random_matrix(rng, 3, 3, 3) + 3 * np.eye(3)  # well-conditioned: s close together
    w = np.array([lam(q) for q in p])
    s = np.linalg.svd(A, compute_uv=False)
    shares = s.sum() / w / np.sum(1 / w)
    assert np.all(np.cumsum(np.sort(shares)[::-1]) <= np.cumsum(s) + 1e-12)  # the condition holds
    theta = induced_penalty(pt.NodeDropout(p), A, 3)
    assert_allclose(theta, s.sum() ** 2 / np.sum(1 / w), rtol=RTOL)
    assert_allclose(direct_minimum(pt.NodeDropout(p), A, 3, np.eye(3)), theta, rtol=LBFGS_RTOL)


def test_nodedropout_when_majorization_fails():
    # unit 1 almost noise-free wants a share 1.1 * 100/101 > s_1 = 1: it can carry only s_1
    A = np.diag([1.0, 0.1])
    strategy = pt.NodeDropout([0.01, 0.5])
    w = np.array([lam(0.01), lam(0.5)])
    theta = induced_penalty(strategy, A, 2)
    bound = 1.1**2 / np.sum(1 / w)
    assert_allclose(theta, w[0] * 1.0**2 + w[1] * 0.1**2, rtol=RTOL)
    assert theta > 1.5 * bound  # strictly above the Cauchy-Schwarz value
    assert_allclose(direct_minimum(strategy, A, 2, np.eye(2)), theta, rtol=LBFGS_RTOL)
    # a 3-unit case where the solution splits into groups, on correlated inputs
    rng = np.random.default_rng(6)
    S = correlated_second_moment(rng, 3)
    A = np.diag([3.0, 0.5, 0.2]) @ np.linalg.qr(rng.normal(size=(3, 3)))[0]
    strategy = pt.NodeDropout([0.02, 0.05, 0.6])
    theta = induced_penalty(strategy, A, 3, S)
    B = A @ np.real(sqrtm(S))
    w = np.array([lam(q) for q in strategy.p])
    assert theta > np.linalg.svd(B, compute_uv=False).sum() ** 2 / np.sum(1 / w) * (1 + 1e-3)
    assert_allclose(direct_minimum(strategy, A, 3, S), theta, rtol=LBFGS_RTOL)


def test_nodedropout_zero_rates_carry_the_top_singular_values_for_free():
    A = np.diag([2.0, 0.5, 0.0])
    strategy = pt.NodeDropout([0.0, 0.3, 0.6])
    w = np.array([0.0, lam(0.3), lam(0.6)])
    # unit 0 takes s_1 = 2; units 1 and 2 share s_2 = 0.5 in proportion to 1/w
    assert_allclose(induced_penalty(strategy, A, 3), 0.5**2 / (1 / w[1] + 1 / w[2]), rtol=RTOL)
    assert_allclose(direct_minimum(strategy, A, 3, np.eye(3)), 0.5**2 / (1 / w[1] + 1 / w[2]), rtol=LBFGS_RTOL)
    assert induced_penalty(strategy, np.diag([2.0, 0.0, 0.0]), 3) == 0.0
    U, V = balanced_factors(strategy, np.diag([2.0, 0.0, 0.0]), 3)
    assert_allclose(U @ V.T, np.diag([2.0, 0.0, 0.0]), atol=1e-14)
    assert pt.expected_penalty(strategy, U, V) == 0.0


def brute_force_split(s, w):
    """min sum w beta^2 over the permutahedron of s, with every subset constraint (SLSQP)."""
    d = len(s)
    cons = [{"type": "eq", "fun": lambda b: b.sum() - s.sum()}]
    for k in range(1, d):
        for T in combinations(range(d), k):
            cons.append({"type": "ineq", "fun": lambda b, T=list(T), k=k: s[:k].sum() - b[T].sum()})
    x0 = np.full(d, s.sum() / d)
    sol = minimize(lambda b: (w * b * b).sum(), x0, jac=lambda b: 2 * w * b, constraints=cons, method="SLSQP",
                   options={"ftol": 1e-15, "maxiter": 500})
    return sol.fun


def test_weighted_split_against_a_generic_solver():
    rng = np.random.default_rng(8)
    for _ in range(25):
        d = int(rng.integers(2, 6))
        r = int(rng.integers(1, d + 1))
        s = np.concatenate([np.sort(rng.exponential(size=r))[::-1], np.zeros(d - r)])
        w = rng.exponential(size=d) ** 2
        beta, value = weighted_split(s, w)
        assert_allclose(beta.sum(), s.sum(), rtol=1e-12)
        assert np.all(np.cumsum(np.sort(beta)[::-1]) <= np.cumsum(s) * (1 + 1e-12) + 1e-15)
        assert_allclose(value, brute_force_split(s, w), rtol=1e-7)


def test_schur_horn_rotation():
    rng = np.random.default_rng(9)
    for d in (1, 2, 5, 8):
        lam_ = rng.exponential(size=d) * (rng.random(d) > 0.3)
        t = rng.dirichlet(np.ones(d)) * lam_.sum()
        if not np.all(np.cumsum(np.sort(t)[::-1]) <= np.cumsum(np.sort(lam_)[::-1]) + 1e-12):
            t = np.full(d, lam_.sum() / d)
        O = schur_horn_rotation(lam_, t)
        assert_allclose(O.T @ O, np.eye(d), atol=1e-13)
        assert_allclose(np.diag(O.T @ np.diag(lam_) @ O), t, atol=1e-12 * max(1, lam_.sum()))
    with pytest.raises(ValueError, match="majorized"):
        schur_horn_rotation([1.0, 0.0], [1.5, -0.5])


# --------------------------------------------------------------------------- where the closed form stops

def test_dropblock_with_too_few_blocks_is_refused_and_the_minimum_is_larger():
    rng = np.random.default_rng(10)
    strategy = pt.DropBlock(0.5, 2)  # d = 4: G = 2 blocks of 2 on a rank-4 target
    A = random_matrix(rng, 4, 4, 4)
    with pytest.raises(ValueError, match=r"G = width / block_size = 2.*method='numeric'"):
        induced_penalty(strategy, A, 4)
    with pytest.raises(ValueError, match="number of blocks"):
        balanced_factors(strategy, A, 4)
    formula = lam(0.5) * 2 / 4 * spectral_k_support_norm(A, 2) ** 2
    direct = direct_minimum(strategy, A, 4, np.eye(4))
    numeric = induced_penalty(strategy, A, 4, method="numeric")
    assert_allclose(numeric, direct, rtol=1e-7)
    assert direct > formula * (1 + 1e-3)  # a real gap, far above the L-BFGS accuracy


def test_dropblock_below_the_rank_condition_with_a_certificate():
    # rank 3 > G = 2 = b.  With s = (2, 0.8, 0.7) the 2-support norm keeps s_1 whole and
    # averages the rank-2 tail, which two rank-1 pieces can share equally: attained.
    # With s = (1, 0.8, 0.7) it averages all three, and two rank-2 projections of R^3 cannot
    # sum to the required diagonal (their complements would be two lines spanning R^3).
    rng = np.random.default_rng(16)
    P = np.linalg.qr(rng.normal(size=(4, 3)))[0]
    Qt = np.linalg.qr(rng.normal(size=(4, 3)))[0].T
    strategy = pt.DropBlock(0.4, 2)
    with pytest.raises(ValueError, match="none was found"):
        induced_penalty(strategy, P @ np.diag([1.0, 0.8, 0.7]) @ Qt, 4)
    A = P @ np.diag([2.0, 0.8, 0.7]) @ Qt
    theta = induced_penalty(strategy, A, 4)
    assert_allclose(theta, lam(0.4) * 2 / 4 * spectral_k_support_norm(A, 2) ** 2, rtol=RTOL)
    U, V = balanced_factors(strategy, A, 4)
    assert_allclose(U @ V.T, A, atol=1e-12)
    assert_allclose(pt.expected_penalty(strategy, U, V), theta, rtol=1e-10)
    assert_allclose(direct_minimum(strategy, A, 4, np.eye(4)), theta, rtol=LBFGS_RTOL)


def test_general_hidden_covariance_needs_the_numeric_method():
    rng = np.random.default_rng(12)
    B = rng.normal(size=(3, 3))
    strategy = pt.HiddenNoise(B @ B.T / 3)
    A = random_matrix(rng, 2, 3, 2)
    with pytest.raises(ValueError, match="method='numeric'"):
        induced_penalty(strategy, A, 3)
    with pytest.raises(ValueError, match="neither diagonal nor block"):
        induced_penalty(strategy, A, 3, method="closed_form")
    numeric = induced_penalty(strategy, A, 3, method="numeric")
    assert_allclose(numeric, direct_minimum(strategy, A, 3, np.eye(3)), rtol=1e-7)
    U, V = rng.normal(size=(2, 3)), rng.normal(size=(3, 3))
    A = U @ V.T
    assert induced_penalty(strategy, A, 3, method="numeric") <= pt.expected_penalty(strategy, U, V) * (1 + 1e-12)


def test_width_below_rank_and_zero_noise():
    rng = np.random.default_rng(13)
    A = random_matrix(rng, 3, 3, 3)
    with pytest.raises(ValueError, match="rank 3 > width = 2"):
        induced_penalty(pt.Dropout(0.3), A, 2)
    with pytest.raises(ValueError, match="rank 3 > width = 2"):
        induced_penalty(pt.Dropout(0.3), A, 2, method="numeric")
    assert induced_penalty(pt.Dropout(0.0), A, 3) == 0.0
    U, V = balanced_factors(pt.Dropout(0.0), A, 4)
    assert_allclose(U @ V.T, A, atol=1e-13 * np.abs(A).max())


def test_singular_second_moment():
    rng = np.random.default_rng(14)
    X = rng.normal(size=(4, 2))  # N = 2 < n_in = 4: S has rank 2
    S = X @ X.T / 2
    null = np.linalg.svd(S)[0][:, 2:]
    strategy = pt.Dropout(0.3)
    # A with a part in the null space of S spanned by its visible part: attained
    visible = random_matrix(rng, 3, 2, 2) @ np.linalg.pinv(X)  # rows in range(S)
    A = visible + np.outer(visible[:, 0], null[:, 0])
    theta = induced_penalty(strategy, A, 3, S)
    root = np.real(sqrtm(S))
    assert_allclose(theta, lam(0.3) / 3 * np.linalg.svd(A @ root, compute_uv=False).sum() ** 2, rtol=1e-9)
    U, V = balanced_factors(strategy, A, 3, S)
    assert_allclose(U @ V.T, A, atol=1e-11 * np.abs(A).max())
    assert_allclose(pt.expected_penalty(strategy, U, V, S), theta, rtol=1e-9)
    # rank(A S^1/2) < rank(A): only an infimum, refused
    A = visible + rng.normal(size=(3, 1)) @ null[:, :1].T
    with pytest.raises(ValueError, match=r"rank\(A Q\^\(1/2\)\) = 2 < rank\(A\) = 3"):
        induced_penalty(strategy, A, 3, S)
    # input-layer noise sees D = diag(S), which is invertible here
    U, V = rng.normal(size=(3, 3)), rng.normal(size=(4, 3))
    assert induced_penalty(pt.PerNodeDrop(0.3, "input"), U @ V.T, 3, S) <= \
        pt.expected_penalty(pt.PerNodeDrop(0.3, "input"), U, V, S) * (1 + 1e-12)


def test_torch_inputs():
    rng = np.random.default_rng(15)
    A = random_matrix(rng, 2, 3, 2)
    S = correlated_second_moment(rng, 3)
    value = induced_penalty(pt.Dropout(0.3), A, 3, S)
    assert_allclose(induced_penalty(pt.Dropout(0.3), torch.as_tensor(A), 3, torch.as_tensor(S)), value, rtol=1e-14)


def test_bad_inputs_name_the_parameter():
    A = np.ones((2, 3))
    with pytest.raises(TypeError, match="strategy"):
        induced_penalty("dropout", A, 3)
    with pytest.raises(ValueError, match="A must be a 2-D"):
        induced_penalty(pt.Dropout(0.3), np.ones(3), 3)
    with pytest.raises(TypeError, match="A must be a numeric"):
        induced_penalty(pt.Dropout(0.3), np.array([["a", "b"]]), 3)
    with pytest.raises(ValueError, match="A has non-finite"):
        induced_penalty(pt.Dropout(0.3), np.full((2, 3), np.nan), 3)
    with pytest.raises(TypeError, match="width"):
        induced_penalty(pt.Dropout(0.3), A, 2.5)
    with pytest.raises(ValueError, match="width"):
        induced_penalty(pt.Dropout(0.3), A, 0)
    with pytest.raises(ValueError, match="width must equal len"):
        induced_penalty(pt.NodeDropout([0.1, 0.2]), A, 3)
    with pytest.raises(ValueError, match="block_size must divide"):
        balanced_factors(pt.DropBlock(0.1, 2), A, 3)
    with pytest.raises(ValueError, match="second_moment must be n_in x n_in"):
        induced_penalty(pt.Dropout(0.3), A, 3, np.eye(2))
    with pytest.raises(ValueError, match="second_moment must be symmetric"):
        induced_penalty(pt.Dropout(0.3), A, 3, np.triu(np.ones((3, 3))))
    with pytest.raises(ValueError, match="second_moment must be positive semi-definite"):
        induced_penalty(pt.Dropout(0.3), A, 3, -np.eye(3))
    with pytest.raises(ValueError, match="method must be one of"):
        induced_penalty(pt.Dropout(0.3), A, 3, method="exact")
