"""3x3 stride-1 convolutions on CPU OpenCL devices by Winograd's minimal filtering F(2x2, 3x3).

The direct template (render_gemm.py) spends 9 multiply-adds per input channel on each output; F(2x2, 3x3)
(Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016) computes a 2x2 tile of
outputs from a 4x4 tile of inputs with 16 products per channel, 2.25x fewer, as 16 small GEMMs:

    U[g, c, co] = (G w[co, c] G^T)[g]            the weight, per call (4x3 matrix G)
    V[g, c, t]  = (B^T d[c, t] B)[g]             each 4x4 input tile d, by additions only
    M[g, t, co] = sum_c V[g, c, t] U[g, c, co]   16 GEMMs over the input channels
    y[co, t]    = A^T M[:, t, co] A              the 2x2 outputs, by additions only

Everything happens inside one work-group per band of TY tile rows of one image (2 x TY output rows): the
band's input rows are copied into local memory once with their padding (the direct template's wide-row
window), V and U are made for the four g of one column of the 4x4 tile at a time, each GEMM is a 4x2
register tile of float8s over the output channels, M stays in local memory, and the output transform
writes the band's outputs into a local tile that the usual epilogue (bias, activation) stores row by row.
Nothing of the 14-29 MB of V and M that a pipeline of separate kernels would move leaves the work-group
(docs/benchmarks.md, "conv2d: Winograd tried": that pipeline was slower than the direct kernel).

Rounding: F(2x2, 3x3) uses the constants 1, 1/2 and -1 only, and measured as accurate as the direct sum
(max error / max |out| 3e-7 to 6e-7 against float64). Non-finite inputs differ: an inf in the input
enters the tile transforms' differences, so outputs the direct sum makes +-inf can be NaN here (as with
any Winograd convolution, oneDNN's included).
"""

from __future__ import annotations

from dataclasses import dataclass

from .indexing import input_read, linear, unravel
from .kernel_ir import Kernel, KernelOpts, Program
from .lazy import Node
from .render_gemm import VEC, _emit_window, _wide_window, gemm_plan
from .render_opencl import ExprWriter
from .symbolic import Lin

# smallest convolution worth the transforms: channels that fill the 4x2 register tile's float8 columns and
# the reduce's unrolled steps, images with several tiles a row, and enough outputs to cover the extra
# kernel that stores the weight transposed
MIN_CHANNELS = 16
MIN_ROW = 8
MIN_PIXELS = 256
# F(2x2, 3x3)'s matrices (Lavin and Gray, points 0, 1, -1): U = G w G^T, V = B^T d B, y = A^T M A
G = ((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1))
BT = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))
AT = ((1, 1, 1, 0), (0, 1, -1, -1))


def _combo(row: tuple, terms: list) -> str:
    """C for the sum of row[i] * terms[i] over a transform row whose nonzero entries share one magnitude."""
    nz = [(c, t) for c, t in zip(row, terms, strict=True) if c]
    expr = "".join(("-" if c < 0 else "+" if i else "") + t for i, (c, t) in enumerate(nz))
    mag = abs(nz[0][0])
    return expr if mag == 1 else f"{mag}f*({expr})"


def winograd_fits(x_shape: tuple, w_shape: tuple, stride: tuple, dilation: tuple, groups: int, out_hw: tuple) -> bool:
    """Whether conv2d of NCHW x_shape by w_shape (Cout, Cin, KH, KW) has the shape the F(2x2, 3x3) template
    takes (conv2d then stores the weight transposed for it, as winograd_plan requires)."""
    cout, cin, kh, kw = w_shape
    return ((kh, kw) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1) and groups == 1
            and cout % (2 * VEC) == 0 and cin % 4 == 0 and cin >= MIN_CHANNELS and out_hw[1] >= MIN_ROW
            and out_hw[0] >= 2 and x_shape[0] * out_hw[0] * out_hw[1] >= MIN_PIXELS)


@dataclass
class WinogradPlan:
    """A 3x3 stride-1 conv kernel (N, Cout, OH, OW | Cin, 3, 3) in the form the template needs."""

    a: Node  # the conv's input factor (the window of x) in k's sum
    w: Node  # the weight stored (Cin * 9, Cout): row c*9 + ky*3 + kx, output channels contiguous
    w_offset: int
    shape: tuple  # (N, Cout, OH, OW, Cin)


def _band_index(shape: tuple) -> list:
    """The iteration-space index that reads input row orow + ky - padding of image wn, channel c, at output
    column jw and kernel column kx (the input rows of a band are read as output row orow, kernel row ky)."""
    n = shape[0]
    return [Lin.var("wn", n) if n > 1 else Lin(), Lin(), Lin.var("orow", shape[2]), Lin.var("jw", shape[3]),
            Lin.var("c", shape[4]), Lin.var("ky", 3), Lin.var("kx", 3)]


def winograd_plan(k: Kernel) -> WinogradPlan | None:
    """The plan for k, or None when k is not a float32 3x3 stride-1 dilation-1 conv of NCHW data with the
    weight in the transposed (Cin * 9, Cout) layout, channel counts the template tiles, and rows of at least
    MIN_ROW outputs."""
    shape = k.full_shape
    if k.reduce is None or len(shape) != 7 or tuple(k.reduce_axes) != (4, 5, 6) or shape[5:] != (3, 3):
        return None
    plan = gemm_plan(k)
    if plan is None or plan.n_axes != [1] or plan.k_axes != [4, 5, 6] or not {2, 3} <= set(plan.m_axes):
        return None
    n, cout, oh, ow, cin = shape[:5]
    if not winograd_fits((n, cin), (cout, cin, 3, 3), (1, 1), (1, 1), 1, (oh, ow)):
        return None
    x = _wide_window(k, plan.a, tuple(_band_index(shape)), (Lin(), 0, 1), ow, "kx", 3)
    if x is None:
        return None
    widx = (Lin(), Lin.var("co", cout), Lin(), Lin(), Lin.var("c", cin), Lin.var("ky", 3), Lin.var("kx", 3))
    read = input_read(k, plan.b, widx)
    if read is None or read[2] or read[0].dtype.name != "float32":
        return None
    pos = linear(read[1], read[0].shape)
    want = {"co": 1, "kx": cout, "ky": 3 * cout, "c": 9 * cout}
    terms = {a.key[1]: c for a, c in pos.terms.items() if a.key[0] == "v"}
    if terms != want or len(terms) != len(pos.terms):
        return None
    return WinogradPlan(plan.a, read[0], pos.const, (n, cout, oh, ow, cin))


def band_heights(wp: WinogradPlan, local_bytes: int) -> list[int]:
    """The tile rows per work-group (1 to 3) whose local arrays fit the device's local_bytes."""
    return [ty for ty in (1, 2, 3) if 4 * sum(_local_arrays(wp, ty).values()) <= local_bytes]


def default_winograd(wp: WinogradPlan, cores: int, local_bytes: int) -> tuple | None:
    """(TY,): tile rows per work-group. Two (four output rows) amortize the weight transform each
    work-group repeats; one where that leaves fewer than 4 work-groups per core or two do not fit in
    local memory; None where not even one does."""
    n, _, oh, _, _ = wp.shape
    fits = band_heights(wp, local_bytes)
    ty = 2 if n * -(-oh // 4) >= 4 * cores and 2 in fits else 1
    return (ty,) if ty in fits else None


def winograd_candidates(wp: WinogradPlan, local_bytes: int) -> list[KernelOpts]:
    """The tile-row counts that fit, which WB_SEARCH times beside the direct template's tiles."""
    return [KernelOpts(winograd=(ty,)) for ty in band_heights(wp, local_bytes)]


@dataclass(frozen=True)
class _Layout:
    """A band's sizes, in floats unless noted, for TY tile rows."""

    tx: int  # tiles a row (an odd last column is computed and not stored)
    txp: int  # the V transform's float8s of tiles cover this many
    xw: int  # an input row in Xb: every column those float8s read, zeros past the image
    xr: int  # input rows a band reads
    t: int  # tiles a band
    ts: int  # Vb's row stride: room past the band's tiles for the last float8 and the last register tile
    yw: int  # a row of the output tile Yb
    bands: int  # bands an image


def _layout(wp: WinogradPlan, ty: int) -> _Layout:
    _, _, oh, ow, _ = wp.shape
    tx = -(-ow // 2)
    txp = -(-tx // VEC) * VEC
    t = ty * tx
    return _Layout(tx, txp, 2 * txp + 2, 2 * ty + 2, t, t + txp - tx + (4 if t % 4 else 0), 2 * tx, -(-oh // (2 * ty)))


def _local_arrays(wp: WinogradPlan, ty: int) -> dict:
    """The work-group's __local arrays and their floats: input band, U and V for four g, M for all
    sixteen, the output tile."""
    _, cout, _, _, cin = wp.shape
    lay = _layout(wp, ty)
    return {"Xb": cin * lay.xr * lay.xw, "Ub": 4 * cin * cout, "Vb": 4 * cin * lay.ts, "Mb": 16 * lay.t * cout,
            "Yb": cout * 2 * ty * lay.yw}


def render_winograd(k: Kernel, wp: WinogradPlan, opts: KernelOpts) -> Program:
    """OpenCL C for k by F(2x2, 3x3), TY = opts.winograd[0] tile rows per work-group."""
    (ty,) = opts.winograd
    n, cout, oh, ow, cin = wp.shape
    lay = _layout(wp, ty)
    tx, txp, xw, xr, t, ts, yw, bands = (lay.tx, lay.txp, lay.xw, lay.xr, lay.t, lay.ts, lay.yw, lay.bands)
    r = ExprWriter(k, opts)
    emit = r.emit
    emit("typedef float float16u __attribute__((ext_vector_type(16), aligned(4)));")
    for name, size in _local_arrays(wp, ty).items():
        emit(f"__local float {name}[{size}];")
    emit(f"int wg = get_group_id(1); int wn = wg / {bands}; int tb = wg % {bands};")
    # the band's input rows, each once, with its padding as zeros (the direct template's wide-row copy)
    win = _wide_window(k, wp.a, tuple(_band_index(wp.shape)), (Lin(), 0, 1), ow, "kx", 3)
    emit(f"for (int c = 0; c < {cin}; c++) for (int xr = 0; xr < {xr}; xr++) {{")
    r.indent += 1
    # input row tb*2TY + xr - padding as output row orow, kernel row ky with both in range; rows past
    # output row OH + 1 feed only outputs that are never stored
    emit(f"int xrow = tb*{2 * ty}+xr; int orow = xrow < {oh} ? xrow : {oh - 1}; int ky = xrow-orow;")
    emit(f"__local float* xb = Xb+(c*{xr}+xr)*{xw};")
    emit(f"if (ky > 2) {{ for (int u = 0; u < {xw}; u++) xb[u] = 0.0f; continue; }}")
    _emit_window(r, win, "xb", Lin.var("u", xw), "u", xw)
    r.indent -= 1
    emit("}")
    wbase = f"data{r.buf_index[wp.w.id]}+{wp.w_offset}"
    for j in range(4):  # the 4x4 tile's column j: g = 4 i + j for i = 0..3
        # U[i][c][co] = sum_a G[i][a] s[a] with s[a] = sum_b G[j][b] w[a][b]
        emit(f"for (int c = 0; c < {cin}; c++) for (int cv = 0; cv < {cout}; cv += {VEC}) {{")
        r.indent += 1
        emit(f"const __global float* wp = {wbase}+c*{9 * cout}+cv;")
        for a in range(3):
            w = [f"(*(const __global float8u*)(wp+{(a * 3 + b) * cout}))" for b in range(3)]
            emit(f"float8 s{a} = {_combo(G[j], w)};")
        for i in range(4):
            emit(f"*(__local float8u*)(Ub+{i * cin * cout}+c*{cout}+cv) = {_combo(G[i], ['s0', 's1', 's2'])};")
        r.indent -= 1
        emit("}")
        # V[i][c][t] = sum_r B^T[i][r] q[r] with q[r] = sum_s B^T[j][s] d[r][s]; eight tiles' d[r][0..3]
        # are the even and odd lanes of two float16 loads of input row r, two columns apart
        emit(f"for (int c = 0; c < {cin}; c++) for (int tyl = 0; tyl < {ty}; tyl++) "
             f"for (int tv = 0; tv < {txp}; tv += {VEC}) {{")
        r.indent += 1
        emit(f"__local const float* xp = Xb+(c*{xr}+2*tyl)*{xw}+2*tv;")
        for rr in range(4):
            emit(f"float16 l{rr} = *(__local const float16u*)(xp+{rr * xw});")
            emit(f"float16 h{rr} = *(__local const float16u*)(xp+{rr * xw + 2});")
            emit(f"float8 q{rr} = {_combo(BT[j], [f'l{rr}.even', f'l{rr}.odd', f'h{rr}.even', f'h{rr}.odd'])};")
        emit(f"int o = c*{ts}+tyl*{tx}+tv;")
        for i in range(4):
            emit(f"*(__local float8u*)(Vb+{i * cin * ts}+o) = {_combo(BT[i], ['q0', 'q1', 'q2', 'q3'])};")
        r.indent -= 1
        emit("}")
        # M[g][t][co] = sum_c V[i][c][t] U[i][c][co]: 4 tiles x 16 output channels of accumulators
        emit(f"for (int i = 0; i < 4; i++) for (int nj = 0; nj < {cout}; nj += {2 * VEC}) "
             f"for (int mi = 0; mi < {t}; mi += 4) {{")
        r.indent += 1
        rows = min(4, t)
        for a in range(4):
            for v in range(2):
                emit(f"float8 c{a}_{v} = (float8)(0.0f);")
        emit(f"__local const float* bp = Ub+i*{cin * cout}+nj;")
        emit(f"__local const float* ap = Vb+i*{cin * ts}+mi;")
        emit(f"for (int kk = 0; kk < {cin}; kk += 4) {{")
        r.indent += 1
        for u in range(4):
            emit(f"float8 b{u}_0 = *(__local const float8u*)(bp+{u * cout});")
            emit(f"float8 b{u}_1 = *(__local const float8u*)(bp+{u * cout + VEC});")
            for a in range(4):
                emit(f"float a{u}_{a} = ap[{u * ts + a}];")
                emit(f"c{a}_0 += a{u}_{a}*b{u}_0; c{a}_1 += a{u}_{a}*b{u}_1;")
        emit(f"bp += {4 * cout}; ap += {4 * ts};")
        r.indent -= 1
        emit("}")
        emit(f"__local float* mp = Mb+((4*i+{j})*{t}+mi)*{cout}+nj;")
        for a in range(rows):
            for v in range(2):
                emit(f"if (mi+{a} < {t}) *(__local float8u*)(mp+{a * cout + v * VEC}) = c{a}_{v};" if t % 4
                     else f"*(__local float8u*)(mp+{a * cout + v * VEC}) = c{a}_{v};")
        r.indent -= 1
        emit("}")
    # y = A^T M A, A^T's rows (1,1,1,0), (0,1,-1,-1): into the band's output tile Yb[co][row][column]
    emit(f"for (int tt = 0; tt < {t}; tt++) for (int cv = 0; cv < {cout}; cv += {VEC}) {{")
    r.indent += 1
    for g in range(16):
        emit(f"float8 m{g} = *(__local const float8u*)(Mb+({g * t}+tt)*{cout}+cv);")
    for jj in range(4):  # (A^T M)[a][jj], then y[a][b] = sum_jj (A^T M)[a][jj] A^T[b][jj]
        for a, pre in enumerate("pn"):
            emit(f"float8 {pre}{jj} = {_combo(AT[a], [f'm{4 * i + jj}' for i in range(4)])};")
    for a, pre in enumerate("pn"):
        for b in range(2):
            emit(f"float8 y{a}{b} = {_combo(AT[b], [f'{pre}{jj}' for jj in range(4)])};")
    emit(f"__local float* yp = Yb+cv*{2 * ty * yw}+2*(tt/{tx})*{yw}+2*(tt%{tx});")
    for lane in range(VEC):
        o = lane * 2 * ty * yw
        emit(f"yp[{o}] = y00.s{lane}; yp[{o + 1}] = y01.s{lane}; "
             f"yp[{o + yw}] = y10.s{lane}; yp[{o + yw + 1}] = y11.s{lane};")
    r.indent -= 1
    emit("}")
    # the epilogue (the fused ops after the conv's sum), whole output rows as unit-stride runs
    if oh % (2 * ty):
        emit(f"int rend = {oh}-tb*{2 * ty} < {2 * ty} ? {oh}-tb*{2 * ty} : {2 * ty};")
    emit(f"for (int co = 0; co < {cout}; co++) for (int yr = 0; yr < {'rend' if oh % (2 * ty) else 2 * ty}; yr++) "
         f"for (int jw = 0; jw < {ow}; jw++) {{")
    r.indent += 1
    r.memo = {}
    r.acc_override = "acc"
    emit(f"float acc = Yb[(co*{2 * ty}+yr)*{yw}+jw];")
    oi = (Lin.var("wn", n) if n > 1 else Lin(), Lin.var("co", cout),
          Lin.var("tb", bands) * (2 * ty) + Lin.var("yr", 2 * ty), Lin.var("jw", ow), Lin(), Lin(), Lin())
    pos = linear(oi, k.reduce.shape)
    val = r.expr(k.out, unravel(pos, k.out.shape) if k.out.shape != k.reduce.shape else oi, frozenset())
    r.store(val, pos)
    r.indent -= 1
    emit("}")
    src, name = r.kernel_source()
    return Program(src, name, (1, n * bands, 1), (1, 1, 1), opts)

