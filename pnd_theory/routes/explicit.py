r"""The explicit penalty of the noise in any torch model: exact where the model is affine in the
masks, second order elsewhere, with a Monte Carlo of the truth beside it.

A noise site ``s`` multiplies something by masks :math:`m_s = 1 + \epsilon_s` with independent
entries of mean 1 and variances :math:`v_{sj}` (``torch.nn.Dropout`` and Bernoulli layers:
:math:`p/(1-p)`).  Write :math:`f_i(m)` for the model's output on sample ``i``,
:math:`J_{ij} = \partial f_i / \partial m_j` at :math:`m = 1` and :math:`\ell` for the loss.

* **Exact.**  Where :math:`f_i` is affine in the masks and :math:`\ell` is the squared error
  summed over outputs, :math:`f_i(m) = f_i(1) + \sum_j J_{ij} \epsilon_j` and

  .. math::

      E_m\Big[\frac1N \sum_i \|y_i - f_i(m)\|^2\Big] = \frac1N \sum_i \|y_i - f_i(1)\|^2 + R,
      \qquad R = \frac1N \sum_i \sum_{jk} C_{jk} \langle J_{ij}, J_{ik} \rangle
      = \frac1N \sum_i \sum_j v_j \|J_{ij}\|^2,

  whatever the network before the sites does (:math:`C` is the masks' covariance, diagonal for
  independent entries; a block of DropBlock is one variable).  For
  :math:`f(x) = U \mathrm{diag}(\xi) \mathrm{relu}(W x)` with dropout this is
  :math:`\lambda \sum_j \|u_j\|^2 \frac1N \sum_i \mathrm{relu}(w_j^\top x_i)^2`.
* **Second order** (Wei, Kakade and Ma, ICML 2020), elsewhere and for cross-entropy:

  .. math::

      R_2 = \frac1N \sum_i \frac12 \sum_j v_j \Big(\nabla\ell \cdot
      \frac{\partial^2 f_i}{\partial m_j^2} + J_{ij}^\top (\nabla^2 \ell)\, J_{ij}\Big),

  exact when the model is affine in the masks and the loss is quadratic; an approximation
  otherwise (sites in sequence: the products of their masks are left out; a site before a
  ReLU: the kinks, where autograd's second derivative is zero).  Its error is in view: every
  result carries a Monte Carlo estimate of the true :math:`E[\text{loss}] - \text{loss}(m = 1)`
  with the layers' own sampled masks.

How: each site's noise is replaced, for the duration of a call, by a deterministic mask tensor
that is an argument of the function differentiated, so ``torch.func`` gives per-sample
Jacobians (``vmap`` of ``jacrev``) and Hessian diagonals (``jvp`` of ``grad``) with respect to the
masks, in chunks of samples whose size bounds the memory.  A site is declared affine when, for
every sample, the output at drawn masks equals :math:`f_i(1) + \sum_j J_{ij} \epsilon_j` to
:math:`\sqrt{\text{eps}}` of the scale of the terms; the curvature term is computed only where a
Hessian-vector product at a random direction is nonzero.

:func:`penalized_loss` is the same value with autograd left on: ``loss + penalty`` is a
differentiable objective whose gradient is :math:`\nabla_\theta (L + R_2)`, to train a network on the
explicit effect of its noise alone (:mod:`pnd_theory.studies.explicit_implicit`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import math
from collections import namedtuple

import numpy as np
import torch
from torch import nn
from torch.func import grad, jacrev, jvp, vmap

from .._display import ResultDisplay, format_value
from .._validation import InvalidParameterError, check_positive_int, check_seed, invalid
from ..laws._sampling import sample_mask
from ..laws.scalar import Bernoulli
from ..nn.layers import BlockDropout, DropConnectLinear, GaussianDropout, NodeDropout, PerNodeDropLinear
from ..nn.ydrop import YDrop

__all__ = ["explicit_penalty", "penalized_loss", "PenalizedLoss", "ExplicitPenalty", "SitePenalty", "MonteCarlo",
           "LOSSES"]

#: the losses :func:`explicit_penalty` takes
LOSSES = ("mse", "cross_entropy")
#: entries of Jacobians (and Hessian probes) held at once by default
MAX_ELEMENTS = 2**23
#: draws of real masks per sample used to decide whether the model is affine in a site's masks
AFFINE_DRAWS = 2

MonteCarlo = namedtuple("MonteCarlo", "estimate standard_error samples")
#: the result of :func:`penalized_loss`: two scalar tensors
PenalizedLoss = namedtuple("PenalizedLoss", "loss penalty")


# ----------------------------------------------------------------------------
# noise sites: what is random, and the same computation with a given mask
# ----------------------------------------------------------------------------
class _Site:
    """One noise module: its mask variables per sample, their variances, and its forward with
    a given mask ``m`` (batch first) or with no noise (``m is None``)."""

    def __init__(self, name, module):
        self.name, self.module, self.in_shape, self.calls = name, module, None, 0

    # mask variables of one sample, for an input of per-sample shape ``in_shape``
    def shape(self):
        return tuple(self.in_shape)

    def variance(self, like):
        return like.new_tensor(self.law.variance)

    def draw(self, shape, generator, like):
        return self.law.sample(shape, generator=generator, device=like.device, dtype=like.dtype)

    def apply(self, x, m):
        return x if m is None else x * m

    @property
    def variables(self):
        return math.prod(self.shape())


class _Units(_Site):
    """``h * m``, one variable per element (``torch.nn.Dropout``, GaussianDropout, NodeDropout)."""

    def __init__(self, name, module):
        super().__init__(name, module)
        if isinstance(module, NodeDropout):
            self.law = None
            self.text = f"NodeDropout(width {module.width})"
        else:
            self.law = module.scalar_law if hasattr(module, "scalar_law") else Bernoulli(module.p)
            self.text = repr(self.law)

    def variance(self, like):
        if self.law is None:
            return self.module.lam.to(device=like.device, dtype=like.dtype)
        return super().variance(like)

    def draw(self, shape, generator, like):
        if self.law is None:
            return sample_mask(shape, self.module.p.to(like.device), "drop", generator=generator,
                               device=like.device, dtype=like.dtype)
        return super().draw(shape, generator, like)


class _Blocks(_Site):
    """DropBlock over units: one variable per block of ``block_size`` contiguous units."""

    def __init__(self, name, module):
        super().__init__(name, module)
        self.law, self.b = module.scalar_law, module.block_size
        self.text = f"{self.law!r}, blocks of {self.b}"

    def shape(self):
        *lead, width = self.in_shape
        if width % self.b:
            raise invalid("model", f"a model whose input to {self.name} has a width divisible by block_size="
                          f"{self.b}; width", width)
        return (*lead, width // self.b)

    def apply(self, x, m):
        if m is None:
            return x
        nb = x.shape[-1] // self.b
        return (x.reshape(*x.shape[:-1], nb, self.b) * m.unsqueeze(-1)).reshape(x.shape)


class _Weights(_Site):
    r"""``z = (W \circ M) x + b``, one variable per weight (per sample, and per position unless the
    positions of a sample share the mask)."""

    def __init__(self, name, module):
        super().__init__(name, module)
        self.law = module.scalar_law
        shared = isinstance(module, DropConnectLinear) and not module.per_sample
        self.per_position = not shared and getattr(module, "mask_per", "position") == "position"
        self.text = repr(self.law) + (" (one mask per batch)" if shared else "")

    def shape(self):
        lead = tuple(self.in_shape[:-1]) if self.per_position else ()
        return (*lead, *self.module.weight.shape)

    def apply(self, x, m):
        W, b = self.module.weight, self.module.bias
        if m is None:
            return nn.functional.linear(x, W, b)
        if self.per_position or x.dim() == 2:
            z = torch.einsum("...oi,...i->...o", W * m, x)
        else:
            flat = x.reshape(x.shape[0], -1, x.shape[-1])
            z = torch.einsum("boi,bpi->bpo", W * m, flat).reshape(*x.shape[:-1], W.shape[0])
        return z if b is None else z + b


def _site_for(name, module):
    if isinstance(module, YDrop):
        raise invalid("model", "a model without YDrop (its rates move with every batch; a NodeDropout with its "
                      f"current rates has the same masks at this step); {name!r} is", type(module).__name__)
    if isinstance(module, (PerNodeDropLinear, DropConnectLinear)):
        return None if getattr(module, "fixed_mask", False) else _Weights(name, module)
    if isinstance(module, BlockDropout):
        return _Blocks(name, module)
    if isinstance(module, (nn.Dropout, GaussianDropout, NodeDropout)):
        if isinstance(module, nn.Dropout) and module.p >= 1.0:
            raise invalid("model", f"a model whose dropout rates are below 1 (mask variance p/(1-p)); {name!r} has p",
                          module.p)
        return _Units(name, module)
    if isinstance(module, nn.modules.dropout._DropoutNd):
        raise invalid("model", "a model whose noise is torch.nn.Dropout or the package's layers (channel-wise and "
                      f"alpha dropout are not supported); {name!r} is", type(module).__name__)
    return None


def find_sites(model):
    """The noise sites of ``model`` in the order of ``named_modules`` (a module seen once)."""
    return [s for s in (_site_for(n or type(model).__name__, m) for n, m in model.named_modules()) if s is not None]


@contextlib.contextmanager
def _masked(sites, masks, record=False):
    """Each site computes ``apply(x, mask)`` instead of drawing noise, for the duration."""
    saved = []
    for site, m in zip(sites, masks):
        def forward(x, *args, _site=site, _m=m, **kwargs):
            if record:
                _site.calls += 1
                _site.in_shape = tuple(x.shape[1:])
            return _site.apply(x, _m)
        saved.append((site.module, site.module.__dict__.get("forward")))
        site.module.forward = forward
    try:
        yield
    finally:
        for module, previous in saved:
            del module.forward
            if previous is not None:
                module.forward = previous


# ----------------------------------------------------------------------------
# losses: value, gradient and Hessian (as a quadratic form) in the output
# ----------------------------------------------------------------------------
def _loss_terms(loss, f, t):
    r"""Per sample: :math:`\ell`, :math:`\nabla \ell` and the map :math:`J \mapsto J^\top (\nabla^2\ell) J`
    (``J`` of shape ``(batch, n_out, k)``, summed over ``k`` after weighting by the caller)."""
    if loss == "mse":
        r = f - t
        return (r * r).sum(-1), 2 * r, lambda J: 2 * (J * J).sum(1)
    s = torch.softmax(f, -1)
    value = torch.logsumexp(f, -1) - (t * f).sum(-1)

    def quadratic(J):
        sJ = torch.einsum("bo,bok->bk", s, J)
        return torch.einsum("bo,bok->bk", s, J * J) - sJ * sJ
    return value, s - t, quadratic


# ----------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------
@dataclasses.dataclass(repr=False)
class SitePenalty(ResultDisplay):
    """One noise site's part of the penalty (a row of :attr:`ExplicitPenalty.sites`)."""

    site: str
    module: str
    law: str
    variables: int
    affine: bool
    penalty: float
    curvature: float


@dataclasses.dataclass(repr=False)
class ExplicitPenalty(ResultDisplay):
    r"""The result of :func:`explicit_penalty`.

    Attributes
    ----------
    value : float
        :math:`R` (exact) or :math:`R_2` (second order), summed over the sites.
    exact : bool
        True when the loss is the squared error and the model is affine in all masks jointly.
    method : str
        How ``value`` was obtained.
    loss : str
    plain_loss : float
        The loss with every mask at 1 (the mean network).
    monte_carlo : MonteCarlo or None
        ``(estimate, standard_error, samples)`` of :math:`E[\text{loss}] - \text{loss}(m = 1)`
        with the layers' own sampled masks.
    sites : tuple of SitePenalty
        Per site: its part of ``value`` (``penalty``, of which ``curvature`` is the term in
        :math:`\partial^2 f`), whether the model is affine in that site's masks alone.
    """

    value: float
    exact: bool
    method: str
    loss: str
    plain_loss: float
    monte_carlo: MonteCarlo | None
    sites: tuple

    @property
    def error(self):
        """``value - monte_carlo.estimate`` (None without a Monte Carlo)."""
        return None if self.monte_carlo is None else self.value - self.monte_carlo.estimate

    @property
    def z(self):
        """``error / monte_carlo.standard_error`` (None without a Monte Carlo or with a zero error bar)."""
        mc = self.monte_carlo
        return None if mc is None or mc.standard_error == 0 else self.error / mc.standard_error

    def _display_items(self):
        mc = self.monte_carlo
        return [("value", self.value), ("exact", self.exact), ("method", self.method), ("loss", self.loss),
                ("plain_loss", self.plain_loss),
                ("monte_carlo", None if mc is None else f"{mc.estimate:.6g} +- {mc.standard_error:.2g} ({mc.samples})"),
                ("z", self.z), ("sites", len(self.sites))]

    def _repr_html_(self):
        head = super()._repr_html_()
        names = [f.name for f in dataclasses.fields(SitePenalty)]
        cells = "".join("<tr>" + "".join(f"<td>{html.escape(format_value(getattr(s, n), 6))}</td>" for n in names)
                        + "</tr>" for s in self.sites)
        header = "".join(f"<th>{n}</th>" for n in names)
        return head + f"<table><thead><tr>{header}</tr></thead><tbody>{cells}</tbody></table>"

    def to_dataframe(self):
        """One row per site (:class:`SitePenalty` fields), the result's scalars repeated as columns."""
        try:
            import pandas as pd  # optional dependency, needed only here
        except ImportError as err:  # pragma: no cover
            raise ImportError("to_dataframe needs pandas: pip install 'pnd-theory[notebook]'") from err
        mc = self.monte_carlo
        common = {"value": self.value, "exact": self.exact, "method": self.method, "loss": self.loss,
                  "plain_loss": self.plain_loss, "monte_carlo": None if mc is None else mc.estimate,
                  "monte_carlo_se": None if mc is None else mc.standard_error}
        return pd.DataFrame([{**dataclasses.asdict(s), **common} for s in self.sites])


# ----------------------------------------------------------------------------
# the computation
# ----------------------------------------------------------------------------
def _checked_inputs(model, X, Y, loss, samples, seed, max_elements):
    if not isinstance(model, nn.Module):
        raise invalid("model", "a torch.nn.Module", type(model).__name__)
    if loss not in LOSSES:
        raise invalid("loss", f"one of {', '.join(map(repr, LOSSES))}", loss)
    if isinstance(samples, (bool, np.bool_)) or not isinstance(samples, (int, np.integer)) or samples == 1 or samples < 0:
        raise invalid("samples", "0 (no Monte Carlo) or an integer of at least 2 (for a standard error)", samples)
    seed = None if seed is None else check_seed(seed)
    max_elements = check_positive_int("max_elements", max_elements)
    ref = next(iter(model.parameters()), None)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None and ref.dtype.is_floating_point else torch.get_default_dtype()
    tensors = []
    for name, A in (("X", X), ("Y", Y)):
        try:
            A = torch.as_tensor(A, device=device)
        except (TypeError, ValueError, RuntimeError):
            raise invalid(name, "a tensor or array with samples along the first dimension", type(A).__name__) from None
        if A.dim() < 1 or A.shape[0] == 0:
            raise invalid(name, "a tensor with at least one sample along its first dimension; shape", tuple(A.shape))
        if A.is_floating_point():
            A = A.to(dtype)
            if not bool(torch.isfinite(A).all()):
                raise invalid(name, "finite (it holds NaN or infinity)", f"{int((~torch.isfinite(A)).sum())} entries")
        tensors.append(A)
    X, Y = tensors
    if X.shape[0] != Y.shape[0]:
        raise invalid("Y", f"as many samples as X ({X.shape[0]}); samples", Y.shape[0])
    return X, Y, int(samples), seed, max_elements, dtype


def _targets(loss, Y, out):
    """Targets as ``(N, n_out)`` rows matching the flattened outputs ``out``."""
    if loss == "mse":
        if tuple(Y.shape[1:]) != tuple(out.shape[1:]) or not Y.is_floating_point():
            raise invalid("Y", f"real targets of the model's output shape {tuple(out.shape[1:])} per sample; shape",
                          tuple(Y.shape))
        return Y.reshape(Y.shape[0], -1)
    if out.dim() != 2:
        raise invalid("loss", "'mse' for a model whose output is not (batch, classes); output shape", tuple(out.shape))
    C = out.shape[1]
    if not Y.is_floating_point():
        if Y.dim() != 1 or bool((Y < 0).any()) or bool((Y >= C).any()):
            raise invalid("Y", f"class labels in [0, {C}) of shape (N,) or class probabilities (N, {C}); got labels",
                          f"shape {tuple(Y.shape)}, range [{int(Y.min())}, {int(Y.max())}]")
        return nn.functional.one_hot(Y, C).to(out.dtype)
    if tuple(Y.shape[1:]) != (C,):
        raise invalid("Y", f"class labels (N,) or class probabilities (N, {C}); shape", tuple(Y.shape))
    return Y


def _forward(model, sites, masks, x):
    with _masked(sites, masks):
        out = model(x)
    if not isinstance(out, torch.Tensor):
        raise invalid("model", "a model returning one tensor", type(out).__name__)
    return out.reshape(out.shape[0], -1)


def _site_function(model, sites, s):
    """``f(m, x)``: the output on one sample with mask ``m`` at site ``s`` and no noise elsewhere."""
    def f(m, x):
        masks = [m.unsqueeze(0) if k == s else None for k in range(len(sites))]
        return _forward(model, sites, masks, x.unsqueeze(0))[0]
    return f


def _curvature(f, ones, xs, g, v, chunk_elements, generator):
    r""":math:`\sum_j v_j\, g \cdot \partial^2 f / \partial m_j^2` per sample: zero when a Hessian-vector product at a
    random direction is zero, else the Hessian's diagonal, ``c`` basis directions at a time."""
    def phi(m, x, gi):
        return (gi * f(m, x)).sum()

    def hvp(x, gi, t):
        return jvp(lambda m: grad(phi)(m, x, gi), (ones,), (t,))[1]

    probe = torch.randn((xs.shape[0], *ones.shape), generator=generator, dtype=ones.dtype, device=ones.device)
    if not bool(vmap(hvp)(xs, g, probe).any()):
        return xs.new_zeros(xs.shape[0])
    d = ones.numel()
    c = max(1, chunk_elements // max(1, xs.shape[0] * d))
    total = xs.new_zeros(xs.shape[0])
    flat_v = torch.broadcast_to(v, ones.shape).reshape(-1)
    for a in range(0, d, c):
        idx = torch.arange(a, min(a + c, d), device=ones.device)
        basis = torch.zeros((len(idx), d), dtype=ones.dtype, device=ones.device)
        basis[torch.arange(len(idx)), idx] = 1
        basis = basis.reshape(len(idx), *ones.shape)
        rows = vmap(lambda x, gi: vmap(lambda t: hvp(x, gi, t))(basis))(xs, g)  # (b, c, *shape)
        diag = rows.reshape(xs.shape[0], len(idx), d)[:, torch.arange(len(idx)), idx]
        total = total + diag @ flat_v[idx]
    return total


def _site_terms(model, sites, s, xs, g, quadratic, max_elements, generator):
    r"""Site ``s`` on the samples ``xs``: the Jacobian :math:`J` ``(b, n_out, variables)``, the mask of ones,
    and per sample :math:`\frac12 \sum_j v_j J_j^\top (\nabla^2\ell) J_j` and
    :math:`\frac12 \sum_j v_j\, \nabla\ell \cdot \partial^2 f / \partial m_j^2`; differentiable in the
    model's parameters when called with autograd on."""
    site = sites[s]
    ones = torch.ones(site.shape(), dtype=g.dtype, device=g.device)
    f = _site_function(model, sites, s)
    J = vmap(jacrev(f), in_dims=(None, 0))(ones, xs).reshape(xs.shape[0], g.shape[-1], -1)
    v = site.variance(ones)
    flat_v = torch.broadcast_to(v, ones.shape).reshape(-1)
    part = 0.5 * (quadratic(J) @ flat_v)
    curv = 0.5 * _curvature(f, ones, xs, g, v, max_elements, generator)
    return J, ones, part, curv


def _affine(out, f0, Js, draws, sites_idx):
    """Whether ``out = f0 + sum_s J_s (m_s - 1)`` to sqrt(eps) of the terms' scale, for every sample."""
    pred, scale = f0.clone(), f0.abs() + out.abs()
    for s in sites_idx:
        term = Js[s] * (draws[s] - 1).reshape(draws[s].shape[0], 1, -1)
        pred = pred + term.sum(-1)
        scale = scale + term.abs().sum(-1)
    tol = math.sqrt(torch.finfo(out.dtype).eps)
    return bool(((out - pred).abs() <= tol * scale).all())


def _monte_carlo(model, sites, X, Tflat, loss, samples, seed, plain, batch):
    """Real masks: the sites in training mode, the rest of the model as it was evaluated."""
    draws = []
    with torch.random.fork_rng(devices=[X.device] if X.device.type == "cuda" else []):
        if seed is not None:
            torch.manual_seed(seed)
        for site in sites:
            site.module.train()
        try:
            for _ in range(samples):
                total = 0.0
                for a in range(0, X.shape[0], batch):
                    out = model(X[a:a + batch])
                    total += float(_loss_terms(loss, out.reshape(out.shape[0], -1), Tflat[a:a + batch])[0].sum())
                draws.append(total / X.shape[0] - plain)
        finally:
            for site in sites:
                site.module.eval()
    draws = np.asarray(draws)
    return MonteCarlo(float(draws.mean()), float(draws.std(ddof=1) / math.sqrt(samples)), samples)


def explicit_penalty(model, X, Y, *, loss="mse", samples=1000, seed=None, max_elements=MAX_ELEMENTS):
    r"""The penalty that a torch model's noise adds to its loss, exact or second order, with a Monte Carlo.

    .. math::

        R = \frac1N \sum_i \sum_j v_j \|\partial f_i / \partial m_j\|^2 \quad\text{(affine in the masks, squared
        error)}, \qquad
        R_2 = \frac1N \sum_i \frac12 \sum_j v_j \big(\nabla\ell \cdot \partial^2_{m_j} f_i
        + \partial_{m_j} f_i^\top\, \nabla^2\ell\, \partial_{m_j} f_i\big) \quad\text{(otherwise)}

    with :math:`v_j` the variance of mask :math:`m_j` (theory page, equations :eq:`site-penalty`
    and :eq:`second-order`).  The noise sites are the modules of ``model`` that are
    ``torch.nn.Dropout``, :class:`~pnd_theory.nn.GaussianDropout`, :class:`~pnd_theory.nn.BlockDropout`,
    :class:`~pnd_theory.nn.NodeDropout`, :class:`~pnd_theory.nn.PerNodeDropLinear` (not with
    ``fixed_mask``: that mask is part of the model) and :class:`~pnd_theory.nn.DropConnectLinear`
    (a mask shared by the batch has the same expected loss as one per sample); each must run
    once per forward.  The model is evaluated in eval mode (batch normalisation with its running
    statistics), its modes restored afterwards.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(X[a:b])``; its output ``(batch, ...)``.
    X : tensor or array
        Inputs as the model takes them, samples along the first dimension; moved to the model's
        device (and floating inputs to its dtype).
    Y : tensor or array
        ``loss="mse"``: targets of the output's shape.  ``loss="cross_entropy"``: class labels
        ``(N,)`` or class probabilities ``(N, classes)`` for an output ``(N, classes)``.
    loss : {"mse", "cross_entropy"}
        ``"mse"``: the squared error summed over outputs, averaged over samples (no 1/2).
        ``"cross_entropy"``: :math:`\mathrm{logsumexp}(f) - t \cdot f`, averaged; second order only.
    samples : int
        Draws of the Monte Carlo (each a pass over all of ``X``); 0 for none.
    seed : int, optional
        Seeds the Monte Carlo's masks (torch's global generator, restored afterwards; a layer
        with its own generator draws from it) and the draws of the affinity check.
    max_elements : int
        Entries of Jacobians and Hessian probes held at once: the chunk of samples is
        ``max_elements // (n_out * variables)``.

    Returns
    -------
    ExplicitPenalty

    Examples
    --------
    >>> import torch
    >>> import pnd_theory as pt
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Dropout(0.5),
    ...                             torch.nn.Linear(8, 2)).double()
    >>> X, Y = torch.randn(16, 3, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
    >>> result = pt.explicit_penalty(model, X, Y, samples=200, seed=0)

    The output is affine in the dropout masks, so the value is exact, and the Monte Carlo with the
    layer's own masks agrees with it:

    >>> result.exact
    True
    >>> bool(abs(result.z) < 5)
    True
    """
    X, Y, samples, seed, max_elements, dtype = _checked_inputs(model, X, Y, loss, samples, seed, max_elements)
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        sites, T = _running_sites(model, X, Y, loss)
        result = _penalty(model, sites, X, T, loss, seed, max_elements, dtype)
        plain = result.pop("plain")
        mc = None
        if samples:
            with torch.no_grad():
                mc = _monte_carlo(model, sites, X, T, loss, samples, seed, plain, result.pop("batch"))
        result.pop("batch", None)
    finally:
        for m, mode in modes.items():
            m.training = mode
    return ExplicitPenalty(plain_loss=plain, monte_carlo=mc, loss=loss, **result)


def _running_sites(model, X, Y, loss):
    """The noise sites that ``model`` runs (once each) on ``X[:1]``, their input shapes recorded, and the
    targets as rows; the model in eval mode."""
    sites = find_sites(model)
    if not sites:
        raise invalid("model", "a model with a noise site (torch.nn.Dropout, GaussianDropout, BlockDropout, "
                      "NodeDropout, PerNodeDropLinear or DropConnectLinear)", type(model).__name__)
    with torch.no_grad():
        with _masked(sites, [None] * len(sites), record=True):
            out = model(X[:1])
    unused = [s.name for s in sites if s.calls == 0]
    again = [s.name for s in sites if s.calls > 1]
    if again:
        raise invalid("model", "a model whose noise modules run once per forward (each run needs its own "
                      "masks); these run more often", again)
    sites = [s for s in sites if s.calls == 1]
    if not sites:
        raise invalid("model", "a model whose forward runs a noise site; none of these runs", unused)
    return sites, _targets(loss, Y, out if isinstance(out, torch.Tensor) else torch.empty(0))


def penalized_loss(model, X, Y, *, loss="mse", max_elements=MAX_ELEMENTS):
    r"""The loss of the mean network and the explicit penalty of its noise, as tensors differentiable in the
    model's parameters: train on ``loss + penalty`` to keep the explicit effect of the noise alone.

    .. math::

        L = \frac1N \sum_i \ell(f_i(1), y_i), \qquad
        R_2 = \frac1N \sum_i \frac12 \sum_j v_j \big(\nabla\ell \cdot \partial^2_{m_j} f_i
        + \partial_{m_j} f_i^\top\, \nabla^2\ell\, \partial_{m_j} f_i\big),

    the same :math:`R_2` as :func:`explicit_penalty`'s ``value`` (equal to the exact :math:`R` where the model
    is affine in the masks and the loss is ``"mse"``, so that :math:`L + R_2 = E_m[\text{loss}]` there),
    computed by the same per-sample Jacobians with autograd left on: its gradient is
    :math:`\nabla_\theta (L + R_2)`.  Nothing is sampled and nothing checked for affinity; the model runs in
    eval mode for the call (its modes restored), every noise site replaced by a mask of ones.

    Parameters
    ----------
    model, X, Y, loss, max_elements
        As for :func:`explicit_penalty` (``X`` a batch: it is held at once).

    Returns
    -------
    PenalizedLoss
        ``(loss, penalty)``: two scalar tensors with their autograd graphs.

    Examples
    --------
    >>> import torch
    >>> import pnd_theory as pt
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.Dropout(0.5),
    ...                             torch.nn.Linear(4, 2, bias=False)).double()
    >>> X, Y = torch.randn(16, 3, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
    >>> loss, penalty = pt.penalized_loss(model, X, Y)
    >>> (loss + penalty).backward()
    >>> model[0].weight.grad.shape
    torch.Size([4, 3])

    For this linear network the penalty is Dropout's closed form with :math:`U` the second
    layer's weight, :math:`V` the first's transposed and :math:`S = X^\top X / N`:

    >>> U, V = model[2].weight.detach().numpy(), model[0].weight.detach().numpy().T
    >>> R = pt.expected_penalty(pt.Dropout(0.5), U, V, pt.second_moment(X.numpy().T))
    >>> bool(abs(penalty.item() - R) < 1e-12)
    True
    """
    X, Y, _, _, max_elements, _ = _checked_inputs(model, X, Y, loss, 0, None, max_elements)
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        sites, T = _running_sites(model, X, Y, loss)
        gen = torch.Generator(device=X.device).manual_seed(0)
        f0 = _forward(model, sites, [None] * len(sites), X)
        value, g, quadratic = _loss_terms(loss, f0, T)
        penalty = value.new_zeros(())
        for s in range(len(sites)):
            _, _, part, curv = _site_terms(model, sites, s, X, g, quadratic, max_elements, gen)
            penalty = penalty + (part + curv).sum()
    finally:
        for m, mode in modes.items():
            m.training = mode
    return PenalizedLoss(value.mean(), penalty / X.shape[0])


def _penalty(model, sites, X, T, loss, seed, max_elements, dtype):
    N, device = X.shape[0], X.device
    n_out = T.shape[1]
    per_sample = max(1, n_out * sum(s.variables for s in sites))
    batch = max(1, min(N, max_elements // per_sample))
    gen = torch.Generator(device=device).manual_seed(0 if seed is None else seed)
    penalty = np.zeros(len(sites))
    curvature = np.zeros(len(sites))
    affine = [True] * len(sites)
    joint, plain = True, 0.0
    for a in range(0, N, batch):
        xs, ts = X[a:a + batch], T[a:a + batch]
        b = xs.shape[0]
        with torch.no_grad():
            f0 = _forward(model, sites, [None] * len(sites), xs)
            if not bool(torch.isfinite(f0).all()):
                raise invalid("model", "a model with finite outputs on X (with no noise it gives NaN or infinity "
                              f"on samples {a} to {a + b - 1})", "non-finite outputs")
            value, g, quadratic = _loss_terms(loss, f0, ts)
            plain += float(value.sum())
            Js = []
            for s, site in enumerate(sites):
                J, ones, part, curv = _site_terms(model, sites, s, xs, g, quadratic, max_elements, gen)
                penalty[s] += float((part + curv).sum())
                curvature[s] += float(curv.sum())
                Js.append(J)
                for _ in range(AFFINE_DRAWS):
                    m = site.draw((b, *site.shape()), gen, ones)
                    masks = [m if k == s else None for k in range(len(sites))]
                    affine[s] &= _affine(_forward(model, sites, masks, xs), f0, {s: J}, {s: m}, [s])
            if len(sites) > 1 and joint:
                for _ in range(AFFINE_DRAWS):
                    ms = [site.draw((b, *site.shape()), gen, f0) for site in sites]
                    joint &= _affine(_forward(model, sites, ms, xs), f0, dict(enumerate(Js)), dict(enumerate(ms)),
                                     range(len(sites)))
    joint = joint and all(affine)
    exact = loss == "mse" and joint
    rows = tuple(SitePenalty(site=s.name, module=type(s.module).__name__, law=s.text, variables=s.variables,
                             affine=affine[k], penalty=penalty[k] / N, curvature=curvature[k] / N)
                 for k, s in enumerate(sites))
    method = ("exact: the output is affine in the masks and the loss quadratic" if exact else
              "second order (Wei, Kakade and Ma, 2020): " +
              ("the loss is not quadratic" if joint else "the output is not affine in the masks"))
    return {"value": float(penalty.sum() / N), "exact": exact, "method": method, "sites": rows,
            "plain": plain / N, "batch": batch}
