"""The op table: ONNX op_type -> handler (by the opset version its semantics date from), each built from the
compiler's Tensor methods so it runs on every device and fuses like hand-written code."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from onnx import helper

from compiler.dtypes import dtypes
from compiler.tensor import Tensor

from .errors import OnnxImportError
from .types import held_array, held_dtype

# host values (initializers, Constant, Shape...) at most this many elements are shape arithmetic: a node whose
# inputs are all such values is evaluated at once on REF and its outputs stay host arrays
HOST_MAX = 64

Handler = Callable[["NodeCtx"], Any]
# op_type -> [(since_version, handler)], newest first
HANDLERS: dict[str, list[tuple[int, Handler]]] = {}


def op(*names: str, since: int = 1):
    """Register a handler for op types `names` from opset `since` on."""
    def deco(fn: Handler) -> Handler:
        for n in names:
            HANDLERS.setdefault(n, []).append((since, fn))
            HANDLERS[n].sort(key=lambda p: -p[0])
        return fn
    return deco


def handler_for(op_type: str, opset: int, node_name: str = "") -> Handler:
    """The handler of op_type at opset, or OnnxImportError naming the op, node and opset."""
    for since, fn in HANDLERS.get(op_type, []):
        if since <= opset:
            return fn
    raise OnnxImportError(f"node {node_name or '(unnamed)'}: ONNX op {op_type} (opset {opset}) is not supported by"
                          f" the importer; supported ops: docs/onnx.md or compiler.onnx.supported_ops()")


def supported_ops() -> list[str]:
    """The ONNX op types the importer handles."""
    return sorted(HANDLERS)


class NodeCtx:
    """One node being run: its attributes and inputs, as device Tensors (`t`) or host arrays (`host`)."""

    def __init__(self, node, ins: list, opset: int, device: str | None, env: dict, run_graph: Callable):
        self.node, self.ins, self.opset, self.device, self.env = node, ins, opset, device, env
        self.run_graph = run_graph  # runs a subgraph (If branches): model.run_nodes, passed in to avoid a cycle
        self._attrs = {a.name: a for a in node.attribute}

    @property
    def name(self) -> str:
        return self.node.name or self.node.op_type

    def attr(self, name: str, default: Any = None) -> Any:
        a = self._attrs.get(name)
        if a is None:
            return default
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            return v.decode()
        if hasattr(v, "dims") and hasattr(v, "data_type"):  # a TensorProto attribute
            from onnx import numpy_helper
            return numpy_helper.to_array(v)
        return v

    def has(self, i: int) -> bool:
        return i < len(self.ins) and self.ins[i] is not None

    def t(self, i: int) -> Tensor:
        v = self.ins[i]
        if isinstance(v, Tensor):
            return v if self.device is None or v.device == _canon(self.device) else v.to(self.device)
        arr, dt = held_array(v, f"node {self.name} input {i}")
        return Tensor(arr, device=self.device, dtype=dt)

    def host(self, i: int) -> np.ndarray:
        v = self.ins[i]
        return v.numpy() if isinstance(v, Tensor) else np.asarray(v)

    def ints(self, i: int) -> list[int]:
        return [int(x) for x in self.host(i).reshape(-1)]

    def fail(self, why: str) -> OnnxImportError:
        return OnnxImportError(f"node {self.name} ({self.node.op_type}, opset {self.opset}): {why}")


@functools.lru_cache(maxsize=64)
def _canon(device: str) -> str:
    from compiler.device import canonicalize
    return canonicalize(device)  # memoized: it enumerates the OpenCL devices, and runs once per node input


def _f(x: Tensor) -> Tensor:
    return x if x.dtype.is_float else x.float()


# --- elementwise ---------------------------------------------------------------------------------------
def _unary(name: str, fn: Callable[[Tensor], Tensor], since: int = 1) -> None:
    op(name, since=since)(lambda c: fn(c.t(0)))


_erf_p, _erf_a = 0.3275911, (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(x: Tensor) -> Tensor:
    """erf by Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7), from exp and arithmetic."""
    x = _f(x)
    a = x.abs()
    t = 1.0 / (1.0 + _erf_p * a)
    poly = t * (_erf_a[0] + t * (_erf_a[1] + t * (_erf_a[2] + t * (_erf_a[3] + t * _erf_a[4]))))
    y = 1.0 - poly * (-(a * a)).exp()
    return x.sign() * y


def _round_even(x: Tensor) -> Tensor:
    f = x.floor()
    d = x - f
    half_up = (d > 0.5) | ((d == 0.5) & ((f * 0.5).floor() * 2 != f))
    return half_up.where(f + 1, f)


def _isinf(c: NodeCtx) -> Tensor:
    x = _f(c.t(0))
    pos, neg = x == math.inf, x == -math.inf
    dp, dn = int(c.attr("detect_positive", 1)), int(c.attr("detect_negative", 1))
    if dp and dn:
        return pos | neg
    return pos if dp else neg if dn else x != x.abs() * 0 + x  # neither: all False (x != x is NaN only)


for _n, _fn in {
    "Abs": Tensor.abs, "Neg": Tensor.neg, "Exp": lambda x: _f(x).exp(), "Log": lambda x: _f(x).log(),
    "Sqrt": lambda x: _f(x).sqrt(), "Reciprocal": lambda x: _f(x).reciprocal(), "Sigmoid": lambda x: _f(x).sigmoid(),
    "Tanh": lambda x: _f(x).tanh(), "Relu": Tensor.relu, "Floor": Tensor.floor, "Ceil": Tensor.ceil,
    "Sin": lambda x: _f(x).sin(), "Cos": lambda x: _f(x).cos(), "Tan": lambda x: _f(x).tan(),
    "Sign": Tensor.sign, "Erf": erf, "Round": _round_even, "Identity": lambda x: x,
    "Not": Tensor.logical_not, "IsNaN": lambda x: x != x, "BitwiseNot": lambda x: ~x,
    "Softsign": lambda x: x / (1 + x.abs()),
    "Softplus": lambda x: (x.relu() + (1 + (-x.abs()).exp()).log()),
    "Sinh": lambda x: ((x.exp() - (-x).exp()) * 0.5), "Cosh": lambda x: ((x.exp() + (-x).exp()) * 0.5),
    "Asinh": lambda x: (x + (x * x + 1).sqrt()).log(), "Acosh": lambda x: (x + (x * x - 1).sqrt()).log(),
    "Atanh": lambda x: ((1 + x) / (1 - x)).log() * 0.5,
    "Mish": lambda x: x * (x.relu() + (1 + (-x.abs()).exp()).log()).tanh(),
}.items():
    _unary(_n, _fn)
op("IsInf")(_isinf)


@op("Gelu", since=20)
def _gelu(c: NodeCtx) -> Tensor:
    x = _f(c.t(0))
    if c.attr("approximate", "none") == "tanh":
        return 0.5 * x * (1 + (math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)).tanh())
    return 0.5 * x * (1 + erf(x * (1 / math.sqrt(2))))


@op("Swish")
def _swish(c):
    x = _f(c.t(0))
    return x * (x * c.attr("alpha", 1.0)).sigmoid()


@op("Elu")
def _elu(c):
    x, a = c.t(0), c.attr("alpha", 1.0)
    return (x > 0).where(x, a * (x.exp() - 1))


@op("Celu", since=12)
def _celu(c):
    x, a = c.t(0), c.attr("alpha", 1.0)
    return x.relu() + ((x / a).exp() - 1).minimum(0) * a


@op("Selu")
def _selu(c):
    x, a, g = c.t(0), c.attr("alpha", 1.67326319217681884765625), c.attr("gamma", 1.05070102214813232421875)
    return g * (x > 0).where(x, a * (x.exp() - 1))


@op("LeakyRelu")
def _leaky(c):
    x = c.t(0)
    return (x >= 0).where(x, x * c.attr("alpha", 0.01))


@op("PRelu")
def _prelu(c):
    x, s = c.t(0), c.t(1)
    return (x >= 0).where(x, x * s)


@op("ThresholdedRelu", since=10)
def _trelu(c):
    x = c.t(0)
    return (x > c.attr("alpha", 1.0)).where(x, 0.0)


@op("HardSigmoid")
def _hsig(c):
    x = c.t(0)
    return (x * c.attr("alpha", 0.2) + c.attr("beta", 0.5)).clip(0.0, 1.0)


@op("HardSwish", since=14)
def _hswish(c):
    x = c.t(0)
    return x * (x * (1 / 6) + 0.5).clip(0.0, 1.0)


@op("Shrink", since=9)
def _shrink(c):
    x, lam, bias = c.t(0), c.attr("lambd", 0.5), c.attr("bias", 0.0)
    return (x < -lam).where(x + bias, (x > lam).where(x - bias, 0)).cast(x.dtype)


@op("Clip", since=1)
def _clip6(c):
    return c.t(0).clip(c.attr("min", -3.4028234663852886e38), c.attr("max", 3.4028234663852886e38))


@op("Clip", since=11)
def _clip11(c):
    x = c.t(0)
    if c.has(1):
        x = x.maximum(c.t(1).cast(x.dtype))
    if c.has(2):
        x = x.minimum(c.t(2).cast(x.dtype))
    return x


def _binary(name: str, fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    op(name)(lambda c: fn(c.t(0), c.t(1)))


def _div(a: Tensor, b: Tensor) -> Tensor:
    if a.dtype.is_int and b.dtype.is_int:  # ONNX integer Div truncates toward zero, like C
        return (a.float() / b.float()).trunc().cast(a.dtype)
    return a / b


def _pow(a: Tensor, b: Tensor) -> Tensor:
    out = _f(a).pow(_f(b)) if not (b.dtype.is_int and a.dtype.is_int) else a.pow(b)
    return out.cast(a.dtype)


for _n, _fn in {
    "Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b, "Div": _div,
    "Pow": _pow, "Equal": lambda a, b: a == b, "Less": lambda a, b: a < b, "Greater": lambda a, b: a > b,
    "LessOrEqual": lambda a, b: a <= b, "GreaterOrEqual": lambda a, b: a >= b,
    "And": lambda a, b: a & b, "Or": lambda a, b: a | b, "Xor": lambda a, b: a ^ b,
    "BitwiseAnd": lambda a, b: a & b, "BitwiseOr": lambda a, b: a | b, "BitwiseXor": lambda a, b: a ^ b,
}.items():
    _binary(_n, _fn)


@op("Mod", since=10)
def _mod(c):
    a, b = c.t(0), c.t(1)
    if c.attr("fmod", 0):  # C fmod: the sign of the dividend
        if a.dtype.is_float:  # fmod(x, +-inf) = x
            return (b.abs() == math.inf).where(a, a - (a / b).trunc() * b)
        return a - (a.float() / b.float()).trunc().cast(a.dtype) * b
    return a % b


@op("BitShift", since=11)
def _bitshift(c):
    a, b = c.t(0), c.t(1)
    return a << b if c.attr("direction") == "LEFT" else a >> b


def _variadic(name: str, fn: Callable[[Tensor, Tensor], Tensor], mean: bool = False) -> None:
    def h(c):
        ts = [c.t(i) for i in range(len(c.ins)) if c.has(i)]
        out = ts[0]
        for t in ts[1:]:
            out = fn(out, t)
        return out / len(ts) if mean else out
    op(name)(h)


_variadic("Sum", lambda a, b: a + b)
_variadic("Mean", lambda a, b: a + b, mean=True)
_variadic("Max", lambda a, b: a.maximum(b))
_variadic("Min", lambda a, b: a.minimum(b))


@op("Where", since=9)
def _where(c):
    return c.t(0).where(c.t(1), c.t(2))


# --- casts and constants --------------------------------------------------------------------------------
@op("Cast")
def _cast(c):
    to = c.attr("to")
    dt = held_dtype(to, f"node {c.name} Cast to")
    x = c.t(0)
    if x.dtype.is_float and dt.is_int:  # float -> int truncates toward zero (C semantics)
        x = x.trunc()
    return x.cast(dt)


@op("CastLike", since=15)
def _castlike(c):
    x, like = c.t(0), c.t(1)
    return (x.trunc() if x.dtype.is_float and like.dtype.is_int else x).cast(like.dtype)


@op("Constant")
def _constant(c):
    for key in ("value", "value_float", "value_int", "value_floats", "value_ints"):
        v = c.attr(key)
        if v is not None:
            arr = np.asarray(v, dtype=np.float32 if "float" in key else np.int64 if "int" in key else None)
            return arr
    raise c.fail("Constant has no supported value attribute (value, value_float(s), value_int(s))")


@op("ConstantOfShape", since=9)
def _const_of_shape(c):
    shape = tuple(c.ints(0))
    v = c.attr("value")
    v = np.zeros(1, np.float32) if v is None else np.asarray(v)
    arr, dt = held_array(v.reshape(-1)[:1], f"node {c.name} value")
    if math.prod(shape) <= HOST_MAX:
        return np.full(shape, v.reshape(-1)[0], dtype=v.dtype)
    return Tensor.full(shape, arr[0].item(), dtype=dt, device=c.device)


@op("Shape")
def _shape(c):
    s = np.asarray(_shape_of(c.ins[0]), dtype=np.int64)
    if c.opset >= 15:
        n = len(s)
        start, end = int(c.attr("start", 0)), c.attr("end", None)
        return s[start if start >= 0 else max(start + n, 0): n if end is None else int(end)]
    return s


def _shape_of(v) -> tuple:
    return tuple(v.shape)


@op("Size")
def _size(c):
    return np.asarray(math.prod(_shape_of(c.ins[0])), dtype=np.int64)


@op("Range", since=11)
def _range(c):
    start, limit, delta = (c.host(i).item() for i in range(3))
    n = max(int(math.ceil((limit - start) / delta)), 0)
    out = start + np.arange(n) * delta
    return out.astype(c.host(0).dtype)


@op("EyeLike", since=9)
def _eyelike(c):
    shape = _shape_of(c.ins[0])
    k = int(c.attr("k", 0))
    dt = c.attr("dtype")
    arr = np.eye(shape[0], shape[1], k=k)
    held, d = held_array(arr.astype(np.float32) if dt is None and not isinstance(c.ins[0], np.ndarray) else arr, "")
    t = Tensor(held, device=c.device, dtype=d)
    return t.cast(held_dtype(dt, "EyeLike dtype") if dt is not None else c.t(0).dtype)


# --- shape ops ----------------------------------------------------------------------------------------
@op("Reshape", since=5)
def _reshape(c):
    x = c.t(0)
    shape = c.ints(1)
    if not c.attr("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        shape[shape.index(-1)] = x.numel() // known if known else 0
    return x.reshape(tuple(shape))


@op("Flatten")
def _flatten(c):
    x = c.t(0)
    a = int(c.attr("axis", 1))
    a = a + x.ndim if a < 0 else a
    return x.reshape(math.prod(x.shape[:a]), math.prod(x.shape[a:]))


def _axes_arg(c: NodeCtx, input_since: int, i: int = 1) -> list[int] | None:
    if c.opset >= input_since:
        return c.ints(i) if c.has(i) else None
    a = c.attr("axes")
    return list(a) if a is not None else None


@op("Squeeze")
def _squeeze(c):
    x = c.t(0)
    axes = _axes_arg(c, 13)
    if axes is None:
        return x.reshape(tuple(s for s in x.shape if s != 1))
    axes = {a + x.ndim if a < 0 else a for a in axes}
    return x.reshape(tuple(s for i, s in enumerate(x.shape) if i not in axes))


@op("Unsqueeze")
def _unsqueeze(c):
    x = c.t(0)
    axes = _axes_arg(c, 13)
    n = x.ndim + len(axes)
    axes = sorted(a + n if a < 0 else a for a in axes)
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return x.reshape(tuple(shape))


@op("Transpose")
def _transpose(c):
    x = c.t(0)
    perm = c.attr("perm")
    return x.permute(tuple(perm) if perm is not None else tuple(reversed(range(x.ndim))))


@op("Concat", since=4)
def _concat(c):
    ts = [c.t(i) for i in range(len(c.ins)) if c.has(i)]
    ts = [t for t in ts if t.numel() or len(ts) == 1] or ts[:1]
    return Tensor.cat(ts, axis=int(c.attr("axis")))


@op("Split", since=2)
def _split(c):
    x = c.t(0)
    a = int(c.attr("axis", 0))
    a = a + x.ndim if a < 0 else a
    if c.opset >= 13:
        split = c.ints(1) if c.has(1) else None
    else:
        split = c.attr("split")
    n_out = len(c.node.output)
    if not split:
        size = x.shape[a]
        per = -(-size // n_out) if c.opset >= 18 else size // n_out
        split = [min(per, size - i * per) for i in range(n_out)]
    outs, off = [], 0
    for s in split:
        outs.append(x.shrink([(off, off + s) if i == a else None for i in range(x.ndim)]))
        off += s
    return outs


def _slice(x: Tensor, starts, ends, axes, steps) -> Tensor:
    idx = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        a = a + x.ndim if a < 0 else a
        n = x.shape[a]
        s = max(min(s, n), -n - 1) if st > 0 or True else s
        e = max(min(e, n), -n - 1)
        if st < 0:
            s = s + n if s < 0 else min(s, n - 1)
            e = e + n if e < 0 else e
            idx[a] = slice(s, e if e >= 0 else None, st)
        else:
            idx[a] = slice(s, e, st)
    return x[tuple(idx)]


@op("Slice", since=1)
def _slice1(c):
    x = c.t(0)
    starts, ends = c.attr("starts"), c.attr("ends")
    axes = c.attr("axes") or list(range(len(starts)))
    return _slice(x, starts, ends, axes, [1] * len(starts))


@op("Slice", since=10)
def _slice10(c):
    x = c.t(0)
    starts, ends = c.ints(1), c.ints(2)
    axes = c.ints(3) if c.has(3) else list(range(len(starts)))
    steps = c.ints(4) if c.has(4) else [1] * len(starts)
    return _slice(x, starts, ends, axes, steps)


@op("Gather")
def _gather(c):
    x = c.t(0)
    a = int(c.attr("axis", 0))
    idx = c.ins[1]
    if isinstance(idx, np.ndarray) and idx.ndim == 0 and not isinstance(c.ins[0], np.ndarray):
        i = int(idx)
        return x[(slice(None),) * (a % x.ndim) + (i,)]
    return x.take(c.t(1), axis=a)


@op("GatherElements", since=11)
def _gather_el(c):
    x, idx = c.t(0), c.t(1)
    a = int(c.attr("axis", 0))
    a = a + x.ndim if a < 0 else a
    idx = (idx < 0).where(idx + x.shape[a], idx)
    return x.gather(a, idx)


@op("Expand", since=8)
def _expand(c):
    x = c.t(0)
    shape = c.ints(1)
    n = max(len(shape), x.ndim)
    cur = (1,) * (n - x.ndim) + x.shape
    shape = [1] * (n - len(shape)) + shape
    out = tuple(s if s != 1 else cc for s, cc in zip(shape, cur, strict=True))
    return x.reshape(cur).expand(out)


@op("Tile", since=6)
def _tile(c):
    x = c.t(0)
    reps = c.ints(1)
    # broadcast a new axis before each one, then merge: (r0, s0, r1, s1, ...) -> (r0*s0, ...)
    y = x.reshape(tuple(v for s in x.shape for v in (1, s)))
    y = y.expand(tuple(v for r, s in zip(reps, x.shape, strict=True) for v in (r, s)))
    return y.reshape(tuple(r * s for r, s in zip(reps, x.shape, strict=True)))


@op("Pad", since=2)
def _pad2(c):
    return _pad(c, c.attr("pads"), c.attr("value", 0.0), None)


@op("Pad", since=11)
def _pad11(c):
    pads = c.ints(1)
    value = c.host(2).item() if c.has(2) else 0
    axes = c.ints(3) if c.has(3) else None
    return _pad(c, pads, value, axes)


def _pad(c: NodeCtx, pads, value, axes) -> Tensor:
    x = c.t(0)
    nd = x.ndim
    axes = [a + nd if a < 0 else a for a in axes] if axes is not None else list(range(nd))
    k = len(axes)
    before, after = [0] * nd, [0] * nd
    for j, a in enumerate(axes):
        before[a], after[a] = pads[j], pads[j + k]
    mode = c.attr("mode", "constant")
    if mode == "constant":
        # negative pads crop
        x = x.shrink([(max(-b, 0), s - max(-e, 0)) for b, e, s in zip(before, after, x.shape, strict=True)])
        return x.pad([(max(b, 0), max(e, 0)) for b, e in zip(before, after, strict=True)], value=value)
    for a in range(nd):
        b, e = before[a], after[a]
        if not b and not e:
            continue
        n = x.shape[a]
        if mode == "edge":
            idx = np.clip(np.arange(-b, n + e), 0, n - 1)
        elif mode == "reflect":
            idx = np.abs(np.arange(-b, n + e))
            idx = np.where(idx >= n, 2 * (n - 1) - idx, idx)
        elif mode == "wrap":
            idx = np.arange(-b, n + e) % n
        else:
            raise c.fail(f"pad mode {mode!r} is not supported (constant, reflect, edge, wrap)")
        x = x.take(idx.astype(np.int32), axis=a)
    return x


@op("DepthToSpace", since=1)
def _d2s(c):
    x = c.t(0)
    b = int(c.attr("blocksize"))
    n, ch, h, w = x.shape
    if c.attr("mode", "DCR") == "DCR":
        y = x.reshape(n, b, b, ch // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, ch // (b * b), b, b, h, w).permute(0, 1, 4, 2, 5, 3)
    return y.reshape(n, ch // (b * b), h * b, w * b)


@op("SpaceToDepth", since=1)
def _s2d(c):
    x = c.t(0)
    b = int(c.attr("blocksize"))
    n, ch, h, w = x.shape
    order = (0, 1, 3, 5, 2, 4) if c.attr("mode", "DCR") == "CRD" else (0, 3, 5, 1, 2, 4)
    y = x.reshape(n, ch, h // b, b, w // b, b).permute(order)
    return y.reshape(n, ch * b * b, h // b, w // b)


@op("Trilu", since=14)
def _trilu(c):
    x = c.t(0)
    k = c.host(1).item() if c.has(1) else 0
    r, cc = x.shape[-2], x.shape[-1]
    rows = np.arange(r).reshape(r, 1)
    cols = np.arange(cc).reshape(1, cc)
    keep = (cols - rows >= k) if c.attr("upper", 1) else (cols - rows <= k)
    return Tensor(keep, device=c.device).where(x, Tensor.zeros(1, dtype=x.dtype, device=c.device).reshape(()))


@op("CumSum", since=11)
def _cumsum(c):
    x = c.t(0)
    a = int(c.host(1).item())
    a = a + x.ndim if a < 0 else a
    if c.attr("reverse", 0):
        x = x.flip(a)
    out = x.cumsum(a)
    if c.attr("exclusive", 0):
        out = out - x
    if c.attr("reverse", 0):
        out = out.flip(a)
    return out.cast(x.dtype)


@op("OneHot", since=9)
def _onehot(c):
    idx = c.t(0)
    depth = int(c.host(1).reshape(-1)[0])
    values = c.t(2)
    a = int(c.attr("axis", -1))
    nd = idx.ndim + 1
    a = a + nd if a < 0 else a
    idx = idx.cast(dtypes.int32) if idx.dtype.is_int else idx.trunc().cast(dtypes.int32)
    idx = (idx < 0).where(idx + depth, idx)
    shape = [1] * nd
    shape[a] = depth
    rng = Tensor.arange(depth, device=c.device).reshape(tuple(shape))
    hot = idx.unsqueeze(a) == rng
    return hot.where(values[1], values[0])


# --- reductions ----------------------------------------------------------------------------------------
def _reduce_axes(c: NodeCtx, x: Tensor, input_since: int):
    axes = _axes_arg(c, input_since)
    if axes is None or len(axes) == 0:
        if c.opset >= input_since and c.attr("noop_with_empty_axes", 0):
            return None, True
        return tuple(range(x.ndim)), False
    return tuple(a + x.ndim if a < 0 else a for a in axes), False


def _reducer(name: str, fn: Callable[[Tensor, tuple, bool], Tensor], input_since: int = 18) -> None:
    def h(c):
        x = c.t(0)
        axes, noop = _reduce_axes(c, x, input_since)
        if noop:
            return x
        keep = bool(c.attr("keepdims", 1))
        if x.numel() == 0:
            return _empty_reduce(name, x, axes, keep, c)
        return fn(x, axes, keep)
    op(name)(h)


def _empty_reduce(name: str, x: Tensor, axes: tuple, keep: bool, c: NodeCtx) -> Tensor:
    shape = tuple(1 if i in axes else s for i, s in enumerate(x.shape)) if keep else tuple(
        s for i, s in enumerate(x.shape) if i not in axes)
    fill = {"ReduceSum": 0, "ReduceSumSquare": 0, "ReduceL1": 0, "ReduceL2": 0, "ReduceProd": 1,
            "ReduceLogSumExp": -math.inf, "ReduceLogSum": -math.inf, "ReduceMax": x.dtype.min,
            "ReduceMin": -x.dtype.min if x.dtype.is_float else np.iinfo(x.dtype.np).max}.get(name)
    if fill is None:
        raise c.fail("reduction over an empty tensor")
    return Tensor.full(shape, fill, dtype=x.dtype, device=c.device)


def _prod(x: Tensor, axes: tuple, keep: bool) -> Tensor:
    # product as exp(sum(log|x|)) with the sign and zeros tracked separately
    if x.dtype.is_int:
        out = x
        for a in sorted(axes, reverse=True):
            n = out.shape[a]
            acc = out.shrink([(0, 1) if i == a else None for i in range(out.ndim)])
            for j in range(1, n):
                acc = acc * out.shrink([(j, j + 1) if i == a else None for i in range(out.ndim)])
            out = acc if keep else acc.squeeze(a)
        return out
    mag = x.abs().log().sum(axes, keepdim=keep).exp()
    neg = (x < 0).cast(dtypes.int32).sum(axes, keepdim=keep) % 2
    zero = (x == 0).cast(dtypes.int32).sum(axes, keepdim=keep) > 0
    return zero.where(0.0, (neg == 1).where(-mag, mag))


_reducer("ReduceSum", lambda x, a, k: x.sum(a, keepdim=k).cast(x.dtype), input_since=13)
_reducer("ReduceMean", lambda x, a, k: _f(x).mean(a, keepdim=k).cast(x.dtype))
_reducer("ReduceMax", lambda x, a, k: x.max(a, keepdim=k))
_reducer("ReduceMin", lambda x, a, k: x.min(a, keepdim=k))
_reducer("ReduceProd", _prod)
_reducer("ReduceL1", lambda x, a, k: x.abs().sum(a, keepdim=k).cast(x.dtype))
_reducer("ReduceL2", lambda x, a, k: (_f(x) * _f(x)).sum(a, keepdim=k).sqrt().cast(x.dtype))
_reducer("ReduceSumSquare", lambda x, a, k: (x * x).sum(a, keepdim=k).cast(x.dtype))
_reducer("ReduceLogSum", lambda x, a, k: _f(x).sum(a, keepdim=k).log())
_reducer("ReduceLogSumExp", lambda x, a, k: _f(x).logsumexp(a, keepdim=k).cast(x.dtype))


def _argext(largest: bool):
    def h(c):
        x = c.t(0)
        a = int(c.attr("axis", 0))
        a = a + x.ndim if a < 0 else a
        keep = bool(c.attr("keepdims", 1))
        if c.attr("select_last_index", 0):
            n = x.shape[a]
            r = (x.flip(a).argmax(a, keepdim=keep) if largest else x.flip(a).argmin(a, keepdim=keep))
            return (n - 1) - r
        return x.argmax(a, keepdim=keep) if largest else x.argmin(a, keepdim=keep)
    return h


op("ArgMax")(_argext(True))
op("ArgMin")(_argext(False))


# --- softmax family -----------------------------------------------------------------------------------
def _softmax_like(kind: str):
    def h(c):
        x = _f(c.t(0))
        if c.opset >= 13:
            a = int(c.attr("axis", -1))
            return _apply_soft(kind, x, a)
        a = int(c.attr("axis", 1))
        a = a + x.ndim if a < 0 else a
        flat = x.reshape(math.prod(x.shape[:a]), math.prod(x.shape[a:]))
        return _apply_soft(kind, flat, -1).reshape(x.shape)
    return h


def _apply_soft(kind: str, x: Tensor, a: int) -> Tensor:
    if kind == "softmax":
        return x.softmax(a)
    if kind == "log_softmax":
        return x.log_softmax(a)
    a = a + x.ndim if a < 0 else a  # hardmax: one-hot of the first maximum
    idx = x.argmax(a, keepdim=True)
    shape = [1] * x.ndim
    shape[a] = x.shape[a]
    return (idx == Tensor.arange(x.shape[a], device=x.device).reshape(tuple(shape))).cast(x.dtype)


for _n, _k in (("Softmax", "softmax"), ("LogSoftmax", "log_softmax"), ("Hardmax", "hardmax")):
    op(_n)(_softmax_like(_k))


# --- linear algebra and NN ------------------------------------------------------------------------------
@op("MatMul")
def _matmul(c):
    return c.t(0).matmul(c.t(1))


@op("Gemm")
def _gemm(c):
    a, b = c.t(0), c.t(1)
    if c.attr("transA", 0):
        a = a.T
    if c.attr("transB", 0):
        b = b.T
    out = a.matmul(b)
    alpha, beta = c.attr("alpha", 1.0), c.attr("beta", 1.0)
    if alpha != 1.0:
        out = out * alpha
    if c.has(2):
        out = out + (c.t(2) * beta if beta != 1.0 else c.t(2))
    return out


def _spatial_pads(c: NodeCtx, in_sp: tuple, kernel: tuple, strides: tuple, dil: tuple) -> list[tuple[int, int]]:
    auto = c.attr("auto_pad", "NOTSET")
    nd = len(in_sp)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for i in range(nd):
            o = -(-in_sp[i] // strides[i])
            total = max((o - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - in_sp[i], 0)
            lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
            out.append((lo, total - lo))
        return out
    if auto == "VALID":
        return [(0, 0)] * nd
    pads = c.attr("pads") or [0] * (2 * nd)
    return [(pads[i], pads[i + nd]) for i in range(nd)]


@op("Conv")
def _conv(c):
    x, w = c.t(0), c.t(1)
    nd = x.ndim - 2
    if nd not in (1, 2):
        raise c.fail(f"{nd}-d convolution is not supported (1-d and 2-d are)")
    kernel = w.shape[2:]
    strides = tuple(c.attr("strides") or [1] * nd)
    dil = tuple(c.attr("dilations") or [1] * nd)
    pads = _spatial_pads(c, x.shape[2:], kernel, strides, dil)
    if nd == 1:
        x, w = x.unsqueeze(2), w.unsqueeze(2)
        strides, dil, pads = (1, *strides), (1, *dil), [(0, 0), *pads]
    x = x.pad([(0, 0), (0, 0), *pads])
    out = x.conv2d(w.cast(x.dtype), c.t(2) if c.has(2) else None, stride=strides, padding=0, dilation=dil,
                   groups=int(c.attr("group", 1)))
    return out.squeeze(2) if nd == 1 else out


def _pool(c: NodeCtx, kind: str, each: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """Max, average or sum pooling; `each` maps the window values before a sum (on the windows, a view of
    the padded input, so it fuses into the pooling kernel)."""
    x = c.t(0)
    kernel = tuple(c.attr("kernel_shape"))
    nd = len(kernel)
    strides = tuple(c.attr("strides") or [1] * nd)
    dil = tuple(c.attr("dilations") or [1] * nd)
    pads = _spatial_pads(c, x.shape[2:], kernel, strides, dil)
    if c.attr("ceil_mode", 0):  # extra trailing padding so the last partial window counts
        new = []
        for i, (lo, hi) in enumerate(pads):
            eff = (kernel[i] - 1) * dil[i] + 1
            span = x.shape[2 + i] + lo + hi - eff
            o = -(-span // strides[i]) + 1
            if (o - 1) * strides[i] >= x.shape[2 + i] + lo:
                o -= 1
            need = (o - 1) * strides[i] + eff - (x.shape[2 + i] + lo + hi)
            new.append((lo, hi + max(need, 0)))
        extra = [(0, n[1] - p[1]) for n, p in zip(new, pads, strict=True)]
    else:
        new, extra = pads, [(0, 0)] * nd
    lead = [(0, 0)] * (x.ndim - nd)
    if kind == "max":
        xp = x.pad(lead + new, value=x.dtype.min)
        win = xp._pool(kernel, strides, dil)
        out = win.max(tuple(range(-nd, 0)))
        if len(c.node.output) < 2 or not c.node.output[1]:
            return out
        # Indices: the flat position (row-major, or column-major with storage_order 1) of each window's first
        # maximum in the whole input, pooled from a map of positions the same way as the values
        sp = x.shape[2:]
        pos = np.arange(math.prod(sp)).reshape(sp[::-1]).transpose() if c.attr("storage_order", 0) else \
            np.arange(math.prod(sp)).reshape(sp)
        pmap = Tensor(pos.astype(np.int32), device=x.device).pad(new, value=-1)._pool(kernel, strides, dil)
        flat_w = win.reshape(win.shape[:-nd] + (-1,))
        first = flat_w.argmax(-1, keepdim=True)
        pw = pmap.reshape(pmap.shape[:-nd] + (-1,))
        idx = pw.reshape((1, 1) + pw.shape)._broadcast_to(flat_w.shape).gather(flat_w.ndim - 1, first).squeeze(-1)
        n, ch = x.shape[:2]
        base = Tensor.arange(n * ch, device=x.device).reshape((n, ch) + (1,) * nd) * math.prod(sp)
        return [out, idx + base]
    xp = x._float().pad(lead + new)
    win = xp._pool(kernel, strides, dil)
    s = (each(win) if each is not None else win).sum(tuple(range(-nd, 0)))
    if kind == "sum":
        return s
    if c.attr("count_include_pad", 0):
        ones = Tensor.ones(*x.shape[2:], device=c.device).pad(pads, value=1.0).pad(extra)
    else:
        ones = Tensor.ones(*x.shape[2:], device=c.device).pad(new)
    cnt = ones._pool(kernel, strides, dil).sum(tuple(range(-nd, 0)))
    return s / cnt


op("MaxPool")(lambda c: _pool(c, "max"))
op("AveragePool")(lambda c: _pool(c, "avg"))


@op("LpPool", since=2)
def _lppool(c):
    """(sum over each window of |x|^p)^(1/p); padding adds zeros."""
    p = float(c.attr("p", 2))
    return _pool(c, "sum", lambda w: w.abs().pow(p)).pow(1 / p)


@op("GlobalAveragePool")
def _gap(c):
    x = c.t(0)
    return _f(x).mean(tuple(range(2, x.ndim)), keepdim=True)


@op("GlobalMaxPool")
def _gmp(c):
    x = c.t(0)
    return x.max(tuple(range(2, x.ndim)), keepdim=True)


@op("BatchNormalization")
def _bn(c):
    if len([o for o in c.node.output if o]) > 1:
        raise c.fail("training-mode BatchNormalization (running statistics outputs) is not supported")
    x = c.t(0)
    return x.batchnorm(c.t(1), c.t(2), c.t(3), c.t(4), eps=c.attr("epsilon", 1e-5))


@op("InstanceNormalization", since=6)
def _instnorm(c):
    x = _f(c.t(0))
    axes = tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    d = x - x.mean(axes, keepdim=True)
    out = d * ((d * d).mean(axes, keepdim=True) + c.attr("epsilon", 1e-5)).rsqrt()
    return out * c.t(1).reshape(shape) + c.t(2).reshape(shape)


@op("LayerNormalization", since=17)
def _layernorm(c):
    x = _f(c.t(0))
    a = int(c.attr("axis", -1))
    a = a + x.ndim if a < 0 else a
    axes = tuple(range(a, x.ndim))
    mean = x.mean(axes, keepdim=True)
    d = x - mean
    inv = ((d * d).mean(axes, keepdim=True) + c.attr("epsilon", 1e-5)).rsqrt()
    out = d * inv * c.t(1)
    if c.has(2):
        out = out + c.t(2)
    return [out, mean, inv][: len(c.node.output)]


@op("RMSNormalization", since=23)
def _rmsnorm(c):
    x0 = c.t(0)
    x = _f(x0)
    a = int(c.attr("axis", -1))
    a = a + x.ndim if a < 0 else a
    axes = tuple(range(a, x.ndim))
    out = x * ((x * x).mean(axes, keepdim=True) + c.attr("epsilon", 1e-5)).rsqrt()
    return (out * c.t(1)).cast(x0.dtype)


@op("GroupNormalization", since=18)
def _groupnorm(c):
    x0 = c.t(0)
    x = _f(x0)
    g = int(c.attr("num_groups"))
    n, ch = x.shape[:2]
    y = x.reshape(n, g, -1) if x.ndim > 1 else x
    d = y - y.mean(-1, keepdim=True)
    y = (d * ((d * d).mean(-1, keepdim=True) + c.attr("epsilon", 1e-5)).rsqrt()).reshape(x.shape)
    shape = (1, ch) + (1,) * (x.ndim - 2)
    scale, bias = c.t(1), c.t(2)
    if scale.shape[0] != ch:  # opset 18: one scale per group
        scale = scale.reshape(g, 1).expand(g, ch // g).reshape(ch)
        bias = bias.reshape(g, 1).expand(g, ch // g).reshape(ch)
    return (y * scale.reshape(shape) + bias.reshape(shape)).cast(x0.dtype)


@op("LpNormalization")
def _lpnorm(c):
    x = _f(c.t(0))
    a, p = int(c.attr("axis", -1)), int(c.attr("p", 2))
    norm = x.abs().sum(a, keepdim=True) if p == 1 else (x * x).sum(a, keepdim=True).sqrt()
    return x / norm


@op("MeanVarianceNormalization", since=9)
def _mvn(c):
    x = _f(c.t(0))
    axes = tuple(c.attr("axes") or [0, 2, 3])
    d = x - x.mean(axes, keepdim=True)
    return d / ((d * d).mean(axes, keepdim=True)).sqrt().maximum(1e-9)


@op("LRN")
def _lrn(c):
    x = _f(c.t(0))
    size = int(c.attr("size"))
    alpha, beta, bias = c.attr("alpha", 1e-4), c.attr("beta", 0.75), c.attr("bias", 1.0)
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    sq = (x * x).pad([(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
    ch = x.shape[1]
    win = sum((sq.shrink([None, (i, i + ch)] + [None] * (x.ndim - 2)) for i in range(size)), start=x * 0)
    return x / (bias + alpha / size * win).pow(beta)


@op("Dropout")
def _dropout(c):
    x = c.t(0)
    outs = [x]
    if len(c.node.output) > 1 and c.node.output[1]:
        outs.append(Tensor.full(x.shape, True, dtype=dtypes.bool, device=c.device))
    return outs


@op("Einsum", since=12)
def _einsum(c):
    eq = c.attr("equation").replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    ts = [c.t(i) for i in range(len(terms))]
    ell = ""
    if "..." in eq:  # the broadcast axes '...' spelled out as letters the equation does not use, right-aligned
        spare = [ch for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if ch not in eq]
        counts = [t.ndim - (len(term) - 3) if "..." in term else 0 for t, term in zip(ts, terms, strict=True)]
        ell = "".join(spare[:max(counts)])
        terms = [term.replace("...", ell[len(ell) - k:] if k else "") for term, k in zip(terms, counts, strict=True)]
        rhs = rhs.replace("...", ell)
    if not rhs and "->" not in eq:
        letters = "".join(terms)
        rhs = ell + "".join(sorted(ch for ch in set(letters) if letters.count(ch) == 1 and ch not in ell))
    letters = sorted(set("".join(terms)))
    sizes = {}
    for t, term in zip(ts, terms, strict=True):
        for ch, s in zip(term, t.shape, strict=True):
            sizes[ch] = max(sizes.get(ch, 1), s)
    out = None
    for t, term in zip(ts, terms, strict=True):
        while len(set(term)) != len(term):  # a repeated letter takes the diagonal of its two axes
            p = next(i for i, ch in enumerate(term) if term.count(ch) > 1)
            q = term.index(term[p], p + 1)
            n = t.shape[p]
            eye = np.eye(n, dtype=bool).reshape(tuple(n if i in (p, q) else 1 for i in range(t.ndim)))
            t = Tensor(eye, device=t.device).where(t, 0).sum(q).cast(t.dtype)
            term = term[:q] + term[q + 1:]
        # permute to the global letter order and broadcast
        order = sorted(range(len(term)), key=lambda i: letters.index(term[i]))
        t = t.permute(tuple(order)) if order else t
        shape = tuple(sizes[ch] if ch in term else 1 for ch in letters)
        t = t.reshape(tuple(t.shape[i] if True else 1 for i in range(t.ndim))) if False else t
        t = t.reshape(tuple(t.shape[[term[o] for o in order].index(ch)] if ch in term else 1 for ch in letters))
        out = t if out is None else out * t
        del shape
    red = tuple(i for i, ch in enumerate(letters) if ch not in rhs)
    if red:
        out = out.sum(red)
    kept = [ch for ch in letters if ch in rhs]
    return out.permute(tuple(kept.index(ch) for ch in rhs)) if kept else out


# --- control flow -------------------------------------------------------------------------------------
@op("If")
def _if(c):
    cond = c.host(0)
    branch = c.attr("then_branch") if bool(cond.reshape(-1)[0]) else c.attr("else_branch")
    return c.run_graph(branch, dict(c.env), c.opset, c.device)


# --- losses (inference graphs of trained models carry them; the expanded SCE graphs use NLL) -------------
def _nll(c: NodeCtx, logp: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
    ignore = c.attr("ignore_index", None)
    keep = (target != ignore) if ignore is not None else None
    t = keep.where(target, 0) if keep is not None else target
    picked = logp.gather(1, t.unsqueeze(1)).squeeze(1)
    w = weight.take(t) if weight is not None else None
    if keep is not None:
        w = keep.where(w if w is not None else 1.0, 0.0).cast(logp.dtype)
    loss = -(picked * w) if w is not None else -picked
    red = c.attr("reduction", "mean")
    if red == "none":
        return loss
    if red == "sum":
        return loss.sum()
    return loss.sum() / (w.sum() if w is not None else loss.numel())


@op("NegativeLogLikelihoodLoss", since=12)
def _nll_loss(c):
    return _nll(c, c.t(0), c.t(1), c.t(2) if c.has(2) else None)


@op("SoftmaxCrossEntropyLoss", since=12)
def _sce_loss(c):
    logp = _f(c.t(0)).log_softmax(1)
    loss = _nll(c, logp, c.t(1), c.t(2) if c.has(2) else None)
    return [loss, logp][: len(c.node.output)]
