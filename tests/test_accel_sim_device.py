"""The SIM device: compiled models on simulated designs, bit-exact (int8) or within the dtype's tolerance (float)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compiler import Tensor, dtypes, models
from compiler.accel.runtime import sim_run
from compiler.errors import DeviceError
from compiler.quantize import QFlatten, QLayer, QPool, quantize, quantize_report

INT8_DESIGNS = ["SIM:small-int8-8x8", "SIM:edge-int8-16x16"]  # output- and weight-stationary
FLOAT_DESIGNS = ["SIM:datacenter-bf16-128x128", "SIM:rx7900xtx-like"]  # bf16 and fp16 inputs, fp32 accumulators


def _conv_ref(x: np.ndarray, w: np.ndarray, pad: int) -> np.ndarray:
    """int64 cross-correlation, stride 1 (independent of the compiler)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    out = np.zeros((n, o, oh, ow), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + oh, j:j + ow]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j].astype(np.int64))
    return out


def int8_reference(qm, xq: np.ndarray) -> np.ndarray:
    """The quantized graph in numpy int64 arithmetic, written from the quantizer's parameters alone."""
    x = xq.astype(np.int64)
    for layer in qm.layers:
        if isinstance(layer, QPool):
            n, c, h, w = x.shape
            k = layer.k
            x = x[:, :, :h // k * k, :w // k * k].reshape(n, c, h // k, k, w // k, k).max(axis=(3, 5))
        elif isinstance(layer, QFlatten):
            x = x.reshape(x.shape[0], -1)
        else:
            assert isinstance(layer, QLayer)
            if layer.kind == "conv":
                acc = _conv_ref(x, layer.w_q, layer.padding) + layer.bias_q.astype(np.int64)[None, :, None, None]
                mult = None if layer.mult is None else layer.mult.astype(np.int64)[None, :, None, None]
            else:
                acc = x @ layer.w_q.astype(np.int64).T + layer.bias_q.astype(np.int64)
                mult = None if layer.mult is None else layer.mult.astype(np.int64)
            if not layer.requant:
                return acc
            if layer.pre_shift:
                acc = (acc + (1 << (layer.pre_shift - 1))) >> layer.pre_shift
            y = (acc * mult + (1 << (layer.shift - 1))) >> layer.shift
            x = np.clip(y, 0 if layer.relu else -128, 127)
    return x


def test_int8_matmul_accumulates_in_int32_on_sim():
    a = Tensor([[100, -100, 50]], dtype=dtypes.int8, device="SIM")
    b = Tensor([[100], [100], [3]], dtype=dtypes.int8, device="SIM")
    assert (a @ b).tolist() == [[150]]


@pytest.mark.parametrize("device", INT8_DESIGNS)
@pytest.mark.parametrize("name,kw", [("mlp", dict(batch=8, d_in=40, d_hidden=72, d_out=10)),
                                     ("cnn", dict(batch=2, size=8))])
def test_quantized_models_bit_exact_and_wholly_on_the_accelerator(device, name, kw):
    model = models.build(name, **kw)
    x = model.sample_input()
    qm = quantize(model, x)
    xq = qm.quantize_input(x)
    with sim_run(device) as run:
        got = qm(Tensor(xq, device=device)).numpy()
    np.testing.assert_array_equal(got, int8_reference(qm, xq))
    assert run.host_ops == []  # every kernel ran on the matrix or vector unit
    units = {k.unit for k in run.kernels}
    assert "matrix+vector" in units and run.cycles > 0 and 0 < run.utilization <= 1
    if name == "cnn":
        assert "vector" in units  # the pools
    assert json.loads(json.dumps(run.to_json()))["cycles"] == run.cycles


@pytest.mark.parametrize("device", FLOAT_DESIGNS)
@pytest.mark.parametrize("name,kw", [("mlp", dict(batch=4, d_in=40, d_hidden=72, d_out=10)),
                                     ("cnn", dict(batch=2, size=8))])
def test_float_models_within_the_input_dtype_tolerance(device, name, kw):
    model = models.build(name, **kw)
    x = model.sample_input()
    ref = model(Tensor(x, device="REF")).numpy()
    with sim_run(device) as run:
        got = model(Tensor(x, device=device)).numpy()
    eps = 2.0**-8 if "bf16" in device else 2.0**-11  # input rounding of the operands, fp32 accumulation
    assert np.max(np.abs(got - ref)) <= 8 * eps * np.max(np.abs(ref)) + 1e-6
    assert run.host_ops == []


def test_float_ops_on_an_int8_design_run_on_the_host_and_are_accounted():
    model = models.build("mlp", batch=4, d_in=16, d_hidden=24, d_out=8)
    x = model.sample_input()
    with sim_run("SIM:small-int8-8x8") as run:
        got = model(Tensor(x, device="SIM:small-int8-8x8")).numpy()
    np.testing.assert_allclose(got, model(Tensor(x, device="REF")).numpy(), rtol=1e-5, atol=1e-5)
    assert run.host_ops and all(h.flops > 0 and h.bytes > 0 and h.reason for h in run.host_ops)
    assert "quantize the model" in run.host_ops[0].reason


def test_special_functions_on_a_float_design_vector_unit():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 70)).astype(np.float32)
    r = Tensor(x, device="REF")
    dev = "SIM:datacenter-bf16-128x128"
    with sim_run(dev) as run:
        s = Tensor(x, device=dev)
        np.testing.assert_allclose(s.softmax(-1).numpy(), r.softmax(-1).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(s.layernorm().numpy(), r.layernorm().numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(s.gelu().numpy(), r.gelu().numpy(), rtol=1e-5, atol=1e-6)
    assert run.host_ops == [] and {k.unit for k in run.kernels} == {"vector"}


def test_run_record_and_trace(tmp_path):
    dev = "SIM:tiny-int8-4x4"
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, (9, 13)).astype(np.int8)
    b = rng.integers(-128, 128, (13, 6)).astype(np.int8)
    with sim_run(dev, trace=True) as run:
        (Tensor(a, device=dev) @ Tensor(b, device=dev)).relu().realize()
    rec = run.kernels[0]
    assert rec.macs == 9 * 13 * 6 and rec.cycles == run.cycles and rec.units["matrix"]["busy"] > 0
    assert run.counters["macs_int8"] >= rec.macs and run.dram_read_bytes > 0
    run.write_trace(str(tmp_path / "t.json"))
    doc = json.loads((tmp_path / "t.json").read_text())
    assert any(e.get("ph") == "X" for e in doc["traceEvents"])


def test_sim_device_names():
    from compiler import Device

    assert Device.canonicalize("sim") == "SIM"
    assert Device.canonicalize("SIM:small-int8-8x8") == "SIM"  # the default design
    assert Device.canonicalize("SIM:edge-int8-16x16") == "SIM:edge-int8-16x16"
    with pytest.raises(DeviceError, match="unknown design"):
        Device.canonicalize("SIM:no-such-design")


def test_quantize_report_measures_accuracy():
    model = models.build("mlp", batch=16, d_in=32, d_hidden=48, d_out=10)
    x = model.sample_input()
    reports = quantize_report(model, x, device="SIM:edge-int8-16x16")
    assert [r.scheme.split()[0] for r in reports] == ["int8", "int8", "int4"]
    for r in reports:
        assert 0.9 < r.cosine <= 1.0 and r.max_abs_error >= 0 and 0 <= r.top1_agreement <= 1
    assert reports[0].cosine > 0.999 and reports[0].runs_on == "SIM:edge-int8-16x16"


@pytest.mark.parametrize("device", INT8_DESIGNS)
def test_quantized_gpt2_block_linears_on_the_array_host_ops_accounted(device):
    model = models.gpt2_block(t=6, d_model=32, n_heads=2, d_hidden=64)
    x = model.sample_input()
    qm = quantize(model, x)
    with sim_run(device) as run:
        got = qm(Tensor(x, device=device)).numpy()
    np.testing.assert_array_equal(got, qm(Tensor(x, device="REF")).numpy())  # the same graph, bit for bit
    gemms = [k for k in run.kernels if k.unit.startswith("matrix")]
    assert len(gemms) == 4 and sum(k.macs for k in gemms) == 6 * 32 * (3 * 32 + 32 + 64) + 6 * 64 * 32
    assert run.host_ops and all(h.flops >= 0 and h.bytes > 0 for h in run.host_ops)  # layernorm, softmax, GELU
    float_ref = model(Tensor(x, device="REF")).numpy()
    cos = np.sum(got * float_ref) / (np.linalg.norm(got) * np.linalg.norm(float_ref))
    assert cos > 0.99


def test_float_gpt2_block_on_a_float_design_vector_unit():
    model = models.gpt2_block(t=5, d_model=32, n_heads=2, d_hidden=64)
    x = model.sample_input()
    dev = "SIM:datacenter-bf16-128x128"
    with sim_run(dev) as run:
        got = model(Tensor(x, device=dev)).numpy()
    ref = model(Tensor(x, device="REF")).numpy()
    assert np.max(np.abs(got - ref)) < 0.05 * np.max(np.abs(ref))
    # only the causal mask's bool ops stay on the host; layernorm, softmax and GELU run on the vector unit
    assert run.host_flops < 0.01 * run.flops and sum(k.unit == "vector" for k in run.kernels) >= 6


@pytest.mark.parametrize("device", INT8_DESIGNS + ["SIM:tiny-int8-4x4"])
def test_requantizing_epilogue_runs_inside_the_gemm_program(device):
    model = models.build("mlp", batch=5, d_in=24, d_hidden=40, d_out=6)
    x = model.sample_input()
    qm = quantize(model, x)
    with sim_run(device) as run:
        got = qm(Tensor(qm.quantize_input(x), device=device)).numpy()
    np.testing.assert_array_equal(got, int8_reference(qm, qm.quantize_input(x)))
    first = run.kernels[0]
    assert first.programs == 1  # bias, requantization and ReLU on the accumulator tiles, no second program
    assert first.dram_write_bytes == 5 * 40  # the activation leaves the chip as int8
    assert first.counters["vector_ops"] > 0


def test_residual_epilogue_falls_back_to_its_own_vector_program():
    rng = np.random.default_rng(4)
    a = rng.integers(-128, 128, (6, 9)).astype(np.int8)
    b = rng.integers(-128, 128, (9, 7)).astype(np.int8)
    r = rng.integers(-999, 999, (6, 7)).astype(np.int32)
    dev = "SIM:small-int8-8x8"
    with sim_run(dev) as run:
        got = (Tensor(a, device=dev) @ Tensor(b, device=dev) + Tensor(r, device=dev)).numpy()
    np.testing.assert_array_equal(got, a.astype(np.int64) @ b + r)
    assert run.kernels[0].programs == 2 and run.kernels[0].unit == "matrix+vector"
