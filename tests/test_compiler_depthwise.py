"""The CPU templates for MobileNet-style convolutions: depthwise convs (groups == channels) as strips of
outputs with every tap unrolled (render_depthwise.py), and 1x1 convs as the GEMM with the pixels as the
float8 columns (render_pointwise.py). Strides, dilations, padding, odd widths, fused epilogues and every
strip length WB_SEARCH may pick, against numpy."""

import re

import numpy as np
import pytest

from compiler import Device, Tensor
from compiler.backend import program_for
from compiler.kernel_ir import KernelOpts
from compiler.optimizer import render_program
from compiler.runtime_opencl import get_cl_device

pytestmark = pytest.mark.skipif("CL" not in Device.available(), reason="no OpenCL device")
rng = np.random.default_rng(5)


def rnd(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def close(out, ref, tol=2e-4):
    ref = np.asarray(ref, np.float32)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * max(1.0, float(np.abs(ref).max())))


def np_conv(x, w, stride=(1, 1), pad=(0, 0), dil=(1, 1), groups=1):
    n, cin, h, wd = x.shape
    cout, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, cout, oh, ow), np.float64)
    og = cout // groups
    for co in range(cout):
        g = co // og
        for ci in range(cg):
            for i in range(kh):
                for j in range(kw):
                    win = xp[:, g * cg + ci, i * dil[0]:i * dil[0] + stride[0] * (oh - 1) + 1:stride[0],
                             j * dil[1]:j * dil[1] + stride[1] * (ow - 1) + 1:stride[1]]
                    out[:, co] += win * w[co, ci, i, j]
    return out


def hardswish(y):
    return y * np.clip(y + 3, 0, 6) / 6


@pytest.mark.parametrize("shape,k,stride,pad,dil,float8", [
    ((2, 6, 3, 32), 5, (1, 1), (2, 2), (1, 1), True),   # PP-OCR's 5x5, same padding: float8 inner strips
    ((1, 4, 9, 40), 3, (2, 1), (1, 1), (1, 1), True),   # stride along H only
    ((1, 4, 9, 13), 3, (2, 1), (1, 1), (1, 1), False),  # odd width: scalar strips of 1
    ((2, 3, 8, 34), 3, (1, 2), (1, 1), (1, 1), False),  # stride along the strip: scalar lanes
    ((1, 5, 7, 40), 3, (1, 1), (2, 2), (2, 2), True),   # dilated
])
def test_depthwise_conv_takes_the_strip_kernel(shape, k, stride, pad, dil, float8):
    c = shape[1]
    x, w, b = rnd(*shape), rnd(c, 1, k, k), rnd(c)
    out = Tensor(x, device="CL").conv2d(Tensor(w, device="CL"), Tensor(b, device="CL"), stride=stride,
                                        padding=pad, dilation=dil, groups=c)
    out = out * ((out + 3).relu().minimum(6) / 6)  # hard-swish, fused into the epilogue
    prg = program_for(out.schedule()[-1])
    assert prg.opts.depthwise is not None and ("float8 accv" in prg.src) == float8
    close(out.numpy(), hardswish(np_conv(x, w, stride, pad, dil, groups=c) + b[None, :, None, None]))


def test_depthwise_epilogue_without_a_float8_form_runs_lane_by_lane():
    """A leaky ReLU (a comparison: no float8 form here) after the conv: the float8 accumulator's lanes are
    finished one by one; a residual add reads the strip as float8."""
    x, w, skip = rnd(2, 3, 4, 32), rnd(3, 1, 3, 3), rnd(2, 3, 4, 32)
    y = Tensor(x, device="CL").conv2d(Tensor(w, device="CL"), padding=1, groups=3) + Tensor(skip, device="CL")
    out = (y > 0).where(y, y * 0.1)
    prg = program_for(out.schedule()[-1])
    assert prg.opts.depthwise is not None and re.search(r"accv\d+\.s7", prg.src)
    ref = np_conv(x, w, pad=(1, 1), groups=3) + skip
    close(out.numpy(), np.where(ref > 0, ref, ref * 0.1))


@pytest.mark.parametrize("lanes", [2, 4, 8])
def test_depthwise_strip_lengths_compute_the_conv(lanes):
    """Every strip length WB_SEARCH may time gives the conv (a row of 24: each divides it)."""
    x, w = rnd(2, 3, 6, 24), rnd(3, 1, 5, 5)
    k = Tensor(x, device="CL").conv2d(Tensor(w, device="CL"), padding=2, groups=3).schedule()[-1]
    prg = render_program(k, KernelOpts(depthwise=(lanes,)))
    assert prg.opts.depthwise == (lanes,)
    dev = get_cl_device(0)
    out = dev.alloc(k.out.size, k.out.dtype)
    dev.launch(dev.compile(prg.src, prg.name), prg.global_size, prg.local_size,
               [out] + [n.buffer for n in k.buffers[1:]], wait=True)
    close(out.numpy().reshape(2, 3, 6, 24), np_conv(x, w, pad=(2, 2), groups=3))
    assert ("float8 accv" in prg.src) == (lanes == 8)


def test_depthwise_nan_weight_propagates_through_padding():
    """A tap that only ever reads padding still multiplies its weight (0 * inf is NaN), as REF does."""
    x, w = rnd(1, 2, 1, 32), rnd(2, 1, 3, 3)
    w[0, 0, 0, 0] = np.inf
    t = Tensor(x, device="CL").conv2d(Tensor(w, device="CL"), padding=1, groups=2)
    assert program_for(t.schedule()[-1]).opts.depthwise is not None
    ref = Tensor(x, device="REF").conv2d(Tensor(w, device="REF"), padding=1, groups=2).numpy()
    np.testing.assert_array_equal(np.isnan(t.numpy()), np.isnan(ref))


def test_plain_matmul_and_dense_conv_keep_their_kernels():
    """Only sliding windows take the strip kernel; a matmul with a short reduce and a dense conv do not."""
    a, b = rnd(16, 9), rnd(9, 40)
    t = Tensor(a, device="CL") @ Tensor(b, device="CL")
    assert program_for(t.schedule()[-1]).opts.depthwise is None
    close(t.numpy(), a @ b)
    x, w = rnd(2, 4, 8, 16), rnd(6, 4, 3, 3)
    t = Tensor(x, device="CL").conv2d(Tensor(w, device="CL"), padding=1)
    assert program_for(t.schedule()[-1]).opts.depthwise is None
    close(t.numpy(), np_conv(x, w, pad=(1, 1)))


@pytest.mark.parametrize("shape,cout", [((8, 32, 2, 96), 200), ((2, 16, 3, 10), 24), ((1, 8, 5, 7), 5)])
def test_pointwise_conv_takes_the_swapped_gemm(shape, cout):
    """1x1 convs: the GEMM with the weights as A and the pixels as B (whole rows per tile where they fit,
    rows not a multiple of 8, fewer output channels than a tile), with a fused bias and ReLU."""
    x, w, b = rnd(*shape), rnd(cout, shape[1], 1, 1), rnd(cout)
    out = Tensor(x, device="CL").conv2d(Tensor(w, device="CL"), Tensor(b, device="CL")).relu()
    ks = out.schedule()
    opts = program_for(ks[-1]).opts
    if shape[2] * shape[3] * shape[0] * cout * shape[1] >= 2**17:
        assert opts.gemm is not None and opts.pointwise
    close(out.numpy(), np.maximum(np_conv(x, w) + b[None, :, None, None], 0))


def test_pointwise_candidates_compute_the_conv():
    from compiler.render_pointwise import pointwise_candidates, pointwise_plan

    x, w = rnd(2, 24, 3, 32), rnd(40, 24, 1, 1)
    k = Tensor(x, device="CL").conv2d(Tensor(w, device="CL")).schedule()[-1]
    plan = pointwise_plan(k)
    assert plan is not None
    dev = get_cl_device(0)
    cands = pointwise_candidates(plan, k.full_shape)
    assert len(cands) >= 6
    for opts in cands[::4]:  # a spread of them: each one compiled costs ~0.5 s cold
        prg = render_program(k, opts)
        out = dev.alloc(k.out.size, k.out.dtype)
        dev.launch(dev.compile(prg.src, prg.name), prg.global_size, prg.local_size,
                   [out] + [n.buffer for n in k.buffers[1:]], wait=True)
        close(out.numpy().reshape(2, 40, 3, 32), np_conv(x, w))


def test_conv_with_few_output_channels_takes_the_swapped_gemm():
    """A stem conv (3 -> 8 channels, 3x3, stride 2, padded): its 8 channels would fill half the float8
    columns of a tile, so the pixels are the columns."""
    x, w, b = rnd(2, 3, 24, 90), rnd(8, 3, 3, 3), rnd(8)
    out = Tensor(x, device="CL").conv2d(Tensor(w, device="CL"), Tensor(b, device="CL"), stride=2, padding=1)
    opts = program_for(out.schedule()[-1]).opts
    assert opts.gemm is not None and opts.pointwise
    close(out.numpy(), np_conv(x, w, (2, 2), (1, 1)) + b[None, :, None, None])
