"""Input checks shared by the public functions: the package's one validation layer.

Every public entry point validates at the boundary and raises :class:`InvalidParameterError`
(a subclass of both ``ValueError`` and ``TypeError``, so either ``except`` clause catches it)
with one message shape: the parameter's name, the value it got (or its shape) and what is
allowed.  Arrays may be numpy arrays, nested lists or torch tensors; a computation that
receives any torch tensor runs in torch, on that tensor's device.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

try:  # torch is a dependency, but keep the numeric core importable without it
    import torch
except ImportError:  # pragma: no cover
    torch = None

from ._backend import eye


class InvalidParameterError(ValueError, TypeError):
    """A public function got an argument it does not accept.

    The message names the parameter, the value it got and what is allowed.  It derives from
    both ``ValueError`` and ``TypeError`` so that callers may catch either.

    Examples
    --------
    >>> import pnd_theory as pt
    >>> try:
    ...     pt.Dropout(1.5)
    ... except ValueError as err:
    ...     print(type(err).__name__, "-", err)
    InvalidParameterError - p must be a drop probability in [0, 1); got 1.5
    """


class DivergenceError(InvalidParameterError, FloatingPointError):
    """A training run stopped being finite: its learning rate is too large for its data.

    An :class:`InvalidParameterError` (the message names ``lr`` and the data) and a
    ``FloatingPointError`` (what arithmetic that left the float range raises).
    """


#: what a value beyond the floats, at a scale of the data it is homogeneous in, can be told
SCALED_DOWN = "; the same problem with the data scaled down gives its values"


def warn_if_beyond_floats(values, function: str, what: str, hint: str = "") -> None:
    """Warn, at the user's line, when ``values`` (a number, array or tensor) are not all finite:
    ``"{function}: {what} is beyond the float range: inf{hint}"``.  For values whose computation
    cannot give NaN, so that an infinite entry means the value itself leaves the floats."""
    if is_tensor(values):
        values = values.detach().cpu().numpy()
    if not np.all(np.isfinite(values)):
        warnings.warn(f"{function}: {what} is beyond the float range: inf{hint}", RuntimeWarning,
                      stacklevel=user_stacklevel())


def diverged(what: str, lr, step: int, data: str = "X and Y") -> DivergenceError:
    """The one message of a run that diverged: ``lr`` must be smaller for this data."""
    return DivergenceError(f"lr must be small enough for {what} to stay finite with this {data}; it diverged "
                           f"(non-finite loss or weights) by step {step}: lower lr (or scale the data); got lr={lr!r}")


def invalid(name: str, allowed: str, value) -> InvalidParameterError:
    """The one message shape: ``"{name} must be {allowed}; got {value!r}"``."""
    shown = repr(value)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    return InvalidParameterError(f"{name} must be {allowed}; got {shown}")


def is_tensor(x) -> bool:
    return torch is not None and isinstance(x, torch.Tensor)


def check_probability(name: str, p) -> float:
    """A drop probability: a real number in [0, 1) (a 0-d tensor or numpy scalar is accepted)."""
    if is_tensor(p) and p.numel() == 1 and p.dtype.is_floating_point:
        p = float(p)
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real):
        raise invalid(name, "a drop probability, a real number in [0, 1)", p)
    p = float(p)
    if not (0.0 <= p < 1.0):
        raise invalid(name, "a drop probability in [0, 1)", p)
    return p


def check_real(name: str, value, allowed: str = "a finite real number", low=None, high=None,
               low_open=False, high_open=False) -> float:
    """A finite real number (not bool), optionally within ``[low, high]`` (ends open on request)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise invalid(name, allowed, value)
    try:
        value = float(value)
    except OverflowError:  # an integer beyond the floats
        raise invalid(name, allowed, value) from None
    if not math.isfinite(value):
        raise invalid(name, allowed, value)
    if low is not None and (value < low or (low_open and value == low)):
        raise invalid(name, allowed, value)
    if high is not None and (value > high or (high_open and value == high)):
        raise invalid(name, allowed, value)
    return value


def user_stacklevel() -> int:
    """The ``stacklevel`` of :func:`warnings.warn`, called from the function calling this one,
    that points at the first frame outside the package: the user's line that asked."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    return level


def check_positive_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise invalid(name, "a positive integer", value)
    if value < 1:
        raise invalid(name, "a positive integer", value)
    return int(value)


#: the largest count of steps or iterations accepted (beyond it a run could not finish: refused)
MAX_COUNT = 2**40


def check_count(name: str, value) -> int:
    """A positive integer count of steps or iterations, at most :data:`MAX_COUNT`."""
    value = check_positive_int(name, value)
    if value > MAX_COUNT:
        raise invalid(name, f"a positive integer at most 2^40 = {MAX_COUNT} (a count of steps a run could finish)",
                      value)
    return value


def machine_memory() -> int:
    """Bytes of physical memory of this machine (the bound of :func:`check_memory`)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return 2**40


def check_memory(names: str, floats, what: str):
    """Refuse, before allocating, sizes whose ``floats`` float64 numbers (an estimate of
    ``what`` the computation holds) exceed the machine's memory; ``names`` are the sizes, with
    their values, that set the estimate."""
    need, have = 8 * int(floats), machine_memory()
    if need > have:
        raise InvalidParameterError(
            f"{names} must be sizes whose {what} fit in memory; they need about {need / 2**30:.3g} GiB "
            f"and this machine has {have / 2**30:.3g} GiB")


def check_problem_sizes(n_in: int, width: int, n_out: int, n_samples: int = 0):
    """Refuse sizes whose factors ``U`` (n_out, width) and ``V`` (n_in, width), second moment
    (n_in, n_in) and data ((n_in + n_out), n_samples), a few working copies of each, exceed memory."""
    floats = 4 * ((n_in + n_out) * width + n_in * n_in + (n_in + n_out) * n_samples + width)
    names = f"n_in={n_in}, width={width}, n_out={n_out}" + (f", n_samples={n_samples}" if n_samples else "")
    check_memory(names, floats, "factors, second moment and data")


def check_seed(seed, name: str = "seed") -> int:
    """A random seed: a non-negative integer (not bool, not a float)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise invalid(name, "a non-negative integer", seed)
    return int(seed)


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise invalid(name, "True or False", value)
    return bool(value)


def check_choice(name: str, value, allowed, otherwise: str = "") -> str:
    """One of the strings ``allowed``; ``otherwise`` names what else the caller accepts."""
    if not isinstance(value, str) or value not in allowed:
        raise invalid(name, f"one of {', '.join(map(repr, allowed))}{otherwise}", value)
    return value


def resolve_device(device, name: str = "device"):
    """A torch device: ``None`` is the CPU; ``"cuda"`` must be present; other kinds are refused."""
    if device is None:
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        raise invalid(name, 'None, "cpu", "cuda" or "cuda:N" (a str or torch.device)', device)
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise invalid(name, 'None, "cpu", "cuda" or "cuda:N"', device) from None
    if dev.type not in ("cpu", "cuda"):
        raise invalid(name, 'None, "cpu", "cuda" or "cuda:N"', device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidParameterError(
                f"{name} must be a present device; got {str(dev)!r} but no CUDA device is available "
                "(torch.cuda.is_available() is False)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise invalid(name, f"a CUDA index below {torch.cuda.device_count()}", device)
    return dev


def check_dtype(dtype, name: str = "dtype"):
    """A real floating torch dtype for computations: ``torch.float32`` or ``torch.float64``."""
    if dtype not in (torch.float32, torch.float64):
        raise invalid(name, "torch.float32 or torch.float64", dtype)
    return dtype


def check_monte_carlo(samples, max_elements, seed, dtype, progress, device):
    """The arguments every Monte Carlo estimate takes: at least 2 draws (for a standard error),
    a positive chunk bound, a seed, a real floating dtype, a progress flag and a present device."""
    samples = check_count("samples", samples)
    if samples < 2:
        raise InvalidParameterError(f"samples must be at least 2 to give a standard error; got {samples}")
    check_memory(f"samples={samples}", 2 * samples, "draws' losses (one number a draw, kept for the standard error)")
    return (samples, check_positive_int("max_elements", max_elements), check_seed(seed), check_dtype(dtype),
            check_bool("progress", progress), resolve_device(device))


def check_generator(generator, name: str = "generator"):
    if generator is not None and not isinstance(generator, torch.Generator):
        raise invalid(name, "None or a torch.Generator", generator)
    return generator


#: arrays that may be ``None``: the second moment, the identity (whitened inputs) when omitted
OPTIONAL_ARRAYS = frozenset({"second_moment", "S"})

def as_real_array(name: str, a, ndim=None, keep_tensor=False):
    """One real, finite array: float64 numpy, or with ``keep_tensor`` a torch tensor kept a
    tensor (float32 or float64, integer tensors as float64) so that autograd flows through it;
    a tensor that is not kept is detached and copied to the CPU.  Refuses ``None``, what is not
    numeric, complex values (never dropping their imaginary part), NaN and inf, and a number of
    axes other than ``ndim``."""
    if a is None or isinstance(a, (str, bytes)):
        raise invalid(name, "a real numeric array", a)
    if is_tensor(a):
        if a.is_complex():
            raise InvalidParameterError(
                f"{name} must be real; got a complex tensor (dtype {a.dtype}), whose imaginary part would be lost")
        if not keep_tensor:
            a = a.detach().cpu().to(torch.float64).numpy()
        elif a.dtype not in (torch.float32, torch.float64):
            a = a.to(torch.float64)
    else:
        try:
            a = np.asarray(a)
        except ValueError:  # ragged nested sequences
            raise invalid(name, "a real numeric array (not a ragged sequence)", type(a).__name__) from None
        _check_numeric(name, a)
        a = a.astype(np.float64, copy=False)
    if ndim is not None and a.ndim != ndim:
        raise InvalidParameterError(f"{name} must be a {ndim}-D array, got shape {tuple(a.shape)}")
    xp = torch if is_tensor(a) else np
    if not bool(xp.isfinite(a).all()):
        raise InvalidParameterError(f"{name} has non-finite entries (NaN or inf); shape {tuple(a.shape)}")
    return a


def as_arrays(**arrays):
    """Convert named 2-D arrays to one backend and return ``(xp, dict)``.

    ``xp`` is ``numpy`` unless one of the inputs is a torch tensor, in which case every
    array becomes a tensor on that tensor's device (float64 unless a tensor was float32).
    ``None`` is accepted only for the names in :data:`OPTIONAL_ARRAYS` and passed through.
    Entries must be real and finite (:func:`as_real_array`).
    """
    out = {}
    for name, a in arrays.items():
        if a is None and name in OPTIONAL_ARRAYS:
            out[name] = None
            continue
        out[name] = as_real_array(name, a, ndim=2, keep_tensor=True)
    tensors = [a for a in out.values() if is_tensor(a)]
    if not tensors:
        return np, out
    ref = tensors[0]
    dtype = ref.dtype if ref.dtype in (torch.float32, torch.float64) else torch.float64
    for name, a in out.items():
        if a is not None:
            out[name] = torch.as_tensor(a).to(device=ref.device, dtype=dtype)
    return torch, out


def as_numpy_arrays(**arrays):
    """Named 2-D arrays (numpy, lists or torch tensors on any device) as checked, finite
    float64 numpy arrays; ``None`` only where :func:`as_arrays` accepts it."""
    converted = {k: (v.detach().cpu().numpy() if is_tensor(v) and not v.is_complex() else v)
                 for k, v in arrays.items()}
    return as_arrays(**converted)[1]


def _check_numeric(name, a):
    if np.issubdtype(a.dtype, np.complexfloating):
        raise InvalidParameterError(
            f"{name} must be real; got complex values (dtype {a.dtype}), whose imaginary part would be lost")
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise InvalidParameterError(f"{name} must be a numeric array of real values; got dtype {a.dtype}")


def check_factors(U, V):
    """``U`` is (n_out, d), ``V`` is (n_in, d): the widths must agree."""
    if U.shape[1] != V.shape[1]:
        raise InvalidParameterError(
            f"U (n_out x width) and V (n_in x width) must have the same number of columns; "
            f"got U of shape {tuple(U.shape)} and V of shape {tuple(V.shape)}"
        )


def check_second_moment(xp, S, n_in, name="second_moment"):
    """``S`` is ``n_in x n_in``, symmetric and positive semi-definite (to rounding)."""
    if S.shape != (n_in, n_in):
        raise InvalidParameterError(
            f"{name} must be n_in x n_in = {n_in} x {n_in} to match V; got shape {tuple(S.shape)}"
        )
    if n_in == 0:
        return
    scale = float(xp.abs(S).max())
    asym = float(xp.abs(S - S.T).max())
    if asym > 1e-10 * scale:
        raise InvalidParameterError(f"{name} must be symmetric; got max |S - S^T| = {asym:.3g} (shape {tuple(S.shape)})")
    if scale == 0.0:
        return
    Sn = S / scale
    shifted = (Sn + Sn.T) / 2 + (1e-10 * n_in) * eye(xp, n_in, S)
    if xp is np:
        # one BLAS thread: a check of a few milliseconds, which threads on a busy machine make erratic
        try:
            with threadpool_limits(1, user_api="blas"):
                np.linalg.cholesky(shifted)
            return
        except np.linalg.LinAlgError:
            w = float(np.linalg.eigvalsh((Sn + Sn.T) / 2).min()) * scale
    else:
        _, info = torch.linalg.cholesky_ex(shifted.detach())
        if int(info) == 0:
            return
        w = float(torch.linalg.eigvalsh(((Sn + Sn.T) / 2).detach()).min()) * scale
    raise InvalidParameterError(
        f"{name} must be positive semi-definite (a second moment X X^T / N); got smallest eigenvalue {w:.4g}")


def check_data(X, Y, U, V, x_name="X", y_name="Y"):
    """``X`` is (n_in, N), ``Y`` is (n_out, N), matching ``V`` and ``U`` (messages use the
    parameter names ``x_name`` and ``y_name``)."""
    x, y = x_name, y_name
    if X.shape[1] != Y.shape[1]:
        raise InvalidParameterError(
            f"{x} (n_in x N) and {y} (n_out x N) must have the same number of samples (columns); "
            f"got {x} {tuple(X.shape)} and {y} {tuple(Y.shape)}"
        )
    if X.shape[1] == 0:
        raise InvalidParameterError(f"{x} and {y} must hold at least one sample (column)")
    for name, a in ((x, X), (y, Y)):
        if a.shape[0] == 0:
            raise InvalidParameterError(f"{name} must have at least one row (a feature); got shape {tuple(a.shape)}")
    if V is not None and X.shape[0] != V.shape[0]:
        raise InvalidParameterError(f"{x} must have n_in = V.shape[0] = {V.shape[0]} rows; got {x} {tuple(X.shape)}, V {tuple(V.shape)}")
    if U is not None and Y.shape[0] != U.shape[0]:
        raise InvalidParameterError(f"{y} must have n_out = U.shape[0] = {U.shape[0]} rows; got {y} {tuple(Y.shape)}, U {tuple(U.shape)}")


def as_problem(U, V, X, Y):
    """Convert and check factors and data together: returns ``(xp, U, V, X, Y)`` with
    ``U`` (n_out, d), ``V`` (n_in, d), ``X`` (n_in, N) and ``Y`` (n_out, N) consistent."""
    xp, a = as_arrays(U=U, V=V, X=X, Y=Y)
    U, V, X, Y = a["U"], a["V"], a["X"], a["Y"]
    check_factors(U, V)
    check_data(X, Y, U, V)
    return xp, U, V, X, Y


# ----------------------------------------------------------------------------
# declared constraints: a table of them checks a function's arguments, and tests read it
# ----------------------------------------------------------------------------
class Constraint:
    """What one argument may be: ``check(name, value)`` returns the checked value or raises
    :class:`InvalidParameterError`; ``violations`` are values it refuses (for the tests)."""

    optional = False
    violations: tuple = ()

    def check(self, name, value):  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, name, value):
        if value is None and self.optional:
            return None
        return self.check(name, value)


class PositiveInt(Constraint):
    violations = (0, -1, 2.5, True, "3")

    def __init__(self, optional=False):
        self.optional = optional

    def check(self, name, value):
        return check_positive_int(name, value)


class RealIn(Constraint):
    """A finite real number in an interval, its ends closed unless said open."""

    def __init__(self, low, high, low_open=False, high_open=False):
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open
        self.allowed = ("a real number in " + ("(" if low_open else "[") + f"{low}, {high}"
                        + (")" if high_open or not math.isfinite(high) else "]"))
        outside = [low - 1.0] if math.isfinite(low) else []
        outside += [high + 1.0] if math.isfinite(high) else []
        outside += [low] if low_open else []
        outside += [high] if high_open and math.isfinite(high) else []
        self.violations = tuple(outside) + (math.nan, math.inf, True, "0.5")

    def check(self, name, value):
        return check_real(name, value, self.allowed, self.low, self.high, self.low_open, self.high_open)


class OneOf(Constraint):
    def __init__(self, choices, callable_ok=False):
        self.choices, self.callable_ok = tuple(choices), callable_ok
        self.violations = ("nonsense", 3)

    def check(self, name, value):
        if self.callable_ok and callable(value):
            return value
        return check_choice(name, value, self.choices, " or a callable" if self.callable_ok else "")


class Flag(Constraint):
    violations = (1, "yes", None)

    def check(self, name, value):
        return check_bool(name, value)


class Seed(Constraint):
    violations = (-1, 1.5, True)

    def check(self, name, value):
        return check_seed(value, name)


def check_arguments(table: dict, arguments: dict) -> dict:
    """Every argument named in ``table`` checked by its :class:`Constraint`; others unchanged."""
    return {name: (table[name](name, value) if name in table else value) for name, value in arguments.items()}
