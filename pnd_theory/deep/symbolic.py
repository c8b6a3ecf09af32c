r"""Symbolic penalty of a noisy deep linear network, expanded over paths.

Every output of the network is a sum over paths :math:`\pi = (i = j_0, j_1, \dots, j_L = o)`:

.. math::

    f_o = \sum_\pi c_\pi\, m_\pi\, x_{j_0}, \qquad
    c_\pi = \prod_{l=1}^{L} (W_l)_{j_l j_{l-1}}, \qquad
    m_\pi = \prod_l (M_l)_{j_l j_{l-1}} \prod_{l<L} (\xi_l)_{j_l},

so that, all masks having mean 1,

.. math::

    R = \sum_o \sum_{\pi, \pi' \to o} c_\pi c_{\pi'} \big(E[m_\pi m_{\pi'}] - 1\big) S_{j_0 j'_0},

with every moment read from the component laws (independent layers; entries that share a
variable, as the units of a DropBlock block do, counted once).  Nothing here propagates second
moments: it is a route independent of :mod:`pnd_theory.deep.closed`.

:meth:`DeepDerivation.compact` names the parts.  Write the propagation of the closed form as
:math:`\mathcal P + v\,\mathcal N` at every noisy site (a noisy matrix:
:math:`\mathcal N(H) = \mathrm{diag}((W \circ W)\,\mathrm{diag} H)`; a noisy hidden layer:
:math:`\mathcal N(H) = \mathrm{Diag}(\mathrm{diag} H)`) and let :math:`\Phi_T` be the trace
obtained by taking :math:`\mathcal N` at the sites of :math:`T` and :math:`\mathcal P` elsewhere.
The compact form solves :math:`R = \sum_{T \ne \emptyset} k_T \Phi_T` for the coefficients
:math:`k_T` (they come out as :math:`\prod_{t \in T} v_t`).  With noise on every hidden layer
and on no matrix, :math:`\Phi_T` for :math:`T` = all hidden layers is the
:math:`\ell_2`-path regularizer of Mianjy and Arora,

.. math::

    \psi(W) = \sum_{j_1, \dots, j_{L-1}} \prod_{l=2}^{L} (W_l)_{j_l j_{l-1}}^2 \,
        (W_1 S W_1^\top)_{j_1 j_1} \quad \text{(summed over outputs } j_L),

and the terms of the proper subsets are the other rescaling-invariant terms of their
characterization (P. Mianjy and R. Arora, "On dropout and nuclear norm regularization",
ICML 2019).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import sympy

from .._validation import InvalidParameterError, as_numpy_arrays, check_second_moment
from .network import check_sizes, check_weights, deep_law

#: largest number of (path, path) pairs a derivation expands before it refuses
MAX_PATH_PAIRS = 20_000
#: largest number of noise sites for which the compact form is solved (2^sites - 1 terms)
MAX_COMPACT_SITES = 6


def _weight_symbols(sizes):
    return [sympy.Matrix(sizes[l], sizes[l - 1],
                         lambda r, c, l=l: sympy.Symbol(f"W^{{({l})}}_{{{r + 1},{c + 1}}}", real=True))
            for l in range(1, len(sizes))]


def _symmetric(n):
    return sympy.Matrix(n, n, lambda r, c: sympy.Symbol(f"S_{{{min(r, c) + 1},{max(r, c) + 1}}}", real=True))


def _rate_symbols(law):
    """``{component: symbol_of}`` and ``{symbol: value}``: one symbol per layer (per variable
    where the laws of a layer differ) for laws with a parameter."""
    table, values = {}, {}
    for name, comp in law.components.items():
        laws = comp.variable_laws
        if laws is None:
            continue
        kind, l = name.split("_")
        tag = f"h{l}" if kind == "xi" else f"W{l}"
        single = len(set(laws)) == 1
        syms = []
        for g, scalar in enumerate(laws):
            if scalar.parameter_name is None:
                syms.append(None)
                continue
            sym = sympy.Symbol(f"p_{tag}" if single else f"p_{tag}_{g + 1}", real=True)
            values[sym] = float(scalar.parameter)
            syms.append(sym)
        table[name] = syms.__getitem__
    return table, values


@dataclass(frozen=True)
class DeepCompactForm:
    r""":math:`R = \sum_{T} k_T \Phi_T`: the penalty as a sum over sets of noisy sites.

    :math:`T` runs over the non-empty sets of noisy sites (hidden layers ``"h1"``, ...,
    matrices ``"W1"``, ...) and :math:`\Phi_T` is the trace of the second-moment propagation of
    :func:`pnd_theory.deep.expected_penalty` with, at the sites of :math:`T`, only the noise
    term (:math:`\mathrm{diag}((W \circ W)\,\mathrm{diag} H)` at a matrix,
    :math:`\mathrm{Diag}(\mathrm{diag} H)` at a hidden layer) and, elsewhere, only the plain one;
    :math:`k_T = \prod_{t \in T} \lambda_t`.  With noise on every hidden layer and on no matrix,
    :math:`\Phi_T` of all the hidden layers is the :math:`\ell_2`-path regularizer of Mianjy and
    Arora (ICML 2019), and the other terms are the rest of their characterization.

    ``terms`` is a list of dicts with ``sites`` (names such as ``"h1"``, ``"W2"``),
    ``coefficient`` (sympy, in the noise strengths :math:`\lambda`), ``name`` (``"l2-path"``
    for the :math:`\ell_2`-path regularizer, else ``"partial path"``) and ``expression`` (the
    sympy :math:`\Phi_T`); ``text`` and ``latex`` state the sum.

    Examples
    --------
    >>> import pnd_theory as pt
    >>> compact = pt.deep.derive((1, 2, 2, 1), hidden=[pt.Dropout(0.5), pt.Dropout(0.5)]).compact()
    >>> [(term["sites"], term["coefficient"], term["name"]) for term in compact.terms]
    [(('h1',), lambda_h1, 'partial path'), (('h2',), lambda_h2, 'partial path'),
     (('h1', 'h2'), lambda_h1*lambda_h2, 'l2-path')]
    """

    terms: list
    text: str
    latex: str

    def l2_path(self):
        """The term that is the :math:`\\ell_2`-path regularizer, or None."""
        return next((t for t in self.terms if t["name"] == "l2-path"), None)


@dataclass(frozen=True)
class DeepDerivation:
    r"""Result of :func:`derive`: ``penalty`` (sympy, in the entries of the weights ``W^{(l)}``,
    the symmetric ``S`` and the rate symbols) and ``symbols`` (``"weights"``, ``"S"``,
    ``"rates"``: rate symbol -> value).

    Examples
    --------
    >>> import pnd_theory as pt
    >>> derivation = pt.deep.derive((2, 2, 1), hidden=[pt.Dropout(0.5)])
    >>> derivation.symbols["rates"]
    {p_h1: 0.5}
    >>> print(derivation.latex())
    R = \left(\lambda_{h1}\right) \Phi_{\{\mathrm{h1}\}}
    """

    sizes: tuple
    law: object
    penalty: sympy.Expr
    symbols: dict = field(repr=False)

    def latex(self) -> str:
        """LaTeX of the penalty (the compact sum when one matches, else the expanded form)."""
        compact = self.compact()
        return "R = " + (compact.latex if compact is not None else sympy.latex(self.penalty))

    def penalty_function(self, **values):
        """Numeric callable ``(weights, S=None) -> float`` from the sympy penalty; the rate
        symbols take the laws' values, other free symbols are given by name."""
        Ws, S = self.symbols["weights"], self.symbols["S"]
        subs = dict(self.symbols["rates"])
        by_name = {str(s): s for s in self.penalty.free_symbols}
        unknown = sorted(set(values) - set(by_name))
        if unknown:
            raise InvalidParameterError(f"penalty_function got values for {unknown}, which are not symbols of the penalty")
        subs.update({by_name[k]: v for k, v in values.items()})
        w_syms = [s for W in Ws for s in W]
        n0 = self.sizes[0]
        s_pairs = [(i, j) for i in range(n0) for j in range(i, n0)]
        s_syms = [S[i, j] for i, j in s_pairs]
        free = self.penalty.free_symbols - set(w_syms) - set(s_syms) - set(subs)
        if free:
            raise InvalidParameterError(f"penalty_function needs values for {sorted(map(str, free))}")
        given = list(subs)  # the rates and the given symbols enter as arguments (no slow subs)
        fn = sympy.lambdify(w_syms + s_syms + given, self.penalty, "numpy")
        given_values = [float(subs[g]) for g in given]
        sizes = self.sizes

        def penalty(weights, second_moment=None):
            _, Wn, a, got = check_weights(weights, second_moment=second_moment)
            if got != sizes:
                raise InvalidParameterError(f"weights must have layer sizes {sizes} for this derivation; got {got}")
            Wn = [as_numpy_arrays(W=W)["W"] for W in Wn]
            Sn = np.eye(n0) if a["second_moment"] is None else as_numpy_arrays(S=a["second_moment"])["S"]
            check_second_moment(np, Sn, n0)
            return float(fn(*np.concatenate([W.ravel() for W in Wn]), *(Sn[i, j] for i, j in s_pairs),
                            *given_values))

        return penalty

    def compact(self):
        """:class:`DeepCompactForm`, or None when the penalty is not such a sum (a law with
        per-unit rates, coupled units, or more than ``MAX_COMPACT_SITES`` noisy sites)."""
        return _compact(self)


def derive(sizes, hidden=None, weight_noise=None) -> DeepDerivation:
    r"""Derive the penalty of a noisy deep linear network symbolically, by expanding paths.

    .. math::

        R = \sum_o \sum_{\pi, \pi' \to o} c_\pi c_{\pi'} \big(E[m_\pi m_{\pi'}] - 1\big)
            S_{j_0 j'_0}

    over the pairs of paths :math:`\pi = (j_0, j_1, \dots, j_L = o)` to each output :math:`o`,
    with :math:`c_\pi` the product of the weights along :math:`\pi` and :math:`m_\pi` the product
    of the masks along it (every moment read from the laws; entries that share a variable, as the
    units of a DropBlock block do, counted once).  It propagates no second moment: a route
    independent of :func:`pnd_theory.deep.expected_penalty`.

    Parameters
    ----------
    sizes : sequence of int
        Layer sizes ``(n_0, ..., n_L)``; keep them tiny: the expansion has
        :math:`n_L (n_0 n_1 \cdots n_{L-1})^2` pairs of paths, refused above
        ``MAX_PATH_PAIRS``.
    hidden, weight_noise : list, optional
        As in :func:`pnd_theory.deep.expected_penalty`.

    Returns
    -------
    DeepDerivation

    Examples
    --------
    The derived penalty, as a numeric function, is the closed form; the compact form names the
    :math:`\ell_2`-path regularizer:

    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> derivation = pt.deep.derive((2, 2, 1), hidden=[pt.Dropout(0.5)])
    >>> rng = np.random.default_rng(0)
    >>> weights, S = [rng.normal(size=(2, 2)), rng.normal(size=(1, 2))], np.array([[1.0, 0.3], [0.3, 2.0]])
    >>> R = derivation.penalty_function()(weights, S)
    >>> bool(np.isclose(R, pt.deep.expected_penalty(weights, S, hidden=[pt.Dropout(0.5)])))
    True
    >>> derivation.compact().text
    '(lambda_h1) * Phi[h1]  [l2-path regularizer]'
    """
    sizes = check_sizes(sizes)
    law = deep_law(sizes, hidden, weight_noise)
    L = len(sizes) - 1
    per_output = int(np.prod(sizes[:-1]))
    pairs = sizes[-1] * per_output * (per_output + 1) // 2
    if pairs > MAX_PATH_PAIRS:
        raise InvalidParameterError(
            f"sizes must be small for derive: {sizes} expand {pairs} pairs of paths, above MAX_PATH_PAIRS = "
            f"{MAX_PATH_PAIRS}; use smaller sizes (the closed form pt.deep.expected_penalty has no size limit)")
    Ws, S = _weight_symbols(sizes), _symmetric(sizes[0])
    rates, rate_values = _rate_symbols(law)
    comps = law.components
    cache = {}

    def moment(entries):
        """:math:`E[\\prod m]` over (component, flat entry) keys, independent components."""
        key = tuple(sorted(entries))
        if key not in cache:
            result = sympy.Integer(1)
            for name in comps:
                mine = [e for c, e in key if c == name]
                if mine:
                    result = result * comps[name].moment(mine, rates.get(name))
            cache[key] = sympy.factor(result)
        return cache[key]

    pen = {}
    for o in range(sizes[-1]):
        paths = []
        for js in itertools.product(*(range(n) for n in sizes[:-1])):
            j = js + (o,)
            coeff = sympy.Integer(1)
            keys = []
            for l in range(1, L + 1):
                coeff = coeff * Ws[l - 1][j[l], j[l - 1]]
                if f"W_{l}" in comps:
                    keys.append((f"W_{l}", j[l] * sizes[l - 1] + j[l - 1]))
                if l < L and f"xi_{l}" in comps:
                    keys.append((f"xi_{l}", j[l]))
            paths.append((coeff, j[0], keys))
        for a, (c1, i1, k1) in enumerate(paths):
            for b in range(a, len(paths)):
                c2, i2, k2 = paths[b]
                m = moment(k1 + k2) - 1
                if m != 0:
                    mult = 1 if a == b else 2
                    mono = c1 * c2 * S[i1, i2]
                    pen[mono] = pen.get(mono, 0) + mult * m
    penalty = sympy.Add(*(k * c for k, v in pen.items() if (c := sympy.cancel(v)) != 0))
    return DeepDerivation(sizes, law, penalty, {"weights": Ws, "S": S, "rates": rate_values})


# --------------------------------------------------------------------------- compact form

def _sites(law):
    """Noisy sites in forward order with their common variance symbol, or None when a site's
    law is not one variance for all its entries on a diagonal covariance."""
    sites = []
    for name, comp in law.components.items():
        laws = comp.variable_laws
        if laws is None or len(set(laws)) != 1:
            return None
        if name.startswith("xi") and comp.hidden_covariance().kind != "diagonal":
            return None
        kind, l = name.split("_")
        sites.append(("h" if kind == "xi" else "W") + l)
    return sites


def _phi(sizes, Ws, S, chosen):
    """:math:`\\Phi_T`: the propagation with the noise operator at the sites of ``chosen``."""
    H = S
    L = len(Ws)
    for l in range(1, L + 1):
        W = Ws[l - 1]
        if f"W{l}" in chosen:
            W2 = W.applyfunc(lambda w: w**2)
            H = sympy.diag(*(W2 * sympy.Matrix([H[i, i] for i in range(H.shape[0])])))
        else:
            H = W * H * W.T
        if l < L and f"h{l}" in chosen:
            H = sympy.diag(*[H[i, i] for i in range(H.shape[0])])
    return sympy.expand(H.trace())


def _lam(expr, rate_syms):
    subs = {}
    for sym in rate_syms:
        name = str(sym)
        lam = sympy.Symbol("lambda" + name[1:], nonnegative=True)
        subs[sym] = lam / (1 + lam)
    return sympy.factor(sympy.simplify(sympy.sympify(expr).subs(subs))) if subs else sympy.sympify(expr)


def _compact(derivation: DeepDerivation):
    law, sizes = derivation.law, derivation.sizes
    sites = _sites(law)
    if sites is None or not sites or len(sites) > MAX_COMPACT_SITES:
        return None
    Ws, S = derivation.symbols["weights"], derivation.symbols["S"]
    gens = [s for W in Ws for s in W] + sorted(set(S), key=str)
    subsets = [T for r in range(1, len(sites) + 1) for T in itertools.combinations(sites, r)]
    # a noise operator next to a noisy matrix changes nothing (both keep only diagonals): such
    # subsets give one and the same Phi and are one term
    groups = {}
    for T in subsets:
        groups.setdefault(_phi(sizes, Ws, S, set(T)), []).append(T)
    phis = list(groups)
    unknowns = [sympy.Symbol(f"k_{n}") for n in range(len(phis))]
    target = sympy.Poly(derivation.penalty, *gens).as_dict()
    model = {}
    for k, phi in zip(unknowns, phis):
        for mono, coeff in sympy.Poly(phi, *gens).as_dict().items():
            model[mono] = model.get(mono, 0) + coeff * k
    equations = [model.get(m, 0) - target.get(m, 0) for m in set(model) | set(target)]
    solution = sympy.linsolve(equations, unknowns)
    if not solution:
        return None
    (values,) = solution
    if set().union(*(sympy.sympify(v).free_symbols for v in values)) & set(unknowns):
        return None  # not a unique sum of these terms
    all_hidden = tuple(f"h{l}" for l in range(1, len(sizes) - 1))
    rate_syms = list(derivation.symbols["rates"])
    terms, text, latex = [], [], []
    for phi, value in zip(phis, values):
        coeff = _lam(value, rate_syms)
        if coeff == 0:
            continue
        same = groups[phi]
        name = "l2-path" if all_hidden and all_hidden in same else "partial path"
        terms.append({"sites": same[0], "equivalent": same, "coefficient": coeff, "name": name, "expression": phi})
        label = ",".join(same[0])
        text.append(f"({coeff}) * Phi[{label}]" + ("  [l2-path regularizer]" if name == "l2-path" else ""))
        sub = ",".join(rf"\mathrm{{{x}}}" for x in same[0])
        latex.append(rf"\left({sympy.latex(coeff)}\right) \Phi_{{\{{{sub}\}}}}")
    if not terms:
        return DeepCompactForm([], "0", "0")
    return DeepCompactForm(terms, " + ".join(text), " + ".join(latex))
