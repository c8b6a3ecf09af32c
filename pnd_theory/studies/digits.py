r"""A small real data set (scikit-learn's 8x8 digits) and the MLP training loop the figures share.

.. math::

    x \mapsto \frac{x - \mu_{\text{train}}}{\sigma_{\text{train}}} \in \mathbb{R}^{64}, \qquad
    y \mapsto e_y \in \{0, 1\}^{10}

:func:`load_digits` returns standardized train and validation tensors (samples as **rows**, the
torch convention; transpose for the ``(n_in, N)`` convention of the closed forms) with one-hot
targets.  The 1797 images ship with scikit-learn (no download); scikit-learn is the optional
extra ``pip install "pnd-theory[data]"``.

:func:`train_network` fits any ``torch.nn.Module`` with real sampled masks (the modules of
:mod:`pnd_theory.nn` or :class:`torch.nn.Dropout`) by Adam, on either

* the squared loss of the package, :math:`\frac1B \sum_{k} \|y_k - f(x_k)\|^2` (mean over
  samples, sum over outputs, no 1/2), or
* the cross-entropy :math:`-\frac1B \sum_k \log \operatorname{softmax}(f(x_k))_{y_k}`,

with the learning rate held for a fraction of the run and then decayed linearly to zero (the
mask noise makes the gradient noisy; a vanishing step lets the iterates settle), and
:func:`accuracy` evaluates a classifier in eval mode (no noise: every mask has mean 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from .._validation import InvalidParameterError, resolve_device

__all__ = ["Digits", "load_digits", "train_network", "accuracy", "seeded", "LOSSES", "N_DIGITS", "N_VALIDATION"]

#: number of images in scikit-learn's digits data set
N_DIGITS = 1797
#: default size of the validation split (a third of the images)
N_VALIDATION = 597
#: losses understood by :func:`train_network`
LOSSES = ("squared", "cross_entropy")

_EXTRA = 'pip install "pnd-theory[data]"'


@dataclass(frozen=True)
class Digits:
    r"""Standardized 8x8 digits: ``X`` (samples as rows), one-hot ``Y`` and integer labels ``y``.

    Attributes
    ----------
    X_train, X_val : Tensor (n, 64)
        :math:`(x - \mu) / \sigma` with :math:`\mu, \sigma` the per-pixel mean and standard
        deviation of the **training** images (:math:`\sigma = 1` for pixels constant there).
    Y_train, Y_val : Tensor (n, 10)
        One-hot targets.
    y_train, y_val : Tensor (n,) int64
        Class labels 0..9.
    mean, scale : numpy.ndarray (64,)
        :math:`\mu` and :math:`\sigma`.
    """

    X_train: Tensor
    Y_train: Tensor
    y_train: Tensor
    X_val: Tensor
    Y_val: Tensor
    y_val: Tensor
    mean: np.ndarray
    scale: np.ndarray

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return int(self.Y_train.shape[1])

    def class_counts(self) -> np.ndarray:
        """Number of training samples of each class."""
        return np.bincount(self.y_train.cpu().numpy(), minlength=self.n_classes)


def _sklearn_digits():
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "pnd_theory.studies.digits.load_digits needs scikit-learn (it ships the 8x8 digits images); "
            f"install the optional extra: {_EXTRA}"
        ) from err
    bunch = _load()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)


def _check_int(name, value, low, high):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise InvalidParameterError(f"{name} must be an int in [{low}, {high}]; got {value!r}")
    return int(value)


def load_digits(n_train=None, seed=0, device=None, *, n_validation=N_VALIDATION, class_counts=None,
                dtype=torch.float32) -> Digits:
    r"""Standardized train/validation tensors of scikit-learn's 8x8 digits, one-hot targets.

    The 1797 images are shuffled with ``numpy.random.default_rng(seed)``; the last
    ``n_validation`` of that order are the validation set (the same images whatever
    ``n_train`` or ``class_counts``), and the training set is taken from the others: the
    first ``n_train`` of them, or, with ``class_counts``, the first ``class_counts[c]`` images
    of each class ``c`` (an imbalanced training set), in the shuffled order.  Both are
    standardized with the training mean and standard deviation of each pixel.

    Parameters
    ----------
    n_train : int, optional
        Training samples, at most ``1797 - n_validation``; default all of them.  With
        ``class_counts`` it must be None or ``sum(class_counts)``.
    seed : int
        Seed of the shuffle.
    device : str or torch.device, optional
        Where the tensors live (default CPU).
    n_validation : int, keyword-only
        Size of the validation set, in ``[0, 1796]`` (default 597, a third).
    class_counts : sequence of 10 ints, keyword-only
        Training samples per class; each at most the number of images of that class outside
        the validation set (about 120 for the default split).
    dtype : torch.dtype, keyword-only
        Of ``X`` and ``Y`` (default float32).

    Returns
    -------
    Digits

    Raises
    ------
    ImportError
        When scikit-learn is missing: ``pip install "pnd-theory[data]"``.
    """
    n_validation = _check_int("n_validation", n_validation, 0, N_DIGITS - 1)
    pool_size = N_DIGITS - n_validation
    if n_train is not None:
        n_train = _check_int("n_train", n_train, 1, pool_size)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidParameterError(f"seed must be a non-negative int; got {seed!r}")
    device = resolve_device(device)
    images, labels = _sklearn_digits()
    n_classes = int(labels.max()) + 1
    order = np.random.default_rng(int(seed)).permutation(labels.size)
    pool, val = order[:pool_size], order[pool_size:]
    if class_counts is None:
        train = pool if n_train is None else pool[:n_train]
    else:
        counts = np.asarray(class_counts)
        if counts.shape != (n_classes,) or not np.issubdtype(counts.dtype, np.integer) or np.any(counts < 0):
            raise InvalidParameterError(f"class_counts must be {n_classes} non-negative ints; got {class_counts!r}")
        available = np.bincount(labels[pool], minlength=n_classes)
        if np.any(counts > available):
            raise InvalidParameterError(
                f"class_counts={counts.tolist()} asks for more images than the training pool holds "
                f"(per class: {available.tolist()}); lower the counts or n_validation"
            )
        if counts.sum() == 0:
            raise InvalidParameterError("class_counts must ask for at least one training sample; got all zeros")
        if n_train is not None and n_train != counts.sum():
            raise InvalidParameterError(f"n_train={n_train} must be None or sum(class_counts)={int(counts.sum())}")
        keep = np.zeros(pool_size, dtype=bool)
        for c in range(n_classes):
            keep[np.flatnonzero(labels[pool] == c)[: counts[c]]] = True
        train = pool[keep]
    mean = images[train].mean(axis=0)
    scale = images[train].std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)  # pixels constant in training (the image border)

    def tensors(index):
        X = torch.as_tensor((images[index] - mean) / scale, dtype=dtype, device=device)
        y = torch.as_tensor(labels[index], dtype=torch.int64, device=device)
        Y = torch.nn.functional.one_hot(y, n_classes).to(dtype)
        return X, Y, y

    return Digits(*tensors(train), *tensors(val), mean=mean, scale=scale)


def _loss_fn(loss):
    if loss == "squared":
        return lambda out, target: ((out - target) ** 2).sum(dim=1).mean()
    if loss == "cross_entropy":
        def cross_entropy(out, target):
            if target.dim() == 2:  # one-hot
                target = target.argmax(dim=1)
            return nn.functional.cross_entropy(out, target)
        return cross_entropy
    raise InvalidParameterError(f"loss must be one of {LOSSES}; got {loss!r}")


def train_network(model, X, Y, loss="squared", epochs=100, lr=1e-3, batch_size=None, seed=0, hold=0.5,
                  weight_decay=0.0, progress=False, desc="train", objective=None) -> np.ndarray:
    r"""Fit ``model`` by Adam on mini-batches, with real sampled masks; returns the loss per epoch.

    The learning rate is ``lr`` for the first ``hold`` fraction of the steps and then decays
    linearly to 0 at the last step.  Batches are drawn without replacement from a fresh
    permutation each epoch (``batch_size=None``: full batch).  All randomness (the batch order
    and every mask of ``torch.nn.Dropout`` and of the :mod:`pnd_theory.nn` modules, which draw
    from torch's global generators) comes from ``seed``: the run happens inside
    :func:`torch.random.fork_rng`, so the caller's global random state is left untouched.
    The model is left in eval mode.

    Parameters
    ----------
    model : torch.nn.Module
        On the device of ``X``.
    X : Tensor (N, n_in)
    Y : Tensor (N, n_out) or (N,)
        Targets: one-hot or real for ``"squared"``; one-hot or int labels for ``"cross_entropy"``.
    loss : {"squared", "cross_entropy"}
        ``"squared"``: :math:`\frac1B\sum_k \|y_k - f(x_k)\|^2` (the package's convention).
    epochs : int
    lr : float
    batch_size : int, optional
    seed : int
    hold : float in [0, 1]
        Fraction of the steps at the full learning rate.
    weight_decay : float
        Adam's (L2) weight decay; 0 leaves the masks as the only regularizer.
    progress : bool
        A tqdm bar over the epochs.
    desc : str
        Label of the bar.
    objective : callable, optional
        ``objective(model, X_batch, Y_batch) -> scalar tensor`` minimized in place of ``loss`` of the
        model's output (for instance the loss of the mean network plus its explicit penalty,
        :func:`pnd_theory.routes.explicit.penalized_loss`); it runs under the same seeded random
        state and the model is in training mode when it is called.

    Returns
    -------
    numpy.ndarray (epochs,)
        Mean training loss (with the masks of that epoch) of each epoch.
    """
    loss_fn = _loss_fn(loss)
    if objective is None:
        def objective(model, xb, yb):
            return loss_fn(model(xb), yb)
    elif not callable(objective):
        raise InvalidParameterError(f"objective must be None or a callable (model, X, Y) -> tensor; got {objective!r}")
    epochs = _check_int("epochs", epochs, 1, 10**9)
    N = int(X.shape[0])
    batch_size = N if batch_size is None else _check_int("batch_size", batch_size, 1, 10**9)
    batch_size = min(batch_size, N)
    if not 0.0 <= float(hold) <= 1.0:
        raise InvalidParameterError(f"hold must be in [0, 1]; got {hold!r}")
    per_epoch = -(-N // batch_size)
    total = epochs * per_epoch
    hold_steps = float(hold) * total
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: 1.0 if t < hold_steps else max(0.0, (total - t) / max(total - hold_steps, 1.0)))
    devices = [X.device.index or 0] if X.device.type == "cuda" else []
    history = np.empty(epochs)
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        order_gen = torch.Generator(device="cpu").manual_seed(int(seed) + 1)
        epochs_iter = range(epochs)
        if progress:
            from tqdm.auto import tqdm
            epochs_iter = tqdm(epochs_iter, desc=desc, unit="epoch", mininterval=0.5, leave=False)
        model.train()
        for epoch in epochs_iter:
            order = torch.randperm(N, generator=order_gen).to(X.device) if batch_size < N else None
            running = 0.0
            for start in range(0, N, batch_size):
                idx = order[start:start + batch_size] if order is not None else slice(None)
                optimizer.zero_grad(set_to_none=True)
                value = objective(model, X[idx], Y[idx])
                value.backward()
                optimizer.step()
                scheduler.step()
                running += float(value.detach()) * (min(start + batch_size, N) - start)
            history[epoch] = running / N
    model.eval()
    return history


@torch.no_grad()
def accuracy(model, X, y) -> float:
    """Fraction of samples whose largest output is the label, in eval mode (no mask noise)."""
    was_training = model.training
    model.eval()
    try:
        if y.dim() == 2:
            y = y.argmax(dim=1)
        return float((model(X).argmax(dim=1) == y).float().mean())
    finally:
        model.train(was_training)


class seeded:
    """Context manager: torch's global generators seeded with ``seed`` inside, restored after.

    For building models reproducibly (their initializations draw from the global generator)
    without touching the caller's random state::

        with seeded(3):
            model = torch.nn.Linear(4, 2)
    """

    def __init__(self, seed, device=None):
        self.seed = int(seed)
        device = resolve_device(device)
        self._devices = [device.index or 0] if device.type == "cuda" else []
        self._fork = None

    def __enter__(self):
        self._fork = torch.random.fork_rng(devices=self._devices)
        self._fork.__enter__()
        torch.manual_seed(self.seed)
        return self

    def __exit__(self, *exc):
        return self._fork.__exit__(*exc)
