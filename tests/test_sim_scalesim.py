"""Agreement with SCALE-Sim 3.0: ideal memory, no tile overlap, every fixture point, both dataflows."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.accel.gemm_run import simulate_gemm
from sim.scalesim import cycles_from_scalesim

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "scalesim" / "gemm_points.json"
POINTS = json.loads(FIXTURE.read_text())["points"]


def test_fixture_covers_both_dataflows_and_many_arrays():
    assert {p["dataflow"] for p in POINTS} == {"os", "ws"}
    assert len({(p["rows"], p["cols"]) for p in POINTS}) >= 5


@pytest.mark.parametrize("point", POINTS, ids=lambda p: f"{p['dataflow']}-{p['rows']}x{p['cols']}-"
                                                       f"{p['m']}x{p['n']}x{p['k']}")
def test_cycles_equal_scalesim_stall_free(point):
    res = simulate_gemm(point["m"], point["n"], point["k"], rows=point["rows"], cols=point["cols"],
                        dataflow=point["dataflow"], ideal_memory=True, overlap=False, values=False)
    expected = cycles_from_scalesim(point["scalesim_total_cycles"], point["scalesim_stall_cycles"])
    assert res.cycles == expected


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_agreement_holds_with_values_computed(dataflow):
    p = next(p for p in POINTS if p["dataflow"] == dataflow and p["m"] % p["rows"] and p["rows"] == 8)
    res = simulate_gemm(p["m"], p["n"], p["k"], rows=8, cols=8, dataflow=dataflow, ideal_memory=True,
                        overlap=False, values=True)
    assert res.verified
    assert res.cycles == cycles_from_scalesim(p["scalesim_total_cycles"], p["scalesim_stall_cycles"])
