"""The fused per-sample operators as torch sees them: torch.library.opcheck on every operator,
empty batches, the caller's thread counts, torch.export, torch.func, and what is refused."""
import subprocess
import sys

import pytest
import torch
from torch.library import opcheck

from pnd_theory.kernels import ops
from pnd_theory.kernels.counter import counter_masks
from pnd_theory.nn import BlockDropout, DropConnectLinear, GaussianDropout, PerNodeDropLinear, per_sample_masked_linear

SEED = torch.tensor(11)


def _tensor(shape, dtype, requires_grad, transposed, gen):
    """A tensor of ``shape``; ``transposed`` gives a non-contiguous view of the same shape."""
    t = torch.randn(shape[::-1] if transposed else shape, dtype=torch.float64, generator=gen).to(dtype)
    t = t.t() if transposed else t
    return t.requires_grad_(requires_grad)


def _calls(rows, dtype, requires_grad, transposed, gaussian):
    gen = torch.Generator().manual_seed(rows)
    x = _tensor((rows, 7), dtype, requires_grad, transposed, gen)
    w = _tensor((3, 7), dtype, requires_grad, transposed, gen)
    g = _tensor((rows, 3), dtype, requires_grad, False, gen)
    return [(ops._forward_op, (x, w, SEED, 0.3, gaussian, 1)),
            (ops._grad_input_op, (g, w, SEED, 0.3, gaussian, 1)),
            (ops._grad_weight_op, (g, x, SEED, 0.3, gaussian, 1)),
            (ops._backward_op, (g, x, w, SEED, 0.3, gaussian, 1)),
            (ops._normals_op, (SEED, x, 3)),
            (ops._conditional_op, (x, w, SEED, 0.3)),
            (ops._conditional_backward_op, (g, x, w, SEED, 0.3))]


def test_every_operator_is_checked():
    assert {op for op, _ in _calls(2, torch.float64, False, False, False)} == set(ops.OPS)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck(dtype, requires_grad):
    """Schema, fake tensors, autograd registration and AOT dispatch (forward and backward traced
    against eager) of every operator: batch 0, 1 and an odd size, contiguous or not (odd widths)."""
    for rows in (0, 1, 5):
        for transposed in (False, True):
            for gaussian in (False, True):
                for op, args in _calls(rows, dtype, requires_grad, transposed, gaussian):
                    opcheck(op, args)


# ----------------------------------------------------------------------------
# empty batches
# ----------------------------------------------------------------------------
LAYERS = [dict(stir="drop"), dict(stir="gaussian"), dict(stir="gaussian", gaussian_draw="conditional")]


@pytest.mark.parametrize("kwargs", LAYERS, ids=["drop", "gaussian", "conditional"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_empty_batch_gives_empty_outputs_and_zero_gradients(kwargs, dtype):
    net = torch.nn.Sequential(PerNodeDropLinear(5, 4, 0.5, dtype=dtype, **kwargs),
                              PerNodeDropLinear(4, 3, 0.5, dtype=dtype, **kwargs))
    x = torch.randn(0, 5, dtype=dtype, requires_grad=True)
    y = net(x)
    assert y.shape == (0, 3)
    y.sum().backward()
    assert x.grad.shape == (0, 5)
    for p in net.parameters():
        assert torch.equal(p.grad, torch.zeros_like(p)), p.grad


@pytest.mark.parametrize("gaussian", [False, True])
def test_empty_batch_of_each_operator(gaussian):
    for op, args in _calls(0, torch.float64, False, False, gaussian):
        out = op(*args)
        for t in (out if isinstance(out, tuple) else (out,)):
            assert not torch.isnan(t).any() and (t.numel() == 0 or torch.equal(t, torch.zeros_like(t)))


def test_empty_batch_of_the_other_layers():
    x = torch.randn(0, 6, requires_grad=True)
    for layer in (DropConnectLinear(6, 2, 0.3, per_sample=True), DropConnectLinear(6, 2, 0.3),
                  GaussianDropout(0.3), BlockDropout(0.3, 2)):
        y = layer(x)
        y.sum().backward()
        for p in layer.parameters():
            assert torch.equal(p.grad, torch.zeros_like(p))


# ----------------------------------------------------------------------------
# threads
# ----------------------------------------------------------------------------
THREADS_SCRIPT = r"""
import torch
torch.set_num_threads(1)
from pnd_theory.nn import PerNodeDropLinear
for kw in ({}, {"stir": "gaussian"}, {"stir": "gaussian", "gaussian_draw": "conditional"}):
    layer = PerNodeDropLinear(16, 8, 0.5, **kw)
    x = torch.randn(32, 16, requires_grad=True)
    layer(x).sum().backward()
    assert torch.get_num_threads() == 1, ("torch", kw, torch.get_num_threads())
import numba
assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS, numba.get_num_threads()
numba.set_num_threads(1)
torch.set_num_threads(2)
seen = []
from pnd_theory.kernels import cpu
launch = cpu.kernel_threads
def spy():
    ctx = launch()
    class Spy:
        def __enter__(self):
            ctx.__enter__()
            seen.append(numba.get_num_threads())
        def __exit__(self, *a):
            return ctx.__exit__(*a)
    return Spy()
cpu.kernel_threads = spy
layer(x).sum().backward()
assert seen and set(seen) == {min(2, numba.config.NUMBA_NUM_THREADS)}, seen
assert torch.get_num_threads() == 2 and numba.get_num_threads() == 1, (torch.get_num_threads(), numba.get_num_threads())
print("ok")
"""


def test_kernels_follow_torch_and_leave_the_callers_threads():
    """A fresh process (numba's pool starts on the first kernel launch): torch set to 1 reads 1
    after forward+backward of every draw; the kernels run on torch's count; numba's own count
    is the caller's again after."""
    pytest.importorskip("numba")
    out = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], capture_output=True, text=True,
                         env={"NUMBA_NUM_THREADS": "2", "PATH": ""}, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_import_loads_no_kernel_compiler():
    """Importing the package, the sampler and the laws loads neither numba nor Triton."""
    code = ("import sys, pnd_theory, pnd_theory.laws._sampling, pnd_theory.laws, pnd_theory.nn; "
            "print([m for m in ('numba', 'triton') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


# ----------------------------------------------------------------------------
# export, compile and torch.func
# ----------------------------------------------------------------------------
class _Seeded(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(4, 6, dtype=torch.float64))
        self.kwargs = kwargs

    def forward(self, x):
        return per_sample_masked_linear(x, self.weight, None, 0.4, seed=21, **self.kwargs)


@pytest.mark.parametrize("kwargs", LAYERS, ids=["drop", "gaussian", "conditional"])
def test_backward_through_torch_export(kwargs):
    """The exported program's backward (the formulas registered on the operators) equals eager's."""
    model = _Seeded(**kwargs)
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    model(x).pow(2).sum().backward()
    eager = (x.grad.clone(), model.weight.grad.clone())
    x.grad = None
    model.weight.grad = None
    exported = torch.export.export(model, (x,)).module()
    exported(x).pow(2).sum().backward()
    grads = (x.grad, dict(exported.named_parameters())["weight"].grad)
    for a, b in zip(grads, eager):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_export_of_a_training_layer_backpropagates():
    layer = PerNodeDropLinear(6, 4, 0.5).train()
    x = torch.randn(5, 6, requires_grad=True)
    torch.export.export(layer, (x,)).module()(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_double_backward_through_the_registered_formulas():
    """Second derivatives through the operators' own registered autograd (as torch.compile and
    torch.export see them), against plain autograd through the materialized masks."""
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    m = counter_masks(3, torch.arange(4), 3, 5, 0.3, False)

    def second(f):
        gx, gw = torch.autograd.grad(f(x, w).pow(2).sum(), (x, w), create_graph=True)
        return torch.autograd.grad(gx.sin().sum() + gw.cos().sum(), (x, w))

    got = second(lambda x, w: ops._forward_op(x, w, torch.tensor(3), 0.3, False, 1))
    ref = second(lambda x, w: torch.einsum("roi,oi,ri->ro", m, w, x))
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_vmap_randomness_same_is_refused_and_different_draws_per_entry():
    layer = PerNodeDropLinear(6, 4, 0.5, dtype=torch.float64)
    params = dict(layer.named_parameters())
    X = torch.randn(5, 6, dtype=torch.float64)

    def loss(p, xi):
        return torch.func.functional_call(layer, p, (xi.unsqueeze(0),)).pow(2).sum()

    with pytest.raises(RuntimeError, match="randomness='different'"):
        torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0), randomness="same")(params, X)
    torch.manual_seed(0)
    g = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0), randomness="different")(params, X)
    assert g["weight"].shape == (5, 4, 6)
    # each entry's gradient is that of its own masks: zero exactly where its mask drops
    for k in range(5):
        dropped = g["weight"][k] == 0
        assert 0 < dropped.sum() < dropped.numel()
    assert not torch.equal(g["weight"][0] == 0, g["weight"][1] == 0)


def test_jacrev_equals_the_materialized_masks():
    x = torch.randn(3, 5, dtype=torch.float64)
    w = torch.randn(2, 5, dtype=torch.float64)
    m = counter_masks(8, torch.arange(3), 2, 5, 0.3, True)
    jac = torch.func.jacrev(lambda w: per_sample_masked_linear(x, w, None, 0.3, "gaussian", seed=8))(w)
    ref = torch.func.jacrev(lambda w: torch.einsum("roi,oi,ri->ro", m, w, x))(w)
    torch.testing.assert_close(jac, ref, rtol=1e-12, atol=1e-12)


def test_jacfwd_and_jit_script_name_what_works():
    layer = PerNodeDropLinear(6, 4, 0.5)
    x = torch.randn(3, 6)
    with pytest.raises(RuntimeError, match="jacrev"):
        torch.func.jacfwd(layer)(x)
    with pytest.raises(RuntimeError, match="jacrev"):
        torch.func.jacfwd(layer, randomness="different")(x)
    with pytest.raises(RuntimeError, match="jit.trace"):
        torch.jit.script(layer)
    with pytest.raises(RuntimeError, match="torch.compile"):
        torch.jit.script(GaussianDropout(0.3))
