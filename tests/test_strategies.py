"""Strategy objects: validation, laws and samplers."""

import numpy as np
import pytest
import sympy
import torch

import pnd_theory as pt

from conftest import STRATEGIES


@pytest.mark.parametrize("cls", [pt.Dropout, pt.GaussianDropout])
@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_probability_is_rejected(cls, bad):
    with pytest.raises(ValueError, match="p must be"):
        cls(bad)


@pytest.mark.parametrize("bad", ["0.5", None, True, [0.5]])
def test_non_numeric_probability_is_a_type_error(bad):
    with pytest.raises(TypeError, match="p must be"):
        pt.Dropout(bad)


def test_choices_and_sizes_are_validated():
    with pytest.raises(ValueError, match="layer"):
        pt.DropConnect(0.5, layer="hidden")
    with pytest.raises(ValueError, match="stir"):
        pt.PerNodeDrop(0.5, stir="shake")
    with pytest.raises(TypeError, match="per_sample"):
        pt.DropConnect(0.5, per_sample="yes")
    with pytest.raises(ValueError, match="block_size"):
        pt.DropBlock(0.5, 0)
    with pytest.raises(ValueError, match="block_size must divide the width"):
        pt.DropBlock(0.5, 3).law(2, 4, 2)
    with pytest.raises(ValueError, match=r"p\[1\]"):
        pt.NodeDropout([0.1, 1.2])
    with pytest.raises(ValueError, match="width must equal len"):
        pt.NodeDropout([0.1, 0.2]).law(2, 3, 2)
    with pytest.raises(ValueError, match="empty"):
        pt.NodeDropout([])
    with pytest.raises(ValueError, match="width"):
        pt.Dropout(0.5).law(2, 0, 2)


def test_hidden_noise_validation():
    with pytest.raises(ValueError, match="square"):
        pt.HiddenNoise(np.ones((2, 3)))
    with pytest.raises(ValueError, match="symmetric"):
        pt.HiddenNoise([[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="positive semi-definite"):
        pt.HiddenNoise([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="non-finite"):
        pt.HiddenNoise([[np.nan, 0.0], [0.0, 1.0]])
    a, c = sympy.symbols("a c")
    with pytest.raises(ValueError, match="symmetric"):
        pt.HiddenNoise(sympy.Matrix([[a, c], [0, a]]))
    pt.HiddenNoise(sympy.Matrix([[a, c], [c, a]]))  # symbolic and symmetric is fine


def test_strategies_are_immutable_and_hashable():
    s = pt.DropBlock(0.5, 2)
    with pytest.raises(Exception):
        s.p = 0.1
    assert hash(s) == hash(pt.DropBlock(0.5, 2))
    assert pt.strategy_from_name("dropblock", p=0.5, block_size=2) == s
    with pytest.raises(ValueError, match="strategy"):
        pt.strategy_from_name("nope")


@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_sampled_masks_have_the_law_moments(strategy):
    """Mean 1 and the law's covariance, within 5 standard errors, from real torch draws."""
    law = strategy.law(2, 4, 3)
    gen = torch.Generator().manual_seed(7)
    T = 40000
    masks = law.sample(T, 1, gen)
    for name, comp in law.components.items():
        m = masks[name][:, 0].reshape(T, -1).numpy()
        mean_se = m.std(0) / np.sqrt(T) + 1e-12
        assert np.all(np.abs(m.mean(0) - 1) < 5 * mean_se + 1e-12)
        if name == "hidden":
            target = comp.hidden_covariance()
            C = target.values if target.kind == "dense" else None
            if C is None:
                C = np.diag(target.diagonal()) if target.kind == "diagonal" else np.kron(
                    np.diag(target.values), np.ones((target.block_size, target.block_size)))
        else:
            C = np.diag(comp.entry_variances().ravel())
        centred = m - 1
        emp = centred.T @ centred / T
        prod = centred[:, :, None] * centred[:, None, :]
        se = prod.std(0) / np.sqrt(T)
        assert np.all(np.abs(emp - C) < 5 * se + 1e-9), name


def test_per_batch_law_shares_one_mask():
    law = pt.DropConnect(0.5, "output").law(2, 3, 2)
    masks = law.sample(5, 7, torch.Generator().manual_seed(0))
    assert masks["output"].shape == (5, 1, 2, 3)
    law = pt.PerNodeDrop(0.5, "output").law(2, 3, 2)
    masks = law.sample(5, 7, torch.Generator().manual_seed(0))
    assert masks["output"].shape == (5, 7, 2, 3)
    assert not torch.equal(masks["output"][:, 0], masks["output"][:, 1])


def test_dropblock_units_share_a_draw():
    law = pt.DropBlock(0.5, 3).law(2, 6, 2)
    xi = law.sample(200, 1, torch.Generator().manual_seed(0))["hidden"][:, 0]
    assert torch.equal(xi[:, 0], xi[:, 2]) and torch.equal(xi[:, 3], xi[:, 5])
    assert not torch.equal(xi[:, 0], xi[:, 3])
