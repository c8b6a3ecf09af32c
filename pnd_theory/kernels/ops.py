r"""The fused per-sample masked linear map as torch operators, with registered autograd.

.. math::

    A(x, W) = \big[(W \circ M_{s(r)})\, x_r\big]_r, \qquad
    B(g, W) = \big[(W \circ M_{s(r)})^\top g_r\big]_r, \qquad
    C(g, x) = \sum_r M_{s(r)} \circ (g_r x_r^\top),

with ``s(r) = r // positions`` and the masks of the counter-based generator
(:mod:`pnd_theory.kernels.counter`): every value :math:`M_{s,j,i}` is a function of
``(seed, s, j, i)``.  The three maps are bilinear and each one's derivatives are the others:

=================  ==========================  ==========================
operator           derivative in 1st argument  derivative in 2nd argument
=================  ==========================  ==========================
:math:`A(x, W)`    :math:`B(G, W)`             :math:`C(G, x)`
:math:`B(g, W)`    :math:`A(G, W)`             :math:`C(g, G)`
:math:`C(g, x)`    :math:`A(x, G)`             :math:`B(g, G)`
=================  ==========================  ==========================

so derivatives of every order regenerate the forward's masks.  Each map is a
``torch.library`` custom operator (``torch.ops.pnd_theory.masked_linear``,
``masked_linear_grad_input``, ``masked_linear_grad_weight``, ``masked_linear_backward`` for
:math:`B` and :math:`C` from one regeneration of the masks, and the conditional Gaussian map's
``counter_normals``, ``conditional_gaussian`` and ``conditional_gaussian_backward``) with its
backward formula registered on the operator (``torch.library.register_autograd``), a fake
(meta) implementation and a batching rule.  So ``torch.compile(fullgraph=True)``,
``torch.export``, ``torch.func.grad``, ``jacrev`` and ``vmap`` see through them, and
``torch.library.opcheck`` passes on every operator.

Where it runs: one dispatch table, :func:`route_for`, maps a device to a :class:`Route` (forward,
input gradient, weight gradient, both gradients at once, and the conditional map's forward and
backward): the numba kernels on CPU (:mod:`pnd_theory.kernels.cpu`), the Triton kernels on CUDA
(:mod:`pnd_theory.kernels.cuda`), else the chunked torch route
(:mod:`pnd_theory.kernels.reference`).  The compiled modules are loaded on first use, so that
importing the package does not load numba.  An empty batch gives empty outputs and zero
weight gradients on every route; the CPU kernels run on ``torch.get_num_threads()`` threads and
leave torch's and numba's thread counts as they were.
"""
from __future__ import annotations

import importlib
import math
from typing import Callable, NamedTuple, Optional

import torch
from torch import Tensor

from . import reference
from .counter import counter_normals

__all__ = ["Route", "route_for", "masked_linear", "OPS"]


class Route(NamedTuple):
    """The functions of one route.  All take ``(a, b, seed: int, p, ...)`` with float tensors
    of one dtype and at least one row, and return that dtype."""

    name: str
    forward: Callable
    grad_input: Callable
    grad_weight: Callable
    #: both gradients from one regeneration of the masks; returns ``(gx, gw)`` or None
    backward: Optional[Callable]
    conditional: Callable
    #: both gradients of the conditional map in one pass; returns ``(gx, gw)`` or None
    conditional_backward: Optional[Callable]


TORCH_ROUTE = Route("torch", reference.masked_linear, reference.masked_linear_grad_input,
                    reference.masked_linear_grad_weight, None, reference.conditional_gaussian, None)

_ROUTES: dict = {}


def _compiled(device_type: str) -> Route:
    """The compiled route of a device type, or the torch route where its compiler is missing.

    The kernel modules are imported here, on first use, so that ``import pnd_theory`` loads
    neither numba nor Triton (they stand on :mod:`pnd_theory.kernels.counter` only).
    """
    if device_type not in _ROUTES:
        route = TORCH_ROUTE
        if device_type == "cpu":
            cpu = importlib.import_module(f"{__package__}.cpu")
            if cpu.HAVE_NUMBA:
                route = Route("numba", cpu.masked_linear_cpu, cpu.masked_linear_grad_input_cpu,
                              cpu.masked_linear_grad_weight_cpu, cpu.masked_linear_backward_cpu,
                              cpu.conditional_gaussian_cpu, cpu.masked_linear_backward_conditional_cpu)
        elif device_type == "cuda":
            cuda = importlib.import_module(f"{__package__}.cuda")
            if cuda.HAVE_TRITON:
                route = Route("triton", cuda.masked_linear, cuda.masked_linear_grad_input,
                              cuda.masked_linear_grad_weight, None, reference.conditional_gaussian, None)
        _ROUTES[device_type] = route
    return _ROUTES[device_type]


def route_for(device: torch.device) -> Route:
    """The route of ``device``: ``"numba"`` on CPU, ``"triton"`` on CUDA, else ``"torch"``."""
    device = torch.device(device)
    return _compiled(device.type) if device.type in ("cpu", "cuda") else TORCH_ROUTE


def _dt(*tensors: Tensor) -> torch.dtype:
    dt = tensors[0].dtype
    for t in tensors[1:]:
        dt = torch.promote_types(dt, t.dtype)
    return dt


def _prepared(dt, *tensors):
    return [t.to(dt).contiguous() for t in tensors]


# the outputs' shapes and dtypes, once: the fake implementations return them, and an empty batch
# returns them as they are (no rows) or zeroed (a weight gradient summed over no rows)
def _like_forward(x, weight):
    return x.new_empty((x.shape[0], weight.shape[0]), dtype=_dt(x, weight))


def _like_grad_input(grad, weight):
    return grad.new_empty((grad.shape[0], weight.shape[1]), dtype=_dt(grad, weight))


def _like_grad_weight(grad, x):
    return grad.new_empty((grad.shape[1], x.shape[1]), dtype=_dt(grad, x))


def _like_conditional_backward(grad, x, weight):
    dt = _dt(grad, x, weight)
    return grad.new_empty((grad.shape[0], weight.shape[1]), dtype=dt), grad.new_empty(tuple(weight.shape), dtype=dt)


# ----------------------------------------------------------------------------
# the operators
# ----------------------------------------------------------------------------
def _operator(name: str):
    """Define ``pnd_theory::name`` from the function's annotations and implement it for every
    device (``torch.library.define`` and ``impl``); returns the operator.  Unlike
    ``torch.library.custom_op`` this adds no wrapper that loads ``torch._dynamo`` on the first
    call (seconds of a new process's first step)."""

    def define(fn):
        qualname = f"pnd_theory::{name}"
        torch.library.define(qualname, torch.library.infer_schema(fn, mutates_args=()))
        torch.library.impl(qualname, "default", fn)
        return getattr(torch.ops.pnd_theory, name).default

    return define


@_operator("masked_linear")
def _forward_op(x: Tensor, weight: Tensor, seed: Tensor, p: float, gaussian: bool, positions: int) -> Tensor:
    if x.shape[0] == 0:
        return _like_forward(x, weight)
    dt = _dt(x, weight)
    x, weight = _prepared(dt, x, weight)
    return route_for(x.device).forward(x, weight, int(seed), p, gaussian, positions).to(dt)


@_operator("masked_linear_grad_input")
def _grad_input_op(grad: Tensor, weight: Tensor, seed: Tensor, p: float, gaussian: bool,
                   positions: int) -> Tensor:
    if grad.shape[0] == 0:
        return _like_grad_input(grad, weight)
    dt = _dt(grad, weight)
    grad, weight = _prepared(dt, grad, weight)
    return route_for(grad.device).grad_input(grad, weight, int(seed), p, gaussian, positions).to(dt)


@_operator("masked_linear_grad_weight")
def _grad_weight_op(grad: Tensor, x: Tensor, seed: Tensor, p: float, gaussian: bool, positions: int) -> Tensor:
    if grad.shape[0] == 0:
        return _like_grad_weight(grad, x).zero_()
    dt = _dt(grad, x)
    grad, x = _prepared(dt, grad, x)
    return route_for(grad.device).grad_weight(grad, x, int(seed), p, gaussian, positions).to(dt)


@_operator("masked_linear_backward")
def _backward_op(grad: Tensor, x: Tensor, weight: Tensor, seed: Tensor, p: float, gaussian: bool,
                 positions: int) -> tuple[Tensor, Tensor]:
    if grad.shape[0] == 0:
        return _like_grad_input(grad, weight), _like_grad_weight(grad, x).zero_()
    dx, dw = _dt(grad, weight), _dt(grad, x)
    route = route_for(grad.device)
    if route.backward is not None:
        dt = _dt(grad, x, weight)
        both = route.backward(*_prepared(dt, grad, x, weight), int(seed), p, gaussian, positions)
        if both is not None:
            return both[0].to(dx), both[1].to(dw)
    return (_grad_input_op(grad, weight, seed, p, gaussian, positions),
            _grad_weight_op(grad, x, seed, p, gaussian, positions))


@_operator("counter_normals")
def _normals_op(seed: Tensor, like: Tensor, n_out: int) -> Tensor:
    if like.shape[0] == 0:
        return like.new_empty((0, n_out))
    return counter_normals(int(seed), like.shape[0], n_out, device=like.device, dtype=like.dtype).contiguous()


@_operator("conditional_gaussian")
def _conditional_op(x: Tensor, weight: Tensor, seed: Tensor, p: float) -> Tensor:
    if x.shape[0] == 0:
        return _like_forward(x, weight)
    dt = _dt(x, weight)
    x, weight = _prepared(dt, x, weight)
    return route_for(x.device).conditional(x, weight, int(seed), p).to(dt)


@_operator("conditional_gaussian_backward")
def _conditional_backward_op(grad: Tensor, x: Tensor, weight: Tensor, seed: Tensor,
                             p: float) -> tuple[Tensor, Tensor]:
    if grad.shape[0] == 0:
        gx, gw = _like_conditional_backward(grad, x, weight)
        return gx, gw.zero_()
    dt = _dt(grad, x, weight)
    grad, x, weight = _prepared(dt, grad, x, weight)
    route = route_for(grad.device)
    if route.conditional_backward is not None:
        both = route.conditional_backward(grad, x, weight, int(seed), p)
        if both is not None:
            return both[0].to(dt), both[1].to(dt)
    gx, gw = _backward_op(grad, x, weight, seed, p, True, 1)
    gc = grad * _sigma_c(x, weight, seed, p)
    return gx.addcmul_(x, gc @ (weight * weight)), gw.addcmul_(weight, gc.t() @ (x * x))


torch.library.register_fake(_forward_op, lambda x, weight, *options: _like_forward(x, weight))
torch.library.register_fake(_grad_input_op, lambda grad, weight, *options: _like_grad_input(grad, weight))
torch.library.register_fake(_grad_weight_op, lambda grad, x, *options: _like_grad_weight(grad, x))
torch.library.register_fake(_backward_op, lambda grad, x, weight, *options: (_like_grad_input(grad, weight),
                                                                             _like_grad_weight(grad, x)))
torch.library.register_fake(_normals_op, lambda seed, like, n_out: like.new_empty((like.shape[0], n_out)))
torch.library.register_fake(_conditional_op, lambda x, weight, *options: _like_forward(x, weight))
torch.library.register_fake(_conditional_backward_op,
                            lambda grad, x, weight, *options: _like_conditional_backward(grad, x, weight))


# ----------------------------------------------------------------------------
# autograd: the table of the module docstring
# ----------------------------------------------------------------------------
def _save_pair(ctx, inputs, output):
    a, b, seed, *options = inputs
    ctx.save_for_backward(a, b, seed)
    ctx.options = tuple(options)


def _save_triple(ctx, inputs, output):
    g, x, w, seed, *options = inputs
    ctx.save_for_backward(g, x, w, seed)
    ctx.options = tuple(options)


def _cast(t: Optional[Tensor], like: Tensor) -> Optional[Tensor]:
    return None if t is None else t.to(like.dtype)


def _forward_backward(ctx, g):
    x, w, seed = ctx.saved_tensors
    need_x, need_w = ctx.needs_input_grad[:2]
    if need_x and need_w and not torch.is_grad_enabled():
        # a first-order backward: both gradients from one regeneration of the masks
        gx, gw = _BC(g, x, w, seed, *ctx.options)
    else:
        gx = _B(g, w, seed, *ctx.options) if need_x else None
        gw = _C(g, x, seed, *ctx.options) if need_w else None
    return _cast(gx, x), _cast(gw, w), None, None, None, None


def _grad_input_backward(ctx, G):
    g, w, seed = ctx.saved_tensors
    dg = _A(G, w, seed, *ctx.options) if ctx.needs_input_grad[0] else None
    dw = _C(g, G, seed, *ctx.options) if ctx.needs_input_grad[1] else None
    return _cast(dg, g), _cast(dw, w), None, None, None, None


def _grad_weight_backward(ctx, G):
    g, x, seed = ctx.saved_tensors
    dg = _A(x, G, seed, *ctx.options) if ctx.needs_input_grad[0] else None
    dx = _B(g, G, seed, *ctx.options) if ctx.needs_input_grad[1] else None
    return _cast(dg, g), _cast(dx, x), None, None, None, None


def _sum(*terms):
    terms = [t for t in terms if t is not None]
    return None if not terms else (terms[0] if len(terms) == 1 else terms[0] + terms[1])


def _backward_backward(ctx, Gx, Gw):
    """``(gx, gw) = (B(g, W), C(g, x))``: the sum of the rows of the table for ``B`` and ``C``."""
    g, x, w, seed = ctx.saved_tensors
    need_g, need_x, need_w = ctx.needs_input_grad[:3]
    dg = _sum(_A(Gx, w, seed, *ctx.options) if need_g and Gx is not None else None,
              _A(x, Gw, seed, *ctx.options) if need_g and Gw is not None else None)
    dx = _B(g, Gw, seed, *ctx.options) if need_x and Gw is not None else None
    dw = _C(g, Gx, seed, *ctx.options) if need_w and Gx is not None else None
    return _cast(dg, g), _cast(dx, x), _cast(dw, w), None, None, None, None


def _normals_backward(ctx, G):
    return None, None, None


torch.library.register_autograd(_forward_op, _forward_backward, setup_context=_save_pair)
torch.library.register_autograd(_grad_input_op, _grad_input_backward, setup_context=_save_pair)
torch.library.register_autograd(_grad_weight_op, _grad_weight_backward, setup_context=_save_pair)
torch.library.register_autograd(_backward_op, _backward_backward, setup_context=_save_triple)
torch.library.register_autograd(_normals_op, _normals_backward, setup_context=lambda ctx, inputs, output: None)


# ----------------------------------------------------------------------------
# the conditional Gaussian map
# ----------------------------------------------------------------------------
def _sigma_c(x: Tensor, weight: Tensor, seed: Tensor, p: float) -> Tensor:
    r""":math:`\sigma c_{rj} = (\sigma n_{rj} \lVert v_{rj} \rVert - sd_{rj}) / \lVert v_{rj} \rVert^2`
    (0 where :math:`v_{rj} = 0`), with :math:`sd_{rj} = \sigma v_{rj} \cdot \xi_{rj}` from one
    product with the masks ``1 + sigma xi``; no autograd."""
    with torch.no_grad():
        sd = _A(x, weight, seed, p, True, 1) - torch.nn.functional.linear(x, weight)
        v2 = torch.nn.functional.linear(x * x, weight * weight)
        zero = v2 == 0
        sc = torch.sqrt(v2).mul_(_N(seed, x, weight.shape[0])).mul_(math.sqrt(p / (1.0 - p)))
        return sc.sub_(sd).div_(v2.clamp_min_(torch.finfo(v2.dtype).tiny)).masked_fill_(zero, 0.0)


def _save_conditional(ctx, inputs, output):
    *tensors, p = inputs
    ctx.save_for_backward(*tensors)
    ctx.p = p


def _conditional_backward(ctx, g):
    x, w, seed = ctx.saved_tensors
    need_x, need_w = ctx.needs_input_grad[:2]
    if not torch.is_grad_enabled():
        # first order: one pass over the masks, even when one gradient is needed
        gx, gw = _CONDB(g, x, w, seed, ctx.p)
        return (_cast(gx, x) if need_x else None), (_cast(gw, w) if need_w else None), None, None
    # higher order: the masks 1 + sigma xi through the differentiable operators, and the part
    # along v = W o x with v and c held constant (they are parts of the masks)
    xc, wc = x.detach(), w.detach()
    gc = g * _sigma_c(xc, wc, seed, ctx.p)
    gx = _B(g, w, seed, ctx.p, True, 1) + xc * (gc @ (w * wc)) if need_x else None
    gw = _C(g, x, seed, ctx.p, True, 1) + wc * (gc.transpose(-2, -1) @ (x * xc)) if need_w else None
    return _cast(gx, x), _cast(gw, w), None, None


def _conditional_backward_backward(ctx, Gx, Gw):
    r"""Derivatives of ``(gx, gw)``, the gradients with the masks
    :math:`M = 1 + \sigma\xi + \sigma c\, (W \circ x)` held fixed:
    :math:`g^x = (W \circ M)^\top g`, :math:`g^W = \sum_r M \circ (g_r x_r^\top)`."""
    g, x, w, seed = ctx.saved_tensors
    p = ctx.p
    need_g, need_x, need_w = ctx.needs_input_grad[:3]
    xc, wc = x.detach(), w.detach()
    sc = _sigma_c(xc, wc, seed, p)
    Gx = torch.zeros_like(x) if Gx is None else Gx
    Gw = torch.zeros_like(w) if Gw is None else Gw
    dg = dx = dw = None
    if need_g:
        dg = (_A(Gx, w, seed, p, True, 1) + _A(x, Gw, seed, p, True, 1)
              + sc * ((Gx * xc) @ (w * wc).transpose(-2, -1) + (x * xc) @ (Gw * wc).transpose(-2, -1)))
    if need_x:
        dx = _B(g, Gw, seed, p, True, 1) + xc * ((g * sc) @ (Gw * wc))
    if need_w:
        dw = _C(g, Gx, seed, p, True, 1) + wc * ((g * sc).transpose(-2, -1) @ (Gx * xc))
    return _cast(dg, g), _cast(dx, x), _cast(dw, w), None, None


torch.library.register_autograd(_conditional_op, _conditional_backward, setup_context=_save_conditional)
torch.library.register_autograd(_conditional_backward_op, _conditional_backward_backward, setup_context=_save_conditional)


# ----------------------------------------------------------------------------
# batching rules
# ----------------------------------------------------------------------------
def _vmap_rule(op, n, seed_at, rows_at):
    """Batching rule: one call per batch entry, each with its own seed when the seed is batched
    (``vmap(..., randomness="different")``).  ``n`` leading arguments are tensors; ``rows_at``
    are those whose rows are samples.  Under ``randomness="same"`` every entry would get the
    same masks, so a call whose samples are batched under one seed is refused there."""

    def rule(info, in_dims, *args):
        seed_batched = in_dims[seed_at] is not None
        rows_batched = any(in_dims[i] is not None for i in rows_at)
        if getattr(info, "randomness", None) == "same" and rows_batched and not seed_batched:
            raise RuntimeError(
                "pnd_theory's per-sample masks under torch.func.vmap(..., randomness='same') would give "
                "every batch entry the same masks; use randomness='different' (independent masks per "
                "entry), or call the layer on the whole batch (one mask per sample)")
        tensors = args[:n]
        parts = []
        for b in range(info.batch_size):
            sliced = [t if d is None else t.select(d, b) for t, d in zip(tensors, in_dims[:n])]
            parts.append(op(*sliced, *args[n:]))
        if isinstance(parts[0], tuple):
            return tuple(torch.stack(group) for group in zip(*parts)), (0,) * len(parts[0])
        return torch.stack(parts), 0

    torch.library.register_vmap(op, rule)


#: every operator of this module with (number of tensor arguments, seed's place, places of rows)
OPS = {_forward_op: (3, 2, (0,)), _grad_input_op: (3, 2, (0,)), _grad_weight_op: (3, 2, (0, 1)),
       _backward_op: (4, 3, (0, 1)), _normals_op: (2, 0, (1,)), _conditional_op: (3, 2, (0,)),
       _conditional_backward_op: (4, 3, (0, 1))}
for _op, (_n, _seed_at, _rows_at) in OPS.items():
    _vmap_rule(_op, _n, _seed_at, _rows_at)


# ----------------------------------------------------------------------------
# the same formulas as autograd functions, for torch.func
# ----------------------------------------------------------------------------
FORWARD_MODE = ("forward-mode differentiation (torch.func.jacfwd, jvp, torch.autograd.forward_ad) of "
                "pnd_theory's per-sample masked map is not implemented; use reverse mode: torch.func.jacrev, "
                "vjp or grad, or torch.autograd.grad")


def _function(name, op, setup_context, backward):
    """An autograd function calling ``op`` with the backward registered on ``op``.

    Eager calls go through it because ``torch.func`` transforms (``grad``, ``vmap``,
    ``jacrev``) do not yet differentiate custom operators through their registered autograd;
    traced programs (``torch.compile``, ``torch.export``) meet the operator and its registered
    formula.  One formula either way.
    """

    def jvp(ctx, *tangents):
        raise RuntimeError(FORWARD_MODE)

    return type(name, (torch.autograd.Function,), {
        "generate_vmap_rule": True, "forward": staticmethod(lambda *args: op(*args)),
        "setup_context": staticmethod(setup_context), "backward": staticmethod(backward),
        "jvp": staticmethod(jvp)})


def _tracing() -> bool:
    """Inside ``torch.compile`` or ``torch.export``: the operators themselves are traced."""
    return torch.compiler.is_compiling()


_MaskedLinear = _function("_MaskedLinear", _forward_op, _save_pair, _forward_backward)
_GradInput = _function("_GradInput", _grad_input_op, _save_pair, _grad_input_backward)
_GradWeight = _function("_GradWeight", _grad_weight_op, _save_pair, _grad_weight_backward)
_Backward = _function("_Backward", _backward_op, _save_triple, _backward_backward)
_Normals = _function("_Normals", _normals_op, lambda ctx, inputs, output: None, _normals_backward)
_ConditionalGaussian = _function("_ConditionalGaussian", _conditional_op, _save_conditional, _conditional_backward)
_ConditionalBackward = _function("_ConditionalBackward", _conditional_backward_op, _save_conditional,
                                 _conditional_backward_backward)
_A, _B, _C, _BC = _MaskedLinear.apply, _GradInput.apply, _GradWeight.apply, _Backward.apply
_N, _CONDB = _Normals.apply, _ConditionalBackward.apply


def masked_linear(x: Tensor, weight: Tensor, seed: Tensor, p: float, gaussian: bool = False,
                  positions: int = 1, conditional: bool = False) -> Tensor:
    r""":math:`z_r = (W \circ M_{s(r)}) x_r` with :math:`s(r) = r // \text{positions}`: the exact per-sample map.

    Every mask value :math:`M_{s,j,i}` is a function of ``(seed, s, j, i)`` (the counter-based
    generator of :mod:`pnd_theory.kernels.counter`), inverted Bernoulli (``gaussian=False``) or
    Gaussian with mean 1 and variance ``p / (1 - p)``, i.i.d. over samples and connections.
    Forward, input gradient and weight gradient compute the masks on the fly (numba on CPU,
    Triton on CUDA, a chunked torch route elsewhere), so nothing of size ``rows x out x in`` is
    stored and the result depends on neither chunking nor thread count.

    With ``gaussian=True`` and ``conditional=True`` (one mask per row: ``positions = 1``) the
    Gaussian masks are drawn in two steps.  With :math:`v_{rj} = W_j \circ x_r` and
    :math:`\sigma = \sqrt{p / (1 - p)}`, the masks are :math:`M_{rj} = 1 + \sigma \zeta_{rj}`,

    .. math::

        \zeta_{rj} = \xi_{rj} + v_{rj}\, c_{rj}, \qquad
        c_{rj} = \frac{n_{rj} \lVert v_{rj} \rVert - v_{rj} \cdot \xi_{rj}}{\lVert v_{rj} \rVert^2}

    (:math:`c_{rj} = 0` when :math:`v_{rj} = 0`), with :math:`n_{rj}` and :math:`\xi_{rj}`
    i.i.d. standard normals from the counters.  The component of :math:`\zeta_{rj}` along
    :math:`v_{rj}` is :math:`n_{rj}` and the rest is the projection of :math:`\xi_{rj}`
    orthogonal to it, independent of :math:`n_{rj}`: so :math:`\zeta_{rj}` is exactly
    :math:`N(0, I)` whatever :math:`W` and :math:`x`.  Forward needs only
    :math:`z_{rj} = W_j \cdot x_r + \sigma\, n_{rj} \lVert v_{rj} \rVert` (two products, no
    mask); backward draws the rest of the masks in one pass.  Gradients of every order are those
    of the sampled masks held fixed; but the masks depend on ``W`` and ``x`` as well as on the
    seed, so finite differences at a fixed seed do not reproduce the returned gradients.

    Parameters
    ----------
    x : Tensor
        Shape ``(rows, in)``.
    weight : Tensor
        Shape ``(out, in)``.
    seed : Tensor
        0-d int64 tensor (see :func:`pnd_theory.laws._sampling.draw_seed_tensor`).
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
        dt = _dt(x, weight)
        conditional_op = _conditional_op if _tracing() else _ConditionalGaussian.apply
        return conditional_op(x.to(dt), weight.to(dt), seed, float(p))
    forward_op = _forward_op if _tracing() else _MaskedLinear.apply
    return forward_op(x, weight, seed, float(p), bool(gaussian), int(positions))
