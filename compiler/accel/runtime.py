"""The SIM device: runs a schedule's kernels on a simulated design and keeps the run's record.

`realize()` on a `SIM` tensor runs each kernel through `backend_sim.SimBackend`, which appends the kernel's
record to the current run of its device.
`sim_run()` is a context manager that starts a fresh run and hands back its `SimRun` (cycles, per-kernel
cycles and utilization, per-unit busy/stall, DRAM bytes, event counters for the energy model, host ops,
the Perfetto trace); `take_run(device)` returns the run so far and starts a new one.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from typing import Any

from .kernel_lowering import PROGRAM_SINK, HostOp, KernelRecord
from .sim_device import design_of

__all__ = ["SimRun", "sim_run", "take_run", "record", "tracing"]


@dataclass
class SimRun:
    """A model's run on a simulated design: totals, per-kernel records, host ops; `to_json()` serializes it.

    Kernels run one after another (one program per kernel and batch, see docs/accelerator_backend.md), so
    `cycles` is the sum of the kernels' cycles; host ops are not timed by the simulator.
    """

    device: str
    design: str
    clock_hz: float
    peak_macs_per_cycle: int
    kernels: list[KernelRecord] = field(default_factory=list)
    trace_events: list[dict[str, Any]] = field(default_factory=list, repr=False)
    programs: list = field(default_factory=list, repr=False)  # (design, isa program, DRAM image) with keep_programs
    wall_seconds: float = 0.0

    @property
    def cycles(self) -> int:
        """Simulated cycles of the accelerator kernels, run back to back."""
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
        return sum(k.dram_read_bytes for k in self.kernels)

    @property
    def dram_write_bytes(self) -> int:
        return sum(k.dram_write_bytes for k in self.kernels)

    @property
    def host_ops(self) -> list[HostOp]:
        """Everything the design did not run, with FLOPs and bytes moved."""
        return [k.host for k in self.kernels if k.host is not None]

    @property
    def counters(self) -> dict[str, int]:
        """Event counters summed over all programs (input to the power model)."""
        out: dict[str, int] = {}
        for k in self.kernels:
            for key, v in k.counters.items():
                out[key] = out.get(key, 0) + v
        return out

    @property
    def units(self) -> dict[str, dict[str, int]]:
        """Busy, stalled, idle cycles and instructions per unit, summed over programs."""
        out: dict[str, dict[str, int]] = {}
        for k in self.kernels:
            for u, d in k.units.items():
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
        return {
            "device": self.device, "design": self.design, "provenance": "simulated",
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


def _new_run(device: str) -> SimRun:
    d = design_of(device)
    return SimRun(device, d.name, d.chip.clock_hz, d.matrix.rows * d.matrix.cols)


def take_run(device: str = "SIM") -> SimRun:
    """The run recorded on `device` since the last take_run, and start a new one."""
    run = _runs.pop(device, None)
    return run if run is not None else _new_run(device)


@contextlib.contextmanager
def sim_run(device: str = "SIM", trace: bool = False, keep_programs: bool = False):
    """`with sim_run("SIM:small-int8-8x8") as run: model(x).realize()`: run holds what was simulated.

    trace: record Perfetto events; keep_programs: keep every isa program with its DRAM image (run.programs),
    e.g. to replay them on the RTL."""
    from ..device import canonicalize

    device = canonicalize(device)
    _runs.pop(device, None)
    run = _new_run(device)
    _runs[device] = run
    old, _trace["on"] = _trace["on"], trace
    old_sink = PROGRAM_SINK["programs"]
    if keep_programs:
        PROGRAM_SINK["programs"] = run.programs
    try:
        yield run
    finally:
        _trace["on"] = old
        PROGRAM_SINK["programs"] = old_sink
        if _runs.get(device) is run:
            _runs.pop(device)


def tracing() -> bool:
    """Whether the current sim_run asked for trace events."""
    return _trace["on"]


def record(device: str, rec: KernelRecord, events: list, wall_seconds: float) -> None:
    """Append one kernel's record (and its trace events, placed after the run so far) to device's run."""
    run = _runs.setdefault(device, _new_run(device))
    start = run.cycles
    for e in events:
        e["ts"] += start
    run.trace_events += events
    run.kernels.append(rec)
    run.wall_seconds += wall_seconds
