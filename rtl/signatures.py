"""Interfaces between the core's components, as `amaranth.lib.wiring` signatures (from the driving side).

Every width comes from the ISA table (`rtl.params`) or the design (`CoreParams`).
"""
from __future__ import annotations

from amaranth.lib.wiring import In, Out, Signature

from isa.instructions import WORD_BITS
from rtl.params import COUNTER_BITS, COUNTERS, DD, DR, DT, GK, ROW_BYTES, UNIT_COUNTERS, CoreParams, T


def dram_command() -> Signature:
    """One DMA command for the DRAM: `rows` rows of `row_bytes` at `addr`, `addr + stride`, ... (valid one cycle)."""
    return Signature({"valid": Out(1), "write": Out(1), "addr": Out(DD), "stride": Out(DT), "rows": Out(DR),
                      "row_bytes": Out(ROW_BYTES)})


def dram_read_beat(bw: int) -> Signature:
    """One beat of read data (`bw` bytes), driven by the DRAM."""
    return Signature({"valid": Out(1), "data": Out(8 * bw)})


def dram_write_beat(bw: int) -> Signature:
    """One beat of write data: `len` (<= bw) bytes at byte address `addr`."""
    return Signature({"valid": Out(1), "addr": Out(32), "len": Out(range(bw + 1)), "data": Out(8 * bw)})


def dram_port(bw: int) -> Signature:
    """The core's one port to DRAM: commands and write beats out, read beats in."""
    return Signature({"cmd": Out(dram_command()), "read": In(dram_read_beat(bw)), "write": Out(dram_write_beat(bw))})


def sram_read(width: int, depth: int) -> Signature:
    """A registered SRAM read port, from the reader's side: data of `addr` arrives the cycle after `en`."""
    return Signature({"en": Out(1), "addr": Out(range(max(depth, 2))), "data": In(width)})


def sram_write(width: int, depth: int) -> Signature:
    """An SRAM write port, from the writer's side."""
    return Signature({"en": Out(1), "addr": Out(range(max(depth, 2))), "data": Out(width)})


def imem_write(words: int) -> Signature:
    """Loading the instruction memory before `run`, from the loader's side."""
    return Signature({"en": Out(1), "addr": Out(range(words)), "data": Out(WORD_BITS)})


def queue_head(depth: int) -> Signature:
    """The read side of an instruction queue, from the queue's side: the head entry, and `take` to pop it.

    `next_data` is the head as it will be in the next cycle, for reads one cycle ahead of issue.
    """
    return Signature({"data": Out(WORD_BITS), "next_data": Out(WORD_BITS), "ready": Out(1),
                      "level": Out(range(depth + 1)), "take": In(1)})


def gemm_timing(p: CoreParams) -> Signature:
    """Timing of the gemm at the head of the compute queue: preload cycles, steps per iteration, gap between them."""
    return Signature({"preload": Out(range(p.R + 1)), "steps": Out(GK + 1), "gap": Out(T)})


def event_counters() -> Signature:
    """The event counters the simulator also reports (isa.counters)."""
    return Signature({name: Out(COUNTER_BITS) for name in COUNTERS})


def unit_counters() -> Signature:
    """Per-unit busy / stalled / instruction counts (and fetch's), as the simulator's `units` table."""
    return Signature({name: Out(T) for name in UNIT_COUNTERS})
