"""Reference designs through the real simulator, and the compare report (headless)."""

import json

import pytest

from isa.counters import MACS_COUNTER
from isa.design import load_design
from workbench.cli import main
from workbench.estimate import estimate, parse_workload
from workbench.power import sustained_power


@pytest.mark.parametrize("name", ["rx7900xtx-like", "h100-like"])
def test_reference_design_checks_pass_with_simulator(name):
    d = load_design(name)
    est = estimate(d, parse_workload("gemm:2048x2048x2048"))
    assert est.checks and all(c.ok for c in est.checks), [(c.name, c.value, c.low, c.high) for c in est.checks]
    names = {c.name for c in est.checks}
    assert {"peak_tflops within 1%", "die_cost_usd", "peak_rate_energy_per_flop_pj"} <= names
    f = est.figures
    assert 0 < f["utilization"].value <= 1
    assert f["achieved_tflops"].value <= f["peak_tflops"].value
    # the simulated array MACs cover the useful work (padding only adds)
    assert est.counters[MACS_COUNTER[d.matrix.input_dtype]] >= 2048**3


def test_sustained_power_breakdown_is_shown_and_consistent():
    d = load_design("h100-like")
    est = estimate(d, parse_workload("gemm:256x256x256"))
    sp = sustained_power(d, 700)
    f = est.figures
    for item in sp.items:  # every part of the breakdown reaches the `estimate` output
        assert f[f"sustained_{item.name}_w"].value == pytest.approx(item.watts)
    assert f["peak_rate_power_w"].value == pytest.approx(sp.total_w)
    assert f["sustained_power_vs_tdp"].value == pytest.approx(sp.total_w / 700 - 1)
    # the HBM3 devices at full bandwidth: 3.382 TB/s x 3.9 pJ/bit (b.4)
    assert sp.item("dram") == pytest.approx(3.382e12 * 8 * 3.9e-12, rel=1e-3)


def test_compare_writes_report(tmp_path, capsys):
    out = tmp_path / "rep"
    rc = main(
        [
            "compare",
            "rx7900xtx-like",
            "small-int8-8x8",
            "--workload",
            "gemm:256x256x256",
            "--chip",
            "7900xtx",
            "--chip",
            "tinybox red",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "rx7900xtx-like" in text and "tinybox red" in text and "report:" in text
    files = {p.name for p in out.iterdir()}
    assert {
        "report.html",
        "compare.json",
        "tflops_per_dollar_vs_watt.png",
        "cost_breakdown.png",
        "roofline_rx7900xtx-like.png",
        "roofline_small-int8-8x8.png",
    } <= files
    data = json.loads((out / "compare.json").read_text())
    kinds = [r["kind"] for r in data["rows"]]
    assert kinds == ["design", "design", "chip", "chip"]
    assert data["rows"][0]["achieved_provenance"] == "simulated"
    html = (out / "report.html").read_text()
    assert "roofline_small-int8-8x8.png" in html and "Reference checks" in html


def test_estimate_cli_json_and_fit_error(capsys):
    assert main(["estimate", "small-int8-8x8", "--workload", "gemm:64x64x64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["figures"]["achieved_tflops"]["provenance"] == "simulated"
    assert data["figures"]["unit_cost_usd"]["provenance"] == "modelled"
    assert main(["estimate", "small-int8-8x8", "--workload", "gemm:4096x4096x4096"]) == 2
    err = capsys.readouterr().err
    assert "memory.dram_capacity_bytes is 16,777,216" in err and "A 4096x4096 int8" in err


def test_compare_tco_columns(capsys):
    from workbench.chips import find_chip
    from workbench.report import add_tco, chip_row

    row = chip_row(find_chip("h100-sxm"))
    add_tco([row], years=3, usd_per_kwh=0.10, pue=1.2)
    assert row.tco_usd == pytest.approx(27500 + 0.7 * 8760 * 3 * 0.10 * 1.2)
    assert row.tco_achieved_tflops_per_kusd == pytest.approx(794.5 / row.tco_usd * 1000)
    assert main(["compare", "small-int8-8x8", "--workload", "gemm:64x64x64", "--tco", "3:0.1"]) == 0
    assert "TCO $" in capsys.readouterr().out


def test_compare_skips_designs_the_workload_does_not_fit(capsys):
    assert main(["compare", "tiny-int8-4x4", "small-int8-8x8", "--workload", "gemm:1024x1024x1024"]) == 0
    captured = capsys.readouterr()
    assert "skipped tiny-int8-4x4" in captured.err and "memory.dram_capacity_bytes" in captured.err
    assert "small-int8-8x8" in captured.out
    assert main(["compare", "tiny-int8-4x4", "--workload", "gemm:1024x1024x1024"]) == 2
