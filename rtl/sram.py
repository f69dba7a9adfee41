"""On-chip SRAMs: a single-port-pair bank (`SRAM`) and the banked memories of the core (`BankedSRAM`).

Keeping every memory in a module of its own lets the area flow count it as an SRAM macro (by bits)
and the activity flow attribute its toggles to the block that owns it.
"""
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.signatures import sram_read, sram_write


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


def _ports(width: int, depth: int, n_read: int, n_write: int) -> dict:
    """`read[i]` and `write[i]` ports, flipped: the memory is the side that answers them."""
    return {"read": In(sram_read(width, depth)).array(n_read), "write": In(sram_write(width, depth)).array(n_write)}


class Bank(wiring.Component):
    """One bank: `n_read` registered read ports, each transparent to all `n_write` write ports.

    Transparency means a read in the cycle of a write to the same row returns the new data, as a
    bypass around the macro would (the unit reading in the cycle a producer completes sees its result).
    """

    def __init__(self, width: int, depth: int, n_read: int, n_write: int):
        self.width, self.depth, self.n_read, self.n_write = width, depth, n_read, n_write
        super().__init__(_ports(width, depth, n_read, n_write))

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=self.width, depth=self.depth, init=[])
        wps = []
        for port in self.write:
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(port.addr), wp.en.eq(port.en), wp.data.eq(port.data)]
            wps.append(wp)
        for port in self.read:
            rp = mem.read_port(transparent_for=wps)
            m.d.comb += [rp.addr.eq(port.addr), rp.en.eq(port.en), port.data.eq(rp.data)]
        return m


class BankedSRAM(wiring.Component):
    """`rows` rows of `width` bits in `banks` banks of consecutive rows (row r in bank r // (rows/banks))."""

    def __init__(self, width: int, rows: int, banks: int, n_read: int, n_write: int):
        assert rows % banks == 0
        self.width, self.rows, self.banks, self.n_read, self.n_write = width, rows, banks, n_read, n_write
        super().__init__(_ports(width, rows, n_read, n_write))

    def elaborate(self, platform):
        m = Module()
        per = self.rows // self.banks
        banks = []
        for b in range(self.banks):
            bank = Bank(self.width, per, self.n_read, self.n_write)
            m.submodules[f"bank{b}"] = bank
            banks.append(bank)
        for w, port in enumerate(self.write):
            for b, bank in enumerate(banks):
                hit = (port.addr >= b * per) & (port.addr < (b + 1) * per)
                m.d.comb += [bank.write[w].addr.eq(port.addr - b * per), bank.write[w].en.eq(port.en & hit),
                             bank.write[w].data.eq(port.data)]
        for p, port in enumerate(self.read):
            sel = Signal(self.banks, name=f"r{p}_sel")
            hits = []
            for b, bank in enumerate(banks):
                hit = (port.addr >= b * per) & (port.addr < (b + 1) * per)
                hits.append(hit)
                m.d.comb += [bank.read[p].addr.eq(port.addr - b * per), bank.read[p].en.eq(port.en & hit)]
            with m.If(port.en):
                for b in range(self.banks):
                    m.d.sync += sel[b].eq(hits[b])
            data = 0
            for b, bank in enumerate(banks):
                data = data | (bank.read[p].data & sel[b].replicate(self.width))
            m.d.comb += port.data.eq(data)
        return m
