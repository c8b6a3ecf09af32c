"""The README's worked example of a user law: a three-point law on the hidden units and a
user-written scalar law on the weights, sent through every route by ``pt.check_strategy``.

Writes what it prints to ``benchmarks/results/user_law.txt``.
"""

from pathlib import Path

import torch

import pnd_theory as pt


class Triangle(pt.ScalarLaw):
    """Triangular on [0, 2] (the law of u1 + u2): its moments and a sampler are all it needs."""

    def moment(self, k):
        return (2 ** (k + 2) - 2) / ((k + 1) * (k + 2))

    def sample(self, shape, generator=None, device=None, dtype=None):
        u = torch.rand((2, *shape), generator=generator, device=device, dtype=dtype or torch.float64)
        return u[0] + u[1]


def main():
    three_point = pt.UnitNoise(pt.DiscreteLaw([0.0, 0.5, 2.0], [0.2, 0.4, 0.4]))
    mixed = pt.WeightNoise((Triangle(), pt.Bernoulli(0.1)), layer="both")   # law on V, law on U
    lines = []
    for strategy in (three_point, mixed):
        report = pt.check_strategy(strategy, samples=4000, seed=0)
        lines.append(report.table())
        lines.append(f"ok: {report.ok}")
        lines.append("")
    d = pt.derive(three_point, n_in=2, width=2, n_out=1)
    lines.append(d.compact().text)
    text = "\n".join(lines)
    print(text)
    out = Path(__file__).parent / "results" / "user_law.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
