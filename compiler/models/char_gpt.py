"""The character-level GPT of examples/train_gpt.py as a project model: its corpus (the Python standard
library's own source, always available offline), training, held-out perplexity, and trained weights cached
on disk so that `workbench quantize char-gpt` trains once and reuses them.

The corpus is every top-level .py file of the running interpreter's standard library in sorted order, its
first 2,000,000 characters; characters outside ASCII map to id 0; the last 10% are held out.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor
from .gpt import GPT, GPTConfig

__all__ = ["CONFIG", "load_corpus", "batches", "eval_windows", "logits_of", "perplexity_from_logits",
           "perplexity", "train", "cached_weights_path", "trained_weights"]

CONFIG = GPTConfig(vocab_size=128, block_size=64, n_layer=2, n_head=4, n_embd=64)
MAX_CHARS = 2_000_000
TRAIN_STEPS = 500  # the documented run (docs/training.md): validation perplexity 7.756


def _corpus_bytes(max_chars: int = MAX_CHARS) -> bytes:
    root = Path(os.__file__).parent
    return b"".join(p.read_bytes() for p in sorted(root.glob("*.py")))[:max_chars]


def load_corpus(max_chars: int = MAX_CHARS) -> tuple[np.ndarray, np.ndarray]:
    """(train ids, validation ids) as int32 arrays of character codes (ASCII; others -> 0)."""
    ids = np.frombuffer(_corpus_bytes(max_chars), np.uint8).astype(np.int32)
    ids[ids >= 128] = 0
    split = int(len(ids) * 0.9)
    return ids[:split], ids[split:]


def batches(ids: np.ndarray, batch: int, block: int, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Random (inputs, next-character targets) windows, forever."""
    while True:
        start = rng.integers(0, len(ids) - block - 1, batch)
        x = np.stack([ids[s : s + block] for s in start])
        y = np.stack([ids[s + 1 : s + block + 1] for s in start])
        yield x, y


def eval_windows(ids: np.ndarray, block: int, batch: int = 32, n_batches: int = 16) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed, evenly spaced (inputs, targets) windows of ids in batches: the same text for every model."""
    n = min(n_batches * batch, (len(ids) - 1) // block)
    starts = np.linspace(0, len(ids) - block - 1, n).astype(np.int64)
    out = []
    for i in range(0, n, batch):
        s = starts[i : i + batch]
        out.append((np.stack([ids[j : j + block] for j in s]), np.stack([ids[j + 1 : j + block + 1] for j in s])))
    return out


def logits_of(forward: Callable[[Tensor], Tensor], windows: list, device: str) -> np.ndarray:
    """forward's logits (windows, T, vocab) on device for every window, without gradients."""
    with no_grad():
        return np.concatenate([forward(Tensor(x, device=device)).numpy() for x, _ in windows])


def perplexity_from_logits(logits: np.ndarray, targets: np.ndarray) -> float:
    """exp(mean cross-entropy) of targets under logits (float64 log-softmax on the host)."""
    z = logits.astype(np.float64).reshape(-1, logits.shape[-1])
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return math.exp(-float(np.mean(logp[np.arange(len(z)), targets.reshape(-1)])))


def perplexity(model: GPT, ids: np.ndarray, device: str, batch: int = 32, n_batches: int = 16) -> float:
    """Perplexity of model over n_batches fixed, non-overlapping windows of ids."""
    windows = eval_windows(ids, model.config.block_size, batch, n_batches)
    was_training = model.training
    model.eval()
    try:
        logits = logits_of(model, windows, device)
    finally:
        model.train(was_training)
    return perplexity_from_logits(logits, np.concatenate([y for _, y in windows]))


def train(steps: int = 600, batch: int = 32, lr: float = 3e-3, device: str | None = None, seed: int = 0,
          log: Callable[[str], None] = print, on_step: Callable[[int, float], None] | None = None,
          config: GPTConfig = CONFIG):
    """Train the char GPT; returns (model, {"val_perplexity", "train_seconds", ...}).

    on_step(step, loss) is called after every step (a progress display); log gets a line every 100 steps.
    """
    from ..device import Device
    from ..jit import jit
    from ..losses import cross_entropy
    from ..optim import AdamW, cosine_lr

    device = device or Device.DEFAULT
    train_ids, val_ids = load_corpus()
    model = GPT(config, device=device, seed=seed)
    opt = AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    data = batches(train_ids, batch, config.block_size, np.random.default_rng(seed))

    @jit  # from the fourth step on, the step's kernels are replayed without rebuilding the graph
    def train_step(x: Tensor, y: Tensor) -> Tensor:
        loss = cross_entropy(model(x).reshape(-1, config.vocab_size), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    t0 = time.perf_counter()
    for step in range(steps):
        x, y = next(data)
        opt.lr = cosine_lr(step, lr, steps, warmup_steps=30, min_lr=lr / 10)
        loss = train_step(Tensor(x, device=device), Tensor(y.reshape(-1), device=device))
        if on_step is not None:
            on_step(step, loss.item())
        if step % 100 == 0 or step == steps - 1:
            log(f"step {step}: loss {loss.item():.3f} ({time.perf_counter() - t0:.1f} s)")
    seconds = time.perf_counter() - t0
    ppl = perplexity(model, val_ids, device)
    log(f"validation perplexity {ppl:.3f} after {steps} steps ({seconds:.1f} s)")
    return model, {"val_perplexity": ppl, "train_seconds": seconds, "steps": steps, "chars": len(train_ids)}


def cached_weights_path(steps: int = TRAIN_STEPS, seed: int = 0) -> Path:
    """Where trained weights for (steps, seed) live in the cache: the key covers the corpus and the config."""
    from ..program_cache import cache_dir

    c = CONFIG
    digest = hashlib.sha256(_corpus_bytes()).hexdigest()[:12]
    name = (f"char-gpt-v{c.vocab_size}-t{c.block_size}-l{c.n_layer}-h{c.n_head}-d{c.n_embd}"
            f"-steps{steps}-seed{seed}-corpus{digest}.safetensors")
    return cache_dir() / "weights" / name


def trained_weights(steps: int = TRAIN_STEPS, seed: int = 0, device: str | None = None,
                    on_step: Callable[[int, float], None] | None = None) -> tuple[Path, bool]:
    """(path, trained_now): the cached weights of the documented training run, training them first if absent.

    Training is seeded, so the file is what `examples/train_gpt.py --steps N --save` writes on the same
    device; it is written to a temporary file and renamed (a killed run leaves no partial weights).
    """
    from ..weights import save_safetensors

    path = cached_weights_path(steps, seed)
    if path.is_file():
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    model, res = train(steps, device=device, seed=seed, log=lambda *_: None, on_step=on_step)
    save_safetensors(model, path, metadata={"steps": str(steps), "seed": str(seed),
                                            "val_perplexity": f"{res['val_perplexity']:.4f}"})
    return path, True
