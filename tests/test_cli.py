"""The pnd-theory command: exit codes, one-line errors, files, JSON, and outputs from the public API."""

import inspect
import json
import subprocess
import sys

import numpy as np
import pytest

import pnd_theory as pt
from pnd_theory.apps import cli
from pnd_theory.apps.cli import main
from pnd_theory.routes.verification import default_strategies, verify


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def run_json(argv, capsys):
    code, out, err = run(argv + ["--json"], capsys)
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def problem_files(tmp_path):
    U, V, X, Y = pt.random_problem(seed=4)
    for name, a in zip("UVXY", (U, V, X, Y)):
        np.save(tmp_path / f"{name}.npy", a)
    np.savez(tmp_path / "problem.npz", U=U, V=V, X=X, Y=Y)
    return tmp_path, (U, V, X, Y)


def files(folder, names="UVXY", ext="npy"):
    return sum(([f"--{n}", str(folder / (f"{n}.{ext}" if ext != "npz" else "problem.npz"))] for n in names), [])


# --------------------------------------------------------------------------- outputs

def test_verify_prints_agreeing_table(capsys):
    code, out, _ = run(["verify", "--samples", "2000", "--no-progress"], capsys)
    assert code == 0
    assert "11 of 11 strategies agree" in out
    assert "PerNodeDrop(p=0.3, layer='both'" in out
    # a strategy holding a matrix shows it by shape, and every row keeps its columns apart
    hidden = next(line for line in out.splitlines() if line.startswith("HiddenNoise"))
    assert hidden.startswith("HiddenNoise(covariance=array(4x4))  ") and "\n" not in hidden


def test_verify_marks_a_row_it_cannot_enumerate(capsys):
    # width 6 and n_in 4: input-layer weight noise has 2^24 mask configurations, above the
    # enumeration limit; the row shows the other routes and says why it has no exact value
    code, out, _ = run(["verify", "--width", "6", "--n-in", "4", "--n-samples", "16", "--samples", "400",
                        "--no-progress"], capsys)
    rows = {line.split(")")[0] + ")": line for line in out.splitlines() if line.startswith(("Dropout", "PerNodeDrop"))}
    marked = rows["PerNodeDrop(p=0.3, layer='input', stir='drop')"]
    assert "—" in marked and marked.count(".") >= 4 and "[" in marked.split("  ")[-1]
    assert "—" not in rows["Dropout(p=0.3)"]
    assert "of 11 strategies agree" in out and "] no exact value: max_configurations must cover" in out


def test_derive_states_the_compact_sum_with_the_value_of_lambda(capsys):
    code, out, _ = run(["derive", "--strategy", "pernodedrop", "--layer", "input", "--p", "0.3",
                        "--n-in", "2", "--width", "2"], capsys)
    assert code == 0
    assert "(lambda) * sum_j ||u_j||^2 v_j^T D v_j" in out
    assert "lambda = 0.428571" in out  # 0.3 / 0.7
    assert "LaTeX: R(U, V) =" in out


def test_penalty_from_npy_files(problem_files, capsys):
    folder, (U, V, X, Y) = problem_files
    code, out, _ = run(["penalty", "--strategy", "dropblock", "--block-size", "2"] + files(folder), capsys)
    assert code == 0
    value = pt.expected_penalty(pt.DropBlock(0.5, 2), U, V, pt.second_moment(X))
    assert f"{value:.10g}" in out


def test_npz_by_name_and_csv_with_samples_as_rows_read_the_same_problem(problem_files, capsys):
    folder, (U, V, X, Y) = problem_files
    np.savetxt(folder / "X.csv", X.T, delimiter=",", header="x1,x2,x3", comments="")
    np.savetxt(folder / "Y.csv", Y.T, delimiter=",")
    np.savez(folder / "other.npz", inputs=X)
    strategy = ["--strategy", "pernodedrop", "--layer", "both", "--p", "0.3"]
    expected = pt.expected_loss(pt.PerNodeDrop(0.3, "both"), U, V, X, Y)
    from_npz = run_json(["penalty"] + strategy + files(folder, ext="npz"), capsys)
    from_csv = run_json(["penalty"] + strategy + files(folder, "UV") + files(folder, "XY", "csv")
                        + ["--samples-as-rows"], capsys)
    named = run_json(["penalty"] + strategy + files(folder, "UVY") + ["--X", f"{folder / 'other.npz'}:inputs"], capsys)
    for data in (from_npz, from_csv, named):
        assert data["shapes"] == {"U": [2, 4], "V": [3, 4], "X": [3, 8], "Y": [2, 8]}
        # CSV holds 18 significant digits: the same numbers up to rounding
        assert data["expected_loss"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("argv, keys", [
    (["verify", "--n-in", "1", "--width", "2", "--n-out", "1", "--samples", "200", "--no-progress"],
     {"problem", "samples", "rows", "agreeing", "total"}),
    (["derive", "--strategy", "dropblock", "--block-size", "2", "--n-in", "2", "--width", "2", "--n-out", "1"],
     {"strategy", "n_in", "width", "n_out", "compact", "latex", "rates", "strengths"}),
    (["penalty"], {"strategy", "source", "shapes", "plain_loss", "penalty", "expected_loss"}),
    (["induced", "--strategy", "dropblock", "--block-size", "2"],
     {"strategy", "width", "source", "induced_penalty", "balanced_penalty", "saved"}),
    (["minimize", "--strategy", "gaussian-dropout"],
     {"strategy", "width", "source", "method", "objective", "data_fit", "penalty", "rank", "singular_values",
      "residual", "saved"}),
    (["train", "--epochs", "50", "--no-progress"],
     {"strategy", "width", "source", "steps", "optimizer", "objective", "closed_form_objective",
      "closed_form_method", "relative_gap", "singular_values", "closed_form_singular_values", "saved"}),
    (["gradient-noise", "--strategy", "dropconnect", "--layer", "input"],
     {"strategy", "source", "batch_size", "method", "per_sample", "trace", "trace_U", "trace_V",
      "trace_per_sample", "trace_per_batch"}),
])
def test_json_keys_are_the_documented_ones(argv, keys, capsys):
    data = run_json(argv, capsys)
    assert set(data) == keys | {"command"} and data["command"] == argv[0]
    documented = cli.__doc__.split("JSON output")[1]
    assert all(f"``{k}``" in documented for k in keys)


def test_json_values_come_from_the_api(capsys):
    U, V, X, Y = pt.random_problem()
    s = pt.DropBlock(0.5, 2)
    data = run_json(["induced", "--strategy", "dropblock", "--block-size", "2"], capsys)
    S = pt.second_moment(X)
    assert data["induced_penalty"] == pt.induced_penalty(s, U @ V.T, 4, second_moment=S)
    # the balanced factors attain the induced regularizer: an independent route to the same number
    assert data["balanced_penalty"] == pytest.approx(data["induced_penalty"], rel=1e-10)
    noise = run_json(["gradient-noise", "--strategy", "dropconnect", "--layer", "input"], capsys)
    assert noise["trace"] == pt.gradient_noise(pt.DropConnect(0.5, "input"), U, V, X, Y).trace
    assert noise["per_sample"] is False and noise["trace"] == noise["trace_per_batch"]


def test_save_writes_factors_that_attain_the_reported_objective(tmp_path, capsys):
    path = tmp_path / "m.npz"
    data = run_json(["minimize", "--strategy", "dropblock", "--block-size", "2", "--save", str(path)], capsys)
    assert data["saved"] == str(path)
    with np.load(path) as saved:
        U, V, A = saved["U"], saved["V"], saved["A"]
        np.testing.assert_allclose(saved["singular_values"], data["singular_values"], rtol=0, atol=1e-15)
    _, _, X, Y = pt.random_problem()
    np.testing.assert_allclose(U @ V.T, A, rtol=0, atol=1e-12)
    assert pt.expected_loss(pt.DropBlock(0.5, 2), U, V, X, Y) == pytest.approx(data["objective"], rel=1e-10)

    path = tmp_path / "t.npz"
    data = run_json(["train", "--epochs", "30", "--no-progress", "--save", str(path)], capsys)
    with np.load(path) as saved:
        assert pt.expected_loss(pt.Dropout(0.5), saved["U"], saved["V"], X, Y) == pytest.approx(data["objective"], rel=1e-12)
        assert len(saved["history_step"]) == len(saved["history_objective"]) > 0


# --------------------------------------------------------------------------- defaults and options

def test_defaults_are_the_apis(capsys):
    parser = cli._build_parser()
    sub = {a.dest: a for a in parser._subparsers._group_actions[0].choices["train"]._actions}
    signature = inspect.signature(pt.train).parameters
    for name in ("epochs", "lr", "batch_size", "device"):
        assert sub[name].default == signature[name].default
    verify_options = {a.dest: a for a in parser._subparsers._group_actions[0].choices["verify"]._actions}
    assert verify_options["samples"].default == inspect.signature(verify).parameters["samples"].default
    assert verify_options["p"].default == inspect.signature(default_strategies).parameters["p"].default
    # a strategy parameter not given is the class's own default, and the problem is pt.random_problem's
    assert run_json(["derive", "--strategy", "dropconnect"], capsys)["strategy"] == repr(pt.DropConnect())
    U, V, X, Y = pt.random_problem()
    assert run_json(["penalty"], capsys)["penalty"] == pt.expected_penalty(pt.Dropout(), U, V, pt.second_moment(X))


def test_strategy_options_are_the_strategies_fields():
    parser = cli._build_parser()
    derive = parser._subparsers._group_actions[0].choices["derive"]
    options = {a.dest for a in derive._actions}
    fields = {f for cls in pt.STRATEGY_NAMES.values() for f in cls.fields}
    assert fields <= options
    source = inspect.getsource(cli)
    assert not [cls.__name__ for cls in pt.STRATEGY_NAMES.values() if cls.__name__ in source]


def test_version_and_module_entry_point():
    run_ = subprocess.run([sys.executable, "-m", "pnd_theory", "--version"], capture_output=True, text=True)
    assert run_.returncode == 0 and run_.stdout.strip() == f"pnd-theory {pt.__version__}"
    run_ = subprocess.run([sys.executable, "-m", "pnd_theory", "penalty", "--strategy", "nope"],
                          capture_output=True, text=True)
    assert run_.returncode == 2 and "invalid choice" in run_.stderr and run_.stderr.count("\n") == 1


def test_closed_pipe_exits_quietly():
    # the reader closes the pipe before the command writes: ``pnd-theory derive | head -0``
    proc = subprocess.Popen([sys.executable, "-m", "pnd_theory", "derive", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait() == cli.EXIT_CLOSED_PIPE and err == b""


# --------------------------------------------------------------------------- user errors

@pytest.fixture
def bad_files(tmp_path, problem_files):
    folder, (U, V, X, Y) = problem_files
    np.save(folder / "huge.npy", X * 1e200)
    np.save(folder / "nan.npy", np.where(X > 0, X, np.nan))
    np.save(folder / "vector.npy", X[0])
    (folder / "words.csv").write_text("a,b\nc,d\n")
    (folder / "empty.csv").write_text("")
    np.save(folder / "X_rows.npy", X.T)
    np.save(folder / "Y_rows.npy", Y.T)
    (folder / "spec.toml").write_text('task = "induced_penalty"\n[grid]\nstrategy = ["dropout"]\np = [0.1]\n'
                                      'width = [3]\n[problem]\nn_in = 3\nn_out = 2\nn_samples = 8\n')
    return folder


USER_ERRORS = [
    (["penalty", "--p", "1.5"], "p must be"),
    (["penalty", "--strategy", "dropblock", "--block-size", "3"], "block_size must divide the width"),
    (["penalty", "--strategy", "dropout", "--layer", "input"], "--layer does not apply to --strategy dropout"),
    (["penalty", "--strategy", "pernodedrop", "--per-sample"], "--per-sample does not apply to --strategy pernodedrop"),
    (["derive", "--strategy", "dropout", "--p", "0.1", "0.2"], "--p takes one value for --strategy dropout"),
    (["derive", "--strategy", "node-dropout"], "width must equal len(p)"),
    (["derive", "--n-in", "40", "--width", "40", "--n-out", "40"], "above MAX_TERM_PAIRS"),
    (["verify", "--device", "tpu"], "device must be"),
    (["verify", "--device", "cpu:x"], "device must be"),
    (["verify", "--samples", "0"], "--samples: must be a positive integer"),
    (["train", "--lr", "-1", "--epochs", "5"], "lr"),
    (["figures", "--out", "/proc/forbidden", "--only", "objective"], "--out '/proc/forbidden'"),
    (["figures", "--only", "nope"], "--only 'nope' is not a figure"),
    (["penalty", "--U", "{d}/U.npy", "--V", "{d}/V.npy"], "missing --X"),
    (["penalty", "--X", "{d}/nonexistent.npy"], "missing --U, --V (files"),
    (["penalty", "--U", "{d}/U.npy", "--V", "{d}/V.npy", "--X", "{d}"], "is a folder; give a .npy, .npz or .csv file"),
    (["penalty", "--U", "{d}/U.npy", "--V", "{d}/V.npy", "--X", "{d}/empty.csv"], "holds no numbers"),
    (["minimize", "--X", "{d}/X_rows.npy", "--Y", "{d}/Y_rows.npy"], "add --samples-as-rows: they hold one sample per row"),
    (["minimize", "--X", "{d}/X.npy", "--Y", "{d}/Y.npy", "--samples-as-rows"], "drop --samples-as-rows"),
    (["penalty", "--U", "{d}/U.npy", "--V", "{d}/V.npy", "--X", "{d}/X_rows.npy"], "add --samples-as-rows"),
    (["penalty", "--U", "{d}/U.npy", "--V", "{d}/V.npy", "--X", "{d}/none.npy", "--Y", "{d}/Y.npy"],
     "--X '{d}/none.npy': no such file"),
    (["penalty", "--U", "{d}/U.npy", "--V", "{d}/V.npy", "--X", "{d}/huge.npy", "--Y", "{d}/Y.npy"],
     "--X '{d}/huge.npy' has entries up to"),
    (["penalty", "--U", "{d}/U.npy", "--V", "{d}/V.npy", "--X", "{d}/nan.npy", "--Y", "{d}/Y.npy"],
     "has non-finite entries"),
    (["penalty", "--U", "{d}/U.npy", "--V", "{d}/V.npy", "--X", "{d}/vector.npy", "--Y", "{d}/Y.npy"],
     "must hold a 2-D array"),
    (["penalty", "--U", "{d}/U.npy", "--V", "{d}/V.npy", "--X", "{d}/words.csv", "--Y", "{d}/Y.npy"],
     "cannot read --X"),
    (["penalty", "--U", "{d}/problem.npz:W", "--V", "{d}/V.npy", "--X", "{d}/X.npy", "--Y", "{d}/Y.npy"],
     "has no array named 'W'; it holds U, V, X, Y"),
    (["penalty", "--U", "{d}/U.npy", "--V", "{d}/V.npy", "--X", "{d}/X.npy", "--Y", "{d}/Y.npy", "--n-in", "3"],
     "--n-in applies to the built-in random problem, not to files"),
    (["penalty", "--samples-as-rows"], "--samples-as-rows applies to files only"),
    (["minimize", "--X", "{d}/X.npy", "--Y", "{d}/Y.npy", "--seed", "3"], "--seed applies to the built-in random problem"),
    (["verify", "--correlation", "1e300", "--no-progress"], "--correlation 1e+300 makes the random problem's inputs"),
    (["train", "--lr", "1e308", "--epochs", "3", "--no-progress"], "it diverged"),
    (["minimize", "--X", "{d}/X.npy", "--Y", "{d}/U.npy"], "Y"),
    (["minimize", "--save", "{d}/missing/m.npz"], "does not exist or is not writable"),
    (["minimize", "--save", "{d}/m.txt"], "must name a .npz file"),
    (["induced", "--X", "{d}/X.npy"], "missing --A"),
    (["train", "--lr", "1e300", "--epochs", "50", "--no-progress"], "lower lr (or scale the data); got lr=1e+300"),
    (["train", "--width", "1000000000000", "--epochs", "2", "--no-progress"], "fit in memory"),
    (["derive", "--width", "1000000000"], "width=1000000000"),
    (["induced", "--width", "1000000000"], "fit in memory"),
    (["sweep", "{d}/X.npy", "--store", "{d}/store", "--no-progress"], "is not valid TOML"),
    (["sweep", "{d}/spec.toml", "--store", "{d}/X.npy/store", "--no-progress"], "not a writable folder"),
    (["sweep", "{d}/spec.toml", "--store", "{d}/store", "--worker-timeout", "0", "--no-progress"],
     "worker_timeout must be a finite number of seconds > 0"),
]


@pytest.mark.parametrize("argv, message", USER_ERRORS, ids=[" ".join(a[:3]) for a, _ in USER_ERRORS])
def test_user_errors_exit_2_with_one_line(argv, message, bad_files, capsys):
    argv = [a.format(d=bad_files) for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 2
    assert message.format(d=bad_files) in err
    assert err.count("\n") == 1 and err.startswith("pnd-theory ") and "Traceback" not in err


# --------------------------------------------------------------------------- frictions of a first use

def test_penalty_needs_no_Y(problem_files, capsys):
    folder, (U, V, X, Y) = problem_files
    data = run_json(["penalty"] + files(folder, "UVX"), capsys)
    assert data["penalty"] == pt.expected_penalty(pt.Dropout(), U, V, pt.second_moment(X))
    assert data["plain_loss"] is None and data["expected_loss"] is None and set(data["shapes"]) == set("UVX")
    code, out, _ = run(["penalty"] + files(folder, "UVX"), capsys)
    assert code == 0 and "penalty        R(U, V)" in out and "plain loss" not in out


def test_help_shows_each_strategys_own_default(capsys):
    assert main(["penalty", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "layer of dropconnect (default: output); pernodedrop (default: input)" in out
    assert "node-dropout (default: 0.5, one value per hidden unit)" in out and "(0.5,)" not in out


def test_figures_help_lists_the_figure_names_and_where_it_writes(capsys):
    from paper_figures import FIGURES
    assert main(["figures", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert all(name in out for name in FIGURES) and "./figures/ of the current folder" in out
    assert "paper_figures" not in out.replace("paper_figures.FIGURES", "")


def test_figures_without_out_write_into_the_current_folder(tmp_path, monkeypatch, capsys):
    import importlib
    from pathlib import Path
    from paper_figures import FIGURES
    module = importlib.import_module(FIGURES["objective"])
    monkeypatch.setattr(module, "make", lambda out, quick, device: [out / "objective.png"])
    monkeypatch.chdir(tmp_path)
    data = run_json(["figures", "--only", "objective", "--quick"], capsys)
    # ./figures of the current folder: never the repository's paper_figures/ nor the installed package
    assert data["out"] == "figures" and (tmp_path / "figures").is_dir()
    assert data["figures"][0]["paths"] == [str(Path("figures") / "objective.png")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures"]


def test_out_of_memory_is_one_line(monkeypatch, capsys):
    def too_big(*args, **kwargs):
        raise MemoryError("Unable to allocate 74.5 GiB for an array with shape (100000, 100000)")
    monkeypatch.setattr(pt, "expected_penalty", too_big)
    code, out, err = run(["penalty"], capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("pnd-theory penalty: error: not enough memory") and "74.5 GiB" in err


def test_version_and_help_load_neither_torch_nor_sympy():
    """``--version`` and ``--help`` answer before any heavy import (no timing: what is loaded)."""
    code = ("import sys, contextlib, io\n"
            "from pnd_theory.apps.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    codes = [main(['--version']), main(['--help'])]\n"
            "print(codes, sorted(m for m in ('torch', 'sympy', 'scipy', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "[0, 0] []", out.stderr[-2000:]
