"""CLI fuzz (issue 15): every subcommand, fed hostile files, numbers and output paths, exits 0 or 2 with no
traceback, and a command that fails leaves nothing behind in its output location.

In-process (`workbench.cli.main`), so an unexpected exception fails the test with its own traceback. Commands
that build RTL only get inputs that are refused before any build; the estimate/compare cases that do run use a
16x16x16 GEMM, so the whole file stays fast.
"""
from __future__ import annotations

import os
import random
import stat
from pathlib import Path

import pytest

from workbench.cli import main

ROOT = Path(__file__).resolve().parent.parent
GEMM_S = str(ROOT / "examples" / "programs" / "gemm.s")
TINY = "tiny-int8-4x4"
SWEEP_SPEC = str(ROOT / "examples" / "sweep-edge.toml")
ONE_POINT = ["--strategy", "random", "--points", "1", "--scheduler", "inline"]  # never a whole sweep
FAST = ["--workload", "gemm:16x16x16"]
SEED = 15

FILE_KINDS = ("random", "empty", "unreadable", "folder", "missing")
NUMBERS = ("nan", "inf", "-inf", "-5", "0", "1e308", "1" + "0" * 30, "abc")
OUTPUT_KINDS = ("folder", "in-missing-folder", "in-read-only-folder", "read-only-file", "under-a-file")

# (argv with one placeholder, suffix of the file it stands for). F: an input file, N: a number, O: an output.
FILE_CASES = [
    (["asm", "F"], ".s"),
    (["disasm", "F"], ".bin"),
    (["sim", "run", TINY, "F"], ".s"),
    (["sim", "run", TINY, "F"], ".bin"),
    (["sim", "run", "F", GEMM_S], ".toml"),
    (["sim", "run", TINY, GEMM_S, "--dram", "F"], ".npy"),
    (["sim", "gemm", "--m", "8", "--n", "8", "--k", "8", "--design", "F"], ".toml"),
    (["estimate", "F", *FAST], ".toml"),
    (["estimate", TINY, "--workload", "F"], ".csv"),
    (["estimate", TINY, *FAST, "--rtl-synth", "F"], ".json"),
    (["cost", "--design", "F"], ".toml"),
    (["cost", "--design", TINY, "--rtl-synth", "F"], ".json"),
    (["compare", "F", *FAST], ".toml"),
    (["compare", TINY, *FAST, "--workload", "F"], ".csv"),
    (["compare", TINY, *FAST, "--measured", "F"], ".json"),
    (["estimate", TINY, *FAST, "--measured", "F"], ".json"),
    (["demo", "--design", "F"], ".toml"),
    (["rtl", "verilog", "F", "-o", "OUTDIR"], ".toml"),
    (["rtl", "synth", "F"], ".toml"),
    (["rtl", "run", "F", GEMM_S], ".toml"),
    (["rtl", "activity", "F", GEMM_S], ".toml"),
    (["run", "F", "--device", "REF"], ".py"),
    (["quantize", "F"], ".py"),
    (["quantize", "char-gpt", "--weights", "F"], ".safetensors"),
    (["sweep", "F", "--quiet", *ONE_POINT], ".toml"),
    (["results", "F"], ".db"),
]
# An empty program is a valid (empty) input for the RTL flows, which would build a core: they get the others.
RTL_PROGRAM_CASES = [(["rtl", "run", TINY, "F"], ".s"), (["rtl", "activity", TINY, "F"], ".s")]
NUMBER_CASES = [
    ["sim", "gemm", "--m", "N", "--n", "8", "--k", "8"],
    ["sim", "gemm", "--m", "8", "--n", "8", "--k", "N"],
    ["sim", "gemm", "--m", "8", "--n", "8", "--k", "8", "--rows", "N"],
    ["cost", "--area-mm2", "N", "--node", "N5"],
    ["cost", "--area-mm2", "100", "--node", "N"],
    ["cost", "--area-mm2", "100", "--node", "N5", "--wafer-price-usd", "N"],
    ["cost", "--area-mm2", "100", "--node", "N5", "--d0", "N"],
    ["cost", "--area-mm2", "100", "--node", "N5", "--alpha", "N"],
    ["cost", "--area-mm2", "100", "--node", "N5", "--edge-exclusion-mm", "N"],
    ["cost", "--area-mm2", "100", "--node", "N5", "--memory-gb", "N", "--memory-type", "HBM3"],
    ["cost", "--area-mm2", "100", "--node", "N5", "--memory-gb", "8", "--memory-type", "HBM3",
     "--memory-usd-per-gb", "N"],
    ["cost", "--area-mm2", "100", "--node", "N5", "--packaging-usd", "N"],
    ["cost", "--area-mm2", "100", "--node", "N5", "--margin", "N"],
    ["cost", "--area-mm2", "100", "--node", "N5", "--volume", "N"],
    ["cost", "--area-mm2", "100", "--node", "N5", "--harvest", "N:10:0.5"],
    ["cost", "--area-mm2", "100", "--node", "N5", "--harvest", "12:10:N"],
    ["cost", "--design", TINY, "--margin", "N"],
    ["estimate", TINY, *FAST, "--margin", "N"],
    ["estimate", TINY, *FAST, "--volume", "N"],
    ["estimate", TINY, "--workload", "gemm:Nx16x16"],
    ["compare", TINY, *FAST, "--margin", "N"],
    ["compare", TINY, *FAST, "--tco", "N:0.1"],
    ["compare", TINY, *FAST, "--tco", "3:0.1:N"],
    ["run", "mlp", "--device", "REF", "--batch", "N"],
    ["quantize", "mlp", "--batch", "N"],
    ["measure", "gemm:Nx8x8", "--device", "CL"],
    ["measure", "gemm:8x8x8", "--device", "CL", "--repeats", "N"],
    ["sweep", SWEEP_SPEC, "--quiet", "--strategy", "random", "--points", "1", "--workers", "N"],
    ["sweep", SWEEP_SPEC, "--quiet", "--strategy", "random", "--scheduler", "inline", "--points", "N"],
]
OUTPUT_CASES = [
    ["asm", GEMM_S, "-o", "O"],
    ["disasm", "BIN", "-o", "O"],
    ["sim", "run", TINY, GEMM_S, "--trace", "O"],
    ["sim", "run", TINY, GEMM_S, "--dram-out", "O"],
    ["sim", "gemm", "--m", "8", "--n", "8", "--k", "8", "--trace", "O"],
    ["run", "mlp", "--device", "SIM:tiny-int8-4x4", "--trace", "O"],
    ["measure", "gemm:8x8x8", "--device", "CL", "--out", "O"],
    ["sweep", SWEEP_SPEC, "--quiet", *ONE_POINT, "--db", "O"],
    ["sweep", SWEEP_SPEC, "--quiet", *ONE_POINT, "--report", "O"],
]
# Folder outputs get the locations that are refused: the others would elaborate a core or plot a report
# (tests/test_models_reference.py writes a whole report).
FOLDER_OUTPUT_CASES = [(argv, kind) for argv in (["rtl", "verilog", TINY, "-o", "O"], ["compare", TINY, *FAST, "--out", "O"])
                       for kind in ("read-only-file", "under-a-file")]


def _input(root: Path, kind: str, suffix: str) -> str:
    path = root / f"{kind}{suffix}"
    rng = random.Random(f"{SEED}{kind}{suffix}")
    if kind == "folder":
        path.mkdir(exist_ok=True)
    elif kind in ("random", "unreadable"):
        path.write_bytes(bytes([0xFF, 0xFE]) + rng.randbytes(400))  # never valid UTF-8, nor a valid program
        if kind == "unreadable":
            path.chmod(0)
    elif kind == "empty":
        path.write_bytes(b"")
    return str(path)


def _output(root: Path, kind: str) -> str:
    if kind == "folder":
        (root / "out-folder").mkdir()
        return str(root / "out-folder")
    if kind == "in-missing-folder":
        return str(root / "no" / "such" / "folder" / "out.x")
    if kind == "in-read-only-folder":
        (root / "ro").mkdir()
        (root / "ro").chmod(stat.S_IRUSR | stat.S_IXUSR)
        return str(root / "ro" / "out.x")
    if kind == "read-only-file":
        (root / "ro.x").write_text("keep me")
        (root / "ro.x").chmod(stat.S_IRUSR)
        return str(root / "ro.x")
    (root / "a-file").write_text("keep me")
    return str(root / "a-file" / "out.x")


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def _run(argv: list[str], out_root: Path, capsys) -> int:
    before = _tree(out_root)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    assert code in (0, 2), f"{argv}: exit {code}: {err}"
    assert "Traceback" not in err
    if code == 2:
        assert err.strip() or out.startswith("usage:"), f"{argv}: exit 2 without a message or help"
        assert _tree(out_root) == before, f"{argv}: failed but changed its output location"
    return code


@pytest.fixture(autouse=True)
def _scratch_cwd(tmp_path, monkeypatch):
    """Cases that succeed write their default outputs (e.g. a sweep's `<spec>.db`) to the current folder."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def out_root(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    yield root
    for p in [root, *root.rglob("*")]:  # let pytest clean up what the cases made read-only
        if not p.is_symlink():
            p.chmod(stat.S_IRWXU)


def _file_ids(case):
    argv, suffix = case
    return "-".join([*argv[:2], suffix])


@pytest.mark.parametrize("kind", FILE_KINDS)
@pytest.mark.parametrize("case", FILE_CASES, ids=_file_ids)
def test_hostile_input_files(case, kind, tmp_path, out_root, capsys):
    argv, suffix = case
    path = _input(tmp_path, kind, suffix)
    argv = [path if a == "F" else str(out_root / "verilog") if a == "OUTDIR" else a for a in argv]
    _run(argv, out_root, capsys)


@pytest.mark.parametrize("kind", [k for k in FILE_KINDS if k != "empty"])
@pytest.mark.parametrize("case", RTL_PROGRAM_CASES, ids=_file_ids)
def test_hostile_programs_for_the_rtl(case, kind, tmp_path, out_root, capsys):
    argv, suffix = case
    assert _run([_input(tmp_path, kind, suffix) if a == "F" else a for a in argv], out_root, capsys) == 2


@pytest.mark.parametrize("number", NUMBERS)
@pytest.mark.parametrize("argv", NUMBER_CASES, ids=lambda a: "-".join(a[:1] + [x for x in a if "N" in x or x[:2] == "--"][:2]))
def test_hostile_numbers(argv, number, out_root, capsys):
    _run([a.replace("N", number) if "N" in a and a != "N5" and a != "HBM3" else a for a in argv], out_root, capsys)


@pytest.fixture
def binary(tmp_path) -> str:
    path = tmp_path / "gemm.bin"
    assert main(["asm", GEMM_S, "-o", str(path)]) == 0
    return str(path)


@pytest.mark.parametrize("kind", OUTPUT_KINDS)
@pytest.mark.parametrize("argv", OUTPUT_CASES, ids=lambda a: "-".join(a[:2] + [a[-2]]))
def test_hostile_output_paths(argv, kind, binary, out_root, capsys):
    out = _output(out_root, kind)
    code = _run([out if a == "O" else binary if a == "BIN" else a for a in argv], out_root, capsys)
    if kind in ("under-a-file", "folder"):
        assert code == 2  # a file cannot be written at a folder or inside a file
    if kind in ("in-read-only-folder", "read-only-file") and os.geteuid() != 0:  # root may write anywhere
        assert code == 2


@pytest.mark.parametrize("argv, kind", FOLDER_OUTPUT_CASES, ids=lambda x: x if isinstance(x, str) else x[0])
def test_hostile_output_folders(argv, kind, out_root, capsys):
    out = _output(out_root, kind)
    assert _run([out if a == "O" else a for a in argv], out_root, capsys) == 2


@pytest.mark.parametrize("argv", [["doctor", "--bogus"], ["chips", "--json"], ["sim"], ["rtl"], ["cost"],
                                  ["compare"], ["sim", "gemm", "--m", "8"]])
def test_bare_and_odd_commands(argv, out_root, capsys):
    _run(argv, out_root, capsys)


def test_every_subcommand_is_fuzzed():
    """A new subcommand needs cases above (the message names it)."""
    import argparse

    from workbench.cli import build_parser

    def leaves(parser, prefix):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            return [" ".join(prefix)]
        return [leaf for name, sub in subs[0].choices.items() for leaf in leaves(sub, [*prefix, name])]

    argvs = [a for a, _ in FILE_CASES + RTL_PROGRAM_CASES] + NUMBER_CASES + OUTPUT_CASES + \
        [a for a, _ in FOLDER_OUTPUT_CASES]
    covered = {" ".join(a[:2]) for a in argvs} | {a[0] for a in argvs}
    missing = [leaf for leaf in leaves(build_parser(), []) if leaf not in covered and leaf.split()[0] not in
               ("doctor", "chips")]  # no file or number arguments: test_bare_and_odd_commands runs them
    assert not missing, f"add fuzz cases for: {', '.join(missing)}"
