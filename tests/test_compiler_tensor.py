"""Direct tests of every Tensor API method on REF and CL against numpy."""

import math

import numpy as np
import pytest

from compiler import Tensor, dtypes
from compiler.backend import program_for
from tests.devices import DEVICES, gemm_opts_field, on_cpu_cl

rng = np.random.default_rng(0)


def rnd(*shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, shape).astype(np.float32)


def close(t, ref, atol=1e-4, rtol=1e-4):
    out = t.numpy() if isinstance(t, Tensor) else t
    ref = np.asarray(ref)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    np.testing.assert_allclose(out.astype(np.float64), ref.astype(np.float64), atol=atol, rtol=rtol)


@pytest.fixture(params=DEVICES)
def dev(request):
    return request.param


def test_construction(dev):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = Tensor(a, device=dev)
    assert t.shape == (2, 3) and t.dtype == dtypes.float32 and t.device == dev
    assert t.tolist() == a.tolist()
    assert Tensor([[1, 2], [3, 4]], device=dev).dtype == dtypes.int32
    assert Tensor([True, False], device=dev).dtype == dtypes.bool
    assert Tensor(3.5, device=dev).item() == 3.5
    close(Tensor.zeros(2, 3, device=dev), np.zeros((2, 3)))
    close(Tensor.ones((2, 3), device=dev), np.ones((2, 3)))
    close(Tensor.full((2, 2), 7, device=dev), np.full((2, 2), 7))
    close(Tensor.arange(5, device=dev), np.arange(5))
    close(Tensor.arange(1, 10, 3, device=dev), np.arange(1, 10, 3))
    close(Tensor.eye(3, 4, device=dev), np.eye(3, 4))
    Tensor.manual_seed(1)
    r1 = Tensor.rand(3, 4, device=dev).numpy()
    Tensor.manual_seed(1)
    assert np.array_equal(r1, Tensor.rand(3, 4, device=dev).numpy()) and (r1 >= 0).all() and (r1 < 1).all()
    n = Tensor.randn(1000, device=dev, seed=3).numpy()
    assert abs(n.mean()) < 0.2 and 0.8 < n.std() < 1.2


def test_to_and_realize(dev):
    a = rnd(3, 4)
    t = (Tensor(a, device=dev) * 2).realize()
    assert t.node.realized
    other = "CL" if dev == "REF" and "CL" in DEVICES else "REF"
    close(t.to(other) + 1, a * 2 + 1)


@pytest.mark.parametrize(
    "name,fn,npfn,lo",
    [
        ("neg", lambda t: -t, np.negative, -2),
        ("exp", Tensor.exp, np.exp, -2),
        ("log", Tensor.log, np.log, 0.1),
        ("exp2", Tensor.exp2, np.exp2, -2),
        ("log2", Tensor.log2, np.log2, 0.1),
        ("sqrt", Tensor.sqrt, np.sqrt, 0.1),
        ("rsqrt", Tensor.rsqrt, lambda x: 1 / np.sqrt(x), 0.1),
        ("sin", Tensor.sin, np.sin, -3),
        ("cos", Tensor.cos, np.cos, -3),
        ("tanh", Tensor.tanh, np.tanh, -3),
        ("sigmoid", Tensor.sigmoid, lambda x: 1 / (1 + np.exp(-x)), -3),
        ("relu", Tensor.relu, lambda x: np.maximum(x, 0), -2),
        ("gelu", Tensor.gelu, lambda x: 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x**3))), -3),
        ("silu", Tensor.silu, lambda x: x / (1 + np.exp(-x)), -3),
        ("abs", Tensor.abs, np.abs, -2),
        ("floor", Tensor.floor, np.floor, -3),
        ("ceil", Tensor.ceil, np.ceil, -3),
        ("reciprocal", Tensor.reciprocal, lambda x: 1 / x, 0.5),
        ("square", Tensor.square, np.square, -2),
    ],
)
def test_unary(dev, name, fn, npfn, lo):
    a = rnd(4, 5, lo=lo, hi=3.0)
    close(fn(Tensor(a, device=dev)), npfn(a), atol=1e-4, rtol=1e-3)


def test_binary_broadcast_and_scalars(dev):
    a, b, c = rnd(3, 1, 4), rnd(5, 1), rnd(4)
    A, B, C = (Tensor(x, device=dev) for x in (a, b, c))
    close(A + B, a + b)
    close(A - C, a - c)
    close(A * B * 2, a * b * 2)
    close(A / (B.abs() + 1), a / (np.abs(b) + 1))
    close(1 - A, 1 - a)
    close(2 / (A.abs() + 1), 2 / (np.abs(a) + 1))
    close(A.maximum(B), np.maximum(a, b))
    close(A.minimum(C), np.minimum(a, c))
    close(A.clip(-0.5, 0.5), np.clip(a, -0.5, 0.5))
    close(A.abs() ** 1.7, np.abs(a) ** 1.7, rtol=1e-3)
    close(A**2, a**2)
    close(A**-1, 1 / a, rtol=1e-3)
    close(2**A, 2**a, rtol=1e-3)
    close(Tensor.where(A > B, A, B), np.where(a > b, a, b))
    close((A > 0).where(A, 0.0), np.where(a > 0, a, 0))


def test_comparisons_and_logic(dev):
    a, b = rnd(4, 4), rnd(4, 4)
    A, B = Tensor(a, device=dev), Tensor(b, device=dev)
    for op in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
        assert np.array_equal(getattr(A, op)(B).numpy(), getattr(a, op)(b)), op
    assert np.array_equal((A == A).numpy(), np.ones((4, 4), bool))
    x, y = np.array([[1, -6, 7, 0]], np.int32), np.array([[3, 4, -2, 5]], np.int32)
    X, Y = Tensor(x, device=dev), Tensor(y, device=dev)
    assert np.array_equal((X & Y).numpy(), x & y) and np.array_equal((X | Y).numpy(), x | y)
    assert np.array_equal((X ^ Y).numpy(), x ^ y) and np.array_equal((~X).numpy(), ~x)
    assert np.array_equal((X << 2).numpy(), x << 2) and np.array_equal((X >> 1).numpy(), x >> 1)
    m = X > 0
    assert np.array_equal((m & (Y > 0)).numpy(), (x > 0) & (y > 0)) and np.array_equal((~m).numpy(), ~(x > 0))


def test_integer_division_matches_numpy(dev):
    x = np.array([7, -7, 7, -7, 0, 5], np.int32)
    y = np.array([2, 2, -2, -2, 3, 7], np.int32)
    X, Y = Tensor(x, device=dev), Tensor(y, device=dev)
    assert np.array_equal((X // Y).numpy(), x // y)
    assert np.array_equal((X % Y).numpy(), x % y)
    assert np.array_equal((X // 3).numpy(), x // 3)
    f = rnd(6)
    close(Tensor(f, device=dev) // 0.5, np.floor_divide(f, 0.5))
    close(Tensor(f, device=dev) % 0.5, np.mod(f, 0.5), atol=1e-5)


def test_dtypes_and_casts(dev):
    a = np.array([-1.7, 0.0, 2.5, 3.9], np.float32)
    t = Tensor(a, device=dev)
    assert np.array_equal(t.cast(dtypes.int32).numpy(), a.astype(np.int32))
    assert np.array_equal(t.cast(dtypes.bool).numpy(), a.astype(bool))
    assert np.array_equal(t.cast("int8").numpy(), a.astype(np.int8))
    h = t.half()
    assert h.dtype == dtypes.float16 and np.allclose(h.numpy(), a.astype(np.float16))
    close((h * 2 + 1).float(), a.astype(np.float16) * 2 + 1, atol=1e-2)
    u = Tensor(np.array([250, 3, 7], np.uint8), device=dev)
    assert np.array_equal((u + 10).numpy(), np.array([250, 3, 7], np.uint8) + np.uint8(10))
    i8 = Tensor(np.array([120, -5], np.int8), device=dev)
    assert np.array_equal((i8 + i8).numpy(), np.array([120, -5], np.int8) * 2)
    assert (Tensor([1, 2], device=dev) + 0.5).dtype == dtypes.float32
    assert (u + i8[:1].expand(3)).dtype == dtypes.int32
    b = Tensor([True, False, True], device=dev)
    assert b.sum().item() == 2 and b.float().tolist() == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("axis,keepdim", [(None, False), (0, False), (1, True), ((0, 2), False), (-1, True)])
def test_reductions(dev, axis, keepdim):
    a = rnd(3, 4, 5)
    A = Tensor(a, device=dev)
    close(A.sum(axis, keepdim), a.sum(axis, keepdims=keepdim))
    close(A.max(axis, keepdim), a.max(axis, keepdims=keepdim))
    close(A.min(axis, keepdim), a.min(axis, keepdims=keepdim))
    close(A.mean(axis, keepdim), a.mean(axis, keepdims=keepdim))
    close(A.var(axis, keepdim), a.var(axis, keepdims=keepdim))
    close(A.std(axis, keepdim, correction=1), a.std(axis, keepdims=keepdim, ddof=1))


def test_arg_and_softmax(dev):
    a = rnd(4, 6)
    a[1, 2] = a[1, 4] = 9.0
    A = Tensor(a, device=dev)
    assert np.array_equal(A.argmax(1).numpy(), a.argmax(1))
    assert np.array_equal(A.argmax(0, keepdim=True).numpy(), a.argmax(0)[None])
    assert A.argmax().item() == a.argmax() and A.argmin().item() == a.argmin()
    e = np.exp(a - a.max(-1, keepdims=True))
    close(A.softmax(-1), e / e.sum(-1, keepdims=True))
    close(A.softmax(0).sum(0), np.ones(6))
    close(A.log_softmax(-1), np.log(e / e.sum(-1, keepdims=True)), atol=1e-4)
    ints = Tensor(np.array([[3, 1, 3], [0, 5, -2]], np.int32), device=dev)
    assert ints.max(1).tolist() == [3, 5] and ints.min().item() == -2 and ints.sum().item() == 10


def test_large_sum_two_stage(dev):
    a = rnd(70001)
    A = Tensor(a, device=dev)
    close(A.sum(), a.sum(dtype=np.float64), rtol=1e-4, atol=1e-2)
    close(A.max(), a.max())
    assert len(A.max().schedule()) == 2  # 256 partial maxima, then one
    # float sums add in a tree of blocks of <= 64: 70001 -> 1094 -> 18 -> 1
    assert len(A.sum().schedule()) == 3


def test_movement(dev):
    a = rnd(2, 3, 4)
    A = Tensor(a, device=dev)
    close(A.reshape(6, 4), a.reshape(6, 4))
    close(A.reshape(-1, 2), a.reshape(-1, 2))
    close(A.permute(2, 0, 1), a.transpose(2, 0, 1))
    close(A.transpose(0, 2), a.swapaxes(0, 2))
    close(A.T, a.T)
    close(A[:, :1, :].expand(2, 3, 4), np.broadcast_to(a[:, :1], (2, 3, 4)))
    close(A.pad(((0, 0), (1, 2), (0, 1))), np.pad(a, ((0, 0), (1, 2), (0, 1))))
    close(
        A.pad(((1, 0), (0, 0), (2, 0)), value=-3.0), np.pad(a, ((1, 0), (0, 0), (2, 0)), constant_values=-3)
    )
    close(A.flip(1), a[:, ::-1])
    close(A.flip((0, 2)), a[::-1, :, ::-1])
    close(A.reshape(2, 1, 3, 4).squeeze(1), a)
    close(A.reshape(1, 2, 1, 12).squeeze(), a.reshape(2, 12))
    close(A.unsqueeze(-1), a[..., None])
    close(A.flatten(), a.reshape(-1))
    close(A.flatten(1), a.reshape(2, 12))
    b = rnd(2, 2, 4)
    close(A.cat(Tensor(b, device=dev), axis=1), np.concatenate([a, b], 1))
    close(Tensor.stack([A, A * 2], axis=1), np.stack([a, a * 2], 1))
    close(Tensor.cat([A, A, Tensor(b, device=dev)], axis=1), np.concatenate([a, a, b], 1))
    close(A.shrink(((0, 1), None, (1, 3))), a[0:1, :, 1:3])


@pytest.mark.parametrize(
    "index",
    [
        1,
        -1,
        (slice(None), 2),
        (0, slice(1, 3), slice(None, None, 2)),
        (Ellipsis, 1),
        (None, 0, Ellipsis, None),
        (slice(None, None, -1),),
        (slice(None), slice(None, None, -2), slice(3, 0, -1)),
        (1, 2, 3),
        (slice(1, None, 3), None, slice(None), slice(0, 4, 3)),
    ],
)
def test_getitem(dev, index):
    a = rnd(3, 5, 4)
    close(Tensor(a, device=dev)[index], a[index])


@pytest.mark.parametrize(
    "sa,sb",
    [
        ((4, 6), (6, 5)),
        ((2, 3, 4, 6), (6, 5)),
        ((2, 1, 4, 6), (3, 6, 8)),
        ((6,), (6, 4)),
        ((4, 6), (6,)),
        ((8, 16), (16, 12)),
    ],
)
def test_matmul(dev, sa, sb):
    a, b = rnd(*sa), rnd(*sb)
    close(Tensor(a, device=dev) @ Tensor(b, device=dev), a @ b, atol=1e-4)
    close(Tensor(a, device=dev).matmul(b), a @ b, atol=1e-4)


def test_int8_matmul_and_conv_accumulate_in_int32(dev):
    # int8 x int8 products summed in int8 would wrap (-106); every device accumulates in int32 like the array does
    a = Tensor([[100, -100, 50]], dtype=dtypes.int8, device=dev)
    b = Tensor([[100], [100], [3]], dtype=dtypes.int8, device=dev)
    out = a @ b
    assert out.dtype == dtypes.int32 and out.tolist() == [[150]]
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (1, 3, 6, 6)).astype(np.int8)
    w = rng.integers(-128, 128, (4, 3, 3, 3)).astype(np.int8)
    got = Tensor(x, device=dev).conv2d(Tensor(w, device=dev), padding=1)
    assert got.dtype == dtypes.int32
    np.testing.assert_array_equal(got.numpy(), np_conv(x.astype(np.int64), w.astype(np.int64), pad=1))


def np_conv(x, w, stride=1, pad=0, dil=1, groups=1):
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (
        (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1,
        (wd + 2 * pad - dil * (kw - 1) - 1) // stride + 1,
    )
    out, og = np.zeros((n, o, oh, ow), np.float64), o // groups
    for c in range(o):
        g = c // og
        for i in range(oh):
            for j in range(ow):
                patch = xp[
                    :,
                    g * cg : (g + 1) * cg,
                    i * stride : i * stride + dil * (kh - 1) + 1 : dil,
                    j * stride : j * stride + dil * (kw - 1) + 1 : dil,
                ]
                out[:, c, i, j] = (patch * w[c]).sum((1, 2, 3))
    return out


@pytest.mark.parametrize(
    "stride,pad,dil,groups", [(1, 1, 1, 1), (2, 0, 1, 1), (1, 2, 2, 1), (2, 1, 1, 2), (3, 1, 1, 4)]
)
def test_conv2d(dev, stride, pad, dil, groups):
    x, w, b = rnd(2, 4, 7, 6), rnd(4, 4 // groups, 3, 3), rnd(4)
    out = Tensor(x, device=dev).conv2d(Tensor(w, device=dev), Tensor(b, device=dev), stride, pad, dil, groups)
    close(out, np_conv(x, w, stride, pad, dil, groups) + b[None, :, None, None], atol=1e-4)


def test_pools(dev):
    x = rnd(2, 3, 6, 7)
    X = Tensor(x, device=dev)
    ref = np.stack(
        [x[:, :, i : i + 2, j : j + 2].max((2, 3)) for i in range(0, 5, 2) for j in range(0, 6, 2)], -1
    )
    close(X.max_pool2d(2), ref.reshape(2, 3, 3, 3))
    ref = np.stack(
        [x[:, :, i : i + 3, j : j + 3].mean((2, 3)) for i in range(0, 4, 1) for j in range(0, 5, 1)], -1
    )
    close(X.avg_pool2d(3, 1), ref.reshape(2, 3, 4, 5))
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    ref = np.stack(
        [xp[:, :, i : i + 3, j : j + 3].max((2, 3)) for i in range(0, 6, 2) for j in range(0, 7, 2)], -1
    )
    close(X.max_pool2d(3, 2, padding=1), ref.reshape(2, 3, 3, 4))


def test_norms_embedding_attention(dev):
    x, w, b = rnd(2, 5, 8), rnd(8), rnd(8)
    X = Tensor(x, device=dev)
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    close(
        X.layernorm(weight=Tensor(w, device=dev), bias=Tensor(b, device=dev)),
        (x - mu) / np.sqrt(var + 1e-5) * w + b,
        atol=1e-4,
    )
    img, m, v = rnd(2, 3, 4, 4), rnd(3), rnd(3, lo=0.5)
    bn = Tensor(img, device=dev).batchnorm(
        Tensor(w[:3], device=dev), Tensor(b[:3], device=dev), Tensor(m, device=dev), Tensor(v, device=dev)
    )
    sh = (1, 3, 1, 1)
    close(
        bn,
        (img - m.reshape(sh)) / np.sqrt(v.reshape(sh) + 1e-5) * w[:3].reshape(sh) + b[:3].reshape(sh),
        atol=1e-4,
    )
    table, idx = rnd(10, 4), np.array([[1, 9, 1], [0, 3, 7]], np.int32)
    close(Tensor(idx, device=dev).embedding(Tensor(table, device=dev)), table[idx])
    q, k, vv = rnd(2, 3, 5, 4), rnd(2, 3, 5, 4), rnd(2, 3, 5, 4)
    for causal in (False, True):
        s = q @ k.swapaxes(-1, -2) / 2.0
        if causal:
            s = np.where(np.tril(np.ones((5, 5), bool)), s, -np.inf)
        p = np.exp(s - s.max(-1, keepdims=True))
        ref = (p / p.sum(-1, keepdims=True)) @ vv
        out = Tensor(q, device=dev).scaled_dot_product_attention(
            Tensor(k, device=dev), Tensor(vv, device=dev), is_causal=causal
        )
        close(out, ref, atol=1e-4)


def test_misc_properties(dev):
    t = Tensor(rnd(2, 3), device=dev)
    assert t.ndim == 2 and t.numel() == 6 and len(t) == 2 and "Tensor" in repr(t)
    assert math.isclose(Tensor([2.0], device=dev).item(), 2.0)


@pytest.mark.parametrize(
    "sa,sb",
    [
        ((70, 96), (96, 90)),
        ((3, 40, 33), (33, 72)),
        ((1, 129, 257), (257, 17)),
        ((3, 40, 48), (3, 48, 72)),
        ((128, 64), (64, 40)),
        ((2, 64, 64), (2, 64, 32)),
    ],
)
def test_matmul_large_tiles(dev, sa, sb):
    """Shapes big enough for the GEMM path: sizes that do not divide the tiles (A packed) or do (A read
    directly), with and without batch dims."""
    a, b = rnd(*sa), rnd(*sb)
    out = (Tensor(a, device=dev) @ Tensor(b, device=dev)).relu() * 2
    if dev != "REF":
        assert getattr(program_for(out.schedule()[0]).opts, gemm_opts_field(dev)) is not None
    close(out, np.maximum(a @ b, 0) * 2, atol=2e-4)


def test_conv2d_large_tiles_with_fused_bias(dev):
    x, w, b = rnd(2, 8, 12, 12), rnd(16, 8, 3, 3), rnd(16)
    out = Tensor(x, device=dev).conv2d(Tensor(w, device=dev), Tensor(b, device=dev), padding=1).relu()
    ks = out.schedule()
    assert len(ks) == 1
    if dev == "CL":
        assert getattr(program_for(ks[0]).opts, gemm_opts_field(dev)) is not None
        assert "__local" in program_for(ks[0]).src
    close(out, np.maximum(np_conv(x, w, 1, 1) + b[None, :, None, None], 0), atol=2e-4)


def test_scalars_empty_and_half_matmul(dev):
    s = Tensor(3.5, device=dev)
    assert (s * 2 + 1).item() == 8.0 and (s * 2).shape == ()
    e = Tensor.zeros(0, 3, device=dev) + 1
    assert e.numpy().shape == (0, 3) and Tensor.zeros(0, device=dev).sum().item() == 0
    a, b = rnd(8, 16), rnd(16, 4)
    h = Tensor(a, device=dev).half() @ Tensor(b, device=dev).half()
    assert h.dtype == dtypes.float16
    close(
        h.float(),
        a.astype(np.float16).astype(np.float32) @ b.astype(np.float16).astype(np.float32),
        atol=3e-2,
        rtol=1e-2,
    )


def test_reshape_then_pad_reads_right_elements(dev):
    a = rnd(4, 2)
    close(
        Tensor(a, device=dev).reshape(2, 4).pad(((1, 0), (0, 0))), np.pad(a.reshape(2, 4), ((1, 0), (0, 0)))
    )
    close(
        Tensor(a, device=dev).T.reshape(8).flip(0).reshape(2, 2, 2)[:, ::-1],
        a.T.reshape(8)[::-1].reshape(2, 2, 2)[:, ::-1],
    )


@pytest.mark.parametrize("stride,pad,dil", [(2, 1, 1), (1, 2, 2), (3, 0, 1)])
def test_conv2d_large_tiles_strided_dilated(dev, stride, pad, dil):
    x, w = rnd(2, 8, 17, 15), rnd(24, 8, 3, 3)
    out = Tensor(x, device=dev).conv2d(Tensor(w, device=dev), stride=stride, padding=pad, dilation=dil)
    close(out, np_conv(x, w, stride, pad, dil), atol=2e-4)


def test_nan_and_inf_follow_numpy(dev):
    a = np.array([1.0, np.nan, -np.inf, np.inf, -2.0], np.float32)
    A = Tensor(a, device=dev)
    np.testing.assert_array_equal(A.relu().numpy(), np.maximum(a, 0))
    assert np.isnan(A.max().item()) and np.isnan(A.sum().item())
    np.testing.assert_array_equal(A.exp2().numpy()[2:4], np.array([0.0, np.inf], np.float32))
    np.testing.assert_array_equal(
        Tensor([0.0, -1.0], device=dev).log2().numpy(), np.array([-np.inf, np.nan], np.float32)
    )


def test_conv2d_many_channel_slabs(dev):
    """Cin=32 makes the GEMM pack the reduce in several channel-block slabs."""
    x, w = rnd(1, 32, 10, 10), rnd(16, 32, 3, 3)
    out = Tensor(x, device=dev).conv2d(Tensor(w, device=dev), padding=1)
    if on_cpu_cl(dev):
        opts = program_for(out.schedule()[0]).opts
        assert opts.gemm is not None and opts.gemm[2] < 32 * 9
    close(out, np_conv(x, w, 1, 1), atol=3e-4)


def test_float8_reduces_and_their_fallback(dev):
    """Rows of 128 take the float8 reduce path on CPUs; strided or padded reads fall back to scalars."""
    a = rnd(6, 128)
    a[2, 77] = np.nan
    A = Tensor(a, device=dev)
    close(A.sum(-1), a.sum(-1))
    assert np.isnan(A.max(-1).numpy()[2]) and np.isnan(A.sum(-1).numpy()[2])
    b = np.nan_to_num(a)
    B = Tensor(b, device=dev)
    e = np.exp(b - b.max(-1, keepdims=True))
    close(B.softmax(-1), e / e.sum(-1, keepdims=True))
    close(B.var(-1), b.var(-1))
    close(B.T.sum(0), b.sum(-1))  # same values through a transposed view
    close(B.sum(0), b.sum(0))  # strided reduce: scalar fallback
    close(B.pad(((0, 0), (3, 5))).sum(-1), b.sum(-1))  # padded: guarded loads, scalar fallback
    close((B * 2).reshape(6, 16, 8).max((1, 2)), (b * 2).max(-1))


def test_remaining_api(dev):
    a = rnd(3, 4)
    A = Tensor(a, device=dev)
    m = a.max(1, keepdims=True)
    close(A.logsumexp(1), (np.log(np.exp(a - m).sum(1, keepdims=True)) + m)[:, 0])
    close(A.sign(), np.sign(a))
    close(A.trunc(), np.trunc(a))
    close(A.tan(), np.tan(a), rtol=1e-3, atol=1e-3)
    close(A.zeros_like() + A.ones_like(), np.ones((3, 4)))
    close(A.view(4, 3), a.reshape(4, 3))
    close(A[:1].broadcast_to((2, 3, 4)), np.broadcast_to(a[:1], (2, 3, 4)))
    close(A.dot(A.T), a @ a.T)
    close(A.clamp(-1, 1), np.clip(a, -1, 1))
    close(A.reshape(3, 2, 2).flatten(1, 2), a)
    assert A.contiguous() is A
    close(A.linear(Tensor(a[:2], device=dev), Tensor(a[0, :2], device=dev)), a @ a[:2].T + a[0, :2])
