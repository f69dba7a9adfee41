"""Train a small CNN on sklearn's digits on the default device: `python examples/train_cnn.py`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from digits import load_digits_split, train_classifier  # noqa: E402

from compiler import Device  # noqa: E402
from compiler.models import SmallCNN  # noqa: E402
from compiler.optim import Adam, cosine_lr  # noqa: E402


def train(device: str | None = None, seed: int = 0, epochs: int = 15, log=print) -> tuple:
    """Train the digits CNN; returns (model, results dict with the held-out accuracy)."""
    device = device or Device.DEFAULT
    data = load_digits_split(seed)
    model = SmallCNN(1, 8, 16, 32, 10, device=device, seed=seed)
    opt = Adam(model.parameters(), lr=1e-2)
    res = train_classifier(model, opt, data, device, epochs, 64, seed,
                           schedule=lambda s, n: cosine_lr(s, 1e-2, n, warmup_steps=20), log=log)  # fmt: skip
    return model, res


if __name__ == "__main__":
    train()
