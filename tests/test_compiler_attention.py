"""Attention as one kernel on CPU OpenCL devices (compiler/schedule_attention.py, render_attention.py): the
composite's five kernels become one where it applies, with numpy's values (NaN and inf included), and stay
five where it does not."""

import math

import numpy as np
import pytest

from compiler import Device, Tensor, schedule_ahead
from compiler.autograd import no_grad
from compiler.jit import jit
from compiler.schedule_cache import PLANS

if "CL" not in Device.available():
    pytest.skip("the fused kernel is an OpenCL template", allow_module_level=True)

RNG = np.random.default_rng(11)


def arr(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def t(a):
    return Tensor(a, device="CL")


def np_sdpa(q, k, v, causal):
    with np.errstate(invalid="ignore"):
        s = q.astype(np.float64) @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
        if causal:
            s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
        e = np.exp(s - s.max(-1, keepdims=True))
        return (e / e.sum(-1, keepdims=True)) @ v


def sdpa(q, k, v, causal=True, **kw):
    return q.scaled_dot_product_attention(k, v, is_causal=causal, **kw)


def kernels_of(out) -> list[str]:
    return [k.name for k in out.schedule()]


def third_call(fn, *arrays):
    """fn's output on its third call (the first records the composite, later ones rebuild it), and the names
    of the kernels that call scheduled."""
    for _ in range(2):
        fn(*arrays).numpy()
    out = fn(*arrays)
    return out, kernels_of(out)


@pytest.mark.parametrize(
    "qshape, kv_len, dv, causal",
    [
        ((1, 12, 128, 64), 128, 64, True),  # GPT-2 small's heads
        ((2, 3, 7, 8), 7, 8, True),  # fewer rows than a block, one 8-wide V tile
        ((2, 3, 13, 16), 13, 16, False),
        ((3, 40, 5), 40, 24, True),  # three dims, odd d, three 8-wide V tiles
        ((9, 16), 21, 16, True),  # no batch dims, more keys than queries (top-left causal mask)
        ((2, 20, 8), 9, 8, True),  # more queries than keys
        ((1, 2, 37, 32), 37, 32, False),
        ((1, 2, 300, 64), 300, 64, True),  # three chunks of keys, two groups of rows
        ((2, 130, 16), 257, 16, True),  # more keys than queries, across chunks
        ((1, 400, 32), 400, 32, False),
        ((1, 2, 50, 256), 50, 256, True),  # wide heads: smaller row groups and chunks
    ],
)
def test_fused_attention_matches_numpy(qshape, kv_len, dv, causal):
    q, k = arr(*qshape), arr(*qshape[:-2], kv_len, qshape[-1])
    v = arr(*qshape[:-2], kv_len, dv)
    out, names = third_call(lambda a, b, c: sdpa(t(a), t(b), t(c), causal), q, k, v)
    assert names == ["attn_" + "_".join(map(str, (*qshape[:-1], kv_len, qshape[-1])))]
    np.testing.assert_allclose(out.numpy(), np_sdpa(q, k, v, causal), rtol=2e-5, atol=2e-6)


def test_gpt2_heads_read_in_place_and_agree_with_the_five_kernels(monkeypatch):
    """q, k, v as GPT-2 makes them (a (T, H*dh) projection viewed as heads): read through their views, and
    the same values as the composite's own kernels to float32 rounding."""
    x = [arr(1, 50, 96) for _ in range(3)]

    def heads(y):
        return y.reshape(1, 50, 4, 24).permute(0, 2, 1, 3)

    def block(a, b, c):
        return sdpa(heads(t(a)), heads(t(b)), heads(t(c))).permute(0, 2, 1, 3).reshape(1, 50, 96)

    fused, names = third_call(block, *x)
    assert sum(n.startswith("attn_") for n in names) == 1 and len(names) == 2  # and the final copy
    got = fused.numpy()
    monkeypatch.setenv("WB_FUSED_ATTENTION", "0")
    plain, names = third_call(block, *x)
    assert not any(n.startswith("attn_") for n in names) and len(names) == 6
    np.testing.assert_allclose(got, plain.numpy(), rtol=1e-5, atol=1e-6)
    h = [a.reshape(1, 50, 4, 24).transpose(0, 2, 1, 3) for a in x]
    want = np_sdpa(*h, True).transpose(0, 2, 1, 3).reshape(1, 50, 96)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_new_data_every_call_through_the_memoized_plan():
    k, v = t(arr(2, 30, 16)), t(arr(2, 30, 16))
    for _ in range(4):
        q = arr(2, 30, 16)
        got = sdpa(t(q), k, v).numpy()
        np.testing.assert_allclose(got, np_sdpa(q, k.numpy(), v.numpy(), True), rtol=2e-5, atol=2e-6)


def test_a_long_sequence_skips_masked_chunks_unless_v_is_not_finite():
    """Rows of the first group never visit the last chunks under a causal mask; an inf in V there must still
    give numpy's NaN (0 * inf) in the rows it is masked from, and nothing else changes."""
    q, k, v = arr(1, 400, 16), arr(1, 400, 16), arr(1, 400, 16)
    fn = lambda a, b, c: sdpa(t(a), t(b), t(c))  # noqa: E731
    out, names = third_call(fn, q, k, v)
    assert names == ["attn_1_400_400_16"]
    np.testing.assert_allclose(out.numpy(), np_sdpa(q, k, v, True), rtol=2e-5, atol=2e-6)
    v[0, 350, 3] = np.inf
    got, want = fn(q, k, v).numpy(), np_sdpa(q, k, v, True)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got[0, :350, 3]).all() and np.isinf(got[0, 350:, 3]).all()
    ok = np.isfinite(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=2e-5, atol=2e-6)


def test_a_device_with_little_local_memory_gets_smaller_tiles_or_the_five_kernels(monkeypatch):
    """Other CPU OpenCL drivers offer as little as 32 KiB of local memory a work-group (PoCL: 512)."""
    from compiler import render_attention
    from compiler.optimizer import _local_mem_bytes

    monkeypatch.setattr(render_attention, "LOCAL_BYTES", 32 << 10)
    assert render_attention.tiles(70, 40, 40, _local_mem_bytes("CL")) == (24, 32)
    q, k, v = arr(1, 3, 70, 40), arr(1, 3, 70, 40), arr(1, 3, 70, 40)  # a shape no other test compiles
    out, names = third_call(lambda a, b, c: sdpa(t(a), t(b), t(c)), q, k, v)
    assert names == ["attn_1_3_70_70_40"]
    np.testing.assert_allclose(out.numpy(), np_sdpa(q, k, v, True), rtol=2e-5, atol=2e-6)
    monkeypatch.setattr(render_attention, "LOCAL_BYTES", 8 << 10)
    q, k, v = arr(1, 3, 71, 40), arr(1, 3, 71, 40), arr(1, 3, 71, 40)
    out, names = third_call(lambda a, b, c: sdpa(t(a), t(b), t(c)), q, k, v)
    assert not any(n.startswith("attn_") for n in names)
    np.testing.assert_allclose(out.numpy(), np_sdpa(q, k, v, True), rtol=2e-5, atol=2e-6)


def test_a_computed_input_is_realized_by_its_own_kernel_first():
    q, k, v = arr(2, 12, 8), arr(2, 12, 8), arr(2, 12, 8)
    out, names = third_call(lambda a, b, c: sdpa(t(a) * 2.0, t(b).exp(), t(c)), q, k, v)
    assert names[-1] == "attn_2_12_12_8" and len(names) == 3
    np.testing.assert_allclose(out.numpy(), np_sdpa(q * 2, np.exp(k), v, True), rtol=2e-5, atol=2e-6)


def test_nan_and_inf_as_numpy():
    """A NaN query row makes that row NaN; an inf in V at a key masked from a block's rows still gives
    numpy's NaN (0 * inf) there, so the fused kernel visits every key when V is not finite."""
    q, k, v = arr(1, 20, 8), arr(1, 20, 8), arr(1, 20, 8)
    q[0, 3, 2] = np.nan
    v[0, 17, 5] = np.inf
    k[0, 19, 0] = np.inf  # masked from every row but the last
    out, names = third_call(lambda a, b, c: sdpa(t(a), t(b), t(c)), q, k, v)
    assert names == ["attn_1_20_20_8"]
    want = np_sdpa(q, k, v, True)
    got = out.numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got[0, :17, 5]).all()  # 0 * inf from the masked key 17, in rows of blocks before it
    assert np.isnan(got[0, 3]).all() and np.isfinite(got[0, :3, :5]).all()
    ok = np.isfinite(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("case", ["mask tensor", "gradient", "v width", "head width", "padded input", "REF"])
def test_where_it_does_not_apply_the_composite_runs_as_before(case):
    q, k, v = arr(2, 12, 8), arr(2, 12, 8), arr(2, 12, 8)
    kw, dev = {}, "CL"
    if case == "mask tensor":
        kw["attn_mask"] = Tensor(np.tril(np.ones((12, 12), bool)), device="CL")
    elif case == "v width":
        v = arr(2, 12, 6)
    elif case == "head width":  # K^T and V chunks of 1024-wide heads do not fit a work-group's local memory
        q, k, v = arr(1, 6, 1024), arr(1, 6, 1024), arr(1, 6, 1024)
    if case == "gradient":
        def fn(a, b, c):
            return sdpa(Tensor(a, device="CL", requires_grad=True), t(b), t(c))
    elif case == "padded input":
        def fn(a, b, c):
            return sdpa(t(a).pad(((0, 0), (0, 1), (0, 0))), t(b).pad(((0, 0), (0, 1), (0, 0))),
                        t(c).pad(((0, 0), (0, 1), (0, 0))))
        want = np_sdpa(*(np.pad(x, ((0, 0), (0, 1), (0, 0))) for x in (q, k, v)), True)
    elif case == "REF":
        dev = "REF"

        def fn(a, b, c):
            return sdpa(Tensor(a, device="REF"), Tensor(b, device="REF"), Tensor(c, device="REF"))
    else:
        def fn(a, b, c):
            return sdpa(t(a), t(b), t(c), causal=not kw, **kw)
    if case != "padded input":
        want = np_sdpa(q, k, v, True)
    for _ in range(2):
        fn(q, k, v).numpy()
    out = fn(q, k, v)
    if dev == "CL":
        assert not any(n.startswith("attn_") for n in kernels_of(out))
    np.testing.assert_allclose(out.numpy(), want, rtol=2e-5, atol=2e-6)


def test_launching_ahead_and_the_jit_run_the_fused_kernel(monkeypatch):
    monkeypatch.setenv("WB_LAUNCH_AHEAD", "1")
    PLANS.clear()
    k, v = t(arr(2, 30, 16)), t(arr(2, 30, 16))
    before = schedule_ahead.LAUNCHED[0]
    for _ in range(5):
        q = arr(2, 30, 16)
        got = sdpa(t(q), k, v).numpy()
        np.testing.assert_allclose(got, np_sdpa(q, k.numpy(), v.numpy(), True), rtol=2e-5, atol=2e-6)
    assert schedule_ahead.LAUNCHED[0] > before
    monkeypatch.delenv("WB_LAUNCH_AHEAD")
    step = jit(lambda a: sdpa(a, k, v).realize())
    for _ in range(4):
        q = arr(2, 30, 16)
        np.testing.assert_allclose(step(t(q)).numpy(), np_sdpa(q, k.numpy(), v.numpy(), True),
                                   rtol=2e-5, atol=2e-6)
    PLANS.clear()


def test_gpt2_block_without_gradients_fuses_its_attention():
    from compiler.nn import GPT2Block

    blk = GPT2Block(d_model=32, n_heads=2, d_hidden=64, device="CL")
    x = Tensor.rand(1, 8, 32, device="CL", seed=3)
    with no_grad():
        outs = [blk(x) for _ in range(3)]
        names = kernels_of(outs[-1])
        got = [o.numpy() for o in outs]
    assert "attn_1_2_8_8_16" in names and len(names) == 11
    np.testing.assert_allclose(got[2], got[0], rtol=1e-5, atol=1e-6)  # the first call ran five kernels
