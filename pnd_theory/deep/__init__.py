r"""Deep linear networks: the same routes at any depth.
"""
from .closed import expected_loss, expected_penalty, mean_map, plain_loss
from .network import DeepLaw, deep_law
from .routes import exact_expected_loss, monte_carlo_loss
from .symbolic import DeepCompactForm, DeepDerivation, derive
from .induced import (DeepMinimizerResult, InducedResult, envelope_coefficient, equalized_factors, global_minimizer,
                      induced_penalty)
from .training import DeepTrainingResult, train
