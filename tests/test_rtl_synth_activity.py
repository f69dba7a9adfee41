"""Area flow (generic Yosys synthesis, SRAM counted by bits) and VCD toggle counting on small blocks."""
import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from isa.technology import nand2_um2 as um2_per_ge
from isa.technology import sram_macro_um2 as sram_um2
from rtl.activity import count_toggles, energy_per_toggle_pj, energy_report
from rtl.array import OSArray
from rtl.sram import SRAM
from rtl.synth import area_report, ge_of_cell, memories_by_module
from rtl.verilator import to_verilog

pytestmark = pytest.mark.rtl


class _Top(wiring.Component):
    a: In(8)
    o: Out(32)

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = arr = OSArray(2, 2)
        m.submodules.buf = s = SRAM(16, 256)
        m.d.comb += [s.wr_data.eq(self.a), s.wr_addr.eq(self.a), s.wr_en.eq(1), s.rd_addr.eq(self.a + 1),
                     s.rd_en.eq(1)]
        m.d.comb += [arr.a[0].eq(s.rd_data[:8]), arr.a[1].eq(self.a), arr.b[0].eq(self.a),
                     arr.b[1].eq(s.rd_data[8:]), arr.valid.eq(1), arr.last.eq(self.a[0]),
                     self.o.eq(arr.result[0][1])]
        return m


def test_gate_equivalents():
    assert ge_of_cell("$_NAND_") == 1.0
    assert ge_of_cell("$_NOT_") < 1 < ge_of_cell("$_XOR_") < ge_of_cell("$_MUX_") < ge_of_cell("$_DFF_P_")
    assert ge_of_cell("$_SDFFE_PP0P_") > ge_of_cell("$_DFFE_PP_") > ge_of_cell("$_DFF_P_")
    assert um2_per_ge(28) > um2_per_ge(16) > um2_per_ge(7)
    assert sram_um2(8 * 65536, 16) < 2 * sram_um2(8 * 32768, 16)  # bigger macros are more efficient


def test_area_report_counts_sram_by_bits_and_logic_per_block():
    text = to_verilog(_Top(), "top")
    assert memories_by_module(text)["top.buf"] == [(16, 256)]
    rep = area_report(text, "t", 28, {"array": "top.array", "buffers": "top.buf"})
    assert rep.blocks["buffers"].sram_bits == 16 * 256 and rep.blocks["buffers"].sram_macros == 1
    assert rep.blocks["array"].sram_bits == 0 and rep.blocks["array"].logic_ge > 1000
    assert rep.blocks["array"].flops > 0
    assert rep.logic_depth and rep.logic_depth > 10
    assert rep.total_mm2 > rep.blocks["array"].logic_mm2 > 0


def test_toggle_counting_on_amaranth_vcd(tmp_path):
    dut = OSArray(2, 2)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    rng = np.random.default_rng(0)

    async def bench(ctx):
        for t in range(20):
            for i in range(2):
                ctx.set(dut.a[i], int(rng.integers(-128, 128)))
                ctx.set(dut.b[i], int(rng.integers(-128, 128)))
            ctx.set(dut.valid, 1)
            ctx.set(dut.first, t % 4 == 0)
            ctx.set(dut.last, t % 4 == 3)
            ctx.set(dut.tid, (t // 4) % 4)
            await ctx.tick()

    sim.add_testbench(bench)
    vcd = tmp_path / "w.vcd"
    with sim.write_vcd(str(vcd)):
        sim.run()
    act = count_toggles(vcd, {"pe00": "pe_0_0", "pe11": "pe_1_1"})
    assert act.cycles >= 19
    assert act.toggles["pe00"] > 0 and act.toggles["pe11"] > 0
    rep = energy_report(act, 28, macs=20 * 4)
    assert rep["energy_pj_per_mac"] > 0
    assert energy_per_toggle_pj(7) < energy_per_toggle_pj(28) < energy_per_toggle_pj(45)
