"""Resampling one axis at a time (nearest, linear, cubic; ONNX Resize's coordinate modes, antialiasing): the
source positions and weights of each output position are computed on the host, and the tensor side is a
gather plus a weighted sum over the taps, so a resize fuses and is differentiable like any other op."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
               "tf_half_pixel_for_nn", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "simple")
MODES = ("nearest", "linear", "cubic")


@dataclass
class Taps:
    """Where each output position of one axis reads: idx (out, T) source indices (clamped to the axis), w
    (out, T) weights or None for nearest (one tap), outside (out,) bool or None: positions that take the
    extrapolation value (tf_crop_and_resize)."""

    idx: np.ndarray
    w: np.ndarray | None
    outside: np.ndarray | None


def source_coords(coord: str, n_in: int, n_out: int, scale: float, roi: tuple[float, float] | None) -> np.ndarray:
    """The (float64) source coordinate of each output position under an ONNX coordinate_transformation_mode."""
    y = np.arange(n_out, dtype=np.float64)
    length = scale * n_in  # the output length before rounding, as ONNX defines it
    if coord == "align_corners":
        return np.zeros(n_out) if length == 1 else y * (n_in - 1) / (length - 1)
    if coord == "asymmetric":
        return y / scale
    if coord == "tf_crop_and_resize":
        lo, hi = roi if roi is not None else (0.0, 1.0)
        if length == 1:
            return np.full(n_out, (hi - lo) * (n_in - 1) / 2 + lo * (n_in - 1))
        return y * (hi - lo) * (n_in - 1) / (length - 1) + lo * (n_in - 1)
    if coord == "pytorch_half_pixel":
        return np.full(n_out, -0.5) if length == 1 else (y + 0.5) / scale - 0.5
    if coord == "tf_half_pixel_for_nn":
        return (y + 0.5) / scale
    if coord == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / length)
        return offset + (y + 0.5) / scale - 0.5
    if coord == "half_pixel":
        return (y + 0.5) / scale - 0.5
    raise ValueError(f"coordinate transformation mode {coord!r} is not one of {', '.join(COORD_MODES)}")


def _cubic(d: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter a at distances d."""
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def axis_taps(n_in: int, n_out: int, scale: float, mode: str = "nearest", coord: str = "half_pixel",
              nearest_mode: str = "round_prefer_floor", cubic_a: float = -0.75, exclude_outside: bool = False,
              antialias: bool = False, roi: tuple[float, float] | None = None) -> Taps:
    """The taps of one resized axis of n_in -> n_out positions at the given scale (output / input)."""
    x = source_coords(coord, n_in, n_out, scale, roi)
    outside = ((x < 0) | (x > n_in - 1)) if coord == "tf_crop_and_resize" else None
    # the left neighbour, and the fraction towards the right one in (0, 1]: an exact position counts as
    # fraction 1 of the pixel before it, so ties between taps resolve towards the lower index
    base = np.floor(x)
    frac = x - base
    exact = frac == 0
    base = np.where(exact, base - 1, base).astype(np.int64)
    frac = np.where(exact, 1.0, frac)
    if mode == "nearest":
        if nearest_mode == "simple":  # opset 10 / Upsample (onnxruntime): floor, or ceil when shrinking
            nearest_mode = "ceil" if scale < 1 else "floor"
        right = {"round_prefer_floor": frac > 0.5, "round_prefer_ceil": frac >= 0.5, "floor": exact,
                 "ceil": np.ones_like(exact)}.get(nearest_mode)
        if right is None:
            raise ValueError(f"nearest mode {nearest_mode!r} is not one of {', '.join(NEAREST_MODES)}")
        idx = np.clip(base + right, 0, n_in - 1)[:, None]
        return Taps(idx.astype(np.int32), None, outside)
    s = min(scale, 1.0) if antialias else 1.0  # antialiasing widens the kernel by 1/scale when shrinking
    if mode == "linear":
        first = int(math.floor(-1 / s)) + 1
    elif mode == "cubic":
        first = int(math.floor(-2 / s)) + 1
    else:
        raise ValueError(f"resize mode {mode!r} is not one of {', '.join(MODES)}")
    offs = np.arange(first, 2 - first)  # tap offsets from the left neighbour: an even count, centred
    dist = (offs[None, :] - frac[:, None]) * s
    w = np.clip(1 - np.abs(dist), 0, 1) if mode == "linear" else _cubic(dist, cubic_a)
    if antialias:
        w = w / w.sum(1, keepdims=True)
    src = base[:, None] + offs[None, :]
    if exclude_outside:
        w = np.where((src < 0) | (src >= n_in), 0.0, w)
        tot = w.sum(1, keepdims=True)
        w = w / np.where(tot == 0, 1.0, tot)
    return Taps(np.clip(src, 0, n_in - 1).astype(np.int32), w, outside)


def resample_axis(x, axis: int, taps: Taps, extrapolation_value: float = 0.0):
    """x (a Tensor) with `axis` resampled through taps: a gather, then the weighted sum over the taps."""
    n_out, t = taps.idx.shape
    # a gather with the host indices broadcast as a view (not x.take, whose negative-index fix-up is a
    # computed value that would be realized as its own kernel before broadcasting)
    p, n, q = math.prod(x.shape[:axis]), x.shape[axis], math.prod(x.shape[axis + 1:])
    m = n_out * t
    idx = type(x)(taps.idx.reshape(1, m, 1), device=x.device).expand(p, m, q)
    y = x.reshape(p, n, q).gather(1, idx).reshape(x.shape[:axis] + (m,) + x.shape[axis + 1:])
    if taps.w is not None:
        shape = x.shape[:axis] + (n_out, t) + x.shape[axis + 1:]
        wshape = (1,) * axis + (n_out, t) + (1,) * (x.ndim - axis - 1)
        y = y.reshape(shape)
        src_dt = y.dtype
        y = y if src_dt.is_float else y.float()
        w = type(x)(taps.w.astype(np.float32).reshape(wshape), device=x.device).cast(y.dtype)
        y = (y * w).sum(axis + 1)
        if not src_dt.is_float:  # integer images: round half to even and saturate, as ONNX casts back
            info = np.iinfo(src_dt.np)
            f = y.floor()
            d = y - f
            up = (d > 0.5) | ((d == 0.5) & ((f * 0.5).floor() * 2 != f))
            y = up.where(f + 1, f).clip(float(info.min), float(info.max)).cast(src_dt)
    if taps.outside is not None and taps.outside.any():
        mshape = (1,) * axis + (n_out,) + (1,) * (x.ndim - axis - 1)
        # x's own class builds the constants: tensor.py imports this module, so it cannot import tensor
        y = type(x)(taps.outside.reshape(mshape), device=x.device).where(
            type(x).full((), extrapolation_value, dtype=y.dtype, device=x.device), y)
    return y
