"""Signal-processing ONNX ops: DFT, STFT, the Hann/Hamming/Blackman windows and MelWeightMatrix. Transforms
are matmuls with cos/sin matrices built on the host (they depend on lengths only)."""

from __future__ import annotations

import math

import numpy as np
from onnx import helper

from compiler.tensor import Tensor

from .ops import NodeCtx, _f, op
from .types import held_array


def _window(c: NodeCtx, terms: tuple[float, ...]) -> Tensor:
    """sum_k terms[k] * cos(2 pi k n / N) (signs alternate), N = size (periodic) or size - 1 (symmetric)."""
    size = int(c.host(0).reshape(-1)[0])
    big_n = size if c.attr("periodic", 1) else size - 1
    n = np.arange(size, dtype=np.float64)
    w = sum((-1) ** k * a * np.cos(2 * math.pi * k * n / big_n) for k, a in enumerate(terms))
    to = c.attr("output_datatype", 1)
    arr, dt = held_array(np.asarray(w).astype(helper.tensor_dtype_to_np_dtype(to)), f"node {c.name} output")
    return Tensor(arr, device=c.device, dtype=dt)


op("HannWindow", since=17)(lambda c: _window(c, (0.5, 0.5)))
op("HammingWindow", since=17)(lambda c: _window(c, (25 / 46, 1 - 25 / 46)))
op("BlackmanWindow", since=17)(lambda c: _window(c, (0.42, 0.5, 0.08)))


def _dft(c: NodeCtx, axis: int) -> Tensor:
    """A discrete Fourier transform along one axis as a matmul with host-built cos/sin matrices (real inputs
    (..., 1) or complex (..., 2); inverse; one-sided spectra in both directions)."""
    x = _f(c.t(0))
    a = axis % x.ndim
    if a == x.ndim - 1:
        raise c.fail("axis is the last (real/imaginary) axis; the transform runs along a signal axis")
    inverse, onesided = bool(c.attr("inverse", 0)), bool(c.attr("onesided", 0))
    n_in = x.shape[a]
    n = int(c.host(1).reshape(-1)[0]) if c.has(1) else (2 * (n_in - 1) if inverse and onesided else n_in)
    re = x[..., 0].transpose(a, -1)
    im = x[..., 1].transpose(a, -1) if x.shape[-1] == 2 else None
    m = n // 2 + 1 if inverse and onesided else n  # input positions used along the axis

    def fit(t):  # zero-pad or crop the signal axis to m
        return t.pad([(0, 0)] * (t.ndim - 1) + [(0, m - n_in)]) if m > n_in else t[..., :m]
    re, im = fit(re), fit(im) if im is not None else None
    k_out = n // 2 + 1 if onesided and not inverse else n
    j, k = np.arange(m)[:, None], np.arange(k_out)[None, :]
    if inverse and onesided:  # Hermitian spectrum: the middle frequencies count twice
        k, j = np.arange(m)[:, None], np.arange(n)[None, :]
        wgt = np.where((k == 0) | (2 * k == n), 1.0, 2.0) / n
        ang = 2 * math.pi * k * j / n
        cos_m = Tensor((wgt * np.cos(ang)).astype(np.float32), device=c.device)
        sin_m = Tensor((wgt * np.sin(ang)).astype(np.float32), device=c.device)
        out = re.matmul(cos_m) - (im.matmul(sin_m) if im is not None else 0)
        return out.transpose(a, -1).unsqueeze(-1).cast(x.dtype)
    ang = 2 * math.pi * j * k / n
    cos_m = Tensor(np.cos(ang).astype(np.float32), device=c.device)
    sin_m = Tensor(np.sin(ang).astype(np.float32), device=c.device)
    if inverse:
        r = re.matmul(cos_m) - (im.matmul(sin_m) if im is not None else 0)
        i = re.matmul(sin_m) + (im.matmul(cos_m) if im is not None else 0)
        r, i = r * (1 / n), i * (1 / n)
    else:
        r = re.matmul(cos_m) + (im.matmul(sin_m) if im is not None else 0)
        i = (im.matmul(cos_m) if im is not None else 0) - re.matmul(sin_m)
    return Tensor.stack([r.transpose(a, -1), i.transpose(a, -1)], axis=-1).cast(x.dtype)


op("DFT", since=17)(lambda c: _dft(c, int(c.attr("axis", 1))))
op("DFT", since=20)(lambda c: _dft(c, int(c.host(2).reshape(-1)[0]) if c.has(2) else -2))


@op("STFT", since=17)
def _stft(c):
    """Short-time Fourier transform of (batch, length, 1 or 2) signals: frames as sliding-window views, the
    window applied, then one matmul per real/imaginary part with host cos/sin matrices."""
    x = _f(c.t(0))
    step = int(c.host(1).reshape(-1)[0])
    win = c.t(2).cast(x.dtype) if c.has(2) else None
    flen = int(c.host(3).reshape(-1)[0]) if c.has(3) else (win.shape[0] if win is not None else x.shape[1])
    k_out = flen // 2 + 1 if c.attr("onesided", 1) else flen
    ang = 2 * math.pi * np.arange(flen)[:, None] * np.arange(k_out)[None, :] / flen
    cos_m = Tensor(np.cos(ang).astype(np.float32), device=c.device)
    sin_m = Tensor(np.sin(ang).astype(np.float32), device=c.device)

    def frames(part: Tensor) -> Tensor:  # (batch, length) -> (batch, n_frames, flen)
        f = part._pool((flen,), (step,), (1,))
        return f * win if win is not None else f
    re = frames(x[..., 0])
    im = frames(x[..., 1]) if x.shape[-1] == 2 else None
    r = re.matmul(cos_m) + (im.matmul(sin_m) if im is not None else 0)
    i = (im.matmul(cos_m) if im is not None else 0) - re.matmul(sin_m)
    return Tensor.stack([r, i], axis=-1).cast(x.dtype)


@op("MelWeightMatrix", since=17)
def _mel(c):
    """The (dft_length // 2 + 1, num_mel_bins) triangular mel filter bank ONNX defines, built on the host."""
    bins, n_fft, rate = (int(c.host(i).reshape(-1)[0]) for i in range(3))
    lo, hi = (float(c.host(i).reshape(-1)[0]) for i in (3, 4))
    mel_lo, mel_hi = 2595 * math.log10(1 + lo / 700), 2595 * math.log10(1 + hi / 700)
    mel = np.arange(bins + 2) * ((mel_hi - mel_lo) / (bins + 2)) + mel_lo
    edges = (((n_fft + 1) * (700 * (10 ** (mel / 2595) - 1))) // rate).astype(int)
    w = np.zeros((n_fft // 2 + 1, bins))
    for i in range(bins):
        left, mid, right = edges[i], edges[i + 1], edges[i + 2]
        if mid == left:
            w[mid, i] = 1
        else:
            w[left:mid + 1, i] = (np.arange(left, mid + 1) - left) / (mid - left)
        if right > mid:
            w[mid:right, i] = (right - np.arange(mid, right)) / (right - mid)
    to = c.attr("output_datatype", 1)
    arr, dt = held_array(w.astype(helper.tensor_dtype_to_np_dtype(to)), f"node {c.name} output")
    return Tensor(arr, device=c.device, dtype=dt)
