"""Time of the symbolic derivation of every built-in strategy at n_in = n_out = 3, width = 4.

Target: each derives in under 10 s on a 2-core machine.
Run: ``python benchmarks/bench_symbolic.py``.
"""

import time

import pnd_theory as pt
from pnd_theory.verification import default_strategies


def main():
    print(f"{'strategy':<52} {'derive (s)':>10} {'compact (s)':>12}")
    for s in default_strategies(width=4, p=0.3):
        t = time.perf_counter()
        d = pt.derive(s, 3, 4, 3)
        t1 = time.perf_counter() - t
        t = time.perf_counter()
        d.compact()
        t2 = time.perf_counter() - t
        print(f"{repr(s)[:52]:<52} {t1:10.2f} {t2:12.2f}")


if __name__ == "__main__":
    main()
