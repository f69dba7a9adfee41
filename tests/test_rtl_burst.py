"""The merged-burst DMA engines (`rtl.burst`) alone in Amaranth's simulator (no Verilator), on bus widths and
latencies the Verilator tests do not build: a bus that is not a power of two (3 and 6 bytes, so one beat
carries up to 6 one-byte rows), latency 1 (the store reads its first row in the issue cycle) and 2, and posted stores (whose beats leave
from the cycle after the issue).

Each DMA runs against the DRAM model of `rtl.bench_core` (beat i of a read in cycle lat + i after the issue;
merged rows as one run of bytes) and an SRAM that answers a read the cycle after it; it must move every row
with the functional model's bytes, inside its busy window (docs/timing.md, sections 3 and 7).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from amaranth.sim import Simulator

from isa.design import ceil_div, load_design
from isa.encoding import encode, make
from isa.functional import dma_beats, dram_elem_bytes
from rtl.burst import BurstLoadDMA, BurstStoreDMA
from rtl.params import CoreParams

DIM = 4  # tiny-int8-4x4


def _params(bw: int, lat: int, posted: bool = False) -> CoreParams:
    d = load_design("tiny-int8-4x4")
    return CoreParams(d.replace(memory=dataclasses.replace(d.memory, dram_burst_merge=True, dram_posted_stores=posted,
                                                           dram_bandwidth_bytes_per_cycle=bw, dram_latency_cycles=lat)))


def _dmas(p: CoreParams, kind: str, rng: np.random.Generator, n: int):
    """`n` random loads or stores: sp or acc, narrowed, contiguous (mostly) or strided rows, pad rows."""
    out = []
    for _ in range(n):
        mem = int(rng.integers(0, 2))
        narrow = int(kind == "store" and mem == 1 and rng.random() < 0.5)
        rows, cols = int(rng.integers(1, 12)), int(rng.integers(1, DIM + 1))
        probe = make(f"{kind}.{'acc' if mem else 'sp'}", rows=rows, cols=cols, narrow=narrow)
        rb = cols * dram_elem_bytes(p.design, probe)
        stride = rb if rng.random() < 0.7 else rb + int(rng.integers(1, 5))
        pad = int(rng.integers(0, 3)) if kind == "load" else 0
        out.append(make(f"{kind}.{'acc' if mem else 'sp'}", sram=int(rng.integers(0, 40)), dram=int(rng.integers(0, 64)),
                        stride=stride, rows=rows, cols=cols, pad=pad, narrow=narrow))
    return out


def _run(dut, body) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(body)
    sim.run()


@pytest.mark.parametrize("bw,lat", [(3, 1), (6, 2), (4, 8)])
def test_load_writes_each_row_when_its_last_byte_arrives(bw, lat):
    p = _params(bw, lat)
    rng = np.random.default_rng(bw * 10 + lat)
    image = rng.integers(0, 256, 512, dtype=np.uint8)
    dut = BurstLoadDMA(p)
    dmas = _dmas(p, "load", rng, 25)

    async def body(ctx):
        for instr in dmas:
            a = instr.args
            eb = dram_elem_bytes(p.design, instr)
            rb, beats = a["cols"] * eb, dma_beats(p.design, instr)
            if beats < a["rows"] * ceil_div(rb, bw):  # merged: one run of bytes
                data = bytes(image[a["dram"]:a["dram"] + a["rows"] * rb])
                chunks = [data[j * bw:(j + 1) * bw] for j in range(beats)]
            else:
                chunks = [bytes(image[a["dram"] + r * a["stride"] + j * bw:][:min(bw, rb - j * bw)])
                          for r in range(a["rows"]) for j in range(ceil_div(rb, bw))]
            latency = lat + beats + a["pad"]
            writes = {}
            ctx.set(dut.word, encode(instr))
            ctx.set(dut.issue, 1)
            for c in range(latency + 3):
                j = c - lat
                ctx.set(dut.dram.valid, 0 <= j < beats)
                ctx.set(dut.dram.data, int.from_bytes(chunks[j], "little") if 0 <= j < beats else 0)
                for i in range(p.dma_rows):
                    port = dut.acc[i] if a["mem"] else dut.sp[i]
                    if ctx.get(port.en):
                        assert c < latency, (instr.text, "row written after the busy window")
                        writes[ctx.get(port.addr)] = ctx.get(port.data)
                await ctx.tick()
                ctx.set(dut.issue, 0)
            want = {}
            for r in range(a["rows"]):
                row = bytes(image[a["dram"] + r * a["stride"]:][:rb])
                want[a["sram"] + r] = int.from_bytes(row, "little")
            want.update({a["sram"] + a["rows"] + r: 0 for r in range(a["pad"])})
            assert writes == want, instr.text

    _run(dut, body)


def _packed(row: int, mem: int, narrow: int, cols: int) -> bytes:
    """A row's DRAM bytes as the functional model stores it."""
    if mem == 0:
        return row.to_bytes(DIM, "little")[:cols]
    words = np.frombuffer(row.to_bytes(4 * DIM, "little"), dtype="<i4")[:cols]
    return np.clip(words, -128, 127).astype(np.int8).tobytes() if narrow else words.tobytes()


@pytest.mark.parametrize("bw,lat,posted", [(3, 1, False), (6, 2, False), (4, 8, False), (3, 2, True), (4, 8, True)])
def test_store_sends_each_row_inside_its_busy_window(bw, lat, posted):
    """Beats from `store_lead` after the issue (lat; 1 when posted), every row read inside the busy window."""
    p = _params(bw, lat, posted)
    rng = np.random.default_rng(bw * 100 + lat)
    sram = {0: [int(v) for v in rng.integers(0, 1 << (8 * DIM), 64, dtype=np.uint64)],
            1: [int.from_bytes(rng.integers(0, 256, 4 * DIM, dtype=np.uint8).tobytes(), "little") for _ in range(64)]}
    dut = BurstStoreDMA(p)
    dmas = _dmas(p, "store", rng, 25)

    async def body(ctx):
        for instr in dmas:
            a = instr.args
            beats = dma_beats(p.design, instr)
            latency = beats if p.posted else lat + beats
            dram = bytearray(512)
            sent = []
            pending: dict[int, int] = {}  # read port -> sram row whose data arrives this cycle
            ctx.set(dut.word, encode(instr))
            ctx.set(dut.issue, 1)
            for c in range(p.store_lead + beats + 3):
                for i in range(p.dma_rows):
                    for mem, port in ((0, dut.sp[i]), (1, dut.acc[i])):
                        ctx.set(port.data, sram[mem][pending.get((mem, i), 0)])
                pending = {}
                for i in range(p.dma_rows):
                    for mem, port in ((0, dut.sp[i]), (1, dut.acc[i])):
                        if ctx.get(port.en):
                            assert c < latency, (instr.text, "row read after the busy window")
                            pending[(mem, i)] = ctx.get(port.addr)
                if ctx.get(dut.dram.valid):
                    addr, n = ctx.get(dut.dram.addr), ctx.get(dut.dram.len)
                    dram[addr:addr + n] = ctx.get(dut.dram.data).to_bytes(bw, "little")[:n]
                    sent.append(c)
                await ctx.tick()
                ctx.set(dut.issue, 0)
            assert sent == list(range(p.store_lead, p.store_lead + beats)), instr.text
            want = bytearray(512)
            for r in range(a["rows"]):
                row = _packed(sram[a["mem"]][a["sram"] + r], a["mem"], a["narrow"], a["cols"])
                want[a["dram"] + r * a["stride"]:a["dram"] + r * a["stride"] + len(row)] = row
            assert dram == want, instr.text

    _run(dut, body)
