"""Spatial ONNX ops that resample or transpose convolutions: Resize (opsets 10-19), Upsample, ConvTranspose,
GridSample."""

from __future__ import annotations

import math

import numpy as np

from compiler.dtypes import dtypes
from compiler.resample import COORD_MODES, MODES, NEAREST_MODES, axis_taps, resample_axis
from compiler.tensor import Tensor

from .ops import NodeCtx, _f, op


def _opt(c: NodeCtx, i: int) -> np.ndarray | None:
    """Optional input i as a host array, or None when omitted or empty (Resize's unused roi/scales/sizes)."""
    if not c.has(i):
        return None
    v = c.host(i)
    return v if v.size else None


def _resize(c: NodeCtx, x: Tensor, scales, sizes, roi, mode: str, coord: str, nearest: str) -> Tensor:
    r = x.ndim
    axes = c.attr("axes") if c.opset >= 18 else None
    axes = [a + r if a < 0 else a for a in axes] if axes is not None else list(range(r))
    if mode not in MODES:
        raise c.fail(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if coord not in COORD_MODES:
        raise c.fail(f"coordinate_transformation_mode {coord!r} is not one of {', '.join(COORD_MODES)}")
    if nearest not in NEAREST_MODES:
        raise c.fail(f"nearest_mode {nearest!r} is not one of {', '.join(NEAREST_MODES)}")
    antialias = bool(c.attr("antialias", 0)) and mode != "nearest"
    ins = [x.shape[a] for a in axes]
    if sizes is not None:
        sizes = [int(s) for s in np.asarray(sizes).reshape(-1)]
        if len(sizes) != len(axes):
            raise c.fail(f"sizes has {len(sizes)} values for {len(axes)} resized axes of input {x.shape}")
        sc = [s / i for s, i in zip(sizes, ins, strict=True)]
        policy = c.attr("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            if policy not in ("not_larger", "not_smaller"):
                raise c.fail(f"keep_aspect_ratio_policy {policy!r} is not stretch, not_larger or not_smaller")
            s = min(sc) if policy == "not_larger" else max(sc)
            sc = [s] * len(axes)
            sizes = [int(s * i + 0.5) for i in ins]
    elif scales is not None:
        sc = [float(s) for s in np.asarray(scales, dtype=np.float64).reshape(-1)]
        if len(sc) != len(axes):
            raise c.fail(f"scales has {len(sc)} values for {len(axes)} resized axes of input {x.shape}")
        sizes = [int(math.floor(s * i)) for s, i in zip(sc, ins, strict=True)]
    else:
        raise c.fail("neither scales nor sizes is given")
    if roi is not None:
        roi = [float(v) for v in np.asarray(roi).reshape(-1)]
        n = len(roi) // 2
        if n not in (r, len(axes)):
            raise c.fail(f"roi has {len(roi)} values; expected {2 * len(axes)}")
        roi = {a: (roi[a if n == r else j], roi[(a if n == r else j) + n]) for j, a in enumerate(axes)}
    extrap = float(c.attr("extrapolation_value", 0.0))
    for a, s, o in zip(axes, sc, sizes, strict=True):
        ax_roi = roi.get(a) if roi is not None and coord == "tf_crop_and_resize" else None
        if o == x.shape[a] and math.isclose(s, 1.0) and (ax_roi is None or ax_roi == (0.0, 1.0)):
            continue  # an identity axis
        if o == 0 or x.shape[a] == 0:
            raise c.fail(f"resizing axis {a} of input {x.shape} to {o} positions: empty tensors are not supported")
        taps = axis_taps(x.shape[a], o, s, mode, coord, nearest, float(c.attr("cubic_coeff_a", -0.75)),
                         bool(c.attr("exclude_outside", 0)), antialias, ax_roi)
        x = resample_axis(x, a, taps, extrap)
    return x


@op("Resize", since=10)
def _resize10(c):
    # opset 10: asymmetric coordinates; nearest rounds as onnxruntime does (floor, ceil when shrinking)
    mode = c.attr("mode", "nearest")
    return _resize(c, c.t(0), c.host(1), None, None, mode, "asymmetric", "simple")


@op("Resize", since=11)
def _resize11(c):
    return _resize(c, c.t(0), _opt(c, 2), _opt(c, 3), _opt(c, 1), c.attr("mode", "nearest"),
                   c.attr("coordinate_transformation_mode", "half_pixel"), c.attr("nearest_mode", "round_prefer_floor"))


def _upsample(c: NodeCtx, scales) -> Tensor:
    mode = {"bilinear": "linear"}.get(c.attr("mode", "nearest"), c.attr("mode", "nearest"))
    return _resize(c, c.t(0), scales, None, None, mode, "asymmetric", "floor")


op("Upsample", since=7)(lambda c: _upsample(c, c.attr("scales")))
op("Upsample", since=9)(lambda c: _upsample(c, c.host(1)))


@op("ConvTranspose")
def _conv_transpose(c):
    x, w = c.t(0), c.t(1)
    nd = x.ndim - 2
    if nd not in (1, 2):
        raise c.fail(f"{nd}-d transposed convolution is not supported (1-d and 2-d are)")
    sp = x.shape[2:]
    kernel = w.shape[2:]
    strides = list(c.attr("strides") or [1] * nd)
    dil = list(c.attr("dilations") or [1] * nd)
    out_pad = list(c.attr("output_padding") or [0] * nd)[:nd]
    out_shape = c.attr("output_shape")
    out_shape = list(out_shape)[-nd:] if out_shape else None
    auto = c.attr("auto_pad", "NOTSET")
    pads = c.attr("pads")
    natural = [strides[i] * (sp[i] - 1) + out_pad[i] + (kernel[i] - 1) * dil[i] + 1 for i in range(nd)]
    if pads is None and (out_shape is not None or auto in ("SAME_UPPER", "SAME_LOWER")):
        # ONNX: the padding that makes the output out_shape (SAME_*: input * stride), split low/high
        want = out_shape or [sp[i] * strides[i] for i in range(nd)]
        total = [natural[i] - want[i] for i in range(nd)]
        lo = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in total]
        pairs = [(lo[i], total[i] - lo[i]) for i in range(nd)]
    else:
        pads = list(pads or [0] * (2 * nd))
        pairs = [(pads[i], pads[i + nd]) for i in range(nd)]
        if out_shape is not None:  # explicit pads and output_shape: the extra positions come last
            out_pad = [out_pad[i] + out_shape[i] - (natural[i] - sum(pairs[i])) for i in range(nd)]
    if nd == 1:
        x, w = x.unsqueeze(2), w.unsqueeze(2)
        strides, dil, pairs, out_pad = [1, *strides], [1, *dil], [(0, 0), *pairs], [0, *out_pad]
    out = x.conv_transpose2d(w.cast(x.dtype), c.t(2) if c.has(2) else None, stride=tuple(strides),
                             padding=tuple(pairs), output_padding=tuple(out_pad), groups=int(c.attr("group", 1)),
                             dilation=tuple(dil))
    return out.squeeze(2) if nd == 1 else out


def _reflect(u: Tensor, lo: float, hi: float) -> Tensor:
    """Coordinates folded back into [lo, hi] by mirroring at its ends (as often as it takes)."""
    rng = hi - lo
    below, above = u < lo, u > hi
    dx = below.where(lo - u, u - hi)
    n = (dx * (1 / rng)).trunc() if rng > 0 else dx * 0
    r = dx - n * rng
    even = (n * 0.5).floor() * 2 == n
    inside = below.where(even.where(lo + r, hi - r), even.where(hi - r, lo + r))
    return (below | above).where(inside, u)


def _keys(d: Tensor, a: float = -0.75) -> Tensor:
    """Keys' cubic convolution weight at distance |d| <= 2."""
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return (d <= 1).where(near, far)


@op("GridSample", since=16)
def _grid_sample(c):
    """Samples X (N, C, *spatial) at the normalized positions of grid (N, *out, ndim): per spatial axis a tap
    axis (indices, weights, in-range flags, broadcast from host tap offsets), their combinations flattened,
    then one gather over the flattened image and a weighted sum."""
    x, grid = c.t(0), _f(c.t(1))
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(c.attr("mode", "linear"), c.attr("mode", "linear"))
    pad_mode = c.attr("padding_mode", "zeros")
    align = bool(c.attr("align_corners", 0))
    if mode not in MODES or pad_mode not in ("zeros", "border", "reflection"):
        raise c.fail(f"mode {mode!r} / padding_mode {pad_mode!r}: expected linear, nearest or cubic and zeros,"
                     " border or reflection")
    n, ch, sp = x.shape[0], x.shape[1], x.shape[2:]
    d = len(sp)
    out_sp = grid.shape[1:-1]
    offs = {"nearest": (0,), "linear": (0, 1), "cubic": (-1, 0, 1, 2)}[mode]
    nt = len(offs)
    # everything is computed at the full (N, C, *out, taps per axis...) shape from broadcast views of the grid
    # (the scheduler realizes computed values before broadcasting them; views it inlines), so the index
    # arithmetic fuses into the gather and the weights into the final sum
    full = (n, ch, *out_sp) + (nt,) * d
    flat = weight = keep = None
    stride = math.prod(sp)
    for i, size in enumerate(sp):
        stride //= size
        g = grid[..., d - 1 - i]  # the grid lists the last spatial axis first
        u = g.reshape((n, 1, *out_sp) + (1,) * d).expand(full)
        u = (u + 1) * (0.5 * (size - 1)) if align else ((u + 1) * size - 1) * 0.5
        lo, hi = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
        if mode == "nearest":
            u = _round_even(u)
        if pad_mode == "border":
            u = u.clip(0.0, float(size - 1))
        elif pad_mode == "reflection":
            u = _reflect(u, lo, hi)
        tap_shape = (1,) * (2 + len(out_sp)) + tuple(nt if j == i else 1 for j in range(d))
        o = Tensor(np.asarray(offs, np.float32).reshape(tap_shape), device=x.device).expand(full)
        base = u if mode == "nearest" else u.floor()
        pos = base + o
        if mode != "nearest":
            dist = (o - (u - base)).abs()
            w = 1 - dist if mode == "linear" else _keys(dist)
            weight = w if weight is None else weight * w
            if pad_mode == "reflection":
                pos = _reflect(pos, lo, hi).trunc()
        ok = (pos >= 0) & (pos <= size - 1)
        idx = pos.clip(0.0, float(size - 1)).cast(dtypes.int32) * stride
        flat = idx if flat is None else flat + idx
        keep = ok if keep is None else keep & ok
    taps = nt ** d
    m = math.prod(out_sp) * taps
    got = x.reshape(n, ch, math.prod(sp)).gather(2, flat.reshape(n, ch, m)).reshape((n, ch, *out_sp, taps))
    if pad_mode == "zeros":
        got = keep.reshape(got.shape).where(got, 0.0).cast(got.dtype)
    if weight is None:
        return got.squeeze(-1)
    return (got.float() * weight.reshape(got.shape)).sum(-1).cast(x.dtype)


def _round_even(u: Tensor) -> Tensor:
    f = u.floor()
    r = u - f
    return ((r > 0.5) | ((r == 0.5) & ((f * 0.5).floor() * 2 != f))).where(f + 1, f)


def _spread(t: Tensor, axis: int, s: int) -> Tensor:
    """s - 1 zeros between neighbours along axis: (.., o, ..) -> (.., (o - 1) * s + 1, ..)."""
    if s == 1:
        return t
    o = t.shape[axis]
    t = t.unsqueeze(axis + 1).pad([(0, s - 1) if i == axis + 1 else (0, 0) for i in range(t.ndim + 1)])
    t = t.reshape(t.shape[:axis] + (o * s,) + t.shape[axis + 2:])
    return t.shrink([(0, (o - 1) * s + 1) if i == axis else None for i in range(t.ndim)])


@op("Col2Im", since=18)
def _col2im(c):
    """Sums sliding blocks (N, C * prod(block), L) back into an image (N, C, *image_shape): each kernel
    offset's values are spread by the stride, shifted to the offset and added."""
    x = c.t(0)
    img, block = c.ints(1), c.ints(2)
    nd = len(img)
    dil = list(c.attr("dilations") or [1] * nd)
    pads = list(c.attr("pads") or [0] * (2 * nd))
    strides = list(c.attr("strides") or [1] * nd)
    full = [img[i] + pads[i] + pads[i + nd] for i in range(nd)]
    outs = [(full[i] - dil[i] * (block[i] - 1) - 1) // strides[i] + 1 for i in range(nd)]
    n = x.shape[0]
    ch = x.shape[1] // math.prod(block)
    if math.prod(outs) != x.shape[2]:
        raise c.fail(f"{x.shape[2]} blocks do not tile image {img} with block {block}, strides {strides}")
    cols = x.reshape((n, ch, *block, *outs))
    acc = None
    for k in np.ndindex(*block):
        v = cols[(slice(None), slice(None), *k)]  # (n, ch, *outs)
        for i in range(nd):
            v = _spread(v, 2 + i, strides[i])
        lo = [k[i] * dil[i] for i in range(nd)]
        v = v.pad([(0, 0), (0, 0)] + [(lo[i], full[i] - lo[i] - v.shape[2 + i]) for i in range(nd)])
        acc = v if acc is None else acc + v
    return acc.shrink([None, None] + [(pads[i], pads[i] + img[i]) for i in range(nd)])


def _roi_samples(rois: np.ndarray, h: int, w: int, oh: int, ow: int, ratio: int, scale: float, half: bool):
    """Host sampling plan of RoiAlign: for each roi, output cell and sample, the four bilinear corners'
    flat positions (R, oh, ow, S, 4) and weights, a mask of the samples each roi really has (its sampling
    grid may be smaller than the largest), and each roi's sample count."""
    off = 0.5 if half else 0.0
    x0, y0, x1, y1 = (rois[:, i].astype(np.float64) * scale - off for i in range(4))
    rw, rh = x1 - x0, y1 - y0
    if not half:
        rw, rh = np.maximum(rw, 1.0), np.maximum(rh, 1.0)
    bh, bw = rh / oh, rw / ow
    gh = np.full(len(rois), ratio) if ratio > 0 else np.ceil(rh / oh).astype(int)
    gw = np.full(len(rois), ratio) if ratio > 0 else np.ceil(rw / ow).astype(int)
    gmh, gmw = max(int(gh.max(initial=1)), 1), max(int(gw.max(initial=1)), 1)
    iy = np.arange(gmh)[None, None, :, None]
    ix = np.arange(gmw)[None, None, None, :]
    ph = np.arange(oh)[None, :, None, None]
    pw = np.arange(ow)[None, :, None, None]
    r = (slice(None), None, None, None)
    ys = y0[r] + ph * bh[r] + (iy + 0.5) * bh[r] / np.maximum(gh, 1)[r]  # (R, oh, gmh, 1)
    xs = x0[r] + pw * bw[r] + (ix + 0.5) * bw[r] / np.maximum(gw, 1)[r]  # (R, ow, 1, gmw)
    ys, xs = ys[:, :, None, :, :], xs[:, None, :, :, :]  # (R, oh, 1, gmh, 1), (R, 1, ow, 1, gmw)
    ys, xs = np.broadcast_arrays(ys, xs)
    out = (ys < -1) | (ys > h) | (xs < -1) | (xs > w)
    y, x = np.maximum(ys, 0), np.maximum(xs, 0)
    ylo, xlo = y.astype(int), x.astype(int)
    ytop, xtop = ylo >= h - 1, xlo >= w - 1
    ylo, xlo = np.where(ytop, h - 1, ylo), np.where(xtop, w - 1, xlo)
    yhi, xhi = np.where(ytop, h - 1, ylo + 1), np.where(xtop, w - 1, xlo + 1)
    y, x = np.where(ytop, ylo, y), np.where(xtop, xlo, x)
    ly, lx = y - ylo, x - xlo
    pos = np.stack([ylo * w + xlo, ylo * w + xhi, yhi * w + xlo, yhi * w + xhi], -1)
    wts = np.stack([(1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx], -1)
    pos, wts = np.where(out[..., None], 0, pos), np.where(out[..., None], 0.0, wts)
    real = ((iy < gh[r]) & (ix < gw[r]))[:, :, None]  # (R, 1, 1, gmh, gmw)
    real = np.broadcast_to(real, ys.shape)
    n = len(rois)
    s = gmh * gmw
    return (pos.reshape(n, oh, ow, s, 4), wts.reshape(n, oh, ow, s, 4), real.reshape(n, oh, ow, s),
            np.maximum(gh * gw, 1))


@op("RoiAlign", since=10)
def _roi_align(c):
    """RoiAlign: bilinear samples averaged (or maxed) per output cell of each region. The regions are read
    on the host (an adaptive sampling grid depends on their sizes); the features are gathered on the device,
    so the op is differentiable in X."""
    x = c.t(0)
    rois, bidx = c.host(1), c.host(2).astype(np.int32).reshape(-1)
    n, ch, h, w = x.shape
    oh, ow = int(c.attr("output_height", 1)), int(c.attr("output_width", 1))
    half = c.attr("coordinate_transformation_mode", "half_pixel" if c.opset >= 16 else "output_half_pixel") \
        == "half_pixel"
    pos, wts, real, count = _roi_samples(rois, h, w, oh, ow, int(c.attr("sampling_ratio", 0)),
                                         float(c.attr("spatial_scale", 1.0)), half)
    r, s = len(rois), pos.shape[3]
    m = oh * ow * s * 4
    feats = x.reshape(n, ch, h * w).take(bidx, axis=0)  # (R, C, H*W)
    idx = Tensor(pos.astype(np.int32).reshape(r, 1, m), device=x.device).expand(r, ch, m)
    got = _f(feats).gather(2, idx).reshape(r, ch, oh, ow, s, 4)
    wt = Tensor(wts.astype(np.float32).reshape(r, 1, oh, ow, s, 4), device=x.device)
    keep = Tensor(real.reshape(r, 1, oh, ow, s), device=x.device)
    if c.attr("mode", "avg") == "max":  # as ONNX's reference: the largest weighted corner of each sample
        v = (got * wt).max(-1)
        return keep.where(v, -math.inf).max(-1).cast(x.dtype)
    tot = (keep.where((got * wt).sum(-1), 0.0)).sum(-1)
    return (tot / Tensor(count.astype(np.float32).reshape(r, 1, 1, 1), device=x.device)).cast(x.dtype)


@op("DeformConv", since=19)
def _deform_conv(c):
    """Deformable 2-d convolution: every kernel tap of every output position samples the input bilinearly
    (zeros outside) at its offset position, optionally scaled by the mask, and the samples are contracted
    with the weights by one (grouped) matmul."""
    x, w, off = _f(c.t(0)), c.t(1), _f(c.t(2))
    if x.ndim != 4:
        raise c.fail(f"{x.ndim - 2}-d deformable convolution is not supported (2-d is)")
    n, ic, ih, iw = x.shape
    oc, icg, kh, kw = w.shape
    oh, ow = off.shape[2:]
    group, og = int(c.attr("group", 1)), int(c.attr("offset_group", 1))
    sh, sw = c.attr("strides") or [1, 1]
    dh, dw = c.attr("dilations") or [1, 1]
    pt, pl = (c.attr("pads") or [0, 0, 0, 0])[:2]
    # everything at the full (n, ic, kh, kw, oh, ow, 4 corners) shape, from broadcast views of the inputs
    full = (n, og, ic // og, kh, kw, oh, ow, 4)
    o6 = off.reshape(n, og, 1, kh, kw, 2, oh, ow, 1)

    def grid(vals, axis_shape):  # a host constant broadcast to the full shape
        return Tensor(np.asarray(vals, np.float32).reshape(axis_shape), device=x.device).expand(full)
    base_y = grid(-pt + sh * np.arange(oh)[None, :] + dh * np.arange(kh)[:, None], (1, 1, 1, kh, 1, oh, 1, 1))
    base_x = grid(-pl + sw * np.arange(ow)[None, :] + dw * np.arange(kw)[:, None], (1, 1, 1, 1, kw, 1, ow, 1))
    cy, cx = grid([0, 0, 1, 1], (1,) * 7 + (4,)), grid([0, 1, 0, 1], (1,) * 7 + (4,))
    py = o6[:, :, :, :, :, 0].expand(full) + base_y
    px = o6[:, :, :, :, :, 1].expand(full) + base_x
    y0, x0 = py.floor(), px.floor()
    yy, xx = y0 + cy, x0 + cx
    wgt = (1 - (yy - py).abs()) * (1 - (xx - px).abs())
    ok = (yy >= 0) & (yy <= ih - 1) & (xx >= 0) & (xx <= iw - 1)
    flat = (yy.clip(0.0, ih - 1.0) * iw + xx.clip(0.0, iw - 1.0)).cast(dtypes.int32)
    m = kh * kw * oh * ow * 4
    got = x.reshape(n, ic, ih * iw).gather(2, flat.reshape(n, ic, m)).reshape(n, og, ic // og, kh, kw, oh, ow, 4)
    samp = ok.where(got * wgt, 0.0).sum(-1)  # (n, og, ic / og, kh, kw, oh, ow)
    if c.has(4):
        samp = samp * _f(c.t(4)).reshape(n, og, 1, kh, kw, oh, ow)
    k = icg * kh * kw
    cols = samp.reshape(n, group, k, oh * ow)
    out = w.cast(x.dtype).reshape(1, group, oc // group, k).matmul(cols).reshape(n, oc, oh, ow)
    return out + c.t(3).cast(x.dtype).reshape(1, oc, 1, 1) if c.has(3) else out


@op("MaxUnpool", since=9)
def _max_unpool(c):
    """Inverse of MaxPool with Indices: each output position reads only the input windows that cover it
    (host-computed from the shapes) and takes the value whose index names it; positions no index names are
    zero. Indices must come from a MaxPool with these kernel, strides and pads (the op's contract)."""
    x, idx = c.t(0), c.t(1).cast(dtypes.int32)
    kernel = list(c.attr("kernel_shape"))
    nd = len(kernel)
    strides = list(c.attr("strides") or [1] * nd)
    pads = list(c.attr("pads") or [0] * (2 * nd))
    n, ch, ins = x.shape[0], x.shape[1], x.shape[2:]
    outs = [(ins[d] - 1) * strides[d] - pads[d] - pads[d + nd] + kernel[d] for d in range(nd)]
    flat = valid = None
    for d in range(nd):
        t = -(-kernel[d] // strides[d])  # windows covering one position, at most
        o = np.arange(outs[d])[:, None] + pads[d]
        first = -(-(o - kernel[d] + 1) // strides[d])
        cand = np.maximum(first, 0) + np.arange(t)[None, :]  # (out_d, t)
        ok = (cand <= o // strides[d]) & (cand < ins[d])
        shape = [1] * (2 * nd)
        shape[d], shape[nd + d] = outs[d], t
        stride_in = math.prod(ins[d + 1:])
        fd, vd = (cand * stride_in).reshape(shape), ok.reshape(shape)
        flat, valid = (fd, vd) if flat is None else (flat + fd, valid & vd)
    o_tot = math.prod(outs)
    flat, valid = np.broadcast_arrays(flat, valid)
    flat, valid = np.where(valid, flat, 0).reshape(o_tot, -1), valid.reshape(o_tot, -1)
    taps = flat.shape[1]
    m = o_tot * taps
    pos = Tensor(flat.astype(np.int32).reshape(1, 1, m), device=x.device).expand(n, ch, m)
    xv = x.reshape(n, ch, math.prod(ins)).gather(2, pos).reshape(n, ch, o_tot, taps)
    iv = idx.reshape(n, ch, math.prod(ins)).gather(2, pos).reshape(n, ch, o_tot, taps)
    target = (Tensor.arange(n * ch, device=x.device).reshape(n, ch, 1, 1) * o_tot
              + Tensor.arange(o_tot, device=x.device).reshape(1, 1, o_tot, 1))
    hit = (iv == target) & Tensor(valid.reshape(1, 1, o_tot, taps), device=x.device)
    out = hit.where(xv, x.dtype.min).max(-1)
    out = (hit.cast(dtypes.int32).max(-1) > 0).where(out, 0).cast(x.dtype).reshape((n, ch, *outs))
    if c.has(2):  # a larger output_shape: the unpooled block at its start, zeros after
        want = c.ints(2)[2:]
        out = out.pad([(0, 0), (0, 0)] + [(0, w - o) for w, o in zip(want, outs, strict=True)])
    return out
