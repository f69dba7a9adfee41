"""The RTL follows `dram_outstanding_requests > 1` (docs/timing.md section 7) cycle for cycle, on Verilator.

Two builds of tiny-int8-4x4 (DRAM latency 8, 4 bytes a beat): N = 2 with the one-burst-per-row engines and
blocking stores (both engines behind a delay line of lat - 1 cycles), and N = 4 with `dram_burst_merge` and
`dram_posted_stores` (the merged-burst engines; the load-after-posted-store address check). Each runs a
directed program (back-to-back loads, a load whose pad rows outlast the next load's beats and are partly
rewritten by it, pad-only loads, then the round trip of tests/test_rtl_dram_options.py, whose read-backs
follow posted stores) and random programs; the N = 4 build also the simulator's section-7 programs with
N > 1 (tests/test_sim_dram.py); each must give the functional model's DRAM and the simulator's cycles and counters.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_rtl_core import _directed_timing_programs
from test_rtl_dram_options import BOTH, ROUND_TRIP, with_options
from test_sim_dram import read_back_chains
from test_sim_random import DRAM_SPAN, programs

from isa.assembler import assemble
from rtl.programs import dram_image
from rtl.toolchain import find_verilator
from sim.simulator import DeadlockError, RaceError, simulate
from workbench.rtl_agreement import run_on_rtl, valid_random_program

pytestmark = [pytest.mark.rtl, pytest.mark.skipif(find_verilator() is None, reason="Verilator not installed")]

DESIGNS = {"n2": {"dram_outstanding_requests": 2}, "n4+merge+posted": {**BOTH, "dram_outstanding_requests": 4}}

# Loads with no token between them: up to N in flight; the last one hands its rows to a store.
FRONT = """
load.sp sram=200 dram=0 stride=4 rows=2 cols=4
load.sp sram=202 dram=16 stride=4 rows=2 cols=4
load.sp sram=204 dram=32 rows=1 cols=4 pad=6  # pad rows 205..210 outlast the next load's 2 beats
load.sp sram=206 dram=48 stride=4 rows=2 cols=4  # rewrites two of those pad rows: program order wins
load.sp sram=212 dram=64 stride=5 rows=3 cols=3  # not contiguous
load.sp sram=216 rows=0 cols=1 pad=3  # pad rows only: waits for every load before it to complete
load.sp sram=220 dram=80 stride=1 rows=8 cols=1 pad=2  # 1-byte rows (merged: 4 a beat)
load.sp sram=230 dram=100 stride=4 rows=3 cols=4 push_next
vec.add dst=100 src=100 src2=100 rows=1 pop_prev push_next
store.sp sram=200 dram=2400 stride=4 rows=36 cols=4 pop_prev
"""


def _check(res):
    assert res.ok, res.mismatch


@pytest.mark.parametrize("name", DESIGNS)
def test_outstanding_requests_agree(name):
    d = with_options(DESIGNS[name])
    _check(run_on_rtl(d, assemble(FRONT + ROUND_TRIP + "finish"), dram_image(d)))
    merge = d.memory.dram_burst_merge
    for seed in (30,):  # one random program per build: the hypothesis test below draws more
        prog, image = valid_random_program(d, seed, dense=merge)
        _check(run_on_rtl(d, prog, image))


def test_simulator_section7_programs_agree():
    """The simulator's hand-computed N > 1 schedules (tests/test_sim_dram.py), on the N = 4 merge+posted build."""
    d = with_options(DESIGNS["n4+merge+posted"])
    seen = set()
    for design, program in _directed_timing_programs("test_sim_dram.py"):
        key = tuple(i.text for i in program)
        if design.memory.dram_outstanding_requests > 1 and key not in seen:
            seen.add(key)
            _check(run_on_rtl(d, program))
    assert len(seen) >= 5


N4 = with_options(DESIGNS["n4+merge+posted"])


@pytest.mark.slow
@settings(max_examples=6, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_posted_read_backs_and_colliding_programs_agree(data):
    """The simulator's property-test programs on the N = 4 build: posted stores read back by loads that often
    overlap them (tests/test_sim_dram.py), and programs whose DMAs share small SRAM and DRAM windows
    (tests/test_sim_random.py); the ones the simulator accepts must agree."""
    prog = data.draw(st.one_of(read_back_chains(), programs(N4)))
    image = np.random.default_rng(1).integers(0, 256, max(DRAM_SPAN, 4096), dtype=np.uint8)
    try:
        simulate(N4, prog, image, values=False, check_races=True)
    except (DeadlockError, RaceError):
        return
    _check(run_on_rtl(N4, prog, image))
