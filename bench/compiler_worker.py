"""One column of bench/compiler_bench.py: runs the workloads on ONE framework and prints a JSON report.

Run by the driver in a fresh subprocess per column, so frameworks never share a process:

    python bench/compiler_worker.py --column numpy|torch|tinygrad|ours [--device CL] [--quick] \
        [--only w1,w2] [--runs 5] [--warmup 2] [--min-time 1.0] [--first-call WORKLOAD]

It imports only numpy and the framework it measures (the tinygrad and torch columns may run in their
own virtual environments), so it must stay a standalone script: no imports from the repository besides
`compiler` in the `ours` column.

Every workload is written once per framework below; the two tensor frameworks share one spelling
where their APIs agree, with the few differences in small adapter functions (`_ours_*`, `_tg_*`).
Inputs come from numpy's seeded generator, so every column sees identical inputs. A tensor column's
output is checked against the numpy implementation (allclose) once every workload is timed (numpy's BLAS
threads spin for a while after a call and would slow the timings), and a wrong result voids its times.

The last line on stdout is the JSON report; progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import traceback

import numpy as np

SEED = 1234
WORKLOADS = ("matmul_512", "matmul_1024", "matmul_2048", "gemv_4096", "elementwise", "sum", "softmax",
             "conv2d", "attention", "gpt2_block")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# Workload sizes, inputs and FLOP counts (one MAC = 2 FLOP; elementwise: one FLOP per op per element)

def sizes(name: str, quick: bool) -> dict:
    if name.startswith("matmul_") or name.startswith("gemv_"):
        n = int(name.split("_")[1])
        return {"n": n // 4 if quick else n}
    if name in ("elementwise", "sum"):
        return {"n": (1 << 20) if quick else (1 << 24)}
    if name == "softmax":
        return {"rows": 512 if quick else 4096, "cols": 512 if quick else 4096}
    if name == "conv2d":
        return ({"batch": 1, "cin": 16, "cout": 16, "hw": 28} if quick
                else {"batch": 8, "cin": 64, "cout": 64, "hw": 56})
    if name == "attention":  # GPT-2 small's causal self-attention alone (q, k, v given per head)
        return ({"batch": 1, "heads": 4, "tokens": 32, "head_dim": 32} if quick
                else {"batch": 1, "heads": 12, "tokens": 128, "head_dim": 64})
    if name == "gpt2_block":
        return ({"batch": 1, "tokens": 32, "d_model": 256, "heads": 4, "d_mlp": 1024} if quick
                else {"batch": 1, "tokens": 128, "d_model": 768, "heads": 12, "d_mlp": 3072})
    raise KeyError(name)


def flops(name: str, p: dict) -> float:
    if name.startswith("matmul_"):
        return 2.0 * p["n"] ** 3
    if name.startswith("gemv_"):  # x @ W, W stored (in, out)
        return 2.0 * p["n"] ** 2
    if name == "elementwise":  # a*b, +c, relu, exp2
        return 4.0 * p["n"]
    if name == "sum":  # one add per element
        return 1.0 * p["n"]
    if name == "softmax":  # row max, subtract, exp, row sum, divide
        return 5.0 * p["rows"] * p["cols"]
    if name == "conv2d":  # 3x3, stride 1, padding 1: output H = W = input
        return 2.0 * p["batch"] * p["cout"] * p["hw"] * p["hw"] * p["cin"] * 9
    if name == "attention":  # QK^T and AV in full, as the unfused reference computes them (causal: half used)
        return 4.0 * p["batch"] * p["heads"] * p["tokens"] ** 2 * p["head_dim"]
    if name == "gpt2_block":  # the four projections, the MLP, and attention's two batched matmuls
        b, t, d, m = p["batch"], p["tokens"], p["d_model"], p["d_mlp"]
        proj = 2.0 * b * t * d * (3 * d + d + 2 * m)
        attention = 2 * 2.0 * b * t * t * d  # QK^T and AV, summed over heads (heads * head_dim = d)
        return proj + attention
    raise KeyError(name)


def make_inputs(name: str, p: dict) -> list[np.ndarray]:
    """The workload's inputs as float32 arrays, the same in every process (seeded)."""
    rng = np.random.default_rng(SEED)
    f32 = lambda *shape, scale=1.0: (rng.standard_normal(shape) * scale).astype(np.float32)
    if name.startswith("matmul_"):
        return [f32(p["n"], p["n"]), f32(p["n"], p["n"])]
    if name.startswith("gemv_"):
        return [f32(p["n"]), f32(p["n"], p["n"])]
    if name == "elementwise":
        return [f32(p["n"]), f32(p["n"]), f32(p["n"])]
    if name == "sum":
        return [rng.random(p["n"], dtype=np.float32)]
    if name == "softmax":
        return [f32(p["rows"], p["cols"], scale=3.0)]
    if name == "conv2d":
        fan_in = p["cin"] * 9
        return [f32(p["batch"], p["cin"], p["hw"], p["hw"]),
                f32(p["cout"], p["cin"], 3, 3, scale=1 / math.sqrt(fan_in))]
    if name == "attention":
        shape = (p["batch"], p["heads"], p["tokens"], p["head_dim"])
        return [f32(*shape), f32(*shape), f32(*shape)]
    if name == "gpt2_block":
        b, t, d, m = p["batch"], p["tokens"], p["d_model"], p["d_mlp"]
        w = lambda *shape: f32(*shape, scale=0.02)  # GPT-2's initialisation scale
        return [f32(b, t, d),
                1 + w(d), w(d),                      # ln_1 gain, bias
                w(d, d), w(d), w(d, d), w(d), w(d, d), w(d),  # q, k, v projections and biases
                w(d, d), w(d),                       # attention output projection
                1 + w(d), w(d),                      # ln_2 gain, bias
                w(d, m), w(m), w(m, d), w(d)]        # MLP up and down
    raise KeyError(name)


# ----------------------------------------------------------------------------------------------
# numpy: the reference implementation of every workload

def np_layernorm(x, g, b, eps=1e-5):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def np_gelu(x):  # GPT-2's tanh approximation
    c = np.float32(math.sqrt(2.0 / math.pi))
    return 0.5 * x * (1.0 + np.tanh(c * (x + np.float32(0.044715) * x ** 3)))


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_conv2d_3x3_pad1(x, w):
    """im2col by a strided window view, then one BLAS contraction over (Cin, 3, 3)."""
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))  # N, C, H, W, 3, 3
    out = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))  # N, H, W, Cout
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def np_causal_attention(q, k, v):
    t = q.shape[-2]
    scores = (q @ np.swapaxes(k, -1, -2)) / np.float32(math.sqrt(q.shape[-1]))
    scores = np.where(np.tril(np.ones((t, t), dtype=bool)), scores, np.float32(-np.inf))
    return np_softmax(scores) @ v


def np_gpt2_block(p, x, ln1_g, ln1_b, wq, bq, wk, bk, wv, bv, wo, bo, ln2_g, ln2_b, w_fc, b_fc, w_pr, b_pr):
    b, t, d, nh = p["batch"], p["tokens"], p["d_model"], p["heads"]
    dh = d // nh
    heads = lambda y: y.reshape(b, t, nh, dh).transpose(0, 2, 1, 3)  # B, H, T, dh
    h = np_layernorm(x, ln1_g, ln1_b)
    q, k, v = heads(h @ wq + bq), heads(h @ wk + bk), heads(h @ wv + bv)
    y = np_causal_attention(q, k, v).transpose(0, 2, 1, 3).reshape(b, t, d)
    x = x + (y @ wo + bo)
    h = np_layernorm(x, ln2_g, ln2_b)
    return x + (np_gelu(h @ w_fc + b_fc) @ w_pr + b_pr)


def numpy_fn(name: str, p: dict):
    if name.startswith("matmul_") or name.startswith("gemv_"):
        return lambda a, b: a @ b
    if name == "elementwise":
        return lambda a, b, c: np.exp2(np.maximum(a * b + c, np.float32(0)))
    if name == "sum":
        return lambda a: a.sum()
    if name == "softmax":
        return lambda a: np_softmax(a, axis=-1)
    if name == "conv2d":
        return np_conv2d_3x3_pad1
    if name == "attention":
        return np_causal_attention
    if name == "gpt2_block":
        return lambda *args: np_gpt2_block(p, *args)
    raise KeyError(name)


# ----------------------------------------------------------------------------------------------
# tinygrad and this project's compiler: same numpy/PyTorch-style names, one spelling for both

def tensor_fn(name: str, p: dict, api: dict):
    """The workload written against a tensor API; `api` holds the per-framework adapters."""
    if name.startswith("matmul_") or name.startswith("gemv_"):
        return lambda a, b: a @ b
    if name == "elementwise":
        return lambda a, b, c: (a * b + c).relu().exp2()
    if name == "sum":
        return lambda a: a.sum()
    if name == "softmax":
        return lambda a: api["softmax"](a)
    if name == "conv2d":
        return lambda x, w: api["conv2d"](x, w)
    if name == "attention":
        return lambda q, k, v: api["sdpa_causal"](q, k, v)
    if name == "gpt2_block":
        return lambda *args: tensor_gpt2_block(p, api, *args)
    raise KeyError(name)


def tensor_gpt2_block(p, api, x, ln1_g, ln1_b, wq, bq, wk, bk, wv, bv, wo, bo, ln2_g, ln2_b,
                      w_fc, b_fc, w_pr, b_pr):
    b, t, d, nh = p["batch"], p["tokens"], p["d_model"], p["heads"]
    dh = d // nh
    heads = lambda y: y.reshape(b, t, nh, dh).permute(0, 2, 1, 3)  # B, H, T, dh
    h = api["layernorm"](x, ln1_g, ln1_b)
    q, k, v = heads(h @ wq + bq), heads(h @ wk + bk), heads(h @ wv + bv)
    y = api["sdpa_causal"](q, k, v).permute(0, 2, 1, 3).reshape(b, t, d)
    x = x + (y @ wo + bo)
    h = api["layernorm"](x, ln2_g, ln2_b)
    return x + (api["gelu"](h @ w_fc + b_fc) @ w_pr + b_pr)


class Framework:
    """How one column turns arrays into device tensors, runs, waits and reads back."""

    name = "numpy"
    version = np.__version__
    device_name = "host CPU (numpy " + np.__version__ + ")"
    note = ""

    def to_device(self, arr):
        return arr

    def fn(self, name: str, p: dict):
        return numpy_fn(name, p)

    def finish(self, out):
        """Wait until `out` is computed on the device (not counting a copy back to the host)."""
        return out

    def to_numpy(self, out) -> np.ndarray:
        return np.asarray(out)


class Tinygrad(Framework):
    name = "tinygrad"

    def __init__(self, device: str, jit: bool):
        os.environ.setdefault("DEV", device)
        import tinygrad
        from tinygrad import Device, Tensor, TinyJit

        self.Tensor, self.Device, self.TinyJit, self.jit = Tensor, Device, TinyJit, jit
        self.device = device
        self.version = getattr(tinygrad, "__version__", None) or _dist_version("tinygrad")
        dev = Device[device]
        self.device_name = f"tinygrad {self.version} {device}: " + _cl_device_name_tinygrad(dev)
        self.note = "TinyJit" if jit else "no JIT (eager: graph built and scheduled every call)"
        self.api = {
            "conv2d": lambda x, w: x.conv2d(w, padding=1),
            "layernorm": lambda x, g, b: x.layernorm(axis=-1, eps=1e-5) * g + b,
            "sdpa_causal": lambda q, k, v: q.scaled_dot_product_attention(k, v, is_causal=True),
            "softmax": lambda a: a.softmax(axis=-1),
            "gelu": lambda a: a.gelu(),
        }

    def to_device(self, arr):
        return self.Tensor(arr, device=self.device).realize()

    def fn(self, name, p):
        f = tensor_fn(name, p, self.api)
        if self.jit:
            return self.TinyJit(lambda *a: f(*a).realize())
        return f

    def finish(self, out):
        out = out.realize()
        self.Device[self.device].synchronize()
        return out

    def to_numpy(self, out):
        return out.numpy()


class Ours(Framework):
    """This project's compiler (`from compiler import Tensor`); adjust the adapters here if its API moves."""

    name = "ours"

    def __init__(self, device: str, jit: bool = False):
        import compiler
        from compiler import Tensor

        self.Tensor, self.device, self.jit = Tensor, device, jit
        self.version = getattr(compiler, "__version__", "source")
        self.device_name = f"compiler {device}: " + _cl_device_name_ours(device)
        self.api = {
            "conv2d": lambda x, w: x.conv2d(w, padding=1),
            "layernorm": _ours_layernorm,
            "sdpa_causal": lambda q, k, v: q.scaled_dot_product_attention(k, v, is_causal=True),
            "softmax": lambda a: a.softmax(axis=-1),
            "gelu": lambda a: a.gelu(),
        }
        self._sync = _ours_synchronizer(device)
        mode = "@jit (compiler.jit: recorded kernels replayed, no graph building)" if jit else "eager"
        self.note = "; ".join(x for x in (mode, Ours.note) if x)

    def to_device(self, arr):
        return self.Tensor(arr, device=self.device).realize()

    def fn(self, name, p):
        f = tensor_fn(name, p, self.api)
        if self.jit:
            from compiler.jit import jit

            return jit(lambda *a: f(*a).realize())
        return f

    def finish(self, out):
        out = out.realize()
        self._sync(out)
        return out

    def to_numpy(self, out):
        return out.numpy()


class Torch(Framework):
    """PyTorch on the CPU (eager, its default thread count): what most users would pick instead."""

    name = "torch"

    def __init__(self):
        import torch
        import torch.nn.functional as F

        torch.manual_seed(0)
        self.torch = torch
        self.version = torch.__version__
        self.device_name = f"PyTorch {torch.__version__} CPU, {torch.get_num_threads()} threads"
        self.note = "eager, no torch.compile; inference under torch.inference_mode()"
        self.api = {
            "conv2d": lambda x, w: F.conv2d(x, w, padding=1),
            "layernorm": lambda x, g, b: F.layer_norm(x, x.shape[-1:], g, b, eps=1e-5),
            "sdpa_causal": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
            "softmax": lambda a: a.softmax(dim=-1),
            "gelu": lambda a: F.gelu(a, approximate="tanh"),
        }
        self._mode = torch.inference_mode()
        self._mode.__enter__()

    def to_device(self, arr):
        return self.torch.from_numpy(np.ascontiguousarray(arr))

    def fn(self, name, p):
        return tensor_fn(name, p, self.api)

    def to_numpy(self, out):
        return out.numpy()


def _ours_layernorm(x, g, b):
    """layernorm over the last axis, affine applied outside (tinygrad's spelling); adapt if the API moves."""
    try:
        return x.layernorm(axis=-1, eps=1e-5) * g + b
    except TypeError:
        return x.layernorm() * g + b


def _ours_synchronizer(device: str):
    """A function that waits for the device queue; a read-back of the result when no sync is exposed."""
    try:
        from compiler.device import Device  # type: ignore

        if hasattr(Device, "synchronize"):
            return lambda out: Device.synchronize(device)
    except ImportError:
        pass
    if device.upper().startswith("CL"):
        try:
            from compiler.device import cl_index  # type: ignore
            from compiler.runtime_opencl import get_cl_device  # type: ignore

            dev = get_cl_device(cl_index(device))
            return lambda out: dev.synchronize()
        except ImportError:
            pass
    Ours.note = "timing includes a read-back (no synchronize found)"
    return lambda out: out.numpy()


def limit_threads(fw: Framework, threads: int) -> None:
    """Apply the driver's thread limit where an API sets it (PyTorch) and say in the device name how many
    threads the column really has (the environment limits BLAS and PoCL; a PoCL that ignores it shows)."""
    if isinstance(fw, Torch):
        fw.torch.set_num_threads(threads)
        fw.device_name = f"PyTorch {fw.version} CPU, {fw.torch.get_num_threads()} threads"
    elif isinstance(fw, Ours) and fw.device.upper().startswith("CL"):
        try:
            from compiler.device import cl_index  # type: ignore
            from compiler.runtime_opencl import get_cl_device  # type: ignore

            cus = get_cl_device(cl_index(fw.device)).device.max_compute_units
            fw.device_name += f", {cus} compute unit{'s' if cus != 1 else ''}"
        except ImportError:
            pass
    elif isinstance(fw, Framework) and fw.name == "numpy":
        fw.device_name += f", {threads} BLAS thread{'s' if threads != 1 else ''} (OPENBLAS_NUM_THREADS)"


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _cl_device_name_tinygrad(dev) -> str:
    return str(getattr(dev, "device_name", "") or type(dev).__name__)  # naming is cosmetic


def _cl_device_name_ours(device: str) -> str:
    try:
        from compiler.device import describe  # type: ignore

        return describe(device)
    except Exception:  # naming is cosmetic
        return "?"


# ----------------------------------------------------------------------------------------------

def check(out: np.ndarray, ref: np.ndarray) -> dict:
    out, ref = np.asarray(out, dtype=np.float32), np.asarray(ref, dtype=np.float32)
    if out.shape != ref.shape:
        return {"ok": False, "why": f"shape {out.shape} != {ref.shape}"}
    scale = float(np.abs(ref).max()) if ref.size else 1.0
    err = float(np.abs(out - ref).max()) if ref.size else 0.0
    ok = bool(np.allclose(out, ref, rtol=2e-3, atol=2e-3 * max(scale, 1.0)))
    return {"ok": ok, "max_abs_err": err, "ref_max_abs": scale}


MAX_RUNS = 500  # a workload of a few milliseconds stops here, whatever --min-time asks


def run_workload(fw: Framework, name: str, quick: bool, runs: int, warmup: int,
                 pending: list | None = None, min_time: float = 0.0) -> dict:
    """Time one workload: at least `runs` calls and at least `min_time` seconds of them (at most MAX_RUNS
    calls), so a workload of a few milliseconds gets a median over many calls rather than over a few that
    one burst of another tenant's load can own. With `pending`, the first call's output is appended to it
    for check_pending: the numpy reference must not run before or between timings, since its BLAS threads
    keep spinning on both cores for a while after a call (OpenBLAS: about 0.1 s) and would slow the column
    being timed (measured: x @ W on `ours` 8.5-9.0 ms after the reference, 4.9-5.2 with the reference on one thread)."""
    p = sizes(name, quick)
    arrays = make_inputs(name, p)
    args = [fw.to_device(a) for a in arrays]
    fn = fw.fn(name, p)
    t0 = time.perf_counter()
    out = fw.finish(fn(*args))
    first = time.perf_counter() - t0
    rec = {"workload": name, "params": p, "flop": flops(name, p), "first_call_s": first}
    if pending is not None:
        pending.append((rec, fw.to_numpy(out), arrays))
    for _ in range(warmup):
        fw.finish(fn(*args))
    times, cpu = [], []
    timed = 0.0
    while len(times) < runs or (timed < min_time and len(times) < MAX_RUNS):
        c0, t0 = time.process_time(), time.perf_counter()
        fw.finish(fn(*args))
        times.append(time.perf_counter() - t0)
        timed += times[-1]
        cpu.append(time.process_time() - c0)
    # CPU seconds of the whole process (every thread): with one thread per column, a load-robust measure
    # of the work done, since time spent waiting for a core the other engineers hold is not counted
    rec.update(times_s=times, median_s=statistics.median(times), min_s=min(times),
               cpu_median_s=statistics.median(cpu))
    rec["gflops"] = rec["flop"] / rec["median_s"] / 1e9
    log(f"  {fw.name:8s} {name:12s} median {rec['median_s'] * 1e3:9.2f} ms  {rec['gflops']:8.2f} GFLOP/s"
        f"  first call {first * 1e3:8.1f} ms")
    return rec


def check_pending(fw: Framework, quick: bool, pending: list) -> None:
    """Check each timed workload's first output against the numpy implementation, after all timings."""
    for rec, out, arrays in pending:
        name = rec["workload"]
        rec["check"] = check(out, numpy_fn(name, sizes(name, quick))(*arrays))
        if not rec["check"]["ok"]:
            log(f"  {fw.name} {name}: WRONG RESULT {rec['check']}")


def first_call(fw: Framework, name: str, quick: bool) -> dict:
    """The first call of one workload in this (fresh) process: compile and run, no warm-up before it."""
    p = sizes(name, quick)
    args = [fw.to_device(a) for a in make_inputs(name, p)]
    fn = fw.fn(name, p)
    t0 = time.perf_counter()
    fw.finish(fn(*args))
    return {"workload": name, "first_call_s": time.perf_counter() - t0}


def make_framework(column: str, device: str, jit: bool, ours_jit: bool = False) -> Framework:
    if column == "numpy":
        return Framework()
    if column == "tinygrad":
        return Tinygrad(device, jit)
    if column == "torch":
        return Torch()
    if column == "ours":
        return Ours(device, ours_jit)
    raise SystemExit(f"unknown column {column}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--column", required=True, choices=("numpy", "torch", "tinygrad", "ours"))
    ap.add_argument("--device", default="CL")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=",".join(WORKLOADS))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.0, help="timed seconds per workload, at least")
    ap.add_argument("--tinygrad-jit", action="store_true")
    ap.add_argument("--ours-jit", action="store_true")
    ap.add_argument("--first-call", metavar="WORKLOAD", help="time only the first call of one workload")
    ap.add_argument("--threads", type=int, help="the thread limit the driver set (checked and reported)")
    args = ap.parse_args()
    t_import = time.perf_counter()
    report: dict = {"column": args.column, "device": args.device, "quick": args.quick}
    try:
        fw = make_framework(args.column, args.device, args.tinygrad_jit, args.ours_jit)
    except Exception as exc:  # the column cannot run here: say why, and let the driver skip it
        report.update(available=False, reason=f"{type(exc).__name__}: {exc}")
        print(json.dumps(report))
        return 0
    if args.threads:
        limit_threads(fw, args.threads)
    report.update(available=True, version=fw.version, device_name=fw.device_name, note=fw.note,
                  import_s=time.perf_counter() - t_import)
    if args.first_call:
        try:
            report["first_call"] = first_call(fw, args.first_call, args.quick)
        except Exception as exc:
            report["error"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(report))
        return 0
    report["results"], report["errors"] = [], {}
    report["loadavg_start"] = list(os.getloadavg())  # how busy the shared machine was: read with the times
    pending: list | None = [] if args.column != "numpy" else None
    for name in [w for w in args.only.split(",") if w]:
        try:
            report["results"].append(run_workload(fw, name, args.quick, args.runs, args.warmup, pending, args.min_time))
        except Exception as exc:  # one workload's failure must not hide the others
            log(f"  {fw.name} {name}: FAILED {type(exc).__name__}: {exc}")
            log(traceback.format_exc(limit=4))
            report["errors"][name] = f"{type(exc).__name__}: {str(exc)[:300]}"
    if pending:
        check_pending(fw, args.quick, pending)
    report["note"] = fw.note
    report["loadavg_end"] = list(os.getloadavg())
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
