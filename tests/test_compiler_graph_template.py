"""Composite ops rebuilt from recorded graph templates (compiler/graph_template.py): the same graph and the
same values as building them through the frontend, for every signature the memo tells apart."""

import math

import numpy as np
import pytest

from compiler import Tensor, lazy
from compiler.graph_template import _record
from compiler.ops import Ops
from compiler.schedule_cache import graph_key

RNG = np.random.default_rng(7)


def arr(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def t(a, **kw):
    return Tensor(a, device="REF", **kw)


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_layernorm(x, eps):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)


def np_sdpa(q, k, v, causal):
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    return np_softmax(s) @ v


CASES = {
    "gelu": (lambda x: x.gelu(),
             lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))),
    "exp": (lambda x: x.exp(), np.exp),
    "tanh": (lambda x: x.tanh(), np.tanh),
    "silu": (lambda x: x.silu(), lambda x: x / (1 + np.exp(-x))),
    "softmax": (lambda x: x.softmax(dim=0), lambda x: np_softmax(x, 0)),
    "log_softmax": (lambda x: x.log_softmax(-1), lambda x: np.log(np_softmax(x))),
    "logsumexp": (lambda x: x.logsumexp(-1), lambda x: np.log(np.exp(x).sum(-1))),
    "layernorm": (lambda x: x.layernorm(axis=-1, eps=1e-5), lambda x: np_layernorm(x, 1e-5)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_replayed_composite_builds_the_same_graph_with_the_new_data(name):
    op, ref = CASES[name]
    keys = []
    for _ in range(3):  # the first call records, the later ones replay
        x = arr(5, 8)
        out = op(t(x))
        keys.append(graph_key([out.node])[0])
        np.testing.assert_allclose(out.numpy(), ref(x), rtol=2e-5, atol=2e-6)
    assert keys[0] == keys[1] == keys[2]


def test_attention_signatures_one_tensor_twice_a_mask_from_before_and_causal():
    q, k, v = arr(2, 6, 4), arr(2, 6, 4), arr(2, 6, 4)
    for _ in range(2):
        for causal in (False, True):
            got = t(q).scaled_dot_product_attention(t(k), t(v), is_causal=causal).numpy()
            np.testing.assert_allclose(got, np_sdpa(q, k, v, causal), rtol=1e-5, atol=1e-6)
            same = t(q)
            got = same.scaled_dot_product_attention(same, same, is_causal=causal).numpy()
            np.testing.assert_allclose(got, np_sdpa(q, q, q, causal), rtol=1e-5, atol=1e-6)
    assert len(Tensor.scaled_dot_product_attention.templates) >= 4
    mask = arr(6, 6) > 0
    for _ in range(2):
        got = t(q).scaled_dot_product_attention(t(k), t(v), attn_mask=t(mask)).numpy()
        s = np.where(mask, q @ np.swapaxes(k, -1, -2) / 2.0, -np.inf)
        np.testing.assert_allclose(got, np_softmax(s) @ v, rtol=1e-5, atol=1e-6)


def test_other_arguments_shapes_and_dtypes_are_other_templates():
    x = arr(3, 8)
    for eps in (1e-5, 1.0, 1e-5):
        np.testing.assert_allclose(t(x).layernorm(eps=eps).numpy(), np_layernorm(x, eps), rtol=2e-5, atol=2e-6)
    for shape in ((3, 8), (4, 2, 8), (3, 8)):
        y = arr(*shape)
        np.testing.assert_allclose(t(y).softmax(-1).numpy(), np_softmax(y), rtol=1e-5, atol=1e-7)
    b = t(x).cast("bfloat16")
    for _ in range(2):
        out = b.exp()
        assert out.dtype.name == "bfloat16"
        np.testing.assert_allclose(out.float().numpy(), np.exp(b.float().numpy()), rtol=1e-2)


def test_gradients_through_a_replayed_composite(monkeypatch):
    x, g = arr(4, 8), arr(4, 8)

    def grad():
        w = t(x, requires_grad=True)
        (w.layernorm(eps=1e-5).gelu() * t(g)).sum().backward()
        return w.grad.numpy()

    first, replayed = grad(), grad()
    monkeypatch.setenv("WB_COMPOSITE_MEMO", "0")
    direct = grad()
    np.testing.assert_allclose(first, direct, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(replayed, direct, rtol=1e-6, atol=1e-7)


def test_a_graph_that_reads_an_unrealized_node_from_before_is_not_recorded():
    outside = (t(arr(3)) * 2.0).node  # made before the "call", not an input, not a buffer
    start = lazy.next_id()
    x = t(arr(3))
    out = (x * 3.0).node
    assert _record(out, [x.node], start) is not None
    mixed = lazy.alu(Ops.ADD, out, outside)
    assert _record(mixed, [x.node], start) is None


def test_conv2d_replayed_keeps_its_own_backward_rule(monkeypatch):
    """conv2d's result carries a backward rule of its own (autograd.record_composite): a replayed graph
    carries it too, so gradients agree with building the graph afresh."""
    x, w, g = arr(2, 3, 6, 6), arr(4, 3, 3, 3), arr(2, 4, 6, 6)

    def grads():
        xt, wt = t(x, requires_grad=True), t(w, requires_grad=True)
        out = xt.conv2d(wt, padding=1)
        (out * t(g)).sum().backward()
        return out.numpy(), xt.grad.numpy(), wt.grad.numpy()

    first, replayed = grads(), grads()
    assert Tensor.conv2d.templates
    monkeypatch.setenv("WB_COMPOSITE_MEMO", "0")
    direct = grads()
    for a, b, c in zip(first, replayed, direct, strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(b, c, rtol=1e-5, atol=1e-5)


def test_matmul_replayed_for_each_broadcast_signature():
    for sa, sb in (((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((2, 3, 4), (4, 5))):
        for _ in range(2):
            a, b = arr(*sa), arr(*sb)
            np.testing.assert_allclose((t(a) @ t(b)).numpy(), a @ b, rtol=1e-5, atol=1e-5)


def test_pooling_and_batchnorm_replayed():
    for _ in range(2):
        x = arr(2, 3, 6, 6)
        win = x.reshape(2, 3, 3, 2, 3, 2)
        np.testing.assert_allclose(t(x).max_pool2d(2).numpy(), win.max((3, 5)), rtol=1e-6)
        np.testing.assert_allclose(t(x).avg_pool2d(2).numpy(), win.mean((3, 5)), rtol=1e-5, atol=1e-6)
        m, v = arr(3), np.abs(arr(3)) + 0.5
        got = t(x).batchnorm(None, None, t(m), t(v)).numpy()
        want = (x - m.reshape(1, 3, 1, 1)) / np.sqrt(v.reshape(1, 3, 1, 1) + 1e-5)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_what_the_frontend_reads_of_an_input_joins_the_signature():
    """A long sum over a product of broadcast operands stays whole (the GEMM template takes it), over
    anything else it adds in blocks: layernorm over either input gets its own template and graph."""
    a, b = arr(8192), arr(1, 8192)
    plain = t(b)
    product = t(a).reshape(1, 8192).expand(2, 8192)[0:1] * t(b)  # broadcast operand: a contraction's shape
    from compiler.lazy import toposort

    def sums(x):  # the reduces layernorm built: one per sum kept whole, three per sum of 8192 in blocks
        return sum(n.op == Ops.SUM for n in toposort([x.layernorm().node]))

    assert [sums(x) for x in (product, plain, product, plain)] == [4, 6, 4, 6]
    np.testing.assert_allclose(product.layernorm().numpy(), np_layernorm(a[None] * b, 1e-5), rtol=1e-4, atol=1e-4)


def test_a_rebuilt_composite_is_one_row_of_the_graph_key():
    # graph_key describes a rebuild by its template's number and sources: the GPT-2 block's key went from
    # 216 rows to 68 (126 -> 58 us, and its lookup 25 -> 7 us)
    rows = []
    for _ in range(3):  # the first call records (and is marked too), the later ones replay
        x = t(arr(5, 8))
        out = x.softmax(-1)
        key, nodes = graph_key([out.node])
        assert key[0][-1][0] == out.node.unit[0] and len(key[0]) == 2  # the input leaf, then the softmax
        u = out.node.unit  # the nodes the recording made, or a packed rebuild's template rows
        inner = len(u[1]) if u[1] is not None else len(u[3]) - 1
        assert nodes[0] is x.node and nodes[-1] is out.node and len(nodes) == 2 + inner
        # the recording call made the inner nodes; a packed rebuild leaves their numbers empty
        assert all(n is None for n in nodes[1:-1]) == (out.node.src is lazy.PACKED)
        rows.append(key[0])
    assert rows[0] == rows[1] == rows[2]
    other = graph_key([t(arr(5, 8)).log_softmax(-1).node])[0]  # same shapes, another template
    assert other[0] != rows[0]


def test_a_composite_with_a_node_computed_inside_is_keyed_node_by_node():
    x = arr(4, 6)
    t(x).softmax(-1)  # recorded
    out = t(x).softmax(-1)
    lazy.expand(out.node)  # packed: make its inner nodes, as an unpacked rebuild would have
    inside = next(n for n in out.node.unit[1] if n.op in (Ops.MAX, Ops.SUM))
    Tensor(inside).realize()  # as launching ahead may do: the rebuilt graph is no longer the template's
    key, nodes = graph_key([out.node])
    assert len(key[0]) > 2 and inside in nodes
    np.testing.assert_allclose(out.numpy(), np_softmax(x), rtol=1e-5, atol=1e-7)


def test_an_input_the_composite_does_not_read_stays_out_of_the_key():
    from compiler.graph_template import composite

    double = composite(lambda self, other: (self * 2.0).exp2())
    for _ in range(2):
        x, unused = t(arr(3)), t(arr(3)) + 1.0
        out = double(x, unused)
        key, nodes = graph_key([out.node])
        assert all(n is not unused.node for n in nodes) and len(key[0]) == 2
        np.testing.assert_allclose(out.numpy(), np.exp2(x.numpy() * 2), rtol=1e-6)


def test_a_template_recorded_again_gets_a_new_number():
    # numbers, not id()s: a template evicted from its memo must never share a key with the one after it
    t(arr(2, 3)).gelu()
    first = t(arr(2, 3)).gelu().node.unit[0]
    Tensor.gelu.templates.clear()
    t(arr(2, 3)).gelu()
    assert t(arr(2, 3)).gelu().node.unit[0] != first


# packed rebuilds: a replay on a device with no launching ahead makes the composite's output alone (its
# sources lazy.PACKED); the inner nodes are made only when something reads them


def test_a_packed_rebuild_makes_one_node_and_expands_to_the_unpacked_graph(monkeypatch):
    x = arr(4, 8)
    xt = t(x)
    xt.layernorm()  # recorded
    made = []
    init = lazy.Node.__init__
    monkeypatch.setattr(lazy.Node, "__init__", lambda self, *a, **k: (made.append(a[0]), init(self, *a, **k))[1])
    out = xt.layernorm().node
    assert out.src is lazy.PACKED and len(made) == 1
    key = graph_key([out])[0]
    lazy.expand(out)
    inner = out.unit[1]
    assert out.src is not lazy.PACKED and len(made) == 1 + len(inner) and graph_key([out])[0] == key
    # the ids reserved at the rebuild: creation order is still an order sources-first
    assert [n.id for n in inner] == sorted(n.id for n in inner) and xt.node.id < inner[0].id < out.id
    assert all(s.id < out.id for s in out.src)
    monkeypatch.setenv("WB_COMPOSITE_MEMO", "unpacked")
    unpacked = xt.layernorm().node
    assert unpacked.src is not lazy.PACKED and graph_key([unpacked])[0] == key
    np.testing.assert_allclose(Tensor(out).numpy(), np_layernorm(x, 1e-5), rtol=2e-5, atol=2e-6)


def test_packed_rebuilds_on_cl_first_scheduled_then_replayed_by_their_plan():
    # the plan memo misses (the graph is expanded and scheduled), then hits: the kernels whose outputs lie
    # inside a packed composite (layernorm's reduces, softmax's) write into buffers with no node (Slot)
    from compiler.schedule_cache import PLANS

    for i in range(4):
        x = arr(6, 16)
        h = Tensor(x, device="CL").layernorm(eps=1e-5)
        out = (h * 2.0).softmax(-1)
        assert i < 2 or (h.node.src is lazy.PACKED and out.node.src is lazy.PACKED)
        hits = PLANS.hits
        np.testing.assert_allclose(out.numpy(), np_softmax(np_layernorm(x, 1e-5) * 2.0), rtol=1e-5, atol=1e-6)
        assert i < 3 or PLANS.hits == hits + 1


def test_a_composite_recorded_around_a_packed_one_expands_it_into_its_rows():
    x = arr(3, 5)
    t(x).sigmoid()
    t(x).sigmoid()  # sigmoid (and the exp inside it) recorded and packing
    Tensor.silu.templates.clear()
    want = x / (1 + np.exp(-x))
    keys = []
    for _ in range(3):  # silu recorded around a packed sigmoid, then rebuilt from its own template
        out = t(x).silu()
        keys.append(graph_key([out.node])[0])
        np.testing.assert_allclose(out.numpy(), want, rtol=2e-5, atol=2e-6)
    assert keys[0] == keys[1] == keys[2]
    rows = next(iter(Tensor.silu.templates.values()))[1].rows
    assert sum(r[0] == Ops.EXP2 for r in rows) == 2  # sigmoid's exp is in silu's rows, not a packed node


def test_what_the_frontend_reads_of_a_packed_output_needs_no_expanding():
    from compiler.graph_template import composite
    from compiler.tensor import _is_contraction

    outer = composite(lambda self, other: self.reshape(1, 8).expand(2, 8)[0:1] * other)
    a, b = t(arr(8)), t(arr(1, 8))
    outer(a, b)
    packed = outer(a, b).node
    assert packed.src is lazy.PACKED and _is_contraction(packed) and packed.src is lazy.PACKED
    lazy.expand(packed)
    assert _is_contraction(packed)
    plain = composite(lambda self, other: (self + 1.0) * other)
    plain(b, b)
    packed = plain(b, b).node
    assert not _is_contraction(packed) and packed.src is lazy.PACKED
    np.testing.assert_allclose(Tensor(packed).detach().numpy(), (b.numpy() + 1) * b.numpy(), rtol=1e-6)


def test_no_packing_where_gradients_or_launching_ahead_read_the_nodes(monkeypatch):
    x = arr(4, 8)
    for _ in range(2):
        assert t(x, requires_grad=True).layernorm().node.src is not lazy.PACKED
    t(x).layernorm()  # recorded (no gradient: another signature)
    assert t(x).layernorm().node.src is lazy.PACKED
    monkeypatch.setenv("WB_LAUNCH_AHEAD", "1")
    assert t(x).layernorm().node.src is not lazy.PACKED
