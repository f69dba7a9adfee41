"""Functional model: directed tests per instruction against numpy, and errors naming pc and text."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from isa import functional as F
from isa.design import load_design
from isa.encoding import make, to_bytes

SMALL = load_design("small-int8-8x8")
WS = SMALL.replace(matrix=dataclasses.replace(SMALL.matrix, dataflow="ws"))
BF16 = load_design("datacenter-bf16-128x128")


def _run(design, prog, dram=None):
    return F.run(design, [*prog, make("finish")], dram)


def test_load_zero_fills_columns_and_pad_rows():
    img = np.arange(1, 65, dtype=np.uint8)
    state = F.new_state(SMALL)
    state.sp[:] = 99
    state.dram[:64] = img
    F.apply(SMALL, state, make("load.sp", sram=2, dram=4, stride=16, rows=3, cols=5, pad=2))
    rows = np.stack([img[4 + 16 * r: 9 + 16 * r] for r in range(3)]).view(np.int8)
    assert (state.sp[2:5, :5] == rows).all()
    assert (state.sp[2:7, 5:] == 0).all() and (state.sp[5:7] == 0).all()
    assert (state.sp[:2] == 99).all() and (state.sp[7:] == 99).all()


def test_store_acc_int32_and_narrow_saturates():
    state = F.new_state(SMALL)
    vals = np.array([[-1000, -128, -3, 0, 5, 127, 128, 70000]], dtype=np.int32)
    state.acc[4] = vals
    F.apply(SMALL, state, make("store.acc", sram=4, dram=64, rows=1, cols=8))
    F.apply(SMALL, state, make("store.acc", sram=4, dram=128, rows=1, cols=8, narrow=1))
    assert (state.dram[64:96].view("<i4") == vals[0]).all()
    assert list(state.dram[128:136].view(np.int8)) == [-128, -128, -3, 0, 5, 127, 127, 127]


@pytest.mark.parametrize("k", [1, 5, 8, 30])
def test_gemm_os_matches_numpy_and_accumulates(k):
    rng = np.random.default_rng(k)
    at = rng.integers(-128, 128, (k, 8), dtype=np.int8)
    b = rng.integers(-128, 128, (k, 8), dtype=np.int8)
    state = F.new_state(SMALL)
    state.sp[0:k] = at
    state.sp[100:100 + k] = b
    F.apply(SMALL, state, make("gemm", a=0, b=100, c=8, k=k))
    ref = at.T.astype(np.int64) @ b
    assert (state.acc[8:16] == ref).all()
    F.apply(SMALL, state, make("gemm", a=0, b=100, c=8, k=k, accumulate=1))
    assert (state.acc[8:16] == 2 * ref).all()


def test_gemm_ws_preload_reuse_and_repeat():
    rng = np.random.default_rng(1)
    w = rng.integers(-128, 128, (8, 8), dtype=np.int8)
    x = rng.integers(-128, 128, (12, 8), dtype=np.int8)
    state = F.new_state(WS)
    state.sp[0:8] = w
    state.sp[8:20] = x
    F.apply(WS, state, make("gemm", a=8, b=0, c=0, k=6, repeat=1, sa=6, sc=6, preload=1))
    assert (state.acc[0:12] == x.astype(np.int64) @ w).all()
    state.sp[0:8] = 0  # the array holds its weights: a gemm without preload reuses them
    F.apply(WS, state, make("gemm", a=8, b=0, c=20, k=12))
    assert (state.acc[20:32] == x.astype(np.int64) @ w).all()


def test_gemm_os_repeat_strides():
    rng = np.random.default_rng(2)
    at = rng.integers(-128, 128, (4, 8), dtype=np.int8)
    bs = rng.integers(-128, 128, (12, 8), dtype=np.int8)
    state = F.new_state(SMALL)
    state.sp[0:4] = at
    state.sp[10:22] = bs
    F.apply(SMALL, state, make("gemm", a=0, b=10, c=0, k=4, repeat=2, sb=4, sc=8))
    for i in range(3):
        assert (state.acc[8 * i:8 * i + 8] == at.T.astype(np.int64) @ bs[4 * i:4 * i + 4]).all()


def test_int32_wraps_like_hardware():
    state = F.new_state(SMALL)
    state.acc[0] = 2**31 - 1
    F.apply(SMALL, state, make("vec.add", dst=1, src=0, rows=1, use_imm=1, imm=1))
    assert (state.acc[1] == -(2**31)).all()


X = np.array([-300, -7, -6, -5, -1, 0, 1, 2**20 + 3], dtype=np.int64)


@pytest.mark.parametrize("op, imm, expect", [
    ("add", 3, X + 3), ("sub", 3, X - 3), ("mul", -2, X * -2), ("max", -5, np.maximum(X, -5)),
    ("min", 1, np.minimum(X, 1)), ("relu", 0, np.maximum(X, 0)),
    ("shr", 2, np.array([-75, -2, -1, -1, 0, 0, 0, 262145])),  # round half up: -6/4 = -1.5 -> -1
    ("shl", 3, X * 8),
    ("requant", 1, np.array([-128, -3, -3, -2, 0, 0, 1, 127])),
    ("requant", 0, np.clip(X, -128, 127)),
])
def test_vector_integer_ops(op, imm, expect):
    state = F.new_state(SMALL)
    state.acc[3] = X
    F.apply(SMALL, state, make(f"vec.{op}", dst=5, src=3, rows=1, use_imm=1, imm=imm))
    assert list(state.acc[5]) == list(expect)


def test_vector_rows_operand():
    state = F.new_state(SMALL)
    state.acc[0:2] = [[1] * 8, [2] * 8]
    state.acc[2:4] = [[10] * 8, [20] * 8]
    F.apply(SMALL, state, make("vec.sub", dst=4, src=2, src2=0, rows=2))
    assert (state.acc[4] == 9).all() and (state.acc[5] == 18).all()


def test_bf16_gemm_rounds_inputs_and_accumulates_in_fp32():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 128)).astype(np.float32)  # A^T rows: k=4
    raw = F.to_dram_bytes(a, "bf16")
    state = F.run(BF16, [make("load.sp", rows=4, cols=128, stride=256), make("finish")], raw)
    assert np.array_equal(state.sp[0:4], F.round_to_input(a, "bf16"))
    assert not np.array_equal(state.sp[0:4], a)
    F.apply(BF16, state, make("gemm", a=0, b=0, c=0, k=4))
    ref = state.sp[0:4].T @ state.sp[0:4]
    assert np.array_equal(state.acc[0:128], ref.astype(np.float32))
    F.apply(BF16, state, make("vec.exp2", dst=200, src=0, rows=1))
    assert np.allclose(state.acc[200], np.exp2(state.acc[0]))


def test_round_to_bf16_nearest_even():
    vals = np.array([1.0, 1.0 + 2**-8, 1.0 + 3 * 2**-8, -2.5], dtype=np.float32)
    assert list(F.round_to_input(vals, "bf16")) == [1.0, 1.0, 1.0 + 2**-6, -2.5]


@pytest.mark.parametrize("instr, message", [
    (make("load.sp", sram=8190, rows=4, cols=8, stride=8), "exceed the scratchpad"),
    (make("load.acc", dram=2, rows=1, cols=8), "multiples of 4"),
    (make("load.sp", dram=16777216 - 4, rows=1, cols=8), "exceed memory.dram_bytes"),
    (make("load.sp", rows=1, cols=9), "cols = 9"),
    (make("store.sp", rows=1, cols=8, narrow=1), "narrow"),
    (make("gemm", k=8, c=510), "accumulator rows"),
    (make("gemm", k=8, preload=1), "weight-stationary"),
    (make("vec.exp2", rows=1), "special-function"),
    (make("vec.shr", rows=1, imm=40), "0..31"),
    (make("load.sp", rows=1, cols=1, pop_prev=1), "no prev unit"),
    (make("vec.add", dst=4, src=2, src2=20, rows=4), "start below dst"),
    (make("vec.relu", dst=4, src=1, rows=4), "start below dst"),
])
def test_errors_name_pc_and_instruction(instr, message):
    prog = [make("gemm", k=1), instr, make("finish")]
    with pytest.raises(F.ExecutionError) as err:
        F.run(SMALL, prog)
    assert str(err.value).startswith(f"pc 1: {instr.text}:")
    assert message in str(err.value)


def test_unknown_opcode_and_missing_finish():
    with pytest.raises(F.ExecutionError, match="pc 1: unknown opcode"):
        F.run(SMALL, to_bytes([make("gemm", k=1)]) + bytes(16))
    with pytest.raises(F.ExecutionError, match="without finish"):
        F.run(SMALL, [make("gemm", k=1)])


def test_vector_ranges_that_stream_safely_are_accepted():
    # src >= dst (in place or ahead) and disjoint ranges read rows before the unit rewrites them
    for kwargs in (dict(dst=4, src=4, src2=4), dict(dst=4, src=6, src2=0), dict(dst=0, src=8, src2=16)):
        F.run(SMALL, [make("vec.add", rows=4, **kwargs), make("finish")])


def test_bf16_narrowing_keeps_the_sign_of_nan():
    # issue 14: a bf16 narrow store turned the negative quiet NaN 0xFFC00000 into 0x7FC0
    vals = np.array([0xFFC00000, 0x7FC00000, 0xFF800001, 0x7FFFFFFF], dtype=np.uint32).view(np.float32)
    raw = F.to_dram_bytes(vals, "bf16").view(np.uint16)
    assert [hex(x) for x in raw] == ["0xffc0", "0x7fc0", "0xffc0", "0x7fff"]
    back = F.from_dram_bytes(F.to_dram_bytes(vals, "bf16"), "bf16")
    assert np.isnan(back).all() and list(np.signbit(back)) == [True, False, True, False]
