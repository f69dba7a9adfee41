"""The GPU bars of issue 11 on a CUDA GPU, each against its peer in the same run:

- GEMM on tensor cores (fp16, bf16) and fp32 at 4096 and 8192: this
  project's kernel (device time of its one kernel) vs cuBLAS through PyTorch (or CuPy); bar >= 50%.
- One GPT-2-small block forward (batch 1, 128 tokens, fp32): this project on CUDA vs PyTorch eager (bar:
  within 2x) and tinygrad's CUDA backend where it is installed (bar: faster). End-to-end wall time per
  forward with the device synchronised, graph building and scheduling included, median of the runs.

    python -m bench.gpu --out results.json [--quick]

Every result is checked against the peer's output before it is timed; a column that cannot run prints
"<column>: not available (reason)".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import ml_dtypes
import numpy as np

from bench.compiler_worker import flops as workload_flops
from bench.compiler_worker import make_inputs, sizes, tensor_gpt2_block

GEMM_BAR = 0.50  # fraction of cuBLAS
GPT2_EAGER_BAR = 2.0  # at most this many times PyTorch eager's time


def log(msg: str) -> None:
    print(msg, flush=True)


def _torch():
    try:
        import torch

        if not torch.cuda.is_available():
            return None, "PyTorch sees no CUDA device"
        return torch, ""
    except ImportError as e:
        return None, f"PyTorch not installed ({e})"


def _torch_gemm_seconds(torch, a, b, reps: int) -> tuple[float, object]:
    out = a @ b
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        out = a @ b
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e) * 1e-3)
    return statistics.median(times), out


def _cupy_gemm_seconds(n: int, dtype: str, reps: int) -> float:
    import cupy as cp

    a = cp.random.standard_normal((n, n), dtype=cp.float32).astype(dtype)
    b = cp.random.standard_normal((n, n), dtype=cp.float32).astype(dtype)
    a @ b
    times = []
    for _ in range(reps):
        s, e = cp.cuda.Event(), cp.cuda.Event()
        s.record()
        a @ b
        e.record()
        e.synchronize()
        times.append(cp.cuda.get_elapsed_time(s, e) * 1e-3)
    return statistics.median(times)


def bench_gemm(n: int, dtype: str, reps: int) -> dict:
    """Ours vs cuBLAS for an n^3 GEMM in dtype."""
    from compiler import Tensor
    from compiler.dtypes import dtypes
    from workbench.measure import KernelRunner

    row = {"workload": f"gemm {n}^3", "dtype": dtype, "flops": 2.0 * n**3}
    npdt = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32}.get(dtype)
    if npdt is None or not hasattr(dtypes, dtype):
        has = "has a" if hasattr(dtypes, dtype) else "has no"
        row["ours"] = f"not available (the compiler {has} {dtype} dtype; numpy has no {dtype} input for it here)"
        return row
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((n, n)) * 0.1).astype(npdt)
    b = (rng.standard_normal((n, n)) * 0.1).astype(npdt)
    out = Tensor(a, device="CUDA") @ Tensor(b, device="CUDA")
    runner = KernelRunner(out, "CUDA")
    runner.run()
    ours_t = statistics.median(runner.run() for _ in range(reps))
    row["ours_s"], row["ours_tflops"] = ours_t, row["flops"] / ours_t / 1e12
    row["ours_program"] = runner.steps[0][0].opts.key()
    torch, why = _torch()
    if torch is not None:
        # torch takes no ml_dtypes array: bfloat16 goes over as float32 (exact) and is narrowed there
        ta, tb = (torch.from_numpy(x.astype(np.float32)).to(getattr(torch, dtype)).cuda() for x in (a, b))
        peer_t, ref = _torch_gemm_seconds(torch, ta, tb, reps)
        row["peer"] = f"cuBLAS via PyTorch {torch.__version__}"
        got = runner.steps[0][1][0].numpy().reshape(n, n).astype(np.float32)
        ref = ref.float().cpu().numpy()
        row["max_rel_err_vs_peer"] = float(np.abs(got - ref).max() / (np.abs(ref).max() + 1e-12))
    else:
        try:
            peer_t = _cupy_gemm_seconds(n, dtype, reps)
            row["peer"] = "cuBLAS via CuPy"
        except Exception as e:  # reported as not available
            row["peer"] = f"not available ({why}; CuPy: {e})"
            return row
    row["peer_s"], row["peer_tflops"] = peer_t, row["flops"] / peer_t / 1e12
    row["ratio"] = peer_t / ours_t
    row["bar"] = f">= {GEMM_BAR:.0%} of cuBLAS: {'PASS' if row['ratio'] >= GEMM_BAR else 'FAIL'}"
    return row


def bench_candidates(n: int, dtype: str, reps: int) -> list[dict]:
    """Device time of every tile the kernel search (WB_SEARCH) would try for an n^3 GEMM in dtype: what the
    search picks from, and whether the default tile is the right one."""
    from compiler import Tensor
    from compiler.backend import get_backend
    from compiler.kernel_ir import KernelOpts
    from compiler.optimizer import render_program
    from compiler.render_gemm_gpu import mma_candidates, tiled_candidates

    npdt = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32}[dtype]
    rng = np.random.default_rng(0)
    a, b = ((rng.standard_normal((n, n)) * 0.1).astype(npdt) for _ in range(2))
    (k,) = (Tensor(a, device="CUDA") @ Tensor(b, device="CUDA")).schedule()
    be = get_backend("CUDA")
    bufs = [be.alloc(k.out.size, k.out.dtype)] + [x.buffer for x in k.buffers[1:]]
    rows = []
    for tile in (tiled_candidates() if dtype == "float32" else mma_candidates()):
        opts = KernelOpts(gpu_gemm=tile) if dtype == "float32" else KernelOpts(mma_gemm=tile)
        prg = render_program(k, opts)
        be.run(prg, bufs, wait=True)
        t = statistics.median(be.run(prg, bufs, wait=True) for _ in range(reps))
        rows.append({"n": n, "dtype": dtype, "tile": list(tile), "s": t, "tflops": 2.0 * n**3 / t / 1e12})
    return rows


def _wall(fn, finish, reps: int) -> float:
    finish(fn())
    finish(fn())
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        finish(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_gpt2(reps: int, quick: bool) -> dict:
    """Ours vs PyTorch eager vs tinygrad on one GPT-2-small block forward (the CPU bench's adapters)."""
    from bench.compiler_worker import Ours

    p = sizes("gpt2_block", quick)
    arrays = make_inputs("gpt2_block", p)
    row = {"workload": f"gpt2 block b{p['batch']} t{p['tokens']} d{p['d_model']}", "flops": workload_flops("gpt2_block", p)}
    ours = Ours("CUDA")
    ins = [ours.to_device(a) for a in arrays]
    ours_out = tensor_gpt2_block(p, ours.api, *ins).numpy()
    row["ours_s"] = _wall(lambda: tensor_gpt2_block(p, ours.api, *ins), lambda o: o.realize().numpy(), reps)
    from compiler.jit import jit

    jitted = jit(lambda *args: tensor_gpt2_block(p, ours.api, *args))
    # the same schedule replay as tinygrad's TinyJit column: kernels launched again, no graph rebuilt
    row["ours_jit_s"] = _wall(lambda: jitted(*ins), lambda o: o.numpy(), max(reps, 3))
    row["ours_jit_max_abs_err"] = float(np.abs(jitted(*ins).numpy() - ours_out).max())
    from workbench.measure import KernelRunner

    # where the jitted time goes: each kernel's device time, slowest first
    runner = KernelRunner(tensor_gpt2_block(p, ours.api, *ins), "CUDA")
    runner.run()
    per = [statistics.median(runner.backend.run(prg, bufs, wait=True) for _ in range(5)) for prg, bufs in runner.steps]
    row["ours_kernels_device_s"] = sum(per)
    row["ours_kernels"] = sorted(([prg.name, prg.opts.key(), t] for (prg, _), t in zip(runner.steps, per, strict=True)),
                                 key=lambda r: -r[2])
    torch, why = _torch()
    if torch is not None:
        from bench.compiler_worker import Torch

        tapi = Torch().api  # enters inference mode, as the CPU bench does
        targs = [torch.from_numpy(a).cuda() for a in arrays]
        ref = tensor_gpt2_block(p, tapi, *targs).cpu().numpy()
        row["max_abs_err_vs_torch"] = float(np.abs(ours_out - ref).max())
        row["torch_eager_s"] = _wall(lambda: tensor_gpt2_block(p, tapi, *targs), lambda o: o.cpu(), reps)
        row["torch"] = f"PyTorch {torch.__version__} eager"
        row["ratio_vs_eager"] = row["ours_s"] / row["torch_eager_s"]
        row["bar_eager"] = (f"within {GPT2_EAGER_BAR:g}x of PyTorch eager: "
                            f"{'PASS' if row['ratio_vs_eager'] <= GPT2_EAGER_BAR else 'FAIL'}")
        row["ratio_jit_vs_eager"] = row["ours_jit_s"] / row["torch_eager_s"]
    else:
        row["torch"] = f"not available ({why})"
    try:
        os.environ.setdefault("DEV", "CUDA")
        from bench.compiler_worker import Tinygrad

        tg = Tinygrad("CUDA", jit=True)
        tins = [tg.to_device(a) for a in arrays]
        f = tg.fn("gpt2_block", p)
        row["tinygrad_s"] = _wall(lambda: f(*tins), lambda o: o.numpy(), reps)
        row["tinygrad"] = f"tinygrad {tg.version} CUDA, TinyJit"
        row["bar_tinygrad"] = f"faster than tinygrad: {'PASS' if row['ours_s'] < row['tinygrad_s'] else 'FAIL'}"
        row["bar_tinygrad_jit"] = ("ours jitted faster than tinygrad's TinyJit: "
                                   f"{'PASS' if row['ours_jit_s'] < row['tinygrad_s'] else 'FAIL'}")
    except Exception as e:  # reported as not available
        row["tinygrad"] = f"not available ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="write the results here as JSON")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--candidates", action="store_true", help="also time every GEMM tile the search tries")
    args = ap.parse_args(argv)
    from compiler.device import describe, unavailable_reason

    why = unavailable_reason("CUDA")
    if why:
        log(f"CUDA: not available ({why})")
        return 2
    results = {"device": describe("CUDA"), "gemm": [], "gpt2": None}
    log(f"device: {results['device']}")
    sizes_ = (1024,) if args.quick else (4096, 8192)
    for dtype in ("float16", "bfloat16", "float32"):
        for n in sizes_:
            try:
                row = bench_gemm(n, dtype, args.reps)
            except Exception as e:  # one failed row does not stop the others
                row = {"workload": f"gemm {n}^3", "dtype": dtype, "error": f"{type(e).__name__}: {e}"[:2000]}
            results["gemm"].append(row)
            log(json.dumps(row))
    if args.candidates:
        results["candidates"] = []
        for dtype in ("float16", "float32"):
            for n in sizes_:
                try:
                    rows = bench_candidates(n, dtype, args.reps)
                except Exception as e:  # reported, the rest goes on
                    rows = [{"n": n, "dtype": dtype, "error": f"{type(e).__name__}: {e}"[:1000]}]
                results["candidates"] += rows
                for row in rows:
                    log(json.dumps(row))
    try:
        results["gpt2"] = bench_gpt2(args.reps, args.quick)
    except Exception as e:
        results["gpt2"] = {"error": f"{type(e).__name__}: {e}"[:2000]}
    log(json.dumps(results["gpt2"]))
    if args.out:
        tmp = Path(args.out).with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
