"""Time of the symbolic derivation of every built-in strategy at n_in = n_out = 3, width = 4.

Target: each derives in under 10 s on a 2-core machine.
Run: ``python benchmarks/bench_symbolic.py``; writes ``benchmarks/results/symbolic.json``.
"""

import json
import time
from pathlib import Path

import pnd_theory as pt
from pnd_theory.routes.verification import default_strategies


def main():
    print(f"{'strategy':<52} {'derive (s)':>10} {'compact (s)':>12}")
    rows = []
    for s in default_strategies(width=4, p=0.3):
        t = time.perf_counter()
        d = pt.derive(s, 3, 4, 3)
        t1 = time.perf_counter() - t
        t = time.perf_counter()
        d.compact()
        t2 = time.perf_counter() - t
        print(f"{repr(s)[:52]:<52} {t1:10.2f} {t2:12.2f}")
        rows.append({"strategy": repr(s), "derive_seconds": t1, "compact_seconds": t2})
    out = Path(__file__).parent / "results" / "symbolic.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"n_in": 3, "width": 4, "n_out": 3, "rows": rows,
                               "derive_seconds_min": min(r["derive_seconds"] for r in rows),
                               "derive_seconds_max": max(r["derive_seconds"] for r in rows)}, indent=1))


if __name__ == "__main__":
    main()
