"""GPU-shaped GEMM kernels for matmul-like reduces (matmul, conv2d through its reduce) in any C dialect.

`render_tiled_gemm` (float32, OpenCL/CUDA/HIP): a work-group owns a BM x BN output tile; each K step it
stages BK-deep slabs of both factors in shared memory (any index math, padding or broadcast paid once per
element, the global reads ordered so neighbouring work-items read neighbouring addresses), then every
work-item accumulates a TM x TN register block from float4 reads of the slabs.

`render_mma_gemm` (float16/bfloat16 factors, CUDA, sm_80+): the same staging with the slabs stored as
16-bit values, K-contiguous rows; each warp owns a (BM/WM) x (BN/WN) tile and runs PTX
`mma.sync.aligned.m16n8k16` on tensor cores with float32 accumulators. A bfloat16 matmul is a float32
sum of float32 products of widened bfloat16 loads, which the tensor cores compute exactly: the template
stages the bfloat16 loads themselves (`mma_factors`). The fused epilogue after the
reduce (bias, activation, the cast back to the output dtype) runs on the accumulators in both.
"""

from __future__ import annotations

import math
from dataclasses import replace

from .dialects import CUDA, Dialect
from .indexing import linear, reads, unravel
from .kernel_ir import Kernel, KernelOpts, Program
from .lazy import Node
from .ops import Ops
from .render_gemm import GemmPlan, _reads_along_k
from .render_opencl import ExprWriter
from .symbolic import Lin, in_range

TILED_DEFAULT = (64, 64, 16, 4, 4)  # BM, BN, BK, TM, TN: 256 work-items, 16 outputs each
MMA_DEFAULT = (128, 128, 32, 2, 4)  # BM, BN, BK, warps along M, warps along N: 8 warps

_MMA_ASM = {
    "float16": "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32",
    "bfloat16": "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32",
}
_TO_16 = {"float16": "wb_f2h", "bfloat16": "wb_f2b"}


def tiled_candidates() -> list[tuple]:
    """The (BM, BN, BK, TM, TN) shapes WB_SEARCH times for the float32 tiled GEMM."""
    return [(64, 64, 16, 4, 4), (128, 64, 16, 8, 4), (64, 128, 16, 4, 8), (128, 128, 8, 8, 8), (32, 32, 16, 4, 4)]


def mma_candidates() -> list[tuple]:
    """The (BM, BN, BK, WM, WN) shapes WB_SEARCH times for the tensor-core GEMM."""
    return [(128, 128, 32, 2, 4), (128, 64, 32, 2, 2), (64, 128, 32, 2, 2), (64, 64, 32, 2, 2), (128, 256, 32, 2, 4)]


class _Tiles:
    """Index helpers shared by both templates: the output tile of this work-group and the K slab."""

    def __init__(self, k: Kernel, plan: GemmPlan, bm: int, bn: int, bk: int):
        self.k, self.plan, self.shape = k, plan, k.full_shape
        self.nbatch, self.m, self.n, self.kk = plan.sizes(self.shape)
        self.mt, self.nt, self.kt = -(-self.m // bm), -(-self.n // bn), -(-self.kk // bk)
        self.gn, self.gm, self.gb = Lin.var("gn", self.nt), Lin.var("gm", self.mt), Lin.var("gb", self.nbatch)
        self.kbv = Lin.var("kb", self.kt)
        self.bm, self.bn, self.bk = bm, bn, bk

    def full_index(self, m: Lin, n: Lin, kk: Lin) -> list:
        idx = [Lin()] * len(self.shape)
        p = self.plan
        for axes, v in ((p.batch, self.gb), (p.m_axes, m), (p.n_axes, n), (p.k_axes, kk)):
            for a, i in zip(axes, unravel(v, tuple(self.shape[a] for a in axes)), strict=True):
                idx[a] = i
        return idx

    def stage(self, r: ExprWriter, name: str, is_a: bool, nthreads: int, store) -> None:
        """Emit the copy of this K step's slab of factor A (is_a) or B into shared array name; store(val,
        j, kk) gives the statement writing float val for tile row j and slab column kk."""
        tile = self.bm if is_a else self.bn
        node, size = (self.plan.a, self.m) if is_a else (self.plan.b, self.n)
        tv = self.gm if is_a else self.gn
        per = tile * self.bk // nthreads
        k_inner = _reads_along_k(self.k, self.plan, node, is_a)
        r.emit(f"for (int l = 0; l < {per}; l++) {{")
        r.indent += 1
        r.emit(f"int e = tid + l*{nthreads};")
        if k_inner:  # consecutive work-items read consecutive k of one row
            r.emit(f"int j = e / {self.bk}; int kk = e % {self.bk};")
        else:
            r.emit(f"int j = e % {tile}; int kk = e / {tile};")
        j = Lin.var("j", tile) + tv * tile
        kk = Lin.var("kk", self.bk) + self.kbv * self.bk
        conds = in_range(j, 0, size) + in_range(kk, 0, self.kk)
        idx = self.full_index(j, Lin(), kk) if is_a else self.full_index(Lin(), j, kk)
        r.memo = {}
        val = r.expr(node, tuple(idx), frozenset(conds))
        val = f"({'&&'.join(conds)}?{val}:0.0f)" if conds else val
        r.emit(store(val))
        r.indent -= 1
        r.emit("}")

    def stage_vectors(self, r: ExprWriter, is_a: bool, nthreads: int, k_inner: bool, ld: int, vtype: str) -> bool:
        """Emit this K step's slab of a factor into shared array As/Bs with 16-byte global loads (vtype:
        uint4 for 16-bit elements, float4 for float32) when the factor is one plain load whose elements
        are adjacent along K or along the tile's rows and 16-byte aligned; False, with nothing emitted,
        otherwise. The shared layout is rows of the tile with K innermost (k_inner, row length ld) or K
        rows of ld elements; loads along the layout's inner dimension are stored whole, the others
        scattered."""
        tile = self.bm if is_a else self.bn
        node, size = (self.plan.a, self.m) if is_a else (self.plan.b, self.n)
        tv = self.gm if is_a else self.gn
        name = "As" if is_a else "Bs"
        d = r.d
        for along_k in (True, False):
            rd0 = reads(self.k, node, tuple(self.full_index(Lin(), Lin(), Lin())))
            if rd0.computes or rd0.checks or len(rd0.loads) != 1:
                return False
            width = 16 // rd0.loads[0][0].dtype.itemsize
            if along_k:
                groups, count = self.bk // width, tile * (self.bk // width)
                inner, full = self.kk, self.bk % width == 0
                q = Lin.var("q", self.bk // width)
                j, kk = Lin.var("j", tile) + tv * tile, q * width + self.kbv * self.bk
            else:
                groups, count = tile // width, (tile // width) * self.bk
                inner, full = size, tile % width == 0
                q = Lin.var("q", tile // width)
                j, kk = q * width + tv * tile, Lin.var("kk", self.bk) + self.kbv * self.bk
            if not full or inner % width or count % nthreads or ld % width or not q.terms:
                continue
            idx = self.full_index(j, Lin(), kk) if is_a else self.full_index(Lin(), j, kk)
            rd = reads(self.k, node, tuple(idx))
            if rd.computes or rd.checks or len(rd.loads) != 1:
                return False
            buf, pos = rd.loads[0]
            q_atom = next(iter(q.terms))
            if (
                buf.dtype.itemsize not in (2, 4)
                or (buf.dtype.itemsize == 2) != (vtype == "uint4")
                or not pos.is_affine
                or pos.terms.get(q_atom) != width
                or pos.const % width
                or any(c % width for a, c in pos.terms.items() if a is not q_atom)
            ):
                continue
            conds = in_range(j, 0, size) + in_range(kk, 0, self.kk)
            r.emit(f"for (int l = 0; l < {count // nthreads}; l++) {{")
            r.indent += 1
            split = "int j = e / {0}; int q = e % {0};" if along_k else "int kk = e / {0}; int q = e % {0};"
            r.emit(f"int e = tid + l*{nthreads}; " + split.format(groups))
            zero = "0u" if vtype == "uint4" else "0.0f"
            r.emit(f"{vtype} v = {{{', '.join([zero] * 4)}}};" if d.name != "opencl" else f"{vtype} v = ({vtype})({zero});")
            load = f"v = *(const {d.global_arg}{vtype}*)(data{r.buf_index[buf.id]}+{pos.render()});"
            r.emit(f"if ({'&&'.join(conds)}) {load}" if conds else load)
            # (row, k) of element i of the vector, and where it lives in the shared layout
            row, col = ("j", f"q*{width}+i") if along_k else (f"q*{width}+i", "kk")
            at = f"({row})*{ld}+{col}" if k_inner else f"({col})*{ld}+{row}"
            if along_k == k_inner:  # the vector runs along the shared array's rows: store it whole
                first = at.replace("+i", "")
                r.emit(f"*({d.shared_ptr}{vtype}*)({name}+{first}) = v;")
            else:
                elem = "unsigned short" if vtype == "uint4" else "float"
                r.emit(f"const {elem}* h = (const {elem}*)&v;")
                r.emit(f"for (int i = 0; i < {width}; i++) {name}[{at}] = h[i];")
            r.indent -= 1
            r.emit("}")
            return True
        return False

    def epilogue(self, r: ExprWriter, acc: str, m: Lin, n: Lin) -> None:
        """Emit the fused ops after the reduce for the output (m, n) whose sum is in variable acc."""
        conds = in_range(m, 0, self.m) + in_range(n, 0, self.n)
        r.emit(f"if ({'&&'.join(conds)}) {{" if conds else "{")
        r.indent += 1
        r.memo = {}
        r.acc_override = acc
        oi = self.full_index(m, n, Lin())
        k = self.k
        pos = linear(tuple(oi), k.reduce.shape)
        val = r.expr(k.out, unravel(pos, k.out.shape) if k.out.shape != k.reduce.shape else tuple(oi), frozenset())
        r.store(val, pos)
        r.indent -= 1
        r.emit("}")


def _head(r: ExprWriter, d: Dialect) -> None:
    r.emit(f"int tid = {d.local_ids[0]};")
    r.emit(f"int gn = {d.group_ids[0]}; int gm = {d.group_ids[1]}; int gb = {d.group_ids[2]};")


def render_tiled_gemm(k: Kernel, plan: GemmPlan, opts: KernelOpts, d: Dialect) -> Program:
    """k as a shared-memory tiled, register-blocked float32 GEMM with tiles opts.gpu_gemm, in dialect d."""
    bm, bn, bk, tm, tn = opts.gpu_gemm
    nthreads = (bm // tm) * (bn // tn)
    t = _Tiles(k, plan, bm, bn, bk)
    r = ExprWriter(k, opts, d)
    emit = r.emit
    emit(f"{d.shared} float As[{bk * bm}] __attribute__((aligned(16)));")
    emit(f"{d.shared} float Bs[{bk * bn}] __attribute__((aligned(16)));")
    _head(r, d)
    emit(f"int tx = tid % {bn // tn}; int ty = tid / {bn // tn};")
    for i in range(tm):
        emit(" ".join(f"float c{i}_{j} = 0.0f;" for j in range(tn)))
    emit(f"for (int kb = 0; kb < {t.kt}; kb++) {{")
    r.indent += 1
    # plain float32 factors move in 16-byte float4 loads; anything else element by element
    if not t.stage_vectors(r, True, nthreads, False, bm, "float4"):
        t.stage(r, "As", True, nthreads, lambda v: f"As[kk*{bm}+j] = {v};")
    if not t.stage_vectors(r, False, nthreads, False, bn, "float4"):
        t.stage(r, "Bs", False, nthreads, lambda v: f"Bs[kk*{bn}+j] = {v};")
    emit(d.barrier)
    emit(f"for (int kk = 0; kk < {bk}; kk++) {{")
    r.indent += 1
    f4 = f"({d.shared_ptr}float4*)"
    for q in range(tm // 4):
        emit(f"float4 a{q} = *{f4}(As+kk*{bm}+ty*{tm}+{4 * q});")
    for q in range(tn // 4):
        emit(f"float4 b{q} = *{f4}(Bs+kk*{bn}+tx*{tn}+{4 * q});")
    lane = "xyzw"
    for i in range(tm):
        for j in range(tn):
            emit(f"c{i}_{j} += a{i // 4}.{lane[i % 4]}*b{j // 4}.{lane[j % 4]};")
    r.indent -= 1
    emit("}")
    emit(d.barrier)
    r.indent -= 1
    emit("}")
    for i in range(tm):
        for j in range(tn):
            m = t.gm * bm + Lin.var("ty", bm // tm) * tm + i
            n = t.gn * bn + Lin.var("tx", bn // tn) * tn + j
            t.epilogue(r, f"c{i}_{j}", m, n)
    src, name = r.kernel_source()
    return Program(src, name, (t.nt * nthreads, t.mt, t.nbatch), (nthreads, 1, 1), opts)


def render_mma_gemm(k: Kernel, plan: GemmPlan, opts: KernelOpts) -> Program:
    """k as a tensor-core GEMM (mma.sync m16n8k16, float32 accumulators) with tiles opts.mma_gemm, in CUDA."""
    bm, bn, bk, wm, wn = opts.mma_gemm
    a, b = mma_factors(k, plan)
    plan = replace(plan, a=a, b=b)
    dt = a.dtype.name
    wtm, wtn = bm // wm, bn // wn
    mi_n, ni_n = wtm // 16, wtn // 8
    nthreads = 32 * wm * wn
    lda = bk + 8  # padded rows: the fragment reads of neighbouring rows fall in different banks
    t = _Tiles(k, plan, bm, bn, bk)
    r = ExprWriter(k, opts, CUDA)
    emit = r.emit
    emit(f"__shared__ __align__(16) unsigned short As[{bm * lda}];")
    emit(f"__shared__ __align__(16) unsigned short Bs[{bn * lda}];")
    _head(r, CUDA)
    emit(f"int warp = tid >> 5; int lane = tid & 31; int wm = warp / {wn}; int wn = warp % {wn};")
    emit("int g = lane >> 2; int lq = lane & 3;")
    for mi in range(mi_n):
        for ni in range(ni_n):
            emit(f"float c{mi}_{ni}[4] = {{0.0f, 0.0f, 0.0f, 0.0f}};")
    emit(f"for (int kb = 0; kb < {t.kt}; kb++) {{")
    r.indent += 1
    to16 = _TO_16[dt]
    # a plain 16-bit factor with K contiguous moves in 16-byte copies; anything else (a conv window,
    # padding, a transposed view) goes through the general per-element staging
    if not t.stage_vectors(r, True, nthreads, True, lda, "uint4"):
        t.stage(r, "As", True, nthreads, lambda v: f"As[j*{lda}+kk] = {to16}({v});")
    if not t.stage_vectors(r, False, nthreads, True, lda, "uint4"):
        t.stage(r, "Bs", False, nthreads, lambda v: f"Bs[j*{lda}+kk] = {to16}({v});")
    emit("__syncthreads();")
    emit(f"for (int ks = 0; ks < {bk}; ks += 16) {{")
    r.indent += 1
    frag = "*(const unsigned*)({0}+({1})*{2}+ks+lq*2{3})"
    for mi in range(mi_n):
        row = f"wm*{wtm}+{mi * 16}+g"
        regs = [
            frag.format("As", row, lda, ""),
            frag.format("As", f"{row}+8", lda, ""),
            frag.format("As", row, lda, "+8"),
            frag.format("As", f"{row}+8", lda, "+8"),
        ]
        emit(f"unsigned a{mi}[4] = {{{', '.join(regs)}}};")
    for ni in range(ni_n):
        col = f"wn*{wtn}+{ni * 8}+g"
        emit(f"unsigned b{ni}[2] = {{{frag.format('Bs', col, lda, '')}, {frag.format('Bs', col, lda, '+8')}}};")
    for mi in range(mi_n):
        for ni in range(ni_n):
            emit(f"wb_mma(c{mi}_{ni}, a{mi}, b{ni});")
    r.indent -= 1
    emit("}")
    emit("__syncthreads();")
    r.indent -= 1
    emit("}")
    for mi in range(mi_n):
        for ni in range(ni_n):
            for q in range(4):
                m = t.gm * bm + Lin.var("wm", wm) * wtm + (mi * 16 + (8 if q >= 2 else 0)) + Lin.var("g", 8)
                n = t.gn * bn + Lin.var("wn", wn) * wtn + (ni * 8 + (q & 1)) + Lin.var("lq", 4) * 2
                t.epilogue(r, f"c{mi}_{ni}[{q}]", m, n)
    src, name = r.kernel_source()
    mma = (
        "__device__ __forceinline__ void wb_mma(float* c, const unsigned* a, const unsigned* b) {\n"
        f'  asm volatile("{_MMA_ASM[dt]} {{%0,%1,%2,%3}}, {{%4,%5,%6,%7}}, {{%8,%9}}, {{%0,%1,%2,%3}};"\n'
        '    : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])\n'
        '    : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));\n}\n'
    )
    head = src.index('extern "C"')
    src = src[:head] + mma + src[head:]
    return Program(src, name, (t.nt * nthreads, t.mt, t.nbatch), (nthreads, 1, 1), opts)


def _widened(k: Kernel, n: Node) -> Node | None:
    """The 16-bit float node that n widens to float32 inside k (a CAST k computes itself), else None."""
    if n.op != Ops.CAST or n.dtype.name != "float32" or n.src[0].dtype.name not in _MMA_ASM or n.realized:
        return None
    return None if any(n is b for b in k.buffers) else n.src[0]


def mma_factors(k: Kernel, plan: GemmPlan | None) -> tuple[Node, Node] | None:
    """The two 16-bit factors (one dtype) the tensor cores multiply for k's GEMM view, else None: float16
    factors as they are, or float16/bfloat16 loads widened to float32 (exact products, float32 sum). A
    bfloat16 product as such is rounded to bfloat16 by REF, which mma would not do, so it stays scalar."""
    if plan is None:
        return None
    a, b = plan.a, plan.b
    if a.dtype.name == "float32":
        a, b = _widened(k, a), _widened(k, b)
    elif a.dtype.name != "float16":
        return None
    if a is None or b is None or a.dtype != b.dtype:
        return None
    return a, b


def mma_eligible(plan: GemmPlan | None, k: Kernel) -> bool:
    """True when k's GEMM view has 16-bit float factors the tensor-core template takes."""
    return mma_factors(k, plan) is not None


def fits(opts_tile: tuple, plan: GemmPlan, shape: tuple) -> bool:
    """True when a tile is not wildly larger than the problem (M or N below half a tile wastes the GPU)."""
    _, m, n, _ = plan.sizes(shape)
    return m * 2 >= opts_tile[0] or n * 2 >= opts_tile[1] or math.prod(opts_tile[:2]) <= 4096
