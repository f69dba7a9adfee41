"""The Tensor frontend: numpy/PyTorch-style API, every operation composed from the primitive ops in ops.py."""

from __future__ import annotations

import functools
import math
import warnings
import weakref
from collections.abc import Sequence

import numpy as np

from . import autograd, graph_template, jit_trace, lazy
from .device import canonicalize, to_device
from .dtypes import FLOAT32_ROUNDER as _ROUNDER
from .dtypes import DType, dtypes, promote, reduce_identity, to_dtype
from .errors import DTypeError, IndexOutOfRangeError, ShapeError
from .lazy import Node
from .ops import Ops

_LOG2E, _LN2 = 1.4426950408889634, 0.6931471805599453
_GELU_EXP2 = -1.5957691216057308 * _LOG2E  # -2 sqrt(2/pi) log2(e): gelu's e**-2u as exp2(_GELU_EXP2 * (x + ...))
# ln 2 split so that n * _LN2_HI is exact in float32 for |n| < 2**8 (Cody-Waite argument reduction)
_LN2_HI, _LN2_LO = 0.693145751953125, 1.4286068203094172e-06
_NO_FRACTION = 2.0**23  # float32 values at least this large are integers


def _infer_dtype(arr: np.ndarray) -> DType:
    if arr.dtype == np.bool_:
        return dtypes.bool
    if arr.dtype.kind == "f":
        return dtypes.float16 if arr.dtype == np.float16 else dtypes.float32
    if arr.dtype.kind in "iu":
        return {np.dtype(np.uint8): dtypes.uint8, np.dtype(np.int8): dtypes.int8}.get(arr.dtype, dtypes.int32)
    return to_dtype(arr.dtype)


def _check_conversion(arr: np.ndarray, dt: DType, warn_narrowing: bool) -> None:
    """Refuse integers the target dtype cannot hold; say so when a float64 array is stored as float32."""
    if arr.dtype.kind in "iu" and dt.is_int and arr.size:
        info = np.iinfo(dt.np)
        lo, hi = int(arr.min()), int(arr.max())
        if lo < info.min or hi > info.max:
            bad = lo if lo < info.min else hi
            raise DTypeError(
                f"Tensor: value {bad} does not fit {dt.name} ({info.min}..{info.max}); the workbench has no"
                f" 64-bit integers, so scale or split the values, or pass dtype='float32'"
            )
    elif warn_narrowing and arr.dtype == np.float64:
        warnings.warn(
            "Tensor: float64 array stored as float32 (the widest float dtype here); pass dtype='float32' or"
            " a float32 array to say so",
            stacklevel=3,
        )


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(map(int, shape))


def _new_shape(shape, what: str) -> tuple:
    """The shape of a tensor being created: whole numbers >= 0, else a ShapeError naming `what` and the shape."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):  # zeros((2, 3)) as zeros(2, 3)
        shape = tuple(shape[0])
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ShapeError(f"{what}: shape {shape} must be whole numbers >= 0, e.g. (2, 3)")
    return tuple(int(d) for d in shape)


def _pair(x, n: int = 2) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,) * n


def composite(method=None, *, fuse=None):
    """graph_template.composite, with whether each input is a contraction in the signature: a sum over one
    stays whole for the GEMM template, over anything else long sums add in blocks (Tensor._reduce)."""
    if method is None:
        return functools.partial(composite, fuse=fuse)
    return graph_template.composite(method, traits=lambda n: _is_contraction(n), fuse=fuse)


def _attention_fuses(q, key, value, attn_mask=None, is_causal=False):
    """Scaled dot-product attention without a mask tensor may run as one kernel (schedule_attention.py)."""
    return ("attention", bool(is_causal), (q, key, value)) if attn_mask is None else None


def _in_float32(method):
    """A composite op (exp, softmax, layernorm...) on bfloat16 runs in float32 and rounds its result once,
    as PyTorch's bfloat16 ops do inside their kernels: rounding each of its primitive ops would compound."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self.dtype != dtypes.bfloat16:
            return method(self, *args, **kwargs)
        out = method(self.cast(dtypes.float32), *args, **kwargs)
        return out.cast(dtypes.bfloat16) if out.dtype == dtypes.float32 else out

    return wrapper


# leaf tensors with requires_grad, by node id: backward() stores each leaf's gradient in its `.grad`
_LEAVES: weakref.WeakValueDictionary[int, Tensor] = weakref.WeakValueDictionary()
# tensors ever changed in place with assign() (parameters, optimizer state, running statistics)
_ASSIGNED: weakref.WeakValueDictionary[int, Tensor] = weakref.WeakValueDictionary()  # by id(tensor)


class Tensor:
    """A lazy n-dimensional array on a device; operations build a graph that `realize()` runs."""

    __slots__ = ("node", "grad", "__weakref__")
    __hash__ = object.__hash__
    _rng = np.random.default_rng(0)
    training = False  # layers such as dropout and batch norm read this (nn modules keep their own flag)

    def __init__(self, data, device: str | None = None, dtype=None, requires_grad: bool = False):
        self.grad: Tensor | None = None
        if isinstance(data, Node):
            self.node = data
            return
        device = canonicalize(device)
        if isinstance(data, Tensor):
            data = data.numpy()
        try:
            arr = np.asarray(data)
        except ValueError as exc:  # nested lists of different lengths: numpy names no shape we can add to
            raise ShapeError(f"Tensor: data is not rectangular (nested lists of different lengths?): {exc}") from None
        dt = to_dtype(dtype) if dtype is not None else _infer_dtype(arr)
        _check_conversion(arr, dt, warn_narrowing=dtype is None and isinstance(data, np.ndarray))
        if dt == dtypes.bfloat16 and arr.dtype != dt.np:
            arr = arr.astype(np.float32)  # to bfloat16 through float32, as a kernel's CAST rounds
        arr = arr.astype(dt.np, order="C")
        self.node = lazy.load(to_device(arr, dt, device), arr.shape, dt, device)
        if requires_grad:
            self.requires_grad = True

    # --- autograd ----------------------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        """Whether gradients flow to (a parameter) or through (a value computed from one) this tensor."""
        return self.node.requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value and not self.dtype.is_float:
            raise DTypeError(f"requires_grad: only float tensors can have gradients, this one is {self.dtype.name}")
        if self.node.ad is not None:
            raise DTypeError("requires_grad: set it on leaf tensors (parameters); use .detach() on computed ones")
        self.node.requires_grad = bool(value)
        if value:
            _LEAVES[self.node.id] = self
        else:
            _LEAVES.pop(self.node.id, None)

    def requires_grad_(self, value: bool = True) -> Tensor:
        """Set requires_grad in place; returns self."""
        self.requires_grad = value
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors that backward() gives a `.grad` (not computed from a parameter)."""
        return self.node.ad is None

    def backward(self, gradient: Tensor | None = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into `.grad` of every leaf with requires_grad; runs the kernels."""
        leaves = autograd.gradients(self.node, None if gradient is None else gradient.node, retain_graph)
        done = []
        with autograd.no_grad():
            for nid, (n, g) in leaves.items():
                t = _LEAVES.get(nid)
                if t is None or t.node is not n:
                    continue
                t.grad = Tensor(g) if t.grad is None else t.grad + Tensor(g)
                done.append(t.grad)
        self.realize(*done)

    def detach(self) -> Tensor:
        """The same values with no gradient history."""
        n = self.node
        if n.realized:
            return Tensor(lazy.load(n.buffer, n.shape, n.dtype, n.device))
        if n.src is lazy.PACKED:
            lazy.expand(n)
        with autograd.no_grad():
            return Tensor(Node(n.op, n.src, n.arg, n.shape, n.dtype, n.device))

    def assign(self, value) -> Tensor:
        """Replace the values in place (same shape and dtype), keeping requires_grad; returns self."""
        _ASSIGNED[id(self)] = self  # compiler.jit binds such tensors by identity, not by the buffer they held
        if jit_trace.ACTIVE is not None:
            jit_trace.ACTIVE.assign(self)
        if jit_trace.WATCHED and self.node.realized:
            jit_trace.replaced(self.node.buffer, self)
        v = value if isinstance(value, Tensor) else Tensor(value, device=self.device, dtype=self.dtype)
        if v.shape != self.shape:
            raise ShapeError(f"assign: value of shape {v.shape} for a tensor of shape {self.shape}")
        if v.device != self.device:
            v = v.to(self.device)
        v = v.cast(self.dtype)
        keep = self.requires_grad
        if keep or v.node.requires_grad:
            v = v.detach()  # a node of its own: marking it a leaf must not touch the value's other users
        if keep:
            _LEAVES.pop(self.node.id, None)
        self.node = v.node
        if keep:
            self.requires_grad = True
        return self

    # --- properties and realization ----------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.node.shape

    @property
    def dtype(self) -> DType:
        return self.node.dtype

    @property
    def device(self) -> str:
        return self.node.device

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def size(self) -> int:
        return self.numel()

    def __len__(self) -> int:
        if not self.shape:
            raise ShapeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        done = " realized" if self.node.realized else ""
        return f"<Tensor {self.shape} {self.dtype.name} on {self.device}{done}>"

    def realize(self, *others: Tensor) -> Tensor:
        """Run the kernels that compute this tensor (and others) and wait for them; returns self."""
        from .realize import realize

        for dev in dict.fromkeys(t.device for t in (self, *others)):
            realize([t.node for t in (self, *others) if t.device == dev])
        return self

    def schedule(self) -> list:
        """The kernels realizing this tensor would run, in order, without running them."""
        from .schedule import create_schedule

        return create_schedule([self.node])

    def numpy(self) -> np.ndarray:
        """The values as a new numpy array."""
        self.realize()
        return self.node.buffer.numpy().reshape(self.shape).copy()

    def tolist(self):
        """The values as nested Python lists."""
        return self.numpy().tolist()

    def item(self):
        """The single value of a one-element tensor as a Python scalar."""
        if self.numel() != 1:
            raise ShapeError(f"item: tensor of shape {self.shape} has {self.numel()} elements, not 1")
        return self.numpy().reshape(()).item()

    def to(self, device: str) -> Tensor:
        """A copy on another device (self when already there)."""
        device = canonicalize(device)
        return self if device == self.device else Tensor(self.numpy(), device=device, dtype=self.dtype)

    def contiguous(self) -> Tensor:
        """Returns self: kernels index through views, so there is nothing to copy (PyTorch compatibility)."""
        return self

    # --- construction ------------------------------------------------------------------------------
    @staticmethod
    def full(shape, value, dtype=None, device: str | None = None) -> Tensor:
        """A tensor of `shape` filled with value."""
        if dtype is None:
            dtype = (
                dtypes.bool
                if isinstance(value, bool)
                else dtypes.float32
                if isinstance(value, float)
                else dtypes.int32
            )
        shape = _new_shape(shape, "Tensor.full")
        return Tensor(lazy.const(value, shape, to_dtype(dtype), canonicalize(device)))

    @staticmethod
    def zeros(*shape, dtype=dtypes.float32, device: str | None = None) -> Tensor:
        """A tensor of zeros."""
        return Tensor.full(_new_shape(shape, "Tensor.zeros"), 0, dtype, device)

    @staticmethod
    def ones(*shape, dtype=dtypes.float32, device: str | None = None) -> Tensor:
        """A tensor of ones."""
        return Tensor.full(_new_shape(shape, "Tensor.ones"), 1, dtype, device)

    def zeros_like(self) -> Tensor:
        return Tensor.full(self.shape, 0, self.dtype, self.device)

    def ones_like(self) -> Tensor:
        return Tensor.full(self.shape, 1, self.dtype, self.device)

    @staticmethod
    def arange(start, stop=None, step=1, dtype=None, device: str | None = None) -> Tensor:
        """Evenly spaced values in [start, stop), like numpy.arange."""
        if stop is None:
            start, stop = 0, start
        if dtype is None:
            dtype = dtypes.float32 if any(isinstance(v, float) for v in (start, stop, step)) else dtypes.int32
        return Tensor(np.arange(start, stop, step), device=device, dtype=dtype)

    @staticmethod
    def eye(n: int, m: int | None = None, dtype=dtypes.float32, device: str | None = None) -> Tensor:
        """The identity matrix (n x m)."""
        m = n if m is None else m
        r = Tensor.arange(n, device=device).reshape(n, 1).expand(n, m)
        c = Tensor.arange(m, device=device).reshape(1, m).expand(n, m)
        return (r == c).cast(dtype)

    @classmethod
    def manual_seed(cls, seed: int = 0) -> None:
        """Seed the generator behind rand and randn."""
        cls._rng = np.random.default_rng(seed)

    @classmethod
    def rand(cls, *shape, dtype=dtypes.float32, device: str | None = None, seed: int | None = None) -> Tensor:
        """Uniform [0, 1) values from the seeded generator."""
        shape = _new_shape(shape, "Tensor.rand")
        return cls._random(lambda rng: rng.random(shape, dtype=np.float32), dtype, device, seed)

    @classmethod
    def randn(
        cls, *shape, dtype=dtypes.float32, device: str | None = None, seed: int | None = None
    ) -> Tensor:
        """Standard normal values from the seeded generator."""
        shape = _new_shape(shape, "Tensor.randn")
        return cls._random(lambda rng: rng.standard_normal(shape, dtype=np.float32), dtype, device, seed)

    @classmethod
    def _random(cls, draw, dtype, device: str | None, seed: int | None) -> Tensor:
        """draw(generator) on the host, as a tensor; a jit replaying the call draws again from Tensor._rng."""
        out = Tensor(draw(cls._rng if seed is None else np.random.default_rng(seed)), device=device, dtype=dtype)
        if seed is None and jit_trace.ACTIVE is not None:
            dev, dt = out.device, out.dtype
            jit_trace.ACTIVE.random(out.node.buffer, lambda: Tensor(draw(Tensor._rng), dev, dt).node.buffer)
        return out

    # --- elementwise plumbing ----------------------------------------------------------------------
    def _scalar_dtype(self, v) -> DType:
        if isinstance(v, bool):
            return self.dtype
        if isinstance(v, float):
            return self.dtype if self.dtype.is_float else dtypes.float32
        return self.dtype if self.dtype != dtypes.bool else dtypes.int32

    def _operands(self, other, name: str, reverse: bool = False) -> tuple[Tensor, Tensor]:
        """Both operands broadcast to one shape and promoted to one dtype."""
        x = self
        if isinstance(other, Tensor):
            xn, yn = self.node, other.node
            if xn.dtype is yn.dtype and xn.shape == yn.shape:  # the usual case: nothing to cast or broadcast
                return (other, self) if reverse else (self, other)
        elif isinstance(other, (np.ndarray, list, tuple)):
            other = Tensor(other, device=self.device)
        else:
            dt = self._scalar_dtype(other)
            x = x.cast(dt)
            y = Tensor(lazy.const(other, x.shape, dt, x.device))
            return (y, x) if reverse else (x, y)
        y = other
        if x.dtype != y.dtype:  # a bias of the same dtype (the next most usual case) has nothing to cast
            dt = promote(x.dtype, y.dtype)
            x, y = x.cast(dt), y.cast(dt)
        shape = _broadcast_shape(x.shape, y.shape, name)
        x, y = x._broadcast_to(shape), y._broadcast_to(shape)
        return (y, x) if reverse else (x, y)

    def _broadcast_to(self, shape: tuple) -> Tensor:
        return self if self.shape == shape else Tensor(lazy.broadcast(self.node, shape))

    def _alu(self, op: Ops, *srcs: Tensor) -> Tensor:
        return Tensor(lazy.alu(op, self.node, *[s.node for s in srcs]))

    def cast(self, dtype) -> Tensor:
        """Convert to dtype (float->int truncates toward zero)."""
        return Tensor(lazy.cast(self.node, to_dtype(dtype)))

    def float(self) -> Tensor:
        return self.cast(dtypes.float32)

    def half(self) -> Tensor:
        return self.cast(dtypes.float16)

    def bfloat16(self) -> Tensor:
        return self.cast(dtypes.bfloat16)

    def int(self) -> Tensor:
        return self.cast(dtypes.int32)

    def bool(self) -> Tensor:
        return self.cast(dtypes.bool)

    def _float(self) -> Tensor:
        return self if self.dtype.is_float else self.cast(dtypes.float32)

    # --- arithmetic --------------------------------------------------------------------------------
    def add(self, other, reverse: bool = False) -> Tensor:
        x, y = self._operands(other, "add", reverse)
        return x._alu(Ops.ADD, y)

    def sub(self, other, reverse: bool = False) -> Tensor:
        x, y = self._operands(other, "sub", reverse)
        return x._alu(Ops.ADD, -y)

    def mul(self, other, reverse: bool = False) -> Tensor:
        x, y = self._operands(other, "mul", reverse)
        return x._alu(Ops.MUL, y)

    def div(self, other, reverse: bool = False) -> Tensor:
        """True division; integer operands give float32."""
        x, y = self._operands(other, "div", reverse)
        if x.dtype == dtypes.bfloat16:  # x * (1/y) in float32, one rounding
            return x.float()._alu(Ops.MUL, y.float().reciprocal()).cast(dtypes.bfloat16)
        x, y = x._float(), y._float()
        return x._alu(Ops.MUL, y.reciprocal())

    def floordiv(self, other, reverse: bool = False) -> Tensor:
        """Floor division like numpy's //, built from C-truncating IDIV and MOD."""
        x, y = self._operands(other, "floordiv", reverse)
        if x.dtype.is_float:
            return (x / y).floor()
        q, r = x._alu(Ops.IDIV, y), x._alu(Ops.MOD, y)
        fix = (r != 0) & ((r < 0) ^ (y < 0))
        return q - fix.cast(q.dtype)

    def mod(self, other, reverse: bool = False) -> Tensor:
        """Remainder with the sign of the divisor, like numpy's %."""
        x, y = self._operands(other, "mod", reverse)
        if x.dtype.is_float:
            return x - (x / y).floor() * y
        r = x._alu(Ops.MOD, y)
        fix = (r != 0) & ((r < 0) ^ (y < 0))
        return fix.where(r + y, r)

    def neg(self) -> Tensor:
        return self._alu(Ops.NEG)

    def reciprocal(self) -> Tensor:
        return self._float()._alu(Ops.RECIP)

    def exp2(self) -> Tensor:
        return self._float()._alu(Ops.EXP2)

    def log2(self) -> Tensor:
        return self._float()._alu(Ops.LOG2)

    @composite
    @_in_float32
    def exp(self) -> Tensor:
        """e**x to a few ulp: x = n*ln2 + r with n an integer, so only the small r meets the rounding
        of a product with log2(e); 2**n is exact."""
        x = self._float()
        x32 = x.cast(dtypes.float32)
        t = x32 * _LOG2E
        # n = round(t) clamped to [-151, 127] (beyond, the result is 0 or inf anyway; NaN stays NaN)
        t = t.minimum(127.0).maximum(-151.0)
        # round to an integer without a cast (a vector unit may have none): adding 1.5 * 2**23 leaves no
        # fraction bits, so the float add itself rounds, and subtracting it again is exact
        n = (t + _ROUNDER) + -_ROUNDER
        r = x32 + n * -_LN2_HI + n * -_LN2_LO
        return ((r * _LOG2E).exp2() * n.exp2()).cast(x.dtype)

    @_in_float32
    def log(self) -> Tensor:
        return self.log2() * _LN2

    def sqrt(self) -> Tensor:
        return self._float()._alu(Ops.SQRT)

    @_in_float32
    def rsqrt(self) -> Tensor:
        return self.sqrt().reciprocal()

    def sin(self) -> Tensor:
        return self._float()._alu(Ops.SIN)

    @_in_float32
    def cos(self) -> Tensor:
        """cos x = 1 - 2 sin^2(x/2): halving is exact, where pi/2 - x would round away x's low bits."""
        s = (self._float() * 0.5).sin()
        return 1.0 - 2.0 * s * s

    @_in_float32
    def tan(self) -> Tensor:
        return self.sin() / self.cos()

    @composite
    @_in_float32
    def sigmoid(self) -> Tensor:
        return (1.0 + (-self._float()).exp()).reciprocal()

    @composite
    @_in_float32
    def tanh(self) -> Tensor:
        """(1 - e^-2|x|) / (1 + e^-2|x|) with the sign of x; its Taylor series near 0, where 1 - e cancels."""
        x = self._float()
        e = (-2.0 * x.abs()).exp()
        t = (1.0 - e) / (1.0 + e)
        big = (x < 0).where(-t, t)
        x2 = x * x
        small = x * (1.0 + x2 * (-1 / 3 + x2 * (2 / 15 + x2 * (-17 / 315 + x2 * (62 / 2835)))))
        return (x.abs() < 0.25).where(small, big)

    def relu(self) -> Tensor:
        return self.maximum(0)

    @composite
    @_in_float32
    def gelu(self) -> Tensor:
        """GELU, tanh approximation (as in GPT-2)."""
        x = self._float()
        # 0.5 * (1 + tanh(u)) == sigmoid(2u) = 1 / (1 + e**-2u): the same function with fewer ops and no
        # 1 - e cancellation; e**-2u as exp2(-2u log2 e) in one product, not exp's exact split (rounding
        # the product errs by |2u| * 4e-8 relatively, a few ulp where the result is not already 0 or x)
        return x * (1.0 + (_GELU_EXP2 * (x + 0.044715 * x * x * x)).exp2()).reciprocal()

    @composite
    @_in_float32
    def silu(self) -> Tensor:
        return self * self.sigmoid()

    def abs(self) -> Tensor:
        return self if self.dtype.is_unsigned else self.maximum(-self)

    def sign(self) -> Tensor:
        """-1, 0 or 1 by the sign of each element; NaN stays NaN like numpy."""
        s = (self > 0).cast(self.dtype) - (self < 0).cast(self.dtype)
        return (self != self).where(self, s) if self.dtype.is_float else s

    def square(self) -> Tensor:
        return self * self

    def trunc(self) -> Tensor:
        """Round toward zero; NaN, inf and floats too large to have a fraction come back unchanged."""
        if not self.dtype.is_float:
            return self
        # only |x| < 2**23 can have a fraction, and those fit int32; larger values, inf and NaN pass through
        return (self.abs() < _NO_FRACTION).where(self.cast(dtypes.int32).cast(self.dtype), self)

    def floor(self) -> Tensor:
        t = self.trunc()
        return t if not self.dtype.is_float else t - (t > self).cast(self.dtype)

    def ceil(self) -> Tensor:
        t = self.trunc()
        return t if not self.dtype.is_float else t + (t < self).cast(self.dtype)

    def maximum(self, other) -> Tensor:
        x, y = self._operands(other, "maximum")
        return x._alu(Ops.MAX, y)

    def minimum(self, other) -> Tensor:
        """Elementwise smaller value; NaN in either operand gives NaN like numpy.minimum."""
        x, y = self._operands(other, "minimum")
        return -((-x)._alu(Ops.MAX, -y)) if x.dtype.is_float else (x < y).where(x, y)

    def clip(self, min_=None, max_=None) -> Tensor:
        """Limit values to [min_, max_]."""
        x = self
        if min_ is not None:
            x = x.maximum(min_)
        if max_ is not None:
            x = x.minimum(max_)
        return x

    clamp = clip

    @_in_float32
    def pow(self, exponent, reverse: bool = False) -> Tensor:
        """self ** exponent like numpy: integers stay integers, integer exponents multiply exactly,
        negative bases allowed with integer exponents, x**0 == 1 and 1**y == 1 even for NaN."""
        if not reverse and isinstance(exponent, (int, float)) and not isinstance(exponent, bool):
            if exponent == 0:
                return self.ones_like()
            if exponent == 0.5:
                return self.sqrt()
            if float(exponent).is_integer() and abs(exponent) <= 64:
                x = self if exponent > 0 or self.dtype.is_float else self._float()
                out = x._int_power(int(abs(exponent)))
                return out if exponent > 0 else out.reciprocal()
        base, e = self._operands(exponent, "pow", reverse)
        if base.dtype.is_int and e.dtype.is_int:
            return base._int_pow_tensor(e)
        base, e = base._float(), e._float()
        mag = (e * base.abs().log2()).exp2()
        odd = (e.trunc() == e) & ((e.abs() - 2.0 * (e.abs() * 0.5).floor()) == 1.0)
        neg = base < 0
        out = (neg & odd).where(-mag, mag)
        out = (neg & (e.trunc() != e)).where(float("nan"), out)
        return ((e == 0) | (base == 1)).where(1.0, out)

    def _int_power(self, n: int) -> Tensor:
        """self ** n for a Python int n >= 1 by repeated squaring (exact for integers)."""
        out, sq = None, self
        while n:
            if n & 1:
                out = sq if out is None else out * sq
            n >>= 1
            if n:
                sq = sq * sq
        return out

    def _int_pow_tensor(self, e: Tensor) -> Tensor:
        """Integer base ** integer exponent tensor by squaring over the exponent's bits; a negative exponent
        gives 1 for base 1, +-1 for base -1 and 0 otherwise (the integer part of the true value)."""
        out, sq, bits = self.ones_like(), self, e.maximum(0)
        for _ in range(8 * e.dtype.itemsize - 1):
            out = ((bits & 1) != 0).where(out * sq, out)
            sq, bits = sq * sq, bits >> 1
        odd = (e & 1) != 0
        minus_one = (self == -1).where(odd.where(-1, 1), 0) if not self.dtype.is_unsigned else 0
        neg_e = (self == 1).where(1, minus_one).cast(self.dtype)
        return (e < 0).where(neg_e, out)

    def where(self, x, y) -> Tensor:
        """Elementwise self ? x : y with broadcasting; self is the condition."""
        cond = self.bool()
        if not isinstance(x, Tensor):
            x = Tensor.full((), x, y._scalar_dtype(x) if isinstance(y, Tensor) else None, self.device)
        if not isinstance(y, Tensor):
            y = Tensor.full((), y, x._scalar_dtype(y), self.device)
        dt = promote(x.dtype, y.dtype)
        shape = _broadcast_shape(_broadcast_shape(cond.shape, x.shape, "where"), y.shape, "where")
        x, y = x.cast(dt)._broadcast_to(shape), y.cast(dt)._broadcast_to(shape)
        return cond._broadcast_to(shape)._alu(Ops.WHERE, x, y)

    # comparisons and logic
    def __lt__(self, other) -> Tensor:
        x, y = self._operands(other, "lt")
        return x._alu(Ops.CMPLT, y)

    def __gt__(self, other) -> Tensor:
        x, y = self._operands(other, "gt")
        return y._alu(Ops.CMPLT, x)

    def __le__(self, other) -> Tensor:
        x, y = self._operands(other, "le")
        # not (x > y) would call NaN <= 1 true; floats ask "less or equal" directly
        return (x < y) | (x == y) if x.dtype.is_float else (x > y).logical_not()

    def __ge__(self, other) -> Tensor:
        x, y = self._operands(other, "ge")
        return (y < x) | (x == y) if x.dtype.is_float else (x < y).logical_not()

    def __eq__(self, other) -> Tensor:  # type: ignore[override]
        return (self != other).logical_not()

    def __ne__(self, other) -> Tensor:  # type: ignore[override]
        x, y = self._operands(other, "ne")
        return x._alu(Ops.CMPNE, y)

    def logical_not(self) -> Tensor:
        return self.bool()._alu(Ops.NEG)

    def _bitwise(self, op: Ops, other, reverse: bool = False) -> Tensor:
        x, y = self._operands(other, op.name.lower(), reverse)
        return x._alu(op, y)

    def __and__(self, other):
        return self._bitwise(Ops.AND, other)

    def __or__(self, other):
        return self._bitwise(Ops.OR, other)

    def __xor__(self, other):
        return self._bitwise(Ops.XOR, other)

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __invert__(self) -> Tensor:
        return self ^ (True if self.dtype == dtypes.bool else -1 if not self.dtype.is_unsigned else 255)

    def __lshift__(self, other):
        return self._bitwise(Ops.SHL, other)

    def __rshift__(self, other):
        return self._bitwise(Ops.SHR, other)

    def __add__(self, o):
        return self.add(o)

    def __radd__(self, o):
        return self.add(o, True)

    def __sub__(self, o):
        return self.sub(o)

    def __rsub__(self, o):
        return self.sub(o, True)

    def __mul__(self, o):
        return self.mul(o)

    def __rmul__(self, o):
        return self.mul(o, True)

    def __truediv__(self, o):
        return self.div(o)

    def __rtruediv__(self, o):
        return self.div(o, True)

    def __floordiv__(self, o):
        return self.floordiv(o)

    def __rfloordiv__(self, o):
        return self.floordiv(o, True)

    def __mod__(self, o):
        return self.mod(o)

    def __rmod__(self, o):
        return self.mod(o, True)

    def __pow__(self, o):
        return self.pow(o)

    def __rpow__(self, o):
        return self.pow(o, True)

    def __neg__(self):
        return self.neg()

    def __abs__(self):
        return self.abs()

    def __matmul__(self, o):
        return self.matmul(o)

    def __rmatmul__(self, o):
        return Tensor(o, device=self.device).matmul(self) if not isinstance(o, Tensor) else o.matmul(self)

    def __bool__(self):
        raise ShapeError("the truth value of a Tensor is ambiguous; use .item(), .numpy() or comparisons")

    # --- movement ----------------------------------------------------------------------------------
    def reshape(self, *shape) -> Tensor:
        """Same elements in a new shape; one dimension may be -1."""
        shape = list(_shape_arg(shape))
        if shape.count(-1) > 1:
            raise ShapeError(f"reshape: only one -1 allowed in {tuple(shape)}")
        if -1 in shape:
            rest = math.prod(s for s in shape if s != -1)
            if rest == 0 or self.numel() % rest:
                raise ShapeError(f"reshape: cannot reshape {self.shape} to {tuple(shape)}")
            shape[shape.index(-1)] = self.numel() // rest
        return Tensor(lazy.movement(Ops.RESHAPE, self.node, tuple(shape)))

    view = reshape

    def permute(self, *order) -> Tensor:
        """Reorder the axes."""
        order = tuple(self._axis(a) for a in _shape_arg(order))
        return Tensor(lazy.movement(Ops.PERMUTE, self.node, order))

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        """Swap two axes (PyTorch style; the last two by default)."""
        order = list(range(self.ndim))
        a, b = self._axis(dim0), self._axis(dim1)
        order[a], order[b] = order[b], order[a]
        return self.permute(order)

    @property
    def T(self) -> Tensor:
        return self.permute(tuple(reversed(range(self.ndim))))

    def expand(self, *shape) -> Tensor:
        """Broadcast size-1 axes (and new leading axes) to `shape`; -1 keeps a size."""
        shape = _shape_arg(shape)
        cur = (1,) * (len(shape) - self.ndim) + self.shape
        shape = tuple(c if s == -1 else s for s, c in zip(shape, cur, strict=True))
        _broadcast_shape(cur, shape, "expand", target=True)
        return self._broadcast_to(shape)

    broadcast_to = expand

    def pad(self, padding, value=0) -> Tensor:
        """Pad with `value`; padding is numpy style, one (before, after) pair per axis."""
        padding = tuple(tuple(p) for p in padding)
        if len(padding) != self.ndim:
            raise ShapeError(
                f"pad: {len(padding)} (before, after) pairs for a {self.ndim}-d tensor {self.shape}"
            )
        out = Tensor(lazy.movement(Ops.PAD, self.node, padding))
        if value == 0:
            return out
        mask = Tensor(lazy.movement(Ops.PAD, lazy.const(True, self.shape, dtypes.bool, self.device), padding))
        return mask.where(out, value)

    def shrink(self, arg) -> Tensor:
        """Keep [start, end) along each axis; None keeps the whole axis."""
        arg = tuple((0, s) if a is None else a for a, s in zip(arg, self.shape, strict=True))
        return Tensor(lazy.movement(Ops.SHRINK, self.node, arg))

    def flip(self, axis=None, *, dim=None, dims=None) -> Tensor:
        """Reverse the order along axis (an int or a tuple; `dim`/`dims` are the PyTorch names)."""
        axis = axis if axis is not None else dim if dim is not None else dims
        if axis is None:
            axis = tuple(range(self.ndim))
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        return Tensor(lazy.movement(Ops.FLIP, self.node, tuple(self._axis(a) for a in axes)))

    def squeeze(self, axis=None, *, dim=None) -> Tensor:
        """Drop size-1 axes (all, or the given one)."""
        axis = dim if dim is not None else axis
        if axis is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        a = self._axis(axis)
        if self.shape[a] != 1:
            raise ShapeError(f"squeeze: axis {axis} of shape {self.shape} has size {self.shape[a]}, not 1")
        return self.reshape(self.shape[:a] + self.shape[a + 1 :])

    def unsqueeze(self, axis: int | None = None, *, dim: int | None = None) -> Tensor:
        """Insert a size-1 axis."""
        axis = dim if dim is not None else axis
        if axis is None:
            raise TypeError("unsqueeze: give the new axis (axis= or dim=)")
        a = axis if axis >= 0 else axis + self.ndim + 1
        if not 0 <= a <= self.ndim:
            raise ShapeError(f"unsqueeze: axis {axis} out of range for shape {self.shape}")
        return self.reshape(self.shape[:a] + (1,) + self.shape[a:])

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge axes start_dim..end_dim into one."""
        if self.ndim == 0:
            return self.reshape(1)
        s, e = self._axis(start_dim), self._axis(end_dim)
        return self.reshape(self.shape[:s] + (math.prod(self.shape[s : e + 1]),) + self.shape[e + 1 :])

    def cat(self, *others: Tensor, axis: int = 0, dim: int | None = None) -> Tensor:
        """Concatenate along axis: `a.cat(b, c, axis=1)` or numpy style `Tensor.cat([a, b, c], axis=1)`."""
        axis = dim if dim is not None else axis
        ts = list(self) + list(others) if isinstance(self, (list, tuple)) else [self, *others]
        self = ts[0]
        a = self._axis(axis)
        for t in ts:
            if t.ndim != self.ndim or any(
                i != a and s != o for i, (s, o) in enumerate(zip(t.shape, self.shape, strict=True))
            ):
                raise ShapeError(
                    f"cat: shapes {' and '.join(str(t.shape) for t in ts)} differ outside axis {axis}"
                )
        dt = ts[0].dtype
        for t in ts[1:]:
            dt = promote(dt, t.dtype)
        total, off, out = sum(t.shape[a] for t in ts), 0, None
        for t in ts:
            pad = [(0, 0)] * self.ndim
            pad[a] = (off, total - off - t.shape[a])
            p = t.cast(dt).pad(pad)
            out = p if out is None else out._alu(Ops.OR if dt == dtypes.bool else Ops.ADD, p)
            off += t.shape[a]
        return out

    @staticmethod
    def stack(tensors: Sequence[Tensor], axis: int = 0, dim: int | None = None) -> Tensor:
        """Join tensors of one shape along a new axis."""
        axis = dim if dim is not None else axis
        ts = list(tensors)
        a = axis if axis >= 0 else axis + ts[0].ndim + 1
        return ts[0].unsqueeze(a).cat(*[t.unsqueeze(a) for t in ts[1:]], axis=a)

    def __getitem__(self, index) -> Tensor:
        """Basic indexing (ints, slices with any step, None, Ellipsis) plus one integer array index."""
        idx = list(index) if isinstance(index, tuple) else [index]
        arrays = [k for k, i in enumerate(idx) if isinstance(i, (Tensor, list, np.ndarray))]
        if arrays:
            k = arrays[0]
            if len(arrays) > 1 or Ellipsis in idx[:k]:
                raise ShapeError("getitem: one integer array index is supported, with no ... before it")
            rest = self[tuple(idx[:k] + [slice(None)] + idx[k + 1 :])]
            axis = sum(1 for i in idx[:k] if i is None or isinstance(i, slice))
            return rest.take(idx[k], axis=axis)
        n_real = sum(1 for i in idx if i is not None and i is not Ellipsis)
        if n_real > self.ndim:
            raise ShapeError(f"getitem: {n_real} indices for a {self.ndim}-d tensor {self.shape}")
        if Ellipsis in idx:
            e = idx.index(Ellipsis)
            idx = idx[:e] + [slice(None)] * (self.ndim - n_real) + idx[e + 1 :]
        else:
            idx += [slice(None)] * (self.ndim - n_real)
        x, axis, final = self, 0, []
        for i in idx:
            if i is None:
                final.append(1)
                continue
            size = x.shape[axis]
            if isinstance(i, (int, np.integer)) and not isinstance(i, bool):
                j = int(i) + size if i < 0 else int(i)
                if not 0 <= j < size:
                    raise ShapeError(f"getitem: index {i} out of range for axis {axis} of size {size}")
                x = x._slice_axis(axis, j, 1, 1)
            elif isinstance(i, slice):
                start, stop, step = i.indices(size)
                n = len(range(start, stop, step))
                x = x._slice_axis(axis, start, step, n)
                final.append(n)
            else:
                raise ShapeError(
                    f"getitem: unsupported index {i!r} (ints, slices, None and ... are supported)"
                )
            axis += 1
        return x.reshape(tuple(final))

    def _slice_axis(self, axis: int, start: int, step: int, n: int) -> Tensor:
        size = self.shape[axis]
        x = self
        if step < 0:
            x, start, step = x.flip(axis), size - 1 - start, -step
        if n == 0:
            return x.shrink([(0, 0) if a == axis else None for a in range(x.ndim)])
        end = start + n * step
        if end > size:
            x = x.pad([(0, end - size) if a == axis else (0, 0) for a in range(x.ndim)])
        x = x.shrink([(start, end) if a == axis else None for a in range(x.ndim)])
        if step == 1:
            return x
        x = x.reshape(x.shape[:axis] + (n, step) + x.shape[axis + 1 :])
        x = x.shrink([(0, 1) if a == axis + 1 else None for a in range(x.ndim)])
        return x.reshape(x.shape[:axis] + (n,) + x.shape[axis + 2 :])

    # --- reductions --------------------------------------------------------------------------------
    def _axis(self, a: int) -> int:
        nd = max(self.ndim, 1)
        if not -nd <= a < nd:
            raise ShapeError(f"axis {a} out of range for a {self.ndim}-d tensor of shape {self.shape}")
        return a % nd

    def _axes(self, axis) -> tuple:
        if axis is None:
            return tuple(range(self.ndim))
        return tuple(sorted({self._axis(a) for a in ((axis,) if isinstance(axis, int) else axis)}))

    def _reduce(self, op: Ops, axis, keepdim: bool, blocked: bool = False) -> Tensor:
        axes = self._axes(axis)
        x = self
        if not axes or x.ndim == 0:
            return x
        keep = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
        final = keep if keepdim else tuple(s for i, s in enumerate(x.shape) if i not in axes)
        rsize = math.prod(x.shape[a] for a in axes)
        if rsize == 0:  # an empty sum is 0 (numpy); an empty max has no value
            if op == Ops.REDUCE_MAX:
                raise ShapeError(f"max: zero-size reduction over axes {axes} of shape {x.shape}")
            return Tensor.full(final, 0, x.dtype, x.device)
        if blocked and x.dtype.is_float and rsize > _SUM_BLOCK_MIN and not _is_contraction(x.node):
            out = x._blocked_sum(axes, rsize)
        elif rsize >= 32768 and math.prod(keep) <= 64:
            out = x._two_stage(op, axes, rsize)
        else:
            out = Tensor(lazy.reduce(op, x.node, axes))
        return out.reshape(final)

    def _blocked_sum(self, axes: tuple, rsize: int) -> Tensor:
        """A long float sum as a tree of short sums (numpy's pairwise summation in spirit): each level adds
        blocks of at most _SUM_BLOCK values, so rounding error grows with the number of levels (log n), not
        with n, and the same graph gives the same accuracy on every device."""
        keep_axes = [a for a in range(self.ndim) if a not in axes]
        pre = tuple(self.shape[a] for a in keep_axes)
        x = self.permute(keep_axes + list(axes)).reshape(pre + (rsize,))
        n = rsize
        while n > _SUM_BLOCK:
            # a block size that divides n keeps loads unguarded (and vectorizable); else pad with zeros
            b = next((d for d in range(_SUM_BLOCK, _SUM_BLOCK // 2 - 1, -8) if n % d == 0), _SUM_BLOCK)
            if n % b:
                x = x.pad([(0, 0)] * len(pre) + [(0, b - n % b)])
                n += b - n % b
            x = x.reshape(pre + (n // b, b))
            n //= b
            x = Tensor(lazy.reduce(Ops.SUM, x.node, (len(pre) + 1,))).reshape(pre + (n,))
        return Tensor(lazy.reduce(Ops.SUM, x.node, (len(pre),)))

    def _two_stage(self, op: Ops, axes: tuple, rsize: int) -> Tensor:
        """A long reduce to few outputs as partial reduces over many chunks, then a short reduce."""
        keep_axes = [a for a in range(self.ndim) if a not in axes]
        x = self.permute(keep_axes + list(axes)).reshape(tuple(self.shape[a] for a in keep_axes) + (rsize,))
        chunks = 256
        if rsize % chunks:
            ident = reduce_identity(op, self.dtype)
            x = x.pad([(0, 0)] * (x.ndim - 1) + [(0, chunks - rsize % chunks)], value=ident)
        x = x.reshape(x.shape[:-1] + (chunks, x.shape[-1] // chunks))
        part = Tensor(lazy.reduce(op, x.node, (x.ndim - 1,)))
        return Tensor(lazy.reduce(op, part.node, (x.ndim - 2,)))

    def sum(self, axis=None, keepdim: bool = False, dtype=None, *, dim=None, keepdims=None) -> Tensor:
        """Sum over axes; small ints and bool accumulate as int32. Long float sums add in a tree of blocks."""
        axis, keepdim = _axis_arg(axis, dim, keepdim, keepdims)
        x = (
            self.cast(dtype)
            if dtype is not None
            else self.cast(dtypes.int32)
            if self.dtype.priority < 3
            else self
        )
        if x.dtype == dtypes.bfloat16:  # partial sums in float32, one rounding at the end (like PyTorch)
            return x.float()._reduce(Ops.SUM, axis, keepdim, blocked=True).cast(dtypes.bfloat16)
        return x._reduce(Ops.SUM, axis, keepdim, blocked=True)

    def max(self, axis=None, keepdim: bool = False, *, dim=None, keepdims=None) -> Tensor:
        """Maximum over axes (NaN if any element is NaN, like numpy)."""
        axis, keepdim = _axis_arg(axis, dim, keepdim, keepdims)
        return self._reduce(Ops.REDUCE_MAX, axis, keepdim)

    def min(self, axis=None, keepdim: bool = False, *, dim=None, keepdims=None) -> Tensor:
        """Minimum over axes."""
        axis, keepdim = _axis_arg(axis, dim, keepdim, keepdims)
        if self.dtype.is_float:
            return -((-self).max(axis, keepdim))
        return ~((~self).max(axis, keepdim))

    @_in_float32
    def mean(self, axis=None, keepdim: bool = False, *, dim=None, keepdims=None) -> Tensor:
        """Arithmetic mean over axes (float result; float16 accumulates in float32, like numpy)."""
        axis, keepdim = _axis_arg(axis, dim, keepdim, keepdims)
        n = math.prod(self.shape[a] for a in self._axes(axis))
        x = self._float()
        s = x.sum(axis, keepdim, dtype=dtypes.float32) * (1.0 / n if n else math.nan)
        return s.cast(x.dtype)

    @_in_float32
    def var(
        self, axis=None, keepdim: bool = False, ddof: int = 0, correction: int | None = None, *, dim=None,
        keepdims=None,
    ) -> Tensor:
        """Variance over axes; ddof=0 like numpy (`correction` is the PyTorch name for ddof)."""
        axis, keepdim = _axis_arg(axis, dim, keepdim, keepdims)
        ddof = correction if correction is not None else ddof
        n = math.prod(self.shape[a] for a in self._axes(axis))
        x = self._float()
        x32 = x.cast(dtypes.float32)
        d = x32 - x32.mean(axis, keepdim=True)
        return ((d * d).sum(axis, keepdim) * (1.0 / (n - ddof) if n > ddof else math.nan)).cast(x.dtype)

    @_in_float32
    def std(
        self, axis=None, keepdim: bool = False, ddof: int = 0, correction: int | None = None, *, dim=None,
        keepdims=None,
    ) -> Tensor:
        """Standard deviation over axes."""
        axis, keepdim = _axis_arg(axis, dim, keepdim, keepdims)
        return self.var(axis, keepdim, ddof, correction).sqrt()

    def argmax(self, axis=None, keepdim: bool = False, *, dim=None, keepdims=None) -> Tensor:
        """Index of the first maximum along axis (of the flattened tensor when axis is None); the first NaN
        counts as the maximum, like numpy."""
        axis, keepdim = _axis_arg(axis, dim, keepdim, keepdims)
        if axis is None:
            return self.flatten().argmax(0, keepdim=False).reshape((1,) * self.ndim if keepdim else ())
        a = self._axis(axis)
        n = self.shape[a]
        if n == 0:
            raise ShapeError(f"argmax: zero-size axis {a} of shape {self.shape}")
        m = self.max(a, keepdim=True)
        rev = Tensor.arange(n, 0, -1, device=self.device).reshape((n,) + (1,) * (self.ndim - a - 1))
        hit = (self == m) | (self != self) if self.dtype.is_float else self == m
        cand = hit.where(rev._broadcast_to_right(self.shape), 0)
        return n - cand.max(a, keepdim)

    def _broadcast_to_right(self, shape: tuple) -> Tensor:
        return self.reshape((1,) * (len(shape) - self.ndim) + self.shape)._broadcast_to(shape)

    def argmin(self, axis=None, keepdim: bool = False, *, dim=None, keepdims=None) -> Tensor:
        """Index of the first minimum."""
        axis, keepdim = _axis_arg(axis, dim, keepdim, keepdims)
        return (-self if self.dtype.is_float else ~self).argmax(axis, keepdim)

    @composite
    @_in_float32
    def softmax(self, axis: int = -1, *, dim=None) -> Tensor:
        """exp(x - max) / sum(exp(x - max)) along axis."""
        axis, _ = _axis_arg(axis, dim, False, None)
        x = self._float()
        # exp2((x - max) * log2 e): x - max <= 0, and where the product's rounding grows (x - max < -20)
        # the probabilities are below 1e-9 of the largest, so two ops do what exp's twenty would. The
        # final kernel recomputes this instead of storing it: recomputing is cheaper than the traffic.
        e = ((x - x.max(axis, keepdim=True)) * _LOG2E).exp2()
        return e / e.sum(axis, keepdim=True)

    @composite
    @_in_float32
    def log_softmax(self, axis: int = -1, *, dim=None) -> Tensor:
        """log(softmax(x)) computed stably."""
        axis, _ = _axis_arg(axis, dim, False, None)
        x = self._float()
        s = x - x.max(axis, keepdim=True)
        return s - _sum_exp_shifted(s, axis).log()

    @composite
    @_in_float32
    def logsumexp(self, axis=None, keepdim: bool = False, *, dim=None, keepdims=None) -> Tensor:
        """log(sum(exp(x))) over axes, computed stably."""
        axis, keepdim = _axis_arg(axis, dim, keepdim, keepdims)
        x = self._float()
        m = x.max(axis, keepdim=True)
        out = _sum_exp_shifted(x - m, axis).log() + m
        return (
            out
            if keepdim
            else out.reshape(tuple(s for i, s in enumerate(x.shape) if i not in self._axes(axis)))
        )

    # --- linear algebra and nn functions ---------------------------------------------------------------
    @composite
    def matmul(self, other: Tensor) -> Tensor:
        """Matrix product with numpy broadcasting of batch dims (1-d operands like numpy)."""
        if not isinstance(other, Tensor):
            other = Tensor(other, device=self.device)
        out = self._matmul_wide(other)
        return out.cast(dtypes.bfloat16) if promote(self.dtype, other.dtype) == dtypes.bfloat16 else out

    def _matmul_wide(self, other: Tensor) -> Tensor:
        """The matrix product in the dtype it accumulates in (float32 for bfloat16, int32 for 8-bit ints)."""
        if not isinstance(other, Tensor):
            other = Tensor(other, device=self.device)
        a, b = self, other
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError(f"matmul: 0-d operand (shapes {a.shape} and {b.shape})")
        squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
        if squeeze_a:
            a = a.reshape(1, a.shape[0])
        if squeeze_b:
            b = b.reshape(b.shape[0], 1)
        if a.shape[-1] != b.shape[-2]:
            raise ShapeError(
                f"matmul: shapes {self.shape} and {other.shape} not aligned: "
                f"{a.shape[-1]} (dim {self.ndim - 1}) != {b.shape[-2]} (dim {max(other.ndim - 2, 0)})"  # dims of the given shapes
            )
        dt = promote(a.dtype, b.dtype)
        acc = _matmul_acc(dt)
        # 8-bit ints widen first; bfloat16 widens at the product, so the GEMM templates see the 16-bit loads
        pre = dt if dt == dtypes.bfloat16 else acc
        batch = _broadcast_shape(a.shape[:-2], b.shape[:-2], "matmul")
        m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
        # the operands' views built on the lazy graph directly: the shapes are checked above, and the
        # Tensor methods' own checks made this the most expensive op of an eager model's graph building
        an = lazy.broadcast(lazy.cast(a.node, pre), batch + (m, k))
        an = lazy.broadcast(lazy.movement(Ops.RESHAPE, an, batch + (m, 1, k)), batch + (m, n, k))
        bn = lazy.broadcast(lazy.cast(b.node, pre), batch + (k, n))
        swap = tuple(range(len(batch))) + (len(batch) + 1, len(batch))
        bn = lazy.movement(Ops.RESHAPE, lazy.movement(Ops.PERMUTE, bn, swap), batch + (1, n, k))
        bn = lazy.broadcast(bn, batch + (m, n, k))
        out = Tensor(lazy.alu(Ops.MUL, lazy.cast(an, acc), lazy.cast(bn, acc))).sum(-1)
        if squeeze_a:
            out = out.reshape(out.shape[:-2] + (n,))
        if squeeze_b:
            out = out.reshape(out.shape[:-1])
        return out

    dot = matmul

    @composite
    def linear(self, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        """self @ weight.T + bias (weight is (out, in) like PyTorch)."""
        out = self._matmul_wide(weight.T)
        out = out + bias if bias is not None else out
        # bfloat16 rounds once, after the bias (the add runs on the float32 accumulators, like a fused GEMM)
        return out.cast(dtypes.bfloat16) if promote(self.dtype, weight.dtype) == dtypes.bfloat16 else out

    def _pool(self, kernel: tuple, stride: tuple, dilation: tuple) -> Tensor:
        """Sliding windows over the last len(kernel) axes: (..., o1..on, k1..kn), as views only."""
        nd = len(kernel)
        x = self
        lead = x.ndim - nd
        for j in range(nd):
            # each pooled axis becomes an (o, k) pair, so spatial axis j now sits at lead + 2*j
            x = x._pool_last(lead + 2 * j, kernel[j], stride[j], dilation[j])
        # now (..., o1, k1, o2, k2, ...) interleaved -> (..., o1..on, k1..kn)
        order = list(range(lead)) + [lead + 2 * j for j in range(nd)] + [lead + 2 * j + 1 for j in range(nd)]
        return x.permute(order)

    def _pool_last(self, axis: int, k: int, s: int, d: int) -> Tensor:
        """Replace axis (size i) by (o, k) windows: out[..., oo, ko, ...] = x[..., oo*s + ko*d, ...]."""
        i = self.shape[axis]
        o = (i - d * (k - 1) - 1) // s + 1
        if o <= 0:
            raise ShapeError(f"pool: window {k} (dilation {d}) larger than input size {i}")
        order = [a for a in range(self.ndim) if a != axis] + [axis]
        x = self.permute(order)
        pre = x.shape[:-1]
        if d == 1 and k <= s:
            need = o * s
            x = (
                x.pad([(0, 0)] * len(pre) + [(0, need - i)])
                if need > i
                else x.shrink([None] * len(pre) + [(0, need)])
            )
            x = x.reshape(pre + (o, s)).shrink([None] * (len(pre) + 1) + [(0, k)])
        else:
            extra = max(0, o * s - i - d)
            i2 = i + extra
            if extra:
                x = x.pad([(0, 0)] * len(pre) + [(0, extra)])
            span = i2 + d
            e = -(-k * span // i2)
            x = x.reshape(pre + (1, i2))._broadcast_to(pre + (e, i2)).reshape(pre + (e * i2,))
            x = x.shrink([None] * len(pre) + [(0, k * span)]).reshape(pre + (k, span))
            x = x.shrink([None] * (len(pre) + 1) + [(0, o * s)]).reshape(pre + (k, o, s))
            x = x.shrink([None] * (len(pre) + 2) + [(0, 1)]).reshape(pre + (k, o))
            x = x.transpose(-1, -2)
        # x is (pre..., o, k): put o back at axis and k right after it
        nd = len(pre)
        back = list(range(axis)) + [nd, nd + 1] + list(range(axis, nd))
        return x.permute(back)

    @composite
    def conv2d(
        self, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1, groups: int = 1
    ) -> Tensor:
        """2-d convolution (cross-correlation) of NCHW input with (Cout, Cin/groups, KH, KW) weights."""
        if self.ndim != 4 or weight.ndim != 4:
            raise ShapeError(f"conv2d: input {self.shape} and weight {weight.shape} must both be 4-d")
        n, cin, h, w = self.shape
        cout, cg, kh, kw = weight.shape
        if cin != cg * groups or cout % groups:
            raise ShapeError(
                f"conv2d: input {self.shape} with {cin} channels does not fit weight {weight.shape}"
                f" with groups={groups}"
            )
        geom = (_pair(stride), _pair(padding), _pair(dilation), groups)
        win = _conv_windows(self, (kh, kw), geom, cout).permute(0, 1, 3, 4, 2, 5, 6)
        oh, ow = win.shape[2], win.shape[3]
        if _pretranspose_weight(n * oh * ow, weight.shape, groups, self.device) or _winograd_fits(
                self, weight, geom, (oh, ow)):
            weight = _weight_by_channel(weight)
        wt = weight.reshape(1, cout, 1, 1, cg, kh, kw)._broadcast_to((n, cout, oh, ow, cg, kh, kw))
        acc = _matmul_acc(win.dtype)  # the weight follows the input dtype, as before
        out = (win.cast(acc) * wt.cast(acc)).sum((4, 5, 6))
        if out.node is not self.node and out.node is not weight.node:
            autograd.record_composite(out.node, _CONV2D, geom, (self.node, weight.node))
        out = out + bias.reshape(1, cout, 1, 1) if bias is not None else out
        return out.cast(dtypes.bfloat16) if win.dtype == dtypes.bfloat16 else out

    def conv_transpose2d(
        self, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, output_padding=0, groups: int = 1,
        dilation=1,
    ) -> Tensor:
        """Transposed 2-d convolution (the gradient of conv2d) of NCHW input with (Cin, Cout/groups, KH, KW)
        weights, like torch.nn.functional.conv_transpose2d; padding may also be ((top, bottom), (left, right))."""
        if self.ndim != 4 or weight.ndim != 4:
            raise ShapeError(f"conv_transpose2d: input {self.shape} and weight {weight.shape} must both be 4-d")
        n, cin, h, w = self.shape
        wc, og, kh, kw = weight.shape
        if wc != cin or cin % groups:
            raise ShapeError(f"conv_transpose2d: input {self.shape} with {cin} channels does not fit weight"
                             f" {weight.shape} (Cin, Cout/groups, KH, KW) with groups={groups}")
        (sh, sw), (dh, dw), (oph, opw) = _pair(stride), _pair(dilation), _pair(output_padding)
        pads = [p if isinstance(p, (tuple, list)) else (p, p) for p in _pair(padding)]
        # spread the input: stride - 1 zeros after each pixel (the trailing ones cropped)
        x = self.reshape(n, cin, h, 1, w, 1).pad(((0, 0), (0, 0), (0, 0), (0, sh - 1), (0, 0), (0, sw - 1)))
        x = x.reshape(n, cin, h * sh, w * sw).shrink((None, None, (0, (h - 1) * sh + 1), (0, (w - 1) * sw + 1)))
        # then a full correlation with the flipped kernel, less the transposed conv's own padding
        span = ((kh - 1) * dh, (kw - 1) * dw)
        edge = [(span[i] - pads[i][0], span[i] - pads[i][1] + (oph, opw)[i]) for i in range(2)]
        x = _pad_signed(x, [(0, 0), (0, 0), *edge])
        cg = cin // groups
        wt = weight.reshape(groups, cg, og, kh, kw).permute(0, 2, 1, 3, 4).reshape(groups * og, cg, kh, kw)
        return x.conv2d(wt.flip((2, 3)), bias, stride=1, padding=0, dilation=(dh, dw), groups=groups)

    def interpolate(
        self, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
        antialias: bool = False,
    ) -> Tensor:
        """Resize the axes after (N, C) like torch.nn.functional.interpolate: mode nearest, nearest-exact,
        linear/bilinear/trilinear or bicubic, to `size` or by `scale_factor` (one value or one per axis)."""
        from . import resample

        nd = self.ndim - 2
        if nd < 1 or (size is None) == (scale_factor is None):
            raise ShapeError(f"interpolate: give exactly one of size or scale_factor, for an (N, C, ...) input"
                             f" (got shape {self.shape})")
        if size is not None:
            size = _pair(size, nd)
            scale = [o / i for o, i in zip(size, self.shape[2:], strict=True)]
        else:
            scale = [float(s) for s in _pair(scale_factor, nd)]
            size = [int(math.floor(s * i)) for s, i in zip(scale, self.shape[2:], strict=True)]
        kind = {"nearest": "nearest", "nearest-exact": "nearest", "linear": "linear", "bilinear": "linear",
                "trilinear": "linear", "bicubic": "cubic"}.get(mode)
        if kind is None:
            raise ShapeError(f"interpolate: mode {mode!r} is not nearest, nearest-exact, linear, bilinear,"
                             " trilinear or bicubic")
        if mode == "nearest":
            coord, rounding = "asymmetric", "floor"
        elif mode == "nearest-exact":
            coord, rounding = "half_pixel", "round_prefer_ceil"
        else:
            coord, rounding = ("align_corners" if align_corners else "pytorch_half_pixel"), "floor"
        x = self
        for j, (s, o) in enumerate(zip(scale, size, strict=True)):
            # antialiased taps past the edge are dropped (PyTorch), not clamped to it
            # (and PyTorch's antialiased bicubic uses a = -0.5)
            taps = resample.axis_taps(self.shape[2 + j], o, s, kind, coord, rounding, -0.5 if antialias else -0.75,
                                      antialias, antialias)
            x = resample.resample_axis(x, 2 + j, taps)
        return x

    @composite
    def max_pool2d(self, kernel_size=2, stride=None, padding=0, dilation=1) -> Tensor:
        """Max over sliding windows of the last two axes (padding counts as -inf)."""
        k = _pair(kernel_size)
        s = _pair(stride) if stride is not None else k
        p = _pair(padding)
        lo = self.dtype.min
        x = self.pad([(0, 0)] * (self.ndim - 2) + [(p[0], p[0]), (p[1], p[1])], value=lo) if any(p) else self
        return x._pool(k, s, _pair(dilation)).max((-2, -1))

    @composite
    def avg_pool2d(self, kernel_size=2, stride=None, padding=0) -> Tensor:
        """Mean over sliding windows of the last two axes (zero padding counted, like PyTorch's default)."""
        k = _pair(kernel_size)
        s = _pair(stride) if stride is not None else k
        p = _pair(padding)
        x = self.pad([(0, 0)] * (self.ndim - 2) + [(p[0], p[0]), (p[1], p[1])]) if any(p) else self
        return x._pool(k, s, (1, 1)).mean((-2, -1))

    @composite
    @_in_float32
    def layernorm(
        self, axis=-1, eps: float = 1e-5, weight: Tensor | None = None, bias: Tensor | None = None
    ) -> Tensor:
        """(x - mean) / sqrt(var + eps) over axis, then optional weight and bias."""
        x = self._float()
        d = x - x.mean(axis, keepdim=True)
        out = d * ((d * d).mean(axis, keepdim=True) + eps).rsqrt()
        if weight is not None:
            out = out * weight
        return out + bias if bias is not None else out

    @composite
    @_in_float32
    def batchnorm(
        self, weight: Tensor | None, bias: Tensor | None, mean: Tensor, var: Tensor, eps: float = 1e-5
    ) -> Tensor:
        """Inference batch norm over axis 1 with running mean and variance."""
        shape = (1, -1) + (1,) * (self.ndim - 2)
        inv = (var.reshape(shape) + eps).rsqrt()
        if weight is not None:
            inv = inv * weight.reshape(shape)
        out = (self._float() - mean.reshape(shape)) * inv
        return out + bias.reshape(shape) if bias is not None else out

    def embedding(self, weight: Tensor) -> Tensor:
        """Rows of weight (V, D) picked by the integer indices in self: shape self.shape + (D,)."""
        if weight.ndim != 2:
            raise ShapeError(f"embedding: weight must be 2-d (vocab, dim), got {weight.shape}")
        v, d = weight.shape
        if self.node.realized and self.numel():  # indices known on the host: refuse bad ones like PyTorch
            host = self.numpy()
            bad = host[(host < 0) | (host >= v)]
            if bad.size:
                raise IndexOutOfRangeError(
                    f"embedding: index {bad.flat[0]} out of range for a table of {v} rows (valid: 0..{v - 1})"
                )
        return weight.take(self, axis=0)

    def gather(self, dim: int, index: Tensor) -> Tensor:
        """torch.gather: out[p] = self[p with p[dim] = index[p]]; index has self's rank, and its size may
        differ from self's on dim only (indices are clamped to the axis)."""
        index = _as_index(index, self.device, "gather")
        a = self._axis(dim)
        return Tensor(lazy.gather(self.node, index.node, a))

    def take(self, indices, axis: int = 0) -> Tensor:
        """numpy.take: slices of self along axis at integer indices (negative ones count from the end);
        the result has shape self.shape[:axis] + indices.shape + self.shape[axis + 1:]."""
        idx = _as_index(indices, self.device, "take")
        a = self._axis(axis)
        n, ishape = self.shape[a], idx.shape
        p, q, m = math.prod(self.shape[:a]), math.prod(self.shape[a + 1 :]), idx.numel()
        idx = (idx < 0).where(idx + n, idx).reshape(1, m, 1)._broadcast_to((p, m, q))
        out = Tensor(lazy.gather(self.reshape(p, n, q).node, idx.node, 1))
        return out.reshape(self.shape[:a] + ishape + self.shape[a + 1 :])

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True, *, axis=None):  # noqa: A002
        """The k largest (or smallest) values along dim and their int32 indices, like torch.topk; equal values
        come in index order. Ranks every element against every other along dim (O(n^2) compares, fused)."""
        a = self._axis(dim if axis is None else axis)
        n = self.shape[a]
        if not 0 <= k <= n:
            raise ShapeError(f"topk: k={k} is outside 0..{n} for axis {a} of shape {self.shape}")
        x = self.transpose(a, -1) if a != self.ndim - 1 else self
        key = x if largest else (-x if x.dtype.is_float else ~x)
        ki, kj = key.unsqueeze(-1), key.unsqueeze(-2)  # (..., i, 1) and (..., 1, j)
        pos = Tensor.arange(n, device=self.device)
        before = (kj > ki) | ((kj == ki) & (pos.reshape(1, n) < pos.reshape(n, 1)))
        rank = before.cast(dtypes.int32).sum(-1)  # (..., n): how many elements come before each one
        hit = rank.unsqueeze(-2) == Tensor.arange(k, device=self.device).reshape(k, 1)  # (..., k, n)
        idx = hit.where(pos.reshape(1, n), 0).sum(-1).cast(dtypes.int32)
        vals = x.gather(x.ndim - 1, idx)
        if a != self.ndim - 1:
            vals, idx = vals.transpose(a, -1), idx.transpose(a, -1)
        return vals, idx

    def cumsum(self, axis: int = 0) -> Tensor:
        """Running sum along axis (as a masked sum over a lower-triangular window: O(n^2) per row)."""
        a = self._axis(axis)
        n = self.shape[a]
        x = self.transpose(a, -1) if a != self.ndim - 1 else self
        tri = Tensor.arange(n, device=self.device).reshape(n, 1) >= Tensor.arange(n, device=self.device).reshape(1, n)
        out = tri.where(x.unsqueeze(-2), 0).sum(-1, dtype=x.dtype if x.dtype.priority >= 3 else None)
        return out.transpose(a, -1) if a != self.ndim - 1 else out

    def dropout(self, p: float = 0.5, training: bool | None = None) -> Tensor:
        """Zero each element with probability p and scale the rest by 1/(1-p) while training."""
        training = Tensor.training if training is None else training
        if not training or p == 0:
            return self
        if not 0 <= p < 1:
            raise ShapeError(f"dropout: probability {p} must be in [0, 1)")
        keep = Tensor.rand(*self.shape, device=self.device) >= p
        return keep.where(self * (1.0 / (1.0 - p)), 0.0)

    @composite(fuse=_attention_fuses)
    def scaled_dot_product_attention(
        self, key: Tensor, value: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False
    ) -> Tensor:
        """softmax(q @ k^T / sqrt(d) + mask) @ v with q = self; is_causal masks future positions."""
        q = self._float()
        scores = q.matmul(key.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
        if is_causal:
            mask = _causal_mask(scores.shape[-2], scores.shape[-1], self.device)
            scores = mask._broadcast_to_right(scores.shape).where(scores, -math.inf)
        if attn_mask is not None:
            is_bool = attn_mask.dtype == dtypes.bool
            scores = attn_mask.where(scores, -math.inf) if is_bool else scores + attn_mask
        return scores.softmax(-1).matmul(value)


def _as_index(idx, device: str, name: str) -> Tensor:
    """Integer indices as an int32 tensor on device; floats are rejected with the cast to use."""
    if not isinstance(idx, Tensor):
        arr = np.asarray(idx)
        if arr.dtype.kind not in "iu":
            raise DTypeError(f"{name}: indices must be integers, got {arr.dtype}; cast with .astype(np.int32)")
        idx = Tensor(arr, device=device, dtype=dtypes.int32)
    if not idx.dtype.is_int:
        raise DTypeError(f"{name}: indices must be an integer tensor, got {idx.dtype.name}; use .int()")
    return idx.cast(dtypes.int32)


def _pad_signed(t: Tensor, pads: list) -> Tensor:
    """t padded with zeros by (lo, hi) on each axis, where a negative amount cuts that many off instead."""
    t = t.pad([(max(lo, 0), max(hi, 0)) for lo, hi in pads])
    return t.shrink([(max(-lo, 0), s - max(-hi, 0)) for (lo, hi), s in zip(pads, t.shape, strict=True)])


def _conv_windows(x: Tensor, k_hw: tuple, geom: tuple, cout: int) -> Tensor:
    """The input windows each output channel of a convolution sees, as views of x: (N, Cout, Cin/groups,
    OH, OW, KH, KW), the windows of output channel o's group repeated for every o of that group."""
    (sh, sw), (ph, pw), (dh, dw), groups = geom
    n, cin = x.shape[:2]
    kh, kw = k_hw
    cg, og = cin // groups, cout // groups
    xp = x.pad(((0, 0), (0, 0), (ph, ph), (pw, pw)))
    if (sh, sw, dh, dw) == (1, 1, 1, 1) and kh <= xp.shape[2] and kw <= xp.shape[3]:
        win = _unit_stride_windows(xp, kh, kw)
    else:
        win = xp._pool((kh, kw), (sh, sw), (dh, dw))  # (n, cin, oh, ow, kh, kw)
    oh, ow = win.shape[2], win.shape[3]
    win = win.reshape(n, groups, 1, cg, oh, ow, kh, kw)._broadcast_to((n, groups, og, cg, oh, ow, kh, kw))
    return win.reshape(n, cout, cg, oh, ow, kh, kw)


def _unit_stride_windows(xp: Tensor, kh: int, kw: int) -> Tensor:
    """The KH x KW windows at stride 1 of xp (N, C, H, W): (N, C, OH, OW, KH, KW), as views only. The same
    view `_pool` builds (the same kernels: its index math simplifies alike) in 13 view ops rather than 21:
    a stride-1 conv's graph is rebuilt every eager call, on the host thread before the first kernel.
    Along each axis: KH + 1 copies of the axis read at a stride one longer than it, so copy ky at
    position oy is element oy + ky."""
    n, c, hp, wp = xp.shape
    oh, ow = hp - kh + 1, wp - kw + 1
    v = xp.reshape(n, c, 1, hp, wp)._broadcast_to((n, c, kh + 1, hp, wp)).reshape(n, c, (kh + 1) * hp, wp)
    v = v.shrink((None, None, (0, kh * (hp + 1)), None)).reshape(n, c, kh, hp + 1, wp)
    v = v.shrink((None, None, None, (0, oh), None)).reshape(n, c, kh, oh, 1, wp)
    v = v._broadcast_to((n, c, kh, oh, kw + 1, wp)).reshape(n, c, kh, oh, (kw + 1) * wp)
    v = v.shrink((None, None, None, None, (0, kw * (wp + 1)))).reshape(n, c, kh, oh, kw, wp + 1)
    return v.shrink((None, None, None, None, None, (0, ow))).permute(0, 1, 3, 5, 2, 4)


# Below this many weight elements re-read through a transposing pack (the weight's size times the output
# tiles, ~128 pixels each, that pack it), the transposed copy saves less than it costs: one more kernel per
# call is ~0.2 ms of graph, schedule, launch and copy, a gathered element ~0.5 ns (2026-11-26, EPYC, PoCL).
_PRETRANSPOSE_MIN_REREADS = 1 << 20


def _pretranspose_weight(pixels: int, w_shape: tuple, groups: int, device: str = "CL") -> bool:
    """Whether conv2d stores the weight transposed, (Cin*KH*KW, Cout), before the convolution kernel. The CPU
    GEMM template (OpenCL devices) packs a slab of the weight for every tile of output pixels with the output
    channels innermost: from the (Cout, Cin, KH, KW) layout that is a transposing gather per tile, from the
    transposed copy a contiguous one (or none, render_gemm's direct B). 1x1 and narrow convs
    (render_pointwise) read the weight as rows in place, grouped and depthwise ones have their own
    templates; the other backends (REF, SIM's matrix unit, CUDA/HIP) lay the weight out themselves."""
    from .render_pointwise import NARROW

    cout, cg, kh, kw = w_shape
    if device.split(":")[0] != "CL" or groups != 1 or kh * kw == 1 or cout <= NARROW:
        return False
    return (pixels // 128) * cout * cg * kh * kw >= _PRETRANSPOSE_MIN_REREADS


def _winograd_fits(x: Tensor, weight: Tensor, geom: tuple, out_hw: tuple) -> bool:
    """Whether conv2d of x by weight takes the F(2x2, 3x3) template (float32 on a CL device, a shape
    render_winograd takes), which reads the weight transposed."""
    from .render_winograd import winograd_fits

    (stride, _, dilation, groups) = geom
    return (x.device.split(":")[0] == "CL" and x.dtype == weight.dtype == dtypes.float32
            and winograd_fits(x.shape, weight.shape, stride, dilation, groups, out_hw))


def _weight_by_channel(weight: Tensor) -> Tensor:
    """weight (Cout, Cin, KH, KW) as the same shape over a buffer stored (Cin*KH*KW, Cout). The identity multiply
    makes the scheduler store the transposed view (a view alone would be read through in the conv's kernel);
    x * 1 keeps every value, -0.0, NaN and inf included."""
    cout, cg, kh, kw = weight.shape
    by_channel = weight.reshape(cout, cg * kh * kw).permute(1, 0) * 1
    return by_channel.permute(1, 0).reshape(cout, cg, kh, kw)


def _conv2d_input_grad(g: Tensor, w: Tensor, in_hw: tuple, geom: tuple) -> Tensor:
    """d(conv2d)/d(input): the transposed convolution of the output gradient with the forward's weights, at the
    forward's stride, padding, dilation and groups; output_padding restores the input rows and columns that no
    window reached (a stride that does not divide the padded input)."""
    (sh, sw), (ph, pw), (dh, dw), groups = geom
    oh, ow = g.shape[2:]
    kh, kw = w.shape[2:]
    extra = tuple(size - ((o - 1) * s - 2 * p + d * (k - 1) + 1)
                  for size, o, s, p, d, k in ((in_hw[0], oh, sh, ph, dh, kh), (in_hw[1], ow, sw, pw, dw, kw)))
    return g.conv_transpose2d(w, stride=(sh, sw), padding=(ph, pw), output_padding=extra, groups=groups,
                              dilation=(dh, dw))


def _conv2d_weight_grad(g: Tensor, x: Tensor, k_hw: tuple, geom: tuple) -> Tensor:
    """d(conv2d)/d(weight): the input's windows (the forward's views) times the output gradient, summed
    over the batch and the output pixels: the correlation of input and output gradient with the batch as
    the reduced channel, written so the GEMM template packs the same window view as the forward."""
    n, cout, oh, ow = g.shape
    cg = x.shape[1] // geom[3]
    kh, kw = k_hw
    win = _conv_windows(x, k_hw, geom, cout)  # (n, cout, cg, oh, ow, kh, kw)
    gb = g.reshape(n, cout, 1, oh, ow, 1, 1)._broadcast_to((n, cout, cg, oh, ow, kh, kw))
    return (win * gb).sum((0, 3, 4))


def _conv2d_backward(node: Node, geom: tuple, g: Node, x: Node, w: Node) -> tuple:
    """conv2d's backward rule (autograd.Composite): both gradients as GEMM-shaped contractions."""
    gt = Tensor(g)
    dx = dw = None
    if x.requires_grad:
        dx = _conv2d_input_grad(gt, Tensor(w).cast(g.dtype), x.shape[2:], geom).cast(x.dtype).node
    if w.requires_grad:
        dw = _conv2d_weight_grad(gt, Tensor(x).cast(g.dtype), w.shape[2:], geom).cast(w.dtype).node
    return dx, dw


_CONV2D = autograd.Composite("conv2d", _conv2d_backward)


def _matmul_acc(dt: DType) -> DType:
    """The dtype a matmul or convolution multiplies and accumulates in: int32 for 8-bit ints (no wrap in int8),
    float32 for bfloat16 (products of bfloat16 values are exact in float32; the result rounds once)."""
    return dtypes.int32 if dt in (dtypes.int8, dtypes.uint8) else dtypes.float32 if dt == dtypes.bfloat16 else dt


def _broadcast_shape(a: tuple, b: tuple, name: str, target: bool = False) -> tuple:
    """numpy broadcasting of two shapes; ShapeError names the op and both shapes."""
    n = max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(pa, pb, strict=True):
        if x == y or x == 1 or (y == 1 and not target):
            out.append(y if x == 1 else x)
        else:
            raise ShapeError(
                f"{name}: operands could not be broadcast together with shapes {tuple(a)} {tuple(b)}"
            )
    return tuple(out)


# float sums longer than this add in a tree of blocks of at most _SUM_BLOCK values (Tensor._blocked_sum);
# shorter ones (a model's rows: 768, 3072, 4096) stay one kernel
_SUM_BLOCK_MIN = 4096
# short enough that even a scalar (unvectorized) block adds few enough values in a row for ~1e-6
_SUM_BLOCK = 64


@functools.lru_cache(maxsize=64)
def _causal_mask(L: int, S: int, device: str) -> Tensor:
    """The (L, S) lower-triangular bool mask, made once per size and device and kept as a buffer, so a
    model's forward pass reads it instead of rebuilding it as a kernel every call."""
    return Tensor(np.tril(np.ones((L, S), np.bool_)), device=device)


def _axis_arg(axis, dim, keepdim: bool, keepdims) -> tuple:
    """The axis and keepdim of a reduction called with numpy (`axis=`, `keepdims=`) or PyTorch (`dim=`,
    `keepdim=`) names; giving both names of one argument is an error."""
    if dim is not None:
        if axis is not None and axis != -1:
            raise TypeError(f"got both axis={axis!r} and dim={dim!r}; pass one of them")
        axis = dim
    if keepdims is not None:
        keepdim = bool(keepdims)
    return axis, keepdim


def _is_contraction(n: Node) -> bool:
    """True for a product of broadcast operands (matmul, conv): numpy contracts those with BLAS in one
    pass, and the GEMM kernel needs the reduce whole."""
    if n.op != Ops.MUL:
        return False
    if n.src is lazy.PACKED:  # read from the composite's template rows, making none of its nodes
        rows, env = n.unit[3], n.unit[4]
        base = len(env)
        for j in rows[-1][1]:
            while j >= base and rows[j - base][0] in _VIEWS_AND_CASTS:
                j = rows[j - base][1][0]
            if (rows[j - base][0] == Ops.EXPAND) if j >= base else _broadcast_operand(env[j]):
                return True
        return False
    return any(_broadcast_operand(s) for s in n.src)


_VIEWS_AND_CASTS = (Ops.CAST, Ops.RESHAPE, Ops.PERMUTE, Ops.SHRINK, Ops.PAD, Ops.FLIP)


def _broadcast_operand(s: Node) -> bool:
    """Whether s is an EXPAND under views and casts (an operand broadcast for a contraction)."""
    while s.op in _VIEWS_AND_CASTS:
        if s.src is lazy.PACKED:
            lazy.expand(s)
        s = s.src[0]
    return s.op == Ops.EXPAND


def _sum_exp_shifted(s: Tensor, axis) -> Tensor:
    """sum(exp(s)) along axis, kept, for s = x - max(x) <= 0: one exp2 per element instead of exp's two.

    exp's range reduction keeps every ulp over the whole float32 range; here s <= 0 and the product's
    rounding only grows where a term is below 1e-9 of the row's largest (1), so the sum cannot see it.
    """
    return (s * _LOG2E).exp2().sum(axis, keepdim=True)
