r"""The result store of a sweep: one JSON file per cell, keyed by the cell and the code.

* A cell's key hashes its spec, the package version and :func:`code_fingerprint`: the source of
  every module of the package and of the module that holds the task, so that a changed package
  or a changed task computes its cells again instead of serving old results;
* :func:`check_store` creates the folder and writes a probe file before any work is done;
* :func:`read_cell` reads a finished cell; a file that is not a cell record (invalid JSON,
  ``[]``, ``null``, a record of another key) is moved aside to ``<key>.json.malformed-<n>``
  and the cell is computed again;
* :func:`write_cell` writes atomically (a temporary file renamed) and always standard JSON:
  non-finite numbers are stored as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
* :class:`Claims`: a lock file ``<key>.lock`` per cell, created exclusively (``O_EXCL``) by
  the process that computes the cell, so that two processes on one store never compute the
  same cell; a lock whose process has died on this machine is stale and taken over.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import inspect
import json
import math
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from .._validation import InvalidParameterError

__all__ = ["code_fingerprint", "check_store", "read_cell", "write_cell", "non_finite", "Claims", "wait_for_others",
           "checkpoint"]

#: the package's folder: its ``.py`` files are part of every cell's key
PACKAGE = Path(__file__).resolve().parents[1]
#: statuses a stored record may have
STORED = ("done", "failed")


def _package_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _task_source(function) -> bytes:
    """The source of the module holding ``function`` (read from its file now), else of the
    function, else its compiled code."""
    module = sys.modules.get(getattr(function, "__module__", None) or "")
    path = getattr(module, "__file__", None)
    if path and str(path).endswith(".py"):
        with contextlib.suppress(OSError):
            return Path(path).read_bytes()
    with contextlib.suppress(OSError, TypeError):
        return inspect.getsource(function).encode()
    code = getattr(function, "__code__", None)
    if code is not None:
        return code.co_code + repr(code.co_consts).encode()
    return repr(function).encode()


def code_fingerprint(function) -> str:
    """Hash of the package's source and of the task's module source (32 hex digits)."""
    digest = hashlib.sha256(_package_digest().encode())
    if not (getattr(function, "__module__", "") or "").startswith("pnd_theory"):
        digest.update(_task_source(function))
    return digest.hexdigest()[:32]


def check_store(store) -> Path:
    """The store's folder, created if needed and proven writable before any cell is computed."""
    store = Path(store)
    try:
        store.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=store, prefix=".probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise InvalidParameterError(f"store {str(store)!r} is not a writable folder: "
                                    f"{err.strerror or err}; give a folder this process can write") from None
    return store


def _aside(path: Path) -> Path:
    for n in range(1, 10_000):
        target = path.with_name(f"{path.name}.malformed-{n}")
        if not target.exists():
            break
    os.replace(path, target)
    return target


def _valid(record, key) -> bool:
    return (isinstance(record, dict) and record.get("key") == key and record.get("status") in STORED
            and isinstance(record.get("results", {}), dict) and isinstance(record.get("coordinates", {}), dict))


def read_cell(store, key):
    """``(record, moved)``: the stored record of ``key`` (``None`` when there is none) and the
    path a malformed file was moved to (``None`` when there was none)."""
    if store is None:
        return None, None
    path = Path(store) / f"{key}.json"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, None
    except OSError:
        return None, None
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if _valid(record, key):
        return record, None
    try:
        return None, _aside(path)
    except OSError:  # another process moved or replaced it first
        return None, None


def _finite_json(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value


def non_finite(results) -> list:
    """``(name, value)`` of each result that holds NaN or an infinity (in a list: its first)."""
    def bad(v):
        if isinstance(v, float):
            return not math.isfinite(v)
        if isinstance(v, (list, tuple)):
            return any(bad(x) for x in v)
        if isinstance(v, dict):
            return any(bad(x) for x in v.values())
        return False
    return [(k, v) for k, v in results.items() if bad(v)]


def write_cell(store, record):
    """One JSON file per cell, written to a temporary file and renamed: never half a file."""
    if store is None:
        return
    fd, tmp = tempfile.mkstemp(dir=store, prefix=f".{record['key']}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_finite_json(record), f, indent=1, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, Path(store) / f"{record['key']}.json")
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OverflowError):
        return True
    return True


class Claims:
    """The lock files of the cells this process computes (``<key>.lock`` in the store).

    A lock holds the owner's pid, host and start time.  Another process's lock is respected
    while that process lives; on this machine a dead owner's lock is stale and taken over (a
    lock from another machine is kept: remove it by hand if that machine's run is gone).
    """

    def __init__(self, store):
        self.store = None if store is None else Path(store)
        self.held = set()
        self.host = socket.gethostname()

    def _path(self, key):
        return self.store / f"{key}.lock"

    def claim(self, key) -> bool:
        """Create ``key``'s lock; ``False`` when another live process holds it."""
        if self.store is None:
            return True
        if key in self.held:
            return True
        for _ in range(2):
            try:
                fd = os.open(self._path(key), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._take_stale(key):
                    return False
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid(), "host": self.host, "time": time.time()}, f)
            self.held.add(key)
            return True
        return False

    def holder(self, key):
        """The lock's content (``{}`` when it cannot be read yet), ``None`` when there is no lock."""
        try:
            text = self._path(key).read_text()
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        try:
            info = json.loads(text)
        except ValueError:
            return {}
        return info if isinstance(info, dict) else {}

    def stale(self, key) -> bool:
        info = self.holder(key)
        if info is None:
            return False
        if not info:  # being written, or garbage: stale once it is old
            with contextlib.suppress(OSError):
                return time.time() - self._path(key).stat().st_mtime > 30
            return False
        return info.get("host") == self.host and not _alive(info.get("pid"))

    def _take_stale(self, key) -> bool:
        if not self.stale(key):
            return False
        with contextlib.suppress(OSError):
            os.replace(self._path(key), self._path(key).with_name(f"{key}.lock.stale-{os.getpid()}"))
            os.unlink(self._path(key).with_name(f"{key}.lock.stale-{os.getpid()}"))
        return True

    def release(self, key):
        if self.store is None or key not in self.held:
            return
        self.held.discard(key)
        with contextlib.suppress(OSError):
            os.unlink(self._path(key))

    def release_all(self):
        for key in list(self.held):
            self.release(key)


def wait_for_others(waiting, claims, found, bar):
    """Wait until the other processes finish the cells they hold; the cells whose lock went
    away without a result (or whose owner died) are returned to be computed here."""
    shown = False
    while waiting:
        free = []
        for cell in list(waiting):
            if found(cell, "any"):
                waiting.remove(cell)
            elif claims.holder(cell["key"]) is None or claims.stale(cell["key"]):
                free.append(cell)
        if free:
            return free, [c for c in waiting if c not in free]
        if waiting and not shown:
            holder = claims.holder(waiting[0]["key"]) or {}
            bar.write(f"sweep: {len(waiting)} cells are being computed by another process "
                      f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')}); waiting for them")
            shown = True
        time.sleep(0.2)
    return [], []


_CHECKPOINT = contextvars.ContextVar("pnd_theory_sweep_checkpoint", default=None)


@contextlib.contextmanager
def checkpoint(path):
    """A store that lives until the block ends: every :func:`sweep` inside the block that is
    given no ``store`` keeps its cells in ``path``; a run interrupted inside the block (Ctrl-C,
    a crash) resumes from them next time; a block that finishes removes the folder.

    >>> with checkpoint("out/.study"):          # doctest: +SKIP
    ...     table = pt.sweep(spec)              # resumable until the block is done
    """
    path = Path(path)
    token = _CHECKPOINT.set(path)
    try:
        yield path
    finally:
        _CHECKPOINT.reset(token)
    shutil.rmtree(path, ignore_errors=True)
