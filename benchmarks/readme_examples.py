"""The examples the README shows, run for real: their numbers go to ``results/readme_examples.json``.

Runs the README's ``pnd-theory verify``, ``derive`` and ``minimize`` commands (through
``--json``, and their text reports) and the tour's training example, and writes what they
printed and returned.  ``tests/test_readme_numbers.py`` checks that every number the README
quotes matches this file.  Run: ``python benchmarks/readme_examples.py`` (about a minute).
"""

import contextlib
import io
import json
from pathlib import Path

import pnd_theory as pt
from pnd_theory.apps.cli import main as cli

COMMANDS = {
    "verify": ["verify", "--no-progress"],
    "derive": ["derive", "--strategy", "pernodedrop", "--layer", "both"],
    "minimize": ["minimize", "--strategy", "pernodedrop", "--layer", "input", "--p", "0.3", "--width", "8",
                 "--n-in", "4", "--n-out", "3", "--n-samples", "64"],
}


def run(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(argv)
    return code, out.getvalue()


def tour():
    """The tour's training example: the global minimizer, then training with sampled masks."""
    U, V, X, Y = pt.random_problem(n_in=4, width=8, n_out=3, n_samples=64, seed=0)
    s = pt.DropBlock(0.5, 2)
    r = pt.global_minimizer(s, X, Y, width=8)
    result = pt.train(s, X, Y, width=8, progress=False, device="cpu")
    top = float(r.singular_values[0])
    return {"strategy": repr(s), "minimizer_objective": r.objective, "minimizer_method": r.method,
            "trained_objective": result.objective, "relative_gap": result.objective / r.objective - 1,
            "singular_values_error_over_top": float(abs(result.singular_values - r.singular_values).max() / top),
            "steps": result.steps}


def main():
    data = {}
    for name, argv in COMMANDS.items():
        code, text = run(argv)
        json_code, json_text = run(argv + ["--json"])
        data[name] = {"argv": argv, "exit_code": code, "text": text, "json": json.loads(json_text)}
        assert code == json_code
    data["tour"] = tour()
    out = Path(__file__).parent / "results" / "readme_examples.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(data, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
