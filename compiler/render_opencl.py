"""Renders a scheduled kernel with its KernelOpts as C: index math, fused expressions, loops; OpenCL C by
default, CUDA or HIP C++ through a `dialects.Dialect` (the same statements, other spellings).

`ExprWriter` is the public building block other OpenCL templates (render_gemm.py) write kernels with:
values through views and fused ops as C statements, and the finished kernel's source."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import replace

from .cl_math import prelude
from .dialects import OPENCL, Dialect
from .dtypes import FLOAT32_ROUNDER, round_to
from .dtypes import reduce_identity as identity_value
from .indexing import linear, unravel, view_index
from .kernel_ir import Kernel, KernelOpts, LoopNest, Program
from .lazy import Node
from .ops import MOVEMENT, Ops
from .symbolic import Lin, in_range

_BIN = {
    Ops.ADD: "({0}+{1})",
    Ops.MUL: "({0}*{1})",
    Ops.MAX: "({0}>{1}?{0}:{1})",  # operators, not builtins: PoCL calls builtins out of line
    Ops.CMPLT: "({0}<{1})",
    Ops.CMPNE: "({0}!={1})",
    Ops.AND: "({0}&{1})",
    Ops.OR: "({0}|{1})",
    Ops.XOR: "({0}^{1})",
    # x/0 and x%0 give 0; x/-1 and x%-1 never divide, because INT_MIN/-1 overflows (and traps on x86)
    Ops.IDIV: "({1}==0?0:{1}==-1?-{0}:{0}/{1})",
    Ops.MOD: "(({1}==0||{1}==-1)?0:{0}%{1})",
}
_INT_LITERAL = re.compile(r"\(?(-?\d+)\)?")


def _int_division(op: Ops, a: str, b: str, unsigned: bool) -> str:
    """C for a / b or a % b on integers, as _BIN spells them, less the tests that cannot hold: a literal
    divisor needs none, an unsigned one is never -1 (clang warns of such constant operands)."""
    lit = _INT_LITERAL.fullmatch(b)
    if lit is not None:
        d = int(lit.group(1))
        if d == 0 or (d == -1 and op is Ops.MOD):
            return "0"
        return f"(-{a})" if d == -1 else f"({a}/{b})" if op is Ops.IDIV else f"({a}%{b})"
    if unsigned:
        return f"({b}==0?0:{a}/{b})" if op is Ops.IDIV else f"({b}==0?0:{a}%{b})"
    return _BIN[op].format(a, b)


# ops whose bfloat16/float16 result is one of their operands (or a rounded literal): nothing to round
_ROUND_EXACT = MOVEMENT | {Ops.CONST, Ops.GATHER, Ops.NEG, Ops.MAX, Ops.WHERE}
# the helper that rounds a float to each 16-bit float dtype's nearest value (compiler/cl_math.py)
_ROUND = {"bfloat16": "wb_rbf", "float16": "wb_rh"}
# NaN wins, like numpy.maximum; a helper function, so nested maxima (the combine of split accumulators)
# do not repeat their operands and grow the source exponentially
_FMAX = "wb_fmax({0},{1})"


class _NoVector(Exception):
    """A kernel asked for float8 reduces has a load or an op that cannot be vectorized."""


_VEC_OPS = {
    Ops.ADD: "({0}+{1})",
    Ops.MUL: "({0}*{1})",
    Ops.NEG: "(-{0})",
    Ops.RECIP: "(1.0f/{0})",
    Ops.EXP2: "wb_exp2v({0})",
    Ops.MAX: _FMAX,
}
_UN = {
    Ops.EXP2: "wb_exp2({0})",
    Ops.LOG2: "wb_log2({0})",
    Ops.SIN: "sin({0})",
    Ops.SQRT: "wb_sqrt({0})",
    Ops.RECIP: "(1.0f/{0})",
    Ops.NEG: "(-{0})",
}


_VIEWS = frozenset({Ops.RESHAPE, Ops.EXPAND, Ops.PERMUTE, Ops.SHRINK, Ops.FLIP})  # views that add no values


def _under_views(n: Node) -> Node:
    """The node a chain of value-preserving views reads."""
    while n.op in _VIEWS:
        n = n.src[0]
    return n


def _const_value(n: Node):
    """The value of a constant seen through views, or None."""
    n = _under_views(n)
    return n.arg if n.op == Ops.CONST else None


def integer_valued(n: Node) -> bool:
    """Whether float node n is (y + R) - R with R = FLOAT32_ROUNDER: the round to nearest that tensor.exp
    writes without a cast. Its values are integers (or NaN, +-inf) for every y but -2**23 < y <= -2**22, where
    a half may remain; there exp2 is 0 either way. So exp2 of it may take wb_exp2i whatever y is."""
    if n.op != Ops.ADD:
        return False
    for inner, c in (n.src, n.src[::-1]):
        inner = _under_views(inner)
        if _const_value(c) == -FLOAT32_ROUNDER and inner.op == Ops.ADD:
            if FLOAT32_ROUNDER in (_const_value(inner.src[0]), _const_value(inner.src[1])):
                return True
    return False


def c_literal(v, dtype) -> str:
    """A C literal of value v in dtype's compute type."""
    if dtype.is_float:
        if dtype.name in _ROUND:  # a bfloat16/float16 node's value is a value of its dtype, constants included
            v = float(round_to(v, dtype))
        if math.isnan(v):
            return "NAN"
        if math.isinf(v):
            return "INFINITY" if v > 0 else "(-INFINITY)"
        # parenthesised when negative: NEG renders "(-{0})", and "--1.0f" is a decrement, not a value
        return f"({float(v)!r}f)" if math.copysign(1.0, v) < 0 else f"{float(v)!r}f"
    if dtype.name == "bool":
        return "1" if v else "0"
    return "(-2147483647-1)" if v == -(2**31) else f"({int(v)})" if v < 0 else str(int(v))


def reduce_identity(op: Ops, dtype) -> str:
    """The starting value of an accumulator, as a C literal."""
    return c_literal(identity_value(op, dtype), dtype)


def reduce_combine(op: Ops, dtype) -> str:
    """The C template ({0}, {1}) that folds one more value into a reduce's accumulator."""
    if dtype.name == "bool":
        return "{0}|{1}"
    return "{0}+{1}" if op == Ops.SUM else _FMAX if dtype.is_float else "({0}>{1}?{0}:{1})"


class ExprWriter:
    """Writes the statements of one OpenCL kernel for k: each value at an index (loads through views,
    fused ops) becomes C temporaries; `kernel_source` wraps what was emitted as the kernel's body.

    Arguments are k.buffers in order, named data0 (the output), data1, ...
    """

    def __init__(self, k: Kernel, opts: KernelOpts, dialect: Dialect = OPENCL):
        self.k, self.opts, self.d = k, opts, dialect
        self.bufs: list[Node] = k.buffers
        self.buf_index = {n.id: i for i, n in enumerate(self.bufs)}
        self.lines: list[str] = []
        self.memo: dict = {}
        self.ntmp = 0
        self.acc: dict = {}
        self.acc_override: str | None = None  # the reduce's value as one variable (gemm epilogue)
        self.vec_atom = None  # the reduce loop variable that float8 loads step along (opts.vec)
        self.vecs: set[str] = set()  # temporaries holding float8 values
        self.indent = 1
        self.extra_args: list[str] = []  # parameters after the buffers (render_gemm's tile counter)

    def emit(self, line: str) -> None:
        """Append one statement at the current indent."""
        self.lines.append("  " * self.indent + line)

    def tmp(self, ctype: str, expr: str) -> str:
        """Emit `ctype tN = expr;` (ctype an OpenCL type name) and return the new temporary's name."""
        name = f"t{self.ntmp}"
        self.ntmp += 1
        self.emit(f"{self.d.ctype(ctype)} {name} = {expr};")
        return name

    # --- expressions -------------------------------------------------------------------------------
    def expr(self, n: Node, idx: tuple, valid: frozenset) -> str:
        """C for node n's value at index idx (Lins over n.shape), guarded by the conditions in valid
        (outside them the value reads as 0); statements it needs are emitted first."""
        if n.id in self.buf_index and n is not self.k.out:
            return self.load(n, idx, valid)
        if n is self.k.reduce and self.acc_override is not None:
            return self.acc_override
        key = (n.id, idx, valid)
        if key in self.memo:
            return self.memo[key]
        out = self._expr(n, idx, valid)
        if n.dtype.name in _ROUND and n.op not in _ROUND_EXACT and re.fullmatch(r"t\d+", out):
            # every bfloat16/float16 op rounds its float result, as REF and PyTorch do: fused or not, the same bits
            out = self.tmp("float", f"{_ROUND[n.dtype.name]}({out})")
        self.memo[key] = out
        return out

    def load(self, n: Node, idx: tuple, valid: frozenset) -> str:
        if "0" in valid:
            return c_literal(0, n.dtype)
        key = ("load", n.id, idx, valid)
        if key in self.memo:
            return self.memo[key]
        lin = linear(idx, n.shape)
        j = self.buf_index[n.id]
        pos = lin.render()
        if self.vec_atom is not None and self.vec_atom.key[1] in lin.variables():
            # a float8 load needs the loop variable as a plain term of stride vec; one hidden in a division or
            # remainder (a reshaped view) would be read as a broadcast scalar: such a kernel stays scalar
            nested = any(a.key[0] != "v" and self.vec_atom.key[1] in a.key[1].variables() for a in lin.terms)
            if (
                nested
                or lin.terms.get(self.vec_atom, 0) != self.opts.vec
                or valid
                or n.dtype.name != "float32"
                or not self.d.vectors
            ):
                raise _NoVector
            out = self.tmp("float8", f"*(const __global float8u*)(data{j}+{pos})")
            self.vecs.add(out)
            self.memo[key] = out
            return out
        val = (
            self.d.load_half(f"data{j}", pos)
            if n.dtype.cname == "half"
            else f"wb_b2f(data{j}[{pos}])"
            if n.dtype.name == "bfloat16"
            else f"(bool)data{j}[{pos}]"
            if n.dtype.name == "bool"
            else f"data{j}[{pos}]"
        )
        if valid:
            val = f"({'&&'.join(sorted(valid))}?{val}:{c_literal(0, n.dtype)})"
        out = self.tmp(n.dtype.compute, val)
        self.memo[key] = out
        return out

    def _expr(self, n: Node, idx: tuple, valid: frozenset) -> str:
        op, ct = n.op, n.dtype.compute
        if op == Ops.CONST:
            return c_literal(n.arg, n.dtype)
        if op in MOVEMENT:
            sidx, bounds = view_index(n, idx)
            if op != Ops.PAD:
                return self.expr(n.src[0], sidx, valid)
            conds = [c for b in bounds for c in in_range(*b)]
            if "0" in conds:
                return c_literal(0, n.dtype)
            inner = self.expr(n.src[0], sidx, valid | frozenset(conds))
            if not conds or (n.src[0].id in self.buf_index and n.src[0] is not self.k.out):
                return inner  # a guarded load already reads 0 outside the padding conditions
            return self.tmp(ct, f"({'&&'.join(conds)}?{inner}:{c_literal(0, n.dtype)})")
        if op == Ops.GATHER:
            # the loaded index becomes an index atom clamped to the axis, so any view of the source works
            size = n.src[0].shape[n.arg]
            i = self.expr(n.src[1], idx, valid)
            pos = self.tmp("int", f"({i}<0?0:{i}>{size - 1}?{size - 1}:{i})")
            sidx = tuple(Lin.var(pos, size) if a == n.arg else j for a, j in enumerate(idx))
            return self.expr(n.src[0], sidx, valid)
        srcs = [self.expr(s, idx, valid) for s in n.src]
        # 2**n of an integer n (exp's scale factor): its bits, not exp2's polynomial
        exact = op == Ops.EXP2 and n.dtype.name == "float32" and integer_valued(n.src[0])
        if self.vecs.intersection(srcs):
            if n.dtype.name != "float32" or op not in _VEC_OPS:
                raise _NoVector
            tpl = "wb_exp2iv({0})" if exact else _VEC_OPS[op]
            out = self.tmp("float8", tpl.format(*[v if v in self.vecs else f"((float8)({v}))" for v in srcs]))
            self.vecs.add(out)
            return out
        if op == Ops.CAST:
            cast = f"({srcs[0]}!=0)" if n.dtype.name == "bool" else f"({self.d.ctype(ct)})({srcs[0]})"
            return self.tmp(ct, cast)
        if op == Ops.WHERE:
            return self.tmp(ct, f"({srcs[0]}?{srcs[1]}:{srcs[2]})")
        sdt = n.src[0].dtype
        if sdt.name == "bool" and op in (Ops.ADD, Ops.MUL, Ops.MAX, Ops.NEG):
            tpl = {Ops.ADD: "({0}|{1})", Ops.MUL: "({0}&{1})", Ops.MAX: "({0}|{1})", Ops.NEG: "(!{0})"}[op]
            return self.tmp(ct, tpl.format(*srcs))
        if op in (Ops.SHL, Ops.SHR):
            w = 8 * sdt.itemsize - 1
            amt = f"({srcs[1]}<0?0:{srcs[1]}>{w}?{w}:{srcs[1]})"
            return self.tmp(ct, f"({srcs[0]}{'<<' if op == Ops.SHL else '>>'}{amt})")
        if op in (Ops.IDIV, Ops.MOD):
            return self.tmp(ct, _int_division(op, srcs[0], srcs[1], sdt.is_unsigned))
        tpl = self.d.unary.get(op.name) or ("wb_exp2i({0})" if exact else _UN.get(op)) or _BIN[op]
        if op == Ops.MAX and sdt.is_float:
            tpl = _FMAX
            if not re.fullmatch(r"t\d+|acc\w*", srcs[0]):  # keep literals out of the NaN test
                srcs = srcs[::-1]
        return self.tmp(ct, tpl.format(*srcs))

    def store(self, val: str, pos: Lin) -> None:
        """Emit the write of val to the output at row-major position pos."""
        p = pos.render()
        if self.k.out.dtype.cname == "half":
            self.emit(self.d.store_half(val, p, "data0"))
        elif self.k.out.dtype.name == "bfloat16":
            self.emit(f"data0[{p}] = wb_f2b({val});")
        else:
            self.emit(f"data0[{p}] = ({self.d.ctype(self.k.out.dtype.cname)})({val});")

    def kernel_source(self) -> tuple[str, str]:
        """(source, entry name) of the kernel whose body is every statement emitted so far."""
        k, d = self.k, self.d
        name = re.sub(r"\W", "_", k.name)
        args = [f"{d.global_arg}{d.ctype(k.out.dtype.cname)}* {d.restrict} data0"] + [
            f"const {d.global_arg}{d.ctype(b.dtype.cname)}* {d.restrict} data{i}"
            for i, b in enumerate(self.bufs[1:], 1)
        ] + self.extra_args
        body = "\n".join(self.lines)
        helpers = prelude(body, d.func, d.helpers)
        return d.header + helpers + f"{d.kernel_head} {name}({', '.join(args)}) {{\n" + body + "\n}\n", name


class _Renderer(ExprWriter):
    """The general loop-nest kernel: global work-items over output axes, loops over reduce axes."""

    def __init__(self, k: Kernel, opts: KernelOpts, dialect: Dialect = OPENCL):
        super().__init__(k, opts, dialect)
        self.nest = LoopNest.build(k.full_shape, k.reduce_axes, opts)

    def render(self) -> Program:
        k, nest = self.k, self.nest
        shape = k.full_shape
        base = [Lin()] * len(shape)
        local = self.opts.local
        group = self.opts.group if k.reduce is not None and not nest.upcast else 0
        guard = []
        if group:  # one work-group per output: the group ids are the output's coordinates
            local = (group,) + (1,) * (len(nest.global_size) - 1)
            self.emit(f"int lid = {self.d.local_ids[0]};")
        elif self.d.fixed_local:
            local = local or gpu_local_size(nest.global_size)
            guard = [f"gidx{g}>={s}" for g, (s, lo) in enumerate(zip(nest.global_size, local, strict=True)) if s % lo]
        for g, axes in enumerate(nest.global_dims):
            gv = Lin.var(f"gidx{g}", nest.global_size[g])
            gid = self.d.group_ids[g] if group else self.d.global_id(g, local[g] if local else 1)
            self.emit(f"int gidx{g} = {gid};")
            stride = 1
            for a in reversed(axes):
                size = shape[a] // nest.upcast.get(a, 1)
                base[a] = gv.floordiv(stride).mod(size) if len(axes) > 1 else gv
                stride *= size
        if guard:
            # the grid is rounded up to whole work-groups; the extra work-items do nothing
            self.emit(f"if ({'||'.join(guard)}) return;")
        up_axes = [a for a, f in nest.upcast.items() if f > 1]
        lanes = [
            dict(zip(up_axes, us, strict=True))
            for us in itertools.product(*[range(nest.upcast[a]) for a in up_axes])
        ] or [{}]

        def out_idx(lane: dict) -> tuple:
            return tuple(
                Lin()
                if a in k.reduce_axes or shape[a] == 1
                else base[a] * nest.upcast.get(a, 1) + lane.get(a, 0)
                for a in range(len(shape))
            )

        if k.reduce is not None:
            if group:
                self.render_group_reduce(group, out_idx)
            else:
                self.render_reduce(lanes, out_idx)
        self.memo = {}
        if group:  # every work-item holds the total; one writes it
            self.emit("if (lid == 0) {")
            self.indent += 1
        for lane in lanes:
            oi = out_idx(lane)
            pos = linear(oi, k.reduce.shape if k.reduce is not None else k.out.shape)
            if k.reduce is not None:
                # the fused chain after a reduce keeps each element's position (elementwise ops and
                # reshapes only), so every reference to the reduce here is this lane's accumulator
                self.acc_override = self.acc[pos]
            val = self.expr(k.out, unravel(pos, k.out.shape) if k.out.shape != shape else oi, frozenset())
            self.store(val, pos)
        if group:
            self.indent -= 1
            self.emit("}")
        src, name = self.kernel_source()
        gsize = (nest.global_size[0] * group, *nest.global_size[1:]) if group else nest.global_size
        return Program(src, name, gsize, local, self.opts)

    def render_group_reduce(self, group: int, out_idx) -> None:
        """The reduce of this work-group's one output: its work-items take every group-th element of the
        flattened reduce axes, then halve their partial results through shared memory."""
        k, shape = self.k, self.k.full_shape
        red = k.reduce
        raxes = [a for a in k.reduce_axes if shape[a] > 1]
        ct = red.dtype.compute
        combine = reduce_combine(red.op, red.dtype)
        rsize = math.prod(shape[a] for a in raxes)
        self.emit(f"{self.d.ctype(ct)} acc = {reduce_identity(red.op, red.dtype)};")
        self.emit(f"for (int ridx = lid; ridx < {rsize}; ridx += {group}) {{")
        self.indent += 1
        flat, stride, ridx = Lin.var("ridx", rsize), 1, {}
        for a in reversed(raxes):
            ridx[a] = flat.floordiv(stride).mod(shape[a]) if len(raxes) > 1 else flat
            stride *= shape[a]
        oi = out_idx({})
        fi = tuple(ridx.get(a, oi[a]) for a in range(len(shape)))
        val = self.expr(red.src[0], fi, frozenset())
        if red.src[0].dtype.compute != ct:
            val = f"({self.d.ctype(ct)})({val})"
        self.emit(f"acc = {combine.format('acc', val)};")
        self.indent -= 1
        self.emit("}")
        d = self.d
        self.emit(f"{d.shared} {d.ctype(ct)} wb_part[{group}];")
        self.emit(f"wb_part[lid] = acc; {d.barrier}")
        self.emit(f"for (int s = {group // 2}; s > 0; s >>= 1) {{")
        self.indent += 1
        self.emit(f"if (lid < s) wb_part[lid] = {combine.format('wb_part[lid]', 'wb_part[lid + s]')};")
        self.emit(d.barrier)
        self.indent -= 1
        self.emit("}")
        total = "wb_part[0]"
        pos = linear(oi, red.shape)
        self.acc[pos] = self.tmp(ct, f"{_ROUND[red.dtype.name]}({total})" if red.dtype.name in _ROUND else total)

    def render_reduce(self, lanes: list, out_idx) -> None:
        """Accumulators, the loops over the reduce axes, and each output's reduced value in self.acc.

        Scalar accumulators: opts.split_acc of them per output lane, the innermost loop unrolled
        opts.unroll times. With opts.vec: one float8 accumulator, the innermost loop stepping vec elements
        (loads along it become float8), folded to a scalar after the loops."""
        k, shape, opts = self.k, self.k.full_shape, self.opts
        red = k.reduce
        raxes = [a for a in k.reduce_axes if shape[a] > 1]
        ct = red.dtype.compute
        init = reduce_identity(red.op, red.dtype)
        combine = reduce_combine(red.op, red.dtype)
        vec = opts.vec
        accs = {}
        if vec > 1:
            if (
                not raxes
                or len(lanes) != 1
                or red.dtype.name != "float32"
                or shape[raxes[-1]] % vec
                or (shape[raxes[-1]] // vec < 2)
                or _has_pad(red.src[0], self.buf_index)
            ):
                raise _NoVector
            split, unroll, step = 1, 1, vec
            self.emit(f"float8 accv = (float8)({init});")
            accs[linear(out_idx(lanes[0]), red.shape)] = ["accv"]
        else:
            split = max(1, opts.split_acc)
            for li, lane in enumerate(lanes):
                names = [f"acc{li}_{s}" for s in range(split)]
                for nm in names:
                    self.emit(f"{self.d.ctype(ct)} {nm} = {init};")
                accs[linear(out_idx(lane), red.shape)] = names
            unroll = step = opts.unroll if raxes and shape[raxes[-1]] % opts.unroll == 0 else 1
        ridx = {}
        for a in raxes:
            n = shape[a] // (step if a == raxes[-1] else 1)
            self.emit(f"for (int ridx{a} = 0; ridx{a} < {n}; ridx{a}++) {{")
            self.indent += 1
            ridx[a] = Lin.var(f"ridx{a}", n)
        if vec > 1:
            self.vec_atom = next(iter(ridx[raxes[-1]].terms))
        for u in range(unroll):
            for lane in lanes:
                oi = out_idx(lane)
                fi = tuple(
                    ridx[a] * (step if a == raxes[-1] else 1) + (u if a == raxes[-1] else 0)
                    if a in ridx
                    else oi[a]
                    for a in range(len(shape))
                )
                val = self.expr(red.src[0], fi, frozenset())
                if vec > 1:
                    val = val if val in self.vecs else f"((float8)({val}))"
                elif red.src[0].dtype.compute != ct:
                    val = f"({self.d.ctype(ct)})({val})"
                nm = accs[linear(oi, red.shape)][u % split]
                self.emit(f"{nm} = {combine.format(nm, val)};")
        self.vec_atom = None
        for _ in raxes:
            self.indent -= 1
            self.emit("}")
        for oi, names in accs.items():
            parts = [f"accv.s{c}" for c in range(vec)] if vec > 1 else names
            total = parts[0]
            for nm in parts[1:]:
                total = combine.format(total, nm)
            self.acc[oi] = self.tmp(ct, f"{_ROUND[red.dtype.name]}({total})" if red.dtype.name in _ROUND else total)


def gpu_local_size(global_size: tuple) -> tuple:
    """A work-group size for a GPU launch of global_size: up to 256 work-items along the first dim."""
    first = min(256, 1 << max(0, (global_size[0] - 1).bit_length()))
    return (max(32, first) if global_size[0] > 32 else first,) + (1,) * (len(global_size) - 1)


def _has_pad(n: Node, buffers: dict) -> bool:
    """Whether a PAD sits between n and the kernel's buffers: its bounds test covers one index, while a
    float8 load reads eight, so padded reads stay scalar."""
    stack, seen = [n], set()
    while stack:
        m = stack.pop()
        if m.id in seen or m.id in buffers:
            continue
        seen.add(m.id)
        if m.op == Ops.PAD:
            return True
        stack.extend(m.src)
    return False


def render(k: Kernel, opts: KernelOpts, dialect: Dialect = OPENCL) -> Program:
    """C for kernel k under opts in dialect (float8 reduces fall back to scalar code where they cannot apply)."""
    if opts.vec > 1:
        try:
            return _Renderer(k, opts, dialect).render()
        except _NoVector:
            opts = replace(opts, vec=1)
    return _Renderer(k, opts, dialect).render()
