"""conv2d with the output PIXELS as the vector axis: a raw OpenCL prototype on PoCL, timed at one thread.

Each work-item computes OT output channels x a run of float8 pixel vectors of one NCHW output row, fed by
broadcast weights; the input row is read at fixed offsets (kx - 1 + 8p), the two edge vectors that cross the
row's padding are formed by a lane shift, and the output rows are stored as float8 (no Cs transpose).

    python -m bench.conv_pixvec_probe                       # the main variants, 3x3 pad 1, 8x64x56x56 -> 64
    python -m bench.conv_pixvec_probe --variants 4:3,3,1:0 2:7 --shape 32,64,24,64

A variant is OT:SEGMENTS[:MODE]: OT output channels per work-item, the float8 vectors of a row split into
segments (4:3,3,1 = 4 channels x 3 vectors, 3 vectors, then 1 for a 56-pixel row). MODE 1 (default): the
kernel-row loop outside the channel loop (its padding test there); 0: branch-free, all 9 taps inside the
channel loop, a padding row read against a zero weight buffer; R > 1: R output rows per work-item sharing
each input row; -R: branch-free over R rows with every row's short last segment merged into one.
Run it alternated with `python -m bench.conv_thread_ab` (HEAD and PyTorch) for the A/B; docs/benchmarks.md
("conv2d with the pixels as the vector axis") has the figures. Each variant is checked against a float64
numpy conv before it is timed. Rows must be a multiple of 8 pixels (the probe's limit).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def _row_vector(xr: str, off: int, w: int) -> str:
    """The float8 of input row `xr` starting at pixel `off` (kx - 1 + 8p): a plain load inside the row, and
    the first or last 8 pixels shifted one lane, with a zero for the padding pixel, at the row's edges."""
    if off < 0:
        return f"__builtin_shufflevector(*(const __global float8u*)({xr}), (float8)(0.0f), 8, 0, 1, 2, 3, 4, 5, 6)"
    if off + 8 > w:
        return (f"__builtin_shufflevector(*(const __global float8u*)({xr} + {w - 8}), (float8)(0.0f), "
                "1, 2, 3, 4, 5, 6, 7, 8)")
    return f"*(const __global float8u*)({xr} + {off})"


def _weight_fmas(lines: list, pad: str, weights: list[str], np_: int, v: str, acc: int = 0) -> None:
    """Each output channel o's weight (weights[o], a C expression) broadcast once and multiplied into its
    NP float8 accumulators a{acc}_{o}_{p} with the input vectors {v}_{p}."""
    for o, weight in enumerate(weights):
        lines.append(f"{pad}{{ const float wv = {weight};")
        for p in range(np_):
            lines.append(f"{pad}a{acc}_{o}_{p} += wv * {v}_{p};")
        lines.append(f"{pad}}}")


def kernel_source(    c: int, h: int, w: int, ot: int, segs: list[int], rh: int = 1, branch_free: bool = False, wblock: bool = False
) -> str:
    """OpenCL C for one variant: OT output channels x RH output rows x the float8 pixel vectors of one row
    segment; each input vector loaded feeds every (row, channel) accumulator it belongs to."""
    assert w % 8 == 0 and h % rh == 0, "the probe handles rows of a multiple of 8 pixels and RH | H"
    starts = [sum(segs[:i]) for i in range(len(segs))]
    lines = [
        "typedef float float8u __attribute__((ext_vector_type(8), aligned(4)));",
        "__kernel void conv(__global const float* restrict x, __global const float* restrict wt,",
        "                   __global float* restrict y, __global const float* restrict zw) {",
        f"  const int g0 = get_global_id(OBDIM ? 0 : 1); const int oy0 = (g0 / {len(segs)}) * {rh};",
        f"  const int sg = g0 % {len(segs)};",
        "  const int ob = get_global_id(OBDIM ? 1 : 0); const int n = get_global_id(2);",
    ]
    for si, (p0, np_) in enumerate(zip(starts, segs, strict=True)):
        lines.append(f"  if (sg == {si}) {{")
        for j in range(rh):
            for o in range(ot):
                for p in range(np_):
                    lines.append(f"    float8 a{j}_{o}_{p} = (float8)(0.0f);")
        lines.append(f"    const __global float* xn = x + n * {c * h * w};")
        lines.append(f"    const __global float* wo = wt + ob * {ot * c * 9};")
        if branch_free:
            # every kernel row inside the channel loop with no branch: a row in the padding reads a clamped
            # row against a zero weight buffer (zw), wasting only the FMAs of the two edge rows
            lines.append(f"    const __global float* xr0 = xn + max(oy0 - 1, 0) * {w};")
            lines.append(f"    const __global float* xr1 = xn + oy0 * {w};")
            lines.append(f"    const __global float* xr2 = xn + min(oy0 + 1, {h - 1}) * {w};")
            lines.append("    const __global float* wk0 = oy0 > 0 ? wo : zw;")
            # wblock: the weight stored [channel block][ci][ky][kx][o], one contiguous run per work-item
            ws = (3 * ot, 9 * ot, 1, ot) if wblock else (3, 9, c * 9, 1)  # strides of ky, ci, o, kx
            lines.append(f"    const __global float* wk1 = wo + {ws[0]};")
            lines.append(f"    const __global float* wk2 = oy0 < {h - 1} ? wo + {2 * ws[0]} : zw;")
            lines.append(f"    for (int ci = 0; ci < {c}; ci++) {{")
            lines.append(f"      const int xo = ci * {h * w}; const int wof = ci * {ws[1]};")
            for ky in range(3):
                for kx in range(3):
                    for p in range(np_):
                        v = _row_vector(f"xr{ky} + xo", 8 * (p0 + p) + kx - 1, w)
                        lines.append(f"      const float8 v{ky}{kx}_{p} = {v};")
                    _weight_fmas(lines, "      ", [f"wk{ky}[wof + {o * ws[2] + kx * ws[3]}]" for o in range(ot)],
                                 np_, f"v{ky}{kx}")
            lines.append("    }")
        elif rh == 1:
            # the row test outside the channel loop: a branch inside it makes the compiler spill every
            # accumulator at the branch
            lines.append("    for (int ky = 0; ky < 3; ky++) {")
            lines.append(f"      const int iy = oy0 + ky - 1; if (iy < 0 || iy >= {h}) continue;")
            lines.append(f"      const __global float* xr = xn + iy * {w}; const __global float* wk = wo + ky * 3;")
            lines.append(f"      for (int ci = 0; ci < {c}; ci++, xr += {h * w}, wk += 9) {{")
            for kx in range(3):
                for p in range(np_):
                    v = _row_vector("xr", 8 * (p0 + p) + kx - 1, w)
                    lines.append(f"        const float8 v{kx}_{p} = {v};")
                _weight_fmas(lines, "        ", [f"wk[{o * c * 9 + kx}]" for o in range(ot)], np_, f"v{kx}")
            lines.append("      }")
            lines.append("    }")
        else:
            lines.append(f"    for (int ci = 0; ci < {c}; ci++) {{")
            lines.append(f"      const __global float* xc = xn + ci * {h * w};")
            lines.append("      const __global float* wc = wo + ci * 9;")
            for r in range(rh + 2):
                lines.append(f"      {{ const int iy = oy0 + {r - 1};")
                cond = "iy >= 0" if r == 0 else f"iy < {h}" if r >= rh else "1"
                lines.append(f"        if ({cond}) {{ const __global float* xr = xc + iy * {w};")
                for kx in range(3):
                    for p in range(np_):
                        v = _row_vector("xr", 8 * (p0 + p) + kx - 1, w)
                        lines.append(f"          const float8 v{kx}_{p} = {v};")
                    for j in range(rh):
                        ky = r - j
                        if not 0 <= ky <= 2:
                            continue
                        _weight_fmas(lines, "          ", [f"wc[{o * c * 9 + ky * 3 + kx}]" for o in range(ot)],
                                     np_, f"v{kx}", j)
                lines.append("        }")
                lines.append("      }")
            lines.append("    }")
        for j in range(rh):
            for o in range(ot):
                base = f"((n * COUT + ob * {ot} + {o}) * {h} + oy0 + {j}) * {w}"
                for p in range(np_):
                    lines.append(f"    *(__global float8u*)(y + {base} + {8 * (p0 + p)}) = a{j}_{o}_{p};")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines)


def kernel_source_pairs(c: int, h: int, w: int, ot: int, segs: list[int], rows: int = 2) -> str:
    """Branch-free variant over groups of `rows` output rows: each row's segments, except that the last
    (short) segment of every row in the group is merged into one segment reading several rows, so no
    work-item runs a tile narrower than the others."""
    assert w % 8 == 0 and h % rows == 0
    starts = [sum(segs[:i]) for i in range(len(segs))]
    tiles = []
    for dr in range(rows):
        tiles += [[(dr, p0 + p) for p in range(np_)] for p0, np_ in zip(starts[:-1], segs[:-1], strict=True)]
    tiles.append([(dr, starts[-1] + p) for dr in range(rows) for p in range(segs[-1])])
    lines = [
        "typedef float float8u __attribute__((ext_vector_type(8), aligned(4)));",
        "__kernel void conv(__global const float* restrict x, __global const float* restrict wt,",
        "                   __global float* restrict y, __global const float* restrict zw) {",
        f"  const int g0 = get_global_id(OBDIM ? 0 : 1); const int oy0 = (g0 / {len(tiles)}) * {rows};",
        f"  const int sg = g0 % {len(tiles)};",
        "  const int ob = get_global_id(OBDIM ? 1 : 0); const int n = get_global_id(2);",
        f"  const __global float* xn = x + n * {c * h * w};",
        f"  const __global float* wo = wt + ob * {ot * c * 9};",
    ]
    for si, tile in enumerate(tiles):
        lines.append(f"  if (sg == {si}) {{")
        drs = sorted({dr for dr, _ in tile})
        for i in range(len(tile)):
            for o in range(ot):
                lines.append(f"    float8 a{o}_{i} = (float8)(0.0f);")
        for dr in drs:
            for ky in range(3):
                iy = f"oy0 + {dr + ky - 1}"
                lines.append(f"    const __global float* xr{dr}{ky} = xn + clamp({iy}, 0, {h - 1}) * {w};")
                lines.append(f"    const __global float* wk{dr}{ky} = ({iy} >= 0 && {iy} < {h}) ? wo + {ky * 3} : zw;")
        lines.append(f"    for (int ci = 0; ci < {c}; ci++) {{")
        lines.append(f"      const int xo = ci * {h * w}; const int wof = ci * 9;")
        for ky in range(3):
            for kx in range(3):
                for i, (dr, p) in enumerate(tile):
                    v = _row_vector(f"xr{dr}{ky} + xo", 8 * p + kx - 1, w)
                    lines.append(f"      const float8 v{ky}{kx}_{i} = {v};")
                for o in range(ot):
                    for dr in drs:
                        lines.append(f"      {{ const float wv = wk{dr}{ky}[wof + {o * c * 9 + kx}];")
                        for i, (dr2, _) in enumerate(tile):
                            if dr2 == dr:
                                lines.append(f"      a{o}_{i} += wv * v{ky}{kx}_{i};")
                        lines.append("      }")
        lines.append("    }")
        for o in range(ot):
            for i, (dr, p) in enumerate(tile):
                base = f"((n * COUT + ob * {ot} + {o}) * {h} + oy0 + {dr}) * {w}"
                lines.append(f"    *(__global float8u*)(y + {base} + {8 * p}) = a{o}_{i};")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines), len(tiles)


def conv_ref(x: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """3x3 pad-1 stride-1 conv in float64 numpy (the oracle)."""
    n, c, h, w = x.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, wt.shape[0], h, w))
    for ky in range(3):
        for kx in range(3):
            out += np.einsum("nchw,oc->nohw", xp[:, :, ky : ky + h, kx : kx + w], wt[:, :, ky, kx].astype(np.float64))
    return out


def parse_variant(var: str, shape: tuple, wblock: bool = False) -> tuple[int, list[int], int]:
    """(OT, segments, MODE) of an OT:SEGMENTS[:MODE] variant, or ValueError naming what does not fit shape."""
    n, c, hw, cout = shape
    try:
        ot_s, segs_s, *mode_s = var.split(":")
        ot, segs, mode = int(ot_s), [int(v) for v in segs_s.split(",")], int(mode_s[0]) if mode_s else 1
        if len(mode_s) > 1:
            raise ValueError
    except ValueError:
        raise ValueError(f"variant {var!r}: write OT:SEGMENTS[:MODE], e.g. 4:3,3,1:0") from None
    if hw % 8 or sum(segs) * 8 != hw or min(segs) < 1:
        raise ValueError(f"variant {var!r}: the segments must cover a {hw}-pixel row in float8s ({hw / 8:g} vectors)")
    if ot < 1 or cout % ot:
        raise ValueError(f"variant {var!r}: OT={ot} must divide the {cout} output channels")
    if mode and hw % abs(mode):
        raise ValueError(f"variant {var!r}: MODE {mode} needs the {hw} rows to be a multiple of {abs(mode)}")
    if wblock and mode != 0:
        raise ValueError(f"variant {var!r}: --wblock is for MODE 0 variants only")
    return ot, segs, mode


def main(argv: list[str] | None = None) -> int:
    """Check and time each variant (process CPU per call); print one line per variant."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--variants",
        nargs="+",
        default=["4:3,3,1:0", "4:3,3,1", "4:2,2,2,1", "8:1,1,1,1,1,1,1:0", "2:7"],
        help="OT:SEGMENTS[:MODE] (module docstring), e.g. 2:7 = 2 channels x a 56-pixel row of 7 float8s",
    )
    ap.add_argument("--shape", default="8,64,56,64")
    ap.add_argument("--calls", type=int, default=12)
    ap.add_argument("--local", default="", help="work-group size, e.g. 16 or 16,7,1 (default: PoCL's choice)")
    ap.add_argument("--wblock", action="store_true", help="mode 0: weights stored [block][ci][ky][kx][o]")
    ap.add_argument("--ob-dim", type=int, default=0, help="1: channel blocks on dim 1 (rows fastest)")
    args = ap.parse_args(argv)
    try:
        shape = tuple(int(v) for v in args.shape.split(","))
        if len(shape) != 4 or min(shape) < 1:
            raise ValueError
    except ValueError:
        print(f"--shape {args.shape!r}: give N,C,H=W,Cout, e.g. 8,64,56,64", file=sys.stderr)
        return 2
    try:
        variants = [(var, *parse_variant(var, shape, args.wblock)) for var in args.variants]
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    import pyopencl as cl

    n, c, hw, cout = shape
    ctx = cl.Context(cl.get_platforms()[0].get_devices())
    q = cl.CommandQueue(ctx)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    wt = rng.standard_normal((cout, c, 3, 3)).astype(np.float32)
    ref = conv_ref(x, wt)
    mf = cl.mem_flags
    xb = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=x)
    wb = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=wt)
    yb = cl.Buffer(ctx, mf.WRITE_ONLY, size=4 * n * cout * hw * hw)
    zb = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=np.zeros(cout * c * 9, np.float32))
    for var, ot, segs, rh in variants:
        if rh < 0:  # -R: groups of R rows with the short segments merged
            src, ntiles = kernel_source_pairs(c, hw, hw, ot, segs, -rh)
            gdim = hw // -rh * ntiles
        else:
            src, gdim = (
                kernel_source(c, hw, hw, ot, segs, max(rh, 1), rh == 0, args.wblock),
                hw // max(rh, 1) * len(segs),
            )
        prg = cl.Program(ctx, src).build(options=[f"-D COUT={cout}", f"-D OBDIM={args.ob_dim}"])
        gsz = (gdim, cout // ot, n) if args.ob_dim else (cout // ot, gdim, n)
        lsz = tuple(int(v) for v in (args.local.split(",") + ["1", "1"])[:3]) if args.local else None
        if args.wblock:  # the layout a weight-transpose kernel would store, made here on the host
            blocked = wt.reshape(cout // ot, ot, c, 9).transpose(0, 2, 3, 1)
            wbuf = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=np.ascontiguousarray(blocked))
        else:
            wbuf = wb

        def run(k=prg.conv, gsz=gsz, lsz=lsz, wbuf=wbuf) -> None:
            k(q, gsz, lsz, xb, wbuf, yb, zb)
            q.finish()

        run()
        y = np.empty((n, cout, hw, hw), np.float32)
        cl.enqueue_copy(q, y, yb)
        err = float(np.abs(y - ref).max() / np.abs(ref).max())
        for _ in range(2):
            run()
        wall, cpu = [], []
        for _ in range(args.calls):
            t0, c0 = time.perf_counter(), time.process_time()
            run()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        gf = 2 * n * cout * hw * hw * c * 9 / 1e9
        print(
            f"load {os.getloadavg()[0]:.2f}  {var:>10}: err {err:.1e}  wall min {min(wall) * 1e3:.1f} "
            f"med {np.median(wall) * 1e3:.1f}  cpu min {min(cpu) * 1e3:.1f} med {np.median(cpu) * 1e3:.1f} ms"
            f"  ({gf / min(wall):.0f} GFLOP/s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    # one PoCL thread unless told otherwise (set before PoCL starts; a test importing main leaves it alone)
    os.environ.setdefault("POCL_MAX_PTHREAD_COUNT", "1")
    os.environ.setdefault("POCL_CPU_MAX_CU_COUNT", "1")
    sys.exit(main())
