r"""Which torch layers realise a mask law: one declared table, keyed by the law's structure.

A :class:`~pnd_theory.laws.MaskLaw` is realised by the network
``Sequential(first, hidden, second)`` with ``first`` a linear map ``n_in -> d`` of weight
:math:`V^\top`, ``hidden`` a module on the hidden units and ``second`` a linear map
``d -> n_out`` of weight :math:`U`.  :func:`layers_for` reads the structure of each random
component (which component, the class of its scalar law, whether one law serves every
variable, blocks, per-sample or shared draws) and looks it up in :data:`LAYER_TABLE`; a
structure that no torch layer realises is refused, naming it.  Nothing here reads a strategy's
class or its fields.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import torch
from torch import nn as tnn

from . import layers as pnn
from .._validation import InvalidParameterError, check_bool, check_dtype, check_generator, resolve_device
from ..laws.masks import Bernoulli, Gaussian, IndependentMask, MaskLaw
from ..laws.strategies import validate_strategy

#: the structure of one random component, as :data:`LAYER_TABLE` keys it
Structure = namedtuple("Structure", "component law_class arrangement per_sample")

Layers = namedtuple("Layers", "first hidden second")


def _structure(name, comp, per_sample) -> Structure:
    if not isinstance(comp, IndependentMask):
        return Structure(name, None, type(comp).__name__, per_sample)
    classes = {type(law) for law in comp.distinct_laws}
    law_class = classes.pop() if len(classes) == 1 else None
    if comp.independent_entries:
        arrangement = "one law" if comp.single_law is not None else "per-variable laws"
    elif comp.hidden_covariance().kind == "block" and comp.single_law is not None:
        arrangement = "blocks"
    else:
        arrangement = "shared entries"
    return Structure(name, law_class, arrangement, per_sample)


def _block_size(comp):
    return comp.hidden_covariance().block_size


# (component, scalar-law class, arrangement, per-sample) -> builder(component, options) -> module
LAYER_TABLE = {
    ("hidden", Bernoulli, "one law", True):
        lambda c, o: pnn.BlockDropout(c.single_law.p, 1, generator=o["generator"]),
    ("hidden", Bernoulli, "blocks", True):
        lambda c, o: pnn.BlockDropout(c.single_law.p, _block_size(c), generator=o["generator"]),
    ("hidden", Bernoulli, "per-variable laws", True):
        lambda c, o: pnn.NodeDropout([law.p for law in c.laws], generator=o["generator"]),
    ("hidden", Gaussian, "one law", True):
        lambda c, o: pnn.GaussianDropout(c.single_law.p, generator=o["generator"]),
    ("weights", Bernoulli, "one law", True):
        lambda c, o: pnn.PerNodeDropLinear(o["in"], o["out"], c.single_law.p, stir="drop", **o["linear"]),
    ("weights", Gaussian, "one law", True):
        lambda c, o: pnn.PerNodeDropLinear(o["in"], o["out"], c.single_law.p, stir="gaussian",
                                           local_reparameterization=o["local_reparameterization"], **o["linear"]),
    ("weights", Bernoulli, "one law", False):
        lambda c, o: pnn.DropConnectLinear(o["in"], o["out"], c.single_law.p, per_sample=False, **o["linear"]),
}


def _lookup(name, comp, per_sample, options):
    s = _structure(name, comp, per_sample)
    key = ("hidden" if name == "hidden" else "weights", s.law_class, s.arrangement, s.per_sample)
    builder = LAYER_TABLE.get(key)
    if builder is None:
        law = getattr(comp, "single_law", None) or type(comp).__name__
        raise InvalidParameterError(
            f"strategy must have a law that a torch layer realises; none realises the {name} component "
            f"({s.arrangement} of {law!r}, {'per-sample' if per_sample else 'shared'} masks): see "
            "pnd_theory.nn.table.LAYER_TABLE")
    return builder(comp, options)


def layers_for(law, *, generator=None, device=None, dtype=torch.float64, local_reparameterization=False,
               bias=False) -> Layers:
    r"""The torch modules ``(first, hidden, second)`` that realise ``law``.

    The network ``Sequential(first, hidden, second)`` has ``first`` a linear map
    ``n_in -> d`` of weight :math:`V^\top`, ``hidden`` a module on the hidden units and
    ``second`` a linear map ``d -> n_out`` of weight :math:`U`.  The layers are read from the
    structure of each random component of the law (its scalar law's class, one law or one per
    variable, blocks, per-sample or shared draws); a structure that no torch layer realises is
    refused, naming it.

    Parameters
    ----------
    law : MaskLaw
    generator : torch.Generator, optional
        Source of the layers' masks.
    device, dtype
        Of the linear layers.
    local_reparameterization : bool
        For a per-sample Gaussian weight law: the fast path of :class:`~pnd_theory.nn.PerNodeDropLinear`
        (the right forward law, not the right gradient noise).
    bias : bool
        Whether the linear layers have a bias (the theory's network has none).

    Returns
    -------
    Layers
        A named tuple; ``hidden`` is ``torch.nn.Identity()`` when the hidden units are not noisy.

    Examples
    --------
    >>> import pnd_theory as pt
    >>> layers = pt.layers_for(pt.Dropout(0.5).law(3, 4, 2))
    >>> layers.first, layers.hidden, layers.second
    (Linear(in_features=3, out_features=4, bias=False), BlockDropout(p=0.5, block_size=1),
     Linear(in_features=4, out_features=2, bias=False))
    """
    if not isinstance(law, MaskLaw):
        raise InvalidParameterError(f"law must be a mask law (e.g. pt.Dropout(0.5).law(n_in, width, n_out)); "
                                    f"got {law!r}")
    check_generator(generator)
    device = resolve_device(device)
    dtype = check_dtype(dtype)
    local_reparameterization = check_bool("local_reparameterization", local_reparameterization)
    bias = check_bool("bias", bias)
    comps = law.components
    linear = dict(bias=bias, dtype=dtype, generator=generator, device=device)
    options = {"generator": generator, "linear": linear, "local_reparameterization": local_reparameterization}
    hidden = tnn.Identity()
    if "hidden" in comps:
        hidden = _lookup("hidden", comps["hidden"], law.per_sample, options)

    def linear_layer(name, n_from, n_to):
        if name in comps:
            return _lookup(name, comps[name], law.per_sample, dict(options, **{"in": n_from, "out": n_to}))
        return tnn.Linear(n_from, n_to, bias=bias, dtype=dtype, device=device)

    return Layers(linear_layer("input", law.n_in, law.width), hidden, linear_layer("output", law.width, law.n_out))


def network_for(law, U, V, **options) -> tnn.Sequential:
    r"""``Sequential(first, hidden, second)`` of :func:`layers_for` with weights :math:`V^\top`
    and :math:`U` (numpy or torch), in training mode."""
    layers = layers_for(law, **options)
    with torch.no_grad():
        layers.first.weight.copy_(torch.as_tensor(np.asarray(V).T if not torch.is_tensor(V) else V.T))
        layers.second.weight.copy_(torch.as_tensor(U))
    return tnn.Sequential(*layers).train()


def hidden_module(strategy, width, generator=None):
    """The hidden-unit torch module of a hidden-unit strategy at a width (for networks of one's
    own, e.g. noise after a ReLU layer); refuses a strategy with weight noise.

    Parameters
    ----------
    strategy : Strategy
        A hidden-unit strategy (``pt.Dropout(p)``, ``pt.DropBlock(p, b)``, ...).
    width : int
        Number of hidden units.
    generator : torch.Generator, optional
        Source of the module's masks.

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> import pnd_theory as pt
    >>> pt.nn.hidden_module(pt.DropBlock(0.5, 2), 6)
    BlockDropout(p=0.5, block_size=2)
    >>> noise = pt.nn.hidden_module(pt.GaussianDropout(0.2), 6)
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.ReLU(), noise, torch.nn.Linear(6, 1))
    >>> net(torch.ones(5, 3)).shape, round(noise.lam, 6)  # the mask variance p / (1 - p)
    (torch.Size([5, 1]), 0.25)
    """
    law = validate_strategy(strategy).law(1, width, 1)
    if set(law.components) - {"hidden"}:
        raise InvalidParameterError(
            f"strategy must be hidden-unit noise for hidden_module; {strategy!r} has weight noise on "
            f"{sorted(set(law.components) - {'hidden'})}")
    return layers_for(law, generator=generator).hidden
