"""The memo of schedules by graph structure (compiler/schedule_cache.py): a repeated structure reuses its
plan, and anything that changes the kernels (shape, dtype, constant, view, shared inputs) makes a new one
with the right values; plans hold no buffers and the memo is bounded."""

import gc
import weakref

import numpy as np
import pytest

from compiler import Device, Tensor
from compiler.schedule_cache import PLANS, PlanCache, graph_key
from tests.plan_example import arr, f, ref, t

if "CL" not in Device.available():
    pytest.skip("the plan memo serves device backends (REF evaluates nodes directly)", allow_module_level=True)


@pytest.fixture(autouse=True)
def fresh_memo():
    PLANS.clear()
    yield
    PLANS.clear()


def run(*tensors_fn):
    before = PLANS.misses
    out = tensors_fn[0](*tensors_fn[1:]).numpy()
    return out, PLANS.misses - before


def test_same_structure_reuses_the_plan_with_new_data():
    x, w, b = arr(8, 16), arr(16, 12, seed=1), arr(12, seed=2)
    out, missed = run(f, t(x), t(w), t(b))
    assert missed == 1
    np.testing.assert_allclose(out, ref(x, w, b), rtol=1e-5, atol=1e-6)
    for seed in (3, 4):  # new inputs each call: the plan binds this call's buffers, never the first call's
        x2, w2 = arr(8, 16, seed=seed), arr(16, 12, seed=seed + 10)
        out, missed = run(f, t(x2), t(w2), t(b))
        assert missed == 0
        np.testing.assert_allclose(out, ref(x2, w2, b), rtol=1e-5, atol=1e-6)
    assert PLANS.hits >= 2


@pytest.mark.parametrize(
    ("variant", "new_plan"),
    [
        (lambda x: (x * 2.0).sum(-1), False),  # the base itself
        (lambda x: (x * 3.0).sum(-1), True),  # another constant
        (lambda x: (x * -0.0).sum(-1), True),  # -0.0 is not 0.0
        (lambda x: (x * 2.0).sum(0), True),  # another reduce axis
        (lambda x: (x.T * 2.0).sum(-1), True),  # a view
        (lambda x: (x[1:] * 2.0).sum(-1), True),  # a shrink
        (lambda x: (x.cast("float16") * 2.0).sum(-1), True),  # another dtype
    ],
)
def test_a_changed_graph_gets_its_own_plan(variant, new_plan):
    a = arr(6, 6, seed=5)
    run(lambda x: (x * 2.0).sum(-1), t(a))
    out, missed = run(variant, t(a))
    assert missed == int(new_plan)
    np.testing.assert_allclose(out, variant(Tensor(a, device="REF")).numpy(), rtol=1e-3, atol=1e-3)


def test_negative_zero_constant_keeps_its_sign():
    x = t(np.ones(4, np.float32))
    assert not np.signbit((x * 0.0).numpy()).any()
    assert np.signbit((x * -0.0).numpy()).all()


def test_shape_change_makes_a_new_plan():
    for n in (8, 9, 8):
        x, w, b = arr(n, 16, seed=n), arr(16, 12, seed=1), arr(12, seed=2)
        out, _ = run(f, t(x), t(w), t(b))
        np.testing.assert_allclose(out, ref(x, w, b), rtol=1e-5, atol=1e-6)
    assert PLANS.misses == 2 and PLANS.hits == 1


def test_shared_input_is_part_of_the_structure():
    a, b = arr(5, 7, seed=1), arr(5, 7, seed=2)
    ta, tb = t(a), t(b)
    np.testing.assert_allclose((ta * tb + ta).numpy(), a * b + a, rtol=1e-6)
    # one buffer in both slots is another structure than two buffers
    np.testing.assert_allclose((ta * ta + tb).numpy(), a * a + b, rtol=1e-6)
    assert PLANS.misses == 2
    np.testing.assert_allclose((tb * ta + tb).numpy(), b * a + b, rtol=1e-6)
    assert PLANS.misses == 2


def test_realized_intermediate_is_a_leaf():
    a = arr(4, 8, seed=3)
    x = t(a)
    y = x * 2.0
    np.testing.assert_allclose(y.exp2().sum(-1).numpy(), np.exp2(a * 2).sum(-1), rtol=1e-5)
    y2 = x * 2.0
    y2.realize()  # now a buffer: the same ops above it are another graph
    np.testing.assert_allclose(y2.exp2().sum(-1).numpy(), np.exp2(a * 2).sum(-1), rtol=1e-5)
    assert PLANS.misses == 3


def test_plans_hold_no_buffers():
    x = t(arr(4, 4))
    ref_node = weakref.ref(x.node)
    out = (x + 1.0).exp2().sum()
    ref_out = weakref.ref(out.node)
    out.numpy()
    assert len(PLANS.plans) == 1
    del x, out
    gc.collect()
    assert ref_node() is None and ref_out() is None  # nothing in the memo keeps the graph (or its buffers)
    for plan in PLANS.plans.values():
        assert all(isinstance(i, int) for s in plan.steps for i in (s.out, *s.inputs))


def test_memo_is_bounded_lru():
    memo = PlanCache(size=2)
    memo.put(("a",), "A")
    memo.put(("b",), "B")
    assert memo.get(("a",)) == "A"  # a is now the most recent
    memo.put(("c",), "C")
    assert memo.get(("b",)) is None and memo.get(("a",)) == "A" and memo.get(("c",)) == "C"
    assert len(memo.plans) == 2


def test_memo_lru_order_with_repeated_hits_of_the_newest_plan():
    memo = PlanCache(size=2)
    memo.put(("a",), "A")
    memo.put(("b",), "B")
    for _ in range(3):
        assert memo.get(("b",)) == "B"  # already the newest: the order stays a, b
    assert memo.get(("a",)) == "A"  # now b is the oldest
    memo.put(("c",), "C")
    assert memo.get(("b",)) is None and list(memo.plans) == [("a",), ("c",)]
    assert memo.get(("a",)) == "A" and list(memo.plans) == [("c",), ("a",)]
    memo.clear()
    memo.put(("d",), "D")
    assert memo.get(("d",)) == "D" and list(memo.plans) == [("d",)]


def test_memo_is_bounded_by_nodes():
    memo = PlanCache(size=100, max_nodes=10)
    for i in range(5):
        memo.put(((("row",),) * 4, (0,), None, i), f"plan{i}")  # keys of 4 nodes each
    assert memo.nodes <= 10 and len(memo.plans) == 2
    assert memo.get(((("row",),) * 4, (0,), None, 4)) == "plan4"
    memo.put(((("row",),) * 50, (0,), None, "big"), "big")  # larger than the bound alone: kept alone
    assert list(memo.plans.values()) == ["big"]


def test_graph_key_ignores_data_and_node_ids():
    a, b = t(arr(3, 3, seed=1)), t(arr(3, 3, seed=2))
    k1, n1 = graph_key([(a + b).exp2().node])
    k2, n2 = graph_key([(b + a).exp2().node])
    assert k1 == k2 and len(n1) == len(n2) == 4
    k3, _ = graph_key([(a + a).exp2().node])
    assert k3 != k1


def test_graph_key_tells_a_shared_node_from_two_equal_ones():
    a = t(arr(3, 3, seed=1))
    y = a * 2.0
    shared, n1 = graph_key([(y + y).node])
    twice, n2 = graph_key([((a * 2.0) + (a * 2.0)).node])
    assert shared != twice and len(n1) + 2 == len(n2)  # one MUL and its CONST, against two of each
    again, _ = graph_key([((a * 2.0) + (a * 2.0)).node])
    assert again == twice
    # sources come before the nodes that read them, so a plan's steps can run in number order
    for i, n in enumerate(n2):
        assert all(n2.index(s) < i for s in n.src)


def test_memo_off_and_debug_paths_agree(monkeypatch, capsys):
    x, w, b = arr(8, 16), arr(16, 12, seed=1), arr(12, seed=2)
    expect = ref(x, w, b)
    monkeypatch.setenv("WB_PLAN_CACHE", "0")
    np.testing.assert_allclose(f(t(x), t(w), t(b)).numpy(), expect, rtol=1e-5, atol=1e-6)
    assert PLANS.misses == 0
    monkeypatch.setenv("WB_PLAN_CACHE", "1")
    monkeypatch.setenv("WB_DEBUG", "1")
    np.testing.assert_allclose(f(t(x), t(w), t(b)).numpy(), expect, rtol=1e-5, atol=1e-6)
    assert "GFLOP/s" in capsys.readouterr().out


def test_a_re_registered_backend_is_not_served_old_plans():
    from compiler.backend import register_backend
    from compiler.backend_opencl import OpenCLBackend

    a = arr(4, 8, seed=7)
    np.testing.assert_allclose((t(a) * 3.0).sum(-1).numpy(), (a * 3).sum(-1), rtol=1e-5)
    register_backend("CL", OpenCLBackend)  # a new backend object for CL: the plan made with the old one is stale
    np.testing.assert_allclose((t(a) * 3.0).sum(-1).numpy(), (a * 3).sum(-1), rtol=1e-5)
    assert PLANS.misses == 2 and PLANS.hits == 0


def test_the_graph_is_released_before_the_wait_for_its_kernels(monkeypatch):
    # freeing ~200 nodes and their key took ~0.1 ms at the end of each eager GPT-2 block call: it now
    # happens while the kernels run, so the wait is the last thing realize does
    from compiler.backend_opencl import OpenCLBackend

    real = OpenCLBackend.synchronize
    probe, seen = [], []

    def synchronize(self):
        seen.append(probe[-1]())
        real(self)

    a = arr(8, 16, seed=3)
    for _ in range(2):  # the second call hits the memoized plan
        x = t(a)
        inner = (x * 2.0).exp2()  # fused into the reduce's kernel: never a buffer of its own
        out = inner.sum(-1) + 1.0
        probe.append(weakref.ref(inner.node))
        del inner
        monkeypatch.setattr(OpenCLBackend, "synchronize", synchronize)
        np.testing.assert_allclose(out.numpy(), np.exp2(a * 2).sum(-1) + 1, rtol=1e-5)
        monkeypatch.undo()
    assert seen == [None, None]
    assert PLANS.hits == 1
