"""The SIM device: runs a schedule's kernels on a simulated design and keeps the run's record.

`realize()` on a `SIM` tensor runs each kernel through `backend_sim.SimBackend`, which appends the kernel's
record to the current run of its device.
`sim_run()` is a context manager that starts a fresh run and hands back its `SimRun` (cycles, per-kernel
cycles and utilization, per-unit busy/stall, DRAM bytes, event counters for the energy model, host ops,
the Perfetto trace); `take_run(device)` returns the run so far and starts a new one.

Two ways to time a run (`WB_SIM_PROGRAMS` or `sim_run(programs=...)`): "graph" (the default) simulates one
isa program per maximal run of accelerator kernels (`graph_program`), "kernel" one program per kernel (and
GEMM batch), back to back, as before; values are the same either way.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import DeviceError
from .graph_program import MAX_PENDING_BYTES, GraphCollector, ProgramRecord, simulate_segments
from .kernel_lowering import PROGRAM_SINK, HostOp, KernelRecord
from .sim_device import design_of

__all__ = ["SimRun", "sim_run", "take_run", "record", "tracing", "collector", "flush", "program_mode", "PROGRAM_MODES"]

PROGRAM_MODES = ("graph", "kernel")
PROGRAMS_ENV = "WB_SIM_PROGRAMS"


def program_mode(mode: str | None = None) -> str:
    """'graph' (one program per run of accelerator kernels) or 'kernel' (one per kernel): `mode`, else $WB_SIM_PROGRAMS."""
    got = mode if mode is not None else os.environ.get(PROGRAMS_ENV, "graph")
    if got not in PROGRAM_MODES:
        where = "sim_run(programs=...)" if mode is not None else f"${PROGRAMS_ENV}"
        raise DeviceError(f"{where} is {got!r}; use one of {', '.join(PROGRAM_MODES)}")
    return got


@dataclass
class SimRun:
    """A model's run on a simulated design: totals, per-kernel records, host ops; `to_json()` serializes it.

    mode "graph": each maximal run of accelerator kernels is one program (`graph_programs`), simulated once;
    `cycles` is the sum over those programs, and a kernel's `cycles` is its span in its program (the cycle before
    its first issue to its last completion), so spans of neighbouring kernels overlap and add up to more.
    mode "kernel": one program per kernel and batch, back to back; `cycles` is the sum of the kernels' cycles.
    Host ops are not timed by the simulator either way (see docs/accelerator_backend.md).
    """

    device: str
    design: str
    clock_hz: float
    peak_macs_per_cycle: int
    kernels: list[KernelRecord] = field(default_factory=list)
    trace_events: list[dict[str, Any]] = field(default_factory=list, repr=False)
    programs: list = field(default_factory=list, repr=False)  # (design, isa program, DRAM image) with keep_programs
    wall_seconds: float = 0.0
    mode: str = "graph"
    graph_programs: list[ProgramRecord] = field(default_factory=list)
    collector: GraphCollector | None = field(default=None, repr=False)
    trace: bool = field(default=False, repr=False)
    keep_programs: bool = field(default=False, repr=False)
    expected_results: list = field(default_factory=list, repr=False)  # graph mode with keep_programs: per program,
    # [(kernel, DRAM address, bytes)] each kernel's result must hold after that program ran (for replays)

    def flush(self, ends_at: str = "end of run") -> None:
        """Graph mode: simulate the pending accelerator kernels as one program and fill in their records."""
        coll = self.collector
        if coll is None or not coll.segments:
            return
        segments = list(coll.segments)
        coll.clear()
        offset = sum(p.cycles for p in self.graph_programs)
        keep = self.keep_programs
        prog, stats, events = simulate_segments(segments, trace=self.trace, sink=self.programs if keep else None,
                                                ends_at=ends_at, expected=self.expected_results if keep else None)
        index = len(self.graph_programs)
        self.graph_programs.append(prog)
        for e in events:
            e["ts"] += offset
        self.trace_events += events
        self.wall_seconds += prog.wall_seconds
        by_owner: dict[int, list[int]] = {}
        for si, seg in enumerate(segments):
            by_owner.setdefault(id(seg.owner), []).append(si)
        for ids in by_owner.values():
            rec = segments[ids[0]].owner
            # from the cycle before its first issue (its dispatch cycle, were it alone) to its last completion,
            # so a kernel alone in its program gets the program's cycles
            first = min(stats[i].first_issue for i in ids) - 1
            last = max(stats[i].last_cycle for i in ids)
            rec.cycles, rec.program, rec.start_cycle = last - first + 1, index, offset + first
            rec.units = {u: {"busy": sum(stats[i].busy[u] for i in ids),
                             "instructions": sum(stats[i].instructions[u] for i in ids)}
                         for u in stats[ids[0]].busy}
            counters: dict[str, int] = {}
            for i in ids:
                for key, v in stats[i].counters.items():
                    counters[key] = counters.get(key, 0) + v
            rec.counters = counters
            rec.dram_read_bytes, rec.dram_write_bytes = counters["dram_read_bytes"], counters["dram_write_bytes"]
            rec.utilization = rec.macs / (self.peak_macs_per_cycle * rec.cycles) if rec.cycles else 0.0

    @property
    def cycles(self) -> int:
        """Simulated cycles of the accelerator programs, run back to back (graph mode: one per run of kernels)."""
        if self.mode == "graph":
            self.flush()
            return sum(p.cycles for p in self.graph_programs)
        return sum(k.cycles for k in self.kernels)

    @property
    def kernel_cycles_sum(self) -> int:
        """Sum of the kernels' own cycles (kernel mode: equals `cycles`; graph mode: spans, which overlap)."""
        self.flush()
        return sum(k.cycles for k in self.kernels)

    @property
    def seconds(self) -> float:
        """Simulated time at the design's clock."""
        return self.cycles / self.clock_hz

    @property
    def macs(self) -> int:
        """Useful MACs the array did."""
        return sum(k.macs for k in self.kernels)

    @property
    def utilization(self) -> float:
        """Useful MACs over the array's peak during the accelerator cycles."""
        return self.macs / (self.peak_macs_per_cycle * self.cycles) if self.cycles else 0.0

    @property
    def dram_read_bytes(self) -> int:
        self.flush()
        return sum(k.dram_read_bytes for k in self.kernels)

    @property
    def dram_write_bytes(self) -> int:
        self.flush()
        return sum(k.dram_write_bytes for k in self.kernels)

    @property
    def host_ops(self) -> list[HostOp]:
        """Everything the design did not run, with FLOPs and bytes moved."""
        return [k.host for k in self.kernels if k.host is not None]

    @property
    def counters(self) -> dict[str, int]:
        """Event counters summed over all programs (input to the power model)."""
        out: dict[str, int] = {}
        if self.mode == "graph":
            self.flush()
            for p in self.graph_programs:
                for key, v in p.counters.items():
                    out[key] = out.get(key, 0) + v
            return out
        for k in self.kernels:
            for key, v in k.counters.items():
                out[key] = out.get(key, 0) + v
        return out

    @property
    def units(self) -> dict[str, dict[str, int]]:
        """Busy, stalled, idle cycles and instructions per unit, summed over programs."""
        out: dict[str, dict[str, int]] = {}
        if self.mode == "graph":
            self.flush()
            units = [p.units for p in self.graph_programs]
        else:
            units = [k.units for k in self.kernels]
        for per in units:
            for u, d in per.items():
                mine = out.setdefault(u, {})
                for key, v in d.items():
                    mine[key] = mine.get(key, 0) + v
        return out

    @property
    def flops(self) -> int:
        """FLOPs of all kernels (accelerator and host)."""
        return sum(k.flops for k in self.kernels)

    @property
    def host_flops(self) -> int:
        return sum(h.flops for h in self.host_ops)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-serializable dict (no trace events)."""
        self.flush()
        return {
            "device": self.device, "design": self.design, "provenance": "simulated", "program_mode": self.mode,
            "kernel_cycles_sum": self.kernel_cycles_sum,
            "programs": [asdict(p) for p in self.graph_programs],
            "cycles": self.cycles, "seconds": self.seconds, "macs": self.macs, "utilization": self.utilization,
            "flops": self.flops, "host_flops": self.host_flops,
            "dram_read_bytes": self.dram_read_bytes, "dram_write_bytes": self.dram_write_bytes,
            "host_layout_bytes": sum(k.host_layout_bytes for k in self.kernels),
            "units": self.units, "counters": self.counters,
            "kernels": [asdict(k) for k in self.kernels],
            "host_ops": [asdict(h) for h in self.host_ops],
            "wall_seconds": self.wall_seconds,
        }

    def write_trace(self, path: str) -> None:
        """The Perfetto/Chrome trace of every program, one after another on the unit tracks."""
        from sim.trace import write_trace

        write_trace(path, self.trace_events, self.design)


_runs: dict[str, SimRun] = {}
_trace = {"on": False}


def _new_run(device: str, mode: str | None = None) -> SimRun:
    d = design_of(device)
    mode = program_mode(mode)
    return SimRun(device, d.name, d.chip.clock_hz, d.matrix.rows * d.matrix.cols, mode=mode,
                  collector=GraphCollector() if mode == "graph" else None)


def take_run(device: str = "SIM") -> SimRun:
    """The run recorded on `device` since the last take_run, and start a new one."""
    run = _runs.pop(device, None)
    if run is None:
        return _new_run(device)
    run.flush()
    return run


@contextlib.contextmanager
def sim_run(device: str = "SIM", trace: bool = False, keep_programs: bool = False, programs: str | None = None):
    """`with sim_run("SIM:small-int8-8x8") as run: model(x).realize()`: run holds what was simulated.

    trace: record Perfetto events; keep_programs: keep every isa program with its DRAM image (run.programs),
    e.g. to replay them on the RTL; programs: "graph" (one program per run of accelerator kernels, the default)
    or "kernel" (one per kernel), default $WB_SIM_PROGRAMS."""
    from ..device import canonicalize

    device = canonicalize(device)
    _runs.pop(device, None)
    run = _new_run(device, programs)
    run.trace, run.keep_programs = trace, keep_programs
    _runs[device] = run
    old, _trace["on"] = _trace["on"], trace
    old_sink = PROGRAM_SINK["programs"]
    if keep_programs:
        PROGRAM_SINK["programs"] = run.programs
    try:
        yield run
        run.flush()
    finally:
        _trace["on"] = old
        PROGRAM_SINK["programs"] = old_sink
        if _runs.get(device) is run:
            _runs.pop(device)


def tracing() -> bool:
    """Whether the current sim_run asked for trace events."""
    return _trace["on"]


def flush(device: str, ends_at: str) -> None:
    """Graph mode: simulate device's pending accelerator kernels now, as one program."""
    run = _runs.get(device)
    if run is not None:
        run.flush(ends_at)


def collector(device: str) -> GraphCollector | None:
    """The pending program of device's run in graph mode (None in kernel mode)."""
    run = _runs.get(device)
    if run is None:
        run = _runs[device] = _new_run(device)
    return run.collector


def record(device: str, rec: KernelRecord, events: list, wall_seconds: float, out_buffer: Any = None) -> None:
    """Append one kernel's record (and its trace events, placed after the run so far) to device's run.

    Graph mode: a kernel (or epilogue) on the host ends the pending program; an accelerator kernel's output
    buffer is remembered so that later kernels' loads of it wait for its stores."""
    run = _runs.setdefault(device, _new_run(device))
    if run.mode == "graph":
        if rec.unit == "host":
            run.flush(f"host op {rec.name}")
        run.kernels.append(rec)
        run.wall_seconds += wall_seconds
        if rec.host is not None:
            run.flush(f"host op {rec.host.kernel}")
        elif run.collector is not None and out_buffer is not None:
            run.collector.mark_written(out_buffer)
            if run.collector.image_bytes > MAX_PENDING_BYTES:
                run.flush("pending DRAM image limit")
        return
    start = run.cycles
    for e in events:
        e["ts"] += start
    run.trace_events += events
    run.kernels.append(rec)
    run.wall_seconds += wall_seconds
