r"""Symbolic derivation of the expected loss and penalty from a mask law's moments.

For one sample :math:`(x, y)` every output is a sum of terms, each a coefficient times a
monomial in the mask entries,

.. math::

    f_o = \sum_{i, j} U_{oj} V_{ij} x_i \; [M_U]_{oj}\, \xi_j\, [M_V]_{ij}
        = \sum_t c_t\, m_t .

Expanding the square,

.. math::

    E\|y - f\|^2 = \sum_o \Big( y_o^2 - 2 y_o \sum_t c_t E[m_t]
        + \sum_{t, s} c_t c_s E[m_t m_s] \Big),

and every moment :math:`E[m_t m_s]` is taken from the strategy's law (independent components,
the scalar moments of each variable, shared draws counted once).  The penalty is this
expectation minus the plain loss (all masks 1); it is quadratic in :math:`x`, and averaging
over the data replaces :math:`x_a x_b` by :math:`S_{ab}`.  Nothing here knows the closed forms
of the theory page: they come out of the moments.

:meth:`Derivation.compact` restates the penalty in the sums of the theory page when it is a
combination of :math:`\|u_j\|^2 v_j^\top S v_j`, :math:`\|u_j\|^2 v_j^\top D v_j` and
:math:`(u_j^\top u_k)(v_j^\top S v_k)`; the coefficients are solved for, not assumed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import sympy

from .._validation import (InvalidParameterError, as_numpy_arrays, check_factors, check_positive_int, check_problem_sizes,
                           check_second_moment)
from .._display import ResultDisplay
from ..laws.masks import COMPONENTS
from ..laws.scalar import moment_calls
from ..laws.strategies import validate_strategy

#: largest number of (term, term) pairs a derivation expands before it refuses
MAX_TERM_PAIRS = 200_000


def _matrix(name, rows, cols):
    return sympy.Matrix(rows, cols, lambda r, c: sympy.Symbol(f"{name}_{{{r + 1},{c + 1}}}", real=True))


def _symmetric(name, n):
    return sympy.Matrix(n, n, lambda r, c: sympy.Symbol(f"{name}_{{{min(r, c) + 1},{max(r, c) + 1}}}", real=True))


@dataclass(frozen=True)
class CompactForm(ResultDisplay):
    r"""The penalty as :math:`\sum_j a_j \|u_j\|^2 v_j^\top S v_j + \sum_j b_j \|u_j\|^2
    v_j^\top D v_j + \sum_{j \ne k} c_{jk} (u_j^\top u_k)(v_j^\top S v_k)`.

    ``a``, ``b`` are length-``d`` tuples and ``c`` a symmetric ``d x d`` sympy matrix with zero
    diagonal; ``text`` and ``latex`` state it in the shortest matching sum; ``strengths`` maps
    each noise strength :math:`\lambda = p/(1-p)` to its value for the strategy's own ``p``.
    """

    a: tuple
    b: tuple
    c: sympy.Matrix
    text: str
    latex: str
    strengths: dict = field(default_factory=dict)
    _display_fields = ("text", "strengths")

    def _repr_latex_(self) -> str:
        return _latex_with_strengths(f"R(U, V) = {self.latex}", self.strengths)

    def _repr_html_(self):
        """None: a formula shows as LaTeX (JupyterLab and the classic notebook prefer HTML when
        both are offered); the table of fields stays in ``repr`` and :meth:`to_dataframe`."""
        return None


@dataclass(frozen=True)
class Derivation(ResultDisplay):
    """Result of :func:`derive`.

    Attributes
    ----------
    strategy : Strategy
    penalty : sympy.Expr
        :math:`R` in the entries of ``U``, ``V``, the symmetric ``S`` and the rate symbols.
    expected_loss : sympy.Expr
        :math:`E\\|y - f(x)\\|^2` for one sample, in ``x``, ``y``, ``U``, ``V`` and the rates.
    symbols : dict
        ``"U"``, ``"V"``, ``"S"`` (sympy matrices), ``"x"``, ``"y"`` (column matrices) and
        ``"rates"`` (rate symbol -> the strategy's value).
    law_calls : int
        How many times the derivation evaluated a law's ``moment`` (each order once per law
        object: moments are cached).
    """

    strategy: object
    penalty: sympy.Expr
    expected_loss: sympy.Expr
    symbols: dict = field(repr=False)
    law_calls: int = field(default=0, compare=False)

    def latex(self) -> str:
        """LaTeX of the penalty (the compact sum when one matches, else the expanded form)."""
        compact = self.compact()
        body = compact.latex if compact is not None else sympy.latex(self.penalty)
        return f"R(U, V) = {body}"

    def compact(self):
        """:class:`CompactForm` of the penalty, or ``None`` when it is not such a sum."""
        return self._compact_form

    @cached_property
    def _compact_form(self):
        return _compact(self)

    def strengths(self) -> dict:
        r"""The noise strengths :math:`\lambda = p/(1-p)` of the rate symbols ``p`` (or
        ``p_j``), by name (``"lambda"``, ``"lambda_j"``), at the strategy's own values."""
        return {"lambda" + str(sym)[1:]: value / (1 - value) for sym, value in self.symbols["rates"].items()
                if str(sym) == "p" or str(sym).startswith("p_")}

    def _repr_latex_(self) -> str:
        return _latex_with_strengths(self.latex(), self.strengths())

    _repr_html_ = CompactForm._repr_html_

    def _display_items(self) -> list:
        compact = self.compact()
        V, U = self.symbols["V"], self.symbols["U"]
        return [("strategy", self.strategy), ("n_in", V.shape[0]), ("width", V.shape[1]), ("n_out", U.shape[0]),
                ("compact", compact.text if compact is not None else None), ("strengths", self.strengths()),
                ("penalty_terms", len(sympy.Add.make_args(self.penalty)))]

    def penalty_function(self, **values):
        """Numeric callable ``(U, V, S) -> float`` from the sympy penalty.

        The rate symbols take the strategy's values; other free symbols (for instance the
        entries of a symbolic :class:`HiddenNoise` covariance) must be given by name.
        """
        U, V, S = self.symbols["U"], self.symbols["V"], self.symbols["S"]
        subs = {sym: val for sym, val in self.symbols["rates"].items()}
        by_name = {str(sym): sym for sym in self.penalty.free_symbols}
        unknown = sorted(set(values) - set(by_name))
        if unknown:
            raise InvalidParameterError(f"penalty_function got values for {unknown}, which are not symbols of the penalty")
        subs.update({by_name[k]: v for k, v in values.items()})
        expr = self.penalty.subs(subs)
        s_syms = sorted({s for s in S}, key=str)
        free = expr.free_symbols - set(U) - set(V) - set(s_syms)
        if free:
            raise InvalidParameterError(f"penalty_function needs values for {sorted(map(str, free))}")
        args = list(U) + list(V) + s_syms
        fn = sympy.lambdify(args, expr, "numpy")
        s_index = [(int(str(s).split("{")[1].split(",")[0]) - 1, int(str(s).split(",")[1].rstrip("}")) - 1)
                   for s in s_syms]
        n_out, d = U.shape
        n_in = V.shape[0]

        def penalty(U_num, V_num, S_num=None):
            arr = as_numpy_arrays(U=U_num, V=V_num, S=S_num)
            Un, Vn, Sn = arr["U"], arr["V"], arr["S"]
            check_factors(Un, Vn)
            if Un.shape != (n_out, d) or Vn.shape != (n_in, d):
                raise InvalidParameterError(f"this derivation is for U {n_out}x{d} and V {n_in}x{d}; got {Un.shape} and {Vn.shape}")
            Sn = np.eye(n_in) if Sn is None else Sn
            check_second_moment(np, Sn, n_in)
            return float(fn(*Un.ravel(), *Vn.ravel(), *(Sn[i, j] for i, j in s_index)))

        return penalty


def _symbol_table(comps):
    """One sympy symbol per distinct (name, law) among the variables with a parameter.

    A name that two different laws carry (a user's component, say) is split by component and
    variable, so that two laws never share a symbol.  Returns ``{component: symbol_of}`` and
    ``{symbol: value}``."""
    by_name = {}
    for cname, c in comps.items():
        laws = c.variable_laws
        if laws is None:
            continue
        for g, law in enumerate(laws):
            if law.parameter_name is not None:
                by_name.setdefault(c.symbols[g], set()).add(law)
    table, values = {}, {}
    for cname, c in comps.items():
        laws = c.variable_laws
        if laws is None:
            continue
        syms = []
        for g, law in enumerate(laws):
            if law.parameter_name is None:
                syms.append(None)
                continue
            name = c.symbols[g]
            if len(by_name[name]) > 1:
                name = f"{name}_{{{cname},{g + 1}}}"
            sym = sympy.Symbol(name, real=True)
            values[sym] = float(law.parameter)
            syms.append(sym)
        table[cname] = syms.__getitem__
    return table, values


def derive(strategy, n_in, width, n_out) -> Derivation:
    r"""Derive the expected loss and penalty of ``strategy`` symbolically.

    .. math::

        R(U, V) = \sum_o \sum_{t, s} c_t c_s \big(E[m_t m_s] - 1\big)
        \Big|_{x_a x_b \to S_{ab}},

    over the outputs :math:`o` and pairs of monomials :math:`t, s` of one sample's prediction in
    the mask entries (coefficients :math:`c_t`), with the moments read from the strategy's law
    (entries that share a variable counted once); the table of the theory page's
    :ref:`theory-penalty` comes out of the moments.

    Parameters
    ----------
    strategy : Strategy
    n_in, width, n_out : int
        Sizes (keep them small: the expression has :math:`O(n_{out} (n_{in} d)^2)` terms).

    Returns
    -------
    Derivation

    Examples
    --------
    >>> import pnd_theory as pt
    >>> derivation = pt.derive(pt.Dropout(0.5), n_in=2, width=2, n_out=1)
    >>> derivation.compact()
    CompactForm(text='(lambda) * sum_j ||u_j||^2 v_j^T S v_j', strengths={lambda: 1})

    The penalty itself is a sympy expression in the entries of ``U``, ``V`` and ``S`` (one term
    per product of entries); in a notebook the derivation displays as LaTeX.

    >>> len(derivation.penalty.args)
    6
    """
    calls = moment_calls()
    validate_strategy(strategy)
    n_in = check_positive_int("n_in", n_in)
    width = check_positive_int("width", width)
    n_out = check_positive_int("n_out", n_out)
    check_problem_sizes(n_in, width, n_out)
    if n_out * (n_in * width) ** 2 > MAX_TERM_PAIRS:  # before the law builds anything of these sizes
        raise InvalidParameterError(
            f"derive expands n_out * (n_in * width)^2 = {n_out * (n_in * width) ** 2} pairs of terms, above "
            f"MAX_TERM_PAIRS = {MAX_TERM_PAIRS}; use smaller sizes (the closed form pt.expected_penalty has no "
            "size limit)")
    law = strategy.law(n_in, width, n_out)
    d = law.width
    pairs = n_out * (n_in * d) ** 2
    if pairs > MAX_TERM_PAIRS:
        raise InvalidParameterError(
            f"derive expands n_out * (n_in * width)^2 = {pairs} pairs of terms, above MAX_TERM_PAIRS = "
            f"{MAX_TERM_PAIRS}; use smaller sizes (the closed form pt.expected_penalty has no size limit)")
    U, V, S = _matrix("U", n_out, d), _matrix("V", n_in, d), _symmetric("S", n_in)
    x = sympy.Matrix(n_in, 1, lambda i, _: sympy.Symbol(f"x_{i + 1}", real=True))
    y = sympy.Matrix(n_out, 1, lambda o, _: sympy.Symbol(f"y_{o + 1}", real=True))
    comps = law.components
    rates, rate_values = _symbol_table(comps)

    def entries(o, i, j):
        """Mask entries (component, flat index) multiplying the term U_oj V_ij x_i."""
        keys = []
        if "output" in comps:
            keys.append(("output", o * d + j))
        if "hidden" in comps:
            keys.append(("hidden", j))
        if "input" in comps:
            keys.append(("input", i * d + j))
        return keys

    def moment(keys):
        result = 1
        for name in COMPONENTS:
            mine = [e for c, e in keys if c == name]
            if mine:
                result = result * comps[name].moment(mine, rates.get(name))
        return result

    loss = {}  # monomial in x, y, U, V -> coefficient (expected minus plain, and expected)
    pen = {}
    for o in range(n_out):
        terms = [(U[o, j] * V[i, j], i, entries(o, i, j)) for i in range(n_in) for j in range(d)]
        _add(loss, y[o] ** 2, 1)
        for c, i, keys in terms:
            _add(loss, -2 * y[o] * c * x[i], moment(keys))
        for (c1, i1, k1), (c2, i2, k2) in itertools.product(terms, terms):
            m = moment(k1 + k2)
            _add(loss, c1 * c2 * x[i1] * x[i2], m)
            # penalty = expected loss - plain loss (every mask entry equal to 1)
            _add(pen, c1 * c2 * S[i1, i2], m - 1)
        if any(sympy.cancel(moment(keys) - 1) != 0 for _, _, keys in terms):
            raise InvalidParameterError(
                "strategy must have masks of mean 1: this law's penalty is not a function of S alone")
    expected = sympy.Add(*(k * sympy.factor(v) for k, v in loss.items()))
    penalty = sympy.Add(*(k * c for k, v in pen.items() if (c := sympy.factor(v)) != 0))
    symbols = {"U": U, "V": V, "S": S, "x": x, "y": y, "rates": rate_values}
    return Derivation(strategy, penalty, expected, symbols, moment_calls() - calls)


def _add(table, key, value):
    table[key] = table.get(key, 0) + value


def _terms(expr):
    """Monomial (without numeric factor) -> coefficient, for an expanded polynomial."""
    out = {}
    for term in sympy.Add.make_args(sympy.expand(expr)):
        coeff, mono = term.as_coeff_Mul()
        out[mono] = out.get(mono, 0) + coeff
    return out


def _compact(derivation: Derivation):
    U, V, S = derivation.symbols["U"], derivation.symbols["V"], derivation.symbols["S"]
    n_out, d = U.shape
    n_in = V.shape[0]
    D = sympy.diag(*[S[i, i] for i in range(n_in)])
    u2 = [sum(U[o, j] ** 2 for o in range(n_out)) for j in range(d)]
    basis = {}
    for j in range(d):
        basis[("a", j)] = u2[j] * (V[:, j].T * S * V[:, j])[0]
        basis[("b", j)] = u2[j] * (V[:, j].T * D * V[:, j])[0]
    for j, k in itertools.combinations(range(d), 2):
        uu = sum(U[o, j] * U[o, k] for o in range(n_out))
        basis[("c", j, k)] = 2 * uu * (V[:, j].T * S * V[:, k])[0]
    unknowns = {key: sympy.Symbol(f"k_{n}") for n, key in enumerate(basis)}
    target = {}
    for term in sympy.Add.make_args(derivation.penalty):
        coeff, mono = _split_coefficient(term, U, V, S)
        target[mono] = target.get(mono, 0) + coeff
    model = {}
    for key, expr in basis.items():
        for mono, coeff in _terms(expr).items():
            model[mono] = model.get(mono, 0) + coeff * unknowns[key]
    equations = [model.get(m, 0) - target.get(m, 0) for m in set(model) | set(target)]
    solution = sympy.linsolve(equations, list(unknowns.values()))
    if not solution:
        return None
    (values,) = solution
    # an under-determined system (n_in = 1, where S and D coincide) leaves free unknowns: set them to 0
    free = set().union(*(sympy.sympify(v).free_symbols for v in values)) & set(unknowns.values())
    values = [sympy.factor(sympy.sympify(v).subs({f: 0 for f in free})) for v in values]
    sol = dict(zip(unknowns, values))
    a = tuple(sol[("a", j)] for j in range(d))
    b = tuple(sol[("b", j)] for j in range(d))
    c = sympy.zeros(d, d)
    for j, k in itertools.combinations(range(d), 2):
        c[j, k] = c[k, j] = sol[("c", j, k)]
    text, latex = _describe(a, b, c)
    return CompactForm(a, b, c, text, latex, derivation.strengths())


def _latex_with_strengths(body, strengths):
    """``$body$`` with the numeric noise strengths beside it, for Jupyter."""
    at = ", ".join(f"{sympy.latex(sympy.Symbol(k))} = {v:.6g}" for k, v in strengths.items())
    return rf"$\displaystyle {body}" + (rf"\qquad ({at})" if at else "") + "$"


def _split_coefficient(term, U, V, S):
    """Split ``term`` into (coefficient free of U, V, S; monomial in U, V, S)."""
    variables = set(U) | set(V) | set(S)
    coeff, mono = 1, 1
    for factor in sympy.Mul.make_args(term):
        base = factor.as_base_exp()[0]
        if base in variables:
            mono *= factor
        else:
            coeff *= factor
    return coeff, mono


def _blocks(a, c):
    """Block size b when ``c`` couples exactly the contiguous blocks of b units with ``a``."""
    d = len(a)
    for b in range(2, d + 1):
        if d % b:
            continue
        ok = all(
            sympy.simplify(c[j, k] - (a[j] if j // b == k // b else 0)) == 0
            for j in range(d) for k in range(d) if j != k
        )
        if ok:
            return b
    return None


def _same(values):
    return all(sympy.simplify(v - values[0]) == 0 for v in values)


def _in_lam(expr):
    r"""Rewrite a coefficient in the noise strengths :math:`\lambda = p / (1 - p)`."""
    expr = sympy.sympify(expr)
    subs = {}
    for sym in expr.free_symbols:
        name = str(sym)
        if name == "p" or name.startswith("p_"):
            lam = sympy.Symbol("lambda" + name[1:], nonnegative=True)
            subs[sym] = lam / (1 + lam)
    return sympy.factor(sympy.simplify(expr.subs(subs))) if subs else expr


def _describe(a, b, c):
    a, b, c = [_in_lam(v) for v in a], [_in_lam(v) for v in b], c.applyfunc(_in_lam)
    d = len(a)
    pieces, latex = [], []
    coupled = any(c[j, k] != 0 for j in range(d) for k in range(d))
    block = _blocks(a, c) if coupled else None
    if block is not None and _same(a):
        pieces.append(f"({a[0]}) * sum_g ||U_g V_g^T S^(1/2)||_F^2  [blocks of {block} units]")
        latex.append(rf"\left({sympy.latex(a[0])}\right) \sum_g \|U_g V_g^\top S^{{1/2}}\|_F^2")
        coupled = False
    elif any(v != 0 for v in a):
        if _same(a):
            pieces.append(f"({a[0]}) * sum_j ||u_j||^2 v_j^T S v_j")
            latex.append(rf"\left({sympy.latex(a[0])}\right) \sum_j \|u_j\|^2 v_j^\top S v_j")
        else:
            pieces.append(f"sum_j a_j ||u_j||^2 v_j^T S v_j, a = {list(a)}")
            latex.append(r"\sum_j a_j \|u_j\|^2 v_j^\top S v_j")
    if any(v != 0 for v in b):
        if _same(b):
            pieces.append(f"({b[0]}) * sum_j ||u_j||^2 v_j^T D v_j")
            latex.append(rf"\left({sympy.latex(b[0])}\right) \sum_j \|u_j\|^2 v_j^\top D v_j")
        else:
            pieces.append(f"sum_j b_j ||u_j||^2 v_j^T D v_j, b = {list(b)}")
            latex.append(r"\sum_j b_j \|u_j\|^2 v_j^\top D v_j")
    if coupled:
        pieces.append("sum_{j != k} c_jk (u_j . u_k)(v_j^T S v_k)")
        latex.append(r"\sum_{j \ne k} c_{jk} (u_j^\top u_k)(v_j^\top S v_k)")
    if not pieces:
        return "0", "0"
    return " + ".join(pieces), " + ".join(latex)
