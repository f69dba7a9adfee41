"""The SCALE-Sim GEMM fixture is well formed and its documented closed form matches every point."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures" / "scalesim"
KEYS = {"m", "n", "k", "rows", "cols", "dataflow", "scalesim_total_cycles", "scalesim_stall_cycles",
        "scalesim_stall_free"}


def _load_maker():
    spec = importlib.util.spec_from_file_location("scalesim_make_fixture", FIXTURE_DIR / "make_fixture.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _data() -> dict:
    return json.loads((FIXTURE_DIR / "gemm_points.json").read_text())


def test_metadata_present():
    data = _data()
    assert data["scalesim_version"].startswith("3.")
    assert data["generated_utc"] and data["command"]


def test_points_well_formed_and_raw():
    points = _data()["points"]
    assert len(points) >= 30
    for p in points:
        assert KEYS <= p.keys(), p
        assert p["dataflow"] in ("os", "ws")
        assert min(p["m"], p["n"], p["k"], p["rows"], p["cols"]) >= 1
        assert p["scalesim_stall_free"] == p["scalesim_total_cycles"] - p["scalesim_stall_cycles"]


def test_coverage():
    points = _data()["points"]
    arrays = {(p["rows"], p["cols"]) for p in points}
    assert {(4, 4), (8, 8), (16, 16), (32, 32), (8, 16), (128, 128)} <= arrays
    for df in ("os", "ws"):
        mine = [p for p in points if p["dataflow"] == df]
        assert any(p["k"] == 1 for p in mine)
        assert any(p["m"] % p["rows"] and p["n"] % p["cols"] for p in mine)  # ragged folds
        assert any(p["m"] < p["rows"] and p["n"] < p["cols"] for p in mine)


def test_closed_form_matches_every_point():
    maker = _load_maker()
    maker.check(_data()["points"])


def test_closed_form_example_from_readme():
    f = _load_maker().stall_free_formula
    assert f(10, 7, 5, 4, 4, "os") + 1 == 3 * 2 * (5 + 4 + 4 - 2)
    assert f(10, 7, 5, 4, 4, "ws") + 1 == 2 * 2 * (10 + 2 * 4 + 4 - 2)
