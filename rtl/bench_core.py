"""cocotb bench of the core: loads a program and a DRAM image, models DRAM, runs to FINISH, reads DRAM back.

The DRAM model is the one of docs/timing.md: a read command seen in cycle s delivers beat i (bw bytes,
one burst of ceil(row bytes / bw) beats per row; with `merge`, the design's `dram_burst_merge`, rows
contiguous in DRAM (stride = row bytes) as one burst of ceil(rows * row bytes / bw) beats) in cycle
s + lat + i; write beats are applied as they come, or with `posted` (the design's `dram_posted_stores`,
whose stores send their beats from s + 1) lat - 1 cycles later, so a store's data reaches DRAM at the end
of s + lat + beats - 1 either way. The bench samples the core's outputs and drives its inputs at the
falling clock edge, so the core's cycle n is the n-th falling edge after `run` rises (cycle 1 is the one
in which it rises).
Ports are the core's wiring signature flattened by Amaranth (`dram.cmd.valid` is `dram__cmd__valid`);
the counters to read back are named in the job (`rtl.params.COUNTERS`, `UNIT_COUNTERS`).
"""
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from isa.design import ceil_div
from rtl.verilator import bench_job, bench_result


@cocotb.test()
async def run_program(dut):
    job = bench_job()
    try:
        await _run(dut, job)
    except Exception as exc:  # report to the runner instead of only in the cocotb log
        bench_result({"error": f"{type(exc).__name__}: {exc}"})
        raise


async def _run(dut, job):
    bw, lat = job["bw"], job["lat"]
    dram = np.fromfile(job["dram_in"], dtype=np.uint8) if job.get("dram_in") else np.zeros(0, np.uint8)
    image = np.zeros(job["dram_bytes"], dtype=np.uint8)
    image[:dram.size] = dram
    words = [int(w, 16) for w in job["program"]]
    max_cycles = job.get("max_cycles", 1_000_000)

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.run.value = 0
    dut.imem__en.value = 0
    dut.dram__read__valid.value = 0
    dut.dram__read__data.value = 0
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    for addr, w in enumerate(words):
        await FallingEdge(dut.clk)
        dut.imem__en.value = 1
        dut.imem__addr.value = addr
        dut.imem__data.value = w
    await FallingEdge(dut.clk)
    dut.imem__en.value = 0
    t0 = time.monotonic()
    await FallingEdge(dut.clk)
    dut.run.value = 1  # this is cycle 1
    t_start = get_sim_time("ps")
    beats: dict[int, int] = {}
    writes: dict[int, list[tuple[int, bytes]]] = {}  # cycle -> write beats that reach DRAM then
    write_delay = lat - 1 if job.get("posted") else 0
    cycle = 1
    done = False
    while cycle < max_cycles:
        await FallingEdge(dut.clk)
        cycle += 1
        if dut.done.value:
            done = True
            break
        if dut.error.value:
            raise RuntimeError(f"core raised its error flag in cycle {cycle}")
        if dut.dram__cmd__valid.value:
            addr = int(dut.dram__cmd__addr.value)
            stride = int(dut.dram__cmd__stride.value)
            rows = int(dut.dram__cmd__rows.value)
            row_bytes = int(dut.dram__cmd__row_bytes.value)
            if not dut.dram__cmd__write.value:
                if job.get("merge") and stride == row_bytes:  # one burst: the rows are one run of bytes
                    rows, row_bytes = 1, rows * row_bytes
                nb = ceil_div(row_bytes, bw)
                i = 0
                for r in range(rows):
                    base = addr + r * stride
                    for j in range(nb):
                        lo = base + j * bw
                        n = max(0, min(bw, row_bytes - j * bw))
                        chunk = bytes(image[lo:lo + n]) + bytes(bw - n)
                        beats[cycle + lat + i] = int.from_bytes(chunk, "little")
                        i += 1
        if dut.dram__write__valid.value:
            waddr = int(dut.dram__write__addr.value)
            wlen = int(dut.dram__write__len.value)
            data = int(dut.dram__write__data.value).to_bytes(bw, "little")
            writes.setdefault(cycle + write_delay, []).append((waddr, data[:wlen]))
        for waddr, data in writes.pop(cycle, ()):
            image[waddr:waddr + len(data)] = np.frombuffer(data, dtype=np.uint8)
        beat = beats.pop(cycle, None)
        if beat is None:
            dut.dram__read__valid.value = 0
        else:
            dut.dram__read__valid.value = 1
            dut.dram__read__data.value = beat
    t_end = get_sim_time("ps")
    await ReadOnly()
    wall = time.monotonic() - t0
    result = {"done": done, "cycles": int(dut.cycle.value) if done else None, "bench_cycles": cycle,
              "wall_seconds": wall, "t_start_ps": t_start, "t_end_ps": t_end,
              "counters": {name: int(getattr(dut, f"counters__{name}").value) for name in job["counters"]},
              "units": {name: int(getattr(dut, f"units__{name}").value) for name in job["unit_counters"]}}
    image.tofile(job["dram_out"])
    result["dram_out"] = str(Path(job["dram_out"]))
    bench_result(result)
