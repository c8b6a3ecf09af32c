"""One table-driven walk over the public functions with generated bad values.

Every bad argument raises the one exception class, ``pt.InvalidParameterError`` (both a
``ValueError`` and a ``TypeError``), with a message that names the parameter."""

import numpy as np
import pytest
import torch

import pnd_theory as pt

U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=6, seed=0)
S = pt.second_moment(X)
A = U @ V.T
D = pt.Dropout(0.3)

# kinds of parameters and the bad values generated for each
BAD = {
    "strategy": ["dropout", None, 3, pt.Bernoulli(0.3)],
    "matrix": ["abc", np.ones((2, 2, 2)), np.full((3, 4), np.nan), np.ones((3, 4)) * 1j, [[object()]]],
    "posint": [0, -1, 1.5, True, "3", None],
    "seed": [-1, 1.5, True, "0"],
    "prob": [-0.1, 1.0, "0.5", True, float("nan"), None],
    "device": ["tpu", "cpu:x", 3],
    "dtype": [torch.complex128, torch.int64, "float64"],
    "bool": ["yes", 1, None],
}

# function, valid keyword arguments, {parameter: kind}
TABLE = [
    (pt.expected_penalty, dict(strategy=D, U=U, V=V, second_moment=S),
     {"strategy": "strategy", "U": "matrix", "V": "matrix", "second_moment": "matrix"}),
    (pt.expected_loss, dict(strategy=D, U=U, V=V, X=X, Y=Y), {"strategy": "strategy", "X": "matrix", "Y": "matrix"}),
    (pt.exact_expected_loss, dict(strategy=D, U=U, V=V, X=X, Y=Y), {"strategy": "strategy", "U": "matrix"}),
    (pt.monte_carlo_loss, dict(strategy=D, U=U, V=V, X=X, Y=Y, samples=10),
     {"samples": "posint", "seed": "seed", "device": "device", "dtype": "dtype", "strategy": "strategy"}),
    (pt.derive, dict(strategy=D, n_in=2, width=2, n_out=1),
     {"strategy": "strategy", "n_in": "posint", "width": "posint", "n_out": "posint"}),
    (pt.induced_penalty, dict(strategy=D, A=A, width=4, second_moment=S),
     {"strategy": "strategy", "A": "matrix", "width": "posint", "second_moment": "matrix"}),
    (pt.balanced_factors, dict(strategy=D, A=A, width=4), {"width": "posint", "A": "matrix"}),
    (pt.global_minimizer, dict(strategy=D, X=X, Y=Y, width=4), {"strategy": "strategy", "X": "matrix", "width": "posint"}),
    (pt.train, dict(strategy=D, X=X, Y=Y, width=4, epochs=1, progress=False),
     {"strategy": "strategy", "width": "posint", "epochs": "posint", "seed": "seed", "device": "device",
      "dtype": "dtype", "progress": "bool"}),
    (pt.gradient_noise, dict(strategy=D, U=U, V=V, X_batch=X, Y_batch=Y),
     {"strategy": "strategy", "X_batch": "matrix", "local_reparameterization": "bool"}),
    (pt.monte_carlo_gradient_noise, dict(strategy=D, U=U, V=V, X_batch=X, Y_batch=Y, draws=40, progress=False),
     {"draws": "posint", "seed": "seed", "device": "device"}),
    (pt.check_strategy, dict(strategy=D, samples=10), {"strategy": "strategy", "samples": "posint", "seed": "seed"}),
    (pt.random_problem, dict(), {"n_in": "posint", "width": "posint", "seed": "seed"}),
    (pt.unit_contributions, dict(U=U, V=V), {"U": "matrix", "block_size": "posint"}),
    (pt.Dropout, dict(p=0.3), {"p": "prob"}),
    (pt.DropBlock, dict(p=0.3, block_size=2), {"p": "prob", "block_size": "posint"}),
    (pt.DropConnect, dict(p=0.3), {"p": "prob", "per_sample": "bool"}),
    (pt.PerNodeDrop, dict(p=0.3), {"p": "prob"}),
    (pt.Bernoulli, dict(p=0.3), {"p": "prob"}),
    (pt.Gaussian, dict(p=0.3), {"p": "prob"}),
    (pt.UnitNoise, dict(law=pt.Bernoulli(0.3)), {"block_size": "posint"}),
    (pt.WeightNoise, dict(law=pt.Bernoulli(0.3)), {"per_sample": "bool"}),
    (pt.spectral_k_support_norm, dict(A=A, k=1), {"k": "posint"}),
]

CASES = [(fn, valid, param, bad) for fn, valid, params in TABLE for param, kind in params.items() for bad in BAD[kind]]


def test_valid_arguments_are_accepted():
    for fn, valid, _ in TABLE:
        if fn is pt.train or fn is pt.check_strategy or fn is pt.monte_carlo_gradient_noise:
            continue  # accepted in their own tests; slower
        fn(**valid)


@pytest.mark.parametrize("fn, valid, param, bad", CASES,
                         ids=[f"{fn.__name__}-{param}-{i}" for i, (fn, _, param, _) in enumerate(CASES)])
def test_bad_argument_raises_the_one_exception_naming_it(fn, valid, param, bad):
    kwargs = dict(valid, **{param: bad})
    with pytest.raises(pt.InvalidParameterError) as info:
        fn(**kwargs)
    message = str(info.value)
    shown = {"X_batch": "X_batch", "second_moment": "second_moment"}.get(param, param)
    assert shown in message or (param == "strategy" and "strategy" in message), message
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)
    assert "\n" not in message.strip() or len(message) < 2000


def _train_problem():
    import pnd_theory as pt
    return pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)


@pytest.mark.parametrize("name", sorted(__import__("pnd_theory.studies.training", fromlist=["x"]).TRAIN_PARAMETERS))
def test_train_refuses_every_value_its_table_forbids(name):
    """train's arguments are declared in one table; every value a constraint forbids is refused
    with the one exception, naming the argument."""
    import pnd_theory as pt
    from pnd_theory.studies.training import TRAIN_PARAMETERS
    _, _, X, Y = _train_problem()
    for bad in TRAIN_PARAMETERS[name].violations:
        kwargs = {"width": 4, "epochs": 2, "progress": False, name: bad}
        with pytest.raises(pt.InvalidParameterError, match=name):
            pt.train(pt.Dropout(0.3), X, Y, **kwargs)


BIG = 2**41  # a count beyond 2^40 steps: a run that could not finish
ABSURD = [
    (lambda: pt.monte_carlo_loss(D, U, V, X, Y, samples=10**30), r"samples must be a positive integer at most 2\^40"),
    (lambda: pt.monte_carlo_loss(D, U, V, X, Y, samples=10**12), r"samples=10{12} must be sizes whose draws' losses"),
    (lambda: pt.verify([D], U, V, X, Y, samples=10**12), r"samples=10{12} must be sizes"),
    (lambda: pt.train_ydrop(X, Y, 4, epochs=BIG), r"epochs must be a positive integer at most 2\^40"),
    (lambda: pt.train_ydrop(X, Y, 10**12), r"n_in=3, width=1000000000000, n_out=2, n_samples=6 must be sizes"),
    (lambda: pt.deep.train(X, Y, (3,), epochs=BIG), r"epochs must be a positive integer at most 2\^40"),
    (lambda: pt.stationary_spread(D, X, Y, 4, 0.01, BIG), r"steps must be a positive integer at most 2\^40"),
    (lambda: pt.stationary_spread(D, X, Y, 4, 0.01, 4, snapshots=10**12), r"snapshots=1000000000000, .* must be sizes"),
    (lambda: pt.noise_mode_spread(D, X, Y, 4, "masks", 0.01, BIG), r"steps must be a positive integer at most 2\^40"),
    (lambda: pt.ydrop_fixed_point(X, Y, 4, max_iter=BIG), r"max_iter must be a positive integer at most 2\^40"),
    (lambda: pt.global_minimizer(pt.DropConnect(0.3), X, Y, 4, max_iter=BIG), r"max_iter must be a positive integer"),
    (lambda: pt.LinearNetwork(10**30, 4, 2, D), r"n_in=10{30}, width=4, n_out=2 must be sizes whose factors"),
    (lambda: pt.LinearNetwork(5, 4, 2, D, V=V), r"V must have shape \(n_in, width\) = \(5, 4\)"),
    (lambda: pt.check_strategy(D, routes=None), r"routes must be a sequence of names from"),
    (lambda: pt.check_strategy(D, routes=[None]), r"routes must be a sequence of names from"),
    (lambda: pt.iterate_moments(D, X, Y, U[:, :3], 0.01, BIG), r"steps must be a positive integer at most 2\^40"),
    (lambda: pt.iterate_moments(D, X, Y, U[:, :3], 0.01, 10**9), r"steps=1000000000, .* must be sizes"),
    (lambda: pt.monte_carlo_gradient_noise_vs_batch_size(D, U, V, X, Y, [2], batches=BIG), r"batches must be a pos"),
]


@pytest.mark.parametrize("call, match", ABSURD, ids=[m[:30] for _, m in ABSURD])
def test_absurd_counts_and_sizes_are_refused_before_any_work_naming_them(call, match):
    with pytest.raises(pt.InvalidParameterError, match=match):
        call()
