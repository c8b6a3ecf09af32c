r"""The gradient covariance by exact enumeration over a finite law with the mask's moments up
to order 4 (a finite law is its own), for one mask applied to every sample."""

from __future__ import annotations

import numpy as np
import torch

from ..routes.exact import enumerate_masks

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
