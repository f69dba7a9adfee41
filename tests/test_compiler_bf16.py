"""bfloat16 storage: REF's rounding against an independent bit-level reference and ml_dtypes, CL bit-exact
with REF for casts and elementwise ops, matmul/conv accumulating in float32, safetensors BF16, autograd and
a short training run, and the CUDA (mma.sync bf16) and HIP (gfx1100) kernels compiling without a GPU."""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import Tensor, dtypes, nn
from compiler.dtypes import promote, to_dtype
from compiler.errors import DTypeError
from compiler.weights import load_safetensors, save_safetensors

BF16 = np.dtype(ml_dtypes.bfloat16)


def _rne_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits written out: nearest even, NaN -> the quiet NaN of its sign."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = ((u >> 16) & 0x8000) | 0x7FC0
    return np.where(np.isnan(x), nan, rounded).astype(np.uint16)


def _special() -> np.ndarray:
    bits = [
        0x3F808000, 0x3F818000, 0x3F808001, 0x3F817FFF,  # ties to even (down, up) and just off the tie
        0x7F800000, 0xFF800000, 0x80000000, 0x00000000,  # +-inf, -0.0, +0.0
        0x7F800001, 0xFFBFFFFF, 0x7FC12345, 0xFFC00000,  # NaNs: signalling, payloads, both signs
        0x00000001, 0x00008000, 0x00018000, 0x807FFFFF, 0x00400000,  # float32 subnormals (ties among them)
        0x7F7FFFFF, 0x7F7F8000, 0xFF7F7FFF,  # the largest floats: round to inf, tie to inf, stay finite
    ]  # fmt: skip
    return np.array(bits, np.uint32).view(np.float32)


def _values(n: int = 512, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * np.exp2(rng.integers(-20, 20, n))).astype(np.float32)
    x[: len(_special())] = _special()
    return x


def _bf16(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # numpy warns on NaN casts; the NaN rules are what is tested
        return x.astype(BF16)


def _bits(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).view(np.uint16) if np.asarray(a).dtype == BF16 else np.asarray(a)


# --- the dtype and REF ----------------------------------------------------------------------------
def test_names_promotion_and_numpy_round_trip():
    for name in ("bfloat16", "bf16", "torch.bfloat16", dtypes.bfloat16, dtypes.bf16, BF16, ml_dtypes.bfloat16):
        assert to_dtype(name) is dtypes.bfloat16
    assert dtypes.bfloat16.is_float and dtypes.bfloat16.itemsize == 2 and dtypes.bfloat16.compute == "float"
    assert promote(dtypes.bfloat16, dtypes.float16) == dtypes.float32  # neither holds the other
    assert promote(dtypes.bfloat16, dtypes.float32) == dtypes.float32
    assert promote(dtypes.int32, dtypes.bfloat16) == dtypes.bfloat16
    with pytest.raises(DTypeError, match="bfloat16"):
        to_dtype("bfloat8")
    t = Tensor([1.0, 1.00390625, -2.5], dtype="bfloat16", device="REF")
    assert t.dtype == dtypes.bfloat16 and t.numpy().dtype == BF16  # numpy() keeps the dtype (ml_dtypes)
    assert t.tolist() == [1.0, 1.0, -2.5] and isinstance(t[2].item(), float)
    assert Tensor(t.numpy(), device="REF").dtype == dtypes.bfloat16
    assert Tensor(np.float32(3.0), device="REF").bfloat16().dtype == dtypes.bfloat16
    assert (t + 1).dtype == dtypes.bfloat16 and (t * 2.0).dtype == dtypes.bfloat16
    assert (t + Tensor([1.0, 2.0, 3.0], device="REF")).dtype == dtypes.float32


def test_ref_rounding_is_nearest_even_and_matches_ml_dtypes():
    x = _values()
    want = _rne_bits(x)
    np.testing.assert_array_equal(_bf16(x).view(np.uint16), want)  # ml_dtypes agrees with the formula
    got = Tensor(x, device="REF").cast("bfloat16").numpy()
    np.testing.assert_array_equal(got.view(np.uint16), want)
    assert list(got.view(np.uint16)[:4]) == [0x3F80, 0x3F82, 0x3F81, 0x3F81]
    assert list(got.view(np.uint16)[8:12]) == [0x7FC0, 0xFFC0, 0x7FC0, 0xFFC0]  # quiet, sign kept
    assert list(got.view(np.uint16)[17:20]) == [0x7F80, 0x7F80, 0xFF7F]
    back = Tensor(got, device="REF").float().numpy()  # widening is exact
    np.testing.assert_array_equal(back.view(np.uint32), got.view(np.uint16).astype(np.uint32) << 16)
    assert got.view(np.uint16)[6] == 0x8000  # -0.0 survives


def test_ref_computes_in_float32_and_rounds_once_per_op():
    a, b = _bf16(_values(256, 1)), _bf16(_values(256, 2))
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    ta, tb = Tensor(a, device="REF"), Tensor(b, device="REF")
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(_bits((ta * tb).numpy()), _rne_bits(fa * fb))
        np.testing.assert_array_equal(_bits((ta + tb).numpy()), _rne_bits(fa + fb))
        np.testing.assert_array_equal(_bits(ta.sqrt().numpy()), _rne_bits(np.sqrt(fa)))


@pytest.mark.parametrize("device", ["REF", "CL"])
def test_composite_ops_round_once(device):
    # exp, softmax, layernorm... run in float32 and round their result once, like PyTorch's bf16 kernels
    x = _bf16(np.random.default_rng(6).standard_normal((4, 40)).astype(np.float32) * 4)
    fx = x.astype(np.float32)
    ops = {
        "exp": lambda t: t.exp(), "tanh": lambda t: t.tanh(), "gelu": lambda t: t.gelu(),
        "softmax": lambda t: t.softmax(-1), "layernorm": lambda t: t.layernorm(), "div": lambda t: t / 3,
        "pow": lambda t: t.abs() ** 1.5, "mean": lambda t: t.mean(-1),
    }  # fmt: skip
    for name, fn in ops.items():
        if device == "CL" and name not in ("exp", "gelu", "div"):  # kernel builds are what costs time on CL
            continue
        got = fn(Tensor(x, device=device)).numpy()
        assert got.dtype == BF16, name
        np.testing.assert_array_equal(got.view(np.uint16), _rne_bits(fn(Tensor(fx, device="REF")).numpy()), name)


# --- CL against REF ---------------------------------------------------------------------------------
_CASES = {
    "to_bf16": lambda x, y: x.cast("bfloat16"),
    "from_bf16": lambda x, y: x.bfloat16().float(),
    "to_int": lambda x, y: (x.bfloat16().float().maximum(-1e9).minimum(1e9)).cast("bfloat16").int(),
    "from_int": lambda x, y: (x * 1000.0).maximum(-2e9).minimum(2e9).int().cast("bfloat16"),
    "from_bool": lambda x, y: (x < y).cast("bfloat16"),
    "8bit_ints": lambda x, y: x.bfloat16().clip(-100, 100).cast("int8").cast("bfloat16")
    + y.bfloat16().abs().clip(0, 250).cast("uint8").cast("bfloat16").cast("uint8").cast("bfloat16"),
    # (the half is stored first: a float16 cast fused into a kernel does not round on CL, an fp16 matter)
    "from_half": lambda x, y: x.half().realize().bfloat16(),
    "to_half": lambda x, y: x.bfloat16().half(),
    "add_mul": lambda x, y: x.bfloat16() * y.bfloat16() + x.bfloat16(),
    "div_neg_max": lambda x, y: (-(x.bfloat16() / y.bfloat16())).maximum(y.bfloat16()),
    "where_cmp": lambda x, y: (x.bfloat16() < y.bfloat16()).where(x.bfloat16(), 0.3),
    "exp2_log2_sqrt": lambda x, y: (x.bfloat16().abs().sqrt() + (x.bfloat16() * 0.01).exp2()).log2(),
    "chain": lambda x, y: ((x.bfloat16() * 3.1 + 1.7) * y.bfloat16() - 0.1).relu(),
    "sum_rows": lambda x, y: (x.bfloat16() * 1e-3).reshape(16, 32).sum(1),
}


@pytest.mark.parametrize("name", list(_CASES))
def test_cl_is_bit_exact_with_ref(name):
    x, y = _values(512, 3), _values(512, 4)
    if name == "sum_rows":  # finite values: the sum's order differs between devices, so no NaN/inf games
        x = np.random.default_rng(5).standard_normal(512).astype(np.float32)
    fn = _CASES[name]
    with np.errstate(all="ignore"):
        ref = fn(Tensor(x, device="REF"), Tensor(y, device="REF")).numpy()
        cl = fn(Tensor(x, device="CL"), Tensor(y, device="CL")).numpy()
    assert ref.dtype == cl.dtype
    if name == "sum_rows":
        # one rounding of a float32 sum: devices that add in another order may differ by one bfloat16 step
        np.testing.assert_allclose(cl.astype(np.float32), ref.astype(np.float32), rtol=2**-7)
    elif name in ("to_int", "from_int", "8bit_ints"):  # float->int of NaN/inf is undefined in C
        ok = np.isfinite(x) & np.isfinite(y)
        np.testing.assert_array_equal(_bits(cl)[ok], _bits(ref)[ok])
    else:
        np.testing.assert_array_equal(_bits(cl), _bits(ref))


_CHAIN_OPS = [
    lambda t, u: t + u, lambda t, u: t * u, lambda t, u: t - u * 0.37, lambda t, u: t.maximum(u),
    lambda t, u: -t, lambda t, u: (t < u).where(t, u * 1.5), lambda t, u: t.abs().sqrt(),
    lambda t, u: (t * 0.05).exp2(), lambda t, u: t.float().bfloat16() * 3.3, lambda t, u: t.T.flip(0).T,
]  # fmt: skip


@settings(max_examples=6, deadline=None, derandomize=True)  # each example builds one CL kernel
@given(st.lists(st.integers(0, len(_CHAIN_OPS) - 1), min_size=3, max_size=7), st.integers(0, 2**16))
def test_random_fused_bf16_chains_are_bit_exact_on_cl(ops, seed):
    # however many ops a kernel fuses, each bfloat16 op rounds where REF's does
    rng = np.random.default_rng(seed)
    x, y = (_bf16(rng.standard_normal((9, 9)).astype(np.float32) * 4) for _ in range(2))

    def run(dev):
        t, u = Tensor(x, device=dev), Tensor(y, device=dev)
        for i in ops:
            t = _CHAIN_OPS[i](t, u)
        return t.numpy()

    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(_bits(run("CL")), _bits(run("REF")))


# --- matmul and convolution ---------------------------------------------------------------------------
def _one_rounding_of(t: Tensor, exact: np.ndarray) -> None:
    """t is bfloat16 and each value is the exact result rounded once (a float32 sum may land one bfloat16
    step away near a tie; products or partial sums rounded to bfloat16 would be many steps off)."""
    got = t.numpy()
    assert got.dtype == BF16
    steps = np.abs(got.view(np.uint16).astype(np.int32) - _rne_bits(exact.astype(np.float32)).astype(np.int32))
    assert steps.max() <= 1 and (steps == 0).mean() > 0.99


def _rounded(*arrays):
    return [a.astype(BF16) for a in arrays], [a.astype(BF16).astype(np.float32) for a in arrays]


@pytest.mark.parametrize("device", ["REF", "CL"])
def test_matmul_and_conv_accumulate_in_float32_and_round_once(device):
    rng = np.random.default_rng(0)
    (a, b, c), (fa, fb, fc) = _rounded(*(rng.standard_normal(s).astype(np.float32) for s in ((70, 96), (96, 130), (130,))))
    A, B, C = (Tensor(v, device=device) for v in (a, b, c))
    _one_rounding_of(A @ B, fa.astype(np.float64) @ fb)
    _one_rounding_of(A.linear(B.T, C), fa.astype(np.float64) @ fb + fc)  # bias on the float32 sums, then round
    # 1000 ones: a bfloat16 accumulator sticks at 256 (256 + 1 rounds back to 256), float32 reaches 1000
    ones = Tensor(np.ones((1, 1000), np.float32), device=device, dtype="bfloat16")
    assert (ones @ ones.T).item() == 1000.0 and ones.sum().item() == 1000.0
    (x, w), (fx, fw) = _rounded(rng.standard_normal((2, 8, 10, 10)).astype(np.float32),
                                rng.standard_normal((16, 8, 3, 3)).astype(np.float32))  # fmt: skip
    got = Tensor(x, device=device).conv2d(Tensor(w, device=device), padding=1).numpy()
    want = Tensor(fx, device="REF").conv2d(Tensor(fw, device="REF"), padding=1).numpy()
    assert got.dtype == BF16
    # the float32 reference sums in another order: at most one bfloat16 step apart
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=2**-8, atol=1e-6)


# --- weights, autograd, training ------------------------------------------------------------------------
def test_safetensors_keep_bf16_and_save_writes_BF16(tmp_path):
    import json

    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 5)).astype(np.float32)
    lin = nn.Linear(5, 3, device="REF")
    lin.load_state_dict({"weight": w, "bias": np.zeros(3, np.float32)})
    lin.to(dtypes.bfloat16)
    assert lin.weight.dtype == dtypes.bfloat16 and lin.weight.requires_grad
    path = tmp_path / "m.safetensors"
    save_safetensors(lin, path)
    header = json.loads(path.read_bytes()[8 : 8 + int.from_bytes(path.read_bytes()[:8], "little")])
    assert header["weight"]["dtype"] == "BF16" and header["bias"]["dtype"] == "BF16"
    kept = load_safetensors(path, keep_bfloat16=True)
    assert kept["weight"].dtype == BF16
    np.testing.assert_array_equal(kept["weight"].view(np.uint16), _rne_bits(w).reshape(3, 5))
    wide = load_safetensors(path)
    assert wide["weight"].dtype == np.float32
    np.testing.assert_array_equal(wide["weight"], w.astype(BF16).astype(np.float32))
    f32 = nn.Linear(5, 3, device="REF").load_state_dict(kept)  # the model's dtype wins by default
    assert f32.weight.dtype == dtypes.float32
    b16 = nn.Linear(5, 3, device="REF").load_state_dict(kept, assign=True)  # PyTorch's assign: the file's
    assert b16.weight.dtype == dtypes.bfloat16 and b16.weight.requires_grad
    save_safetensors(lin, path, dtype="float32")
    assert load_safetensors(path, keep_bfloat16=True)["weight"].dtype == np.float32


def test_gradients_of_bf16_parameters_are_bf16():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((8, 16)).astype(np.float32), rng.standard_normal((16, 4)).astype(np.float32)
    (xb, wb), (fx, fw) = _rounded(x, w)
    W = Tensor(wb, device="REF", requires_grad=True)
    ((Tensor(xb, device="REF") @ W).relu() * 0.5).sum().backward()
    assert W.grad.dtype == dtypes.bfloat16  # like PyTorch: a gradient has its parameter's dtype
    W32 = Tensor(fw, device="REF", requires_grad=True)
    ((Tensor(fx, device="REF") @ W32).relu() * 0.5).sum().backward()
    np.testing.assert_allclose(W.grad.numpy().astype(np.float32), W32.grad.numpy(), rtol=2**-7, atol=1e-2)


@pytest.mark.slow
def test_a_bf16_mlp_learns_digits():
    # on REF: CL computes the same bits (the tests above), and REF pays no kernel builds (~25 on a cold CL)
    pytest.importorskip("sklearn", reason="the dev extra installs scikit-learn (digits)")
    from sklearn.datasets import load_digits

    from compiler.losses import cross_entropy
    from compiler.models.vision import MLP
    from compiler.optim import SGD

    d = load_digits()
    x, y = (d.data / 16.0).astype(np.float32), d.target.astype(np.int32)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(x))
    tr, te = perm[:1400], perm[1400:]
    model = MLP(64, (64,), 10, device="REF").to(dtypes.bfloat16)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(60):
        idx = rng.choice(tr, 64)
        loss = cross_entropy(model(Tensor(x[idx], device="REF", dtype="bfloat16")), Tensor(y[idx], device="REF"))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(p.dtype == dtypes.bfloat16 for p in model.parameters())
    logits = model(Tensor(x[te], device="REF", dtype="bfloat16")).numpy()
    assert logits.dtype == BF16
    assert (logits.astype(np.float32).argmax(1) == y[te]).mean() >= 0.9  # 95.2% after 60 steps, as float32


# --- CUDA and HIP without a GPU (the corpus-wide compile tests in test_gpu_compile.py cover the bf16
# corpus entries too; these check what is particular to bfloat16) -------------------------------------------
def _gpu_kernels(family: str, names: list[str]) -> list:
    from compiler.kernel_corpus import gpu_kernels

    return [k for name in names for k in gpu_kernels(name, family)]


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_bf16_tensor_core_ptx(arch):
    pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC comes with the dev extra (cuda-bindings)")
    from compiler.dialects import CUDA
    from compiler.kernel_corpus import one_translation_unit
    from compiler.kernel_ir import KernelOpts
    from compiler.nvrtc import compile_cuda
    from compiler.optimizer import heuristic_opts, render_program

    ks = _gpu_kernels("CUDA", ["matmul_bf16", "linear_bf16_odd", "conv2d_bf16"])
    assert all(heuristic_opts(k, False).mma_gemm for k in ks)  # matmul, linear with bias, conv2d: tensor cores
    prgs = [render_program(k, KernelOpts(mma_gemm=(64, 64, 32, 2, 2))) for k in ks]  # small tiles: quick builds
    body = prgs[0].src[prgs[0].src.index('extern "C"'):]
    assert body.count("wb_cp16(") == 4  # plain bf16 factors move in 16-byte async copies, no conversion
    ptx = compile_cuda(one_translation_unit(CUDA, [p.src for p in prgs]), "bf16", arch).decode()
    assert len(re.findall(r"^\.visible \.entry ", ptx, re.M)) == 3
    assert len(re.findall(r"mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.bf16\.bf16\.f32", ptx)) >= 3
    assert ".f16.f16" not in ptx


def test_bf16_kernels_compile_for_amdgpu_gfx1100():
    pytest.importorskip("ziglang", reason="the dev extra installs ziglang (clang for AMDGPU)")
    from compiler.amdgpu_offline import EM_AMDGPU, compile_hip_offline, elf_machine
    from compiler.dialects import HIP
    from compiler.kernel_corpus import one_translation_unit
    from compiler.optimizer import heuristic_opts, render_program

    ks = _gpu_kernels("HIP", ["bf16_elementwise", "linear_bf16_odd"])
    prgs = [render_program(k, heuristic_opts(k, False)) for k in ks]
    assert [bool(p.opts.gpu_gemm) for p in prgs] == [False, True]  # no WMMA template on HIP: the tiled GEMM
    obj = compile_hip_offline(one_translation_unit(HIP, [p.src for p in prgs]), "bf16", "gfx1100")
    assert elf_machine(obj) == EM_AMDGPU
    assert all(p.name.encode() in obj for p in prgs)
