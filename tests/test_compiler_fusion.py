"""Fusion counts asserted through Tensor.schedule(), and that the fused kernels compute the right values."""

import numpy as np
import pytest

from compiler import Device, Tensor
from compiler.backend import program_for

DEV = "CL" if "CL" in Device.available() else "REF"


def t(*shape):
    return Tensor(np.random.default_rng(1).standard_normal(shape).astype(np.float32), device=DEV)


def test_elementwise_chain_is_one_kernel():
    a, b, c = t(64, 32), t(64, 32), t(32)
    out = (a * b + c).relu().exp2()
    ks = out.schedule()
    assert len(ks) == 1 and ks[0].flops > 0 and ks[0].bytes == (64 * 32 * 3 + 32) * 4
    assert ks[0].name


def test_batched_matmul_is_one_kernel():
    assert len((t(3, 16, 8) @ t(3, 8, 12)).schedule()) == 1
    assert len((t(2, 1, 16, 8) @ t(4, 8, 12)).schedule()) == 1


def test_softmax_at_most_three_kernels():
    assert len(t(16, 64).softmax(-1).schedule()) <= 3
    assert len(t(16, 64).log_softmax(-1).schedule()) <= 3


def _exp_calls_per_element(out: Tensor) -> int:
    """How many exp2 evaluations each input element costs across out's kernels (calls in kernel bodies)."""
    if DEV != "CL":
        pytest.skip("counts calls in rendered OpenCL source")
    calls = 0
    for k in out.schedule():
        body = program_for(k).src.split("__kernel", 1)[1]  # helpers (the exp2 definitions) come before
        calls += body.count("wb_exp2v(") + body.count("wb_exp2(")
    return calls


def test_log_softmax_and_logsumexp_evaluate_exp_once_per_element():
    # exp's full-range reduction costs two exp2 per element; a shifted input (x - max <= 0) needs one
    assert _exp_calls_per_element(t(16, 64).log_softmax(-1)) == 1
    assert _exp_calls_per_element(t(16, 64).logsumexp(-1)) == 1


def test_softmax_evaluates_exp_at_most_twice_per_element():
    # the row sum and the final divide each evaluate exp2 once: storing exp(x - max) from the sum kernel
    # instead moves 8 more bytes per element and measured no faster (docs/benchmarks.md)
    assert _exp_calls_per_element(t(16, 64).softmax(-1)) <= 2


def test_conv2d_with_padding_is_one_kernel():
    assert len(t(1, 4, 8, 8).conv2d(t(8, 4, 3, 3), padding=1).schedule()) == 1
    assert len(t(1, 4, 8, 8).conv2d(t(8, 4, 3, 3), t(8), padding=1).schedule()) == 1


def test_reduce_absorbs_following_elementwise():
    assert len(t(8, 32).mean(-1).schedule()) == 1
    assert len((t(8, 32).sum(-1) * 2 + t(8)).schedule()) == 1


def test_schedule_does_not_run_anything():
    x = t(8, 8) + 1
    ks = x.schedule()
    assert not ks[-1].out.realized and not x.node.realized
    if DEV == "CL":
        assert "__kernel" in program_for(ks[0]).src


def test_broadcast_computed_value_is_realized_once():
    a = t(16, 1)
    x = (a.exp() + 1).expand(16, 64) * t(16, 64)
    assert len(x.schedule()) == 2
    np.testing.assert_allclose(x.numpy(), (np.exp(a.numpy()) + 1) * t(16, 64).numpy(), rtol=1e-5)


@pytest.mark.parametrize("op", ["sum", "max"])
def test_realized_inputs_are_reused(op):
    """Both reductions read the realized buffer itself: no kernel recomputes or copies it."""
    a = t(8, 8).realize()
    y = getattr(a, op)(0) + getattr(a, op)(1)
    kernels = y.schedule()
    assert len(kernels) == 2
    assert all(any(i is a.node for i in k.inputs) for k in kernels)
    np.testing.assert_allclose(y.numpy(), getattr(a.numpy(), op)(0) + getattr(a.numpy(), op)(1), rtol=1e-5)


def test_epilogue_fuses_values_used_twice():
    """gelu uses its input three times; the uses meet again, so linear + bias + gelu is one kernel."""
    x, w, b = t(16, 32), t(64, 32), t(64)
    y = x.linear(w, b).gelu()
    assert len(y.schedule()) == 1
    z = x.linear(w, b)
    ref = z.numpy()
    ref = 0.5 * ref * (1 + np.tanh(0.7978845608 * (ref + 0.044715 * ref**3)))
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-4, atol=1e-5)
    s = x.sum(-1)
    assert len(((s * 2).exp() + s).schedule()) == 1


def test_epilogue_stops_where_a_value_leaves():
    x = t(16, 32)
    m = x.max(-1, keepdim=True)
    out = (x - m).exp()  # m is broadcast: it must be realized on its own
    assert len(out.schedule()) == 2
