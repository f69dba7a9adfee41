"""The int8 GPT-2 block on SIM against an independent numpy model of the same quantized graph (issue 9).

The reference is written from the quantizer's parameters and the block's definition alone: int8 x int8
products summed exactly in integers for the four Linears (each input quantized with round-half-up and
clamped, each output scaled back per channel), and the float ops the int8 design leaves to the host in
float32 as the compiler defines them (mean as a float32 sum times 1/n, division as a product with the
reciprocal, softmax through exp2, GELU as x * sigmoid(1.5957691216 (x + 0.044715 x^3)), exp by Cody-Waite
range reduction, matmul as float32 products summed along k). Bit-exact: any change in what the SIM
device computes, on the array or on the host, shows up.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from compiler import Tensor, models
from compiler.accel.runtime import sim_run
from compiler.quantize import quantize
from compiler.tensor import _LN2_HI, _LN2_LO, _LOG2E, _ROUNDER

F = np.float32


def _layernorm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    n = x.shape[-1]
    d = x - np.sum(x, -1, keepdims=True, dtype=F) * F(1.0 / n)
    var = np.sum(d * d, -1, keepdims=True, dtype=F) * F(1.0 / n)
    return d * np.reciprocal(np.sqrt(var + F(eps))) * weight + bias


def _exp(x: np.ndarray) -> np.ndarray:
    t = np.maximum(np.minimum(x * F(_LOG2E), F(127.0)), F(-151.0))
    n = (t + F(_ROUNDER)) + F(-_ROUNDER)  # round to an integer in float32
    r = x + n * F(-_LN2_HI) + n * F(-_LN2_LO)
    return np.exp2(r * F(_LOG2E)) * np.exp2(n)


def _gelu(x: np.ndarray) -> np.ndarray:
    z = F(1.5957691216057308) * (x + F(0.044715) * x * x * x)
    return x * np.reciprocal(F(1.0) + _exp(-z))


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float32 products, then one float32 sum over k."""
    return np.sum(a[..., :, None, :] * np.swapaxes(b, -1, -2)[..., None, :, :], -1, dtype=F)


def _int8_linear(q, x: np.ndarray) -> np.ndarray:
    """Quantize x (round half up, clamp), int8 x int8 summed exactly, scale back per output channel."""
    xq = np.clip(np.floor(x * F(1.0 / q.s_in) + F(0.5)), F(-128), F(127)).astype(np.int8)
    acc = xq.astype(np.int64) @ q.w_q.astype(np.int64).T
    assert np.abs(acc).max() < 2**31  # the array's int32 accumulator cannot wrap here
    y = acc.astype(np.int32).astype(F) * q.scale
    return y + q.bias if q.bias is not None else y


def int8_gpt2_block_reference(qm, x: np.ndarray) -> np.ndarray:
    """The quantized GPT-2 block (x + attn(ln1 x), then + mlp(ln2 .)) in numpy."""
    nb = qm._nn_block("REF")  # the float parameters the quantizer started from (layer norms)
    lin = qm.linears
    b, t, c = x.shape
    h = nb.attn.n_heads
    d = c // h
    a = _layernorm(x, nb.ln1.weight.numpy(), nb.ln1.bias.numpy(), nb.ln1.eps)
    qkv = _int8_linear(lin[("attn", "qkv")], a).reshape(b, t, 3, h, d)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (b, h, t, d)
    s = _matmul(q, np.swapaxes(k, -1, -2)) * F(1.0 / math.sqrt(d))
    s = np.where(np.tril(np.ones((t, t), bool)), s, F(-np.inf))
    e = np.exp2((s - s.max(-1, keepdims=True)) * F(_LOG2E))
    p = e * np.reciprocal(np.sum(e, -1, keepdims=True, dtype=F))
    y = _matmul(p, v).transpose(0, 2, 1, 3).reshape(b, t, c)
    x = x + _int8_linear(lin[("attn", "proj")], y)
    m = _layernorm(x, nb.ln2.weight.numpy(), nb.ln2.bias.numpy(), nb.ln2.eps)
    return x + _int8_linear(lin[("mlp", "proj")], _gelu(_int8_linear(lin[("mlp", "fc")], m)))


@pytest.mark.parametrize("device, t, d_model, n_heads, d_hidden", [
    ("SIM:small-int8-8x8", 6, 32, 2, 64),  # output-stationary
    ("SIM:edge-int8-16x16", 6, 32, 2, 64),  # weight-stationary
    ("SIM:small-int8-8x8", 9, 24, 3, 40),  # sizes that are not multiples of the array
])
def test_int8_gpt2_block_on_sim_is_bit_exact_against_numpy(device, t, d_model, n_heads, d_hidden):
    model = models.gpt2_block(t=t, d_model=d_model, n_heads=n_heads, d_hidden=d_hidden, seed=1)
    qm = quantize(model, model.sample_input(seed=2))  # calibrated on one batch, run on another
    x = model.sample_input(seed=3)
    with sim_run(device) as run:
        got = qm(Tensor(x, device=device)).numpy()
    np.testing.assert_array_equal(got, int8_gpt2_block_reference(qm, x))
    # the four Linears on the array; everything else (layer norms, attention, GELU, quantize steps) is a host
    # op the run names with its FLOPs and bytes
    gemms = [k for k in run.kernels if k.unit.startswith("matrix")]
    assert len(gemms) == 4 and sum(k.macs for k in gemms) == t * d_model * (4 * d_model + 2 * d_hidden)
    on_host = [k.name for k in run.kernels if k.unit == "host"]
    assert on_host and len(run.host_ops) >= len(on_host)
    assert all(h.flops > 0 and h.bytes > 0 and h.reason for h in run.host_ops)
