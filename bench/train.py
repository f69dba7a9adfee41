"""One training step (forward, backward, Adam update) of the digits CNN and of the small char GPT: this
project on CL against PyTorch on the CPU and tinygrad 0.14 on the same OpenCL device.

    python -m bench.train                 # both models, all columns
    python -m bench.train --only cnn --steps 10 --json out.json
    python -m bench.train --only cnn --columns ours_jit,torch --repeats 3 --threads 1

--repeats R runs the columns in turn R times (interleaved rounds, so each sees the machine's load of its
round); a ratio is then the median over the rounds with its range, each taken within one round, and the
load average is printed per round. --threads N runs every column on N threads: PyTorch's intra-op
threads (OMP_NUM_THREADS) and PoCL's worker threads for this project and tinygrad (POCL_MAX_PTHREAD_COUNT,
read by PoCL 3.x's pthread device, and POCL_CPU_MAX_CU_COUNT, its name in later PoCL releases). One thread
each is the comparison that a machine shared with other jobs disturbs least.

Each column runs in its own subprocess (this file with --column), one after another. A column times the
median step over --steps steps after 3 warm-up steps (compilation happens in the warm-up). The models
have the same layer shapes everywhere: CNN conv3x3(1->16)-ReLU-pool-conv3x3(16->32)-ReLU-pool-Linear(128->10)
at batch 64 on 8x8 images; GPT vocab 128, context 64, 2 layers, 4 heads, width 64, batch 32, tied head.
This project and tinygrad each run without and with their JIT (`compiler.jit`, TinyJit); the JIT
columns replay the captured kernels of a step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = ("cnn", "gpt")
COLUMNS = ("ours", "ours_jit", "torch", "tinygrad", "tinygrad_jit")
CNN_BATCH, GPT_BATCH, VOCAB, BLOCK, WIDTH, HEADS, LAYERS = 64, 32, 128, 64, 64, 4, 2


def _data(model: str, step: int):
    rng = np.random.default_rng(step)
    if model == "cnn":
        return rng.random((CNN_BATCH, 1, 8, 8), dtype=np.float32), rng.integers(0, 10, CNN_BATCH).astype(np.int32)
    x = rng.integers(0, VOCAB, (GPT_BATCH, BLOCK)).astype(np.int32)
    return x, rng.integers(0, VOCAB, (GPT_BATCH, BLOCK)).astype(np.int32)


# --- the columns ---------------------------------------------------------------------------------
def ours_step(model: str, device: str, jit: bool = False):
    sys.path.insert(0, str(REPO))
    from compiler import Tensor
    from compiler.jit import jit as jit_fn
    from compiler.losses import cross_entropy
    from compiler.models import GPT, GPTConfig, SmallCNN
    from compiler.optim import Adam

    net = SmallCNN(device=device) if model == "cnn" else GPT(GPTConfig(VOCAB, BLOCK, LAYERS, HEADS, WIDTH), device)
    opt = Adam(net.parameters(), lr=1e-3)

    def raw(x, y):
        out = net(x)
        loss = cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    fn = jit_fn(raw) if jit else raw

    def step(x, y):
        return fn(Tensor(x, device=device), Tensor(y, device=device)).item()

    return step


def torch_step(model: str, device: str):
    import torch
    from torch import nn

    torch.manual_seed(0)
    if model == "cnn":
        net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10),
        )  # fmt: skip
    else:

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.ln1, self.ln2 = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
                self.qkv, self.proj = nn.Linear(WIDTH, 3 * WIDTH), nn.Linear(WIDTH, WIDTH)
                self.fc, self.out = nn.Linear(WIDTH, 4 * WIDTH), nn.Linear(4 * WIDTH, WIDTH)

            def forward(self, x):
                b, t, c = x.shape
                q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, HEADS, c // HEADS).permute(2, 0, 3, 1, 4)
                y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
                x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
                return x + self.out(torch.nn.functional.gelu(self.fc(self.ln2(x)), approximate="tanh"))

        class GPT(nn.Module):
            def __init__(self):
                super().__init__()
                self.wte, self.wpe = nn.Embedding(VOCAB, WIDTH), nn.Embedding(BLOCK, WIDTH)
                self.h = nn.ModuleList(Block() for _ in range(LAYERS))
                self.ln_f = nn.LayerNorm(WIDTH)

            def forward(self, idx):
                x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
                for b in self.h:
                    x = b(x)
                return self.ln_f(x) @ self.wte.weight.T

        net = GPT()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step(x, y):
        out = net(torch.from_numpy(x) if model == "cnn" else torch.from_numpy(x).long())
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), torch.from_numpy(y).long().reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def tinygrad_step(model: str, device: str, jit: bool):
    from tinygrad import Context, Tensor, TinyJit, nn

    Tensor.manual_seed(0)
    if model == "cnn":

        class Net:
            def __init__(self):
                self.c1, self.c2 = nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1)
                self.fc = nn.Linear(128, 10)

            def __call__(self, x):
                x = self.c1(x).relu().max_pool2d(2)
                return self.fc(self.c2(x).relu().max_pool2d(2).flatten(1))

    else:

        class Block:
            def __init__(self):
                self.ln1, self.ln2 = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
                self.qkv, self.proj = nn.Linear(WIDTH, 3 * WIDTH), nn.Linear(WIDTH, WIDTH)
                self.fc, self.out = nn.Linear(WIDTH, 4 * WIDTH), nn.Linear(4 * WIDTH, WIDTH)

            def __call__(self, x):
                b, t, c = x.shape
                q, k, v = self.qkv(self.ln1(x)).reshape(b, t, 3, HEADS, c // HEADS).permute(2, 0, 3, 1, 4)
                y = q.scaled_dot_product_attention(k, v, is_causal=True)
                x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
                return x + self.out(self.fc(self.ln2(x)).gelu())

        class Net:
            def __init__(self):
                self.wte, self.wpe = nn.Embedding(VOCAB, WIDTH), nn.Embedding(BLOCK, WIDTH)
                self.h = [Block() for _ in range(LAYERS)]
                self.ln_f = nn.LayerNorm(WIDTH)

            def __call__(self, idx):
                x = self.wte(idx) + self.wpe(Tensor.arange(BLOCK).reshape(1, BLOCK))
                for b in self.h:
                    x = b(x)
                return self.ln_f(x) @ self.wte.weight.T

    net = Net()
    opt = nn.optim.Adam(nn.state.get_parameters(net), lr=1e-3)

    for p in nn.state.get_parameters(net):
        p.requires_grad = True

    def raw(x, y):
        with Context(TRAINING=1):
            out = net(x)
            loss = out.reshape(-1, out.shape[-1]).sparse_categorical_crossentropy(y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.realize()

    fn = TinyJit(raw) if jit else raw

    def step(x, y):
        return fn(Tensor(x), Tensor(y)).item()

    return step


def run_column(column: str, model: str, device: str, steps: int) -> dict:
    """Warm up 3 steps (the first compiles), then time `steps` steps; the median is the step time."""
    if column.startswith("ours"):
        step = ours_step(model, device, jit=column == "ours_jit")
    elif column == "torch":
        step = torch_step(model, device)
    else:
        step = tinygrad_step(model, device, jit=column == "tinygrad_jit")
    t0 = time.perf_counter()
    step(*_data(model, 0))
    first = time.perf_counter() - t0
    for i in range(1, 3):
        step(*_data(model, i))
    times = []
    for i in range(steps):
        x, y = _data(model, 3 + i)
        t0 = time.perf_counter()
        loss = step(x, y)
        times.append(time.perf_counter() - t0)
    return {"available": True, "median_s": float(np.median(times)), "min_s": float(min(times)),
            "max_s": float(max(times)), "first_s": first, "loss": float(loss)}  # fmt: skip


def spawn(column: str, model: str, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--column", column, "--only", model,
           "--steps", str(args.steps), "--device", args.device]  # fmt: skip
    env = dict(os.environ)
    if column.startswith("tinygrad"):
        sys.path.insert(0, str(REPO))
        from bench.compiler_bench import tinygrad_env, tinygrad_python

        env, reason = tinygrad_env(args.device)
        if env is None:
            return {"available": False, "reason": reason}
        cmd[0] = tinygrad_python()
    elif column == "torch":
        env["PYTHONPATH"] = ""
        if args.torch_threads:  # OpenMP spin-waits badly when other processes hold the cores
            env["OMP_NUM_THREADS"] = str(args.torch_threads)
    else:
        env["PYTHONPATH"] = str(REPO)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
        env["POCL_MAX_PTHREAD_COUNT"] = env["POCL_CPU_MAX_CU_COUNT"] = str(args.threads)
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"available": False, "reason": f"timed out after {args.timeout} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"available": False, "reason": f"exited {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=MODELS)
    ap.add_argument("--columns", default=",".join(COLUMNS), help=f"comma-separated subset of {','.join(COLUMNS)}")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="CL")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--torch-threads", type=int, help="PyTorch's thread count (default: PyTorch's own choice)")
    ap.add_argument("--threads", type=int, help="threads for every column: PyTorch's and PoCL's (default: all cores)")
    ap.add_argument("--repeats", type=int, default=1, help="interleaved rounds of all columns (ratios get a range)")
    ap.add_argument("--column", help=argparse.SUPPRESS)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    models = args.only or list(MODELS)
    if args.column:  # worker mode
        try:
            res = run_column(args.column, models[0], args.device, args.steps)
        except ImportError as e:
            res = {"available": False, "reason": f"{e}"}
        print(json.dumps(res))
        return
    results = {}
    for model in models:
        columns = args.columns.split(",")
        rounds = []
        for rnd in range(args.repeats):
            load = os.getloadavg()[0]
            row = {}
            for column in columns:
                r = spawn(column, model, args)
                row[column] = r
                if r["available"]:
                    print(f"{model:4s} round {rnd + 1} {column:13s} step {r['median_s'] * 1e3:9.2f} ms (min "
                          f"{r['min_s'] * 1e3:.2f}, max {r['max_s'] * 1e3:.2f}; first {r['first_s']:.1f} s)",
                          flush=True)  # fmt: skip
                else:
                    print(f"{model:4s} round {rnd + 1} {column:13s} not available ({r['reason']})", flush=True)
            row["load_avg"] = [load, os.getloadavg()[0]]
            print(f"{model:4s} round {rnd + 1} load average {load:.1f} -> {row['load_avg'][1]:.1f}", flush=True)
            rounds.append(row)
        results[model] = {"rounds": rounds}
        for mine in ("ours", "ours_jit"):
            for peer in ("torch", "tinygrad", "tinygrad_jit"):
                ratios = [
                    r[mine]["median_s"] / r[peer]["median_s"]
                    for r in rounds
                    if r.get(mine, {}).get("available") and r.get(peer, {}).get("available")
                ]
                if ratios:
                    results[model][f"{mine}/{peer}"] = ratios
                    print(f"{model:4s} {mine} / {peer}: {float(np.median(ratios)):.2f}x step time "
                          f"({min(ratios):.2f}-{max(ratios):.2f} over {len(ratios)} rounds)")  # fmt: skip
    if args.json:
        tmp = Path(args.json).with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=2))
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
