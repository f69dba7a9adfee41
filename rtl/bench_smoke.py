"""cocotb bench for `rtl.smoke.Mac`: drives the pairs from the job and returns the running sums."""
from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from rtl.verilator import bench_job, bench_result


@cocotb.test()
async def run_mac(dut):
    job = bench_job()
    cocotb.start_soon(Clock(dut.clk, 2, unit="ns").start())
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    sums = []
    for i, (a, b) in enumerate(job["pairs"]):
        dut.a.value = a
        dut.b.value = b
        dut.en.value = 1
        dut.clear.value = int(i == 0)
        await RisingEdge(dut.clk)
    dut.en.value = 0
    await RisingEdge(dut.clk)
    sums.append(dut.acc.value.to_signed())
    bench_result({"acc": sums[-1]})
