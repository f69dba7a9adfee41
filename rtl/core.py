"""The accelerator core: its components wired together. DRAM is outside (the bench), behind one port.

Timing follows docs/timing.md cycle for cycle: `IssueUnit` implements each rule of section 2 as
hardware, and every datapath (`LoadDMA`, `StoreDMA`, `OSMatrixUnit` / `WSMatrixUnit`, `VectorUnit`)
finishes its memory writes inside its instruction's busy window `s .. s+L-1`, so a consumer that issues
when the producer completes reads the new data. The cycle counter numbers the first cycle with `run`
high as cycle 1; `done` rises in the cycle after FINISH retires and `cycle` then holds FINISH's cycle.

Memory ports (each read port registered and transparent to the writes of its cycle):
- scratchpad: read 0 / 1 the matrix unit's A and B rows, read 2 the store DMA; write 0 the load DMA.
- accumulator: read 0 / 1 the drain lanes, 2 / 3 the vector unit's src / src2, 4 the store DMA;
  write 0 drain lane 0 or the vector unit (never in the same cycle: vec waits for the matrix unit to
  drain, and a gemm's first row completes >= 1 cycle after it issues), 1 drain lane 1, 2 the load DMA.
  The weight-stationary unit has one drain lane, on read 1 / write 1.
- with `dram_burst_merge` both SRAMs get `bw - 1` more read ports (store1, ...) and write ports (load1, ...),
  as the merged-burst engines (`rtl.burst`) move up to `bw` rows a cycle.
"""
from __future__ import annotations

from amaranth import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa.design import Design
from rtl.array import ACC_BITS
from rtl.burst import BurstLoadDMA, BurstStoreDMA
from rtl.counters import EventCounters, UnitCounters
from rtl.decoder import decode_fields
from rtl.dma import LoadDMA, StoreDMA
from rtl.fetch import Fetch
from rtl.issue import IssueUnit
from rtl.matrix import OSMatrixUnit, WSMatrixUnit
from rtl.outstanding import DelayLine
from rtl.params import COUNTERS, IMEM_WORDS, MACS, CoreParams, T
from rtl.signatures import dram_port, event_counters, imem_write, unit_counters
from rtl.sram import BankedSRAM
from rtl.vector import VectorUnit

# Blocks of the core for the area and activity reports: block -> submodule (instance) names.
# "control" is everything else: fetch, decoder, queues, issue logic and tokens, the GEMM sequencer, the
# accumulator drain (read-modify-write) adders and the counters.
AREA_BLOCKS = {"array": "top.matrix.array", "vector": "top.vector", "dma": ("top.load_dma", "top.store_dma"),
               "scratchpad": "top.scratchpad", "accumulator": "top.accumulator", "imem": "top.fetch.imem"}
ACTIVITY_BLOCKS = {"array": "array", "vector": "vector", "dma": ("load_dma", "store_dma"),
                   "scratchpad": "scratchpad", "accumulator": "accumulator", "imem": "imem"}
SP_READS, SP_WRITES = ("matrix_a", "matrix_b", "store"), ("load",)
ACC_READS, ACC_WRITES = ("drain0", "drain1", "vec_src", "vec_src2", "store"), ("drain0_or_vec", "drain1", "load")


def extra_ports(name: str, rows: int) -> tuple[str, ...]:
    """Names of a DMA engine's SRAM ports beyond its first when it moves `rows` rows a cycle (`name1`, ...)."""
    return tuple(f"{name}{i}" for i in range(1, rows))


class Core(wiring.Component):
    """The whole core; the bench loads `imem`, raises `run`, and answers the DRAM port."""

    def __init__(self, design: Design, imem_words: int = IMEM_WORDS):
        self.p = p = CoreParams(design, imem_words)
        super().__init__({"run": In(1), "done": Out(1), "cycle": Out(T), "error": Out(1),
                          "imem": In(imem_write(imem_words)), "dram": Out(dram_port(p.bw)),
                          "counters": Out(event_counters()), "units": Out(unit_counters())})

    def elaborate(self, platform):
        p = self.p
        m = Module()
        m.submodules.fetch = fetch = Fetch(p)
        m.submodules.issue = issue = IssueUnit(p)
        wiring.connect(m, wiring.flipped(self.imem), fetch.imem)
        for q in ("load", "compute", "store"):
            wiring.connect(m, getattr(fetch, q), getattr(issue, q))
        # Section 7, N > 1: each DMA engine gets its commands through a delay line (rtl.outstanding).
        l_issue, l_word, s_issue, s_word, bad_op = (issue.issue_load, fetch.load.data, issue.issue_store,
                                                    fetch.store.data, fetch.bad_op)
        if p.queued:
            m.submodules.load_delay = ld = DelayLine(p, p.load_delay)
            m.submodules.store_delay = sd = DelayLine(p, p.store_delay)
            l_rows = decode_fields(fetch.load.data, "load")["rows"] != 0
            s_rows = decode_fields(fetch.store.data, "store")["rows"] != 0  # a store without rows moves nothing
            direct = issue.issue_load & ~l_rows  # pad rows only: they start in the issue cycle (an idle engine)
            m.d.comb += [ld.cycle.eq(issue.cycle), ld.issue.eq(issue.issue_load & l_rows), ld.word.eq(fetch.load.data),
                         sd.cycle.eq(issue.cycle), sd.issue.eq(issue.issue_store & s_rows),
                         sd.word.eq(fetch.store.data)]
            l_issue, l_word = ld.out_issue | direct, Mux(direct, fetch.load.data, ld.out_word)
            s_issue, s_word = sd.out_issue, sd.out_word
            bad_op = fetch.bad_op | ld.overflow | sd.overflow
        m.d.comb += [issue.run.eq(self.run), issue.finish_seen.eq(fetch.finish_seen), issue.bad_op.eq(bad_op),
                     fetch.active.eq(issue.active),
                     self.cycle.eq(issue.cycle), self.done.eq(issue.done), self.error.eq(issue.error)]
        wiring.connect(m, issue.dram_cmd, wiring.flipped(self.dram.cmd))

        # A merged burst moves up to p.dma_rows rows a cycle: the DMA engines then have that many SRAM ports.
        dma_reads, dma_writes = extra_ports("store", p.dma_rows), extra_ports("load", p.dma_rows)
        m.submodules.scratchpad = sp = BankedSRAM(8 * p.dim, p.sp_rows, p.sp_banks, len(SP_READS) + len(dma_reads),
                                                  len(SP_WRITES) + len(dma_writes))
        m.submodules.accumulator = acc = BankedSRAM(ACC_BITS * p.dim, p.acc_rows, p.acc_banks,
                                                    len(ACC_READS) + len(dma_reads), len(ACC_WRITES) + len(dma_writes))
        sp_read = dict(zip(SP_READS + dma_reads, sp.read, strict=True))
        sp_write = dict(zip(SP_WRITES + dma_writes, sp.write, strict=True))
        acc_read = dict(zip(ACC_READS + dma_reads, acc.read, strict=True))
        acc_write = dict(zip(ACC_WRITES + dma_writes, acc.write, strict=True))

        m.submodules.load_dma = ldma = BurstLoadDMA(p) if p.merge else LoadDMA(p)
        m.d.comb += [ldma.issue.eq(l_issue), ldma.word.eq(l_word)]
        wiring.connect(m, wiring.flipped(self.dram.read), ldma.dram)
        if p.merge:
            for i, name in enumerate(("load", *dma_writes)):
                wiring.connect(m, ldma.sp[i], sp_write[name])
                wiring.connect(m, ldma.acc[i], acc_write[name])
        else:
            wiring.connect(m, ldma.sp, sp.write[0])
            wiring.connect(m, ldma.acc, acc_write["load"])

        m.submodules.store_dma = sdma = BurstStoreDMA(p) if p.merge else StoreDMA(p)
        m.d.comb += [sdma.issue.eq(s_issue), sdma.word.eq(s_word)]
        if p.merge:
            for i, name in enumerate(("store", *dma_reads)):
                wiring.connect(m, sdma.sp[i], sp_read[name])
                wiring.connect(m, sdma.acc[i], acc_read[name])
        else:
            if not p.queued:  # queued: the engine takes them from the delayed word
                m.d.comb += [sdma.issue_beats.eq(issue.store_beats), sdma.issue_row_bytes.eq(issue.store_row_bytes)]
            wiring.connect(m, sdma.sp, sp_read["store"])
            wiring.connect(m, sdma.acc, acc_read["store"])
        wiring.connect(m, sdma.dram, wiring.flipped(self.dram.write))

        m.submodules.matrix = mat = (WSMatrixUnit if p.ws else OSMatrixUnit)(p)
        m.d.comb += [mat.issue.eq(issue.issue_gemm), mat.head.eq(fetch.compute.data),
                     mat.next_head.eq(fetch.compute.next_data)]
        wiring.connect(m, issue.gemm, mat.timing)
        wiring.connect(m, mat.sp_a, sp_read["matrix_a"])
        wiring.connect(m, mat.sp_b, sp_read["matrix_b"])

        m.submodules.vector = vec = VectorUnit(p)
        m.d.comb += [vec.issue.eq(issue.issue_vec), vec.head.eq(fetch.compute.data),
                     vec.next_head.eq(fetch.compute.next_data)]
        wiring.connect(m, vec.src, acc_read["vec_src"])
        wiring.connect(m, vec.src2, acc_read["vec_src2"])
        shared = acc_write["drain0_or_vec"]
        if p.ws:
            wiring.connect(m, mat.drain_read[0], acc_read["drain1"])
            wiring.connect(m, mat.drain_write[0], acc_write["drain1"])
            wiring.connect(m, vec.dst, shared)
        else:
            for lane in range(2):
                wiring.connect(m, mat.drain_read[lane], acc_read[f"drain{lane}"])
            wiring.connect(m, mat.drain_write[1], acc_write["drain1"])
            lane0 = mat.drain_write[0]
            m.d.comb += [shared.en.eq(lane0.en | vec.dst.en), shared.addr.eq(Mux(vec.dst.en, vec.dst.addr, lane0.addr)),
                         shared.data.eq(Mux(vec.dst.en, vec.dst.data, lane0.data))]

        m.submodules.counters = cnt = EventCounters()
        wiring.connect(m, cnt.count, wiring.flipped(self.counters))
        sources = {
            "instructions": [issue.issue_load, issue.issue_store, issue.issue_gemm | issue.issue_vec],
            "vector_ops": [vec.vector_ops],
            "scratchpad_read_bytes": [sdma.scratchpad_read_bytes, mat.scratchpad_read_bytes],
            "scratchpad_write_bytes": [ldma.scratchpad_write_bytes],
            "accumulator_read_bytes": [sdma.accumulator_read_bytes, mat.accumulator_read_bytes,
                                       vec.accumulator_read_bytes],
            "accumulator_write_bytes": [ldma.accumulator_write_bytes, mat.accumulator_write_bytes,
                                        vec.accumulator_write_bytes],
            "dram_read_bytes": [ldma.dram_read_bytes], "dram_write_bytes": [sdma.dram_write_bytes],
            MACS: [mat.macs],
        }
        assert set(sources) == set(COUNTERS), "every event counter needs its sources"
        for name, incs in sources.items():
            m.d.comb += getattr(cnt.inc, name).eq(sum(incs))

        m.submodules.unit_counters = ucnt = UnitCounters(p)
        wiring.connect(m, ucnt.count, wiring.flipped(self.units))
        m.d.comb += [ucnt.active.eq(issue.active), ucnt.cycle.eq(issue.cycle), ucnt.dispatched.eq(fetch.dispatched),
                     ucnt.dispatched_gemm.eq(fetch.dispatched_gemm), ucnt.dispatched_vec.eq(fetch.dispatched_vec),
                     ucnt.load.issue.eq(issue.issue_load), ucnt.load.end.eq(issue.load_end),
                     ucnt.load.waiting.eq(fetch.load.ready),
                     ucnt.matrix.issue.eq(issue.issue_gemm), ucnt.matrix.end.eq(issue.compute_end),
                     ucnt.vector.issue.eq(issue.issue_vec), ucnt.vector.end.eq(issue.compute_end),
                     ucnt.store.issue.eq(issue.issue_store), ucnt.store.end.eq(issue.store_end),
                     ucnt.store.waiting.eq(fetch.store.ready)]
        return m
