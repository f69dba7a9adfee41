"""Train a small ResNet (residual blocks with batch norm) on sklearn's digits on the default device:
`python examples/train_resnet.py`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from digits import load_digits_split, train_classifier

from compiler import Device
from compiler.models import ResNet
from compiler.optim import SGD, cosine_lr


def train(device: str | None = None, seed: int = 0, epochs: int = 10, log=print) -> tuple:
    """Train the digits ResNet with SGD + Nesterov momentum; returns (model, results)."""
    device = device or Device.DEFAULT
    data = load_digits_split(seed)
    model = ResNet(1, (16, 32), blocks=1, classes=10, device=device, seed=seed)
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    res = train_classifier(model, opt, data, device, epochs, 64, seed,
                           schedule=lambda s, n: cosine_lr(s, 0.05, n, warmup_steps=20), log=log)  # fmt: skip
    return model, res


if __name__ == "__main__":
    train()
