"""Exact moments of the last layer's SGD iterates (pt.iterate_moments, pt.stationary_moments).

Each claim against a route written here apart from the package:

* enumeration: every batch (drawn with replacement, or the full data set) and every mask
  value of a finite law (a Gaussian through its three-point Gauss-Hermite law, exact for
  moments up to order 5) gives the step's ``(A, b)``; the dense recursions of the mean and the
  second moment, and the dense stationary equations, agree with the package to rounding;
* the largest stable step sits where the spectral radius of ``E[A (x) A]`` crosses 1, and is
  the reciprocal of the dense spectral radius of ``D^{-1} 2Q`` built from the enumerated steps;
* real torch SGD (torch.optim.SGD on a batch of independent runs, masks drawn by torch):
  means and covariances within 4.5 standard errors of the sample;
* Clara, Langer and Schmidt-Hieber: the mean of full-batch dropout GD follows GD on the
  expected loss exactly, the stationary covariance is nearly proportional to the step, and the
  simplified variant (the mask on the gradient only) converges to least squares with vanishing
  covariance while real dropout keeps the package's stationary covariance;
* the 95% intervals from ``averaged_covariance`` cover the stationary mean in 95% of simulated
  runs, within 3 binomial standard errors.
"""

import itertools
import math

import numpy as np
import pytest
import torch

import pnd_theory as pt
from pnd_theory import InvalidParameterError

torch.set_num_threads(1)

P = 0.3
BERNOULLI = (np.array([0.0, 1 / (1 - P)]), np.array([P, 1 - P]))
THREE_POINT = (np.array([0.0, 0.5, 2.0]), np.array([0.2, 0.4, 0.4]))
VAR = 0.4  # Gaussian N(1, 0.4): three-point Gauss-Hermite
GAUSS = (1 + math.sqrt(3 * VAR) * np.array([-1.0, 0.0, 1.0]), np.array([1 / 6, 2 / 3, 1 / 6]))


# ------------------------------------------------------------------ enumeration, written apart

def _step(H, Y, batch, masks, lr, n_out, d):
    """(A, b) of one SGD step on vec(U) (C order) for one batch and its masks (n_out, d) each."""
    def step(u):
        U = u.reshape(n_out, d)
        G = np.zeros_like(U)
        for k, mu in zip(batch, masks):
            r = (mu * U) @ H[:, k] - Y[:, k]
            G += mu * np.outer(r, H[:, k])
        return (U - 2 * lr * G / len(batch)).reshape(-1)
    b = step(np.zeros(n_out * d))
    A = np.stack([step(e) - b for e in np.eye(n_out * d)], axis=1)
    return A, b


def _configurations(H, Y, lr, support, kind, per_sample, batch_size, block=1):
    n_out, N = Y.shape
    d = H.shape[0]
    n_var = d // block if kind == "hidden" else n_out * d

    def mask(z):
        if kind == "hidden":
            return np.broadcast_to(np.repeat(z, block), (n_out, d))
        return z.reshape(n_out, d)

    values, probs = support
    batches = ([(tuple(range(N)), 1.0)] if batch_size is None else
               [(b, N ** -batch_size) for b in itertools.product(range(N), repeat=batch_size)])
    out = []
    for batch, pb in batches:
        draws = len(batch) if per_sample else 1
        for idx in itertools.product(range(len(values)), repeat=n_var * draws):
            z = values[list(idx)].reshape(draws, n_var)
            masks = [mask(z[i if per_sample else 0]) for i in range(len(batch))]
            out.append((pb * np.prod(probs[list(idx)]),) + _step(H, Y, batch, masks, lr, n_out, d))
    return out


def _enumerated(configs, u0, steps):
    m, M = u0.copy(), np.outer(u0, u0)
    means, covs = [m], [np.zeros_like(M)]
    for _ in range(steps):
        m, M = (sum(p * (A @ m + b) for p, A, b in configs),
                sum(p * (A @ M @ A.T + np.outer(A @ m, b) + np.outer(b, A @ m) + np.outer(b, b))
                    for p, A, b in configs))
        means.append(m)
        covs.append(M - np.outer(m, m))
    return np.array(means), np.array(covs)


def _enumerated_stationary(configs):
    n = configs[0][1].shape[0]
    EA = sum(p * A for p, A, _ in configs)
    m = np.linalg.solve(np.eye(n) - EA, sum(p * b for p, _, b in configs))
    EAA = sum(p * np.kron(A, A) for p, A, _ in configs)
    noise = sum(p * np.outer(A @ m + b - m, A @ m + b - m) for p, A, b in configs)
    C = np.linalg.solve(np.eye(n * n) - EAA, noise.reshape(-1)).reshape(n, n)
    inv = np.linalg.inv(np.eye(n) - EA)
    return m, C, inv @ C + C @ inv.T - C, max(abs(np.linalg.eigvals(EAA)))


def _data(seed, n_in=2, N=3, n_out=2, width=None):
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(n_in, N)), rng.normal(size=(n_out, N))
    V = None if width is None else rng.normal(size=(n_in, width))
    return X, Y, V


CASES = [  # strategy, component, support of one variable, block, width (None: V = None), batch sizes
    (pt.Dropout(P), "hidden", BERNOULLI, 1, None, (None, 2, 1)),
    (pt.Dropout(P).with_per_sample(False), "hidden", BERNOULLI, 1, None, (None, 2)),
    (pt.DropConnect(P, "output"), "output", BERNOULLI, 1, None, (None, 2)),
    (pt.DropConnect(P, "output", per_sample=True), "output", BERNOULLI, 1, None, (None, 1)),
    (pt.GaussianDropout(VAR / (1 + VAR)), "hidden", GAUSS, 1, 2, (2,)),
    (pt.DropBlock(P, 2), "hidden", BERNOULLI, 2, 4, (None, 2)),
    (pt.UnitNoise(pt.DiscreteLaw([0.0, 0.5, 2.0], [0.2, 0.4, 0.4])), "hidden", THREE_POINT, 1, 2, (2,)),
    (pt.WeightNoise(pt.DiscreteLaw([0.0, 0.5, 2.0], [0.2, 0.4, 0.4]), "output", per_sample=False), "output",
     THREE_POINT, 1, None, (2,)),
]


@pytest.mark.parametrize("case", [(c, b) for c in CASES for b in c[5]], ids=lambda c: f"{c[0][0]!r}-B{c[1]}")
def test_recursions_agree_with_enumeration(case):
    (strategy, kind, support, block, width, _), batch = case
    X, Y, V = _data(1, n_in=3 if width else 2, width=width)
    H = X if V is None else V.T @ X
    n_out, d = Y.shape[0], H.shape[0]
    lr = 0.03
    U0 = np.linspace(-0.3, 0.4, n_out * d).reshape(n_out, d)
    configs = _configurations(H, Y, lr, support, kind, strategy.per_sample, batch, block)
    means, covs = _enumerated(configs, U0.reshape(-1), 3)
    got = pt.iterate_moments(strategy, X, Y, U0, lr, 3, V=V, batch_size=batch)
    assert got.mean.shape == (4, n_out, d) and got.covariance.shape == (4, n_out * d, n_out * d)
    assert np.abs(got.mean.reshape(4, -1) - means).max() < 1e-14
    scale = max(np.abs(covs).max(), (means ** 2).max())  # the enumeration subtracts m m^T from E[u u^T]
    assert np.abs(got.covariance - covs).max() < 1e-12 * scale
    m, C, Sigma, rho = _enumerated_stationary(configs)
    st = pt.stationary_moments(strategy, X, Y, lr, V=V, batch_size=batch)
    assert rho < 1
    assert np.abs(st.mean.reshape(-1) - m).max() < 1e-12 * np.abs(m).max()
    assert np.abs(st.covariance - C).max() < 1e-10 * np.abs(C).max()
    assert np.abs(st.averaged_covariance - Sigma).max() < 1e-10 * np.abs(Sigma).max()


@pytest.mark.parametrize("strategy,kind,support", [(pt.Dropout(P), "hidden", BERNOULLI),
                                                   (pt.DropConnect(P, "output"), "output", BERNOULLI)])
def test_largest_stable_step_is_where_the_second_moments_diverge(strategy, kind, support):
    X, Y, _ = _data(2)
    lr_max = pt.stationary_moments(strategy, X, Y, 0.01, batch_size=2).max_stable_lr

    def rho(lr):
        return _enumerated_stationary(_configurations(X, Y, lr, support, kind, strategy.per_sample, 2))[3]

    assert rho(0.999 * lr_max) < 1 < rho(1.001 * lr_max)
    with pytest.raises(InvalidParameterError, match=rf"lr must be below {lr_max:.6g}.*got {1.01 * lr_max!r}"):
        pt.stationary_moments(strategy, X, Y, 1.01 * lr_max, batch_size=2)



@pytest.mark.parametrize("case", [(c, b) for c in CASES[:4] for b in c[5]
                                  if not (c[1] == "output" and c[0].per_sample and b is None)],  # 2^18 masks
                         ids=lambda c: f"{c[0][0]!r}-B{c[1]}")
def test_largest_stable_step_is_the_dense_spectral_radius(case):
    """1 / rho(D^{-1} 2Q) from the dense matrices of the enumerated steps (D = W (+) W, Q = E[W (x) W],
    A = I - 2 lr W): the Krylov route of the package to 1e-10."""
    (strategy, kind, support, block, width, _), batch = case
    X, Y, _ = _data(4, n_in=3)
    lr = 0.01
    configs = _configurations(X, Y, lr, support, kind, strategy.per_sample, batch, block)
    n = configs[0][1].shape[0]
    Ws = [(p, (np.eye(n) - A) / (2 * lr)) for p, A, _ in configs]
    Wbar = sum(p * W for p, W in Ws)
    D = np.kron(Wbar, np.eye(n)) + np.kron(np.eye(n), Wbar)
    Q = sum(p * np.kron(W, W) for p, W in Ws)
    rho = max(abs(np.linalg.eigvals(np.linalg.solve(D, 2 * Q))))
    got = pt.stationary_moments(strategy, X, Y, lr, batch_size=batch).max_stable_lr
    assert abs(got * rho - 1) < 1e-10


def test_stationary_mean_is_the_minimizer_of_the_expected_loss_whatever_the_step():
    X, Y, V = _data(3, n_in=3, N=5, n_out=2, width=4)
    strategy = pt.Dropout(P)
    lam = P / (1 - P)
    H = V.T @ X
    S = H @ H.T / H.shape[1]
    U_star = np.linalg.solve(S + lam * np.diag(np.diag(S)), H @ Y.T / H.shape[1]).T
    for lr in (0.002, 0.015):
        st = pt.stationary_moments(strategy, X, Y, lr, V=V, batch_size=2)
        assert np.allclose(st.mean, U_star, atol=1e-13)


# -------------------------------------------------------------------------------- refusals

def test_refusals_name_the_parameter():
    X, Y, _ = _data(0)
    U0 = np.zeros((2, 2))
    with pytest.raises(InvalidParameterError, match="weights of V"):
        pt.iterate_moments(pt.PerNodeDrop(P, "input"), X, Y, U0, 0.1, 2)
    with pytest.raises(InvalidParameterError, match="order 4"):
        pt.iterate_moments(pt.HiddenNoise(np.eye(2) * 0.2), X, Y, U0, 0.1, 2)
    with pytest.raises(InvalidParameterError, match="lr must be"):
        pt.iterate_moments(pt.Dropout(P), X, Y, U0, -0.1, 2)
    with pytest.raises(InvalidParameterError, match="U0 must be"):
        pt.iterate_moments(pt.Dropout(P), X, Y, np.zeros((3, 2)), 0.1, 2)
    with pytest.raises(InvalidParameterError, match="batch_size must be"):
        pt.stationary_moments(pt.Dropout(P), X, Y, 0.1, batch_size=0)


def test_results_show_themselves():
    X, Y, _ = _data(0)
    st = pt.stationary_moments(pt.Dropout(P), X, Y, 0.01)
    assert "StationaryMoments(" in repr(st) and "max_stable_lr" in st._repr_html_()
    it = pt.iterate_moments(pt.Dropout(P), X, Y, np.zeros((2, 2)), 0.05, 2)
    assert "IterateMoments(" in repr(it) and it.spread.shape == (3,)


# ---------------------------------------------------------------------------- torch SGD runs

def _torch_sgd(kind, per_sample, X, Y, U0, lr, steps, batch, runs, seed, law=None):
    """``runs`` independent SGD runs of torch.optim.SGD on U (masks drawn here), all steps."""
    g = torch.Generator().manual_seed(seed)
    H, Yt = torch.as_tensor(X), torch.as_tensor(Y)
    n_out, d = U0.shape
    N = H.shape[1]
    U = torch.nn.Parameter(torch.as_tensor(U0).expand(runs, n_out, d).clone())
    opt = torch.optim.SGD([U], lr=lr)
    B = N if batch is None else batch
    out = [U.detach().clone()]
    for _ in range(steps):
        idx = (torch.arange(N).expand(runs, N) if batch is None else torch.randint(N, (runs, B), generator=g))
        h, y = H.T[idx], Yt.T[idx]  # (runs, B, d), (runs, B, n_out)
        draws = B if per_sample else 1
        shape = (runs, draws, d) if kind == "hidden" else (runs, draws, n_out, d)
        mask = (torch.rand(shape, generator=g, dtype=torch.float64) >= P) / (1 - P) if law is None else law(shape, g)
        if kind == "hidden":
            pred = torch.einsum("rbj,roj->rbo", h * mask, U)
        else:
            pred = torch.einsum("rbj,rboj->rbo", h, U.unsqueeze(1) * mask)
        loss = ((pred - y) ** 2).sum(-1).mean(-1).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.append(U.detach().clone())
    return torch.stack(out).numpy().reshape(steps + 1, runs, -1)


def _gaussian(shape, g):
    return 1 + math.sqrt(VAR) * torch.randn(shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("strategy,kind,batch,law", [
    (pt.Dropout(P), "hidden", 2, None),
    (pt.Dropout(P).with_per_sample(False), "hidden", None, None),
    (pt.DropConnect(P, "output"), "output", 2, None),
    (pt.DropConnect(P, "output", per_sample=True), "output", None, None),
    (pt.GaussianDropout(VAR / (1 + VAR)), "hidden", 2, _gaussian),
])
def test_torch_sgd_runs_agree_within_standard_errors(strategy, kind, batch, law):
    X, Y, _ = _data(4, N=4)
    U0 = np.array([[0.5, -0.2], [0.1, 0.3]])
    lr, steps, runs = 0.08, 6, 20000
    u = _torch_sgd(kind, strategy.per_sample, X, Y, U0, lr, steps, batch, runs, seed=7, law=law)
    exact = pt.iterate_moments(strategy, X, Y, U0, lr, steps, batch_size=batch)
    for t in (1, 3, steps):
        mean = u[t].mean(0)
        z = (mean - exact.mean[t].reshape(-1)) / np.sqrt(np.diag(exact.covariance[t]) / runs)
        assert np.abs(z).max() < 4.5
        dev = u[t] - mean
        prods = dev[:, :, None] * dev[:, None, :]
        se = prods.std(0) / math.sqrt(runs)
        zc = (prods.mean(0) * runs / (runs - 1) - exact.covariance[t]) / se
        assert np.abs(zc).max() < 4.5


# ----------------------------------------------------------------------- Clara et al.

def test_mean_of_full_batch_dropout_gd_is_gd_on_the_expected_loss():
    X, Y, _ = _data(5, n_in=3, N=6, n_out=2)
    lam, lr = P / (1 - P), 0.05
    S, M = X @ X.T / X.shape[1], Y @ X.T / X.shape[1]
    U = np.array([[0.2, -0.1, 0.4], [0.0, 0.3, -0.2]])
    got = pt.iterate_moments(pt.Dropout(P), X, Y, U, lr, 20)
    for t in range(1, 21):
        U = U - lr * 2 * (U @ (S + lam * np.diag(np.diag(S))) - M)
        assert np.allclose(got.mean[t], U, atol=1e-14)


def test_stationary_covariance_scales_with_the_step():
    X, Y, _ = _data(6, n_in=3, N=6, n_out=2)
    spreads = [pt.stationary_moments(pt.Dropout(P), X, Y, lr).spread for lr in (0.004, 0.002, 0.001)]
    ratios = [spreads[0] / spreads[1], spreads[1] / spreads[2]]
    assert spreads[2] > 0
    assert all(abs(r - 2) < 0.05 for r in ratios)
    assert abs(ratios[1] - 2) < abs(ratios[0] - 2)  # closer to proportional as the step shrinks


def test_a_small_step_loses_no_digits_the_covariance_over_the_step_has_a_limit():
    # P / lr -> the solution of W P + P W = 2 Cov G(m) as lr -> 0 (first order in lr): the
    # differences shrink with lr, down to steps where 1 - (1 - 2 lr w)^2 would round to 0
    X, Y, _ = _data(6, n_in=3, N=6, n_out=2)
    over = [pt.stationary_moments(pt.Dropout(P), X, Y, lr).covariance / lr for lr in (1e-6, 1e-9, 1e-12, 1e-17)]
    gaps = [np.abs(a - b).max() / np.abs(b).max() for a, b in zip(over, over[1:])]
    assert gaps[0] < 1e-4 and gaps[1] < 1e-7 and gaps[2] < 1e-10, gaps


@pytest.mark.parametrize("c", [1e-120, 1e-3, 1e40, 1e150])
def test_the_stationary_law_scales_with_the_data_and_the_step(c):
    # features c V^T X and targets c^2 Y with step lr / c^2: the iterates are c U', every moment
    # scaled by its power of c (so no scale of the data overflows inside)
    X, Y, _ = _data(6, n_in=3, N=6, n_out=2)
    V = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    ref = pt.stationary_moments(pt.Dropout(P), X, Y, 0.01, V=V)
    got = pt.stationary_moments(pt.Dropout(P), X, Y * c ** 2, 0.01 / c ** 2, V=V * c)
    np.testing.assert_allclose(got.mean, ref.mean * c, rtol=1e-9)
    np.testing.assert_allclose(got.covariance, ref.covariance * c ** 2, rtol=1e-7, atol=1e-12 * c ** 2)
    np.testing.assert_allclose(got.max_stable_lr, ref.max_stable_lr / c ** 2, rtol=1e-9)
    steps = pt.iterate_moments(pt.Dropout(P), X, Y * c ** 2, ref.mean * c, 0.01 / c ** 2, 3, V=V * c)
    np.testing.assert_allclose(steps.mean[-1], ref.mean * c, rtol=1e-9)
    with pytest.raises(InvalidParameterError, match="lr must be below"):
        pt.stationary_moments(pt.Dropout(P), X, Y, 0.01, V=V * 1e200)



def _full_batch_dropout(X, Y, U0, lr, steps, runs, seed, simplified):
    """Full-batch dropout GD on U, one Bernoulli mask per step and run (numpy, written apart):
    the mask in the prediction and the gradient, or (``simplified``, Clara et al.) on the gradient
    of the unmasked loss only."""
    rng = np.random.default_rng(seed)
    S, M = X @ X.T / X.shape[1], Y @ X.T / X.shape[1]
    U = np.broadcast_to(U0, (runs,) + U0.shape).copy()
    for _ in range(steps):
        xi = (rng.random((runs, 1, U0.shape[1])) >= P) / (1 - P)
        U = U - 2 * lr * (((U if simplified else U * xi) @ S - M) * xi)
    return U


def test_simplified_dropout_converges_to_least_squares_with_vanishing_covariance():
    """Clara et al.: with the mask on the gradient only, least squares is a fixed point of every
    step, so the iterates converge to it (their second moment about it follows a linear map with
    no forcing, of spectral radius below 1); real dropout at the same step keeps the covariance
    of pt.stationary_moments about the minimizer of the expected loss, another point."""
    X, Y, _ = _data(9, n_in=3, N=6, n_out=2)
    lr, steps, runs = 0.05, 1500, 2000
    S, M = X @ X.T / X.shape[1], Y @ X.T / X.shape[1]
    U_ls = np.linalg.solve(S, M.T).T
    U0 = np.zeros_like(U_ls)
    # the second moment K = E[e^T e] of a row e of U - U_ls: K -> K - 2 lr (SK + KS) + 4 lr^2 (SKS) o E[xi xi^T]
    second = np.ones((3, 3)) + P / (1 - P) * np.eye(3)
    basis = np.eye(9).reshape(9, 3, 3)
    step = np.stack([(K - 2 * lr * (S @ K + K @ S) + 4 * lr ** 2 * (S @ K @ S) * second).reshape(-1) for K in basis], 1)
    assert max(abs(np.linalg.eigvals(step))) < 1
    simplified = _full_batch_dropout(X, Y, U0, lr, steps, runs, 0, simplified=True)
    assert np.abs(simplified - U_ls).max() < 1e-9 * np.abs(U_ls).max()  # every run: covariance and bias gone
    strategy = pt.Dropout(P).with_per_sample(False)
    st = pt.stationary_moments(strategy, X, Y, lr)
    real = _full_batch_dropout(X, Y, U0, lr, steps, runs, 1, simplified=False).reshape(runs, -1)
    dev = real - st.mean.reshape(-1)
    spread = (dev ** 2).sum(1)
    assert abs(spread.mean() - st.spread) < 4 * spread.std() / math.sqrt(runs)
    assert st.spread > 0.01 * np.abs(st.mean).max() ** 2
    gap = np.linalg.norm(st.mean - U_ls)
    assert gap > 10 * math.sqrt(st.spread / runs)  # the two variants end on different points
    assert np.linalg.norm(real.mean(0) - st.mean.reshape(-1)) < 4 * math.sqrt(st.spread / runs)


# ------------------------------------------------------------------------- coverage

def test_intervals_from_the_averaged_covariance_cover_at_their_level():
    X, Y, _ = _data(8, N=4)
    strategy, lr, batch = pt.Dropout(P), 0.04, 1
    st = pt.stationary_moments(strategy, X, Y, lr, batch_size=batch)
    burn, K, runs = 100, 1500, 1000
    u = _torch_sgd("hidden", True, X, Y, st.mean, lr, burn + K, batch, runs, seed=11)
    avg = u[burn + 1:].mean(0).reshape(runs, *st.mean.shape)
    low, high = st.intervals(avg, K)
    covered = ((low <= st.mean) & (st.mean <= high)).reshape(runs, -1).mean(0)
    se = math.sqrt(0.95 * 0.05 / runs)
    assert np.all(np.abs(covered - 0.95) < 3 * se), covered


# ------------------------------------------------- the simulated spread: one estimator, honest errors

def test_spread_estimator_is_unbiased_and_its_error_honest_on_correlated_snapshots():
    """AR(1) snapshots of correlation 0.8 (stationary variance 1 per entry, 6 entries): the
    estimate averages to the trace 6 and the jackknife error matches the estimates' spread."""
    from pnd_theory.studies.stationary import spread_over_seeds
    rng = np.random.default_rng(0)
    reps, S, T, rho = 2000, 6, 10, 0.8
    x = np.empty((reps, S, T, 2, 3))
    x[:, :, 0] = rng.normal(size=(reps, S, 2, 3))
    for t in range(1, T):
        x[:, :, t] = rho * x[:, :, t - 1] + math.sqrt(1 - rho ** 2) * rng.normal(size=(reps, S, 2, 3))
    est = np.array([spread_over_seeds(x[r]) for r in range(reps)])
    assert abs(est[:, 0].mean() - 6) < 3 * est[:, 0].std() / math.sqrt(reps)
    assert 0.85 < np.sqrt((est[:, 1] ** 2).mean()) / est[:, 0].std() < 1.15
    with pytest.raises(InvalidParameterError, match="seeds must be at least 2"):
        spread_over_seeds(x[0, :1])


def test_noise_mode_spread_and_stationary_spread_share_the_estimator_and_refuse_one_seed():
    from pnd_theory.studies.implicit import NoiseModeSpread
    from pnd_theory.studies.stationary import spread_over_seeds
    products = np.random.default_rng(1).normal(size=(4, 5, 2, 3))
    res = NoiseModeSpread(strategy=pt.Dropout(P), noise="masks", lr=0.1, steps=1, products=products,
                          objectives=np.zeros((4, 5)), optimum=None)
    assert (res.spread, res.spread_se) == spread_over_seeds(products)
    X, Y, _ = _data(0)
    with pytest.raises(InvalidParameterError, match="seeds must be at least 2"):
        pt.noise_mode_spread(pt.Dropout(P), X, Y, 2, "masks", 0.01, 1, seeds=1)
    with pytest.raises(InvalidParameterError, match="seeds must"):
        pt.stationary_spread(pt.Dropout(P), X, Y, 2, 0.01, 1, seeds=1)


# ------------------------------------------------------------------------------- the figure

def test_figure_of_the_iterates_writes_its_files_and_its_runs_agree(tmp_path):
    """Quick run: the simulated spread after the last step within 4 standard errors of the exact
    one in every case, and the two mask sharings have the same exact mean (Clara et al.)."""
    import json

    from paper_figures import FIGURES, fig_iterates
    assert FIGURES["iterates"] == "paper_figures.fig_iterates"
    paths = fig_iterates.make(tmp_path, quick=True)
    assert {p.name for p in paths} == {"iterates.png", "iterates.pdf", "iterates.json"}
    data = json.loads((tmp_path / "iterates.json").read_text())
    assert all(abs(c["final_spread_in_se"]) < 4 for c in data["cases"])
    by = {(c["masks"], c["lr"]): c for c in data["cases"]}
    for lr in fig_iterates.LRS:
        assert np.allclose(by["per sample", lr]["distance_exact"], by["per batch", lr]["distance_exact"], rtol=1e-12)
