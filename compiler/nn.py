"""Neural-network layers on Tensor, shaped like PyTorch's: a Module base with parameters, buffers,
state_dict()/load_state_dict() and train()/eval(), and the layers the example models use.

Parameters are Tensors created from a seeded numpy generator, so two processes build identical models.
Names in a state dict follow PyTorch: attribute paths joined by dots (`layers.0.weight`), with
`running_mean`, `running_var` and `num_batches_tracked` for batch norm.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .autograd import no_grad
from .dtypes import to_dtype
from .errors import ShapeError
from .tensor import Tensor


class StateDictError(KeyError):
    """A state dict does not fit a module: missing or unexpected keys, or a shape mismatch."""

    def __str__(self) -> str:
        return str(self.args[0])


def _init(rng: np.random.Generator, shape: tuple, scale: float, device: str | None) -> Tensor:
    return Tensor((rng.standard_normal(shape) * scale).astype(np.float32), device=device)


def _uniform(rng: np.random.Generator, shape: tuple, bound: float, device: str | None) -> Tensor:
    return Tensor(rng.uniform(-bound, bound, shape).astype(np.float32), device=device)


class Module:
    """Base class: Tensor attributes are parameters (trainable) unless registered as buffers; Module
    attributes and lists of Modules are children, named by attribute and list position."""

    training = True

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, Tensor) and name not in self.__dict__.get("_buffers", ()):
            if value.dtype.is_float and not value.requires_grad and value.is_leaf:
                value.requires_grad = True
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: Tensor) -> None:
        """A tensor saved in the state dict but not trained (batch norm's running statistics)."""
        if "_buffers" not in self.__dict__:
            object.__setattr__(self, "_buffers", set())
        self._buffers.add(name)
        object.__setattr__(self, name, value)

    def _children(self) -> Iterator[tuple[str, object]]:
        for name, v in vars(self).items():
            if name.startswith("_"):
                continue
            if isinstance(v, (list, tuple)):
                for i, m in enumerate(v):
                    if isinstance(m, Module):
                        yield f"{name}.{i}", m
            elif isinstance(v, (Module, Tensor)) and v is not None:
                yield name, v

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every descendant, with dotted names."""
        yield prefix, self
        for name, v in self._children():
            if isinstance(v, Module):
                yield from v.named_modules(f"{prefix}{name}.")

    def modules(self) -> list[Module]:
        return [m for _, m in self.named_modules()]

    def _named_tensors(self, buffers: bool) -> Iterator[tuple[str, Tensor]]:
        seen = set()
        for prefix, m in self.named_modules():
            bufs = m.__dict__.get("_buffers", set())
            for name, v in m._children():
                if isinstance(v, Tensor) and (name in bufs) == buffers and id(v) not in seen:
                    seen.add(id(v))  # a tied weight appears once, under its first name
                    yield prefix + name, v

    def named_parameters(self) -> Iterator[tuple[str, Tensor]]:
        """(name, parameter) pairs in definition order."""
        return self._named_tensors(False)

    def parameters(self) -> list[Tensor]:
        """The trainable tensors (what an optimizer updates)."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        return self._named_tensors(True)

    def state_dict(self) -> dict[str, Tensor]:
        """Every parameter and buffer by its PyTorch-style dotted name."""
        return dict(self.named_parameters()) | dict(self.named_buffers())

    def load_state_dict(self, state: dict, strict: bool = True, assign: bool = False) -> Module:
        """Copy values (Tensors or numpy arrays) into the parameters and buffers with the same names, cast
        to each one's dtype; with assign (PyTorch's name) they take the values' dtypes instead (a BF16
        checkpoint loaded with `load_safetensors(..., keep_bfloat16=True)` gives a bfloat16 model).

        Raises StateDictError naming every missing or unexpected key (strict) and any shape mismatch."""
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys: {', '.join(missing)}")
            if unexpected:
                parts.append(f"unexpected keys: {', '.join(unexpected)}")
            raise StateDictError(f"load_state_dict for {type(self).__name__}: {'; '.join(parts)}")
        for k, t in own.items():
            if k not in state:
                continue
            v = state[k]
            shape = tuple(v.shape)
            if shape != t.shape:
                raise StateDictError(
                    f"load_state_dict for {type(self).__name__}: {k} has shape {shape} in the state dict "
                    f"but {t.shape} in the model"
                )
            arr = v.numpy() if isinstance(v, Tensor) else np.asarray(v)
            with no_grad():
                if assign and to_dtype(arr.dtype) != t.dtype:
                    _retype(t, Tensor(arr, device=t.device))
                else:
                    t.assign(Tensor(arr.astype(t.dtype.np), device=t.device, dtype=t.dtype))
        return self

    def to(self, dtype) -> Module:
        """Every float parameter and buffer converted to dtype in place (`model.to(dtypes.bfloat16)`)."""
        with no_grad():
            for t in self.state_dict().values():
                if t.dtype.is_float:
                    _retype(t, t.cast(dtype).realize())
        return self

    def train(self, mode: bool = True) -> Module:
        """Training mode for this module and its children (dropout drops, batch norm uses batch stats)."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def forward(self, *args):
        raise NotImplementedError(f"{type(self).__name__} defines no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)


def _retype(t: Tensor, value: Tensor) -> None:
    """Make t hold value (of another dtype), keeping whether it is a trained parameter."""
    keep = t.requires_grad
    if keep:
        t.requires_grad = False
    t.node = value.detach().node
    t.grad = None
    if keep and t.dtype.is_float:
        t.requires_grad = True


class Sequential(Module):
    """Modules (or callables) applied in order; parameters named by position (`0.weight`)."""

    def __init__(self, *layers):
        self.layers = list(layers)

    def _children(self):
        for i, m in enumerate(self.layers):
            if isinstance(m, Module):
                yield str(i), m

    def forward(self, x: Tensor) -> Tensor:
        for f in self.layers:
            x = f(x)
        return x

    def __getitem__(self, i: int):
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)


class Linear(Module):
    """y = x @ weight.T + bias, weight of shape (out_features, in_features) like PyTorch."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device: str | None = None, seed: int = 0
    ):
        rng = np.random.default_rng(seed)
        self.weight = _init(rng, (out_features, in_features), 1 / math.sqrt(in_features), device)
        self.bias = Tensor(np.zeros(out_features, np.float32), device=device) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return x.linear(self.weight, self.bias)


class Conv2d(Module):
    """2-d convolution of NCHW input; weight (out, in/groups, kh, kw), PyTorch's uniform init."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        device: str | None = None,
        seed: int = 0,
    ):
        kh, kw = kernel_size if isinstance(kernel_size, (tuple, list)) else (kernel_size, kernel_size)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        rng = np.random.default_rng(seed)
        bound = 1 / math.sqrt(in_channels // groups * kh * kw)
        self.weight = _uniform(rng, (out_channels, in_channels // groups, kh, kw), bound, device)
        self.bias = _uniform(rng, (out_channels,), bound, device) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return x.conv2d(self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class LayerNorm(Module):
    """Normalize the last axis to zero mean and unit variance, then scale and shift."""

    def __init__(self, dim: int, eps: float = 1e-5, device: str | None = None):
        self.eps = eps
        self.weight = Tensor(np.ones(dim, np.float32), device=device)
        self.bias = Tensor(np.zeros(dim, np.float32), device=device)

    def forward(self, x: Tensor) -> Tensor:
        return x.layernorm(-1, self.eps, self.weight, self.bias)


class RMSNorm(Module):
    """x / sqrt(mean(x^2) + eps) over the last axis, times a learned scale."""

    def __init__(self, dim: int, eps: float = 1e-6, device: str | None = None):
        self.eps = eps
        self.weight = Tensor(np.ones(dim, np.float32), device=device)

    def forward(self, x: Tensor) -> Tensor:
        x = x.float()
        return x * ((x * x).mean(-1, keepdim=True) + self.eps).rsqrt() * self.weight


class GroupNorm(Module):
    """Normalize each of num_groups channel groups of an (N, C, ...) input, then a per-channel affine."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, device: str | None = None):
        if num_channels % num_groups:
            raise ShapeError(f"GroupNorm: {num_channels} channels do not split into {num_groups} groups")
        self.num_groups, self.eps = num_groups, eps
        self.weight = Tensor(np.ones(num_channels, np.float32), device=device)
        self.bias = Tensor(np.zeros(num_channels, np.float32), device=device)

    def forward(self, x: Tensor) -> Tensor:
        n, c = x.shape[:2]
        g = x.reshape(n, self.num_groups, -1).layernorm(-1, self.eps).reshape(x.shape)
        shape = (1, c) + (1,) * (x.ndim - 2)
        return g * self.weight.reshape(shape) + self.bias.reshape(shape)


class BatchNorm2d(Module):
    """Batch norm over (N, H, W) per channel: batch statistics while training (updating the running
    mean and unbiased variance with `momentum`), the running statistics in eval mode."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, device: str | None = None):
        self.eps, self.momentum = eps, momentum
        self.weight = Tensor(np.ones(num_features, np.float32), device=device)
        self.bias = Tensor(np.zeros(num_features, np.float32), device=device)
        self.register_buffer("running_mean", Tensor(np.zeros(num_features, np.float32), device=device))
        self.register_buffer("running_var", Tensor(np.ones(num_features, np.float32), device=device))
        self.register_buffer("num_batches_tracked", Tensor(np.zeros((), np.int32), device=device))

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x.batchnorm(self.weight, self.bias, self.running_mean, self.running_var, self.eps)
        axes = (0,) + tuple(range(2, x.ndim))
        n = x.numel() // x.shape[1]
        mean = x.mean(axes)
        var = ((x - mean.reshape(1, -1, *([1] * (x.ndim - 2)))) ** 2).mean(axes)
        with no_grad():
            m = self.momentum
            self.running_mean.assign(self.running_mean * (1 - m) + mean.detach() * m)
            self.running_var.assign(self.running_var * (1 - m) + var.detach() * (m * n / max(n - 1, 1)))
            self.num_batches_tracked.assign(self.num_batches_tracked + 1)
        # realized now, so the statistics never chain across steps (their batch values are kernels anyway)
        self.running_mean.realize(self.running_var, self.num_batches_tracked)
        return x.batchnorm(self.weight, self.bias, mean, var, self.eps)


class Dropout(Module):
    """Zero elements with probability p while training (scaling the rest by 1/(1-p))."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return x.dropout(self.p, training=self.training)


class Embedding(Module):
    """Rows of a (vocab, dim) table looked up by integer indices (a gather, not a one-hot product)."""

    def __init__(self, vocab: int, dim: int, device: str | None = None, seed: int = 0):
        self.weight = _init(np.random.default_rng(seed), (vocab, dim), 0.02, device)

    def forward(self, idx: Tensor) -> Tensor:
        if idx.dtype.is_float:
            raise ShapeError(f"Embedding: indices must be integers, got {idx.dtype.name}; use .int()")
        return idx.embedding(self.weight)


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class GELU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.gelu()


class Flatten(Module):
    """Merge all axes after the first (batch) axis."""

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1)


class MaxPool2d(Module):
    def __init__(self, kernel_size=2, stride=None, padding=0):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return x.max_pool2d(self.kernel_size, self.stride, self.padding)


class CausalSelfAttention(Module):
    """Multi-head self-attention with a causal mask (GPT-2 style, fused qkv projection)."""

    def __init__(self, d_model: int, n_heads: int, device: str | None = None, seed: int = 0):
        if d_model % n_heads:
            raise ValueError(f"CausalSelfAttention: d_model {d_model} not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.qkv = Linear(d_model, 3 * d_model, device=device, seed=seed)
        self.proj = Linear(d_model, d_model, device=device, seed=seed + 1)

    def forward(self, x: Tensor) -> Tensor:
        b, t, c = x.shape
        h, d = self.n_heads, c // self.n_heads
        qkv = self.qkv(x).reshape(b, t, 3, h, d)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))  # (b, h, t, d)
        y = q.scaled_dot_product_attention(k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class MLP(Module):
    """Linear -> GELU (tanh approximation) -> Linear."""

    def __init__(self, d_model: int, d_hidden: int, device: str | None = None, seed: int = 0):
        self.fc = Linear(d_model, d_hidden, device=device, seed=seed)
        self.proj = Linear(d_hidden, d_model, device=device, seed=seed + 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.fc(x).gelu())


class GPT2Block(Module):
    """x + attn(ln1(x)), then + mlp(ln2(.)): one pre-norm transformer block of GPT-2."""

    def __init__(
        self,
        d_model: int = 768,
        n_heads: int = 12,
        d_hidden: int = 3072,
        device: str | None = None,
        seed: int = 0,
    ):
        self.ln1 = LayerNorm(d_model, device=device)
        self.attn = CausalSelfAttention(d_model, n_heads, device=device, seed=seed)
        self.ln2 = LayerNorm(d_model, device=device)
        self.mlp = MLP(d_model, d_hidden, device=device, seed=seed + 2)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


__all__ = [
    "Module", "Sequential", "Linear", "Conv2d", "LayerNorm", "RMSNorm", "GroupNorm", "BatchNorm2d", "Dropout",
    "Embedding", "ReLU", "GELU", "Flatten", "MaxPool2d", "CausalSelfAttention", "MLP", "GPT2Block",
    "StateDictError",
]  # fmt: skip
