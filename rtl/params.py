"""The numbers the RTL core is built from: the design file's parameters and the ISA table's field widths."""
from __future__ import annotations

from isa.counters import MACS_COUNTER, event_counters
from isa.design import Design, ceil_div
from isa.errors import UserError
from isa.instructions import INSTRUCTIONS

IMEM_WORDS = 1024  # instruction memory of the RTL (the bench loads the program into it before `run`)
T = 32  # bits of cycle numbers and times (cycle counter, free-at and busy-until registers)
COUNTER_BITS = 48  # event counters
INPUT_DTYPE = "int8"  # the RTL implements the integer designs only
COUNTERS = event_counters(INPUT_DTYPE)
MACS = MACS_COUNTER[INPUT_DTYPE]
UNITS = ("load", "matrix", "vector", "store")
UNIT_COUNTERS = ("fetch_instructions", "fetch_last_dispatch",
                 *(f"{u}_{k}" for u in UNITS for k in ("busy", "stalled", "instructions")))


def field_width(mnemonic: str, field: str) -> int:
    """Width in bits of an instruction field, from the ISA table."""
    return INSTRUCTIONS[mnemonic].field(field).width


# Registers that hold instruction fields are as wide as the fields.
GA, GB, GC, GK = (field_width("gemm", f) for f in ("a", "b", "c", "k"))
GR, GSA, GSB, GSC = (field_width("gemm", f) for f in ("repeat", "sa", "sb", "sc"))
VA = max(field_width("vec", f) for f in ("dst", "src", "src2"))
VR, VOP, VIMM = field_width("vec", "rows"), field_width("vec", "op"), field_width("vec", "imm")
DS, DR, DP, DC = (field_width("load", f) for f in ("sram", "rows", "pad", "cols"))
DD, DT = field_width("load", "dram"), field_width("load", "stride")
MAX_OUTSTANDING = 64  # request slots the RTL builds (each a cycle register, a DRAM range and comparators)
ROW_BYTES = DC + 2  # bits of a DMA row's byte count: cols elements of up to 4 bytes


class UnsupportedDesignError(UserError):
    """The design is valid but outside what the RTL implements; the message says which limit and why."""


class CoreParams:
    """The design numbers the RTL is built from (all from the design file)."""

    def __init__(self, design: Design, imem_words: int = IMEM_WORDS):
        if design.is_float:
            raise UnsupportedDesignError(f"design {design.name}: the RTL implements the integer designs (int8 inputs, "
                                         "int32 accumulators); simulate a float design with `workbench sim run`")
        m, mem = design.matrix, design.memory
        self.ws = m.dataflow == "ws"
        if m.cols < 2 or m.rows < 2:
            raise UnsupportedDesignError(f"design {design.name}: the RTL needs an array of at least 2 x 2 "
                                         f"(matrix.rows = {m.rows}, matrix.cols = {m.cols})")
        self.design = design
        self.R, self.C, self.dim = m.rows, m.cols, design.dim
        self.overlap = m.overlap_tiles
        self.sp_rows, self.acc_rows = design.scratchpad_rows, design.accumulator_rows
        self.sp_banks, self.acc_banks = mem.scratchpad_banks, mem.accumulator_banks
        self.bw, self.lat = mem.dram_bandwidth_bytes_per_cycle, mem.dram_latency_cycles
        if self.lat < 1:
            raise UnsupportedDesignError(f"design {design.name}: the RTL's DMA needs memory.dram_latency_cycles >= 1")
        # docs/timing.md section 7: contiguous rows as one burst; stores done once their data has left.
        self.merge, self.posted = mem.dram_burst_merge, mem.dram_posted_stores
        # SRAM rows a DMA moves in one cycle: a merged beat of bw bytes can finish (load) or start (store)
        # up to bw rows of one byte each; one row per cycle otherwise.
        self.dma_rows = self.bw if self.merge else 1
        # Cycles from a store's issue to its first write beat: the round trip when it waits for DRAM, one
        # (the row read) when it is posted; its data then reaches DRAM lat - 1 cycles after each beat.
        self.store_lead = 1 if self.posted else self.lat
        # docs/timing.md section 7: up to N DMAs in flight. Their data moves one DMA after another (the next
        # one's first beat comes after the previous one's last beat and pad rows), so each engine stays one
        # engine; a delay line hands it each queued command `*_delay` cycles after the issue, and the store
        # engine then drives its first beat one cycle after it gets the command (lead 1).
        self.outstanding = mem.dram_outstanding_requests
        if self.outstanding > MAX_OUTSTANDING:
            raise UnsupportedDesignError(
                f"design {design.name}: the RTL builds up to {MAX_OUTSTANDING} DRAM request slots "
                f"(memory.dram_outstanding_requests = {self.outstanding}); lower it, or use `workbench sim`")
        self.queued = self.outstanding > 1
        self.load_delay = self.lat - 1 if self.queued else 0
        self.store_delay = self.store_lead - 1 if self.queued else 0
        if self.queued:
            self.store_lead = 1
        self.depth = design.control.queue_depth
        self.lanes = design.vector.lanes
        self.ch = ceil_div(self.dim, self.lanes)  # cycles per vector row
        self.max_beats = ceil_div(self.dim * 4, self.bw)  # DRAM beats of the widest row (int32 elements)
        self.imem_words = imem_words
        # Compute-queue token pushes not yet matured (issued, still in their busy window). Matrix-unit
        # completions are in program order, so a FIFO suffices; an overflow raises the core's error flag.
        self.pending_compute_pushes = 8
