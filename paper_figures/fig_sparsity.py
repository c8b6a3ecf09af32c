r"""Activation sparsity of the hidden layers against p: Dropout and PerNodeDrop on the digits.

An MLP ``64 -> 64 -> 64 -> 10`` with ReLU, trained with the cross-entropy on ``N_TRAIN``
digits (Adam, real sampled masks, the loop of figures 7 and 8), with the noise after each
hidden ReLU:

* **Dropout**: the hidden-unit module of ``pt.Dropout(p)`` (``pnd_theory.nn.hidden_module``) on
  the ReLU outputs, then the plain next linear layer;
* **PerNodeDrop**: the next linear layer is ``PerNodeDropLinear(p)``, an own mask per
  connection and sample (the same variance at each receiving unit, independent across them).

The perplexity sparsity of each hidden ReLU layer (``pt.activation_sparsity``) is recorded at
every training step (``pt.SparsityMonitor``) and measured at the end on the validation images
in evaluation mode, beside the generalization gap (train minus validation accuracy).  Points:
mean over seeds with one standard error.

(a), (b)  final validation sparsity of hidden layers 1 and 2 against p;
(c)       generalization gap against p;
(d)       sparsity of layer 2 along training for the smallest and largest p.

Everything through the public API; this script holds no mathematics.  Writes
``sparsity.png``, ``.pdf`` and ``.json``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

import pnd_theory as pt
from pnd_theory.studies.digits import accuracy, load_digits, seeded, train_network
from pnd_theory.nn import PerNodeDropLinear, hidden_module

from ._style import COLORS, STYLE, write_figure

NAME = "sparsity"
METHODS = ("Dropout", "PerNodeDrop")
HIDDEN = 64
N_TRAIN = 300
SPLIT_SEED = 0
FULL = {"p": (0.0, 0.1, 0.3, 0.5), "seeds": (0, 1, 2), "epochs": 40}
QUICK = {"p": (0.0, 0.5), "seeds": (0, 1), "epochs": 5}
TRAINING = {"loss": "cross_entropy", "lr": 1e-3, "batch_size": 32, "hold": 0.5}


def _network(method, p, n_in, n_out):
    def after_relu(width_in, width_out):
        if p == 0.0:
            return [nn.Linear(width_in, width_out)]
        if method == "Dropout":
            return [hidden_module(pt.Dropout(p), width_in), nn.Linear(width_in, width_out)]
        return [PerNodeDropLinear(width_in, width_out, p)]
    return nn.Sequential(nn.Linear(n_in, HIDDEN), nn.ReLU(), *after_relu(HIDDEN, HIDDEN), nn.ReLU(),
                         *after_relu(HIDDEN, n_out))


def _run(data, method, p, seed, epochs):
    with seeded(seed):
        model = _network(method, p, data.n_features, data.n_classes)
    relus = [m for m in model if isinstance(m, nn.ReLU)]
    layers = {f"layer {i + 1}": m for i, m in enumerate(relus)}
    with pt.SparsityMonitor(layers) as monitor:
        train_network(model, data.X_train, data.y_train, epochs=epochs, seed=seed, **TRAINING)
    steps_per_epoch = -(-data.X_train.shape[0] // TRAINING["batch_size"])
    validation = {}
    captured = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, name=name: captured.__setitem__(name, o.detach()))
             for name, m in layers.items()]
    with torch.no_grad():
        model.eval()
        model(data.X_val)
    for h in hooks:
        h.remove()
    for name in layers:
        validation[name] = pt.activation_sparsity(captured[name])
    train_acc = accuracy(model, data.X_train, data.y_train)
    val_acc = accuracy(model, data.X_val, data.y_val)
    return {"validation_sparsity": validation, "train_accuracy": train_acc, "validation_accuracy": val_acc,
            "gap": train_acc - val_acc,
            "sparsity_per_epoch": {k: v for k, v in monitor.per_epoch(steps_per_epoch).items()}}


def _summary(values):
    values = np.asarray(values, dtype=float)
    se = values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else float("nan")
    return {"mean": float(values.mean()), "se": float(se), "per_seed": values}


def compute(quick=False, device=None):
    cfg = QUICK if quick else FULL
    data = load_digits(n_train=N_TRAIN, seed=SPLIT_SEED)
    out = {"description": "perplexity activation sparsity 1 - exp(H)/n of the hidden ReLU layers of a digits MLP, "
                          "recorded every training step and measured on the validation images at the end",
           "network": f"64 -> {HIDDEN} -> {HIDDEN} -> 10, ReLU", "n_train": N_TRAIN, "training": TRAINING,
           "config": cfg, "quick": bool(quick), "device": None if device is None else str(device), "methods": {}}
    plain = {seed: _run(data, "plain", 0.0, seed, cfg["epochs"]) for seed in cfg["seeds"]}
    for method in METHODS:
        points = []
        for p in cfg["p"]:
            runs = [plain[s] if p == 0.0 else _run(data, method, p, s, cfg["epochs"]) for s in cfg["seeds"]]
            points.append({
                "p": p,
                "validation_sparsity": {name: _summary([r["validation_sparsity"][name] for r in runs])
                                        for name in runs[0]["validation_sparsity"]},
                "gap": _summary([r["gap"] for r in runs]),
                "validation_accuracy": _summary([r["validation_accuracy"] for r in runs]),
                "sparsity_per_epoch": {name: np.mean([r["sparsity_per_epoch"][name] for r in runs], axis=0)
                                       for name in runs[0]["sparsity_per_epoch"]},
            })
        out["methods"][method] = points
    return out


def plot(data):
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 4, figsize=(17, 4.0), constrained_layout=True)
        for method in METHODS:
            pts = data["methods"][method]
            p = np.array([q["p"] for q in pts])
            color = COLORS[method]
            for ax, name in zip(axes[:2], ("layer 1", "layer 2")):
                m = np.array([q["validation_sparsity"][name]["mean"] for q in pts])
                se = np.array([q["validation_sparsity"][name]["se"] for q in pts])
                ax.errorbar(p, m, yerr=se, fmt="o-", color=color, capsize=3, label=method)
            m = np.array([q["gap"]["mean"] for q in pts])
            se = np.array([q["gap"]["se"] for q in pts])
            axes[2].errorbar(p, m, yerr=se, fmt="o-", color=color, capsize=3, label=method)
            for q, ls in ((pts[0], ":"), (pts[-1], "-")):
                curve = q["sparsity_per_epoch"]["layer 2"]
                axes[3].plot(np.arange(1, len(curve) + 1), curve, ls, color=color, label=f"{method}, p = {q['p']}")
        for ax, name in zip(axes[:2], ("hidden layer 1", "hidden layer 2")):
            ax.set_xlabel("p")
            ax.set_ylabel("sparsity 1 - exp(H)/n (validation)")
            ax.set_title(f"({'ab'[name.endswith('2')]}) {name}")
            ax.legend(frameon=False)
        axes[2].set_xlabel("p")
        axes[2].set_ylabel("train - validation accuracy")
        axes[2].set_title("(c) generalization gap")
        axes[2].legend(frameon=False)
        axes[3].set_xlabel("epoch")
        axes[3].set_ylabel("sparsity of layer 2 (training batches)")
        axes[3].set_title("(d) during training")
        axes[3].legend(frameon=False, fontsize=8)
    return fig


def make(out_dir, quick=False, device=None):
    """Train every (method, p, seed), write ``sparsity.{png,pdf,json}``; return the paths.
    The networks are small and run on the CPU (``device`` is recorded only)."""
    return write_figure(NAME, compute, plot, out_dir, quick, device)


if __name__ == "__main__":
    for p in make(Path(__file__).resolve().parent):
        print(p)
