"""Fetch: the instruction memory, the generated decoder, and dispatch into the three instruction queues.

Fetch dispatches one instruction per cycle into its queue while the core is active, stops at FINISH
(or at an opcode the ISA table does not know, which it reports as `bad_op`), and stalls while the
target queue is full.
"""
from __future__ import annotations

from amaranth import Array, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from isa.instructions import QUEUES, WORD_BITS
from rtl.decoder import Decoder
from rtl.params import CoreParams
from rtl.signatures import imem_write, queue_head


class IMem(wiring.Component):
    """Instruction memory: written by the bench before `run`, read combinationally by fetch."""

    def __init__(self, words: int):
        self.words = words
        super().__init__({"write": In(imem_write(words)), "raddr": In(range(words + 1)), "rdata": Out(WORD_BITS)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=WORD_BITS, depth=self.words, init=[])
        wp = mem.write_port()
        rp = mem.read_port(domain="comb")
        m.d.comb += [wp.en.eq(self.write.en), wp.addr.eq(self.write.addr), wp.data.eq(self.write.data),
                     rp.addr.eq(self.raddr), self.rdata.eq(rp.data)]
        return m


class PeekFIFO(wiring.Component):
    """An instruction queue: `depth` entries, visible to the unit the cycle after they are written.

    `w_rdy` counts entries at the start of the cycle (an entry issued in cycle t frees its slot for
    cycle t + 1, docs/timing.md section 1). `head.next_data` is the head as it will be in the next cycle
    (after this cycle's read and write), for reads one cycle ahead of issue.
    """

    def __init__(self, width: int, depth: int):
        self.width, self.depth = width, depth
        super().__init__({"w_en": In(1), "w_data": In(width), "w_rdy": Out(1), "head": Out(queue_head(depth))})

    def elaborate(self, platform):
        m = Module()
        D = self.depth
        mem = Array(Signal(self.width, name=f"entry{i}") for i in range(D))
        head = Signal(range(D))
        level = Signal(range(D + 1))
        tail = Signal(range(D))

        def inc(x):
            return Mux(x == D - 1, 0, x + 1)

        m.d.comb += [self.head.level.eq(level), self.w_rdy.eq(level < D), self.head.ready.eq(level != 0),
                     self.head.data.eq(mem[head]), tail.eq(Mux(head + level >= D, head + level - D, head + level))]
        do_w = self.w_en & (level < D)
        do_r = self.head.take & (level != 0)
        with m.If(do_w):
            m.d.sync += mem[tail].eq(self.w_data)
        with m.If(do_r):
            m.d.sync += head.eq(inc(head))
        m.d.sync += level.eq(level + do_w - do_r)
        nh = Mux(do_r, inc(head), head)
        left = level - do_r
        m.d.comb += self.head.next_data.eq(Mux(left != 0, mem[nh], self.w_data))
        return m


class Fetch(wiring.Component):
    """Instruction memory -> decoder -> the load, compute and store queues, whose heads it exposes."""

    def __init__(self, p: CoreParams):
        self.p = p
        super().__init__({
            "imem": In(imem_write(p.imem_words)), "active": In(1),
            **{q: Out(queue_head(p.depth)) for q in QUEUES},
            "dispatched": Out(1), "dispatched_gemm": Out(1), "dispatched_vec": Out(1),
            "finish_seen": Out(1),  # FINISH has been fetched (this cycle or earlier)
            "bad_op": Out(1),  # an unknown opcode reached fetch this cycle
        })

    def elaborate(self, platform):
        p = self.p
        m = Module()
        m.submodules.imem = imem = IMem(p.imem_words)
        wiring.connect(m, wiring.flipped(self.imem), imem.write)
        pc = Signal(range(p.imem_words + 1))
        stopped = Signal()
        m.d.comb += imem.raddr.eq(pc)
        word = imem.rdata
        m.submodules.decoder = dec = Decoder()
        m.d.comb += dec.word.eq(word)
        to_queue = {"load": dec.is_load, "store": dec.is_store, "compute": dec.is_gemm | dec.is_vec}
        can_fetch = self.active & ~stopped
        for q in QUEUES:
            fifo = PeekFIFO(WORD_BITS, p.depth)
            m.submodules[f"{q}_queue"] = fifo
            wiring.connect(m, wiring.flipped(getattr(self, q)), fifo.head)
            put = can_fetch & to_queue[q] & fifo.w_rdy
            m.d.comb += [fifo.w_data.eq(word), fifo.w_en.eq(put)]
            with m.If(put):
                m.d.comb += self.dispatched.eq(1)
            if q == "compute":
                m.d.comb += [self.dispatched_gemm.eq(put & dec.is_gemm), self.dispatched_vec.eq(put & dec.is_vec)]
        finish_now = can_fetch & dec.is_finish
        with m.If(self.dispatched):
            m.d.sync += pc.eq(pc + 1)
        m.d.comb += [self.finish_seen.eq(stopped | finish_now), self.bad_op.eq(can_fetch & ~dec.valid)]
        with m.If(finish_now | self.bad_op):
            m.d.sync += stopped.eq(1)
        return m
