"""Issue 15 as a newcomer meets the CLI, one test (or more) per item, and issue 13's one user-error class."""
from __future__ import annotations

import importlib
import json
import os
import pkgutil
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
    import compiler.accel.gemm_lowering as lowering

    def no_generation(*args, **kwargs):
        raise AssertionError("the program was generated before the size check")

    monkeypatch.setattr(lowering, "emit_groups", no_generation)
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
    from compiler.accel.gemm_lowering import GemmSizeError
    from compiler.errors import CompilerError
    from isa.assembler import AssemblyError
    from isa.design import DesignError
    from isa.encoding import EncodingError
    from isa.functional import ExecutionError
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


# 11. The facts the models cite ship with the project.
def test_citations_resolve_in_docs_sources():
    import re

    sources = (ROOT / "docs" / "sources.md").read_text()
    headings = set(re.findall(r"^### ([a-d]\.\d+|[CP]\.\d+)\b", sources, flags=re.M))
    cited: set[str] = set()
    for folder in ("workbench", "isa", "designs", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in (".py", ".toml", ".md") or path.name == "sources.md":
                continue
            text = path.read_text()
            assert "shared/reference" not in text and "cost_power_model.md" not in text, path
            for line in text.splitlines():
                if "docs/sources.md" in line or "sources = " in line:
                    cited |= set(re.findall(r"\b([a-d]\.\d+|[CP]\.\d+)\b", line))
    assert cited and cited <= headings, sorted(cited - headings)
    from workbench.chips import all_chips

    for chip in all_chips():
        assert f"### {chip.key}: {chip.name}" in sources


def test_every_argument_has_help_and_the_tool_describes_itself(capsys):
    import argparse

    from workbench.cli import build_parser

    missing = []

    def walk(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*prefix, name])
            elif not action.help and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                missing.append(" ".join([*prefix, *(action.option_strings or [action.dest])]))

    walk(build_parser(), ["workbench"])
    assert not missing
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "what does a petaflop cost" in text and "workbench demo" in text and "exit code 2" in text


def test_doctor_needs_a_gpu_not_just_nvcc(tmp_path, monkeypatch):
    """An nvcc on PATH is no GPU: `doctor` asks the compiler's CUDA runtime whether a device is usable."""
    from compiler import device
    from workbench import doctor

    fake = tmp_path / "nvcc"
    fake.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 12.4'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(device, "unavailable_reason", lambda fam: f"the {fam} driver sees no GPU")
    cuda = next(c for c in doctor.check_gpu_backends() if c.name == "cuda device")
    assert not cuda.ok and "sees no GPU" in cuda.detail and "driver" in cuda.fix
    monkeypatch.setattr(device, "unavailable_reason", lambda fam: "")
    monkeypatch.setattr(device, "available", lambda: ["REF", "CUDA", "CL", "SIM"])
    monkeypatch.setattr(device, "describe", lambda d: "NVIDIA H100 80GB HBM3 (CUDA)")
    cuda = next(c for c in doctor.check_gpu_backends() if c.name == "cuda device")
    assert cuda.ok and "CUDA: NVIDIA H100" in cuda.detail


# 9. Output fits the terminal; names are never cut.
@pytest.mark.parametrize("argv", [["chips"], ["compare", TINY, "--workload", "gemm:16x16x16"]])
@pytest.mark.parametrize("columns", [80, 200])
def test_tables_fit_the_terminal(argv, columns, monkeypatch, capsys):
    from workbench.chips import all_chips

    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= columns
    assert "…" not in out
    words = set(out.split())
    names = [c.name for c in all_chips()] if argv == ["chips"] else ["NVIDIA H100 SXM", "AMD Radeon RX 7900 XTX"]
    for name in names:  # a wrapped name keeps every word
        assert set(name.split()) <= words, name
    if columns == 200 and argv == ["chips"]:
        assert "left out" not in out


# 10. Units and prices say what they are, in the tables and the plots.
def test_compare_labels_tops_precision_and_price_basis(capsys):
    assert main(["compare", TINY, "datacenter-bf16-128x128", "--workload", "gemm:16x16x16", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows[TINY]["ops"] == "TOPS int8" and rows["datacenter-bf16-128x128"]["ops"] == "TFLOPS bf16"
    assert rows["NVIDIA H100 SXM"]["ops"] == "TFLOPS 16-bit"
    from workbench.report import LEGEND, Row, row_cells
    cells = row_cells(Row(**rows[TINY]))
    assert "TOPS int8" in cells and any(c.endswith(" make") for c in cells)
    assert any(c.endswith(" street,E") for c in row_cells(Row(**rows["NVIDIA H100 SXM"])))
    assert "cost to make" in LEGEND and "street/list price" in LEGEND


def test_plots_label_units_points_and_use_a_log_cost_axis():
    import matplotlib

    matplotlib.use("Agg")
    from workbench.chips import find_chip
    from workbench.estimate import estimate, parse_workload
    from workbench.report import chip_row, cost_figure, design_row, roofline_figure, scatter_figure

    tiny = load_design(TINY)
    est = estimate(tiny, parse_workload("gemm:64x64x64"))
    legend = [t.get_text() for t in roofline_figure(tiny, est).axes[0].get_legend().get_texts()]
    assert legend[0] == "roofline: 0.016 TOPS, 0.002 TB/s"  # three significant digits, not "0.0 TFLOPS, 0.00 TB/s"
    assert " TOPS at " in legend[1] and "OP/B" in legend[1]
    rows = [design_row(est), chip_row(find_chip("h100-sxm"))]
    labels = [t.get_text() for t in scatter_figure(rows).axes[0].texts]
    assert f"{TINY} (TOPS int8, peak)" in labels and f"{TINY} (achieved)" in labels
    assert "NVIDIA H100 SXM (achieved)" in labels
    ax = cost_figure([est]).axes[0]
    assert ax.get_yscale() == "log" and "cost to make" in ax.get_ylabel()
