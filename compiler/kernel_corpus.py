"""A representative corpus of the graphs the compiler's tests build: elementwise (float, int, bool, half, bfloat16),
reductions, softmax, layernorm, matmul variants (odd shapes, batched, fused epilogues, float16, bfloat16), conv2d,
attention and a small GPT-2 block. The CUDA and HIP compile tests and the GPU value tests run over it.

Each entry is (input specs, function): the specs are (shape, numpy dtype) pairs and the function maps
Tensors to the Tensor to compute, so the same graph is built on any device from the same numpy inputs.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import ml_dtypes
import numpy as np

from .tensor import Tensor

F32, F16, I32, I8, BF16 = np.float32, np.float16, np.int32, np.int8, ml_dtypes.bfloat16


def _gpt2_block(x: Tensor) -> Tensor:
    from .nn import GPT2Block

    return GPT2Block(64, 4, 256, device=x.device, seed=1)(x)


CORPUS: dict[str, tuple[list[tuple[tuple, type]], Callable[..., Tensor]]] = {
    "add_mul": ([((64, 130), F32)] * 3, lambda a, b, c: a * b + c),
    "exp_relu": ([((4096,), F32)] * 2, lambda a, b: (a * b).relu().exp2()),
    "math": ([((33, 65), F32)], lambda a: (a.abs() + 1).sqrt().log2() + a.sin() + (a * a + 1).reciprocal()),
    "broadcast_transpose": ([((32, 1, 48), F32), ((1, 24, 48), F32)], lambda a, b: (a + b).transpose(0, 2) * 2),
    "pad_flip": ([((3, 17, 19), F32)], lambda a: a.pad(((0, 0), (2, 1), (1, 3))).flip(1) + 1),
    "int_ops": ([((40, 50), I32)] * 2, lambda a, b: (a // (b + 100)) + (a % 7) * 3 - a.maximum(b)),
    "where_cmp": ([((77, 31), F32)] * 2, lambda a, b: (a < b).where(a, b * 2) + (a == b).float()),
    "int8_sum": ([((64, 96), I8)], lambda a: a.sum(axis=1)),
    "half_elementwise": ([((256, 48), F16)] * 2, lambda a, b: (a * b + 1).half().float().exp()),
    "sum_rows": ([((300, 257), F32)], lambda a: a.sum(axis=1)),
    "max_cols": ([((300, 257), F32)], lambda a: a.max(axis=0)),
    "sum_all_two_stage": ([((40000,), F32)], lambda a: a.sum()),
    "mean_var": ([((16, 512), F32)], lambda a: a.var(axis=-1) + a.mean(axis=-1)),
    "softmax": ([((64, 100), F32)], lambda a: a.softmax(-1)),
    "log_softmax": ([((32, 1000), F32)], lambda a: a.log_softmax(-1)),
    "layernorm": ([((128, 64), F32), ((64,), F32), ((64,), F32)], lambda x, g, b: x.layernorm(weight=g, bias=b)),
    "argmax": ([((48, 70), F32)], lambda a: a.argmax(axis=1)),
    "matmul_64": ([((64, 64), F32)] * 2, lambda a, b: a @ b),
    "matmul_256": ([((256, 256), F32)] * 2, lambda a, b: a @ b),
    "matmul_odd": ([((130, 70), F32), ((70, 97), F32)], lambda a, b: a @ b),
    "matmul_tall_k": ([((64, 1024), F32), ((1024, 128), F32)], lambda a, b: a @ b),
    "matmul_bt": ([((128, 96), F32), ((160, 96), F32)], lambda a, b: a @ b.T),
    "matmul_batched": ([((4, 64, 80), F32), ((4, 80, 48), F32)], lambda a, b: a @ b),
    "matmul_bias_gelu": (
        [((128, 96), F32), ((96, 192), F32), ((192,), F32)],
        lambda a, b, c: (a @ b + c).gelu(),
    ),
    "matmul_f16": ([((256, 256), F16)] * 2, lambda a, b: a @ b),
    "matmul_f16_odd": ([((100, 72), F16), ((72, 120), F16)], lambda a, b: a @ b),
    "matmul_f16_batched_bias": (
        [((2, 128, 64), F16), ((64, 96), F16), ((96,), F16)],
        lambda a, b, c: (a @ b + c).relu(),
    ),
    "bf16_elementwise": ([((256, 48), BF16)] * 2, lambda a, b: ((a * b + 1).exp2() + a.float()).bfloat16()),
    "matmul_bf16": ([((256, 256), BF16)] * 2, lambda a, b: a @ b),
    "linear_bf16_odd": (
        [((90, 40), BF16), ((130, 40), BF16), ((130,), BF16)],
        lambda x, w, c: x.linear(w, c).relu(),
    ),
    "conv2d": ([((2, 8, 16, 16), F32), ((16, 8, 3, 3), F32)], lambda x, w: x.conv2d(w, padding=1)),
    "conv2d_stride": ([((1, 3, 33, 33), F32), ((8, 3, 5, 5), F32)], lambda x, w: x.conv2d(w, stride=2)),
    "conv2d_f16": ([((2, 16, 12, 12), F16), ((32, 16, 3, 3), F16)], lambda x, w: x.conv2d(w, padding=1)),
    "conv2d_bf16": ([((2, 16, 12, 12), BF16), ((32, 16, 3, 3), BF16)], lambda x, w: x.conv2d(w, padding=1)),
    "attention": (
        [((1, 4, 32, 16), F32)] * 3,
        lambda q, k, v: q.scaled_dot_product_attention(k, v, is_causal=True),
    ),
    "gpt2_block": ([((1, 32, 64), F32)], _gpt2_block),
}


def inputs(name: str, seed: int = 0) -> list[np.ndarray]:
    """Deterministic numpy inputs of corpus entry name (small values, so float16 sums stay exact-ish)."""
    rng = np.random.default_rng(seed)
    out = []
    for shape, dt in CORPUS[name][0]:
        if np.issubdtype(dt, np.integer):
            out.append(rng.integers(-50, 50, size=shape).astype(dt))
        else:
            out.append((rng.standard_normal(shape) * 0.5).astype(dt))
    return out


def build(name: str, device: str, arrays: list[np.ndarray] | None = None) -> Tensor:
    """The corpus graph name on device, from arrays (default: `inputs(name)`), not yet realized."""
    specs, fn = CORPUS[name]
    arrays = inputs(name) if arrays is None else arrays
    return fn(*[Tensor(a, device=device) for a in arrays])


def gpu_kernels(name: str, family: str) -> list:
    """The corpus graph's kernels as a GPU of family (CUDA, HIP) schedules them, scheduled on the CPU OpenCL
    device and re-targeted (Kernel is plain data): without the fused attention only CPUs get."""
    old = os.environ.get("WB_FUSED_ATTENTION")
    os.environ["WB_FUSED_ATTENTION"] = "0"
    try:
        kernels = build(name, "CL").schedule()
    finally:
        if old is None:
            del os.environ["WB_FUSED_ATTENTION"]
        else:
            os.environ["WB_FUSED_ATTENTION"] = old
    for k in kernels:
        k.device = family
    return kernels


def one_translation_unit(dialect, sources: list[str]) -> str:
    """Many rendered CUDA or HIP kernels as one source (each in its own namespace, the dialect's header
    once), so a compile test pays the compiler's start-up once rather than per kernel."""
    parts = [dialect.header]
    for i, src in enumerate(sources):
        if not src.startswith(dialect.header):
            raise ValueError(f"kernel {i} was not rendered in the {dialect.name} dialect")
        body = src[len(dialect.header):].replace('extern "C" ', "")
        parts.append(f"namespace k{i} {{\n{body}}}\n")
    return "".join(parts)
