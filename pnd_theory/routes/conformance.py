r"""Conformance harness: every route of the package on one strategy, side by side.

:func:`check_strategy` builds a small problem with correlated inputs and asks every public
route about the strategy's law.  Each route ends in one of three ways:

* ``"agree"``: its answer matches an independent reference -- deterministic routes to
  rounding (relative :data:`RTOL`), Monte Carlo routes within :data:`MC_SIGMAS` standard
  errors, bounds that hold;
* ``"refused"``: it raised :class:`~pnd_theory.InvalidParameterError` (or
  ``NotImplementedError``) with a message naming what is missing (a moment order, a torch
  layer, a closed form);
* ``"disagree"``: a number that does not match, or any other exception (an
  ``AttributeError`` from a route that read something other than the law is a disagreement).

The references: the expected loss is :math:`L + R` with :math:`R` from
:func:`~pnd_theory.expected_penalty`; exact enumeration and the symbolic derivation are held to
it to rounding; Monte Carlo (the sampler, the training network, the torch layers) within
standard errors; the induced regularizer is a lower bound of :math:`R(U, V)` over the
factorizations of :math:`A = U V^\top` and is attained by the balanced factors; the global
minimizer's objective is the expected loss of its own factors and is not above that of the
problem's factors; the closed-form gradient covariance equals enumeration to rounding and
Monte Carlo within standard errors.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from .._validation import (InvalidParameterError, check_count, check_positive_int, check_seed, invalid)
from .exact import exact_expected_loss
from ..gradient_covariance import gradient_noise, monte_carlo_gradient_noise
from ..regularizers.induced import balanced_factors, induced_penalty
from ..nn.table import network_for
from ..regularizers.minimizers import global_minimizer
from .montecarlo import monte_carlo_loss
from ..nn.network import LinearNetwork
from .penalty import expected_loss, expected_penalty, plain_loss, second_moment
from ..problems import random_problem
from ..laws.scalar import moment_calls
from ..laws.strategies import validate_strategy
from .symbolic import derive

#: deterministic agreement, relative to the scale of the compared values
RTOL = 1e-8
#: Monte Carlo agreement, in standard errors
MC_SIGMAS = 5.0

ROUTES = ("numeric", "torch", "exact", "monte_carlo", "symbolic", "network", "layers", "induced",
          "minimizer", "gradient_noise")

STATUSES = ("agree", "refused", "disagree")


@dataclass(frozen=True)
class RouteResult:
    """The outcome of one route: ``status`` in ``("agree", "refused", "disagree")``, the route's
    ``value`` and the ``reference`` it was held to (None where there is none), and ``detail``."""

    route: str
    status: str
    value: float | None = None
    reference: float | None = None
    detail: str = ""


@dataclass(frozen=True, repr=False)
class ConformanceReport:
    """:func:`check_strategy`'s report: one :class:`RouteResult` per route, in :data:`ROUTES` order.

    ``repr`` is one line (the strategy and how many routes agree, refuse, disagree); Jupyter
    and IPython show :meth:`table`, as HTML in a notebook; ``print`` shows the text table.
    ``law_calls``: how many times the check evaluated a law's ``moment`` (each order once per
    law object: moments are cached), the cost of the check for an expensive user law.
    """

    strategy: object
    results: tuple = field(default_factory=tuple)
    law_calls: int = 0

    @property
    def ok(self) -> bool:
        """True when no route disagrees (every route agrees or refuses clearly)."""
        return all(r.status != "disagree" for r in self.results)

    def __getitem__(self, route):
        for r in self.results:
            if r.route == route:
                return r
        raise KeyError(route)

    def table(self) -> str:
        """A plain-text table, one line per route."""
        lines = [f"check_strategy({self.strategy!r})", f"{'route':<15}{'status':<10}{'value':>16}{'reference':>16}  detail"]
        for r in self.results:
            v = "" if r.value is None else f"{r.value:.10g}"
            ref = "" if r.reference is None else f"{r.reference:.10g}"
            lines.append(f"{r.route:<15}{r.status:<10}{v:>16}{ref:>16}  {r.detail}")
        return "\n".join(lines)

    def __str__(self):
        return self.table()

    def __repr__(self):
        counts = {s: sum(r.status == s for r in self.results) for s in ("agree", "refused", "disagree")}
        return (f"ConformanceReport({self.strategy!r}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
                + f" of {len(self.results)} routes)")

    def _repr_pretty_(self, printer, cycle):
        printer.text(self.table())

    def _repr_html_(self) -> str:
        cells = ("route", "status", "value", "reference", "detail")
        rows = "".join(
            "<tr>" + "".join(f"<td style='text-align:{'right' if k in ('value', 'reference') else 'left'}'>"
                             f"{html.escape(t)}</td>" for k, t in zip(cells, (
                                 r.route, r.status, "" if r.value is None else f"{r.value:.10g}",
                                 "" if r.reference is None else f"{r.reference:.10g}", r.detail))) + "</tr>"
            for r in self.results)
        head = "".join(f"<th style='text-align:left'>{c}</th>" for c in cells)
        return (f"<table><caption style='text-align:left'><b>check_strategy({html.escape(repr(self.strategy))})"
                f"</b></caption><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")


def agree_to_rounding(a, b, scale) -> bool:
    """Deterministic routes agree: within :data:`RTOL` of ``scale``."""
    return abs(a - b) <= RTOL * max(abs(scale), 1e-300)


def agree_within_errors(value, reference, se) -> bool:
    """A Monte Carlo route agrees: within :data:`MC_SIGMAS` standard errors (plus rounding)."""
    return abs(value - reference) <= MC_SIGMAS * se + RTOL * max(abs(reference), 1e-300)


def _sizes(strategy, width):
    """The given width, or 4 where the strategy accepts it, else its smallest width."""
    if width is None:
        width = 4 if 4 % strategy.min_width == 0 else strategy.min_width
    return width


def check_strategy(strategy, *, n_in=3, width=None, n_out=2, n_samples=6, samples=4000, seed=0,
                   routes=ROUTES) -> ConformanceReport:
    r"""Run every route of the package on ``strategy`` and report agreement, refusal or
    disagreement, route by route (theory page, :ref:`theory-routes`).

    Parameters
    ----------
    strategy : Strategy
        A built-in strategy, a generic one over any scalar law, or a user's subclass.
    n_in, width, n_out, n_samples : int
        Sizes of the test problem (small: enumeration runs over every mask).  ``width``
        defaults to the smallest width the strategy accepts, at least 4 where it can.
    samples : int
        Monte Carlo draws.
    seed : int
        Seed of the problem and of every Monte Carlo route.
    routes : sequence of str
        A subset of :data:`ROUTES`.

    Returns
    -------
    ConformanceReport
        ``.ok`` is False when a route disagrees; ``.table()`` prints it.

    Examples
    --------
    >>> import pnd_theory as pt
    >>> report = pt.check_strategy(pt.Dropout(0.5), routes=("numeric", "exact", "symbolic"))
    >>> report
    ConformanceReport(Dropout(p=0.5): 3 agree, 0 refused, 0 disagree of 3 routes)
    >>> report.ok
    True
    """
    calls = moment_calls()
    validate_strategy(strategy)
    n_in, n_out, n_samples = (check_positive_int(n, v) for n, v in
                              (("n_in", n_in), ("n_out", n_out), ("n_samples", n_samples)))
    samples = check_count("samples", samples)
    seed = check_seed(seed)
    width = strategy.check_width(_sizes(strategy, width))
    if isinstance(routes, str) or not isinstance(routes, Iterable):
        raise invalid("routes", f"a sequence of names from {ROUTES}", routes)
    routes = tuple(routes)
    unknown = [r for r in routes if not isinstance(r, str) or r not in ROUTES]
    if unknown:
        raise InvalidParameterError(f"routes must be a sequence of names from {ROUTES}; got {routes!r}")
    U, V, X, Y = random_problem(n_in=n_in, width=width, n_out=n_out, n_samples=n_samples, seed=seed)
    S = second_moment(X)
    R = expected_penalty(strategy, U, V, S)
    L = plain_loss(U, V, X, Y)
    law = strategy.law(n_in, width, n_out)
    ctx = dict(strategy=strategy, law=law, U=U, V=V, X=X, Y=Y, S=S, R=R, L=L, samples=samples, seed=seed)
    results = []
    for route in routes:
        try:
            results.append(_ROUTE_CHECKS[route](**ctx))
        except (InvalidParameterError, NotImplementedError) as err:
            results.append(RouteResult(route, "refused", detail=str(err).splitlines()[0]))
        except Exception as err:  # noqa: BLE001 - any other failure is a disagreement to report
            results.append(RouteResult(route, "disagree", detail=f"{type(err).__name__}: {err}"))
    return ConformanceReport(strategy, tuple(results), moment_calls() - calls)


def _verdict(route, ok, value, reference, detail=""):
    return RouteResult(route, "agree" if ok else "disagree", float(value), None if reference is None
                       else float(reference), detail)


def _numeric(strategy, R, U, V, X, Y, L, **_):
    value = expected_loss(strategy, U, V, X, Y) - L
    ok = math.isfinite(R) and R >= -RTOL * max(1.0, abs(L)) and agree_to_rounding(value, R, max(abs(R), abs(L)))
    return _verdict("numeric", ok, R, value, "R(U, V) >= 0; expected_loss - plain_loss = R")


def _torch(strategy, R, U, V, S, **_):
    Ut = torch.tensor(U, requires_grad=True)
    Vt = torch.tensor(V, requires_grad=True)
    value = expected_penalty(strategy, Ut, Vt, torch.as_tensor(S))
    value.backward()
    finite = bool(torch.isfinite(Ut.grad).all() and torch.isfinite(Vt.grad).all())
    return _verdict("torch", finite and agree_to_rounding(float(value.detach()), R, R), float(value.detach()), R,
                    "torch backend, differentiable")


def _exact(strategy, R, U, V, X, Y, L, **_):
    value = exact_expected_loss(strategy, U, V, X, Y) - L
    return _verdict("exact", agree_to_rounding(value, R, max(abs(R), abs(L))), value, R, "enumeration over every mask")


def _monte_carlo(strategy, R, U, V, X, Y, L, samples, seed, **_):
    est, se = monte_carlo_loss(strategy, U, V, X, Y, samples=samples, seed=seed)
    return _verdict("monte_carlo", agree_within_errors(est, L + R, se), est, L + R, f"se {se:.3g}")


def _symbolic(strategy, R, U, V, S, **_):
    n_in, width = V.shape
    value = derive(strategy, n_in, width, U.shape[0]).penalty_function()(U, V, S)
    return _verdict("symbolic", agree_to_rounding(value, R, R), value, R, "sympy penalty from the moments")


def _mean_and_se(losses):
    losses = np.asarray(losses, dtype=np.float64)
    return float(losses.mean()), float(losses.std(ddof=1) / math.sqrt(len(losses)))


def _network(strategy, R, U, V, X, Y, L, samples, seed, **_):
    gen = torch.Generator().manual_seed(seed)
    net = LinearNetwork(V.shape[0], V.shape[1], U.shape[0], strategy, generator=gen, U=U, V=V).train()
    x, y = torch.as_tensor(X.T), torch.as_tensor(Y.T)
    with torch.no_grad():
        losses = [float(((net(x) - y) ** 2).sum(1).mean()) for _ in range(min(samples, 2000))]
    est, se = _mean_and_se(losses)
    return _verdict("network", agree_within_errors(est, L + R, se), est, L + R, f"LinearNetwork, se {se:.3g}")


def _layers(law, R, U, V, X, Y, L, samples, seed, **_):
    gen = torch.Generator().manual_seed(seed)
    net = network_for(law, U, V, generator=gen)
    x, y = torch.as_tensor(X.T), torch.as_tensor(Y.T)
    with torch.no_grad():
        losses = [float(((net(x) - y) ** 2).sum(1).mean()) for _ in range(min(samples, 2000))]
    est, se = _mean_and_se(losses)
    return _verdict("layers", agree_within_errors(est, L + R, se), est, L + R, f"torch layers {type(net[0]).__name__}, "
                    f"{type(net[1]).__name__}, {type(net[2]).__name__}; se {se:.3g}")


def _induced(strategy, R, U, V, S, **_):
    A = U @ V.T
    theta = induced_penalty(strategy, A, V.shape[1], S)
    detail = "Theta(A) <= R(U, V)"
    ok = math.isfinite(theta) and theta <= R * (1 + RTOL) + RTOL
    try:
        Ub, Vb = balanced_factors(strategy, A, V.shape[1], S)
    except InvalidParameterError as err:
        detail += f"; balanced factors refused: {str(err).splitlines()[0]}"
    else:
        attained = expected_penalty(strategy, Ub, Vb, S)
        ok = ok and agree_to_rounding(attained, theta, max(theta, R)) and np.allclose(Ub @ Vb.T, A, rtol=1e-9, atol=1e-9)
        detail += f"; balanced factors attain it ({attained:.10g})"
    return _verdict("induced", ok, theta, R, detail)


def _minimizer(strategy, U, V, X, Y, R, L, **_):
    res = global_minimizer(strategy, X, Y, V.shape[1])
    ok = res.objective <= (L + R) * (1 + RTOL) + RTOL
    detail = f"method {res.method}; objective <= expected loss of the problem's factors"
    try:
        Uf, Vf = res.factors()
    except InvalidParameterError as err:
        detail += f"; factors refused: {str(err).splitlines()[0]}"
    else:
        own = expected_loss(strategy, Uf, Vf, X, Y)
        ok = ok and agree_to_rounding(own, res.objective, res.objective)
        detail += "; equals the expected loss of its own factors"
    return _verdict("minimizer", ok, res.objective, L + R, detail)


def _gradient_noise(strategy, samples, seed, **_):
    # a smaller problem: the gradient covariance is checked by enumeration over every mask
    width = strategy.check_width(max(strategy.min_width, 2))
    U, V, X, Y = random_problem(n_in=2, width=width, n_out=2, n_samples=3, seed=seed)
    res = gradient_noise(strategy, U, V, X, Y)
    trace = float(res.trace)
    detail = f"method {res.method}"
    ok = math.isfinite(trace) and trace >= 0
    if res.method == "closed_form":
        try:
            ex = gradient_noise(strategy, U, V, X, Y, method="enumeration")
        except InvalidParameterError as err:
            detail += f"; enumeration refused: {str(err).splitlines()[0]}"
        else:
            ok = ok and agree_to_rounding(float(ex.trace), trace, trace)
            detail += "; equals enumeration"
    mc = monte_carlo_gradient_noise(strategy, U, V, X, Y, draws=min(samples, 2000), seed=seed, progress=False)
    ok = ok and agree_within_errors(float(mc.trace), trace, float(mc.trace_se))
    return _verdict("gradient_noise", ok, trace, float(mc.trace),
                    f"{detail}; Monte Carlo se {float(mc.trace_se):.3g} (n_in=2, width={width}, n_out=2, N=3)")


_ROUTE_CHECKS = {
    "numeric": _numeric, "torch": _torch, "exact": _exact, "monte_carlo": _monte_carlo, "symbolic": _symbolic,
    "network": _network, "layers": _layers, "induced": _induced, "minimizer": _minimizer,
    "gradient_noise": _gradient_noise,
}
