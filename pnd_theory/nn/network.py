r"""A single-hidden-layer linear network trained with the real masks of a noise strategy.

.. math::

    f(x) = (U \circ M_U)\,\mathrm{diag}(\xi)\,(V \circ M_V)^\top x,

with ``U`` of shape ``(n_out, d)`` and ``V`` of shape ``(n_in, d)`` (the package's conventions)
and the masks :math:`\xi, M_U, M_V` drawn from the strategy's
:class:`~pnd_theory.laws.strategies.MaskLaw`.  The network reads the strategy only through that
law: :meth:`MaskLaw.sample` draws the masks and :meth:`MaskLaw.predict` applies them, so any
strategy -- a built-in one or a :class:`~pnd_theory.laws.strategies.HiddenNoise` -- works without
a branch here.  Public as ``pt.LinearNetwork`` and ``pnd_theory.nn.LinearNetwork``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .._validation import (InvalidParameterError, check_dtype, check_generator, check_memory, check_positive_int,
                          check_real, invalid, resolve_device)
from ..laws.masks import CovarianceMask
from ..laws.strategies import validate_strategy

#: default standard deviation of the initial weights, relative to ``1 / sqrt(width)``
DEFAULT_INIT_SCALE = 0.1


def check_init_scale(init_scale) -> float:
    return check_real("init_scale", init_scale, "a positive finite real number", low=0.0, low_open=True)


def _initial_factor(name, given, shape, init_scale, generator, dtype, device):
    """A given factor (checked) or small Gaussian entries of standard deviation
    ``init_scale / sqrt(width)``, drawn on the CPU so that one seed gives one start on
    every device."""
    if given is None:
        std = init_scale / math.sqrt(shape[1])
        return (std * torch.randn(shape, generator=generator, dtype=torch.float64)).to(device=device, dtype=dtype)
    if torch.is_tensor(given):
        t = given.detach().to(device=device, dtype=dtype).clone()
    else:
        a = np.asarray(given)
        if a.dtype == object or not np.issubdtype(a.dtype, np.number):
            raise InvalidParameterError(f"{name} must be a numeric array of shape {shape}, got dtype {a.dtype}")
        t = torch.as_tensor(a.astype(np.float64), dtype=dtype, device=device).clone()
    if tuple(t.shape) != tuple(shape):
        dims = "(n_out, width)" if name.startswith("U") else "(n_in, width)"
        raise InvalidParameterError(f"{name} must have shape {dims} = {shape} (the package's conventions), "
                                    f"got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise InvalidParameterError(f"{name} has non-finite entries (NaN or inf)")
    return t


class LinearNetwork(nn.Module):
    r"""Linear network :math:`f(x) = (U \circ M_U)\,\mathrm{diag}(\xi)\,(V \circ M_V)^\top x`
    with the masks of a noise strategy.

    In training mode every call of :meth:`forward` draws real masks from the strategy's law:
    one mask per sample for per-sample laws (Dropout, DropBlock, PerNodeDrop, ...), one mask
    shared by the whole batch for per-batch laws (``DropConnect(per_sample=False)``).  Every
    mask has mean 1, so the expected output is :math:`U V^\top x` and the expected mini-batch
    loss :math:`\frac1B \sum_k \|y_k - f(x_k)\|^2` is :math:`L(U, V) + R(U, V)` on that batch
    (the theory page).  In evaluation mode the network is the mean network
    :math:`x \mapsto U V^\top x` (no noise, no scaling: masks are inverted).

    Parameters
    ----------
    n_in, width, n_out : int
        Input size, number of hidden units :math:`d`, output size.
    strategy : Strategy
        Any pnd_theory strategy; only its law ``strategy.law(n_in, width, n_out)`` is used.
    device : str or torch.device, optional
        The CPU by default; ``"cuda"`` must be present.
    dtype : torch.dtype
        ``torch.float64`` (default) or ``torch.float32``.
    generator : torch.Generator, optional
        Source of the masks (on ``device``); torch's global generator when omitted.
    U : array (n_out, width), optional
    V : array (n_in, width), optional
        Initial factors (numpy or torch).  A factor not given is drawn with independent
        :math:`N(0, (\text{init\_scale} / \sqrt{d})^2)` entries from ``init_generator``: a
        small start, near the origin saddle, from which gradient descent on the factors
        learns the singular directions of the target in turn.
    init_scale : float
        See ``U`` and ``V`` (default 0.1).
    init_generator : torch.Generator, optional
        CPU generator for the initial weights (torch's global CPU generator when omitted).

    Attributes
    ----------
    U : torch.nn.Parameter (n_out, width)
    V : torch.nn.Parameter (n_in, width)
        In the package's conventions, so ``pt.expected_penalty(strategy, net.U, net.V, S)``
        evaluates the penalty of the network's current weights.
    law : MaskLaw

    Examples
    --------
    In evaluation mode the network is the mean map :math:`U V^\top x` (samples as rows):

    >>> import numpy as np
    >>> import torch
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> net = pt.LinearNetwork(3, 4, 2, pt.Dropout(0.5), U=U, V=V).eval()
    >>> out = net(torch.as_tensor(X.T))
    >>> tuple(out.shape), bool(np.allclose(out.detach().numpy(), (U @ V.T @ X).T))
    ((8, 2), True)
    """

    def __init__(self, n_in, width, n_out, strategy, device=None, dtype=torch.float64, generator=None,
                 *, U=None, V=None, init_scale=DEFAULT_INIT_SCALE, init_generator=None):
        super().__init__()
        validate_strategy(strategy)
        n_in = check_positive_int("n_in", n_in)
        width = check_positive_int("width", width)
        n_out = check_positive_int("n_out", n_out)
        check_memory(f"n_in={n_in}, width={width}, n_out={n_out}", 4 * (n_in + n_out) * width,
                     "factors U and V, their gradients and an optimizer's state")
        law = strategy.law(n_in, width, n_out)
        hidden = law.hidden
        if isinstance(hidden, CovarianceMask) and hidden.symbolic:
            raise invalid("strategy", "a numeric law to be sampled (this HiddenNoise has a symbolic covariance)",
                          strategy)
        dtype = check_dtype(dtype)
        device = resolve_device(device)
        if check_generator(generator) is not None:
            if torch.device(generator.device).type != device.type:
                raise InvalidParameterError(
                    f"generator must live on the network's device ({device}); got a generator on {generator.device}"
                )
        check_generator(init_generator, "init_generator")
        init_scale = check_init_scale(init_scale)
        self.n_in, self.width, self.n_out = n_in, width, n_out
        self.strategy = strategy
        self.law = law
        self.generator = generator
        self.U = nn.Parameter(_initial_factor("U", U, (n_out, width), init_scale, init_generator, dtype, device))
        self.V = nn.Parameter(_initial_factor("V", V, (n_in, width), init_scale, init_generator, dtype, device))

    def sample_masks(self, batch: int) -> dict:
        """One draw of the masks for a batch of ``batch`` samples, as :meth:`MaskLaw.sample`
        returns it (a leading draw axis of length 1; a sample axis of length ``batch`` for
        per-sample laws and 1 for per-batch laws)."""
        return self.law.sample(1, batch, self.generator, self.U.device, self.U.dtype)

    def forward(self, x, masks=None):
        r"""Outputs for a batch ``x`` of shape ``(batch, n_in)`` (samples as rows).

        Training mode: :math:`f(x_k)` with freshly drawn masks (or the given ``masks``, as from
        :meth:`sample_masks`); evaluation mode: :math:`U V^\top x_k`.  Returns
        ``(batch, n_out)``.
        """
        if not torch.is_tensor(x):
            raise InvalidParameterError(f"x must be a torch tensor of shape (batch, n_in), got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise InvalidParameterError(f"x must have shape (batch, n_in={self.n_in}), got {tuple(x.shape)}")
        if not self.training or not self.law.components:
            return (x @ self.V) @ self.U.T
        if masks is None:
            masks = self.sample_masks(x.shape[0])
        return self.law.predict(self.U, self.V, x.T, masks)[0]

    def product(self) -> torch.Tensor:
        r"""The mean network's matrix :math:`A = U V^\top` (detached), shape ``(n_out, n_in)``."""
        return (self.U @ self.V.T).detach()

    def extra_repr(self) -> str:
        return (f"n_in={self.n_in}, width={self.width}, n_out={self.n_out}, strategy={self.strategy!r}, "
                f"per_sample_masks={self.law.per_sample}")
