"""What a new user hit following the README (one test per problem): errors that name the thing, output that
fits the terminal, and the documented ways to start the tool. In-process and small, so the file stays fast."""
from __future__ import annotations

import runpy
import sys

import pytest

from compiler import Tensor
from compiler.errors import ShapeError
from workbench.cli import main
from workbench.results_export import FilterError, parse_filter
from workbench.tables import Column, fit_table, wrap_lines


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


# `measure --device SIM` went as far as timing and died with AttributeError: a simulated design has no clock to read.
@pytest.mark.parametrize("device", ["SIM", "SIM:tiny-int8-4x4"])
def test_measure_refuses_a_simulated_device(device, capsys):
    assert main(["measure", "gemm:8x8x8", "--device", device]) == 2
    err = _one_line_error(capsys)
    assert "simulated accelerator" in err and "workbench estimate" in err


# `--where "area_mm2<<3"` compared the metric with the text "<3" and quietly kept or dropped rows.
def test_where_needs_a_number_for_a_metric():
    with pytest.raises(FilterError, match=r"area_mm2 is a number, but '<3' is not"):
        parse_filter("area_mm2<<3", set())
    keep = parse_filter("design_name==edge", set())  # text fields still compare as text
    assert keep({"design_name": "edge"}) and not keep({"design_name": "other"})
    assert parse_filter("area_mm2<=20", set())({"area_mm2": 10.0})
    with pytest.raises(FilterError, match=r"status is one of ok, error"):
        parse_filter("status==eror", set())
    assert parse_filter("status==error", set())({"status": "error"})


# The sweep and results tables cut every cell to "g…" at 80 columns; they now leave columns out and say which.
def test_results_table_fits_80_columns_without_cutting(monkeypatch, capsys):
    from workbench.cli_sweep import _table

    monkeypatch.setenv("COLUMNS", "80")
    params = {"matrix.rows": 32, "matrix.cols": 32, "matrix.dataflow": "os", "memory.scratchpad_bytes": 262144,
              "memory.dram_bandwidth_bytes_per_cycle": 32, "chip.clock_hz": 1e9, "chip.node_nm": 16}
    row = {"workload": "gemm:512x512x512", "params": params, "status": "ok", "tflops_per_kusd": 73.33,
           "tflops_per_w": 0.5664, "tflops": 0.29, "area_mm2": 8.1, "peak_power_w": 6.2, "price_usd": 3.9}
    _table([row], ["tflops_per_kusd", "tflops_per_w"], "1 result")
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80 and "…" not in out
    assert "gemm:512x512x512" in out and "73.33" in out and "0.5664" in out
    assert "dram_bandwidth_bytes_per_cycle" in " ".join(out.split())  # named whole in the caption


def test_fit_table_shares_spare_width_and_counts_columns():
    from rich.console import Console

    console = Console(width=60, record=True)
    cols = [Column("name", "left", wrap=True), Column("n"), Column("note", "left", wrap=True),
            Column("extra_\nwide", priority=1)]
    rows = [["a rather long name of a thing " * 2, "1", "a note that says a good deal about it " * 2, "x" * 40]]
    console.print(fit_table("t", cols, rows, console))
    text = console.export_text()
    assert "1 column left out" in text and "(extra_wide)" in text
    body = [line for line in text.splitlines() if line.strip().startswith("a ")][0]
    name, note = body[:body.index(" 1 ")], body[body.index(" 1 ") + 3:]
    assert len(name.strip()) > 15 and len(note.strip()) > 15  # neither text column is left a sliver


# `cost --published` and `cost --design` printed lines of 160-240 characters.
def test_wrap_lines_keeps_words_and_hangs_under_the_column():
    line = "  die:GH100            $    342.09  " + "word " * 30
    out = wrap_lines([line, "short"], 80)
    assert all(len(x) <= 80 for x in out) and out[-1] == "short"
    assert " ".join(" ".join(out[:-1]).split()) == " ".join(line.split())
    hang = line.index("word")
    assert len(out) > 2 and all(x.startswith(" " * hang) and x[hang] != " " for x in out[1:-1])
    url = "https://example.com/" + "a" * 90  # a word longer than the line goes on a line of its own, whole
    assert wrap_lines([f"  key  {'note ' * 12}[{url}]"], 80)[-1] == f"[{url}]"


def test_cost_output_fits_80_columns(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["cost", "--published"]) == 0
    assert main(["cost", "--area-mm2", "100", "--node", "N5", "--memory-gb", "80", "--memory-type", "HBM3"]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 or " " not in line for line in out.splitlines())  # only a long link runs over
    assert "https://www.overclockers.com/forums/threads/estimated-costs-for-gpu-dies.803946/]" in out


# `python -m workbench.cli --help` printed nothing and exited 0; the top-level help ran to 112 columns.
@pytest.mark.filterwarnings("ignore:'workbench.cli' found in sys.modules:RuntimeWarning")  # imported above
def test_python_m_workbench_cli_runs_the_tool(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["workbench", "--help"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_module("workbench.cli", run_name="__main__")
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "what does a petaflop cost" in out
    assert max(len(line) for line in out.splitlines()) <= 80


# Tensor.zeros(-1, 3) and a ragged list raised numpy's ValueError, naming no shape; zeros(2.5) made 2 elements.
@pytest.mark.parametrize("make, message", [
    (lambda: Tensor.zeros(-1, 3), r"Tensor.zeros: shape \(-1, 3\) must be whole numbers >= 0"),
    (lambda: Tensor.ones((2, -1)), r"Tensor.ones: shape \(2, -1\)"),
    (lambda: Tensor.zeros(2.5), r"Tensor.zeros: shape \(2.5,\)"),
    (lambda: Tensor.full((2, 3.0), 1.0), r"Tensor.full: shape \(2, 3.0\)"),
    (lambda: Tensor.randn(-2, seed=0), r"Tensor.randn: shape \(-2,\)"),
    (lambda: Tensor([[1, 2], [3]]), r"Tensor: data is not rectangular"),
])
def test_tensor_creation_names_a_bad_shape(make, message):
    with pytest.raises(ShapeError, match=message):
        make()


def test_tensor_creation_shapes_that_are_fine():
    import numpy as np

    assert Tensor.zeros((2, 3)).shape == (2, 3) and Tensor.ones(np.int64(4)).shape == (4,)
    assert Tensor.zeros(0, 2).shape == (0, 2) and Tensor.full(3, 1.0).shape == (3,)
    assert Tensor.rand([2, 2], seed=1).shape == (2, 2) and Tensor.zeros().shape == ()


# A layers.csv row with a cell missing died in int(None) with a TypeError traceback.
def test_layers_csv_short_row_names_the_line(tmp_path, capsys):
    csv = tmp_path / "layers.csv"
    csv.write_text("name,m,n,k\nfc1,16,16\n")
    assert main(["estimate", "tiny-int8-4x4", "--workload", str(csv)]) == 2
    assert "layers.csv:2: m, n, k and count must be integers" in _one_line_error(capsys)


# A model file whose own code raised (at import or in model()) ended in a traceback and exit code 1.
@pytest.mark.parametrize("source, line, what", [
    ("import no_such_module_here\n", 1, "ModuleNotFoundError: No module named 'no_such_module_here'"),
    ("def model():\n    raise RuntimeError('boom')\n", 2, "RuntimeError: boom"),
])
def test_model_file_errors_name_file_and_line(source, line, what, tmp_path, capsys):
    path = tmp_path / "net.py"
    path.write_text(source)
    assert main(["run", str(path), "--device", "REF"]) == 2
    assert f"net.py:{line}: the model file raised {what}" in _one_line_error(capsys)


# `run` and `quantize` printed rich's default tables, cut to "SIM:datace…" and "per-channe…" at 80 columns.
@pytest.mark.parametrize("argv", [["run", "mlp", "--batch", "4", "--device", "SIM:tiny-int8-4x4"],
                                  ["quantize", "mlp", "--batch", "4", "--device", "SIM:tiny-int8-4x4"]])
def test_run_and_quantize_tables_fit_80_columns(argv, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80 and "…" not in out
    assert "SIM:tiny-int8-4x4" in out or "r_4_" in out


# doctor gave its mostly empty "fix" column as much room as "found", folding paths every 20 characters.
def test_doctor_gives_found_the_room(monkeypatch, capsys):
    from workbench import doctor

    path = "/opt/tools/a/rather/deep/folder/of/a/toolchain/bin/verilator"
    monkeypatch.setattr(doctor, "run_checks", lambda: [
        doctor.Check("verilator", True, f"5.0 at {path}"),
        doctor.Check("cuda device", False, "no NVIDIA driver", "install the NVIDIA driver", required=False)])
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    cells = [line.split("│")[3].strip() for line in out.splitlines() if line.count("│") == 5]
    assert max(len(line) for line in out.splitlines()) <= 80
    assert max(len(c) for c in cells) >= 25 and path in "".join(cells)  # folded, but in wide pieces, whole


# `python -m bench.power_at_measured --help` ran the whole script and ignored its arguments.
def test_power_at_measured_has_help(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["power_at_measured", "--help"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_module("bench.power_at_measured", run_name="__main__")
    assert exc.value.code == 0 and "usage: python -m bench.power_at_measured" in capsys.readouterr().out


# simulate_gemm(design, 8, 8, 8) (the design first) died in "'<' not supported between 'int' and 'Design'".
@pytest.mark.parametrize("call, message", [
    (lambda f, d: f(d, 8, 8, 8), "m = a Design must be a whole number >= 1; call simulate_gemm(m, n, k, design)"),
    (lambda f, d: f(8.0, 8, 8, d), "m = 8.0 must be a whole number >= 1"),
    (lambda f, d: f(8, 8, 8, d, rows=0), "rows = 0 must be a whole number >= 1"),
])
def test_simulate_gemm_names_a_bad_argument(call, message):
    import re

    from compiler.accel.gemm_lowering import GemmSizeError
    from compiler.accel.gemm_run import simulate_gemm
    from isa.design import load_design

    with pytest.raises(GemmSizeError, match=re.escape(message)):
        call(simulate_gemm, load_design("tiny-int8-4x4"))


# A 2048^3 float matmul on REF (or a SIM device's host fallback) died in numpy's bare MemoryError.
def test_ref_out_of_memory_says_why(monkeypatch):
    from compiler import interpreter
    from compiler.errors import CompilerError

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 32.0 GiB")

    monkeypatch.setattr(interpreter, "eval_node", no_memory)
    with pytest.raises(CompilerError, match=r"REF: \w+ over \d+ elements does not fit in host memory.*M x N x K"):
        (Tensor.ones(2, 3, device="REF") @ Tensor.ones(3, 4, device="REF")).numpy()


# (3,) @ (4,) said "3 (dim 1) != 4 (dim 0)": dim 1 of the internal 2-d view, not of the shape the user gave.
def test_matmul_mismatch_names_dims_of_the_given_shapes():
    with pytest.raises(ShapeError, match=r"3 \(dim 0\) != 4 \(dim 0\)"):
        Tensor.ones(3) @ Tensor.ones(4)
    with pytest.raises(ShapeError, match=r"3 \(dim 2\) != 4 \(dim 0\)"):
        Tensor.ones(5, 2, 3) @ Tensor.ones(4, 2)


# A misspelled section ([vectr]) got no line number and no suggestion, unlike a misspelled field.
def test_misspelled_design_section_names_line_and_suggests(tmp_path, capsys):
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "designs" / "tiny-int8-4x4.toml").read_text()
    bad = tmp_path / "d.toml"
    bad.write_text(text.replace("[vector]", "[vectr]"))
    assert main(["estimate", str(bad), "--workload", "gemm:16x16x16"]) == 2
    line = text.splitlines().index("[vector]") + 1
    assert f"d.toml:{line}: unknown top-level entries ['vectr'] (did you mean 'vector'?)" in _one_line_error(capsys)


# `asm` printed its 105-character summary on one line.
def test_asm_summary_fits_80_columns(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    src = Path(__file__).resolve().parent.parent / "examples" / "programs" / "gemm.s"
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["asm", str(src), "-o", str(tmp_path / "g.bin"), "--design", "tiny-int8-4x4"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80 and "of tiny-int8-4x4" in out


# WB_DEVICE=FOO said "unknown device 'FOO'" to a user who had given no device anywhere on the command line.
def test_bad_wb_device_names_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("WB_DEVICE", "FOO")
    assert main(["measure", "gemm:8x8x8"]) == 2
    assert "environment variable WB_DEVICE='FOO': unknown device 'FOO'" in _one_line_error(capsys)


# The sweep's summary was one line of 130+ characters ("... x 1 workloads ...").
def test_sweep_summary_fits_80_columns(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    spec = Path(__file__).resolve().parent.parent / "examples" / "sweep-edge.toml"
    monkeypatch.setenv("COLUMNS", "80")
    argv = ["sweep", str(spec), "--strategy", "random", "--points", "1", "--scheduler", "inline", "--quiet",
            "--db", str(tmp_path / "s.db")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80 and "x 1 workload)" in out and "…" not in out


# docs/compiler.md's first example used np without importing numpy (NameError on a copy-paste).
def test_compiler_doc_example_runs_as_written(capsys):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "compiler.md").read_text()
    example = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    namespace: dict = {}
    exec(compile(example, "docs/compiler.md", "exec"), namespace)
    assert namespace["out"].shape == (512, 512) and capsys.readouterr().out.strip()  # kernel names may change


# An option mistake printed argparse's usage block first (12 lines for `cost`), the error last.
def test_option_mistakes_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["cost", "--area-mm2", "-1", "--node", "N5"])
    assert exc.value.code == 2
    err = _one_line_error(capsys)
    assert err.startswith("workbench cost: error: argument --area-mm2: '-1' is out of range")
    assert "(see `workbench cost --help`)" in err


# An --input .npy of strings reached the model and died in numpy's "could not convert string to float".
def test_onnx_input_of_strings_is_refused(tmp_path):
    import numpy as np

    from isa.errors import UserError
    from workbench.onnx_run import parse_inputs

    path = tmp_path / "x.npy"
    np.save(path, np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(UserError, match=r"--input x: .*x.npy holds <U1 values; save numbers"):
        parse_inputs([f"x={path}"])
    np.save(path, np.ones((2, 2), np.int64))
    assert parse_inputs([f"x={path}"])["x"].dtype == np.int64


# `rtl activity` printed its energy source as one line of 170 characters.
def test_rtl_activity_text_fits_80_columns():
    from workbench.cli_rtl import activity_lines

    rep = {"design": "tiny-int8-4x4", "cycles": 215, "energy_per_toggle_pj": 0.009, "node_nm": 28,
           "blocks": {"matrix": {"toggles": 1234, "energy_pj_per_cycle": 1.5}}, "energy_pj_per_mac": 1.53,
           "macs": 544, "energy_pj_per_cycle": 3.886, "provenance": "modelled (traced-net toggles only; a floor)",
           "energy_per_toggle_source": "Aladdin 40 nm register 0.009 pJ/bit (Shao et al. ISCA 2014, "
                                       "hwcomponents-library) x Stillmaker-Baas energy scaling (0.8 V)"}
    lines = wrap_lines(activity_lines(rep, "examples/programs/gemm.s"), 80)
    assert max(len(x) for x in lines) <= 80 and "Stillmaker-Baas" in " ".join(lines)
