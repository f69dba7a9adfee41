"""Run ISA programs on the RTL core (Verilator + cocotb) and compare with the functional model and simulator."""
from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from isa.design import Design, load_design
from isa.encoding import Instr, encode, from_bytes
from isa.functional import check_program
from isa.functional import run as functional_run
from rtl import verilator
from rtl.core import UNIT_COUNTERS

_VERILOG: dict[tuple[str, int], str] = {}
IMEM_WORDS = 1024


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


@dataclass
class RTLRun:
    """One program on the RTL, with the reference results it is checked against."""

    design: str
    instructions: int
    rtl_cycles: int | None
    sim_cycles: int
    cycles_match: bool
    values_match: bool
    counters: dict[str, int]
    sim_counters: dict[str, int]
    units: dict[str, dict[str, int]]
    counters_match: bool
    build_seconds: float
    build_cached: bool
    run_seconds: float
    cycles_per_second: float
    mismatch: str = ""
    window_ps: tuple[int, int] | None = None  # simulation time of cycle 1 .. FINISH (for waveforms)
    dram: np.ndarray | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.cycles_match and self.values_match and self.counters_match

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("dram")
        d["ok"] = self.ok
        return d


def _units(raw: dict[str, int], cycles: int) -> dict[str, dict[str, int]]:
    """The simulator's `units` table from the core's per-unit counters."""
    if not raw:
        return {}
    out = {"fetch": {"busy": raw["fetch_instructions"], "stalled": raw["fetch_last_dispatch"] - raw["fetch_instructions"],
                     "instructions": raw["fetch_instructions"]}}
    for u in ("load", "matrix", "vector", "store"):
        out[u] = {"busy": raw[f"{u}_busy"], "stalled": raw[f"{u}_stalled"], "instructions": raw[f"{u}_instructions"]}
    for v in out.values():
        v["idle"] = max(0, cycles - v["busy"] - v["stalled"])
    return {k: {"busy": v["busy"], "stalled": v["stalled"], "idle": v["idle"], "instructions": v["instructions"]}
            for k, v in out.items()}


def _program_list(program: list[Instr] | bytes) -> list[Instr]:
    return from_bytes(bytes(program)) if isinstance(program, (bytes, bytearray)) else list(program)


def run_on_rtl(design: Design | str, program: list[Instr] | bytes, dram_image: np.ndarray | bytes | None = None,
               max_cycles: int = 2_000_000, vcd: str | Path | None = None) -> RTLRun:
    """Run `program` on the RTL; compare final DRAM with the functional model and cycles with the simulator.

    `vcd`: also write the waveform there (uses a separately built, traced model).
    """
    from sim.simulator import simulate

    design = load_design(design) if isinstance(design, str) else design
    instrs = check_program(design, _program_list(program))
    finish = next(i for i, ins in enumerate(instrs) if ins.mnemonic == "finish")
    instrs = instrs[:finish + 1]
    if len(instrs) > IMEM_WORDS:
        raise ValueError(f"program of {len(instrs)} instructions exceeds the RTL's {IMEM_WORDS}-word instruction memory")
    built = build_core(design, trace=vcd is not None)
    image = np.zeros(design.memory.dram_bytes, dtype=np.uint8)
    if dram_image is not None:
        src = np.frombuffer(bytes(dram_image), dtype=np.uint8) if isinstance(dram_image, (bytes, bytearray)) \
            else np.asarray(dram_image, dtype=np.uint8).reshape(-1)
        image[:src.size] = src
    used = int(np.nonzero(image)[0][-1]) + 1 if image.any() else 0
    with tempfile.TemporaryDirectory(prefix="wb-rtl-run-") as d:
        din, dout = Path(d) / "dram_in.bin", Path(d) / "dram_out.bin"
        image[:used].tofile(din)
        job = {"program": [f"{encode(i):x}" for i in instrs], "dram_in": str(din), "dram_out": str(dout),
               "dram_bytes": design.memory.dram_bytes, "bw": design.memory.dram_bandwidth_bytes_per_cycle,
               "lat": design.memory.dram_latency_cycles, "max_cycles": max_cycles,
               "unit_counters": list(UNIT_COUNTERS)}
        t0 = time.monotonic()
        res = verilator.run_bench(built, "rtl.bench_core", job, vcd=vcd)
        run_s = time.monotonic() - t0
        final = np.fromfile(dout, dtype=np.uint8)
    ref = functional_run(design, instrs, image)
    sim = simulate(design, instrs, image, values=False, check_races=True)
    mism = []
    values_match = bool(np.array_equal(final, ref.dram))
    if not values_match:
        diff = np.nonzero(final != ref.dram)[0]
        mism.append(f"DRAM differs at {diff.size} bytes, first at {int(diff[0])}: "
                    f"rtl {int(final[diff[0]])} vs functional {int(ref.dram[diff[0]])}")
    rtl_cycles = res.get("cycles")
    cycles_match = rtl_cycles == sim.cycles
    if not res.get("done"):
        mism.append(f"RTL did not reach FINISH in {max_cycles} cycles")
    elif not cycles_match:
        mism.append(f"cycles: rtl {rtl_cycles} vs sim {sim.cycles}")
    sim_counters = {k: int(v) for k, v in sim.counters.items()}
    counters = res["counters"]
    counters_match = all(counters.get(k) == v for k, v in sim_counters.items())
    if not counters_match:
        bad = {k: (counters.get(k), v) for k, v in sim_counters.items() if counters.get(k) != v}
        mism.append(f"counters (rtl, sim): {bad}")
    units = _units(res.get("units", {}), rtl_cycles or 0)
    sim_units = {k: dict(v) for k, v in sim.units.items()}
    if units != sim_units:
        counters_match = False
        bad = {k: (units.get(k), v) for k, v in sim_units.items() if units.get(k) != v}
        mism.append(f"units (rtl, sim): {bad}")
    return RTLRun(design=design.name, instructions=finish, rtl_cycles=rtl_cycles, sim_cycles=sim.cycles,
                  cycles_match=cycles_match, values_match=values_match, counters=counters,
                  sim_counters=sim_counters, units=units, counters_match=counters_match, build_seconds=built.build_seconds,
                  build_cached=built.cached, run_seconds=run_s,
                  cycles_per_second=(res.get("bench_cycles", 0) / max(res.get("wall_seconds", 1e-9), 1e-9)),
                  mismatch="; ".join(mism), window_ps=(res.get("t_start_ps"), res.get("t_end_ps")), dram=final)
