"""Train a small character-level GPT on the Python standard library's own source text (always available
offline) and report validation perplexity: `python examples/train_gpt.py [--steps N] [--save out.safetensors]`.

The corpus is every top-level .py file of the running interpreter's standard library in sorted order;
the last 10% of the characters are held out for validation. Characters outside ASCII map to id 0.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np

from compiler import Device, Tensor
from compiler.autograd import no_grad
from compiler.jit import jit
from compiler.losses import cross_entropy
from compiler.models import GPT, GPTConfig
from compiler.optim import AdamW, cosine_lr
from compiler.quantize_weights import compare_formats
from compiler.weights import save_safetensors

CONFIG = GPTConfig(vocab_size=128, block_size=64, n_layer=2, n_head=4, n_embd=64)


def load_corpus(max_chars: int = 2_000_000) -> tuple[np.ndarray, np.ndarray]:
    """(train ids, validation ids) as int32 arrays of character codes (ASCII; others -> 0)."""
    root = Path(os.__file__).parent
    text = b"".join(p.read_bytes() for p in sorted(root.glob("*.py")))[:max_chars]
    ids = np.frombuffer(text, np.uint8).astype(np.int32)
    ids[ids >= 128] = 0
    split = int(len(ids) * 0.9)
    return ids[:split], ids[split:]


def batches(ids: np.ndarray, batch: int, block: int, rng: np.random.Generator):
    """Random (inputs, next-character targets) windows, forever."""
    while True:
        start = rng.integers(0, len(ids) - block - 1, batch)
        x = np.stack([ids[s : s + block] for s in start])
        y = np.stack([ids[s + 1 : s + block + 1] for s in start])
        yield x, y


def perplexity(model: GPT, ids: np.ndarray, device: str, batch: int = 32, n_batches: int = 16) -> float:
    """exp(mean cross-entropy) over n_batches fixed, non-overlapping windows of ids."""
    block = model.config.block_size
    n = min(n_batches * batch, (len(ids) - 1) // block)
    starts = np.linspace(0, len(ids) - block - 1, n).astype(np.int64)
    total, count = 0.0, 0
    model.eval()
    with no_grad():
        for i in range(0, n, batch):
            s = starts[i : i + batch]
            x = np.stack([ids[j : j + block] for j in s])
            y = np.stack([ids[j + 1 : j + block + 1] for j in s])
            loss = cross_entropy(model(Tensor(x, device=device)).reshape(-1, CONFIG.vocab_size),
                                 Tensor(y.reshape(-1), device=device), reduction="sum")  # fmt: skip
            total += float(loss.item())
            count += y.size
    model.train()
    return math.exp(total / count)


def train(steps: int = 600, batch: int = 32, lr: float = 3e-3, device: str | None = None, seed: int = 0, log=print):
    """Train the char GPT; returns (model, {"val_perplexity", "train_seconds", ...})."""
    device = device or Device.DEFAULT
    train_ids, val_ids = load_corpus()
    model = GPT(CONFIG, device=device, seed=seed)
    opt = AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    data = batches(train_ids, batch, CONFIG.block_size, np.random.default_rng(seed))

    @jit  # from the fourth step on, the step's kernels are replayed without rebuilding the graph
    def train_step(x: Tensor, y: Tensor) -> Tensor:
        loss = cross_entropy(model(x).reshape(-1, CONFIG.vocab_size), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    t0 = time.perf_counter()
    for step in range(steps):
        x, y = next(data)
        opt.lr = cosine_lr(step, lr, steps, warmup_steps=30, min_lr=lr / 10)
        loss = train_step(Tensor(x, device=device), Tensor(y, device=device))
        if step % 100 == 0 or step == steps - 1:
            log(f"step {step}: loss {loss.item():.3f} ({time.perf_counter() - t0:.1f} s)")
    seconds = time.perf_counter() - t0
    ppl = perplexity(model, val_ids, device)
    log(f"validation perplexity {ppl:.3f} after {steps} steps ({seconds:.1f} s)")
    return model, {"val_perplexity": ppl, "train_seconds": seconds, "steps": steps, "chars": len(train_ids)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--save", help="write the trained weights to this .safetensors file")
    ap.add_argument("--quantize", action="store_true", help="also report int8/int4/bfloat16 weight perplexity")
    args = ap.parse_args()
    model, res = train(args.steps)
    if args.save:
        save_safetensors(model, args.save)
        print(f"saved {args.save}")
    if args.quantize:
        _, val_ids = load_corpus()
        dev = model.wte.weight.device
        table = compare_formats(model, lambda m: perplexity(m, val_ids, dev))
        for fmt, ppl in table.items():
            print(f"{fmt:9s} weights: validation perplexity {ppl:.3f} ({(ppl / table['float32'] - 1) * 100:+.2f}%)")


if __name__ == "__main__":
    main()
