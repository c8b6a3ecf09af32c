r"""Torch layers that realise the noise laws, and the networks made of them.

* :mod:`~pnd_theory.nn.layers`: :class:`PerNodeDropLinear` (a fresh mask per sample and
  connection, exact fused kernels), :class:`DropConnectLinear`, :class:`GaussianDropout`,
  :class:`BlockDropout`, :class:`NodeDropout`, :func:`per_sample_masked_linear`;
* :mod:`~pnd_theory.nn.network`: :class:`LinearNetwork`, the network ``U diag(mask) V^T x``
  with a law's sampled masks;
* :mod:`~pnd_theory.nn.table`: the table from a law's structure to the layers that realise it
  (:func:`hidden_module`: the hidden-unit module of a strategy, for networks of one's own);
* :mod:`~pnd_theory.nn.ydrop`: Y-Drop's conductance rule and its layer :class:`YDrop`.

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
