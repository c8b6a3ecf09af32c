"""The Examples sections of the public docstrings run as written (doctests, small sizes).

The rule: every name of ``pt.__all__`` on the reference page (``docs/reference.md``; the
subpackages ``pt.nn`` and ``pt.deep`` by their module docstrings) has an
Examples section of its own, with two exceptions.  A result class (``RESULT_OF``) shares the
example of the function that returns it, when that function has one and names the class in
its docstring or return annotation; a constant (``DATA_IN``) shares the example of the
function whose example uses it.
"""

import doctest
import re
from pathlib import Path

import pytest

import pnd_theory as pt

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = sorted(set(re.findall(r"^\s+pnd_theory\.(\w+)\s*$", (ROOT / "docs" / "reference.md").read_text(), re.M)))
RESULT_OF = {
    "MinimizerResult": "global_minimizer", "TrainingResult": "train", "ConformanceReport": "check_strategy",
    "Derivation": "derive", "YDropFixedPoint": "ydrop_fixed_point", "YDropTraining": "train_ydrop",
    "NoiseModeSpread": "noise_mode_spread", "IterateMoments": "iterate_moments",
    "StationaryMoments": "stationary_moments", "LinearizedSpread": "linearized_spread",
    "ExplicitImplicit": "explicit_implicit_digits",
}
DATA_IN = {"STRATEGY_NAMES": "strategy_from_name"}
# names still without an example of their own (each is checked to have none: the list only shrinks)
NOT_YET = ()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _examples(name):
    """The doctest of a public name's own docstring (not of its methods)."""
    found = doctest.DocTestFinder(recurse=False).find(getattr(pt, name), f"pt.{name}")
    return [test for test in found if test.examples]


def _with_examples():
    return [name for name in pt.__all__ if not isinstance(getattr(pt, name), dict) and _examples(name)]


def test_every_name_on_the_reference_page_has_an_examples_section():
    assert set(REFERENCE) == set(pt.__all__) and {"nn", "deep"} <= set(REFERENCE)
    for name in REFERENCE:
        if name in NOT_YET:
            assert not _examples(name), f"{name} has an example now: take it off NOT_YET"
        elif name in RESULT_OF:
            function = getattr(pt, RESULT_OF[name])
            named = (function.__doc__ or "") + str(function.__annotations__.get("return", ""))
            assert name in named, name
            assert RESULT_OF[name] in NOT_YET or _examples(RESULT_OF[name]), name
        elif name in DATA_IN:
            sources = [ex.source for test in _examples(DATA_IN[name]) for ex in test.examples]
            assert any(f"pt.{name}" in source for source in sources), name
        else:
            doc = getattr(pt, name).__doc__
            assert re.search(r"\n\s*Examples\n\s*--------\n", doc) and _examples(name), name


@pytest.mark.parametrize("name", _with_examples())
def test_examples_run(name):
    runner, report = doctest.DocTestRunner(optionflags=FLAGS), []
    for test in _examples(name):
        runner.run(test, out=report.append)
    assert runner.summarize(verbose=False).failed == 0, "".join(report)
