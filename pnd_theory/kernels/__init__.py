r"""The kernels of the exact per-sample masked linear map :math:`z_r = (W \circ M_{s(r)}) x_r`.

* :mod:`~pnd_theory.kernels.counter`: the counter-based generator of the masks (its
  specification) and its plain-torch reference;
* :mod:`~pnd_theory.kernels.cpu`: the numba kernels (CPU), masks computed inside the
  multiply-accumulate;
* :mod:`~pnd_theory.kernels.cuda`: the Triton kernels (CUDA);
* :mod:`~pnd_theory.kernels.reference`: the chunked torch route (any device);
* :mod:`~pnd_theory.kernels.ops`: the torch custom operators, their registered autograd and
  batching rules, and the one dispatch table from a device to its route.

Internal: the public faces are :func:`pnd_theory.nn.per_sample_masked_linear` and the layers of
:mod:`pnd_theory.nn`.  Importing this package loads neither numba nor Triton; the compiled
kernels load on their first call.
"""
from .counter import counter_masks, counter_normals
from .ops import masked_linear, route_for

__all__ = ["masked_linear", "route_for", "counter_masks", "counter_normals"]
