"""The Examples sections of the public docstrings run as written (doctests, small sizes)."""

import doctest

import pytest

import pnd_theory as pt

# the entry points a new user meets first: each has an Examples section
ENTRY_POINTS = (
    "expected_penalty", "expected_loss", "exact_expected_loss", "monte_carlo_loss", "derive",
    "induced_penalty", "balanced_factors", "global_minimizer", "gradient_noise", "check_strategy",
    "explicit_penalty", "train", "sweep",
    "ScalarLaw", "Bernoulli", "Gaussian", "Uniform", "DiscreteLaw",
    "Dropout", "GaussianDropout", "DropBlock", "DropConnect", "PerNodeDrop", "NodeDropout",
    "HiddenNoise", "UnitNoise", "WeightNoise",
)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _examples(name):
    """The doctest of a public name's own docstring (not of its methods)."""
    found = doctest.DocTestFinder(recurse=False).find(getattr(pt, name), f"pt.{name}")
    return [test for test in found if test.examples]


def _with_examples():
    return [name for name in pt.__all__ if _examples(name)]


def test_every_entry_point_has_an_examples_section():
    for name in ENTRY_POINTS:
        doc = getattr(pt, name).__doc__
        assert "\n    Examples\n    --------\n" in doc and _examples(name), name


@pytest.mark.parametrize("name", _with_examples())
def test_examples_run(name):
    runner, report = doctest.DocTestRunner(optionflags=FLAGS), []
    for test in _examples(name):
        runner.run(test, out=report.append)
    assert runner.summarize(verbose=False).failed == 0, "".join(report)
