r"""Triton kernels (CUDA) of the fused per-sample masked linear map.

.. math::

    z_r = (W \circ M_{s(r)}) x_r, \qquad (W \circ M_{s(r)})^\top g_r, \qquad
    \sum_r M_{s(r)} \circ (g_r x_r^\top),

with the masks of the counter-based generator of :mod:`pnd_theory.kernels.counter` (a
SplitMix64 row key per ``(seed, sample, output)`` and a 32-bit ``lowbias32`` hash per input),
computed inside each tile and never stored.  The 32-bit
draws, hence the kept connections of Bernoulli masks, are those of
:func:`pnd_theory.kernels.counter.counter_masks`; the scale ``1/(1-p)`` and the Gaussian Box-Muller
transform are float32 here (values agree to float32 rounding).  Each output
entry is summed in a fixed order, so results do not depend on the launch.

Without Triton, :data:`HAVE_TRITON` is False and CUDA tensors take the chunked torch route.
Set ``TRITON_INTERPRET=1`` before the first import to run these kernels on CPU tensors through
Triton's interpreter (slow; for tests on small sizes).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .counter import drop_threshold, seed_key

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover
    triton = None

HAVE_TRITON = triton is not None

__all__ = ["HAVE_TRITON", "masked_linear", "masked_linear_grad_input", "masked_linear_grad_weight"]

BLOCK_O = 32
BLOCK_Q = 32

if HAVE_TRITON:

    @triton.jit
    def _mix(z):
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB
        return z ^ (z >> 31)

    @triton.jit
    def _draw(k0, k1, i):
        """``lowbias32(((k0 + i C) mod 2^32) XOR k1)``, in uint64 lanes reduced mod ``2^32``."""
        v = ((k0 + i.to(tl.uint64) * 0x9E3779B9) & 0xFFFFFFFF) ^ k1
        v = v ^ (v >> 16)
        v = (v * 0x7FEB352D) & 0xFFFFFFFF
        v = v ^ (v >> 15)
        v = (v * 0x846CA68B) & 0xFFFFFFFF
        return v ^ (v >> 16)

    @triton.jit
    def _masks(s, offs_j, offs_q, n_out, half, key, thr, scale, sigma, GAUSSIAN: tl.constexpr):
        """Mask values of the partners ``q`` and ``q + half`` of outputs ``j`` of sample ``s``
        (2-D tiles)."""
        rk = _mix(key + (s * n_out + offs_j[:, None].to(tl.uint64) + 1) * 0x9E3779B97F4A7C15)
        k0 = rk & 0xFFFFFFFF
        k1 = rk >> 32
        a = _draw(k0, k1, offs_q[None, :])
        b = _draw(k0, k1, offs_q[None, :] + half)
        if GAUSSIAN:
            u = (a.to(tl.float32) + 1.0) * 2.3283064365386963e-10
            theta = b.to(tl.float32) * 1.4629180792671596e-09  # 2 pi / 2^32
            rho = tl.sqrt(-2.0 * tl.log(u))
            m0 = 1.0 + sigma * rho * tl.cos(theta)
            m1 = 1.0 + sigma * rho * tl.sin(theta)
        else:
            m0 = tl.where(a >= thr, scale, 0.0)
            m1 = tl.where(b >= thr, scale, 0.0)
        return m0, m1

    @triton.jit
    def _forward_kernel(x_ptr, w_ptr, out_ptr, key, thr, scale, sigma, n_in, n_out, positions,
                        GAUSSIAN: tl.constexpr, BO: tl.constexpr, BQ: tl.constexpr):
        r = tl.program_id(0)
        offs_j = tl.program_id(1) * BO + tl.arange(0, BO)
        key = key.to(tl.uint64)
        s = (r // positions).to(tl.uint64)
        half = (n_in + 1) // 2
        n_out64 = n_out.to(tl.uint64)
        acc = tl.zeros((BO,), dtype=out_ptr.dtype.element_ty)
        jm = offs_j < n_out
        for q0 in range(0, (n_in + 1) // 2, BQ):
            offs_q = q0 + tl.arange(0, BQ)
            i0 = offs_q
            i1 = i0 + half
            m0, m1 = _masks(s, offs_j, offs_q, n_out64, half, key, thr, scale, sigma, GAUSSIAN)
            x0 = tl.load(x_ptr + r * n_in + i0, mask=i0 < half, other=0.0)
            x1 = tl.load(x_ptr + r * n_in + i1, mask=i1 < n_in, other=0.0)
            w0 = tl.load(w_ptr + offs_j[:, None] * n_in + i0[None, :], mask=jm[:, None] & (i0 < half)[None, :],
                         other=0.0)
            w1 = tl.load(w_ptr + offs_j[:, None] * n_in + i1[None, :], mask=jm[:, None] & (i1 < n_in)[None, :],
                         other=0.0)
            acc += tl.sum(w0 * m0.to(w0.dtype) * x0[None, :] + w1 * m1.to(w1.dtype) * x1[None, :], axis=1)
        tl.store(out_ptr + r * n_out + offs_j, acc, mask=jm)

    @triton.jit
    def _grad_input_kernel(g_ptr, w_ptr, out_ptr, key, thr, scale, sigma, n_in, n_out, positions,
                           GAUSSIAN: tl.constexpr, BO: tl.constexpr, BQ: tl.constexpr):
        r = tl.program_id(0)
        offs_q = tl.program_id(1) * BQ + tl.arange(0, BQ)
        key = key.to(tl.uint64)
        s = (r // positions).to(tl.uint64)
        half = (n_in + 1) // 2
        n_out64 = n_out.to(tl.uint64)
        i0 = offs_q
        i1 = i0 + half
        acc0 = tl.zeros((BQ,), dtype=out_ptr.dtype.element_ty)
        acc1 = tl.zeros((BQ,), dtype=out_ptr.dtype.element_ty)
        for j0 in range(0, n_out, BO):
            offs_j = j0 + tl.arange(0, BO)
            jm = offs_j < n_out
            m0, m1 = _masks(s, offs_j, offs_q, n_out64, half, key, thr, scale, sigma, GAUSSIAN)
            g = tl.load(g_ptr + r * n_out + offs_j, mask=jm, other=0.0)
            w0 = tl.load(w_ptr + offs_j[:, None] * n_in + i0[None, :], mask=jm[:, None] & (i0 < half)[None, :],
                         other=0.0)
            w1 = tl.load(w_ptr + offs_j[:, None] * n_in + i1[None, :], mask=jm[:, None] & (i1 < n_in)[None, :],
                         other=0.0)
            acc0 += tl.sum(g[:, None] * m0.to(w0.dtype) * w0, axis=0)
            acc1 += tl.sum(g[:, None] * m1.to(w1.dtype) * w1, axis=0)
        tl.store(out_ptr + r * n_in + i0, acc0, mask=i0 < half)
        tl.store(out_ptr + r * n_in + i1, acc1, mask=i1 < n_in)

    @triton.jit
    def _grad_weight_kernel(g_ptr, x_ptr, out_ptr, key, thr, scale, sigma, n_in, n_out, rows, positions,
                            GAUSSIAN: tl.constexpr, BO: tl.constexpr, BQ: tl.constexpr):
        offs_j = tl.program_id(0) * BO + tl.arange(0, BO)
        offs_q = tl.program_id(1) * BQ + tl.arange(0, BQ)
        key = key.to(tl.uint64)
        half = (n_in + 1) // 2
        n_out64 = n_out.to(tl.uint64)
        jm = offs_j < n_out
        i0 = offs_q
        i1 = i0 + half
        acc0 = tl.zeros((BO, BQ), dtype=out_ptr.dtype.element_ty)
        acc1 = tl.zeros((BO, BQ), dtype=out_ptr.dtype.element_ty)
        for r in range(0, rows):
            s = (r // positions).to(tl.uint64)
            m0, m1 = _masks(s, offs_j, offs_q, n_out64, half, key, thr, scale, sigma, GAUSSIAN)
            g = tl.load(g_ptr + r * n_out + offs_j, mask=jm, other=0.0)
            x0 = tl.load(x_ptr + r * n_in + i0, mask=i0 < half, other=0.0)
            x1 = tl.load(x_ptr + r * n_in + i1, mask=i1 < n_in, other=0.0)
            acc0 += g[:, None] * m0.to(g.dtype) * x0[None, :]
            acc1 += g[:, None] * m1.to(g.dtype) * x1[None, :]
        tl.store(out_ptr + offs_j[:, None] * n_in + i0[None, :], acc0, mask=jm[:, None] & (i0 < half)[None, :])
        tl.store(out_ptr + offs_j[:, None] * n_in + i1[None, :], acc1, mask=jm[:, None] & (i1 < n_in)[None, :])


def _work(*tensors):
    """Contiguous copies in the working dtype: half and bfloat16 accumulate in float32."""
    dt = tensors[0].dtype
    work = torch.float32 if dt in (torch.float16, torch.bfloat16) else dt
    return [t.to(work).contiguous() for t in tensors]


def _scalars(seed, p, gaussian):
    return dict(key=seed_key(seed), thr=drop_threshold(p), scale=1.0 / (1.0 - p), sigma=math.sqrt(p / (1.0 - p)),
                GAUSSIAN=bool(gaussian))


def masked_linear(x: Tensor, weight: Tensor, seed: int, p: float, gaussian: bool, positions: int = 1) -> Tensor:
    r""":math:`z_r = (W \circ M_{s(r)}) x_r`, ``x`` of shape ``(rows, in)`` (same dtype as ``weight``)."""
    dtype = x.dtype
    x, weight = _work(x, weight)
    rows, n_in = x.shape
    n_out = weight.shape[0]
    out = torch.empty((rows, n_out), device=x.device, dtype=x.dtype)
    if rows:
        grid = (rows, triton.cdiv(n_out, BLOCK_O))
        _forward_kernel[grid](x, weight, out, n_in=n_in, n_out=n_out, positions=positions, BO=BLOCK_O,
                              BQ=BLOCK_Q, **_scalars(seed, p, gaussian))
    return out.to(dtype)


def masked_linear_grad_input(grad: Tensor, weight: Tensor, seed: int, p: float, gaussian: bool,
                             positions: int = 1) -> Tensor:
    r""":math:`(W \circ M_{s(r)})^\top g_r`, ``grad`` of shape ``(rows, out)``."""
    dtype = grad.dtype
    grad, weight = _work(grad, weight)
    rows, n_out = grad.shape
    n_in = weight.shape[1]
    out = torch.empty((rows, n_in), device=grad.device, dtype=grad.dtype)
    if rows:
        grid = (rows, triton.cdiv((n_in + 1) // 2, BLOCK_Q))
        _grad_input_kernel[grid](grad, weight, out, n_in=n_in, n_out=n_out, positions=positions, BO=BLOCK_O,
                                 BQ=BLOCK_Q, **_scalars(seed, p, gaussian))
    return out.to(dtype)


def masked_linear_grad_weight(grad: Tensor, x: Tensor, seed: int, p: float, gaussian: bool,
                              positions: int = 1) -> Tensor:
    r""":math:`\sum_r M_{s(r)} \circ (g_r x_r^\top)`, shape ``(out, in)``."""
    dtype = grad.dtype
    grad, x = _work(grad, x)
    rows, n_out = grad.shape
    n_in = x.shape[1]
    out = torch.zeros((n_out, n_in), device=grad.device, dtype=grad.dtype)
    if rows:
        grid = (triton.cdiv(n_out, BLOCK_O), triton.cdiv((n_in + 1) // 2, BLOCK_Q))
        _grad_weight_kernel[grid](grad, x, out, n_in=n_in, n_out=n_out, rows=rows, positions=positions,
                                  BO=BLOCK_O, BQ=BLOCK_Q, **_scalars(seed, p, gaussian))
    return out.to(dtype)
