"""The primitive ops: every Tensor operation is composed from these, and only these reach a backend.

Unary (elementwise, float unless noted)
  EXP2   2**x
  LOG2   log base 2
  SIN    sine (radians)
  SQRT   square root
  RECIP  1/x
  NEG    -x (logical not for bool)
Binary (elementwise, operands of one shape and dtype)
  ADD    a+b (wraps for ints)
  MUL    a*b
  MAX    larger of a and b
  CMPLT  a<b, gives bool
  CMPNE  a!=b, gives bool
  IDIV   integer division truncating toward zero, like C; x/0 gives 0
  MOD    remainder with the sign of a, like C's %; x%0 gives 0
  AND    bitwise/logical and
  OR     bitwise/logical or
  XOR    bitwise/logical xor
  SHL    a<<b (ints)
  SHR    a>>b (ints, arithmetic for signed)
Ternary
  WHERE  c ? a : b
Reduce (keep reduced axes with size 1; arg is the tuple of axes)
  SUM         sum over axes (accumulates in float32 for float16)
  REDUCE_MAX  maximum over axes
Movement (views: no data moves; kernels index through them)
  RESHAPE  new shape, same element count, row-major order
  PERMUTE  reorder axes
  EXPAND   broadcast size-1 axes to a larger size
  PAD      zero-pad each axis by (before, after)
  SHRINK   keep [start, end) of each axis
  FLIP     reverse the listed axes
Indexing
  GATHER values of src[0] at the int32 positions src[1] along axis `arg` (torch.gather): the index has
         src[0]'s rank and shape except along `arg`; out[p] = src[0][p with p[arg] = idx[p]]. Indices are
         clamped to the axis (out-of-range never reads outside the buffer).
Other
  CAST   convert to another dtype (float->int truncates)
  LOAD   read a realized buffer (a leaf of the graph)
  STORE  write a kernel's result to its output buffer
  CONST  one scalar value broadcast to a shape
"""

from __future__ import annotations

from enum import Enum, auto


class Ops(Enum):
    """The primitive ops; see the module docstring for the meaning of each."""

    # members are singletons, so identity is equality: hashing by identity keeps every `op in SET` and
    # dict lookup in C (Enum's own __hash__ is Python code, and graph building does hundreds per call)
    __hash__ = object.__hash__

    EXP2 = auto()
    LOG2 = auto()
    SIN = auto()
    SQRT = auto()
    RECIP = auto()
    NEG = auto()
    ADD = auto()
    MUL = auto()
    MAX = auto()
    CMPLT = auto()
    CMPNE = auto()
    IDIV = auto()
    MOD = auto()
    AND = auto()
    OR = auto()
    XOR = auto()
    SHL = auto()
    SHR = auto()
    WHERE = auto()
    SUM = auto()
    REDUCE_MAX = auto()
    RESHAPE = auto()
    PERMUTE = auto()
    EXPAND = auto()
    PAD = auto()
    SHRINK = auto()
    FLIP = auto()
    GATHER = auto()
    CAST = auto()
    LOAD = auto()
    STORE = auto()
    CONST = auto()


UNARY = frozenset({Ops.EXP2, Ops.LOG2, Ops.SIN, Ops.SQRT, Ops.RECIP, Ops.NEG})
BINARY = frozenset(
    {
        Ops.ADD,
        Ops.MUL,
        Ops.MAX,
        Ops.CMPLT,
        Ops.CMPNE,
        Ops.IDIV,
        Ops.MOD,
        Ops.AND,
        Ops.OR,
        Ops.XOR,
        Ops.SHL,
        Ops.SHR,
    }
)
TERNARY = frozenset({Ops.WHERE})
ELEMENTWISE = UNARY | BINARY | TERNARY | {Ops.CAST}
REDUCE = frozenset({Ops.SUM, Ops.REDUCE_MAX})
MOVEMENT = frozenset({Ops.RESHAPE, Ops.PERMUTE, Ops.EXPAND, Ops.PAD, Ops.SHRINK, Ops.FLIP})
FLOAT_ONLY = frozenset({Ops.EXP2, Ops.LOG2, Ops.SIN, Ops.SQRT, Ops.RECIP})
INT_ONLY = frozenset({Ops.SHL, Ops.SHR, Ops.IDIV, Ops.MOD})
