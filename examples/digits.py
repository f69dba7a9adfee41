"""sklearn's 8x8 handwritten digits (bundled with scikit-learn, no download) as a seeded train/test split,
and the training loop the digits examples share."""

from __future__ import annotations

import time

import numpy as np

from compiler import Tensor
from compiler.autograd import no_grad
from compiler.jit import jit
from compiler.losses import cross_entropy


def load_digits_split(seed: int = 0, test_fraction: float = 0.2):
    """(x_train, y_train, x_test, y_test): images (N, 1, 8, 8) scaled to [0, 1], int32 labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def accuracy(model, x: np.ndarray, y: np.ndarray, device: str, batch: int = 360) -> float:
    """Fraction of correct argmax predictions, in eval mode."""
    model.eval()
    correct = 0
    with no_grad():
        for i in range(0, len(y), batch):
            logits = model(Tensor(x[i : i + batch], device=device)).numpy()
            correct += int((logits.argmax(1) == y[i : i + batch]).sum())
    model.train()
    return correct / len(y)


def train_classifier(model, opt, data, device: str, epochs: int, batch: int, seed: int = 0, schedule=None,
                     label_smoothing: float = 0.0, log=print) -> dict:  # fmt: skip
    """Minibatch training with cross-entropy (whole batches only, so every step reuses its kernels; from the
    fourth step on, compiler.jit replays them without rebuilding the graph)."""
    x_tr, y_tr, x_te, y_te = data

    @jit
    def train_step(x: Tensor, y: Tensor) -> Tensor:
        loss = cross_entropy(model(x), y, label_smoothing=label_smoothing)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    rng = np.random.default_rng(seed)
    steps_per_epoch = len(y_tr) // batch
    total, step, t0 = epochs * steps_per_epoch, 0, time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = rng.permutation(len(y_tr))
        for b in range(steps_per_epoch):
            idx = order[b * batch : (b + 1) * batch]
            if schedule is not None:
                opt.lr = schedule(step, total)
            loss = train_step(Tensor(x_tr[idx], device=device), Tensor(y_tr[idx], device=device))
            step += 1
        log(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.4f}  ({time.perf_counter() - t0:.1f} s)")
    seconds = time.perf_counter() - t0
    acc = accuracy(model, x_te, y_te, device)
    log(f"held-out accuracy {acc * 100:.2f}% ({len(y_te)} images) after {seconds:.1f} s of training")
    return {"accuracy": acc, "train_seconds": seconds, "steps": step, "final_loss": float(loss.item())}
