"""The CPU kernel templates' less common paths: the matrix-vector kernel (`x @ W` with W stored in x out)
and the conv pack that copies in-range runs of a padded window. Odd sizes (not multiples of the vector
width, the unroll or the tile), a few rows, batch dims, strided views and fused epilogues, against numpy."""

import numpy as np
import pytest

from compiler import Device, Tensor
from compiler.backend import program_for
from compiler.kernel_ir import KernelOpts
from compiler.optimizer import render_program
from compiler.runtime_opencl import get_cl_device

pytestmark = pytest.mark.skipif("CL" not in Device.available(), reason="no OpenCL device")
rng = np.random.default_rng(3)


def rnd(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def close(out, ref, tol=2e-4):
    ref = np.asarray(ref, np.float32)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * max(1.0, float(np.abs(ref).max())))


def np_conv(x, w, pad):
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = w.shape[2:]
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    return np.einsum("nchwij,ocij->nohw", win, w)


def opts_of(t: Tensor) -> KernelOpts:
    return program_for(t.schedule()[-1]).opts


@pytest.mark.parametrize("rows,k,n", [(1, 515, 261), (3, 300, 517), (4, 257, 136), (1, 4100, 40)])
def test_x_at_w_takes_the_matrix_vector_kernel(rows, k, n):
    x, w = rnd(rows, k), rnd(k, n)
    out = Tensor(x, device="CL") @ Tensor(w, device="CL")
    assert opts_of(out).gemv is not None
    close(out.numpy(), x @ w)


def test_matrix_vector_with_batch_epilogue_and_views():
    x, w, b = rnd(2, 1, 300), rnd(2, 300, 450), rnd(450)
    out = ((Tensor(x, device="CL") @ Tensor(w, device="CL")) + Tensor(b, device="CL")).gelu()
    assert opts_of(out).gemv is not None
    ref = x @ w + b
    close(out.numpy(), 0.5 * ref * (1 + np.tanh(0.7978845608 * (ref + 0.044715 * ref**3))))
    # W a column slice of a wider matrix (row stride != N), x a strided column of a matrix
    wide, xs = rnd(400, 530), rnd(400, 3)
    out = Tensor(xs, device="CL")[:, 1].reshape(1, 400) @ Tensor(wide, device="CL")[:, 5:520]
    assert opts_of(out).gemv is not None
    close(out.numpy(), xs[:, 1].reshape(1, 400) @ wide[:, 5:520])
    # a 1-d vector times a matrix
    v = rnd(600)
    w2 = rnd(600, 300)
    close((Tensor(v, device="CL") @ Tensor(w2, device="CL")).numpy(), v @ w2)


def test_other_layouts_of_matrix_vector_products():
    """W @ x and x @ W.T read W along the reduce: the float8 reduce, not the matrix-vector kernel."""
    w, x = rnd(300, 700), rnd(700)
    W, X = Tensor(w, device="CL"), Tensor(x, device="CL")
    out = W @ X
    assert opts_of(out).gemv is None
    close(out.numpy(), w @ x)
    out = X.reshape(1, 700) @ W.T
    assert opts_of(out).gemv is None
    close(out.numpy(), x.reshape(1, 700) @ w.T)


@pytest.mark.parametrize("gemv", [(8, 1), (96, 8), (2048, 2)])
def test_matrix_vector_candidates_compute_the_product(gemv):
    """Every (NB, U) WB_SEARCH may pick gives the product, N and K not multiples of NB or U."""
    x, w = rnd(2, 203), rnd(203, 700)
    k = (Tensor(x, device="CL") @ Tensor(w, device="CL")).schedule()[0]
    prg = render_program(k, KernelOpts(gemv=gemv))
    assert prg.opts.gemv == gemv
    dev = get_cl_device(0)
    out = dev.alloc(k.out.size, k.out.dtype)
    dev.launch(dev.compile(prg.src, prg.name), prg.global_size, prg.local_size,
               [out] + [n.buffer for n in k.buffers[1:]], wait=True)
    close(out.numpy().reshape(2, 700), x @ w)


@pytest.mark.parametrize("batch,rows,k,n,cus", [(1, 1, 4099, 1031, 2), (2, 1, 301, 457, 2), (3, 2, 203, 1003, 2),
                                                 (3, 1, 77, 4105, 4), (2, 3, 301, 515, 3), (2, 1, 45, 9000, 1)])
def test_matrix_vector_default_split_computes_the_product(batch, rows, k, n, cus):
    """The default split over the compute units (a work-group count that is a multiple of them, segments
    capped at MAX_ACC accumulators) covers every column once for odd N and K, batches and rows."""
    from compiler.render_gemv import MAX_ACC, default_gemv, gemv_plan

    x, w = rnd(batch, rows, k), rnd(batch, k, n)
    kern = (Tensor(x, device="CL") @ Tensor(w, device="CL")).schedule()[0]
    gp = gemv_plan(kern)
    assert gp is not None
    nb, u = default_gemv(gp, cus)
    assert nb % 8 == 0 and nb * rows <= MAX_ACC
    assert (-(-n // min(nb, n // 8 * 8)) * batch) % cus == 0  # the work-groups the kernel launches
    prg = render_program(kern, KernelOpts(gemv=(nb, u)))
    dev = get_cl_device(0)
    out = dev.alloc(kern.out.size, kern.out.dtype)
    dev.launch(dev.compile(prg.src, prg.name), prg.global_size, prg.local_size,
               [out] + [b.buffer for b in kern.buffers[1:]], wait=True)
    close(out.numpy().reshape(batch, rows, n), x @ w)


@pytest.mark.parametrize("shape,cout,ksize,pad", [((3, 5, 13, 11), 9, 3, 1), ((2, 4, 9, 16), 12, 5, 2)])
def test_conv_pack_copies_in_range_runs(shape, cout, ksize, pad):
    """A padded conv packs each slab row as a bounded copy (odd widths, several rows per tile, batch > 1)."""
    x, w, b = rnd(*shape), rnd(cout, shape[1], ksize, ksize), rnd(cout)
    out = Tensor(x, device="CL").conv2d(Tensor(w, device="CL"), Tensor(b, device="CL"), padding=pad).relu()
    prg = program_for(out.schedule()[0])
    assert prg.opts.gemm is not None and "wlo" in prg.src
    ref = np.maximum(np_conv(x, w, pad) + b[None, :, None, None], 0)
    close(out.numpy(), ref)
    # the input as a permuted view: the window is no longer contiguous along the output row
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2))
    out = Tensor(xt, device="CL").permute(0, 1, 3, 2).conv2d(Tensor(w, device="CL"), padding=pad)
    ref = np_conv(x, w, pad)
    close(out.numpy(), ref)


def test_rendered_kernels_concatenate_into_one_program():
    """Helpers carry include guards, so a batched build can put many kernels in one OpenCL program."""
    import pyopencl as cl

    from compiler.runtime_opencl import BUILD_OPTIONS

    x = Tensor(rnd(4, 64), device="CL")
    srcs = [program_for(k) for k in (x.softmax(-1).schedule() + x.exp2().max(-1).schedule())]
    guards = [g for p in srcs for g in set(p.src.split()) if g.startswith("WB_HELPER_")]
    assert len(guards) > len(set(guards))  # some helper is defined by two of the kernels
    one = "".join(p.src.replace(f"void {p.name}(", f"void {p.name}_{i}(") for i, p in enumerate(srcs))
    dev = get_cl_device(0)
    prg = cl.Program(dev.ctx, one).build(options=BUILD_OPTIONS)
    assert len(prg.kernel_names.split(";")) == len(srcs)


def _run_gemm(k, gemm):
    """k rendered with the packed GEMM at the given (MB, NB, KB, MR, NV), run once; its output buffer."""
    prg = render_program(k, KernelOpts(gemm=gemm))
    assert prg.opts.gemm == gemm
    dev = get_cl_device(0)
    out = dev.alloc(k.out.size, k.out.dtype)
    dev.launch(dev.compile(prg.src, prg.name), prg.global_size, prg.local_size,
               [out] + [n.buffer for n in k.buffers[1:]], wait=True)
    return prg, out.numpy()


@pytest.mark.parametrize("gemm", [(66, 64, 196, 6, 2), (12, 32, 98, 6, 4), (18, 16, 49, 6, 2),
                                  (8, 24, 30, 8, 1), (20, 64, 28, 4, 2)])
def test_gemm_register_tiles_with_ragged_rows_compute_the_product(gemm):
    """Every register tile WB_SEARCH may pick gives x @ W + b: M, N and K not multiples of the tiles, the
    vector width or the reduce unroll, A read straight from memory with its last rows clamped."""
    x, w, b = rnd(70, 196), rnd(196, 100), rnd(100)
    k = ((Tensor(x, device="CL") @ Tensor(w, device="CL")) + Tensor(b, device="CL")).schedule()[-1]
    prg, out = _run_gemm(k, gemm)
    if 196 % gemm[2] == 0:
        assert "__local float As" not in prg.src  # A's rows walked by pointers, not packed
    close(out.reshape(70, 100), x @ w + b)


@pytest.mark.parametrize(("rows", "gemm"), [(128, (132, 32, 64, 6, 2)), (70, (24, 32, 64, 6, 2)),
                                            (10, (6, 32, 64, 6, 2)), (70, (20, 32, 64, 4, 2))])
def test_gemm_row_tail_computes_only_the_real_rows(rows, gemm):
    """When M's last tile ends inside a register tile (128 rows in tiles of 6), the last rows get a narrower
    register tile of their own, in the only tile or in the last of several (the others stay whole)."""
    x, w, b = rnd(rows, 512), rnd(512, 40), rnd(40)
    k = ((Tensor(x, device="CL") @ Tensor(w, device="CL")) + Tensor(b, device="CL")).schedule()[-1]
    prg, out = _run_gemm(k, gemm)
    assert "__local float As" not in prg.src and "const int mi" in prg.src
    close(out.reshape(rows, 40), x @ w + b)


@pytest.mark.parametrize("k_size", [40, 300])
def test_gemm_pack_prefetches_weight_rows_ahead(k_size):
    """A weight stored K x N is packed a row (N floats apart) at a time: each row prefetches the one
    PREFETCH_ROWS ahead, a cache line at a time, and stops short of the slab's end; each register tile
    prefetches its share of the next slab's rows, none after the last slab (the product stays exact)."""
    from compiler.render_gemm import LINE_FLOATS, PREFETCH_ROWS

    x, w, b = rnd(70, k_size), rnd(k_size, 256), rnd(256)
    k = ((Tensor(x, device="CL") @ Tensor(w, device="CL")) + Tensor(b, device="CL")).schedule()[-1]
    prg, out = _run_gemm(k, (72, 64, 20, 6, 2))
    assert f"k0 < {20 - PREFETCH_ROWS}) for (int j = 0; j < 64; j += {LINE_FLOATS})" in prg.src
    assert f"+{256 * PREFETCH_ROWS});" in prg.src  # the row PREFETCH_ROWS ahead of this one
    # 4 panels x 12 register tiles of rows share the next slab's 20 rows, one each; 4800: a slab of rows ahead
    assert f"if (kb < {k_size // 20 - 1}) {{ const int pt = (nj/16)*12+mi/6; for (int k0 = pt*1;" in prg.src
    assert f"+{20 * 256}); }}" in prg.src
    close(out.reshape(70, 256), x @ w + b)


def test_default_gemm_tiles_split_rows_evenly_and_take_the_direct_path():
    """The default for a linear layer with few rows (128 tokens) keeps them in one row tile of whole
    register tiles (the weights are packed once) unless the cores need more work-groups; A is read in
    place, and the epilogue stores only the real rows."""
    from compiler.render_gemm import register_tile

    x, w, b = rnd(128, 96), rnd(96, 512), rnd(512)
    out = (Tensor(x, device="CL") @ Tensor(w, device="CL")) + Tensor(b, device="CL")
    prg = program_for(out.schedule()[-1])
    mb, nb, _, mr, nv = prg.opts.gemm
    dev = get_cl_device(0).device
    assert (mr, nv) == register_tile(dev.preferred_vector_width_float)
    groups = -(-128 // mb) * -(-512 // nb)
    assert mb % mr == 0 and "__local float As" not in prg.src
    assert mb >= 128 or groups >= 4 * dev.max_compute_units  # split only to feed the cores
    close(out.numpy(), x @ w + b)
    assert register_tile(16) == (6, 4) and register_tile(8) == (6, 2) and register_tile(4) == (2, 2)


def test_gemm_batched_and_transposed_factors():
    """Batched products (attention's q @ k.T and p @ v) and a transposed A (its reduce index at a stride)
    through the GEMM template."""
    q, kt, v = rnd(3, 37, 96), rnd(3, 41, 96), rnd(3, 41, 90)
    Q, K, V = (Tensor(a, device="CL") for a in (q, kt, v))
    s = Q @ K.transpose(-1, -2)
    assert program_for(s.schedule()[-1]).opts.gemm is not None
    close(s.numpy(), q @ kt.transpose(0, 2, 1))
    p = rnd(3, 37, 41)
    pv = Tensor(p, device="CL") @ V
    assert program_for(pv.schedule()[-1]).opts.gemm is not None
    close(pv.numpy(), p @ v)
    a, w = rnd(150, 70), rnd(150, 90)  # A = a.T: 70 x 150, the reduce at a stride of 70
    k = (Tensor(a, device="CL").T @ Tensor(w, device="CL")).schedule()[-1]
    for gemm in [(36, 32, 150, 6, 2), (72, 64, 50, 6, 2)]:
        _, out = _run_gemm(k, gemm)
        close(out.reshape(70, 90), a.T @ w)


def test_gemm_reads_permuted_attention_heads_in_place():
    """An attention output projection reads the heads' (B, H, T, dh) output as (T, H*dh): slabs of whole
    heads make that a strided matrix, so A is read in place instead of packed through divisions."""
    a, w, b = rnd(1, 4, 40, 32), rnd(128, 40), rnd(40)
    y = Tensor(a, device="CL").permute(0, 2, 1, 3).reshape(1, 40, 128) @ Tensor(w, device="CL")
    y = y + Tensor(b, device="CL")
    prg = program_for(y.schedule()[-1])
    assert prg.opts.gemm is not None and 32 % prg.opts.gemm[2] == 0 and "__local float As" not in prg.src
    close(y.numpy(), a.transpose(0, 2, 1, 3).reshape(1, 40, 128) @ w + b)


def test_gemm_takes_many_small_attention_heads():
    """Attention's per-head products are small one by one (a 40 x 40 score block over 16 lanes) but many
    heads together are worth the GEMM template: q @ k.T, p @ v and their gradients, with q, k and v read as
    head views of one packed qkv projection, as in a transformer block."""
    bs, heads, t, dh = 4, 4, 40, 16
    qkv, p, g = rnd(bs, t, 3 * heads * dh), rnd(bs, heads, t, t), rnd(bs, heads, t, dh)
    QKV, P = Tensor(qkv, device="CL", requires_grad=True), Tensor(p, device="CL", requires_grad=True)
    q, k, v = (QKV[:, :, i * heads * dh:(i + 1) * heads * dh].reshape(bs, t, heads, dh).permute(0, 2, 1, 3)
               for i in range(3))
    s = q @ k.transpose(-1, -2)
    assert t * t * dh < 2**17 and opts_of(s).gemm is not None
    o = P @ v
    assert opts_of(o).gemm is not None
    qn, kn, vn = (qkv[:, :, i * heads * dh:(i + 1) * heads * dh].reshape(bs, t, heads, dh).transpose(0, 2, 1, 3)
                  for i in range(3))
    close(s.numpy(), qn @ kn.transpose(0, 1, 3, 2))
    close(o.numpy(), p @ vn)
    gs = rnd(bs, heads, t, t)
    ((s * Tensor(gs, device="CL")).sum() + (o * Tensor(g, device="CL")).sum()).backward()
    dq, dk, dv = gs @ kn, gs.transpose(0, 1, 3, 2) @ qn, p.transpose(0, 1, 3, 2) @ g
    close(QKV.grad.numpy(), np.concatenate([d.transpose(0, 2, 1, 3).reshape(bs, t, heads * dh) for d in (dq, dk, dv)], -1))
    close(P.grad.numpy(), g @ vn.transpose(0, 1, 3, 2))


def test_gemm_tiles_taken_from_the_counter_cover_every_output_once():
    """The GEMM's work-groups take tiles from the device's counter (batch, row and column tiles, ragged at
    both edges): every output is computed once, the counter is zero again after each launch, and a launch
    with more work-groups than tiles (the extra ones find none left) changes nothing."""
    from compiler.kernel_ir import TILE_COUNTER
    from compiler.render_gemm import gemm_plan

    x, w, b = rnd(3, 200, 70), rnd(3, 70, 150), rnd(150)
    kern = ((Tensor(x, device="CL") @ Tensor(w, device="CL")) + Tensor(b, device="CL")).schedule()[-1]
    assert gemm_plan(kern) is not None
    prg = render_program(kern, KernelOpts(gemm=(66, 64, 32, 6, 2)))
    assert TILE_COUNTER in prg.src and prg.global_size == (3, 4, 3)  # 150 / 64 columns, 200 / 66 rows, 3
    dev = get_cl_device(0)
    fn = dev.compile(prg.src, prg.name)
    for gsize in (prg.global_size, (3, 4, 5)):
        out = dev.alloc(kern.out.size, kern.out.dtype)
        out.copyin(np.full(kern.out.size, np.nan, np.float32))
        dev.launch(fn, gsize, prg.local_size, [out] + [n.buffer for n in kern.buffers[1:]], wait=True)
        close(out.numpy().reshape(3, 200, 150), x @ w + b)
        assert dev.tiles.numpy().tolist() == [0, 0]
