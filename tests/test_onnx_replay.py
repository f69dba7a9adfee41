"""Schedule replay in `OnnxModel.run`: repeated input signatures replay the recorded kernels with the same
outputs as the plain run, new values are seen, a new shape records its own trace, and what a replay
cannot see (values read on the host) runs the graph every time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from compiler import Device
from compiler.onnx import load_onnx

FIX = Path(__file__).parent / "fixtures" / "onnx"


def _model(nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _dynamic_model():
    """y = relu(x @ w + b) with a dynamic batch, and the input's shape as an int64 output."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor("w", TensorProto.FLOAT, [16, 24], rng.standard_normal((16, 24)).ravel())
    b = helper.make_tensor("b", TensorProto.FLOAT, [24], rng.standard_normal(24).ravel())
    nodes = [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["z"]),
             helper.make_node("Relu", ["z"], ["y"]), helper.make_node("Shape", ["x"], ["s"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 24]),
            helper.make_tensor_value_info("s", TensorProto.INT64, [2])]
    return _model(nodes, [x], outs, [w, b])


@pytest.mark.parametrize("device", ["REF", pytest.param("CL", marks=pytest.mark.skipif(
    "CL" not in Device.available(), reason="no OpenCL device"))])
def test_replay_matches_the_plain_run_as_values_change(device):
    exp = np.load(FIX / "expected.npz")
    m = load_onnx(FIX / "cnn.onnx", device=device)
    plain = load_onnx(FIX / "cnn.onnx", device=device, replay=False)
    rng = np.random.default_rng(1)
    for i in range(6):
        x = exp["cnn_x"] if i == 0 else rng.standard_normal(exp["cnn_x"].shape).astype(np.float32)
        got, want = m.run({"x": x}), plain.run({"x": x})
        np.testing.assert_array_equal(got["y"], want["y"])
    np.testing.assert_allclose(m.run({"x": exp["cnn_x"]})["y"], exp["cnn_y"], atol=1e-4)
    assert m._replayer.replays == 4 and plain._replayer.replays == 0  # calls 4 to 7 replayed


def test_new_shape_records_its_own_trace_and_host_outputs_follow():
    m = load_onnx(_dynamic_model(), device="REF")
    plain = load_onnx(_dynamic_model(), device="REF", replay=False)
    rng = np.random.default_rng(2)
    for n in (2, 2, 2, 2, 3, 3, 3, 3, 3, 2):
        x = rng.standard_normal((n, 16)).astype(np.float32)
        got, want = m.run({"x": x}), plain.run({"x": x})
        np.testing.assert_array_equal(got["y"], want["y"])
        assert got["s"].dtype == np.int64 and list(got["s"]) == [n, 16]
    assert m._replayer.replays == 4  # the 4th call of batch 2, the 4th and 5th of batch 3, the last


def test_values_read_on_the_host_are_never_frozen():
    """A Reshape shape fed as a graph input changes the graph: that signature runs the graph every call."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])
    s = helper.make_tensor_value_info("s", TensorProto.INT64, [2])
    m = load_onnx(_model([helper.make_node("Reshape", ["x", "s"], ["y"])], [x, s],
                         [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]), device="REF")
    a = np.arange(12, dtype=np.float32).reshape(2, 6)
    for shape in ([3, 4], [4, 3], [3, 4], [6, 2], [12, 1], [2, 6]):
        np.testing.assert_array_equal(m.run({"x": a, "s": np.array(shape)})["y"], a.reshape(shape))
    assert m._replayer.replays == 0
    assert "reads a device value on the host" in next(iter(m._replayer.refused().values()))


def test_overridden_initializer_and_wb_jit_0_run_plainly(monkeypatch):
    m = load_onnx(_dynamic_model(), device="REF")
    x = np.ones((2, 16), np.float32)
    w = np.full((16, 24), 0.5, np.float32)
    for _ in range(5):
        np.testing.assert_allclose(m.run({"x": x, "w": w})["y"], np.maximum(x @ w + m.initializers["b"], 0))
    monkeypatch.setenv("WB_JIT", "0")
    for _ in range(5):
        m.run({"x": x})
    assert m._replayer.replays == 0
