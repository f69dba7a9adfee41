"""The measured-GEMM data file is well-formed and sourced, and the comparison computes its errors (fast: a stub
timing model stands in for the simulator; bench/validate_silicon.py runs the real one)."""

from types import SimpleNamespace

import pytest

from isa.counters import MACS_COUNTER
from workbench.chips import find_chip
from workbench.measured import (
    MeasuredDataError,
    compare_to_design,
    error_stats,
    load_measurements,
    reference_design_for,
    shape_kind,
)


def test_data_file_is_well_formed_and_sourced():
    rows = load_measurements()
    chips = {r.chip for r in rows}
    assert {"h100-sxm", "rx-7900-xtx"} <= chips
    for r in rows:
        chip = find_chip(r.chip)  # every chip is in the chip database
        # a measurement can never beat the datasheet's dense peak for its dtype
        peak = chip.peak_bf16_tflops_dense if r.dtype == "bf16" else chip.peak_fp16_tflops_dense
        assert 0 < r.measured_tflops <= peak, r
        assert r.source_url.startswith("https://github.com/") or r.source_url.startswith("https://"), r
        assert r.kind == shape_kind(r.m, r.n, r.k, r.batch)
        assert reference_design_for(r.chip).extras["reference"]["chip"] == r.chip


def test_malformed_rows_name_the_line_and_field(tmp_path):
    head = "chip,dtype,m,n,k,batch,kind,measured_tflops,library,source_url,source_note\n"
    bad = tmp_path / "m.csv"
    bad.write_text("# comment\n" + head + "h100-sxm,bf16,1,4096,4096,1,square,1.0,x,https://a,b\n")
    with pytest.raises(MeasuredDataError, match=r"m.csv:3: field 'kind' = 'square' but the shape is 'gemv'"):
        load_measurements(bad)
    bad.write_text(head + "h100-sxm,bf16,64,64,64,1,square,1.0,x,http://a,b\n")
    with pytest.raises(MeasuredDataError, match="https source_url"):
        load_measurements(bad)
    bad.write_text(head + "h100-sxm,fp8,64,64,64,1,square,1.0,x,https://a,b\n")
    with pytest.raises(MeasuredDataError, match="field 'dtype'"):
        load_measurements(bad)


def test_comparison_errors_and_statistics():
    def half_peak(m, n, k, design, values, ideal_memory=False):
        # a stand-in timing model: the array at half its rate
        macs = m * n * k
        cycles = 2 * macs / (design.matrix.rows * design.matrix.cols)
        return SimpleNamespace(cycles=cycles, counters={MACS_COUNTER[design.matrix.input_dtype]: macs})

    rows = [r for r in load_measurements() if r.chip == "rx-7900-xtx"][:2]
    design = reference_design_for("rx-7900-xtx")
    res = compare_to_design(rows, design, simulate=half_peak)
    for c, r in zip(res, rows, strict=True):
        # 96 cores share the GEMM: each simulated block runs at half the array rate
        assert c.simulated_tflops is not None and c.error == pytest.approx(c.simulated_tflops / r.measured_tflops - 1)
    stats = error_stats(res)
    assert stats["count"] == 2 and stats["worst_abs_error"] >= stats["median_abs_error"]
