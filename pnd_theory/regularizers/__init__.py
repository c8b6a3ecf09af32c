r"""What the penalty induces on the product ``A = U V^T``, and the global minimizers.

* :mod:`~pnd_theory.regularizers.norms`: the (spectral) k-support norm, its dual and prox;
* :mod:`~pnd_theory.regularizers.induced`: the induced regularizer :math:`\Theta(A)` and the
  balanced factors that attain it;
* :mod:`~pnd_theory.regularizers.minimizers`: global minimizers of the expected loss;
* :mod:`~pnd_theory.regularizers._factorizations` (internal): factorizations that attain a
  value, unit contributions.
"""
