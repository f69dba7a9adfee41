"""Deadlocks, data races and bad programs stop the simulator with messages naming the instructions."""
from __future__ import annotations

import pytest

from isa.assembler import assemble
from isa.design import load_design
from isa.functional import ExecutionError
from sim.simulator import DeadlockError, RaceError, simulate

TINY = load_design("tiny-int8-4x4")


def run(text: str, **kw):
    return simulate(TINY, assemble(text + "\nfinish"), **kw)


def test_pop_without_any_push_deadlocks_naming_the_instruction():
    with pytest.raises(DeadlockError) as err:
        run("load.sp rows=1 cols=4\ngemm k=4 pop_prev")
    msg = str(err.value)
    assert "compute queue head pc 1 (gemm pop_prev k=4)" in msg and "load->compute token" in msg


def test_full_queue_behind_a_stuck_head_deadlocks_fetch():
    text = "\n".join(["store.acc rows=0 cols=0 pop_prev"] * 5 + ["gemm k=4 push_next"])
    with pytest.raises(DeadlockError) as err:
        run(text)
    msg = str(err.value)
    assert "store queue head pc 0" in msg and "compute->store token" in msg
    assert "fetch waits at pc 4" in msg and "full store queue" in msg


def test_tokens_that_arrive_later_in_program_order_are_not_a_deadlock():
    res = run("gemm k=4 pop_prev\nload.sp sram=512 rows=1 cols=4 push_next")
    assert res.schedule[0][0] == 1 and res.cycles > 0  # the load, fetched second, issues first


def test_reading_rows_a_dma_has_not_written_yet_is_a_race():
    # The load unit is busy with pc 0, so pc 1's load has not issued when the gemm reads its rows.
    with pytest.raises(RaceError) as err:
        run("load.sp sram=600 rows=4 cols=4\nload.sp sram=0 rows=4 cols=4\ngemm a=0 b=4 k=4")
    msg = str(err.value)
    assert "pc 2 (gemm b=4 k=4) issues in cycle 4" in msg  # dispatched in 3
    assert "earlier pc 1 (load.sp rows=4 cols=4)" in msg and "not issued yet" in msg


def test_in_flight_write_is_a_race_with_ideal_memory_timing():
    with pytest.raises(RaceError, match="still busy"):
        run("gemm k=4 c=0\nvec.relu dst=0 src=0 rows=4\nload.acc sram=64 rows=1 cols=4\n"
            "store.acc sram=0 rows=4 cols=4 stride=16", ideal_memory=True)


def test_store_then_load_of_the_same_dram_without_token_is_a_race():
    text = """gemm k=4 push_next
              store.acc sram=64 dram=0 rows=1 cols=4 pop_prev
              load.sp sram=512 dram=0 rows=1 cols=4"""
    with pytest.raises(RaceError, match=r"pc 2 .* pc 1 "):
        run(text)


def test_ordering_by_tokens_removes_the_race_and_races_can_be_switched_off():
    res = run("load.sp sram=0 rows=4 cols=4 push_next\ngemm a=0 b=512 k=4 pop_prev")
    assert res.cycles == 2 + 8 + 4 + 10 - 1
    res = run("load.sp sram=0 rows=4 cols=4\ngemm a=0 b=512 k=4", values=False)
    assert res.cycles > 0  # timing only: no race check


def test_bad_instruction_is_reported_before_simulation():
    with pytest.raises(ExecutionError, match=r"pc 1: gemm c=126 k=4: accumulator rows"):
        run("load.sp rows=1 cols=4\ngemm k=4 c=126")


PARTIAL = ("load.sp sram=0 rows=8 cols=4 push_next\ngemm a=0 b=4 c=0 k=4 pop_prev\n{between}"
           "gemm a=0 b=4 c={c} k=1 {acc}push_next\nstore.acc sram=0 rows=8 cols=4 stride=16 pop_prev")


def test_gemms_in_flight_with_partially_overlapping_accumulator_rows_are_a_race():
    # The RTL completes the k=1 gemm's row 2 before the k=4 gemm's (issue 14: 13 DRAM bytes differed).
    with pytest.raises(RaceError) as err:
        run(PARTIAL.format(between="", c=2, acc=""))
    msg = str(err.value)
    assert "gemm pc 2 (gemm push_next b=4 c=2 k=1) issues in cycle 22" in msg
    assert "earlier gemm pc 1 (gemm pop_prev b=4 k=4) is in flight until cycle 27" in msg
    assert "row 2" in msg
    with pytest.raises(RaceError, match="overlap partially"):  # accumulating does not make it safe
        run(PARTIAL.format(between="", c=1, acc="accumulate "))


@pytest.mark.parametrize("between, c, acc", [("", 0, ""), ("", 0, "accumulate "), ("", 4, ""),
                                             ("vec.relu dst=64 src=64 rows=1\n", 2, "")])
def test_identical_disjoint_or_drained_accumulator_blocks_are_not_a_race(between, c, acc):
    assert run(PARTIAL.format(between=between, c=c, acc=acc)).cycles > 0


def test_partial_overlap_between_iterations_of_two_repeated_gemms_is_a_race():
    # blocks 0..3 and 4..7 against 2..5 and 6..9: the second iteration pairs overlap partially too
    with pytest.raises(RaceError, match="row 2"):
        run("load.sp sram=0 rows=8 cols=4 push_next\ngemm a=0 b=4 c=0 k=4 repeat=1 sc=4 pop_prev\n"
            "gemm a=0 b=4 c=2 k=1 repeat=1 sc=4")
    assert run("load.sp sram=0 rows=8 cols=4 push_next\ngemm a=0 b=4 c=0 k=4 repeat=1 sc=4 pop_prev\n"
               "gemm a=0 b=4 c=4 k=1 repeat=1 sc=4 accumulate").cycles > 0  # block 4..7 identical
