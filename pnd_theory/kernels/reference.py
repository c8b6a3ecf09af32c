r"""The torch route of the fused per-sample masked linear map: any device, no compiled kernel.

.. math::

    z_r = (W \circ M_{s(r)})\, x_r, \qquad
    g^x_r = (W \circ M_{s(r)})^\top g_r, \qquad
    g^W = \sum_r M_{s(r)} \circ (g_r x_r^\top),

with the masks of :func:`pnd_theory.kernels.counter.counter_masks` materialized a chunk of
rows at a time (at most :data:`CHUNK_ELEMENTS` mask values held at once).  It is the route of
devices without a compiled kernel (CUDA without Triton, other devices) and the plain formula
the kernels are checked against.  The functions share the signatures of the numba kernels
(:mod:`pnd_theory.kernels.cpu`) and return the promoted dtype of their float arguments.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .counter import counter_masks, counter_normals

__all__ = ["CHUNK_ELEMENTS", "masked_linear", "masked_linear_grad_input", "masked_linear_grad_weight",
           "conditional_gaussian"]

#: mask elements held at once
CHUNK_ELEMENTS = 2**22


def _row_chunks(rows: int, n_out: int, n_in: int):
    step = max(1, CHUNK_ELEMENTS // max(1, n_out * n_in))
    return [(a, min(rows, a + step)) for a in range(0, rows, step)]


def _masks(a, b, positions, n_out, n_in, seed, p, gaussian, like):
    samples = torch.arange(a, b, device=like.device) // positions
    return counter_masks(seed, samples, n_out, n_in, p, gaussian, device=like.device, dtype=like.dtype)


def masked_linear(x: Tensor, weight: Tensor, seed: int, p: float, gaussian: bool, positions: int = 1) -> Tensor:
    r""":math:`z_r = (W \circ M_{s(r)}) x_r`, shape ``(rows, out)``."""
    dt = torch.promote_types(x.dtype, weight.dtype)
    n_out, n_in = weight.shape
    z = x.new_empty((x.shape[0], n_out), dtype=dt)
    for a, b in _row_chunks(x.shape[0], n_out, n_in):
        m = _masks(a, b, positions, n_out, n_in, seed, p, gaussian, z)
        z[a:b] = torch.einsum("roi,oi,ri->ro", m, weight.to(dt), x[a:b].to(dt))
    return z


def masked_linear_grad_input(grad: Tensor, weight: Tensor, seed: int, p: float, gaussian: bool,
                             positions: int = 1) -> Tensor:
    r""":math:`(W \circ M_{s(r)})^\top g_r`, shape ``(rows, in)``."""
    dt = torch.promote_types(grad.dtype, weight.dtype)
    n_out, n_in = weight.shape
    gx = grad.new_empty((grad.shape[0], n_in), dtype=dt)
    for a, b in _row_chunks(grad.shape[0], n_out, n_in):
        m = _masks(a, b, positions, n_out, n_in, seed, p, gaussian, gx)
        gx[a:b] = torch.einsum("roi,oi,ro->ri", m, weight.to(dt), grad[a:b].to(dt))
    return gx


def masked_linear_grad_weight(grad: Tensor, x: Tensor, seed: int, p: float, gaussian: bool,
                              positions: int = 1) -> Tensor:
    r""":math:`\sum_r M_{s(r)} \circ (g_r x_r^\top)`, shape ``(out, in)``."""
    dt = torch.promote_types(grad.dtype, x.dtype)
    n_out, n_in = grad.shape[1], x.shape[1]
    gw = grad.new_zeros((n_out, n_in), dtype=dt)
    for a, b in _row_chunks(grad.shape[0], n_out, n_in):
        m = _masks(a, b, positions, n_out, n_in, seed, p, gaussian, gw)
        gw += torch.einsum("roi,ri,ro->oi", m, x[a:b].to(dt), grad[a:b].to(dt))
    return gw


def conditional_gaussian(x: Tensor, weight: Tensor, seed: int, p: float) -> Tensor:
    r""":math:`z_{rj} = W_j \cdot x_r + \sigma n_{rj} \sqrt{\sum_i W_{ji}^2 x_{ri}^2}` with the
    normals of :func:`pnd_theory.kernels.counter.counter_normals`, two products and no mask."""
    dt = torch.promote_types(x.dtype, weight.dtype)
    x, weight = x.to(dt), weight.to(dt)
    spread = torch.nn.functional.linear(x * x, weight * weight).sqrt_()
    n = counter_normals(seed, x.shape[0], weight.shape[0], device=x.device, dtype=dt)
    return torch.nn.functional.linear(x, weight).addcmul_(n, spread, value=math.sqrt(p / (1.0 - p)))
