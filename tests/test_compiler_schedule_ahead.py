"""Kernels launched while the graph is built (compiler/schedule_ahead.py): a graph built again after the same
plan launches its kernels as their outputs are built, with this call's buffers; anything that differs from
last time (an input used twice, a constant, a later op, a realize in between) still gives the right values."""

import gc
import weakref

import numpy as np
import pytest

from compiler import Device, schedule_ahead
from compiler.schedule_cache import PLANS
from tests.plan_example import arr, f, ref, t

if "CL" not in Device.available():
    pytest.skip("plans serve device backends (REF evaluates nodes directly)", allow_module_level=True)


@pytest.fixture(autouse=True)
def fresh_memo(monkeypatch):
    monkeypatch.setenv("WB_LAUNCH_AHEAD", "1")  # launch ahead even where the device uses every core
    PLANS.clear()
    yield
    PLANS.clear()


def ahead(fn, *args) -> tuple[np.ndarray, int]:
    """fn(*args) as numpy, and how many kernels were launched ahead while it was built."""
    before = schedule_ahead.LAUNCHED[0]
    out = fn(*args).numpy()
    return out, schedule_ahead.LAUNCHED[0] - before


def test_a_repeated_graph_runs_ahead_on_each_calls_data():
    w, b = t(arr(16, 12, seed=1)), t(arr(12, seed=2))
    counts = []
    for seed in range(5):  # new input data (a new buffer) every call
        x = arr(8, 16, seed=10 + seed)
        out, n = ahead(f, t(x), w, b)
        np.testing.assert_allclose(out, ref(x, w.numpy(), b.numpy()), rtol=1e-5, atol=1e-6)
        counts.append(n)
    # first call: a new plan; second: the plan, recorded as what follows itself; then every kernel ahead
    assert counts[:2] == [0, 0] and min(counts[2:]) >= 2 and len(set(counts[2:])) == 1


def test_an_input_used_twice_is_not_two_inputs():
    a, c = arr(5, 7, seed=1), arr(5, 7, seed=2)
    ta, tc = t(a), t(c)

    def g(x, y):
        return (x * y + x).exp2().sum(-1)

    for _ in range(3):
        np.testing.assert_allclose(g(ta, tc).numpy(), np.exp2(a * c + a).sum(-1), rtol=1e-5)
    out, _ = ahead(g, ta, ta)  # same structure but one buffer in both slots
    np.testing.assert_allclose(out, np.exp2(a * a + a).sum(-1), rtol=1e-5)
    out, _ = ahead(g, tc, ta)  # the slots swapped
    np.testing.assert_allclose(out, np.exp2(c * a + c).sum(-1), rtol=1e-5)


def test_a_graph_that_differs_late_keeps_what_was_computed_ahead_right():
    a = arr(6, 32, seed=3)

    def g(x, last):
        s = (x * 2.0).exp2().sum(-1, keepdim=True)  # the first kernel
        return last(x / s)

    for _ in range(3):
        g(t(a), lambda y: y.max(-1)).numpy()
    s = np.exp2(a * 2).sum(-1, keepdims=True)
    out, n = ahead(g, t(a), lambda y: (y * 3.0).sum(-1))  # same first kernel, then another op
    assert n >= 1
    np.testing.assert_allclose(out, (a / s * 3).sum(-1), rtol=1e-5)
    for _ in range(3):  # the new graph, repeated, predicts itself
        out, n = ahead(g, t(a), lambda y: (y * 3.0).sum(-1))
        np.testing.assert_allclose(out, (a / s * 3).sum(-1), rtol=1e-5)
    assert n >= 2
    out, _ = ahead(g, t(a), lambda y: y.max(-1))
    np.testing.assert_allclose(out, (a / s).max(-1), rtol=1e-5)


def test_a_changed_constant_is_a_changed_graph():
    x = t(np.ones(4, np.float32))
    for _ in range(3):
        assert not np.signbit((x * 0.0).exp2().sum().numpy())
    got = ((x * -0.0) * 1.0).numpy()
    assert np.signbit(got).all()
    np.testing.assert_allclose(ahead(lambda y: (y * 3.0).exp2().sum(), x)[0], 4 * 2.0**3, rtol=1e-6)


def test_an_intermediate_realized_midway_and_an_abandoned_graph():
    a, w, b = arr(8, 16), arr(16, 12, seed=1), arr(12, seed=2)
    tw, tb = t(w), t(b)
    for _ in range(3):
        f(t(a), tw, tb).numpy()
    x = t(a)
    h = x @ tw + tb  # launched ahead if it is a kernel output; realizing it only waits
    np.testing.assert_allclose(h.numpy(), a @ w + b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(((h.relu() * 0.5).softmax(-1)).numpy(), ref(a, w, b), rtol=1e-5, atol=1e-6)
    f(t(a), tw, tb)  # built, never realized
    out = (t(a) @ tw).sum(-1).numpy()
    np.testing.assert_allclose(out, (a @ w).sum(-1), rtol=1e-4, atol=1e-4)
    for _ in range(3):
        np.testing.assert_allclose(f(t(a), tw, tb).numpy(), ref(a, w, b), rtol=1e-5, atol=1e-6)


def test_alternating_graphs_each_run_ahead():
    a = arr(4, 8, seed=4)
    x = t(a)
    fwd = lambda y: (y * 2.0).exp2().sum(-1)  # noqa: E731
    other = lambda y: (y - 1.0).max(-1)  # noqa: E731
    counts = []
    for _ in range(4):
        out, n1 = ahead(fwd, x)
        np.testing.assert_allclose(out, np.exp2(a * 2).sum(-1), rtol=1e-5)
        out, n2 = ahead(other, x)
        np.testing.assert_allclose(out, (a - 1).max(-1), rtol=1e-6)
        counts.append((n1, n2))
    assert counts[-1][0] >= 1 and counts[-1][1] >= 1


def test_by_default_only_where_a_core_is_left_for_python_beside_long_kernels(monkeypatch):
    monkeypatch.delenv("WB_LAUNCH_AHEAD")
    a = arr(4, 8, seed=5)
    x = t(a)
    counts = [ahead(lambda y: (y * 2.0).exp2().sum(-1), x)[1] for _ in range(4)]
    spare = schedule_ahead.pays("CL")  # a CPU device on fewer compute units than cores
    assert (counts[-1] > 0) == spare
    assert not schedule_ahead.pays("CUDA") and not schedule_ahead.pays("REF")


def test_nothing_is_held_after_the_call(monkeypatch):
    for _ in range(3):
        x = t(arr(4, 4))
        out = (x + 1.0).exp2().sum()
        out.numpy()
    refs = weakref.ref(x.node), weakref.ref(out.node)
    del x, out
    gc.collect()
    assert all(r() is None for r in refs)
    a = arr(4, 4, seed=9)
    for var, value in (("WB_LAUNCH_AHEAD", "0"), ("WB_DEBUG", "1")):  # nothing ahead, the same values
        monkeypatch.setenv(var, value)
        for _ in range(3):
            out, n = ahead(lambda y: (y + 1.0).exp2().sum(), t(a))
            assert n == 0
            np.testing.assert_allclose(out, np.exp2(a + 1).sum(), rtol=1e-5)
