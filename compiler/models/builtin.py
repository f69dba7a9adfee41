"""The project's built-in models (mlp, cnn, gpt2-block) as small layer lists that run on any device.

Parameters are seeded numpy arrays, turned into Tensors on the device of the input the first time a layer
runs there, so one model object runs unchanged on REF, CL and SIM. `compiler.quantize` reads the same layers.
"""

from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor

__all__ = ["Linear", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Sequential", "mlp", "cnn", "gpt2_block",
           "BUILTIN", "build"]


class _Params:
    """numpy parameters, materialized as Tensors once per device."""

    def _t(self, name: str, device: str) -> Tensor:
        cache = self.__dict__.setdefault("_tensors", {})
        key = (name, device)
        if key not in cache:
            cache[key] = Tensor(getattr(self, name), device=device)
        return cache[key]


class Linear(_Params):
    """y = x @ weight.T + bias; weight (out, in) like PyTorch."""

    def __init__(self, d_in: int, d_out: int, rng: np.random.Generator):
        self.weight = (rng.standard_normal((d_out, d_in)) / math.sqrt(d_in)).astype(np.float32)
        self.bias = (rng.standard_normal(d_out) * 0.1).astype(np.float32)

    def __call__(self, x: Tensor) -> Tensor:
        return x.linear(self._t("weight", x.device), self._t("bias", x.device))


class Conv2d(_Params):
    """2-d convolution of NCHW input, weight (cout, cin, k, k), zero padding."""

    def __init__(self, cin: int, cout: int, k: int, rng: np.random.Generator, padding: int = 0, stride: int = 1):
        self.weight = (rng.standard_normal((cout, cin, k, k)) / math.sqrt(cin * k * k)).astype(np.float32)
        self.bias = (rng.standard_normal(cout) * 0.1).astype(np.float32)
        self.padding, self.stride = padding, stride

    def __call__(self, x: Tensor) -> Tensor:
        return x.conv2d(self._t("weight", x.device), self._t("bias", x.device), stride=self.stride,
                        padding=self.padding)


class ReLU:
    def __call__(self, x: Tensor) -> Tensor:
        return x.relu()


class MaxPool2d:
    def __init__(self, k: int = 2):
        self.k = k

    def __call__(self, x: Tensor) -> Tensor:
        return x.max_pool2d(self.k)


class Flatten:
    def __call__(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], -1)


class Sequential:
    """Layers applied in order; `input_shape` is the shape of one sample batch the model expects."""

    def __init__(self, name: str, layers: list, input_shape: tuple, classifier: bool = False):
        self.name, self.layers, self.input_shape, self.classifier = name, layers, input_shape, classifier

    def __call__(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def sample_input(self, seed: int = 1, batch: int | None = None) -> np.ndarray:
        """Seeded input of the model's shape (standard normal)."""
        shape = ((batch,) + tuple(self.input_shape[1:])) if batch else self.input_shape
        return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def mlp(batch: int = 64, d_in: int = 512, d_hidden: int = 1024, d_out: int = 512, seed: int = 0) -> Sequential:
    """Linear -> ReLU -> Linear (the demo's model); its outputs read as class scores for top-1 agreement."""
    rng = np.random.default_rng(seed)
    return Sequential("mlp", [Linear(d_in, d_hidden, rng), ReLU(), Linear(d_hidden, d_out, rng)],
                      (batch, d_in), classifier=True)


def cnn(batch: int = 8, channels: int = 3, size: int = 16, classes: int = 10, seed: int = 0) -> Sequential:
    """conv3x3(8) -> relu -> maxpool2 -> conv3x3(16) -> relu -> maxpool2 -> flatten -> linear(classes)."""
    rng = np.random.default_rng(seed)
    feat = 16 * (size // 4) * (size // 4)
    return Sequential("cnn", [Conv2d(channels, 8, 3, rng, padding=1), ReLU(), MaxPool2d(2),
                              Conv2d(8, 16, 3, rng, padding=1), ReLU(), MaxPool2d(2), Flatten(),
                              Linear(feat, classes, rng)], (batch, channels, size, size), classifier=True)


class _Block(_Params):
    """nn.GPT2Block built on the first device it sees (its parameters are Tensors)."""

    def __init__(self, d_model: int, n_heads: int, d_hidden: int, seed: int):
        self.args = (d_model, n_heads, d_hidden, seed)
        self.blocks: dict[str, object] = {}

    def __call__(self, x: Tensor) -> Tensor:
        from ..nn import GPT2Block

        if x.device not in self.blocks:
            d, h, f, s = self.args
            self.blocks[x.device] = GPT2Block(d, h, f, device=x.device, seed=s)
        return self.blocks[x.device](x)


def gpt2_block(t: int = 128, d_model: int = 768, n_heads: int = 12, d_hidden: int = 3072, seed: int = 0) -> Sequential:
    """One GPT-2-small transformer block on a (1, T, d_model) input."""
    return Sequential("gpt2-block", [_Block(d_model, n_heads, d_hidden, seed)], (1, t, d_model))


BUILTIN = {"mlp": mlp, "cnn": cnn, "gpt2-block": gpt2_block}


def build(name: str, **kw) -> Sequential:
    """A built-in model by name (mlp, cnn, gpt2-block)."""
    if name not in BUILTIN:
        raise ValueError(f"unknown model {name!r}; built in: {', '.join(BUILTIN)} (or a Python file defining model())")
    return BUILTIN[name](**kw)
