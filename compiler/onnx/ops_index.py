"""Indexing ONNX ops: TopK, GatherND, ScatterElements / Scatter / ScatterND (reduction none, add, mul, max,
min). A scatter compares every output position with every update's target (a fused masked reduction over
the updates), so it is one or two kernels and differentiable in the updates and the data."""

from __future__ import annotations

import math

from compiler.dtypes import dtypes
from compiler.tensor import Tensor

from .ops import NodeCtx, op

# multiplicative scatters run one update at a time; more updates than this along the axis are refused
MUL_SCATTER_MAX = 64


def _topk(c: NodeCtx, k: int) -> list[Tensor]:
    x = c.t(0)
    vals, idx = x.topk(k, int(c.attr("axis", -1)), largest=bool(c.attr("largest", 1)))
    return [vals, idx]


op("TopK", since=1)(lambda c: _topk(c, int(c.attr("k"))))
op("TopK", since=10)(lambda c: _topk(c, int(c.host(1).reshape(-1)[0])))


def _fix_negative(idx: Tensor, n) -> Tensor:
    return (idx < 0).where(idx + n, idx)


@op("GatherND", since=11)
def _gather_nd(c):
    x, idx = c.t(0), c.t(1)
    b = int(c.attr("batch_dims", 0))
    k = idx.shape[-1]
    lead, inner, rest = x.shape[:b], x.shape[b:b + k], x.shape[b + k:]
    nb, m, r = math.prod(lead), math.prod(idx.shape[b:-1]), math.prod(rest)
    # the k index columns as one position in the flattened (inner) block, per batch
    strides = [math.prod(inner[j + 1:]) for j in range(k)]
    cols = idx.reshape(nb, m, k)
    lin = sum((_fix_negative(cols[:, :, j], inner[j]) * strides[j] for j in range(k)), start=cols[:, :, 0] * 0)
    flat = x.reshape(nb, math.prod(inner), r)
    out = flat.gather(1, lin.reshape(nb, m, 1).expand(nb, m, r))
    return out.reshape(idx.shape[:-1] + rest)


def _scatter_reduce(data: Tensor, hit: Tensor, upd: Tensor, m_axis: int, reduction: str, c: NodeCtx) -> Tensor:
    """data with the updates applied where hit: hit and upd broadcast to data's shape with the updates' axis
    (size m) inserted at m_axis."""
    any_hit = hit.cast(dtypes.int32).max(m_axis) > 0
    if reduction == "none":  # duplicates: the last update wins, as in ONNX's reference
        m = hit.shape[m_axis]
        j = Tensor.arange(m, device=data.device).reshape((m,) + (1,) * (hit.ndim - m_axis - 1))
        last = hit.where(j, -1).max(m_axis, keepdim=True)
        val = (hit & (j == last)).where(upd, 0).sum(m_axis, dtype=data.dtype)
        return any_hit.where(val, data)
    if reduction == "add":
        return (data + hit.where(upd, 0).sum(m_axis, dtype=data.dtype)).cast(data.dtype)
    if reduction in ("max", "min"):
        sign = 1 if reduction == "max" else -1
        lo = data.dtype.min
        best = hit.where(upd * sign if data.dtype.is_float else (upd if sign > 0 else ~upd), lo).max(m_axis)
        best = best * sign if data.dtype.is_float else (best if sign > 0 else ~best)
        return any_hit.where(data.maximum(best) if sign > 0 else data.minimum(best), data)
    if reduction == "mul":
        m = hit.shape[m_axis]
        if m > MUL_SCATTER_MAX:
            raise c.fail(f"reduction 'mul' with {m} updates along the axis (at most {MUL_SCATTER_MAX})")
        out = data
        for j in range(m):
            sl = [None] * hit.ndim
            sl[m_axis] = (j, j + 1)
            h, u = hit.shrink(sl).squeeze(m_axis), upd.shrink(sl).squeeze(m_axis)
            out = h.where(out * u, out)
        return out
    raise c.fail(f"reduction {reduction!r} is not none, add, mul, max or min")


def _scatter_elements(c: NodeCtx, reduction: str) -> Tensor:
    data, idx, upd = c.t(0), c.t(1), c.t(2).cast(c.t(0).dtype)
    a = int(c.attr("axis", 0))
    a = a + data.ndim if a < 0 else a
    n = data.shape[a]
    # updates smaller than data on the other axes: pad them out with an index that matches nothing
    grow = [(0, 0) if i == a else (0, data.shape[i] - idx.shape[i]) for i in range(data.ndim)]
    idx = _fix_negative(idx, n).pad(grow, value=-1)
    upd = upd.pad(grow)
    # (..., n, m, ...): output position q along the axis against update j
    q = Tensor.arange(n, device=data.device).reshape((n, 1) + (1,) * (data.ndim - a - 1))
    hit = idx.unsqueeze(a) == q
    return _scatter_reduce(data, hit, upd.unsqueeze(a)._broadcast_to(hit.shape), a + 1, reduction, c)


op("ScatterElements", since=11)(lambda c: _scatter_elements(c, c.attr("reduction", "none")))
op("Scatter", since=9)(lambda c: _scatter_elements(c, "none"))


@op("ScatterND", since=11)
def _scatter_nd(c):
    data, idx, upd = c.t(0), c.t(1), c.t(2).cast(c.t(0).dtype)
    k = idx.shape[-1]
    inner, rest = data.shape[:k], data.shape[k:]
    n_pos, m, r = math.prod(inner), math.prod(idx.shape[:-1]), math.prod(rest)
    strides = [math.prod(inner[j + 1:]) for j in range(k)]
    cols = idx.reshape(m, k)
    lin = sum((_fix_negative(cols[:, j], inner[j]) * strides[j] for j in range(k)), start=cols[:, 0] * 0)
    flat, u = data.reshape(n_pos, r), upd.reshape(1, m, r)
    hit = (lin.reshape(1, m, 1) == Tensor.arange(n_pos, device=data.device).reshape(n_pos, 1, 1))
    hit = hit._broadcast_to((n_pos, m, r))
    out = _scatter_reduce(flat, hit, u._broadcast_to((n_pos, m, r)), 1, c.attr("reduction", "none"), c)
    return out.reshape(data.shape)


@op("TensorScatter", since=24)
def _tensor_scatter(c):
    """A key/value-cache write: update's positions along axis land at write_indices[batch] + i (mod the
    cache length when circular)."""
    past, upd = c.t(0), c.t(1).cast(c.t(0).dtype)
    a = int(c.attr("axis", -2)) % past.ndim
    if a == 0:
        raise c.fail("axis 0 is the batch axis; the write position runs along a later axis")
    n, s, b = past.shape[a], upd.shape[a], past.shape[0]
    wi = c.t(2) if c.has(2) else Tensor.zeros(b, dtype=dtypes.int32, device=past.device)
    pos = Tensor.arange(n, device=past.device).reshape((1,) * a + (n,) + (1,) * (past.ndim - a - 1))
    off = pos - wi.cast(dtypes.int32).reshape((b,) + (1,) * (past.ndim - 1))  # (b, 1.., n, 1..)
    if c.attr("mode", "linear") == "circular":
        off = off % n
    elif c.attr("mode", "linear") != "linear":
        raise c.fail(f"mode {c.attr('mode')!r} is not linear or circular")
    valid = (off >= 0) & (off < s)
    src = valid.where(off, 0)._broadcast_to(past.shape[:a] + (n,) + past.shape[a + 1:])
    picked = upd.pad([(0, n - s) if i == a else (0, 0) for i in range(past.ndim)]).gather(a, src)
    return valid.where(picked, past)
