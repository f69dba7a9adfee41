"""Load-time work in the ONNX importer: constants folded once, Conv + BatchNormalization as one Conv, constant
values uploaded to a device once (compiler/onnx/model.py, fuse.py)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from compiler import Device
from compiler.onnx import load_onnx

RNG = np.random.default_rng(3)
W = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
B = RNG.standard_normal(4).astype(np.float32)
SCALE, BETA = RNG.uniform(0.5, 2, 4).astype(np.float32), RNG.standard_normal(4).astype(np.float32)
MEAN, VAR = RNG.standard_normal(4).astype(np.float32), RNG.uniform(0.5, 2, 4).astype(np.float32)


def _const(name, arr):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(arr, name))


def _model(bn_input_used_twice: bool = False):
    nodes = [_const("w", W), _const("wt", W.transpose(1, 0, 2, 3).copy()),
             helper.make_node("Transpose", ["wt"], ["w2"], perm=[1, 0, 2, 3]),  # folded at load: a constant
             helper.make_node("Conv", ["x", "w2", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "beta", "m", "v"], ["n"], epsilon=1e-3),
             helper.make_node("Relu", ["n"], ["y"])]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if bn_input_used_twice:
        outs.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, None))
    inits = [numpy_helper.from_array(a, n) for n, a in
             [("b", B), ("s", SCALE), ("beta", BETA), ("m", MEAN), ("v", VAR)]]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 6, 6])],
                          outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)])


def _expected(x):
    from numpy.lib.stride_tricks import sliding_window_view
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))).astype(np.float64)
    win = sliding_window_view(xp, (3, 3), axis=(2, 3))  # (n, c, h, w, 3, 3)
    c = np.einsum("nchwij,ocij->nohw", win, W.astype(np.float64)) + B[None, :, None, None]
    sh = (1, -1, 1, 1)
    n = (c - MEAN.reshape(sh)) / np.sqrt(VAR.reshape(sh) + 1e-3) * SCALE.reshape(sh) + BETA.reshape(sh)
    return np.maximum(n, 0), c


def test_constants_fold_and_batchnorm_joins_its_conv():
    m = load_onnx(_model(), device="REF")
    assert [n.op_type for n in m.plan.node] == ["Conv", "Relu"]  # Constants, Transpose and BN gone
    x = RNG.standard_normal((2, 3, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(m.run({"x": x})["y"], _expected(x)[0], rtol=1e-4, atol=1e-5)
    # the Conv's output is also a graph output: it must stay, so the BN is not folded into it
    m2 = load_onnx(_model(bn_input_used_twice=True), device="REF")
    assert "BatchNormalization" in [n.op_type for n in m2.plan.node]
    got = m2.run({"x": x})
    np.testing.assert_allclose(got["y"], _expected(x)[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["c"], _expected(x)[1], rtol=1e-4, atol=1e-5)


def test_overriding_an_initializer_runs_the_graph_as_written():
    m = load_onnx(_model(), device="REF")
    x = RNG.standard_normal((2, 3, 6, 6)).astype(np.float32)
    got = m.run({"x": x, "m": MEAN + 1})["y"]
    sh = (1, -1, 1, 1)
    want = np.maximum(_expected(x)[0] - np.where(_expected(x)[0] > 0, 1, 0)
                      * (SCALE / np.sqrt(VAR + 1e-3)).reshape(sh), 0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_constants_reach_the_device_once(monkeypatch):
    if "CL" not in Device.available():
        return
    from compiler import tensor
    m = load_onnx(_model(), device="CL")
    x = RNG.standard_normal((2, 3, 6, 6)).astype(np.float32)
    first = m.run({"x": x})["y"]
    uploads = []
    real = tensor.to_device
    monkeypatch.setattr(tensor, "to_device", lambda *a: (uploads.append(a[0].shape), real(*a))[1])
    np.testing.assert_allclose(m.run({"x": x})["y"], first, rtol=0, atol=0)
    assert uploads == [(2, 3, 6, 6)]  # the input only: weights and biases stay on the device
