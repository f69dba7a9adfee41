"""What the simulator's DRAM options (docs/timing.md section 7) change, against the same design without them.

    python -m bench.dram_options               # h100-like and rx7900xtx-like GEMMs, datacenter store/load cases
    python -m bench.dram_options --json out.json

Per reference design that turns the options on (outstanding requests, burst merging, posted stores), the
peer is the same design with the three fields at their defaults (the blocking fixed-latency DRAM the RTL
implements), run in the same process through `workbench.estimate`. Printed per GEMM: TFLOPS and time of
both, the ratio, and how close each run's slowest core comes to its own DRAM roof (bytes it moves / its
bandwidth share, over its cycles). Then two single-core cases on datacenter-bf16-128x128: the store-bound
4096x4096x1 GEMM against its store-bandwidth floor, and contiguous 256 B scratchpad rows on its 512 B bus.
The measured H100 SXM figures the issue quotes are printed beside the h100-like rows (docs/models.md,
workbench/measured_gemm.csv). The simulator is deterministic: repeats give the same cycles.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from compiler.accel.gemm_run import simulate_gemm
from isa.assembler import assemble
from isa.design import Design, load_design
from sim.simulator import simulate
from workbench.estimate import estimate, parse_workload

SHAPES = ((1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096), (8192, 8192, 8192), (1, 8192, 8192))
# Issue 14's measured H100 SXM bf16 figures (TFLOPS; the GEMV as its 40 us bandwidth bound), for context.
H100_MEASURED = {(1024, 1024, 1024): "~236", (2048, 2048, 2048): "~632", (4096, 4096, 4096): "~783",
                 (8192, 8192, 8192): "760-795", (1, 8192, 8192): "40 us bound"}


def without_options(design: Design) -> Design:
    """`design` with the section 7 DRAM fields at their defaults (the blocking port)."""
    return design.replace(memory=dataclasses.replace(design.memory, dram_outstanding_requests=1,
                                                     dram_burst_merge=False, dram_posted_stores=False))


def gemm_row(design: Design, shape: tuple[int, int, int]) -> dict:
    """TFLOPS, microseconds, cycles and the fraction of the slowest core's own DRAM roof of one GEMM."""
    est = estimate(design, parse_workload("gemm:{}x{}x{}".format(*shape)))
    f, c = est.figures, est.counters
    cycles = int(f["achieved_tflops"].note.split()[0].replace(",", ""))
    roof = (c["dram_read_bytes"] + c["dram_write_bytes"]) / design.chip.cores / design.memory.dram_bandwidth_bytes_per_cycle
    return {"tflops": f["achieved_tflops"].value, "us": f["seconds"].value * 1e6, "cycles": cycles,
            "roof_fraction": roof / cycles}


def datacenter_cases() -> dict:
    """The store-bound GEMM and the contiguous-row loads on datacenter-bf16-128x128, options on and off."""
    on = load_design("datacenter-bf16-128x128")
    off = without_options(on)
    out = {}
    store_floor = 4096 * 4096 * on.acc_bytes // on.memory.dram_bandwidth_bytes_per_cycle
    out["gemm 4096x4096x1"] = {"floor_cycles": store_floor, **{
        tag: simulate_gemm(4096, 4096, 1, design=d, values=False).cycles for tag, d in (("off", off), ("on", on))}}
    rows, row_bytes = 4000, on.scratchpad_row_bytes
    text = "\n".join(f"load.sp sram={i * rows} dram={i * rows * row_bytes} rows={rows} cols={on.dim} "
                     f"stride={row_bytes}" for i in range(8)) + "\nfinish"
    moved = 8 * rows * row_bytes
    out["8 contiguous loads"] = {"bytes": moved, **{
        tag: simulate(d, assemble(text), values=False).cycles for tag, d in (("off", off), ("on", on))}}
    return out


def main() -> None:
    """Run the comparison and print it (and write JSON with --json)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    results: dict = {}
    for name in ("h100-like", "rx7900xtx-like"):
        on = load_design(name)
        off = without_options(on)
        print(f"{name}: off = DRAM options at their defaults (peer), on = the shipped design")
        print(f"  {'GEMM MxNxK':>16} {'off TFLOPS':>10} {'on TFLOPS':>10} {'on/off':>7} {'off us':>9} {'on us':>9} "
              f"{'off roof':>8} {'on roof':>8}" + ("  measured H100 SXM" if name == "h100-like" else ""))
        for shape in SHAPES:
            a, b = gemm_row(off, shape), gemm_row(on, shape)
            results[f"{name} {shape}"] = {"off": a, "on": b}
            extra = f"  {H100_MEASURED[shape]}" if name == "h100-like" else ""
            print(f"  {'x'.join(map(str, shape)):>16} {a['tflops']:10.1f} {b['tflops']:10.1f} "
                  f"{b['tflops'] / a['tflops']:7.2f} {a['us']:9.1f} {b['us']:9.1f} {a['roof_fraction']:8.0%} "
                  f"{b['roof_fraction']:8.0%}{extra}")
    dc = datacenter_cases()
    results["datacenter-bf16-128x128"] = dc
    g = dc["gemm 4096x4096x1"]
    print(f"datacenter-bf16-128x128 gemm 4096x4096x1: off {g['off']:,} cycles, on {g['on']:,} "
          f"(store-bandwidth floor {g['floor_cycles']:,})")
    ld = dc["8 contiguous loads"]
    print(f"datacenter-bf16-128x128 contiguous 256 B rows: off {ld['bytes'] / ld['off']:.0f} B/cycle, "
          f"on {ld['bytes'] / ld['on']:.0f} B/cycle of 512")
    if args.json:
        path = Path(args.json)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(results, indent=1, default=str))
        tmp.replace(path)


if __name__ == "__main__":
    main()
