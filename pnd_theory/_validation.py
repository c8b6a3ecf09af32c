"""Input checks shared by the public functions.

Every public entry point validates at the boundary and raises ``ValueError`` or
``TypeError`` with a message that names the parameter, its value (or shape) and what is
allowed.  Arrays may be numpy arrays, nested lists or torch tensors; a computation that
receives any torch tensor runs in torch, on that tensor's device.
"""

from __future__ import annotations

import numbers

import numpy as np

try:  # torch is a dependency, but keep the numeric core importable without it
    import torch
except ImportError:  # pragma: no cover
    torch = None


def is_tensor(x) -> bool:
    return torch is not None and isinstance(x, torch.Tensor)


def check_probability(name: str, p) -> float:
    """A drop probability: a real number in [0, 1)."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1), got {p!r} of type {type(p).__name__}")
    p = float(p)
    if not (0.0 <= p < 1.0):
        raise ValueError(f"{name} must be a drop probability in [0, 1), got {p!r}")
    return p


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r} of type {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_seed(seed) -> int:
    """A random seed: a non-negative integer (not bool)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative integer, got {seed!r} of type {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(name: str, value, allowed) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def as_arrays(**arrays):
    """Convert named 2-D arrays to one backend and return ``(xp, dict)``.

    ``xp`` is ``numpy`` unless one of the inputs is a torch tensor, in which case every
    array becomes a tensor on that tensor's device (float64 unless a tensor was float32).
    ``None`` values are passed through.  Entries must be finite.
    """
    tensors = [a for a in arrays.values() if is_tensor(a)]
    out = {}
    if tensors:
        ref = tensors[0]
        dtype = ref.dtype if ref.dtype in (torch.float32, torch.float64) else torch.float64
        for name, a in arrays.items():
            if a is None:
                out[name] = None
                continue
            if not is_tensor(a):
                a = np.asarray(a)
                _check_numeric(name, a)
                a = torch.as_tensor(a)
            out[name] = a.detach().to(device=ref.device, dtype=dtype)
        xp = torch
    else:
        for name, a in arrays.items():
            if a is None:
                out[name] = None
                continue
            a = np.asarray(a)
            _check_numeric(name, a)
            out[name] = a.astype(np.float64, copy=False)
        xp = np
    for name, a in out.items():
        if a is None:
            continue
        if a.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array, got shape {tuple(a.shape)}")
        finite = bool(xp.isfinite(a).all())
        if not finite:
            raise ValueError(f"{name} has non-finite entries (NaN or inf); shape {tuple(a.shape)}")
    return xp, out


def as_numpy_arrays(**arrays):
    """Named 2-D arrays (numpy, lists or torch tensors on any device) as checked, finite
    float64 numpy arrays; ``None`` values pass through."""
    converted = {k: (v.detach().cpu().numpy() if is_tensor(v) else v) for k, v in arrays.items()}
    return as_arrays(**converted)[1]


def _check_numeric(name, a):
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {a.dtype}")


def check_factors(U, V):
    """``U`` is (n_out, d), ``V`` is (n_in, d): the widths must agree."""
    if U.shape[1] != V.shape[1]:
        raise ValueError(
            f"U (n_out x width) and V (n_in x width) must have the same number of columns; "
            f"got U of shape {tuple(U.shape)} and V of shape {tuple(V.shape)}"
        )


def check_second_moment(xp, S, n_in):
    if S.shape != (n_in, n_in):
        raise ValueError(
            f"second_moment must be n_in x n_in = {n_in} x {n_in} to match V; got shape {tuple(S.shape)}"
        )
    if n_in == 0:
        return
    scale = float(xp.abs(S).max())
    asym = float(xp.abs(S - S.T).max())
    if asym > 1e-10 * max(scale, 1.0):
        raise ValueError(f"second_moment must be symmetric; max |S - S^T| = {asym:.3g} (shape {tuple(S.shape)})")


def check_data(X, Y, U, V, x_name="X", y_name="Y"):
    """``X`` is (n_in, N), ``Y`` is (n_out, N), matching ``V`` and ``U`` (messages use the
    parameter names ``x_name`` and ``y_name``)."""
    x, y = x_name, y_name
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"{x} (n_in x N) and {y} (n_out x N) must have the same number of samples (columns); "
            f"got {x} {tuple(X.shape)} and {y} {tuple(Y.shape)}"
        )
    if X.shape[1] == 0:
        raise ValueError(f"{x} and {y} must hold at least one sample (column)")
    if V is not None and X.shape[0] != V.shape[0]:
        raise ValueError(f"{x} must have n_in = V.shape[0] = {V.shape[0]} rows; got {x} {tuple(X.shape)}, V {tuple(V.shape)}")
    if U is not None and Y.shape[0] != U.shape[0]:
        raise ValueError(f"{y} must have n_out = U.shape[0] = {U.shape[0]} rows; got {y} {tuple(Y.shape)}, U {tuple(U.shape)}")


def as_problem(U, V, X, Y):
    """Convert and check factors and data together: returns ``(xp, U, V, X, Y)`` with
    ``U`` (n_out, d), ``V`` (n_in, d), ``X`` (n_in, N) and ``Y`` (n_out, N) consistent."""
    xp, a = as_arrays(U=U, V=V, X=X, Y=Y)
    U, V, X, Y = a["U"], a["V"], a["X"], a["Y"]
    check_factors(U, V)
    check_data(X, Y, U, V)
    return xp, U, V, X, Y
