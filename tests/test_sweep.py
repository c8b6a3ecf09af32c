"""Sweeps: the same table serially and on a LocalCluster, a store that loses nothing.

The cluster tests share one ``LocalCluster`` of two one-thread worker processes (started once
for the module, closed at the end).  Every number in a table is checked against the direct
call of the public function on the same problem, so the sweep's plumbing (binding, seeding,
storing) is what is under test.
"""

import json
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pnd_theory as pt
from pnd_theory.studies.sweeps import load_spec, sweep

distributed = pytest.importorskip("distributed")

SPEC = """\
task = "global_minimizer"          # any task above; its keyword arguments come from the grid
[grid]                              # the Cartesian product of these lists is the set of cells
strategy = ["dropout", "dropblock"] # names as `pnd-theory --strategy` takes them
p = [0.1, 0.3, 0.5]
block_size = [2]                    # a strategy ignores a field it does not have
width = [8, 16]
seed = [0, 1]
[problem]                           # each cell's data: pt.random_problem(n_in, width, n_out, n_samples, seed)
n_in = 4
n_out = 3
n_samples = 64
"""


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(SPEC)
    return path


def _numbers(df):
    return df.drop(columns=["seconds"]).reset_index(drop=True)


def test_issue_spec_serially_matches_direct_calls(spec_file, tmp_path):
    df = sweep(spec_file, client="serial", store=tmp_path / "store", progress=False)
    # 2 strategies x 3 p x 2 widths x 2 seeds; DropBlock keeps block_size, Dropout ignores it
    assert len(df) == 24 and set(df["status"]) == {"done"} and set(df["error"]) == {""}
    assert list(df.columns[:5]) == ["strategy", "p", "block_size", "width", "seed"]
    assert {"objective", "data_fit", "penalty", "rank", "method", "seconds", "status", "error"} <= set(df.columns)
    assert df.loc[df.strategy == "dropout", "block_size"].isna().all()
    assert (df.loc[df.strategy == "dropblock", "block_size"] == 2).all()
    for row in df.itertuples():
        strategy = pt.Dropout(row.p) if row.strategy == "dropout" else pt.DropBlock(row.p, 2)
        _, _, X, Y = pt.random_problem(4, row.width, 3, 64, seed=row.seed)
        direct = pt.global_minimizer(strategy, X, Y, row.width)
        assert row.objective == direct.objective and row.penalty == direct.penalty
        assert row.data_fit == direct.data_fit and row.rank == direct.rank and row.method == direct.method
    # one JSON file per cell, each holding what the table shows
    files = sorted((tmp_path / "store").glob("*.json"))
    assert len(files) == 24
    stored = {tuple(json.loads(f.read_text())["coordinates"].values()): json.loads(f.read_text()) for f in files}
    first = df.iloc[0]
    record = stored[("dropout", 0.1, None, 8, 0)]
    assert record["results"]["objective"] == first["objective"] and record["status"] == "done"


def test_serial_and_local_cluster_give_identical_tables(spec_file, client):
    serial = sweep(spec_file, client="serial", progress=False)
    parallel = sweep(spec_file, client=client, progress=False)
    pd.testing.assert_frame_equal(_numbers(serial), _numbers(parallel))


def test_training_seeded_per_cell_identical_on_the_cluster(client):
    spec = {"task": "train", "grid": {"strategy": ["dropout"], "p": [0.3], "width": [4], "seed": [0, 1]},
            "problem": {"n_in": 3, "n_out": 2, "n_samples": 16}, "options": {"epochs": 15, "device": "cpu"}}
    serial = sweep(spec, client="serial", progress=False)
    parallel = sweep(spec, client=client, progress=False)
    pd.testing.assert_frame_equal(_numbers(serial), _numbers(parallel))
    # the seeds matter, and each row is the direct call with that seed
    assert serial.objective[0] != serial.objective[1]
    for row in serial.itertuples():
        _, _, X, Y = pt.random_problem(3, 4, 2, 16, seed=row.seed)
        direct = pt.train(pt.Dropout(0.3), X, Y, 4, epochs=15, seed=row.seed, device="cpu", progress=False)
        assert row.objective == direct.objective and row.steps == direct.steps


def test_second_run_computes_nothing(spec_file, tmp_path, client):
    store = tmp_path / "store"
    first = sweep(spec_file, client=client, store=store, progress=False)
    mtimes = {f.name: f.stat().st_mtime_ns for f in store.iterdir()}
    again = sweep(spec_file, client=client, store=store, progress=False)
    assert set(first.status) == {"done"} and set(again.status) == {"cached"}
    pd.testing.assert_frame_equal(_numbers(first.drop(columns="status")), _numbers(again.drop(columns="status")))
    assert {f.name: f.stat().st_mtime_ns for f in store.iterdir()} == mtimes  # nothing rewritten
    # a spec that grows computes only its new cells
    grown = load_spec(spec_file)
    grown["grid"]["seed"] = [0, 1, 2]
    third = sweep(grown, client="serial", store=store, progress=False)
    assert (third.status == "cached").sum() == 24 and (third.status == "done").sum() == 12


def test_failing_cell_is_recorded_and_the_rest_complete(tmp_path, client):
    # DropBlock with blocks of 3 does not fit width 8: that cell raises; width 9 and Dropout run
    spec = {"task": "global_minimizer", "grid": {"strategy": ["dropout", "dropblock"], "p": [0.3],
                                                 "block_size": [3], "width": [8, 9], "seed": [0]},
            "problem": {"n_in": 4, "n_out": 3, "n_samples": 32}}
    for runner in ("serial", client):
        store = tmp_path / f"store-{runner if runner == 'serial' else 'cluster'}"
        df = sweep(spec, client=runner, store=store, progress=False)
        failed = df[df.status == "failed"]
        assert len(df) == 4 and len(failed) == 1
        assert failed.iloc[0][["strategy", "width"]].tolist() == ["dropblock", 8]
        assert failed.iloc[0]["error"].startswith("InvalidParameterError") and "width" in failed.iloc[0]["error"]
        assert np.isnan(failed.iloc[0]["objective"])
        assert (df.status == "done").sum() == 3 and df[df.status == "done"].objective.notna().all()
        # a failed cell is tried again next time; the others are read from the store
        again = sweep(spec, client="serial", store=store, progress=False)
        assert sorted(again.status) == ["cached", "cached", "cached", "failed"]


def slow_square(value, pause=0.0):
    import time

    time.sleep(pause)
    return {"square": value * value, "pid": os.getpid()}


def die_once(value, marker):
    """Kills the worker process running it the first time it is called (the marker file says)."""
    marker = Path(marker)
    if value == 3 and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return {"square": value * value}


def test_killed_worker_loses_no_finished_cell(tmp_path, client):
    marker = tmp_path / "killed"
    spec = {"task": die_once, "grid": {"value": list(range(8))}, "options": {"marker": str(marker)}}
    store = tmp_path / "store"
    before = set(client.run(os.getpid).values())
    df = sweep(spec, client=client, store=store, progress=False)
    assert marker.exists(), "the cell did not kill its worker"
    assert int(marker.read_text()) in before
    assert list(df.status) == ["done"] * 8 and list(df.square) == [v * v for v in range(8)]
    assert len(list(store.glob("*.json"))) == 8
    assert not list(store.glob(".*")), "a temporary file was left behind"
    assert set(sweep(spec, client="serial", store=store, progress=False).status) == {"cached"}
    client.wait_for_workers(2, timeout=150)


def interrupt_at(value):
    if value == 2:
        raise KeyboardInterrupt
    return {"square": value * value}


def test_ctrl_c_leaves_a_consistent_store_and_the_rerun_completes(tmp_path):
    spec = {"task": interrupt_at, "grid": {"value": [0, 1, 2, 3]}}
    store = tmp_path / "store"
    with pytest.raises(KeyboardInterrupt):
        sweep(spec, client="serial", store=store, progress=False)
    files = list(store.iterdir())
    assert len(files) == 2 and all(json.loads(f.read_text())["status"] == "done" for f in files)
    done = sweep({**spec, "task": slow_square}, client="serial", store=store, progress=False)
    assert list(done.status) == ["done"] * 4  # another task: other keys


def test_named_tasks_bind_the_problem():
    grid = {"strategy": ["pernodedrop"], "p": [0.3], "layer": ["output"], "width": [3], "seed": [2]}
    problem = {"n_in": 3, "n_out": 2, "n_samples": 12}
    U, V, X, Y = pt.random_problem(3, 3, 2, 12, seed=2)
    s = pt.PerNodeDrop(0.3, "output")
    S = pt.second_moment(X)
    ip = sweep({"task": "induced_penalty", "grid": grid, "problem": problem}, client="serial", progress=False)
    assert ip.induced_penalty[0] == pt.induced_penalty(s, U @ V.T, 3, S)
    mc = sweep({"task": "monte_carlo_loss", "grid": grid, "problem": problem, "options": {"samples": 500}},
               client="serial", progress=False)
    assert (mc.estimate[0], mc.standard_error[0]) == pt.monte_carlo_loss(s, U, V, X, Y, 500, seed=2)
    gn = sweep({"task": "gradient_noise", "grid": grid, "problem": problem}, client="serial", progress=False)
    assert gn.trace[0] == pt.gradient_noise(s, U, V, X, Y).trace and gn.batch_size[0] == 12
    ep = sweep({"task": "expected_penalty", "grid": grid, "problem": problem}, client="serial", progress=False)
    assert ep.expected_penalty[0] == pt.expected_penalty(s, U, V, S)


def test_data_file_problem(tmp_path):
    _, _, X, Y = pt.random_problem(3, 2, 2, 20, seed=5)
    np.savez(tmp_path / "data.npz", X=X, Y=Y)
    (tmp_path / "spec.toml").write_text('task = "global_minimizer"\n[grid]\nstrategy = ["dropout"]\np = [0.2]\n'
                                        'width = [4]\n[problem]\ndata = "data.npz"\n')
    df = sweep(tmp_path / "spec.toml", client="serial", progress=False)
    assert df.objective[0] == pt.global_minimizer(pt.Dropout(0.2), X, Y, 4).objective


@pytest.mark.parametrize("spec, match", [
    ({"grid": {"p": [0.1]}}, "task"),
    ({"task": "no_such_task", "grid": {"p": [0.1]}}, "task"),
    ({"task": "global_minimizer", "grid": {"strategy": ["nonsense"], "width": [4]}}, "strategy"),
    ({"task": "global_minimizer", "grid": {"strategy": ["dropout"], "p": [], "width": [4]}}, "empty"),
    ({"task": "global_minimizer", "grid": {"strategy": ["dropout"], "p": [0.1], "width": [4], "epochs": [3]}},
     "epochs"),
    ({"task": "monte_carlo_loss", "grid": {"strategy": ["dropout"], "p": [0.1]}}, "samples"),
    ({"task": "train", "grid": {"strategy": ["dropout"]}, "extra": 1}, "extra"),
    ({"task": "os:no_such_function", "grid": {"x": [1]}}, "no_such_function"),
])
def test_bad_specs_are_refused(spec, match):
    with pytest.raises(pt.InvalidParameterError, match=match):
        sweep(spec, client="serial", progress=False)


def test_bad_spec_files_and_arguments(tmp_path):
    with pytest.raises(pt.InvalidParameterError, match="cannot be read"):
        sweep(tmp_path / "missing.toml", client="serial")
    (tmp_path / "bad.toml").write_text("task = [")
    with pytest.raises(pt.InvalidParameterError, match="TOML"):
        sweep(tmp_path / "bad.toml", client="serial")
    with pytest.raises(pt.InvalidParameterError, match="spec"):
        sweep(42)
    spec = {"task": "global_minimizer", "grid": {"strategy": ["dropout"], "width": [4]}}
    with pytest.raises(pt.InvalidParameterError, match="client"):
        sweep(spec, client=3.5, progress=False)
    with pytest.raises(pt.InvalidParameterError, match="retries"):
        sweep(spec, client="serial", retries=-1)


def test_plot_means_and_standard_errors_over_seeds(spec_file):
    import matplotlib

    matplotlib.use("Agg")
    df = sweep(spec_file, client="serial", progress=False)
    with pytest.raises(pt.InvalidParameterError, match="width"):
        pt.sweep_plot(df, x="p", y="objective")
    with pytest.raises(pt.InvalidParameterError, match="column 'lr'"):
        pt.sweep_plot(df[df.width == 8], x="lr", y="objective")
    with pytest.raises(pt.InvalidParameterError, match="DataFrame"):
        pt.sweep_plot([1, 2], x="p", y="objective")
    ax = pt.sweep_plot(df[df.width == 8], x="p", y="objective", hue="strategy")
    lines = {t.get_text(): None for t in ax.get_legend().get_texts()}
    assert set(lines) == {"dropout", "dropblock"}
    for container, name in zip(ax.containers, ["dropout", "dropblock"]):
        x, y = container.lines[0].get_data()
        part = df[(df.width == 8) & (df.strategy == name)]
        for xi, yi in zip(x, y):
            values = part[part.p == xi].objective.to_numpy()
            assert len(values) == 2
            np.testing.assert_allclose(yi, values.mean(), rtol=1e-15)
        # the bar's half-length is one standard error over the two seeds, |a - b| / 2
        segments = container.lines[2][0].get_segments()
        for seg, xi in zip(segments, x):
            values = part[part.p == xi].objective.to_numpy()
            np.testing.assert_allclose(seg[1][1] - seg[0][1], abs(values[0] - values[1]), rtol=1e-12)


def test_command_line(spec_file, tmp_path, capsys):
    from pnd_theory.apps.cli import main

    store = tmp_path / "store"
    assert main(["sweep", str(spec_file), "--store", str(store), "--scheduler", "serial", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 24 and {r["status"] for r in rows} == {"done"}
    assert main(["sweep", str(spec_file), "--store", str(store), "--scheduler", "serial"]) == 0
    out = capsys.readouterr().out
    assert "24 cells: 0 done, 24 cached, 0 failed" in out and "objective" in out
    assert main(["sweep", str(tmp_path / "missing.toml"), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be read" in err


def test_checkpoint_keeps_cells_until_the_block_finishes(tmp_path):
    from pnd_theory.studies.sweeps import checkpoint

    spec = {"task": slow_square, "grid": {"value": [1, 2, 3]}}
    folder = tmp_path / ".cells"
    with pytest.raises(RuntimeError, match="interrupted"):
        with checkpoint(folder):
            sweep(spec, client="serial", progress=False)
            raise RuntimeError("interrupted")
    assert len(list(folder.glob("*.json"))) == 3  # kept: the next run resumes from them
    with checkpoint(folder):
        assert set(sweep(spec, client="serial", progress=False).status) == {"cached"}
    assert not folder.exists()
    assert set(sweep(spec, client="serial", progress=False).status) == {"done"}  # outside: no store


def returns_an_object(value):
    return {"value": object()}


def test_a_result_that_is_not_json_is_a_failed_cell(tmp_path):
    df = sweep({"task": returns_an_object, "grid": {"value": [1]}, "record": ["value"]}, client="serial",
               store=tmp_path, progress=False)
    assert df.status[0] == "failed" and "JSON" in df.error[0]


def test_restart_mid_sweep_loses_no_finished_cell(tmp_path, client):
    import threading
    import time

    spec = {"task": slow_square, "grid": {"value": list(range(10))}, "options": {"pause": 1.5}}
    store = tmp_path / "store"
    before = set(client.run(os.getpid).values())
    out = {}
    run = threading.Thread(target=lambda: out.update(df=sweep(spec, client=client, store=store, progress=False)))
    run.start()
    deadline = time.monotonic() + 120
    while len(list(store.glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    finished = {f.name: f.read_text() for f in store.glob("*.json")}
    client.restart(timeout=150)  # generous: new worker processes start slowly on a loaded machine
    run.join(timeout=300)
    df = out["df"]
    assert list(df.status) == ["done"] * 10 and list(df.square) == [v * v for v in range(10)]
    assert any(pid not in before for pid in df.pid), "no cell ran after the restart"
    assert {name: (store / name).read_text() for name in finished} == finished  # kept as they were
    assert len(list(store.glob("*.json"))) == 10


# --------------------------------------------------------------------------- faults: stale code, bad files,
# dead clusters, read-only stores, non-finite results, two processes on one store

TASK_MODULE = """\
def task(value):
    return {{"out": value * {factor}}}
"""


def test_changed_task_code_computes_its_cells_again(tmp_path, monkeypatch):
    import importlib
    import sys

    (tmp_path / "user_task_mod.py").write_text(TASK_MODULE.format(factor=2))
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = {"task": "user_task_mod:task", "grid": {"value": [1, 2]}}
    store = tmp_path / "store"
    assert list(sweep(spec, client="serial", store=store, progress=False).out) == [2, 4]
    assert set(sweep(spec, client="serial", store=store, progress=False).status) == {"cached"}
    (tmp_path / "user_task_mod.py").write_text(TASK_MODULE.format(factor=3))
    importlib.reload(sys.modules["user_task_mod"])  # what a new process would import
    again = sweep(spec, client="serial", store=store, progress=False)
    assert list(again.status) == ["done", "done"] and list(again.out) == [3, 6]  # not the stale 2, 4
    sys.modules.pop("user_task_mod")


def test_changed_package_code_computes_its_cells_again(tmp_path, monkeypatch):
    import shutil

    from pnd_theory.studies import sweep_store

    spec = {"task": slow_square, "grid": {"value": [1, 2]}}
    store = tmp_path / "store"
    sweep(spec, client="serial", store=store, progress=False)
    assert set(sweep(spec, client="serial", store=store, progress=False).status) == {"cached"}
    # the package's fingerprint covers every module: one changed byte in a copy changes it
    copy = tmp_path / "pkg"
    shutil.copytree(sweep_store.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(sweep_store, "PACKAGE", copy)
    before = sweep_store.code_fingerprint(slow_square)
    assert set(sweep(spec, client="serial", store=store, progress=False).status) == {"cached"}
    path = copy / "laws" / "masks.py"
    path.write_text(path.read_text() + "\n# changed\n")
    assert sweep_store.code_fingerprint(slow_square) != before
    assert set(sweep(spec, client="serial", store=store, progress=False).status) == {"done"}


@pytest.mark.parametrize("content", ["[]", "null", "{\"status\": \"done\"}", "{not json", "", "42"])
def test_malformed_cell_file_is_kept_aside_and_recomputed(tmp_path, content):
    spec = {"task": slow_square, "grid": {"value": [1, 2]}}
    store = tmp_path / "store"
    sweep(spec, client="serial", store=store, progress=False)
    victim = sorted(store.glob("*.json"))[0]
    victim.write_text(content)
    with pytest.warns(RuntimeWarning, match="kept aside as .*malformed-1"):
        df = sweep(spec, client="serial", store=store, progress=False)
    assert sorted(df.status) == ["cached", "done"] and list(df.square) == [1, 4]
    aside = Path(df.attrs["malformed"][0])
    assert aside.name == victim.name + ".malformed-1" and aside.read_text() == content
    assert json.loads(victim.read_text())["status"] == "done"  # the cell is whole again
    assert set(sweep(spec, client="serial", store=store, progress=False).status) == {"cached"}


def test_command_line_names_the_malformed_file(spec_file, tmp_path, capsys):
    from pnd_theory.apps.cli import main

    store = tmp_path / "store"
    spec_file.write_text('task = "induced_penalty"\n[grid]\nstrategy = ["dropout"]\np = [0.1, 0.2]\nwidth = [3]\n'
                         '[problem]\nn_in = 3\nn_out = 2\nn_samples = 8\n')
    assert main(["sweep", str(spec_file), "--store", str(store), "--scheduler", "serial", "--no-progress"]) == 0
    sorted(store.glob("*.json"))[0].write_text("[]")
    capsys.readouterr()
    assert main(["sweep", str(spec_file), "--store", str(store), "--scheduler", "serial", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "1 done, 1 cached" in out and ".json.malformed-1" in err and "computed again" in err


def test_store_that_cannot_be_written_is_refused_before_any_work(tmp_path, monkeypatch):
    import tempfile

    calls = tmp_path / "calls"
    spec = {"task": count_calls, "grid": {"value": [1, 2]}, "options": {"log": str(calls)}}
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(pt.InvalidParameterError, match="store .*afile.* not a writable folder"):
        sweep(spec, client="serial", store=afile / "store", progress=False)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # what a read-only folder answers
    with pytest.raises(pt.InvalidParameterError, match="not a writable folder: Permission denied"):
        sweep(spec, client="serial", store=tmp_path / "ro", progress=False)
    assert not calls.exists(), "a cell was computed before the store was found unwritable"


def returns_non_finite(value):
    return {"value": float("nan") if value == 1 else (float("inf") if value == 2 else 1.0),
            "values": [1.0, float("-inf")] if value == 3 else [1.0]}


def test_non_finite_results_are_failed_cells_in_standard_json(tmp_path):
    spec = {"task": returns_non_finite, "grid": {"value": [0, 1, 2, 3]}}
    store = tmp_path / "store"
    df = sweep(spec, client="serial", store=store, progress=False)
    assert list(df.status) == ["done", "failed", "failed", "failed"]
    assert np.isnan(df.value[1]) and df.value[2] == np.inf  # the numbers are kept in the row
    assert "non-finite result: value = nan" in df.error[1] and "value = inf" in df.error[2]
    assert "values" in df.error[3]
    for path in store.glob("*.json"):  # strict JSON: no NaN or Infinity literal
        json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{path} holds {c}"))
    assert list(sweep(spec, client="serial", store=store, progress=False).status) == [
        "cached", "failed", "failed", "failed"]


def test_cluster_without_workers_is_reported_within_the_timeout(tmp_path):
    import time

    spec = {"task": slow_square, "grid": {"value": [1, 2]}}
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as c:
        start = time.monotonic()
        with pytest.raises(ConnectionError, match=r"no worker for 1 s: 0 of 2 cells finished"):
            sweep(spec, client=c, store=tmp_path / "store", progress=False, worker_timeout=1)
        assert time.monotonic() - start < 30
    assert not list((tmp_path / "store").iterdir()), "a lock was left behind"
    with pytest.raises(pt.InvalidParameterError, match="worker_timeout"):
        sweep(spec, client="serial", worker_timeout=float("inf"))


def test_cluster_whose_workers_all_die_keeps_the_finished_cells(tmp_path):
    import threading
    import time

    spec = {"task": slow_square, "grid": {"value": list(range(6))}, "options": {"pause": 0.5}}
    store = tmp_path / "store"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as c:
        def kill_all_workers():
            deadline = time.monotonic() + 120
            while len(list(store.glob("*.json"))) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            cluster.scale(0)

        killer = threading.Thread(target=kill_all_workers)
        killer.start()
        with pytest.raises(ConnectionError, match=r"no worker for 2 s: [2-5] of 6 cells finished and kept"):
            sweep(spec, client=c, store=store, progress=False, worker_timeout=2)
        killer.join()
    kept = sorted(store.glob("*.json"))
    assert 2 <= len(kept) < 6 and not list(store.glob("*.lock"))
    df = sweep(spec, client="serial", store=store, progress=False)
    assert (df.status == "cached").sum() == len(kept) and list(df.square) == [v * v for v in range(6)]


def count_calls(value, log, pause=0.0):
    import time

    with open(log, "a") as f:
        f.write(f"{value} {os.getpid()}\n")
    time.sleep(pause)
    return {"square": value * value}


TWO_RUNS = """\
import sys
sys.path.insert(0, {tests!r})
from test_sweep import count_calls
from pnd_theory.studies.sweeps import sweep
spec = {{"task": count_calls, "grid": {{"value": list(range(8))}}, "options": {{"log": {log!r}, "pause": 0.3}}}}
df = sweep(spec, client="serial", store={store!r}, progress=False)
print(sorted(df.status.unique()), list(df.square))
"""


def test_two_processes_on_one_store_compute_each_cell_once(tmp_path):
    import subprocess
    import sys

    log, store = tmp_path / "calls", tmp_path / "store"
    script = TWO_RUNS.format(tests=str(Path(__file__).parent), log=str(log), store=str(store))
    runs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    outs = [run.communicate(timeout=300) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err[-2000:] for _, err in outs]
    for out, _ in outs:
        assert out.strip().endswith(str([v * v for v in range(8)]))
    values = [int(line.split()[0]) for line in log.read_text().splitlines()]
    assert sorted(values) == list(range(8)), "a cell was computed twice (or not at all)"
    assert len(list(store.glob("*.json"))) == 8 and not list(store.glob("*.lock"))


def test_lock_of_a_live_process_is_waited_for_and_a_dead_ones_taken_over(tmp_path):
    import socket
    import subprocess
    import sys
    import threading
    import time

    from pnd_theory.studies.sweep_store import write_cell

    log, store = tmp_path / "calls", tmp_path / "store"
    spec = {"task": count_calls, "grid": {"value": [1, 2]}, "options": {"log": str(log)}}
    sweep(spec, client="serial", store=store, progress=False)
    first, second = sorted(store.glob("*.json"), key=lambda p: json.loads(p.read_text())["coordinates"]["value"])
    records = [json.loads(p.read_text()) for p in (first, second)]
    first.unlink()
    second.unlink()
    log.unlink()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = socket.gethostname()
        (store / f"{records[0]['key']}.lock").write_text(json.dumps({"pid": int(dead), "host": host, "time": 0}))
        (store / f"{records[1]['key']}.lock").write_text(json.dumps({"pid": alive.pid, "host": host, "time": 0}))

        def other_process_finishes():  # what the live holder does: writes its cell, then unlocks
            time.sleep(1.0)
            write_cell(store, records[1])
            (store / f"{records[1]['key']}.lock").unlink()

        finisher = threading.Thread(target=other_process_finishes)
        finisher.start()
        df = sweep(spec, client="serial", store=store, progress=False)
        finisher.join()
    finally:
        alive.kill()
        alive.wait()
    assert list(df.status) == ["done", "cached"] and list(df.square) == [1, 4]
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["1"]  # the held cell: not computed
    assert not list(store.glob("*.lock*"))
