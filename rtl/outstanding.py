"""Outstanding DRAM requests (docs/timing.md section 7, `dram_outstanding_requests` > 1): the command queues.

With N requests in flight a DMA issues while earlier ones of its unit still wait for their data, but the data
of one unit still moves one DMA after another: a load's first beat arrives after the previous load's last beat
and pad rows (the unit rule), a store's first beat leaves after the previous store's last one. So each engine
stays a single engine, and a `DelayLine` hands it each command a fixed number of cycles after the issue, when
the engine has finished (or is finishing, in that very cycle) the previous one.
"""
from __future__ import annotations

from amaranth import Array, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa.instructions import WORD_BITS
from rtl.params import CoreParams, T


class DelayLine(wiring.Component):
    """Each word issued in cycle s comes out (`out_issue` high, `out_word`) in cycle s + `delay`, in order.

    Holds up to `p.outstanding` words: only DMAs with a request in flight (each in flight longer than
    `delay` cycles) pass through it. `overflow` rises if one more arrives while it is full.
    """

    def __init__(self, p: CoreParams, delay: int):
        self.p, self.delay = p, delay
        super().__init__({"cycle": In(T), "issue": In(1), "word": In(WORD_BITS),
                          "out_issue": Out(1), "out_word": Out(WORD_BITS), "overflow": Out(1)})

    def elaborate(self, platform):
        m = Module()
        if self.delay == 0:
            m.d.comb += [self.out_issue.eq(self.issue), self.out_word.eq(self.word)]
            return m
        n = self.p.outstanding
        words = Array(Signal(WORD_BITS, name=f"word{i}") for i in range(n))
        due = Array(Signal(T, name=f"due{i}") for i in range(n))
        head, count = Signal(range(n)), Signal(range(n + 1))
        pop = (count != 0) & (due[head] == self.cycle)
        m.d.comb += [self.out_issue.eq(pop), self.out_word.eq(words[head])]
        end = head + count
        tail = Mux(end >= n, end - n, end)
        with m.If(self.issue):
            m.d.sync += [words[tail].eq(self.word), due[tail].eq(self.cycle + self.delay)]
        with m.If(pop):
            m.d.sync += head.eq(Mux(head == n - 1, 0, head + 1))
        m.d.comb += self.overflow.eq(self.issue & (count == n) & ~pop)
        m.d.sync += count.eq(count + self.issue - pop)
        return m
