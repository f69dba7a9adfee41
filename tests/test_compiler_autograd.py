"""Autograd: every primitive op's backward rule against float64 finite differences on REF, random graphs
(CL gradients must match REF), and the Tensor-level API (requires_grad, backward, no_grad, detach)."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import Device, Tensor, dtypes, lazy
from compiler.autograd import LEAVES, NO_GRADIENT, RULES, no_grad
from compiler.errors import CompilerError
from compiler.interpreter import evaluate
from compiler.ops import Ops

HAS_CL = "CL" in Device.available()


class _F64:
    """A stand-in buffer that hands the interpreter float64 values (finite differences need them)."""

    def __init__(self, arr):
        self.arr = arr

    def numpy(self):
        return self.arr


def _gradcheck(build, *arrays, eps=1e-6, rtol=2e-3, atol=2e-4):
    """Check autograd of sum(build(*leaves) * w) against central differences computed in float64."""
    leaves = [Tensor(a.astype(np.float32), device="REF", requires_grad=True) for a in arrays]
    out = build(*[t.node for t in leaves])
    w = np.random.default_rng(1).uniform(0.5, 1.5, out.shape)
    loss = Tensor(out) * Tensor(w.astype(np.float32), device="REF")
    loss = loss.sum()
    x64 = [a.astype(np.float32).astype(np.float64) for a in arrays]
    saved = [t.node.buffer for t in leaves]

    def f(vals):
        for t, v in zip(leaves, vals, strict=True):
            t.node.buffer = _F64(v)
        return float(evaluate(loss.node, np.float64).reshape(()))

    numeric = []
    for i, x in enumerate(x64):
        g = np.zeros_like(x)
        for j in range(x.size):
            hi, lo = [v.copy() for v in x64], [v.copy() for v in x64]
            hi[i].flat[j] += eps
            lo[i].flat[j] -= eps
            g.flat[j] = (f(hi) - f(lo)) / (2 * eps)
        numeric.append(g)
    for t, b in zip(leaves, saved, strict=True):
        t.node.buffer = b
    loss.backward()
    for t, g in zip(leaves, numeric, strict=True):
        np.testing.assert_allclose(t.grad.numpy(), g, rtol=rtol, atol=atol)


rng = np.random.default_rng(0)
A = rng.uniform(-1.5, 1.5, (3, 4))
B = rng.uniform(-1.5, 1.5, (3, 4))
POS = rng.uniform(0.5, 2.0, (3, 4))
COND = rng.random((3, 4)) < 0.5
IDX = rng.integers(0, 4, (3, 6))

PRIMITIVES = {
    Ops.EXP2: (lambda a: lazy.alu(Ops.EXP2, a), A),
    Ops.LOG2: (lambda a: lazy.alu(Ops.LOG2, a), POS),
    Ops.SIN: (lambda a: lazy.alu(Ops.SIN, a), A),
    Ops.SQRT: (lambda a: lazy.alu(Ops.SQRT, a), POS),
    Ops.RECIP: (lambda a: lazy.alu(Ops.RECIP, a), POS),
    Ops.NEG: (lambda a: lazy.alu(Ops.NEG, a), A),
    Ops.ADD: (lambda a, b: lazy.alu(Ops.ADD, a, b), A, B),
    Ops.MUL: (lambda a, b: lazy.alu(Ops.MUL, a, b), A, B),
    Ops.MAX: (lambda a, b: lazy.alu(Ops.MAX, a, b), A, B),
    Ops.WHERE: (
        lambda a, b: lazy.alu(Ops.WHERE, Tensor(COND, device="REF").node, a, b),
        A,
        B,
    ),
    Ops.CAST: (lambda a: lazy.cast(lazy.cast(a, dtypes.float16), dtypes.float32), A),
    Ops.SUM: (lambda a: lazy.reduce(Ops.SUM, a, (1,)), A),
    Ops.REDUCE_MAX: (lambda a: lazy.reduce(Ops.REDUCE_MAX, a, (0,)), A),
    Ops.RESHAPE: (lambda a: lazy.movement(Ops.RESHAPE, a, (2, 6)), A),
    Ops.PERMUTE: (lambda a: lazy.movement(Ops.PERMUTE, a, (1, 0)), A),
    Ops.EXPAND: (lambda a: lazy.movement(Ops.EXPAND, lazy.movement(Ops.RESHAPE, a, (3, 1, 4)), (3, 5, 4)), A),
    Ops.PAD: (lambda a: lazy.movement(Ops.PAD, a, ((1, 2), (0, 1))), A),
    Ops.SHRINK: (lambda a: lazy.movement(Ops.SHRINK, a, ((1, 3), (0, 2))), A),
    Ops.FLIP: (lambda a: lazy.movement(Ops.FLIP, a, (0, 1)), A),
    Ops.GATHER: (lambda a: lazy.gather(a, Tensor(IDX, device="REF").node, 1), A),
}


def test_every_primitive_has_a_rule_or_is_declared_without_gradient():
    covered = set(RULES) | NO_GRADIENT | LEAVES | {Ops.STORE}
    assert covered == set(Ops), f"ops without a backward rule: {set(Ops) - covered}"
    assert set(RULES) == set(PRIMITIVES), "every rule has a finite-difference check below"


@pytest.mark.parametrize("op", list(PRIMITIVES), ids=lambda o: o.name)
def test_primitive_backward_matches_float64_finite_differences(op):
    build, *arrays = PRIMITIVES[op]
    # the float16 round trip of CAST is only accurate to float16's precision
    tol = {"rtol": 2e-2, "atol": 1e-2} if op == Ops.CAST else {}
    _gradcheck(build, *arrays, **tol)


@pytest.mark.parametrize("op", sorted(NO_GRADIENT, key=lambda o: o.name), ids=lambda o: o.name)
def test_ops_without_gradient_do_not_track(op):
    x = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3), device="REF", requires_grad=True)
    i = (x * 2).cast(dtypes.int32)
    out = lazy.alu(op, i.node, i.node) if op not in (Ops.CMPLT, Ops.CMPNE) else lazy.alu(op, x.node, x.node)
    assert not out.requires_grad


COMPOSITES = [
    ("softmax", lambda t: t.softmax(-1)),
    ("log_softmax", lambda t: t.log_softmax(0)),
    ("layernorm", lambda t: t.layernorm(-1)),
    ("tanh_gelu", lambda t: t.gelu()),
    ("sigmoid_silu", lambda t: t.silu()),
    ("pow_div", lambda t: (t * t + 1.0) ** 1.5 / (t.abs() + 1.0)),
    ("max_pool", lambda t: t.reshape(1, 1, 3, 4).max_pool2d(2, 1)),
    ("getitem_flip", lambda t: t[::-1, 1::2]),
    ("cat_stack", lambda t: t.cat(t * 2, axis=1)),
    ("var_std", lambda t: t.std(0) + t.var(1).sum()),
]


@pytest.mark.parametrize("name,f", COMPOSITES, ids=[c[0] for c in COMPOSITES])
def test_composite_methods_differentiate_through_primitives(name, f):
    _gradcheck(lambda a: f(Tensor(a)).node, A, rtol=5e-3, atol=5e-4)


def test_conv2d_and_matmul_gradients():
    x = rng.uniform(-1, 1, (2, 2, 5, 5))
    w = rng.uniform(-1, 1, (3, 2, 3, 3))
    _gradcheck(lambda a, b: Tensor(a).conv2d(Tensor(b), padding=1, stride=2).node, x, w, rtol=5e-3, atol=5e-4)
    _gradcheck(lambda a, b: (Tensor(a) @ Tensor(b).T).node, A, B)


# conv2d's backward is its own rule (transposed convolution for the input, a convolution for the weight):
# (input shape, weight shape, stride, padding, dilation, groups) with odd sizes, strides that do not divide
# the padded input, kernels wider than the padding reaches and narrower, and grouped channels
CONV_CASES = [
    ((1, 2, 5, 4), (3, 2, 3, 3), 1, 1, 1, 1),
    ((2, 3, 5, 5), (2, 3, 3, 2), 2, 0, 1, 1),
    ((1, 4, 6, 5), (4, 2, 3, 3), (2, 1), 2, 1, 2),
    ((1, 2, 7, 6), (2, 1, 3, 3), 1, (2, 1), 2, 2),
    ((2, 2, 4, 5), (3, 2, 1, 1), 2, 0, 1, 1),
    ((1, 1, 3, 4), (2, 1, 4, 4), 3, 2, 1, 1),
]


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV_CASES)
def test_conv2d_backward_rule_matches_float64_finite_differences(xs, ws, stride, padding, dilation, groups):
    r = np.random.default_rng(sum(xs) + sum(ws))
    x, w = r.uniform(-1, 1, xs), r.uniform(-1, 1, ws)

    def conv(a, b):
        return Tensor(a).conv2d(Tensor(b), stride=stride, padding=padding, dilation=dilation, groups=groups).node

    _gradcheck(conv, x, w, rtol=5e-3, atol=5e-4)


def test_conv2d_records_one_composite_op():
    x = Tensor(np.ones((1, 2, 4, 4), np.float32), device="REF", requires_grad=True)
    w = Tensor(np.ones((3, 2, 3, 3), np.float32), device="REF", requires_grad=True)
    out = x.conv2d(w, padding=1)
    op, _, srcs = out.node.ad
    assert op.name == "conv2d" and srcs == (x.node, w.node)
    with no_grad():
        assert x.conv2d(w).node.ad is None


@pytest.mark.skipif(not HAS_CL, reason="no OpenCL device")
@pytest.mark.parametrize("case", [2, 5])
def test_conv2d_gradients_cl_match_ref(case):
    xs, ws, stride, padding, dilation, groups = CONV_CASES[case]
    r = np.random.default_rng(case)
    x, w, b = r.standard_normal(xs), r.standard_normal(ws), r.standard_normal(ws[0])
    gout = None
    grads = {}
    for dev in ("REF", "CL"):
        X, W, B = (Tensor(a.astype(np.float32), device=dev, requires_grad=True) for a in (x, w, b))
        out = X.conv2d(W, B, stride=stride, padding=padding, dilation=dilation, groups=groups)
        gout = r.standard_normal(out.shape).astype(np.float32) if gout is None else gout
        (out * Tensor(gout, device=dev)).sum().backward()
        grads[dev] = [t.grad.numpy() for t in (X, W, B)]
    for ref, cl in zip(grads["REF"], grads["CL"], strict=True):
        np.testing.assert_allclose(cl, ref, rtol=1e-4, atol=1e-4)


# --- the Tensor API ---------------------------------------------------------------------------------
def test_backward_accumulates_and_no_grad_stops_tracking():
    w = Tensor(np.array([1.0, 2.0, 3.0], np.float32), device="REF", requires_grad=True)
    (w * w).sum().backward()
    (w * 3).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [5.0, 7.0, 9.0])
    with no_grad():
        y = w * 2
    assert not y.requires_grad and w.requires_grad
    assert not w.detach().requires_grad
    np.testing.assert_allclose(w.detach().numpy(), w.numpy())


def test_backward_errors_are_clear():
    w = Tensor(np.ones(3, np.float32), device="REF", requires_grad=True)
    with pytest.raises(CompilerError, match="needs a gradient argument"):
        (w * 2).backward()
    loss = (w * 2).sum()
    loss.backward()
    with pytest.raises(CompilerError, match="does not require grad"):
        loss.backward()
    with pytest.raises(CompilerError, match="does not require grad"):
        Tensor(np.ones(3, np.float32), device="REF").sum().backward()
    with pytest.raises(Exception, match="only float tensors"):
        Tensor(np.ones(3, np.int32), device="REF").requires_grad_()


def test_backward_with_gradient_argument_and_retain_graph():
    w = Tensor(np.array([1.0, -2.0], np.float32), device="REF", requires_grad=True)
    y = w * w
    y.backward(Tensor(np.array([1.0, 10.0], np.float32), device="REF"), retain_graph=True)
    np.testing.assert_allclose(w.grad.numpy(), [2.0, -40.0])
    y.backward(Tensor(np.array([1.0, 0.0], np.float32), device="REF"))
    np.testing.assert_allclose(w.grad.numpy(), [4.0, -40.0])


def test_assign_keeps_the_parameter_a_leaf():
    w = Tensor(np.ones(2, np.float32), device="REF", requires_grad=True)
    with no_grad():
        w.assign(w * 3)
    assert w.requires_grad and w.is_leaf
    (w * w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [6.0, 6.0])


# --- random graphs: CL gradients equal REF gradients -------------------------------------------------
UNARY = [
    lambda t: t.tanh(),
    lambda t: t.relu() + 0.1 * t,
    lambda t: (t * t + 1.0).sqrt(),
    lambda t: t.exp() * 0.1,
    lambda t: t.sin(),
    lambda t: 1.0 / (t.abs() + 1.0),
]


@st.composite
def grad_graphs(draw):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=2, max_size=3)))
    steps = draw(st.lists(st.integers(0, 7), min_size=1, max_size=6))
    choices = draw(st.lists(st.integers(0, 100), min_size=len(steps), max_size=len(steps)))
    return shape, steps, choices, draw(st.integers(0, 2**16))


def _grad_graph(shape, steps, choices, seed, dev):
    r = np.random.default_rng(seed)
    a = Tensor(r.uniform(-1, 1, shape).astype(np.float32), device=dev, requires_grad=True)
    b = Tensor(r.uniform(-1, 1, shape[-1:]).astype(np.float32), device=dev, requires_grad=True)
    x = a
    for kind, c in zip(steps, choices, strict=True):
        if kind <= 2:
            x = UNARY[c % len(UNARY)](x)
        elif kind == 3:
            x = x * b if c % 2 else x + b
        elif kind == 4:
            x = x - x.sum(c % x.ndim, keepdim=True) * 0.3
        elif kind == 5:
            x = x - x.max(c % x.ndim, keepdim=True)
        elif kind == 6:
            x = x.flip(c % x.ndim).pad([(1, 0)] + [(0, 0)] * (x.ndim - 1))[1:]
        else:
            x = x.softmax(-1) * x
    (x * x).sum().backward()
    return a.grad.numpy(), b.grad.numpy() if b.grad is not None else np.zeros(shape[-1:], np.float32)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_CL, reason="no OpenCL device")
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grad_graphs())
def test_random_graph_gradients_cl_match_ref(g):
    ref = _grad_graph(*g, "REF")
    cl = _grad_graph(*g, "CL")
    for r, c in zip(ref, cl, strict=True):
        np.testing.assert_allclose(c, r, rtol=1e-4, atol=1e-5)
        assert np.all(np.isfinite(r))


def test_gradient_of_unused_parameter_stays_none():
    w = Tensor(np.ones(2, np.float32), device="REF", requires_grad=True)
    v = Tensor(np.ones(2, np.float32), device="REF", requires_grad=True)
    (w * 2).sum().backward()
    assert v.grad is None and math.isclose(float(w.grad.numpy()[0]), 2.0)


def test_gradients_on_sim_match_ref():
    from compiler import nn
    from compiler.losses import cross_entropy

    grads = {}
    for dev in ("SIM", "REF"):
        lin = nn.Linear(16, 4, device=dev, seed=1)
        emb = nn.Embedding(10, 16, device=dev, seed=2)
        idx = Tensor(np.array([1, 5, 9, 2], np.int32), device=dev)
        loss = cross_entropy(lin(emb(idx)), Tensor(np.array([0, 1, 2, 3], np.int32), device=dev))
        loss.backward()
        grads[dev] = (loss.item(), lin.weight.grad.numpy(), emb.weight.grad.numpy())
    for s, r in zip(grads["SIM"], grads["REF"], strict=True):
        np.testing.assert_allclose(s, r, rtol=1e-5, atol=1e-7)
