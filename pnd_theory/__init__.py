r"""pnd-theory: the theory of noise regularizers in single-hidden-layer linear networks.

For :math:`f(x) = U\,\mathrm{diag}(\text{mask})\,V^\top x`, the expected training loss under
a noise strategy is the plain loss plus a closed-form penalty.  This package derives the
penalty symbolically, evaluates it numerically, and checks it against exact enumeration,
Monte Carlo and training of real torch models.

The torch layers live in :mod:`pnd_theory.nn`, deep linear networks in :mod:`pnd_theory.deep`.

The package is laid out in wings by role: ``laws`` (scalar laws, mask laws, strategies),
``kernels`` (the fused per-sample map, internal), ``routes`` (closed form, symbolic,
enumeration, Monte Carlo, the conformance harness), ``regularizers`` (induced regularizers,
norms, minimizers), ``gradient_covariance`` (the gradient noise of the masks), ``nn`` (torch
layers), ``studies`` (training and what happens along it), ``deep`` and ``apps`` (command
line, explorer).  Names are loaded on first use: ``import pnd_theory`` loads none of sympy,
pandas, Dask, matplotlib, scipy or numba.
"""
import importlib

__version__ = "0.1.0"

#: public name -> (module, attribute), imported on first access
_PUBLIC = {
    "InvalidParameterError": ("_validation", "InvalidParameterError"),
    "Bernoulli": ("laws.scalar", "Bernoulli"),
    "DiscreteLaw": ("laws.scalar", "DiscreteLaw"),
    "Gaussian": ("laws.scalar", "Gaussian"),
    "MaskLaw": ("laws.masks", "MaskLaw"),
    "ScalarLaw": ("laws.scalar", "ScalarLaw"),
    "Uniform": ("laws.scalar", "Uniform"),
    "DropBlock": ("laws.strategies", "DropBlock"),
    "DropConnect": ("laws.strategies", "DropConnect"),
    "Dropout": ("laws.strategies", "Dropout"),
    "GaussianDropout": ("laws.strategies", "GaussianDropout"),
    "HiddenNoise": ("laws.strategies", "HiddenNoise"),
    "NodeDropout": ("laws.strategies", "NodeDropout"),
    "PerNodeDrop": ("laws.strategies", "PerNodeDrop"),
    "Strategy": ("laws.strategies", "Strategy"),
    "UnitNoise": ("laws.strategies", "UnitNoise"),
    "WeightNoise": ("laws.strategies", "WeightNoise"),
    "drop_probability": ("laws.strategies", "drop_probability"),
    "noise_strength": ("laws.strategies", "noise_strength"),
    "strategy_from_name": ("laws.strategies", "strategy_from_name"),
    "STRATEGY_NAMES": ("laws.strategies", "STRATEGY_NAMES"),
    "verify": ("routes.verification", "verify"),
    "default_strategies": ("routes.verification", "default_strategies"),
    "LinearNetwork": ("nn.network", "LinearNetwork"),
    "layers_for": ("nn.table", "layers_for"),
    "expected_loss": ("routes.penalty", "expected_loss"),
    "expected_penalty": ("routes.penalty", "expected_penalty"),
    "plain_loss": ("routes.penalty", "plain_loss"),
    "second_moment": ("routes.penalty", "second_moment"),
    "exact_expected_loss": ("routes.exact", "exact_expected_loss"),
    "monte_carlo_loss": ("routes.montecarlo", "monte_carlo_loss"),
    "Derivation": ("routes.symbolic", "Derivation"),
    "derive": ("routes.symbolic", "derive"),
    "random_problem": ("problems", "random_problem"),
    "unit_contributions": ("regularizers._factorizations", "unit_contributions"),
    "balanced_factors": ("regularizers.induced", "balanced_factors"),
    "induced_penalty": ("regularizers.induced", "induced_penalty"),
    "MinimizerResult": ("regularizers.minimizers", "MinimizerResult"),
    "global_minimizer": ("regularizers.minimizers", "global_minimizer"),
    "TrainingResult": ("studies.training", "TrainingResult"),
    "train": ("studies.training", "train"),
    "gradient_noise": ("gradient_covariance", "gradient_noise"),
    "gradient_noise_vs_batch_size": ("gradient_covariance", "gradient_noise_vs_batch_size"),
    "mask_sharing_pair": ("gradient_covariance", "mask_sharing_pair"),
    "monte_carlo_gradient_noise": ("gradient_covariance", "monte_carlo_gradient_noise"),
    "monte_carlo_gradient_noise_vs_batch_size": ("gradient_covariance", "monte_carlo_gradient_noise_vs_batch_size"),
    "stationary_spread": ("studies.stationary", "stationary_spread"),
    "ConformanceReport": ("routes.conformance", "ConformanceReport"),
    "check_strategy": ("routes.conformance", "check_strategy"),
    "sweep_plot": ("studies.sweeps", "plot"),
    "sweep": ("studies.sweeps", "sweep"),
    "conductance": ("nn.ydrop", "conductance"),
    "unit_importance": ("nn.ydrop", "unit_importance"),
    "ydrop_rates": ("nn.ydrop", "ydrop_rates"),
    "YDropFixedPoint": ("studies.ydrop_fixed_point", "YDropFixedPoint"),
    "YDropTraining": ("studies.ydrop_fixed_point", "YDropTraining"),
    "train_ydrop": ("studies.ydrop_fixed_point", "train_ydrop"),
    "ydrop_fixed_point": ("studies.ydrop_fixed_point", "ydrop_fixed_point"),
    "ydrop_map": ("studies.ydrop_fixed_point", "ydrop_map"),
    "NoiseModeSpread": ("studies.implicit", "NoiseModeSpread"),
    "noise_mode_spread": ("studies.implicit", "noise_mode_spread"),
    "iterate_moments": ("studies.iterates", "iterate_moments"),
    "stationary_moments": ("studies.iterates", "stationary_moments"),
    "IterateMoments": ("studies.iterates", "IterateMoments"),
    "StationaryMoments": ("studies.iterates", "StationaryMoments"),
    "linearized_spread": ("studies.linearized", "linearized_spread"),
    "LinearizedSpread": ("studies.linearized", "LinearizedSpread"),
    "SparsityMonitor": ("studies.sparsity", "SparsityMonitor"),
    "activation_sparsity": ("studies.sparsity", "activation_sparsity"),
    "dual_k_support_norm": ("regularizers.norms", "dual_k_support_norm"),
    "dual_spectral_k_support_norm": ("regularizers.norms", "dual_spectral_k_support_norm"),
    "k_support_norm": ("regularizers.norms", "k_support_norm"),
    "prox_squared_k_support": ("regularizers.norms", "prox_squared_k_support"),
    "prox_squared_k_support_vector": ("regularizers.norms", "prox_squared_k_support_vector"),
    "spectral_k_support_norm": ("regularizers.norms", "spectral_k_support_norm"),
    "explicit_penalty": ("routes.explicit", "explicit_penalty"),
    "penalized_loss": ("routes.explicit", "penalized_loss"),
    "ExplicitImplicit": ("studies.explicit_implicit", "ExplicitImplicit"),
    "explicit_implicit_digits": ("studies.explicit_implicit", "explicit_implicit_digits"),
}
_SUBPACKAGES = ("deep", "nn")

__all__ = [
    "InvalidParameterError", "ScalarLaw", "Bernoulli", "Gaussian", "DiscreteLaw", "Uniform",
    "UnitNoise", "WeightNoise", "LinearNetwork", "layers_for", "DropBlock", "DropConnect",
    "Dropout", "GaussianDropout", "HiddenNoise", "MaskLaw", "NodeDropout", "PerNodeDrop",
    "Strategy", "strategy_from_name", "STRATEGY_NAMES", "verify", "default_strategies",
    "expected_loss", "expected_penalty", "plain_loss", "second_moment", "exact_expected_loss",
    "monte_carlo_loss", "Derivation", "derive", "random_problem", "induced_penalty",
    "balanced_factors", "unit_contributions", "noise_strength", "drop_probability",
    "global_minimizer", "MinimizerResult", "train", "TrainingResult", "gradient_noise",
    "gradient_noise_vs_batch_size", "mask_sharing_pair", "monte_carlo_gradient_noise",
    "monte_carlo_gradient_noise_vs_batch_size", "stationary_spread", "check_strategy",
    "ConformanceReport", "sweep", "sweep_plot", "conductance", "unit_importance", "ydrop_rates",
    "ydrop_map", "ydrop_fixed_point", "YDropFixedPoint", "train_ydrop", "YDropTraining",
    "noise_mode_spread", "NoiseModeSpread", "iterate_moments", "stationary_moments", "IterateMoments",
    "StationaryMoments", "linearized_spread", "LinearizedSpread", "activation_sparsity", "SparsityMonitor",
    "k_support_norm", "dual_k_support_norm", "prox_squared_k_support_vector",
    "spectral_k_support_norm", "dual_spectral_k_support_norm", "prox_squared_k_support", "deep",
    "nn", "explicit_penalty", "penalized_loss", "explicit_implicit_digits", "ExplicitImplicit",
]


def __getattr__(name):
    if name in _PUBLIC:
        module, attribute = _PUBLIC[name]
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
