"""Random op graphs (shapes, broadcasts, views, reductions): CL must match REF, and REF must match numpy."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import Device, Tensor
from compiler.interpreter import evaluate

HAS_CL = "CL" in Device.available()

UNARY = [
    ("neg", lambda t: -t, np.negative),
    ("relu", lambda t: t.relu(), lambda a: np.maximum(a, 0)),
    ("sin", lambda t: t.sin(), np.sin),
    ("sqrtabs", lambda t: (t.abs() + 1).sqrt(), lambda a: np.sqrt(np.abs(a) + 1)),
    ("exp2tanh", lambda t: t.tanh().exp2(), lambda a: np.exp2(np.tanh(a))),
    ("recip", lambda t: 1 / (t * t + 1), lambda a: 1 / (a * a + 1)),
    ("cmpwhere", lambda t: (t < 0.3).where(t, 0.5), lambda a: np.where(a < 0.3, a, 0.5)),
    (
        "castint",
        lambda t: (t * 3).cast("int32").float(),
        lambda a: (a * 3).astype(np.int32).astype(np.float32),
    ),
]
BINARY = [
    ("add", lambda x, y: x + y, np.add),
    ("mul", lambda x, y: x * y, np.multiply),
    ("max", lambda x, y: x.maximum(y), np.maximum),
    ("sub", lambda x, y: x - y, np.subtract),
]


@st.composite
def graphs(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
    seed = draw(st.integers(0, 2**16))
    steps = draw(st.lists(st.integers(0, 9), min_size=1, max_size=6))
    return shape, seed, steps, draw(st.data())


def build(shape, seed, steps, data, dev):
    """Apply the same random steps to a Tensor and a numpy array."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(-2, 2, shape).astype(np.float32)
    t = Tensor(a, device=dev)
    for kind in steps:
        if kind <= 1:
            name, f, g = UNARY[data.draw(st.integers(0, len(UNARY) - 1), label="unary")]
            t, a = f(t), g(a).astype(np.float32)
        elif kind <= 3:
            _, f, g = BINARY[data.draw(st.integers(0, len(BINARY) - 1), label="binary")]
            # the other operand broadcasts: some axes of size 1, maybe fewer dims
            oshape = tuple(s if data.draw(st.booleans(), label="keep") else 1 for s in a.shape)
            oshape = oshape[data.draw(st.integers(0, len(oshape)), label="drop") :]
            b = rng.uniform(-2, 2, oshape).astype(np.float32)
            t, a = f(t, Tensor(b, device=dev)), g(a, b).astype(np.float32)
        elif kind == 4 and a.ndim > 1:
            perm = data.draw(st.permutations(range(a.ndim)), label="perm")
            t, a = t.permute(perm), a.transpose(perm)
        elif kind == 5:
            pads = [
                tuple(data.draw(st.lists(st.integers(0, 2), min_size=2, max_size=2), label="pad"))
                for _ in a.shape
            ]
            t, a = t.pad(pads), np.pad(a, pads)
        elif kind == 6:
            sl = tuple(
                slice(
                    data.draw(st.integers(0, s - 1), label="lo"),
                    None,
                    data.draw(st.sampled_from([1, 2, -1]), label="step"),
                )
                for s in a.shape
            )
            t, a = t[sl], a[sl]
        elif kind == 7 and a.size > 0:
            new = [a.size] if data.draw(st.booleans(), label="flat") or a.size % 2 else [2, a.size // 2]
            t, a = t.reshape(*new), a.reshape(new)
        elif kind == 8:
            ax = data.draw(st.integers(0, a.ndim - 1), label="axis")
            keep = data.draw(st.booleans(), label="keepdim")
            if data.draw(st.booleans(), label="sum"):
                t, a = t.sum(ax, keepdim=keep), a.sum(ax, keepdims=keep)
            elif a.shape[ax] > 0:
                t, a = t.max(ax, keepdim=keep), a.max(ax, keepdims=keep)
            if a.ndim == 0:
                t, a = t.reshape(1), a.reshape(1)
        elif kind == 9:
            ax = data.draw(st.integers(0, a.ndim), label="newaxis")
            t, a = t.unsqueeze(ax), np.expand_dims(a, ax)
            n = data.draw(st.integers(1, 3), label="expand")
            shp = list(a.shape)
            shp[ax] = n
            t, a = t.expand(*shp), np.broadcast_to(a, shp)
    return t, a


COMMON = dict(
    deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@settings(max_examples=60, **COMMON)
@given(graphs())
def test_ref_matches_numpy(g):
    shape, seed, steps, data = g
    t, a = build(shape, seed, steps, data, "REF")
    out = t.numpy()
    assert out.shape == a.shape
    np.testing.assert_allclose(out, a, rtol=1e-4, atol=1e-4)


@settings(max_examples=40 if HAS_CL else 1, **COMMON)
@given(graphs())
def test_cl_matches_ref(g):
    if not HAS_CL:
        return
    shape, seed, steps, data = g
    t, a = build(shape, seed, steps, data, "CL")
    ref = evaluate(t.node)  # the REF interpreter on the very graph CL is about to run
    out = t.numpy()
    assert out.shape == ref.shape == a.shape
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


INT_BINARY = [
    ("add", lambda x, y: x + y, np.add),
    ("mul", lambda x, y: x * y, np.multiply),
    ("floordiv", lambda x, y: x // y, np.floor_divide),
    ("mod", lambda x, y: x % y, np.mod),
    ("max", lambda x, y: x.maximum(y), np.maximum),
    ("where", lambda x, y: (x < y).where(x, y * 2), lambda a, b: np.where(a < b, a, b * 2)),
    ("xor", lambda x, y: x ^ y, np.bitwise_xor),
    ("shl", lambda x, y: x << (y & 7), lambda a, b: a << (b & 7)),
]


@settings(max_examples=25, **COMMON)
@given(
    st.integers(0, 2**16),
    st.lists(st.integers(0, len(INT_BINARY) - 1), min_size=1, max_size=4),
    st.sampled_from(["int32", "int8", "uint8"]),
)
def test_integer_graphs_cl_ref_numpy(seed, ops, dtype):
    rng = np.random.default_rng(seed)
    a = rng.integers(0 if dtype == "uint8" else -20, 20, (3, 4)).astype(dtype)
    operands = [rng.integers(1, 9, (4,)).astype(dtype) for _ in ops]
    expect = a
    with np.errstate(all="ignore"):
        for i, b in zip(ops, operands, strict=True):
            expect = INT_BINARY[i][2](expect, b).astype(dtype)
    results = {}
    for dev in ["REF"] + (["CL"] if HAS_CL else []):
        t = Tensor(a, device=dev)
        for i, b in zip(ops, operands, strict=True):
            t = INT_BINARY[i][1](t, Tensor(b, device=dev))
        results[dev] = t.numpy()
    assert results["REF"].dtype == expect.dtype
    np.testing.assert_array_equal(results["REF"], expect)
    if HAS_CL:
        np.testing.assert_array_equal(results["CL"], results["REF"])
