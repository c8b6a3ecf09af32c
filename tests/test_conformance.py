"""The conformance harness runs every route on built-in strategies and on laws written here."""

import numpy as np
import pytest
import torch

import pnd_theory as pt
from pnd_theory.routes.conformance import ROUTES

from conftest import STRATEGIES, Triangle


class HalfRatePerNodeDrop(pt.PerNodeDrop):
    """A subclass of a built-in whose law is not the one its fields suggest: rate p/2."""

    def law(self, n_in, width, n_out):
        return pt.PerNodeDrop(self.p / 2, self.layer, self.stir).law(n_in, width, n_out)


USER_STRATEGIES = [
    pt.UnitNoise(pt.DiscreteLaw([0.0, 0.5, 2.0], [0.2, 0.4, 0.4])),          # a three-point law
    pt.WeightNoise(pt.Uniform(0.3, 1.7), "input"),                            # a uniform law
    pt.WeightNoise((pt.Gaussian(0.3), pt.Bernoulli(0.1)), "both"),            # two laws on two layers
    pt.WeightNoise((pt.DiscreteLaw([0.5, 1.5], [0.5, 0.5]), pt.Uniform(0.5, 1.5)), "both", per_sample=False),
    HalfRatePerNodeDrop(0.4, "input"),                                        # a subclass of a built-in
    HalfRatePerNodeDrop(0.4, "output", "gaussian"),
    pt.UnitNoise(Triangle(), block_size=2),                                   # a user's scalar law, in blocks
    pt.UnitNoise([pt.Bernoulli(0.2), pt.Gaussian(0.3), pt.Uniform(0.5, 1.5), Triangle()]),  # per-unit laws
]


@pytest.mark.parametrize("strategy", STRATEGIES + USER_STRATEGIES, ids=repr)
def test_every_route_agrees_or_refuses_clearly(strategy):
    report = pt.check_strategy(strategy, samples=3000)
    assert report.ok, report.table()
    assert [r.route for r in report.results] == list(ROUTES)
    # the deterministic routes that every law supports always agree
    for route in ("numeric", "torch", "exact", "monte_carlo", "symbolic", "network"):
        assert report[route].status == "agree", report.table()


def test_refusals_name_what_is_missing():
    report = pt.check_strategy(pt.HiddenNoise(0.2 * np.eye(4) + 0.05), samples=500)
    assert report["gradient_noise"].status == "refused"
    assert "order 4" in report["gradient_noise"].detail
    assert report["layers"].status == "refused" and "torch layer" in report["layers"].detail
    report = pt.check_strategy(pt.UnitNoise(Triangle()), samples=500, routes=("layers",))
    assert report["layers"].status == "refused" and "Triangle" in report["layers"].detail


class WrongSampler(pt.ScalarLaw):
    """Moments of Bernoulli(0.5) but a sampler that never drops: the routes that sample must
    see the difference, so the harness can fail."""

    def moment(self, k):
        return pt.Bernoulli(0.5).moment(k)

    def sample(self, shape, generator=None, device=None, dtype=None):
        return torch.ones(tuple(shape), device=device, dtype=dtype or torch.float64)


def test_the_harness_flags_a_law_whose_sampler_contradicts_its_moments():
    report = pt.check_strategy(pt.UnitNoise(WrongSampler()), samples=2000,
                               routes=("numeric", "exact", "monte_carlo", "network"))
    assert report["exact"].status == "agree"
    assert report["monte_carlo"].status == "disagree"
    assert report["network"].status == "disagree"
    assert not report.ok


def test_bad_arguments():
    with pytest.raises(pt.InvalidParameterError, match="strategy"):
        pt.check_strategy("dropout")
    with pytest.raises(pt.InvalidParameterError, match="routes"):
        pt.check_strategy(pt.Dropout(0.3), routes=("teleport",))
    with pytest.raises(pt.InvalidParameterError, match="samples"):
        pt.check_strategy(pt.Dropout(0.3), samples=0)


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if not isinstance(s, pt.HiddenNoise)], ids=repr)
def test_the_torch_layers_of_a_law_carry_that_law(strategy):
    """The layer table realises each component with a module whose own scalar law is the
    component's: the layers do not re-derive a law from their parameters."""
    from pnd_theory.nn.table import layers_for

    law = strategy.law(3, 4, 2)
    layers = layers_for(law)
    for name, module in (("input", layers.first), ("hidden", layers.hidden), ("output", layers.second)):
        comp = law.components.get(name)
        if comp is None:
            assert not hasattr(module, "scalar_law")
            continue
        carried = module.scalar_law
        expected = comp.single_law if comp.single_law is not None else tuple(comp.distinct_laws[i] for i in comp.law_index)
        assert carried == expected
        variances = comp.variances()
        np.testing.assert_allclose(np.asarray(module.lam, dtype=float), variances[0] if comp.single_law else variances)
