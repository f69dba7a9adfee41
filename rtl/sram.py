"""An on-chip SRAM bank: one synchronous read port and one write port, as its own module.

Keeping every memory in a module of its own lets the area flow count it as an SRAM macro (by bits)
and the activity flow attribute its toggles to the block that owns it.
"""
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out


class SRAM(wiring.Component):
    """`depth` words of `width` bits; read data appears the cycle after `rd_en` (registered read)."""

    def __init__(self, width: int, depth: int):
        self.width, self.depth = width, depth
        super().__init__({
            "rd_addr": In(range(max(depth, 2))), "rd_en": In(1), "rd_data": Out(width),
            "wr_addr": In(range(max(depth, 2))), "wr_en": In(1), "wr_data": In(width),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=self.width, depth=self.depth, init=[])
        rd = mem.read_port()
        wr = mem.write_port()
        m.d.comb += [rd.addr.eq(self.rd_addr), rd.en.eq(self.rd_en), self.rd_data.eq(rd.data),
                     wr.addr.eq(self.wr_addr), wr.en.eq(self.wr_en), wr.data.eq(self.wr_data)]
        return m
