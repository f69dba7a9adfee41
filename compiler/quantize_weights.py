"""Weight-only fake quantization of a model (int8 per output channel, int4 group-wise, bfloat16) to
measure what a lower-precision weight format costs in accuracy or perplexity.

Weights are rounded to the format and stored back as float32, so the model runs unchanged; biases,
norms and other 1-d tensors stay in float32, as inference runtimes keep them.
"""

from __future__ import annotations

import numpy as np

from .errors import ShapeError
from .weights import round_to_bfloat16


def fake_quantize(w: np.ndarray, bits: int, group_size: int | None = None) -> np.ndarray:
    """Symmetric round-to-nearest quantization of w to `bits`-bit integers and back.

    The scale is per output channel (row of w reshaped to (rows, -1)), or per `group_size` consecutive
    input weights of a row when group_size is given (int4 formats such as GPTQ/AWQ use 32-128)."""
    if bits < 2 or bits > 16:
        raise ShapeError(f"fake_quantize: bits must be in 2..16, got {bits}")
    w = np.asarray(w, np.float32)
    rows = w.reshape(w.shape[0], -1)
    if group_size is not None:
        if rows.shape[1] % group_size:
            raise ShapeError(f"fake_quantize: row length {rows.shape[1]} is not a multiple of group {group_size}")
        rows = rows.reshape(rows.shape[0], -1, group_size)
    qmax = 2 ** (bits - 1) - 1
    scale = np.abs(rows).max(-1, keepdims=True) / qmax
    scale = np.where(scale == 0, 1.0, scale)
    q = np.clip(np.round(rows / scale), -qmax - 1, qmax)
    return (q * scale).reshape(w.shape).astype(np.float32)


def quantize_state(state: dict, fmt: str, group_size: int = 32) -> dict[str, np.ndarray]:
    """A copy of a state dict with every float weight of 2+ dims in `fmt`: "int8", "int4" or "bfloat16"."""
    out = {}
    for name, v in state.items():
        a = v.numpy() if hasattr(v, "numpy") and not isinstance(v, np.ndarray) else np.asarray(v)
        if a.ndim >= 2 and a.dtype.kind == "f":
            if fmt == "int8":
                a = fake_quantize(a, 8)
            elif fmt == "int4":
                a = fake_quantize(a, 4, group_size if a.reshape(a.shape[0], -1).shape[1] % group_size == 0 else None)
            elif fmt == "bfloat16":
                a = round_to_bfloat16(a)
            else:
                raise ShapeError(f"quantize_state: format {fmt!r} must be int8, int4 or bfloat16")
        out[name] = a
    return out


def weight_bytes(state: dict, fmt: str, group_size: int = 32) -> int:
    """Storage the 2+-d weights would take in fmt (with one float16 scale per channel or group)."""
    total = 0
    for v in state.values():
        shape = tuple(v.shape)
        if len(shape) < 2:
            continue
        n = int(np.prod(shape))
        if fmt == "int8":
            total += n + 2 * shape[0]
        elif fmt == "int4":
            total += n // 2 + 2 * max(1, n // group_size)
        elif fmt == "bfloat16":
            total += 2 * n
        else:
            total += 4 * n
    return total


def compare_formats(model, metric, formats=("int8", "int4", "bfloat16"), group_size: int = 32) -> dict[str, float]:
    """metric(model) with the weights as trained ("float32") and fake-quantized to each format; the
    model's own weights are restored afterwards."""
    original = {k: v.numpy() for k, v in model.state_dict().items()}
    out = {"float32": metric(model)}
    try:
        for fmt in formats:
            model.load_state_dict(quantize_state(original, fmt, group_size))
            out[fmt] = metric(model)
    finally:
        model.load_state_dict(original)
    return out
