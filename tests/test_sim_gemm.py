"""GEMM programs: values against numpy for many (ragged) shapes, the fold formula, and the timing modes."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isa.design import load_design
from sim.gemm import gemm_design, gemm_program, simulate_gemm
from sim.simulator import simulate


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (8, 8, 8), (3, 17, 9), (17, 3, 40), (9, 9, 300), (64, 40, 64),
                                     (100, 30, 130), (33, 65, 7)])
def test_int8_gemm_exact_against_numpy(m, n, k, dataflow):
    res = simulate_gemm(m, n, k, dataflow=dataflow, seed=m * n + k)
    assert res.verified is True
    assert res.dram_write_bytes == m * n * 4
    assert res.dram_read_bytes >= m * k + k * n
    assert res.counters["instructions"] == res.instructions - 1  # every instruction but finish


@pytest.mark.parametrize("design", ["tiny-int8-4x4", "edge-int8-16x16"])
def test_gemm_on_other_shipped_designs(design):
    assert simulate_gemm(37, 21, 50, design=design).verified


def test_large_reduction_and_long_streams_are_chunked():
    small = load_design("small-int8-8x8")
    gp = gemm_program(small, 40, 300, 5000)  # K above a quarter of the scratchpad: chunked
    assert max(i["k"] for i in gp.program if i.mnemonic == "gemm") <= small.scratchpad_rows // 4
    assert simulate_gemm(40, 300, 5000, dataflow="os").verified
    assert simulate_gemm(600, 20, 30, dataflow="ws").verified  # M above half the accumulator


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_bf16_gemm_on_a_float_design(dataflow):
    res = simulate_gemm(20, 130, 33, design="datacenter-bf16-128x128", dataflow=dataflow)
    assert res.verified is True
    assert res.counters["macs_bf16"] > 0


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.integers(1, 300), st.sampled_from([(4, 4), (8, 8), (8, 16),
                                                                                         (16, 8), (32, 32)]),
       st.sampled_from(["os", "ws"]))
def test_ideal_no_overlap_is_the_fold_formula(m, n, k, array, dataflow):
    r, c = array
    res = simulate_gemm(m, n, k, rows=r, cols=c, dataflow=dataflow, ideal_memory=True, overlap=False, values=False)
    if dataflow == "os":
        expect = math.ceil(m / r) * math.ceil(n / c) * (k + r + c - 2)
    else:
        expect = math.ceil(k / r) * math.ceil(n / c) * (m + 2 * r + c - 2)
    assert res.cycles == expect


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_overlap_and_ideal_memory_only_ever_help(dataflow):
    kw = dict(m=96, n=72, k=80, dataflow=dataflow, values=False)
    real = simulate_gemm(**kw).cycles
    no_overlap = simulate_gemm(**kw, overlap=False).cycles
    ideal = simulate_gemm(**kw, ideal_memory=True).cycles
    ideal_no_overlap = simulate_gemm(**kw, ideal_memory=True, overlap=False).cycles
    assert ideal < real <= no_overlap
    assert ideal < ideal_no_overlap


def test_timing_only_matches_values_run_and_json_fields():
    a = simulate_gemm(50, 60, 70)
    b = simulate_gemm(50, 60, 70, values=False)
    assert a.cycles == b.cycles and a.counters == b.counters and b.verified is None
    doc = json.loads(json.dumps(a.to_json()))
    for key in ("cycles", "utilization", "macs", "dram_read_bytes", "dram_write_bytes", "units", "counters"):
        assert key in doc
    assert doc["macs"] == 50 * 60 * 70
    assert set(doc["units"]) == {"fetch", "load", "matrix", "vector", "store"}
    assert 0 < doc["utilization"] <= 1
    assert b.to_json()["mode"].startswith("timing only")


def test_generated_program_is_compact_and_race_free():
    gp = gemm_program(load_design("small-int8-8x8"), 256, 256, 256)
    gemms = [i for i in gp.program if i.mnemonic == "gemm"]
    assert len(gemms) < (256 // 8) * (256 // 8) // 2  # repeat covers a panel of tiles per gemm
    res = simulate(gp.design, gp.program, None, check_races=True, values=False)
    assert res.counters["macs_int8"] == 256**3


def test_overrides_keep_sram_rows_and_validate():
    d = gemm_design("small-int8-8x8", rows=32, cols=16, dataflow="ws")
    small = load_design("small-int8-8x8")
    assert (d.matrix.rows, d.matrix.cols, d.matrix.dataflow) == (32, 16, "ws")
    assert d.scratchpad_rows == small.scratchpad_rows
    with pytest.raises(ValueError, match=">= 1"):
        gemm_program(small, 0, 4, 4)


def test_streams_longer_than_a_dma_are_split_and_still_one_fold():
    m, n, k = 5000, 8, 20  # WS streams all 5000 rows per fold; each load moves at most 4095 rows
    res = simulate_gemm(m, n, k, dataflow="ws", ideal_memory=True, overlap=False)
    assert res.verified
    assert res.cycles == math.ceil(k / 8) * math.ceil(n / 8) * (m + 2 * 8 + 8 - 2)
