r"""Noisy linear layers and hidden-unit noise modules (PyTorch).

``z_k = (W \circ M_k) x_k + b`` with a fresh mask ``M_k`` for every sample ``k``
(PerNodeDrop), one mask per mini-batch (DropConnect), or noise on the hidden
units ``h \circ m`` (Gaussian dropout, DropBlock over units, per-unit dropout).

Conventions
-----------
``p`` is a *drop* probability in ``[0, 1)`` exactly as in :class:`torch.nn.Dropout`, and
:math:`\lambda = p / (1 - p)`.  Every mask has mean 1 (inverted scaling) and variance
:math:`\lambda`: ``stir="drop"`` gives :math:`M = B / (1 - p)`, :math:`B \sim
\mathrm{Bernoulli}(1 - p)`; ``stir="gaussian"`` gives :math:`M \sim \mathcal N(1, \lambda)`.
``p = 0`` means no noise at all: the plain layer (no sampling, no scaling).

Masks that exist as tensors are drawn by the package's one sampler (``laws._sampling``); the
exact per-sample layers compute theirs inside the fused products of ``pnd_theory.kernels`` and
never store them.  Bad arguments raise ``pt.InvalidParameterError`` (a ``ValueError`` and a
``TypeError``).  ``LinearNetwork`` is re-exported here from ``pnd_theory.nn.network``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

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

from .._validation import (check_bool, check_choice, check_generator, check_positive_int,
                          check_probability, check_seed, invalid)
from ..laws.masks import Bernoulli, Gaussian
from .network import LinearNetwork
from .ydrop import YDrop  # noqa: F401  (conductance-based per-unit dropout, public here as pnd_theory.nn.YDrop)
from ..kernels import masked_linear as _masked_linear
from ..laws._sampling import (STIRS, draw_seed_tensor as _draw_seed_tensor, generator_for as _generator_for,
                       sample_mask as _sample_mask)

#: how the positions of a ``(batch, ..., in)`` input share masks
MASK_PER = ("position", "sample")
#: Ways of drawing Gaussian masks on the exact path (see :func:`per_sample_masked_linear`).
GAUSSIAN_DRAWS = ("masks", "conditional")


def _check_input(name: str, x, in_features: Optional[int] = None) -> Tensor:
    if not isinstance(x, Tensor):
        raise invalid(name, "a torch.Tensor", type(x).__name__)
    if x.dim() < 1:
        raise invalid(name, "a tensor with at least one dimension; shape", tuple(x.shape))
    if in_features is not None and x.shape[-1] != in_features:
        raise invalid(name, f"a tensor with last dimension in_features={in_features}; shape", tuple(x.shape))
    return x


def _compute_dtype(x: Tensor, weight: Tensor) -> torch.dtype:
    """The autocast dtype inside an autocast region of the input's device, else the promoted one."""
    kind = x.device.type
    if torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return torch.promote_types(x.dtype, weight.dtype)


# ----------------------------------------------------------------------------
# exact per-sample masked linear map (fused kernels, masks never stored)
# ----------------------------------------------------------------------------
def per_sample_masked_linear(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    p: float = 0.5,
    stir: str = "drop",
    *,
    mask_per: str = "position",
    generator: Optional[torch.Generator] = None,
    seed: Optional[int] = None,
    gaussian_draw: str = "masks",
) -> Tensor:
    r""":math:`z_k = (W \circ M_k)\, x_k + b`, an independent mask :math:`M_k` for every sample :math:`k`.

    The exact PerNodeDrop linear map, functional form (used by :class:`PerNodeDropLinear`
    and ``DropConnectLinear(per_sample=True)``).  Each mask value is computed from a
    counter-based generator keyed by ``(seed, sample, output, input)`` inside the products of
    forward, input gradient and weight gradient (fused torch operators, numba kernels on CPU
    and Triton on CUDA): backward regenerates the forward's masks, nothing of size
    ``batch x out x in`` is stored, and the result depends neither on chunking nor on the
    number of threads.

    Parameters
    ----------
    input : Tensor
        Shape ``(in,)``, ``(batch, in)`` or ``(batch, ..., in)``.
    weight : Tensor
        Shape ``(out, in)``.
    bias : Tensor, optional
        Shape ``(out,)``; never masked.
    p : float
        Drop probability in ``[0, 1)``; ``p = 0`` is ``F.linear`` (no sampling).
    stir : {"drop", "gaussian"}
        ``M_k`` Bernoulli ``{0, 1/(1-p)}`` or ``N(1, p/(1-p))``, i.i.d. over
        samples and connections.
    mask_per : {"position", "sample"}
        For an input ``(batch, ..., in)`` with three or more dimensions: ``"position"`` gives
        every position (every index of the leading dimensions) its own mask;
        ``"sample"`` shares one mask across the positions of each ``batch`` entry.
    generator : torch.Generator, optional
        If given, the seed is drawn from it; otherwise from the global CPU RNG
        (so ``torch.manual_seed`` makes results reproducible).  The seed is drawn as a tensor
        (no ``.item()``), so the call traces under ``torch.compile``.
    seed : int, optional
        Use this seed directly (nothing is drawn from any RNG).
    gaussian_draw : {"masks", "conditional"}
        How Gaussian masks are drawn (``stir="gaussian"`` only).  ``"masks"``: every mask value
        from the counters, in forward and again in backward; at a fixed seed the map is a
        fixed-mask linear map of ``(x, W)``.  ``"conditional"``: forward draws each output's
        noise :math:`\sigma n_{kj} \lVert W_j \circ x_k \rVert` directly (two matrix products)
        and backward draws the rest of the masks given it, in one pass: outputs, masks and
        gradients have exactly the same law (the gradients are those of the sampled masks) for
        about half the work, but the masks then depend on ``W`` and ``x`` too, so finite
        differences at a fixed seed do not reproduce the gradients.  Not with
        ``mask_per="sample"`` on sequences.

    Returns
    -------
    Tensor
        Shape ``(..., out)``.

    Notes
    -----
    Gradients with respect to input, weight and bias are the exact gradients of
    :math:`(W \circ M_k)\, x_k + b` for the sampled masks, to any order (the derivatives of the
    forward and gradient products are each other, with the same masks).  Memory: besides the
    output, a backward holds at most four partial ``(out, in)`` weight gradients (one pass
    computes both gradients), never a ``(batch, out, in)`` tensor.  Inside
    ``torch.autocast`` the product runs in the autocast dtype, like :func:`torch.nn.functional.linear`.

    Examples
    --------
    One seed, one set of masks, a fresh one per sample: identical inputs give different outputs,
    of mean the plain layer's (masks of mean 1); ``p = 0`` is ``F.linear``:

    >>> import torch
    >>> import pnd_theory as pt
    >>> W = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.0, 1.0]], dtype=torch.float64)
    >>> x = torch.ones(50_000, 3, dtype=torch.float64)
    >>> z = pt.nn.per_sample_masked_linear(x, W, p=0.5, seed=7)
    >>> bool(torch.equal(z, pt.nn.per_sample_masked_linear(x, W, p=0.5, seed=7)))
    True
    >>> bool(torch.equal(z[0], z[1])), bool(torch.allclose(z.mean(0), W @ x[0], atol=0.03))
    (False, True)
    >>> bool(torch.equal(pt.nn.per_sample_masked_linear(x, W, p=0.0), x @ W.T))
    True
    """
    if not isinstance(weight, Tensor) or weight.dim() != 2:
        raise invalid("weight", "a 2-D tensor (out, in)", getattr(weight, "shape", weight))
    _check_input("input", input, weight.shape[-1])
    p = check_probability("p", p)
    stir = check_choice("stir", stir, STIRS)
    mask_per = check_choice("mask_per", mask_per, MASK_PER)
    generator = check_generator(generator)
    gaussian_draw = check_choice("gaussian_draw", gaussian_draw, GAUSSIAN_DRAWS)
    if gaussian_draw == "conditional" and stir != "gaussian":
        raise invalid("gaussian_draw", "'masks' with stir='drop' (only Gaussian masks are drawn "
                      "conditionally)", gaussian_draw)
    if p == 0.0:
        return F.linear(input, weight, bias)
    out_f, in_f = weight.shape
    lead = input.shape[:-1]
    dt = _compute_dtype(input, weight)
    x2 = input.reshape(-1, in_f).to(dt)
    positions = 1
    if mask_per == "sample" and input.dim() >= 3:
        positions = int(np.prod(input.shape[1:-1]))
        if gaussian_draw == "conditional" and positions > 1:
            raise invalid("gaussian_draw", "'masks' with mask_per='sample' on a sequence (the "
                          "conditional draw needs one mask per row)", gaussian_draw)
    if seed is None:
        try:
            seed_t = _draw_seed_tensor(generator)
        except RuntimeError as e:
            if "randomness" not in str(e):
                raise
            raise RuntimeError(
                "the exact per-sample layer draws a seed for its masks at each call: under torch.func.vmap "
                "pass randomness='different' (a seed per batch entry; randomness='same' is refused, it would "
                "give every entry the same masks), or pass seed=...; torch.func.jacfwd is not supported "
                "(forward mode), use torch.func.jacrev") from e
    else:
        seed = check_seed(seed)
        if seed >= 2**63:
            raise invalid("seed", "an integer in [0, 2**63)", seed)
        seed_t = torch.tensor(seed, dtype=torch.int64)
    z = _masked_linear(x2, weight.to(dt), seed_t, p, stir == "gaussian", max(positions, 1),
                       conditional=gaussian_draw == "conditional")
    if bias is not None:
        z = z + bias.to(dt)
    return z.reshape(*lead, out_f)


# ----------------------------------------------------------------------------
# layers
# ----------------------------------------------------------------------------
class _NotScriptable:
    """``torch.jit.script`` refuses these modules with a message naming what works."""

    def __prepare_scriptable__(self):
        raise RuntimeError(
            f"torch.jit.script cannot compile {type(self).__name__}: its masks come from torch custom "
            "operators and Python-side laws; use torch.compile (fullgraph=True works), torch.export, or "
            "torch.jit.trace")


class _NoisyLinearBase(_NotScriptable, nn.Module):
    """Weight ``(out, in)`` and bias ``(out,)`` initialized exactly like :class:`torch.nn.Linear`."""

    def __init__(self, in_features, out_features, p, bias, device, dtype, generator):
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        self.p = check_probability("p", p)
        bias = check_bool("bias", bias)
        self.generator = check_generator(generator)
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty((self.out_features, self.in_features), **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    @property
    def scalar_law(self):
        """The law of every mask entry (:class:`pnd_theory.Bernoulli` here)."""
        return Bernoulli(self.p)

    @property
    def lam(self) -> float:
        """``p / (1 - p)``, the variance of every mask entry (read from :attr:`scalar_law`)."""
        return self.scalar_law.variance

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
    r""":math:`z_k = (W \circ M_k)\, x_k + b`, an independent mask :math:`M_k` per sample and connection.

    PerNodeDrop linear layer: in training every sample :math:`k` of the batch gets its
    own ``(out, in)`` mask, i.i.d. over samples and connections, with entries
    Bernoulli on :math:`\{0, 1/(1-p)\}` (``stir="drop"``) or :math:`\mathcal N(1, \lambda)`
    (``stir="gaussian"``), :math:`\lambda = p/(1-p)`. The bias is not masked. Hence, for
    an input :math:`x`, :math:`E[z_j] = (W x)_j + b_j` and
    :math:`\mathrm{Var}[z_j] = \lambda \sum_i W_{ji}^2 x_i^2`, independently across units
    :math:`j` (the rows of :math:`M_k` are independent) and samples.

    The exact path computes every mask value inside the products of forward and backward
    from a counter-based generator keyed by ``(seed, sample, output, input)`` (numba kernels on
    CPU, Triton on CUDA; see :func:`per_sample_masked_linear`): no mask is stored, and the
    result does not depend on chunking or thread count.  The CPU kernels run on
    ``torch.get_num_threads()`` threads and leave torch's and numba's thread counts as they
    were; an empty batch gives an empty output and zero gradients.

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
        Only with ``stir="gaussian"`` and not with ``fixed_mask``. Fast path sampling the
        pre-activation directly::

            z = x W^T + sqrt((x^2) (W^2)^T) * sqrt(lam) * eps + b,   eps ~ N(0, I).

        **What it preserves**: the forward law, exactly. Given ``x``, output
        ``z_j = sum_i W_ji M_ji x_i + b_j`` is a linear function of the
        Gaussian row ``M_j.`` alone, so it is Gaussian with mean
        ``(W x)_j + b_j`` and variance ``lam sum_i W_ji^2 x_i^2``, and distinct
        units (and samples) are independent.
        **What it does not preserve**: the gradient noise, of the weight *and* of the input.
        With ``s_j = sum_l W_jl^2 x_l^2`` and one ``eps_j`` shared by a whole row,
        ``dz_j/dW_ji = x_i + sqrt(lam) eps_j W_ji x_i^2 / sqrt(s_j)`` and
        ``dz_j/dx_i = W_ji + sqrt(lam) eps_j W_ji^2 x_i / sqrt(s_j)``, whereas the exact
        layer gives ``M_ji x_i`` and ``W_ji M_ji`` with independent ``M_ji``.  Means agree,
        but each variance is scaled by the share ``W_ji^2 x_i^2 / s_j`` (at most 1) and the
        entries of a row become perfectly correlated: on small networks the fast path's
        input-gradient variance measured 0.006 to 0.74 of the exact one, and the trace of
        its weight-gradient covariance 0.34 of the exact one.  Any analysis of gradient
        noise (SGD dynamics, backpropagated noise) must use the exact layer.
    mask_per : {"position", "sample"}
        For inputs ``(batch, ..., in)`` of three or more dimensions (sequences):
        ``"position"`` (default) draws a mask for every position; ``"sample"`` shares each
        batch entry's mask across its positions, as the authors' layer does by default.  The
        paper's "per sample" mask is one mask per training example: for a sequence the
        example is the whole ``batch`` entry, so ``"sample"`` is the paper's per-sample mask,
        while ``"position"`` treats every position as an example of its own.  For ``(in,)``
        and ``(batch, in)`` inputs both are the same.
    gaussian_draw : {"masks", "conditional"}
        How the exact path draws Gaussian masks (see :func:`per_sample_masked_linear`):
        ``"masks"`` (default) computes every mask value from the counters in forward and again
        in backward; ``"conditional"`` draws each output's noise directly in forward and the
        rest of the masks given it in backward: the same law of outputs and gradients (unlike
        ``local_reparameterization``) for about half the work, but at a fixed seed the masks
        depend on ``W`` and ``x``.
    device, dtype
        Factory arguments of the parameters.
    generator : torch.Generator, optional
        Used for all sampling when given (per forward one seed is drawn from it
        for the exact path). Otherwise the global RNG: ``torch.manual_seed``
        makes results reproducible.

    Notes
    -----
    In eval mode (and for ``p = 0``) the layer is the plain ``F.linear``, without
    noise or scaling, unless ``fixed_mask`` is set.  The exact path is a set of torch
    operators with registered autograd (``torch.library.opcheck`` passes on each): it works
    under ``torch.compile(fullgraph=True)``, ``torch.export`` (the exported program
    backpropagates), ``torch.autocast``, ``torch.jit.trace``, double backward,
    ``torch.func.grad``, ``jacrev`` and ``torch.func.vmap(..., randomness="different")`` (a
    seed per batch entry).  Refused, with a message naming what works:
    ``vmap(..., randomness="same")`` (every entry would get the same masks), forward-mode
    differentiation (``jacfwd``, ``jvp``) and ``torch.jit.script``.

    Examples
    --------
    Over many samples of one input, the outputs have the mean and variance stated above; in
    evaluation mode the layer is the plain linear map (``pt.nn.STIRS``: the kinds of mask):

    >>> import torch
    >>> import pnd_theory as pt
    >>> pt.nn.STIRS
    ('drop', 'gaussian')
    >>> _ = torch.manual_seed(0)  # the weights' initialization, as for torch.nn.Linear
    >>> layer = pt.nn.PerNodeDropLinear(3, 2, p=0.5, bias=False, dtype=torch.float64,
    ...                                 generator=torch.Generator().manual_seed(0))
    >>> x, W = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), layer.weight.detach()
    >>> z = layer(x.expand(100_000, 3)).detach()
    >>> bool(torch.allclose(z.mean(0), W @ x, atol=0.01))
    True
    >>> bool(torch.allclose(z.var(0), layer.lam * (W**2 * x**2).sum(1), rtol=0.02))
    True
    >>> bool(torch.equal(layer.eval()(x), W @ x))
    True
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
        mask_per: str = "position",
        device=None,
        dtype=None,
        generator: Optional[torch.Generator] = None,
        gaussian_draw: str = "masks",
    ) -> None:
        stir = check_choice("stir", stir, STIRS)
        gaussian_draw = check_choice("gaussian_draw", gaussian_draw, GAUSSIAN_DRAWS)
        if gaussian_draw == "conditional" and stir != "gaussian":
            raise invalid("gaussian_draw", "'masks' with stir='drop' (only Gaussian masks are drawn "
                          "conditionally)", gaussian_draw)
        if gaussian_draw == "conditional" and mask_per == "sample":
            raise invalid("gaussian_draw", "'masks' with mask_per='sample' (the conditional draw needs "
                          "one mask per row)", gaussian_draw)
        fixed_mask = check_bool("fixed_mask", fixed_mask)
        local_reparameterization = check_bool("local_reparameterization", local_reparameterization)
        mask_per = check_choice("mask_per", mask_per, MASK_PER)
        if local_reparameterization and stir != "gaussian":
            raise invalid("stir", "'gaussian' with local_reparameterization=True (the pre-activation "
                          "is Gaussian only then)", stir)
        if local_reparameterization and fixed_mask:
            raise invalid("fixed_mask", "False with local_reparameterization=True (a fixed mask is "
                          "shared by all samples)", fixed_mask)
        super().__init__(in_features, out_features, p, bias, device, dtype, generator)
        self.stir = stir
        self.fixed_mask = fixed_mask
        self.local_reparameterization = local_reparameterization
        self.mask_per = mask_per
        self.gaussian_draw = gaussian_draw
        self.register_buffer("mask", None)
        if fixed_mask:
            self.mask = torch.empty_like(self.weight, requires_grad=False)
            self.resample_mask()

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

    @property
    def scalar_law(self):
        """The law of every mask entry: :class:`pnd_theory.Bernoulli` (``stir="drop"``) or
        :class:`pnd_theory.Gaussian` (``stir="gaussian"``)."""
        return Gaussian(self.p) if self.stir == "gaussian" else Bernoulli(self.p)

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
        return per_sample_masked_linear(x, self.weight, self.bias, self.p, self.stir,
                                        mask_per=self.mask_per, generator=self.generator,
                                        gaussian_draw=self.gaussian_draw)

    def extra_repr(self) -> str:  # noqa: D102
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, p={self.p}, "
            f"stir={self.stir!r}, bias={self.bias is not None}, fixed_mask={self.fixed_mask}, "
            f"local_reparameterization={self.local_reparameterization}, mask_per={self.mask_per!r}"
            + (f", gaussian_draw={self.gaussian_draw!r}" if self.gaussian_draw != "masks" else "")
        )


class DropConnectLinear(_NoisyLinearBase):
    r""":math:`z_k = (W \circ M)\, x_k + b`, one Bernoulli mask :math:`M` per forward call shared by the batch.

    Per-batch DropConnect as framework DropConnect layers implement it: in
    training one ``(out, in)`` mask with entries ``0`` (probability ``p``) and
    ``1/(1-p)`` is drawn per call and applied to every sample of the
    mini-batch; the bias is not masked. Identical samples of one batch give
    identical outputs. With ``per_sample=True`` each sample gets its own mask,
    computed by :func:`per_sample_masked_linear` (the exact path of
    :class:`PerNodeDropLinear` with ``stir="drop"``: fused kernels, masks never stored).
    Eval mode and ``p = 0``: the plain layer.  Both paths work under ``torch.compile``,
    ``torch.autocast`` and ``torch.func``.

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
    device, dtype
        Factory arguments.
    generator : torch.Generator, optional
        Used for all sampling when given; otherwise the global RNG.

    Examples
    --------
    One mask for the batch: identical samples give identical outputs (not so with a mask per
    sample); in evaluation mode, the plain linear map:

    >>> import torch
    >>> import pnd_theory as pt
    >>> x, seeded, same = torch.ones(5, 4), torch.Generator().manual_seed(0), lambda z: bool((z == z[0]).all())
    >>> shared = pt.nn.DropConnectLinear(4, 3, p=0.5, generator=seeded)
    >>> per_sample = pt.nn.DropConnectLinear(4, 3, p=0.5, per_sample=True, generator=seeded)
    >>> same(shared(x)), same(per_sample(x))
    (True, False)
    >>> bool(torch.equal(shared.eval()(x), torch.nn.functional.linear(x, shared.weight, shared.bias)))
    True
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        p: float = 0.5,
        bias: bool = True,
        per_sample: bool = False,
        device=None,
        dtype=None,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        per_sample = check_bool("per_sample", per_sample)
        super().__init__(in_features, out_features, p, bias, device, dtype, generator)
        self.per_sample = per_sample

    def forward(self, input: Tensor) -> Tensor:  # noqa: D102
        x = self._check_forward_input(input)
        if not self.training or self.p == 0.0:
            return F.linear(x, self.weight, self.bias)
        if self.per_sample:
            return per_sample_masked_linear(x, self.weight, self.bias, self.p, "drop", generator=self.generator)
        gen = _generator_for(self.generator, self.weight.device)
        m = _sample_mask(self.weight.shape, self.p, "drop", generator=gen,
                         device=self.weight.device, dtype=self.weight.dtype)
        return F.linear(x, self.weight * m, self.bias)

    def extra_repr(self) -> str:  # noqa: D102
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, p={self.p}, "
            f"bias={self.bias is not None}, per_sample={self.per_sample}"
        )


# ----------------------------------------------------------------------------
# hidden-unit noise (last dimension of a (batch, ..., width) tensor)
# ----------------------------------------------------------------------------
class GaussianDropout(_NotScriptable, nn.Module):
    r""":math:`h \circ m`, :math:`m \sim \mathcal N(1, \lambda)` i.i.d. per sample and unit, :math:`\lambda = p/(1-p)`.

    Gaussian dropout: same mean (1) and variance (:math:`\lambda`) per unit as inverted
    Bernoulli dropout with drop probability ``p``. Acts on any shape
    (``(batch, ..., width)``: every element its own draw). Identity in eval
    mode and for ``p = 0``.

    Parameters
    ----------
    p : float
        Drop probability in ``[0, 1)`` of the matching Bernoulli dropout.
    generator : torch.Generator, optional
        Used for all sampling when given; otherwise the global RNG.

    Examples
    --------
    The masks have mean 1 and variance :math:`\lambda` (here 1), like those of Bernoulli
    dropout at the same ``p``; in evaluation mode the module is the identity:

    >>> import torch
    >>> import pnd_theory as pt
    >>> noise = pt.nn.GaussianDropout(0.5, generator=torch.Generator().manual_seed(0))
    >>> m = noise(torch.ones(200_000, dtype=torch.float64))
    >>> noise.lam, round(float(m.mean()), 2), round(float(m.var()), 2), noise.eval()(m) is m
    (1.0, 1.0, 1.0, True)
    """

    def __init__(self, p: float = 0.5, generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        self.p = check_probability("p", p)
        self.generator = check_generator(generator)

    @property
    def scalar_law(self):
        """The law of every mask entry, :class:`pnd_theory.Gaussian`."""
        return Gaussian(self.p)

    @property
    def lam(self) -> float:
        """``p / (1 - p)``, read from :attr:`scalar_law`."""
        return self.scalar_law.variance

    def forward(self, input: Tensor) -> Tensor:  # noqa: D102
        x = _check_input("input", input)
        if not self.training or self.p == 0.0:
            return x
        gen = _generator_for(self.generator, x.device)
        return x * _sample_mask(x.shape, self.p, "gaussian", generator=gen, device=x.device, dtype=x.dtype)

    def extra_repr(self) -> str:  # noqa: D102
        return f"p={self.p}"


class BlockDropout(_NotScriptable, nn.Module):
    r""":math:`h_{k,u}\, B_{k, \lfloor u / s \rfloor} / (1 - p)`: DropBlock over hidden units.

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

    Examples
    --------
    The units of a block are kept (scaled by :math:`1/(1-p)`) or dropped together:

    >>> import torch
    >>> import pnd_theory as pt
    >>> drop = pt.nn.BlockDropout(0.5, block_size=3, generator=torch.Generator().manual_seed(0))
    >>> m = drop(torch.ones(1000, 6)).reshape(1000, 2, 3)  # two blocks of three units
    >>> bool((m == m[..., :1]).all()), sorted(m.unique().tolist()), round(float(m.mean()), 1)
    (True, [0.0, 2.0], 1.0)
    """

    def __init__(self, p: float = 0.5, block_size: int = 1, generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        self.p = check_probability("p", p)
        self.block_size = check_positive_int("block_size", block_size)
        self.generator = check_generator(generator)

    @property
    def scalar_law(self):
        """The law of every block's mask, :class:`pnd_theory.Bernoulli`."""
        return Bernoulli(self.p)

    @property
    def lam(self) -> float:
        """``p / (1 - p)``, read from :attr:`scalar_law`."""
        return self.scalar_law.variance

    def forward(self, input: Tensor) -> Tensor:  # noqa: D102
        x = _check_input("input", input)
        width = x.shape[-1]
        if width % self.block_size != 0:
            raise invalid("input", f"a tensor whose last dimension is divisible by block_size={self.block_size}; "
                          "width", width)
        if not self.training or self.p == 0.0:
            return x
        nb = width // self.block_size
        gen = _generator_for(self.generator, x.device)
        m = _sample_mask((*x.shape[:-1], nb, 1), self.p, "drop", generator=gen, device=x.device, dtype=x.dtype)
        return (x.reshape(*x.shape[:-1], nb, self.block_size) * m).reshape(x.shape)

    def extra_repr(self) -> str:  # noqa: D102
        return f"p={self.p}, block_size={self.block_size}"


class NodeDropout(_NotScriptable, nn.Module):
    r""":math:`h_{k,u}\, B_{k,u} / (1 - p_u)`, :math:`B_{k,u} \sim \mathrm{Bernoulli}(1 - p_u)`: a drop rate per unit.

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

    Examples
    --------
    Each unit is dropped at its own rate, and its mask has variance :math:`p_u / (1 - p_u)`:

    >>> import torch
    >>> import pnd_theory as pt
    >>> drop = pt.nn.NodeDropout([0.0, 0.5, 0.8], generator=torch.Generator().manual_seed(0))
    >>> [round(v, 6) for v in drop.lam.tolist()]
    [0.0, 1.0, 4.0]
    >>> m = drop(torch.ones(100_000, 3, dtype=torch.float64))
    >>> [round(float(rate), 2) for rate in (m == 0).double().mean(0)]  # the drop rates
    [0.0, 0.5, 0.8]
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
            raise invalid("p", "a non-empty 1-D sequence of drop probabilities in [0, 1)", p)
        for j, v in enumerate(values):
            check_probability(f"p[{j}]", v)
        self.register_buffer("p", torch.tensor([float(v) for v in values], dtype=torch.float64), persistent=False)
        self.generator = check_generator(generator)

    @property
    def width(self) -> int:
        """Number of units ``len(p)``."""
        return self.p.numel()

    @property
    def scalar_law(self) -> tuple:
        """The law of every unit's mask, one :class:`pnd_theory.Bernoulli` per unit."""
        return tuple(Bernoulli(float(q)) for q in self.p.detach().cpu())

    @property
    def lam(self) -> Tensor:
        """Per-unit mask variances ``p_u / (1 - p_u)``, read from :attr:`scalar_law`."""
        return self.p.new_tensor([law.variance for law in self.scalar_law])

    def forward(self, input: Tensor) -> Tensor:  # noqa: D102
        x = _check_input("input", input)
        if x.shape[-1] != self.width:
            raise invalid("input", f"a tensor with last dimension len(p)={self.width}; shape", tuple(x.shape))
        if not self.training or not bool((self.p > 0).any()):
            return x
        gen = _generator_for(self.generator, x.device)
        return x * _sample_mask(x.shape, self.p, "drop", generator=gen, device=x.device, dtype=x.dtype)

    def extra_repr(self) -> str:  # noqa: D102
        shown = ", ".join(f"{v:.4g}" for v in self.p[:8].tolist())
        more = ", ..." if self.width > 8 else ""
        return f"width={self.width}, p=[{shown}{more}]"


# The single-hidden-layer network built from any strategy's mask law lives beside the laws.
