"""The RTL follows the simulator's DRAM options (docs/timing.md section 7) cycle for cycle, on Verilator.

tiny-int8-4x4 (DRAM latency 8, 4 bytes a beat) with `dram_burst_merge`, `dram_posted_stores` and both: a
directed program whose loads and stores cover merged rows narrower than a beat (up to 4 rows a beat), rows
straddling beats, accumulator rows, narrowed stores, pad rows and rows that are not contiguous, then read
some of the stored bytes back; the simulator's own section-7 programs (tests/test_sim_dram.py); random
programs with mostly contiguous rows; the compiled int8 MLP. Each must give the functional model's DRAM,
the simulator's cycles and event counters. One Verilator build per option set (3).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_rtl_core import _directed_timing_programs

from isa.assembler import assemble
from isa.design import Design, load_design
from rtl.programs import dram_image
from rtl.toolchain import find_verilator
from workbench.rtl_agreement import run_on_rtl, valid_random_program

pytestmark = [pytest.mark.rtl, pytest.mark.skipif(find_verilator() is None, reason="Verilator not installed")]

MERGE = {"dram_burst_merge": True}
POSTED = {"dram_posted_stores": True}
BOTH = {**MERGE, **POSTED}
OPTIONS = {"merge": MERGE, "posted": POSTED, "merge+posted": BOTH}


def with_options(options: dict, name: str = "tiny-int8-4x4") -> Design:
    """A shipped design with [memory] options set."""
    d = load_design(name)
    return d.replace(memory=dataclasses.replace(d.memory, **options))


def _check(res):
    assert res.ok, res.mismatch


# Loads and stores of every shape a merged burst meets on a 4-byte bus; one token chain orders them.
ROUND_TRIP = """
load.sp sram=0 dram=0 stride=3 rows=5 cols=3  # 15 B as 4 beats: rows straddle beats
load.sp sram=16 dram=64 stride=1 rows=9 cols=1 pad=2  # 4 rows finish in one beat, then pad rows
load.sp sram=32 dram=128 stride=6 rows=3 cols=4  # not contiguous: a burst per row
load.sp sram=40 dram=200 stride=2 rows=1 cols=2  # one row
load.acc sram=0 dram=256 stride=12 rows=3 cols=3 push_next  # int32 rows: 3 beats each, merged
vec.add dst=100 src=100 src2=100 rows=1 pop_prev push_next
store.sp sram=0 dram=1024 stride=3 rows=5 cols=3 pop_prev
store.sp sram=16 dram=1100 stride=1 rows=11 cols=1  # 4 rows start in one beat
store.acc sram=0 dram=1200 stride=3 rows=3 cols=3 narrow
store.acc sram=0 dram=1300 stride=12 rows=3 cols=3
store.sp sram=32 dram=1400 stride=5 rows=3 cols=4  # not contiguous
store.sp sram=40 dram=1500 stride=2 rows=1 cols=2 push_prev
vec.add dst=100 src=100 src2=100 rows=1 pop_next push_prev
load.sp sram=48 dram=1098 stride=2 rows=4 cols=2 pop_next  # reads back bytes the stores just wrote
load.sp sram=56 dram=2000 rows=1 cols=4                  # other bytes
load.acc sram=8 dram=1300 stride=12 rows=3 cols=3 push_next
vec.add dst=100 src=100 src2=100 rows=1 pop_prev push_next
store.sp sram=48 dram=1600 stride=2 rows=4 cols=2 pop_prev
store.acc sram=8 dram=1700 stride=12 rows=3 cols=3
"""


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_directed_round_trip_agrees(options):
    d = with_options(options)
    _check(run_on_rtl(d, assemble(ROUND_TRIP + "finish"), dram_image(d)))


def test_simulator_section7_programs_agree():
    """The simulator's hand-computed section-7 schedules (tests/test_sim_dram.py) that the RTL builds."""
    programs = [(d, prog) for d, prog in _directed_timing_programs("test_sim_dram.py")
                if (d.memory.dram_burst_merge or d.memory.dram_posted_stores) and d.memory.dram_outstanding_requests == 1]
    assert sum(d.memory.dram_burst_merge for d, _ in programs) >= 5
    assert sum(d.memory.dram_posted_stores for d, _ in programs) >= 3
    for design, program in programs:
        _check(run_on_rtl(design, program))


@pytest.mark.parametrize("options,seed", [*((MERGE, s) for s in range(3)), *((POSTED, s) for s in range(10, 12)),
                                          *((BOTH, s) for s in range(20, 23))],
                         ids=lambda v: next((k for k, o in OPTIONS.items() if o == v), str(v)))
def test_random_contiguous_programs_agree(options, seed):
    d = with_options(options)
    prog, image = valid_random_program(d, seed, dense=True)
    _check(run_on_rtl(d, prog, image))


@pytest.mark.slow
@pytest.mark.parametrize("options", [MERGE, BOTH, {**BOTH, "dram_outstanding_requests": 4}],
                         ids=["merge", "merge+posted", "n4+merge+posted"])
def test_compiled_int8_mlp_agrees(tmp_path, options):
    """The compiled int8 MLP (one program for the whole graph, as tests/test_rtl_compiled_model.py) on the options.

    Batch 2 < ROWS: the lowering stores the activation panels unpadded, 2-byte rows that merge 2 to a beat."""
    from compiler import Tensor, models
    from compiler.accel.runtime import sim_run
    from compiler.quantize import quantize
    from isa.design import shipped_designs
    from isa.functional import dram_elem_bytes

    text = shipped_designs()["tiny-int8-4x4"].read_text()
    lines = "".join(f"\n{k} = {str(v).lower()}" for k, v in options.items())
    text = text.replace('dram_type = "LPDDR4"', 'dram_type = "LPDDR4"' + lines)
    path = tmp_path / "tiny-options.toml"
    path.write_text(text)
    dev = f"SIM:{path}"
    model = models.mlp(batch=2, d_in=12, d_hidden=10, d_out=6)
    x = model.sample_input()
    qm = quantize(model, x)
    with sim_run(dev, keep_programs=True, programs="graph") as run:
        qm(Tensor(qm.quantize_input(x), device=dev)).realize()
    design, program, image = run.programs[0]
    assert all(getattr(design.memory, k) == v for k, v in options.items())
    bw = design.memory.dram_bandwidth_bytes_per_cycle
    assert any(i.mnemonic in ("load", "store") and i.args["rows"] > 1
               and i.args["stride"] == i.args["cols"] * dram_elem_bytes(design, i) < bw for i in program)
    res = run_on_rtl(design, program, image)
    _check(res)
    assert res.rtl_cycles == run.cycles
    for kernel, addr, want in run.expected_results[0]:
        assert np.array_equal(res.dram[addr:addr + want.size], want), kernel


def test_sweep_design_names_the_options():
    """`python -m workbench.rtl_sweep --designs tiny-int8-4x4+merge+posted` sweeps a design with both options."""
    from workbench.rtl_sweep import sweep_design

    d = sweep_design("tiny-int8-4x4+ws+merge+posted")
    assert (d.matrix.dataflow, d.memory.dram_burst_merge, d.memory.dram_posted_stores) == ("ws", True, True)
    assert d.name == "tiny-int8-4x4+ws+merge+posted" and sweep_design("tiny-int8-4x4") == load_design("tiny-int8-4x4")
    with pytest.raises(ValueError, match=r"unknown suffix \+foo"):
        sweep_design("tiny-int8-4x4+foo")
