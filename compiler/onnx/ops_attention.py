"""The ONNX `Attention` op (opset 23): scaled dot-product attention with optional masks, causal masking over a
key/value cache, grouped-query heads, softcap and the qk_matmul_output modes, from Tensor methods."""

from __future__ import annotations

import numpy as np

from compiler.tensor import Tensor

from .ops import NodeCtx, op
from .types import held_dtype

NEG_INF = float("-inf")


def _heads(x: Tensor, n: int) -> Tensor:
    """(batch, seq, n * size) as (batch, n, seq, size)."""
    b, s, hidden = x.shape
    return x.reshape(b, s, n, hidden // n).permute(0, 2, 1, 3)


def _repeat_heads(x: Tensor, reps: int) -> Tensor:
    """Each head repeated reps times in place: [h0, h0, h1, h1, ...] (grouped-query attention)."""
    b, h, s, d = x.shape
    return x.reshape(b, h, 1, s, d).expand(b, h, reps, s, d).reshape(b, h * reps, s, d)


def _bias(c: NodeCtx, dtype, q_len: int, kv_len: int, past_len: int) -> Tensor | None:
    """The additive bias (0 where a query may attend a key, -inf where not) from the mask and is_causal, or
    None when every key is attended."""
    mask = c.t(3) if c.has(3) else None
    if mask is not None:
        if mask.shape[-1] < kv_len:  # a mask shorter than the keys: the rest are masked out
            pad = [(0, 0)] * (mask.ndim - 1) + [(0, kv_len - mask.shape[-1])]
            mask = mask.pad(pad, value=False if mask.dtype.name == "bool" else NEG_INF)
        if mask.dtype.name == "bool":
            mask = mask.where(0.0, NEG_INF)
        mask = mask.cast(dtype)
    if not c.attr("is_causal", 0):
        return mask
    allowed = np.arange(kv_len)[None, :] <= np.arange(q_len)[:, None] + past_len  # bottom-right aligned
    causal = Tensor(np.where(allowed, 0.0, NEG_INF).astype(np.float32), device=c.device).cast(dtype)
    return causal if mask is None else mask + causal


@op("Attention", since=23)
def _attention(c: NodeCtx):
    if c.has(6):
        raise c.fail("the nonpad_kv_seqlen input (external key/value cache) is not supported")
    for a in ("left_window_size", "right_window_size"):
        if c.attr(a, -1) >= 0:
            raise c.fail(f"sliding-window attention ({a}) is not supported")
    q, k, v = c.t(0), c.t(1), c.t(2)
    three_d = q.ndim == 3
    if three_d:
        q, k, v = _heads(q, c.attr("q_num_heads")), _heads(k, c.attr("kv_num_heads")), _heads(v, c.attr("kv_num_heads"))
    scale = c.attr("scale", None)
    scale = float(np.sqrt(1.0 / np.sqrt(q.shape[3]) if scale is None else scale))  # on Q and K both, as ONNX
    if c.has(4) != c.has(5):
        raise c.fail("past_key and past_value must be given together")
    past_len = 0
    if c.has(4):
        past_len = c.t(4).shape[2]
        k, v = c.t(4).cat(k, axis=2), c.t(5).cat(v, axis=2)
    present_k, present_v = k, v
    if q.shape[1] != k.shape[1]:
        if q.shape[1] % k.shape[1]:
            raise c.fail(f"{q.shape[1]} query heads are not a multiple of {k.shape[1]} key/value heads")
        k, v = _repeat_heads(k, q.shape[1] // k.shape[1]), _repeat_heads(v, q.shape[1] // k.shape[1])
    qk = (q * scale) @ (k * scale).transpose(-1, -2)
    softcap = c.attr("softcap", 0.0)
    if softcap and softcap > 0:
        qk = (qk / softcap).tanh() * softcap
    bias = _bias(c, q.dtype, q.shape[2], k.shape[2], past_len)
    scores = qk + bias if bias is not None else qk
    mode = c.attr("qk_matmul_output_mode", 0)
    precision = c.attr("softmax_precision", None)
    probs = (scores.cast(held_dtype(precision, f"node {c.name} softmax_precision")) if precision else scores)
    probs = probs.softmax(-1)
    if bias is not None:  # a row with no key to attend gives zeros, not 0/0
        probs = (bias.max(-1, keepdim=True) == NEG_INF).where(0.0, probs)
    probs = probs.cast(q.dtype)
    y = probs @ v
    if three_d:
        b, h, s, d = y.shape
        y = y.permute(0, 2, 1, 3).reshape(b, s, h * d)
    qk_out = {2: scores, 3: probs}.get(mode, qk).cast(q.dtype)
    return [y, present_k, present_v, qk_out][: len(c.node.output)]
