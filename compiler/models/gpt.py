"""A GPT-2-style decoder: token + position embeddings, N pre-norm blocks, final LayerNorm, and a head tied
to the token embedding (logits = h @ wte.T)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..errors import ShapeError
from ..tensor import Tensor


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of a GPT: vocabulary, context length, layers, heads and model width (MLP is 4x wide)."""

    vocab_size: int = 128
    block_size: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64


class GPT(nn.Module):
    """Token ids (B, T) -> logits (B, T, vocab)."""

    def __init__(self, config: GPTConfig, device=None, seed: int = 0):
        self.config = config
        c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd, device=device, seed=seed)
        self.wpe = nn.Embedding(c.block_size, c.n_embd, device=device, seed=seed + 1)
        self.h = [nn.GPT2Block(c.n_embd, c.n_head, 4 * c.n_embd, device=device, seed=seed + 10 * (i + 1))
                  for i in range(c.n_layer)]  # fmt: skip
        self.ln_f = nn.LayerNorm(c.n_embd, device=device)
        self._pos: dict[int, Tensor] = {}

    def forward(self, idx: Tensor) -> Tensor:
        return self.hidden(idx).matmul(self.wte.weight.T)  # tied head

    def hidden(self, idx: Tensor) -> Tensor:
        """The final LayerNorm's output (B, T, n_embd), the input of the tied head."""
        b, t = idx.shape
        if t > self.config.block_size:
            raise ShapeError(f"GPT: sequence length {t} exceeds block_size {self.config.block_size}")
        if t not in self._pos:
            self._pos[t] = Tensor(np.arange(t, dtype=np.int32), device=idx.device)
        x = self.wte(idx) + self.wpe(self._pos[t]).reshape(1, t, -1)
        for blk in self.h:
            x = blk(x)
        return self.ln_f(x)

    def generate(self, idx: np.ndarray, new_tokens: int, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
        """Sample new_tokens continuations of idx (B, T) autoregressively (no KV cache: a demo)."""
        rng = np.random.default_rng(seed)
        out = np.asarray(idx, np.int32)
        dev = self.wte.weight.device
        with no_grad():
            for _ in range(new_tokens):
                ctx = out[:, -self.config.block_size :]
                logits = self(Tensor(ctx, device=dev))[:, -1].numpy().astype(np.float64) / max(temperature, 1e-6)
                p = np.exp(logits - logits.max(-1, keepdims=True))
                p /= p.sum(-1, keepdims=True)
                nxt = np.array([[rng.choice(len(q), p=q)] for q in p], np.int32)
                out = np.concatenate([out, nxt], 1)
        return out
