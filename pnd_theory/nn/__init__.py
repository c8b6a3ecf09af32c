r"""Torch layers that realise the noise laws, and the networks made of them.

* weight noise: :class:`PerNodeDropLinear` (a fresh mask per sample and connection, exact
  fused kernels), :func:`per_sample_masked_linear` (its functional form) and
  :class:`DropConnectLinear` (one mask per batch);
* hidden-unit noise: :class:`GaussianDropout`, :class:`BlockDropout`, :class:`NodeDropout` and
  :class:`YDrop` (per-unit rates from the units' conductance);
* :class:`LinearNetwork`, the network :math:`(U \circ M_U)\,\mathrm{diag}(\xi)\,(V \circ M_V)^\top x`
  with a law's sampled masks (also ``pt.LinearNetwork``);
* :func:`hidden_module`: the hidden-unit module of a strategy, for networks of one's own
  (``pt.layers_for`` gives every layer that realises a law).

Examples
--------
A PerNodeDrop layer draws a fresh mask per sample and connection in training; in evaluation
mode it is the plain layer:

>>> import torch
>>> from pnd_theory import nn as pnn
>>> layer = pnn.PerNodeDropLinear(3, 2, p=0.5, bias=False).eval()
>>> x = torch.ones(5, 3, dtype=layer.weight.dtype)
>>> bool(torch.allclose(layer(x), x @ layer.weight.T))
True
"""
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers_all
from .table import hidden_module
from .ydrop import YDrop

__all__ = list(_layers_all) + ["YDrop", "hidden_module"]
