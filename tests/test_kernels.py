"""The fused exact per-sample layer: its generator, its laws, and its life as a torch operator.

Statistical checks use fixed seeds (several per law) and accept an estimate within K = 5
standard errors of its closed form.  Standard errors: of a mean, sd / sqrt(n); of a variance,
sqrt((m4 - s2^2) / n); of a correlation of independent variables, 1 / sqrt(n); of a binomial
fraction, sqrt(q (1 - q) / n).  Exact identities are checked to rounding.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import pnd_theory.kernels as kernels
from pnd_theory.kernels import cpu, ops, reference
from pnd_theory.kernels.counter import GAMMA, counter_masks, counter_outputs, drop_threshold, row_keys, seed_key
from pnd_theory.kernels.cpu import HAVE_NUMBA
from pnd_theory.nn import DropConnectLinear, PerNodeDropLinear, per_sample_masked_linear

K = 5.0
DT = torch.float64
SEEDS = [3, 1001, 2**40 + 7]


def se_mean(a):
    return float(a.std(ddof=1) / math.sqrt(a.size))


def se_var(a):
    c = a - a.mean()
    return float(math.sqrt(max(np.mean(c**4) - np.mean(c**2) ** 2, 0.0) / a.size))


def assert_within(est, truth, se, what):
    assert abs(est - truth) <= K * se, f"{what}: {est:.6g} vs {truth:.6g} (se {se:.3g})"


def use_route(monkeypatch, name):
    """Send CPU tensors through the route ``name`` (``"numba"`` or ``"torch"``)."""
    monkeypatch.setitem(ops._ROUTES, "cpu", ops.TORCH_ROUTE if name == "torch" else ops._compiled("cpu"))


def kernel_masks(seed, n_samples, n_out, n_in, p, gaussian):
    """The masks as the fused forward kernel computes them: rows ``s * n_in + i`` carry the
    unit vector ``e_i`` and share sample ``s``'s mask (``positions = n_in``), with ``W = 1``,
    so ``z[s * n_in + i, j] = M[s, j, i]``."""
    x = torch.eye(n_in, dtype=DT).repeat(n_samples, 1)
    z = kernels.masked_linear(x, torch.ones(n_out, n_in, dtype=DT), torch.tensor(seed), p, gaussian, n_in)
    return z.reshape(n_samples, n_in, n_out).transpose(1, 2)


# ----------------------------------------------------------------------------
# the generator
# ----------------------------------------------------------------------------
def splitmix64(state, n):
    """Reference SplitMix64 in Python integers: ``n`` outputs after ``state``."""
    out = []
    for _ in range(n):
        state = (state + GAMMA) % 2**64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
        out.append(z ^ (z >> 31))
    return out


def lowbias32(v):
    v ^= v >> 16
    v = (v * 0x7FEB352D) % 2**32
    v ^= v >> 15
    v = (v * 0x846CA68B) % 2**32
    return v ^ (v >> 16)


def test_generator_is_the_specified_two_stage_hash():
    """Row keys: SplitMix64 outputs of the stream key; draws: lowbias32 of the keyed counter."""
    assert splitmix64(0, 1)[0] == 0xE220A8397B1DCDAF  # the published first output for seed 0
    assert lowbias32(0) == 0 and lowbias32(1) != 1
    for seed in SEEDS:
        key = splitmix64(seed, 1)[0]
        assert seed_key(seed) == key
        n_out, n_in = 3, 5
        rk = splitmix64(key, 3 * n_out)  # rows (s, j) in order s * n_out + j
        assert [v % 2**64 for v in row_keys(seed, [0, 1, 2], n_out).reshape(-1).tolist()] == rk
        u = counter_outputs(seed, [0, 1, 2], n_out, n_in)
        assert u.shape == (3, n_out, 6)  # one more draw for an odd n_in
        want = [[lowbias32(((r % 2**32 + i * 0x9E3779B9) % 2**32) ^ (r >> 32)) for i in range(6)] for r in rk]
        assert u.reshape(-1, 6).tolist() == want


def test_row_keys_of_the_benchmark_are_distinct():
    """262,144 rows (256 samples x 1024 outputs): no two share a 64-bit key."""
    rk = row_keys(7, torch.arange(256), 1024)
    assert torch.unique(rk).numel() == rk.numel()


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_draws_are_uniform_and_uncorrelated_across_samples_outputs_and_inputs(seed):
    """8.4 million 32-bit draws (128 samples x 1024 outputs x 64 inputs): every bit is 1 with
    frequency 1/2, and the uniforms ``u 2^-32`` of neighbouring samples, outputs and inputs,
    and of Box-Muller partners, are uncorrelated (K / sqrt(n)); so are their squares."""
    u = counter_outputs(seed, torch.arange(128), 1024, 64)
    n = u.numel()
    for bit in range(32):
        freq = float(((u >> bit) & 1).double().mean())
        assert abs(freq - 0.5) <= K * 0.5 / math.sqrt(n), f"bit {bit}: {freq}"
    c = u.double() * 2.0**-32 - 0.5
    pairs = {"samples": (c[:-1], c[1:]), "outputs": (c[:, :-1], c[:, 1:]),
             "inputs": (c[..., :-1], c[..., 1:]), "partners i, i + h": (c[..., :32], c[..., 32:]),
             "outputs j, j + 512": (c[:, :512], c[:, 512:])}
    for name, (a, b) in pairs.items():
        for power in (1, 2):
            aa, bb = (a, b) if power == 1 else (a * a - 1 / 12, b * b - 1 / 12)
            r = float(torch.corrcoef(torch.stack((aa.reshape(-1), bb.reshape(-1))))[0, 1])
            assert abs(r) <= K / math.sqrt(aa.numel()), f"{name}, power {power}: correlation {r:.3g}"


@pytest.mark.skipif(not HAVE_NUMBA, reason="needs numba")
def test_keep_probability_resolves_two_to_the_minus_32():
    """Keep iff ``u >= round(p 2^32)``: moving p by ``2^-32`` across a draw flips exactly that
    connection, in the numba kernel and the reference alike."""
    seed, n_out, n_in = 11, 3, 6
    u = counter_outputs(seed, [0], n_out, n_in)[0, :, :n_in]
    target = int(u[1, 4])
    for t, kept in ((target, True), (target + 1, False)):
        p = t * 2.0**-32
        assert drop_threshold(p) == t
        x = torch.eye(n_in, dtype=DT)
        got = cpu.masked_linear_cpu(x, torch.ones(n_out, n_in, dtype=DT), seed, p, False, n_in).T
        ref = counter_masks(seed, [0], n_out, n_in, p, False)[0]
        assert torch.equal(got > 0, ref > 0)
        assert torch.equal(ref > 0, u >= t)
        assert bool(got[1, 4] > 0) is kept


@pytest.mark.skipif(not HAVE_NUMBA, reason="needs numba")
@pytest.mark.parametrize("gaussian", [False, True], ids=["drop", "gaussian"])
@pytest.mark.parametrize("n_in", [7, 8])
def test_kernel_masks_are_the_reference_masks(gaussian, n_in):
    got = kernel_masks(17, 5, 4, n_in, 0.35, gaussian)
    ref = counter_masks(17, range(5), 4, n_in, 0.35, gaussian)
    torch.testing.assert_close(got, ref, rtol=1e-13, atol=1e-13)


# ----------------------------------------------------------------------------
# laws of the mask values, at sizes where a weak generator would show
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("gaussian,p", [(False, 0.5), (False, 0.2), (True, 0.5)], ids=["drop-.5", "drop-.2", "gauss"])
def test_mask_mean_variance_and_independence_along_every_axis(seed, gaussian, p):
    S, n_out, n_in = 400, 32, 32  # 409,600 values
    M = kernel_masks(seed, S, n_out, n_in, p, gaussian).numpy()
    lam = p / (1 - p)
    flat = M.ravel()
    assert_within(flat.mean(), 1.0, se_mean(flat), "mean")
    assert_within(flat.var(), lam, se_var(flat), "variance")
    if not gaussian:
        assert set(np.unique(flat).tolist()) <= {0.0, 1 / (1 - p)}
    else:
        z = (flat - 1) / math.sqrt(lam)
        assert_within(np.mean(z**4), 3.0, float(np.std(z**4) / math.sqrt(z.size)), "fourth moment")
        assert stats.kstest(z[:100_000], "norm").pvalue > 1e-4
    C = (M - 1) / math.sqrt(lam)
    pairs = {
        "samples": (C[:-1], C[1:]),
        "outputs": (C[:, :-1], C[:, 1:]),
        "connections 2q, 2q+1 (one 64-bit output)": (C[:, :, 0::2], C[:, :, 1::2]),
        "connections 2q+1, 2q+2 (adjacent outputs)": (C[:, :, 1:-1:2], C[:, :, 2::2]),
    }
    for name, (a, b) in pairs.items():
        r = np.corrcoef(a.ravel(), b.ravel())[0, 1]
        assert abs(r) <= K / math.sqrt(a.size), f"{name}: correlation {r:.4g}"
        if gaussian:  # dependence that correlation misses (two-point values: none is left)
            r2 = np.corrcoef(a.ravel() ** 2, b.ravel() ** 2)[0, 1]
            assert abs(r2) <= K / math.sqrt(a.size), f"{name}: correlation of squares {r2:.4g}"


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_normals_over_millions_of_draws(seed):
    """4,194,304 normals of the counter stream (Box-Muller on its 32-bit draws): mean 0,
    variance 1 and fourth moment 3 within K standard errors, the frequencies beyond 2, 3 and 4
    within K binomial standard errors of the normal tails, and a KS test against N(0, 1)."""
    z = kernels.counter_normals(seed, 2048, 2048).numpy().ravel()
    assert_within(z.mean(), 0.0, se_mean(z), "mean")
    assert_within(z.var(), 1.0, se_var(z), "variance")
    z4 = z**4
    assert_within(z4.mean(), 3.0, se_mean(z4), "fourth moment")
    for c in (2.0, 3.0, 4.0):
        q = 2 * stats.norm.sf(c)
        assert_within(float(np.mean(np.abs(z) > c)), q, math.sqrt(q * (1 - q) / z.size), f"tail beyond {c}")
    assert stats.kstest(z, "norm").pvalue > 1e-4


@pytest.mark.parametrize("p", [0.001, 0.999])
def test_bernoulli_keep_fraction_at_extreme_p(p):
    S, n_out, n_in = 250, 40, 40  # 400,000 values
    for seed in SEEDS:
        M = kernel_masks(seed, S, n_out, n_in, p, False).numpy()
        kept = float((M > 0).mean())
        q = 1 - p
        assert_within(kept, q, math.sqrt(q * (1 - q) / M.size), f"keep fraction at p={p}")


# ----------------------------------------------------------------------------
# laws of the layer's outputs and gradients against their closed forms
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("stir,draw", [("drop", "masks"), ("gaussian", "masks"), ("gaussian", "conditional")])
def test_output_and_gradient_laws_of_the_fused_layer(stir, draw):
    n, in_f, out_f, p = 4000, 48, 40, 0.4
    lam = p / (1 - p)
    for seed in SEEDS:
        torch.manual_seed(seed % 1000)
        layer = PerNodeDropLinear(in_f, out_f, p=p, stir=stir, dtype=DT, gaussian_draw=draw)
        W, b = layer.weight.detach(), layer.bias.detach()
        x = torch.randn(in_f, dtype=DT)
        g = torch.randn(out_f, dtype=DT)
        xb = x.expand(n, in_f).clone().requires_grad_(True)
        z = layer(xb)
        (z * g).sum().backward()
        zn = z.detach().numpy()
        # outputs: mean W x + b, variance lam sum_i W_ji^2 x_i^2, each unit
        mean, var = (W @ x + b).numpy(), (lam * (W**2) @ (x**2)).numpy()
        for j in range(0, out_f, 7):
            assert_within(zn[:, j].mean(), mean[j], se_mean(zn[:, j]), f"output mean {j}")
            assert_within(zn[:, j].var(ddof=1), var[j], se_var(zn[:, j]), f"output variance {j}")
        # input gradient of sample k: (W o M_k)^T g; mean W^T g, variance lam sum_j W_ji^2 g_j^2
        gx = xb.grad.numpy()
        gmean, gvar = (W.T @ g).numpy(), (lam * (W.T**2) @ (g**2)).numpy()
        for i in range(0, in_f, 7):
            assert_within(gx[:, i].mean(), gmean[i], se_mean(gx[:, i]), f"input-gradient mean {i}")
            assert_within(gx[:, i].var(ddof=1), gvar[i], se_var(gx[:, i]), f"input-gradient variance {i}")
        # joint law of output and gradient (same masks): Cov(g . z, gx_i) = lam x_i sum_j g_j^2 W_ji^2
        gz = zn @ g.numpy()
        cov = (lam * x * ((g**2) @ (W**2))).numpy()
        for i in range(0, in_f, 5):
            prod = (gz - gz.mean()) * (gx[:, i] - gx[:, i].mean())
            assert_within(prod.mean(), cov[i], se_mean(prod), f"output / input-gradient covariance {i}")
        # weight gradient: (g x^T) o sum_k M_k; standardized entries are i.i.d. mean 0, variance 1
        gW = layer.weight.grad
        std = ((gW - n * torch.outer(g, x)) / torch.sqrt(n * lam * torch.outer(g**2, x**2))).numpy().ravel()
        assert_within(std.mean(), 0.0, 1 / math.sqrt(std.size), "standardized weight gradient mean")
        assert_within(std.var(), 1.0, math.sqrt(2 / std.size), "standardized weight gradient variance")
        torch.testing.assert_close(layer.bias.grad, n * g)


# ----------------------------------------------------------------------------
# the conditional Gaussian draw against masks built from its definition
# ----------------------------------------------------------------------------
def conditional_reference_masks(seed, x, W, p):
    """``1 + sigma (xi + v c)`` from the reference masks and normals, in float64 torch."""
    sigma = math.sqrt(p / (1 - p))
    (R, n_in), n_out = x.shape, W.shape[0]
    xi = (counter_masks(seed, torch.arange(R), n_out, n_in, p, True) - 1) / sigma
    n = kernels.counter_normals(seed, R, n_out)
    v = W[None] * x[:, None, :]
    v2 = (v * v).sum(-1)
    c = torch.where(v2 > 0, (n * v2.sqrt() - (v * xi).sum(-1)) / v2, torch.zeros_like(v2))
    return 1 + sigma * (xi + v * c[..., None])


@pytest.mark.parametrize("route", ["numba", "torch"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_conditional_gaussian_products_are_those_of_its_masks(route, dtype, monkeypatch):
    if route == "numba" and not HAVE_NUMBA:
        pytest.skip("needs numba")
    use_route(monkeypatch, route)
    torch.manual_seed(0)
    R, n_out, n_in, p, seed = 9, 6, 11, 0.3, 41
    x, W, g = torch.randn(R, n_in, dtype=dtype), torch.randn(n_out, n_in, dtype=dtype), torch.randn(R, n_out, dtype=dtype)
    x[3] = 0.0  # a row with v = 0 for every output: c = 0
    W[2, 5] = 0.0
    M = conditional_reference_masks(seed, x.double(), W.double(), p)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-5)
    xg, Wg = x.clone().requires_grad_(True), W.clone().requires_grad_(True)
    z = kernels.masked_linear(xg, Wg, torch.tensor(seed), p, True, 1, conditional=True)
    z.backward(g)
    torch.testing.assert_close(z.double(), torch.einsum("roi,oi,ri->ro", M, W.double(), x.double()), **tol)
    torch.testing.assert_close(xg.grad.double(), torch.einsum("roi,oi,ro->ri", M, W.double(), g.double()), **tol)
    torch.testing.assert_close(Wg.grad.double(), torch.einsum("roi,ri,ro->oi", M, x.double(), g.double()), **tol)
    # one gradient only (the first-order pass still gives it), and second order with the masks fixed
    xo = x.clone().requires_grad_(True)
    kernels.masked_linear(xo, W, torch.tensor(seed), p, True, 1, conditional=True).backward(g)
    torch.testing.assert_close(xo.grad, xg.grad, rtol=1e-12 if dtype == torch.float64 else 1e-5, atol=1e-6)
    xs, Ws = x.clone().requires_grad_(True), W.clone().requires_grad_(True)
    zs = kernels.masked_linear(xs, Ws, torch.tensor(seed), p, True, 1, conditional=True)
    gx, = torch.autograd.grad((zs * g).sum(), xs, create_graph=True)
    h = torch.randn(R, n_in, dtype=dtype)
    gW2, = torch.autograd.grad((gx * h).sum(), Ws)
    torch.testing.assert_close(gW2.double(), torch.einsum("roi,ro,ri->oi", M, g.double(), h.double()), **tol)


def test_conditional_gaussian_draw_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="gaussian_draw"):
        PerNodeDropLinear(4, 3, stir="drop", gaussian_draw="conditional")
    with pytest.raises(ValueError, match="gaussian_draw"):
        PerNodeDropLinear(4, 3, stir="gaussian", mask_per="sample", gaussian_draw="conditional")
    with pytest.raises(ValueError, match="gaussian_draw"):
        PerNodeDropLinear(4, 3, stir="gaussian", gaussian_draw="later")
    with pytest.raises(ValueError, match="positions"):
        kernels.masked_linear(torch.ones(4, 3), torch.ones(2, 3), torch.tensor(1), 0.3, True, 2, conditional=True)


# ----------------------------------------------------------------------------
# reproducibility, threads and routes
# ----------------------------------------------------------------------------
def _step(layer, x, seed):
    torch.manual_seed(seed)
    layer.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    z = layer(x)
    z.pow(2).sum().backward()
    return z.detach(), x.grad, layer.weight.grad


@pytest.mark.parametrize("stir,draw", [("drop", "masks"), ("gaussian", "masks"), ("gaussian", "conditional")])
def test_reproducible_under_manual_seed_and_independent_of_threads_and_route(stir, draw, monkeypatch):
    torch.manual_seed(0)
    layer = PerNodeDropLinear(37, 29, p=0.3, stir=stir, dtype=DT, gaussian_draw=draw)
    x = torch.randn(23, 37, dtype=DT)
    first = _step(layer, x, 5)
    assert all(torch.equal(a, b) for a, b in zip(first, _step(layer, x, 5)))
    assert not torch.equal(first[0], _step(layer, x, 6)[0])
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = _step(layer, x, 5)
    finally:
        torch.set_num_threads(old)
    assert all(torch.equal(a, b) for a, b in zip(first, two))  # bit for bit
    # the chunked torch route (materialized reference masks, chunks of 2 samples) agrees
    use_route(monkeypatch, "torch")
    monkeypatch.setattr(reference, "CHUNK_ELEMENTS", 2 * 37 * 29)
    for a, b in zip(first, _step(layer, x, 5)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not HAVE_NUMBA, reason="needs numba")
@pytest.mark.parametrize("gaussian", [False, True], ids=["drop", "gaussian"])
def test_one_pass_backward_equals_the_two_gradient_kernels(gaussian, monkeypatch):
    torch.manual_seed(0)
    g, x, W = torch.randn(9, 4, dtype=DT), torch.randn(9, 7, dtype=DT), torch.randn(4, 7, dtype=DT)
    gx, gw = cpu.masked_linear_backward_cpu(g, x, W, 5, 0.3, gaussian, 2)
    assert torch.equal(gx, cpu.masked_linear_grad_input_cpu(g, W, 5, 0.3, gaussian, 2))
    torch.testing.assert_close(gw, cpu.masked_linear_grad_weight_cpu(g, x, 5, 0.3, gaussian, 2),
                               rtol=1e-13, atol=1e-13)
    monkeypatch.setattr(cpu, "BACKWARD_MAX_BYTES", 8)
    assert cpu.masked_linear_backward_cpu(g, x, W, 5, 0.3, gaussian, 2) is None
    # the layer then takes the two kernels, with the same gradients
    xg, Wg = x.clone().requires_grad_(True), W.clone().requires_grad_(True)
    kernels.masked_linear(xg, Wg, torch.tensor(5), 0.3, gaussian, 2).backward(g)
    assert torch.equal(xg.grad, gx)
    torch.testing.assert_close(Wg.grad, gw, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("stir", ["drop", "gaussian"])
def test_float32_and_bfloat16_inputs(stir):
    """float32 work (shorter Box-Muller polynomials) gives the float64 masks to float32 rounding."""
    torch.manual_seed(0)
    x = torch.randn(60, 90)
    W = torch.randn(50, 90)
    ref = per_sample_masked_linear(x.double(), W.double(), None, 0.5, stir, seed=4)
    z32 = per_sample_masked_linear(x, W, None, 0.5, stir, seed=4)
    assert z32.dtype == torch.float32
    torch.testing.assert_close(z32.double(), ref, rtol=1e-5, atol=1e-4)
    zbf = per_sample_masked_linear(x.bfloat16(), W.bfloat16(), None, 0.5, stir, seed=4)
    assert zbf.dtype == torch.bfloat16
    torch.testing.assert_close(zbf.double(), ref, rtol=0.05, atol=0.5)


# ----------------------------------------------------------------------------
# sequences: one mask per sample shared across positions, or one per position
# ----------------------------------------------------------------------------
def test_sequence_masks_shared_across_positions_or_not():
    torch.manual_seed(0)
    per_sample = PerNodeDropLinear(6, 4, p=0.5, mask_per="sample", dtype=DT)
    per_position = PerNodeDropLinear(6, 4, p=0.5, mask_per="position", dtype=DT)
    per_position.load_state_dict(per_sample.state_dict())
    v = torch.randn(6, dtype=DT)
    x = v.expand(3, 5, 6)  # 3 sequences of 5 identical positions
    z = per_sample(x)
    assert z.shape == (3, 5, 4)
    assert all(torch.equal(z[b, t], z[b, 0]) for b in range(3) for t in range(5))
    assert not torch.equal(z[0, 0], z[1, 0])
    zp = per_position(x)
    assert not torch.equal(zp[0, 0], zp[0, 1])
    # 2-D inputs: both are the same map
    x2 = torch.randn(7, 6, dtype=DT)
    torch.manual_seed(1)
    a = per_sample(x2)
    torch.manual_seed(1)
    assert torch.equal(a, per_position(x2))


def test_shared_sequence_mask_gives_the_closed_form_covariance_across_positions():
    """Positions t, t' of one sample share M: Cov(z_j(x), z_j(x')) = lam sum_i W_ji^2 x_i x'_i;
    with a mask per position the covariance is 0."""
    n, p = 20_000, 0.4
    lam = p / (1 - p)
    torch.manual_seed(2)
    layer = PerNodeDropLinear(5, 3, p=p, mask_per="sample", dtype=DT)
    W = layer.weight.detach()
    x = torch.randn(2, 5, dtype=DT)
    with torch.no_grad():
        z = layer(x.expand(n, 2, 5)).numpy()
        layer.mask_per = "position"
        zp = layer(x.expand(n, 2, 5)).numpy()
    cov = (lam * (W**2) @ (x[0] * x[1])).numpy()
    for j in range(3):
        for zz, truth in ((z, cov[j]), (zp, 0.0)):
            prod = (zz[:, 0, j] - zz[:, 0, j].mean()) * (zz[:, 1, j] - zz[:, 1, j].mean())
            assert_within(prod.mean(), truth, se_mean(prod), f"covariance across positions, unit {j}")


# ----------------------------------------------------------------------------
# a torch citizen: compile, autocast, torch.func
# ----------------------------------------------------------------------------
def mixed_model(kind):
    torch.manual_seed(0)
    noisy = {"pnd": lambda: PerNodeDropLinear(8, 6, p=0.3),
             "pnd-gauss": lambda: PerNodeDropLinear(8, 6, p=0.3, stir="gaussian"),
             "pnd-gauss-cond": lambda: PerNodeDropLinear(8, 6, p=0.3, stir="gaussian", gaussian_draw="conditional"),
             "dropconnect": lambda: DropConnectLinear(8, 6, p=0.3),
             "dropconnect-per-sample": lambda: DropConnectLinear(8, 6, p=0.3, per_sample=True)}[kind]
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), noisy(), nn.ReLU(), nn.Linear(6, 2)).train()


KINDS = ["pnd", "pnd-gauss", "pnd-gauss-cond", "dropconnect", "dropconnect-per-sample"]


def loss_and_grads(model, x, seed):
    torch.manual_seed(seed)
    model.zero_grad(set_to_none=True)
    y = model(x)
    y.pow(2).sum().backward()
    return y.detach(), [prm.grad.clone() for prm in model.parameters()]


def test_compile_fullgraph_in_training_mode():
    """fullgraph=True fails on any graph break, e.g. a ``.item()`` when drawing the seed."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), PerNodeDropLinear(8, 6, p=0.3), nn.ReLU(),
                          DropConnectLinear(6, 6, p=0.3, per_sample=True),
                          PerNodeDropLinear(6, 6, p=0.3, stir="gaussian", gaussian_draw="conditional"),
                          DropConnectLinear(6, 2, p=0.3)).train()
    x = torch.randn(7, 5)
    eager = loss_and_grads(model, x, 11)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    first = loss_and_grads(compiled, x, 11)
    again = loss_and_grads(compiled, x, 11)
    assert torch.equal(first[0], again[0])  # torch.manual_seed makes it reproducible
    torch.testing.assert_close(first[0], eager[0])  # the seed is drawn from the same RNG
    for a, b in zip(first[1], eager[1]):
        torch.testing.assert_close(a, b)
    assert not torch.equal(loss_and_grads(compiled, x, 12)[0], first[0])


@pytest.mark.parametrize("kind", KINDS)
def test_autocast_bfloat16_in_a_mixed_model(kind):
    model = mixed_model(kind)
    x = torch.randn(7, 5)
    ref = loss_and_grads(model, x, 3)
    torch.manual_seed(3)
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
    assert y.dtype == torch.bfloat16
    y.float().pow(2).sum().backward()
    for prm, r in zip(model.parameters(), ref[1]):
        assert prm.grad.dtype == torch.float32 and torch.isfinite(prm.grad).all()
    # the same masks as in float32 (same seed), up to bfloat16 rounding
    torch.testing.assert_close(y.float(), ref[0], rtol=0.1, atol=0.1)


@pytest.mark.parametrize("kind", KINDS)
def test_func_grad_equals_autograd(kind):
    model = mixed_model(kind)
    x = torch.randn(7, 5)
    ref = loss_and_grads(model, x, 8)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(prm):
        return torch.func.functional_call(model, prm, (x,)).pow(2).sum()

    torch.manual_seed(8)
    grads = torch.func.grad(loss)(params)
    for (name, _), r in zip(model.named_parameters(), ref[1]):
        torch.testing.assert_close(grads[name], r, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_vmap_randomness_different_and_same(kind):
    model = mixed_model(kind)
    layer = model[2]
    x = torch.randn(8).expand(6, 1, 8)  # six identical inputs, one per vmap entry
    torch.manual_seed(4)
    different = torch.func.vmap(layer, randomness="different")(x)
    assert different.shape == (6, 1, 6)
    assert len({tuple(r.reshape(-1).tolist()) for r in different}) == 6
    torch.manual_seed(4)
    if kind != "dropconnect":  # per-sample masks cannot be "the same" for every entry: refused
        with pytest.raises(RuntimeError, match="randomness='different'"):
            torch.func.vmap(layer, randomness="same")(x)
    else:
        same = torch.func.vmap(layer, randomness="same")(x)
        assert all(torch.equal(r, same[0]) for r in same)
        assert not torch.equal(same[0], layer.eval()(x[0]))
        layer.train()
    x = torch.randn(5).expand(6, 1, 5)
    # per-example gradients through vmap(grad)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(prm, xi):
        return torch.func.functional_call(model, prm, (xi,)).pow(2).sum()

    torch.manual_seed(4)
    per_example = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0), randomness="different")(params, x)
    name = "2.weight"
    assert per_example[name].shape == (6, *params[name].shape)
    assert torch.isfinite(per_example[name]).all()


def test_double_backward_of_the_fused_map():
    torch.manual_seed(0)
    x = torch.randn(4, 5, dtype=DT, requires_grad=True)
    W = torch.randn(3, 5, dtype=DT, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x, W: per_sample_masked_linear(x, W, None, 0.4, seed=9), (x, W))


# ----------------------------------------------------------------------------
# the Triton kernels, through Triton's interpreter on CPU
# ----------------------------------------------------------------------------
TRITON_SCRIPT = textwrap.dedent("""
    import torch
    from pnd_theory.kernels import cuda as kt, ops, reference
    from pnd_theory.kernels.counter import counter_masks
    from pnd_theory.nn import PerNodeDropLinear
    torch.manual_seed(0)
    R, n_out, T = 4, 5, 2
    for gaussian, n_in in ((False, 7), (True, 7), (True, 8)):
        x, W, g = torch.randn(R, n_in), torch.randn(n_out, n_in), torch.randn(R, n_out)
        M = counter_masks(123, torch.arange(R) // T, n_out, n_in, 0.3, gaussian, dtype=torch.float32)
        checks = [(kt.masked_linear(x, W, 123, 0.3, gaussian, T), torch.einsum("roi,oi,ri->ro", M, W, x)),
                  (kt.masked_linear_grad_input(g, W, 123, 0.3, gaussian, T), torch.einsum("roi,oi,ro->ri", M, W, g)),
                  (kt.masked_linear_grad_weight(g, x, 123, 0.3, gaussian, T), torch.einsum("roi,ri,ro->oi", M, x, g))]
        for got, ref in checks:
            torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    # the layer's law through the Triton route: output mean and variance of one unit
    ops._ROUTES["cpu"] = ops.Route("triton", kt.masked_linear, kt.masked_linear_grad_input, kt.masked_linear_grad_weight,
                                   None, reference.conditional_gaussian, None)
    n = 300
    layer = PerNodeDropLinear(8, 2, p=0.5)
    x = torch.randn(8)
    z = layer(x.expand(n, 8)).detach().double()
    W = layer.weight.detach().double()
    mean = W @ x.double() + layer.bias.detach().double()
    var = (W**2) @ (x.double()**2)
    se = (var / n) ** 0.5
    assert ((z.mean(0) - mean).abs() <= 5 * se).all(), (z.mean(0), mean, se)
    print("ok")
""")


def test_triton_kernels_in_the_interpreter():
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    res = subprocess.run([sys.executable, "-c", TRITON_SCRIPT], capture_output=True, text=True, env=env,
                         timeout=600)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]


# ----------------------------------------------------------------------------
# GPU
# ----------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("gaussian", [False, True], ids=["drop", "gaussian"])
def test_cuda_kernels_match_the_reference_and_the_cpu(gaussian):
    dev = torch.device("cuda")
    torch.manual_seed(0)
    R, n_out, n_in = 64, 33, 45
    x, W, g = torch.randn(R, n_in, dtype=DT), torch.randn(n_out, n_in, dtype=DT), torch.randn(R, n_out, dtype=DT)
    seed = torch.tensor(77)
    M = counter_masks(77, torch.arange(R), n_out, n_in, 0.3, gaussian)
    z = kernels.masked_linear(x.to(dev), W.to(dev), seed, 0.3, gaussian).cpu()
    torch.testing.assert_close(z, torch.einsum("roi,oi,ri->ro", M, W, x), rtol=1e-5, atol=1e-5)
    xg, Wg = x.to(dev).requires_grad_(True), W.to(dev).requires_grad_(True)
    kernels.masked_linear(xg, Wg, seed, 0.3, gaussian).backward(g.to(dev))
    torch.testing.assert_close(xg.grad.cpu(), torch.einsum("roi,oi,ro->ri", M, W, g), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(Wg.grad.cpu(), torch.einsum("roi,ri,ro->oi", M, x, g), rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_layer_output_law_and_compile():
    dev = torch.device("cuda")
    torch.manual_seed(0)
    n = 20_000
    layer = PerNodeDropLinear(64, 16, p=0.5, device=dev)
    x = torch.randn(64, device=dev)
    z = layer(x.expand(n, 64)).detach().double()
    W = layer.weight.detach().double()
    mean = W @ x.double() + layer.bias.detach().double()
    se = torch.sqrt((W**2) @ (x.double() ** 2) / n)
    assert ((z.mean(0) - mean).abs() <= K * se).all()
    compiled = torch.compile(layer, fullgraph=True)
    torch.manual_seed(1)
    y = compiled(x.expand(8, 64))
    y.sum().backward()
    assert torch.isfinite(layer.weight.grad).all()


# ----------------------------------------------------------------------------
# numba's on-disk cache: a new process loads the kernels instead of compiling them
# ----------------------------------------------------------------------------
CACHE_SCRIPT = textwrap.dedent("""
    import json, torch
    from pnd_theory.kernels import cpu
    x, W, g = torch.randn(3, 4), torch.randn(2, 4), torch.randn(3, 2)
    cpu.masked_linear_cpu(x, W, 1, 0.3, False)
    cpu.masked_linear_backward_cpu(g, x, W, 1, 0.3, False)
    print(json.dumps({k.__name__: [sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values())]
                      for k in (cpu._forward, cpu._backward)}))
""")


@pytest.mark.skipif(not HAVE_NUMBA, reason="needs numba")
def test_kernels_load_from_the_on_disk_cache_in_a_new_process():
    runs = []
    for _ in range(2):  # the first run fills the cache where an earlier one has not
        res = subprocess.run([sys.executable, "-c", CACHE_SCRIPT], capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    assert all(hits >= 1 and misses == 0 for hits, misses in runs[1].values()), runs


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba kernels")
@pytest.mark.parametrize("rows, n", [(1, 1), (3, 8), (5, 7), (257, 64)])
def test_numba_normals_equal_the_reference(rows, n):
    """The conditional draw's normals from the numba kernel against the torch reference: the
    same draws, so equal to the rounding of log, cos and sin (a few float64 ulps)."""
    from pnd_theory.kernels import cpu, counter
    got = cpu.counter_normals_cpu(2024, rows, n)
    ref = counter.counter_normals(2024, rows, n).numpy()
    assert got.shape == ref.shape == (rows, n)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-14)
