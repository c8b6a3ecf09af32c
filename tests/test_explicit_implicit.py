"""The differentiable explicit penalty and the explicit-versus-implicit study on the digits: the
penalty and its gradient against the two-layer form by hand, the matched noise's covariance against
the masks' gradient noise, the share-explained arithmetic, the study's bookkeeping and bad input."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import pnd_theory as pt
from pnd_theory.nn import PerNodeDropLinear
from pnd_theory.studies import explicit_implicit as ei
from pnd_theory.studies.digits import train_network

ROUNDING = 1e-12
#: Monte Carlo estimates are held within this many standard errors
Z = 4.5


def _relu_net(readout, seed=0, n_in=5, hidden=7, n_out=3):
    torch.manual_seed(seed)
    head = [nn.Dropout(0.3), nn.Linear(hidden, n_out)] if readout == "Dropout" else [PerNodeDropLinear(hidden, n_out, 0.3)]
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), *head).double()


def _data(seed=1, N=20, n_in=5, n_out=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, n_in, generator=g, dtype=torch.float64), torch.randn(N, n_out, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("readout", ["Dropout", "PerNodeDrop"])
def test_penalized_loss_and_its_gradient_match_the_two_layer_form_by_hand(readout):
    """R = lam sum_oj U_oj^2 mean_i h_ij^2 for both readouts; the gradient of L + R by autograd on the form."""
    model = _relu_net(readout)
    X, Y = _data()
    terms = pt.penalized_loss(model, X, Y)
    assert terms.penalty.item() == pytest.approx(pt.explicit_penalty(model, X, Y, samples=0).value, rel=ROUNDING)
    (terms.loss + terms.penalty).backward()
    U_mod = model[-1]
    U = U_mod.weight.detach().clone().requires_grad_()
    W, b = model[0].weight.detach().clone().requires_grad_(), model[0].bias.detach().clone().requires_grad_()
    h = torch.relu(X @ W.T + b)
    lam = 0.3 / 0.7
    R = lam * ((U**2).sum(0) * (h**2).mean(0)).sum()
    L = ((Y - h @ U.T - U_mod.bias.detach()) ** 2).sum(1).mean()
    (L + R).backward()
    assert R.item() == pytest.approx(terms.penalty.item(), rel=ROUNDING)
    assert L.item() == pytest.approx(terms.loss.item(), rel=ROUNDING)
    for mine, theirs in ((U.grad, U_mod.weight.grad), (W.grad, model[0].weight.grad), (b.grad, model[0].bias.grad)):
        assert torch.allclose(mine, theirs, rtol=1e-10, atol=1e-13)
    assert model.training  # modes restored


def test_penalized_loss_cross_entropy_is_the_second_order_value_and_its_form_by_hand():
    """Softmax s, H = diag(s) - s s^T: Dropout R2 = lam/2 mean_i sum_j h_ij^2 u_j^T H_i u_j, PerNodeDrop
    R2 = lam/2 mean_i sum_oj U_oj^2 h_ij^2 H_i,oo (the readouts differ by the off-diagonal of H)."""
    X, _ = _data()
    labels = torch.arange(X.shape[0]) % 3
    dropout, pernode = _relu_net("Dropout"), _relu_net("PerNodeDrop")
    pernode.load_state_dict(dropout.state_dict() | {"2.weight": dropout[3].weight, "2.bias": dropout[3].bias},
                            strict=False)
    lam = 0.3 / 0.7
    with torch.no_grad():
        h = torch.relu(dropout[0](X))
        U = dropout[3].weight
        s = torch.softmax(dropout.eval()(X), -1)
        H = torch.diag_embed(s) - s[:, :, None] * s[:, None, :]
        by_hand = {"Dropout": 0.5 * lam * torch.einsum("ij,oj,iop,pj->i", h**2, U, H, U).mean(),
                   "PerNodeDrop": 0.5 * lam * torch.einsum("ij,oj,io->i", h**2, U**2, s * (1 - s)).mean()}
    for name, model in (("Dropout", dropout), ("PerNodeDrop", pernode)):
        model.train()
        terms = pt.penalized_loss(model, X, labels, loss="cross_entropy")
        ref = pt.explicit_penalty(model, X, labels, loss="cross_entropy", samples=0)
        assert terms.penalty.item() == pytest.approx(ref.value, rel=ROUNDING)
        assert terms.loss.item() == pytest.approx(ref.plain_loss, rel=ROUNDING)
        assert terms.penalty.item() == pytest.approx(float(by_hand[name]), rel=1e-10)
    assert abs(float(by_hand["Dropout"] - by_hand["PerNodeDrop"])) > 1e-3 * float(by_hand["Dropout"])


def test_matched_noise_has_the_masks_gradient_covariance_in_expectation():
    """Squared loss, masks before the readout: E g_M = grad(L + R), so tr Sigma_M = E||g_M - grad(L + R)||^2;
    the matched objective's gradient minus the penalty's has mean 0 and the same expected squared norm."""
    model = _relu_net("Dropout").train()
    X, Y = _data()
    params = list(model.parameters())
    flat = ei._flat

    def gradient(objective):
        model.zero_grad()
        objective(model, X, Y).backward()
        return flat([q.grad for q in params]).clone()

    torch.manual_seed(3)
    mean = gradient(ei._objective("penalty", "squared", 4))
    masks = ei._objective("masks", "squared", 4) or (lambda m, x, y: ((m(x) - y) ** 2).sum(1).mean())
    matched = ei._objective("penalty+matched", "squared", 4)
    n = 400
    d_masks = torch.stack([gradient(masks) - mean for _ in range(n)])
    d_matched = torch.stack([gradient(matched) - mean for _ in range(n)])
    for d in (d_masks, d_matched):  # mean zero, coordinate by coordinate
        z = d.mean(0) / (d.std(0) / math.sqrt(n))
        assert z.abs().max() < 5.0
    t_masks, t_matched = (d_masks**2).sum(1), (d_matched**2).sum(1)
    se = math.hypot(t_masks.std() / math.sqrt(n), t_matched.std() / math.sqrt(n))
    assert abs(float(t_masks.mean() - t_matched.mean())) < Z * se
    assert float(t_matched.mean()) > 0.0


def test_share_explained_arithmetic():
    a = np.array([1.0, 2.0, 3.0, 2.5])
    rho, se = ei.share_explained(0.5 * a, a)
    assert rho == pytest.approx(0.5, rel=ROUNDING) and se == pytest.approx(0.0, abs=1e-12)
    b = np.array([0.3, 0.2, 0.5, 0.1])
    rho, se = ei.share_explained(b, a)
    assert rho == pytest.approx(b.mean() / a.mean(), rel=ROUNDING)
    # delta method by hand
    cov = np.cov(np.stack([b, a]))
    expected = abs(rho) * math.sqrt((cov[0, 0] / b.mean() ** 2 + cov[1, 1] / a.mean() ** 2
                                     - 2 * cov[0, 1] / (a.mean() * b.mean())) / 4)
    assert se == pytest.approx(expected, rel=1e-12)
    assert all(math.isnan(v) for v in ei.share_explained(b, np.zeros(4)))


def test_study_runs_every_cell_and_summarizes_by_seed():
    r = pt.explicit_implicit_digits(0.5, (0, 1), epochs=1, n_train=64, hidden=16, draws=2)
    assert len(r.runs) == 2 * (1 + 2 * 3)
    s, e = r.summary(), r.explained()
    assert set(s) == set(ei.NOISES) and set(s["Dropout"]) == set(ei.MODES)
    none = [x["test_loss"] for x in r.runs if x["mode"] == "none"]
    assert s["PerNodeDrop"]["none"]["test_loss"]["mean"] == pytest.approx(np.mean(none), rel=ROUNDING)
    masks = [x["test_loss"] for x in r.runs if x["mode"] == "masks" and x["noise"] == "Dropout"]
    assert e["Dropout"]["test_loss"]["noise_effect"][0] == pytest.approx(np.mean(masks) - np.mean(none), rel=1e-9)
    assert all(x["penalty"] > 0 for x in r.runs if x["mode"] != "none")
    json.dumps(r.to_dict())
    assert "share" in repr(r)


@pytest.mark.parametrize("call, message", [
    (lambda: ei.train_digits_mlp("Dropout", "noise", 0.5, 0), "mode"),
    (lambda: ei.train_digits_mlp("Gaussian", "masks", 0.5, 0), "noise"),
    (lambda: ei.train_digits_mlp("Dropout", "masks", 0.0, 0), "p"),
    (lambda: ei.train_digits_mlp("Dropout", "masks", 0.5, 0, draws=1), "draws"),
    (lambda: ei.train_digits_mlp("Dropout", "masks", 0.5, 0, loss="hinge"), "loss"),
    (lambda: pt.explicit_implicit_digits(0.5, ()), "seeds"),
    (lambda: pt.explicit_implicit_digits(0.5, (0,), modes=("masks", "sgd")), "modes"),
    (lambda: train_network(nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(3, 2), objective=3), "objective"),
])
def test_bad_input_is_refused_clearly(call, message):
    with pytest.raises(pt.InvalidParameterError, match=message):
        call()


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
FIG = "paper_figures/explicit_digits.json"
PCT1, F2, G3 = "{:.1%}", "{:.2f}", "{:.3g}"
#: snippet of the usage page (moved there from the README) with {} for the number, key path into
#: the figure's JSON, format
README_CLAIMS = [
    ("test accuracy falls from\n{} (d)", ("summary", "Dropout", "none", "test_accuracy", "mean"), PCT1),
    ("(d) to {} with Dropout masks", ("summary", "Dropout", "masks", "test_accuracy", "mean"), PCT1),
    ("and {} with\nPerNodeDrop masks", ("summary", "PerNodeDrop", "masks", "test_accuracy", "mean"), PCT1),
    ("the test loss rises from {} to", ("summary", "Dropout", "none", "test_loss", "mean"), G3),
    ("to {} (Dropout). The penalty", ("summary", "Dropout", "masks", "test_loss", "mean"), G3),
    ("explains a share {} (Dropout)", ("explained", "Dropout", "test_accuracy", "share"), F2),
    ("and {} (PerNodeDrop) of the accuracy effect", ("explained", "PerNodeDrop", "test_accuracy", "share"), F2),
    ("test loss the other way: {} against", ("summary", "Dropout", "penalty", "test_loss", "mean"), G3),
    ("against {} without noise", ("summary", "Dropout", "none", "test_loss", "mean"), G3),
    ("(a share {} of the\neffect)", ("explained", "Dropout", "test_loss", "share"), F2),
    ("reproduces {} and", ("explained", "Dropout", "test_accuracy", "matched_share"), F2),
    ("and {} (accuracy)", ("explained", "PerNodeDrop", "test_accuracy", "matched_share"), F2),
    ("{} (test loss, Dropout)", ("explained", "Dropout", "test_loss", "matched_share"), F2),
]


@pytest.mark.parametrize("snippet, keys, fmt", README_CLAIMS, ids=[c[0] for c in README_CLAIMS])
def test_readme_number_matches_the_figure_file(snippet, keys, fmt):
    value = json.loads((ROOT / FIG).read_text())
    for key in keys:
        value = value[key]
    text = snippet.format(fmt.format(value))
    assert text in (ROOT / "docs" / "usage.md").read_text(), f"docs/usage.md should say {text!r} (from {FIG})"


def test_the_committed_figure_is_the_full_run():
    data = json.loads((ROOT / FIG).read_text())
    assert data["quick"] is False and len(data["seeds"]) >= 5
    assert len(data["runs"]) == len(data["seeds"]) * (1 + 2 * 3)


def test_quick_figure_writes_its_files(tmp_path):
    from paper_figures import fig_explicit_digits

    paths = fig_explicit_digits.make(tmp_path, quick=True)
    assert {p.name for p in paths} == {"explicit_digits.png", "explicit_digits.pdf", "explicit_digits.json"}
    data = json.loads((tmp_path / "explicit_digits.json").read_text())
    assert data["quick"] is True and set(data["explained"]) == {"Dropout", "PerNodeDrop"}
