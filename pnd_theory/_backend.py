"""Numpy or torch: the few operations whose spelling differs between the two array backends.

Every route takes numpy arrays (float64, results as floats) or torch tensors (results as
differentiable tensors on the inputs' device).  Code written against ``xp`` (the module
``numpy`` or ``torch``) is the same for both except for what is here.
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["namespace", "const", "max_abs", "result", "eye", "ones", "power_of_two", "product_of_scales"]


def namespace(a):
    """``numpy`` for a numpy array (or anything not a tensor), ``torch`` for a tensor."""
    return torch if isinstance(a, torch.Tensor) else np


def const(xp, values, like):
    """``values`` (float64) as an array of ``like``'s backend, device and (for torch) dtype."""
    arr = np.asarray(values, dtype=np.float64)
    return arr if xp is np else like.new_tensor(arr)


def max_abs(xp, a) -> float:
    """The largest absolute entry as a float (0 for an empty array); no gradient."""
    if (a.size if xp is np else a.numel()) == 0:
        return 0.0
    m = xp.abs(a).max()
    return float(m if xp is np else m.detach())


def result(xp, value):
    """A float for numpy, the 0-d tensor itself (differentiable) for torch."""
    return float(value) if xp is np else value


def eye(xp, n, like):
    return np.eye(n) if xp is np else torch.eye(n, dtype=like.dtype, device=like.device)


def ones(xp, n, like):
    return np.ones(n, dtype=like.dtype) if xp is np else like.new_ones(n)


def power_of_two(x: float) -> float:
    """The power of two at or just above ``x > 0`` (1 for 0), at most 2^1023: dividing by it is
    exact and brings ``x`` into [0.5, 1]."""
    if x == 0.0:
        return 1.0
    return float(np.ldexp(1.0, min(int(np.frexp(x)[1]), 1023)))


def product_of_scales(*scales: float) -> float:
    """The product of positive floats without intermediate over- or underflow: infinite or
    zero only where the product itself is."""
    mantissa, exponent = 1.0, 0
    for s in scales:
        m, e = np.frexp(s)
        mantissa, exponent = mantissa * float(m), exponent + int(e)
    return float(np.ldexp(mantissa, exponent)) if exponent < 1100 else math.inf
