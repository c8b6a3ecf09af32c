r"""Laws: what is random, and how it is drawn (the ground floor of the package).

* :mod:`~pnd_theory.laws.scalar`: scalar laws of one mask variable of mean 1
  (:class:`Bernoulli`, :class:`Gaussian`, :class:`DiscreteLaw`, :class:`Uniform`, the base
  :class:`ScalarLaw` to subclass);
* :mod:`~pnd_theory.laws.masks`: component laws and :class:`MaskLaw`, the protocol every
  route asks (moments, covariance structure, sampling);
* :mod:`~pnd_theory.laws.strategies`: :class:`UnitNoise`, :class:`WeightNoise` and the named
  strategies over them;
* :mod:`~pnd_theory.laws._sampling` (internal): the one torch sampler of mask values.

The laws import nothing of the package above them.
"""
from .masks import *  # noqa: F401,F403  (the names of the law protocol)
from .masks import __all__
