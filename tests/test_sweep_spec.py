"""Sweep specs: parsing, value ranges, and bad specs failing before any work with file:line and the fix."""

from __future__ import annotations

import textwrap

import pytest

from workbench.cli import main
from workbench.sweep_spec import SweepSpecError, key_lines, load_spec, parse_spec

BASE = """\
[sweep]
base = "edge-int8-16x16"

[parameters]
"matrix.rows" = [16, 32]
chip.node_nm = [16, 7]

[[workloads]]
gemm = "128x128x128"
"""


def _spec(tmp_path, text: str):
    path = tmp_path / "spec.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_parse_good_spec_and_ranges():
    params = textwrap.dedent("""\
        [parameters]
        memory.dram_bandwidth_bytes_per_cycle = { log_range = [8, 64], factor = 2 }
        "chip.clock_hz" = { range = [1e9, 2e9], steps = 3 }
        "memory.scratchpad_bytes" = { log_range = [262144, 1048576], steps = 3 }
        """)
    text = BASE.replace("[parameters]\n", params) + "\n[constraints]\narea_mm2 = { max = 100 }\nreticle = true\n"
    spec = parse_spec(text, "s.toml")
    values = {p.name: p.values for p in spec.parameters}
    assert values["memory.dram_bandwidth_bytes_per_cycle"] == (8, 16, 32, 64)
    assert values["chip.clock_hz"] == (1e9, 1.5e9, 2e9)
    assert values["memory.scratchpad_bytes"] == (262144, 524288, 1048576)
    assert values["chip.node_nm"] == (16, 7)  # dotted key
    assert spec.space_size == 4 * 3 * 3 * 2 * 2
    assert [(c.metric, c.high) for c in spec.constraints] == [("area_mm2", 100), ("area_mm2", 858.0)]
    d = spec.design(next(iter(spec.grid())))
    assert d.memory.dram_bandwidth_bytes_per_cycle == 8 and d.chip.clock_hz == 1e9 and d.matrix.rows == 16
    assert spec.frontier == ("tflops_per_kusd", "tflops_per_w")


def test_key_lines_handles_quoted_dotted_and_array_tables():
    lines = key_lines(BASE)
    assert lines["parameters.matrix.rows"] == 5 and lines["parameters.chip.node_nm"] == 6
    assert lines["workloads.0"] == 8 and lines["workloads.0.gemm"] == 9


BAD = [
    # (replace this, with this, line expected, words in the message)
    ('"matrix.rows" = [16, 32]', '"matrix.rowz" = [16, 32]', 5, ["unknown design field 'matrix.rowz'", "did you mean 'matrix.rows'"]),
    ('"matrix.rows" = [16, 32]', '"matrix.rows" = []', 5, ["no values", "give at least one"]),
    ('"matrix.rows" = [16, 32]', '"matrix.rows" = { range = [64, 16], step = 16 }', 5, ["is empty", "write [16, 64]"]),
    ('"matrix.rows" = [16, 32]', '"matrix.rows" = [16, 2000]', 5, ["'matrix.rows'", "out of range", "1..1024", "fix the value"]),
    ('"matrix.rows" = [16, 32]', '"matrix.rows" = [16, 128]', 5,
     ["rejects the point", "matrix.rows = 128", "memory.accumulator_bytes", "skip_invalid"]),
    ('chip.node_nm = [16, 7]', 'chip.node_nm = [16, 7]\n"matrix.dataflow" = ["os", "wss"]', 7, ["not one of os, ws", "did you mean 'ws'"]),
    ('gemm = "128x128x128"', 'gemm = "128x128"', 9, ["expected \"MxNxK\""]),
    ('gemm = "128x128x128"', 'onnx = "model.onnx"', 9, ["onnx = 'model.onnx'", "no such file"]),
    ('gemm = "128x128x128"', 'model = "resnet"', 9, ["model = 'resnet'", "mlp", ".py file"]),
    ('gemm = "128x128x128"', 'model = "mlp"\nbatch = 0', 10, ["batch = 0", "1 to 65,536"]),
    ('base = "edge-int8-16x16"', 'base = "edge-int8-16x61"', 2, ["unknown design", "did you mean edge-int8-16x16"]),
    ('base = "edge-int8-16x16"', 'base = "edge-int8-16x16"\nstrategy = "adaptive"', 1, ["needs points = N"]),
]


@pytest.mark.parametrize("old,new,line,words", BAD)
def test_bad_spec_names_line_and_fix(tmp_path, old, new, line, words):
    assert old in BASE
    path = _spec(tmp_path, BASE.replace(old, new))
    with pytest.raises(SweepSpecError) as err:
        load_spec(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:{line}: "), msg
    for w in words:
        assert w in msg, msg


def test_constraint_and_objective_errors(tmp_path):
    path = _spec(tmp_path, BASE + "\n[constraints]\narea_mm3 = { max = 5 }\n")
    with pytest.raises(SweepSpecError, match=r"spec.toml:12: unknown objective 'area_mm3' \(did you mean 'area_mm2'\?\)"):
        load_spec(path)
    path = _spec(tmp_path, BASE + "\n[constraints]\narea_mm2 = { min = 50, max = 5 }\n")
    with pytest.raises(SweepSpecError, match="spec.toml:12: constraint area_mm2: min 50 > max 5 admits nothing"):
        load_spec(path)
    path = _spec(tmp_path, BASE + "\n[objectives]\nfrontier = [\"tflops\"]\n")
    with pytest.raises(SweepSpecError, match="spec.toml:12: frontier = .* must list 2 or 3 objectives"):
        load_spec(path)


def test_skip_invalid_drops_rejected_points(tmp_path):
    path = _spec(tmp_path, BASE.replace("[16, 32]", "[16, 128]").replace(
        'base = "edge-int8-16x16"', 'base = "edge-int8-16x16"\nskip_invalid = true'))
    spec = load_spec(path)
    assert len(spec.invalid) == 2 and len(spec.valid_grid()) == 2
    assert all("accumulator_bytes" in m for m in spec.invalid.values())


def test_cli_bad_spec_exit_2_before_any_work(tmp_path, capsys):
    path = _spec(tmp_path, BASE.replace('"matrix.rows"', '"matrix.rowz"'))
    db = tmp_path / "out.db"
    assert main(["sweep", str(path), "--db", str(db), "--scheduler", "inline"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"workbench sweep: error: {path}:5: unknown design field") and "Traceback" not in err
    assert not db.exists()  # nothing ran, nothing was written


def test_example_spec_loads():
    spec = load_spec("examples/sweep-edge.toml")
    assert spec.space_size == len(spec.valid_grid()) > 100
