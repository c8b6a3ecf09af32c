"""Thread counts: chosen from the size of a step, applied to torch and BLAS, restored after."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import pnd_theory as pt
from pnd_theory._validation import InvalidParameterError
from pnd_theory.apps.cli import main
from pnd_theory._threads import SMALL_STEP, thread_limit, threads_for


def test_threads_for_small_and_large_steps():
    assert threads_for(None, SMALL_STEP - 1) == 1
    with thread_limit(2):
        assert threads_for(None, SMALL_STEP) == 2
    assert threads_for(3, 10) == 3
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InvalidParameterError, match="threads"):
            threads_for(bad, 10)


def test_thread_limit_restores_the_previous_count():
    before = torch.get_num_threads()
    with thread_limit(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with thread_limit(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_train_result_does_not_depend_on_threads_and_counts_are_restored():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(3, 40)), rng.normal(size=(2, 40))
    s = pt.PerNodeDrop(0.3, "input")
    before = torch.get_num_threads()
    one = pt.train(s, X, Y, 4, epochs=20, progress=False, threads=1)
    assert torch.get_num_threads() == before
    two = pt.train(s, X, Y, 4, epochs=20, progress=False, threads=2)
    auto = pt.train(s, X, Y, 4, epochs=20, progress=False)
    np.testing.assert_allclose(one.U, two.U, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(one.U, auto.U, rtol=1e-10, atol=1e-12)
    with pytest.raises(InvalidParameterError, match="threads"):
        pt.train(s, X, Y, 4, epochs=2, progress=False, threads=0)


def test_cli_train_threads(capsys):
    assert main(["train", "--epochs", "5", "--no-progress", "--threads", "1"]) == 0
    assert "objective" in capsys.readouterr().out
