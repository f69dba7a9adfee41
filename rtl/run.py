"""Run ISA programs on the RTL core (Verilator + cocotb): build the model, run the bench, read back DRAM.

This is the RTL alone; checking its results against the functional model and the simulator is
`workbench.rtl_agreement` (it needs `sim`, a layer beside `rtl`).
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from isa.design import Design
from isa.encoding import Instr, encode
from isa.errors import UserError
from rtl import verilator
from rtl.params import COUNTERS, IMEM_WORDS, UNIT_COUNTERS, UNITS

_VERILOG: dict[tuple[str, int], str] = {}

# A callback told the name of each step as it starts (the CLI shows it with the elapsed time).
Progress = Callable[[str], None]


class ProgramTooLargeError(UserError):
    """The program does not fit the RTL's instruction memory."""


def core_verilog(design: Design, imem_words: int = IMEM_WORDS) -> str:
    """Verilog of the core for `design` (memoized per design file and instruction-memory size)."""
    from rtl.core import Core

    key = (design.source + "|" + design.name + repr(design), imem_words)
    if key not in _VERILOG:
        _VERILOG[key] = verilator.to_verilog(Core(design, imem_words), "top")
    return _VERILOG[key]


def build_core(design: Design, imem_words: int = IMEM_WORDS, trace: bool = False) -> verilator.Build:
    """The Verilator model of the core (built once per design, cached on disk); `trace` adds VCD dumping."""
    return verilator.build(core_verilog(design, imem_words), "top", trace=trace)


def is_core_cached(design: Design, imem_words: int = IMEM_WORDS, trace: bool = False) -> bool:
    """Whether the Verilator model of `design` is already built (so `build_core` returns at once)."""
    return verilator.is_cached(core_verilog(design, imem_words), "top", trace=trace)


@dataclass
class CoreRun:
    """What the RTL did with one program: cycles, event and per-unit counters, final DRAM, timings."""

    finished: bool
    cycles: int | None  # the core's cycle count at FINISH; None when it did not finish
    max_cycles: int
    counters: dict[str, int]
    units: dict[str, dict[str, int]]
    build_seconds: float
    build_cached: bool
    run_seconds: float
    cycles_per_second: float
    window_ps: tuple[int, int] | None = None  # simulation time of cycle 1 .. FINISH (for waveforms)
    dram: np.ndarray | None = field(default=None, repr=False)


def units_table(raw: dict[str, int], cycles: int) -> dict[str, dict[str, int]]:
    """The simulator's `units` table (busy, stalled, idle, instructions per unit) from the core's counters."""
    if not raw:
        return {}
    out = {"fetch": {"busy": raw["fetch_instructions"], "stalled": raw["fetch_last_dispatch"] - raw["fetch_instructions"],
                     "instructions": raw["fetch_instructions"]}}
    for u in UNITS:
        out[u] = {"busy": raw[f"{u}_busy"], "stalled": raw[f"{u}_stalled"], "instructions": raw[f"{u}_instructions"]}
    return {k: {"busy": v["busy"], "stalled": v["stalled"], "idle": max(0, cycles - v["busy"] - v["stalled"]),
                "instructions": v["instructions"]} for k, v in out.items()}


def dram_image_for(design: Design, dram_image: np.ndarray | bytes | None) -> np.ndarray:
    """The design's whole DRAM with `dram_image` at address 0 (zeros elsewhere)."""
    image = np.zeros(design.memory.dram_bytes, dtype=np.uint8)
    if dram_image is not None:
        src = np.frombuffer(bytes(dram_image), dtype=np.uint8) if isinstance(dram_image, (bytes, bytearray)) \
            else np.asarray(dram_image, dtype=np.uint8).reshape(-1)
        image[:src.size] = src
    return image


def check_fits(instrs: list[Instr], imem_words: int = IMEM_WORDS) -> None:
    """Raise ProgramTooLargeError when the program (up to FINISH) exceeds the instruction memory."""
    if len(instrs) > imem_words:
        raise ProgramTooLargeError(f"the program has {len(instrs)} instructions; the RTL's instruction memory "
                                   f"holds {imem_words} (split the program or shorten its loops)")


def run_core(design: Design, instrs: list[Instr], dram_image: np.ndarray | bytes | None, max_cycles: int,
             vcd: str | Path | None = None, progress: Progress | None = None) -> CoreRun:
    """Run `instrs` (checked, ending with FINISH) on the core until FINISH or `max_cycles` core cycles.

    `vcd`: also write the waveform there (uses a separately built, traced model).
    """
    check_fits(instrs)
    if progress:
        progress("generating the core's Verilog")
        cached = is_core_cached(design, trace=vcd is not None)
        progress("Verilator model: in the build cache" if cached else "building the Verilator model (minutes)")
    built = build_core(design, trace=vcd is not None)
    image = dram_image_for(design, dram_image)
    used = int(np.nonzero(image)[0][-1]) + 1 if image.any() else 0
    if progress:
        progress("running the program on the RTL" + (" (writing a waveform)" if vcd else ""))
    with tempfile.TemporaryDirectory(prefix="wb-rtl-run-") as d:
        din, dout = Path(d) / "dram_in.bin", Path(d) / "dram_out.bin"
        image[:used].tofile(din)
        # The bench counts the cycle in which `done` becomes visible, one after the core's FINISH cycle.
        job = {"program": [f"{encode(i):x}" for i in instrs], "dram_in": str(din), "dram_out": str(dout),
               "dram_bytes": design.memory.dram_bytes, "bw": design.memory.dram_bandwidth_bytes_per_cycle,
               "lat": design.memory.dram_latency_cycles, "merge": design.memory.dram_burst_merge,
               "posted": design.memory.dram_posted_stores,
               "max_cycles": max_cycles + 1,
               "counters": list(COUNTERS), "unit_counters": list(UNIT_COUNTERS)}
        t0 = time.monotonic()
        res = verilator.run_bench(built, "rtl.bench_core", job, vcd=vcd)
        run_s = time.monotonic() - t0
        final = np.fromfile(dout, dtype=np.uint8)
    cycles = res.get("cycles") if res.get("done") else None
    return CoreRun(finished=bool(res.get("done")), cycles=cycles, max_cycles=max_cycles, counters=res["counters"],
                   units=units_table(res.get("units", {}), cycles or 0), build_seconds=built.build_seconds,
                   build_cached=built.cached, run_seconds=run_s,
                   cycles_per_second=res.get("bench_cycles", 0) / max(res.get("wall_seconds", 1e-9), 1e-9),
                   window_ps=(res.get("t_start_ps"), res.get("t_end_ps")), dram=final)
