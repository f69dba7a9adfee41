"""Train an MLP on sklearn's digits on the default device: `python examples/train_mlp.py`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from digits import load_digits_split, train_classifier

from compiler import Device
from compiler.models import MLP
from compiler.optim import Adam, cosine_lr


def train(device: str | None = None, seed: int = 0, epochs: int = 20, log=print) -> tuple:
    """Train the digits MLP; returns (model, results dict with the held-out accuracy)."""
    device = device or Device.DEFAULT
    data = load_digits_split(seed)
    model = MLP(64, (128, 64), 10, device=device, seed=seed)
    opt = Adam(model.parameters(), lr=3e-3)
    res = train_classifier(model, opt, data, device, epochs, 64, seed,
                           schedule=lambda s, n: cosine_lr(s, 3e-3, n), log=log)  # fmt: skip
    return model, res


if __name__ == "__main__":
    train()
