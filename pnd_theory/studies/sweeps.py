r"""Sweeps: a grid of tasks run on Dask, each finished cell kept on disk, a table back.

A study is the Cartesian product of lists -- strategies, drop rates, widths, seeds, problems --
with one task per cell:

.. math::

    \text{cells} = \prod_{k} \text{grid}[k], \qquad
    \text{row}(c) = \big(c,\ \text{task}(c),\ \text{seconds},\ \text{status}\big).

A spec (a dict, or a TOML file with the same keys) names

* ``task``: ``"train"``, ``"global_minimizer"``, ``"induced_penalty"``, ``"monte_carlo_loss"``,
  ``"gradient_noise"``, any other public function of :mod:`pnd_theory`, or a dotted path
  ``"package.module:function"`` (a Python spec may also give the function itself);
* ``grid``: a table of lists whose product is the set of cells (or a list of such tables: the
  union of their products).  ``strategy`` holds names as ``pnd-theory --strategy`` takes them;
  the strategies' parameters (``p``, ``block_size``, ``layer``, ``stir``, ``per_sample``) go
  to each strategy that has them and are ignored (shown as missing) by one that has not.
  ``n_in``, ``n_out``, ``n_samples``, ``correlation`` and ``data`` describe the problem; every
  other key is a keyword argument of the task.  ``width`` and ``seed`` serve both;
* ``problem``: the fixed part of each cell's data, :func:`pnd_theory.random_problem`
  ``(n_in, width, n_out, n_samples, correlation, seed)``, or ``data``: a ``.npz`` file
  holding ``X`` and ``Y`` (and optionally ``U``, ``V``), its path relative to the spec file;
* ``options``: fixed keyword arguments of the task (``epochs``, ``lr``, ``samples``, ...);
* ``record`` (optional): the result names to keep.

The task's arguments are taken by name: ``strategy`` is the cell's strategy; ``U``, ``V``,
``X``, ``Y`` the problem's factors and data; ``A = U V^T``; ``second_moment = X X^T / N``;
``X_batch``, ``Y_batch`` the whole data set; ``progress`` is off.  So ``induced_penalty``
evaluates :math:`\Theta(U V^\top)` of the problem's factors, ``monte_carlo_loss`` estimates
their expected loss and ``gradient_noise`` the covariance of their full-batch gradient.

Each cell is seeded from its own coordinates: its ``seed`` (default 0) seeds the problem and
the task, and torch's and numpy's global generators are seeded from a hash of the cell while it
runs, so one spec gives the same numbers serially, on a LocalCluster or on any cluster.

Each finished cell is written at once, atomically, to ``store``: one JSON file per cell, named
by a hash of the cell's spec, the package version and the source of the code that computes it
(the package's modules and the task's module: :mod:`~pnd_theory.studies.sweep_store`), so that
changed code computes its cells again.  Running a spec again computes only the cells missing
from the store (failed cells are tried again); an interrupted run (Ctrl-C) leaves only complete
files behind; a file that is not a cell record is moved aside (``<key>.json.malformed-<n>``,
named in a warning and in ``df.attrs["malformed"]``) and its cell computed again.  A result
holding NaN or an infinity is a ``"failed"`` cell (its numbers kept, stored as standard JSON).
Two processes on one store split its cells: each claims a cell with a lock file before
computing it and waits for the cells the other holds.  A Dask cluster that has no worker (or
no scheduler) for ``worker_timeout`` seconds stops the sweep with a :class:`ConnectionError`
that says how many cells are finished and kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import inspect
import itertools
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .._validation import InvalidParameterError, check_bool, check_positive_int, invalid
from ..routes.penalty import second_moment
from ..problems import random_problem
from ..laws.strategies import STRATEGY_NAMES, strategy_from_name
from .sweep_store import (_CHECKPOINT, Claims, check_store, checkpoint, code_fingerprint, non_finite, read_cell,
                          wait_for_others, write_cell)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["sweep", "plot", "load_spec", "checkpoint", "NAMED_TASKS", "STATUSES"]

#: the tasks named in the spec without a module path, and the results each records
NAMED_TASKS = {
    "train": ("objective", "last_objective", "steps", "averaged_steps", "device"),
    "global_minimizer": ("objective", "data_fit", "penalty", "rank", "method"),
    "induced_penalty": ("induced_penalty",),
    "monte_carlo_loss": ("estimate", "standard_error"),
    "gradient_noise": ("trace", "trace_per_sample", "trace_per_batch", "per_sample", "batch_size", "method"),
}
STATUSES = ("done", "cached", "failed")
SPEC_KEYS = ("task", "grid", "problem", "options", "record")
PROBLEM_KEYS = ("n_in", "n_out", "n_samples", "correlation", "data")
#: parameters every strategy of ``STRATEGY_NAMES`` may have; a strategy takes its own ``fields``
STRATEGY_FIELDS = tuple(dict.fromkeys(f for cls in STRATEGY_NAMES.values() for f in cls.fields))
#: task arguments filled from the cell's strategy and problem when the spec does not give them
CONTEXT = ("strategy", "U", "V", "X", "Y", "A", "second_moment", "X_batch", "Y_batch")


# --------------------------------------------------------------------------- the spec

def load_spec(spec) -> dict:
    """The spec as a dict: a mapping is copied; a path is read as TOML (``tomllib``).

    Relative ``data`` paths are resolved against the TOML file's folder.
    """
    if isinstance(spec, Mapping):
        return {"_base": Path.cwd(), **dict(spec)}
    if not isinstance(spec, (str, os.PathLike)):
        raise invalid("spec", "a dict or the path of a TOML file", spec)
    path = Path(spec)
    try:
        text = path.read_text()
    except OSError as err:
        raise InvalidParameterError(f"spec file {str(path)!r} cannot be read: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise InvalidParameterError(f"spec file {str(path)!r} is not valid TOML: it is not UTF-8 text") from None
    try:
        loaded = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InvalidParameterError(f"spec file {str(path)!r} is not valid TOML: {err}") from None
    return {"_base": path.resolve().parent, **loaded}


def _task_function(task):
    """``(function, reference)``: a callable, ``"module:function"``, or a public name of pnd_theory."""
    if callable(task):
        return task, f"{task.__module__}:{task.__qualname__}"
    if not isinstance(task, str) or not task:
        raise invalid("task", f"one of {', '.join(NAMED_TASKS)}, a public function of pnd_theory, "
                              "or 'module:function'", task)
    module_name, _, name = task.rpartition(":") if ":" in task else ("pnd_theory", None, task)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise InvalidParameterError(f"task {task!r}: module {module_name!r} cannot be imported ({err})") from None
    if module_name == "pnd_theory" and name not in getattr(module, "__all__", ()):
        raise invalid("task", f"one of {', '.join(NAMED_TASKS)}, a public function of pnd_theory "
                              "(pnd_theory.__all__), or 'module:function'", task)
    function = module
    for part in name.split("."):
        function = getattr(function, part, None)
    if not callable(function):
        raise InvalidParameterError(f"task {task!r}: {module_name} has no function {name!r}")
    return function, task


def _grids(grid):
    tables = [grid] if isinstance(grid, Mapping) else grid
    if not isinstance(tables, Sequence) or isinstance(tables, str) or not tables or not all(
            isinstance(t, Mapping) for t in tables):
        raise invalid("grid", "a table of lists (or a list of such tables)", grid)
    out = []
    for table in tables:
        lists = {}
        for key, values in table.items():
            values = list(values) if isinstance(values, (list, tuple)) else [values]
            if not values:
                raise InvalidParameterError(f"grid {key!r} is an empty list: give at least one value")
            lists[str(key)] = values
        out.append(lists)
    return out


def _plain(value):
    """JSON-able plain Python values (numpy and torch scalars and arrays become floats and lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def _digest(obj) -> str:
    text = json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _version() -> str:
    try:
        return importlib.metadata.version("pnd-theory")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        return "unknown"


def _load_data(path, base):
    path = Path(path)
    path = path if path.is_absolute() else Path(base) / path
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: np.asarray(archive[k], dtype=float) for k in ("X", "Y", "U", "V") if k in archive}
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except (OSError, ValueError) as err:
        raise InvalidParameterError(f"data {str(path)!r} cannot be read as a .npz file: {err}") from None
    if "X" not in arrays or "Y" not in arrays:
        raise InvalidParameterError(f"data {str(path)!r} must hold arrays X and Y; it has {sorted(arrays)}")
    return arrays, digest


class _Plan:
    """The cells of a spec, each ready to send to a worker and keyed by its hash."""

    def __init__(self, spec):
        spec = load_spec(spec)
        base = spec.pop("_base")
        unknown = sorted(set(spec) - set(SPEC_KEYS))
        if unknown:
            raise InvalidParameterError(f"spec key {unknown[0]!r} is not known; a spec has {', '.join(SPEC_KEYS)}")
        if "task" not in spec or "grid" not in spec:
            raise InvalidParameterError("a spec needs a task and a grid, e.g. task = \"global_minimizer\" "
                                        "and [grid] with lists of strategies, p, widths, seeds")
        self.function, self.task = _task_function(spec["task"])
        self.given_function = callable(spec["task"])  # shipped to the workers as it is
        self.name = self.task.rpartition(":")[2]
        grids = _grids(spec["grid"])
        self.problem = dict(spec.get("problem", {}))
        self.options = dict(spec.get("options", {}))
        record = spec.get("record", NAMED_TASKS.get(self.task))
        self.record = None if record is None else [str(r) for r in record]
        for key in self.problem:
            if key not in PROBLEM_KEYS + ("width", "seed"):
                raise InvalidParameterError(f"problem key {key!r} is not known; a problem has "
                                            f"{', '.join(PROBLEM_KEYS)} (and width, seed)")
        signature = inspect.signature(self.function)
        self.parameters = signature.parameters
        self.any_keyword = any(p.kind is p.VAR_KEYWORD for p in self.parameters.values())
        self.columns = list(dict.fromkeys(k for g in grids for k in g))
        self.base = base
        self.version = _version()
        self.code = code_fingerprint(self.function)
        self._data = {}
        seen, self.cells = set(), []
        for lists in grids:
            keys = list(lists)
            for values in itertools.product(*(lists[k] for k in keys)):
                cell = self._cell(dict(zip(keys, values)))
                if cell["key"] not in seen:
                    seen.add(cell["key"])
                    self.cells.append(cell)

    def _takes(self, name):
        return name in self.parameters or self.any_keyword

    def _cell(self, coordinates):
        values = {**self.options, **coordinates}
        strategy = None
        if "strategy" in values:
            name = values["strategy"]
            if name not in STRATEGY_NAMES:
                raise invalid("strategy", f"one of {', '.join(STRATEGY_NAMES)}", name)
            fields = STRATEGY_NAMES[name].fields
            strategy = {"name": name, **{f: values[f] for f in fields if f in values}}
            # a strategy ignores a parameter it does not have: the row shows it as missing
            coordinates = {k: (None if k in STRATEGY_FIELDS and k not in fields else v)
                           for k, v in coordinates.items()}
            values = {k: v for k, v in values.items() if k != "strategy" and k not in STRATEGY_FIELDS}
        problem = {**self.problem, **{k: values.pop(k) for k in PROBLEM_KEYS if k in values}}
        for k in ("width", "seed"):
            if k in values:
                problem[k] = values[k] if self._takes(k) else values.pop(k)
        kwargs = {}
        for k, v in values.items():
            if not self._takes(k):
                raise InvalidParameterError(
                    f"{k!r} is not an argument of task {self.task!r}; it takes "
                    f"{', '.join(self.parameters)}")
            kwargs[k] = v
        needed = [p.name for p in self.parameters.values()
                  if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                  and p.name not in kwargs]
        uses_problem = any(n in self.parameters and n not in kwargs for n in CONTEXT[1:])
        for n in needed:
            if n == "strategy" and strategy is None:
                raise InvalidParameterError(f"task {self.task!r} needs a strategy: give [grid] strategy = [...]")
            if n not in CONTEXT:
                raise InvalidParameterError(f"task {self.task!r} needs {n!r}: give it in [grid] or [options]")
        digest = None
        if uses_problem and "data" in problem:
            path = str(problem["data"])
            if path not in self._data:
                self._data[path] = _load_data(path, self.base)
            digest = self._data[path][1]
        cell = {"task": self.task, "coordinates": coordinates, "strategy": strategy,
                "problem": problem if uses_problem else None, "data": digest, "kwargs": kwargs,
                "record": self.record}
        cell["seed"] = int(_digest(cell)[:8], 16)
        cell["key"] = _digest({**cell, "version": self.version, "code": self.code})[:32]
        return cell

    def payload(self, cell):
        """What a worker needs: the cell, the task, and the data arrays of a data-file problem."""
        arrays = None
        if cell["problem"] is not None and "data" in cell["problem"]:
            arrays = self._data[str(cell["problem"]["data"])][0]
        return {**cell, "task": self.function if self.given_function else self.task, "arrays": arrays}


# --------------------------------------------------------------------------- one cell (runs on a worker)

def _problem(problem, arrays):
    if arrays is not None:
        X, Y = arrays["X"], arrays["Y"]
        if "U" in arrays and "V" in arrays:
            return arrays["U"], arrays["V"], X, Y
        U, V, _, _ = random_problem(X.shape[0], problem.get("width", 4), Y.shape[0], X.shape[1],
                                    seed=problem.get("seed", 0))
        return U, V, X, Y
    keys = ("n_in", "width", "n_out", "n_samples", "correlation", "seed")
    return random_problem(**{k: problem[k] for k in keys if k in problem})


def _results(name, record, value):
    """The task's result as a flat dict of plain values, named by ``record`` when given."""
    if isinstance(value, Mapping):
        out = dict(value)
    elif isinstance(value, tuple) and not hasattr(value, "_fields"):
        names = record if record and len(record) == len(value) else [f"value_{i}" for i in range(len(value))]
        out = dict(zip(names, value))
    elif hasattr(value, "__dataclass_fields__") or hasattr(value, "_fields"):
        names = record or list(getattr(value, "_fields", None) or value.__dataclass_fields__)
        out = {k: getattr(value, k) for k in names if hasattr(value, k)}
    else:
        out = {name: value}
    out = {k: _plain(v) for k, v in out.items()}
    if record:
        missing = [r for r in record if r not in out]
        if missing:
            raise InvalidParameterError(f"the result of {name} has no {missing[0]!r}; it has {', '.join(out)}")
        return {r: out[r] for r in record}
    return {k: v for k, v in out.items() if isinstance(v, (bool, int, float, str, list, type(None)))}


@contextlib.contextmanager
def _seeded_one_thread(seed):
    """Torch's and numpy's global generators seeded with ``seed`` and one torch thread inside;
    the caller's state is restored after (the same numbers whichever process runs the cell)."""
    threads = torch.get_num_threads()
    state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            torch.set_num_threads(1)
            yield
    finally:
        torch.set_num_threads(threads)
        np.random.set_state(state)


def run_cell(payload) -> dict:
    """Run one cell (as sent by :func:`sweep`) and return its record; a raising task is a
    ``"failed"`` record holding the error, never an exception."""
    start = time.perf_counter()
    record = {"key": payload["key"], "task": payload["task"] if isinstance(payload["task"], str)
              else f"{payload['task'].__module__}:{payload['task'].__qualname__}",
              "coordinates": payload["coordinates"], "version": _version()}
    try:
        function, _ = _task_function(payload["task"])
        name = record["task"].rpartition(":")[2]
        kwargs = dict(payload["kwargs"])
        parameters = inspect.signature(function).parameters
        context = {}
        if payload["strategy"] is not None:
            spec = dict(payload["strategy"])
            context["strategy"] = strategy_from_name(spec.pop("name"), **spec)
        if payload["problem"] is not None:
            U, V, X, Y = _problem(payload["problem"], payload["arrays"])
            context.update(U=U, V=V, X=X, Y=Y, A=U @ V.T, second_moment=second_moment(X), X_batch=X, Y_batch=Y)
        for key, value in context.items():
            if key in parameters and key not in kwargs:
                kwargs[key] = value
        if "progress" in parameters and "progress" not in kwargs:
            kwargs["progress"] = False
        with _seeded_one_thread(payload["seed"]):
            value = function(**kwargs)
        results = _results(name, payload["record"], value)
        try:
            json.dumps(results, allow_nan=True)
        except (TypeError, ValueError) as err:
            raise InvalidParameterError(f"the result of {name} cannot be stored as JSON ({err}); return numbers, "
                                        "strings, lists or dicts of them") from None
        bad = non_finite(results)
        if bad:
            shown = ", ".join(f"{k} = {v if isinstance(v, float) else 'a list holding NaN or inf'}" for k, v in bad)
            record.update(results=results, status="failed",
                          error=f"non-finite result: {shown} (kept in the row, not served from the store)")
        else:
            record.update(results=results, status="done", error="")
    except Exception as err:  # a failing cell is recorded, the others go on
        record.update(results={}, status="failed", error=f"{type(err).__name__}: {err}")
    record["seconds"] = time.perf_counter() - start
    return record


# --------------------------------------------------------------------------- the store

# --------------------------------------------------------------------------- execution

def _cpus():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextlib.contextmanager
def _dask_client(client, n_cells, workers):
    """The client to use: the one given, a scheduler address, the current default client, or
    a LocalCluster of one-thread processes sized to the machine (closed at the end)."""
    from dask.distributed import Client, LocalCluster, default_client  # importing distributed costs about a second

    if isinstance(client, str):
        try:
            own = Client(client, timeout="20s")
        except (OSError, TimeoutError) as err:
            raise InvalidParameterError(f"cannot reach the Dask scheduler at {client!r}: {err}") from None
        try:
            yield own
        finally:
            own.close()
        return
    if client is not None:
        if not hasattr(client, "submit"):
            raise invalid("client", "a dask.distributed Client, a scheduler address, 'serial' or None", client)
        yield client
        return
    current = None
    if workers is None:
        with contextlib.suppress(ValueError):
            current = default_client()
    if current is not None:
        yield current
        return
    n = min(workers or _cpus(), n_cells)
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as own:
        yield own


def _failed_by_dask(cell, error):
    return {"key": cell["key"], "task": cell["task"],
            "coordinates": cell["coordinates"], "version": _version(), "results": {}, "status": "failed",
            "error": f"{type(error).__name__}: {error}", "seconds": None}


def _cluster_state(dask_client):
    """``None`` while the cluster can run cells, else what is wrong with it."""
    if dask_client.status not in ("running", "newly-created"):
        return f"the client lost its Dask scheduler (client status {dask_client.status!r})"
    try:
        workers = dask_client.nthreads()
    except Exception as err:  # a dead scheduler answers with any of several comm errors
        return f"the Dask scheduler does not answer ({type(err).__name__}: {err})"
    return None if workers else "the Dask cluster has no worker"


def _run_dask(plan, mine, client, workers, retries, finish, worker_timeout):
    from dask.distributed import as_completed

    with _dask_client(client, len(mine), workers) as dask_client:
        def submit(cell, attempt):
            return dask_client.submit(run_cell, plan.payload(cell), key=f"pnd-cell-{cell['key']}-{attempt}",
                                      retries=retries)

        futures = {submit(cell, 0): (cell, 0) for cell in mine}
        queue = as_completed(list(futures))
        trouble_since, checked = None, time.monotonic()
        try:
            while not queue.is_empty():
                batch = queue.next_batch(block=False)
                if not batch:
                    time.sleep(0.05)
                    if time.monotonic() - checked >= min(1.0, worker_timeout / 4):
                        checked = time.monotonic()
                        trouble = _cluster_state(dask_client)
                        trouble_since = None if trouble is None else (trouble_since or checked)
                        if trouble is not None and checked - trouble_since >= worker_timeout:
                            raise ConnectionError(
                                f"{trouble} for {worker_timeout:g} s: {len(mine) - len(futures)} of {len(mine)} "
                                f"cells finished and kept in the store, {len(futures)} not run; start workers "
                                "(or another cluster) and run the sweep again to compute only those")
                    continue
                trouble_since = None
                for future in batch:
                    cell, attempt = futures.pop(future)
                    if future.status == "finished":
                        finish(future.result())
                        continue
                    # a worker died or was restarted under this cell: run it again elsewhere
                    error = future.exception() if future.status == "error" else RuntimeError("cancelled")
                    if attempt < retries:
                        new = submit(cell, attempt + 1)
                        futures[new] = (cell, attempt + 1)
                        queue.add(new)
                    else:
                        finish(_failed_by_dask(cell, error))
        finally:
            for future in futures:
                future.cancel()


def _claim(cells, claims, found):
    """``(mine, waiting)``: the cells this process now holds, and those another process holds
    (a cell finished meanwhile by another process is taken from the store)."""
    mine, waiting = [], []
    for cell in cells:
        if not claims.claim(cell["key"]):
            waiting.append(cell)
        elif found(cell, None):
            claims.release(cell["key"])
        else:
            mine.append(cell)
    return mine, waiting


def sweep(spec, client=None, store=None, progress=True, *, workers=None, retries=3,
          worker_timeout=60.0) -> pd.DataFrame:
    r"""Run every cell of a study and return one row per cell.

    .. math::

        \text{rows} = \{(c, \text{task}(c)) : c \in \prod_k \text{grid}[k]\}

    Parameters
    ----------
    spec : dict or path
        The study: ``task`` (a public function's name, a dotted ``"package.module:function"``
        or the function), ``grid`` (lists whose product is the set of cells), ``problem`` (the
        fixed part of each cell's data, or ``data``: a ``.npz`` file), ``options`` (fixed keyword
        arguments of the task) and ``record`` (the result names to keep); a path is read as TOML.
    client : None, "serial", str or dask.distributed.Client
        ``None``: the current Dask client if there is one, else a ``LocalCluster`` of
        one-thread worker processes, one per core (at most one per missing cell), closed at the
        end.  ``"serial"``: every cell in this process, in order.  A string such as
        ``"tcp://host:8786"``: the scheduler at that address.  A client: that client.
    store : path, optional
        Folder of the result store (created if needed, and refused before any work when it
        cannot be written): one JSON file per cell.  Cells already there are read, not
        computed; cells another process is computing are waited for.  ``None``: the folder of
        the enclosing :func:`checkpoint` block, else nothing is kept.
    progress : bool
        A progress bar over the cells (done, failed, remaining).
    workers : int, optional
        Size of the LocalCluster started when ``client`` is None.
    retries : int
        How many times a cell is sent again when its worker dies or is restarted (Dask's
        ``retries`` for the task itself).
    worker_timeout : float
        Seconds the Dask cluster may have no worker (or no answering scheduler) before the
        sweep stops with a :class:`ConnectionError`; the finished cells stay in the store.

    Returns
    -------
    pandas.DataFrame
        The grid columns, the task's results, ``seconds`` (of the computation, also for cached
        cells), ``status`` (``"done"``, ``"cached"`` or ``"failed"``) and ``error`` (the
        failed cell's exception, or the names of its non-finite results, else empty).
        ``df.attrs`` holds the task, the grid columns, the store and ``malformed``: the files
        moved aside.

    Examples
    --------
    Two strategies by two widths, the induced regularizer of each cell's random factors, run
    in this process:

    >>> import pnd_theory as pt
    >>> spec = {"task": "induced_penalty",
    ...         "grid": {"strategy": ["dropout", "dropblock"], "width": [2, 4], "block_size": [2]},
    ...         "problem": {"n_in": 3, "n_out": 2, "n_samples": 8}}
    >>> table = pt.sweep(spec, client="serial", progress=False)
    >>> table[["strategy", "width", "induced_penalty", "status"]].round(4)
        strategy  width  induced_penalty status
    0    dropout      2           0.6192   done
    1    dropout      4           1.9131   done
    2  dropblock      2           0.8202   done
    3  dropblock      4           3.7620   done
    """
    plan = _Plan(spec)
    progress = check_bool("progress", progress)
    retries = int(retries) if isinstance(retries, (int, np.integer)) and retries >= 0 else None
    if retries is None:
        raise invalid("retries", "an integer >= 0", retries)
    if workers is not None:
        workers = check_positive_int("workers", workers)
    if isinstance(worker_timeout, bool) or not isinstance(worker_timeout, (int, float, np.integer, np.floating)) \
            or not 0 < worker_timeout < float("inf"):
        raise invalid("worker_timeout", "a finite number of seconds > 0", worker_timeout)
    worker_timeout = float(worker_timeout)
    store = _CHECKPOINT.get() if store is None else store
    store = None if store is None else check_store(store)
    records, malformed, claims = {}, [], Claims(store)
    counts = {"done": 0, "failed": 0, "cached": 0}

    def found(cell, accept):
        """Take the stored record of ``cell`` (``done`` ones; any status when ``accept``)."""
        record, moved = read_cell(store, cell["key"])
        if moved is not None:
            malformed.append(str(moved))
            warnings.warn(f"sweep: the store's file for cell {cell['coordinates']} was not a cell record; "
                          f"kept aside as {moved} and the cell is computed again", RuntimeWarning, stacklevel=3)
        if record is None or (record["status"] != "done" and accept is None):
            return False
        records[cell["key"]] = {**record, "status": "cached" if record["status"] == "done" else "failed"}
        counts["cached" if record["status"] == "done" else "failed"] += 1
        bar.update(1)
        return True

    bar = tqdm(total=len(plan.cells), desc=f"sweep {plan.name}", unit="cell", disable=not progress,
               dynamic_ncols=True)
    todo = [cell for cell in plan.cells if not found(cell, None)]

    def finish(record):
        write_cell(store, record)
        claims.release(record["key"])
        records[record["key"]] = record
        counts[record["status"]] += 1
        bar.update(1)
        bar.set_postfix(**counts, remaining=len(plan.cells) - len(records), refresh=False)

    waiting = []
    try:
        while todo or waiting:
            if isinstance(client, str) and client == "serial":
                for cell in todo:  # each claimed just before it runs: two serial runs share the work
                    mine, held = _claim([cell], claims, found)
                    waiting += held
                    if mine:
                        finish(run_cell(plan.payload(cell)))
            elif todo:
                mine, held = _claim(todo, claims, found)
                waiting += held
                if mine:
                    _run_dask(plan, mine, client, workers, retries, finish, worker_timeout)
            todo, waiting = wait_for_others(waiting, claims, found, bar)
    finally:
        claims.release_all()
        bar.close()
    return _table(plan, records, store, malformed)


def _table(plan, records, store, malformed=()):
    rows = []
    for cell in plan.cells:
        r = records[cell["key"]]
        rows.append({**cell["coordinates"], **r.get("results", {}), "seconds": r.get("seconds"),
                     "status": r["status"], "error": r.get("error", "")})
    df = pd.DataFrame(rows)
    for column in plan.columns:  # integers with gaps (a field some strategy ignores) stay integers
        present = [row[column] for row in rows if row.get(column) is not None]
        if len(present) < len(rows) and present and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in present):
            df[column] = pd.array([row.get(column) for row in rows], dtype="Int64")
    df.attrs.update(task=plan.task if isinstance(plan.task, str) else repr(plan.task), grid=plan.columns,
                    store=None if store is None else str(store), malformed=list(malformed))
    return df


# --------------------------------------------------------------------------- plotting

def plot(df, x, y, hue="strategy", over="seed", ax=None, **errorbar):
    r"""A metric against a parameter, one line per ``hue``, error bars over ``over``.

    .. math::

        \bar y(x) = \frac1n \sum_{s} y(x, s), \qquad
        \mathrm{se}(x) = \frac{\mathrm{sd}_s\, y(x, s)}{\sqrt n}

    Parameters
    ----------
    df : pandas.DataFrame
        A table from :func:`sweep` (cells that failed are left out).
    x, y : str
        Columns: the parameter and the metric.
    hue : str or None
        One line per value of this column (``None``: one line).
    over : str
        The column the error bars run over (one standard error, ``ddof=1``).  Every other grid
        column must hold one value: select a slice first (``df[df.width == 8]``).
    ax : matplotlib Axes, optional
    **errorbar
        Passed to ``Axes.errorbar``.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> import pnd_theory as pt
    >>> df = pd.DataFrame({"p": [0.1, 0.1, 0.5, 0.5], "seed": [0, 1, 0, 1], "objective": [1.0, 1.2, 2.0, 2.4]})
    >>> pt.sweep_plot(df, x="p", y="objective", hue=None).lines[0].get_ydata()  # the means over seeds
    array([1.1, 2.2])
    """
    import matplotlib.pyplot as plt  # plotting is optional: pyplot only when a plot is asked for

    if not isinstance(df, pd.DataFrame):
        raise invalid("df", "a pandas DataFrame from pnd_theory.studies.sweeps", df)
    for name in (x, y) + ((hue,) if hue is not None else ()):
        if name not in df.columns:
            raise invalid(f"column {name!r}", f"one of {', '.join(map(str, df.columns))}", name)
    ok = df[df["status"] != "failed"] if "status" in df.columns else df
    grid = [c for c in df.attrs.get("grid", ()) if c not in (x, hue, over) and c in ok.columns]
    for column in grid:
        if ok[column].nunique(dropna=True) > 1:
            values = sorted(ok[column].dropna().unique())
            raise InvalidParameterError(f"column {column!r} holds several values {values}; select one before "
                                        f"plotting (e.g. df[df[{column!r}] == ...])")
    if ax is None:
        _, ax = plt.subplots()
    groups = [(None, ok)] if hue is None else list(ok.groupby(hue, sort=False, dropna=False))
    for label, part in groups:
        stats = part.groupby(x, sort=True)[y].agg(["mean", "std", "count"])
        se = (stats["std"] / np.sqrt(stats["count"])).where(stats["count"] > 1, 0.0)
        ax.errorbar(stats.index.to_numpy(), stats["mean"].to_numpy(), yerr=se.to_numpy(),
                    label=None if hue is None else str(label), **{"marker": "o", "capsize": 3, **errorbar})
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if hue is not None:
        ax.legend(title=hue, frameon=False)
    return ax
