"""One style for every figure, and atomic writes of figures and their data."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

STYLE = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "lines.linewidth": 1.8,
}

#: one colour per strategy family, shared by all figures
COLORS = {
    "Dropout": "#1f77b4",
    "DropBlock": "#ff7f0e",
    "DropConnect": "#2ca02c",
    "PerNodeDrop": "#d62728",
    "PerNodeDrop (gaussian)": "#9467bd",
    "GaussianDropout": "#8c564b",
    "NodeDropout": "#e377c2",
    "theory": "#333333",
}


def figure(nrows=1, ncols=1, width=4.2, height=3.4, **kwargs):
    """A figure with the shared style: ``width`` x ``height`` inches per panel."""
    plt.rcParams.update(STYLE)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kwargs)
    return fig, axes


def _atomic_write(path: Path, write):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give figures the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_figure(fig, out_dir, name, quick=False):
    """Write ``name.png`` and ``name.pdf`` atomically (never a half-written file); returns paths.

    A quick run (small sizes) says so in the image itself.  The file is written under the shared
    style whatever the global settings are (the resolution and the tight bounding box that takes
    in the mark), so that a figure looks the same alone and after others in one process."""
    out = Path(out_dir)
    if quick:
        # below everything (the tight bounding box takes it in), so that it covers no label
        fig.text(0.5, -0.01, "QUICK RUN (small sizes): not the full-size figure", ha="center", va="top",
                 fontsize=10, color="#b00000", fontweight="bold")
    paths = []
    for ext in ("png", "pdf"):
        path = out / f"{name}.{ext}"
        with plt.rc_context(STYLE):
            _atomic_write(path, lambda tmp, ext=ext: fig.savefig(tmp, format=ext))
        paths.append(path)
    plt.close(fig)
    return paths


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def save_data(data, out_dir, name):
    """Write the data behind a figure as ``name.json`` atomically; returns the path."""
    path = Path(out_dir) / f"{name}.json"
    text = json.dumps(_jsonable(data), indent=1, allow_nan=True)
    _atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path


@contextmanager
def one_torch_thread():
    """The figures' matrices are tiny: torch's thread pool costs more than it gives on a shared
    CPU (training measured 7x slower with 2 threads than with 1), so run single-threaded."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def write_figure(name, compute, plot, out_dir, quick=False, device=None):
    """Compute a figure's data (single-threaded torch), plot it, and write ``name.png``,
    ``name.pdf`` and ``name.json`` into ``out_dir`` atomically; returns the paths."""
    import time

    start = time.perf_counter()
    with one_torch_thread():
        data = compute(quick=quick, device=device)
    data["seconds"] = time.perf_counter() - start
    return [*save_figure(plot(data), out_dir, name, quick=quick), save_data(data, out_dir, name)]
