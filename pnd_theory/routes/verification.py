"""Four routes to the same penalty, side by side: symbolic, numeric, exact and Monte Carlo.

A view of the conformance harness (:mod:`pnd_theory.routes.conformance`) on a problem of the
caller's: every built-in strategy on one problem, judged by the harness's own agreement rules
and tolerances (:data:`~pnd_theory.routes.conformance.RTOL`, ``MC_SIGMAS``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .._validation import InvalidParameterError, check_positive_int, check_probability, check_problem_sizes
from .._display import ResultDisplay
from .conformance import MC_SIGMAS, RTOL, agree_to_rounding, agree_within_errors
from .exact import exact_expected_loss
from .montecarlo import monte_carlo_loss
from .penalty import expected_penalty, plain_loss, second_moment
from ..laws.strategies import (DropBlock, DropConnect, Dropout, GaussianDropout, HiddenNoise, NodeDropout,
                               PerNodeDrop, Strategy)
from .symbolic import derive



def default_strategies(width=4, p=0.3):
    """One instance of every built-in strategy (each layer and stir), for ``width`` units.

    Examples
    --------
    >>> import pnd_theory as pt
    >>> strategies = pt.default_strategies(width=4, p=0.3)
    >>> len(strategies), strategies[0]
    (11, Dropout(p=0.3))
    >>> sorted({type(s).__name__ for s in strategies})  # doctest: +NORMALIZE_WHITESPACE
    ['DropBlock', 'DropConnect', 'Dropout', 'GaussianDropout', 'HiddenNoise', 'NodeDropout',
     'PerNodeDrop']
    """
    width = check_positive_int("width", width)
    check_problem_sizes(width, width, width)
    p = check_probability("p", p)
    block = 2 if width % 2 == 0 else 1
    rates = [round(float(r), 4) for r in np.linspace(p / 2, min(0.9, 1.5 * p), width)]
    rng = np.random.default_rng(0)
    B = rng.normal(size=(width, width))
    return [
        Dropout(p), GaussianDropout(p), DropBlock(p, block), NodeDropout(rates),
        DropConnect(p, "output"), DropConnect(p, "input"),
        PerNodeDrop(p, "input"), PerNodeDrop(p, "output"), PerNodeDrop(p, "both"),
        PerNodeDrop(p, "input", stir="gaussian"), HiddenNoise(p * B @ B.T / width),
    ]


@dataclass(frozen=True)
class VerificationRow(ResultDisplay):
    """The penalty of one strategy by four routes; Monte Carlo with its standard error."""

    strategy: object
    symbolic: float | None
    numeric: float
    exact: float | None
    monte_carlo: float
    monte_carlo_se: float
    #: route -> why it refused (``"symbolic"`` or ``"exact"`` above their size limits); its value is None
    skipped: dict = field(default_factory=dict)
    #: the harness's tolerances the row is judged by (class constants)
    rtol: ClassVar[float] = RTOL
    mc_sigmas: ClassVar[float] = MC_SIGMAS

    @property
    def agree(self) -> bool:
        """Whether every route that ran agrees with the numeric closed form."""
        others = [v for v in (self.symbolic, self.exact) if v is not None]
        deterministic = all(agree_to_rounding(v, self.numeric, self.numeric) for v in others)
        return deterministic and agree_within_errors(self.monte_carlo, self.numeric, self.monte_carlo_se)


def verify(strategies, U, V, X, Y, samples=20000, seed=0, device=None, progress=False):
    """Compute the penalty of every strategy by the symbolic, numeric, exact and Monte Carlo
    routes on one problem; returns a list of :class:`VerificationRow`.

    A route that refuses the size (the symbolic expansion above its term limit, enumeration
    above its configuration limit) leaves ``None`` in its place and its reason in
    ``row.skipped``; the row still compares the routes that ran.

    Examples
    --------
    The four routes agree: symbolic, numeric and exact to rounding, Monte Carlo within its
    standard errors.

    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> (row,) = pt.verify([pt.Dropout(0.5)], U, V, X, Y, samples=2000, seed=0)
    >>> round(row.numeric, 4), round(row.symbolic, 4), round(row.exact, 4)
    (7.0838, 7.0838, 7.0838)
    >>> row.agree, row.skipped
    (True, {})
    """
    if not isinstance(strategies, (list, tuple)) or not all(isinstance(x, Strategy) for x in strategies):
        raise InvalidParameterError(f"strategies must be a list of pnd_theory strategies (e.g. "
                                    f"pt.default_strategies()); got {strategies!r}"[:300])
    S = second_moment(X)
    plain = plain_loss(U, V, X, Y)
    rows = []
    items = strategies
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(strategies, desc="verify", unit="strategy")
    for strategy in items:
        skipped = {}
        numeric = expected_penalty(strategy, U, V, S)
        try:
            symbolic = derive(strategy, V.shape[0], V.shape[1], U.shape[0]).penalty_function()(U, V, S)
        except InvalidParameterError as err:
            symbolic, skipped["symbolic"] = None, str(err)
        try:
            exact = exact_expected_loss(strategy, U, V, X, Y) - plain
        except InvalidParameterError as err:
            exact, skipped["exact"] = None, str(err)
        mc, se = monte_carlo_loss(strategy, U, V, X, Y, samples=samples, seed=seed, device=device)
        rows.append(VerificationRow(strategy, symbolic, numeric, exact, mc - plain, se, skipped))
    return rows
