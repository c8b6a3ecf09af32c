r"""Figure 8: PerNodeDrop against Dropout on the 8x8 digits: accuracy and generalization gap vs p.

An MLP ``64 -> 128 -> 10`` with ReLU, trained with the cross-entropy on ``N_TRAIN`` digits
(real sampled masks, Adam) and evaluated without noise, for three ways of putting noise into
its hidden layer :math:`h = \mathrm{ReLU}(W x + b)`:

* **Dropout** (``torch.nn.Dropout(p)`` on the *inputs* of the hidden layer, then
  ``nn.Linear(64, 128)``): :math:`z_j = \sum_i W_{ji}\, m_i\, x_i + b_j` with one mask
  :math:`m_i` per input pixel and sample, shared by all 128 receiving units;
* **PerNodeDrop, stir "drop"** (``PerNodeDropLinear(64, 128, p, stir="drop")`` in place of
  the hidden ``nn.Linear``): :math:`z_j = \sum_i W_{ji}\, M_{ji}\, x_i + b_j` with an own
  Bernoulli mask :math:`M_{ji} \in \{0, 1/(1-p)\}` per connection and sample;
* **PerNodeDrop, stir "gaussian"**: the same with :math:`M_{ji} \sim N(1, p/(1-p))`.

Why Dropout on the inputs and not on the hidden units: PerNodeDrop, in the hidden layer's
linear map, masks each *incoming* signal :math:`x_i` separately at every receiving node.
Dropout on the inputs is the same mask law seen from one node: each pre-activation
:math:`z_j` has the same conditional mean :math:`(Wx)_j + b_j` and the same conditional
variance :math:`\lambda \sum_i W_{ji}^2 x_i^2` (:math:`\lambda = p/(1-p)`) under both.
The two differ only in the correlation *across* receiving nodes (one shared :math:`m_i`
against independent :math:`M_{ji}`), which is exactly PerNodeDrop's claim to difference.
Dropout on the hidden units would instead change the variance itself (:math:`\lambda h_j^2`)
and so compare two different noise levels at equal ``p``.

``p = 0`` is the plain network for all three (every module is then the plain layer, with no
sampling), so it is trained once per seed and shared by the three curves.  Each point is the
mean over ``seeds`` independent runs (different initialization, batch order and masks; the
same train/validation split) with error bars of one standard error over seeds
:math:`s / \sqrt{n_{\text{seeds}}}`.  The generalization gap is train minus validation
accuracy, computed per seed.

The runs are the cells of one :func:`pnd_theory.studies.sweeps` (:func:`train_run` each), so they
spread over the cores, and a run that is interrupted resumes from the finished ones.

Run ``python -m paper_figures.fig8_pernodedrop_digits`` (writes into ``paper_figures/``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

import pnd_theory as pt
from pnd_theory.studies.digits import accuracy, load_digits, seeded, train_network
from pnd_theory.nn import PerNodeDropLinear
from pnd_theory.studies.sweeps import checkpoint

from ._style import COLORS, figure, one_torch_thread, save_data, save_figure

NAME = "pernodedrop_digits"
METHODS = ("Dropout", "PerNodeDrop", "PerNodeDrop (gaussian)")
HIDDEN = 128
N_TRAIN = 300
SPLIT_SEED = 0
FULL = {"p": (0.0, 0.1, 0.2, 0.3, 0.5), "seeds": (0, 1, 2, 3, 4), "epochs": 60}
QUICK = {"p": (0.0, 0.5), "seeds": (0, 1), "epochs": 25}
TRAINING = {"loss": "cross_entropy", "lr": 1e-3, "batch_size": 32, "hold": 0.5}


def _network(method, p, n_in, n_out):
    if p == 0.0:
        return nn.Sequential(nn.Linear(n_in, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, n_out))
    if method == "Dropout":
        hidden = [nn.Dropout(p), nn.Linear(n_in, HIDDEN)]
    else:
        stir = "gaussian" if method == "PerNodeDrop (gaussian)" else "drop"
        hidden = [PerNodeDropLinear(n_in, HIDDEN, p, stir=stir)]
    return nn.Sequential(*hidden, nn.ReLU(), nn.Linear(HIDDEN, n_out))


def train_run(method, p, seed, epochs, device=None):
    """One cell of the figure: train the network of ``method`` ("plain" at ``p = 0``) on the
    digits split and return its training and validation accuracy and its last training loss."""
    data = load_digits(n_train=N_TRAIN, seed=SPLIT_SEED, device=device)
    device = data.X_train.device
    with seeded(seed, device):
        model = _network(method, p, data.n_features, data.n_classes).to(device)
    history = train_network(model, data.X_train, data.y_train, epochs=epochs, seed=seed, **TRAINING)
    return {
        "train": accuracy(model, data.X_train, data.y_train),
        "validation": accuracy(model, data.X_val, data.y_val),
        "final_training_loss": float(history[-1]),
    }


def _summary(values):
    values = np.asarray(values, dtype=float)
    se = values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else float("nan")
    return {"mean": float(values.mean()), "se": float(se), "per_seed": values}


def make(out_dir, quick=False, device=None, client=None):
    """Train every (method, p, seed), write PNG, PDF and JSON; return the paths.

    The runs are the cells of a :func:`pnd_theory.studies.sweeps` on ``client``: by default a
    LocalCluster with one worker per core, or this process in quick mode (its runs take about a
    second: starting worker processes would cost more than they save).  Until the figure is
    written they are kept in ``out_dir/.pernodedrop_digits.cells``, so an interrupted run
    resumes from them.
    """
    with checkpoint(Path(out_dir) / f".{NAME}.cells"), one_torch_thread():
        return _make(out_dir, quick, device, client)


def _make(out_dir, quick, device, client=None):
    cfg = QUICK if quick else FULL
    data = load_digits(n_train=N_TRAIN, seed=SPLIT_SEED, device=device)
    grid = [{"method": ["plain"], "p": [0.0], "seed": list(cfg["seeds"])},
            {"method": list(METHODS), "p": [p for p in cfg["p"] if p > 0], "seed": list(cfg["seeds"])}]
    spec = {"task": "paper_figures.fig8_pernodedrop_digits:train_run", "grid": grid,
            "options": {"epochs": cfg["epochs"], "device": None if device is None else str(device)}}
    client = client if client is not None else ("serial" if quick else None)
    table = pt.sweep(spec, client=client, progress=not quick)
    failed = table[table.status == "failed"]
    if len(failed):
        raise RuntimeError(f"{len(failed)} training runs failed; the first: {failed.error.iloc[0]}")
    raw = {(r["method"], r["p"], r["seed"]): r for r in table.to_dict("records")}
    results = {}
    for method in METHODS:
        rows = []
        for p in cfg["p"]:
            key = "plain" if p == 0.0 else method
            runs = [raw[(key, p, s)] for s in cfg["seeds"]]
            train = [r["train"] for r in runs]
            val = [r["validation"] for r in runs]
            rows.append({
                "p": p,
                "train_accuracy": _summary(train),
                "validation_accuracy": _summary(val),
                "generalization_gap": _summary(np.subtract(train, val)),
                "final_training_loss": _summary([r["final_training_loss"] for r in runs]),
            })
        results[method] = rows
    data_out = {
        "figure": NAME,
        "quick": quick,
        "n_train": data.n_train,
        "n_validation": int(data.X_val.shape[0]),
        "architecture": f"{data.n_features} -> {HIDDEN} (ReLU) -> {data.n_classes}",
        "dropout_placement": "torch.nn.Dropout on the inputs of the hidden layer",
        "pernodedrop_placement": "PerNodeDropLinear in place of the hidden nn.Linear",
        "p": list(cfg["p"]),
        "seeds": list(cfg["seeds"]),
        "epochs": cfg["epochs"],
        "training": TRAINING,
        "optimizer": "Adam",
        "split_seed": SPLIT_SEED,
        "error_bars": "standard error over seeds, std(ddof=1) / sqrt(n_seeds)",
        "results": results,
    }
    fig = _plot(results, cfg, data.n_train)
    out_dir = Path(out_dir)
    return [*save_figure(fig, out_dir, NAME, quick=quick), save_data(data_out, out_dir, NAME)]


def _plot(results, cfg, n_train):
    fig, axes = figure(1, 3, width=4.0, height=3.4)
    panels = (
        ("train_accuracy", "training accuracy (%)", "train"),
        ("validation_accuracy", "validation accuracy (%)", "validation"),
        ("generalization_gap", "train - validation accuracy (% points)", "generalization gap"),
    )
    markers = {"Dropout": "o", "PerNodeDrop": "s", "PerNodeDrop (gaussian)": "D"}
    shifts = {"Dropout": -0.008, "PerNodeDrop": 0.0, "PerNodeDrop (gaussian)": 0.008}
    for ax, (key, ylabel, title) in zip(axes[0], panels):
        for method in METHODS:
            rows = results[method]
            x = np.array([r["p"] for r in rows]) + shifts[method]
            mean = 100 * np.array([r[key]["mean"] for r in rows])
            se = 100 * np.array([r[key]["se"] for r in rows])
            label = {"Dropout": "Dropout (inputs)", "PerNodeDrop": 'PerNodeDrop "drop"',
                     "PerNodeDrop (gaussian)": 'PerNodeDrop "gaussian"'}[method]
            ax.errorbar(x, mean, yerr=se, marker=markers[method], ms=5, capsize=3, color=COLORS[method],
                        label=label)
        ax.set_xlabel("drop probability p")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.set_xticks(list(cfg["p"]))
    axes[0, 0].legend(frameon=False, loc="lower left")
    n_seeds = len(cfg["seeds"])
    fig.suptitle(f"MLP 64-128-10 on digits (N = {n_train}), Adam, mean ± s.e. over {n_seeds} seeds", y=1.02)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    for path in make(Path(__file__).resolve().parent, quick=args.quick, device=args.device):
        print(path)
