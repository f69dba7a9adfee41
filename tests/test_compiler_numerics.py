"""Regression tests for issue 17: results numpy (or PyTorch, where named) promises, on REF and CL alike."""

import math
import warnings

import numpy as np
import pytest

from compiler import Device, DeviceError, DTypeError, Tensor
from compiler.errors import IndexOutOfRangeError
from tests.devices import DEVICES

NAN, INF = float("nan"), float("inf")


@pytest.fixture(params=DEVICES)
def dev(request):
    return request.param


def f32(*v):
    return np.array(v, np.float32)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in float32 units in the last place (NaN == NaN, 0 == -0)."""
    ia, ib = (np.asarray(x, np.float32).view(np.int32).astype(np.int64) for x in (a, b))
    ia, ib = (np.where(i < 0, -(i & 0x7FFFFFFF), i) for i in (ia, ib))
    d = np.abs(ia - ib)
    d[(np.isnan(a) & np.isnan(b)) | (a == b)] = 0
    return d


# 1. a realized node must read as a buffer, not as the op it was
@pytest.mark.parametrize(
    "make",
    [
        lambda d: Tensor.rand(64, 64, device=d, seed=1).softmax(-1).realize().sum(-1),
        lambda d: Tensor.rand(64, 64, device=d, seed=2).mean(0).realize().sum(),
        lambda d: (Tensor.rand(64, 64, device=d, seed=3) / 3.0).realize().mean(),
    ],
)
def test_reduce_of_realized_value(dev, make):
    out = make(dev).numpy()
    ref = make("REF").numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5)


def test_matmul_of_realized_product(dev):
    a = Tensor.rand(48, 64, device=dev, seed=4)
    p = (a * 2.0).realize()  # a MUL node that is now a buffer: no GEMM plan may look inside it
    out = (p @ Tensor.rand(64, 40, device=dev, seed=5)).numpy()
    ref = (a.numpy() * 2) @ Tensor.rand(64, 40, device="REF", seed=5).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4)


# 2. empty reductions
def test_empty_sum_and_matmul(dev):
    z = Tensor(np.zeros((0, 3), np.float32), device=dev)
    assert z.sum().item() == 0.0
    np.testing.assert_array_equal(z.sum(0).numpy(), np.zeros(3, np.float32))
    assert z.sum(1).shape == (0,)
    a, b = Tensor(np.zeros((2, 0), np.float32), device=dev), Tensor(np.zeros((0, 3), np.float32), device=dev)
    np.testing.assert_array_equal((a @ b).numpy(), np.zeros((2, 3), np.float32))
    assert math.isnan(z.mean().item())
    with pytest.raises(ValueError, match="zero-size"):
        z.max()


# 3. long sums agree with numpy
def test_long_sum_accuracy(dev):
    x = np.full(10**6 + 17, 0.1, np.float32)
    exact = float(np.sum(x, dtype=np.float64))
    out = Tensor(x, device=dev).sum().item()
    assert abs(out - exact) / exact < 2e-6, out
    rows = np.random.default_rng(0).uniform(0, 1, (3, 50000)).astype(np.float32)
    np.testing.assert_allclose(Tensor(rows, device=dev).sum(1).numpy(), rows.astype(np.float64).sum(1), rtol=2e-6)
    np.testing.assert_allclose(Tensor(rows, device=dev).mean(dim=1).numpy(), rows.mean(1), rtol=2e-6)


# 4. rounding of values outside int32
def test_floor_ceil_trunc_large_and_special(dev):
    x = f32(3e9, -3e9, 1e20, NAN, INF, -INF, 2.5, -2.5, -0.5, 8388607.5)
    t = Tensor(x, device=dev)
    for name in ("floor", "ceil", "trunc"):
        np.testing.assert_array_equal(getattr(t, name)().numpy(), getattr(np, name)(x), err_msg=name)
    fin = np.isfinite(x)  # inf // 1 is inf here (PyTorch) and NaN in numpy: see docs/compiler.md
    np.testing.assert_array_equal((t // 1.0).numpy()[fin], np.floor_divide(x[fin], np.float32(1)))


def test_padded_rows_reduce_only_real_elements(dev):
    # a float8 load must not read past a PAD's bounds (it once summed the buffer's neighbours)
    x = Tensor(np.full(125, 4.0, np.float32), device=dev).pad([(0, 3)]).reshape(2, 64)
    np.testing.assert_array_equal(x.sum(1).numpy(), [256.0, 244.0])
    np.testing.assert_array_equal(x.max(1).numpy(), [4.0, 4.0])
    assert Tensor(np.full(5000, 0.5, np.float32), device=dev).sum().item() == 2500.0


# 5. NaN propagates, argmax takes the first NaN
def test_nan_semantics(dev):
    t = Tensor(f32(1.0, NAN, 3.0, NAN), device=dev)
    assert t.argmax().item() == 1
    assert t.argmin().item() == 1
    assert np.isnan(t.max().item()) and np.isnan(t.min().item())
    n = Tensor(f32(NAN, 0.5, -2.0), device=dev)
    np.testing.assert_array_equal(n.minimum(1.0).numpy(), np.minimum(f32(NAN, 0.5, -2.0), 1))
    np.testing.assert_array_equal(n.maximum(1.0).numpy(), np.maximum(f32(NAN, 0.5, -2.0), 1))
    np.testing.assert_array_equal(n.clip(0, 1).numpy(), np.clip(f32(NAN, 0.5, -2.0), 0, 1))
    np.testing.assert_array_equal(n.sign().numpy(), np.sign(f32(NAN, 0.5, -2.0)))
    np.testing.assert_array_equal(n.relu().numpy(), np.maximum(f32(NAN, 0.5, -2.0), 0))
    m = Tensor(np.array([[1, 2, NAN], [4, 3, 2]], np.float32), device=dev)
    np.testing.assert_array_equal(m.argmax(dim=1).numpy(), [2, 0])


def test_gelu_within_the_error_of_its_own_float32_argument(dev):
    """GELU's tanh form as x / (1 + exp2(-2u log2 e)): within a few tens of ulp of the exact function where the
    float32 rounding of u = sqrt(2/pi)(x + 0.044715 x^3) alone costs as much (docs/compiler.md), and the
    special values as 0.5 x (1 + tanh u) gives them."""
    x = np.concatenate([np.linspace(-8, 8, 20001), np.geomspace(1e-30, 8, 400), -np.geomspace(1e-30, 8, 400)])
    x = x.astype(np.float32)
    x64 = x.astype(np.float64)
    exact = (x64 / (1 + np.exp(-2 * math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64**3)))).astype(np.float32)
    got = Tensor(x, device=dev).gelu().numpy()
    near = np.abs(x) < 4
    assert ulp_distance(got[near], exact[near]).max() <= 32
    assert ulp_distance(got[~near], exact[~near]).max() <= 256
    special = Tensor(f32(NAN, INF, -INF, -0.0, 0.0, -100.0, 100.0), device=dev).gelu().numpy()
    np.testing.assert_array_equal(special, f32(NAN, INF, NAN, -0.0, 0.0, -0.0, 100.0))
    assert np.signbit(special[3]) and np.signbit(special[5])


# 6. transcendentals to a few ulp over the float32 range
def test_transcendental_ulps(dev):
    rng = np.random.default_rng(1)
    cases = [
        ("exp", np.exp, rng.uniform(-103, 88.7, 4000)),
        ("log", np.log, np.exp(rng.uniform(-103, 88, 4000))),
        ("tanh", np.tanh, np.concatenate([rng.uniform(-10, 10, 4000), rng.uniform(-1e-3, 1e-3, 200)])),
        ("sin", np.sin, rng.uniform(-1e5, 1e5, 4000)),
    ]
    for name, ref_f, x in cases:
        x = x.astype(np.float32)
        out = getattr(Tensor(x, device=dev), name)().numpy()
        ref = ref_f(x.astype(np.float64)).astype(np.float32)
        assert ulp_distance(out, ref).max() <= 4, name
    x = rng.uniform(-1e5, 1e5, 4000).astype(np.float32)  # cos: a few ulp of 1, absolute
    assert np.abs(Tensor(x, device=dev).cos().numpy() - np.cos(x.astype(np.float64))).max() < 5e-7
    t = Tensor(f32(1e-8, -87.3, 1e-45, 0.0, -INF, INF, NAN), device=dev)
    assert t[0:1].tanh().item() == np.float32(1e-8)
    np.testing.assert_allclose(t[1:2].exp().item(), 1.2192e-38, rtol=1e-3)
    np.testing.assert_allclose(t[2:3].log().item(), np.log(np.float64(np.float32(1e-45))), rtol=1e-6)
    np.testing.assert_array_equal(t[3:].exp().numpy(), f32(1.0, 0.0, INF, NAN))
    np.testing.assert_array_equal(t[3:].log().numpy(), f32(-INF, NAN, INF, NAN))


# 7. integer powers stay exact integers
def test_integer_power(dev):
    out = Tensor([3, -2, 7], device=dev) ** 5
    assert out.dtype.name == "int32"
    np.testing.assert_array_equal(out.numpy(), np.array([3, -2, 7]) ** 5)
    e = Tensor([0, 1, 5, 10], device=dev)
    np.testing.assert_array_equal((Tensor([3, 3, 3, 2], device=dev) ** e).numpy(), [1, 3, 243, 1024])
    np.testing.assert_array_equal((2 ** e).numpy(), [1, 2, 32, 1024])
    assert (0.0 ** Tensor(0.0, device=dev)).item() == 1.0
    assert (Tensor(NAN, device=dev) ** 0).item() == 1.0
    assert (1.0 ** Tensor(NAN, device=dev)).item() == 1.0
    np.testing.assert_allclose((Tensor(f32(1.5, -2.0), device=dev) ** 7).numpy(), f32(1.5, -2.0) ** 7, rtol=1e-6)
    np.testing.assert_allclose((Tensor(f32(-2.0), device=dev) ** Tensor(f32(3.0), device=dev)).numpy(), [-8.0])


# 8. padded integer max pools and float16 means
def test_int8_padded_max_pool_and_half_mean(dev):
    x = Tensor(np.full((1, 1, 4, 4), -5, np.int8), device=dev)
    out = x.max_pool2d(2, 2, padding=1).numpy()
    np.testing.assert_array_equal(out, np.full((1, 1, 3, 3), -5, np.int8))
    h = Tensor(np.ones(10**5, np.float16), device=dev)
    assert h.mean().item() == 1.0 and h.mean().dtype.name == "float16"
    np.testing.assert_allclose(h.var().item(), 0.0)


# 9. indices known on the host are checked
def test_embedding_index_out_of_range(dev):
    w = Tensor(np.arange(6, dtype=np.float32).reshape(3, 2), device=dev)
    for bad in ([0, 3], [-1]):
        with pytest.raises(IndexError, match="out of range"):
            Tensor(bad, device=dev).embedding(w)
    with pytest.raises(IndexOutOfRangeError):
        Tensor([[5]], device=dev).embedding(w)
    np.testing.assert_array_equal(Tensor([2, 0], device=dev).embedding(w).numpy(), [[4, 5], [0, 1]])


# 10. no silent conversions
def test_conversions_are_checked(dev):
    with pytest.raises(DTypeError, match="does not fit int32"):
        Tensor(np.array([2**40, 3], np.int64), device=dev)
    with pytest.raises(DTypeError, match="does not fit int8"):
        Tensor(np.array([200]), device=dev, dtype="int8")
    assert Tensor(np.array([2**31 - 1, 3], np.int64), device=dev).numpy().tolist() == [2**31 - 1, 3]
    with pytest.warns(UserWarning, match="float64 array stored as float32"):
        Tensor(np.array([1.5], np.float64), device=dev)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Tensor([1.5, 2.5], device=dev)  # Python floats: float32 is the default, as in PyTorch
        Tensor(np.array([1.5], np.float64), device=dev, dtype="float32")  # asked for


def test_gpu_device_name_is_not_the_cpu():
    from compiler.opencl_devices import describe_opencl_devices

    devs = describe_opencl_devices() if "CL" in Device.available() else []
    gpus = [fam for fam in ("CUDA", "HIP") if fam in Device.available()]
    if gpus:  # CUDA, then HIP, come before an OpenCL GPU
        assert Tensor([1.0], device="GPU").device == gpus[0]
    elif devs and devs[0].is_gpu:
        assert Tensor([1.0], device="GPU").device == "CL"
    else:
        with pytest.raises(DeviceError, match="no OpenCL GPU"):
            Tensor([1.0], device="GPU")


# the PyTorch names of reduction and joining arguments
def test_dim_and_correction_names(dev):
    a = np.random.default_rng(2).uniform(-1, 1, (3, 4, 5)).astype(np.float32)
    t = Tensor(a, device=dev)
    np.testing.assert_allclose(t.sum(dim=1).numpy(), a.sum(1), rtol=1e-5)
    np.testing.assert_allclose(t.sum(axis=1, keepdims=True).numpy(), a.sum(1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(t.mean(dim=(0, 2), keepdim=True).numpy(), a.mean((0, 2), keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(t.max(dim=-1).numpy(), a.max(-1))
    np.testing.assert_allclose(t.min(dim=0).numpy(), a.min(0))
    np.testing.assert_allclose(t.var(dim=1, correction=1).numpy(), a.var(1, ddof=1), rtol=1e-5)
    np.testing.assert_allclose(t.std(dim=2, correction=0).numpy(), a.std(2), rtol=1e-5)
    np.testing.assert_array_equal(t.argmax(dim=2).numpy(), a.argmax(2))
    np.testing.assert_array_equal(t.argmin(dim=0).numpy(), a.argmin(0))
    e = np.exp(a - a.max(1, keepdims=True))
    np.testing.assert_allclose(t.softmax(dim=1).numpy(), e / e.sum(1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(t.log_softmax(dim=1).numpy(), np.log(e / e.sum(1, keepdims=True)), atol=1e-5)
    np.testing.assert_allclose(Tensor.cat([t, t], dim=2).numpy(), np.concatenate([a, a], 2))
    np.testing.assert_allclose(Tensor.stack([t, t], dim=1).numpy(), np.stack([a, a], 1))
    np.testing.assert_allclose(t.flip(dims=(0, 2)).numpy(), np.flip(a, (0, 2)))
    assert t.unsqueeze(dim=1).shape == (3, 1, 4, 5) and t.unsqueeze(1).squeeze(dim=1).shape == (3, 4, 5)
    with pytest.raises(TypeError, match="both"):
        t.sum(axis=0, dim=1)


# x @ W with W stored (in, out): the matrix-vector template (render_gemv.py), odd sizes and a fused epilogue
@pytest.mark.parametrize("k,n", [(300, 1000), (4097, 77), (64, 1030)])
def test_matrix_vector_product(dev, k, n):
    rng = np.random.default_rng(k)
    v, w = rng.standard_normal(k).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    V, W = Tensor(v, device=dev), Tensor(w, device=dev)
    np.testing.assert_allclose((V @ W).numpy(), v @ w, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(
        (V.reshape(1, k) @ W + 1.0).relu().numpy(), np.maximum(v[None] @ w + 1, 0), rtol=1e-4, atol=1e-3
    )
    np.testing.assert_allclose(W.sum(0).numpy(), w.sum(0), rtol=1e-4, atol=1e-3)  # strided column sums


def test_causal_mask_is_made_once(dev):
    from compiler.nn import GPT2Block

    blk = GPT2Block(d_model=32, n_heads=2, d_hidden=64, device=dev)
    x = Tensor.rand(1, 8, 32, device=dev, seed=3)
    first = blk(x).schedule()
    assert len(first) == 15  # no kernel computes the mask
    q = Tensor.rand(1, 2, 5, 4, device=dev, seed=4)
    k = Tensor.rand(1, 2, 5, 4, device=dev, seed=5)
    out = q.scaled_dot_product_attention(k, k, is_causal=True).numpy()
    s = q.numpy() @ k.numpy().transpose(0, 1, 3, 2) / 2.0
    s = np.where(np.tril(np.ones((5, 5), bool)), s, -np.inf)
    e = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(out, (e / e.sum(-1, keepdims=True)) @ k.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape, view", [((2, 3, 4, 5), (1, 120)), ((2, 3, 4, 5), (120,)), ((3, 5, 8), (1, 120))])
@pytest.mark.parametrize("op", ["sum", "max", "mean"])
def test_vector_reduce_over_a_reshaped_view(shape, view, op):
    """A reduce over a reshaped buffer whose index divides the loop variable: float8 loads must not broadcast one
    element (found by the ONNX layer-norm axis-0 case: each element was summed 8 times)."""
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    got = getattr(Tensor(x, device="CL").reshape(*view), op)(-1).numpy()
    np.testing.assert_allclose(got, getattr(x.reshape(view), op)(-1), rtol=1e-5, atol=1e-5)


def test_float16_ops_round_inside_fused_kernels():
    """Every float16 op's result is a float16 value on CL, fused or not, as on REF (numpy float16)."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(4099) * 100).astype(np.float32)
    y = rng.standard_normal(4099).astype(np.float32)
    edges = np.array([65519.0, 65520.0, 65504.0, -65536.0, 1e-8, 2.9802322e-8, -3e-8, 8.94e-8, 6.0e-5,
                      1e-45, -0.0, np.inf, np.nan], np.float32)
    cases = [
        (lambda t, u: t.half().float(), x, y),
        (lambda t, u: ((t.half() * u.half() + t.half()) * u.half()).float(), x, y),
        (lambda t, u: (t.half() * u.half()).sum().float(), x, y),
        (lambda t, u: (t * 1.0).half().float() * 1.0, edges, edges),
    ]
    for f, a, b in cases:
        got = f(Tensor(a, device="CL"), Tensor(b, device="CL")).numpy()
        want = f(Tensor(a, device="REF"), Tensor(b, device="REF")).numpy()
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    np.testing.assert_array_equal(Tensor(edges, device="REF").half().float().numpy().view(np.uint32),
                                  edges.astype(np.float16).astype(np.float32).view(np.uint32))


@pytest.mark.parametrize("c", [-1e-45, -0.0, -2.5])
def test_negative_constants_under_negation(dev, c):
    """x - c with c < 0 renders c's negation as a value (found by the differential fuzz: '--1e-45f')."""
    x = np.array([1.5, np.nan, -3.0], np.float32)
    got = (Tensor(x, device=dev) - c).numpy()
    np.testing.assert_array_equal(got, x - np.float32(c))
    np.testing.assert_array_equal((-(Tensor(x, device=dev) * 0 + c)).numpy(), -(x * 0 + np.float32(c)))


@pytest.mark.parametrize("fn", ["softmax", "log_softmax", "logsumexp"])
def test_softmax_family_on_nan_inf_and_masked_rows(dev, fn):
    """Rows with NaN, +-inf, -inf masks (some fully masked) and wide ranges give numpy's values."""
    inf, nan = np.inf, np.nan
    a = np.array([[1.0, 2.0, 3.0, 4.0], [nan, 0.0, 1.0, 2.0], [inf, 0.0, 1.0, 2.0], [-inf, -inf, 1.0, -inf],
                  [-inf, -inf, -inf, -inf], [inf, inf, 0.0, 0.0], [-100.0, 0.0, -30.0, 80.0],
                  [-1e30, 0.0, 88.0, -87.0]], np.float32)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        s = a.astype(np.float64) - a.max(-1, keepdims=True)
        lse = np.log(np.exp(s).sum(-1, keepdims=True))
    want = {"softmax": np.exp(s - lse), "log_softmax": s - lse, "logsumexp": (lse + a.max(-1, keepdims=True))[:, 0]}
    got = getattr(Tensor(a, device=dev), fn)(-1).numpy()
    np.testing.assert_allclose(got, want[fn].astype(np.float32), rtol=2e-6, atol=1e-7)



def _kernel_sources(t: Tensor) -> str:
    """The OpenCL source of every kernel that would realize t."""
    from compiler.optimizer import choose_program
    from compiler.schedule import create_schedule

    return "".join(choose_program(k).src for k in create_schedule([t.node]))


def test_exp2_of_rounded_integers_is_exact():
    """exp's scale factor 2**n, n rounded by adding and subtracting 1.5 * 2**23 from a clamped value, renders
    as wb_exp2i (its bits, no polynomial) in scalar and float8 kernels and equals numpy's exp2 exactly: normal,
    subnormal, 0 and inf results, NaN kept."""
    from compiler.dtypes import FLOAT32_ROUNDER as R

    t = np.concatenate([np.arange(-170, 140, 0.5), [NAN, INF, -INF, 3e9, -3e9, 0.49999997]]).astype(np.float32)
    want = np.exp2(np.rint(np.clip(t, -151, 127)).astype(np.float64)).astype(np.float32)
    want[np.isnan(t)] = NAN

    def scale(x: Tensor) -> Tensor:
        return ((x.minimum(127.0).maximum(-151.0) + R) + -R).exp2()

    x = Tensor(t, device="CL")
    assert "wb_exp2i(" in _kernel_sources(scale(x))
    np.testing.assert_array_equal(scale(x).numpy(), want)
    rows = Tensor(np.repeat(t[:, None], 64, axis=1), device="CL")  # a row max: its loads and exp2 are float8
    assert "wb_exp2iv(" in _kernel_sources(scale(rows).max(-1))
    np.testing.assert_array_equal(scale(rows).max(-1).numpy(), want)
    # no clamp: (x + R) - R is an integer wherever 2**x is not 0 (and keeps a half only below -2**22)
    big = f32(-12582911.0, -8000000.5, -4194305.0, -200.3, -149.6, 0.7, 127.4, 6000000.5, 2e9, NAN)
    unclamped = ((Tensor(big, device="CL") + R) + -R).exp2()
    assert "wb_exp2i(" in _kernel_sources(unclamped)
    n = (big + np.float32(R)) - np.float32(R)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(unclamped.numpy(), np.exp2(n.astype(np.float64)).astype(np.float32))


@pytest.mark.parametrize("d", [3, -3, 1, -1, 0])
def test_integer_division_by_a_literal_renders_no_dead_tests(d):
    """x // d and x % d with a constant d keep numpy's values (x / 0 and x % 0 give 0, as documented) and
    render without the divisor tests that cannot hold (clang warned of constant operands); an unsigned
    divisor is never tested against -1."""
    x = np.array([7, -7, 0, 5, -2147483647, 2147483647], np.int32)
    t = Tensor(x, device="CL")
    for got, op in ((t // d, np.floor_divide), (t % d, np.mod)):
        src = _kernel_sources(got).split("__kernel")[-1]
        assert "==0" not in src and "==-1" not in src and f"=={d}" not in src
        with np.errstate(divide="ignore"):
            want = op(x, d) if d else np.zeros_like(x)
        np.testing.assert_array_equal(got.numpy(), want)
    u, v = np.array([250, 3, 7, 9], np.uint8), np.array([7, 0, 2, 9], np.uint8)
    q = Tensor(u, device="CL") // Tensor(v, device="CL")
    assert "==-1" not in _kernel_sources(q).split("__kernel")[-1]
    np.testing.assert_array_equal(q.numpy(), np.where(v == 0, 0, u // np.maximum(v, 1)))


def test_exp2_at_the_bottom_of_float32(dev):
    """exp2 across the subnormal results' range and past it is numpy's (0 below -150, -inf included), in
    an elementwise kernel and in a row sum (whose loads and exp2 render as float8, wb_exp2v)."""
    edge = f32(-INF, -1e30, -400.0, -152.0, -151.5, -151.0, -150.5, -150.0, -149.5, -149.0, -140.25, -126.0,
               -125.5, -125.0, -124.9, 0.0)
    want = np.exp2(edge.astype(np.float64)).astype(np.float32)
    got = Tensor(edge, device=dev).exp2().numpy()
    assert ulp_distance(got, want).max() <= 4 and (got[edge < -151] == 0).all()
    rows = Tensor(np.repeat(edge[:, None], 256, axis=1), device=dev).exp2().sum(-1).numpy()
    assert ulp_distance(rows, want * 256).max() <= 4 and (rows[edge < -151] == 0).all()
