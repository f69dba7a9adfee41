"""The power model at the real chips' *measured* GEMM throughput: separates "energy per operation is wrong" from
"the simulated throughput is wrong".

    PYTHONPATH=$PWD python -m bench.power_at_measured

For each chip of workbench/measured_gemm.csv, the highest measured throughput is taken (a large GEMM), and the
reference design's power model (`workbench.power.sustained_power`) is evaluated at that FLOP rate with two DRAM
rates bracketing the real one: the compulsory traffic (A and B read once, C written once, in the input dtype)
and the design's full DRAM bandwidth. power = energy per event x measured rate + static; compared with the
design's TDP (the real chips run large GEMMs at their power cap).
"""
from __future__ import annotations

from workbench.measured import Measurement, load_measurements, reference_design_for
from workbench.power import SustainedPower, sustained_power

DTYPE_BYTES = {"fp16": 2, "bf16": 2, "fp32": 4, "int8": 1}


def compulsory_dram_bytes_per_s(r: Measurement) -> float:
    """A and B read once and C written once, in the measurement's dtype, over the measured time."""
    seconds = r.flops / (r.measured_tflops * 1e12)
    return r.batch * (r.m * r.k + r.k * r.n + r.m * r.n) * DTYPE_BYTES[r.dtype] / seconds


def power_at_measured(r: Measurement) -> tuple[SustainedPower, SustainedPower, SustainedPower]:
    """The design's power at full load, and at `r`'s throughput with compulsory and with full-bandwidth DRAM."""
    d = reference_design_for(r.chip)
    tdp = d.chip.tdp_w or None
    rate = r.measured_tflops * 1e12
    return (sustained_power(d, tdp),
            sustained_power(d, tdp, flops_per_s=rate, dram_bytes_per_s=compulsory_dram_bytes_per_s(r)),
            sustained_power(d, tdp, flops_per_s=rate))


def main() -> int:
    """Print the breakdowns; returns 0."""
    rows = load_measurements()
    for chip in sorted({r.chip for r in rows}):
        best = max((r for r in rows if r.chip == chip), key=lambda r: r.measured_tflops)
        d = reference_design_for(chip)
        full, low, high = power_at_measured(best)
        full_dram = d.memory.dram_bandwidth_bytes_per_cycle * d.chip.clock_hz * d.chip.cores
        print(f"\n{chip}: {best.dtype} {best.batch}x{best.m}x{best.n}x{best.k} measured {best.measured_tflops} "
              f"TFLOPS ({best.library}; {best.source_url}) on {d.name}, TDP {full.tdp_w} W")
        cols = ("peak, full DRAM", "measured, min DRAM", "measured, full DRAM")
        print(f"  {'part (W)':<22}" + "".join(f"{c:>21}" for c in cols))
        for item in full.items:
            print(f"  {item.name:<22}" + "".join(f"{x.item(item.name):21.1f}" for x in (full, low, high)))
        print(f"  {'total':<22}" + "".join(f"{x.total_w:21.1f}" for x in (full, low, high)))
        if full.tdp_w:
            print(f"  {'vs TDP':<22}" + "".join(f"{x.total_w / full.tdp_w - 1:+21.1%}" for x in (full, low, high)))
        print(f"  {'TFLOPS':<22}" + "".join(f"{x.flops_per_s / 1e12:21.1f}" for x in (full, low, high)))
        dram = (full_dram, compulsory_dram_bytes_per_s(best), full_dram)
        print(f"  {'DRAM TB/s':<22}" + "".join(f"{b / 1e12:21.3f}" for b in dram))
        print(f"  {'on-chip pJ/FLOP':<22}" + "".join(f"{x.on_chip_pj_per_flop:21.3f}" for x in (full, low, high)))
        if full.tdp_w:
            print(f"  the TDP spread over the measured rate: {full.tdp_w / (best.measured_tflops * 1e12) * 1e12:.3f} "
                  "pJ/FLOP (board level, everything included)")
    return 0


if __name__ == "__main__":
    import argparse

    # no options; the parser gives --help and refuses stray arguments instead of running regardless
    argparse.ArgumentParser(prog="python -m bench.power_at_measured", description=__doc__.split("\n\n")[0]).parse_args()
    raise SystemExit(main())
