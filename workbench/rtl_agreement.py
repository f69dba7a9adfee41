"""The RTL checked against the other two models of the core: values against the functional model,
cycles and event counters against the simulator.

It lives above both `rtl/` and `sim/` (neither may import the other). The simulator runs first: a
program it rejects (a deadlock, a race) is reported at once, as `workbench sim run` reports it, before
any Verilator build, and its cycle count bounds the RTL run.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from isa.design import Design, load_design
from isa.encoding import Instr, from_bytes
from isa.functional import check_program
from isa.functional import run as functional_run
from rtl.randprog import random_program
from rtl.run import Progress, check_fits, dram_image_for, run_core
from sim.simulator import simulate


def default_max_cycles(sim_cycles: int) -> int:
    """The RTL's cycle budget when none is given: twice the simulator's count plus slack for start-up."""
    return 2 * sim_cycles + 1000


@dataclass
class RTLRun:
    """One program on the RTL, with the reference results it is checked against."""

    design: str
    instructions: int
    rtl_cycles: int | None
    sim_cycles: int
    finished: bool
    max_cycles: int
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
        return self.finished and self.cycles_match and self.values_match and self.counters_match

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("dram")
        d["ok"] = self.ok
        return d


def _program_list(program: list[Instr] | bytes) -> list[Instr]:
    return from_bytes(bytes(program)) if isinstance(program, (bytes, bytearray)) else list(program)


def run_on_rtl(design: Design | str, program: list[Instr] | bytes, dram_image: np.ndarray | bytes | None = None,
               max_cycles: int | None = None, vcd: str | Path | None = None,
               progress: Progress | None = None) -> RTLRun:
    """Run `program` on the RTL; compare final DRAM with the functional model, cycles and counters with the simulator.

    Raises what the simulator raises for a program it rejects (ExecutionError, DeadlockError, RaceError)
    before building anything. `max_cycles`: stop the RTL there (default `default_max_cycles(sim cycles)`).
    `vcd`: also write the waveform there. `progress` is told each step as it starts.
    """
    design = load_design(design) if isinstance(design, str) else design
    if max_cycles is not None and max_cycles < 1:
        raise ValueError(f"max_cycles must be at least 1, not {max_cycles}")
    instrs = check_program(design, _program_list(program))
    finish = next(i for i, ins in enumerate(instrs) if ins.mnemonic == "finish")
    instrs = instrs[:finish + 1]
    check_fits(instrs)
    image = dram_image_for(design, dram_image)
    if progress:
        progress("simulating (reference cycles and counters)")
    sim = simulate(design, instrs, image, values=False, check_races=True)
    ref = functional_run(design, instrs, image)
    limit = max_cycles if max_cycles is not None else default_max_cycles(sim.cycles)
    rtl = run_core(design, instrs, image, limit, vcd=vcd, progress=progress)
    if progress:
        progress("comparing with the functional model and the simulator")
    mism = []
    sim_counters = {k: int(v) for k, v in sim.counters.items()}
    if not rtl.finished:
        mism.append(f"RTL did not finish in {limit} cycles (the simulator finishes in {sim.cycles})")
        values_match = cycles_match = counters_match = False
    else:
        values_match = bool(np.array_equal(rtl.dram, ref.dram))
        if not values_match:
            diff = np.nonzero(rtl.dram != ref.dram)[0]
            mism.append(f"DRAM differs at {diff.size} bytes, first at {int(diff[0])}: "
                        f"rtl {int(rtl.dram[diff[0]])} vs functional {int(ref.dram[diff[0]])}")
        cycles_match = rtl.cycles == sim.cycles
        if not cycles_match:
            mism.append(f"cycles: rtl {rtl.cycles} vs sim {sim.cycles}")
        counters_match = all(rtl.counters.get(k) == v for k, v in sim_counters.items())
        if not counters_match:
            bad = {k: (rtl.counters.get(k), v) for k, v in sim_counters.items() if rtl.counters.get(k) != v}
            mism.append(f"counters (rtl, sim): {bad}")
        sim_units = {k: dict(v) for k, v in sim.units.items()}
        if rtl.units != sim_units:
            counters_match = False
            bad = {k: (rtl.units.get(k), v) for k, v in sim_units.items() if rtl.units.get(k) != v}
            mism.append(f"units (rtl, sim): {bad}")
    return RTLRun(design=design.name, instructions=finish, rtl_cycles=rtl.cycles, sim_cycles=sim.cycles,
                  finished=rtl.finished, max_cycles=limit, cycles_match=cycles_match, values_match=values_match,
                  counters=rtl.counters, sim_counters=sim_counters, units=rtl.units, counters_match=counters_match,
                  build_seconds=rtl.build_seconds, build_cached=rtl.build_cached, run_seconds=rtl.run_seconds,
                  cycles_per_second=rtl.cycles_per_second, mismatch="; ".join(mism), window_ps=rtl.window_ps,
                  dram=rtl.dram)


def valid_random_program(design: Design, seed: int, tries: int = 50,
                         dense: bool = False) -> tuple[list[Instr], np.ndarray]:
    """A random program (`rtl.randprog`) the simulator accepts: no race, no deadlock, all fields in range.

    dense: rows contiguous in DRAM in most DMAs (`random_program`'s `dense`).
    """
    last_exc: Exception | None = None
    for t in range(tries):
        prog, image = random_program(design, seed * 1000 + t, dense=dense)
        try:
            simulate(design, prog, image, values=False, check_races=True)
        except Exception as exc:  # any rejection: draw again
            last_exc = exc
            continue
        return prog, image
    raise RuntimeError(f"no valid random program for seed {seed} in {tries} tries: {last_exc}")
