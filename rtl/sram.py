"""On-chip SRAMs: a single-port-pair bank (`SRAM`) and the banked memories of the core (`BankedSRAM`).

Keeping every memory in a module of its own lets the area flow count it as an SRAM macro (by bits)
and the activity flow attribute its toggles to the block that owns it.
"""
from amaranth import Module, Signal
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


def _ports(width: int, depth: int, n_read: int, n_write: int) -> dict:
    ports = {}
    for p in range(n_read):
        ports[f"r{p}_addr"] = In(range(max(depth, 2)))
        ports[f"r{p}_en"] = In(1)
        ports[f"r{p}_data"] = Out(width)
    for w in range(n_write):
        ports[f"w{w}_addr"] = In(range(max(depth, 2)))
        ports[f"w{w}_en"] = In(1)
        ports[f"w{w}_data"] = In(width)
    return ports


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
        for w in range(self.n_write):
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(getattr(self, f"w{w}_addr")), wp.en.eq(getattr(self, f"w{w}_en")),
                         wp.data.eq(getattr(self, f"w{w}_data"))]
            wps.append(wp)
        for p in range(self.n_read):
            rp = mem.read_port(transparent_for=wps)
            m.d.comb += [rp.addr.eq(getattr(self, f"r{p}_addr")), rp.en.eq(getattr(self, f"r{p}_en")),
                         getattr(self, f"r{p}_data").eq(rp.data)]
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
        for w in range(self.n_write):
            addr = getattr(self, f"w{w}_addr")
            for b, bank in enumerate(banks):
                hit = (addr >= b * per) & (addr < (b + 1) * per)
                m.d.comb += [getattr(bank, f"w{w}_addr").eq(addr - b * per),
                             getattr(bank, f"w{w}_en").eq(getattr(self, f"w{w}_en") & hit),
                             getattr(bank, f"w{w}_data").eq(getattr(self, f"w{w}_data"))]
        for p in range(self.n_read):
            addr = getattr(self, f"r{p}_addr")
            en = getattr(self, f"r{p}_en")
            sel = Signal(self.banks, name=f"r{p}_sel")
            hits = []
            for b, bank in enumerate(banks):
                hit = (addr >= b * per) & (addr < (b + 1) * per)
                hits.append(hit)
                m.d.comb += [getattr(bank, f"r{p}_addr").eq(addr - b * per),
                             getattr(bank, f"r{p}_en").eq(en & hit)]
            with m.If(en):
                for b in range(self.banks):
                    m.d.sync += sel[b].eq(hits[b])
            data = 0
            for b, bank in enumerate(banks):
                data = data | (getattr(bank, f"r{p}_data") & sel[b].replicate(self.width))
            m.d.comb += getattr(self, f"r{p}_data").eq(data)
        return m
