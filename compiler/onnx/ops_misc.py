"""Smaller ONNX ops: CumProd, Atan/Asin/Acos, CenterCropPad, Compress, NonZero, SwiGLU, AffineGrid,
RotaryEmbedding, NonMaxSuppression, Unique, BitCast, Det."""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto, helper

from compiler.tensor import Tensor

from .ops import _f, op
from .types import held_dtype


@op("CumProd")
def _cumprod(c):
    """Running product as a log-depth scan (each step multiplies in the value 2^k places back), so integer
    products stay exact."""
    x = c.t(0)
    a = int(c.host(1).item())
    a = a + x.ndim if a < 0 else a
    n = x.shape[a]
    if c.attr("reverse", 0):
        x = x.flip(a)
    if c.attr("exclusive", 0):  # shift one place: 1, x0, x0*x1, ...
        x = x.shrink([(0, n - 1) if i == a else None for i in range(x.ndim)]).pad(
            [(1, 0) if i == a else (0, 0) for i in range(x.ndim)], value=1)
    out, k = x, 1
    while k < n:
        back = out.shrink([(0, n - k) if i == a else None for i in range(x.ndim)]).pad(
            [(k, 0) if i == a else (0, 0) for i in range(x.ndim)], value=1)
        out, k = (out * back).cast(x.dtype), 2 * k
    return out.flip(a) if c.attr("reverse", 0) else out


# arctan on [-1, 1]: Abramowitz-Stegun 4.4.49 (|error| <= 2e-8), odd powers x^1..x^15
_ATAN = (0.9999993329, -0.3332985605, 0.1994653599, -0.1390853351, 0.0964200441, -0.0559098861, 0.0218612288,
         -0.0040540580)


def atan(x: Tensor) -> Tensor:
    """arctan from arithmetic: the A-S polynomial on |x| <= 1, pi/2 - atan(1/x) beyond."""
    x = _f(x)
    big = x.abs() > 1
    t = big.where(1 / x, x)
    t2 = t * t
    poly = _ATAN[-1]
    for a in reversed(_ATAN[:-1]):
        poly = poly * t2 + a
    r = poly * t
    return big.where(x.sign() * (math.pi / 2) - r, r)


def asin(x: Tensor) -> Tensor:
    """arcsin(x) = atan(x / sqrt(1 - x^2)) (1/0 at |x| = 1 gives +-pi/2 through atan's reduction)."""
    x = _f(x)
    return atan(x / (1 - x * x).sqrt())


for _n, _fn in {"Atan": atan, "Asin": asin, "Acos": lambda x: math.pi / 2 - asin(x)}.items():
    op(_n, since=7)(lambda c, fn=_fn: fn(c.t(0)))


@op("CenterCropPad", since=18)
def _center_crop_pad(c):
    x = c.t(0)
    shape = c.ints(1)
    axes = c.attr("axes")
    axes = [a % x.ndim for a in axes] if axes is not None else list(range(x.ndim))
    crop, pad = [None] * x.ndim, [(0, 0)] * x.ndim
    for a, s in zip(axes, shape, strict=True):
        d = x.shape[a] - s
        if d > 0:  # crop, the odd pixel off the end
            crop[a] = (d // 2, d // 2 + s)
        elif d < 0:
            pad[a] = (-d // 2, -d - -d // 2)
    return x.shrink(crop).pad(pad)


@op("Compress", since=9)
def _compress(c):
    """Slices where a condition holds; the condition is read on the host (the output size depends on it)."""
    x = c.t(0)
    cond = np.flatnonzero(c.host(1).reshape(-1).astype(bool)).astype(np.int32)
    a = c.attr("axis")
    if a is None:
        x, a = x.reshape(-1), 0
    return x.take(cond, axis=int(a))


@op("NonZero", since=9)
def _nonzero(c):
    """Indices of the non-zero elements, (rank, count) int64; the input is read on the host (its values
    decide the output shape)."""
    return np.stack(np.nonzero(c.host(0)), axis=0).astype(np.int64).reshape(len(c.host(0).shape), -1)


@op("SwiGLU")
def _swiglu(c):
    a, b = c.t(0), c.t(1)
    alpha = float(c.attr("alpha", 1.0))
    return (a * (a.float() * alpha).sigmoid().cast(a.dtype) * b).cast(a.dtype)


@op("AffineGrid", since=20)
def _affine_grid(c):
    """The sampling grid of an affine transform: theta (N, 2, 3) or (N, 3, 4) times the normalized output
    coordinates (x first, as GridSample reads them)."""
    theta = _f(c.t(0))
    size = c.ints(1)
    sp = size[2:]
    align = bool(c.attr("align_corners", 0))
    axes = []
    for s in sp:
        i = np.arange(s, dtype=np.float64)
        axes.append(np.zeros(1) if s == 1 and align else (2 * i / (s - 1) - 1 if align else (2 * i + 1) / s - 1))
    mesh = np.meshgrid(*axes, indexing="ij")  # (D,) H, W coordinates
    homo = np.stack([m for m in reversed(mesh)] + [np.ones_like(mesh[0])], axis=-1).reshape(-1, len(sp) + 1)
    base = Tensor(homo.astype(np.float32), device=c.device).cast(theta.dtype)
    n = theta.shape[0]
    grid = base.unsqueeze(0).matmul(theta.transpose(1, 2))  # (N, points, dims)
    return grid.reshape((n, *sp, len(sp)))



@op("RotaryEmbedding", since=23)
def _rotary(c):
    """Rotary position embedding of (batch, heads, seq, head) or (batch, seq, hidden) input: pairs of
    channels (halves, or neighbours when interleaved) rotated by the cached cos/sin of each position."""
    x0 = c.t(0)
    x = x0.permute(0, 2, 1, 3) if x0.ndim == 4 else x0
    b, s = x.shape[:2]
    if x.ndim == 3:
        heads = int(c.attr("num_heads", 0))
        if not heads:
            raise c.fail("3-d input needs the num_heads attribute")
        x = x.reshape(b, s, heads, x.shape[2] // heads)
    head = x.shape[3]
    dim = int(c.attr("rotary_embedding_dim", 0)) or head
    cos, sin = c.t(1), c.t(2)
    if c.has(3):
        pos = c.t(3)
        cos, sin = cos.take(pos, axis=0), sin.take(pos, axis=0)  # (batch, seq, dim / 2)
    cos, sin = cos.cast(x.dtype).unsqueeze(2), sin.cast(x.dtype).unsqueeze(2)
    rot, keep = x[..., :dim], x[..., dim:]
    half = dim // 2
    if c.attr("interleaved", 0):
        pairs = rot.reshape(b, s, x.shape[2], half, 2)
        x1, x2 = pairs[..., 0], pairs[..., 1]
    else:
        x1, x2 = rot[..., :half], rot[..., half:]
    real, imag = cos * x1 - sin * x2, sin * x1 + cos * x2
    if c.attr("interleaved", 0):
        rot = Tensor.stack([real, imag], axis=-1).reshape(rot.shape)
    else:
        rot = Tensor.cat([real, imag], axis=-1)
    out = Tensor.cat([rot, keep], axis=-1) if dim < head else rot
    return out.reshape(x0.shape) if x0.ndim == 3 else out.permute(0, 2, 1, 3)




def _box_edges(b: Tensor, center: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(x_min, x_max, y_min, y_max) of boxes (..., 4): corners [y1, x1, y2, x2] in any order, or centre+size."""
    if center:
        xc, yc, w, h = (b[..., i] for i in range(4))
        return xc - w / 2, xc + w / 2, yc - h / 2, yc + h / 2
    y1, x1, y2, x2 = (b[..., i] for i in range(4))
    return x1.minimum(x2), x1.maximum(x2), y1.minimum(y2), y1.maximum(y2)


@op("NonMaxSuppression", since=10)
def _nms(c):
    """Greedy non-maximum suppression. The pairwise overlap test (IoU > threshold, every pair of boxes) runs
    on the device; the greedy pass over it, whose output size depends on the data, runs on the host."""
    boxes, scores = _f(c.t(0)), c.host(1).astype(np.float32)
    max_out = int(c.host(2).reshape(-1)[0]) if c.has(2) and c.host(2).size else 0
    iou_thr = float(c.host(3).reshape(-1)[0]) if c.has(3) and c.host(3).size else 0.0
    score_thr = float(c.host(4).reshape(-1)[0]) if c.has(4) and c.host(4).size else None
    x0, x1, y0, y1 = _box_edges(boxes, bool(c.attr("center_point_box", 0)))
    ix = x1.unsqueeze(-1).minimum(x1.unsqueeze(-2)) - x0.unsqueeze(-1).maximum(x0.unsqueeze(-2))
    iy = y1.unsqueeze(-1).minimum(y1.unsqueeze(-2)) - y0.unsqueeze(-1).maximum(y0.unsqueeze(-2))
    area = (x1 - x0) * (y1 - y0)
    inter = ix.relu() * iy.relu()
    union = area.unsqueeze(-1) + area.unsqueeze(-2) - inter
    ok = (ix > 0) & (iy > 0) & (area.unsqueeze(-1) > 0) & (area.unsqueeze(-2) > 0) & (union > 0)
    suppress = (ok & (inter > union * iou_thr)).numpy()  # (batch, boxes, boxes)
    out = []
    for b in range(scores.shape[0]):
        for k in range(scores.shape[1]):
            s = scores[b, k]
            cand = [i for i in np.argsort(-s, kind="stable") if score_thr is None or s[i] > score_thr]
            chosen: list[int] = []
            for i in cand:
                if len(chosen) >= max_out:
                    break
                if not any(suppress[b, i, j] for j in chosen):
                    chosen.append(int(i))
            out += [(b, k, i) for i in chosen]
    return np.asarray(out, dtype=np.int64).reshape(-1, 3)


@op("Unique", since=11)
def _unique(c):
    """Unique values (or slices along axis), first-occurrence indices, inverse indices and counts. The input
    is read on the host (the output size depends on its values); Y is then gathered from the device input."""
    x = c.t(0)
    a = c.attr("axis")
    host = c.host(0)
    if a is None:
        host, x, a = host.reshape(-1), x.reshape(-1), 0
    a = int(a) % host.ndim
    _, idx, inv, counts = np.unique(host, return_index=True, return_inverse=True, return_counts=True, axis=a)
    if not c.attr("sorted", 1):  # first-occurrence order instead of sorted order
        order = np.argsort(idx, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        idx, inv, counts = idx[order], rank[inv.reshape(-1)], counts[order]
    y = x.take(idx.astype(np.int32), axis=a)
    return [y] + [v.reshape(-1).astype(np.int64) for v in (idx, inv, counts)][: len(c.node.output) - 1]


# integer/bool BitCasts between types of one width, as arithmetic on the held values (two's complement)
_WRAP = {(TensorProto.INT8, TensorProto.UINT8), (TensorProto.UINT8, TensorProto.INT8),
         (TensorProto.BOOL, TensorProto.UINT8), (TensorProto.INT16, TensorProto.UINT16),
         (TensorProto.UINT16, TensorProto.INT16), (TensorProto.INT32, TensorProto.UINT32),
         (TensorProto.UINT32, TensorProto.INT32)}


@op("BitCast", since=26)
def _bitcast(c):
    x = c.t(0)
    to = int(c.attr("to"))
    src = {"int8": TensorProto.INT8, "uint8": TensorProto.UINT8, "bool": TensorProto.BOOL}.get(x.dtype.name)
    if src is None and isinstance(c.ins[0], np.ndarray):
        src = helper.np_dtype_to_tensor_dtype(c.ins[0].dtype)
    if src is None and x.dtype.name == "int32":  # held int32: which 32/16-bit type is not known here
        src = {TensorProto.UINT16: TensorProto.INT16, TensorProto.INT16: TensorProto.UINT16,
               TensorProto.UINT32: TensorProto.INT32, TensorProto.INT32: TensorProto.UINT32}.get(to)
    if (src, to) not in _WRAP:
        raise c.fail(f"BitCast to {TensorProto.DataType.Name(to)} from {x.dtype.name}: only same-width integer"
                     " and bool reinterpretations are supported (float bits have no compiler op)")
    if to in (TensorProto.INT16, TensorProto.UINT16):
        half = 32768 if to == TensorProto.INT16 else 0
        return (x >= half).where(x - 65536, x) if half else (x < 0).where(x + 65536, x)
    return x.cast(held_dtype(to, f"node {c.name} to"))


@op("Det", since=11)
def _det(c):
    """Determinants of (..., n, n) matrices by Gaussian elimination with partial pivoting, unrolled over the
    (static) n: each step swaps the largest remaining entry of the column into place by one-hot selection."""
    x = c.t(0)
    a = _f(x)
    n = a.shape[-1]
    det = None
    for k in range(n):
        sub = a  # the rows still to eliminate, (..., n - k, n)
        m = n - k
        p = sub[..., :, k].abs().argmax(-1)  # (...,) the pivot's row within sub
        pick = (p.unsqueeze(-1) == Tensor.arange(m, device=a.device)).unsqueeze(-1)  # (..., m, 1)
        prow = pick.where(sub, 0.0).sum(-2)  # (..., n)
        rows = pick.where(sub[..., :1, :], sub)  # the pivot's old place gets row k
        piv = prow[..., k]
        sign = (p != 0).where(-1.0, 1.0)
        det = sign * piv if det is None else det * sign * piv
        if k == n - 1:
            break
        safe = (piv == 0).where(1.0, piv)
        rest = rows[..., 1:, :] - (rows[..., 1:, k] / safe.unsqueeze(-1)).unsqueeze(-1) * prow.unsqueeze(-2)
        a = rest
    return det.cast(x.dtype if x.dtype.is_float else a.dtype)
