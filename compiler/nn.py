"""Neural-network layers on Tensor: Linear, LayerNorm, Embedding, causal self-attention, a GPT-2 block.

Parameters are Tensors created from a seeded numpy generator, so two processes build identical models.
"""

from __future__ import annotations

import math

import numpy as np

from .tensor import Tensor


def _init(rng: np.random.Generator, shape: tuple, scale: float, device: str | None) -> Tensor:
    return Tensor((rng.standard_normal(shape) * scale).astype(np.float32), device=device)


class Linear:
    """y = x @ weight.T + bias, weight of shape (out_features, in_features) like PyTorch."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device: str | None = None, seed: int = 0
    ):
        rng = np.random.default_rng(seed)
        self.weight = _init(rng, (out_features, in_features), 1 / math.sqrt(in_features), device)
        self.bias = Tensor(np.zeros(out_features, np.float32), device=device) if bias else None

    def __call__(self, x: Tensor) -> Tensor:
        return x.linear(self.weight, self.bias)

    def parameters(self) -> list[Tensor]:
        return [self.weight] + ([self.bias] if self.bias is not None else [])


class LayerNorm:
    """Normalize the last axis to zero mean and unit variance, then scale and shift."""

    def __init__(self, dim: int, eps: float = 1e-5, device: str | None = None):
        self.eps = eps
        self.weight = Tensor(np.ones(dim, np.float32), device=device)
        self.bias = Tensor(np.zeros(dim, np.float32), device=device)

    def __call__(self, x: Tensor) -> Tensor:
        return x.layernorm(-1, self.eps, self.weight, self.bias)

    def parameters(self) -> list[Tensor]:
        return [self.weight, self.bias]


class Embedding:
    """Rows of a (vocab, dim) table looked up by integer indices."""

    def __init__(self, vocab: int, dim: int, device: str | None = None, seed: int = 0):
        self.weight = _init(np.random.default_rng(seed), (vocab, dim), 0.02, device)

    def __call__(self, idx: Tensor) -> Tensor:
        return idx.embedding(self.weight)

    def parameters(self) -> list[Tensor]:
        return [self.weight]


class CausalSelfAttention:
    """Multi-head self-attention with a causal mask (GPT-2 style, fused qkv projection)."""

    def __init__(self, d_model: int, n_heads: int, device: str | None = None, seed: int = 0):
        if d_model % n_heads:
            raise ValueError(f"CausalSelfAttention: d_model {d_model} not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.qkv = Linear(d_model, 3 * d_model, device=device, seed=seed)
        self.proj = Linear(d_model, d_model, device=device, seed=seed + 1)

    def __call__(self, x: Tensor) -> Tensor:
        b, t, c = x.shape
        h, d = self.n_heads, c // self.n_heads
        qkv = self.qkv(x).reshape(b, t, 3, h, d)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))  # (b, h, t, d)
        y = q.scaled_dot_product_attention(k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))

    def parameters(self) -> list[Tensor]:
        return self.qkv.parameters() + self.proj.parameters()


class MLP:
    """Linear -> GELU (tanh approximation) -> Linear."""

    def __init__(self, d_model: int, d_hidden: int, device: str | None = None, seed: int = 0):
        self.fc = Linear(d_model, d_hidden, device=device, seed=seed)
        self.proj = Linear(d_hidden, d_model, device=device, seed=seed + 1)

    def __call__(self, x: Tensor) -> Tensor:
        return self.proj(self.fc(x).gelu())

    def parameters(self) -> list[Tensor]:
        return self.fc.parameters() + self.proj.parameters()


class GPT2Block:
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

    def __call__(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))

    def parameters(self) -> list[Tensor]:
        return self.ln1.parameters() + self.attn.parameters() + self.ln2.parameters() + self.mlp.parameters()
