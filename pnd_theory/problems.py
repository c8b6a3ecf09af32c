"""Built-in random problems: factors and data with correlated (non-whitened) inputs."""

from __future__ import annotations

import numpy as np

from ._validation import check_positive_int, check_problem_sizes, check_real, check_seed


def random_problem(n_in=3, width=4, n_out=2, n_samples=8, correlation=0.6, seed=0):
    r"""Random factors ``U`` (n_out, d), ``V`` (n_in, d) and data ``X`` (n_in, N), ``Y`` (n_out, N).

    Inputs are mixed, :math:`X = (I + \rho G) Z` with Gaussian ``G`` and ``Z``, so their second
    moment :math:`S = X X^\top / N` is far from diagonal when ``correlation`` :math:`\rho` is
    not 0; targets are a noisy linear function of the inputs.

    Returns
    -------
    (U, V, X, Y) : numpy arrays

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> U.shape, V.shape, X.shape, Y.shape
    ((2, 4), (3, 4), (3, 8), (2, 8))
    >>> bool(np.array_equal(X, pt.random_problem(seed=0)[2]))  # a seed fixes the problem
    True
    """
    n_in, width, n_out = (check_positive_int(k, v) for k, v in (("n_in", n_in), ("width", width), ("n_out", n_out)))
    n_samples = check_positive_int("n_samples", n_samples)
    check_problem_sizes(n_in, width, n_out, n_samples)
    correlation = check_real("correlation", correlation)
    rng = np.random.default_rng(check_seed(seed))
    mix = np.eye(n_in) + correlation * rng.normal(size=(n_in, n_in))
    X = mix @ rng.normal(size=(n_in, n_samples))
    W = rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)
    Y = W @ X + 0.5 * rng.normal(size=(n_out, n_samples))
    U = rng.normal(size=(n_out, width)) / np.sqrt(width)
    V = rng.normal(size=(n_in, width)) / np.sqrt(n_in)
    return U, V, X, Y
