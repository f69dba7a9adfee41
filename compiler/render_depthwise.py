"""A strip kernel for depthwise convolutions (groups == channels) and other small sliding-window sums on CPU
OpenCL devices.

A depthwise conv sums a few taps (3x3, 5x5) of a window per output: far too short a reduce for the GEMM
template (it has no N axis: the weights follow the output channel) and, in the general loop nest, a loop
of 25 trips per output whose loads each test the padding. Here each work-item owns a strip of V
neighbouring outputs along the innermost output axis (a row of output pixels) and runs every tap
unrolled: per tap one weight load and V multiply-adds. Neighbouring outputs' windows overlap, and the
writer's memo turns each distinct input position of the strip into one load (a 5-tap row of 8 outputs at
stride 1 reads 12 values, not 40), whatever views and padding lie between the kernel and its buffer.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from .indexing import linear, reads, unravel
from .kernel_ir import Kernel, KernelOpts, LoopNest, Program
from .lazy import Node
from .ops import Ops
from .render_opencl import ExprWriter
from .symbolic import Lin

MAX_TAPS = 64  # taps (reduce elements) per output unrolled in full; longer reduces keep a loop
LANES = (8, 4, 2)  # strip lengths tried, longest first (8 float32 accumulators: one AVX2 register's worth)


@dataclass
class DepthwisePlan:
    """A sum over a few taps of window * weight: the window varies along `row` (the innermost output axis)
    and overlaps its neighbours' windows; the weight does not vary along `row`."""

    window: Node
    weight: Node
    row: int  # the output axis a strip runs along
    taps: int


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
    return DepthwisePlan(window, weight, row, taps)


def default_depthwise(plan: DepthwisePlan, shape: tuple) -> tuple:
    """(V,): the longest strip in LANES that divides the row."""
    return (next((v for v in LANES if shape[plan.row] % v == 0), 1),)


def depthwise_candidates(plan: DepthwisePlan, shape: tuple) -> list[KernelOpts]:
    """The strip lengths WB_SEARCH times."""
    return [KernelOpts(depthwise=(v,)) for v in LANES if shape[plan.row] % v == 0]


def render_depthwise(k: Kernel, plan: DepthwisePlan, opts: KernelOpts) -> Program:
    """OpenCL C for k as strips of opts.depthwise[0] outputs along the row, every tap unrolled."""
    (lanes,) = opts.depthwise
    shape = k.full_shape
    red = k.reduce
    nest = LoopNest.build(shape, k.reduce_axes, KernelOpts(upcast=((plan.row, lanes),) if lanes > 1 else ()))
    r = ExprWriter(k, opts)
    base = [Lin()] * len(shape)
    for g, axes in enumerate(nest.global_dims):
        gv = Lin.var(f"gidx{g}", nest.global_size[g])
        r.emit(f"int gidx{g} = get_global_id({g});")
        stride = 1
        for a in reversed(axes):
            size = shape[a] // nest.upcast.get(a, 1)
            base[a] = gv.floordiv(stride).mod(size) if len(axes) > 1 else gv
            stride *= size

    def out_idx(u: int) -> list:
        return [Lin() if a in k.reduce_axes or shape[a] == 1 else base[a] * (lanes if a == plan.row else 1)
                + (u if a == plan.row else 0) for a in range(len(shape))]

    raxes = [a for a in k.reduce_axes if shape[a] > 1]
    accs = [f"acc{u}" for u in range(lanes)]
    for nm in accs:
        r.emit(f"float {nm} = 0.0f;")
    r.memo = {}  # kept across taps: overlapping windows share their loads
    for tap in itertools.product(*[range(shape[a]) for a in raxes]):
        t = dict(zip(raxes, tap, strict=True))
        w = None
        for u, nm in enumerate(accs):
            fi = out_idx(u)
            for a, v in t.items():
                fi[a] = Lin(const=v)
            if w is None:
                w = r.expr(plan.weight, tuple(fi), frozenset())
            x = r.expr(plan.window, tuple(fi), frozenset())
            r.emit(f"{nm} += {x}*{w};")
    # epilogue: the fused elementwise ops after the sum, lane by lane
    r.memo = {}
    for u, nm in enumerate(accs):
        oi = tuple(out_idx(u))
        pos = linear(oi, red.shape)
        r.acc_override = nm
        r.store(r.expr(k.out, unravel(pos, k.out.shape) if k.out.shape != red.shape else oi, frozenset()), pos)
    src, name = r.kernel_source()
    return Program(src, name, nest.global_size, None, opts)
