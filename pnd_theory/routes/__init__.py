r"""Routes to the expected loss under a noise law, each independent of the others.

* :mod:`~pnd_theory.routes.penalty`: the closed-form penalty and expected loss (numpy or torch);
* :mod:`~pnd_theory.routes.symbolic`: the sympy derivation from the law's moments;
* :mod:`~pnd_theory.routes.exact`: exact enumeration over the masks;
* :mod:`~pnd_theory.routes.montecarlo`: Monte Carlo with real sampled masks;
* :mod:`~pnd_theory.routes.conformance`: the harness sending one law through every route,
  and :mod:`~pnd_theory.routes.verification`, the four-route table of ``pnd-theory verify``.
"""
