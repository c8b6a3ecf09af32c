r"""Gradient noise of the mini-batch loss: what per-sample masks change (THEORY.md, F6).

For a fixed batch :math:`(x_k, y_k)_{k=1}^B` the mini-batch loss and its gradient with
respect to :math:`\theta = (\mathrm{vec}\,U, \mathrm{vec}\,V)` (both row-major) are

.. math::

    \ell = \frac1B \sum_k \|y_k - f_{M_k}(x_k)\|^2, \qquad
    g = \nabla_\theta \ell = \frac1B \sum_k g_k(M_k),

with :math:`M_k = M` for all :math:`k` when one mask is shared by the batch (framework
DropConnect) and independent :math:`M_k` when masks are drawn per sample (PerNodeDrop,
Dropout).  The expected gradient is the same in both cases, :math:`E[g] = \nabla(L + R)` on
the batch; the mask-induced covariance is not:

.. math::

    \mathrm{Cov}[g] = \frac1{B^2} \sum_k C_{kk}\ \text{(per sample)}, \qquad
    \mathrm{Cov}[g] = \frac1{B^2} \sum_{k,l} C_{kl}\ \text{(shared)}, \qquad
    C_{kl} = \mathrm{Cov}_M[g_k(M), g_l(M)].

**Structure used by the closed form.**  Write every mask entry as :math:`1 + e` with
:math:`e` centred.  When only one component of the mask is random and its variables are
independent (hidden-unit noise, or weight noise on one layer), every coordinate of
:math:`g_k` is a sum of products of two affine forms in the centred variables,

.. math::

    g_{k,a} = \sum_t (A_{kat} + \alpha_{kat}^\top e)(B_{kat} + \beta_{kat}^\top e),

for instance, with output-layer weight noise :math:`M_U = 1 + E` and :math:`a_k = V^\top x_k`,
:math:`\bar r_k = U a_k - y_k`,

.. math::

    \partial_{U_{oj}} \ell_k = 2 a_{kj} (1 + E_{oj})
        \big(\bar r_{ko} + \textstyle\sum_m U_{om} a_{km} E_{om}\big), \qquad
    \partial_{V_{ij}} \ell_k = 2 x_{ki} \textstyle\sum_o U_{oj} (1 + E_{oj})
        \big(\bar r_{ko} + \sum_m U_{om} a_{km} E_{om}\big),

and with input-layer weight noise :math:`M_V = 1 + E`, :math:`\delta_{kj} = \sum_i V_{ij}
x_{ki} E_{ij}`, :math:`\bar c_k = U^\top \bar r_k`, :math:`H = U^\top U`,

.. math::

    \partial_{U_{oj}} \ell_k = 2 (\bar r_{ko} + \textstyle\sum_m U_{om} \delta_{km})
        (a_{kj} + \delta_{kj}), \qquad
    \partial_{V_{ij}} \ell_k = 2 x_{ki} (1 + E_{ij})
        (\bar c_{kj} + \textstyle\sum_m H_{jm} \delta_{km}).

So :math:`g = c + b^\top e + e^\top Q e` is quadratic in :math:`e` (each variable to degree at
most 2), and for independent centred variables with variances :math:`\lambda_v`, third
moments :math:`\kappa_v` and fourth cumulants :math:`\chi_v = \mu_{4,v} - 3\lambda_v^2`

.. math::

    E[g_a] = c_a + \sum_v \lambda_v Q_{a,vv}, \qquad
    \mathrm{Cov}(g_a, g'_b) = \sum_v \lambda_v b_{av} b'_{bv}
      + \sum_v \kappa_v (b_{av} Q'_{b,vv} + b'_{bv} Q_{a,vv})
      + \sum_v \chi_v Q_{a,vv} Q'_{b,vv}
      + 2 \sum_{v,w} \lambda_v \lambda_w Q_{a,vw} Q'_{b,vw},

exact for any such law: a Gaussian mask (:math:`\kappa = 0`, :math:`\chi = 0`) and an
inverted Bernoulli mask of the same variance (:math:`\kappa = \lambda(\lambda - 1)`,
:math:`\chi = \lambda(\lambda^2 - 4\lambda + 1)`) give the same expected loss but different
gradient covariances.  The moments are read from the law
(:func:`~pnd_theory.strategies.scalar_moment`); the closed form and the enumeration never
branch on the strategy, only on which mask component is random (only the torch-layer Monte
Carlo maps strategies to layers).

**Scaling.**  For weight noise the trace of :math:`C_{kl}` is a sum of products of
per-sample factors; for the output layer, with :math:`w_{koj} = U_{oj} a_{kj}` and
:math:`W_{kl,o} = \sum_m \lambda_{om} U_{om}^2 a_{km} a_{lm}`,

.. math::

    \mathrm{tr}\,C_{kl} = 4 \sum_{oj} \big(a_{kj} a_{lj} + x_k^\top x_l\, U_{oj}^2\big)
      \Big[(1 + \lambda_{oj}) W_{kl,o} + \lambda_{oj} (\bar r_{ko} + w_{koj})(\bar r_{lo} + w_{loj})
      + \kappa_{oj} (\bar r_{ko} w_{loj} + \bar r_{lo} w_{koj} + 2 w_{koj} w_{loj})
      + (\chi_{oj} + \lambda_{oj}^2 - \lambda_{oj}) w_{koj} w_{loj}\Big]

(the input layer has a similar sum, in :func:`_weight_trace_terms`).  Summed over
:math:`k, l` the samples contract first, so the per-batch trace costs :math:`O(N)`, not
:math:`O(N^2)`, and no dense coefficient array is formed.

**Exact enumeration** (any law of independent variables, several components included):
each variable is replaced by a discrete law with the same moments up to order 4 (a
Bernoulli variable is its own two-point law; :math:`N(1, \lambda)` becomes the 3-point
Gauss-Hermite rule :math:`1 - \sqrt{3\lambda}, 1, 1 + \sqrt{3\lambda}` with weights
1/6, 2/3, 1/6, exact to order 5), and the gradient of every sample is computed by torch
autograd through :meth:`MaskLaw.predict` for every configuration.

**Monte Carlo** (:func:`monte_carlo_gradient_noise`) uses real autograd gradients, either of
:class:`~pnd_theory.network.LinearNetwork`'s mini-batch loss or of a two-layer network
built from the torch layers (:class:`~pnd_theory.nn.PerNodeDropLinear`,
:class:`~pnd_theory.nn.DropConnectLinear`), with :math:`V^\top` as the first layer's weight
and :math:`U` as the second's.

**Batch size** (:func:`gradient_noise_vs_batch_size`): with :math:`\bar T_1 = \frac1N
\sum_k \mathrm{tr}\, C_{kk}` and :math:`\bar T_\infty = \frac1{N^2}\sum_{k,l}
\mathrm{tr}\, C_{kl}` (the mask-induced trace of the full-data gradient with one shared
mask), batches of :math:`B` samples drawn uniformly with replacement give

.. math::

    E\,\mathrm{tr\,Cov}_{\text{per sample}} = \frac{\bar T_1}{B}, \qquad
    E\,\mathrm{tr\,Cov}_{\text{shared}} = \bar T_\infty + \frac{\bar T_1 - \bar T_\infty}{B},

so the ratio is :math:`1 + (B - 1)\rho` with :math:`\rho = \bar T_\infty / \bar T_1`, the
average correlation of the mask noise of two samples: how similar the samples of a batch
are decides the gap.

**Local reparameterization** (``local_reparameterization=True``): the Gaussian PerNodeDrop
layer's fast path :math:`z = W x + \sqrt{\lambda (W \circ W)(x \circ x)}\,\varepsilon` has the
exact layer's forward law but a different gradient: :math:`\partial z_j / \partial W_{ji} =
x_i + \sqrt\lambda\, \varepsilon_j W_{ji} x_i^2 / \sigma_j` with one :math:`\varepsilon_j`
per unit, instead of :math:`M_{ji} x_i` with independent :math:`M_{ji}`.  Its gradient is
again a sum of products of affine forms, now in the standard normals :math:`\varepsilon`,
and the same formula gives its covariance in closed form.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch

from ._validation import (InvalidParameterError, as_numpy_arrays, check_bool, check_choice, check_data, check_factors,
                          check_positive_int, check_seed)
from ._validation import resolve_device
from .strategies import check_strategy
from .laws import Gaussian, IndependentMask
from .exact import enumerate_masks
from .layers import network_for
from .strategies import check_strategy

__all__ = [
    "GradientNoise",
    "BatchSizeNoise",
    "MonteCarloGradientNoise",
    "MonteCarloBatchSizeNoise",
    "StationarySpread",
    "gradient_noise",
    "gradient_noise_vs_batch_size",
    "monte_carlo_gradient_noise",
    "monte_carlo_gradient_noise_vs_batch_size",
    "stationary_spread",
    "mask_sharing_pair",
]

METHODS = ("auto", "closed_form", "enumeration")
SAMPLINGS = ("with_replacement", "without_replacement", "first")
VIAS = ("network", "layers")

#: configurations above which exact enumeration refuses
MAX_CONFIGURATIONS = 3**10
#: largest number of parameters for which the full covariance is formed by default
MAX_DENSE_PARAMETERS = 1024
#: elements of the coefficient arrays held at once (the batch is processed in chunks)
MAX_ELEMENTS = 2**22


# =========================================================================== results

@dataclass(frozen=True)
class GradientNoise:
    r"""Mask-induced mean and covariance of the mini-batch gradient (:func:`gradient_noise`).

    Parameters are ordered as ``U`` flattened row-major, then ``V`` flattened row-major.

    Attributes
    ----------
    trace : float
        :math:`\mathrm{tr\,Cov}[g]` for the strategy's own mask sharing.
    covariance : ndarray (P, P) or None
        :math:`\mathrm{Cov}[g]` (``None`` when not formed: see ``full_covariance``).
    mean : ndarray (P,)
        :math:`E[g] = \nabla_\theta (L + R)` on the batch.
    trace_U, trace_V : float
        The parts of ``trace`` from the ``U`` and the ``V`` coordinates.
    trace_per_sample, trace_per_batch : float
        The trace if the same mask law were drawn per sample,
        :math:`\frac1{B^2}\sum_k \mathrm{tr}\,C_{kk}`, or shared by the batch,
        :math:`\frac1{B^2}\sum_{kl} \mathrm{tr}\,C_{kl}` (``None`` for the local
        reparameterization, which has no shared version).  ``trace`` is one of them.
    per_sample : bool
        Whether the strategy draws its masks per sample (``law.per_sample``).
    batch_size : int
    method : str
        ``"closed_form"`` or ``"enumeration"``.
    local_reparameterization : bool
    shapes : tuple
        ``(U.shape, V.shape)``, to split a parameter vector with :meth:`split`.
    """

    trace: float
    covariance: np.ndarray | None = field(repr=False)
    mean: np.ndarray = field(repr=False)
    trace_U: float
    trace_V: float
    trace_per_sample: float
    trace_per_batch: float | None
    per_sample: bool
    batch_size: int
    method: str
    local_reparameterization: bool
    shapes: tuple = field(repr=False)

    @property
    def n_parameters(self) -> int:
        return int(self.mean.size)

    def split(self, vector):
        """``(G_U, G_V)`` of shapes ``U.shape`` and ``V.shape`` from a parameter vector."""
        (n_out, d), (n_in, _) = self.shapes
        vector = np.asarray(vector)
        return vector[: n_out * d].reshape(n_out, d), vector[n_out * d:].reshape(n_in, d)


@dataclass(frozen=True)
class BatchSizeNoise:
    r"""Expected mask-induced gradient-covariance trace against the batch size
    (:func:`gradient_noise_vs_batch_size`).

    Attributes
    ----------
    batch_sizes : ndarray of int
    per_sample : ndarray
        Per-sample masks: :math:`\bar T_1 / B` (random batches), or the exact trace of the
        first ``B`` columns.
    per_batch : ndarray or None
        One mask shared by the batch: :math:`\bar T_\infty + (\bar T_1 - \bar T_\infty)/B`
        (with replacement), :math:`\bar T_1/B + (1 - 1/B)\,\bar T_{\ne}` (without), or the
        exact trace of the first ``B`` columns.  ``None`` for the local reparameterization.
    trace : ndarray
        The one of the two that matches the strategy's own sharing.
    single_sample_trace : float
        :math:`\bar T_1 = \frac1N \sum_k \mathrm{tr}\,C_{kk}` (the trace at ``B = 1``).
    full_data_trace : float or None
        :math:`\bar T_\infty = \frac1{N^2} \sum_{kl} \mathrm{tr}\,C_{kl}`: the mask-induced
        trace of the full-data gradient with one shared mask; the limit of ``per_batch`` as
        ``B`` grows (with replacement), and its value at ``B = N`` (without).
    pair_trace : float or None
        :math:`\bar T_{\ne} = \frac1{N(N-1)} \sum_{k \ne l} \mathrm{tr}\,C_{kl}`
        (``None`` when ``N = 1``).
    correlation : float or None
        :math:`\rho = \bar T_\infty / \bar T_1`; ``per_batch / per_sample = 1 + (B - 1)\rho``
        with replacement.
    sampling : str
    per_sample_law : bool
    """

    batch_sizes: np.ndarray
    per_sample: np.ndarray
    per_batch: np.ndarray | None
    trace: np.ndarray
    single_sample_trace: float
    full_data_trace: float | None
    pair_trace: float | None
    correlation: float | None
    sampling: str
    per_sample_law: bool

    @property
    def ratio(self):
        """``per_batch / per_sample`` at every batch size (``None`` without ``per_batch``)."""
        return None if self.per_batch is None else self.per_batch / self.per_sample


@dataclass(frozen=True)
class MonteCarloGradientNoise:
    r"""Monte Carlo estimate of the mask-induced gradient covariance from real autograd
    gradients (:func:`monte_carlo_gradient_noise`).

    Attributes
    ----------
    trace, trace_se : float
        Unbiased estimate of :math:`\mathrm{tr\,Cov}[g]` (mean over ``groups`` independent
        groups of draws, each with the unbiased sample variance) and its standard error
        (standard deviation of the group estimates over :math:`\sqrt{\text{groups}}`).
    mean, mean_se : ndarray (P,)
        Sample mean gradient and its standard error.
    covariance : ndarray (P, P)
        Unbiased sample covariance over all draws.
    draws : int
    via : str
    """

    trace: float
    trace_se: float
    mean: np.ndarray = field(repr=False)
    mean_se: np.ndarray = field(repr=False)
    covariance: np.ndarray = field(repr=False)
    draws: int
    via: str


@dataclass(frozen=True)
class StationarySpread:
    r"""Spread of :math:`A = U V^\top` at the end of constant-learning-rate training over
    several seeds (:func:`stationary_spread`).

    Attributes
    ----------
    spread, spread_se : float
        :math:`\frac1S \sum_s \overline{\|A_s(t) - \bar A\|_F^2}` (time-averaged over the
        recorded end of each run, :math:`\bar A` the mean over seeds and time, with the
        :math:`S/(S-1)` correction for estimating :math:`\bar A`) and its standard error over
        the seeds.
    mean_product : ndarray (n_out, n_in)
        :math:`\bar A`.
    products : ndarray (S, n_out, n_in)
        Each seed's time-averaged product.
    optimum : ndarray or None
        The closed-form optimum :math:`A^*` when one was computed.
    distance_to_optimum, distance_se : float or None
        :math:`\|\bar A - A^*\|_F` and a standard error for it (from the seeds' spread of
        time-averaged products).
    spread_about_optimum, spread_about_optimum_se : float or None
        :math:`\frac1S\sum_s \overline{\|A_s(t) - A^*\|_F^2}` and its standard error.
    seeds : tuple
    """

    spread: float
    spread_se: float
    mean_product: np.ndarray
    products: np.ndarray = field(repr=False)
    optimum: np.ndarray | None = field(repr=False)
    distance_to_optimum: float | None
    distance_se: float | None
    spread_about_optimum: float | None
    spread_about_optimum_se: float | None
    seeds: tuple


# =========================================================================== validation

def _numpy_problem(U, V, X, Y, x_name="X_batch", y_name="Y_batch"):
    """Validate and convert to float64 numpy (torch tensors are accepted)."""
    a = as_numpy_arrays(U=U, V=V, **{x_name: X, y_name: Y})
    check_factors(a["U"], a["V"])
    check_data(a[x_name], a[y_name], a["U"], a["V"], x_name, y_name)
    return tuple(np.ascontiguousarray(a[k]) for k in ("U", "V", x_name, y_name))


def _check_local_reparameterization(strategy, law, local_reparameterization):
    """The layer name and noise strength of a per-sample Gaussian weight law on one layer (read
    from the law), or ``None`` when the local reparameterization is off."""
    if not local_reparameterization:
        return None
    found = _single_independent_component(law)
    if (found is None or found[0] == "hidden" or not law.per_sample or not found[1].independent_entries
            or not isinstance(found[1].single_law, Gaussian)):
        raise InvalidParameterError(
            "local_reparameterization=True describes the fast path of the Gaussian PerNodeDrop layer: "
            "strategy must have per-sample Gaussian noise on the weights of one layer (e.g. "
            f"PerNodeDrop(p, layer='input' or 'output', stir='gaussian')); got {strategy!r}"
        )
    name, comp = found
    return name, comp.single_law.variance


# =========================================================================== moments

def _central_moments(component):
    r"""Per-variable :math:`(\lambda, \kappa, \chi)`: variance, third central moment and fourth
    cumulant of :math:`m - 1`, from the raw moments of the variables' laws."""
    component.check_order(4, "the gradient covariance")
    cache = {law: [law.moment(k) for k in (2, 3, 4)] for law in set(component.variable_laws)}
    m2, m3, m4 = np.array([cache[law] for law in component.variable_laws], dtype=np.float64).T
    lam = m2 - 1.0
    kappa = m3 - 3.0 * m2 + 2.0
    mu4 = m4 - 4.0 * m3 + 6.0 * m2 - 3.0
    return lam, kappa, mu4 - 3.0 * lam * lam


def _entry_to_variable(component) -> np.ndarray:
    """Indicator matrix (entries x variables) of which variable every entry copies."""
    groups = np.asarray(component.groups).ravel()
    G = np.zeros((groups.size, component.n_variables))
    G[np.arange(groups.size), groups] = 1.0
    return G


def _single_independent_component(law):
    """``(name, component)`` when exactly one component is random and it is an
    :class:`IndependentMask`; else ``None``."""
    comps = law.components
    if len(comps) != 1:
        return None
    (name, comp), = comps.items()
    if not isinstance(comp, IndependentMask):
        return None
    return name, comp


def _reject_covariance_only(law):
    law.check_order(4, "the gradient covariance (its gradient noise is not determined by a law that "
                       "fixes fewer moments)")


# =========================================================================== affine-product forms

class _Forms:
    r"""Coefficients of :math:`g_{k,a} = \sum_t (A + \alpha^\top e)(B + \beta^\top e)` for a
    chunk of samples: ``A``, ``Bc`` of shape (k, P, T); ``al``, ``be`` of shape (k, P, T, n)."""

    def __init__(self, A, Bc, al, be):
        self.A, self.Bc, self.al, self.be = A, Bc, al, be

    def quadratic(self, dense=False):
        r"""Per-sample :math:`c` (k, P), :math:`b` (k, P, n), :math:`\mathrm{diag}\,Q` (k, P, n)
        and, with ``dense``, :math:`Q` (k, P, n, n)."""
        c = (self.A * self.Bc).sum(-1)
        b = (self.A[..., None] * self.be + self.Bc[..., None] * self.al).sum(2)
        qd = (self.al * self.be).sum(2)
        Q = None
        if dense:
            Q = np.einsum("kptv,kptw->kpvw", self.al, self.be)
            Q = 0.5 * (Q + Q.transpose(0, 1, 3, 2))
        return c, b, qd, Q


def _problem_quantities(U, V, X, Y):
    a = X.T @ V                # (k, d): a_k = V^T x_k
    r = a @ U.T - Y.T          # (k, n_out): noiseless residual
    c = r @ U                  # (k, d): U^T r_k
    return a, r, c


def _forms_weight_output(U, V, X, Y, ent):
    """Output-layer weight noise ``M_U = 1 + E`` (entries (o, m) row-major)."""
    n_out, d = U.shape
    n_in = V.shape[0]
    k = X.shape[1]
    a, r, _ = _problem_quantities(U, V, X, Y)
    P = (n_out + n_in) * d
    T = n_out
    n_e = n_out * d
    A = np.zeros((k, P, T))
    Bc = np.zeros((k, P, T))
    al = np.zeros((k, P, T, n_e))
    be = np.zeros((k, P, T, n_e))
    # the linear form of row o of E in the residual r_o: sum_m U_om a_km E_om
    row = np.zeros((k, n_out, n_out, d))
    row[:, np.arange(n_out), np.arange(n_out), :] = U[None, :, :] * a[:, None, :]
    row = row.reshape(k, n_out, n_e)
    nu = n_out * d
    o_idx, j_idx = np.divmod(np.arange(nu), d)
    # U coordinates (o, j): 2 a_j (1 + E_oj)(r_o + row_o . E), one term
    A[:, :nu, 0] = 2 * a[:, j_idx]
    al[:, np.arange(nu), 0, np.arange(nu)] = 2 * a[:, j_idx]
    Bc[:, :nu, 0] = r[:, o_idx]
    be[:, :nu, 0, :] = row[:, o_idx, :]
    # V coordinates (i, j): sum_o 2 x_i U_oj (1 + E_oj)(r_o + row_o . E), one term per o
    i_idx, jv_idx = np.divmod(np.arange(n_in * d), d)
    xs = X.T[:, i_idx]                                   # (k, nv)
    for o in range(n_out):
        coef = 2 * xs * U[o, jv_idx][None, :]
        A[:, nu:, o] = coef
        al[:, nu + np.arange(n_in * d), o, o * d + jv_idx] = coef
        Bc[:, nu:, o] = r[:, [o]]
        be[:, nu:, o, :] = row[:, [o], :]
    return _to_variables(A, Bc, al, be, ent)


def _forms_weight_input(U, V, X, Y, ent):
    """Input-layer weight noise ``M_V = 1 + E`` (entries (i, m) row-major)."""
    n_out, d = U.shape
    n_in = V.shape[0]
    k = X.shape[1]
    a, r, c = _problem_quantities(U, V, X, Y)
    H = U.T @ U
    z = X.T[:, :, None] * V[None, :, :]                  # (k, i, m): V_im x_ki
    P = (n_out + n_in) * d
    n_e = n_in * d
    nu, nv = n_out * d, n_in * d
    o_idx, j_idx = np.divmod(np.arange(nu), d)
    i_idx, jv_idx = np.divmod(np.arange(nv), d)
    A = np.zeros((k, P, 1))
    Bc = np.zeros((k, P, 1))
    al = np.zeros((k, P, 1, n_e))
    be = np.zeros((k, P, 1, n_e))
    # U coordinates (o, j): 2 (r_o + sum_m U_om delta_m)(a_j + delta_j), delta_m = sum_i z_im E_im
    A[:, :nu, 0] = 2 * r[:, o_idx]
    al[:, :nu, 0, :] = (2 * U[o_idx][None, :, None, :] * z[:, None, :, :]).reshape(k, nu, n_e)
    Bc[:, :nu, 0] = a[:, j_idx]
    sel = np.zeros((nu, n_in, d))
    sel[np.arange(nu), :, j_idx] = 1.0
    be[:, :nu, 0, :] = (sel[None] * z[:, None, :, :]).reshape(k, nu, n_e)
    # V coordinates (i, j): 2 x_i (1 + E_ij)(c_j + sum_m H_jm delta_m)
    A[:, nu:, 0] = 2 * X.T[:, i_idx]
    al[:, nu + np.arange(nv), 0, np.arange(nv)] = 2 * X.T[:, i_idx]
    Bc[:, nu:, 0] = c[:, jv_idx]
    be[:, nu:, 0, :] = (H[jv_idx][None, :, None, :] * z[:, None, :, :]).reshape(k, nv, n_e)
    return _to_variables(A, Bc, al, be, ent)


def _forms_hidden(U, V, X, Y, ent, scale=None, v_alpha=None):
    r"""Hidden-unit noise ``xi = 1 + e`` (entries j), or, with ``scale`` (k, d), the local
    reparameterization of the input layer (``h_j = a_j + scale_j e_j``) whose V coordinates
    have the linear form ``v_alpha`` (k, i, j) in place of ``x_i e_j``."""
    n_out, d = U.shape
    n_in = V.shape[0]
    k = X.shape[1]
    a, r, c = _problem_quantities(U, V, X, Y)
    s = a if scale is None else scale                    # h_j = a_j + s_j e_j
    H = U.T @ U
    P = (n_out + n_in) * d
    nu, nv = n_out * d, n_in * d
    o_idx, j_idx = np.divmod(np.arange(nu), d)
    i_idx, jv_idx = np.divmod(np.arange(nv), d)
    A = np.zeros((k, P, 1))
    Bc = np.zeros((k, P, 1))
    al = np.zeros((k, P, 1, d))
    be = np.zeros((k, P, 1, d))
    # U coordinates (o, j): 2 (r_o + sum_m U_om s_m e_m)(a_j + s_j e_j)
    A[:, :nu, 0] = 2 * r[:, o_idx]
    al[:, :nu, 0, :] = 2 * U[o_idx][None] * s[:, None, :]
    Bc[:, :nu, 0] = a[:, j_idx]
    be[:, np.arange(nu), 0, j_idx] = s[:, j_idx]
    # V coordinates (i, j): 2 (x_i + [x_i or eta_ij] e_j)(c_j + sum_m H_jm s_m e_m)
    A[:, nu:, 0] = 2 * X.T[:, i_idx]
    lin = X.T[:, i_idx] if v_alpha is None else v_alpha.reshape(k, nv)
    al[:, nu + np.arange(nv), 0, jv_idx] = 2 * lin
    Bc[:, nu:, 0] = c[:, jv_idx]
    be[:, nu:, 0, :] = H[jv_idx][None] * s[:, None, :]
    return _to_variables(A, Bc, al, be, ent)


def _forms_local_output(U, V, X, Y, lam):
    r"""Local reparameterization of the output layer: :math:`f_o = (U a)_o + \sqrt\lambda
    \tau_o \varepsilon_o`, :math:`\tau_o^2 = \sum_j U_{oj}^2 a_j^2` (variables
    :math:`\varepsilon_o`, standard normal)."""
    n_out, d = U.shape
    n_in = V.shape[0]
    k = X.shape[1]
    a, r, _ = _problem_quantities(U, V, X, Y)
    tau = np.sqrt((a[:, None, :] ** 2 * U[None] ** 2).sum(-1))          # (k, o)
    inv = np.divide(1.0, tau, out=np.zeros_like(tau), where=tau > 0)
    sl = math.sqrt(lam)
    P = (n_out + n_in) * d
    nu, nv = n_out * d, n_in * d
    o_idx, j_idx = np.divmod(np.arange(nu), d)
    i_idx, jv_idx = np.divmod(np.arange(nv), d)
    A = np.zeros((k, P, n_out))
    Bc = np.zeros((k, P, n_out))
    al = np.zeros((k, P, n_out, n_out))
    be = np.zeros((k, P, n_out, n_out))
    # U coordinates (o, j): 2 (r_o + sl tau_o eps_o)(a_j + sl U_oj a_j^2 / tau_o eps_o)
    A[:, :nu, 0] = 2 * r[:, o_idx]
    al[:, np.arange(nu), 0, o_idx] = 2 * sl * tau[:, o_idx]
    Bc[:, :nu, 0] = a[:, j_idx]
    be[:, np.arange(nu), 0, o_idx] = sl * U[o_idx, j_idx][None] * a[:, j_idx] ** 2 * inv[:, o_idx]
    # V coordinates (i, j): sum_o 2 x_i (r_o + sl tau_o eps_o)(U_oj + sl U_oj^2 a_j / tau_o eps_o)
    xs = X.T[:, i_idx]
    for o in range(n_out):
        A[:, nu:, o] = 2 * xs * r[:, [o]]
        al[:, nu:, o, o] = 2 * xs * sl * tau[:, [o]]
        Bc[:, nu:, o] = U[o, jv_idx][None]
        be[:, nu:, o, o] = sl * U[o, jv_idx][None] ** 2 * a[:, jv_idx] * inv[:, [o]]
    return _Forms(A, Bc, al, be)


def _to_variables(A, Bc, al, be, ent):
    """Coefficients on mask entries -> coefficients on the law's variables."""
    if ent is None:
        return _Forms(A, Bc, al, be)
    return _Forms(A, Bc, al @ ent, be @ ent)


class _ClosedForm:
    """The closed form for one (law, U, V): builds forms for chunks of samples."""

    def __init__(self, strategy, law, U, V, local_layer):
        self.U, self.V = U, V
        self.local_layer = None if local_layer is None else local_layer[0]
        if local_layer is not None:
            local_layer, lam = local_layer
            self.lam_param = lam
            n = U.shape[1] if local_layer == "input" else U.shape[0]
            self.moments = (np.ones(n), np.zeros(n), np.zeros(n))
            self.name = local_layer
            return
        found = _single_independent_component(law)
        if found is None:
            raise ValueError(
                "the closed form covers laws with one random component of independent variables (hidden-unit "
                "noise, or weight noise on one layer); this law has components "
                f"{sorted(law.components)}: use method='enumeration' (small sizes) or monte_carlo_gradient_noise"
            )
        self.name, comp = found
        self.moments = _central_moments(comp)
        self.ent = _entry_to_variable(comp)
        if np.array_equal(self.ent, np.eye(self.ent.shape[0])):
            self.ent = None

    @property
    def n_variables(self):
        return self.moments[0].size

    @property
    def structured(self) -> bool:
        """Weight noise with one variable per entry: traces and means by the structured
        formulas of :func:`_weight_trace_terms` (no dense coefficient arrays)."""
        return self.local_layer is None and self.name in ("output", "input") and self.ent is None

    def dense_size(self) -> int:
        """Entries of one sample's dense coefficient arrays (the generic engine)."""
        n_out, d = self.U.shape
        P = (n_out + self.V.shape[0]) * d
        n_e = {"output": n_out * d, "input": self.V.shape[0] * d}.get(self.name, d)
        T = n_out if (self.name == "output" or self.local_layer == "output") else 1
        if self.local_layer == "output":
            n_e = n_out
        return P * (T * (n_e + self.n_variables) * 2 + self.n_variables ** 2)

    def forms(self, X, Y):
        U, V = self.U, self.V
        if self.local_layer == "input":
            lam = self.lam_param
            sigma = np.sqrt((X.T[:, :, None] ** 2 * V[None] ** 2).sum(1))        # (k, d)
            inv = np.divide(1.0, sigma, out=np.zeros_like(sigma), where=sigma > 0)
            scale = math.sqrt(lam) * sigma
            eta = math.sqrt(lam) * V[None] * X.T[:, :, None] ** 2 * inv[:, None, :]   # (k, i, j)
            return _forms_hidden(U, V, X, Y, None, scale=scale, v_alpha=eta)
        if self.local_layer == "output":
            return _forms_local_output(U, V, X, Y, self.lam_param)
        if self.name == "output":
            return _forms_weight_output(U, V, X, Y, self.ent)
        if self.name == "input":
            return _forms_weight_input(U, V, X, Y, self.ent)
        return _forms_hidden(U, V, X, Y, self.ent)

    def chunks(self, X, Y):
        step = max(1, MAX_ELEMENTS // max(self.dense_size(), 1))
        for s in range(0, X.shape[1], step):
            yield s, self.forms(X[:, s:s + step], Y[:, s:s + step])

    def sample_means(self, X, Y):
        r"""Per-sample expected gradients (k, P).  Structured: output layer
        :math:`E[\partial_{U_{oj}}] = 2 a_j (\bar r_o + \lambda_{oj} U_{oj} a_j)`,
        :math:`E[\partial_{V_{ij}}] = 2 x_i \sum_o U_{oj} (\bar r_o + \lambda_{oj} U_{oj} a_j)`;
        input layer :math:`E[\partial_{U_{oj}}] = 2 (\bar r_o a_j + U_{oj} \sum_i \lambda_{ij}
        V_{ij}^2 x_i^2)`, :math:`E[\partial_{V_{ij}}] = 2 x_i (\bar c_j + \lambda_{ij} H_{jj} V_{ij} x_i)`."""
        U, V = self.U, self.V
        if not self.structured:
            out = []
            for _, forms in self.chunks(X, Y):
                c, _, qd, _ = forms.quadratic(dense=False)
                out.append(_mean(self.moments, c, qd))
            return np.concatenate(out)
        lam = self.moments[0].reshape(-1, U.shape[1])
        a, r, c = _problem_quantities(U, V, X, Y)
        x = X.T
        k = x.shape[0]
        if self.name == "output":
            e = r[:, :, None] + lam[None] * U[None] * a[:, None, :]          # (k, o, j)
            gU = 2 * a[:, None, :] * e
            gV = 2 * x[:, :, None] * np.einsum("oj,koj->kj", U, e)[:, None, :]
        else:
            s = np.einsum("ij,ki->kj", lam * V ** 2, x ** 2)
            gU = 2 * (r[:, :, None] * a[:, None, :] + U[None] * s[:, None, :])
            gV = 2 * x[:, :, None] * (c[:, None, :] + lam[None] * np.diag(U.T @ U)[None, None, :] * V[None] * x[:, :, None])
        return np.concatenate([gU.reshape(k, -1), gV.reshape(k, -1)], axis=1)

    def traces(self, X, Y):
        r"""``(diag_U, diag_V, total_U, total_V)``: :math:`\mathrm{tr}\,C_{kk}` split over the
        U and V coordinates (arrays (N,)) and :math:`\sum_{kl} \mathrm{tr}\,C_{kl}` (floats)."""
        nu = self.U.size
        if self.structured:
            tU, tV = _weight_trace_terms(self.name, self.U, self.V, X, Y, self.moments)
            return (_evaluate_terms(tU, "diagonal"), _evaluate_terms(tV, "diagonal"),
                    float(_evaluate_terms(tU, "total")), float(_evaluate_terms(tV, "total")))
        n = self.n_variables
        P = self.U.size + self.V.size
        diag = np.zeros((X.shape[1], P))
        b_all, qd_all, Q_all = np.zeros((P, n)), np.zeros((P, n)), np.zeros((P, n, n))
        for s, forms in self.chunks(X, Y):
            _, b, qd, Q = forms.quadratic(dense=True)
            diag[s:s + b.shape[0]] = _per_sample_variances(self.moments, forms)
            b_all += b.sum(0)
            qd_all += qd.sum(0)
            Q_all += Q.sum(0)
        total = _quadratic_trace(self.moments, b_all, qd_all, Q_all)
        return diag[:, :nu].sum(1), diag[:, nu:].sum(1), float(total[:nu].sum()), float(total[nu:].sum())

    def covariances(self, X, Y):
        r"""Full :math:`\sum_k C_{kk}` and :math:`\sum_{kl} C_{kl}` (P, P), generic engine."""
        P = self.U.size + self.V.size
        n = self.n_variables
        cov_diag = np.zeros((P, P))
        b_all, qd_all, Q_all = np.zeros((P, n)), np.zeros((P, n)), np.zeros((P, n, n))
        for _, forms in self.chunks(X, Y):
            _, b, qd, Q = forms.quadratic(dense=True)
            cov_diag += _quadratic_covariance(self.moments, b, qd, Q, b, qd, Q)
            b_all += b.sum(0)
            qd_all += qd.sum(0)
            Q_all += Q.sum(0)
        args = (b_all[None], qd_all[None], Q_all[None])
        return cov_diag, _quadratic_covariance(self.moments, *args, *args)


def _quadratic_covariance(moments, b1, qd1, Q1, b2, qd2, Q2):
    r"""Full :math:`\mathrm{Cov}(g, g')` of two quadratic polynomials of the same variables,
    summed over a leading sample axis: ``b`` (k, P, n), ``qd`` (k, P, n), ``Q`` (k, P, n, n)."""
    lam, kap, chi = moments
    C = np.einsum("kav,kbv->ab", b1 * lam, b2)
    C += np.einsum("kav,kbv->ab", b1 * kap, qd2) + np.einsum("kav,kbv->ab", qd1, b2 * kap)
    C += np.einsum("kav,kbv->ab", qd1 * chi, qd2)
    LL = lam[:, None] * lam[None, :]
    k, P, n, _ = Q1.shape
    C += 2 * np.einsum("kax,kbx->ab", (Q1 * LL).reshape(k, P, n * n), Q2.reshape(k, P, n * n))
    return C


def _quadratic_trace(moments, b, qd, Q):
    """Per-coordinate variances (P,) of one quadratic polynomial (no sample axis)."""
    lam, kap, chi = moments
    LL = lam[:, None] * lam[None, :]
    return ((b * b * lam).sum(-1) + 2 * (b * qd * kap).sum(-1) + (qd * qd * chi).sum(-1)
            + 2 * (Q * Q * LL).sum((-1, -2)))


def _per_sample_variances(moments, forms):
    r"""Per-sample, per-coordinate variances :math:`\mathrm{Var}[g_{k,a}]` (k, P), in the
    factored form :math:`2\|Q\|_\Lambda^2 = \sum_{tt'} \langle\alpha_t,\alpha_{t'}\rangle
    \langle\beta_t,\beta_{t'}\rangle + \langle\alpha_t,\beta_{t'}\rangle\langle\beta_t,
    \alpha_{t'}\rangle` (no dense Q)."""
    lam, kap, chi = moments
    _, b, qd, _ = forms.quadratic(dense=False)
    var = (b * b * lam).sum(-1) + 2 * (b * qd * kap).sum(-1) + (qd * qd * chi).sum(-1)
    al, be = forms.al, forms.be
    aa = np.einsum("kptv,kpuv->kptu", al * lam, al)
    bb = np.einsum("kptv,kpuv->kptu", be * lam, be)
    ab = np.einsum("kptv,kpuv->kptu", al * lam, be)
    var += (aa * bb).sum((-1, -2)) + (ab * ab.transpose(0, 1, 3, 2)).sum((-1, -2))
    return var


def _mean(moments, c, qd):
    return c + (qd * moments[0]).sum(-1)


# =========================================================================== structured traces (weight noise)

def _weight_trace_terms(layer, U, V, X, Y, moments):
    r"""Terms of :math:`\mathrm{tr}\,C_{kl}` for weight noise on one layer, as einsum
    specifications over per-sample arrays indexed by ``k`` (first sample) and ``l`` (second
    sample); returns ``(terms_U, terms_V)``, lists of ``(coefficient, subscripts, operands)``.

    Output layer (:math:`w_{koj} = U_{oj} a_{kj}`, :math:`W_{kl,o} = \sum_m \lambda_{om}
    U_{om}^2 a_{km} a_{lm}`):

    .. math::

        \mathrm{tr}\,C_{kl} = 4 \sum_{oj} \big(a_{kj} a_{lj} + (x_k^\top x_l) U_{oj}^2\big)
        \Big[(1 + \lambda_{oj}) W_{kl,o} + \lambda_{oj} (\bar r_{ko} + w_{koj})(\bar r_{lo} + w_{loj})
        + \kappa_{oj} (\bar r_{ko} w_{loj} + \bar r_{lo} w_{koj} + 2 w_{koj} w_{loj})
        + (\chi_{oj} + \lambda_{oj}^2 - \lambda_{oj}) w_{koj} w_{loj}\Big].

    Input layer (:math:`z_{kim} = V_{im} x_{ki}`, :math:`s_m = \sum_i \lambda_{im} z_{kim}
    z_{lim}`, :math:`R_o = \sum_m U_{om}^2 s_m`, :math:`\Gamma_j = \sum_m H_{jm}^2 s_m`,
    :math:`t^{12}_m = \sum_i \kappa_{im} z_{kim} z_{lim}^2`, :math:`t^{21}_m` with ``k`` and
    ``l`` exchanged, :math:`q_m = \sum_i \chi_{im} z_{kim}^2 z_{lim}^2`):

    .. math::

        \tfrac14 \mathrm{tr}\,C^U_{kl} = \sum_{oj} s_j \bar r_{ko} \bar r_{lo}
          + s_j U_{oj} (\bar r_{ko} a_{lj} + a_{kj} \bar r_{lo}) + a_{kj} a_{lj} R_o
          + U_{oj} t^{12}_j (\bar r_{ko} + a_{kj} U_{oj}) + U_{oj} t^{21}_j (\bar r_{lo} + a_{lj} U_{oj})
          + U_{oj}^2 q_j + R_o s_j + U_{oj}^2 s_j^2,

        \tfrac14 \mathrm{tr}\,C^V_{kl} = \sum_{ij} x_{ki} x_{li} \Big[(1 + \lambda_{ij}) \Gamma_j
          + \lambda_{ij} \big(\bar c_{kj} \bar c_{lj} + H_{jj} (\bar c_{kj} z_{lij} + \bar c_{lj} z_{kij})\big)
          + \kappa_{ij} H_{jj} (\bar c_{kj} z_{lij} + \bar c_{lj} z_{kij} + 2 H_{jj} z_{kij} z_{lij})
          + (\chi_{ij} + \lambda_{ij}^2) H_{jj}^2 z_{kij} z_{lij}\Big].
    """
    lam, kap, chi = (m.reshape(-1, U.shape[1]) for m in moments)
    a, r, c = _problem_quantities(U, V, X, Y)
    x = X.T
    U2 = U * U
    if layer == "output":
        w = U[None] * a[:, None, :]                      # (k, o, j)
        p = r[:, :, None] + w
        core = [  # K_kl,oj without the F factor: (coef, subscripts over k/l/o/j, operands)
            (1.0, "oj,om,km,lm", [1 + lam, lam * U2, a, a]),
            (1.0, "oj,koj,loj", [lam, p, p]),
            (1.0, "oj,ko,loj", [kap, r, w]),
            (1.0, "oj,lo,koj", [kap, r, w]),
            (2.0, "oj,koj,loj", [kap, w, w]),
            (1.0, "oj,koj,loj", [chi + lam * lam - lam, w, w]),
        ]
        terms_U = [(4 * cf, "kj,lj," + sub, [a, a] + ops) for cf, sub, ops in core]
        terms_V = [(4 * cf, "ki,li,oj," + sub, [x, x, U2] + ops) for cf, sub, ops in core]
        return terms_U, terms_V
    H = U.T @ U
    Hd = np.diag(H)
    lV2, kV3, cV4 = lam * V ** 2, kap * V ** 3, chi * V ** 4
    terms_U = [
        (4.0, "ij,ki,li,ko,lo", [lV2, x, x, r, r]),
        (4.0, "ij,ki,li,oj,ko,lj", [lV2, x, x, U, r, a]),
        (4.0, "ij,ki,li,oj,kj,lo", [lV2, x, x, U, a, r]),
        (4.0, "kj,lj,om,im,ki,li", [a, a, U2, lV2, x, x]),
        (4.0, "ij,ki,li,li,oj,ko", [kV3, x, x, x, U, r]),
        (4.0, "ij,ki,li,li,oj,kj", [kV3, x, x, x, U2, a]),
        (4.0, "ij,ki,ki,li,oj,lo", [kV3, x, x, x, U, r]),
        (4.0, "ij,ki,ki,li,oj,lj", [kV3, x, x, x, U2, a]),
        (4.0, "ij,ki,ki,li,li,oj", [cV4, x, x, x, x, U2]),
        (4.0, "om,im,ki,li,pj,kp,lp", [U2, lV2, x, x, lV2, x, x]),
        (4.0, "oj,ij,ki,li,pj,kp,lp", [U2, lV2, x, x, lV2, x, x]),
    ]
    terms_V = [
        (4.0, "ki,li,ij,jm,pm,kp,lp", [x, x, 1 + lam, H * H, lV2, x, x]),
        (4.0, "ki,li,ij,kj,lj", [x, x, lam, c, c]),
        (4.0, "ki,li,ij,kj,li", [x, x, lam * Hd * V, c, x]),
        (4.0, "ki,li,ij,lj,ki", [x, x, lam * Hd * V, c, x]),
        (4.0, "ki,li,ij,kj,li", [x, x, kap * Hd * V, c, x]),
        (4.0, "ki,li,ij,lj,ki", [x, x, kap * Hd * V, c, x]),
        (4.0, "ki,li,ij,ki,li", [x, x, (2 * kap + chi + lam * lam) * Hd ** 2 * V ** 2, x, x]),
    ]
    return terms_U, terms_V


def _evaluate_terms(terms, mode):
    r"""Sum of the terms as ``mode`` says: ``"diagonal"`` (every sample with itself: ``l = k``,
    shape (N,)), ``"total"`` (:math:`\sum_{k,l}`, a float; einsum contracts the samples first,
    so the cost is linear in N) or ``"pairs"`` (shape (N, N))."""
    out = 0.0
    for cf, sub, ops in terms:
        if mode == "diagonal":
            spec, res = sub.replace("l", "k"), "k"
        elif mode == "total":
            spec, res = sub, ""
        else:
            spec, res = sub, "kl"
        out = out + cf * np.einsum(f"{spec}->{res}", *ops, optimize=True)
    return out


# =========================================================================== enumeration

def _enumerate_sample_gradients(law, U, V, X, Y, max_configurations):
    r"""Probabilities (C,) and per-sample gradients (C, k, P) over all configurations of a
    finite version of ``law`` matching every variable's moments up to order 4 (a finite law is
    its own; :math:`N(1, \lambda)` the 3-point Gauss-Hermite rule), one mask for every sample."""
    law.check_order(4, "the gradient covariance (its gradient noise is not determined by a law that "
                       "fixes fewer moments)")
    comps = law.components
    chunks = list(enumerate_masks(law, max_configurations, chunk=max_configurations, order=4))
    weight = torch.cat([w for w, _ in chunks]).numpy()
    masks = {name: torch.cat([m[name][:, 0] for _, m in chunks]) for name in comps}
    Ut, Vt, Xt, Yt = (torch.as_tensor(a) for a in (U, V, X, Y))
    if not comps:  # nothing random: one configuration
        masks = {"hidden": torch.ones((1, U.shape[1]), dtype=torch.float64)}

    def sample_loss(U_, V_, x, y, m):
        pred = law.predict(U_, V_, x[:, None], {k: v[None, None] for k, v in m.items()})[0, 0]
        return ((pred - y) ** 2).sum()

    grad = torch.func.grad(sample_loss, argnums=(0, 1))
    over_samples = torch.func.vmap(grad, in_dims=(None, None, 1, 1, None))
    over_configs = torch.func.vmap(over_samples, in_dims=(None, None, None, None, 0))
    gU, gV = over_configs(Ut, Vt, Xt, Yt, masks)
    C, k = gU.shape[:2]
    g = torch.cat([gU.reshape(C, k, -1), gV.reshape(C, k, -1)], -1)
    return weight, g.numpy()


# =========================================================================== gradient_noise

def _check_method(method):
    return check_choice("method", method, METHODS)


def gradient_noise(strategy, U, V, X_batch, Y_batch, *, method="auto", local_reparameterization=False,
                   full_covariance=None, max_configurations=MAX_CONFIGURATIONS) -> GradientNoise:
    r"""Mask-induced covariance of the mini-batch gradient, exactly, from the law's moments.

    .. math::

        g = \nabla_{(U, V)} \frac1B \sum_k \|y_k - f_{M_k}(x_k)\|^2, \qquad
        \mathrm{Cov}[g] = \frac1{B^2} \sum_k C_{kk} \ \text{(per-sample masks)}, \quad
        \frac1{B^2} \sum_{k,l} C_{kl} \ \text{(one mask per batch)},

    :math:`C_{kl} = \mathrm{Cov}_M[g_k(M), g_l(M)]`.  Whether masks are per sample comes from
    the law (``strategy.law(...).per_sample``).  The mean is :math:`E[g] = \nabla(L + R)` on the
    batch for either sharing.

    Parameters
    ----------
    strategy : Strategy
        Any strategy whose law is made of independent variables (every built-in one;
        :class:`~pnd_theory.strategies.HiddenNoise` fixes only two moments and is refused).
    U : array (n_out, d)
    V : array (n_in, d)
    X_batch : array (n_in, B)
        The batch, samples as columns (THEORY.md conventions).
    Y_batch : array (n_out, B)
    method : {"auto", "closed_form", "enumeration"}
        ``"closed_form"``: the moment formula of the module docstring (one random component
        of independent variables: hidden-unit noise or weight noise on one layer; scales to
        large sizes).  ``"enumeration"``: every configuration of a discrete law with the same
        moments up to order 4, gradients by torch autograd (tiny sizes; any number of
        components, for instance ``layer="both"``).  ``"auto"``: the closed form when it
        applies, else enumeration.
    local_reparameterization : bool
        The gradient noise of the fast path of
        ``PerNodeDropLinear(stir="gaussian", local_reparameterization=True)`` instead of the
        exact layer (closed form; strategy ``PerNodeDrop(p, "input" or "output", "gaussian")``).
    full_covariance : bool, optional
        Form the ``P x P`` covariance.  Default: when ``P <= 1024`` and the dense
        coefficient arrays of one sample hold at most :data:`MAX_ELEMENTS` numbers (the
        traces and the mean never need them for weight noise).
    max_configurations : int
        Refuse enumeration above this many configurations.

    Returns
    -------
    GradientNoise
        ``.trace``, ``.covariance``, ``.mean``, ``.trace_U``, ``.trace_V``,
        ``.trace_per_sample``, ``.trace_per_batch`` and more.

    Raises
    ------
    TypeError
        For a non-strategy or non-boolean flags.
    ValueError
        For shapes that do not match, non-finite entries, an unsupported law or an
        enumeration that would be too large.
    """
    check_strategy(strategy)
    method = _check_method(method)
    local_reparameterization = check_bool("local_reparameterization", local_reparameterization)
    if full_covariance is not None:
        full_covariance = check_bool("full_covariance", full_covariance)
    max_configurations = check_positive_int("max_configurations", max_configurations)
    U, V, X, Y = _numpy_problem(U, V, X_batch, Y_batch)
    n_out, d = U.shape
    n_in = V.shape[0]
    law = strategy.law(n_in, d, n_out)
    _reject_covariance_only(law)
    local_layer = _check_local_reparameterization(strategy, law, local_reparameterization)
    B = X.shape[1]
    if method == "auto":
        method = "closed_form" if (local_layer is not None or _single_independent_component(law) is not None) \
            else "enumeration"
    if local_layer is not None and method != "closed_form":
        raise ValueError("local_reparameterization=True is computed in closed form only; use method='closed_form' or 'auto'")
    if method == "closed_form":
        res = _gradient_noise_closed_form(strategy, law, U, V, X, Y, local_layer, full_covariance)
    else:
        res = _gradient_noise_enumeration(law, U, V, X, Y, full_covariance, max_configurations)
    mean, cov_ps, cov_pb, tr_ps, tr_pb = res
    per_sample = bool(law.per_sample) or local_layer is not None
    tr = tr_ps if per_sample else tr_pb
    cov = cov_ps if per_sample else cov_pb
    return GradientNoise(
        trace=tr[0] + tr[1], covariance=cov, mean=mean, trace_U=tr[0], trace_V=tr[1],
        trace_per_sample=tr_ps[0] + tr_ps[1],
        trace_per_batch=None if local_layer is not None else tr_pb[0] + tr_pb[1],
        per_sample=per_sample, batch_size=B, method=method,
        local_reparameterization=local_reparameterization, shapes=(U.shape, V.shape),
    )


def _gradient_noise_closed_form(strategy, law, U, V, X, Y, local_layer, full):
    cf = _ClosedForm(strategy, law, U, V, local_layer)
    B = X.shape[1]
    if full is None:
        full = (U.size + V.size) <= MAX_DENSE_PARAMETERS and cf.dense_size() <= MAX_ELEMENTS
    mean = cf.sample_means(X, Y).mean(0)
    dU, dV, tU, tV = cf.traces(X, Y)
    w2 = 1.0 / (B * B)
    tr_ps = (w2 * float(dU.sum()), w2 * float(dV.sum()))
    tr_pb = (w2 * tU, w2 * tV)
    cov_ps = cov_pb = None
    if full:
        cov_ps, cov_pb = (w2 * c for c in cf.covariances(X, Y))
    return mean, cov_ps, cov_pb, tr_ps, tr_pb


def _weighted_cov(weight, g):
    """Covariance (P, P) of ``g`` (C, P) under probabilities ``weight`` (C,), centred first."""
    mean = weight @ g
    gc = g - mean
    return mean, (gc * weight[:, None]).T @ gc


def _gradient_noise_enumeration(law, U, V, X, Y, full, max_configurations):
    weight, g = _enumerate_sample_gradients(law, U, V, X, Y, max_configurations)
    B = X.shape[1]
    P = g.shape[-1]
    nu = U.size
    cov_ps = np.zeros((P, P))
    for k in range(B):
        cov_ps += _weighted_cov(weight, g[:, k])[1]
    cov_ps /= B * B
    mean, cov_pb = _weighted_cov(weight, g.mean(1))
    vp, vb = np.diag(cov_ps), np.diag(cov_pb)
    tr_ps = (float(vp[:nu].sum()), float(vp[nu:].sum()))
    tr_pb = (float(vb[:nu].sum()), float(vb[nu:].sum()))
    if full is False:
        cov_ps = cov_pb = None
    return mean, cov_ps, cov_pb, tr_ps, tr_pb


# =========================================================================== Monte Carlo (autograd)

def _gradient_draws(strategy, U, V, X, Y, draws, seed, via, local_reparameterization, device=None):
    """``draws`` independent gradients (draws, P) of the mini-batch loss, by autograd."""
    device = resolve_device(device)
    Xt = torch.as_tensor(X.T, device=device)
    Yt = torch.as_tensor(Y.T, device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    if via == "network":
        from .network import LinearNetwork

        n_out, d = U.shape
        net = LinearNetwork(V.shape[0], d, n_out, strategy, device=device, generator=generator, U=U, V=V).train()
        params = (net.U, net.V)

        def grads():
            loss = ((net(Xt) - Yt) ** 2).sum(1).mean()
            gU, gV = torch.autograd.grad(loss, params)
            return gU, gV
    else:
        law = strategy.law(V.shape[0], V.shape[1], U.shape[0])
        net = network_for(law, U, V, generator=generator, device=device,
                          local_reparameterization=local_reparameterization)
        w1, w2 = net[0].weight, net[2].weight

        def grads():
            loss = ((net(Xt) - Yt) ** 2).sum(1).mean()
            g1, g2 = torch.autograd.grad(loss, (w1, w2))
            return g2, g1.T          # d/dU = grad of the second weight, d/dV = (grad of V^T)^T
    out = torch.empty((draws, U.size + V.size), dtype=torch.float64, device=device)
    for t in range(draws):
        gU, gV = grads()
        out[t, :U.size] = gU.detach().reshape(-1)
        out[t, U.size:] = gV.detach().reshape(-1)
    return out.cpu().numpy()


def _group_trace(g, groups):
    """Mean and standard error of the unbiased trace estimate over independent groups of draws."""
    parts = np.array_split(g, groups)
    est = np.array([p.var(axis=0, ddof=1).sum() for p in parts])
    return float(est.mean()), float(est.std(ddof=1) / math.sqrt(groups))


def monte_carlo_gradient_noise(strategy, U, V, X_batch, Y_batch, draws=2000, *, seed=0, groups=20, via="network",
                               local_reparameterization=False, device=None) -> MonteCarloGradientNoise:
    r"""Monte Carlo estimate of the mask-induced gradient covariance from real autograd gradients.

    .. math::

        \widehat{\mathrm{Cov}}[g] = \frac1{T-1} \sum_t (g^{(t)} - \bar g)(g^{(t)} - \bar g)^\top,
        \qquad g^{(t)} = \nabla_{(U, V)} \frac1B \sum_k \|y_k - f_{M^{(t)}}(x_k)\|^2,

    each :math:`g^{(t)}` computed by ``torch.autograd`` through a network in training mode that
    draws its own masks.

    Parameters
    ----------
    strategy : Strategy
    U, V : arrays (n_out, d), (n_in, d)
    X_batch, Y_batch : arrays (n_in, B), (n_out, B)
    draws : int
        Number of independent mask draws :math:`T` (at least ``2 * groups``).
    seed : int
        Seed of the torch generator of the masks.
    groups : int
        The draws are split into this many independent groups (at least 2); the standard
        error of the trace is the spread of the group estimates.
    via : {"network", "layers"}
        ``"network"``: :class:`~pnd_theory.network.LinearNetwork` with factors ``U``, ``V``.
        ``"layers"``: ``Sequential(first, hidden, second)`` from :mod:`pnd_theory.nn`
        (``PerNodeDropLinear``, ``DropConnectLinear`` or a hidden-unit module), first weight
        :math:`V^\top`, second :math:`U`, no bias.
    local_reparameterization : bool
        With ``via="layers"``: ``PerNodeDropLinear(..., local_reparameterization=True)``.
    device : str or torch.device, optional
        Where the network runs (the CPU by default; ``"cuda"`` must be present).

    Returns
    -------
    MonteCarloGradientNoise
    """
    check_strategy(strategy)
    draws = check_positive_int("draws", draws)
    groups = check_positive_int("groups", groups)
    if groups < 2:
        raise ValueError(f"groups must be at least 2 to give a standard error, got {groups}")
    if draws < 2 * groups:
        raise ValueError(f"draws must be at least 2 * groups = {2 * groups}, got draws={draws}")
    seed = check_seed(seed)
    via = check_choice("via", via, VIAS)
    local_reparameterization = check_bool("local_reparameterization", local_reparameterization)
    U, V, X, Y = _numpy_problem(U, V, X_batch, Y_batch)
    law = strategy.law(V.shape[0], V.shape[1], U.shape[0])
    _check_local_reparameterization(strategy, law, local_reparameterization)
    if local_reparameterization and via != "layers":
        raise ValueError("local_reparameterization=True exists only in the torch layer: use via='layers'")
    device = resolve_device(device)
    g = _gradient_draws(strategy, U, V, X, Y, draws, seed, via, local_reparameterization, device)
    trace, se = _group_trace(g, groups)
    return MonteCarloGradientNoise(
        trace=trace, trace_se=se, mean=g.mean(0), mean_se=g.std(0, ddof=1) / math.sqrt(draws),
        covariance=np.cov(g, rowvar=False), draws=draws, via=via,
    )


# =========================================================================== batch size

def _sample_traces(strategy, law, U, V, X, Y, local_layer, method, max_configurations):
    r"""``(tr C_kk for every sample k, tr Cov of the full-data gradient with one shared mask)``."""
    N = X.shape[1]
    if method == "closed_form":
        dU, dV, tU, tV = _ClosedForm(strategy, law, U, V, local_layer).traces(X, Y)
        return dU + dV, (tU + tV) / (N * N)
    weight, g = _enumerate_sample_gradients(law, U, V, X, Y, max_configurations)
    tr_kk = np.array([np.trace(_weighted_cov(weight, g[:, k])[1]) for k in range(N)])
    return tr_kk, float(np.trace(_weighted_cov(weight, g.mean(1))[1]))


def _check_batch_sizes(batch_sizes, N, sampling):
    if isinstance(batch_sizes, (numbers.Integral, np.integer)) and not isinstance(batch_sizes, bool):
        batch_sizes = [batch_sizes]
    try:
        sizes = list(batch_sizes)
    except TypeError:
        raise TypeError(f"batch_sizes must be a sequence of positive integers, got {batch_sizes!r}") from None
    if not sizes:
        raise ValueError("batch_sizes must hold at least one batch size, got an empty sequence")
    sizes = [check_positive_int(f"batch_sizes[{i}]", int(b) if isinstance(b, np.integer) else b)
             for i, b in enumerate(sizes)]
    if sampling != "with_replacement" and max(sizes) > N:
        raise ValueError(
            f"batch_sizes must not exceed the number of samples N={N} with sampling={sampling!r}; got {max(sizes)}"
        )
    return np.asarray(sizes, dtype=np.int64)


def gradient_noise_vs_batch_size(strategy, U, V, X, Y, batch_sizes, *, sampling="with_replacement", method="auto",
                                 local_reparameterization=False,
                                 max_configurations=MAX_CONFIGURATIONS) -> BatchSizeNoise:
    r"""Expected trace of the mask-induced gradient covariance against the batch size ``B``,
    for per-sample and for shared masks.

    .. math::

        \text{per sample: } \frac{\bar T_1}{B}, \qquad
        \text{shared: } \bar T_\infty + \frac{\bar T_1 - \bar T_\infty}{B}
        \ \text{(with replacement)}, \qquad
        \frac{\bar T_1}{B} + \Big(1 - \frac1B\Big) \bar T_{\ne}\ \text{(without)},

    with :math:`\bar T_1 = \frac1N \sum_k \mathrm{tr}\,C_{kk}`, :math:`\bar T_\infty =
    \frac1{N^2}\sum_{kl}\mathrm{tr}\,C_{kl}`, :math:`\bar T_{\ne} = \frac1{N(N-1)}\sum_{k\ne l}
    \mathrm{tr}\,C_{kl}` and :math:`C_{kl} = \mathrm{Cov}_M[g_k(M), g_l(M)]` (module
    docstring).  Per-sample noise falls like :math:`1/B`; shared noise tends to
    :math:`\bar T_\infty`, the mask-induced trace of the full-data gradient, and the ratio is
    :math:`1 + (B-1)\rho`, :math:`\rho = \bar T_\infty/\bar T_1`.

    Parameters
    ----------
    strategy : Strategy
    U, V : arrays (n_out, d), (n_in, d)
    X, Y : arrays (n_in, N), (n_out, N)
        The data set the batches are drawn from.
    batch_sizes : sequence of int
    sampling : {"with_replacement", "without_replacement", "first"}
        Batches of ``B`` indices drawn uniformly with or without replacement (the expected
        trace over batches, in closed form), or the first ``B`` columns of ``X`` (the exact
        trace of that one batch; :func:`gradient_noise` per batch size).
    method : {"auto", "closed_form", "enumeration"}
        As in :func:`gradient_noise`.
    local_reparameterization : bool
        The Gaussian PerNodeDrop fast path (per sample only: ``per_batch`` is ``None``).
    max_configurations : int

    Returns
    -------
    BatchSizeNoise
    """
    check_strategy(strategy)
    sampling = check_choice("sampling", sampling, SAMPLINGS)
    method = _check_method(method)
    local_reparameterization = check_bool("local_reparameterization", local_reparameterization)
    max_configurations = check_positive_int("max_configurations", max_configurations)
    U, V, X, Y = _numpy_problem(U, V, X, Y, "X", "Y")
    N = X.shape[1]
    sizes = _check_batch_sizes(batch_sizes, N, sampling)
    law = strategy.law(V.shape[0], V.shape[1], U.shape[0])
    _reject_covariance_only(law)
    local_layer = _check_local_reparameterization(strategy, law, local_reparameterization)
    if method == "auto":
        method = "closed_form" if (local_layer is not None or _single_independent_component(law) is not None) \
            else "enumeration"
    per_sample_law = bool(law.per_sample) or local_layer is not None
    tr_kk, T_all = _sample_traces(strategy, law, U, V, X, Y, local_layer, method, max_configurations)
    T1 = float(tr_kk.mean())
    T_pair = (N * T_all - T1) / (N - 1) if N > 1 else None
    Bf = sizes.astype(np.float64)
    if sampling == "first":
        ps, pb = [], []
        for B in sizes:
            r = gradient_noise(strategy, U, V, X[:, :B], Y[:, :B], method=method, full_covariance=False,
                               local_reparameterization=local_reparameterization,
                               max_configurations=max_configurations)
            ps.append(r.trace_per_sample)
            pb.append(r.trace_per_batch)
        per_sample = np.array(ps)
        per_batch = None if local_layer is not None else np.array(pb, dtype=np.float64)
    else:
        per_sample = T1 / Bf
        if sampling == "with_replacement":
            per_batch = T_all + (T1 - T_all) / Bf
        else:
            per_batch = T1 / Bf + (1 - 1 / Bf) * (T_pair if T_pair is not None else 0.0)
        if local_layer is not None:
            per_batch = None
    return BatchSizeNoise(
        batch_sizes=sizes, per_sample=per_sample, per_batch=per_batch,
        trace=per_sample if per_sample_law else per_batch,
        single_sample_trace=T1, full_data_trace=None if local_layer is not None else T_all,
        pair_trace=None if local_layer is not None else T_pair,
        correlation=None if (local_layer is not None or T1 == 0) else T_all / T1,
        sampling=sampling, per_sample_law=per_sample_law,
    )


@dataclass(frozen=True)
class MonteCarloBatchSizeNoise:
    r"""Monte Carlo counterpart of :class:`BatchSizeNoise` for one strategy
    (:func:`monte_carlo_gradient_noise_vs_batch_size`): ``trace`` and ``trace_se`` at every
    batch size, from real autograd gradients."""

    batch_sizes: np.ndarray
    trace: np.ndarray
    trace_se: np.ndarray
    sampling: str
    via: str


def monte_carlo_gradient_noise_vs_batch_size(strategy, U, V, X, Y, batch_sizes, *, batches=8, draws=200, seed=0,
                                             sampling="with_replacement", via="network",
                                             local_reparameterization=False, device=None) -> MonteCarloBatchSizeNoise:
    r"""Monte Carlo estimate of :math:`E_{\text{batch}}\,\mathrm{tr\,Cov}_M[g]` against ``B``
    from real autograd gradients.

    .. math::

        \widehat T(B) = \frac1R \sum_{r=1}^R \mathrm{tr}\,\widehat{\mathrm{Cov}}_M[g \mid
        \text{batch}_r], \qquad \mathrm{se} = \mathrm{sd}_r / \sqrt R,

    with ``R = batches`` batches of ``B`` indices drawn as ``sampling`` says and, for each,
    ``draws`` mask draws (unbiased sample variances).  With ``sampling="first"`` the batch is
    the first ``B`` columns and the ``R`` groups of draws share it.  The strategy's own mask
    sharing is used (see :func:`mask_sharing_pair` to compare the two).

    Parameters
    ----------
    strategy : Strategy
    U, V, X, Y : arrays
    batch_sizes : sequence of int
    batches : int
        Number :math:`R` of independent batches (at least 2).
    draws : int
        Mask draws per batch (at least 2).
    seed : int
    sampling : {"with_replacement", "without_replacement", "first"}
    via : {"network", "layers"}
        As in :func:`monte_carlo_gradient_noise`.
    local_reparameterization : bool
    device : str or torch.device, optional

    Returns
    -------
    MonteCarloBatchSizeNoise
    """
    check_strategy(strategy)
    batches = check_positive_int("batches", batches)
    draws = check_positive_int("draws", draws)
    if batches < 2 or draws < 2:
        raise ValueError(f"batches and draws must be at least 2 to give a standard error; got batches={batches}, "
                         f"draws={draws}")
    seed = check_seed(seed)
    sampling = check_choice("sampling", sampling, SAMPLINGS)
    via = check_choice("via", via, VIAS)
    local_reparameterization = check_bool("local_reparameterization", local_reparameterization)
    U, V, X, Y = _numpy_problem(U, V, X, Y, "X", "Y")
    N = X.shape[1]
    sizes = _check_batch_sizes(batch_sizes, N, sampling)
    law = strategy.law(V.shape[0], V.shape[1], U.shape[0])
    _check_local_reparameterization(strategy, law, local_reparameterization)
    if local_reparameterization and via != "layers":
        raise ValueError("local_reparameterization=True exists only in the torch layer: use via='layers'")
    device = resolve_device(device)
    rng = np.random.default_rng(seed)
    means, ses = [], []
    for B in sizes:
        est = []
        for r in range(batches):
            if sampling == "with_replacement":
                idx = rng.integers(0, N, size=B)
            elif sampling == "without_replacement":
                idx = rng.choice(N, size=B, replace=False)
            else:
                idx = np.arange(B)
            g = _gradient_draws(strategy, U, V, X[:, idx], Y[:, idx], draws, int(rng.integers(2**62)), via,
                                local_reparameterization, device)
            est.append(g.var(axis=0, ddof=1).sum())
        est = np.array(est)
        means.append(est.mean())
        ses.append(est.std(ddof=1) / math.sqrt(batches))
    return MonteCarloBatchSizeNoise(sizes, np.array(means), np.array(ses), sampling, via)


def mask_sharing_pair(strategy):
    r"""The per-sample and the per-batch version of a weight-noise strategy, ``(per_sample,
    per_batch)``: the same law, drawn for every sample or shared by the mini-batch
    (``strategy.with_per_sample``).  ``PerNodeDrop(p, layer)`` pairs with
    ``DropConnect(p, layer)``.  Refused for laws with hidden-unit noise (read from the law)."""
    check_strategy(strategy)
    law = strategy.law(1, strategy.min_width, 1)
    if "hidden" in law.components or not law.components:
        raise InvalidParameterError(
            "strategy must have noise on the weights only (masks of U or V) to have a per-sample and a per-batch "
            f"version; got {strategy!r}, whose law has components {sorted(law.components)}"
        )
    return strategy.with_per_sample(True), strategy.with_per_sample(False)


# =========================================================================== training

def _seed_list(seeds):
    if isinstance(seeds, (numbers.Integral, np.integer)) and not isinstance(seeds, bool):
        n = check_positive_int("seeds", int(seeds))
        if n < 2:
            raise ValueError(f"seeds must be at least 2 (a standard error over seeds), got {n}")
        return tuple(range(n))
    try:
        out = tuple(seeds)
    except TypeError:
        raise TypeError(f"seeds must be a number of seeds or a sequence of seeds, got {seeds!r}") from None
    if len(out) < 2:
        raise ValueError(f"seeds must hold at least 2 seeds (a standard error over seeds), got {len(out)}")
    for s in out:
        check_seed(s)
    if len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct, got {out!r}")
    return tuple(int(s) for s in out)


def _derived_seed(seed, part):
    """An independent training seed for part ``part`` of the run of seed ``seed``."""
    return int(np.random.SeedSequence([seed, part]).generate_state(1)[0])


def stationary_spread(strategy, X, Y, width, lr, steps, seeds=8, *, batch_size=None, burn_in=None, snapshots=10,
                      momentum=0.0, init="optimum", optimum=True, device=None) -> StationarySpread:
    r"""Spread of :math:`A = U V^\top` under constant-learning-rate SGD with real sampled masks.

    .. math::

        \mathrm{spread} = \frac1S \sum_{s=1}^S \frac1T \sum_{t=1}^T \|A_s(t) - \bar A\|_F^2,
        \qquad \bar A = \frac1{ST}\sum_{s,t} A_s(t),

    with :math:`A_s(t)` the product after ``burn_in + t * steps`` steps of
    :func:`pnd_theory.train` (``schedule="constant"``, no averaging) for seed ``s``.  Near the
    optimum the stationary covariance of the iterates solves a Lyapunov equation driven by the
    gradient covariance, so at a fixed step it grows with the mask-induced gradient noise:
    shared masks (``DropConnect``) spread more than per-sample masks (``PerNodeDrop``) of the
    same law, although both have the same expected loss and the same optimum
    (THEORY.md, F6).

    Parameters
    ----------
    strategy : Strategy
    X, Y : arrays (n_in, N), (n_out, N)
    width : int
    lr : float
        The constant learning rate.
    steps : int
        SGD steps between two snapshots (rounded up to whole epochs of
        ``ceil(N / batch_size)`` steps).
    seeds : int or sequence of int
        Number of seeds (``0 .. seeds - 1``) or the seeds themselves (at least 2).
    batch_size : int, optional
        The full data set by default.
    burn_in : int, optional
        Steps before the first snapshot (default ``steps``).
    snapshots : int
        Snapshots :math:`T` per seed.
    momentum : float
        SGD momentum (0: plain SGD).
    init : {"optimum", "random"}
        Start at the balanced factors of the closed-form optimum
        (:func:`pnd_theory.global_minimizer`), or at :func:`train`'s small random start.
    optimum : bool
        Compute :math:`A^*` and the distance of :math:`\bar A` to it.
    device : str or torch.device, optional
        Passed to :func:`train`.

    Returns
    -------
    StationarySpread
        ``.spread``, ``.spread_se`` (over seeds), ``.mean_product``, ``.distance_to_optimum``,
        ``.distance_se`` (the distance expected from the seeds' spread alone when the mean is
        unbiased), ``.spread_about_optimum``.
    """
    from .minimizers import global_minimizer
    from .training import train

    check_strategy(strategy)
    steps = check_positive_int("steps", steps)
    snapshots = check_positive_int("snapshots", snapshots)
    seeds = _seed_list(seeds)
    init = check_choice("init", init, ("optimum", "random"))
    optimum = check_bool("optimum", optimum)
    if burn_in is None:
        burn_in = steps
    burn_in = check_positive_int("burn_in", burn_in)
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"lr must be a positive real number, got {lr!r} of type {type(lr).__name__}")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise TypeError(f"momentum must be a real number in [0, 1), got {momentum!r}")
    if not (0 <= momentum < 1):
        raise ValueError(f"momentum must be a number in [0, 1), got {momentum!r}")
    a = as_numpy_arrays(X=X, Y=Y)
    check_data(a["X"], a["Y"], None, None)
    Xn, Yn = a["X"], a["Y"]
    N = Xn.shape[1]
    width = check_positive_int("width", width)
    bs = N if batch_size is None else check_positive_int("batch_size", batch_size)
    if bs > N:
        raise ValueError(f"batch_size must be at most the number of samples N = {N}, got {batch_size}")
    per_epoch = -(-N // bs)
    snap_epochs = -(-steps // per_epoch)
    burn_epochs = -(-burn_in // per_epoch)
    A_star = None
    U0 = V0 = None
    if optimum or init == "optimum":
        minimum = global_minimizer(strategy, Xn, Yn, width)
        A_star = minimum.product
        if init == "optimum":
            U0, V0 = minimum.factors()
    common = dict(lr=float(lr), batch_size=bs, device=device, progress=False, schedule="constant", average=0.0,
                  optimizer="sgd", momentum=float(momentum))
    products = np.empty((len(seeds), snapshots) + (Yn.shape[0], Xn.shape[0]))
    for i, seed in enumerate(seeds):
        res = train(strategy, Xn, Yn, width, epochs=burn_epochs, seed=_derived_seed(seed, 0),
                    record_every=burn_epochs * per_epoch, U_init=U0, V_init=V0, **common)
        U, V = res.last_U, res.last_V
        for t in range(snapshots):
            res = train(strategy, Xn, Yn, width, epochs=snap_epochs, seed=_derived_seed(seed, t + 1),
                        record_every=snap_epochs * per_epoch, U_init=U, V_init=V, **common)
            U, V = res.last_U, res.last_V
            products[i, t] = U @ V.T
    S = len(seeds)
    mean_product = products.mean((0, 1))
    per_seed = ((products - mean_product) ** 2).sum((-1, -2)).mean(1) * S / (S - 1)
    seed_means = products.mean(1)
    dist = dist_se = about = about_se = None
    if optimum:
        dist = float(np.linalg.norm(mean_product - A_star))
        dist_se = float(math.sqrt(seed_means.var(0, ddof=1).sum() / S))
        about_seed = ((products - A_star) ** 2).sum((-1, -2)).mean(1)
        about, about_se = float(about_seed.mean()), float(about_seed.std(ddof=1) / math.sqrt(S))
    return StationarySpread(
        spread=float(per_seed.mean()), spread_se=float(per_seed.std(ddof=1) / math.sqrt(S)),
        mean_product=mean_product, products=seed_means, optimum=A_star, distance_to_optimum=dist,
        distance_se=dist_se, spread_about_optimum=about, spread_about_optimum_se=about_se, seeds=seeds,
    )
