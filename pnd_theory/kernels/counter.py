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
SplitMix64 (Steele, Lea and Flood, 2014) read as a counter-based generator: output number
``c`` of the stream with key ``k`` is ``mix(k + (c + 1) * GAMMA)`` (mod ``2**64``), with
``GAMMA = 0x9E3779B97F4A7C15`` and ``mix`` Stafford's "variant 13" 64-bit finalizer
(the SplitMix64 output function; the sequence passes BigCrush).  The key is
``mix(seed + GAMMA)``.  Connections ``i = 2q`` and ``2q + 1`` of row ``j`` of sample ``s``
share output number ``c = (s * n_out + j) * ceil(n_in / 2) + q``: the high 32 bits ``a`` go
to ``2q``, the low 32 bits ``b`` to ``2q + 1``.

* Bernoulli (``gaussian=False``): keep iff ``a >= t`` (resp. ``b >= t``) with
  ``t = round(p * 2**32)``, value ``1/(1-p)`` when kept, else 0 (keep fraction within
  ``2**-33`` of ``1 - p``).
* Gaussian: Box-Muller on the pair, ``u = (a + 1) 2^{-32} \in (0, 1]``,
  ``\theta = 2\pi b\, 2^{-32}``, ``\rho = \sqrt{-2 \ln u}``; connection ``2q`` gets
  ``1 + \sigma \rho \cos\theta`` and ``2q + 1`` gets ``1 + \sigma \rho \sin\theta``, with
  ``\sigma = \sqrt{p / (1 - p)}`` (two independent normals; the tails are cut at
  ``\rho \le 6.66``).

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

__all__ = ["GAMMA", "seed_key", "drop_threshold", "counter_outputs", "counter_masks", "counter_normals"]


MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB


def _mix_int(z: int) -> int:
    z &= MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def seed_key(seed: int) -> int:
    """The stream key ``mix(seed + GAMMA)`` of a seed (an integer, taken mod ``2**64``)."""
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


def counter_outputs(seed: int, samples, n_out: int, n_in: int, device=None) -> Tensor:
    """The 64-bit outputs behind the masks of ``samples``: int64 bit patterns, shape
    ``(len(samples), n_out, ceil(n_in / 2))``; entry ``[., j, q]`` serves connections ``2q``
    (high 32 bits) and ``2q + 1`` (low 32 bits) of output ``j``."""
    s = torch.as_tensor(samples, dtype=torch.int64, device=device).reshape(-1, 1, 1)
    pairs = (n_in + 1) // 2
    j = torch.arange(n_out, device=s.device, dtype=torch.int64).reshape(1, -1, 1)
    q = torch.arange(pairs, device=s.device, dtype=torch.int64).reshape(1, 1, -1)
    c = (s * n_out + j) * pairs + q + 1
    return _mix_torch(_signed(seed_key(seed)) + c * _signed(GAMMA))


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
    h = counter_outputs(seed, samples, n_out, n_in, device)
    if gaussian:
        m = 1.0 + math.sqrt(p / (1.0 - p)) * _box_muller_torch(h)
    else:
        t = drop_threshold(p)
        m = torch.stack((_shr(h, 32) >= t, (h & 0xFFFFFFFF) >= t), -1).double() * (1.0 / (1.0 - p))
    return m.reshape(h.shape[0], n_out, -1)[..., :n_in].to(dtype)


def _box_muller_torch(h: Tensor) -> Tensor:
    """The two normals of each 64-bit output (last axis of size 2), in float64."""
    u = (_shr(h, 32).double() + 1.0) * 2.0**-32
    theta = (h & 0xFFFFFFFF).double() * (2.0 * math.pi * 2.0**-32)
    rho = torch.sqrt(-2.0 * torch.log(u))
    return torch.stack((rho * torch.cos(theta), rho * torch.sin(theta)), -1)


def counter_normals(seed: int, rows: int, n_out: int, device=None, dtype=torch.float64) -> Tensor:
    r"""Standard normals :math:`n_{r,j}`, shape ``(rows, n_out)``, of the stream of ``seed + GAMMA``.

    The same generator and Box-Muller step as the Gaussian masks, on a stream of its own
    (key ``mix(seed + 2 GAMMA)``, where the masks of ``seed`` use ``mix(seed + GAMMA)``): output
    ``c = r * ceil(n_out / 2) + q`` gives :math:`n_{r,2q}` and :math:`n_{r,2q+1}`.  They are the
    forward draws of the conditional Gaussian map (:func:`pnd_theory.sampling.masked_linear`).
    """
    h = counter_outputs(int(seed) + GAMMA, torch.arange(rows), 1, n_out, device)
    return _box_muller_torch(h).reshape(rows, -1)[:, :n_out].to(dtype)


# ----------------------------------------------------------------------------
# numba kernels (CPU)
# ----------------------------------------------------------------------------
