"""Train a small CNN on sklearn's digits on the default device: `python examples/train_cnn.py`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from digits import accuracy, load_digits_split, train_classifier

from compiler import Device
from compiler.models import SmallCNN
from compiler.optim import Adam, cosine_lr
from compiler.quantize_weights import compare_formats


def train(device: str | None = None, seed: int = 0, epochs: int = 15, log=print) -> tuple:
    """Train the digits CNN; returns (model, results dict with the held-out accuracy)."""
    device = device or Device.DEFAULT
    data = load_digits_split(seed)
    model = SmallCNN(1, 8, 16, 32, 10, device=device, seed=seed)
    opt = Adam(model.parameters(), lr=1e-2)
    res = train_classifier(model, opt, data, device, epochs, 64, seed,
                           schedule=lambda s, n: cosine_lr(s, 1e-2, n, warmup_steps=20), log=log)  # fmt: skip
    return model, res


def quantization_report(model, device: str | None = None, seed: int = 0, log=print) -> dict[str, float]:
    """Held-out accuracy with the trained weights and with int8, int4 (group 32) and bfloat16 weights."""
    device = device or Device.DEFAULT
    _, _, x_te, y_te = load_digits_split(seed)
    table = compare_formats(model, lambda m: accuracy(m, x_te, y_te, device))
    for fmt, acc in table.items():
        log(f"{fmt:9s} weights: held-out accuracy {acc * 100:.2f}% ({(acc - table['float32']) * 100:+.2f} points)")
    return table


if __name__ == "__main__":
    quantization_report(train()[0])
