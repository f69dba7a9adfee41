"""Quantization ONNX ops (integer types; float8/int4 have no compiler dtype): QuantizeLinear, DequantizeLinear
(per tensor, per axis, blocked), DynamicQuantizeLinear, MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv.
Integer products accumulate in int32, as ONNX defines them."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from compiler.dtypes import dtypes
from compiler.tensor import Tensor

from .ops import NodeCtx, _conv, op
from .types import held_dtype

# quantized ONNX type -> its integer range
RANGES = {TensorProto.UINT8: (0, 255), TensorProto.INT8: (-128, 127), TensorProto.UINT16: (0, 65535),
          TensorProto.INT16: (-32768, 32767)}
_NP_TO_ONNX = {np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int8): TensorProto.INT8,
               np.dtype(np.uint16): TensorProto.UINT16, np.dtype(np.int16): TensorProto.INT16}


def _per_axis(c: NodeCtx, v: Tensor, x: Tensor, axis: int, block: int) -> Tensor:
    """A scale or zero point shaped to broadcast against x: scalar, 1-d along axis, or blocked along axis."""
    if v.ndim == 0 or v.numel() == 1 and not block:
        return v.reshape(())
    a = axis % x.ndim
    if block:
        if v.ndim != x.ndim:
            raise c.fail(f"blocked quantization needs a scale of x's rank {x.ndim}, got shape {v.shape}")
        n = v.shape[a]
        v = v.unsqueeze(a + 1).expand(v.shape[:a + 1] + (block,) + v.shape[a + 1:])
        v = v.reshape(v.shape[:a] + (n * block,) + v.shape[a + 2:])
        return v.shrink([(0, x.shape[a]) if i == a else None for i in range(x.ndim)])
    if v.ndim != 1 or v.shape[0] != x.shape[a]:
        raise c.fail(f"per-axis scale of shape {v.shape} does not fit axis {a} of input {x.shape}")
    return v.reshape(tuple(v.shape[0] if i == a else 1 for i in range(x.ndim)))


def _round_even(x: Tensor) -> Tensor:
    f = x.floor()
    d = x - f
    return ((d > 0.5) | ((d == 0.5) & ((f * 0.5).floor() * 2 != f))).where(f + 1, f)


def _quant_type(c: NodeCtx, zp_index: int) -> int:
    """The ONNX type a QuantizeLinear produces: output_dtype, else the zero point's type, else uint8."""
    to = c.attr("output_dtype", 0)
    if not to and c.has(zp_index):
        v = c.ins[zp_index]
        if isinstance(v, np.ndarray):
            to = _NP_TO_ONNX.get(v.dtype, 0)
        elif v.dtype in (dtypes.uint8, dtypes.int8):
            to = TensorProto.UINT8 if v.dtype == dtypes.uint8 else TensorProto.INT8
        else:
            raise c.fail("a 16-bit zero point given at run time (give it as an initializer, or set output_dtype)")
    to = to or TensorProto.UINT8
    if to not in RANGES:
        raise c.fail(f"quantized type {TensorProto.DataType.Name(to)} is not supported (uint8, int8, uint16, int16)")
    return to


def quantize(x: Tensor, scale: Tensor, zp: Tensor | None, to: int) -> Tensor:
    """saturate(round_half_even(x / scale) + zero_point) in the integer type `to` (held as its compiler dtype)."""
    lo, hi = RANGES[to]
    q = _round_even(x.float() / scale.float())
    if zp is not None:
        q = q + zp.float()
    return q.clip(float(lo), float(hi)).cast(held_dtype(to, "quantized type"))


@op("QuantizeLinear", since=10)
def _quantize(c):
    x = c.t(0)
    axis, block = int(c.attr("axis", 1)), int(c.attr("block_size", 0))
    to = _quant_type(c, 2)
    zp = _per_axis(c, c.t(2), x, axis, block) if c.has(2) else None
    return quantize(x, _per_axis(c, c.t(1), x, axis, block), zp, to)


@op("DequantizeLinear", since=10)
def _dequantize(c):
    x = c.t(0)
    axis, block = int(c.attr("axis", 1)), int(c.attr("block_size", 0))
    scale = _per_axis(c, c.t(1), x, axis, block)
    dx = x.cast(dtypes.int32)
    if c.has(2):
        dx = dx - _per_axis(c, c.t(2), x, axis, block).cast(dtypes.int32)
    return dx.float() * scale.float() if scale.dtype != dtypes.float16 else (dx.float() * scale.float()).half()


@op("DynamicQuantizeLinear", since=11)
def _dyn_quantize(c):
    x = c.t(0).float()
    lo, hi = x.min().minimum(0.0), x.max().maximum(0.0)
    scale = (hi - lo) / 255.0
    zp = _round_even(-lo / scale).clip(0.0, 255.0)
    return [quantize(x, scale, zp, TensorProto.UINT8), scale, zp.cast(dtypes.uint8)]


def _centered(c: NodeCtx, i: int, zp_i: int, axis: int | None = None) -> Tensor:
    """Input i minus its zero point (input zp_i, scalar or per row/column), in int32."""
    v = c.t(i).cast(dtypes.int32)
    if not c.has(zp_i):
        return v
    zp = c.t(zp_i).cast(dtypes.int32)
    if zp.numel() == 1:
        return v - zp.reshape(())
    shape = [1] * v.ndim
    shape[axis] = zp.numel()
    return v - zp.reshape(tuple(shape))


@op("MatMulInteger", since=10)
def _matmul_integer(c):
    a = _centered(c, 0, 2, axis=-2)
    b = _centered(c, 1, 3, axis=-1)
    return a.matmul(b)


@op("ConvInteger", since=10)
def _conv_integer(c):
    x, w = _centered(c, 0, 2), _centered(c, 1, 3, axis=0)
    return _conv(_Shim(c, [x, w]))


class _Shim(NodeCtx):
    """The node's own attributes with replaced inputs, so the Conv handler runs on dequantized values."""

    def __init__(self, c: NodeCtx, ins: list):  # noqa: D107 - deliberately skips NodeCtx.__init__
        self.__dict__.update(c.__dict__)
        self.ins = ins


@op("QLinearMatMul", since=10)
def _qlinear_matmul(c):
    a = (_centered(c, 0, 2, axis=-2).float() * c.t(1).float().reshape(-1, 1) if c.t(1).numel() > 1
         else _centered(c, 0, 2, axis=-2).float() * c.t(1).float().reshape(()))
    bs = c.t(4).float()
    b = _centered(c, 3, 5, axis=-1).float() * (bs.reshape(1, -1) if bs.numel() > 1 else bs.reshape(()))
    return quantize(a.matmul(b), c.t(6).reshape(()) if c.t(6).numel() == 1 else c.t(6), c.t(7).reshape(())
                    if c.has(7) else None, _quant_type(c, 7))


@op("QLinearConv", since=10)
def _qlinear_conv(c):
    x = _centered(c, 0, 2).float() * c.t(1).float().reshape(())
    ws = c.t(4).float()
    w = _centered(c, 3, 5, axis=0).float() * (ws.reshape((-1,) + (1,) * (c.t(3).ndim - 1)) if ws.numel() > 1
                                              else ws.reshape(()))
    ins = [x, w]
    if c.has(8):  # the int32 bias is quantized at x_scale * w_scale
        ins.append(c.t(8).float() * (c.t(1).float().reshape(()) * ws.reshape(-1)))
    y = _conv(_Shim(c, ins))
    return quantize(y, c.t(6).reshape(()), c.t(7).reshape(()) if c.has(7) else None, _quant_type(c, 7))
