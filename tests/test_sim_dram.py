"""DRAM realism options of docs/timing.md section 7 on hand-computed schedules (tiny-int8-4x4), their
validation, the RTL's refusal of what it does not implement, and the property that turning them on never costs cycles or changes values.

tiny: DRAM latency 8 cycles, 4 bytes/cycle, queue depth 4, scratchpad banks of 512 rows, accumulator banks
of 64 rows, int8 inputs, int32 accumulators.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sim_random import DESIGNS as RANDOM_DESIGNS
from test_sim_random import DRAM_SPAN, programs

from compiler.accel.gemm_lowering import gemm_design, gemm_program
from compiler.accel.gemm_run import run_gemm
from isa import functional as F
from isa.assembler import assemble
from isa.design import DesignError, load_design, parse_design, shipped_designs
from rtl.params import CoreParams, UnsupportedDesignError
from rtl.randprog import random_program
from sim.simulator import DeadlockError, RaceError, simulate
from workbench.cli import main

TINY = load_design("tiny-int8-4x4")
TINY_TEXT = shipped_designs()["tiny-int8-4x4"].read_text()


def dram(design=TINY, n: int = 1, merge: bool = False, posted: bool = False):
    """`design` with the section 7 options set."""
    return design.replace(memory=dataclasses.replace(design.memory, dram_outstanding_requests=n,
                                                     dram_burst_merge=merge, dram_posted_stores=posted))


def sched(text: str, design=TINY, **kw):
    """{pc: (dispatch, issue, latency)} and the result."""
    res = simulate(design, assemble(text + "\nfinish"), **kw)
    return {pc: (d, s, lat) for pc, d, s, lat in res.schedule}, res


THREE_LOADS = "\n".join(f"load.sp sram={i} dram={4 * i} rows=1 cols=4" for i in range(3))  # B = 1, R = 9 each


@pytest.mark.parametrize("n, issues, cycles", [(1, [2, 11, 20], 28), (2, [2, 3, 11], 19), (4, [2, 3, 4], 12)])
def test_outstanding_requests_overlap_the_latency(n, issues, cycles):
    s, res = sched(THREE_LOADS, dram(n=n))
    assert [s[i][1] for i in range(3)] == issues  # N = 2: the third waits for the first to leave (cycle 11)
    assert all(s[i][2] == 8 + 1 for i in range(3))
    assert res.cycles == cycles


def test_the_port_is_held_for_the_beats_only():
    text = "\n".join(f"load.sp sram={4 * i} dram={16 * i} stride=4 rows=2 cols=4" for i in range(3))  # B = 2
    s, _ = sched(text, dram(n=8))
    assert [s[i][1] for i in range(3)] == [2, 4, 6] and s[0][2] == 8 + 2


def test_a_loads_pad_rows_hold_its_unit():
    """The load engine has one SRAM write path: the next load starts once the pad rows are written, so a
    load never overtakes the previous one (completions stay in order within a unit)."""
    s, _ = sched("load.sp rows=1 cols=4 pad=20\nload.sp sram=100 dram=64 rows=1 cols=4", dram(n=4))
    assert s[0] == (1, 2, 8 + 1 + 20)  # done at the end of cycle 30
    assert s[1][1] == 2 + 1 + 20 and s[1][2] == 8 + 1  # issues after 1 beat and 20 pad rows; done after the first


def test_a_dma_without_rows_waits_for_its_unit_to_complete():
    s, _ = sched("load.sp rows=1 cols=4\nload.sp sram=50 rows=0 cols=1 pad=2", dram(n=4))
    assert s[1][1] == 2 + 9 and s[1][2] == 2


@pytest.mark.parametrize("text, beats_off, beats_merged", [
    ("load.sp rows=4 cols=2 stride=2", 4, 2),  # 2 B rows, contiguous: 8 B = 2 beats instead of 4 x 1
    ("load.sp rows=4 cols=2 stride=3", 4, 4),  # a gap between rows: one burst per row
    ("load.sp rows=1 cols=2 stride=2", 1, 1),
    ("store.acc rows=4 cols=2 stride=2 narrow", 4, 2),  # narrowed to int8 on the way out
    ("load.acc rows=2 cols=3 stride=12", 6, 6),  # 12 B rows on a 4 B bus: already whole beats
])
def test_burst_merge_streams_contiguous_rows_as_one_burst(text, beats_off, beats_merged):
    assert sched(text)[0][0][2] == 8 + beats_off
    assert sched(text, dram(merge=True))[0][0][2] == 8 + beats_merged


STORE_THEN_VEC = """store.acc sram=0 dram=64 stride=16 rows=1 cols=4 push_prev
                    vec.add dst=64 src=64 src2=64 rows=1 pop_next"""


def test_posted_store_completes_when_its_data_has_left():
    s, res = sched(STORE_THEN_VEC)
    assert s[0] == (1, 2, 8 + 4) and s[1][1] == 14  # 16 B = 4 beats, then the round trip
    s, res = sched(STORE_THEN_VEC, dram(posted=True))
    assert s[0] == (1, 2, 4) and s[1][1] == 6  # the token follows the beats
    assert res.cycles == 2 + 12 - 1  # FINISH waits until the data has reached DRAM


# The store posts C row 0 (acc rows 0..0) to DRAM 64..80; a token chain store -> compute -> load orders the
# load that reads those bytes back (an unrelated load reads DRAM 1024).
READ_BACK = """store.acc sram=0 dram=64 stride=16 rows=1 cols=4 push_prev
               vec.add dst=64 src=64 src2=64 rows=1 pop_next push_prev
               load.acc sram=96 dram={addr} stride=16 rows=1 cols=4 pop_next"""


@pytest.mark.parametrize("n", [1, 4])
def test_a_load_after_a_posted_store_waits_for_its_arrival(n):
    for posted in (False, True):
        d = dram(n=n, posted=posted)
        s, _ = sched(READ_BACK.format(addr=64), d)
        assert s[2][1] >= s[0][1] + 8 + 4  # never before the store's data has arrived (cycle 14)
        if posted:
            assert s[1][1] == 6 and s[2][1] == 14  # the vec went early; the load waited for the arrival
        far, _ = sched(READ_BACK.format(addr=1024), d)  # other bytes: only the request limit holds it
        assert far[2][1] == (7 if posted and n > 1 else s[2][1])


def test_a_load_after_a_posted_store_reads_the_new_values():
    image = np.zeros(4096, dtype=np.uint8)
    text = """load.acc sram=0 dram=512 stride=16 rows=2 cols=4 push_next
              vec.add dst=0 src=0 src2=0 rows=2 pop_prev push_next
              store.acc sram=0 dram=64 stride=16 rows=2 cols=4 pop_prev push_prev
              vec.add dst=64 src=64 src2=64 rows=1 pop_next push_prev
              load.acc sram=96 dram=64 stride=16 rows=2 cols=4 pop_next
              finish"""
    image[512:544] = np.arange(32, dtype=np.uint8)
    off = simulate(TINY, assemble(text), image)
    on = simulate(dram(n=8, merge=True, posted=True), assemble(text), image)
    doubled = 2 * image[512:544].view(np.int32).reshape(2, 4)
    assert np.array_equal(on.state.acc[96:98], doubled) and np.array_equal(off.state.acc[96:98], doubled)
    st_ = {pc: (t, lat) for pc, _, t, lat in on.schedule}
    assert st_[4][0] >= st_[2][0] + 8 + 8  # the read-back waits for the posted store's arrival
    assert on.cycles <= off.cycles


def test_defaults_are_todays_rules_and_explicit_defaults_change_nothing():
    explicit = TINY_TEXT.replace('dram_type = "LPDDR4"', 'dram_type = "LPDDR4"\ndram_outstanding_requests = 1\n'
                                 'dram_burst_merge = false\ndram_posted_stores = false')
    assert explicit != TINY_TEXT
    d = parse_design(explicit, "explicit.toml", name="tiny-int8-4x4")
    assert d.memory == TINY.memory
    gp = gemm_program(TINY, 13, 9, 21)
    a, b = simulate(TINY, gp.program, values=False), simulate(d, gp.program, values=False)
    assert (a.cycles, a.schedule) == (b.cycles, b.schedule)


@pytest.mark.parametrize("field, value, message", [
    ("dram_outstanding_requests", "0", "out of range; allowed 1..65536"),
    ("dram_outstanding_requests", "2.5", "must be an integer"),
    ("dram_burst_merge", "1", "must be true or false"),
    ("dram_posted_stores", '"yes"', "must be true or false"),
])
def test_bad_fields_are_named_with_their_line(field, value, message):
    text = TINY_TEXT.replace('dram_type = "LPDDR4"', f'dram_type = "LPDDR4"\n{field} = {value}')
    line = text.splitlines().index(f"{field} = {value}") + 1
    with pytest.raises(DesignError, match=rf"^bad\.toml:{line}: field 'memory\.{field}' = .*{message}"):
        parse_design(text, "bad.toml")


def test_the_rtl_builds_every_dram_option(tmp_path):
    """The RTL follows all three options (tests/test_rtl_outstanding.py, tests/test_rtl_dram_options.py)."""
    p = CoreParams(dram(n=2, merge=True, posted=True))
    assert p.queued and p.merge and p.posted and p.store_lead == 1 and (p.load_delay, p.store_delay) == (7, 0)
    p = CoreParams(dram(n=4))  # blocking stores: the engine gets the command lat - 1 cycles after the issue
    assert p.store_lead == 1 and (p.load_delay, p.store_delay) == (7, 7)
    with pytest.raises(UnsupportedDesignError, match=r"up to 64 DRAM request slots \(memory\.dram_outstanding_requests = 65\)"):
        CoreParams(dram(n=65))
    p = CoreParams(dram(merge=True, posted=True))
    assert not p.queued and p.store_lead == 1 and (p.load_delay, p.store_delay) == (0, 0)
    path = tmp_path / "outstanding.toml"
    path.write_text(TINY_TEXT.replace('dram_type = "LPDDR4"', 'dram_type = "LPDDR4"\ndram_outstanding_requests = 4'))
    assert main(["rtl", "verilog", str(path), "-o", str(tmp_path / "v")]) == 0


OPTIONS = st.tuples(st.sampled_from([1, 2, 3, 8, 64]), st.booleans(), st.booleans())


@settings(max_examples=25, deadline=None)
@given(design=st.sampled_from(["tiny-int8-4x4", "small-int8-8x8"]), dataflow=st.sampled_from(["os", "ws"]),
       m=st.integers(1, 40), n=st.integers(1, 40), k=st.integers(1, 40), options=OPTIONS)
def test_options_keep_the_values_and_cost_no_cycles_in_the_same_issue_order(design, dataflow, m, n, k, options):
    d = gemm_design(design, dataflow=dataflow)
    rng = np.random.default_rng(m * n * k)
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    c_off, off, _ = run_gemm(d, a, b)
    c_on, on, _ = run_gemm(dram(d, *options), a, b)
    assert np.array_equal(c_on, c_off) and np.array_equal(c_on, a.astype(np.int64) @ b.astype(np.int64))
    if issue_order(on) == issue_order(off):  # else a list-scheduling anomaly may lengthen it (docs/timing.md)
        assert on.cycles <= off.cycles


def issue_order(result) -> list[int]:
    """The program counters in the order the simulator issued them."""
    return [pc for pc, _, _, _ in result.schedule]


def test_a_shorter_dma_can_reorder_the_port_and_lengthen_a_gemm():
    """Greedy issue is a list schedule: burst merging shortens the loads of this GEMM, a load then takes the
    port before a store, and the program ends 13 cycles later (docs/timing.md, section 7)."""
    d = gemm_design("small-int8-8x8", dataflow="ws")
    rng = np.random.default_rng(13 * 17)
    a = rng.integers(-128, 128, (13, 1), dtype=np.int8)
    b = rng.integers(-128, 128, (1, 17), dtype=np.int8)
    c_off, off, _ = run_gemm(d, a, b)
    c_on, on, _ = run_gemm(dram(d, 1, True, False), a, b)
    assert np.array_equal(c_on, c_off)
    assert (off.cycles, on.cycles) == (424, 437) and issue_order(on) != issue_order(off)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), dataflow=st.sampled_from(["os", "ws"]), options=OPTIONS)
def test_options_never_cost_cycles_on_random_programs_and_keep_the_values(seed, dataflow, options):
    d = gemm_design("tiny-int8-4x4", dataflow=dataflow)
    prog, image = random_program(d, seed)
    off = simulate(d, prog, image)
    on = simulate(dram(d, *options), prog, image)
    assert np.array_equal(on.state.dram, off.state.dram) and on.cycles <= off.cycles



@st.composite
def read_back_chains(draw):
    """Blocks of: store accumulator rows (posted) -> vec -> load DRAM bytes that often overlap the store's ->
    vec -> next store, each step ordered by a token, all in a 256-byte DRAM window."""
    lines = []
    for b in range(draw(st.integers(1, 4))):
        rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 4))
        narrow = draw(st.booleans())
        eb = 1 if narrow else 4
        stride = cols * eb + eb * draw(st.integers(0, 1))
        span = (rows - 1) * stride + cols * eb
        at = eb * draw(st.integers(0, (256 - span) // eb))
        lines.append(f"store.acc sram={4 * b} dram={at} stride={stride} rows={rows} cols={cols} "
                     f"{'narrow ' if narrow else ''}push_prev{' pop_prev' if b else ''}")
        lines.append("vec.add dst=100 src=100 src2=100 rows=1 pop_next push_prev")
        l_rows, l_cols = draw(st.integers(1, 3)), draw(st.integers(1, 4))
        l_stride = l_cols + draw(st.integers(0, 2))
        l_at = draw(st.integers(0, 256 - ((l_rows - 1) * l_stride + l_cols)))
        lines.append(f"load.sp sram={8 * b} dram={l_at} stride={l_stride} rows={l_rows} cols={l_cols} "
                     "pop_next push_next")
        lines.append("vec.add dst=100 src=100 src2=100 rows=1 pop_prev push_next")
    return assemble("\n".join(lines) + "\nfinish")


def _check_posted_order(d, prog, res) -> int:
    """Assert no load issued before an overlapping earlier posted store arrived; return how many such pairs."""
    issue = {pc: t for pc, _, t, _ in res.schedule}
    dmas = [(pc, i, F.footprint(d, i)[0]) for pc, i in enumerate(prog) if i.mnemonic in ("load", "store")
            and i.args["rows"]]
    pairs = 0
    for pc, instr, (_, lo, hi, _) in dmas:
        if instr.mnemonic != "store":
            continue
        arrival = issue[pc] + d.memory.dram_latency_cycles + F.dma_beats(d, instr)
        assert res.cycles >= arrival - 1  # FINISH waits for the data
        for pc2, instr2, (_, lo2, hi2, _) in dmas:
            if pc2 > pc and instr2.mnemonic == "load" and lo < hi2 and lo2 < hi:
                assert issue[pc2] >= arrival, (instr.text, instr2.text)
                pairs += 1
    return pairs


@settings(max_examples=40, deadline=None)
@given(prog=read_back_chains(), n=st.sampled_from([1, 2, 8]), merge=st.booleans())
def test_a_load_never_reads_bytes_before_a_posted_store_has_written_them(prog, n, merge):
    image = np.random.default_rng(n).integers(0, 256, 4096, dtype=np.uint8)
    d = dram(n=n, merge=merge, posted=True)
    res = simulate(d, prog, image)
    ref = F.run(d, prog, image)  # program order: every load sees every earlier store
    assert np.array_equal(res.state.dram, ref.dram) and np.array_equal(res.state.sp, ref.sp)
    _check_posted_order(d, prog, res)
    assert res.cycles <= simulate(TINY, prog, image).cycles


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), flavour=st.sampled_from(["int8-os", "int8-ws"]), n=st.sampled_from([1, 2, 8]),
       merge=st.booleans())
def test_posted_stores_in_random_programs_keep_program_order(data, flavour, n, merge):
    """Random programs whose loads and stores share a small DRAM window (test_sim_random's generator)."""
    d = dram(RANDOM_DESIGNS[flavour], n=n, merge=merge, posted=True)
    prog = data.draw(programs(d))
    image = np.random.default_rng(n).integers(0, 256, DRAM_SPAN, dtype=np.uint8)
    try:
        res = simulate(d, prog, image)
    except (DeadlockError, RaceError):
        return
    ref = F.run(d, prog, image)
    assert np.array_equal(res.state.dram, ref.dram) and np.array_equal(res.state.sp, ref.sp)
    assert np.array_equal(res.state.acc, ref.acc)
    _check_posted_order(d, prog, res)
