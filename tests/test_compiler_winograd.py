"""3x3 stride-1 convs on CPU CL devices by Winograd's F(2x2, 3x3) (compiler/render_winograd.py): against a
float64 numpy conv on ragged bands, odd rows, every padding, fused epilogues and both band heights; the
convs it must leave to the direct template; WB_WINOGRAD=0; and WB_SEARCH's candidates."""

import numpy as np
import pytest

from compiler import Device, Tensor
from compiler.backend import program_for
from compiler.kernel_ir import KernelOpts
from compiler.optimizer import candidate_opts, render_program
from compiler.render_winograd import winograd_plan

pytestmark = pytest.mark.skipif("CL" not in Device.available(), reason="no OpenCL device")
rng = np.random.default_rng(11)


def np_conv(x, w, pad):
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
    return np.einsum("nchwij,ocij->nohw", win, w.astype(np.float64), optimize=True)


def conv_case(shape, cout, pad):
    x = rng.standard_normal(shape).astype(np.float32)
    w = (rng.standard_normal((cout, shape[1], 3, 3)) / np.sqrt(9 * shape[1])).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    out = Tensor(x, device="CL").conv2d(Tensor(w, device="CL"), Tensor(b, device="CL"), padding=pad).relu()
    return out, np.maximum(np_conv(x, w, pad) + b[None, :, None, None], 0)


def close(out, ref, tol=2e-6):
    err = np.abs(out - ref).max() / max(1.0, np.abs(ref).max())
    assert err < tol, err


# (input, output channels, padding): a band of 4 output rows cut by the image's end (13, 21 rows), odd rows
# (11, 33 columns: the last tile's second column is computed and not stored), padding 0 and 2, one image
@pytest.mark.parametrize(
    "shape,cout,pad",
    [((2, 64, 13, 11), 32, 1), ((3, 48, 21, 33), 16, 1), ((1, 16, 18, 20), 32, 0), ((2, 16, 9, 20), 32, 2),
     ((1, 32, 30, 24), 48, 1)],
)  # fmt: skip
def test_winograd_conv_matches_numpy(shape, cout, pad):
    out, ref = conv_case(shape, cout, pad)
    prg = program_for(out.schedule()[-1])
    assert prg.opts.winograd is not None and prg.opts.gemm is None
    close(out.numpy(), ref)


@pytest.mark.parametrize("ty", [1, 2])
def test_both_band_heights_match_numpy(ty):
    out, ref = conv_case((2, 16, 17, 12), 16, 1)
    k = out.schedule()[-1]
    wp = winograd_plan(k)
    assert wp is not None
    prg = render_program(k, KernelOpts(winograd=(ty,)))
    assert f"int wn = wg / {-(-17 // (2 * ty))};" in prg.src
    close(_run_program(k, prg, out), ref)


def _run_program(k, prg, out):
    """Run program prg for kernel k on k's buffers (realizing `out` the usual way first makes them), and
    return the output it wrote."""
    from compiler.device import cl_index
    from compiler.runtime_opencl import get_cl_device

    dev = get_cl_device(cl_index(k.device))
    nodes = list(k.buffers)
    out.realize()  # realizes every input (and k's own output through the default program)
    bufs = [n.buffer for n in nodes]
    bufs[0].copyin(np.full(bufs[0].size, np.nan, np.float32))  # so only what prg writes can pass
    dev.launch(dev.compile(prg.src, prg.name), prg.global_size, prg.local_size, bufs, wait=True)
    return out.numpy()


@pytest.mark.parametrize(
    "stride,dilation,ksize,groups,cin",
    [(2, 1, 3, 1, 16), (1, 2, 3, 1, 16), (1, 1, 5, 1, 16), (1, 1, 3, 2, 32), (1, 1, 3, 1, 8)],
)  # fmt: skip
def test_other_convs_keep_the_direct_template(stride, dilation, ksize, groups, cin):
    x = rng.standard_normal((2, cin, 20, 20)).astype(np.float32)
    w = rng.standard_normal((32, cin // groups, ksize, ksize)).astype(np.float32)
    out = Tensor(x, device="CL").conv2d(Tensor(w, device="CL"), padding=1, stride=stride, dilation=dilation,
                                        groups=groups)
    assert program_for(out.schedule()[-1]).opts.winograd is None


def test_wb_winograd_0_keeps_the_direct_template(monkeypatch):
    monkeypatch.setenv("WB_WINOGRAD", "0")
    out, ref = conv_case((2, 16, 12, 16), 16, 1)
    prg = program_for(out.schedule()[-1])
    assert prg.opts.winograd is None and prg.opts.gemm is not None
    close(out.numpy(), ref, 1e-5)


def test_search_times_winograd_beside_the_direct_tiles():
    out, _ = conv_case((2, 16, 12, 16), 16, 1)
    opts = candidate_opts(out.schedule()[-1])
    assert any(o.winograd for o in opts) and any(o.gemm for o in opts)


def test_bf16_convs_keep_the_direct_template_and_their_weight_layout():
    """The template is float32 only; a bfloat16 conv of a shape it takes does not store its weight
    transposed for it either (an extra kernel for nothing)."""
    from compiler import dtypes

    x = Tensor(rng.standard_normal((2, 16, 12, 12)).astype(np.float32), device="CL").cast(dtypes.bfloat16)
    w = Tensor(rng.standard_normal((32, 16, 3, 3)).astype(np.float32), device="CL").cast(dtypes.bfloat16)
    ks = x.realize().conv2d(w.realize(), padding=1).schedule()
    assert len(ks) == 1 and program_for(ks[0]).opts.winograd is None
