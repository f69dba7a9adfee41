"""conv2d on CL: the GEMM template's wide-row pack (a stride-1 window stored once per kernel row, not once
per kernel column) against numpy, the cases that must fall back to the im2col pack, and the backward
rule's convolutions running as GEMM kernels (the gradients themselves are checked in test_compiler_autograd)."""

import numpy as np
import pytest

from compiler import Device, Tensor, autograd
from compiler.backend import program_for

pytestmark = pytest.mark.skipif("CL" not in Device.available(), reason="no OpenCL device")
rng = np.random.default_rng(5)


def rnd(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def np_conv(x, w, pad, stride=1, dilation=1):
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = w.shape[2:]
    span = (dilation * (kh - 1) + 1, dilation * (kw - 1) + 1)
    win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(2, 3))[:, :, ::stride, ::stride, ::dilation, ::dilation]
    return np.einsum("nchwij,ocij->nohw", win, w, optimize=True)


def close(out, ref, tol=2e-4):
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * max(1.0, float(np.abs(ref).max())))


# (input shape, output channels, kernel, padding): odd widths, padding 0 (no zeros to pack), wider than
# the kernel reaches (2 for 3x3), several images per tile (4x4 images), a 5x5 kernel
@pytest.mark.parametrize(
    "shape,cout,ksize,pad",
    [((2, 8, 13, 11), 16, 3, 1), ((2, 8, 13, 11), 16, 3, 0), ((2, 6, 10, 9), 16, 3, 2),
     ((16, 8, 4, 4), 16, 3, 1), ((1, 4, 12, 15), 16, 5, 2)],
)  # fmt: skip
def test_stride_one_conv_packs_wide_rows(shape, cout, ksize, pad):
    x, w, b = rnd(*shape), rnd(cout, shape[1], ksize, ksize), rnd(cout)
    out = Tensor(x, device="CL").conv2d(Tensor(w, device="CL"), Tensor(b, device="CL"), padding=pad).relu()
    prg = program_for(out.schedule()[0])
    assert prg.opts.gemm is not None and "int o0 = " in prg.src  # the wide rows: a pixel offset
    close(out.numpy(), np.maximum(np_conv(x, w, pad) + b[None, :, None, None], 0))


# rows long enough (>= 16 x (KW - 1) pixels) that the 6-pixel register tiles run over each row's KW - 1
# padding pixels instead of spanning two output rows: a ragged last tile (10 x 34 = 340 pixels an image),
# padding 0, a 5x5 kernel on 64-pixel rows; (input shape, output channels, kernel, padding, wide row)
@pytest.mark.parametrize(
    "shape,cout,ksize,pad,wrow",
    [((2, 8, 10, 34), 16, 3, 1, 36), ((1, 8, 10, 40), 16, 3, 0, 40), ((1, 4, 7, 64), 16, 5, 2, 68)],
)  # fmt: skip
def test_long_rows_run_register_tiles_over_the_padding(shape, cout, ksize, pad, wrow):
    x, w, b = rnd(*shape), rnd(cout, shape[1], ksize, ksize), rnd(cout)
    out = Tensor(x, device="CL").conv2d(Tensor(w, device="CL"), Tensor(b, device="CL"), padding=pad).relu()
    prg = program_for(out.schedule()[0])
    mb, _, _, mr, _ = prg.opts.gemm
    assert mr == 6 and "int o0 = mi;" in prg.src and "int o1 = " not in prg.src  # fixed offsets, every tile
    assert f"Cs[(jr*{wrow}+jw)*" in prg.src  # the epilogue skips each wide row's padding pixels
    close(out.numpy(), np.maximum(np_conv(x, w, pad) + b[None, :, None, None], 0))


@pytest.mark.parametrize("stride,dilation", [(2, 1), (1, 2)])
def test_strided_or_dilated_conv_keeps_the_im2col_pack(stride, dilation):
    x, w = rnd(4, 8, 17, 15), rnd(16, 8, 3, 3)
    out = Tensor(x, device="CL").conv2d(Tensor(w, device="CL"), padding=1, stride=stride, dilation=dilation)
    prg = program_for(out.schedule()[0])
    assert prg.opts.gemm is not None and "int o0 = " not in prg.src
    close(out.numpy(), np_conv(x, w, 1, stride, dilation))


# the digits CNN's second convolution, and images large enough that the weight gradient's reduce (batch x
# output pixels) is sliced into slabs along its rows rather than its batch
@pytest.mark.parametrize("xs,ws", [((64, 16, 4, 4), (32, 16, 3, 3)), ((2, 8, 24, 24), (16, 8, 3, 3))])
def test_conv_gradients_are_gemm_kernels(xs, ws):
    """The input gradient (transposed conv) and the weight gradient (windows x output gradient) each run as
    one GEMM-template kernel: no window gradient, no fold, no per-output reduce."""
    x, w = rnd(*xs), rnd(*ws)
    gout = rnd(xs[0], ws[0], *xs[2:])
    grads = {}
    for dev in ("REF", "CL"):
        X, W = Tensor(x, device=dev, requires_grad=True), Tensor(w, device=dev, requires_grad=True)
        found = autograd.gradients((X.conv2d(W, padding=1) * Tensor(gout, device=dev)).sum().node)
        grads[dev] = [Tensor(found[t.node.id][1]) for t in (X, W)]
    for g in grads["CL"]:
        reduces = [k for k in g.schedule() if k.reduce is not None]
        assert len(reduces) == 1 and program_for(reduces[0]).opts.gemm is not None
    for cl, ref in zip(grads["CL"], grads["REF"], strict=True):
        close(cl.numpy(), ref.numpy())


def test_weight_pretransposed_only_where_its_packs_repeat():
    """conv2d stores the weight (Cin*KH*KW, Cout) first only where the GEMM would re-pack it for many tiles of
    output pixels; 1x1, narrow, grouped and small convolutions read it where it is."""
    from compiler.tensor import _pretranspose_weight

    assert _pretranspose_weight(8 * 56 * 56, (64, 64, 3, 3), 1)  # the bench's conv2d layer
    assert not _pretranspose_weight(64 * 4 * 4, (32, 16, 3, 3), 1)  # the digits CNN: one extra kernel costs more
    assert not _pretranspose_weight(8 * 56 * 56, (64, 64, 1, 1), 1)  # 1x1: render_pointwise reads weight rows
    assert not _pretranspose_weight(8 * 56 * 56, (8, 64, 3, 3), 1)  # narrow: the weight is the A factor
    assert not _pretranspose_weight(8 * 56 * 56, (64, 32, 3, 3), 2)  # grouped
    for other in ("REF", "SIM", "CUDA"):  # their own layouts (SIM: the matrix unit's im2col image)
        assert not _pretranspose_weight(8 * 56 * 56, (64, 64, 3, 3), 1, other)
    assert _pretranspose_weight(8 * 56 * 56, (64, 64, 3, 3), 1, "CL:0")


# a layer big enough for the transposed weight (4 images of 32x32, 64 -> 64 channels): the GEMM reads the
# weight's float8s in place (no B slab), the epilogue stores whole output rows; ~300 MFLOP
BIG = ((4, 64, 32, 32), (64, 64, 3, 3))


def test_big_conv_reads_the_transposed_weight_in_place(monkeypatch):
    monkeypatch.setenv("WB_WINOGRAD", "0")  # the direct template (3x3 stride 1 would take F(2x2, 3x3))
    x, w, b = rnd(*BIG[0]), rnd(*BIG[1]) / 24, rnd(BIG[1][0])
    out = Tensor(x, device="CL").conv2d(Tensor(w, device="CL"), Tensor(b, device="CL"), padding=1).relu()
    kernels = out.schedule()
    assert [k.reduce is not None for k in kernels] == [False, True]  # the transpose, then the convolution
    assert kernels[0].out.shape == (64 * 9, 64)
    prg = program_for(kernels[1])
    assert prg.opts.gemm is not None and "Bs[" not in prg.src and "__global const float8*" in prg.src
    assert "for (int nn = 0; nn < 64; nn++) for (int jr" in prg.src  # rows of outputs stored as runs
    close(out.numpy(), np.maximum(np_conv(x, w, 1) + b[None, :, None, None], 0))


def test_big_conv_follows_weight_updates():
    """Nothing of the weight outlives a call: assigning new values, an optimizer step, and a jitted forward
    after either all see the new weights."""
    from compiler.jit import jit
    from compiler.optim import SGD

    x, w = rnd(*BIG[0]), rnd(*BIG[1]) / 24
    X, W = Tensor(x, device="CL"), Tensor(w, device="CL", requires_grad=True)
    fwd = jit(lambda inp: inp.conv2d(W, padding=1))
    for _ in range(3):  # the jit captures on its second and third calls, then replays
        close(fwd(X).numpy(), np_conv(x, w, 1))
    w2 = rnd(*BIG[1]) / 24
    W.assign(Tensor(w2, device="CL"))
    close(X.conv2d(W, padding=1).numpy(), np_conv(x, w2, 1))
    close(fwd(X).numpy(), np_conv(x, w2, 1))
    opt = SGD([W], lr=0.5)
    opt.zero_grad()
    X.conv2d(W, padding=1).square().mean().backward()
    opt.step()
    w3 = W.numpy()
    assert np.abs(w3 - w2).max() > 1e-4
    close(X.conv2d(W, padding=1).numpy(), np_conv(x, w3, 1))
    close(fwd(X).numpy(), np_conv(x, w3, 1))


@pytest.mark.parametrize("shape,k", [((2, 3, 7, 9), (3, 3)), ((1, 2, 5, 4), (5, 2)), ((1, 1, 3, 6), (3, 1))])
def test_unit_stride_windows_are_pools_windows(shape, k):
    """conv2d's stride-1 windows (13 view ops) hold exactly what the general sliding-window view does, down
    to a window as tall as the input (one output row)."""
    from compiler.tensor import _unit_stride_windows

    x = Tensor(rnd(*shape), device="REF")
    fast = _unit_stride_windows(x, *k)
    assert fast.shape == x._pool(k, (1, 1), (1, 1)).shape
    np.testing.assert_array_equal(fast.numpy(), x._pool(k, (1, 1), (1, 1)).numpy())


def test_unit_stride_windows_render_the_same_conv_kernel(monkeypatch):
    from compiler import tensor

    x, w = Tensor(rnd(2, 8, 13, 11), device="CL"), Tensor(rnd(16, 8, 3, 3), device="CL")
    fast = [program_for(k).src for k in x.conv2d(w, padding=1).schedule()]
    monkeypatch.setattr(tensor, "_unit_stride_windows", lambda xp, kh, kw: xp._pool((kh, kw), (1, 1), (1, 1)))
    assert [program_for(k).src for k in x.conv2d(w, padding=1).schedule()] == fast
