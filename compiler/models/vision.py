"""Image classifiers: an MLP, a small CNN and a ResNet-style CNN (residual blocks with batch norm)."""

from __future__ import annotations

from .. import nn
from ..tensor import Tensor


class MLP(nn.Module):
    """Flatten -> (Linear -> ReLU) x len(hidden) -> Linear."""

    def __init__(self, in_features: int, hidden: tuple = (128, 64), classes: int = 10, device=None, seed: int = 0):
        sizes = (in_features,) + tuple(hidden)
        self.layers = [nn.Linear(a, b, device=device, seed=seed + i) for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False))]
        self.head = nn.Linear(sizes[-1], classes, device=device, seed=seed + len(sizes))

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        for layer in self.layers:
            x = layer(x).relu()
        return self.head(x)


class SmallCNN(nn.Module):
    """conv3x3(c1) -> ReLU -> maxpool2 -> conv3x3(c2) -> ReLU -> maxpool2 -> Linear, for small images."""

    def __init__(self, in_channels: int = 1, size: int = 8, c1: int = 16, c2: int = 32, classes: int = 10,
                 device=None, seed: int = 0):  # fmt: skip
        self.conv1 = nn.Conv2d(in_channels, c1, 3, padding=1, device=device, seed=seed)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1, device=device, seed=seed + 1)
        self.fc = nn.Linear(c2 * (size // 4) ** 2, classes, device=device, seed=seed + 2)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x).relu().max_pool2d(2)
        x = self.conv2(x).relu().max_pool2d(2)
        return self.fc(x.flatten(1))


class BasicBlock(nn.Module):
    """Two 3x3 conv + batch norm layers with an identity (or 1x1 conv) shortcut, as in ResNet-18."""

    def __init__(self, cin: int, cout: int, stride: int = 1, device=None, seed: int = 0):
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False, device=device, seed=seed)
        self.bn1 = nn.BatchNorm2d(cout, device=device)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False, device=device, seed=seed + 1)
        self.bn2 = nn.BatchNorm2d(cout, device=device)
        self.downsample = (
            nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False, device=device, seed=seed + 2),
                nn.BatchNorm2d(cout, device=device),
            )
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(self.conv1(x)).relu()
        out = self.bn2(self.conv2(out))
        return (out + (self.downsample(x) if self.downsample is not None else x)).relu()


class ResNet(nn.Module):
    """A small ResNet: conv stem + BN, stages of BasicBlocks (the first block of a stage may stride 2),
    global average pooling and a linear classifier."""

    def __init__(self, in_channels: int = 1, widths: tuple = (16, 32), blocks: int = 1, classes: int = 10,
                 device=None, seed: int = 0):  # fmt: skip
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False, device=device, seed=seed)
        self.bn1 = nn.BatchNorm2d(widths[0], device=device)
        layers, cin, s = [], widths[0], seed + 1
        for i, w in enumerate(widths):
            for b in range(blocks):
                layers.append(BasicBlock(cin, w, 2 if (i > 0 and b == 0) else 1, device=device, seed=s))
                cin, s = w, s + 3
        self.layers = layers
        self.fc = nn.Linear(cin, classes, device=device, seed=s)

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn1(self.conv1(x)).relu()
        for blk in self.layers:
            x = blk(x)
        return self.fc(x.mean((2, 3)))
