"""Would Winograd F(4x4, 3x3) make the bench's 3x3 conv2d faster than the direct GEMM kernel? The probe behind
docs/benchmarks.md's "conv2d: Winograd tried" section.

    python -m bench.conv_winograd_probe                    # accuracy, then stage times, 8x64x56x56
    python -m bench.conv_winograd_probe --shape 8,128,28 --rounds 3
    POCL_MAX_PTHREAD_COUNT=1 python -m bench.conv_winograd_probe --only stages,raw

`accuracy`: F(2x2,3x3) and F(4x4,3x3) in float32 numpy against a float64 direct conv (max abs error over
max |ref|), beside the float32 direct conv's own. `stages`: the Winograd conv written with the Tensor API
(input transform, weight transform, 36 batched GEMMs, output transform, NCHW store), each stage realized on
its own and timed by process CPU, alternating with `conv2d` (the direct kernel). `raw`: hand-written
OpenCL input and output transforms (float8 over 8 channels) on the same sizes, to bound what a dedicated
transform template could cost. Matrices: Lavin and Gray, "Fast Algorithms for Convolutional Neural
Networks", CVPR 2016 (points 0, +-1, +-2 and infinity for F(4x4, 3x3)).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

F2 = (np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64),
      np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64),
      np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64))
F4 = (np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64),
      np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
                [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64),
      np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], np.float64))


def np_direct(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """3x3 conv, stride 1, padding 1, in x's dtype."""
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
    return np.einsum("nchwij,ocij->nohw", win, w, optimize=True)


def np_winograd(x: np.ndarray, w: np.ndarray, mats: tuple) -> np.ndarray:
    """The same conv by Winograd F(m x m, 3x3) in float32 (m = 2 or 4), partial tiles cropped."""
    bt, g, at = (m.astype(np.float32) for m in mats)
    m, a = at.shape
    n, c, h, wd = x.shape
    th, tw = -(-h // m), -(-wd // m)
    xp = np.zeros((n, c, th * m + 2, tw * m + 2), np.float32)
    xp[:, :, 1:h + 1, 1:wd + 1] = x
    d = np.lib.stride_tricks.sliding_window_view(xp, (a, a), axis=(2, 3))[:, :, ::m, ::m]
    v = np.einsum("ai,nctsij,bj->abntsc", bt, d, bt, optimize=True)
    u = np.einsum("ai,ocij,bj->abco", g, w, g, optimize=True)
    mm = np.einsum("abntsc,abco->abntso", v, u, optimize=True)
    y = np.einsum("pa,abntso,qb->notpsq", at, mm, at, optimize=True).reshape(n, -1, th * m, tw * m)
    return y[:, :, :h, :wd]


def accuracy(shapes: list) -> None:
    rng = np.random.default_rng(0)
    for n, c, hw in shapes:
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        w = (rng.standard_normal((c, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
        ref = np_direct(x.astype(np.float64), w.astype(np.float64))
        scale = np.abs(ref).max()
        err = {"direct": np.abs(np_direct(x, w) - ref).max() / scale}
        for name, mats in (("F(2,3)", F2), ("F(4,3)", F4)):
            err[name] = np.abs(np_winograd(x, w, mats) - ref).max() / scale
        print(f"{n}x{c}x{hw}x{hw}: max abs error / max |ref| vs float64: "
              + ", ".join(f"{k} {v:.1e}" for k, v in err.items()))


def stages(n: int, c: int, hw: int, rounds: int) -> None:
    """F(4x4,3x3) in Tensor ops, stage by stage (each realized alone), against conv2d; process CPU ms."""
    from compiler import Tensor

    bt, g, at = F4
    dev = "CL"
    c1 = Tensor(np.einsum("ai,bj->abij", bt, bt).reshape(36, 6, 6).astype(np.float32), device=dev).realize()
    cg = Tensor(np.einsum("ai,bj->abij", g, g).reshape(36, 3, 3).astype(np.float32), device=dev).realize()
    ca = Tensor(np.einsum("pa,qb->pqab", at, at).reshape(4, 4, 36).astype(np.float32), device=dev).realize()
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((n, c, hw, hw)).astype(np.float32), device=dev).realize()
    w = Tensor((rng.standard_normal((c, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32), device=dev).realize()
    th = -(-hw // 4)

    def winograd() -> dict:
        t, out = {}, {}

        def stage(name, f):
            t0 = time.process_time()
            out[name] = f().realize()
            t[name] = time.process_time() - t0

        # padded 6x6 windows at stride 4; V stored (36, N, TH, TW, Cin): channels innermost for the GEMMs' rows
        d = x.pad(((0, 0), (0, 0), (1, 4 * th + 1 - hw), (1, 4 * th + 1 - hw)))._pool((6, 6), (4, 4), (1, 1))
        d = d.permute(0, 2, 3, 1, 4, 5).reshape(1, n, th, th, c, 6, 6)
        stage("input transform", lambda: (d * c1.reshape(36, 1, 1, 1, 1, 6, 6)).sum((5, 6)))
        wt = w.permute(1, 0, 2, 3).reshape(1, c, c, 3, 3)
        stage("weight transform", lambda: (wt * cg.reshape(36, 1, 1, 3, 3)).sum((3, 4)))  # (36, Cin, Cout)
        v = out["input transform"].reshape(36, n, th, th, 1, c)
        u = out["weight transform"].permute(0, 2, 1).reshape(36, 1, 1, 1, c, c)
        stage("36 GEMMs", lambda: (v * u).sum(5))  # (36, N, TH, TW, Cout)
        mm = out["36 GEMMs"].permute(1, 2, 3, 4, 0).reshape(n, th, th, c, 1, 1, 36)
        stage("output transform", lambda: (mm * ca.reshape(1, 1, 1, 1, 4, 4, 36)).sum(6))
        y = out["output transform"].permute(0, 3, 1, 4, 2, 5).reshape(n, c, 4 * th, 4 * th)
        stage("NCHW store", lambda: y.shrink((None, None, (0, hw), (0, hw))) + 0)
        t["result"] = out["NCHW store"]
        return t

    direct = x.conv2d(w, padding=1).realize()
    err = np.abs(winograd()["result"].numpy() - direct.numpy()).max() / np.abs(direct.numpy()).max()
    print(f"{n}x{c}x{hw}x{hw}: Winograd (Tensor ops) vs conv2d on CL: max abs error / max |out| {err:.1e}")
    for r in range(rounds):
        t0 = time.process_time()
        for _ in range(3):
            x.conv2d(w, padding=1).realize()
        conv = (time.process_time() - t0) / 3
        runs = [winograd() for _ in range(3)]
        parts = {k: sorted(run[k] for run in runs)[1] for k in runs[0] if k != "result"}
        print(f"  round {r + 1}: conv2d {conv * 1e3:.1f} ms | Winograd {sum(parts.values()) * 1e3:.1f} ms = "
              + " + ".join(f"{k} {v * 1e3:.1f}" for k, v in parts.items()))


def _raw_source(n: int, c: int, hw: int) -> str:
    """OpenCL C of the two transforms for 3x3, padding 1: float8 over 8 channels, V as (36, N, TH, TW, C)."""
    th = -(-hw // 4)

    def bt(d, o):
        return [f"{o}0 = 4.0f*{d[0]} - 5.0f*{d[2]} + {d[4]};", f"{o}1 = -4.0f*({d[1]} + {d[2]}) + {d[3]} + {d[4]};",
                f"{o}2 = 4.0f*({d[1]} - {d[2]}) - {d[3]} + {d[4]};", f"{o}3 = -2.0f*({d[1]} - {d[3]}) - {d[2]} + {d[4]};",
                f"{o}4 = 2.0f*({d[1]} - {d[3]}) - {d[2]} + {d[4]};", f"{o}5 = 4.0f*{d[1]} - 5.0f*{d[3]} + {d[5]};"]

    def at(m, o):
        return [f"{o}0 = {m[0]} + {m[1]} + {m[2]} + {m[3]} + {m[4]};", f"{o}1 = {m[1]} - {m[2]} + 2.0f*({m[3]} - {m[4]});",
                f"{o}2 = {m[1]} + {m[2]} + 4.0f*({m[3]} + {m[4]});",
                f"{o}3 = {m[1]} - {m[2]} + 8.0f*({m[3]} - {m[4]}) + {m[5]};"]

    head = (f"int cb = get_global_id(0), tx = get_global_id(1), nty = get_global_id(2);"
            f" int ty = nty % {th}, b = nty / {th};")
    tile = f"(({{g}}*{n} + b)*{th * th} + ty*{th} + tx)*{c} + cb*8"
    s = ["__kernel void t_in(__global float* restrict V, const __global float* restrict x) {", head,
         f"const __global float* xc = x + (b*{c} + cb*8)*{hw * hw};"]
    for i in range(6):
        for j in range(6):
            s.append(f"float8 d{i}{j}; {{ int r = ty*4+{i}-1, q = tx*4+{j}-1;"
                     f" bool ok = r >= 0 && r < {hw} && q >= 0 && q < {hw}; int o = ok ? r*{hw}+q : 0;"
                     f" d{i}{j} = ok ? (float8)(" + ",".join(f"xc[o+{k * hw * hw}]" for k in range(8))
                     + ") : (float8)(0.0f); }")
    for i in range(6):
        s += [f"float8 e{i}0, e{i}1, e{i}2, e{i}3, e{i}4, e{i}5;"] + bt([f"d{i}{j}" for j in range(6)], f"e{i}")
    for b in range(6):
        s += [f"float8 f{b}0, f{b}1, f{b}2, f{b}3, f{b}4, f{b}5;"] + bt([f"e{i}{b}" for i in range(6)], f"f{b}")
        s += [f"vstore8(f{b}{a}, 0, V + {tile.format(g=a * 6 + b)});" for a in range(6)]
    s += ["}", "__kernel void t_out(__global float* restrict y, const __global float* restrict M) {", head]
    s += [f"float8 m{g // 6}{g % 6} = vload8(0, M + {tile.format(g=g)});" for g in range(36)]
    for a in range(6):
        s += [f"float8 e{a}0, e{a}1, e{a}2, e{a}3;"] + at([f"m{a}{b}" for b in range(6)], f"e{a}")
    s.append(f"__global float* yc = y + (b*{c} + cb*8)*{hw * hw};")
    for q in range(4):
        s += [f"float8 f{q}0, f{q}1, f{q}2, f{q}3;"] + at([f"e{a}{q}" for a in range(6)], f"f{q}")
    for p in range(4):
        for q in range(4):
            s.append(f"{{ int r = ty*4+{p}, o = tx*4+{q}; if (r < {hw} && o < {hw}) {{ o += r*{hw};"
                     + " ".join(f"yc[o+{k * hw * hw}] = f{q}{p}.s{k};" for k in range(8)) + " } }")
    return "\n".join(s + ["}"])


def raw(n: int, c: int, hw: int, rounds: int) -> None:
    """Time the hand-written transforms (pyopencl, the first OpenCL device), checked against numpy."""
    import pyopencl as cl

    th = -(-hw // 4)
    ctx = cl.create_some_context(interactive=False)
    q = cl.CommandQueue(ctx)
    prg = cl.Program(ctx, _raw_source(n, c, hw)).build()
    k_in, k_out = cl.Kernel(prg, "t_in"), cl.Kernel(prg, "t_out")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    mm = rng.standard_normal((36, n * th * th, c)).astype(np.float32)
    mf = cl.mem_flags
    xb = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=x)
    mb = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=mm)
    vb, yb = cl.Buffer(ctx, mf.READ_WRITE, mm.nbytes), cl.Buffer(ctx, mf.READ_WRITE, x.nbytes)
    gs = (c // 8, th, n * th)

    def run(k, *args) -> float:
        """Process CPU seconds of one launch (PoCL's workers are threads of this process)."""
        k.set_args(*args)
        t0 = time.process_time()
        cl.enqueue_nd_range_kernel(q, k, gs, None)
        q.finish()
        return time.process_time() - t0

    bt, _, at = F4
    run(k_in, vb, xb)
    v = np.empty((6, 6, n, th, th, c), np.float32)
    cl.enqueue_copy(q, v, vb)
    xp = np.zeros((n, c, 4 * th + 2, 4 * th + 2))
    xp[:, :, 1:hw + 1, 1:hw + 1] = x
    d = np.lib.stride_tricks.sliding_window_view(xp, (6, 6), axis=(2, 3))[:, :, ::4, ::4]
    ref = np.einsum("ai,ncstij,bj->abnstc", bt, d, bt, optimize=True)
    run(k_out, yb, mb)
    y = np.empty_like(x)
    cl.enqueue_copy(q, y, yb)
    yref = np.einsum("pa,abnstc,qb->ncsptq", at, mm.reshape(6, 6, n, th, th, c).astype(np.float64), at,
                     optimize=True).reshape(n, c, 4 * th, 4 * th)[:, :, :hw, :hw]
    print(f"raw transforms {n}x{c}x{hw}x{hw}: errors {np.abs(v - ref).max() / np.abs(ref).max():.1e} (input),"
          f" {np.abs(y - yref).max() / np.abs(yref).max():.1e} (output)")
    for r in range(rounds):
        ti = sorted(run(k_in, vb, xb) for _ in range(9))[4]
        to = sorted(run(k_out, yb, mb) for _ in range(9))[4]
        print(f"  round {r + 1}: input transform {ti * 1e3:.2f} ms, output transform {to * 1e3:.2f} ms (process CPU, median of 9)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", default="8,64,56", help="batch,channels,height=width (default 8,64,56)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", default="accuracy,stages,raw", help="comma list of accuracy, stages, raw")
    a = ap.parse_args()
    n, c, hw = (int(v) for v in a.shape.split(","))
    parts = a.only.split(",")
    if "accuracy" in parts:
        accuracy([(2, 64, 56), (1, 128, 28), (1, 256, 14), (n, c, hw)])
    if "stages" in parts:
        stages(n, c, hw, a.rounds)
    if "raw" in parts:
        if c % 8:
            raise SystemExit("conv_winograd_probe: --shape channels must be a multiple of 8 for the raw transforms")
        raw(n, c, hw, a.rounds)


if __name__ == "__main__":
    main()
