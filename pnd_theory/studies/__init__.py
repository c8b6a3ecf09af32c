r"""Studies: training with real masks, and what the noise does along it.

* :mod:`~pnd_theory.studies.training`: Monte Carlo training (masks, penalty, penalty plus
  matched noise);
* :mod:`~pnd_theory.studies.stationary` and :mod:`~pnd_theory.studies.implicit`: the stationary
  spread of constant-step SGD, explicit against implicit regularization;
* :mod:`~pnd_theory.studies.iterates`: exact moments of the last layer's SGD iterates;
  :mod:`~pnd_theory.studies.linearized`: the two-layer network's stationary spread from SGD
  linearized at the global minimizer;
* :mod:`~pnd_theory.studies.ydrop_fixed_point`: where Y-Drop's rule ends;
* :mod:`~pnd_theory.studies.sparsity`: activation sparsity during training;
* :mod:`~pnd_theory.studies.digits`: scikit-learn's digits and a training loop for networks on them;
* :mod:`~pnd_theory.studies.sweeps`: grids of tasks on Dask, one JSON file per cell
  (:mod:`~pnd_theory.studies.sweep_store`: the store, keyed by the code, one lock per cell).
"""
