"""The asm, disasm and sim commands through `workbench.cli.main`: outputs, JSON and clean user errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.cli import main

PROGRAM = """\
; C (int32) = A^T^T x B for one 4x4 tile on tiny-int8-4x4
load.sp sram=0   dram=0  stride=4 rows=4 cols=4
load.sp sram=512 dram=16 stride=4 rows=4 cols=4 push_next
gemm a=0 b=512 k=4 pop_prev push_next
store.acc dram=64 stride=16 rows=4 cols=4 pop_prev
finish
"""


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "prog.s"
    path.write_text(PROGRAM)
    return path


def test_asm_then_disasm_round_trip(source, tmp_path, capsys):
    out = tmp_path / "prog.bin"
    assert main(["asm", str(source), "-o", str(out)]) == 0
    assert out.stat().st_size == 5 * 16
    capsys.readouterr()
    assert main(["disasm", str(out)]) == 0
    text = capsys.readouterr().out
    again = tmp_path / "again.s"
    again.write_text(text)
    assert main(["asm", str(again), "-o", str(tmp_path / "again.bin")]) == 0
    assert (tmp_path / "again.bin").read_bytes() == out.read_bytes()


def test_sim_run_json_with_dram_image_trace_and_dram_out(source, tmp_path, capsys):
    a_t = np.arange(16, dtype=np.int8).reshape(4, 4)
    b = (np.arange(16, dtype=np.int8) - 8).reshape(4, 4)
    image = tmp_path / "dram.npy"
    np.save(image, np.concatenate([a_t.reshape(-1), b.reshape(-1)]))
    trace, dram_out = tmp_path / "t.json", tmp_path / "out.bin"
    assert main(["sim", "run", "tiny-int8-4x4", str(source), "--dram", str(image), "--json", "--trace", str(trace),
                 "--dram-out", str(dram_out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cycles"] > 0 and doc["macs"] == 64 and doc["dram_write_bytes"] == 64
    assert set(doc["units"]) == {"fetch", "load", "matrix", "vector", "store"}
    c = np.frombuffer(dram_out.read_bytes()[64:128], dtype="<i4").reshape(4, 4)
    assert np.array_equal(c, a_t.T.astype(np.int32) @ b)
    assert sum(e["ph"] == "X" for e in json.loads(trace.read_text())["traceEvents"]) == 4


def test_sim_run_table_output(source, capsys):
    assert main(["sim", "run", "tiny-int8-4x4", str(source)]) == 0
    out = capsys.readouterr().out
    assert "cycles" in out and "matrix" in out and "macs_int8" in out


def test_sim_gemm_json_and_scalesim_mode(capsys):
    assert main(["sim", "gemm", "--m", "10", "--n", "7", "--k", "5", "--rows", "4", "--cols", "4",
                 "--dataflow", "os", "--ideal-memory", "--no-overlap", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cycles"] == 3 * 2 * (5 + 4 + 4 - 2) and doc["verified"] is True
    for key in ("utilization", "macs", "dram_read_bytes", "dram_write_bytes", "units", "counters"):
        assert key in doc
    assert main(["sim", "gemm", "--m", "64", "--n", "64", "--k", "64", "--timing-only", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"].startswith("timing only")


@pytest.mark.parametrize("argv, message", [
    (["sim", "run", "tiny-int8-4x4", "/nonexistent.s"], "/nonexistent.s: assembly program not found"),
    (["sim", "run", "no-such-design", "PROGRAM"], "unknown design 'no-such-design'"),
    (["sim", "gemm", "--m", "0", "--n", "1", "--k", "1"], "--m must be >= 1"),
    (["disasm", "BAD"], "bad.bin: binary program of 5 bytes is not a multiple of 16-byte words"),
    (["sim", "run", "tiny-int8-4x4", "PROGRAM", "--dram", "/nonexistent.npy"], "/nonexistent.npy: DRAM image not found"),
])
def test_user_errors_are_one_line_exit_2(argv, message, source, tmp_path, capsys):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"12345")
    argv = [str(source) if a == "PROGRAM" else str(bad) if a == "BAD" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize("text, message", [
    ("gemm k=99999\nfinish\n", "prog.s:1:8: gemm field k = 99999 out of range"),
    ("gemm k=4 pop_prev\nfinish\n", "deadlock: compute queue head pc 0"),
    ("load.sp rows=4 cols=4 sram=600\nload.sp rows=4 cols=4\ngemm k=4\nfinish\n", "data race"),
    ("gemm k=4 c=127\nfinish\n", "pc 0: gemm c=127 k=4: accumulator rows"),
    ("gemm k=4\n", "without finish"),
])
def test_bad_programs_are_user_errors(text, message, tmp_path, capsys):
    path = tmp_path / "prog.s"
    path.write_text(text)
    assert main(["sim", "run", "tiny-int8-4x4", str(path)]) == 2
    assert message in capsys.readouterr().err
