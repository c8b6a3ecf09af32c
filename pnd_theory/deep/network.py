r"""The noise of a deep linear network, read from the laws, and its sampled forward pass.

.. math::

    f(x) = (W_L \circ M_L)\, \xi_{L-1} \circ \big((W_{L-1} \circ M_{L-1}) \cdots
        \xi_1 \circ ((W_1 \circ M_1) x)\big)

``weights = [W_1, ..., W_L]`` in forward order, :math:`W_l` of shape ``(n_l, n_{l-1})`` (the
``nn.Linear`` convention).  Every hidden layer ``l < L`` may carry a hidden-unit mask
:math:`\xi_l` (the ``hidden`` component law of a hidden-unit strategy at width ``n_l``) and
every matrix a weight mask :math:`M_l` with independent entries of one scalar law, drawn per
sample (``weight_noise[l] = law``: PerNodeDrop at that layer) or once per mini-batch
(``(law, "shared")``: DropConnect).  All masks have mean 1 and are independent of each other.

:class:`DeepLaw` gathers the components under the names ``"xi_l"`` and ``"W_l"`` and answers
the same protocol as a single-layer :class:`~pnd_theory.laws.MaskLaw` (``components``,
``check_order``, ``sample``), so that enumeration and sampling are the package's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from .._validation import InvalidParameterError, as_arrays, check_data, check_memory, check_positive_int, invalid
from ..laws.masks import ComponentsMixin, ScalarLaw, independent_mask
from ..laws.strategies import Strategy

#: the two ways a weight mask is drawn: per sample (PerNodeDrop) or once per batch (DropConnect)
WEIGHT_MODES = ("per_sample", "shared")


@dataclass(frozen=True, eq=False)
class DeepLaw(ComponentsMixin):
    """The law of every mask of a deep linear network with layer sizes ``sizes = (n_0, ..., n_L)``.

    ``hidden[l - 1]`` is the component law of hidden layer ``l`` (or None) and
    ``hidden_per_sample[l - 1]`` whether it is drawn per sample; ``weight_laws[l - 1]`` is the
    scalar law of every entry of the mask of :math:`W_l` (or None), and
    ``weights_per_sample[l - 1]`` how it is drawn.  Built by :func:`deep_law`.

    Examples
    --------
    Masks sampled from the law and applied by the network: the mean output over many draws is
    the mean network's (every mask has mean 1):

    >>> import numpy as np
    >>> import torch
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> law = pt.deep.deep_law((3, 4, 2), hidden=[pt.Dropout(0.5)], weight_noise=[None, pt.Bernoulli(0.2)])
    >>> masks = law.sample(20_000, 1, torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> {name: tuple(mask.shape) for name, mask in masks.items()}  # (draws, samples, *shape)
    {'xi_1': (20000, 1, 4), 'W_2': (20000, 1, 2, 4)}
    >>> f = law.predict([torch.tensor(V.T), torch.tensor(U)], torch.tensor(X[:, :1]), masks)
    >>> bool(np.allclose(f.mean(0).numpy().T, U @ V.T @ X[:, :1], atol=0.05))
    True
    """

    sizes: tuple
    hidden: tuple
    hidden_per_sample: tuple
    weight_laws: tuple
    weights_per_sample: tuple

    @cached_property
    def weights(self) -> tuple:
        """Component law of the mask of every :math:`W_l` (independent entries, shape
        ``(n_l, n_{l-1})``) or None; built on first use (the closed form needs only the
        scalar laws)."""
        return tuple(None if law is None else independent_mask(law, (self.sizes[l], self.sizes[l - 1]), "p")
                     for l, law in enumerate(self.weight_laws, start=1))

    @property
    def depth(self) -> int:
        return len(self.sizes) - 1

    @property
    def components(self) -> dict:
        """Random components in forward order: ``{"W_1": ..., "xi_1": ..., "W_2": ...}``."""
        out = {}
        for l in range(1, self.depth + 1):
            if self.weights[l - 1] is not None:
                out[f"W_{l}"] = self.weights[l - 1]
            if l < self.depth and self.hidden[l - 1] is not None:
                out[f"xi_{l}"] = self.hidden[l - 1]
        return out

    def per_sample(self, name: str) -> bool:
        kind, l = name.split("_")
        return (self.weights_per_sample if kind == "W" else self.hidden_per_sample)[int(l) - 1]


    def sample(self, n_draws: int, n_samples: int, generator=None, device=None, dtype=None) -> dict:
        """Masks of ``n_draws`` independent draws over ``n_samples`` samples: each of shape
        ``(n_draws, n, *component_shape)``, ``n = n_samples`` per sample, 1 when shared."""
        return {name: c.sample((n_draws, n_samples if self.per_sample(name) else 1), generator, device, dtype)
                for name, c in self.components.items()}

    def predict(self, weights, X, masks: dict):
        r"""Outputs :math:`f_M(x_k)` of the masked network, shape ``(T, N, n_L)`` (torch).

        ``X`` is ``(n_0, N)``; ``masks`` as from :meth:`sample` (or enumeration), each with a
        leading draw axis ``T`` and a sample axis of size ``N`` or 1.
        """
        T = max([m.shape[0] for m in masks.values()] + [1])
        h = X.T.unsqueeze(0).expand(T, -1, -1)
        for l, W in enumerate(weights, start=1):
            M = masks.get(f"W_{l}")
            if M is None:
                h = h @ W.T
            elif M.shape[1] == 1:
                h = h @ (W * M[:, 0]).transpose(-1, -2)
            else:
                h = ((W * M) @ h.unsqueeze(-1)).squeeze(-1)
            xi = masks.get(f"xi_{l}")
            if xi is not None:
                h = h * xi
        return h


def _is_sequence(x) -> bool:
    return isinstance(x, Sequence) and not isinstance(x, (str, bytes, Mapping))


def check_sizes(sizes) -> tuple:
    """Layer sizes ``(n_0, ..., n_L)``: at least two positive integers."""
    if not _is_sequence(sizes) or len(sizes) < 2:
        raise invalid("sizes", "a sequence of at least two positive integers (n_0, ..., n_L)", sizes)
    sizes = tuple(check_positive_int(f"sizes[{i}]", n) for i, n in enumerate(sizes))
    check_layer_sizes(sizes)
    return sizes


def check_layer_sizes(sizes, n_samples: int = 0):
    """Refuse, before allocating, layer sizes whose weights (``n_{l+1} x n_l`` each), per-layer
    second moments (``n_l x n_l``) and data (``(n_0 + n_L) x n_samples``), a few working copies
    of each, exceed the machine's memory."""
    floats = 4 * (sum(a * b for a, b in zip(sizes, sizes[1:])) + sum(n * n for n in sizes)
                  + (sizes[0] + sizes[-1]) * n_samples)
    names = f"sizes={tuple(sizes)}" + (f", n_samples={n_samples}" if n_samples else "")
    check_memory(names, floats, "weights, second moments and data")


def check_widths(widths) -> tuple:
    """Hidden widths ``(n_1, ..., n_{L-1})``: a sequence of positive integers (may be empty)."""
    if not _is_sequence(widths):
        raise invalid("widths", "a sequence of hidden-layer widths (n_1, ..., n_{L-1})", widths)
    return tuple(check_positive_int(f"widths[{i}]", w) for i, w in enumerate(widths))


def _hidden_component(i, strategy, sizes):
    l = i + 1
    if not isinstance(strategy, Strategy):
        raise invalid(f"hidden[{i}]", "None or a hidden-unit strategy (pt.Dropout(p), pt.GaussianDropout(p), "
                      "pt.DropBlock(p, b), pt.NodeDropout(p), pt.UnitNoise(law), pt.HiddenNoise(C))", strategy)
    try:
        law = strategy.law(sizes[l - 1], sizes[l], sizes[l + 1])
    except InvalidParameterError as err:
        raise InvalidParameterError(f"hidden[{i}] does not fit hidden layer {l} of width {sizes[l]}: {err}") from None
    if law.hidden is None or law.input is not None or law.output is not None:
        raise invalid(f"hidden[{i}]", "a hidden-unit strategy (noise on the units only; put weight noise in "
                      "weight_noise as a scalar law)", strategy)
    return law.hidden, law.per_sample


def _weight_component(l, entry, sizes):
    name = f"weight_noise[{l - 1}]"
    allowed = ('None, a scalar law (pt.Bernoulli(p), pt.Gaussian(p), ...: a fresh value per sample and '
               'connection) or a pair (law, "shared") (one draw per batch)')
    mode = "per_sample"
    law = entry
    if isinstance(entry, tuple) and len(entry) == 2:
        law, mode = entry
        if not isinstance(mode, str) or mode not in WEIGHT_MODES:
            raise invalid(f"{name}[1]", "'shared' or 'per_sample'", mode)
    if not isinstance(law, ScalarLaw):
        raise invalid(name, allowed, entry)
    return law, mode == "per_sample"


def deep_law(sizes, hidden=None, weight_noise=None) -> DeepLaw:
    """Check ``hidden`` (one entry per hidden layer) and ``weight_noise`` (one per matrix)
    against the layer sizes and build the :class:`DeepLaw`.

    Examples
    --------
    Dropout on the hidden layer, DropConnect (one mask per batch) on the second matrix:

    >>> import pnd_theory as pt
    >>> law = pt.deep.deep_law((3, 4, 2), hidden=[pt.Dropout(0.5)],
    ...                        weight_noise=[None, (pt.Bernoulli(0.2), "shared")])
    >>> law.depth, list(law.components), law.per_sample("xi_1"), law.per_sample("W_2")
    (2, ['xi_1', 'W_2'], True, False)
    """
    sizes = check_sizes(sizes)
    L = len(sizes) - 1
    if hidden is None:
        hidden = [None] * (L - 1)
    if not _is_sequence(hidden) or len(hidden) != L - 1:
        raise invalid("hidden", f"a list with one entry (a hidden-unit strategy or None) per hidden layer, "
                      f"{L - 1} for {L} weight matrices", hidden)
    if weight_noise is None:
        weight_noise = [None] * L
    if not _is_sequence(weight_noise) or len(weight_noise) != L:
        raise invalid("weight_noise", f"a list with one entry (None, a scalar law or (law, 'shared')) per "
                      f"weight matrix, {L} of them", weight_noise)
    hid, hid_ps = [], []
    for i, s in enumerate(hidden):
        comp, ps = (None, True) if s is None else _hidden_component(i, s, sizes)
        hid.append(comp)
        hid_ps.append(ps)
    wts, wts_ps = [], []
    for l, entry in enumerate(weight_noise, start=1):
        comp, ps = (None, True) if entry is None else _weight_component(l, entry, sizes)
        wts.append(comp)
        wts_ps.append(ps)
    return DeepLaw(sizes, tuple(hid), tuple(hid_ps), tuple(wts), tuple(wts_ps))


def check_weights(weights, **arrays):
    """Convert the weights (and other named arrays) to one backend and check that the shapes
    chain: returns ``(xp, [W_1, ..., W_L], arrays, sizes)``."""
    if not _is_sequence(weights) or len(weights) == 0:
        raise invalid("weights", "a non-empty list [W_1, ..., W_L] of 2-D arrays, W_l of shape (n_l, n_{l-1})",
                      weights)
    named = {f"weights[{i}]": W for i, W in enumerate(weights)}
    xp, out = as_arrays(**named, **arrays)
    Ws = [out[f"weights[{i}]"] for i in range(len(weights))]
    for i in range(1, len(Ws)):
        if Ws[i].shape[1] != Ws[i - 1].shape[0]:
            raise InvalidParameterError(
                f"weights must chain: weights[{i}] (W_{i + 1}) must have {Ws[i - 1].shape[0]} columns, the rows "
                f"of weights[{i - 1}]; got shapes {tuple(Ws[i - 1].shape)} and {tuple(Ws[i].shape)}")
    sizes = (Ws[0].shape[1],) + tuple(W.shape[0] for W in Ws)
    if min(sizes) == 0:
        raise InvalidParameterError(f"weights must have no empty dimension; got layer sizes {sizes}")
    return xp, Ws, {k: out[k] for k in arrays}, sizes


def check_problem(weights, X, Y):
    """Weights and data ``X`` (n_0, N), ``Y`` (n_L, N): ``(xp, Ws, X, Y, sizes)``."""
    xp, Ws, a, sizes = check_weights(weights, X=X, Y=Y)
    X, Y = a["X"], a["Y"]
    if X.shape[0] != sizes[0]:
        raise InvalidParameterError(f"X must have n_0 = weights[0].shape[1] = {sizes[0]} rows; got X {tuple(X.shape)}")
    check_data(X, Y, None, None)
    if Y.shape[0] != sizes[-1]:
        raise InvalidParameterError(f"Y must have n_L = weights[-1].shape[0] = {sizes[-1]} rows; got Y {tuple(Y.shape)}")
    return xp, Ws, X, Y, sizes


def product(Ws):
    r"""The mean map :math:`\bar W = W_L \cdots W_1` (same backend)."""
    A = Ws[0]
    for W in Ws[1:]:
        A = W @ A
    return A


def as_float64_cpu(arrays):
    """Torch float64 CPU copies (detached) of arrays of either backend."""
    return [torch.as_tensor(a.detach().cpu() if torch.is_tensor(a) else np.asarray(a), dtype=torch.float64)
            for a in arrays]
