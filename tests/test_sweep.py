"""Sweeps run in-process: results in SQLite, failing points recorded, resume, frontier, strategies, CLI."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.cli import main
from workbench.pareto import pareto_mask, pareto_ranks
from workbench.results_db import ResultsDB
from workbench.sweep import make_tasks, run_sweep
from workbench.sweep_spec import load_spec

SPEC = """\
[sweep]
name = "tiny"
base = "edge-int8-16x16"

[parameters]
"matrix.rows" = [16, 32]
"matrix.cols" = [16, 32]
"chip.node_nm" = [16, 7]

[[workloads]]
gemm = "128x128x128"

[[workloads]]
name = "too-big"
gemm = "100000x100000x100000"

[constraints]
area_mm2 = { max = 100 }
"""


@pytest.fixture
def spec_path(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(SPEC)
    return path


def values(db_path) -> dict[str, tuple]:
    """key -> (status, error, figures): what must not depend on how or where the sweep ran."""
    with ResultsDB(db_path) as db:
        return {r["key"]: (r["status"], r["error"], json.dumps(r["figures"], sort_keys=True)) for r in db.rows()}


def test_inline_sweep_records_every_point_and_failures(spec_path, tmp_path):
    spec = load_spec(spec_path)
    summary = run_sweep(spec, tmp_path / "r.db", scheduler="inline")
    assert summary.results == 16 and summary.computed == 16 and summary.design_points == 8
    assert summary.errors == 8  # the workload that does not fit fails on every point, the sweep goes on
    with ResultsDB(tmp_path / "r.db") as db:
        rows = db.rows("tiny")
        assert db.integrity_ok()
    bad = [r for r in rows if r["workload"] == "too-big"]
    assert all(r["status"] == "error" and "does not fit" in r["error"] and r["tflops"] is None for r in bad)
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 8
    for r in ok:
        f = r["figures"]
        assert f["achieved_tflops"]["provenance"] == "simulated" and f["energy_j"]["provenance"] == "modelled"
        assert r["tflops"] == f["achieved_tflops"]["value"] and r["area_mm2"] == f["die_area_costed_mm2"]["value"]
        assert r["tflops_per_kusd"] > 0 and r["latency_s"] > 0 and r["energy_j"] > 0
    # the frontier the summary reports is exactly the non-dominated set of the ok rows
    vals = np.array([[r["tflops_per_kusd"], r["tflops_per_w"]] for r in ok])
    want = {ok[i]["design_name"] for i in np.flatnonzero(pareto_mask(vals, [True, True]))}
    assert {f["design"] for f in summary.frontier} == want
    assert summary.best["tflops_per_kusd"] == vals[:, 0].max()


def test_resume_after_interrupt_gives_same_values(spec_path, tmp_path):
    spec = load_spec(spec_path)
    run_sweep(spec, tmp_path / "whole.db", scheduler="inline")
    seen = []

    def stop_after_five(row):
        seen.append(row)
        if len(seen) == 5:
            raise KeyboardInterrupt  # as Ctrl-C in the client would

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path / "part.db", scheduler="inline", on_result=stop_after_five)
    assert len(values(tmp_path / "part.db")) == 5
    again = run_sweep(spec, tmp_path / "part.db", scheduler="inline")
    assert again.reused == 5 and again.computed == 11
    assert values(tmp_path / "part.db") == values(tmp_path / "whole.db")
    con = sqlite3.connect(tmp_path / "part.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM results").fetchone() == (16, 16)


def test_content_key_ignores_names_and_shares_results(spec_path, tmp_path):
    spec = load_spec(spec_path)
    run_sweep(spec, tmp_path / "r.db", scheduler="inline")
    other = tmp_path / "other.toml"
    other.write_text(SPEC.replace('name = "tiny"', 'name = "again"').replace('"matrix.cols" = [16, 32]', '"matrix.cols" = [16]'))
    summary = run_sweep(load_spec(other), tmp_path / "r.db", scheduler="inline")
    assert summary.computed == 0 and summary.reused == 8
    keys = [t.key for t in make_tasks(spec, spec.grid())]
    assert len(set(keys)) == 16


def test_random_and_adaptive_are_seeded_and_within_budget(spec_path, tmp_path):
    spec = load_spec(spec_path, strategy="random", points=5)
    a = spec.initial_points()
    assert len(a) == 5 and a == load_spec(spec_path, strategy="random", points=5).initial_points()
    adaptive = load_spec(spec_path, strategy="adaptive", points=6)
    s1 = run_sweep(adaptive, tmp_path / "a1.db", scheduler="inline")
    run_sweep(adaptive, tmp_path / "a2.db", scheduler="inline")
    assert s1.design_points == 6 and values(tmp_path / "a1.db") == values(tmp_path / "a2.db")


def test_adaptive_spends_points_next_to_the_frontier(tmp_path):
    # one parameter, 24 values: after the random start, rounds take the frontier's untried neighbours
    path = tmp_path / "a.toml"
    path.write_text("""\
[sweep]
base = "edge-int8-16x16"
strategy = "adaptive"
points = 8
seed = 3
[parameters]
"memory.dram_bandwidth_bytes_per_cycle" = { range = [1, 24], step = 1 }
[[workloads]]
gemm = "64x64x64"
[objectives]
frontier = ["tflops", "price_usd"]
""")
    spec = load_spec(path)
    order = []
    summary = run_sweep(spec, tmp_path / "a.db", scheduler="inline",
                        on_result=lambda r: order.append(r["params"]["memory.dram_bandwidth_bytes_per_cycle"]))
    assert len(order) == 8 == len(set(order)) and summary.design_points == 8
    # budget // 4 = 2 random points, then each round takes an untried neighbour of a ranked point
    for i, bw in enumerate(order[2:], 2):
        assert bw - 1 in order[:i] or bw + 1 in order[:i], (bw, order)


def test_pareto_ranks_small_example():
    v = np.array([[1, 5], [2, 4], [3, 3], [2, 2], [1, 1], [3, 3]])
    assert pareto_mask(v, [True, True]).tolist() == [True, True, True, False, False, True]
    assert pareto_ranks(v, [True, True]).tolist() == [0, 0, 0, 1, 2, 0]
    assert pareto_mask(v, [False, False]).tolist() == [False, False, False, False, True, False]


def test_cli_sweep_json_results_export_and_report(spec_path, tmp_path, capsys):
    db = tmp_path / "c.db"
    assert main(["sweep", str(spec_path), "--db", str(db), "--scheduler", "inline", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"] == 16 and out["errors"] == 8 and out["frontier"]
    assert main(["results", str(db), "--where", "matrix.rows==32", "--where", "status==ok", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and all(r["params"]["matrix.rows"] == 32 for r in rows)
    csv_path = tmp_path / "out.csv"
    assert main(["results", str(db), "--csv", str(csv_path)]) == 0
    lines = csv_path.read_text().splitlines()
    assert len(lines) == 17 and "tflops_provenance" in lines[0] and ",simulated," in lines[1] + lines[2]
    report = tmp_path / "r.html"
    assert main(["results", str(db), "--frontier", "tflops,area_mm2,energy_j", "--report", str(report)]) == 0
    page = report.read_text()
    assert page.count("data:image/png;base64") == 4 and "Frontier designs" in page  # 3D + 3 pairs
    assert main(["results", str(db), "--where", "bogus>1"]) == 2
    assert "unknown field 'bogus'" in capsys.readouterr().err


def test_shared_simulation_gives_the_same_figures_as_estimate(tmp_path):
    # points differing only in clock, node or [cost] reuse one simulation: the figures must equal a fresh estimate
    from workbench.estimate import Workload, estimate
    from workbench.sweep import group_tasks
    from workbench.sweep_workloads import _TIMINGS

    path = tmp_path / "s.toml"
    path.write_text("""\
[sweep]
base = "edge-int8-16x16"
[parameters]
"matrix.dataflow" = ["os", "ws"]
"chip.clock_hz" = [0.5e9, 1.5e9]
"chip.node_nm" = [16, 5]
"cost.margin" = [0.0, 0.6]
[[workloads]]
gemm = "96x80x200"
""")
    spec = load_spec(path)
    _TIMINGS.clear()
    tasks = make_tasks(spec, spec.grid())
    assert [len(g) for g in group_tasks(tasks)] == [16]
    by8 = group_tasks(tasks, 8)  # the points sharing a simulation stay together
    assert [len({t.design.matrix.dataflow for t in g}) for g in by8] == [1, 1]
    assert sorted(len(g) for g in group_tasks(tasks, 5)) == [3, 3, 5, 5]
    for t in tasks:
        fresh = estimate(t.design, Workload(t.workload.name, t.workload.layers))
        want = {k: {"value": f.value, "unit": f.unit, "provenance": f.provenance, "note": f.note}
                for k, f in fresh.figures.items()}
        assert t.workload.evaluate(t.design) == want
    assert len(_TIMINGS) == 4  # 2 dataflows x (as-is, ideal memory)


def test_cli_unreachable_scheduler_is_a_user_error(spec_path, tmp_path, capsys):
    db = tmp_path / "x.db"
    assert main(["sweep", str(spec_path), "--db", str(db), "--scheduler", "127.0.0.1:notaport"]) == 2
    err = capsys.readouterr().err
    assert "--scheduler 127.0.0.1:notaport: cannot reach a Dask scheduler" in err and "dask scheduler" in err
    assert not db.exists()


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 40), st.integers(2, 3), st.integers(0, 2**32 - 1))
def test_pareto_mask_matches_the_definition(n, k, seed):
    rng = np.random.default_rng(seed)
    v = rng.integers(0, 4, (n, k)).astype(float)  # small integers: many ties and duplicates
    maximize = list(rng.random(k) < 0.5)
    w = np.where(maximize, -v, v)
    dominated = [bool(np.any(np.all(w <= w[i], axis=1) & np.any(w < w[i], axis=1))) for i in range(n)]
    assert pareto_mask(v, maximize).tolist() == [not d for d in dominated]
    ranks = pareto_ranks(v, maximize)
    assert (ranks == 0).tolist() == [not d for d in dominated] and ranks.min() == 0


def test_progress_bar_and_report_from_the_sweep_command(spec_path, tmp_path, capsys):
    db, report = tmp_path / "p.db", tmp_path / "p.html"
    assert main(["sweep", str(spec_path), "--db", str(db), "--scheduler", "inline", "--report", str(report)]) == 0
    captured = capsys.readouterr()
    assert "points/s" in captured.err and "best tflops_per_kusd" in captured.err  # the bar, on stderr
    assert "sweep tiny: 16 results (8 design points x 2 workloads)" in captured.out and "Frontier over" in captured.out
    page = report.read_text()
    assert page.count("data:image/png;base64") == 1  # the workload that never fits has no points to plot
    assert "Chips (orange squares)" in page and "Workload too-big" in page and "8 failed" in page


def test_results_of_a_file_that_is_not_a_database(tmp_path, capsys):
    bad = tmp_path / "notes.db"
    bad.write_text("not sqlite at all " * 100)
    assert main(["results", str(bad)]) == 2
    assert "not a results database" in capsys.readouterr().err
    assert main(["results", str(tmp_path / "missing.db")]) == 2
    assert "results database not found" in capsys.readouterr().err


MODEL_SPEC = """\
[sweep]
name = "models"
base = "datacenter-bf16-128x128"

[parameters]
"matrix.rows" = [64, 128]

[[workloads]]
model = "mlp"
batch = 8

[[workloads]]
onnx = "{onnx}"
"""


def test_model_and_onnx_workloads_run_compiled_on_each_design_point(tmp_path):
    """Issue 12: the compiler's built-in models and ONNX files are sweep workloads, compiled for each point."""
    from pathlib import Path

    from compiler.accel.sim_device import device_for_design
    from workbench.model_run import run_model

    onnx = Path(__file__).parent / "fixtures" / "onnx" / "mlp.onnx"
    spec_path = tmp_path / "models.toml"
    spec_path.write_text(MODEL_SPEC.format(onnx=onnx))
    spec = load_spec(spec_path)
    summary = run_sweep(spec, tmp_path / "m.db", scheduler="inline")
    assert summary.results == 4 and summary.errors == 0
    with ResultsDB(tmp_path / "m.db") as db:
        rows = db.rows("models")
    by = {(r["workload"], r["params"]["matrix.rows"]): r for r in rows}
    assert set(by) == {("mlp:8", 64), ("mlp:8", 128), ("mlp.onnx", 64), ("mlp.onnx", 128)}
    assert all(r["status"] == "ok" and r["figures"]["achieved_tflops"]["provenance"] == "simulated" for r in rows)
    # a point's latency is its own compiled run's cycles at the design's clock (the MLP draws far below any cap)
    point = next(t.design for t in make_tasks(spec, spec.grid()) if t.design.matrix.rows == 64 and t.workload.name == "mlp:8")
    _, run = run_model("mlp", device_for_design(point), batch=8)
    assert by[("mlp:8", 64)]["latency_s"] == pytest.approx(run.cycles / point.chip.clock_hz, rel=1e-9)
    # a batch of 8 uses a small part of a 128-row array: half the rows are busier on the same model
    assert by[("mlp:8", 64)]["utilization"] > by[("mlp:8", 128)]["utilization"]
