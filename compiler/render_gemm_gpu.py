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
from dataclasses import dataclass, replace

from .dialects import CUDA, Dialect
from .indexing import linear, reads, unravel
from .kernel_ir import Kernel, KernelOpts, Program
from .lazy import Node
from .ops import Ops
from .render_gemm import GemmPlan, _reads_along_k
from .render_opencl import ExprWriter
from .symbolic import Lin, in_range

# BM, BN, BK, TM, TN: 256 work-items, 32 outputs each (on an H100 at 4096-8192: 36-38 TFLOP/s, 64x64x16 4x4 30-31)
TILED_DEFAULT = (128, 64, 16, 8, 4)
# BM, BN, BK, warps along M, warps along N (8 warps), shared stages: on an H200 at 4096 and 8192 the fastest
# of the searched tiles (286 and 305 TFLOP/s; 128x128x32 with 2-4 stages 272-291)
MMA_DEFAULT = (128, 128, 64, 2, 4, 2)
# the tiles a GEMM too small to give the defaults enough work-groups falls back to, largest first
TILED_SMALLER = [(64, 64, 16, 4, 4), (32, 32, 16, 4, 4)]
MMA_SMALLER = [(128, 64, 32, 2, 2, 4), (64, 64, 32, 2, 2, 4)]

_MMA_ASM = {
    "float16": "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32",
    "bfloat16": "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32",
}
_TO_16 = {"float16": "wb_f2h", "bfloat16": "wb_f2b"}


def tiled_candidates() -> list[tuple]:
    """The (BM, BN, BK, TM, TN) shapes WB_SEARCH times for the float32 tiled GEMM."""
    return [(64, 64, 16, 4, 4), (128, 64, 16, 8, 4), (64, 128, 16, 4, 8), (128, 128, 8, 8, 8), (32, 32, 16, 4, 4)]


def mma_candidates() -> list[tuple]:
    """The (BM, BN, BK, WM, WN, stages) shapes WB_SEARCH times for the tensor-core GEMM."""
    return [(128, 128, 32, 2, 4, 4), (128, 128, 32, 2, 4, 3), (128, 128, 32, 2, 4, 2), (128, 256, 32, 2, 4, 3),
            (256, 128, 32, 4, 2, 3), (128, 128, 64, 2, 4, 2), (128, 64, 32, 2, 2, 4), (64, 128, 32, 2, 2, 4),
            (64, 64, 32, 2, 2, 4)]


@dataclass(frozen=True)
class _VectorCopy:
    """A slab copied in 16-byte vectors: `count` of them, `groups` per row of the copy's layout."""

    along_k: bool  # the vectors run along K (else along the tile's rows)
    width: int  # elements per vector
    groups: int
    count: int
    itemsize: int
    conds: list  # bounds checks of a vector (all its elements are in or out together)
    data: str  # the kernel argument read
    pos: str  # the element offset of the vector's first element

    def split(self) -> str:
        """C statements naming this work-item's vector e by its row and vector index q in the slab."""
        outer = "j" if self.along_k else "kk"
        return f"int {outer} = e / {self.groups}; int q = e % {self.groups};"


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

    def vector_copy(self, r: ExprWriter, is_a: bool, nthreads: int, along_k: bool, ld: int) -> _VectorCopy | None:
        """How this K step's slab of a factor moves in 16-byte global loads running along K (along_k) or
        along the tile's rows, when the factor is one plain load whose elements are adjacent that way and
        16-byte aligned, and the slab splits evenly over nthreads; None otherwise."""
        tile = self.bm if is_a else self.bn
        node, size = (self.plan.a, self.m) if is_a else (self.plan.b, self.n)
        tv = self.gm if is_a else self.gn
        rd0 = reads(self.k, node, tuple(self.full_index(Lin(), Lin(), Lin())))
        if rd0.computes or rd0.checks or len(rd0.loads) != 1:
            return None
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
            return None
        idx = self.full_index(j, Lin(), kk) if is_a else self.full_index(Lin(), j, kk)
        rd = reads(self.k, node, tuple(idx))
        if rd.computes or rd.checks or len(rd.loads) != 1:
            return None
        buf, pos = rd.loads[0]
        q_atom = next(iter(q.terms))
        if (
            buf.dtype.itemsize not in (2, 4)
            or not pos.is_affine
            or pos.terms.get(q_atom) != width
            or pos.const % width
            or any(c % width for a, c in pos.terms.items() if a is not q_atom)
        ):
            return None
        conds = in_range(j, 0, size) + in_range(kk, 0, self.kk)
        return _VectorCopy(along_k, width, groups, count, buf.dtype.itemsize, conds,
                           f"data{r.buf_index[buf.id]}", pos.render())

    def stage_vectors(self, r: ExprWriter, is_a: bool, nthreads: int, k_inner: bool, ld: int, vtype: str) -> bool:
        """Emit this K step's slab of a factor into shared array As/Bs with 16-byte global loads (vtype:
        uint4 for 16-bit elements, float4 for float32) where `vector_copy` finds a way; False, with nothing
        emitted, otherwise. The shared layout is rows of the tile with K innermost (k_inner, row length ld)
        or K rows of ld elements; loads along the layout's inner dimension are stored whole, the others
        scattered."""
        name = "As" if is_a else "Bs"
        d = r.d
        for along_k in (True, False):
            vc = self.vector_copy(r, is_a, nthreads, along_k, ld)
            if vc is None or (vc.itemsize == 2) != (vtype == "uint4"):
                continue
            width = vc.width
            r.emit(f"for (int l = 0; l < {vc.count // nthreads}; l++) {{")
            r.indent += 1
            r.emit(f"int e = tid + l*{nthreads}; " + vc.split())
            zero = "0u" if vtype == "uint4" else "0.0f"
            r.emit(f"{vtype} v = {{{', '.join([zero] * 4)}}};" if d.name != "opencl" else f"{vtype} v = ({vtype})({zero});")
            load = f"v = *(const {d.global_arg}{vtype}*)({vc.data}+{vc.pos});"
            r.emit(f"if ({'&&'.join(vc.conds)}) {load}" if vc.conds else load)
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


_MMA_HELPERS = """\
__device__ __forceinline__ unsigned wb_smem(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }
__device__ __forceinline__ void wb_cp16(void* dst, const void* src, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(wb_smem(dst)), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void wb_cp_commit() { asm volatile("cp.async.commit_group;" ::); }
template <int N> __device__ __forceinline__ void wb_cp_wait() { asm volatile("cp.async.wait_group %0;" :: "n"(N) : "memory"); }
__device__ __forceinline__ void wb_ldsm4(unsigned* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
    : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(wb_smem(p)));
}
__device__ __forceinline__ void wb_ldsm4t(unsigned* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
    : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(wb_smem(p)));
}
"""

# shared memory per block a tile may ask for: what sm_86/sm_89 allow with the opt-in (A100 163 KB, H100 227 KB)
MMA_SHARED_LIMIT = 99 * 1024


def _mma_layouts(t: _Tiles, r: ExprWriter, nthreads: int) -> list[tuple[_VectorCopy | None, int]]:
    """Per factor (A, B): its 16-byte async copy (None: per-element staging) and its shared layout's row
    length. A copy along K keeps K innermost (rows of bk + 8), one along the tile's rows keeps K rows of
    tile + 8; the 8 elements of padding put the 8 row addresses of an ldmatrix in different banks."""
    out = []
    for is_a in (True, False):
        tile = t.bm if is_a else t.bn
        vc = t.vector_copy(r, is_a, nthreads, True, t.bk + 8)
        if vc is None or vc.itemsize != 2:
            vc = t.vector_copy(r, is_a, nthreads, False, tile + 8)
            if vc is not None and vc.itemsize != 2:
                vc = None
        out.append((vc, t.bk + 8 if vc is None or vc.along_k else tile + 8))
    return out


def mma_stages(tile: tuple) -> int:
    """Shared-memory stages of a tensor-core tile (tiles searched before stages were a parameter had two)."""
    return tile[5] if len(tile) > 5 else 2


def mma_shared_bytes(tile: tuple) -> int:
    """Shared memory of the tensor-core template's stages at tile (BM, BN, BK, WM, WN, stages), whichever
    layouts its factors get (the larger of the two per factor)."""
    bm, bn, bk = tile[:3]
    per = lambda t: max(t * (bk + 8), bk * (t + 8))
    return mma_stages(tile) * 2 * (per(bm) + per(bn))


def render_mma_gemm(k: Kernel, plan: GemmPlan, opts: KernelOpts) -> Program:
    """k as a tensor-core GEMM (mma.sync m16n8k16, float32 accumulators) with tiles opts.mma_gemm, in CUDA.

    A ring of shared-memory stages (dynamic shared memory): while the warps multiply one K slab, the next
    stages - 1 arrive by `cp.async` (16-byte copies that bypass the registers; factors that are not one
    plain aligned load are staged element by element instead), one barrier per slab. Fragments come out of
    shared memory by `ldmatrix` (`.trans` where a factor's slab is stored K-major), four 8x8 matrices per
    instruction."""
    bm, bn, bk, wm, wn = opts.mma_gemm[:5]
    stages = mma_stages(opts.mma_gemm)
    a, b = mma_factors(k, plan)
    plan = replace(plan, a=a, b=b)
    dt = a.dtype.name
    wtm, wtn = bm // wm, bn // wn
    mi_n, ni_n = wtm // 16, wtn // 8
    assert ni_n % 2 == 0 and bk % 16 == 0, f"mma tile {opts.mma_gemm}: warp tile N must be a multiple of 16"
    nthreads = 32 * wm * wn
    t = _Tiles(k, plan, bm, bn, bk)
    r = ExprWriter(k, opts, CUDA)
    emit = r.emit
    (vca, lda), (vcb, ldb) = _mma_layouts(t, r, nthreads)
    rows_a = bm if vca is None or vca.along_k else bk
    rows_b = bn if vcb is None or vcb.along_k else bk
    size_a, size_b = rows_a * lda, rows_b * ldb
    emit("extern __shared__ __align__(16) unsigned short wb_dynamic_shared[];")
    emit(f"unsigned short* As_s = wb_dynamic_shared; unsigned short* Bs_s = wb_dynamic_shared + {stages * size_a};")
    _head(r, CUDA)
    emit(f"int warp = tid >> 5; int lane = tid & 31; int wm = warp / {wn}; int wn = warp % {wn};")
    for mi in range(mi_n):
        for ni in range(ni_n):
            emit(f"float c{mi}_{ni}[4] = {{0.0f, 0.0f, 0.0f, 0.0f}};")
    to16 = _TO_16[dt]

    def fetch_slab(kb: str, stage: str) -> None:
        """Emit the copy of K slab kb (when there is one) into shared stage `stage`, as one cp.async group
        (an empty group past the last slab keeps the wait counts uniform)."""
        # the staging code reads the slab index as `kb`: an inner block names the slab being fetched so
        emit(f"if ({kb} < {t.kt}) {{ const int kb_load = {kb}; const int st = {stage};")
        r.indent += 1
        emit("{ const int kb = kb_load;")
        r.indent += 1
        emit(f"unsigned short* As = As_s + st*{size_a}; unsigned short* Bs = Bs_s + st*{size_b};")
        for vc, name, ld, is_a in ((vca, "As", lda, True), (vcb, "Bs", ldb, False)):
            if vc is None:
                t.stage(r, name, is_a, nthreads, lambda v, name=name, ld=ld: f"{name}[j*{ld}+kk] = {to16}({v});")
                continue
            emit(f"for (int l = 0; l < {vc.count // nthreads}; l++) {{")
            r.indent += 1
            emit(f"int e = tid + l*{nthreads}; " + vc.split())
            at = f"{'j' if vc.along_k else 'kk'}*{ld}+q*{vc.width}"
            ok = "&&".join(vc.conds) or "true"
            emit(f"bool ok = {ok};")
            emit(f"wb_cp16({name}+{at}, {vc.data} + (ok ? {vc.pos} : 0), ok ? 16 : 0);")
            r.indent -= 1
            emit("}")
        r.indent -= 1
        emit("}")
        r.indent -= 1
        emit("}")
        emit("wb_cp_commit();")

    # slab s lives in stage s % stages; stages - 1 slabs are in flight before the first multiply
    emit(f"for (int s = 0; s < {stages - 1}; s++) {{")
    r.indent += 1
    fetch_slab("s", "s")
    r.indent -= 1
    emit("}")
    emit(f"for (int kb = 0; kb < {t.kt}; kb++) {{")
    r.indent += 1
    # slab kb has landed once at most stages - 2 newer copy groups are pending; the barrier also tells every
    # warp that slab kb - 1's stage, refilled next, has been read by all
    emit(f"wb_cp_wait<{stages - 2}>(); __syncthreads();")
    fetch_slab(f"kb + {stages - 1}", f"(kb + {stages - 1}) % {stages}")
    emit(f"const int st = kb % {stages};")
    emit(f"const unsigned short* As = As_s + st*{size_a}; const unsigned short* Bs = Bs_s + st*{size_b};")
    emit(f"for (int ks = 0; ks < {bk}; ks += 16) {{")
    r.indent += 1
    for mi in range(mi_n):
        m0 = f"wm*{wtm}+{mi * 16}"
        if vca is None or vca.along_k:  # rows of A, K innermost: matrices (m 0-7 | 8-15) x (k 0-7 | 8-15)
            emit(f"unsigned a{mi}[4]; wb_ldsm4(a{mi}, As + ({m0}+(lane&15))*{lda} + ks + (lane>>4)*8);")
        else:  # K rows of A: the same four matrices, transposed on the way out
            emit(f"unsigned a{mi}[4]; wb_ldsm4t(a{mi}, As + (ks+(lane>>4)*8+(lane&7))*{lda} + {m0}+((lane>>3)&1)*8);")
    for ni in range(0, ni_n, 2):
        n0 = f"wn*{wtn}+{ni * 8}"
        if vcb is None or vcb.along_k:  # rows of B^T: (n tile ni | ni+1) x (k 0-7 | 8-15)
            emit(f"unsigned b{ni}[4]; wb_ldsm4(b{ni}, Bs + ({n0}+(lane>>4)*8+(lane&7))*{ldb} + ks + ((lane>>3)&1)*8);")
        else:
            emit(f"unsigned b{ni}[4]; wb_ldsm4t(b{ni}, Bs + (ks+((lane>>3)&1)*8+(lane&7))*{ldb} + {n0}+(lane>>4)*8);")
    for mi in range(mi_n):
        for ni in range(ni_n):
            emit(f"wb_mma(c{mi}_{ni}, a{mi}, b{ni - ni % 2} + {2 * (ni % 2)});")
    r.indent -= 1
    emit("}")
    r.indent -= 1
    emit("}")
    emit("int g = lane >> 2; int lq = lane & 3;")
    for mi in range(mi_n):
        for ni in range(ni_n):
            for q in range(4):
                m = t.gm * bm + Lin.var("wm", wm) * wtm + (mi * 16 + (8 if q >= 2 else 0)) + Lin.var("g", 8)
                n = t.gn * bn + Lin.var("wn", wn) * wtn + (ni * 8 + (q & 1)) + Lin.var("lq", 4) * 2
                t.epilogue(r, f"c{mi}_{ni}[{q}]", m, n)
    src, name = r.kernel_source()
    mma = (
        _MMA_HELPERS
        + "__device__ __forceinline__ void wb_mma(float* c, const unsigned* a, const unsigned* b) {\n"
        f'  asm volatile("{_MMA_ASM[dt]} {{%0,%1,%2,%3}}, {{%4,%5,%6,%7}}, {{%8,%9}}, {{%0,%1,%2,%3}};"\n'
        '    : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])\n'
        '    : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));\n}\n'
    )
    head = src.index('extern "C"')
    src = src[:head] + mma + src[head:]
    return Program(src, name, (t.nt * nthreads, t.mt, t.nbatch), (nthreads, 1, 1), opts,
                   shared_bytes=2 * stages * (size_a + size_b))


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
