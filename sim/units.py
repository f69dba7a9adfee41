"""Static timing of each instruction on a design: the latency, occupancy, resources and events of docs/timing.md.

Every address in the ISA is an immediate, so all of this is known before simulation starts; the
simulator only decides *when* each instruction issues.
"""
from __future__ import annotations

from dataclasses import dataclass

from isa.counters import C2L, C2S, L2C, MACS_COUNTER, S2C, TOKEN_NAMES
from isa.design import Design, ceil_div
from isa.encoding import Instr
from isa.functional import dma_beats, dram_elem_bytes, footprint
from isa.instructions import VECTOR_OPS, VECTOR_SHIFT_IMM, VECTOR_UNARY

__all__ = ["Op", "make_op", "QUEUE_INDEX", "UNIT_NAMES", "L2C", "C2L", "C2S", "S2C", "TOKEN_NAMES",
           "gemm_iteration_timing"]

QUEUE_INDEX = {"load": 0, "compute": 1, "store": 2}
UNIT_NAMES = ("fetch", "load", "matrix", "vector", "store")
# (queue, flag) -> counter popped or pushed
_POPS = {("load", "pop_next"): C2L, ("compute", "pop_prev"): L2C, ("compute", "pop_next"): S2C,
         ("store", "pop_prev"): C2S}
_PUSHES = {("load", "push_next"): L2C, ("compute", "push_prev"): C2L, ("compute", "push_next"): C2S,
           ("store", "push_prev"): S2C}
_SRAM_INDEX = {"sp": 0, "acc": 1}


@dataclass(slots=True)
class Op:
    """One instruction prepared for the simulator."""

    pc: int
    instr: Instr
    queue: int  # 0 load, 1 compute, 2 store
    unit: int  # index into UNIT_NAMES
    is_gemm: bool
    latency: int  # L: busy cycles
    occupancy: int  # cycles before the next gemm may enter the matrix pipeline (= latency elsewhere)
    uses_port: bool
    beats: int  # DRAM port (transfer) cycles of a DMA with rows > 0; 0 otherwise
    engine: int  # cycles a DMA with rows > 0 holds its unit's engine: its beats, plus a load's pad rows; 0 otherwise
    request: int  # cycles a DMA with rows > 0 stays in flight (an outstanding request); 0 otherwise
    posted: bool  # a posted store: done at `latency`, its data reaches DRAM at `request`
    pops: tuple[int, ...]
    pushes: tuple[int, ...]
    banks: tuple[tuple[int, int], ...]  # (sram 0 sp / 1 acc, bank) for the bank interlock
    foot: tuple[tuple[str, int, int, bool], ...]  # footprint for race detection


def gemm_iteration_timing(design: Design, k: int, preload: bool, overlap: bool) -> tuple[int, int]:
    """(Li, O) of one gemm iteration: latency and pipeline occupancy (docs/timing.md, section 3)."""
    rows, cols = design.matrix.rows, design.matrix.cols
    if design.matrix.dataflow == "os":
        li = k + rows + cols - 2
        occ = max(k, rows)
    else:
        p = rows if preload else 0
        li = p + k + rows + cols - 2
        occ = p + k
    return li, (occ if overlap else li)


def _banks(design: Design, foot: tuple[tuple[str, int, int, bool], ...]) -> tuple[tuple[int, int], ...]:
    per_sp = design.scratchpad_rows // design.memory.scratchpad_banks
    per_acc = design.accumulator_rows // design.memory.accumulator_banks
    out: set[tuple[int, int]] = set()
    for space, lo, hi, _ in foot:
        if space == "dram" or hi <= lo:
            continue
        sram, per = (0, per_sp) if space == "sp" else (1, per_acc)
        out.update((sram, b) for b in range(lo // per, (hi - 1) // per + 1))
    return tuple(sorted(out))


_QUEUE_POPS = {q: tuple((flag, c) for (qq, flag), c in _POPS.items() if qq == q) for q in QUEUE_INDEX}
_QUEUE_PUSHES = {q: tuple((flag, c) for (qq, flag), c in _PUSHES.items() if qq == q) for q in QUEUE_INDEX}


def make_op(design: Design, instr: Instr, pc: int, ideal_memory: bool, overlap: bool,
            counters: dict[str, int], need_footprint: bool = True, memo: dict | None = None) -> Op:
    """Timing record of one (checked) instruction; adds its event counts to `counters`.

    need_footprint: compute the footprint (for race checks). Without it, records are shared through
    `memo` between instructions that differ only in their DRAM address (timing never depends on it).
    """
    a = instr.args
    key = None
    if not need_footprint and memo is not None:
        key = (instr.spec.opcode, *(v for f, v in a.items() if f != "dram"))
        hit = memo.get(key)
        if hit is not None:
            fields, incs = hit
            for name_, v in incs:
                counters[name_] += v
            return Op(pc, instr, *fields)
    incs: list[tuple[str, int]] = [("instructions", 1)]
    name = instr.mnemonic
    queue = instr.spec.queue
    assert queue is not None, "finish is handled by fetch"
    pops = tuple(c for flag, c in _QUEUE_POPS[queue] if a[flag])
    pushes = tuple(c for flag, c in _QUEUE_PUSHES[queue] if a[flag])
    foot = footprint(design, instr) if need_footprint or not ideal_memory else ()
    ib, ab = design.input_bytes, design.acc_bytes
    dim = design.dim
    uses_port = posted = False
    beats = request = engine = 0
    if name in ("load", "store"):
        rows, cols, pad = a["rows"], a["cols"], a["pad"]
        eb = dram_elem_bytes(design, instr)
        sram_b = ib if a["mem"] == 0 else ab
        sram = "scratchpad" if a["mem"] == 0 else "accumulator"
        if ideal_memory:
            latency = 0
        elif rows:
            beats = dma_beats(design, instr)
            engine = beats + (pad if name == "load" else 0)  # one SRAM write path: pad rows follow the data
            latency = request = design.memory.dram_latency_cycles + beats + pad
            posted = name == "store" and design.memory.dram_posted_stores
            if posted:  # done for its tokens once the data has left the core (section 7)
                latency = beats
            uses_port = True
        else:
            latency = max(1, pad) if name == "load" else 1
        if name == "load":
            incs.append(("dram_read_bytes", rows * cols * eb))
            incs.append((f"{sram}_write_bytes", (rows + pad) * dim * sram_b))
        else:
            incs.append(("dram_write_bytes", rows * cols * eb))
            incs.append((f"{sram}_read_bytes", rows * cols * sram_b))
        unit = 1 if name == "load" else 4
        occupancy = latency
        banks = () if ideal_memory else _banks(design, foot)
    elif name == "gemm":
        rows, cols = design.matrix.rows, design.matrix.cols
        k, n = a["k"], a["repeat"] + 1
        li, occ = gemm_iteration_timing(design, k, bool(a["preload"]), overlap)
        latency = (n - 1) * occ + li
        occupancy = n * occ
        ws = design.matrix.dataflow == "ws"
        out_rows = k if ws else rows
        incs.append((MACS_COUNTER[design.matrix.input_dtype], n * rows * cols * k))
        incs.append(("scratchpad_read_bytes", n * ib * (k * rows + (rows * cols if ws and a["preload"] else 0)
                                                        + (0 if ws else k * cols))))
        incs.append(("accumulator_write_bytes", n * out_rows * cols * ab))
        if a["accumulate"]:
            incs.append(("accumulator_read_bytes", n * out_rows * cols * ab))
        unit = 2
        banks = () if ideal_memory else _banks(design, foot)
    else:  # vec
        op = VECTOR_OPS[a["op"]]
        rows = a["rows"]
        latency = occupancy = rows * ceil_div(dim, design.vector.lanes)
        reads = 1 if a["use_imm"] or op in VECTOR_UNARY | VECTOR_SHIFT_IMM else 2
        incs.append(("vector_ops", rows * dim))
        incs.append(("accumulator_read_bytes", reads * rows * dim * ab))
        incs.append(("accumulator_write_bytes", rows * dim * ab))
        unit = 3
        banks = () if ideal_memory else _banks(design, foot)
    fields = (QUEUE_INDEX[queue], unit, name == "gemm", latency, occupancy, uses_port, beats, engine, request, posted,
              pops, pushes, banks, foot)
    for name_, v in incs:
        counters[name_] += v
    if key is not None:
        memo[key] = (fields, incs)
    return Op(pc, instr, *fields)
