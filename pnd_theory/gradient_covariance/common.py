"""Shared pieces of the gradient-noise routes: constants, argument checks and the moments of
the mask variables that every route reads from the law."""

from __future__ import annotations

import numpy as np

from .._validation import InvalidParameterError, as_numpy_arrays, check_choice, check_data, check_factors
from ..laws.masks import Gaussian, IndependentMask

METHODS = ("auto", "closed_form", "enumeration")
SAMPLINGS = ("with_replacement", "without_replacement", "first")
VIAS = ("network", "layers")

#: configurations above which exact enumeration refuses
MAX_CONFIGURATIONS = 3**10
#: largest number of parameters for which the full covariance is formed by default
MAX_DENSE_PARAMETERS = 1024
#: elements of the coefficient arrays held at once (the batch is processed in chunks)
MAX_ELEMENTS = 2**22


def _check_method(method):
    return check_choice("method", method, METHODS)


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
    table = np.array([[law.moment(k) for k in (2, 3, 4)] for law in component.distinct_laws], dtype=np.float64)
    m2, m3, m4 = table[component.law_index].T
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
