"""Activation sparsity: its exact values on known profiles, scipy's entropy as an independent
route, and the monitor's record during training (one value per step, equal to the measure of
the batch that step saw)."""

import numpy as np
import pytest
import torch
from scipy.stats import entropy

import pnd_theory as pt
from pnd_theory.nn.table import hidden_module
from pnd_theory.studies.digits import train_network
from pnd_theory.studies.sparsity import SparsityMonitor, activation_sparsity

torch.set_num_threads(1)


def test_known_profiles():
    n = 8
    assert activation_sparsity(np.ones((3, n))) == pytest.approx(0.0, abs=1e-15)
    one_hot = np.zeros((2, n))
    one_hot[:, 3] = 5.0
    assert activation_sparsity(one_hot) == pytest.approx(1 - 1 / n, abs=1e-15)
    three = np.zeros((1, n))
    three[0, [1, 4, 6]] = 0.7
    assert activation_sparsity(three) == pytest.approx(1 - 3 / n, abs=1e-14)
    assert activation_sparsity(np.zeros((4, n))) == 1.0  # silent samples count as fully sparse


def test_against_scipy_entropy():
    rng = np.random.default_rng(0)
    a = np.maximum(rng.normal(size=(50, 20)), 0.0)
    expected = np.mean([1 - np.exp(entropy(row)) / row.size for row in a])
    assert activation_sparsity(a) == pytest.approx(expected, rel=1e-12)
    assert activation_sparsity(torch.tensor(a)) == pytest.approx(expected, rel=1e-12)


def test_refuses_negative_or_empty():
    with pytest.raises(pt.InvalidParameterError):
        activation_sparsity(np.array([[1.0, -0.5]]))
    with pytest.raises(pt.InvalidParameterError):
        activation_sparsity(np.ones(3))
    with pytest.raises(pt.InvalidParameterError):
        SparsityMonitor({})


def test_monitor_records_every_training_step():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 5, generator=g)
    Y = torch.randn(40, 2, generator=g)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), hidden_module(pt.Dropout(0.3), 16),
                                torch.nn.Linear(16, 2))
    seen = []
    handle = model[1].register_forward_hook(lambda m, i, o: seen.append(activation_sparsity(o)) if m.training else None)
    with SparsityMonitor({"hidden": model[1]}) as monitor:
        train_network(model, X, Y, epochs=3, batch_size=10, seed=1)
        model.eval()
        model(X)  # evaluation passes are not recorded
    handle.remove()
    values = monitor.history["hidden"]
    assert values.size == 3 * 4
    np.testing.assert_allclose(values, seen, rtol=0, atol=0)
    np.testing.assert_allclose(monitor.per_epoch(4)["hidden"], values.reshape(3, 4).mean(axis=1), rtol=1e-15)
    assert not model[1]._forward_hooks  # hooks removed on exit
