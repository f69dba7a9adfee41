"""One isa program per run of accelerator kernels: segments stitched with tokens, simulated once, attributed per kernel.

In the default "graph" mode the SIM device does not simulate each kernel's program on its own. A kernel's
programs (one per GEMM batch, or its vector program) are run for values on the functional model
(`isa.functional`, the golden model the simulator agrees with) and kept as *segments*; when the run is read, or
a host op ends the run of accelerator kernels, the segments become one program (`assemble`) that the simulator
times once, so it sees the overlap between kernels (the next kernel's weight loads while the previous one
computes and drains). docs/accelerator_backend.md, "One program per graph", describes it; in short:

- DRAM: each segment's image is relocated to its own 64-byte aligned region of one address map.
- Tokens (the ISA has no fence): each segment follows the double-buffering protocol of
  `gemm_lowering.emit_groups`, which leaves the compute->load tokens of its last one or two groups and some
  store->compute tokens unpopped. Between segments P and S, P's store tokens are reduced to the one of its last
  store (a unit completes in program order); a barrier `vec.max` of accumulator row 0 onto itself (a no-op)
  heads S's compute, pops it and pushes a compute->load token. S's loads pop P's compute tokens before they
  reuse the scratchpad halves P's last groups read, and the barrier's token before the first load that reads
  DRAM an earlier kernel wrote or writes the accumulator; S's weights load before that. S's compute follows
  the barrier in the in-order compute queue, so it never overwrites rows P still stores.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from isa.counters import event_counters
from isa.design import Design, ceil_div
from isa.encoding import Instr, make
from isa.functional import run as functional_run
from isa.instructions import INSTRUCTIONS
from sim.simulator import SimResult, simulate
from sim.units import UNIT_NAMES, make_op

__all__ = ["Segment", "GraphCollector", "ProgramRecord", "SegmentStats", "assemble", "execute", "simulate_segments",
           "next_first_half", "MAX_PENDING_BYTES"]

MAX_DRAM_BYTES = INSTRUCTIONS["load"].field("dram").max + 1  # DRAM bytes a load or store can address
MAX_PENDING_BYTES = 256 << 20  # DRAM image bytes held before a pending program is simulated anyway
_UNIT_OF = {"load": "load", "store": "store", "gemm": "matrix", "vec": "vector"}


@dataclass
class Segment:
    """One generated program of a kernel, kept for the run's single program.

    waits: DRAM byte ranges of its image (its own addresses) holding values that earlier kernels of the run
    computed: its loads of them must wait for those kernels' stores."""

    owner: Any  # the kernel's record (compiler.accel.kernel_lowering.KernelRecord)
    design: Design
    program: list[Instr]
    image: np.ndarray
    waits: tuple[tuple[int, int], ...] = ()
    output: tuple[int, int] = (0, 0)  # DRAM byte range of its result
    result: np.ndarray | None = None  # those bytes after the functional model ran it


@dataclass
class SegmentStats:
    """What one kernel's instructions did inside a program: span and busy cycles per unit."""

    first_issue: int  # cycle its first instruction issued
    last_cycle: int  # cycle its last instruction completed
    busy: dict[str, int]
    instructions: dict[str, int]
    counters: dict[str, int]  # event counters of its instructions (the stitching's barrier and empty loads included)


@dataclass
class ProgramRecord:
    """One simulated program of the run: which kernels it holds and its totals."""

    kernels: list[str]
    cycles: int
    instructions: int
    dram_read_bytes: int
    dram_write_bytes: int
    units: dict[str, dict[str, int]]
    counters: dict[str, int]
    wall_seconds: float
    ends_at: str = "end of run"  # what split the run here: "host op <kernel>", "end of run", "DRAM reach"


@dataclass
class GraphCollector:
    """The pending segments of a run and the buffers its accelerator kernels wrote."""

    segments: list[Segment] = field(default_factory=list)
    fresh: dict[int, Any] = field(default_factory=dict)  # id(buffer) -> buffer (held so the id stays unique)
    image_bytes: int = 0

    def add(self, seg: Segment) -> None:
        """Keep a segment for the pending program."""
        self.segments.append(seg)
        self.image_bytes += seg.image.size

    def mark_written(self, buffer: Any) -> None:
        """`buffer` holds an accelerator kernel's output: later loads of it wait for the stores."""
        self.fresh[id(buffer)] = buffer

    def is_written(self, buffer: Any) -> bool:
        """Whether an accelerator kernel of the pending program wrote `buffer`."""
        return buffer is not None and self.fresh.get(id(buffer)) is buffer

    def clear(self) -> None:
        """Forget the pending program (after it was simulated)."""
        self.segments, self.fresh, self.image_bytes = [], {}, 0


def execute(design: Design, program: list[Instr], image: np.ndarray, trace: bool = False, sink: list | None = None,
            collector: GraphCollector | None = None, owner: Any = None, waits: tuple[tuple[int, int], ...] = (),
            output: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, SimResult | None]:
    """Run one generated program: final DRAM bytes, and the simulator's result (None when collected for later).

    With a collector the values come from the functional model and the program waits as a segment of the run's
    single program (`waits`: its operand ranges an earlier kernel computed; `output`: its result's range);
    otherwise it is simulated now (values and timing) and appended to `sink` if given."""
    if collector is not None:
        state = functional_run(design, program, image)
        lo, hi = output
        collector.add(Segment(owner, design, program, image, waits, output, state.dram[lo:hi].copy()))
        return state.dram, None
    if sink is not None:
        sink.append((design, program, image))
    result = simulate(design, program, image, trace=trace)
    return result.state.dram, result


def _copy(i: Instr) -> Instr:
    return Instr(i.spec, dict(i.args))


def _empty_load() -> Instr:
    """A load of no rows that only pops a compute->load token (one cycle on the load unit, no DRAM port)."""
    return make("load.sp", sram=0, dram=0, stride=0, rows=0, cols=1, pop_next=1)


def _reduce_leftover(body: list[Instr], queue: str, flag: str, popper: str, pop_flag: str) -> None:
    """Leave exactly one unpopped token of this kind, pushed by the segment's last `queue` instruction."""
    pushers = [i for i in body if i.spec.queue == queue and i.args[flag]]
    pops = sum(1 for i in body if i.spec.queue == popper and i.args[pop_flag])
    left = len(pushers) - pops
    if left < 0:
        raise AssertionError(f"segment pops more {flag} tokens than it pushes")
    for i in pushers[len(pushers) - left:]:
        i.args[flag] = 0
    last = next(i for i in reversed(body) if i.spec.queue == queue)
    last.args[flag] = 1


def _after_barrier(i: Instr, waits: tuple[tuple[int, int], ...], eb: int) -> bool:
    """A load that must wait for the previous kernel's stores: into the accumulator, or of DRAM it may have written."""
    a = i.args
    if a["mem"] == 1:
        return True
    if not a["rows"]:
        return False
    lo, hi = a["dram"], a["dram"] + (a["rows"] - 1) * a["stride"] + a["cols"] * eb
    return any(lo < w_hi and w_lo < hi for w_lo, w_hi in waits)


def _reorder_first_group(body: list[Instr], waits: tuple[tuple[int, int], ...], design: Design) -> None:
    """Put the first group's independent loads (weights) before those that wait for the previous kernel."""
    pos = [j for j, i in enumerate(body) if i.spec.queue == "load"]
    end = next((n for n, j in enumerate(pos) if body[j].args["push_next"]), None)
    if end is None:
        return
    group = [body[j] for j in pos[:end + 1]]
    if any(i.args["pop_next"] for i in group):
        return
    late = [_after_barrier(i, waits, _dram_eb(design, i)) for i in group]
    order = [i for i, w in zip(group, late, strict=True) if not w] + [i for i, w in zip(group, late, strict=True) if w]
    for i in order:
        i.args["push_next"] = 0
    order[-1].args["push_next"] = 1
    for j, i in zip(pos[:end + 1], order, strict=True):
        body[j] = i


def _dram_eb(design: Design, i: Instr) -> int:
    return design.acc_bytes if i.args["mem"] and not i.args["narrow"] else design.input_bytes


def _gemm_half(body: list[Instr], design: Design, last: bool) -> int | None:
    """The scratchpad half (0 lower, 1 upper) of a segment's first or last gemm; None without gemms."""
    gemms = [i for i in body if i.mnemonic == "gemm"]
    if not gemms:
        return None
    return int((gemms[-1] if last else gemms[0]).args["a"] >= design.scratchpad_rows // 2)


def _prev_pops(prev: list[Instr], design: Design) -> list[int]:
    """The scratchpad half each compute->load token left by the previous segment stands for, oldest first.

    Those tokens are the pushes of its last one or two groups, which alternate halves. A segment without gemms
    never reads the scratchpad, and the next one's accumulator loads wait for its stores (which follow its
    compute) anyway: its leftover compute->load pushes are dropped instead."""
    pushers = [i for i in prev if i.spec.queue == "compute" and i.args["push_prev"]]
    left = len(pushers) - sum(1 for i in prev if i.spec.queue == "load" and i.args["pop_next"])
    last = _gemm_half(prev, design, last=True)
    if last is None:
        for i in pushers[len(pushers) - left:]:
            i.args["push_prev"] = 0
        return []
    return [(last + left - 1 - t) % 2 for t in range(left)]


def next_first_half(segments: list[Segment]) -> int:
    """The scratchpad half a GEMM program appended after `segments` should start in: the one the last segment's
    last group did not use, so that its first group waits only for the second-to-last group."""
    if not segments:
        return 0
    last = _gemm_half(segments[-1].program, segments[-1].design, last=True)
    return 0 if last is None else 1 - last


def _stitch(prev: list[int], body: list[Instr], waits: tuple[tuple[int, int], ...],
            design: Design) -> list[Instr]:
    """S's body with the barrier and the empty loads that pop what P left (`_prev_pops` of P's own body)."""
    _reorder_first_group(body, waits, design)
    loads = [j for j, i in enumerate(body) if i.spec.queue == "load"]
    n = len(loads)
    # tokens are counted, not named: the previous segment's and the barrier's tokens are popped before S's own
    dep = next((k for k, j in enumerate(loads) if body[j].args["pop_next"]
                or _after_barrier(body[j], waits, _dram_eb(design, body[j]))), n)
    first_push = next((k for k, j in enumerate(loads) if body[j].args["push_next"]), n - 1)
    h0 = _gemm_half(body, design, last=False)
    if h0 is None:  # S never writes the scratchpad: P's tokens only need popping before the barrier's
        slots = [dep] * len(prev)
    else:  # S's group g (half h0, then 1 - h0) waits for P's latest group that read the same half
        need0 = max((t + 1 for t, h in enumerate(prev) if h == h0), default=0)
        slots = [0] * need0 + [min(first_push + 1, dep)] * (len(prev) - need0)
    slots.append(dep)
    out: list[Instr] = [make("vec.max", dst=0, src=0, src2=0, rows=1, pop_next=1, push_prev=1)]
    at: dict[int, int] = {}
    for k in slots:
        at[k] = at.get(k, 0) + 1
    pos_of = {j: k for k, j in enumerate(loads)}
    for j, i in enumerate(body):
        k = pos_of.get(j)
        if k is not None and k in at:
            pops = at.pop(k)
            if not i.args["pop_next"]:  # the load itself takes the last of its tokens; empty loads the others
                i.args["pop_next"] = 1
                pops -= 1
            out += [_empty_load() for _ in range(pops)]
        out.append(i)
    out += [_empty_load() for _ in range(sum(at.values()))]  # slots past the last load
    return out


def _same_bytes(earlier: list[Segment], bases: list[int], data: np.ndarray) -> int | None:
    """Global DRAM address of the latest earlier segment's result that holds exactly `data`, if any."""
    for sj in range(len(earlier) - 1, -1, -1):
        seg = earlier[sj]
        if seg.result is not None and seg.result.size == data.size and data.size and np.array_equal(seg.result, data):
            return bases[sj] + seg.output[0]
    return None


def _retarget(body: list[Instr], design: Design, lo: int, hi: int, delta: int) -> None:
    """Loads that read within [lo, hi) read `delta` bytes further instead."""
    for i in body:
        a = i.args
        if i.spec.queue == "load" and a["rows"] and lo <= a["dram"] < hi:
            end = a["dram"] + (a["rows"] - 1) * a["stride"] + a["cols"] * _dram_eb(design, i)
            if end > hi:
                raise AssertionError("a load straddles an operand region")
            a["dram"] += delta


def assemble(segments: list[Segment]) -> tuple[Design, list[Instr], np.ndarray, list[int], list[int]]:
    """One program for the segments in order: (design, program, DRAM image, segment index of every pc, DRAM
    address where each segment's result ends up)."""
    base_design = segments[0].design
    for s in segments[1:]:
        if s.design.matrix != base_design.matrix or s.design.name != base_design.name:
            raise ValueError("segments of one program must share a design")
    bases, pos = [], 0
    for s in segments:
        bases.append(pos)
        pos += ceil_div(s.image.size, 64) * 64
    total = max(pos, 64)
    image = np.zeros(total, dtype=np.uint8)
    for b, s in zip(bases, segments, strict=True):
        image[b:b + s.image.size] = s.image
    design = base_design
    if total > design.memory.dram_bytes:
        design = design.replace(memory=dataclasses.replace(design.memory, dram_bytes=total))
    bodies: list[list[Instr]] = []
    all_waits: list[tuple[tuple[int, int], ...]] = []
    for si, (b, s) in enumerate(zip(bases, segments, strict=True)):
        body = [_copy(i) for i in s.program if i.mnemonic != "finish"]
        for i in body:
            if i.spec.queue in ("load", "store"):
                i.args["dram"] += b
        waits = []
        for lo, hi in s.waits:
            src = _same_bytes(segments[:si], bases, s.image[lo:hi])
            if src is not None:  # the producer's output is already in this layout: read it where it was stored
                _retarget(body, design, lo + b, hi + b, src - (lo + b))
                image[lo + b:hi + b] = 0  # the copy is not read
                waits.append((src, src + hi - lo))
            else:
                waits.append((lo + b, hi + b))
        bodies.append(body)
        all_waits.append(tuple(waits))
    left = [_prev_pops(body, design) for body in bodies]  # before stitching adds pops and pushes
    for body in bodies[:-1]:
        _reduce_leftover(body, "store", "push_prev", "compute", "pop_next")
    for si in range(1, len(bodies)):
        bodies[si] = _stitch(left[si - 1], bodies[si], all_waits[si], design)
    program: list[Instr] = []
    owner: list[int] = []
    for si, body in enumerate(bodies):
        program += body
        owner += [si] * len(body)
    program.append(make("finish"))
    return design, program, image, owner, [b + s.output[0] for b, s in zip(bases, segments, strict=True)]


def simulate_segments(segments: list[Segment], trace: bool = False, sink: list | None = None,
                      ends_at: str = "end of run", expected: list | None = None
                      ) -> tuple[ProgramRecord, list[SegmentStats], list[dict]]:
    """Assemble and simulate the segments as one program (timing; values came from the functional model).

    Returns the program's record, per-segment stats (span, busy cycles per unit) and trace events (each
    tagged with the kernel of its instruction). `sink`: append (design, program, DRAM image); `expected`:
    append [(kernel, DRAM address, bytes)]: what each segment's result must be after the program ran."""
    t0 = time.perf_counter()
    design, program, image, owner, outs = assemble(segments)
    if expected is not None:
        expected.append([(getattr(s.owner, "name", ""), addr, s.result) for s, addr in zip(segments, outs, strict=True)])
    if image.size > MAX_DRAM_BYTES:
        raise ValueError(f"the program's DRAM image is {image.size:,} bytes, beyond the {MAX_DRAM_BYTES:,} a load "
                         "can address")
    if sink is not None:
        sink.append((design, program, image))
    res = simulate(design, program, image, values=False, check_races=True, trace=trace)
    names_c = event_counters(design.matrix.input_dtype)
    stats = [SegmentStats(1 << 62, 0, dict.fromkeys(_UNIT_OF.values(), 0), dict.fromkeys(_UNIT_OF.values(), 0),
                          dict.fromkeys(names_c, 0)) for _ in segments]
    memo: dict = {}
    for pc, i in enumerate(program[:-1]):  # event counts are static per instruction: attribute them by owner
        make_op(design, i, pc, False, design.matrix.overlap_tiles, stats[owner[pc]].counters, False, memo)
    busy_until: list[dict[str, int]] = [dict.fromkeys(_UNIT_OF.values(), 0) for _ in segments]
    for pc, _d, s, lat in res.schedule:  # issue order, so each unit's busy span grows monotonically
        st = stats[owner[pc]]
        unit = _UNIT_OF[program[pc].mnemonic]
        end = s + lat
        a = program[pc].args
        if not (program[pc].spec.queue in ("load", "store") and a["rows"] == 0 and a["pad"] == 0):
            st.first_issue = min(st.first_issue, s)  # token-only empty loads do not start a kernel's span
        st.last_cycle = max(st.last_cycle, end - 1, s)
        bu = busy_until[owner[pc]]
        if end > max(s, bu[unit]):
            st.busy[unit] += end - max(s, bu[unit])
            bu[unit] = end
        st.instructions[unit] += 1
    events = []
    for e in res.trace_events or []:
        seg = segments[owner[e["args"]["pc"]]]
        e = dict(e)
        e["args"] = dict(e["args"], kernel=getattr(seg.owner, "name", ""))
        events.append(e)
    names: list[str] = []
    seen: set[int] = set()
    for s in segments:
        if id(s.owner) not in seen:
            seen.add(id(s.owner))
            names.append(getattr(s.owner, "name", ""))
    rec = ProgramRecord(names, res.cycles, len(program), res.dram_read_bytes, res.dram_write_bytes,
                        {u: dict(d) for u, d in res.units.items()}, dict(res.counters),
                        time.perf_counter() - t0, ends_at)
    return rec, stats, events


assert UNIT_NAMES[1:] == ("load", "matrix", "vector", "store")  # the units _UNIT_OF names
