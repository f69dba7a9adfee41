"""Issue 15 as a newcomer meets the CLI, one test (or more) per item, and issue 13's one user-error class."""
from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from isa.assembler import AssemblyError, assemble
from isa.design import load_design
from isa.errors import UserError
from isa.program_constants import DESIGN_CONSTANT_NAMES, design_constants
from workbench.cli import main
from workbench.outputs import staged_files, write_file

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "programs").glob("*.s"))
TINY = "tiny-int8-4x4"


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


# 1. Every shipped example assembles and simulates through `asm` and `sim run`, with the same constants as `rtl run`.
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_assemble_and_simulate(example, tmp_path, capsys):
    out = tmp_path / "prog.bin"
    assert main(["asm", str(example), "-o", str(out), "--design", TINY]) == 0
    assert main(["sim", "run", TINY, str(example), "--json"]) == 0
    capsys.readouterr()
    assert main(["sim", "run", TINY, str(out), "--json"]) == 0  # the binary runs as the text does
    from rtl.programs import load_program  # the RTL flow reads the same program with the same constants

    assert load_program(load_design(TINY), example) == assemble(example.read_text(), str(example),
                                                                 design_constants(load_design(TINY)))


def test_design_constants_follow_the_design_and_yield_to_equ():
    small, tiny = load_design("small-int8-8x8"), load_design(TINY)
    assert design_constants(small)["DIM"] == 8 and design_constants(tiny)["DIM"] == 4
    assert tuple(design_constants(tiny)) == DESIGN_CONSTANT_NAMES
    prog = assemble(".equ DIM 2\nload.sp rows=DIM cols=DIM\nfinish\n", "x.s", design_constants(tiny))
    assert prog[0]["rows"] == 2  # the file's own .equ wins


def test_undefined_name_says_where_names_come_from(tmp_path, capsys):
    with pytest.raises(AssemblyError, match=r"x.s:1:14: undefined name 'DIM'; define it with '.equ DIM VALUE'.*"
                                            r"assemble for a design, which predefines DIM, ROWS"):
        assemble("load.sp rows=DIM\n", "x.s")
    src = tmp_path / "typo.s"
    src.write_text("load.sp rows=DIN\nfinish\n")
    assert main(["asm", str(src)]) == 2
    err = _err(capsys)
    assert "undefined name 'DIN'" in err and "'.equ DIN VALUE'" in err and "design constants here are DIM" in err
    assert not (tmp_path / "typo.bin").exists()


# 5. `sim gemm` refuses sizes it cannot run before doing any work.
@pytest.mark.parametrize("argv, message", [
    (["--m", "1000000000", "--n", "1000000000", "--k", "1000000000"], "bytes of DRAM for A, B and C"),
    (["--m", "8", "--n", "8", "--k", "1000000000"], "bytes of DRAM for A, B and C"),
    (["--m", "4096", "--n", "4096", "--k", "16384", "--design", TINY], "tiles of the 4x4 array"),
    (["--m", "16", "--n", "16", "--k", "20000000", "--dataflow", "ws"], "a row of A (K) is 20,000,000 bytes"),
])
def test_sim_gemm_size_checked_up_front(argv, message, capsys, monkeypatch):
    import sim.gemm

    def no_generation(*args, **kwargs):
        raise AssertionError("the program was generated before the size check")

    monkeypatch.setattr(sim.gemm, "_emit", no_generation)
    assert main(["sim", "gemm", *argv]) == 2
    assert message in _err(capsys)


# 6. Outputs: locations checked before the work, written whole or not at all.
def test_output_locations_checked_before_work(tmp_path, capsys):
    gemm = str(EXAMPLES[0].parent / "gemm.s")
    (tmp_path / "adir").mkdir()
    assert main(["asm", gemm, "-o", str(tmp_path / "adir")]) == 2
    assert "is a folder; give a file name" in _err(capsys)
    assert main(["sim", "run", TINY, gemm, "--trace", str(tmp_path / "adir")]) == 2
    assert "is a folder" in _err(capsys)
    assert main(["sim", "run", TINY, gemm, "--dram-out", str(tmp_path / "none" / "x.bin")]) == 2
    assert "folder" in _err(capsys) and not (tmp_path / "none").exists()
    half = tmp_path / "half"
    (half / "report.html").mkdir(parents=True)
    assert main(["compare", TINY, "--workload", "gemm:16x16x16", "--out", str(half)]) == 2
    assert "report.html: is a folder" in _err(capsys)
    assert [p.name for p in half.iterdir()] == ["report.html"]  # no PNGs, no compare.json: nothing half-written
    (tmp_path / "file").write_text("x")
    assert main(["rtl", "verilog", TINY, "-o", str(tmp_path / "file")]) == 2
    assert "is not a folder" in _err(capsys)


def test_staged_files_are_all_or_nothing(tmp_path):
    (tmp_path / "b").write_text("old")
    with pytest.raises(RuntimeError), staged_files([tmp_path / "a", tmp_path / "b"]) as (ta, tb):
        ta.write_text("new a")
        tb.write_text("new b")
        raise RuntimeError("the work failed after writing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"] and (tmp_path / "b").read_text() == "old"
    write_file(tmp_path / "b", "new")
    assert (tmp_path / "b").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["b"]


# 7. Inputs that are not UTF-8.
@pytest.mark.parametrize("argv, name, what", [
    (["estimate", "F"], "g.toml", "design file is not UTF-8"),
    (["estimate", TINY, "--workload", "F"], "w.csv", "workload CSV is not UTF-8"),
    (["cost", "--design", TINY, "--rtl-synth", "F"], "s.json", "synthesis result (JSON) is not UTF-8"),
    (["sim", "run", TINY, "F"], "p.s", "assembly program is not UTF-8"),
    (["rtl", "run", TINY, "F"], "p.s", "assembly program is not UTF-8"),
])
def test_non_utf8_inputs(argv, name, what, tmp_path, capsys):
    path = tmp_path / name
    path.write_bytes(b"\xff\xfe" + bytes(range(256)))
    assert main([str(path) if a == "F" else a for a in argv]) == 2
    assert f"{path}: {what}" in _err(capsys)


# 8. cost/compare arguments.
@pytest.mark.parametrize("argv, message", [
    (["cost", "--area-mm2", "nan", "--node", "N5"], "'nan' is not a finite number"),
    (["cost", "--area-mm2", "100", "--node", "N5", "--volume", "0"], "'0' is out of range; allowed >= 1"),
    (["cost", "--area-mm2", "100", "--node", "N5", "--volume", "-5"], "'-5' is out of range; allowed >= 1"),
    (["cost", "--area-mm2", "100", "--node", "N5", "--margin", "1"], "allowed [0, 1)"),
])
def test_cost_numbers_validated(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_cost_reticle_limit_and_option_pairs(capsys):
    assert main(["cost", "--area-mm2", "5000", "--node", "N5"]) == 0
    assert "exceeds one 26 x 33 mm = 858 mm^2 lithography field" in capsys.readouterr().out
    assert main(["cost", "--area-mm2", "5000", "--node", "N5", "--json"]) == 0
    assert "858 mm^2" in json.loads(capsys.readouterr().out)["notes"][0]
    assert main(["cost", "--area-mm2", "800", "--node", "N5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["notes"] == []
    assert main(["cost", "--area-mm2", "100", "--node", "N5", "--rtl-synth", "x.json"]) == 2
    assert "use it with --design" in _err(capsys)
    assert main(["cost", "--design", TINY, "--area-mm2", "100"]) == 2
    assert "drop --area-mm2" in _err(capsys)


def test_compare_chip_names(capsys):
    assert main(["compare", TINY, "--chip", "adreno-740"]) == 2
    assert "no 16-bit peak" in _err(capsys)
    assert main(["compare", TINY, "--chip", "h100"]) == 2
    assert "ambiguous: it matches h100-sxm (NVIDIA H100 SXM), h100-pcie (NVIDIA H100 PCIe)" in _err(capsys)


# Issue 13: one user-error base class, which the CLI maps to exit code 2.
def test_every_error_class_of_ours_is_a_user_error():
    from compiler.errors import CompilerError
    from isa.assembler import AssemblyError
    from isa.design import DesignError
    from isa.encoding import EncodingError
    from isa.functional import ExecutionError
    from sim.gemm import GemmSizeError
    from sim.simulator import DeadlockError, RaceError
    from workbench.errors import UsageError

    for cls in (CompilerError, AssemblyError, DesignError, EncodingError, ExecutionError, GemmSizeError,
                DeadlockError, RaceError, UsageError):
        assert issubclass(cls, UserError), cls
    for info in pkgutil.iter_modules([str(ROOT / "workbench")]):
        if info.name == "__main__":
            continue
        module = importlib.import_module(f"workbench.{info.name}")
        assert not hasattr(module, "USER_ERRORS"), f"workbench.{info.name} still lists its own user errors"
        assert not hasattr(module, "RTLUsageError")


def test_isa_has_no_import_cycle():
    tool = Path("/work/shared/tools/check_layers.py")
    if not tool.exists():
        pytest.skip("check_layers.py is not on this machine")
    out = subprocess.run([sys.executable, str(tool)], cwd=ROOT, capture_output=True, text=True, timeout=120).stdout
    assert "isa.assembler <-> isa.encoding" not in out and not any(
        line.startswith("import cycle") and "isa." in line for line in out.splitlines())


def test_cli_defaults_import_their_constants():
    from workbench.cli import build_parser
    from workbench.cost import NB_ALPHA
    from workbench.estimate import AUTO_GEMM_START

    parser = build_parser()
    cost = parser.parse_args(["cost"])
    assert cost.alpha == NB_ALPHA
    sub = next(a for a in parser._actions if a.dest == "command").choices
    assert f"up to {AUTO_GEMM_START}" in " ".join(sub["estimate"].format_help().split())


def test_one_validator_for_the_whole_design_file(tmp_path):
    from isa.design import DesignError
    from workbench.design_tables import DesignTableError, design_tables

    base = (ROOT / "designs" / f"{TINY}.toml").read_text()
    bad_core = tmp_path / "a.toml"
    bad_core.write_text(base.replace("clock_hz = ", "clock_hz = nan #"))
    with pytest.raises(DesignError, match=r"field 'chip.clock_hz' = nan must be a finite number; allowed 1e\+06\.\.1e\+10"):
        load_design(bad_core)
    bad_table = tmp_path / "b.toml"
    bad_table.write_text(base + "\n[reference]\npeak_tflops = inf\n")
    with pytest.raises(DesignTableError, match=r"field 'reference.peak_tflops' = inf must be a finite number; allowed > 0"):
        design_tables(load_design(bad_table))
