"""Event-driven cycle-level simulator implementing docs/timing.md exactly.

Each step finds, for fetch and for the head of each queue, the earliest cycle at which it could act
given everything already scheduled, and performs the earliest of those actions (ties: fetch, compute,
store, load). Latencies are known at issue, so time jumps from event to event; idle cycles cost nothing.
"""
from __future__ import annotations

import bisect
import heapq
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from isa.counters import EVENT_COUNTERS, MACS_COUNTER
from isa.design import Design
from isa.encoding import Instr
from isa.errors import UserError
from isa.functional import ExecutionError, State, apply, check_program, dram_elem_bytes, new_state
from sim.trace import trace_event, write_trace
from sim.units import TOKEN_NAMES, UNIT_NAMES, Op, make_op

__all__ = ["simulate", "SimResult", "DeadlockError", "RaceError", "ExecutionError", "COUNTER_NAMES"]

NEVER = 1 << 62
# Event counters for the energy model (the MAC counter, isa.counters.MACS_COUNTER, is added per input dtype).
COUNTER_NAMES = EVENT_COUNTERS


class DeadlockError(UserError, RuntimeError):
    """No unit can ever issue again; the message names each stuck instruction and what it waits for."""


class RaceError(UserError, RuntimeError):
    """Two instructions touch the same memory without a token ordering them; the message names both."""


@dataclass
class SimResult:
    """Outcome of one simulation; `to_json()` gives the serializable part."""

    design: str
    cycles: int
    utilization: float  # array MACs / (ROWS * COLS * cycles)
    macs: int
    dram_read_bytes: int
    dram_write_bytes: int
    units: dict[str, dict[str, int]]  # busy / stalled / idle / instructions per unit
    counters: dict[str, int]
    seconds: float  # cycles / clock
    ideal_memory: bool
    overlap: bool
    values: bool  # False: timing only, memory contents were not computed
    wall_seconds: float
    state: State | None = field(default=None, repr=False)
    schedule: list[tuple[int, int, int, int]] = field(default_factory=list, repr=False)  # (pc, dispatch, issue, L)
    trace_events: list[dict[str, Any]] | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-serializable dict (no memory state, schedule or trace)."""
        return {"design": self.design, "cycles": self.cycles, "utilization": self.utilization, "macs": self.macs,
                "dram_read_bytes": self.dram_read_bytes, "dram_write_bytes": self.dram_write_bytes,
                "seconds": self.seconds, "units": self.units, "counters": self.counters,
                "ideal_memory": self.ideal_memory, "overlap": self.overlap, "values": self.values,
                "mode": "values and timing" if self.values else "timing only (memory contents not computed)",
                "wall_seconds": self.wall_seconds,
                "simulated_cycles_per_second": self.cycles / self.wall_seconds if self.wall_seconds else None}

    def write_trace(self, path: str) -> None:
        """Write the Perfetto/Chrome trace (needs `simulate(..., trace=True)`)."""
        if self.trace_events is None:
            raise ValueError("no trace recorded: simulate with trace=True")
        write_trace(path, self.trace_events, self.design)


def _conflict(fa: tuple, fb: tuple) -> bool:
    for space, lo, hi, wa in fa:
        for space_b, lo_b, hi_b, wb in fb:
            if space == space_b and (wa or wb) and lo < hi_b and lo_b < hi:
                return True
    return False


def simulate(design: Design, program: list[Instr] | bytes, dram_image: np.ndarray | bytes | None = None, *,
             ideal_memory: bool = False, overlap: bool | None = None, values: bool = True, trace: bool = False,
             check_races: bool | None = None) -> SimResult:
    """Simulate `program` on `design`; raises ExecutionError, DeadlockError or RaceError for a bad program.

    overlap: tile overlap in the matrix unit (default: the design's matrix.overlap_tiles).
    values: compute memory contents (result.state); False runs timing only.
    check_races: detect data races (default: same as values).
    """
    wall0 = time.perf_counter()
    program = check_program(design, program)
    overlap = design.matrix.overlap_tiles if overlap is None else overlap
    check_races = values if check_races is None else check_races
    finish_pc = next(pc for pc, i in enumerate(program) if i.mnemonic == "finish")
    counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
    macs_key = MACS_COUNTER[design.matrix.input_dtype]
    counters[macs_key] = 0
    memo: dict = {}
    ops = [make_op(design, program[pc], pc, ideal_memory, overlap, counters, check_races, memo)
           for pc in range(finish_pc)]
    n = len(ops)
    state = new_state(design, dram_image) if values else None
    depth = design.control.queue_depth

    qops: list[list[Op]] = [[], [], []]
    for op in ops:
        qops[op.queue].append(op)
    qlen = [len(q) for q in qops]
    qhead = [0, 0, 0]  # next entry to issue
    qcount = [0, 0, 0]  # entries dispatched
    qissue: list[list[int]] = [[], [], []]  # issue cycle per entry, in queue order
    disp = [0] * n
    issue = [0] * n
    push_times: list[list[int]] = [[], [], [], []]
    pops_done = [0, 0, 0, 0]
    pipe_free = vec_done = compute_done = port_free = 1
    # Load (0) and store (2) units: when the next DMA with rows > 0 may start (the previous one's transfer
    # beats are out and, for a load, its pad rows written), and when the previous DMA completed (completions
    # stay in order within a unit).
    dma_next = [1, 1, 1]
    dma_done = [1, 1, 1]
    max_requests = design.memory.dram_outstanding_requests
    requests: list[int] = []  # min-heap of the latest `max_requests` request ends (section 7)
    posted: list[tuple[int, int, int, int]] = []  # posted stores: (pc, dram lo, dram hi, arrival cycle)
    dma_busy = [[0] * 64, [0] * 64]  # per sram, per bank: busy until (exclusive) on the DMA side
    cmp_busy = [[0] * 64, [0] * 64]  # same, compute side
    last_busy = 0
    busy = [0] * 5
    stalled = [0] * 5
    busy_until = [0] * 5
    count = [0] * 5
    fpc = 0
    last_d = 0
    finish_d = -1
    if ideal_memory:  # fetch is free: everything is dispatched in cycle 0, queues unbounded
        qcount = qlen[:]
        fpc = n
        finish_d = 0
        depth = NEVER
    events: list[dict[str, Any]] | None = [] if trace else None
    inflight: list[Op] = []  # issued ops with a footprint, for race checks
    schedule: list[tuple[int, int, int, int]] = []
    stale = True
    tl = tc = ts = NEVER

    def head_time(q: int) -> int:
        h = qhead[q]
        if h >= qcount[q]:
            return NEVER
        op = qops[q][h]
        t = disp[op.pc] + 1
        if q != 1:
            t = max(t, dma_next[q] if op.uses_port else dma_done[q])
        elif op.is_gemm:
            t = max(t, pipe_free, vec_done)
        else:
            t = max(t, compute_done)
        for c in op.pops:
            times = push_times[c]
            if len(times) <= pops_done[c]:
                return NEVER
            t = max(t, times[pops_done[c]])
        if op.uses_port:
            t = max(t, port_free)
            if len(requests) == max_requests:  # every request slot is taken until the earliest of them ends
                t = max(t, requests[0])
            if posted and q == 0:
                t = _posted_store_wait(design, op, t, posted)
        if op.banks:
            other = cmp_busy if q != 1 else dma_busy
            for sram, bank in op.banks:
                if other[sram][bank] > t:
                    t = other[sram][bank]
        return t

    while True:
        # Fetch candidate.
        if finish_d >= 0:
            tf = NEVER
        elif fpc == n:
            tf = last_d + 1
        else:
            q = ops[fpc].queue
            j = qcount[q]
            tf = last_d + 1
            if j >= depth:
                k = j - depth
                tf = NEVER if qhead[q] <= k else max(tf, qissue[q][k] + 1)
        if stale:  # heads change only when something issues (or a queue gets a new head)
            tl, tc, ts = head_time(0), head_time(1), head_time(2)
            stale = False
        t = min(tf, tc, ts, tl)
        if t >= NEVER:
            if finish_d >= 0 and qhead == qlen:
                break
            raise DeadlockError(_deadlock_message(qops, qhead, qcount, push_times, pops_done, fpc, ops))
        if t == tf:
            if fpc == n:
                finish_d = t
            else:
                op = ops[fpc]
                disp[fpc] = t
                stalled[0] += t - last_d - 1
                busy[0] += 1
                q = op.queue
                qcount[q] += 1
                fpc += 1
                if qhead[q] == qcount[q] - 1:  # the queue was empty: it has a new head
                    if q == 0:
                        tl = head_time(0)
                    elif q == 1:
                        tc = head_time(1)
                    else:
                        ts = head_time(2)
            last_d = t
            continue
        q = 1 if t == tc else 2 if t == ts else 0
        op = qops[q][qhead[q]]
        qhead[q] += 1
        stale = True
        qissue[q].append(t)
        pc = op.pc
        issue[pc] = t
        if q != 1:  # a DMA completes no earlier than its unit's previous one
            op.latency = max(t + op.latency, dma_done[q]) - t
        end = t + op.latency
        for c in op.pops:
            pops_done[c] += 1
        for c in op.pushes:
            bisect.insort(push_times[c], end)
        if q != 1:
            dma_done[q] = end
            dma_next[q] = t + op.engine if op.uses_port else end
        elif op.is_gemm:
            pipe_free = t + op.occupancy
            compute_done = max(compute_done, end)
        else:
            vec_done = end
            compute_done = max(compute_done, end)
        if op.uses_port:
            port_free = t + op.beats
            heapq.heappush(requests, t + op.request)
            if len(requests) > max_requests:
                heapq.heappop(requests)
            if op.posted:
                posted[:] = [p for p in posted if p[3] > t]
                lo, hi = _dram_range(design, op)
                posted.append((pc, lo, hi, t + op.request))
                if t + op.request - 1 > last_busy:  # FINISH waits until the data has reached DRAM
                    last_busy = t + op.request - 1
        if op.banks:
            mine = cmp_busy if q == 1 else dma_busy
            for sram, bank in op.banks:
                if mine[sram][bank] < end:
                    mine[sram][bank] = end
        if end - 1 > last_busy:
            last_busy = end - 1
        u = op.unit
        ready = disp[pc] + 1
        bu = busy_until[u]
        if t > max(ready, bu):
            stalled[u] += t - max(ready, bu)
        if end > max(t, bu):
            busy[u] += end - max(t, bu)
            busy_until[u] = end
        count[u] += 1
        if check_races and op.foot:
            _check_race(op, t, inflight, qops, qhead, qcount, issue)
            inflight.append(op)
        if values:
            apply(design, state, op.instr)
        if events is not None:
            events.append(trace_event(u, op.instr.text, pc, t, op.latency))
        schedule.append((pc, disp[pc], t, op.latency))

    cycles = max(finish_d, last_busy, 1)
    macs = counters[macs_key]
    units = {name: {"busy": busy[i], "stalled": stalled[i], "idle": max(0, cycles - busy[i] - stalled[i]),
                    "instructions": count[i] if i else fpc}
             for i, name in enumerate(UNIT_NAMES)}
    wall = time.perf_counter() - wall0
    return SimResult(design=design.name, cycles=cycles,
                     utilization=macs / (design.matrix.rows * design.matrix.cols * cycles),
                     macs=macs, dram_read_bytes=counters["dram_read_bytes"],
                     dram_write_bytes=counters["dram_write_bytes"], units=units, counters=counters,
                     seconds=cycles / design.chip.clock_hz, ideal_memory=ideal_memory, overlap=overlap,
                     values=values, wall_seconds=wall, state=state, schedule=schedule, trace_events=events)


def _dram_range(design: Design, op: Op) -> tuple[int, int]:
    """DRAM bytes [first, end) a DMA touches (its bounding range, as in its race footprint)."""
    a = op.instr.args
    lo = a["dram"]
    return lo, lo + (a["rows"] - 1) * a["stride"] + a["cols"] * dram_elem_bytes(design, op.instr)


def _posted_store_wait(design: Design, op: Op, t: int, posted: list[tuple[int, int, int, int]]) -> int:
    """Earliest cycle >= t at which load `op` sees the data of every earlier posted store it overlaps."""
    lo, hi = _dram_range(design, op)
    for pc, s_lo, s_hi, arrival in posted:
        if pc < op.pc and arrival > t and lo < s_hi and s_lo < hi:
            t = arrival
    return t


def _check_race(op: Op, t: int, inflight: list[Op], qops: list[list[Op]], qhead: list[int],
                qcount: list[int], issue: list[int]) -> None:
    """Raise RaceError if an earlier instruction of another queue touching the same memory is unfinished."""
    keep = []
    for x in inflight:
        end = issue[x.pc] + x.latency
        if end > t:
            keep.append(x)
            if x.pc < op.pc and x.queue != op.queue and _conflict(x.foot, op.foot):
                raise RaceError(_race_message(x, op, f"still busy until cycle {end - 1}", t))
            if x.is_gemm and op.is_gemm and x.pc < op.pc:
                row = _partial_acc_overlap(x, op)
                if row is not None:
                    raise RaceError(_gemm_race_message(x, op, row, end, t))
    inflight[:] = keep
    for q in range(3):
        if q == op.queue:
            continue
        for x in qops[q][qhead[q]:qcount[q]]:
            if x.pc > op.pc:
                break
            if x.foot and _conflict(x.foot, op.foot):
                raise RaceError(_race_message(x, op, "not issued yet", t))


def _acc_blocks(op: Op) -> tuple[np.ndarray, int]:
    """First accumulator row written by each iteration of a gemm, and the rows each iteration writes."""
    a = op.instr.args
    lo, hi = next((lo, hi) for space, lo, hi, write in op.foot if space == "acc" and write)
    return lo + a["sc"] * np.arange(a["repeat"] + 1, dtype=np.int64), hi - lo - a["repeat"] * a["sc"]


def _partial_acc_overlap(x: Op, y: Op) -> int | None:
    """An accumulator row that an iteration of gemm x and one of gemm y both write from different first rows.

    Identical row blocks complete in program order (same skew, later entry) and disjoint ones do not
    interact; blocks that overlap partially can complete the later gemm's rows first (docs/timing.md, "Errors the simulator reports").
    """
    fx = next(f for f in x.foot if f[0] == "acc" and f[3])
    fy = next(f for f in y.foot if f[0] == "acc" and f[3])
    if fx[2] <= fy[1] or fy[2] <= fx[1]:
        return None
    sx, rx = _acc_blocks(x)
    sy, ry = _acc_blocks(y)
    d = sy[None, :] - sx[:, None]  # first row of y's block minus first row of x's
    bad = (d != 0) & (d < rx) & (d > -ry)
    if not bad.any():
        return None
    i, j = np.argwhere(bad)[0]
    return int(max(sx[i], sy[j]))


def _gemm_race_message(x: Op, y: Op, row: int, end: int, t: int) -> str:
    return (f"data race: gemm pc {y.pc} ({y.instr.text}) issues in cycle {t} while the earlier gemm pc {x.pc} "
            f"({x.instr.text}) is in flight until cycle {end - 1}, and their accumulator row blocks overlap "
            f"partially (both write row {row} from different first rows), so the matrix unit may complete the "
            "later gemm's rows first; use identical or disjoint row blocks, or let the first drain (a vec "
            "between them waits for it)")


def _race_message(x: Op, y: Op, why: str, t: int) -> str:
    return (f"data race: pc {y.pc} ({y.instr.text}) issues in cycle {t} while the earlier pc {x.pc} "
            f"({x.instr.text}) on the same memory is {why}; order them with a token")


def _deadlock_message(qops: list[list[Op]], qhead: list[int], qcount: list[int], push_times: list[list[int]],
                      pops_done: list[int], fpc: int, ops: list[Op]) -> str:
    stuck = []
    for q, name in ((0, "load"), (1, "compute"), (2, "store")):
        if qhead[q] < qcount[q]:
            op = qops[q][qhead[q]]
            need = [TOKEN_NAMES[c] for c in op.pops if len(push_times[c]) <= pops_done[c]]
            stuck.append(f"{name} queue head pc {op.pc} ({op.instr.text}) waits for a "
                         f"{' and a '.join(need)} token")
    if fpc < len(ops):
        stuck.append(f"fetch waits at pc {fpc} ({ops[fpc].instr.text}) for room in the full "
                     f"{('load', 'compute', 'store')[ops[fpc].queue]} queue")
    return "deadlock: " + "; ".join(stuck)
