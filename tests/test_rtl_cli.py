"""`workbench rtl ...`: Verilog export, run with agreement exit codes, synth and activity reports."""
import json

import pytest

from rtl.toolchain import find_verilator
from workbench.cli import main

pytestmark = pytest.mark.rtl
needs_verilator = pytest.mark.skipif(find_verilator() is None, reason="Verilator not installed")
TINY = "tiny-int8-4x4"


def test_verilog_export(tmp_path, capsys):
    assert main(["rtl", "verilog", TINY, "-o", str(tmp_path)]) == 0
    text = (tmp_path / "core_tiny_int8_4x4.v").read_text()
    assert "module core_tiny_int8_4x4(" in text and "module \\core_tiny_int8_4x4.array.pe_3_3" in text


def test_user_errors_exit_2(tmp_path, capsys):
    assert main(["rtl", "run", TINY, str(tmp_path / "missing.s")]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.s"
    bad.write_text("gemm a=0 b=0 c=0 k=0\nfinish\n")
    assert main(["rtl", "run", TINY, str(bad)]) == 2
    assert main(["rtl", "verilog", "no-such-design", "-o", str(tmp_path)]) == 2


@needs_verilator
def test_run_prints_agreement_json(capsys):
    assert main(["rtl", "run", TINY, "examples/programs/gemm_requant_relu.s", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cycles_match"] and out["values_match"] and out["rtl_cycles"] == out["sim_cycles"]
    assert out["counters"]["macs_int8"] == 4 * 4 * 8


@needs_verilator
def test_run_racy_program_is_a_user_error(tmp_path, capsys):
    racy = tmp_path / "racy.s"  # the gemm does not wait for the second load
    racy.write_text("load.sp sram=0 rows=4 cols=4 stride=4 push_next\nload.sp sram=4 rows=4 cols=4 stride=4\n"
                    "gemm a=0 b=4 c=0 k=4 pop_prev\nfinish\n")
    assert main(["rtl", "run", TINY, str(racy)]) == 2
    assert "race" in capsys.readouterr().err.lower()


@needs_verilator
def test_activity_reports_energy_per_mac(capsys):
    assert main(["rtl", "activity", TINY, "examples/programs/gemm_tiled.s", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["agreement_ok"] and rep["macs"] == 512
    assert rep["blocks"]["array"]["toggles"] > 0 and rep["energy_pj_per_mac"] > 0
    assert rep["cycles"] == rep["rtl_cycles"]


def test_synth_reports_blocks(capsys):
    assert main(["rtl", "synth", TINY, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    blocks = rep["blocks"]
    assert blocks["array"]["logic_ge"] > blocks["dma"]["logic_ge"] > 0
    assert blocks["scratchpad"]["sram_bits"] == 4096 * 8 and blocks["accumulator"]["sram_bits"] == 2048 * 8
    assert blocks["array"]["sram_bits"] == 0 and rep["logic_depth"] > 10
    assert rep["total_mm2"] > 0
