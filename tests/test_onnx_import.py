"""ONNX import: PyTorch-exported models and a real pretrained model against their frameworks, the loader's
errors, and `workbench run model.onnx`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from compiler.onnx import OnnxImportError, load_onnx

FIX = Path(__file__).parent / "fixtures" / "onnx"
CLS = FIX / "ch_ppocr_mobile_v2.0_cls_infer.onnx"


@pytest.mark.parametrize("name", ["mlp", "cnn", "transformer_block"])
def test_pytorch_exported_models_match_pytorch(name):
    exp = np.load(FIX / "expected.npz")
    m = load_onnx(FIX / f"{name}.onnx", device="REF")
    got = m.run({"x": exp[f"{name}_x"]})["y"]
    np.testing.assert_allclose(got, exp[f"{name}_y"], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "cnn", "transformer_block"])
def test_pytorch_exported_models_match_pytorch_on_cl(name):
    exp = np.load(FIX / "expected.npz")
    m = load_onnx(FIX / f"{name}.onnx", device="CL")
    np.testing.assert_allclose(m.run({"x": exp[f"{name}_x"]})["y"], exp[f"{name}_y"], rtol=1e-4, atol=1e-5)


def _cls_input(batch=8, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, 3, 48, 192)).astype(np.float32)


def test_real_model_matches_onnxruntime_on_ref():
    ort = pytest.importorskip("onnxruntime")
    x = _cls_input()
    want = ort.InferenceSession(str(CLS), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = load_onnx(CLS, device="REF").run({"x": x})
    np.testing.assert_allclose(next(iter(got.values())), want, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_real_model_matches_onnxruntime_on_cl():
    ort = pytest.importorskip("onnxruntime")
    x = _cls_input()
    want = ort.InferenceSession(str(CLS), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = load_onnx(CLS, device="CL").run({"x": x})
    np.testing.assert_allclose(next(iter(got.values())), want, rtol=1e-4, atol=1e-4)


def _model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def test_unknown_op_fails_at_load_naming_op_node_and_opset():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    m = _model([helper.make_node("FancyOp", ["x"], ["y"], name="n7")], [x],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    with pytest.raises(OnnxImportError, match=r"n7.*FancyOp.*opset 17"):
        load_onnx(m)


def test_shape_arithmetic_dynamic_dims_and_int64_outputs():
    # y = reshape(x, concat(shape(x)[0:1], [-1])); argmax over it; Shape output is int64 on the host
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4])
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Slice", ["s", "zero", "one"], ["n"]),
        helper.make_node("Concat", ["n", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
        helper.make_node("ArgMax", ["y"], ["am"], axis=1, keepdims=0),
    ]
    inits = [helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in (("zero", 0), ("one", 1), ("minus1", -1))]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 12]),
            helper.make_tensor_value_info("am", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("s", TensorProto.INT64, [3])]
    m = load_onnx(_model(nodes, [x], outs, inits))
    for n in (1, 5):
        a = np.random.default_rng(n).standard_normal((n, 3, 4)).astype(np.float32)
        got = m.run({"x": a}, device="REF")
        np.testing.assert_array_equal(got["y"], a.reshape(n, 12))
        assert got["am"].dtype == np.int64 and got["s"].dtype == np.int64
        np.testing.assert_array_equal(got["am"], a.reshape(n, 12).argmax(1))
        np.testing.assert_array_equal(got["s"], [n, 3, 4])


def test_shape_operand_given_as_graph_input_is_read_at_run_time():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])
    s = helper.make_tensor_value_info("s", TensorProto.INT64, [2])
    m = load_onnx(_model([helper.make_node("Reshape", ["x", "s"], ["y"])], [x, s],
                         [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]))
    a = np.arange(12, dtype=np.float32).reshape(2, 6)
    assert m.run({"x": a, "s": np.array([3, 4])}, device="REF")["y"].shape == (3, 4)
    assert m.run({"x": a, "s": np.array([4, -1])}, device="REF")["y"].shape == (4, 3)


def test_if_with_constant_condition_and_omitted_optional_input():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    then_g = helper.make_graph([helper.make_node("Neg", ["x"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, [3])])
    else_g = helper.make_graph([helper.make_node("Abs", ["x"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, [3])])
    nodes = [helper.make_node("Constant", [], ["c"], value=helper.make_tensor("v", TensorProto.BOOL, [], [True])),
             helper.make_node("If", ["c"], ["r"], then_branch=then_g, else_branch=else_g),
             helper.make_node("Clip", ["r", "", "hi"], ["y"])]  # "" = omitted min
    hi = helper.make_tensor("hi", TensorProto.FLOAT, [], [0.5])
    m = load_onnx(_model(nodes, [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])], [hi]))
    got = m.run({"x": np.array([1.0, -2.0, -0.25], np.float32)}, device="REF")["y"]
    np.testing.assert_allclose(got, [-1.0, 0.5, 0.25])


def test_onnx_model_is_differentiable():
    from compiler import Tensor

    exp = np.load(FIX / "expected.npz")
    m = load_onnx(FIX / "mlp.onnx", device="REF")
    x = Tensor(exp["mlp_x"], device="REF", requires_grad=True)
    (y,) = m(x)
    y.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape  # softmax rows sum to 1: the gradient is ~0
    np.testing.assert_allclose(x.grad.numpy(), 0, atol=1e-5)


def test_workbench_run_onnx_json_and_out(tmp_path, capsys):
    from workbench.cli import main

    rc = main(["run", str(FIX / "cnn.onnx"), "--device", "REF", "--json", "--out", str(tmp_path / "o")])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["outputs"]["y"]["shape"] == [2, 10] and doc["device"] == "REF"
    assert (tmp_path / "o" / "y.npy").exists()


def test_workbench_run_onnx_given_input_and_bad_input(tmp_path, capsys):
    from workbench.cli import main

    exp = np.load(FIX / "expected.npz")
    np.save(tmp_path / "x.npy", exp["mlp_x"])
    assert main(["run", str(FIX / "mlp.onnx"), "--device", "REF", "--input", f"x={tmp_path / 'x.npy'}",
                 "--out", str(tmp_path)]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), exp["mlp_y"], rtol=1e-4, atol=1e-5)
    capsys.readouterr()
    assert main(["run", str(FIX / "mlp.onnx"), "--device", "REF", "--input", "x"]) == 2
    assert "name=file.npy" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.onnx"), "--device", "REF"]) == 2


def test_workbench_run_onnx_dynamic_dims_need_input(capsys):
    from workbench.cli import main

    assert main(["run", str(CLS), "--device", "REF"]) == 2
    assert "--input x=" in capsys.readouterr().err
