"""The pnd-theory command: exit codes, one-line errors, and outputs from the public API."""

import subprocess
import sys

import numpy as np
import pytest

import pnd_theory as pt
from pnd_theory.cli import main


def test_verify_prints_agreeing_table(capsys):
    assert main(["verify", "--samples", "2000", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "11 of 11 strategies agree" in out
    assert "PerNodeDrop(p=0.3, layer='both'" in out


def test_derive_states_the_compact_sum(capsys):
    assert main(["derive", "--strategy", "pernodedrop", "--layer", "input", "--n-in", "2", "--width", "2"]) == 0
    out = capsys.readouterr().out
    assert "(lambda) * sum_j ||u_j||^2 v_j^T D v_j" in out
    assert "LaTeX: R(U, V) =" in out


def test_penalty_from_npy_files(tmp_path, capsys):
    U, V, X, Y = pt.random_problem(seed=4)
    for name, a in zip("UVXY", (U, V, X, Y)):
        np.save(tmp_path / f"{name}.npy", a)
    args = ["penalty", "--strategy", "dropblock", "--block-size", "2"]
    args += sum(([f"--{n}", str(tmp_path / f"{n}.npy")] for n in "UVXY"), [])
    assert main(args) == 0
    out = capsys.readouterr().out
    value = pt.expected_penalty(pt.DropBlock(0.5, 2), U, V, pt.second_moment(X))
    assert f"{value:.10g}" in out


@pytest.mark.parametrize("argv, message", [
    (["penalty", "--p", "1.5"], "p must be a drop probability"),
    (["penalty", "--strategy", "dropblock", "--block-size", "3"], "block_size must divide the width"),
    (["penalty", "--X", "/nonexistent.npy"], "cannot read --X"),
    (["derive", "--strategy", "node-dropout"], "needs --rates"),
])
def test_user_errors_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_option_exits_2_and_module_entry_point_works():
    run = subprocess.run([sys.executable, "-m", "pnd_theory", "penalty", "--strategy", "nope"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "invalid choice" in run.stderr
    run = subprocess.run([sys.executable, "-m", "pnd_theory", "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and "verify" in run.stdout
