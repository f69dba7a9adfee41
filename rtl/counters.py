"""Performance counters in hardware: event counters (as the simulator's) and per-unit busy/stalled counts."""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, Signature

from rtl.params import COUNTER_BITS, COUNTERS, UNIT_COUNTERS, UNITS, CoreParams, T
from rtl.signatures import event_counters, unit_counters

INCREMENT_BITS = 32  # one cycle's increment of an event counter (bytes or MACs moved in that cycle)


class EventCounters(wiring.Component):
    """Adds each cycle's increment to its counter (names and order: isa.counters)."""

    def __init__(self):
        super().__init__({"inc": In(Signature({name: Out(INCREMENT_BITS) for name in COUNTERS})),
                          "count": Out(event_counters())})

    def elaborate(self, platform):
        m = Module()
        for name in COUNTERS:
            total = Signal(COUNTER_BITS, name=f"cnt_{name}")
            m.d.sync += total.eq(total + getattr(self.inc, name))
            m.d.comb += getattr(self.count, name).eq(total)
        return m


def unit_activity(waiting: bool = True) -> Signature:
    """One unit this cycle: it issues; the end (s + L) of what it issues; (`waiting`) an instruction of its waits."""
    return Signature({"issue": Out(1), "end": Out(T), **({"waiting": Out(1)} if waiting else {})})


class UnitCounters(wiring.Component):
    """Per-unit accounting, as the simulator's `units` table.

    A unit is busy in a cycle covered by one of its instructions' busy windows; it is stalled in a cycle
    where its oldest waiting instruction has been dispatched, the unit is free, and it does not issue.
    Fetch: busy = dispatches; stalled = the cycle of the last (non-FINISH) dispatch minus the number of
    dispatches. The matrix and vector units share the compute queue, so each counts its own dispatched,
    not yet issued instructions.
    """

    def __init__(self, p: CoreParams):
        self.p = p
        super().__init__({
            "active": In(1), "cycle": In(T), "dispatched": In(1), "dispatched_gemm": In(1), "dispatched_vec": In(1),
            # load and store own their queues (waiting = queue not empty); matrix and vector share one
            **{u: In(unit_activity(waiting=u in ("load", "store"))) for u in UNITS}, "count": Out(unit_counters()),
        })

    def elaborate(self, platform):
        m = Module()
        cyc = self.cycle
        cnt = {name: Signal(T, name=f"unit_{name}") for name in UNIT_COUNTERS}
        for name in UNIT_COUNTERS:
            m.d.comb += getattr(self.count, name).eq(cnt[name])
        n_gemm, n_vec = Signal(range(self.p.depth + 1)), Signal(range(self.p.depth + 1))
        m.d.sync += [n_gemm.eq(n_gemm + self.dispatched_gemm - self.matrix.issue),
                     n_vec.eq(n_vec + self.dispatched_vec - self.vector.issue)]
        waiting = {"load": self.load.waiting, "matrix": n_gemm != 0, "vector": n_vec != 0,
                   "store": self.store.waiting}
        for name in UNITS:
            unit = getattr(self, name)
            iss, end = unit.issue, unit.end
            bu = Signal(T, name=f"unit_{name}_busy_until")
            with m.If(iss & (end > bu)):
                m.d.sync += bu.eq(end)
            with m.If(self.active):
                m.d.sync += [cnt[f"{name}_busy"].eq(cnt[f"{name}_busy"] + (iss | (cyc < bu))),
                             cnt[f"{name}_stalled"].eq(cnt[f"{name}_stalled"] + (waiting[name] & (cyc >= bu) & ~iss)),
                             cnt[f"{name}_instructions"].eq(cnt[f"{name}_instructions"] + iss)]
        with m.If(self.dispatched):
            m.d.sync += [cnt["fetch_instructions"].eq(cnt["fetch_instructions"] + 1),
                         cnt["fetch_last_dispatch"].eq(cyc)]
        return m
