"""Every number the README quotes is read from a file the project writes, and matches it.

The README's first screen is short; the measured numbers it used to quote live on the
documentation pages it links (``PAGES``), and are checked there the same way.

``CLAIMS`` is the declared table: a README snippet with ``{}`` where the number goes, the file
that holds the number (a figure's JSON, a benchmark's JSON under ``benchmarks/results/``), the
key path to it, and the format the README prints it with.  A key path is a tuple of keys and
list indexes; ``"*"`` takes every item of a list or dict, a dict takes the items of a list whose
fields match it, and a last element ``min``, ``max`` or ``maxabs`` reduces them.  Regenerating a figure or rerunning a benchmark and forgetting the
README fails here.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the README and the documentation pages that quote measured numbers and real output
PAGES = ("README.md", "docs/getting_started.md", "docs/usage.md", "docs/design.md", "docs/results.md")
README = "\n\n".join((ROOT / page).read_text() for page in PAGES)

OBJ, SV, COR, EQ = "paper_figures/objective.json", "paper_figures/singular_values.json", \
    "paper_figures/correlation.json", "paper_figures/equalization.json"
MC, WC, DEEP, DIG = "paper_figures/monte_carlo.json", "paper_figures/width_condition.json", \
    "paper_figures/deep_last_layer.json", "paper_figures/pernodedrop_digits.json"
GN, EX = "paper_figures/gradient_noise.json", "benchmarks/results/readme_examples.json"
BP, BS, BPN = "benchmarks/results/penalty.json", "benchmarks/results/symbolic.json", \
    "benchmarks/results/bench_pernodedrop_cpu.json"
BMC = "benchmarks/results/montecarlo_cpu_1thread.json"
BPN2 = "benchmarks/results/bench_pernodedrop_cpu_2threads.json"
BIT = "benchmarks/results/iterates.json"

PCT, PCT1, G1, G2, G3, F2, F4 = "{:.2%}", "{:.1%}", "{:.1g}", "{:.2g}", "{:.3g}", "{:.2f}", "{:.4f}"
MASKED = ("Dropout", "PerNodeDrop")

CLAIMS = [
    # figure 1
    ("sit {} (Dropout)", OBJ, ("strategies", "Dropout", "averaged_relative_excess"), G2),
    ("{} (DropBlock)", OBJ, ("strategies", "DropBlock (b = 2)", "averaged_relative_excess"), G2),
    ("{} (per-batch DropConnect)", OBJ, ("strategies", "DropConnect (output, per batch)", "averaged_relative_excess"), G2),
    ("and {} (input-layer PerNodeDrop, convex optimum)", OBJ, ("strategies", "PerNodeDrop (input)", "averaged_relative_excess"), G2),
    # figure 2
    ("largest error {} to", SV, ("runs", "*", "max_abs_error_over_top", "min"), PCT),
    ("to {} of the top singular value", SV, ("runs", "*", "max_abs_error_over_top", "max"), PCT),
    # figure 3
    ("({} at rho = 0.9", COR, ("strategies", "Dropout", "points", "induced_penalty_numeric", 3), F4),
    ("from {} at rho = 0)", COR, ("strategies", "Dropout", "points", "induced_penalty_numeric", 0), F4),
    ("input-layer PerNodeDrop's stays {}", COR, ("strategies", "PerNodeDrop (input)", "points", "induced_penalty_numeric", 3), F4),
    # figure 4
    ("falls to {} (Dropout)", EQ, ("panels", "Dropout", "cv", -1), G2),
    ("and {} (DropBlock); training", EQ, ("panels", "DropBlock", "cv", -1), G2),
    ("ends at {} and", EQ, ("panels", "Dropout", "cv_no_noise", -1), G2),
    ("and {} (DropBlock, without noise)", EQ, ("panels", "DropBlock", "cv_no_noise", -1), G2),
    # figure 5
    ("within {} standard errors of the exact value", MC, ("strategies", "*", "final_z", "maxabs"), F2),
    # figure 6
    ("by {} at G = 1", WC, ("relative_gap", 0), PCT1),
    ("and {} at G = 2", WC, ("relative_gap", 1), PCT1),
    # figure 7
    ("within {} to", DEEP, ("runs", slice(1, 7), "max_gap_over_sigma1", "min"), PCT),
    ("to {} of the top singular value (Dropout and DropBlock", DEEP, ("runs", slice(1, 7), "max_gap_over_sigma1", "max"), PCT),
    ("singular values are\n{} of the top singular value away", DEEP, ("runs", 7, "max_gap_over_sigma1"), PCT1),
    # figure 8
    ("at p = 0.5 ({} for PerNodeDrop", DIG, ("results", "PerNodeDrop", 4, "final_training_loss", "mean"), G2),
    ("{} for Dropout)", DIG, ("results", "Dropout", 4, "final_training_loss", "mean"), G3),
    ("accuracies agree within half a point ({} to", DIG, ("results", "*", "*", "validation_accuracy", "mean", "min"), PCT1),
    ("to {})", DIG, ("results", "*", "*", "validation_accuracy", "mean", "max"), PCT1),
    # figure 9
    ("shared-mask trace is {}x (output layer)", GN, ("layers", "output", "ratio_at", "256"), "{:.1f}"),
    ("and {}x (input layer)", GN, ("layers", "input", "ratio_at", "256"), "{:.1f}"),
    ("but {}x (output layer)", GN, ("local_reparameterization", "output", "ratio_local_to_exact"), F2),
    ("and {}x (input layer) the exact layer's gradient noise", GN, ("local_reparameterization", "input", "ratio_local_to_exact"), F2),
    # the tour and the command-line excerpts (benchmarks/readme_examples.py)
    ("ends {} above the optimum", EX, ("tour", "relative_gap"), PCT),
    ("above the optimum ({} steps)", EX, ("tour", "steps"), "{}"),
    ("objective  L + Theta = {}", EX, ("minimize", "json", "objective"), "{:.12g}"),
    ("penalty    Theta     = {}", EX, ("minimize", "json", "penalty"), "{:.12g}"),
    ("{} of {} strategies agree", EX, ("verify", "json", "agreeing"), "{}"),
    # benchmarks
    ("forward product `U (V^T X)` | {}x", BP, ("ratio_min",), F2),
    ("x to {}x |", BP, ("ratio_max",), F2),
    ("width 4 (target < 10 s) | {} s", BS, ("derive_seconds_min",), F2),
    ("s to {} s |", BS, ("derive_seconds_max",), F2),
    ("costs {}x to", "benchmarks/results/deep.json", ("cases", "*", "penalty_over_forward", "min"), "{:.1f}"),
    ("to {}x one forward product `W_4 W_3 W_2 W_1 X`", "benchmarks/results/deep.json",
     ("cases", "*", "penalty_over_forward", "max"), "{:.1f}"),
    ("exact layer {}x", BPN, ("rows", {"case": "pnd-exact-drop"}, "ratio_to_linear_dropout"), F2),
    ("Gaussian fast path {}x", BPN, ("rows", {"case": "pnd-gaussian-local"}, "ratio_to_linear_dropout"), F2),
    ("naive full-mask path {}x", BPN, ("rows", {"case": "naive-drop"}, "ratio_to_linear_dropout"), F2),
    ("peak extra memory {} MiB (exact)", BPN, ("rows", {"case": "pnd-exact-drop"}, "peak_extra_mib"), "{:.1f}"),
    ("vs {} MiB (naive)", BPN, ("rows", {"case": "naive-drop"}, "peak_extra_mib"), "{:.1f}"),
    ("exact Gaussian {}x with", BPN, ("rows", {"case": "pnd-exact-gaussian"}, "ratio_to_linear_dropout"), F2),
    ("and {}x with `gaussian_draw=\"conditional\"`", BPN,
     ("rows", {"case": "pnd-exact-gaussian-conditional"}, "ratio_to_linear_dropout"), F2),
    ("(chunked path {}x)", BPN, ("rows", {"case": "chunked-drop"}, "ratio_to_linear_dropout"), F2),
    ("and {} MiB (chunked)", BPN, ("rows", {"case": "chunked-drop"}, "peak_extra_mib"), "{:.1f}"),
    ("torch {} thread, numba", BPN, ("setup", "threads_during_timed_runs", "torch"), "{}"),
    ("numba {} thread, BLAS 1 thread", BPN, ("setup", "threads_during_timed_runs", "numba"), "{}"),
    ("`--threads 2`: torch {},", BPN2, ("setup", "threads_during_timed_runs", "torch"), "{}"),
    (", numba {}, BLAS 2 threads", BPN2, ("setup", "threads_during_timed_runs", "numba"), "{}"),
    ("exact layer {}x on 2 threads", BPN2, ("rows", {"case": "pnd-exact-drop"}, "ratio_to_linear_dropout"), F2),
    ("exact Gaussian {}x on 2 threads", BPN2, ("rows", {"case": "pnd-exact-gaussian"}, "ratio_to_linear_dropout"), F2),
    ("and {}x on 2 threads with the conditional draw", BPN2, ("rows", {"case": "pnd-exact-gaussian-conditional"},
                                             "ratio_to_linear_dropout"), F2),
    ("First forward+backward in a new process {} s", BPN, ("setup", "first_step_new_process_seconds"), "{:.1f}"),
    ("| {}x (per-batch DropConnect)", BMC, ("rows", "DropConnect(p=0.5, layer='output', per_sample=False)",
                                            "ratio_to_forward"), F2),
    ("to {}x (per-sample DropConnect on both layers)", BMC, ("rows", "DropConnect(p=0.5, layer='both', per_sample=True)",
                                                             "ratio_to_forward"), "{:.1f}"),
    ("; {}x input-layer PerNodeDrop", BMC, ("rows", "PerNodeDrop(p=0.5, layer='input', stir='drop')",
                                          "ratio_to_forward"), "{:.1f}"),
    ("300 coordinates of `U` takes {} s", BIT, ("rows", {"n": 300, "strategy": "Dropout(p=0.3)"},
                                                  "stationary_seconds"), "{:.1f}"),
    ("second-moment map takes {} s", BIT, ("rows", {"n": 40, "strategy": "Dropout(p=0.3)"}, "dense_seconds"), "{:.1f}"),
    ("the structured route takes {} s", BIT, ("rows", {"n": 40, "strategy": "Dropout(p=0.3)"},
                                             "stationary_seconds"), "{:.2f}"),
    (", {}x with Gaussian masks (target 10x)", BMC, ("rows", "PerNodeDrop(p=0.5, layer='input', stir='gaussian')",
                                                    "ratio_to_forward"), "{:.1f}"),
]


def lookup(data, path):
    """Follow ``path`` (module docstring) into ``data``."""
    values = [data]
    for key in path:
        if key in ("min", "max", "maxabs") and key == path[-1]:
            numbers = values if len(values) > 1 or not isinstance(values[0], list) else values[0]
            return {"min": min, "max": max}[key](numbers) if key != "maxabs" else max(abs(v) for v in numbers)
        step = []
        for v in values:
            if key == "*":
                step.extend(v.values() if isinstance(v, dict) else v)
            elif isinstance(key, dict):  # the items of a list whose fields match
                step.extend(item for item in v if all(item.get(k) == want for k, want in key.items()))
            elif isinstance(key, slice):
                step.extend(v[key])
            else:
                step.append(v[key])
        values = step
    return values[0] if len(values) == 1 else values


def render(claim):
    snippet, path, keys, fmt = claim
    data = json.loads((ROOT / path).read_text())
    value = lookup(data, keys)
    if snippet.count("{}") == 2:  # "{} of {} strategies agree": the count and the total
        return snippet.format(fmt.format(value), fmt.format(lookup(data, keys[:-1] + ("total",))))
    return snippet.format(fmt.format(value))


@pytest.mark.parametrize("claim", CLAIMS, ids=[c[0] for c in CLAIMS])
def test_readme_number_matches_its_file(claim):
    text = render(claim)
    assert text in README, f"the README or one of {PAGES[1:]} should say {text!r} (from {claim[1]})"


def test_every_figure_json_records_the_optimizer_it_trained_with():
    import inspect

    import pnd_theory as pt

    assert inspect.signature(pt.train).parameters["optimizer"].default == "adam"
    for name in ("objective", "singular_values", "correlation", "equalization", "deep_last_layer",
                 "pernodedrop_digits"):
        data = json.loads((ROOT / "paper_figures" / f"{name}.json").read_text())
        assert data["optimizer"] == "Adam", name
        assert "SGD" not in json.dumps({k: v for k, v in data.items() if k in ("description", "units", "training")})


def test_the_readme_verify_excerpt_is_real_output():
    run = json.loads((ROOT / EX).read_text())["verify"]
    printed = set(run["text"].splitlines())
    block = README.split("`pnd-theory verify` (real output")[1].split("```")[1]
    lines = [line for line in block.strip().splitlines() if line.strip() != "..."]
    assert len(lines) >= 5 and all(line in printed for line in lines)


def test_the_readme_user_law_excerpt_is_real_output():
    printed = set((ROOT / "benchmarks" / "results" / "user_law.txt").read_text().splitlines())
    block = README.split("A law of your own, sent through every route")[1].split("```")[3]
    lines = [line for line in block.strip().splitlines() if line.strip()]
    assert len(lines) >= 10 and all(line in printed for line in lines)


def test_the_readme_names_no_private_notes_and_no_fact_labels():
    assert "THEORY.md" not in README
    assert not re.search(r"\bF\d{1,2}\b", README)


def test_a_quick_figure_says_so_in_the_image(tmp_path):
    from paper_figures._style import figure, save_figure

    texts = []
    for quick in (False, True):
        fig, _ = figure()
        save_figure(fig, tmp_path, f"quick_{quick}", quick=quick)
        texts.append([t.get_text() for t in fig.texts])
    assert texts[0] == [] and any("QUICK RUN" in t for t in texts[1])
    assert (tmp_path / "quick_True.png").is_file()
