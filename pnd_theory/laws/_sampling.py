r"""The one torch sampler of mask values: every mask of every route is drawn here.

Strategies' laws, the torch layers (:mod:`pnd_theory.nn`), Monte Carlo and training all draw
through :func:`sample_mask` (inverted Bernoulli and Gaussian values of mean 1) or through a
scalar law's own ``sample`` method, which for the built-in laws calls it.

* ``stir="drop"``: ``M = B / (1 - p)`` with ``B ~ Bernoulli(1 - p)``: ``0`` with probability
  ``p`` and ``1/(1-p)`` with probability ``1 - p``;
* ``stir="gaussian"``: ``M ~ N(1, lam)``, ``lam = p / (1 - p)``.

Both have mean 1 and variance ``lam``.  This module stands on torch only: it is the ground
floor that the laws and the layers stand on.  It also draws the seeds
(:func:`draw_seed_tensor`) of the exact per-sample masked linear map, whose masks come from a
counter-based generator keyed by ``(seed, sample, output, input)`` and are computed inside the
products (:mod:`pnd_theory.kernels`).
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
from torch import Tensor

#: Allowed noise kinds ("stirs") of the masks.
STIRS = ("drop", "gaussian")

SEED_HIGH = 2**62  # seeds drawn for local generators lie in [0, 2**62)


# ----------------------------------------------------------------------------
# random number generation
# ----------------------------------------------------------------------------
def same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    return a.index is None or b.index is None or a.index == b.index


def draw_seed(generator: Optional[torch.Generator] = None) -> int:
    """Draw a seed in ``[0, 2**62)`` from ``generator`` or, if None, the global CPU RNG."""
    if generator is None:
        return int(torch.randint(0, SEED_HIGH, (1,)).item())
    return int(
        torch.randint(0, SEED_HIGH, (1,), generator=generator, device=generator.device).item()
    )


def seeded_generator(seed: int, device: Union[str, torch.device]) -> torch.Generator:
    """A fresh generator on ``device`` seeded with ``seed`` (CUDA generator for CUDA)."""
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(int(seed))
    return g


def generator_for(
    generator: Optional[torch.Generator], device: Union[str, torch.device]
) -> Optional[torch.Generator]:
    """Generator usable for sampling on ``device``.

    The given generator itself when it lives on ``device``; otherwise a fresh
    generator on ``device`` seeded from it (so the given one is still the only
    source of randomness). ``None`` stays ``None`` (the device's global RNG).
    """
    if generator is None:
        return None
    device = torch.device(device)
    if same_device(generator.device, device):
        return generator
    return seeded_generator(draw_seed(generator), device)


def sample_mask(
    shape,
    p: Union[float, Tensor],
    stir: str = "drop",
    *,
    generator: Optional[torch.Generator] = None,
    device: Union[str, torch.device, None] = None,
    dtype: Optional[torch.dtype] = None,
    centered: bool = False,
    out: Optional[Tensor] = None,
) -> Tensor:
    r"""``M = B / (1 - p)``, ``B ~ Bernoulli(1 - p)`` (``stir="drop"``) or ``M ~ N(1, p/(1-p))`` (``stir="gaussian"``).

    The one sampler of this module: every mask of every layer is drawn here.

    Parameters
    ----------
    shape : tuple of int
        Shape of the mask.
    p : float or Tensor
        Drop probability in ``[0, 1)``: a scalar, or a tensor broadcastable to
        ``shape`` giving a per-position drop probability (not validated here).
    stir : {"drop", "gaussian"}
        Bernoulli with inverted scaling, or Gaussian with the same mean and variance.
    generator : torch.Generator, optional
        Source of randomness; must live on ``device``. Default: the global RNG.
    device, dtype
        Of the result (default: CPU, the default floating dtype).
    centered : bool
        Return the centered noise ``M - 1`` instead of ``M`` (computed without
        the rounding of a subtraction: for the Gaussian it is ``sqrt(lam) * N(0, 1)``).
    out : Tensor, optional
        Write the mask into this existing tensor (of shape ``shape``; its device
        and dtype override ``device`` and ``dtype``) and return it, so that a
        chunked loop can reuse one buffer instead of allocating (and
        page-faulting) a new one per chunk. Same values as without ``out``.

    Returns
    -------
    Tensor
        A new tensor (``out`` itself if given) of the given shape with
        ``E[M] = 1`` and ``Var[M] = lam = p/(1-p)`` elementwise, independent
        across positions (mean 0 if ``centered``).

    Notes
    -----
    Exactly one uniform ``u`` of ``torch.rand`` is consumed per element, in
    row-major order, and nothing else is drawn. On CPU the stream of
    ``torch.rand`` is sequential, so drawing a mask of ``n1 + n2`` elements gives
    the same values as drawing ``n1`` then ``n2`` elements from the same
    generator state: chunked sampling reproduces unchunked sampling exactly.
    (This is why ``torch.randn`` is not used: its CPU kernel is not chunk-invariant.)
    On CUDA the Philox offsets advance per call, so only identical sequences of
    calls reproduce identical masks.

    * drop: keep iff ``u >= p`` (probability ``1 - p`` up to the grid of ``u``:
      ``2**-24`` in float32, ``2**-53`` in float64).
    * gaussian: inverse CDF, ``N = sqrt(2) * erfinv(2 v)`` with
      ``v = u - 1/2 + eps/4`` (``eps = torch.finfo(dtype).eps``; the grid of
      ``u`` is ``eps/2``), an exactly symmetric grid strictly inside
      ``(-1/2, 1/2)``: no infinite values; the tails are cut at about 5.4 sd
      in float32 and 8.3 sd in float64, like any floating-point normal sampler.

    Half and bfloat16 masks are sampled in float32 and rounded.
    """
    if out is not None:
        if tuple(out.shape) != tuple(shape):
            raise ValueError(f"out must have shape {tuple(shape)}; got {tuple(out.shape)}")
        device, dtype = out.device, out.dtype
    if dtype is None:
        dtype = torch.get_default_dtype()
    work = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    if out is not None and work == dtype:
        u = out.uniform_(0.0, 1.0, generator=generator)  # the kernel of torch.rand
    else:
        u = torch.rand(shape, generator=generator, device=device, dtype=work)
    if isinstance(p, Tensor):
        p_w = p.to(device=u.device, dtype=work)
        keep = 1.0 - p_w
    else:
        p_w = float(p)
        keep = 1.0 - p_w
    if stir == "drop":
        u.ge_(p_w)  # 1 with probability 1 - p, else 0
        u.mul_(keep.reciprocal() if isinstance(keep, Tensor) else 1.0 / keep)
        if centered:
            u.sub_(1.0)
    elif stir == "gaussian":
        half_ulp = torch.finfo(work).eps / 4.0  # half the spacing of the rand grid
        bound = 0.5 - half_ulp
        u.sub_(bound).clamp_(-bound, bound).mul_(2.0).erfinv_()
        if isinstance(p_w, Tensor):
            u.mul_(torch.sqrt(2.0 * p_w / keep))
        else:
            u.mul_(math.sqrt(2.0 * p_w / keep))
        if not centered:
            u.add_(1.0)
    else:
        raise ValueError(f"stir must be one of {STIRS}; got {stir!r}")
    if work == dtype:
        return u
    return out.copy_(u) if out is not None else u.to(dtype)


# ----------------------------------------------------------------------------
# seeds of the counter-based masks
# ----------------------------------------------------------------------------
def draw_seed_tensor(generator: Optional[torch.Generator] = None) -> Tensor:
    """A 0-d int64 seed tensor in ``[0, 2**62)``, drawn without leaving torch (no ``.item()``).

    From ``generator`` when given, else from the global CPU RNG (``torch.manual_seed`` makes
    it reproducible); traceable by ``torch.compile`` and, inside ``torch.func.vmap(...,
    randomness="different")``, one seed per batch entry.
    """
    if generator is None:
        return torch.randint(0, SEED_HIGH, (), dtype=torch.int64)
    return torch.randint(0, SEED_HIGH, (), dtype=torch.int64, generator=generator, device=generator.device)
