"""A tiny component (a multiply-accumulate register) used to prove the Verilator + cocotb flow."""

from amaranth import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class Mac(wiring.Component):
    """acc <= clear ? a*b : acc + a*b, one per cycle when `en`."""

    a: In(signed(8))
    b: In(signed(8))
    en: In(1)
    clear: In(1)
    acc: Out(signed(32))

    def elaborate(self, platform):
        m = Module()
        r = Signal(signed(32))
        with m.If(self.en):
            with m.If(self.clear):
                m.d.sync += r.eq(self.a * self.b)
            with m.Else():
                m.d.sync += r.eq(r + self.a * self.b)
        m.d.comb += self.acc.eq(r)
        return m
