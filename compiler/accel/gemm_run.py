"""Running a generated GEMM on the simulator: `run_gemm` (given operands) and `simulate_gemm` (random, verified)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from compiler.accel.gemm_lowering import (
    Epilogue,
    GemmSizeError,
    check_gemm_size,
    gemm_design,
    gemm_program,
    operand_bytes,
)
from compiler.accel.graph_program import GraphCollector, execute, next_first_half
from isa.design import DTYPE_BYTES, Design
from isa.functional import round_to_input
from sim.simulator import SimResult, simulate

__all__ = ["GemmResult", "run_gemm", "simulate_gemm", "float_gemm_matches"]


@dataclass
class GemmResult:
    """A simulated GEMM: the simulator's result plus the problem and whether C matched numpy."""

    m: int
    n: int
    k: int
    rows: int
    cols: int
    dataflow: str
    sim: SimResult
    verified: bool | None  # C == numpy's A @ B (None: timing only)
    instructions: int

    @property
    def cycles(self) -> int:
        """Total cycles."""
        return self.sim.cycles

    @property
    def macs(self) -> int:
        """Useful multiply-accumulates: M * N * K."""
        return self.m * self.n * self.k

    @property
    def utilization(self) -> float:
        """Useful MACs over the array's peak in the same cycles."""
        return self.macs / (self.rows * self.cols * self.cycles)

    @property
    def dram_read_bytes(self) -> int:
        """DRAM bytes read."""
        return self.sim.dram_read_bytes

    @property
    def dram_write_bytes(self) -> int:
        """DRAM bytes written."""
        return self.sim.dram_write_bytes

    @property
    def units(self) -> dict[str, dict[str, int]]:
        """Busy, stalled and idle cycles per unit."""
        return self.sim.units

    @property
    def counters(self) -> dict[str, int]:
        """Event counters for the energy model (array MACs include zero padding)."""
        return self.sim.counters

    def to_json(self) -> dict[str, Any]:
        """JSON-serializable summary."""
        out = self.sim.to_json()
        out.update({"m": self.m, "n": self.n, "k": self.k, "rows": self.rows, "cols": self.cols,
                    "dataflow": self.dataflow, "cycles": self.cycles, "macs": self.macs,
                    "utilization": self.utilization, "array_macs": self.sim.macs,
                    "verified": self.verified, "program_instructions": self.instructions})
        return out


def run_gemm(design: Design, a: np.ndarray, b: np.ndarray, ideal_memory: bool = False,
             overlap: bool | None = None, trace: bool = False, sink: list | None = None,
             epilogue: Epilogue | None = None, operands: tuple = (), collector: GraphCollector | None = None,
             owner: object = None, fresh: tuple[bool, bool] = (False, False)
             ) -> tuple[np.ndarray, SimResult | None, int]:
    """Simulate C = a @ b on `design` with these operands; returns C, the result and the program length.

    The simulated address space grows to fit the operands (the design's `dram_bytes` bounds programs,
    not the data a caller brings). `sink`: append (design, program, DRAM image) for replay (e.g. on the RTL).
    `epilogue`/`operands`: vector ops on each output block before its store (C comes back transformed).
    `collector`: keep the program as a segment of the run's single program (values from the functional model,
    result None); `fresh` says whether A and B hold values an earlier kernel of that program computed.
    """
    m, k = a.shape
    n = b.shape[1]
    first = next_first_half(collector.segments) if collector is not None else 0
    gp = gemm_program(design, m, n, k, whole_k=ideal_memory, epilogue=epilogue, first_half=first)
    if gp.dram_bytes > design.memory.dram_bytes:
        design = design.replace(memory=dataclasses.replace(design.memory, dram_bytes=gp.dram_bytes))
        gp = dataclasses.replace(gp, design=design)
    image = gp.dram_image(a, b, operands)
    if collector is not None and not ideal_memory and overlap is None:
        a_bytes, b_bytes = operand_bytes(design, m, n, k)
        spans = ((gp.a_addr, gp.a_addr + a_bytes), (gp.b_addr, gp.b_addr + b_bytes))
        waits = tuple(r for r, f in zip(spans, fresh, strict=True) if f)
        c_bytes = m * n * DTYPE_BYTES[gp.c_dtype]
        dram, _ = execute(design, gp.program, image, collector=collector, owner=owner, waits=waits,
                          output=(gp.c_addr, gp.c_addr + c_bytes))
        return gp.read_c(dram), None, len(gp.program)
    if sink is not None:
        sink.append((design, gp.program, image))
    result = simulate(design, gp.program, image, ideal_memory=ideal_memory, overlap=overlap, trace=trace)
    return gp.read_c(result.state.dram), result, len(gp.program)


def float_gemm_matches(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    """True when every element of the simulated C is within fp32 summation's error bound of the exact A @ B.

    Any order of summing k products in fp32 (the accumulator) is off by at most gamma_k * sum |a_i b_i|,
    gamma_k = k u / (1 - k u), u = 2^-24 (Higham, Accuracy and Stability of Numerical Algorithms, 3.1), so
    the bound follows the magnitudes summed, not the result: a C that cancels to near zero still verifies,
    and a wrong, missing or doubled tile (an error of the size of whole products) does not.
    """
    k = a.shape[1]
    u = float(np.finfo(np.float32).eps) / 2
    gamma = k * u / (1 - k * u)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    bound = gamma * (np.abs(a64) @ np.abs(b64))
    return bool(np.all(np.abs(c.astype(np.float64) - a64 @ b64) <= bound))


def simulate_gemm(m: int, n: int, k: int, design: Design | str | None = None, rows: int | None = None,
                  cols: int | None = None, dataflow: str | None = None, ideal_memory: bool = False,
                  overlap: bool | None = None, values: bool = True, seed: int = 0,
                  trace: bool = False) -> GemmResult:
    """Generate, simulate and (with values) verify C = A x B against numpy on random operands."""
    for name, value in (("m", m), ("n", n), ("k", k), ("rows", rows), ("cols", cols)):
        # a design passed first, or a float size, would otherwise fail deep inside in a TypeError
        if (value is not None or name in ("m", "n", "k")) and (
                isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            got = repr(value) if isinstance(value, (int, float, np.number)) else f"a {type(value).__name__}"
            raise GemmSizeError(f"simulate_gemm: {name} = {got} must be a whole number >= 1; "
                                f"call simulate_gemm(m, n, k, design)")
    d = gemm_design(design, rows, cols, dataflow, m, n, k, ideal_memory)
    check_gemm_size(d, m, n, k)  # before allocating operands
    verified = None
    if values:
        rng = np.random.default_rng(seed)
        if d.is_float:
            a = round_to_input(rng.standard_normal((m, k)).astype(np.float32), d.matrix.input_dtype)
            b = round_to_input(rng.standard_normal((k, n)).astype(np.float32), d.matrix.input_dtype)
        else:
            a = rng.integers(-128, 128, (m, k), dtype=np.int8)
            b = rng.integers(-128, 128, (k, n), dtype=np.int8)
        c, result, instructions = run_gemm(d, a, b, ideal_memory=ideal_memory, overlap=overlap, trace=trace)
        if d.is_float:
            verified = float_gemm_matches(c, a, b)
        else:
            verified = bool(np.array_equal(c, a.astype(np.int64) @ b.astype(np.int64)))
    else:
        gp = gemm_program(d, m, n, k, whole_k=ideal_memory)
        if gp.dram_bytes > d.memory.dram_bytes:  # the panel layout pads M and N to whole tiles
            d = d.replace(memory=dataclasses.replace(d.memory, dram_bytes=gp.dram_bytes))
        result = simulate(d, gp.program, None, ideal_memory=ideal_memory, overlap=overlap, values=False,
                          trace=trace)
        instructions = len(gp.program)
    return GemmResult(m, n, k, d.matrix.rows, d.matrix.cols, d.matrix.dataflow, result, verified, instructions)
