"""The Examples sections of the public docstrings run as written (doctests, small sizes).

The rule: every public name -- of ``pt.__all__``, ``pt.nn.__all__`` and ``pt.deep.__all__``, all
on the reference page (``docs/reference.md``; the subpackages ``pt.nn`` and ``pt.deep``
themselves by their module docstrings) -- has an Examples section of its own, with three
exceptions.  A result class (``RESULT_OF``) shares the example of the function that returns it,
when that function has one and names the class in its docstring or return annotation; a
constant (``DATA_IN``) shares the example of the name whose example uses it; a name that
re-exports an object public under an earlier name (``pt.nn.LinearNetwork is pt.LinearNetwork``)
has that name's example.  Names are written in full: ``pt.X``, ``pt.nn.X``, ``pt.deep.X``.
"""

import doctest
import re
from pathlib import Path

import pytest

import pnd_theory as pt

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"pt": pt, "pt.nn": pt.nn, "pt.deep": pt.deep}
REFERENCE = sorted({"pt" + name for name in re.findall(r"^\s+pnd_theory((?:\.nn|\.deep)?\.\w+)\s*$",
                                                      (ROOT / "docs" / "reference.md").read_text(), re.M)})
RESULT_OF = {
    "pt.MinimizerResult": "pt.global_minimizer", "pt.TrainingResult": "pt.train",
    "pt.ConformanceReport": "pt.check_strategy", "pt.Derivation": "pt.derive",
    "pt.YDropFixedPoint": "pt.ydrop_fixed_point", "pt.YDropTraining": "pt.train_ydrop",
    "pt.NoiseModeSpread": "pt.noise_mode_spread", "pt.IterateMoments": "pt.iterate_moments",
    "pt.StationaryMoments": "pt.stationary_moments", "pt.LinearizedSpread": "pt.linearized_spread",
    "pt.ExplicitImplicit": "pt.explicit_implicit_digits", "pt.deep.InducedResult": "pt.deep.induced_penalty",
    "pt.deep.DeepMinimizerResult": "pt.deep.global_minimizer", "pt.deep.DeepTrainingResult": "pt.deep.train",
}
DATA_IN = {"pt.STRATEGY_NAMES": "pt.strategy_from_name", "pt.nn.STIRS": "pt.nn.PerNodeDropLinear"}
CONSTANTS = (str, int, float, tuple, dict)
# names still without an example of their own (each is checked to have none: the list only shrinks)
NOT_YET = ()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _object(name):
    """The object of a public name written in full (``pt.deep.train``)."""
    package, attribute = name.rsplit(".", 1)
    return getattr(PACKAGES[package], attribute)


def _public():
    """Every public name in full, in the order of the packages' ``__all__``, less the names
    that re-export an object public under an earlier name."""
    names, seen = [], []
    for package, module in PACKAGES.items():
        for attribute in module.__all__:
            obj = getattr(module, attribute)
            if not isinstance(obj, CONSTANTS) and any(obj is known for known in seen):
                continue
            names.append(f"{package}.{attribute}")
            seen.append(obj)
    return names


def _examples(name):
    """The doctest of a public name's own docstring (not of its methods)."""
    found = doctest.DocTestFinder(recurse=False).find(_object(name), name)
    return [test for test in found if test.examples]


def _with_examples():
    return [name for name in _public() if not isinstance(_object(name), CONSTANTS) and _examples(name)]


def test_every_name_on_the_reference_page_has_an_examples_section():
    listed = {f"{package}.{name}" for package, module in PACKAGES.items() for name in module.__all__}
    assert set(REFERENCE) == listed and {"pt.nn", "pt.deep"} <= set(REFERENCE)
    assert "pt.nn.LinearNetwork" not in _public() and "pt.nn.STIRS" in _public()
    for name in _public():
        if name in NOT_YET:
            assert not _examples(name), f"{name} has an example now: take it off NOT_YET"
        elif name in RESULT_OF:
            function = _object(RESULT_OF[name])
            named = (function.__doc__ or "") + str(function.__annotations__.get("return", ""))
            assert name.rsplit(".", 1)[1] in named, name
            assert RESULT_OF[name] in NOT_YET or _examples(RESULT_OF[name]), name
        elif name in DATA_IN:
            sources = [ex.source for test in _examples(DATA_IN[name]) for ex in test.examples]
            assert any(name in source for source in sources), name
        else:
            doc = _object(name).__doc__
            assert re.search(r"\n\s*Examples\n\s*--------\n", doc) and _examples(name), name


@pytest.mark.parametrize("name", _with_examples())
def test_examples_run(name):
    runner, report = doctest.DocTestRunner(optionflags=FLAGS), []
    for test in _examples(name):
        runner.run(test, out=report.append)
    assert runner.summarize(verbose=False).failed == 0, "".join(report)
