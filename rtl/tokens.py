"""Token counters between the queues (docs/timing.md section 4): a push matures at s + L, a pop is immediate."""
from __future__ import annotations

from amaranth import Array, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, Signature

from isa.counters import C2L, C2S, L2C, S2C, TOKENS
from rtl.params import CoreParams, T

TOKEN_BITS = 16


def token_push(*flags: str) -> Signature:
    """A push issued this cycle that matures in cycle `at`; `flags` name the counters it pushes."""
    return Signature({"valid": Out(1), "at": Out(T), **{f: Out(1) for f in flags}})


class Tokens(wiring.Component):
    """The four token counters and their pending pushes.

    `avail[i]` is what an instruction issuing this cycle may pop from counter i (isa.counters.TOKENS
    order): the count plus a push maturing this cycle. With one DRAM request in flight, load and store
    have one pending push each (a unit issues its next push only after the last one matured); with more
    (`p.queued`) each keeps a FIFO of `N + 1` (its DMAs in flight, and one without rows), valid because a
    DMA unit's completions are in program order (docs/timing.md section 7). Compute keeps a FIFO of
    them, valid because matrix-unit completions are in program order. `overflow` rises when a FIFO is full.
    """

    def __init__(self, p: CoreParams):
        self.p = p
        super().__init__({
            "cycle": In(T), "pop": In(len(TOKENS)),
            "push_load": In(token_push()), "push_store": In(token_push()),
            "push_compute": In(token_push("prev", "next")),
            "avail": Out(TOKEN_BITS + 1).array(len(TOKENS)), "overflow": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        NP = self.p.pending_compute_pushes
        cyc = self.cycle
        tok = [Signal(TOKEN_BITS, name=f"tok_{n}") for n in TOKENS]
        queued = self.p.queued  # several DMAs of a unit in flight: a FIFO of pending pushes per DMA unit
        if not queued:
            pend_l_valid, pend_l_time = Signal(), Signal(T)
            pend_s_valid, pend_s_time = Signal(), Signal(T)
        pend_c_time = Array(Signal(T, name=f"pend_c_time{i}") for i in range(NP))
        pend_c_prev = Array(Signal(name=f"pend_c_prev{i}") for i in range(NP))
        pend_c_next = Array(Signal(name=f"pend_c_next{i}") for i in range(NP))
        pend_c_head = Signal(range(NP))
        pend_c_count = Signal(range(NP + 1))
        if queued:
            l_mature, l_over = _push_fifo(m, "l", self.push_load, cyc, self.p.outstanding + 1)
            s_mature, s_over = _push_fifo(m, "s", self.push_store, cyc, self.p.outstanding + 1)
        else:
            l_mature = pend_l_valid & (pend_l_time <= cyc)
            s_mature = pend_s_valid & (pend_s_time <= cyc)
        c_mature = (pend_c_count != 0) & (pend_c_time[pend_c_head] <= cyc)
        matured = {L2C: l_mature, C2L: c_mature & pend_c_prev[pend_c_head],
                   C2S: c_mature & pend_c_next[pend_c_head], S2C: s_mature}
        for i in range(len(TOKENS)):
            m.d.comb += self.avail[i].eq(tok[i] + matured[i])
            m.d.sync += tok[i].eq(self.avail[i] - self.pop[i])
        if not queued:
            with m.If(l_mature):
                m.d.sync += pend_l_valid.eq(0)
            with m.If(s_mature):
                m.d.sync += pend_s_valid.eq(0)
            with m.If(self.push_load.valid):
                m.d.sync += [pend_l_valid.eq(1), pend_l_time.eq(self.push_load.at)]
            with m.If(self.push_store.valid):
                m.d.sync += [pend_s_valid.eq(1), pend_s_time.eq(self.push_store.at)]
        c_push = self.push_compute.valid
        with m.If(c_mature):
            m.d.sync += pend_c_head.eq(Mux(pend_c_head == NP - 1, 0, pend_c_head + 1))
        tail = Signal(range(NP))
        end = pend_c_head + pend_c_count
        m.d.comb += tail.eq(Mux(end >= NP, end - NP, end))
        with m.If(c_push):
            m.d.sync += [pend_c_time[tail].eq(self.push_compute.at), pend_c_prev[tail].eq(self.push_compute.prev),
                         pend_c_next[tail].eq(self.push_compute.next)]
        c_over = c_push & (pend_c_count == NP)
        m.d.comb += self.overflow.eq(c_over | l_over | s_over if queued else c_over)
        m.d.sync += pend_c_count.eq(pend_c_count + c_push - c_mature)
        return m


def _push_fifo(m: Module, name: str, push, cyc, depth: int):
    """Pending pushes of one DMA unit, oldest first (its DMAs complete in order): (head matures now, overflow)."""
    time = Array(Signal(T, name=f"pend_{name}_time{i}") for i in range(depth))
    head, count = Signal(range(depth), name=f"pend_{name}_head"), Signal(range(depth + 1), name=f"pend_{name}_count")
    mature = (count != 0) & (time[head] <= cyc)
    end = head + count
    tail = Mux(end >= depth, end - depth, end)
    with m.If(push.valid):
        m.d.sync += time[tail].eq(push.at)
    with m.If(mature):
        m.d.sync += head.eq(Mux(head == depth - 1, 0, head + 1))
    m.d.sync += count.eq(count + push.valid - mature)
    return mature, push.valid & (count == depth) & ~mature
