"""Random small graphs (matmul, conv, elementwise chains; sizes not multiples of the array) agree on SIM and REF.

int8 designs: exact (int8 operands, int32 accumulation and epilogues). Float designs: operands are small
integers (exact in bf16/fp16) so the products are exact and the fp32 epilogue is compared to REF's float32.
Both dataflows: output-stationary and weight-stationary designs of each kind.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import Tensor, dtypes
from compiler.accel.runtime import sim_run
from isa.design import shipped_designs

SETTINGS = dict(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def float_ws_design(tmp_path_factory) -> str:
    """A weight-stationary fp16 design (the shipped float designs are output-stationary)."""
    text = shipped_designs()["rx7900xtx-like"].read_text().replace('dataflow = "os"', 'dataflow = "ws"')
    path = tmp_path_factory.mktemp("designs") / "fp16-ws.toml"
    path.write_text(text)
    return f"SIM:{path}"


# (name, int op, float op) on int32 / float32 values
ELEMENTWISE = [
    ("relu", lambda x, c: x.relu()),
    ("add_const", lambda x, c: x + 3),
    ("mul_const", lambda x, c: x * -2),
    ("add_vec", lambda x, c: x + c),
    ("max_vec", lambda x, c: x.maximum(c)),
    ("min_const", lambda x, c: x.minimum(5)),
    ("neg", lambda x, c: -x),
]


def _graph(dev: str, is_float: bool, seed: int, m: int, n: int, k: int, ops: list[int], conv: bool):
    rng = np.random.default_rng(seed)
    dt = np.float32 if is_float else np.int8
    lo, hi = (-8, 8) if is_float else (-128, 128)
    if conv:
        x = rng.integers(lo, hi, (1, k % 3 + 1, m % 5 + 3, n % 5 + 3)).astype(dt)
        w = rng.integers(lo, hi, (n % 4 + 1, x.shape[1], 3, 3)).astype(dt)
        y = Tensor(x, device=dev).conv2d(Tensor(w, device=dev), padding=1)
    else:
        a = rng.integers(lo, hi, (m, k)).astype(dt)
        b = rng.integers(lo, hi, (k, n)).astype(dt)
        y = Tensor(a, device=dev) @ Tensor(b, device=dev)
    c = rng.integers(-50, 50, y.shape[-1:]).astype(np.float32 if is_float else np.int32)
    ct = Tensor(c, device=dev)
    for i in ops:
        y = ELEMENTWISE[i][1](y, ct)
    return y


def _check(dev: str, is_float: bool, seed, m, n, k, ops, conv):
    with sim_run(dev) as run:
        got = _graph(dev, is_float, seed, m, n, k, ops, conv).numpy()
    ref = _graph("REF", is_float, seed, m, n, k, ops, conv).numpy()
    if is_float:
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, ref)
    assert run.host_ops == [] and run.cycles > 0


graphs = dict(seed=st.integers(0, 2**16), m=st.integers(1, 19), n=st.integers(1, 19), k=st.integers(1, 23),
              ops=st.lists(st.integers(0, len(ELEMENTWISE) - 1), max_size=4), conv=st.booleans())


@pytest.mark.parametrize("dev", ["SIM:small-int8-8x8", "SIM:edge-int8-16x16"])
@settings(**SETTINGS)
@given(**graphs)
def test_random_int8_graphs_sim_equals_ref(dev, seed, m, n, k, ops, conv):
    _check(dev, False, seed, m, n, k, ops, conv)


@pytest.mark.parametrize("which", ["os", "ws"])
@settings(**SETTINGS)
@given(**graphs)
def test_random_float_graphs_sim_equals_ref(float_ws_design, which, seed, m, n, k, ops, conv):
    dev = "SIM:rx7900xtx-like" if which == "os" else float_ws_design
    _check(dev, True, seed, m, n, k, ops, conv)


def test_int8_elementwise_graph_on_the_vector_unit():
    rng = np.random.default_rng(0)
    x = rng.integers(-1000, 1000, (37,)).astype(np.int32)
    y = rng.integers(-1000, 1000, (37,)).astype(np.int32)
    dev = "SIM:tiny-int8-4x4"
    with sim_run(dev) as run:
        got = ((Tensor(x, device=dev) * 3 + Tensor(y, device=dev)).relu() << 2).numpy()
    np.testing.assert_array_equal(got, np.maximum(x * 3 + y, 0) << 2)
    assert [k.unit for k in run.kernels] == ["vector"]
    assert Tensor(x, device=dev).cast(dtypes.int32).sum().item() == int(x.sum())
