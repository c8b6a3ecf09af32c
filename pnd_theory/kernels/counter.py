r"""Counter-based mask values and the fused per-sample masked linear map.

.. math::

    z_r = (W \circ M_{s(r)})\, x_r, \qquad
    \frac{\partial L}{\partial x_r} = (W \circ M_{s(r)})^\top g_r, \qquad
    \frac{\partial L}{\partial W} = \sum_r M_{s(r)} \circ (g_r x_r^\top),

with ``s(r) = r // positions`` the sample of row ``r`` (``positions = 1``: a mask per row).
No mask is stored: each value :math:`M_{s,j,i}` is a function of ``(seed, s, j, i)`` alone,
computed inside the multiply-accumulate, so backward regenerates the forward's masks, nothing
of size ``rows x out x in`` ever exists, and results do not depend on chunking or threads.

The generator
-------------
A counter-based hash in two stages: a 64-bit key per row of a mask, computed once and
amortized over the row's inputs, and a 32-bit hash per connection, built on 32-bit
multiplies only (they vectorize on every x86 vector unit; 64-bit ones do not on AVX2).

* The stream key is ``K = mix64(seed + GAMMA)`` and the key of row ``j`` of sample ``s`` is
  ``R = mix64(K + (s * n_out + j + 1) * GAMMA)`` (mod ``2**64``): SplitMix64 (Steele, Lea and
  Flood, 2014) read as a counter-based generator, ``GAMMA = 0x9E3779B97F4A7C15`` and
  ``mix64`` Stafford's "variant 13" finalizer (the sequence passes BigCrush).  Distinct rows
  get distinct 64-bit keys (``mix64`` is a bijection and ``GAMMA`` is odd).
* Connection ``i`` of that row draws the 32-bit value
  ``u = lowbias32(((k0 + i * C) mod 2**32) XOR k1)`` with ``k0 = R mod 2**32``,
  ``k1 = R >> 32``, ``C = 0x9E3779B9`` and ``lowbias32`` Wellons' two-multiply 32-bit
  finalizer (``v ^= v >> 16; v *= 0x7FEB352D; v ^= v >> 15; v *= 0x846CA68B; v ^= v >> 16``,
  a bijection of low avalanche bias).  Within a row the ``u`` are distinct; two rows give the
  same value at two connections only by a 32-bit coincidence, never along a whole row unless
  their 64-bit keys agree.

* Bernoulli (``gaussian=False``): keep iff ``u >= t`` with ``t = round(p * 2**32)``, value
  ``1/(1-p)`` when kept, else 0.  The keep probability is ``1 - t 2^{-32}``, exact to the
  resolution ``2**-32`` of one 32-bit draw per comparison (within ``2**-33`` of ``1 - p``;
  finer than a float32 uniform).
* Gaussian: with ``h = ceil(n_in / 2)``, the partners ``i < h`` and ``i + h`` take
  Box-Muller of their draws ``a = u_i``, ``b = u_{i+h}`` (an odd ``n_in`` draws ``u_{n_in}``
  for the partner of ``h - 1``), ``u = (a + 1) 2^{-32} \in (0, 1]``,
  ``\theta = 2\pi b\, 2^{-32}``, ``\rho = \sqrt{-2 \ln u}``; connection ``i`` gets
  ``1 + \sigma \rho \cos\theta`` and ``i + h`` gets ``1 + \sigma \rho \sin\theta``
  (partners half a row apart, so that the kernels' loops run over contiguous inputs), with ``\sigma = \sqrt{p / (1 - p)}`` (two
  independent normals; the tails are cut at ``\rho \le 6.66``).

Three implementations compute the same values: :func:`counter_masks` in plain torch (any
device; the reference), the numba kernels of this module (CPU; ``fastmath`` off, a fixed
summation order per output entry, compiled on first use in each process), and the Triton
kernels of :mod:`pnd_theory.kernels.cuda` (CUDA).  Bernoulli masks agree bit for bit;
Gaussian ones to the rounding of ``log``, ``cos`` and ``sin`` for float64 work (the numba
kernels use their own polynomials so that they vectorize) and to float32 accuracy for float32
work, which the numba kernels do in float32 operations only (normals within ``7e-7`` of the
float64 values, measured over four million outputs and the edge cases of ``a`` and ``b``).

The conditional Gaussian map (:func:`pnd_theory.kernels.cpu.conditional_gaussian_cpu`,
:func:`pnd_theory.kernels.cpu.masked_linear_backward_conditional_cpu`) draws one more normal per output and row,
:func:`counter_normals`, from a stream of its own; see :func:`pnd_theory.kernels.ops.masked_linear`.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["GAMMA", "seed_key", "drop_threshold", "row_keys", "lowbias32_int", "counter_outputs", "counter_masks",
           "counter_normals"]


MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
#: the Weyl step of the connection counter and the two multipliers of ``lowbias32``
C32 = 0x9E3779B9
LB1 = 0x7FEB352D
LB2 = 0x846CA68B


def _mix_int(z: int) -> int:
    z &= MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def seed_key(seed: int) -> int:
    """The stream key ``mix64(seed + GAMMA)`` of a seed (an integer, taken mod ``2**64``)."""
    return _mix_int(int(seed) + GAMMA)


def drop_threshold(p: float) -> int:
    """``t = round(p * 2**32)``: a 32-bit draw ``a`` keeps its connection iff ``a >= t``."""
    return min(int(round(float(p) * 2.0**32)), 2**32)


# ----------------------------------------------------------------------------
# torch reference (any device): the masks themselves
# ----------------------------------------------------------------------------
def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _shr(z: Tensor, s: int) -> Tensor:
    """Logical right shift of int64 bit patterns."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def _mix_torch(z: Tensor) -> Tensor:
    z = (z ^ _shr(z, 30)) * _signed(MIX1)
    z = (z ^ _shr(z, 27)) * _signed(MIX2)
    return z ^ _shr(z, 31)


def row_keys(seed: int, samples, n_out: int, device=None) -> Tensor:
    """The 64-bit row keys ``R = mix64(K + (s * n_out + j + 1) * GAMMA)`` as int64 bit patterns,
    shape ``(len(samples), n_out)``."""
    s = torch.as_tensor(samples, dtype=torch.int64, device=device).reshape(-1, 1)
    j = torch.arange(n_out, device=s.device, dtype=torch.int64).reshape(1, -1)
    return _mix_torch(_signed(seed_key(seed)) + (s * n_out + j + 1) * _signed(GAMMA))


def lowbias32_int(v: int) -> int:
    """``lowbias32`` of a 32-bit integer (Python integers; the specification of the mix)."""
    v &= 0xFFFFFFFF
    v ^= v >> 16
    v = (v * LB1) & 0xFFFFFFFF
    v ^= v >> 15
    v = (v * LB2) & 0xFFFFFFFF
    return v ^ (v >> 16)


def _lowbias32_torch(v: Tensor) -> Tensor:
    """``lowbias32`` of int64 tensors holding 32-bit values (products wrap; the low 32 bits kept)."""
    v = v ^ (v >> 16)
    v = (v * LB1) & 0xFFFFFFFF
    v = v ^ (v >> 15)
    v = (v * LB2) & 0xFFFFFFFF
    return v ^ (v >> 16)


def counter_outputs(seed: int, samples, n_out: int, n_in: int, device=None) -> Tensor:
    """The 32-bit draws ``u`` behind the masks of ``samples`` (int64 holding values in
    ``[0, 2**32)``), shape ``(len(samples), n_out, 2 * ceil(n_in / 2))``: entry ``[., j, i]``
    is the draw of connection ``i`` of output ``j`` (one more for an odd ``n_in``)."""
    r = row_keys(seed, samples, n_out, device).unsqueeze(-1)
    k0, k1 = r & 0xFFFFFFFF, _shr(r, 32)
    i = torch.arange(2 * ((n_in + 1) // 2), device=r.device, dtype=torch.int64)
    return _lowbias32_torch(((k0 + i * C32) & 0xFFFFFFFF) ^ k1)


def counter_masks(seed: int, samples, n_out: int, n_in: int, p: float, gaussian: bool,
                  device=None, dtype=torch.float64) -> Tensor:
    r"""The masks :math:`M_{s,j,i}` of the given samples, shape ``(len(samples), n_out, n_in)``.

    The reference implementation of the generator described in the module docstring, in plain
    torch integer arithmetic (int64 products wrap like ``uint64`` ones).  It materializes the
    masks: the fused kernels compute the same values without storing them.

    Parameters
    ----------
    seed : int
        Seed of the stream.
    samples : sequence of int or Tensor
        Sample indices ``s``.
    n_out, n_in : int
        Shape of one mask.
    p : float
        Drop probability in ``[0, 1)``.
    gaussian : bool
        Gaussian instead of Bernoulli values.
    device, dtype
        Of the result.
    """
    u = counter_outputs(seed, samples, n_out, n_in, device)
    if gaussian:
        m = 1.0 + math.sqrt(p / (1.0 - p)) * _box_muller_torch(u)
    else:
        m = (u >= drop_threshold(p)).double() * (1.0 / (1.0 - p))
    return m[..., :n_in].to(dtype)


def _box_muller_torch(u: Tensor) -> Tensor:
    """Normals from the draws ``u`` (last axis of even size ``2h``): partners ``(u_i, u_{i+h})``
    give the normals of ``i`` and ``i + h``, in float64."""
    h = u.shape[-1] // 2
    a, b = u[..., :h], u[..., h:]
    theta = b.double() * (2.0 * math.pi * 2.0**-32)
    rho = torch.sqrt(-2.0 * torch.log((a.double() + 1.0) * 2.0**-32))
    return torch.cat((rho * torch.cos(theta), rho * torch.sin(theta)), -1)


def counter_normals(seed: int, rows: int, n_out: int, device=None, dtype=torch.float64) -> Tensor:
    r"""Standard normals :math:`n_{r,j}`, shape ``(rows, n_out)``, of the stream of ``seed + GAMMA``.

    The same generator and Box-Muller step as the Gaussian masks, on a stream of its own
    (key ``mix64(seed + 2 GAMMA)``, where the masks of ``seed`` use ``mix64(seed + GAMMA)``):
    the normals of row ``r`` are the Gaussian mask values of sample ``r``, output 0, connections
    ``j`` of that stream, less 1 and divided by ``sigma``.  They are the
    forward draws of the conditional Gaussian map (:func:`pnd_theory.laws._sampling.masked_linear`).
    """
    u = counter_outputs(int(seed) + GAMMA, torch.arange(rows), 1, n_out, device)
    return _box_muller_torch(u).reshape(rows, -1)[:, :n_out].to(dtype)
