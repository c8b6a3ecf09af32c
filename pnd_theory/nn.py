r"""Noisy linear layers and hidden-unit noise modules (PyTorch).

``z_k = (W \circ M_k) x_k + b`` with a fresh mask ``M_k`` for every sample ``k``
(PerNodeDrop), one mask per mini-batch (DropConnect), or noise on the hidden
units ``h \circ m`` (Gaussian dropout, DropBlock over units, per-unit dropout).

Conventions
-----------
``p`` is a *drop* probability in ``[0, 1)`` exactly as in :class:`torch.nn.Dropout`;
the keep probability is ``1 - p`` and ``lam = p / (1 - p)``. Every mask has mean 1
(inverted scaling):

* ``stir="drop"``: ``M = B / (1 - p)`` with ``B ~ Bernoulli(1 - p)``, i.e. ``M`` is
  ``0`` with probability ``p`` and ``1/(1-p)`` with probability ``1 - p``;
* ``stir="gaussian"``: ``M ~ N(1, lam)``.

Both have ``E[M] = 1`` and ``Var[M] = lam``. ``p = 0`` means no noise at all: the
modules then compute exactly the plain layer (no sampling, no scaling).

All masks are drawn by the package's one sampler, :func:`pnd_theory.sampling.sample_mask`.

The layers stand on the sampler (:mod:`pnd_theory.sampling`); :class:`LinearNetwork` is
re-exported here from :mod:`pnd_theory.network`.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

__all__ = [
    "PerNodeDropLinear",
    "DropConnectLinear",
    "GaussianDropout",
    "BlockDropout",
    "NodeDropout",
    "per_sample_masked_linear",
    "STIRS",
    "LinearNetwork",
]

from .network import LinearNetwork
from .ydrop import YDrop  # noqa: F401  (conductance-based per-unit dropout, public here as pnd_theory.nn.YDrop)
from .sampling import (STIRS, SEED_HIGH as _SEED_HIGH, draw_seed as _draw_seed, generator_for as _generator_for,
                       same_device as _same_device, sample_mask as _sample_mask, seeded_generator as _seeded_generator)


# ----------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------
def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int; got {value!r}")
    return int(value)


def _check_prob(name: str, value) -> float:
    """Validate a drop probability: a real number (not bool) in [0, 1)."""
    if isinstance(value, Tensor) and value.numel() == 1 and not value.dtype == torch.bool:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"{name} must be a real number in [0, 1) (a drop probability as in "
            f"torch.nn.Dropout); got {value!r}"
        )
    value = float(value)
    if not (0.0 <= value < 1.0):  # also rejects nan
        raise ValueError(
            f"{name} must be a real number in [0, 1) (a drop probability as in "
            f"torch.nn.Dropout); got {value!r}"
        )
    return value


def _check_stir(value) -> str:
    if not isinstance(value, str) or value not in STIRS:
        raise ValueError(f"stir must be one of {STIRS}; got {value!r}")
    return value


def _check_generator(value) -> Optional[torch.Generator]:
    if value is not None and not isinstance(value, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None; got {value!r}")
    return value


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool; got {value!r}")
    return bool(value)


def _check_input(name: str, x, in_features: Optional[int] = None) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if x.dim() < 1:
        raise ValueError(f"{name} must have at least one dimension; got shape {tuple(x.shape)}")
    if in_features is not None and x.shape[-1] != in_features:
        raise ValueError(
            f"{name} must have last dimension in_features={in_features}; "
            f"got shape {tuple(x.shape)}"
        )
    return x


# ----------------------------------------------------------------------------
# exact per-sample masked linear map (chunked, mask regenerated in backward)
# ----------------------------------------------------------------------------
def _chunk_size(in_features: int, out_features: int, max_mask_elements: int) -> int:
    return max(1, max_mask_elements // (in_features * out_features))


class _PerSampleMaskedLinearFn(torch.autograd.Function):
    r"""``z_k = (W \circ M_k) x_k (+ b)`` for a 2-D input, masks regenerated from a seed.

    Forward and backward both walk the batch in chunks of ``chunk`` samples and
    draw each chunk's ``(chunk, out, in)`` mask with :func:`_sample_mask` from a
    generator seeded with ``seed`` on the input's device, in the same order, so
    backward sees exactly the forward's masks. Only the input and the weight
    are saved for backward.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, p, stir, chunk, seed):  # noqa: D102
        n = x.shape[0]
        out_f, in_f = weight.shape
        x = x.contiguous()
        z = torch.empty((n, out_f), device=x.device, dtype=torch.result_type(x, weight))
        gen = _seeded_generator(seed, x.device)
        buf = torch.empty((min(n, chunk), out_f, in_f), device=x.device, dtype=weight.dtype)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            m = _sample_mask((e - s, out_f, in_f), p, stir, generator=gen, out=buf[: e - s])
            m.mul_(weight)  # masked weights W o M_k, in place
            # z_k = x_k^T (W o M_k)^T: a (1 x in)(in x out) product per sample (faster than M_k x_k)
            torch.bmm(x[s:e].unsqueeze(1), m.transpose(1, 2), out=z[s:e].unsqueeze(1))
            del m
        del buf
        if bias is not None:
            z.add_(bias)
        ctx.save_for_backward(x, weight)
        ctx.p, ctx.stir, ctx.chunk, ctx.seed = p, stir, chunk, seed
        ctx.has_bias = bias is not None
        return z

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_z):  # noqa: D102
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        grad_z = grad_z.contiguous()
        if need_b and ctx.has_bias:
            grad_b = grad_z.sum(0)
        if need_x or need_w:
            n = x.shape[0]
            out_f, in_f = weight.shape
            if need_x:
                grad_x = torch.empty_like(x)
            if need_w:
                grad_w = torch.zeros_like(weight)
            gen = _seeded_generator(ctx.seed, x.device)
            c = min(n, ctx.chunk)
            buf = torch.empty((c, out_f, in_f), device=x.device, dtype=weight.dtype)
            abuf = torch.empty_like(buf) if (need_x and need_w) else None
            for s in range(0, n, ctx.chunk):
                e = min(n, s + ctx.chunk)
                m = _sample_mask((e - s, out_f, in_f), ctx.p, ctx.stir, generator=gen, out=buf[: e - s])
                gz = grad_z[s:e]
                if need_x:
                    # d/dx_k = (W o M_k)^T g_k
                    a = torch.mul(m, weight, out=abuf[: e - s]) if need_w else m.mul_(weight)
                    torch.bmm(gz.unsqueeze(1), a, out=grad_x[s:e].unsqueeze(1))
                    del a
                if need_w:
                    # d/dW = sum_k M_k o (g_k x_k^T): multiply M_k by x_k in place, then
                    # contract the batch with g_k (one strided GEMM per output unit)
                    m.mul_(x[s:e].unsqueeze(1))
                    grad_w += torch.bmm(gz.t().unsqueeze(1), m.transpose(0, 1)).squeeze(1)
                del m
            del buf, abuf
        return grad_x, grad_w, grad_b, None, None, None, None


def per_sample_masked_linear(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    p: float = 0.5,
    stir: str = "drop",
    *,
    max_mask_elements: int = 2**24,
    generator: Optional[torch.Generator] = None,
    seed: Optional[int] = None,
) -> Tensor:
    r"""``z_k = (W \circ M_k) x_k + b``, an independent mask ``M_k`` for every sample ``k``.

    The exact PerNodeDrop linear map, functional form (used by
    :class:`PerNodeDropLinear` and ``DropConnectLinear(per_sample=True)``).

    Parameters
    ----------
    input : Tensor
        Shape ``(in,)``, ``(batch, in)`` or ``(batch, ..., in)``; all leading
        dimensions are flattened to samples, each with its own mask.
    weight : Tensor
        Shape ``(out, in)``.
    bias : Tensor, optional
        Shape ``(out,)``; never masked.
    p : float
        Drop probability in ``[0, 1)``; ``p = 0`` is ``F.linear`` (no sampling).
    stir : {"drop", "gaussian"}
        ``M_k`` Bernoulli ``{0, 1/(1-p)}`` or ``N(1, p/(1-p))``, i.i.d. over
        samples and connections.
    max_mask_elements : int
        At most this many mask elements exist at once: the batch is processed
        in chunks of ``max(1, max_mask_elements // (in * out))`` samples.
    generator : torch.Generator, optional
        If given, the seed is drawn from it; otherwise from the global CPU RNG
        (so ``torch.manual_seed`` makes results reproducible).
    seed : int, optional
        Use this seed directly (nothing is drawn from any RNG). The masks are
        those of :func:`_sample_mask` called chunk by chunk with a generator on
        the input's device seeded with ``seed``.

    Returns
    -------
    Tensor
        Shape ``(..., out)``.

    Notes
    -----
    Memory: no mask tensor ever has more than ``max_mask_elements`` elements.
    Forward allocates one chunk buffer per call, reused by all chunks (the mask,
    multiplied in place by ``W``); backward regenerates each chunk's mask from
    the seed into one reused buffer, plus a second one for ``W o M_k`` when both
    the input and the weight need gradients. Only ``input`` and ``weight`` are
    saved for backward, never a ``(batch, out, in)`` tensor. On CPU the masks
    for a given seed do not depend on the chunking (see :func:`_sample_mask`);
    on CUDA they do.

    Cost: the mask is drawn twice (forward and backward), so the exact path is
    bound by random number generation, about ``2 * batch * in * out`` uniforms
    per training step.
    Gradients w.r.t. input, weight and bias are the exact gradients of
    ``sum_k (W o M_k) x_k + b`` for the sampled masks. Not twice differentiable.
    """
    _check_input("input", input, weight.shape[-1] if isinstance(weight, Tensor) else None)
    if not isinstance(weight, Tensor) or weight.dim() != 2:
        raise ValueError(f"weight must be a 2-D tensor (out, in); got {getattr(weight, 'shape', weight)!r}")
    p = _check_prob("p", p)
    stir = _check_stir(stir)
    max_mask_elements = _check_positive_int("max_mask_elements", max_mask_elements)
    generator = _check_generator(generator)
    if p == 0.0:
        return F.linear(input, weight, bias)
    out_f, in_f = weight.shape
    lead = input.shape[:-1]
    x2 = input.reshape(-1, in_f)
    if seed is None:
        seed = _draw_seed(generator)
    chunk = _chunk_size(in_f, out_f, max_mask_elements)
    z = _PerSampleMaskedLinearFn.apply(x2, weight, bias, p, stir, chunk, int(seed))
    return z.reshape(*lead, out_f)


# ----------------------------------------------------------------------------
# layers
# ----------------------------------------------------------------------------
class _NoisyLinearBase(nn.Module):
    """Weight ``(out, in)`` and bias ``(out,)`` initialized exactly like :class:`torch.nn.Linear`."""

    def __init__(self, in_features, out_features, p, bias, max_mask_elements, device, dtype, generator):
        super().__init__()
        self.in_features = _check_positive_int("in_features", in_features)
        self.out_features = _check_positive_int("out_features", out_features)
        self.p = _check_prob("p", p)
        bias = _check_bool("bias", bias)
        self.max_mask_elements = _check_positive_int("max_mask_elements", max_mask_elements)
        self.generator = _check_generator(generator)
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty((self.out_features, self.in_features), **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    @property
    def lam(self) -> float:
        """``p / (1 - p)``, the variance of every mask entry."""
        return self.p / (1.0 - self.p)

    def reset_parameters(self) -> None:
        """Same initialization as :meth:`torch.nn.Linear.reset_parameters` (global RNG)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)

    def _check_forward_input(self, x) -> Tensor:
        return _check_input("input", x, self.in_features)


class PerNodeDropLinear(_NoisyLinearBase):
    r"""``z_k = (W \circ M_k) x_k + b``, an independent mask ``M_k`` per sample and connection.

    PerNodeDrop linear layer: in training every sample ``k`` of the batch gets its
    own ``(out, in)`` mask, i.i.d. over samples and connections, with
    ``M_k`` Bernoulli ``{0, 1/(1-p)}`` (``stir="drop"``) or ``N(1, lam)``
    (``stir="gaussian"``), ``lam = p/(1-p)``. The bias is not masked. Hence, for
    an input ``x``, ``E[z_j] = (W x)_j + b_j`` and
    ``Var[z_j] = lam * sum_i W_ji^2 x_i^2``, independently across units ``j``
    (the rows of ``M_k`` are independent) and samples.

    Parameters
    ----------
    in_features, out_features : int
        Positive sizes; the weight has shape ``(out_features, in_features)`` and
        the same initialization as :class:`torch.nn.Linear`.
    p : float
        Drop probability in ``[0, 1)``; ``p = 0`` is the plain layer.
    stir : {"drop", "gaussian"}
        Kind of mask.
    bias : bool
        Whether to add a learnable (unmasked) bias.
    fixed_mask : bool
        If True, one ``(out, in)`` mask is drawn **at construction** (buffer
        ``mask``, saved in the state dict) and used in training *and*
        evaluation alike: ``z = (W o M) x + b`` for all samples. Redraw it with
        :meth:`resample_mask`. If False, ``mask`` is None.
    local_reparameterization : bool
        Only with ``stir="gaussian"`` (else ValueError) and not with
        ``fixed_mask``. Fast path sampling the pre-activation directly::

            z = x W^T + sqrt((x^2) (W^2)^T) * sqrt(lam) * eps + b,   eps ~ N(0, I).

        **What it preserves**: the forward law, exactly. Given ``x``, output
        ``z_j = sum_i W_ji M_ji x_i + b_j`` is a linear function of the
        independent Gaussian row ``M_j.`` alone, so it is Gaussian with mean
        ``(W x)_j + b_j`` and variance ``lam sum_i W_ji^2 x_i^2``, and distinct
        units (and samples) are independent; the joint law of each sample's
        outputs given ``x`` is thus the same as the exact Gaussian layer's.
        **What it does not preserve**: the gradient noise. Its gradient with
        respect to ``W`` is a different random variable: ``dz_j/dW_ji`` is
        ``x_i + sqrt(lam) eps_j W_ji x_i^2 / sqrt(sum_l W_jl^2 x_l^2)``, with one
        ``eps_j`` shared by all ``i`` of row ``j``, whereas in the exact layer it
        is ``M_ji x_i`` with independent ``M_ji``. Means agree, but the
        covariance of the stochastic gradient differs, so any analysis of the
        gradient noise (SGD dynamics) must use the exact layer.
    max_mask_elements : int
        Bound on the mask elements that exist at once in the exact layer: the
        batch is processed in chunks of ``max(1, max_mask_elements // (in*out))``
        samples, and backward regenerates each chunk's mask from a seed instead
        of storing it (see :func:`per_sample_masked_linear`).
    device, dtype
        Factory arguments of the parameters.
    generator : torch.Generator, optional
        Used for all sampling when given (per forward one seed is drawn from it
        for the exact path). Otherwise the global RNG: ``torch.manual_seed``
        makes results reproducible.

    Notes
    -----
    Inputs ``(in,)``, ``(batch, in)`` and ``(batch, ..., in)`` are accepted; all
    leading dimensions are flattened to samples, each with its own mask. In
    eval mode (and for ``p = 0``) the layer is the plain ``F.linear``, without
    noise or scaling, unless ``fixed_mask`` is set.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        p: float = 0.5,
        stir: str = "drop",
        bias: bool = True,
        fixed_mask: bool = False,
        local_reparameterization: bool = False,
        max_mask_elements: int = 2**24,
        device=None,
        dtype=None,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        stir = _check_stir(stir)
        fixed_mask = _check_bool("fixed_mask", fixed_mask)
        local_reparameterization = _check_bool("local_reparameterization", local_reparameterization)
        if local_reparameterization and stir != "gaussian":
            raise ValueError(
                f"local_reparameterization=True requires stir='gaussian' (the "
                f"pre-activation is Gaussian only then); got stir={stir!r}"
            )
        if local_reparameterization and fixed_mask:
            raise ValueError(
                "local_reparameterization=True is incompatible with fixed_mask=True "
                "(a fixed mask is shared by all samples); got fixed_mask=True"
            )
        super().__init__(in_features, out_features, p, bias, max_mask_elements, device, dtype, generator)
        self.stir = stir
        self.fixed_mask = fixed_mask
        self.local_reparameterization = local_reparameterization
        self.register_buffer("mask", None)
        if fixed_mask:
            self.mask = torch.empty_like(self.weight, requires_grad=False)
            self.resample_mask()

    @property
    def chunk_size(self) -> int:
        """Samples per chunk of the exact path: ``max(1, max_mask_elements // (in*out))``."""
        return _chunk_size(self.in_features, self.out_features, self.max_mask_elements)

    @torch.no_grad()
    def resample_mask(self) -> Tensor:
        """Draw a new fixed ``(out, in)`` mask (only with ``fixed_mask=True``); returns it."""
        if not self.fixed_mask:
            raise RuntimeError("resample_mask() needs fixed_mask=True")
        if self.p == 0.0:
            self.mask.fill_(1.0)
        else:
            gen = _generator_for(self.generator, self.mask.device)
            self.mask.copy_(
                _sample_mask(self.mask.shape, self.p, self.stir, generator=gen,
                             device=self.mask.device, dtype=self.mask.dtype)
            )
        return self.mask

    def forward(self, input: Tensor) -> Tensor:  # noqa: D102
        x = self._check_forward_input(input)
        if self.fixed_mask:
            return F.linear(x, self.weight * self.mask, self.bias)
        if not self.training or self.p == 0.0:
            return F.linear(x, self.weight, self.bias)
        if self.local_reparameterization:
            mean = F.linear(x, self.weight, self.bias)
            s = F.linear(x * x, self.weight * self.weight)
            # clamp: sqrt'(0) is infinite; s >= 0 so this only touches exact zeros
            std = torch.sqrt(s.clamp_min(torch.finfo(s.dtype).tiny))
            gen = _generator_for(self.generator, x.device)
            noise = _sample_mask(s.shape, self.p, "gaussian", generator=gen,
                                 device=x.device, dtype=s.dtype, centered=True)
            return mean + std * noise
        return per_sample_masked_linear(
            x, self.weight, self.bias, self.p, self.stir,
            max_mask_elements=self.max_mask_elements, generator=self.generator,
        )

    def extra_repr(self) -> str:  # noqa: D102
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, p={self.p}, "
            f"stir={self.stir!r}, bias={self.bias is not None}, fixed_mask={self.fixed_mask}, "
            f"local_reparameterization={self.local_reparameterization}, "
            f"max_mask_elements={self.max_mask_elements}"
        )


class DropConnectLinear(_NoisyLinearBase):
    r"""``z_k = (W \circ M) x_k + b``, one Bernoulli mask ``M`` per forward call shared by the batch.

    Per-batch DropConnect as framework DropConnect layers implement it: in
    training one ``(out, in)`` mask with entries ``0`` (probability ``p``) and
    ``1/(1-p)`` is drawn per call and applied to every sample of the
    mini-batch; the bias is not masked. Identical samples of one batch give
    identical outputs. With ``per_sample=True`` each sample gets its own mask,
    computed by :func:`per_sample_masked_linear` (the exact path of
    :class:`PerNodeDropLinear` with ``stir="drop"``, chunked by
    ``max_mask_elements``). Eval mode and ``p = 0``: the plain layer.

    Parameters
    ----------
    in_features, out_features : int
        Positive sizes; weight ``(out, in)`` initialized like :class:`torch.nn.Linear`.
    p : float
        Drop probability in ``[0, 1)``.
    bias : bool
        Learnable unmasked bias.
    per_sample : bool
        One mask per sample instead of per batch.
    max_mask_elements : int
        Chunking bound of the per-sample path.
    device, dtype
        Factory arguments.
    generator : torch.Generator, optional
        Used for all sampling when given; otherwise the global RNG.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        p: float = 0.5,
        bias: bool = True,
        per_sample: bool = False,
        max_mask_elements: int = 2**24,
        device=None,
        dtype=None,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        per_sample = _check_bool("per_sample", per_sample)
        super().__init__(in_features, out_features, p, bias, max_mask_elements, device, dtype, generator)
        self.per_sample = per_sample

    def forward(self, input: Tensor) -> Tensor:  # noqa: D102
        x = self._check_forward_input(input)
        if not self.training or self.p == 0.0:
            return F.linear(x, self.weight, self.bias)
        if self.per_sample:
            return per_sample_masked_linear(
                x, self.weight, self.bias, self.p, "drop",
                max_mask_elements=self.max_mask_elements, generator=self.generator,
            )
        gen = _generator_for(self.generator, self.weight.device)
        m = _sample_mask(self.weight.shape, self.p, "drop", generator=gen,
                         device=self.weight.device, dtype=self.weight.dtype)
        return F.linear(x, self.weight * m, self.bias)

    def extra_repr(self) -> str:  # noqa: D102
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, p={self.p}, "
            f"bias={self.bias is not None}, per_sample={self.per_sample}, "
            f"max_mask_elements={self.max_mask_elements}"
        )


# ----------------------------------------------------------------------------
# hidden-unit noise (last dimension of a (batch, ..., width) tensor)
# ----------------------------------------------------------------------------
class GaussianDropout(nn.Module):
    r"""``h \circ m``, ``m ~ N(1, lam)`` i.i.d. per sample and unit, ``lam = p/(1-p)``.

    Gaussian dropout: same mean (1) and variance (``lam``) per unit as inverted
    Bernoulli dropout with drop probability ``p``. Acts on any shape
    (``(batch, ..., width)``: every element its own draw). Identity in eval
    mode and for ``p = 0``.

    Parameters
    ----------
    p : float
        Drop probability in ``[0, 1)`` of the matching Bernoulli dropout.
    generator : torch.Generator, optional
        Used for all sampling when given; otherwise the global RNG.
    """

    def __init__(self, p: float = 0.5, generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        self.p = _check_prob("p", p)
        self.generator = _check_generator(generator)

    @property
    def lam(self) -> float:
        """``p / (1 - p)``."""
        return self.p / (1.0 - self.p)

    def forward(self, input: Tensor) -> Tensor:  # noqa: D102
        x = _check_input("input", input)
        if not self.training or self.p == 0.0:
            return x
        gen = _generator_for(self.generator, x.device)
        return x * _sample_mask(x.shape, self.p, "gaussian", generator=gen, device=x.device, dtype=x.dtype)

    def extra_repr(self) -> str:  # noqa: D102
        return f"p={self.p}"


class BlockDropout(nn.Module):
    r"""``h_{k,u} \cdot B_{k, \lfloor u / s \rfloor} / (1 - p)``: DropBlock over hidden units.

    The last dimension (``width`` units) is split into ``width / block_size``
    blocks of ``s = block_size`` contiguous units; each block of each sample
    is kept (and scaled by ``1/(1-p)``) or dropped as a whole with one
    ``Bernoulli(1 - p)`` draw, independently across blocks and samples. So
    every unit has mask mean 1 and variance ``lam = p/(1-p)``, units of one
    block share their mask and different blocks are independent. ``width``
    must be divisible by ``block_size`` (ValueError at forward). Identity in
    eval mode and for ``p = 0``.

    Parameters
    ----------
    p : float
        Drop probability of a block, in ``[0, 1)``.
    block_size : int
        Positive number of contiguous units per block (1 = standard dropout).
    generator : torch.Generator, optional
        Used for all sampling when given; otherwise the global RNG.
    """

    def __init__(self, p: float = 0.5, block_size: int = 1, generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        self.p = _check_prob("p", p)
        self.block_size = _check_positive_int("block_size", block_size)
        self.generator = _check_generator(generator)

    @property
    def lam(self) -> float:
        """``p / (1 - p)``."""
        return self.p / (1.0 - self.p)

    def forward(self, input: Tensor) -> Tensor:  # noqa: D102
        x = _check_input("input", input)
        width = x.shape[-1]
        if width % self.block_size != 0:
            raise ValueError(
                f"block_size={self.block_size} must divide the input width (last dimension); "
                f"got width {width}"
            )
        if not self.training or self.p == 0.0:
            return x
        nb = width // self.block_size
        gen = _generator_for(self.generator, x.device)
        m = _sample_mask((*x.shape[:-1], nb, 1), self.p, "drop", generator=gen, device=x.device, dtype=x.dtype)
        return (x.reshape(*x.shape[:-1], nb, self.block_size) * m).reshape(x.shape)

    def extra_repr(self) -> str:  # noqa: D102
        return f"p={self.p}, block_size={self.block_size}"


class NodeDropout(nn.Module):
    r"""``h_{k,u} \cdot B_{k,u} / (1 - p_u)``, ``B_{k,u} ~ Bernoulli(1 - p_u)``: a drop rate per unit.

    Dropout where hidden unit ``u`` has its own drop probability ``p_u``
    (inverted scaling per unit), draws independent across units and samples:
    mask mean 1 and variance ``p_u / (1 - p_u)`` for unit ``u``. The last
    dimension of the input must equal ``len(p)`` (ValueError at forward).
    Identity in eval mode.

    Parameters
    ----------
    p : sequence of float
        Non-empty 1-D sequence (list, tuple, array, tensor) of drop
        probabilities in ``[0, 1)``, one per unit.
    generator : torch.Generator, optional
        Used for all sampling when given; otherwise the global RNG.
    """

    def __init__(self, p: Sequence[float], generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        if isinstance(p, Tensor):
            values = p.detach().cpu().reshape(-1).tolist() if p.dim() == 1 else None
        elif isinstance(p, np.ndarray):
            values = p.tolist() if p.ndim == 1 else None
        elif isinstance(p, Sequence) and not isinstance(p, str):
            values = list(p)
        else:
            values = None
        if values is None or len(values) == 0:
            raise ValueError(
                f"p must be a non-empty 1-D sequence of drop probabilities in [0, 1); got {p!r}"
            )
        for j, v in enumerate(values):
            _check_prob(f"p[{j}]", v)
        self.register_buffer("p", torch.tensor([float(v) for v in values], dtype=torch.float64), persistent=False)
        self.generator = _check_generator(generator)

    @property
    def width(self) -> int:
        """Number of units ``len(p)``."""
        return self.p.numel()

    @property
    def lam(self) -> Tensor:
        """Per-unit mask variances ``p_u / (1 - p_u)``."""
        return self.p / (1.0 - self.p)

    def forward(self, input: Tensor) -> Tensor:  # noqa: D102
        x = _check_input("input", input)
        if x.shape[-1] != self.width:
            raise ValueError(
                f"input must have last dimension len(p)={self.width}; got shape {tuple(x.shape)}"
            )
        if not self.training or not bool((self.p > 0).any()):
            return x
        gen = _generator_for(self.generator, x.device)
        return x * _sample_mask(x.shape, self.p, "drop", generator=gen, device=x.device, dtype=x.dtype)

    def extra_repr(self) -> str:  # noqa: D102
        shown = ", ".join(f"{v:.4g}" for v in self.p[:8].tolist())
        more = ", ..." if self.width > 8 else ""
        return f"width={self.width}, p=[{shown}{more}]"


# The single-hidden-layer network built from any strategy's mask law lives beside the laws.
