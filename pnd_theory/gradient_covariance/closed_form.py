r"""The gradient covariance in closed form, from the moments of the mask up to order 4.

The per-sample gradient is a quadratic function of the centred mask variables
:math:`z = m - 1`; its covariance over one random component follows from the variance
:math:`\lambda`, the third central moment :math:`\kappa` and the fourth cumulant :math:`\chi` of
each variable, read from the law.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import InvalidParameterError
from .common import (MAX_DENSE_PARAMETERS, MAX_ELEMENTS, _central_moments, _entry_to_variable,
                     _single_independent_component)

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
            raise InvalidParameterError(
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
