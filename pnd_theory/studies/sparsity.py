r"""Activation sparsity of a layer: a diagnostic of overfitting, measured during training.

.. math::

    q_{k,j} = \frac{a_{k,j}}{\sum_{i=1}^n a_{k,i}}, \qquad
    H_k = -\sum_j q_{k,j} \log q_{k,j}, \qquad
    s = \frac1B \sum_{k=1}^B \Big(1 - \frac{e^{H_k}}{n}\Big) \in \Big[0,\ 1 - \frac1n\Big],

for the non-negative activations :math:`a_{k,\cdot}` of a layer of :math:`n` units (after the
ReLU) on sample :math:`k`.  :math:`e^{H_k}` is the perplexity of the sample's normalised
activation profile, the effective number of active units: :math:`s = 0` when all units are
equally active, :math:`1 - m/n` when :math:`m` units share the activation equally and the
others are silent; a sample with no active unit counts as fully sparse, :math:`s_k = 1`.

Huesmann, Klemm, Linsen and Risse (2020, "Exploiting the Full Capacity of Deep Neural Networks
while Avoiding Overfitting by Targeted Sparsity Regularization") report that the activation
sparsity of a layer rises as the network starts to overfit, and use it layer by layer
(*targeted*) as an indicator and as a regularization target; the perplexity form of the
measure above is the one of their follow-up (Huesmann, Garcia Rodriguez, Linsen and Risse,
2021, "The Impact of Activation Sparsity on Overfitting in Convolutional Neural Networks"),
normalised here by the width so that layers of different widths compare.

:class:`SparsityMonitor` records it during training through forward hooks on the layers it is
given (for instance the ``torch.nn.ReLU`` modules of a network trained by
:func:`pnd_theory.studies.digits.train_network`), one value per forward pass in training mode.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._validation import as_real_array, invalid, is_tensor

__all__ = ["activation_sparsity", "SparsityMonitor"]


def activation_sparsity(activations):
    r"""Mean perplexity sparsity :math:`s` of a batch of non-negative activations.

    .. math::

        s = \frac1B \sum_{k=1}^B \Big(1 - \frac{e^{H_k}}{n}\Big), \qquad
        H_k = -\sum_j q_{k,j} \log q_{k,j}, \qquad q_{k,j} = \frac{a_{k,j}}{\sum_i a_{k,i}},

    :math:`e^{H_k}` the effective number of active units of sample :math:`k` (a sample with none
    counts as fully sparse); it rises as a network starts to overfit (Huesmann et al., 2020).

    Parameters
    ----------
    activations : array (B, n) or (B, ...)
        Samples along the first axis; the other axes are flattened into the :math:`n` units.
        Must be non-negative and finite (the output of a ReLU).

    Returns
    -------
    float
        :math:`s \in [0, 1]`.

    Examples
    --------
    Equal activations are not sparse; one active unit of four in every sample is:

    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> pt.activation_sparsity(np.ones((2, 4)))
    0.0
    >>> pt.activation_sparsity(np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]]))
    0.75
    """
    a = as_real_array("activations", activations.detach() if is_tensor(activations) else activations,
                      keep_tensor=True)
    a = torch.as_tensor(a)
    if a.ndim < 2 or a.shape[0] == 0 or a[0].numel() == 0:
        raise invalid("activations", "an array of shape (batch, units...) with at least one sample and unit",
                      tuple(a.shape))
    a = a.reshape(a.shape[0], -1).to(torch.float64)
    if bool((a < 0).any()):
        raise invalid("activations", "non-negative (activations after a ReLU)", "an array with negative entries")
    # s is invariant to scaling a sample: each divided by its largest entry, so that the sum
    # of activations near the largest float does not overflow
    peak = a.max(dim=1, keepdim=True).values
    a = a / torch.where(peak > 0, peak, torch.ones_like(peak))
    n = a.shape[1]
    total = a.sum(dim=1, keepdim=True)
    silent = total[:, 0] == 0
    q = a / torch.where(total > 0, total, torch.ones_like(total))
    entropy = -(torch.where(q > 0, q * torch.log(q), torch.zeros_like(q))).sum(dim=1)
    per_sample = torch.where(silent, torch.ones_like(entropy), 1.0 - torch.exp(entropy) / n)
    return float(per_sample.mean())


class SparsityMonitor:
    r"""Record :func:`activation_sparsity` of named layers at every forward pass in training mode.

    Use as a context manager around training; the hooks are removed on exit::

        relus = {"layer 1": model[1], "layer 2": model[4]}
        with SparsityMonitor(relus) as monitor:
            train_network(model, X, Y, ...)
        monitor.history["layer 1"]   # one value per training step

    Parameters
    ----------
    layers : dict of str -> torch.nn.Module
        The modules whose *outputs* are measured (ReLU modules, or any module with
        non-negative outputs).
    training_only : bool
        Skip forward passes in evaluation mode (default), so that evaluations between steps
        do not enter the history.

    Examples
    --------
    >>> import torch
    >>> import pnd_theory as pt
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU())
    >>> X = torch.randn(5, 3)
    >>> with pt.SparsityMonitor({"hidden": model[1]}) as monitor:
    ...     _ = model(X)
    ...     _ = model(2 * X)
    ...     _ = model.eval()(X)  # evaluation mode: not recorded
    >>> values = monitor.history["hidden"]
    >>> values.shape
    (2,)

    Each value is :func:`activation_sparsity` of the layer's output on that pass:

    >>> bool(values[0] == pt.activation_sparsity(model(X)))
    True
    >>> model[1]._forward_hooks  # the hooks are removed on exit
    OrderedDict()
    """

    def __init__(self, layers, training_only=True):
        if not isinstance(layers, dict) or not layers or not all(
                isinstance(k, str) and isinstance(m, torch.nn.Module) for k, m in layers.items()):
            raise invalid("layers", "a non-empty dict of names to torch.nn.Module", layers)
        if not isinstance(training_only, bool):
            raise invalid("training_only", "a bool", training_only)
        self.layers = dict(layers)
        self.training_only = training_only
        self._values = {name: [] for name in self.layers}
        self._handles = []

    def _hook(self, name):
        def record(module, inputs, output):
            if self.training_only and not module.training:
                return
            self._values[name].append(activation_sparsity(output))
        return record

    def __enter__(self):
        for name, module in self.layers.items():
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles = []
        return False

    @property
    def history(self) -> dict:
        """Per layer, the recorded sparsities in order (numpy arrays)."""
        return {name: np.asarray(values, dtype=float) for name, values in self._values.items()}

    def per_epoch(self, steps_per_epoch) -> dict:
        """Per layer, the mean of the recorded values over each run of ``steps_per_epoch`` steps."""
        if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
            raise invalid("steps_per_epoch", "a positive int", steps_per_epoch)
        out = {}
        for name, values in self.history.items():
            epochs = math.ceil(values.size / steps_per_epoch)
            out[name] = np.array([values[e * steps_per_epoch:(e + 1) * steps_per_epoch].mean() for e in range(epochs)])
        return out
