"""GEMM programs: tile C = A x B of any M, N, K onto a design as a double-buffered ISA program, and simulate it.

DRAM layout (bytes, each matrix row-major, 64-byte aligned): OS designs take A transposed (`AT`, K x M),
since the output-stationary array consumes one column of A per cycle; WS designs take A (M x K). B is
K x N, C is M x N in the accumulator dtype (int32 / fp32).

Double buffering: the scratchpad and the accumulator are each split in two halves (in different banks),
used alternately by consecutive load groups / output panels; tokens order load -> gemm -> store and
hand buffers back (docs/timing.md). A `gemm` with `repeat` covers a whole panel of output tiles.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from isa.design import DEFAULT_DESIGN, Design, ceil_div, load_design
from isa.encoding import Instr, make
from isa.functional import from_dram_bytes, round_to_input, to_dram_bytes
from isa.instructions import INSTRUCTIONS
from sim.simulator import SimResult, simulate

__all__ = ["GemmProgram", "gemm_program", "simulate_gemm", "GemmResult", "gemm_design", "MAX_STREAM"]

MAX_STREAM = INSTRUCTIONS["gemm"].field("k").max  # longest stream of one gemm
MAX_REPEAT = INSTRUCTIONS["gemm"].field("repeat").max + 1  # iterations of one gemm
MAX_DMA_ROWS = INSTRUCTIONS["load"].field("rows").max  # rows of one load or store; longer ones are split
MAX_SP_ROWS = INSTRUCTIONS["gemm"].field("a").max + 1  # scratchpad rows a gemm can address
MAX_ACC_ROWS = INSTRUCTIONS["gemm"].field("c").max + 1


@dataclass
class GemmProgram:
    """A generated program and where its operands live in DRAM."""

    design: Design
    m: int
    n: int
    k: int
    program: list[Instr]
    a_addr: int  # AT (OS) or A (WS)
    b_addr: int
    c_addr: int
    dram_bytes: int  # bytes of DRAM the operands need

    def dram_image(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """DRAM bytes holding A (transposed for OS) and B in the design's input dtype."""
        dtype = self.design.matrix.input_dtype
        image = np.zeros(self.dram_bytes, dtype=np.uint8)
        a_src = a.T if self.design.matrix.dataflow == "os" else a
        raw_a = to_dram_bytes(np.ascontiguousarray(a_src), dtype)
        raw_b = to_dram_bytes(np.ascontiguousarray(b), dtype)
        image[self.a_addr:self.a_addr + raw_a.size] = raw_a
        image[self.b_addr:self.b_addr + raw_b.size] = raw_b
        return image

    def read_c(self, dram: np.ndarray) -> np.ndarray:
        """The M x N result from a final DRAM image."""
        nbytes = self.m * self.n * self.design.acc_bytes
        return from_dram_bytes(dram[self.c_addr:self.c_addr + nbytes], self.design.matrix.acc_dtype) \
            .reshape(self.m, self.n)


def _align(x: int) -> int:
    return ceil_div(x, 64) * 64


@dataclass
class _Group:
    loads: list[dict[str, Any]]
    gemms: list[dict[str, Any]]
    panel: int
    first_in_panel: bool
    stores: list[dict[str, Any]] = field(default_factory=list)  # set on the last group of a panel


def _split_dma(dmas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DMAs with more rows than the rows field holds, as several; tokens stay on the first and last."""
    out = []
    for x in dmas:
        if x["rows"] <= MAX_DMA_ROWS:
            out.append(x)
            continue
        parts = []
        for r0 in range(0, x["rows"], MAX_DMA_ROWS):
            part = {key: v for key, v in x.items() if not key.startswith(("pop", "push", "pad"))}
            part.update(sram=x["sram"] + r0, dram=x["dram"] + r0 * x["stride"], rows=min(MAX_DMA_ROWS, x["rows"] - r0))
            parts.append(part)
        parts[-1]["pad"] = x.get("pad", 0)
        for key in ("pop_prev", "pop_next"):
            if x.get(key):
                parts[0][key] = 1
        for key in ("push_prev", "push_next"):
            if x.get(key):
                parts[-1][key] = 1
        out += parts
    return out


def _emit(groups: list[_Group]) -> list[Instr]:
    """Instructions of the groups with the double-buffering tokens."""
    prog: list[Instr] = []
    for g, grp in enumerate(groups):
        loads = [dict(x) for x in grp.loads]
        gemms = [dict(x) for x in grp.gemms]
        if g >= 2:
            loads[0]["pop_next"] = 1  # scratchpad half free again (gemm of group g - 2 done)
        loads[-1]["push_next"] = 1
        gemms[0]["pop_prev"] = 1
        gemms[-1]["push_prev"] = 1
        if grp.first_in_panel and grp.panel >= 2:
            gemms[0]["pop_next"] = 1  # accumulator half free again (stores of panel - 2 done)
        if grp.stores:
            gemms[-1]["push_next"] = 1
            stores = [dict(x) for x in grp.stores]
            stores[0]["pop_prev"] = 1
            stores[-1]["push_prev"] = 1
        else:
            stores = []
        prog += [make(x.pop("op"), **x) for x in _split_dma(loads) + gemms + _split_dma(stores)]
    prog.append(make("finish"))
    return prog


def gemm_program(design: Design, m: int, n: int, k: int) -> GemmProgram:
    """Tile an M x K by K x N GEMM onto `design` (ragged sizes zero-padded by the loads)."""
    if min(m, n, k) < 1:
        raise ValueError(f"GEMM sizes must be >= 1, got m={m} n={n} k={k}")
    rows, cols = design.matrix.rows, design.matrix.cols
    ib, ab = design.input_bytes, design.acc_bytes
    a_addr = 0
    b_addr = _align(m * k * ib)
    c_addr = _align(b_addr + k * n * ib)
    dram_bytes = _align(c_addr + m * n * ab)
    sp_half = design.scratchpad_rows // 2
    acc_half = design.accumulator_rows // 2
    n_tiles = ceil_div(n, cols)
    groups: list[_Group] = []
    panel = 0
    if design.matrix.dataflow == "os":
        kc = min(k, MAX_STREAM, sp_half // 2)
        per_panel = max(1, min(n_tiles, sp_half // kc - 1, acc_half // rows, MAX_REPEAT))
        resident: list[tuple[int, int] | None] = [None, None]  # B panel held by each scratchpad half
        for j0 in range(0, n_tiles, per_panel):
            tiles = range(j0, min(n_tiles, j0 + per_panel))
            for i0 in range(0, m, rows):
                mr = min(rows, m - i0)
                acc_base = (panel % 2) * acc_half
                for kk, k0 in enumerate(range(0, k, kc)):
                    kl = min(kc, k - k0)
                    half = len(groups) % 2
                    sp_base = half * sp_half
                    loads = [dict(op="load.sp", sram=sp_base, dram=a_addr + (k0 * m + i0) * ib, stride=m * ib,
                                  rows=kl, cols=mr)]
                    if resident[half] != (j0, k0):  # B stays put while only the A tiles change
                        resident[half] = (j0, k0)
                        for t, j in enumerate(tiles):
                            loads.append(dict(op="load.sp", sram=sp_base + kl * (t + 1),
                                              dram=b_addr + (k0 * n + j * cols) * ib, stride=n * ib, rows=kl,
                                              cols=min(cols, n - j * cols)))
                    gemm = dict(op="gemm", a=sp_base, b=sp_base + kl, c=acc_base, k=kl, repeat=len(tiles) - 1,
                                sb=kl, sc=rows, accumulate=int(kk > 0))
                    groups.append(_Group(loads, [gemm], panel, kk == 0))
                groups[-1].stores = [dict(op="store.acc", sram=acc_base + t * rows,
                                          dram=c_addr + (i0 * n + j * cols) * ab, stride=n * ab, rows=mr,
                                          cols=min(cols, n - j * cols)) for t, j in enumerate(tiles)]
                panel += 1
    else:
        k_tiles = ceil_div(k, rows)
        mc = min(m, MAX_STREAM, acc_half, sp_half - rows)
        per_group = max(1, min(k_tiles, sp_half // (mc + rows), MAX_REPEAT))
        resident = [None, None]  # A tiles held by each scratchpad half
        for m0 in range(0, m, mc):
            ml = min(mc, m - m0)
            for j in range(n_tiles):
                nc = min(cols, n - j * cols)
                acc_base = (panel % 2) * acc_half
                for gi, t0 in enumerate(range(0, k_tiles, per_group)):
                    kts = range(t0, min(k_tiles, t0 + per_group))
                    half = len(groups) % 2
                    sp_base = half * sp_half
                    b_base = sp_base + len(kts) * ml
                    b_rows = min(k, (t0 + len(kts)) * rows) - t0 * rows
                    loads = []
                    if resident[half] != (m0, t0):  # A stays put while only the weight tiles change
                        resident[half] = (m0, t0)
                        loads = [dict(op="load.sp", sram=sp_base + t * ml, dram=a_addr + (m0 * k + kt * rows) * ib,
                                      stride=k * ib, rows=ml, cols=min(rows, k - kt * rows))
                                 for t, kt in enumerate(kts)]
                    loads.append(dict(op="load.sp", sram=b_base, dram=b_addr + (t0 * rows * n + j * cols) * ib,
                                      stride=n * ib, rows=b_rows, cols=nc, pad=len(kts) * rows - b_rows))
                    gemms = []
                    first = 0
                    if gi == 0:  # the first K tile overwrites the accumulator rows, the rest accumulate
                        gemms.append(dict(op="gemm", a=sp_base, b=b_base, c=acc_base, k=ml, preload=1))
                        first = 1
                    if len(kts) > first:
                        gemms.append(dict(op="gemm", a=sp_base + first * ml, b=b_base + first * rows, c=acc_base,
                                          k=ml, preload=1, accumulate=1, repeat=len(kts) - first - 1, sa=ml,
                                          sb=rows))
                    groups.append(_Group(loads, gemms, panel, gi == 0))
                groups[-1].stores = [dict(op="store.acc", sram=acc_base, dram=c_addr + (m0 * n + j * cols) * ab,
                                          stride=n * ab, rows=ml, cols=nc)]
                panel += 1
    return GemmProgram(design, m, n, k, _emit(groups), a_addr, b_addr, c_addr, dram_bytes)


def gemm_design(design: Design | str | None = None, rows: int | None = None, cols: int | None = None,
                dataflow: str | None = None, m: int = 1, n: int = 1, k: int = 1,
                ideal_memory: bool = False) -> Design:
    """The design a GEMM runs on: overrides applied, SRAM rows kept (bytes scale with the array edge).

    With ideal memory, the scratchpad and accumulator grow so that each fold streams the whole
    reduction (OS) or all M rows (WS), up to the 65535-row `k` field, as SCALE-Sim assumes.
    """
    if design is None:
        design = DEFAULT_DESIGN
    d = load_design(design) if isinstance(design, str) else design
    if rows or cols or dataflow:
        mat = dataclasses.replace(d.matrix, rows=rows or d.matrix.rows, cols=cols or d.matrix.cols,
                                  dataflow=dataflow or d.matrix.dataflow)
        new_dim = max(mat.rows, mat.cols)
        mem = dataclasses.replace(d.memory, scratchpad_bytes=d.scratchpad_rows * new_dim * d.input_bytes,
                                  accumulator_bytes=max(d.accumulator_rows, 2 * new_dim) * new_dim * d.acc_bytes)
        if d.scratchpad_rows < 2 * new_dim:
            mem = dataclasses.replace(mem, scratchpad_bytes=2 * new_dim * new_dim * d.input_bytes)
        d = d.replace(matrix=mat, memory=mem)
    if ideal_memory:
        r = d.matrix.rows
        if d.matrix.dataflow == "os":
            need_sp = 2 * min(k, MAX_STREAM) * (1 + min(ceil_div(n, d.matrix.cols), MAX_REPEAT))
            need_acc = 2 * r * min(ceil_div(n, d.matrix.cols), MAX_REPEAT)
        else:
            mc = min(m, MAX_STREAM)
            need_sp = 2 * (mc + r) * ceil_div(k, r)
            need_acc = 2 * mc
        sp_rows = max(d.scratchpad_rows, min(_round_up(need_sp, d.memory.scratchpad_banks), MAX_SP_ROWS))
        acc_rows = max(d.accumulator_rows, min(_round_up(need_acc, d.memory.accumulator_banks), MAX_ACC_ROWS))
        mem = dataclasses.replace(d.memory, scratchpad_bytes=sp_rows * d.scratchpad_row_bytes,
                                  accumulator_bytes=acc_rows * d.accumulator_row_bytes)
        d = d.replace(memory=mem)
    return d


def _round_up(x: int, multiple: int) -> int:
    # keep each half a whole number of banks so the two buffers never share a bank
    return ceil_div(x, 2 * multiple) * 2 * multiple


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


def simulate_gemm(m: int, n: int, k: int, design: Design | str | None = None, rows: int | None = None,
                  cols: int | None = None, dataflow: str | None = None, ideal_memory: bool = False,
                  overlap: bool | None = None, values: bool = True, seed: int = 0,
                  trace: bool = False) -> GemmResult:
    """Generate, simulate and (with values) verify C = A x B against numpy on random operands."""
    d = gemm_design(design, rows, cols, dataflow, m, n, k, ideal_memory)
    gp = gemm_program(d, m, n, k)
    verified = None
    if values:
        if gp.dram_bytes > d.memory.dram_bytes:  # the simulated address space grows to fit the operands
            d = d.replace(memory=dataclasses.replace(d.memory, dram_bytes=gp.dram_bytes))
            gp = dataclasses.replace(gp, design=d)
        rng = np.random.default_rng(seed)
        if d.is_float:
            a = round_to_input(rng.standard_normal((m, k)).astype(np.float32), d.matrix.input_dtype)
            b = round_to_input(rng.standard_normal((k, n)).astype(np.float32), d.matrix.input_dtype)
        else:
            a = rng.integers(-128, 128, (m, k), dtype=np.int8)
            b = rng.integers(-128, 128, (k, n), dtype=np.int8)
        result = simulate(d, gp.program, gp.dram_image(a, b), ideal_memory=ideal_memory, overlap=overlap,
                          trace=trace)
        c = gp.read_c(result.state.dram)
        if d.is_float:
            ref = a.astype(np.float64) @ b.astype(np.float64)
            verified = bool(np.allclose(c, ref, rtol=1e-4, atol=1e-3 * np.sqrt(k)))
        else:
            verified = bool(np.array_equal(c, a.astype(np.int64) @ b.astype(np.int64)))
    else:
        result = simulate(d, gp.program, None, ideal_memory=ideal_memory, overlap=overlap, values=False,
                          trace=trace)
    return GemmResult(m, n, k, d.matrix.rows, d.matrix.cols, d.matrix.dataflow, result, verified,
                      len(gp.program))
