"""`workbench measure` on the CL device (PoCL): measured TFLOPS, power "not available" with the reason,
JSON with the device's identity, and the measured row in `compare`."""

from __future__ import annotations

import json

import pytest

from workbench.cli import main


def test_measure_gemm_on_cl_reports_tflops_and_why_there_is_no_power(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["measure", "gemm:128x96x64", "--device", "CL", "--repeats", "2", "--out", str(out), "--json"]) == 0
    m = json.loads(out.read_text())
    assert m == json.loads(capsys.readouterr().out)
    assert m["device"] == "CL" and m["provenance"] == "measured" and m["device_ident"]
    assert m["flops"] == 2 * 128 * 96 * 64 and m["kernels"] == 1 and m["repeats"] == 2
    assert m["tflops"] == pytest.approx(m["flops"] / m["seconds"] / 1e12)
    assert m["seconds_min"] <= m["seconds"] <= m["seconds_max"]
    assert m["power_w"] is None and m["tflops_per_w"] is None
    assert m["power_note"].startswith("not available: ") and "NVML" in m["power_note"]
    assert main(["compare", "small-int8-8x8", "--workload", "gemm:128x96x64", "--measured", str(out), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    row = next(r for r in rows if r["kind"] == "measured")
    assert row["achieved_tflops"] == m["tflops"] and row["achieved_provenance"] == "measured"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["measure", "gemm:0x4x4", "--device", "CL"], "M, N and K must be >= 1"),
        (["measure", "resnet", "--device", "CL"], "expected gemm:MxNxK"),
        (["measure", "gemm:8x8x8", "--device", "REF"], "reference interpreter"),
        (["measure", "gemm:8x8x8", "--device", "CUDA:7"], "unavailable"),
    ],
)
def test_measure_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_measured_file_that_is_not_a_measurement(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"workload": "gemm:8x8x8"}')
    assert main(["compare", "small-int8-8x8", "--measured", str(bad)]) == 2
    assert "is not a `workbench measure` result (missing" in capsys.readouterr().err
