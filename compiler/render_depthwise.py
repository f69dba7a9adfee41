"""A strip kernel for depthwise convolutions (groups == channels) and other small sliding-window sums on CPU
OpenCL devices.

A depthwise conv sums a few taps (3x3, 5x5) of a window per output: far too short a reduce for the GEMM
template (it has no N axis: the weights follow the output channel) and, in the general loop nest, a loop
of 25 trips per output whose loads each test the padding. Here a work-item owns a row of outputs (a whole
plane when it is at most MAX_ROWS rows high), loads the taps' weights once, and loops over the row's strips
of V neighbouring outputs with every tap unrolled. The window is a view of one buffer, read as a single
affine guarded load (`_WindowRead`): each tap of each lane substitutes its index instead of walking the
views again. Strips whose windows stay inside the image along the row are float8 code (one run load and
one multiply-add per tap, the fused epilogue and the store in float8); the edge strips are scalar lanes
with a padding test per load. Neighbouring outputs' windows overlap, and each distinct input position of
a strip is loaded once (a 5-tap row of 8 outputs reads 12 values, or 5 float8 runs, not 40), also across
the rows of a plane. Taps that only ever read padding add one sum of 0 * weight (NaN for an inf weight,
as the general kernel gives).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

from .indexing import input_read, linear, reads, unravel
from .kernel_ir import Kernel, KernelOpts, LoopNest, Program
from .lazy import Node
from .ops import Ops
from .render_opencl import ExprWriter, _NoVector
from .symbolic import Atom, Lin, in_range

MAX_TAPS = 64  # taps (reduce elements) per output unrolled in full; longer reduces keep a loop
LANES = (8, 4, 2)  # strip lengths tried, longest first (8 float32 accumulators: one AVX2 register's worth)
VEC = 8  # strips of this length run as float8 where the row allows
MAX_ROWS = 4  # output planes at most this high are one work-item each, their rows unrolled
MAX_SCALAR_MACS = 1024  # edge strips with more unrolled multiply-adds than this loop over their lanes instead


@dataclass
class _WindowRead:
    """A value that is a view of one float32 buffer: at the full-shape index (a0, a1, ...) it reads
    buf[pos] where lo <= x < hi for each (x, lo, hi) in bounds, else 0; pos and every x affine in the axes.
    Rendering a tap of a lane then substitutes the axes' values instead of walking the views again."""

    buf: Node
    pos: Lin
    bounds: list

    def at(self, idx: list) -> tuple[Lin, list]:
        """(position, [(x, lo, hi), ...]) at a full-shape index of Lins."""
        env = {f"a{a}": v for a, v in enumerate(idx)}
        return _subst(self.pos, env), [(_subst(x, env), lo, hi) for x, lo, hi in self.bounds]


def _subst(x: Lin, env: dict) -> Lin:
    """The affine x with each variable replaced by its Lin in env."""
    out = Lin(const=x.const)
    for a, c in x.terms.items():
        out = out + env[a.key[1]] * c
    return out


def _window_read(k: Kernel, node: Node) -> _WindowRead | None:
    """node as a _WindowRead (views and padding of one float32 buffer, all affine), or None."""
    read = input_read(k, node, _vars(k.full_shape))
    if read is None:
        return None
    n, ix, bounds = read
    pos = linear(ix, n.shape)
    if n.dtype.name != "float32" or not pos.is_affine or not all(x.is_affine for x, _, _ in bounds):
        return None
    return _WindowRead(n, pos, [(x, lo, hi) for x, lo, hi in bounds if not (x.lo >= lo and x.hi < hi)])


@dataclass
class DepthwisePlan:
    """A sum over a few taps of window * weight: the window varies along `row` (the innermost output axis)
    and overlaps its neighbours' windows; the weight does not vary along `row`."""

    window: Node
    weight: Node
    row: int  # the output axis a strip runs along
    taps: int
    read: _WindowRead  # the window as one guarded load, symbolic in the full-shape axes a0, a1, ...


def _vars(shape: tuple) -> tuple:
    return tuple(Lin.var(f"a{a}", s) for a, s in enumerate(shape))


def _shares(step: int, tap_step: int, taps: int) -> bool:
    """Whether two outputs of a strip (m < V apart, the row moving step per output) read one position
    through taps that are t apart (tap_step per tap): m * step == t * tap_step with 0 < t < taps."""
    return tap_step > 0 and any(m * step % tap_step == 0 and m * step // tap_step < taps for m in range(1, LANES[0]))


def depthwise_plan(k: Kernel) -> DepthwisePlan | None:
    """The strip view of k, or None when k is not a float32 sum of a product whose one factor slides a
    window along the innermost output axis (the windows of a strip's outputs overlap) and varies with every
    output axis (one window per channel: depthwise), and whose other factor does not vary along the row,
    with at most MAX_TAPS taps per output."""
    red = k.reduce
    if red is None or red.op != Ops.SUM or red.dtype.name != "float32":
        return None
    body = red.src[0]
    if any(body is i for i in k.inputs) or body.realized or body.op != Ops.MUL:
        return None
    shape = k.full_shape
    outs = [a for a, s in enumerate(shape) if a not in k.reduce_axes and s > 1]
    raxes = [a for a in k.reduce_axes if shape[a] > 1]
    taps = math.prod(shape[a] for a in raxes)
    if not outs or not raxes or taps > MAX_TAPS or shape[outs[-1]] < LANES[-1]:
        return None
    row = outs[-1]
    idx = _vars(shape)
    try:
        rd = [reads(k, f, idx) for f in body.src]
    except ValueError:  # a factor with a reduce of its own fused in
        return None
    uses_row = [f"a{row}" in r.variables() for r in rd]
    if uses_row.count(True) != 1:
        return None
    w_at = uses_row.index(True)
    if any(f"a{a}" not in rd[w_at].variables() for a in outs):
        return None  # the window is shared across an output axis (a dense conv's output channels): a GEMM
    window, weight = body.src[w_at], body.src[1 - w_at]
    # a sliding window: one affine load whose position moves along the row and along some tap axis, so that
    # outputs of one strip read the same positions (m * row stride == taps apart * tap stride, m < V)
    loads = rd[w_at].loads
    if len(loads) != 1 or not loads[0][1].is_affine:
        return None
    coef = {a.key[1]: c for a, c in loads[0][1].terms.items()}
    step = coef.get(f"a{row}", 0)
    if step <= 0 or not any(_shares(step, coef.get(f"a{a}", 0), shape[a]) for a in raxes):
        return None
    read = _window_read(k, window)
    if read is None:
        return None
    return DepthwisePlan(window, weight, row, taps, read)


def default_depthwise(plan: DepthwisePlan, shape: tuple) -> tuple:
    """(V,): the longest strip in LANES that divides the row."""
    return (next((v for v in LANES if shape[plan.row] % v == 0), 1),)


def depthwise_candidates(plan: DepthwisePlan, shape: tuple) -> list[KernelOpts]:
    """The strip lengths WB_SEARCH times."""
    return [KernelOpts(depthwise=(v,)) for v in LANES if shape[plan.row] % v == 0]


STRIP = "strip"  # the loop variable over a row's strips


def render_depthwise(k: Kernel, plan: DepthwisePlan, opts: KernelOpts) -> Program:
    """OpenCL C for k: a work-item per row of outputs (per image plane when it is at most MAX_ROWS rows high:
    its rows then share the loads of the input rows they overlap, and the padding above and below is known
    when rendering), looping over the row's strips of opts.depthwise[0] outputs with the taps' weights held
    in registers; every tap unrolled. Strips whose windows stay inside the image along the row run as float8
    (loads, accumulator, epilogue and store), the edge strips as scalar lanes with per-lane padding tests."""
    (lanes,) = opts.depthwise
    shape = k.full_shape
    strips = shape[plan.row] // lanes
    outs = [a for a, n in enumerate(shape) if a not in k.reduce_axes and n > 1]
    col = outs[-2] if len(outs) > 1 and shape[outs[-2]] <= MAX_ROWS else None
    # the row (and a low plane's rows) are looped over inside the work-item: not global dimensions
    inner = ((plan.row, shape[plan.row]),) + (((col, shape[col]),) if col is not None else ())
    nest = LoopNest.build(shape, k.reduce_axes, KernelOpts(upcast=inner))
    r = ExprWriter(k, opts)
    gvars = []
    for g, size in enumerate(nest.global_size):
        r.emit(f"int gidx{g} = get_global_id({g});")
        gvars.append(Lin.var(f"gidx{g}", size))
    base = _bases(k, nest, gvars)
    bases = [base] if col is None else [base[:col] + [Lin(const=i)] + base[col + 1:] for i in range(shape[col])]
    taps = _taps(k)
    # each tap's weight once per work-item (it does not vary along the row)
    ws = [[r.expr(plan.weight, tuple(_index(k, plan, b, Lin(), lanes, 0, t)), frozenset()) for t in taps]
          for b in bases]
    r.emit(f"for (int {STRIP} = 0; {STRIP} < {strips}; {STRIP}++) {{")
    r.indent += 1
    body = (len(r.lines), r.indent)
    vector = False
    if lanes == VEC and k.out.dtype.name == "float32":
        # the widest range of strips (shrinking from both ends) over which the float8 code applies
        for cut in range(min(3, (strips + 1) // 2)):
            lo, hi = cut, strips - 1 - cut
            sv = Lin({Atom(("v", STRIP), lo, hi, STRIP): 1})
            if not all(_epilogue_lines_up(k, plan, b, sv, lanes) for b in bases):
                continue
            try:
                r.emit(f"if ({STRIP} >= {lo} && {STRIP} <= {hi}) {{" if (lo, hi) != (0, strips - 1) else "{")
                r.indent += 1
                _vector_strip(r, k, plan, bases, sv, ws, lanes)
                r.indent -= 1
                r.emit("}" if (lo, hi) == (0, strips - 1) else "} else {")
                vector = True
                break
            except _NoVector:
                del r.lines[body[0]:]
                r.indent, r.vec_atom, r.vecs, r.opts, r.acc_override = body[1], None, set(), opts, None
    if not vector or r.lines[-1].strip() == "} else {":
        r.indent += vector
        _scalar_strip(r, k, plan, bases, Lin.var(STRIP, strips), ws, lanes)
        if vector:
            r.indent -= 1
            r.emit("}")
    r.indent -= 1
    r.emit("}")
    src, name = r.kernel_source()
    return Program(src, name, nest.global_size, None, opts)


def _is_zero(x: str) -> bool:
    """Whether x is the literal a padded read renders as."""
    return re.fullmatch(r"\(?-?0\.0f\)?", x) is not None


def _bases(k: Kernel, nest: LoopNest, gvars: list) -> list:
    """Each full-shape output axis's index from the work-item ids (the row's comes from the strip loop)."""
    shape = k.full_shape
    base = [Lin()] * len(shape)
    for g, axes in enumerate(nest.global_dims):
        stride = 1
        for a in reversed(axes):
            size = shape[a] // nest.upcast.get(a, 1)
            base[a] = gvars[g].floordiv(stride).mod(size) if len(axes) > 1 else gvars[g]
            stride *= size
    return base


def _taps(k: Kernel) -> list[dict]:
    raxes = [a for a in k.reduce_axes if k.full_shape[a] > 1]
    return [dict(zip(raxes, t, strict=True)) for t in itertools.product(*[range(k.full_shape[a]) for a in raxes])]


def _index(k: Kernel, plan: DepthwisePlan, base: list, strip: Lin, lanes: int, u: int,
           tap: dict | None = None) -> list:
    """The full-shape index of lane u of a strip (at a tap, else with the reduce axes at 0)."""
    shape = k.full_shape
    idx = [Lin() if a in k.reduce_axes or shape[a] == 1 else base[a] for a in range(len(shape))]
    idx[plan.row] = strip * lanes + u
    for a, v in (tap or {}).items():
        idx[a] = Lin(const=v)
    return idx


LANE = "lane"  # a symbolic lane of a strip, for checks that hold for every lane at once


def _epilogue_lines_up(k: Kernel, plan: DepthwisePlan, base: list, strip: Lin, lanes: int) -> bool:
    """Whether, over the strips `strip` ranges over, every read of the epilogue is either the same for all
    lanes (not involving the strip) or a float8 run (the strip at stride `lanes`, the lane at stride 1), and
    no padding test involves the strip or the lane: then lane 0's code, in float8, is every lane's."""
    red = k.reduce
    if k.out is red:
        return True
    moving = {STRIP, LANE}
    # the reduce's value stands in as one more input buffer: the analysis stops there
    as_input = Kernel(k.out, list(k.inputs) + [red], None, device=k.device)
    oi = tuple(_index(k, plan, base, strip, lanes, Lin.var(LANE, lanes)))
    idx = unravel(linear(oi, red.shape), k.out.shape) if k.out.shape != red.shape else oi
    try:
        rd = reads(as_input, k.out, idx)
    except ValueError:  # a read the index analysis does not follow
        return False
    if any(moving & c.variables() for c in rd.checks):
        return False
    for _, pos in rd.loads:
        if moving & pos.variables() and not (
            pos.is_affine and pos.coefficient(STRIP) == lanes and pos.coefficient(LANE) == 1
        ):
            return False
    return True


def _scalar_window(r: ExprWriter, plan: DepthwisePlan, idx: list) -> str:
    """The window at idx as one scalar temporary (a guarded load), or the literal 0 where it reads padding."""
    pos, bounds = plan.read.at(idx)
    conds = sorted({c for x, lo, hi in bounds for c in in_range(x, lo, hi)})
    if "0" in conds:
        return "0.0f"
    key = ("window", pos, tuple(conds))
    if key not in r.memo:
        val = f"data{r.buf_index[plan.read.buf.id]}[{pos.render()}]"
        r.memo[key] = r.tmp("float", f"({'&&'.join(conds)}?{val}:0.0f)" if conds else val)
    return r.memo[key]


def _vector_window(r: ExprWriter, k: Kernel, plan: DepthwisePlan, base: list, strip: Lin, lanes: int,
                   tap: dict) -> str:
    """The window of a strip's lanes at a tap as one float8 temporary (a run of `lanes` neighbours, with a
    test that is the same for every lane), or the literal 0 where every lane reads padding; _NoVector where
    the run is not contiguous or a test differs between lanes or strips."""
    pos, bounds = plan.read.at(_index(k, plan, base, strip, lanes, Lin.var(LANE, lanes), tap))
    moving = {STRIP, LANE}
    conds: set[str] = set()
    for x, lo, hi in bounds:
        c = in_range(x, lo, hi)
        if c == ["0"]:
            return "0.0f"
        if c and moving & x.variables():
            raise _NoVector
        conds.update(c)
    if pos.coefficient(STRIP) != lanes or pos.coefficient(LANE) != 1:
        raise _NoVector
    pos0 = pos - Lin.var(LANE, lanes)
    key = ("window8", pos0, tuple(sorted(conds)))
    if key not in r.memo:
        load = f"*(const __global float8u*)(data{r.buf_index[plan.read.buf.id]}+{pos0.render()})"
        val = f"(({'&&'.join(sorted(conds))})?{load}:(float8)(0.0f))" if conds else load
        r.memo[key] = r.tmp("float8", val)
        r.vecs.add(r.memo[key])
    return r.memo[key]


def _scalar_strip(r: ExprWriter, k: Kernel, plan: DepthwisePlan, bases: list, strip: Lin, ws: list,
                  lanes: int) -> None:
    """A strip as scalar lanes, each output row's taps unrolled and each load with its own padding test;
    the lanes unrolled too (neighbouring lanes share their loads) unless the code would grow past
    MAX_SCALAR_MACS multiply-adds, then a loop over the lanes."""
    red = k.reduce
    taps = _taps(k)
    unrolled = lanes * len(bases) * len(taps) <= MAX_SCALAR_MACS
    lane_ids = list(range(lanes)) if unrolled else [Lin.var(LANE, lanes)]
    if not unrolled:
        r.emit(f"for (int {LANE} = 0; {LANE} < {lanes}; {LANE}++) {{")
        r.indent += 1
    r.memo = {}  # kept across taps, lanes and rows: overlapping windows share their loads
    zsum: dict[str, str] = {}  # the same sum of zero products for many lanes: one temporary
    for i, (b, row_ws) in enumerate(zip(bases, ws, strict=True)):
        names = [f"acc{i}_{u}" if unrolled else f"acc{i}" for u in lane_ids]
        zeros: dict[str, list[str]] = {nm: [] for nm in names}  # products with padding-only taps: 0 (or NaN)
        for nm in names:
            r.emit(f"float {nm} = 0.0f;")
        for tap, w in zip(taps, row_ws, strict=True):  # tap-major: the lanes' chains interleave
            for u, nm in zip(lane_ids, names, strict=True):
                x = _scalar_window(r, plan, _index(k, plan, b, strip, lanes, u, tap))
                if _is_zero(x):
                    zeros[nm].append(f"{x}*{w}")
                else:
                    r.emit(f"{nm} += {x}*{w};")
        for nm, zs in zeros.items():
            if zs:
                z = "+".join(zs)
                if z not in zsum:
                    zsum[z] = r.tmp("float", z)
                r.emit(f"{nm} += {zsum[z]};")
    for i, b in enumerate(bases):
        for u in lane_ids:
            oi = tuple(_index(k, plan, b, strip, lanes, u))
            pos = linear(oi, red.shape)
            r.memo, r.acc_override = {}, f"acc{i}_{u}" if unrolled else f"acc{i}"
            r.store(r.expr(k.out, unravel(pos, k.out.shape) if k.out.shape != red.shape else oi, frozenset()), pos)
    r.acc_override, r.memo = None, {}
    if not unrolled:
        r.indent -= 1
        r.emit("}")


def _vector_strip(r: ExprWriter, k: Kernel, plan: DepthwisePlan, bases: list, strip: Lin, ws: list,
                  lanes: int) -> None:
    """A strip as one float8 accumulator per output row: a float8 load of the window per tap, the epilogue in
    float8 with one float8 store (or lane by lane where an op has no float8 form); _NoVector where it cannot
    apply."""
    red = k.reduce
    saved = r.opts
    r.opts, r.vec_atom, r.vecs, r.memo = KernelOpts(vec=lanes), next(iter(strip.terms)), set(), {}
    accs = [f"accv{i}" for i in range(len(bases))]
    for b, nm, row_ws in zip(bases, accs, ws, strict=True):
        r.emit(f"float8 {nm} = (float8)(0.0f);")
        zeros: list[str] = []  # products with a tap that only reads padding: 0 (or NaN for an inf weight)
        for tap, w in zip(_taps(k), row_ws, strict=True):
            x = _vector_window(r, k, plan, b, strip, lanes, tap)
            if _is_zero(x):
                zeros.append(f"{x}*{w}")
            else:
                r.emit(f"{nm} += {x}*{w};")
        if zeros:
            r.emit(f"{nm} += (float8)({'+'.join(zeros)});")
    r.vecs.update(accs)
    for b, nm in zip(bases, accs, strict=True):
        oi = tuple(_index(k, plan, b, strip, lanes, 0))
        pos = linear(oi, red.shape)
        lane_pos = [linear(tuple(_index(k, plan, b, strip, lanes, u)), red.shape) - pos for u in range(lanes)]
        mark = len(r.lines)
        r.memo, r.acc_override, r.vec_atom = {}, nm, next(iter(strip.terms))
        try:
            if lane_pos != [Lin(const=u) for u in range(lanes)]:
                raise _NoVector  # the strip's outputs are not neighbours in memory
            val = r.expr(k.out, unravel(pos, k.out.shape) if k.out.shape != red.shape else oi, frozenset())
            val = val if val in r.vecs else f"((float8)({val}))"
            r.emit(f"*(__global float8u*)(data0+{pos.render()}) = {val};")
        except _NoVector:  # an epilogue op without a float8 form: lane by lane from the float8 accumulator
            del r.lines[mark:]
            r.vec_atom = None
            for u in range(lanes):
                oi_u = tuple(_index(k, plan, b, strip, lanes, u))
                pos_u = linear(oi_u, red.shape)
                r.memo, r.acc_override = {}, f"{nm}.s{u}"
                r.store(r.expr(k.out, unravel(pos_u, k.out.shape) if k.out.shape != red.shape else oi_u,
                               frozenset()), pos_u)
    r.acc_override, r.vec_atom, r.vecs, r.opts, r.memo = None, None, set(), saved, {}
