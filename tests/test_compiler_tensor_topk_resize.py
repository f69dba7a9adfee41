"""Tensor.topk, Tensor.interpolate and Tensor.conv_transpose2d on REF against numpy (and PyTorch where it is
installed), including their gradients."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import Tensor
from compiler.errors import ShapeError


def _rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("largest", [True, False])
def test_topk_matches_a_stable_sort(largest):
    x = _rng(1).integers(-3, 3, (4, 9)).astype(np.float32)
    v, i = Tensor(x, device="REF").topk(4, dim=1, largest=largest)
    order = np.argsort(-x if largest else x, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(i.numpy(), order)
    np.testing.assert_array_equal(v.numpy(), np.take_along_axis(x, order, 1))


def test_topk_axis_0_int_and_gradient():
    x = _rng(2).permutation(20).reshape(5, 4).astype(np.int32)
    v, i = Tensor(x, device="REF").topk(2, axis=0)
    np.testing.assert_array_equal(v.numpy(), -np.sort(-x, axis=0)[:2])
    xf = Tensor(x.astype(np.float32), device="REF", requires_grad=True)
    xf.topk(2, 0)[0].sum().backward()
    want = np.zeros_like(x, np.float32)
    np.put_along_axis(want, i.numpy(), 1.0, 0)
    np.testing.assert_array_equal(xf.grad.numpy(), want)
    with pytest.raises(ShapeError, match="k=6"):
        Tensor(x, device="REF").topk(6, 0)


def _conv_transpose_np(x, w, stride, pad, out_pad, groups):
    """Scatter-add definition: each input pixel adds its weighted kernel into the output."""
    n, cin, h, wd = x.shape
    _, og, kh, kw = w.shape
    oh = (h - 1) * stride + kh - 2 * pad + out_pad
    ow = (wd - 1) * stride + kw - 2 * pad + out_pad
    full = np.zeros((n, og * groups, (h - 1) * stride + kh + out_pad, (wd - 1) * stride + kw + out_pad))
    cg = cin // groups
    for ci in range(cin):
        g = ci // cg
        for y in range(h):
            for xx in range(wd):
                full[:, g * og:(g + 1) * og, y * stride:y * stride + kh, xx * stride:xx * stride + kw] += (
                    x[:, ci, y, xx][:, None, None, None] * w[ci][None])
    return full[:, :, pad:pad + oh, pad:pad + ow]


@pytest.mark.parametrize("stride,pad,out_pad,groups", [(1, 0, 0, 1), (2, 1, 1, 1), (3, 2, 0, 2)])
def test_conv_transpose2d_matches_scatter_definition(stride, pad, out_pad, groups):
    r = _rng(3)
    x = r.standard_normal((2, 4, 3, 4)).astype(np.float32)
    w = r.standard_normal((4, 3, 3, 3)).astype(np.float32)
    got = Tensor(x, device="REF").conv_transpose2d(Tensor(w, device="REF"), stride=stride, padding=pad,
                                                    output_padding=out_pad, groups=groups)
    np.testing.assert_allclose(got.numpy(), _conv_transpose_np(x, w, stride, pad, out_pad, groups), rtol=1e-5,
                               atol=1e-5)


def test_conv_transpose2d_is_the_adjoint_of_conv2d():
    """<conv_transpose2d(x, w), g> == <x, conv2d(g, w)>, and the gradient of the first in x is conv2d(g, w)."""
    r = _rng(4)
    x = Tensor(r.standard_normal((1, 3, 4, 5)).astype(np.float32), device="REF", requires_grad=True)
    w = Tensor(r.standard_normal((3, 2, 3, 3)).astype(np.float32), device="REF")
    y = x.conv_transpose2d(w, stride=2, padding=1)
    g = Tensor(r.standard_normal(y.shape).astype(np.float32), device="REF")
    (y * g).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), g.conv2d(w, stride=2, padding=1).numpy(), rtol=1e-4, atol=1e-5)


def test_interpolate_nearest_and_bilinear_align_corners():
    x = _rng(5).standard_normal((1, 2, 3, 4)).astype(np.float32)
    t = Tensor(x, device="REF")
    near = t.interpolate(scale_factor=2, mode="nearest").numpy()
    np.testing.assert_array_equal(near, x.repeat(2, 2).repeat(2, 3))
    lin = t.interpolate(size=(5, 7), mode="bilinear", align_corners=True).numpy()
    # align_corners: output row i samples input row i * (3 - 1) / (5 - 1), linearly
    ys, xs = np.arange(5) * 2 / 4, np.arange(7) * 3 / 6
    y0, x0 = np.minimum(np.floor(ys).astype(int), 1), np.minimum(np.floor(xs).astype(int), 2)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a, b = x[..., y0, :][..., x0], x[..., y0, :][..., x0 + 1]
    c, d = x[..., y0 + 1, :][..., x0], x[..., y0 + 1, :][..., x0 + 1]
    want = (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d)
    np.testing.assert_allclose(lin, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ShapeError, match="exactly one of size or scale_factor"):
        t.interpolate()


@pytest.mark.parametrize("mode,kw", [("nearest", {}), ("nearest-exact", {}), ("bilinear", {}),
                                     ("bilinear", {"align_corners": True}), ("bicubic", {}),
                                     ("bilinear", {"antialias": True}),
                                     ("bicubic", {"antialias": True})])
def test_interpolate_matches_pytorch(mode, kw):
    torch = pytest.importorskip("torch")
    x = _rng(6).standard_normal((2, 3, 9, 6)).astype(np.float32)
    for size in ((13, 4), (4, 11)):
        want = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode=mode, **kw).numpy()
        got = Tensor(x, device="REF").interpolate(size=size, mode=mode, **kw).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"{mode} {kw} {size}")
