r"""The one torch sampler of mask values: every mask of every route is drawn here.

Strategies' laws, the torch layers (:mod:`pnd_theory.nn`), Monte Carlo and training all draw
through :func:`sample_mask` (inverted Bernoulli and Gaussian values of mean 1) or through a
scalar law's own ``sample`` method, which for the built-in laws calls it.

* ``stir="drop"``: ``M = B / (1 - p)`` with ``B ~ Bernoulli(1 - p)``: ``0`` with probability
  ``p`` and ``1/(1-p)`` with probability ``1 - p``;
* ``stir="gaussian"``: ``M ~ N(1, lam)``, ``lam = p / (1 - p)``.

Both have mean 1 and variance ``lam``.  This module stands on torch and on the
counter-based kernels of :mod:`pnd_theory.kernels` only: it is the ground floor that the laws
and the layers stand on.

The exact per-sample masked linear map (a fresh mask per sample and connection, used by the
layers and by Monte Carlo of per-sample weight noise) is drawn here too, by
:func:`masked_linear`: its masks come from a counter-based generator keyed by
``(seed, sample, output, input)`` (see :mod:`pnd_theory.kernels`) and are computed inside the
products, never stored.  It is a torch custom operator (``torch.ops.pnd_theory.masked_linear``)
with fake (meta) implementations, an autograd formula and batching rules, so that
``torch.compile(fullgraph=True)``, ``torch.func.grad`` and ``torch.func.vmap`` see through it.
"""
from __future__ import annotations

import math
import os
from typing import Optional, Union

import torch
from torch import Tensor

from . import kernels
from .kernels import counter_masks

kernels_triton = None
if torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1":
    # the CUDA kernels need Triton; without it CUDA takes the chunked torch route
    from . import kernels_triton

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
# the exact per-sample masked linear map: torch custom operators
# ----------------------------------------------------------------------------
#: mask elements held at once by the chunked torch route (no compiled kernel for the device)
CHUNK_ELEMENTS = 2**22


def draw_seed_tensor(generator: Optional[torch.Generator] = None) -> Tensor:
    """A 0-d int64 seed tensor in ``[0, 2**62)``, drawn without leaving torch (no ``.item()``).

    From ``generator`` when given, else from the global CPU RNG (``torch.manual_seed`` makes
    it reproducible); traceable by ``torch.compile`` and, inside ``torch.func.vmap(...,
    randomness="different")``, one seed per batch entry.
    """
    if generator is None:
        return torch.randint(0, SEED_HIGH, (), dtype=torch.int64)
    return torch.randint(0, SEED_HIGH, (), dtype=torch.int64, generator=generator, device=generator.device)


def _row_chunks(rows: int, n_out: int, n_in: int):
    """Row ranges holding at most ``CHUNK_ELEMENTS`` mask elements (route without a kernel)."""
    step = max(1, CHUNK_ELEMENTS // max(1, n_out * n_in))
    return [(a, min(rows, a + step)) for a in range(0, rows, step)]


def _route(device: torch.device) -> str:
    if device.type == "cpu" and kernels.HAVE_NUMBA:
        return "numba"
    if device.type == "cuda" and kernels_triton is not None and kernels_triton.HAVE_TRITON:
        return "triton"
    return "torch"


def _masks_for(a, b, positions, n_out, n_in, seed, p, gaussian, like):
    samples = torch.arange(a, b, device=like.device) // positions
    return counter_masks(seed, samples, n_out, n_in, p, gaussian, device=like.device, dtype=like.dtype)


def _work_dtype(*tensors):
    dt = tensors[0].dtype
    for t in tensors[1:]:
        dt = torch.promote_types(dt, t.dtype)
    return dt


@torch.library.custom_op("pnd_theory::masked_linear", mutates_args=())
def _masked_linear_op(x: Tensor, weight: Tensor, seed: Tensor, p: float, gaussian: bool,
                      positions: int) -> Tensor:
    seed_v, dt = int(seed), _work_dtype(x, weight)
    route = _route(x.device)
    if route == "numba":
        return kernels.masked_linear_cpu(x, weight, seed_v, p, gaussian, positions).to(dt)
    if route == "triton":
        return kernels_triton.masked_linear(x.to(dt), weight.to(dt), seed_v, p, gaussian, positions)
    n_out, n_in = weight.shape
    z = x.new_empty((x.shape[0], n_out), dtype=dt)
    for a, b in _row_chunks(x.shape[0], n_out, n_in):
        m = _masks_for(a, b, positions, n_out, n_in, seed_v, p, gaussian, z)
        z[a:b] = torch.einsum("roi,oi,ri->ro", m, weight.to(dt), x[a:b].to(dt))
    return z


@torch.library.custom_op("pnd_theory::masked_linear_grad_input", mutates_args=())
def _grad_input_op(grad: Tensor, weight: Tensor, seed: Tensor, p: float, gaussian: bool,
                   positions: int) -> Tensor:
    seed_v, dt = int(seed), _work_dtype(grad, weight)
    route = _route(grad.device)
    if route == "numba":
        return kernels.masked_linear_grad_input_cpu(grad, weight, seed_v, p, gaussian, positions).to(dt)
    if route == "triton":
        return kernels_triton.masked_linear_grad_input(grad.to(dt), weight.to(dt), seed_v, p, gaussian, positions)
    n_out, n_in = weight.shape
    gx = grad.new_empty((grad.shape[0], n_in), dtype=dt)
    for a, b in _row_chunks(grad.shape[0], n_out, n_in):
        m = _masks_for(a, b, positions, n_out, n_in, seed_v, p, gaussian, gx)
        gx[a:b] = torch.einsum("roi,oi,ro->ri", m, weight.to(dt), grad[a:b].to(dt))
    return gx


@torch.library.custom_op("pnd_theory::masked_linear_grad_weight", mutates_args=())
def _grad_weight_op(grad: Tensor, x: Tensor, seed: Tensor, p: float, gaussian: bool,
                    positions: int) -> Tensor:
    seed_v, dt = int(seed), _work_dtype(grad, x)
    route = _route(grad.device)
    if route == "numba":
        return kernels.masked_linear_grad_weight_cpu(grad, x, seed_v, p, gaussian, positions).to(dt)
    if route == "triton":
        return kernels_triton.masked_linear_grad_weight(grad.to(dt), x.to(dt), seed_v, p, gaussian, positions)
    n_out, n_in = grad.shape[1], x.shape[1]
    gw = grad.new_zeros((n_out, n_in), dtype=dt)
    for a, b in _row_chunks(grad.shape[0], n_out, n_in):
        m = _masks_for(a, b, positions, n_out, n_in, seed_v, p, gaussian, gw)
        gw += torch.einsum("roi,ri,ro->oi", m, x[a:b].to(dt), grad[a:b].to(dt))
    return gw


@torch.library.custom_op("pnd_theory::masked_linear_backward", mutates_args=())
def _backward_op(grad: Tensor, x: Tensor, weight: Tensor, seed: Tensor, p: float, gaussian: bool,
                 positions: int) -> tuple[Tensor, Tensor]:
    if _route(grad.device) == "numba":
        both = kernels.masked_linear_backward_cpu(grad, x, weight, int(seed), p, gaussian, positions)
        if both is not None:
            return both[0].to(_work_dtype(grad, weight)), both[1].to(_work_dtype(grad, x))
    return (_grad_input_op(grad, weight, seed, p, gaussian, positions),
            _grad_weight_op(grad, x, seed, p, gaussian, positions))


@_backward_op.register_fake
def _(grad, x, weight, seed, p, gaussian, positions):
    return (grad.new_empty((grad.shape[0], weight.shape[1]), dtype=_work_dtype(grad, weight)),
            grad.new_empty((grad.shape[1], x.shape[1]), dtype=_work_dtype(grad, x)))


@_masked_linear_op.register_fake
def _(x, weight, seed, p, gaussian, positions):
    return x.new_empty((x.shape[0], weight.shape[0]), dtype=_work_dtype(x, weight))


@_grad_input_op.register_fake
def _(grad, weight, seed, p, gaussian, positions):
    return grad.new_empty((grad.shape[0], weight.shape[1]), dtype=_work_dtype(grad, weight))


@_grad_weight_op.register_fake
def _(grad, x, seed, p, gaussian, positions):
    return grad.new_empty((grad.shape[1], x.shape[1]), dtype=_work_dtype(grad, x))


class _MaskedProduct(torch.autograd.Function):
    """Autograd of the three operators, each a linear map whose derivatives are the others.

    With ``A = masked_linear``, ``B = grad_input``, ``C = grad_weight`` (same masks):
    ``A(x, W)`` has derivatives ``B(g, W)`` and ``C(g, x)``; ``B(g, W)`` has ``A(G, W)`` and
    ``C(g, G)``; ``C(g, x)`` has ``A(x, G)`` and ``B(g, G)``.  So every order of
    differentiation regenerates the same masks.  Autograd functions with
    ``setup_context`` (not the operators' own autograd registration) so that ``torch.func``
    transforms see through them."""

    generate_vmap_rule = True

    @staticmethod
    def setup_context(ctx, inputs, output):  # noqa: D102
        a, b, seed, p, gaussian, positions = inputs
        ctx.save_for_backward(a, b, seed)
        ctx.options = (p, gaussian, positions)


class _MaskedLinear(_MaskedProduct):
    @staticmethod
    def forward(x, weight, seed, p, gaussian, positions):  # noqa: D102
        return _masked_linear_op(x, weight, seed, p, gaussian, positions)

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        x, weight, seed = ctx.saved_tensors
        if ctx.needs_input_grad[0] and ctx.needs_input_grad[1] and not torch.is_grad_enabled():
            # a first-order backward: both gradients from one regeneration of the masks
            gx, gw = _backward_op(g, x, weight, seed, *ctx.options)
            return gx.to(x.dtype), gw.to(weight.dtype), None, None, None, None
        gx = _GradInput.apply(g, weight, seed, *ctx.options).to(x.dtype) if ctx.needs_input_grad[0] else None
        gw = _GradWeight.apply(g, x, seed, *ctx.options).to(weight.dtype) if ctx.needs_input_grad[1] else None
        return gx, gw, None, None, None, None


class _GradInput(_MaskedProduct):
    @staticmethod
    def forward(g, weight, seed, p, gaussian, positions):  # noqa: D102
        return _grad_input_op(g, weight, seed, p, gaussian, positions)

    @staticmethod
    def backward(ctx, G):  # noqa: D102
        g, weight, seed = ctx.saved_tensors
        dg = _MaskedLinear.apply(G, weight, seed, *ctx.options).to(g.dtype) if ctx.needs_input_grad[0] else None
        dw = _GradWeight.apply(g, G, seed, *ctx.options).to(weight.dtype) if ctx.needs_input_grad[1] else None
        return dg, dw, None, None, None, None


class _GradWeight(_MaskedProduct):
    @staticmethod
    def forward(g, x, seed, p, gaussian, positions):  # noqa: D102
        return _grad_weight_op(g, x, seed, p, gaussian, positions)

    @staticmethod
    def backward(ctx, G):  # noqa: D102
        g, x, seed = ctx.saved_tensors
        dg = _MaskedLinear.apply(x, G, seed, *ctx.options).to(g.dtype) if ctx.needs_input_grad[0] else None
        dx = _GradInput.apply(g, G, seed, *ctx.options).to(x.dtype) if ctx.needs_input_grad[1] else None
        return dg, dx, None, None, None, None


def _vmap_rule(op, n):
    """Batching rule: one call per batch entry (each with its own seed when the seed is batched,
    as under ``vmap(..., randomness="different")``); ``n`` leading arguments are tensors."""

    def rule(info, in_dims, *args):
        tensors = args[:n]
        parts = []
        for b in range(info.batch_size):
            sliced = [t if d is None else t.select(d, b) for t, d in zip(tensors, in_dims[:n])]
            parts.append(op(*sliced, *args[n:]))
        if isinstance(parts[0], tuple):
            return tuple(torch.stack(group) for group in zip(*parts)), (0,) * len(parts[0])
        return torch.stack(parts), 0

    op.register_vmap(rule)


# ----------------------------------------------------------------------------
# the conditional Gaussian map: the forward from one normal per output, the masks in backward
# ----------------------------------------------------------------------------
@torch.library.custom_op("pnd_theory::counter_normals", mutates_args=())
def _counter_normals_op(seed: Tensor, like: Tensor, n_out: int) -> Tensor:
    return kernels.counter_normals(int(seed), like.shape[0], n_out, device=like.device, dtype=like.dtype)


@_counter_normals_op.register_fake
def _(seed, like, n_out):
    return like.new_empty((like.shape[0], n_out))


def _sigma_c(x: Tensor, weight: Tensor, seed: Tensor, p: float) -> Tensor:
    r""":math:`\sigma c_{rj} = (\sigma n_{rj} \lVert v_{rj} \rVert - sd_{rj}) / \lVert v_{rj} \rVert^2`
    (0 where :math:`v_{rj} = 0`), with :math:`sd_{rj} = \sigma v_{rj} \cdot \xi_{rj}` from one
    product with the masks ``1 + sigma xi`` (torch operators; no autograd)."""
    sd = _masked_linear_op(x, weight, seed, p, True, 1) - torch.nn.functional.linear(x, weight)
    v2 = torch.nn.functional.linear(x * x, weight * weight)
    zero = v2 == 0
    sc = torch.sqrt(v2).mul_(_counter_normals_op(seed, x, weight.shape[0])).mul_(math.sqrt(p / (1.0 - p)))
    return sc.sub_(sd).div_(v2.clamp_min_(torch.finfo(v2.dtype).tiny)).masked_fill_(zero, 0.0)


@torch.library.custom_op("pnd_theory::conditional_gaussian", mutates_args=())
def _conditional_op(x: Tensor, weight: Tensor, seed: Tensor, p: float) -> Tensor:
    if _route(x.device) == "numba":
        return kernels.conditional_gaussian_cpu(x, weight, int(seed), p).to(_work_dtype(x, weight))
    spread = torch.nn.functional.linear(x * x, weight * weight).sqrt_()
    z = torch.nn.functional.linear(x, weight)
    return z.addcmul_(_counter_normals_op(seed, x, weight.shape[0]), spread, value=math.sqrt(p / (1.0 - p)))


@_conditional_op.register_fake
def _(x, weight, seed, p):
    return x.new_empty((x.shape[0], weight.shape[0]), dtype=_work_dtype(x, weight))


@torch.library.custom_op("pnd_theory::conditional_gaussian_backward", mutates_args=())
def _conditional_backward_op(grad: Tensor, x: Tensor, weight: Tensor, seed: Tensor,
                             p: float) -> tuple[Tensor, Tensor]:
    dt = _work_dtype(grad, x, weight)
    if _route(grad.device) == "numba":
        both = kernels.masked_linear_backward_conditional_cpu(grad, x, weight, int(seed), p)
        if both is not None:
            return both[0].to(dt), both[1].to(dt)
    x, weight, grad = x.to(dt), weight.to(dt), grad.to(dt)
    gx, gw = _backward_op(grad, x, weight, seed, p, True, 1)
    gc = grad * _sigma_c(x, weight, seed, p)
    return gx.to(dt).addcmul_(x, gc @ (weight * weight)), gw.to(dt).addcmul_(weight, gc.t() @ (x * x))


@_conditional_backward_op.register_fake
def _(grad, x, weight, seed, p):
    dt = _work_dtype(grad, x, weight)
    return (grad.new_empty((grad.shape[0], weight.shape[1]), dtype=dt),
            grad.new_empty(tuple(weight.shape), dtype=dt))


for _op, _n in ((_masked_linear_op, 3), (_grad_input_op, 3), (_grad_weight_op, 3), (_backward_op, 4),
                (_counter_normals_op, 2), (_conditional_op, 3), (_conditional_backward_op, 4)):
    _vmap_rule(_op, _n)


class _ConditionalGaussian(torch.autograd.Function):
    r"""The exact Gaussian map with one mask per row, drawn in two steps.

    With :math:`v_r = W \circ x_r` (row ``j``: :math:`v_{rj} = W_j \circ x_r`) and
    :math:`\sigma = \sqrt{p / (1 - p)}`, the masks are :math:`M_{rj} = 1 + \sigma \zeta_{rj}`,

    .. math::

        \zeta_{rj} = \xi_{rj} + v_{rj}\, c_{rj}, \qquad
        c_{rj} = \frac{n_{rj} \lVert v_{rj} \rVert - v_{rj} \cdot \xi_{rj}}{\lVert v_{rj} \rVert^2}

    (:math:`c_{rj} = 0` when :math:`v_{rj} = 0`), with :math:`n_{rj}` and the vectors
    :math:`\xi_{rj}` i.i.d. standard normals from the counters (:func:`kernels.counter_normals`,
    the Gaussian masks of :func:`kernels.counter_masks`).  The component of
    :math:`\zeta_{rj}` along :math:`v_{rj}` is :math:`n_{rj}` and the rest is the projection
    of :math:`\xi_{rj}` orthogonal to it, independent of :math:`n_{rj}`: so :math:`\zeta_{rj}`
    is exactly :math:`N(0, I)`, whatever :math:`W` and :math:`x`, and the masks have the law of
    independent Gaussian masks.  Forward needs only :math:`v_{rj} \cdot \zeta_{rj} = n_{rj}
    \lVert v_{rj} \rVert`:

    .. math::

        z_{rj} = W_j \cdot x_r + \sigma\, n_{rj} \sqrt{\textstyle\sum_i W_{ji}^2 x_{ri}^2},

    two products and no mask.  Backward computes the products with the masks
    :math:`1 + \sigma \xi` and :math:`v_{rj} \cdot \xi_{rj}` in one pass over them, and adds
    the part along :math:`v` by two products:
    :math:`g^x_r \mathrel{+}= x_r \circ \big((g_r \circ \sigma c_r)^\top (W \circ W)\big)`,
    :math:`g^W \mathrel{+}= W \circ \big(\sum_r (g_r \circ \sigma c_r)(x_r \circ x_r)^\top\big)`.
    In those terms :math:`v` and :math:`c` are constants (parts of the masks), so derivatives of
    any order are those of the map with the masks held fixed.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x, weight, seed, p):  # noqa: D102
        return _conditional_op(x, weight, seed, p)

    @staticmethod
    def setup_context(ctx, inputs, output):  # noqa: D102
        x, weight, seed, p = inputs
        ctx.save_for_backward(x, weight, seed)
        ctx.p = p

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        x, weight, seed = ctx.saved_tensors
        p = ctx.p
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not torch.is_grad_enabled():
            # first order: one pass over the masks, even when one gradient is needed
            gx, gw = _conditional_backward_op(g, x, weight, seed, p)
            return (gx.to(x.dtype) if need_x else None), (gw.to(weight.dtype) if need_w else None), None, None
        # higher order: the products with 1 + sigma xi are differentiable operators of their own,
        # and the part along v is written with v and c held constant
        xc, wc = x.detach(), weight.detach()
        with torch.no_grad():
            sc = _sigma_c(xc, wc, seed, p)
        gc = g * sc
        gx = gw = None
        if need_x:
            gx = (_GradInput.apply(g, weight, seed, p, True, 1) + xc * (gc @ (weight * wc))).to(x.dtype)
        if need_w:
            gw = (_GradWeight.apply(g, x, seed, p, True, 1) + wc * (gc.transpose(-2, -1) @ (x * xc))).to(weight.dtype)
        return gx, gw, None, None


def masked_linear(x: Tensor, weight: Tensor, seed: Tensor, p: float, gaussian: bool = False,
                  positions: int = 1, conditional: bool = False) -> Tensor:
    r"""``z_r = (W \circ M_{s(r)}) x_r`` with ``s(r) = r // positions``: the exact per-sample map.

    Every mask value :math:`M_{s,j,i}` is a function of ``(seed, s, j, i)`` (the counter-based
    generator of :mod:`pnd_theory.kernels`), inverted Bernoulli (``gaussian=False``) or
    Gaussian with mean 1 and variance ``p / (1 - p)``, i.i.d. over samples and connections.
    Forward, input gradient and weight gradient compute the masks on the fly (numba on CPU,
    Triton on CUDA, a chunked torch route elsewhere), so nothing of size ``rows x out x in`` is
    stored and the result depends on neither chunking nor thread count.

    With ``gaussian=True`` and ``conditional=True`` (one mask per row: ``positions = 1``) the
    Gaussian masks are drawn in two steps instead (see :class:`_ConditionalGaussian`): the
    forward draws each output's noise :math:`\sigma n_{rj} \lVert W_j \circ x_r \rVert`
    directly (two products, no mask), and backward draws the rest of the masks given it, in
    one pass.  The masks, outputs and gradients have exactly the law of the masks above (and
    the gradients are those of the sampled masks), for about half the work; but the masks
    depend on ``W`` and ``x`` as well as on the seed, so at a fixed seed the output is not a
    fixed-mask function of ``(x, W)``: finite differences at a fixed seed do not reproduce the
    returned gradients.

    Parameters
    ----------
    x : Tensor
        Shape ``(rows, in)``.
    weight : Tensor
        Shape ``(out, in)``.
    seed : Tensor
        0-d int64 tensor (see :func:`draw_seed_tensor`).
    p : float
        Drop probability in ``(0, 1)`` (not validated here).
    gaussian : bool
        Gaussian instead of Bernoulli masks.
    positions : int
        Consecutive rows that share one mask (the positions of one sample of a sequence).
    conditional : bool
        Draw Gaussian masks conditionally (needs ``positions = 1``; no effect on Bernoulli masks).

    Returns
    -------
    Tensor
        Shape ``(rows, out)``, in the promoted dtype of ``x`` and ``weight``.
    """
    if gaussian and conditional:
        if int(positions) != 1:
            raise ValueError(f"conditional Gaussian masks need positions=1 (one mask per row); got {positions}")
        dt = _work_dtype(x, weight)
        return _ConditionalGaussian.apply(x.to(dt), weight.to(dt), seed, float(p))
    return _MaskedLinear.apply(x, weight, seed, float(p), bool(gaussian), int(positions))
