"""The chip level of a multi-core design: how one GEMM mapping runs on all cores, the shared L2 and DRAM.

The cycle simulator models one core. A `Mapping` spreads a (batched) GEMM over the cores as a grid of
gb x gm x gn x gk blocks (batch, M, N and split-K; the product may be below the core count, the rest idle)
and fixes the core's blocking and loop order. `run_mapping` simulates the largest block on one core and
composes the chip from it (docs/timing.md, "Chip level"):

- Without an [l2] section the core's memory is its own DRAM share, every core reads its own slices (no
  sharing), and the time is the core's: the behaviour before the chip level existed.
- With [l2] the core's memory is the L2: its loads see `l2.latency_cycles` and a port of
  `min(l2.noc_bandwidth_bytes_per_cycle, l2.bandwidth_bytes_per_cycle // active cores)` bytes per cycle.
  The chip's DRAM traffic is the unique traffic given the L2's capacity: an operand's panels are read from
  DRAM once when everything the cores touch between two reads of the same panel fits in the L2, otherwise
  as often as the core's loop nest re-reads them. The time is the slowest of the core, the DRAM roof (DRAM
  bytes over the chip's DRAM bandwidth, cores x `memory.dram_bandwidth_bytes_per_cycle`) and the L2 roof
  (core-side bytes over `l2.bandwidth_bytes_per_cycle`), plus one DRAM latency for the first miss and the
  split-K reduction.

Three per-chip mechanisms of real GPUs apply to every shape alike (`[chip]` fields, each cited in the design):
- `gemm_tiles`: the output tiles (M x N) the chip's GEMM library offers; a mapping's blocks are whole tiles, so a
  grid of tiles runs in waves over the cores and the last wave may leave cores idle (wave quantization).
- `sustained_clock_hz`: the clock the chip holds under GEMM load; the core's and the L2's cycles stretch by
  clock_hz / sustained_clock_hz (DRAM bandwidth, set in bytes per second, does not).
- `kernel_overhead_s`: a fixed time per GEMM call (launch, ramp-up and drain) added once per call.
- `sustained_dram_bandwidth_bytes_per_s`: what the DRAM delivers to a streaming kernel (a measured STREAM figure),
  below the datasheet's pin bandwidth (refresh, ECC, read/write turnarounds); the DRAM roof uses it.
Two more describe a call that starts cold, right after the L2 was flushed (a profiler harness's big memset before each
timed call): `cold_start_s` (device time before the kernel streams: its operands' address translations and the
pipeline's first DRAM round trips) and `[l2] flush_dirty_bytes` (dirty lines the flush leaves in the L2: the call's
reads evict them and their write-back shares the DRAM with those reads). Warm calls (the default) pay neither.
`stream_k` adds persistent stream-K mappings (a GEMM library's load balancer for a partial last wave): each core takes
an equal share of all tiles' K steps, and tiles whose K is split between cores are fixed up through the L2.
`[l2] multicast_cores` lets a cluster of cores share one L2 read of a common operand panel (Hopper's TMA
multicast): the L2 serves fewer bytes than the cores load, so each core's share of its bandwidth grows.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from compiler.accel.gemm_lowering import gemm_program
from compiler.accel.tiling import OsBlock
from isa.design import Design, ceil_div
from sim.simulator import simulate

__all__ = ["Mapping", "ChipRun", "run_mapping", "core_view", "block_shape", "active_cores", "clock_stretch",
           "overhead_cycles", "cold_start_cycles", "flush_write_back_bytes", "multicast_factor",
           "chip_dram_bytes_per_cycle", "stream_k_tiles", "stream_k_peers"]


@dataclass(frozen=True)
class Mapping:
    """How a GEMM is spread over the cores and run on each: the grid, split-K, blocking and loop order."""

    gm: int
    gn: int
    gk: int = 1  # split-K: the reduction cut into gk parts on different cores, partial sums reduced after
    gb: int = 1  # batch elements run side by side on different cores
    block: OsBlock | None = None  # the core's OS blocking; None: the tiling heuristic's (tiling.os_block)
    order: str = "nm"  # the core's loop over output blocks: "nm" column blocks outer, "mn" row blocks outer
    tile: tuple[int, int] | None = None  # the library's output tile (M x N): blocks are whole tiles; None: any size
    # stream-K (chip.stream_k): a persistent kernel on sk_cores cores, each taking an equal share of all tiles' K
    # steps (a share may end inside a tile: its partial sums are fixed up through the L2); gm x gn are then the
    # tile grid's rows and columns in flight in one wave (for the L2 reuse and multicast), not a split of the work
    sk_cores: int = 0

    @property
    def cores(self) -> int:
        """Cores the grid names (some may get no work when the sizes divide unevenly)."""
        return self.sk_cores or self.gm * self.gn * self.gk * self.gb

    def describe(self) -> str:
        """One line for reports: grid, split-K, batch split, blocking and order."""
        blk = "heuristic" if self.block is None else \
            f"{self.block.bm}x{self.block.bn} tiles, kc {self.block.kc}, {self.block.acc_buffers} acc buffers"
        if self.sk_cores:
            return (f"stream-K on {self.sk_cores} cores of {self.tile[0]}x{self.tile[1]} tiles" if self.tile else
                    f"stream-K on {self.sk_cores} cores") + f", block {blk}, order {self.order}"
        return (f"grid {self.gm}x{self.gn}" + (f" of {self.tile[0]}x{self.tile[1]} tiles" if self.tile else "")
                + (f", split-K {self.gk}" if self.gk > 1 else "")
                + (f", batch over {self.gb}" if self.gb > 1 else "") + f", block {blk}, order {self.order}")


def block_shape(m: int, n: int, k: int, batch: int, mp: Mapping) -> tuple[int, int, int, int]:
    """(block M, block N, block K, batch elements per core) of the largest block.

    With a library tile the block is a whole number of tiles (at most the matrix): a grid of gm rows over
    ceil(M / tile M) tiles gives each core ceil(tiles / gm) of them. A stream-K mapping's block is one tile with
    the core's share of all tiles' K steps as its K (more than K when a share spans several tiles).
    """
    if mp.sk_cores:
        tm, tn = mp.tile or (m, n)
        return min(m, tm), min(n, tn), ceil_div(stream_k_tiles(m, n, batch, mp) * k, mp.sk_cores), 1
    if mp.tile is None:
        bm, bn = ceil_div(m, mp.gm), ceil_div(n, mp.gn)
    else:
        tm, tn = mp.tile
        bm = min(m, ceil_div(ceil_div(m, tm), mp.gm) * tm)
        bn = min(n, ceil_div(ceil_div(n, tn), mp.gn) * tn)
    return bm, bn, ceil_div(k, mp.gk), ceil_div(batch, mp.gb)


def clock_stretch(design: Design) -> float:
    """How much longer a core cycle lasts under sustained load: clock_hz / sustained_clock_hz (1 when unset)."""
    sustained = design.chip.sustained_clock_hz
    return design.chip.clock_hz / sustained if sustained else 1.0


def overhead_cycles(design: Design) -> int:
    """`chip.kernel_overhead_s` in cycles of the nominal clock: the fixed cost of one GEMM call."""
    return round(design.chip.kernel_overhead_s * design.chip.clock_hz)


def cold_start_cycles(design: Design) -> int:
    """`chip.cold_start_s` in cycles of the nominal clock: the extra fixed time of a call that starts cold."""
    return round(design.chip.cold_start_s * design.chip.clock_hz)


def flush_write_back_bytes(design: Design, dram_read_bytes: float) -> int:
    """Dirty bytes a cold call writes back: each line its reads allocate evicts one of the flushed L2's lines, so
    reads of an L2's worth or more evict all `l2.flush_dirty_bytes` of them, fewer reads that share of them."""
    l2 = design.l2
    if l2 is None or not l2.flush_dirty_bytes:
        return 0
    return round(l2.flush_dirty_bytes * min(1.0, dram_read_bytes / l2.bytes))


def chip_dram_bytes_per_cycle(design: Design) -> float:
    """The chip's DRAM bandwidth per nominal cycle: the sustained (measured) figure when the design gives one,
    else the datasheet's cores x `memory.dram_bandwidth_bytes_per_cycle`."""
    peak = design.memory.dram_bandwidth_bytes_per_cycle * design.chip.cores
    sustained = design.chip.sustained_dram_bandwidth_bytes_per_s
    return min(peak, sustained / design.chip.clock_hz) if sustained else float(peak)


def stream_k_tiles(m: int, n: int, batch: int, mp: Mapping) -> int:
    """Output tiles of a stream-K mapping, over all batch elements."""
    tm, tn = mp.tile or (m, n)
    return ceil_div(m, tm) * ceil_div(n, tn) * batch


def stream_k_peers(k: int, bk: int) -> int:
    """Most cores that share one output tile when each takes `bk` consecutive K steps of a K-long tile: 1 when the
    shares fall on tile boundaries, else the tile's pieces (a share shorter than the tile can start mid-tile)."""
    if bk % k == 0:
        return 1
    return 2 if bk > k else ceil_div(k, bk) + 1


def active_cores(m: int, n: int, k: int, batch: int, mp: Mapping) -> int:
    """Cores that get a block (a grid finer than the sizes leaves some idle)."""
    bm, bn, bk, bb = block_shape(m, n, k, batch, mp)
    if mp.sk_cores:
        return min(mp.sk_cores, ceil_div(stream_k_tiles(m, n, batch, mp) * k, bk))
    return ceil_div(m, bm) * ceil_div(n, bn) * ceil_div(k, bk) * ceil_div(batch, bb)


def multicast_factor(design: Design, mp: Mapping, bm: int, bn: int) -> float:
    """How many times fewer bytes the L2 serves than the cores load, when `l2.multicast_cores` cores of one grid
    row (column) share one read of their common A (B) panel: the larger panel is shared if the grid has room."""
    c = design.l2.multicast_cores if design.l2 is not None else 1
    best = 1.0
    if c > 1 and mp.gn >= c:  # cores of one block row load the same A panel
        best = max(best, (bm + bn) / (bm / c + bn))
    if c > 1 and mp.gm >= c:  # cores of one block column load the same B panel
        best = max(best, (bm + bn) / (bm + bn / c))
    return best


def core_view(design: Design, active: int, multicast: float = 1.0) -> Design:
    """The design one core sees: with an L2, the L2 latency and the core's share of the L2 bandwidth as its
    memory (a simulated address space large enough for any block); without, the design itself. `multicast`
    (multicast_factor) stretches the L2's bandwidth: shared reads leave more of it to each core."""
    l2 = design.l2
    if l2 is None:
        return design
    share = int(l2.bandwidth_bytes_per_cycle * multicast) // max(1, active)
    port = max(1, min(l2.noc_bandwidth_bytes_per_cycle, share))
    mem = dataclasses.replace(design.memory, dram_bandwidth_bytes_per_cycle=port,
                              dram_latency_cycles=l2.latency_cycles)
    return dataclasses.replace(design, memory=mem)


@dataclass
class ChipRun:
    """A mapping's simulated run: chip cycles, the parts they come from, and whole-chip counters."""

    mapping: Mapping
    cycles: int
    core_cycles: int  # one core's block (times its batch elements), in cycles of the nominal clock
    dram_roof_cycles: int
    l2_roof_cycles: int
    reduction_cycles: int
    block: tuple[int, int, int]
    active: int
    dram_read_bytes: int
    dram_write_bytes: int
    counters: dict[str, float] = field(default_factory=dict)
    bound: str = "core"  # which term sets the time: core, dram or l2

    def to_json(self) -> dict[str, Any]:
        """Plain-dict form."""
        out = dataclasses.asdict(self)
        out["mapping"] = self.mapping.describe()
        return out


def _operand_reads(gp: Any) -> tuple[int, int]:
    """Bytes the program loads from the A and from the B region of its DRAM image."""
    a = b = 0
    ib = gp.design.input_bytes
    for ins in gp.program:
        if ins.mnemonic != "load" or not ins.args["rows"] or ins.args["mem"] != 0:
            continue
        nbytes = ins.args["rows"] * ins.args["cols"] * ib
        addr = ins.args["dram"]
        if gp.a_addr <= addr < gp.b_addr:
            a += nbytes
        elif gp.b_addr <= addr < gp.c_addr:
            b += nbytes
    return a, b


def run_mapping(design: Design, m: int, n: int, k: int, mp: Mapping, batch: int = 1,
                ideal_memory: bool = False, out_bytes: int | None = None, cold: bool = False) -> ChipRun:
    """Simulate the mapping's largest block on one core and compose the chip's time and traffic from it.

    out_bytes: bytes per element of C as the call writes it to DRAM (2 for a GEMM whose output is bf16 / fp16, as
    a library's epilogue converts it); None = the accumulator dtype, as the lowering stores it.
    cold: the call starts right after an L2 flush (`chip.cold_start_s`, `l2.flush_dirty_bytes`)."""
    bm, bn, bk, bb = block_shape(m, n, k, batch, mp)
    active = active_cores(m, n, k, batch, mp)
    multicast = multicast_factor(design, mp, bm, bn)
    core = core_view(design, active, multicast)
    gp = gemm_program(core, bm, bn, bk, whole_k=ideal_memory, block=mp.block, order=mp.order)
    if gp.dram_bytes > core.memory.dram_bytes:  # the block's operands, whatever the design's address space
        core = dataclasses.replace(core, memory=dataclasses.replace(core.memory, dram_bytes=gp.dram_bytes))
        gp = dataclasses.replace(gp, design=core)
    res = simulate(core, gp.program, None, ideal_memory=ideal_memory, values=False)
    scale = batch * m * n * k / (bm * bn * bk)  # total work over one block's
    counters = {key: float(v) * scale for key, v in res.counters.items()}
    core_cycles = int(res.cycles) * bb
    core_rd, core_wr = res.counters.get("dram_read_bytes", 0), res.counters.get("dram_write_bytes", 0)
    if design.l2 is None or ideal_memory:
        return ChipRun(mp, core_cycles, core_cycles, 0, 0, 0, (bm, bn, bk), active,
                       int(core_rd * scale), int(core_wr * scale), counters)
    l2 = design.l2
    ib, ab = design.input_bytes, design.acc_bytes
    a_reads, b_reads = _operand_reads(gp)
    a_block, b_block = bm * bk * ib, bk * bn * ib
    ra, rb = a_reads / a_block, b_reads / b_block  # how often the core's loop nest reads its A and B block
    concurrent = min(batch, mp.gb)  # batch elements in flight together
    blk = mp.block or _heuristic_block(gp)
    rows, cols = design.matrix.rows, design.matrix.cols
    a_all, b_all = m * k * ib * concurrent, k * n * ib * concurrent
    a_panels = min(m, mp.gm * blk.bm * rows) * k * ib * concurrent  # A of one block row on every core
    b_panels = min(n, mp.gn * blk.bn * cols) * k * ib * concurrent
    # Between two reads of the same panel the cores touch: for the operand of the outer loop, everything it
    # holds plus the other operand's current panels; for the inner one, the current panels of both.
    outer_a = mp.order == "mn"
    fits_a = (a_panels + b_panels if outer_a else a_all + b_panels) <= l2.bytes
    fits_b = (b_all + a_panels if outer_a else a_panels + b_panels) <= l2.bytes
    dram_rd = batch * (m * k * ib * (1 if fits_a else ra) + k * n * ib * (1 if fits_b else rb))
    c_bytes = batch * m * n * (out_bytes or ab)
    dram_wr = c_bytes
    reduction = 0
    peers = stream_k_peers(k, bk) if mp.sk_cores else 1
    if peers > 1:
        reduction = _stream_k_fixup(design, core, bm, bn, peers)
        workspace = active * bm * bn * ab  # at most one partial tile per core at a time
        if workspace > l2.bytes:
            dram_rd += workspace
            dram_wr += workspace
    elif mp.gk > 1:
        partials = mp.gk * batch * m * n * ab  # accumulator-dtype partial sums, written and read back
        if mp.gk * m * n * ab * concurrent > l2.bytes:
            dram_rd += partials
            dram_wr += partials
        port = max(1, min(l2.noc_bandwidth_bytes_per_cycle, l2.bandwidth_bytes_per_cycle // design.chip.cores))
        move = ceil_div(partials + c_bytes, port * design.chip.cores)
        adds = ceil_div((mp.gk - 1) * batch * m * n, design.vector.lanes * design.chip.cores)
        reduction = max(move, adds) + l2.latency_cycles
    if cold:  # the flush's dirty lines that this call's reads evict go back to DRAM alongside them
        dram_wr += flush_write_back_bytes(design, dram_rd)
    l2_bytes = (core_rd + core_wr) * bb * active
    dram_roof = math.ceil((dram_rd + dram_wr) / chip_dram_bytes_per_cycle(design))
    l2_roof = ceil_div(int(l2_bytes / multicast), l2.bandwidth_bytes_per_cycle)
    # cycles of the nominal clock: the core and the L2 run at the sustained clock, DRAM's bytes per second do not
    stretch = clock_stretch(design)
    core_t, l2_t, reduction = (math.ceil(c * stretch) for c in (core_cycles, l2_roof, reduction))
    body = max(core_t, dram_roof, l2_t)
    bound = "core" if body == core_t else ("dram" if body == dram_roof else "l2")
    counters["l2_read_bytes"] = float(core_rd) * scale
    counters["l2_write_bytes"] = float(core_wr) * scale
    counters["dram_read_bytes"] = float(dram_rd)
    counters["dram_write_bytes"] = float(dram_wr)
    cycles = body + reduction + design.memory.dram_latency_cycles + overhead_cycles(design)
    if cold:
        cycles += cold_start_cycles(design)
    return ChipRun(mp, cycles, core_t, dram_roof, l2_t, reduction, (bm, bn, bk), active, int(dram_rd),
                   int(dram_wr), counters, bound)


def _stream_k_fixup(design: Design, core: Design, bm: int, bn: int, peers: int) -> int:
    """Cycles a stream-K kernel adds after its cores' shares: a core whose share ended inside a tile writes that
    tile's accumulator-dtype partial sums to the L2, and the core that finishes the tile reads its peers' partials
    and adds them (CUTLASS's sm90 stream-K fixup), all tiles at once, each through its core's own port."""
    partial = bm * bn * design.acc_bytes
    port = core.memory.dram_bandwidth_bytes_per_cycle
    move = ceil_div(partial * peers, port)  # one partial written, peers - 1 read
    adds = ceil_div((peers - 1) * bm * bn, design.vector.lanes)
    return max(move, adds) + design.l2.latency_cycles


def _heuristic_block(gp: Any) -> OsBlock:
    """The blocking the lowering chose for this program (tiling.os_block on its design and shape)."""
    from compiler.accel.tiling import os_block

    return os_block(gp.design, gp.m, gp.n, gp.k)
