"""A packed, register-tiled GEMM kernel for matmul-like reduces (matmul, conv2d) on CPU OpenCL devices.

A kernel qualifies when it sums a product X*Y where X ignores some output axes (the N axes) and Y ignores
others (the M axes). Each work-group owns an MB x NB tile of outputs: it packs KB-long slabs of X and Y
into local memory (so any index math, padding or broadcast in X and Y is paid once per element, not per
FMA), then runs an MR x (NV*8) micro-kernel of float8 multiply-adds from the packed slabs (a factor whose
slab would be a plain copy of memory is read in place instead: a strided A, a conv weight stored K x N).
Everything is written with operators and pointer casts: PoCL calls OpenCL builtins (vload8, fma) out of line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .indexing import input_read, linear, reads, unravel
from .kernel_ir import TILE_COUNTER, Kernel, KernelOpts, Program
from .lazy import Node
from .ops import Ops
from .render_opencl import ExprWriter
from .symbolic import Lin, in_range

VEC = 8


@dataclass
class GemmPlan:
    """The roles of a kernel's axes in a GEMM view: batch, M, N and K (reduce) axes, and the two factors."""

    a: Node  # varies with M and K
    b: Node  # varies with N and K
    batch: list
    m_axes: list
    n_axes: list
    k_axes: list

    def sizes(self, shape: tuple) -> tuple[int, int, int, int]:
        p = lambda axes: math.prod(shape[i] for i in axes)
        return p(self.batch), p(self.m_axes), p(self.n_axes), p(self.k_axes)


def _axis_vars(shape: tuple) -> tuple:
    return tuple(Lin.var(f"a{a}", s) for a, s in enumerate(shape))


def _depends(k: Kernel, node: Node) -> set:
    """The axes of the iteration space that node's value depends on."""
    used = reads(k, node, _axis_vars(k.full_shape)).variables()
    return {a for a in range(len(k.full_shape)) if f"a{a}" in used}


def _is_plain_load(k: Kernel, node: Node) -> bool:
    """True when node is one unconditional load whose index has no divisions (a strided matrix)."""
    r = reads(k, node, _axis_vars(k.full_shape))
    return not r.computes and not r.checks and len(r.loads) == 1 and r.loads[0][1].is_affine


def _reads_along_k(k: Kernel, plan: GemmPlan, node: Node, is_a: bool) -> bool:
    """True when consecutive reduce indices of a factor are adjacent in memory (pack with k innermost)."""
    shape = k.full_shape
    idx = [Lin()] * len(shape)
    last_k = plan.k_axes[-1]
    idx[last_k] = Lin.var("k", shape[last_k])
    tile_axes = plan.m_axes if is_a else plan.n_axes
    if not tile_axes:  # a single row (x in x @ W): only the reduce index moves
        return True
    idx[tile_axes[-1]] = Lin.var("j", shape[tile_axes[-1]])
    unit = set().union(*(e.unit_variables() for e in reads(k, node, tuple(idx)).index_exprs()))
    return "k" in unit or "j" not in unit


def _pack_k_inner(k: Kernel, plan: GemmPlan, node: Node, is_a: bool) -> bool:
    """Loop order of a slab pack: the tile index innermost whenever it reads memory at stride 1 (a conv
    window's output pixels), since the slab is stored along it too; else the reduce index when it does."""
    shape = k.full_shape
    tile_axes = plan.m_axes if is_a else plan.n_axes
    if not tile_axes:
        return True
    # every other axis a variable too: at index 0 a padded window would read nothing at all
    idx = list(_axis_vars(shape))
    idx[plan.k_axes[-1]] = Lin.var("k", shape[plan.k_axes[-1]])
    idx[tile_axes[-1]] = Lin.var("j", shape[tile_axes[-1]])
    unit = set().union(*(e.unit_variables() for e in reads(k, node, tuple(idx)).index_exprs()))
    return "j" not in unit


@dataclass
class _Window:
    """A factor read as one buffer load inside a window of its innermost pack variable v: the load at pos
    is valid where every `outer` condition holds and lo <= v < hi for each (lo, hi) in `spans`."""

    buf: Node
    pos: Lin
    outer: list  # C conditions that do not involve v
    spans: list  # (lo, hi) Lins: v's valid range from each bound


def _window(k: Kernel, node: Node, idx: tuple, bounds: list, var: str) -> _Window | None:
    """node at idx as a window of one float32 buffer (views and padding only, v at stride 1 in the load
    and in every bound that involves it), or None when it is not such a read."""
    read = input_read(k, node, idx)
    if read is None or read[0].dtype.name != "float32":
        return None
    n, ix, view_bounds = read
    bounds = list(bounds) + view_bounds
    pos = linear(ix, n.shape)

    def split(x: Lin) -> Lin | None:
        """x - v when v appears in x exactly once, as a plain unit term; None otherwise."""
        if x.coefficient(var) != 1:
            return None
        rest = x.without(var)
        return None if var in rest.variables() else rest

    if var not in pos.variables() or split(pos) is None:
        return None
    outer, spans = [], []
    for x, lo, hi in bounds:
        if x.lo >= lo and x.hi < hi:
            continue
        if var not in x.variables():
            outer += in_range(x, lo, hi)
            continue
        rest = split(x)
        if rest is None:
            return None
        spans.append((Lin(const=lo) - rest, Lin(const=hi) - rest))
    return _Window(n, pos, outer, spans)


PREFETCH_ROWS = 8  # how many pack rows ahead a pack prefetches the row it will copy
LINE_FLOATS = 16  # float32s per 64-byte cache line (x86-64, and most ARM cores)


def _prefetch_row(r: ExprWriter, win: _Window, var: str, size: int, by: str, trips: int) -> str | None:
    """C that prefetches, a cache line at a time, the row of win (var along it, size long) that lies `trips`
    steps of loop variable `by` further on; None where win does not move with `by`."""
    step = win.pos.coefficient(by) * trips
    if not step:
        return None
    return (f"for (int {var} = 0; {var} < {size}; {var} += {LINE_FLOATS}) "
            f"__builtin_prefetch(data{r.buf_index[win.buf.id]}+{win.pos.render()}+{step});")


def _emit_window(r: ExprWriter, win: _Window, name: str, dst: Lin, var: str, size: int,
                 ahead: tuple[str, int] | None = None) -> None:
    """The pack of one slab row from a window: zeros, the in-range run copied, zeros. ahead: (the pack's
    outer loop variable, its trip count) to prefetch the row PREFETCH_ROWS trips ahead, a cache line at a
    time: a weight's rows lie a page or more apart, so a row-by-row copy waits on a TLB and cache miss per
    row, which the prefetch overlaps with the copies before it."""
    emit = r.emit
    if ahead is not None and ahead[1] > PREFETCH_ROWS:
        outer, trips = ahead
        line = _prefetch_row(r, win, var, size, outer, PREFETCH_ROWS)
        if line:
            emit(f"if ({outer} < {trips - PREFETCH_ROWS}) {line}")
    emit(f"int wlo = 0, whi = {size};")
    for lo, hi in win.spans:
        emit(f"wlo = {lo.render()} > wlo ? {lo.render()} : wlo;")
        emit(f"whi = {hi.render()} < whi ? {hi.render()} : whi;")
    if "0" in win.outer:
        emit("whi = 0;")
    elif win.outer:
        emit(f"if (!({'&&'.join(win.outer)})) whi = 0;")
    emit(f"if (wlo > {size}) wlo = {size};")
    emit("if (whi < wlo) whi = wlo;")
    j = r.buf_index[win.buf.id]
    emit(f"for (int {var} = 0; {var} < wlo; {var}++) {name}[{dst.render()}] = 0.0f;")
    emit(f"for (int {var} = wlo; {var} < whi; {var}++) {name}[{dst.render()}] = data{j}[{win.pos.render()}];")
    emit(f"for (int {var} = whi; {var} < {size}; {var}++) {name}[{dst.render()}] = 0.0f;")


def _next_slab_prefetch(r: ExprWriter, win: _Window, kvar: tuple[str, int], var: str, size: int, gemm: tuple,
                        slabs: int) -> str | None:
    """C that prefetches this register tile's share of the rows the pack of the next slab will copy from
    win (a slab row per trip of kvar, var along the row): spread over the slab's register tiles, the next
    pack's rows arrive while the micro-kernel computes instead of the pack waiting on them (the pack's own
    prefetch, _emit_window, cannot cover its first rows). None where win does not move with the slab."""
    mb, nb, _, mr, nv = gemm
    line = _prefetch_row(r, win, var, size, "kb", 1)
    if line is None or slabs < 2:
        return None
    name, trips = kvar
    tiles_m = -(-mb // mr)
    share = -(-trips // (max(1, nb // (nv * VEC)) * tiles_m))
    return (f"if (kb < {slabs - 1}) {{ const int pt = (nj/{nv * VEC})*{tiles_m}+mi/{mr}; "
            f"for (int {name} = pt*{share}; {name} < pt*{share}+{share} && {name} < {trips}; {name}++) "
            f"{line} }}")


def _wide_window(k: Kernel, node: Node, idx: tuple, row_bound: tuple, row: int, kx: str, kw: int) -> _Window | None:
    """A conv's window as wide rows: when the factor at output column jw and kernel column kx reads one
    buffer at jw + kx alone (stride 1, dilation 1; padding allowed), the KW shifted copies of a tile row
    that an im2col pack would store are one row of row + KW - 1 values, read at offset kx. Returns that
    row's window over the variable u (idx with jw -> u and kx -> 0), or None when A is not such a read."""
    jw, kv, u = Lin.var("jw", row), Lin.var(kx, kw), Lin.var("u", row + kw - 1)
    if sum(i == jw for i in idx) != 1 or sum(i == kv for i in idx) != 1:
        return None
    full = _window(k, node, idx, [row_bound], "jw")
    zero = _window(k, node, tuple(u if i == jw else Lin() if i == kv else i for i in idx), [row_bound], "u")
    if full is None or zero is None or full.buf is not zero.buf or full.outer != zero.outer:
        return None
    if full.pos - jw - kv != zero.pos - u or len(full.spans) != len(zero.spans):
        return None
    for (lf, hf), (lz, hz) in zip(full.spans, zero.spans, strict=True):
        if lf + kv != lz or hf + kv != hz:
            return None
    return zero


def gemm_plan(k: Kernel, dtypes: tuple = ("float32",)) -> GemmPlan | None:
    """The GEMM view of k, or None when k is not a sum (in one of dtypes) of a product of two separable
    factors."""
    red = k.reduce
    if red is None or red.op != Ops.SUM or red.dtype.name not in dtypes:
        return None
    body = red.src[0]
    # a MUL that is an input of the kernel (realized, or computed by an earlier kernel of the schedule:
    # programs are built before the kernels before them run) is a buffer
    if any(body is i for i in k.inputs) or body.realized or body.op != Ops.MUL or body.dtype.name not in dtypes:
        return None
    shape = k.full_shape
    x, y = body.src
    try:
        dx, dy = _depends(k, x), _depends(k, y)
    except ValueError:  # a factor with a reduce fused into it (conv of a global pool) is no plain matrix
        return None
    outs = [a for a, s in enumerate(shape) if a not in k.reduce_axes and s > 1]
    m_axes = [a for a in outs if a in dx and a not in dy]
    n_axes = [a for a in outs if a in dy and a not in dx]
    if not n_axes:
        return None
    batch = [a for a in outs if a not in m_axes and a not in n_axes]
    k_axes = [a for a in k.reduce_axes if shape[a] > 1]
    plan = GemmPlan(x, y, batch, m_axes, n_axes, k_axes)
    if not m_axes and (not k_axes or _reads_along_k(k, plan, y, is_a=False)):
        # one row of outputs: worth a GEMM only as x @ W with W's rows along the outputs (each work-group
        # then streams row segments of W); a matrix stored along the reduce does better with float8 rows
        return None
    b, m, n, kk = plan.sizes(shape)
    # the batch counts: attention's per-head products (64x16 by 64, 128 heads) are small one by one
    if b * m * n * kk < 2**17 or n < VEC:
        return None
    return plan


def _strides(sizes: list) -> list:
    out, acc = [], 1
    for s in reversed(sizes):
        out.append(acc)
        acc *= s
    return out[::-1]


def register_tile(vector_width: int = VEC) -> tuple[int, int]:
    """(MR, NV): the micro-kernel's rows x float8 vectors of accumulators for a CPU whose preferred float
    vector has vector_width lanes, as many as its register file holds beside NV vectors of B and one
    broadcast of A. x86-64 has 16 vector registers up to AVX2 (4 or 8 lanes) and 32 with AVX-512 (16)."""
    regs = 32 if vector_width >= 16 else 16
    float8_regs = regs * min(vector_width, VEC) // VEC  # how many float8 values fit in registers at once
    for mr, nv in ((6, 4), (6, 2), (4, 2), (2, 2), (2, 1)):
        if mr * nv + nv + 1 <= float8_regs:
            return mr, nv
    return 1, 1


def _row_tile(m: int, mr: int, target: int) -> int:
    """MB: a multiple of MR near target that splits m into equal tiles (128 rows: 2 x 66, not 96 + 32)."""
    tiles = -(-m // target)
    rows = -(-m // tiles)
    return -(-rows // mr) * mr


def default_gemm(plan: GemmPlan, shape: tuple, vector_width: int = VEC, cores: int = 1) -> tuple:
    """(MB, NB, KB, MR, NV): a register tile for the CPU's vector width, and tiles that keep a B panel
    (KB x MR*8 floats) in L1 and the packed B slab (KB x NB) in L2 of any recent x86-64 core, with at
    least 4 work-groups per core where the sizes allow."""
    nbatch, m, n, kk = plan.sizes(shape)
    nb = 64 if n >= 64 else 32 if n >= 32 else 16
    mb = 128 if m >= 8192 else 64 if m >= 64 else max(4, 1 << (m - 1).bit_length())  # big M: amortize B packs
    mr = 4
    row = shape[plan.m_axes[-1]] if plan.m_axes else 1
    if len(plan.m_axes) > 1 and 4 <= row <= mb and m >= 2 * mb:
        # several M axes (a conv's output pixels): a tile of whole rows, so packing needs no division by
        # the row length; a 6x2 register tile (12 float8 accumulators hide the FMA latency better than 8)
        # where whole rows make a multiple of 6 up to 192, else 4x2 with rows up to mb. A register tile
        # that divides the row never spans two output rows, so a stride-1 conv's micro-kernel reads its
        # pixels at fixed offsets: 4x2 where 4 divides the row and 6 does not (56 pixels: 6-14% faster
        # than 6x2, 2 of whose 28 register tiles span two rows, in 5 of 6 rounds; equal at 48, where both
        # divide; equal on a strided conv's im2col slab; docs/benchmarks.md), unless the rows are long
        # enough for the register tiles to run over each row's padding (_padded_rows: 56 pixels 2% faster)
        kw = shape[plan.k_axes[-1]] if len(plan.k_axes) > 1 else 1
        six = row % 6 == 0 or row % 4 or (kw > 1 and padding_pays(row, kw))
        tiles = ((6, 192), (4, mb)) if six else ((4, 192), (6, 192))
        for tile_mr, cap in tiles:
            fits = [r * row for r in range(1, cap // row + 1) if (r * row) % tile_mr == 0]
            if fits and fits[-1] >= mb // 2 and m >= 2 * fits[-1]:
                mb, mr = fits[-1], tile_mr
                break
    if m == 1 and len(plan.k_axes) == 1:
        # x @ W: no rows to tile; wide column slabs so each work-group reads long contiguous runs of W's rows
        return (1, min(1024, -(-n // 16) * 16), min(kk, 64), 1, 2)  # 64 x 1024 slab: 256 KiB of __local
    nv = 2 if nb >= 16 else 1
    if len(plan.m_axes) == 1:
        # one row index (several are a conv's pixels, above): the widest register tile for the vector
        # registers, and MB a multiple of its rows that splits M evenly
        mr, nv = register_tile(vector_width)
        nv = min(nv, nb // VEC)
        # up to 24 register tiles of rows (144 on AVX2) in one tile: a linear layer's few token rows then
        # pack each slab of the weights once, not once per row tile (the weights are most of the traffic)
        mb = _row_tile(m, mr, mr * (24 if m <= mr * 24 else 32 if m >= 8192 else 16))
        while nbatch * -(-m // mb) * -(-n // nb) < 4 * cores and mb >= 4 * mr:
            mb = _row_tile(m, mr, mb // 2)  # more row tiles until every core has work-groups to share
    ksizes = [shape[a] for a in plan.k_axes]
    if math.prod(ksizes[1:]) > 1:
        # several reduce axes (conv: channels x kernel window; a weight gradient: batch x output pixels):
        # ~128-deep slabs of a block of one axis times all the axes after it (_k_split), the first axis
        # whose followers fit
        j = next(j for j in range(len(ksizes)) if math.prod(ksizes[j + 1 :]) <= 128)
        inner = math.prod(ksizes[j + 1 :])
        d = max([d for d in range(1, ksizes[j] + 1) if ksizes[j] % d == 0 and d * inner <= 128] or [1])
        kb = d * inner
    else:
        kb = kk if kk <= 640 else next((d for d in (256, 384, 512, 128, 192) if kk % d == 0), 256)
    return (mb, nb, kb, mr, nv)


def _k_split(ksizes: list, kb: int) -> tuple[int, int] | None:
    """(js, d): KB-deep slabs as blocks of d along reduce axis js times every axis after it, for the first
    axis where that tiles K exactly; None when no axis does (the pack then unravels a flat reduce index)."""
    for js, size in enumerate(ksizes):
        inner = math.prod(ksizes[js + 1 :])
        if kb % inner == 0 and kb // inner <= size and size % (kb // inner) == 0:
            return js, kb // inner
    return None


def _k_unroll(kb: int) -> int:
    """Reduce steps per trip of the micro-kernel's loop: enough to amortize its loop and pointer updates."""
    return next(u for u in (4, 2, 1) if kb % u == 0)


def _direct_rows(k: Kernel, plan: GemmPlan, full_index, gm: Lin, kbv: Lin, mb: int, mr: int, kb: int):
    """(buffer, [C pointer offset per register row], k stride) of a plain strided A read straight from
    global memory, so the micro-kernel walks one pointer per row; None when A is no single load or its
    index is not affine in the reduce index within a slab (a slab of whole heads of a permuted attention
    output is; one across heads is not). When M is no multiple of MB (one M axis only),
    rows past the end read the last row instead: their sums are never stored."""
    m_size = plan.sizes(k.full_shape)[1]
    ragged = m_size % mb != 0
    if ragged and len(plan.m_axes) != 1:
        return None
    kk = Lin.var("kk", kb)
    out, stride, buf = [], None, None
    for i in range(mr):
        m = gm * mb + Lin.var("mi", mb - mr + 1) + i  # mi's real range: mi + i never wraps
        if ragged:
            m = Lin.var("mrow", m_size)
        rd = reads(k, plan.a, tuple(full_index(m, Lin(), kbv * kb + kk)))
        if rd.computes or rd.checks or len(rd.loads) != 1:
            return None
        ((b, pos),) = rd.loads
        if b.dtype.name != "float32":  # the micro-kernel walks A with a float pointer
            return None
        c = pos.coefficient("kk")
        if not pos.is_affine or not c:
            return None
        if stride not in (None, c) or buf not in (None, b):
            return None
        stride, buf = c, b
        base = pos - kk * c
        if ragged:
            row_stride = base.coefficient("mrow")
            if not row_stride:
                return None
            rest = base - Lin.var("mrow", m_size) * row_stride
            row = f"(gm*{mb}+mi+{i})"
            out.append(f"{rest.render()}+({row}<{m_size}?{row}:{m_size - 1})*{row_stride}")
        else:
            out.append(base.render())
    return buf, out, stride


def _direct_b(k: Kernel, plan: GemmPlan, gemm: tuple, full_index, kbv: Lin, kslab) -> tuple | None:
    """(buffer, C offset of the first slab) when B's packed slab would be an exact copy of memory: B one plain
    float32 load at base + k * NB + n, every column in one tile and K in whole slabs (a conv's weight stored
    (Cin*KH*KW, Cout), tensor._weight_by_channel). The micro-kernel then reads its float8s in place; base a
    multiple of 8 floats keeps them aligned as the float8 loads need (OpenCL aligns every buffer to
    CL_DEVICE_MEM_BASE_ADDR_ALIGN, at least the 128 bytes of a long16 in the full profile)."""
    _, nb, kb, _, _ = gemm
    _, _, n_size, k_size = plan.sizes(k.full_shape)
    if n_size != nb or k_size % kb:
        return None
    kidx, kk = kslab
    j = Lin.var("j", nb)
    idx = full_index(Lin(), j, kk)
    if kidx is not None:
        for a, v in zip(plan.k_axes, kidx, strict=True):
            idx[a] = v
    rd = reads(k, plan.b, tuple(idx))
    if rd.computes or rd.checks or len(rd.loads) != 1:
        return None
    ((buf, pos),) = rd.loads
    if buf.dtype.name != "float32" or not pos.is_affine:
        return None
    rest = pos - j - kk * nb
    if not rest.variables() <= {"gb"} or rest.const % VEC or any(c % VEC for c in rest.terms.values()):
        return None
    return buf, rest.render()


def _slab_k(ksizes: list, kb: int, kbv: Lin) -> tuple:
    """(split, kidx, kk, kloops) of a KB-deep slab: _k_split's (js, d) or None; the reduce axes' indices
    (None: unravel kk); the flat reduce index (slab start plus slab-relative index); the pack's loops as
    (variable, trip count), outermost first."""
    split = _k_split(ksizes, kb)
    if split is None:
        return None, None, Lin.var("kk", kb) + kbv * kb, [("kk", kb)]
    # each slab is a block of d along reduce axis js times all the axes after it: loop over those axes
    # themselves, so the factor's index math has no divisions by their sizes (the axes before js, and the
    # block, follow from the slab index alone)
    js, d = split
    q = ksizes[js] // d
    head = unravel(kbv.floordiv(q), tuple(ksizes[:js])) if js else ()
    block = kbv * d if js == 0 else kbv.mod(q) * d
    local = [d] + ksizes[js + 1 :]
    kidx = list(head) + [Lin.var(f"k{js}", d) + block] + [
        Lin.var(f"k{i}", sz) for i, sz in enumerate(ksizes[js + 1 :], js + 1)
    ]
    kloops = [(f"k{i}", sz) for i, sz in enumerate(local, js)]
    kk = kbv * kb  # slab-relative index plus the slab's start (the slabs tile K exactly)
    for i, (sz, st) in enumerate(zip(local, _strides(local), strict=True), js):
        kk = kk + Lin.var(f"k{i}", sz) * st
    return split, kidx, kk, kloops


def _index_fn(plan: GemmPlan, shape: tuple, gb: Lin):
    """full_index(m, n, k): the iteration-space index of GEMM row m, column n and reduce step k."""

    def full_index(m: Lin, n: Lin, kk: Lin) -> list:
        idx = [Lin()] * len(shape)
        for axes, v in ((plan.batch, gb), (plan.m_axes, m), (plan.n_axes, n), (plan.k_axes, kk)):
            for a, i in zip(axes, unravel(v, tuple(shape[a] for a in axes)), strict=True):
                idx[a] = i
        return idx

    return full_index


def _a_rows(k: Kernel, plan: GemmPlan, gemm: tuple, full_index, gm: Lin, kbv: Lin):
    """_direct_rows for these tiles, or None when the tiles rule it out."""
    mb, _, kb, mr, _ = gemm
    if plan.sizes(k.full_shape)[3] % kb or mb % mr:
        return None
    return _direct_rows(k, plan, full_index, gm, kbv, mb, mr, kb)


def a_read_in_place(k: Kernel, plan: GemmPlan, gemm: tuple) -> bool:
    """Whether render_gemm reads A straight from memory by row pointers (no packing) with these tiles."""
    mb, nb, kb, _, _ = gemm
    nbatch, m, _, kk = plan.sizes(k.full_shape)
    gm, kbv = Lin.var("gm", -(-m // mb)), Lin.var("kb", -(-kk // kb))
    return _a_rows(k, plan, gemm, _index_fn(plan, k.full_shape, Lin.var("gb", nbatch)), gm, kbv) is not None


def _emit_micro_kernel(r: ExprWriter, plan: GemmPlan, gemm: tuple, direct_a: bool, rows, full_index,
                       gm: Lin, kbv: Lin, wide: tuple | None = None, direct_b: tuple | None = None,
                       prefetch: list | None = None) -> None:
    """The register-tiled inner loops over one packed slab: for each NR-wide panel of Bs (kept in L1
    across the whole M tile) and each MR rows of A, MR x NV float8 accumulators updated from one float8
    load of B per vector and one broadcast of A per row, the reduce loop unrolled and walked by pointers
    (no index arithmetic per step). rows: A's row pointers from _direct_rows, or None. wide: (tile rows,
    row length, kernel width, padded positions) when As holds a conv window as wide rows (_wide_window): the
    reduce loop then steps over the slab's kernel rows once per kernel column kx, each A value read at its
    pixel's offset in the wide row plus kx; padded positions is 0, or the register tiles' span over the wide
    rows themselves (_padded_rows). direct_b:
    (buffer, offset) from _direct_b when B's slabs are read in place rather than from Bs."""
    mb, nb, kb, mr, nv = gemm
    nr, emit = nv * VEC, r.emit
    tail = _row_tail(plan.sizes(r.k.full_shape)[1], mb, mr) if rows is not None else None
    if tail is None:
        mend = (wide and wide[3]) or mb  # padded wide rows: _padded_rows
        emit(f"for (int nj = 0; nj < {nb}; nj += {nr}) for (int mi = 0; mi < {mend}; mi += {mr}) {{")
    else:
        # the last M tile's rows end inside a register tile: full tiles up to there, then a narrower one,
        # instead of a whole register tile over rows that are never stored (128 rows in 22 tiles of 6)
        last, full, rest = tail
        bound = str(full) if last == 0 else f"(gm == {last} ? {full} : {mb})"
        emit(f"for (int nj = 0; nj < {nb}; nj += {nr}) for (int mi = 0; mi < {bound}; mi += {mr}) {{")
    r.indent += 1
    _emit_register_tile(r, plan, gemm, mr, direct_a, rows, full_index, gm, kbv, wide, direct_b, prefetch)
    r.indent -= 1
    emit("}")
    if tail is not None:
        emit(f"{f'if (gm == {last}) ' if last else ''}for (int nj = 0; nj < {nb}; nj += {nr}) {{")
        r.indent += 1
        emit(f"const int mi = {full};")
        _emit_register_tile(r, plan, gemm, rest, direct_a, rows, full_index, gm, kbv, wide, direct_b, prefetch)
        r.indent -= 1
        emit("}")


def _row_tail(m_size: int, mb: int, mr: int) -> tuple[int, int, int] | None:
    """(last tile's index, its rows in whole register tiles, the rows after them) when M's last tile ends
    inside a register tile; None when every tile is whole register tiles."""
    last = -(-m_size // mb) - 1
    rows = m_size - last * mb
    return None if rows % mr == 0 else (last, rows - rows % mr, rows % mr)


def _emit_register_tile(r: ExprWriter, plan: GemmPlan, gemm: tuple, mr: int, direct_a: bool, rows, full_index,
                        gm: Lin, kbv: Lin, wide: tuple | None, direct_b: tuple | None,
                        prefetch: list | None) -> None:
    """One register tile of mr rows at row mi and column nj of the M x N tile (_emit_micro_kernel)."""
    mb, nb, kb, _, nv = gemm
    emit, unroll = r.emit, _k_unroll(kb)
    for line in prefetch or ():
        emit(line)
    for i in range(mr):
        for v in range(nv):
            emit(f"float8 c{i}_{v} = *(__local float8*)(Cs+(mi+{i})*{nb}+nj+{v * VEC});")
    if direct_b is None:
        emit("__local const float* bp = Bs+nj;")
    else:
        emit(f"const __global float* bp = data{r.buf_index[direct_b[0].id]}+{direct_b[1]}+kb*{kb * nb}+nj;")
    bspace = "__local" if direct_b is None else "__global"
    if rows is not None:
        buf, bases, kstride = rows
        j = r.buf_index[buf.id]
        for i, base in enumerate(bases[:mr]):
            emit(f"const __global float* ap{i} = data{j}+{base};")
    elif not direct_a and wide is None:
        emit("__local const float* ap = As+mi;")

    def reduce_loop(a_at, steps: int = kb, unroll: int = unroll, b_step: int = nb, a_step: int = unroll * mb) -> None:
        """The unrolled reduce loop over `steps` slab rows b_step floats apart in B, A's value for step u and
        row i from a_at(u, i), A's pointer (if any) moved by a_step per trip."""
        emit(f"for (int kk = 0; kk < {steps}; kk += {unroll}) {{")
        r.indent += 1
        r.memo = {}
        for u in range(unroll):
            for v in range(nv):
                emit(f"float8 b{u}_{v} = *({bspace} const float8*)(bp+{u * b_step + v * VEC});")
            for i in range(mr):
                emit(f"float a{u}_{i} = {a_at(u, i)};")
                for v in range(nv):
                    emit(f"c{i}_{v} += a{u}_{i}*b{u}_{v};")
        emit(f"bp += {unroll * b_step};")
        if rows is None and not direct_a:
            emit(f"ap += {a_step};")
        r.indent -= 1
        emit("}")

    if rows is not None:
        reduce_loop(lambda u, i: f"ap{i}[{f'(kk+{u})*{kstride}' if kstride != 1 else f'kk+{u}'}]")
    elif direct_a:
        def a_at(u: int, i: int) -> str:
            kk = kbv * kb + Lin.var("kk", kb - unroll + 1) + u
            m = gm * mb + Lin.var("mi", mb - mr + 1) + i
            return r.expr(plan.a, tuple(full_index(m, Lin(), kk)), frozenset())
        reduce_loop(a_at)
    elif wide is not None:
        # the pixels' places in the wide rows. A register tile inside one output row reads them at fixed
        # offsets from one pointer; one that spans two rows (a row length not a multiple of MR) needs an
        # offset per pixel, which costs the loop registers and reloads, so it gets a loop of its own
        # The loop runs over the slab's kernel rows once per kernel column kx (kx outside): the values of
        # one step are then never those of another (at kx inside, pixel i + 1 at kx reads what pixel i
        # reads at kx + 1, and a compiler that keeps such shared values live runs out of registers)
        tile_rows, row, kw, mpad = wide
        padded = mpad > 0  # _padded_rows: mi is the pixel's place in the wide rows themselves
        wstride = tile_rows * (row + kw - 1)  # floats from one kernel row of As to the next
        steps = kb // kw
        kunroll = _k_unroll(steps)
        emit(f"{'__local const' if direct_b is None else 'const __global'} float* b0 = bp;")
        emit("int o0 = mi;" if padded else f"int o0 = (mi/{row})*{row + kw - 1}+mi%{row};")
        # a register tile may lie in one row, may span two
        one_row, two_rows = padded or row >= mr, not padded and row % mr != 0
        if two_rows:
            for i in range(1, mr):
                emit(f"int o{i} = ((mi+{i})/{row})*{row + kw - 1}+(mi+{i})%{row};")
        emit(f"for (int kx = 0; kx < {kw}; kx++) {{")
        r.indent += 1
        emit(f"bp = b0+kx*{nb};")
        if one_row and two_rows:
            emit(f"if (mi%{row} <= {row - mr}) {{")
            r.indent += 1
        if one_row:
            emit("__local const float* ap = As+o0+kx;")
            reduce_loop(lambda u, i: f"ap[{u * wstride + i}]", steps, kunroll, kw * nb, kunroll * wstride)
        if one_row and two_rows:
            r.indent -= 1
            emit("} else {")
            r.indent += 1
        if two_rows:  # an offset per pixel
            emit("__local const float* ap = As+kx;")
            reduce_loop(lambda u, i: f"ap[o{i}+{u * wstride}]", steps, kunroll, kw * nb, kunroll * wstride)
        if one_row and two_rows:
            r.indent -= 1
            emit("}")
        r.indent -= 1
        emit("}")
    else:
        reduce_loop(lambda u, i: f"ap[{u * mb + i}]")
    for i in range(mr):
        for v in range(nv):
            emit(f"*(__local float8*)(Cs+(mi+{i})*{nb}+nj+{v * VEC}) = c{i}_{v};")


def padding_pays(row: int, kw: int) -> bool:
    """Whether a conv's register tiles may run over the KW - 1 pixels past each output row (_padded_rows):
    where those cost at most 1/16 more FMAs."""
    return (kw - 1) * 16 <= row


def _padded_rows(k: Kernel, plan: GemmPlan, gemm: tuple, full_index, gm: Lin, gn: Lin, wrow: int) -> bool:
    """Whether the micro-kernel over a conv window stored as wide rows (_wide_window) computes the
    wide rows whole: their KW - 1 extra pixels a row are never stored (the epilogue walks whole output
    rows, _epilogue_rows), and As has room for the last register tile's reads past the slab."""
    mb, nb, kb, mr, _ = gemm
    row = k.full_shape[plan.m_axes[-1]]
    kw = wrow - row + 1
    if row % mr == 0 or not padding_pays(row, kw):  # whole register tiles in each row: nothing to gain
        return False
    if _epilogue_rows(k, plan, gemm, full_index, gm, Lin.var("nn", nb) + gn * nb)[0] is None:
        return False
    rows = mb // row
    mpad = -(-rows * wrow // mr) * mr
    return kb // kw * rows * wrow + mpad - rows * wrow + kw - 1 <= kb * mb


def _epilogue_rows(k: Kernel, plan: GemmPlan, gemm: tuple, full_index, gm: Lin, n: Lin, cs_row: int = 0) -> tuple:
    """(m, [loop marker, row length], Cs index) when the M tile is whole rows of the innermost M axis (a
    conv's output rows) and the output is stored along those rows: the epilogue then walks rows and
    columns (no division by the row length per output) with the columns innermost, so each row is one
    unit-stride run of stores instead of one store a whole channel plane away per output. cs_row: the
    length of a row in Cs when it is longer than the output's (_padded_rows). (None, None, None) otherwise."""
    mb, nb = gemm[0], gemm[1]
    row = k.full_shape[plan.m_axes[-1]] if plan.m_axes else 1
    if len(plan.m_axes) < 2 or not VEC <= row < mb or mb % row:  # runs shorter than a float8 gain nothing
        return None, None, None
    jr, jw = Lin.var("jr", mb // row), Lin.var("jw", row)
    m = jr * row + jw + gm * mb
    pos = linear(tuple(full_index(m, n, Lin())), k.reduce.shape)
    if "jw" not in pos.unit_variables() or "nn" in pos.unit_variables():
        return None, None, None
    return m, ["rows", row], f"(jr*{cs_row or row}+jw)*{nb}+nn"


@dataclass
class _WideRows:
    """A conv window packed as wide rows (_wide_window): the window, the kernel width and the wide row's
    length (the output row plus KW - 1)."""

    win: _Window
    kw: int
    wrow: int


@dataclass
class _PackSpec:
    """How render_gemm packs one factor's slab: its loops' shape, its index, and which copy it takes (a wide
    window, a window, or element by element)."""

    name: str  # "As" or "Bs"
    node: Node
    tile: int
    rows: int  # whole rows of the innermost tile axis in the tile (1: a flat tile index j)
    row: int
    k_inner: bool
    idx: tuple
    pos: Lin  # the element's place in the slab
    inner_var: str
    bounds: list
    win: _Window | None
    wide: _WideRows | None


def _pack_spec(k: Kernel, plan: GemmPlan, gemm: tuple, full_index, slab: tuple, name: str, node: Node,
               size: int, tile: int, tv: Lin, stride: int) -> _PackSpec:
    """The pack of factor `name` (its slab `tile` wide along the tile axes, `stride` floats per slab row)
    as analysed before render_gemm writes any C: the wide-rows choice sizes Cs."""
    mb, nb, kb, _, _ = gemm
    split, kidx, kk, kbv = slab
    shape = k.full_shape
    k_size = plan.sizes(shape)[3]
    ksizes = [shape[a] for a in plan.k_axes]
    # a tile of whole rows of the innermost tile axis (a conv's output rows) loops over rows and
    # columns: its index math then has no division by the row length per element
    tile_axes = plan.m_axes if name == "As" else plan.n_axes
    row = shape[tile_axes[-1]]
    rows = tile // row if row < tile and tile % row == 0 and tile == (mb if name == "As" else nb) else 1
    jl = Lin.var("jr", rows) * row + Lin.var("jw", row) if rows > 1 else Lin.var("j", tile)
    j = jl + tv * tile
    # a tile index that unravels into several axes (a weight gradient's channel x kernel window) costs
    # divisions: with the tile loop outside they are paid once per tile index, not once per element
    k_inner = _pack_k_inner(k, plan, node, name == "As") or (rows == 1 and len(tile_axes) > 1)
    idx = full_index(j, Lin(), kk) if name == "As" else full_index(Lin(), j, kk)
    if kidx is not None:
        for a, v in zip(plan.k_axes, kidx, strict=True):
            idx[a] = v
    inner_var = "jw" if rows > 1 else "j"
    bounds = [(j, 0, size), (kk, 0, k_size)]
    win = None if k_inner else _window(k, node, tuple(idx), bounds, inner_var)
    wide = None
    if win is not None and name == "As" and rows > 1 and split is not None and split[0] == 0 and len(ksizes) > 1:
        kw = ksizes[-1]
        row_bound = (Lin.var("jr", rows) * row + tv * tile, 0, size)
        wwin = _wide_window(k, node, tuple(idx), row_bound, row, f"k{len(ksizes) - 1}", kw)
        wide = _WideRows(wwin, kw, row + kw - 1) if wwin is not None else None
    pos = (kk - kbv * kb) * stride + jl
    return _PackSpec(name, node, tile, rows, row, k_inner, tuple(idx), pos, inner_var, bounds, win, wide)


def render_gemm(k: Kernel, plan: GemmPlan, opts: KernelOpts) -> Program:
    """OpenCL C for k as a packed GEMM with the tile sizes in opts.gemm."""
    mb, nb, kb, mr, nv = opts.gemm
    shape = k.full_shape
    nbatch, m_size, n_size, k_size = plan.sizes(shape)
    r = ExprWriter(k, opts)
    mt, nt, kt = -(-m_size // mb), -(-n_size // nb), -(-k_size // kb)
    emit = r.emit
    gn, gm, gb = Lin.var("gn", nt), Lin.var("gm", mt), Lin.var("gb", nbatch)
    kbv = Lin.var("kb", kt)
    full_index = _index_fn(plan, shape, gb)
    # a plain strided factor A is read straight from global memory in the micro-kernel; packing it
    # costs more than it saves when no index math or padding has to be paid per element
    a_rows = _a_rows(k, plan, opts.gemm, full_index, gm, kbv)
    direct_a = a_rows is not None or (m_size % mb == 0 and k_size % kb == 0 and _is_plain_load(k, plan.a))
    ksizes = [shape[a] for a in plan.k_axes]
    split, kidx, kk, kvars = _slab_k(ksizes, kb, kbv)
    kloops = [f"for (int {v} = 0; {v} < {n}; {v}++)" for v, n in kvars]
    direct_b = _direct_b(k, plan, opts.gemm, full_index, kbv, (kidx, kk))
    packs = [("As", plan.a, m_size, mb, gm, mb)] if not direct_a else []
    packs += [("Bs", plan.b, n_size, nb, gn, nb)] if direct_b is None else []
    specs = [_pack_spec(k, plan, opts.gemm, full_index, (split, kidx, kk, kbv), *p) for p in packs]
    # a conv window packed as wide rows sets the micro-kernel's layout, and the rows it walks size Cs
    wide = None
    for sp in specs:
        if sp.wide is not None:
            wrow = sp.wide.wrow
            wide = (sp.rows, sp.row, sp.wide.kw, 0)
            if _padded_rows(k, plan, opts.gemm, full_index, gm, gn, wrow):
                # the register tiles walk the wide rows themselves, KW - 1 pixels past each output row
                # included (never stored): every tile then reads its pixels at fixed offsets, whatever
                # MR and the row length are, for a few percent more FMAs
                wide = (sp.rows, sp.row, sp.wide.kw, -(-sp.rows * wrow // mr) * mr)
    cs_rows = (wide and wide[3]) or mb
    if not direct_a:
        emit(f"__local float As[{kb * mb}];")
    if direct_b is None:
        emit(f"__local float Bs[{kb * nb}];")
    emit(f"__local float Cs[{cs_rows * nb}];")
    # Each work-group takes output tiles from a counter until none are left, rather than computing the
    # tile its group id names. PoCL hands half of a kernel's work-groups to the first of two threads at
    # once (6 of the 12 tiles of a 768-wide GEMM), so a core that runs slow for a while (another process
    # on it, or a shared host) made the whole GEMM wait for its half while the other core sat idle. Taken
    # one at a time, the faster core takes more tiles. The last work-group to finish (of however many
    # were launched) sets the counter back to zero for the next launch.
    ntiles = nt * mt * nbatch
    r.extra_args.append(f"__global int* restrict {TILE_COUNTER}")
    emit("for (;;) {")
    r.indent += 1
    emit(f"const int tile = atomic_inc({TILE_COUNTER});")
    emit(f"if (tile >= {ntiles}) break;")
    gm_of = "0" if mt == 1 else f"tile / {nt}" if nbatch == 1 else f"tile / {nt} % {mt}"
    emit(f"const int gn = tile % {nt}, gm = {gm_of}, gb = {'0' if nbatch == 1 else f'tile / {nt * mt}'};")
    emit(f"for (int i = 0; i < {cs_rows * nb}; i++) Cs[i] = 0.0f;")
    if wide and wide[3]:
        # the last tiles' reads run up to MR + KW - 2 floats past the slab: zeros, not stale values
        rows, row, kw, mpad = wide
        wrow = row + kw - 1
        used = kb // kw * rows * wrow
        emit(f"for (int i = {used}; i < {used + mpad - rows * wrow + kw - 1}; i++) As[i] = 0.0f;")
    emit(f"for (int kb = 0; kb < {kt}; kb++) {{")
    r.indent += 1
    prefetch: list = []  # C run at the start of each register tile: the next slab's rows
    for sp in specs:
        r.memo = {}
        jloops = (
            [f"for (int jr = 0; jr < {sp.rows}; jr++)", f"for (int jw = 0; jw < {sp.row}; jw++)"]
            if sp.rows > 1
            else [f"for (int j = 0; j < {sp.tile}; j++)"]
        )
        if sp.wide is not None:
            # a conv window as wide rows (stored [reduce row][tile row][row + KW - 1]): a third of an
            # im2col pack's copies for 3x3 kernels; the micro-kernel reads each kx at an offset
            wrow = sp.wide.wrow
            kq = Lin()  # the slab's reduce row: every reduce axis but the kernel column
            for i, (sz, st) in enumerate(zip([split[1]] + ksizes[1:-1], _strides([split[1]] + ksizes[1:-1]), strict=True)):
                kq = kq + Lin.var(f"k{i}", sz) * st
            dst = kq * (sp.rows * wrow) + Lin.var("jr", sp.rows) * wrow + Lin.var("u", wrow)
            emit(" ".join(kloops[:-1] + jloops[:-1]) + " {")
            r.indent += 1
            _emit_window(r, sp.wide.win, sp.name, dst, "u", wrow)
        elif sp.win is not None:
            # a padded view of one buffer, tile index innermost: copy the in-range run of each slab row
            # as a plain loop (which vectorizes) and zero the rest, instead of testing every element
            emit(" ".join(kloops + jloops[:-1]) + " {")
            r.indent += 1
            _emit_window(r, sp.win, sp.name, sp.pos, sp.inner_var, sp.row if sp.rows > 1 else sp.tile, kvars[0])
            if sp.rows == 1 and len(kvars) == 1:
                line = _next_slab_prefetch(r, sp.win, kvars[0], sp.inner_var, sp.tile, opts.gemm, kt)
                prefetch += [line] if line else []
        else:
            emit(" ".join(jloops + kloops if sp.k_inner else kloops + jloops) + " {")
            r.indent += 1
            conds = [c for x, lo, hi in sp.bounds for c in in_range(x, lo, hi)]
            val = r.expr(sp.node, sp.idx, frozenset(conds))
            val = f"({'&&'.join(conds)}?{val}:0.0f)" if conds else val
            emit(f"{sp.name}[{sp.pos.render()}] = {val};")
        r.indent -= 1
        emit("}")
    _emit_micro_kernel(r, plan, opts.gemm, direct_a, a_rows, full_index, gm, kbv, wide, direct_b, prefetch)
    r.indent -= 1
    emit("}")
    # epilogue: the fused elementwise ops after the reduce, one output at a time
    # a ragged last tile bounds the loops themselves (a test per element keeps them from vectorizing)
    ends = []
    for name, size, tile, g in (("mend", m_size, mb, "gm"), ("nend", n_size, nb, "gn")):
        ends.append((name, f"int {name} = {size}-{g}*{tile} < {tile} ? {size}-{g}*{tile} : {tile};")
                    if size % tile else (str(tile), None))
    n = Lin.var("nn", nb) + gn * nb
    m, order, cs = _epilogue_rows(k, plan, opts.gemm, full_index, gm, n, wide[1] + wide[2] - 1 if wide and wide[3] else 0)
    if ends[1][1]:
        emit(ends[1][1])
    if m is None:
        if ends[0][1]:
            emit(ends[0][1])
        m, order, cs = Lin.var("mm", mb) + gm * mb, [f"for (int mm = 0; mm < {ends[0][0]}; mm++)"], f"mm*{nb}+nn"
    elif m_size % mb:
        rows, row = mb // order[1], order[1]
        emit(f"int rend = {m_size // row}-gm*{rows} < {rows} ? {m_size // row}-gm*{rows} : {rows};")
    nloop = f"for (int nn = 0; nn < {ends[1][0]}; nn++)"
    if len(order) > 1:  # whole output rows, each stored as a unit-stride run: the channel loop outside
        rows, row = mb // order[1], order[1]
        order = [nloop, f"for (int jr = 0; jr < {'rend' if m_size % mb else rows}; jr++)",
                 f"for (int jw = 0; jw < {row}; jw++)"]
    else:
        order = order + [nloop]
    emit(" ".join(order) + " {")
    r.indent += 1
    r.memo = {}
    r.acc_override = "acc"
    emit(f"float acc = Cs[{cs}];")
    oi = full_index(m, n, Lin())
    pos = linear(tuple(oi), k.reduce.shape)
    val = r.expr(
        k.out, unravel(pos, k.out.shape) if k.out.shape != k.reduce.shape else tuple(oi), frozenset()
    )
    r.store(val, pos)
    r.indent -= 1
    emit("}")
    r.indent -= 1
    emit("}")
    emit(f"if (atomic_inc({TILE_COUNTER} + 1) == get_num_groups(0) * get_num_groups(1) * get_num_groups(2) - 1)")
    emit(f"  {TILE_COUNTER}[0] = {TILE_COUNTER}[1] = 0;")
    src, name = r.kernel_source()
    return Program(src, name, (nt, mt, nbatch), (1, 1, 1), opts)
