"""Directed timing tests: each rule of docs/timing.md on hand-computed schedules (tiny-int8-4x4).

tiny: 4x4 OS array, DRAM latency 8 cycles, 4 bytes/cycle, queue depth 4, scratchpad 1024 rows in 2 banks
of 512, accumulator 128 rows in 2 banks of 64, 4 vector lanes.
"""
from __future__ import annotations

import dataclasses
import json

import pytest

from isa.assembler import assemble
from isa.design import load_design
from sim.simulator import simulate

TINY = load_design("tiny-int8-4x4")
TINY_WS = TINY.replace(matrix=dataclasses.replace(TINY.matrix, dataflow="ws"))


def sched(text: str, design=TINY, **kw):
    """{pc: (dispatch, issue, latency)} and the result."""
    res = simulate(design, assemble(text + "\nfinish"), **kw)
    return {pc: (d, s, lat) for pc, d, s, lat in res.schedule}, res


def test_single_load_latency_and_cycle_convention():
    s, res = sched("load.sp rows=2 cols=4 stride=4")
    assert s[0] == (1, 2, 8 + 2 * 1)  # dispatched in cycle 1, issues in 2, lat + rows * ceil(4 B / 4 B/cycle)
    assert res.cycles == 11  # busy 2..11; finish (dispatched in 2) retires in 11


def test_dma_rounds_each_row_to_whole_beats_and_pads():
    s, _ = sched("load.acc rows=2 cols=3 stride=12 pad=3")  # 12 bytes per row = 3 beats; 3 zero rows
    assert s[0][2] == 8 + 2 * 3 + 3
    s, _ = sched("load.sp rows=0 cols=0 pad=5\nstore.acc rows=0 cols=0")
    assert s[0][2] == 5 and s[1][2] == 1


def test_fetch_stalls_on_a_full_queue():
    prog = "\n".join(f"load.sp sram={i} rows=1 cols=4" for i in range(6))
    s, res = sched(prog)
    issues = [s[i][1] for i in range(6)]
    assert issues == [2, 11, 20, 29, 38, 47]  # each 8 + 1 cycles, back to back
    assert [s[i][0] for i in range(6)] == [1, 2, 3, 4, 5, 12]  # pc 5 needs pc 1's slot: issued 11, free in 12
    assert res.units["fetch"]["stalled"] == 12 - 6


def test_token_visible_the_cycle_after_completion():
    s, res = sched("load.sp rows=1 cols=4 push_next\ngemm k=4 pop_prev")
    assert s[0] == (1, 2, 9)
    assert s[1] == (2, 11, 4 + 4 + 4 - 2)  # load busy 2..10, token visible in 11
    assert res.cycles == 20


def test_dram_port_tie_goes_to_store():
    text = """gemm k=4 push_prev push_next
              load.sp sram=512 rows=1 cols=4 pop_next
              store.acc sram=64 dram=64 stride=16 rows=1 cols=4 pop_prev"""
    s, res = sched(text)
    assert s[0] == (1, 2, 10)  # both tokens visible in cycle 12
    assert s[2][1] == 12 and s[2][2] == 8 + 4  # 16 bytes of int32 = 4 beats
    assert s[1][1] == 24  # the load waits for the port
    assert res.cycles == 24 + 9 - 1


def test_bank_interlock_between_dma_and_matrix_unit():
    s, _ = sched("gemm a=0 b=4 k=4\nload.sp sram=8 rows=1 cols=4")  # same scratchpad bank 0
    assert s[0][1] == 2 and s[1][1] == 12
    s, _ = sched("gemm a=0 b=4 k=4\nload.sp sram=512 rows=1 cols=4")  # bank 1: no conflict
    assert s[1][1] == 3
    s, _ = sched("gemm a=0 b=4 k=4\nload.sp sram=8 rows=1 cols=4", ideal_memory=True)
    assert s[1][1] == 1  # no banks with ideal memory


@pytest.mark.parametrize("overlap, second, cycles", [(True, 6, 15), (False, 12, 21)])
def test_gemm_tile_overlap(overlap, second, cycles):
    s, res = sched("gemm k=4\ngemm k=4 c=4", overlap=overlap)
    assert s[1][1] == second  # O = max(k, ROWS) = 4 with overlap, else L = 10
    assert res.cycles == cycles
    s, res = sched("gemm k=4 repeat=1 sc=4", overlap=overlap)  # one instruction, two iterations
    assert res.cycles == cycles
    assert res.units["matrix"]["busy"] == cycles - 1


def test_ws_preload_latency_and_occupancy():
    s, _ = sched("gemm k=6 preload\ngemm k=6 c=8", design=TINY_WS)
    assert s[0][2] == 4 + 6 + 4 + 4 - 2  # P + k + ROWS + COLS - 2
    assert s[1][1] == 2 + 4 + 6  # the next enters after P + k
    assert s[1][2] == 6 + 4 + 4 - 2


def test_vector_waits_for_matrix_drain_and_gemm_waits_for_vector():
    s, res = sched("gemm k=4\nvec.relu dst=8 src=0 rows=2\ngemm k=4 c=16")
    assert s[1] == (2, 12, 2)  # rows * ceil(dim / lanes)
    assert s[2][1] == 14
    assert res.cycles == 23


def test_ideal_memory_dispatches_everything_at_cycle_zero():
    s, res = sched("load.sp rows=4 cols=4 push_next\ngemm k=4 pop_prev push_next\n"
                   "store.acc rows=4 cols=4 stride=16 pop_prev", ideal_memory=True)
    assert s[0] == (0, 1, 0) and s[1] == (0, 1, 10) and s[2] == (0, 11, 0)
    assert res.cycles == 10


def test_empty_program_and_unit_accounting():
    _, res = sched("")
    assert res.cycles == 1
    _, res = sched("load.sp rows=1 cols=4 push_next\ngemm k=4 pop_prev push_next\nvec.add dst=0 src=0 src2=4 "
                   "rows=4\nstore.acc rows=4 cols=4 stride=16 pop_prev")
    for name, u in res.units.items():
        assert u["busy"] + u["stalled"] + u["idle"] == res.cycles, name
    assert res.units["matrix"]["stalled"] == 11 - 3  # waited for the load's token from cycle 3 to 11
    assert res.counters["macs_int8"] == 4 * 4 * 4
    assert res.counters["vector_ops"] == 4 * 4
    assert res.counters["dram_read_bytes"] == 4 and res.counters["dram_write_bytes"] == 64
    assert res.counters["instructions"] == 4
    assert res.utilization == pytest.approx(64 / (16 * res.cycles))


def test_trace_has_one_complete_event_per_instruction(tmp_path):
    _, res = sched("load.sp rows=1 cols=4 push_next\ngemm k=4 pop_prev", trace=True)
    path = tmp_path / "t.json"
    res.write_trace(str(path))
    doc = json.loads(path.read_text())
    events = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert [(e["ts"], e["dur"], e["args"]["unit"]) for e in events] == [(2, 9, "load"), (11, 10, "matrix")]
    assert events[1]["name"] == "gemm pop_prev k=4"
