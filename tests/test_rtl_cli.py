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
    assert "module core_tiny_int8_4x4(" in text and "module \\core_tiny_int8_4x4.matrix.array.pe_3_3" in text


def test_user_errors_exit_2(tmp_path, capsys):
    assert main(["rtl", "run", TINY, str(tmp_path / "missing.s")]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.s"
    bad.write_text("gemm a=0 b=0 c=0 k=0\nfinish\n")
    assert main(["rtl", "run", TINY, str(bad)]) == 2
    assert main(["rtl", "verilog", "no-such-design", "-o", str(tmp_path)]) == 2


@pytest.mark.parametrize("what, text", [
    ("deadlock", "gemm a=0 b=4 c=0 k=4 pop_prev\n"),  # the gemm waits for a load that never pushes its token
    # two gemms in flight whose accumulator rows overlap partially: the RTL gave other DRAM (issue 14)
    ("overlap partially", "load.sp sram=0 rows=8 cols=4 push_next\ngemm a=0 b=4 c=0 k=4 pop_prev\n"
                          "gemm a=0 b=4 c=2 k=1 push_next\nstore.acc sram=0 rows=8 cols=4 stride=16 pop_prev\n"),
])
def test_bad_program_is_reported_by_the_simulator_before_any_build(tmp_path, capsys, monkeypatch, what, text):
    from rtl import run

    def no_build(*a, **k):
        raise AssertionError("the RTL must not be built for a program the simulator rejects")

    monkeypatch.setattr(run, "build_core", no_build)
    bad = tmp_path / "bad.s"
    bad.write_text(text + "finish\n")
    assert main(["sim", "run", TINY, str(bad)]) == 2
    sim_err = capsys.readouterr().err.strip().splitlines()[-1]
    assert main(["rtl", "run", TINY, str(bad)]) == 2
    rtl_err = capsys.readouterr().err.strip().splitlines()[-1]
    assert what in sim_err and rtl_err.partition("error: ")[2] == sim_err.partition("error: ")[2]


def test_bad_max_cycles_and_oversized_program_are_one_line_errors(tmp_path, capsys):
    prog = tmp_path / "ok.s"
    prog.write_text("finish\n")
    for bad in ("-5", "0", "many"):
        with pytest.raises(SystemExit) as exc:
            main(["rtl", "run", TINY, str(prog), "--max-cycles", bad])
        assert exc.value.code == 2
        assert "--max-cycles" in capsys.readouterr().err
    big = tmp_path / "big.s"
    big.write_text("load.sp sram=0 rows=0 pad=1\n" * 1100 + "finish\n")
    assert main(["rtl", "run", TINY, str(big)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "1101 instructions" in err and "instruction memory holds 1024" in err


def test_unsupported_design_is_a_user_error(tmp_path, capsys):
    assert main(["rtl", "verilog", "datacenter-bf16-128x128", "-o", str(tmp_path)]) == 2
    assert "integer designs" in capsys.readouterr().err


def test_verilog_output_that_is_a_file_is_a_user_error(tmp_path, capsys):
    target = tmp_path / "file.v"
    target.write_text("keep")
    assert main(["rtl", "verilog", TINY, "-o", str(target)]) == 2
    assert "is not a folder" in capsys.readouterr().err and target.read_text() == "keep"


@needs_verilator
def test_run_prints_agreement_json_and_progress_on_stderr(capsys):
    assert main(["rtl", "run", TINY, "examples/programs/gemm_requant_relu.s", "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["cycles_match"] and out["values_match"] and out["rtl_cycles"] == out["sim_cycles"]
    assert out["counters"]["macs_int8"] == 4 * 4 * 8
    steps = captured.err.splitlines()
    assert [s for s in steps if "simulating" in s] and [s for s in steps if "running the program" in s]
    assert all(line.startswith("rtl run: [") and " s] " in line for line in steps)


@needs_verilator
def test_too_few_max_cycles_says_did_not_finish(capsys):
    prog = "examples/programs/gemm_requant_relu.s"
    assert main(["rtl", "run", TINY, prog, "--json"]) == 0
    cycles = json.loads(capsys.readouterr().out)["sim_cycles"]
    assert main(["rtl", "run", TINY, prog, "--max-cycles", str(cycles)]) == 0  # exactly enough
    capsys.readouterr()
    assert main(["rtl", "run", TINY, prog, "--max-cycles", str(cycles - 1)]) == 1
    out = capsys.readouterr().out
    assert f"did not finish in {cycles - 1} cycles" in out and "DIFFER" not in out


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
    captured = capsys.readouterr()
    rep = json.loads(captured.out)
    assert "yosys synthesis" in captured.err
    blocks = rep["blocks"]
    assert blocks["array"]["logic_ge"] > blocks["dma"]["logic_ge"] > 0
    assert blocks["scratchpad"]["sram_bits"] == 4096 * 8 and blocks["accumulator"]["sram_bits"] == 2048 * 8
    assert blocks["array"]["sram_bits"] == 0 and rep["logic_depth"] > 10
    assert rep["total_mm2"] > 0


def test_sweep_takes_explicit_seeds(capsys):
    from workbench.rtl_sweep import build_parser, parse_seeds
    from workbench.rtl_sweep import main as sweep_main

    assert parse_seeds("1000-1003,7, 2000") == [1000, 1001, 1002, 1003, 7, 2000]
    for bad in ("x", "5-2", "-3", ""):
        with pytest.raises(SystemExit) as exc:
            sweep_main(["--seeds", bad, "--designs", TINY])
        assert exc.value.code == 2 and "--seeds" in capsys.readouterr().err
    args = build_parser().parse_args(["--random", "3", "--first-seed", "50"])
    assert (args.random, args.first_seed, args.seeds) == (3, 50, None)


def test_sweep_reports_a_program_the_simulator_rejects_instead_of_crashing(monkeypatch, capsys):
    # gemm.s races on the weight-stationary array (partially overlapping accumulator blocks): the sweep says so
    # and goes on, and the exit code counts only RTL disagreements (no Verilator build here: both are stubbed)
    from types import SimpleNamespace

    import rtl.run
    import workbench.rtl_agreement as agreement
    from sim.simulator import RaceError
    from workbench.rtl_sweep import main as sweep_main

    monkeypatch.setattr(rtl.run, "build_core", lambda d: SimpleNamespace(build_seconds=0.0, cached=True))

    def fake_run(design, program, image):
        if any(getattr(i, "mnemonic", "") == "gemm" for i in program) and len(program) > 6:
            raise RaceError("data race: gemm pc 5 ...")
        return SimpleNamespace(ok=True, rtl_cycles=10, run_seconds=0.0, mismatch=None)

    monkeypatch.setattr(agreement, "run_on_rtl", fake_run)
    assert sweep_main(["--designs", TINY + "+ws", "--random", "0"]) == 0
    out = capsys.readouterr().out
    assert "not run (the simulator rejects it on this design)" in out and "data race" in out
