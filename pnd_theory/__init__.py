r"""pnd-theory: the theory of noise regularizers in single-hidden-layer linear networks.

For :math:`f(x) = U\,\mathrm{diag}(\text{mask})\,V^\top x`, the expected training loss under
a noise strategy is the plain loss plus a closed-form penalty.  This package derives the
penalty symbolically, evaluates it numerically, and checks it against exact enumeration,
Monte Carlo and training of real torch models.

The torch layers live in :mod:`pnd_theory.nn` (import it explicitly).
"""

from ._validation import InvalidParameterError
from .laws import Bernoulli, DiscreteLaw, Gaussian, MaskLaw, ScalarLaw, Uniform
from .strategies import (
    DropBlock,
    DropConnect,
    Dropout,
    GaussianDropout,
    HiddenNoise,
    NodeDropout,
    PerNodeDrop,
    Strategy,
    UnitNoise,
    WeightNoise,
    drop_probability,
    noise_strength,
    strategy_from_name,
)
from .network import LinearNetwork
from .layers import layers_for
from .penalty import expected_loss, expected_penalty, plain_loss, second_moment
from .exact import exact_expected_loss
from .montecarlo import monte_carlo_loss
from .symbolic import Derivation, derive
from .problems import random_problem
from .factorizations import unit_contributions
from .induced import balanced_factors, induced_penalty
from .minimizers import MinimizerResult, global_minimizer
from .training import TrainingResult, train
from .gradient_noise import (gradient_noise, gradient_noise_vs_batch_size, mask_sharing_pair, monte_carlo_gradient_noise,
                             monte_carlo_gradient_noise_vs_batch_size)
from .stationary import stationary_spread
from . import deep
from .conformance import ConformanceReport, check_strategy
from .sweep import plot as sweep_plot, sweep
from .ydrop import conductance, unit_importance, ydrop_rates
from .ydrop_fixed_point import YDropFixedPoint, YDropTraining, train_ydrop, ydrop_fixed_point, ydrop_map
from .implicit import NoiseModeSpread, noise_mode_spread
from .sparsity import SparsityMonitor, activation_sparsity
from .norms import (
    dual_k_support_norm,
    dual_spectral_k_support_norm,
    k_support_norm,
    prox_squared_k_support,
    prox_squared_k_support_vector,
    spectral_k_support_norm,
)

__version__ = "0.1.0"

__all__ = [
    "InvalidParameterError", "ScalarLaw", "Bernoulli", "Gaussian", "DiscreteLaw", "Uniform", "UnitNoise",
    "WeightNoise", "LinearNetwork", "layers_for",
    "DropBlock", "DropConnect", "Dropout", "GaussianDropout", "HiddenNoise", "MaskLaw",
    "NodeDropout", "PerNodeDrop", "Strategy", "strategy_from_name",
    "expected_loss", "expected_penalty", "plain_loss", "second_moment",
    "exact_expected_loss", "monte_carlo_loss", "Derivation", "derive", "random_problem",
    "induced_penalty", "balanced_factors", "unit_contributions", "noise_strength", "drop_probability", "global_minimizer", "MinimizerResult",
    "train", "TrainingResult", "gradient_noise", "gradient_noise_vs_batch_size", "mask_sharing_pair",
    "monte_carlo_gradient_noise", "monte_carlo_gradient_noise_vs_batch_size", "stationary_spread",
    "check_strategy", "ConformanceReport",
    "sweep", "sweep_plot",
    "conductance", "unit_importance", "ydrop_rates", "ydrop_map", "ydrop_fixed_point", "YDropFixedPoint",
    "train_ydrop", "YDropTraining",
    "noise_mode_spread", "NoiseModeSpread",
    "activation_sparsity", "SparsityMonitor",
    "k_support_norm", "dual_k_support_norm", "prox_squared_k_support_vector",
    "spectral_k_support_norm", "dual_spectral_k_support_norm", "prox_squared_k_support",
]
