"""The ONNX ops the backend suite covers thinly (bidirectional recurrences with sequence lengths, clip,
grouped/dilated transposed convolutions, TopK ties, duplicate scatters, Resize on real-model shapes, GridSample
out of bounds, RoiAlign's adaptive grid, NonMaxSuppression) against onnxruntime on REF."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from compiler.onnx import load_onnx

ort = pytest.importorskip("onnxruntime")
F = TensorProto.FLOAT


def _check(node, inputs: dict, out_types: dict, opset: int = 17, rtol=1e-4, atol=1e-5):
    """Build a one-node model, run it on REF and on onnxruntime, and compare every output."""
    vi = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
          for k, v in inputs.items()]
    vo = [helper.make_tensor_value_info(k, t, None) for k, t in out_types.items()]
    g = helper.make_graph([node], "g", vi, vo)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, inputs)
    got = load_onnx(model, device="REF").run(inputs)
    for (name, _), w in zip(out_types.items(), want, strict=True):
        assert got[name].dtype == w.dtype and got[name].shape == w.shape, name
        np.testing.assert_allclose(got[name], w, rtol=rtol, atol=atol, err_msg=name)


def _rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("kind,gates", [("RNN", 1), ("GRU", 3), ("LSTM", 4)])
def test_bidirectional_recurrence_with_sequence_lengths_and_states(kind, gates):
    r = _rng(1)
    seq, batch, inp, hid = 5, 3, 4, 6
    ins = {"X": r.standard_normal((seq, batch, inp)).astype(np.float32),
           "W": r.standard_normal((2, gates * hid, inp)).astype(np.float32) * 0.5,
           "R": r.standard_normal((2, gates * hid, hid)).astype(np.float32) * 0.5,
           "B": r.standard_normal((2, 2 * gates * hid)).astype(np.float32) * 0.5,
           "L": np.array([5, 2, 4], np.int32),
           "H0": r.standard_normal((2, batch, hid)).astype(np.float32)}
    names = ["X", "W", "R", "B", "L", "H0"]
    outs = {"Y": F, "Yh": F}
    attrs = {}
    if kind == "LSTM":
        ins["C0"] = r.standard_normal((2, batch, hid)).astype(np.float32)
        ins["P"] = r.standard_normal((2, 3 * hid)).astype(np.float32) * 0.5
        names += ["C0", "P"]
        outs["Yc"] = F
    if kind == "GRU":
        attrs["linear_before_reset"] = 1
    node = helper.make_node(kind, names, list(outs), hidden_size=hid, direction="bidirectional", **attrs)
    _check(node, ins, outs, opset=14)


def test_gru_reverse_with_clip():  # layout 1 is in the backend suite (onnxruntime refuses it)
    r = _rng(2)
    batch, seq, inp, hid = 2, 4, 3, 5
    ins = {"X": r.standard_normal((seq, batch, inp)).astype(np.float32) * 2,
           "W": r.standard_normal((1, 3 * hid, inp)).astype(np.float32),
           "R": r.standard_normal((1, 3 * hid, hid)).astype(np.float32)}
    node = helper.make_node("GRU", ["X", "W", "R"], ["Y", "Yh"], hidden_size=hid, direction="reverse", clip=1.5)
    _check(node, ins, {"Y": F, "Yh": F}, opset=14)


@pytest.mark.parametrize("attrs,shape,w_shape", [
    (dict(strides=[2, 2], pads=[1, 0, 0, 1], output_padding=[1, 1]), (1, 4, 5, 6), (4, 3, 3, 3)),
    (dict(strides=[2, 3], dilations=[2, 1], group=2), (2, 4, 4, 3), (4, 2, 3, 2)),
    (dict(strides=[2, 2], auto_pad="SAME_LOWER"), (1, 2, 3, 3), (2, 3, 4, 4)),
    (dict(strides=[3], output_shape=[10]), (1, 2, 3), (2, 2, 3)),
])
def test_conv_transpose(attrs, shape, w_shape):
    r = _rng(3)
    ins = {"x": r.standard_normal(shape).astype(np.float32), "w": r.standard_normal(w_shape).astype(np.float32),
           "b": r.standard_normal(w_shape[1] * attrs.get("group", 1)).astype(np.float32)}
    _check(helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **attrs), ins, {"y": F})


@pytest.mark.parametrize("largest,axis", [(1, -1), (0, 0)])
def test_topk_ties_come_in_index_order(largest, axis):
    x = _rng(4).integers(0, 4, (6, 7)).astype(np.float32)  # many equal values
    k = np.array([3], np.int64)
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=axis, largest=largest)
    _check(node, {"x": x, "k": k}, {"v": F, "i": TensorProto.INT64}, opset=11)


@pytest.mark.parametrize("reduction", ["add", "max", "min"])
def test_scatter_elements_duplicates(reduction):
    r = _rng(5)
    data = r.standard_normal((3, 5)).astype(np.float32)
    idx = np.array([[0, 1, 1, 4], [2, 2, 2, -1], [3, 0, 3, 0]], np.int64)
    upd = r.standard_normal((3, 4)).astype(np.float32)
    node = helper.make_node("ScatterElements", ["d", "i", "u"], ["y"], axis=1, reduction=reduction)
    _check(node, {"d": data, "i": idx, "u": upd}, {"y": F}, opset=18)


@pytest.mark.parametrize("mode,coord", [("linear", "half_pixel"), ("nearest", "asymmetric"),
                                        ("cubic", "pytorch_half_pixel"), ("linear", "align_corners")])
def test_resize_segmentation_upsample(mode, coord):
    x = _rng(6).standard_normal((1, 3, 7, 9)).astype(np.float32)
    sizes = np.array([1, 3, 16, 20], np.int64)
    node = helper.make_node("Resize", ["x", "", "", "s"], ["y"], mode=mode, coordinate_transformation_mode=coord)
    _check(node, {"x": x, "s": sizes}, {"y": F}, opset=13)


@pytest.mark.parametrize("mode,pad", [("bilinear", "zeros"), ("nearest", "border"), ("bicubic", "reflection")])
def test_grid_sample(mode, pad):
    r = _rng(7)
    x = r.standard_normal((2, 3, 5, 6)).astype(np.float32)
    grid = r.uniform(-1.3, 1.3, (2, 4, 7, 2)).astype(np.float32)  # some positions outside the image
    node = helper.make_node("GridSample", ["x", "g"], ["y"], mode=mode, padding_mode=pad, align_corners=0)
    _check(node, {"x": x, "g": grid}, {"y": F}, opset=16)


def test_roi_align_adaptive_grid():
    r = _rng(8)
    x = r.standard_normal((2, 3, 10, 12)).astype(np.float32)
    rois = np.array([[0, 0, 9, 9], [2.5, 1, 11, 7.5], [4, 4, 6, 5]], np.float32)
    node = helper.make_node("RoiAlign", ["x", "rois", "b"], ["y"], output_height=3, output_width=2,
                            sampling_ratio=0, spatial_scale=1.0)
    _check(node, {"x": x, "rois": rois, "b": np.array([0, 1, 1], np.int64)}, {"y": F}, opset=16)


def test_non_max_suppression():
    r = _rng(9)
    xy = r.uniform(0, 10, (1, 12, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + r.uniform(1, 4, (1, 12, 2)).astype(np.float32)], -1)
    ins = {"boxes": boxes, "scores": r.uniform(0, 1, (1, 2, 12)).astype(np.float32),
           "m": np.array([5], np.int64), "iou": np.array([0.3], np.float32), "s": np.array([0.2], np.float32)}
    node = helper.make_node("NonMaxSuppression", list(ins), ["sel"])
    _check(node, ins, {"sel": TensorProto.INT64}, opset=11)


def test_maxpool_indices_then_maxunpool_with_overlapping_windows():
    x = _rng(10).standard_normal((2, 3, 9, 9)).astype(np.float32)
    x[0, 0, :3, :3] = 5  # ties, and one maximum picked by several overlapping windows
    kw = dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    nodes = [helper.make_node("MaxPool", ["x"], ["y", "i"], **kw), helper.make_node("MaxUnpool", ["y", "i"], ["z"], **kw)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, x.shape)],
                          [helper.make_tensor_value_info("z", F, None), helper.make_tensor_value_info("i", TensorProto.INT64, None)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    got = load_onnx(model, device="REF").run({"x": x})
    np.testing.assert_array_equal(got["i"], want[1])
    np.testing.assert_array_equal(got["z"], want[0])
