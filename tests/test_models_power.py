"""Power model against independent oracles: cited published figures, hand-computed cases and observable
behaviour (linearity, the power cap), not a restatement of the implementation's formulas."""

import dataclasses

import pytest

from isa.design import load_design
from workbench.power import (
    PowerInputError,
    run_power,
    sram_pj_per_byte_45nm,
    sustained_power,
    wire_fj_per_bit_mm,
)


def test_sram_energy_by_macro_size_reproduces_horowitz():
    # Horowitz ISSCC 2014 (b.1), 45 nm, per 64-bit read: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ
    assert 8 * sram_pj_per_byte_45nm(8 * 1024) == pytest.approx(10.0)
    assert 8 * sram_pj_per_byte_45nm(32 * 1024) == pytest.approx(20.0)
    assert 8 * sram_pj_per_byte_45nm(2**20) == pytest.approx(100.0)
    # log-log midpoint of 8 KB and 32 KB (16 KB): the geometric mean of 10 and 20 pJ
    assert 8 * sram_pj_per_byte_45nm(16 * 1024) == pytest.approx(200**0.5)


def test_full_swing_wire_costs_more_than_published_low_swing_links():
    # Park et al. (DATE 2013): a low-swing mesh NoC link at 45 nm reaches 40.4 fJ/bit/mm; a conventional
    # full-swing wire cannot be cheaper than that, nor dearer than the 130 nm full-swing survey figure (310)
    assert 40.4 < wire_fj_per_bit_mm() < 310


def test_sustained_dram_power_hand_computed():
    # h100-like: 14 B/cycle x 132 cores x 1.83 GHz = 3.382 TB/s of HBM3 at 3.9 pJ/bit (b.4) = 105.5 W
    sp = sustained_power(load_design("h100-like"))
    assert sp.item("dram") == pytest.approx(14 * 132 * 1.83e9 * 8 * 3.9e-12, rel=1e-9)
    assert sp.total_w == pytest.approx(sum(i.watts for i in sp.items))
    assert all(i.watts >= 0 for i in sp.items)


@pytest.mark.parametrize("name", ["h100-like", "rx7900xtx-like"])
def test_on_chip_energy_no_better_than_the_best_published_silicon(name):
    # Samsung's 4 nm NPU (JSSC 2023, b.3) reaches 0.235 pJ/FLOP FP16 at macro level: the best published silicon
    # at 4-5 nm; a modelled chip at those nodes must not beat it
    assert sustained_power(load_design(name)).on_chip_pj_per_flop >= 0.235


@pytest.mark.xfail(strict=True, reason="sustained power is 37% (h100-like) and 51% (rx7900xtx-like) under the TDP "
                   "with the cited per-event energies, and lower still at the chips' measured throughput (the "
                   "gap is energy per op, not throughput); see docs/models.md 'Power'")
@pytest.mark.parametrize("name,tdp", [("h100-like", 700), ("rx7900xtx-like", 355)])
def test_sustained_gemm_power_within_15_percent_of_tdp(name, tdp):
    # H100s run large GEMMs at their power cap (issue 14); the 7900 XTX likewise at its board power
    assert abs(sustained_power(load_design(name)).total_w / tdp - 1) <= 0.15


def test_run_energy_is_linear_in_the_counters():
    d = load_design("small-int8-8x8")
    counters = {"macs_int8": 1e9, "dram_read_bytes": 1e6, "scratchpad_read_bytes": 3e6, "unknown_counter": 5}
    one = run_power(d, counters, seconds=2.0, flops=2e9, static_w=0.0)
    two = run_power(d, {k: 2 * v for k, v in counters.items()}, seconds=2.0, flops=4e9, static_w=0.0)
    assert two.dynamic_j == pytest.approx(2 * one.dynamic_j)
    # every DRAM byte also crosses the memory PHY, an L2 bank and the network-on-chip
    assert {"memory_phy_bytes", "l2_bytes", "noc_bytes", "clock_tree"} <= {t.event for t in one.terms}
    with pytest.raises(PowerInputError, match="does not match"):
        run_power(d, {"macs_bf16": 1}, 1.0, 2.0)
    with pytest.raises(PowerInputError):
        run_power(d, counters, 0.0, 1.0)


def test_power_cap_throttles_the_clock_and_stretches_time():
    d = load_design("small-int8-8x8")
    counters = {"macs_int8": 1e12, "dram_read_bytes": 1e9}
    free = run_power(d, counters, seconds=1.0, flops=2e12, static_w=0.1)
    assert free.clock_scale == 1.0 and free.seconds == 1.0
    tdp = free.average_power_w / 2  # a cap at half the power the run wants
    capped = run_power(d, counters, seconds=1.0, flops=2e12, static_w=0.1, tdp_w=tdp)
    # observable behaviour of a throttled chip: power sits at the cap, the work (dynamic energy) is unchanged,
    # and the time grows by exactly dynamic / (TDP - static)
    assert capped.average_power_w == pytest.approx(tdp)
    assert capped.dynamic_j == pytest.approx(free.dynamic_j)
    assert capped.seconds == pytest.approx(free.dynamic_j / (tdp - 0.1))
    assert capped.clock_scale == pytest.approx(1.0 / capped.seconds) and capped.within_tdp
    assert capped.unthrottled_power_w == pytest.approx(free.average_power_w)
    assert "power cap" in capped.notes[0]
    with pytest.raises(PowerInputError, match="static power"):
        run_power(d, counters, 1.0, 2e12, static_w=tdp * 2, tdp_w=tdp)


def test_estimate_applies_the_cap_from_the_design_tdp():
    from workbench.estimate import estimate, parse_workload

    d = load_design("small-int8-8x8")
    free = estimate(d, parse_workload("gemm:64x64x64"))
    capped_design = d.replace(chip=dataclasses.replace(d.chip, tdp_w=free.power.static_w * 1.01))
    capped = estimate(capped_design, parse_workload("gemm:64x64x64"))
    assert capped.power.clock_scale < 1
    assert capped.figures["seconds"].value > free.figures["seconds"].value
    assert capped.figures["achieved_tflops"].value < free.figures["achieved_tflops"].value
    assert "throttled" in capped.figures["achieved_tflops"].note


def test_power_at_another_load_scales_each_side_with_its_own_rate():
    d = load_design("h100-like")
    full = sustained_power(d)
    peak_dram = 14 * 132 * 1.83e9
    same = sustained_power(d, flops_per_s=d.peak_flops, dram_bytes_per_s=peak_dram)
    assert same.total_w == pytest.approx(full.total_w)
    half = sustained_power(d, flops_per_s=d.peak_flops / 2, dram_bytes_per_s=peak_dram)
    # the array side halves with the FLOP rate, the memory side and the leakage do not move
    for part in ("datapath", "pe_registers", "register_file"):
        assert half.item(part) == pytest.approx(full.item(part) / 2)
    for part in ("dram", "memory_phy", "network_on_chip", "l2", "static"):
        assert half.item(part) == pytest.approx(full.item(part))
    idle_memory = sustained_power(d, flops_per_s=d.peak_flops, dram_bytes_per_s=0)
    assert idle_memory.item("dram") == idle_memory.item("memory_phy") == idle_memory.item("network_on_chip") == 0
    assert idle_memory.static_w == pytest.approx(full.static_w)
    with pytest.raises(PowerInputError, match="peak"):
        sustained_power(d, flops_per_s=2 * d.peak_flops)
    with pytest.raises(PowerInputError, match="bandwidth"):
        sustained_power(d, dram_bytes_per_s=2 * peak_dram)


def test_power_at_the_measured_throughput_is_below_the_full_load_figure():
    from bench.power_at_measured import compulsory_dram_bytes_per_s, power_at_measured
    from workbench.measured import load_measurements

    best = max((r for r in load_measurements() if r.chip == "h100-sxm"), key=lambda r: r.measured_tflops)
    # A, B and C of bf16 8192^3 (3 x 8192^2 x 2 B) over 2 x 8192^3 / rate: rate x 3 / 8192 bytes per second
    if (best.dtype, best.m, best.n, best.k, best.batch) == ("bf16", 8192, 8192, 8192, 1):
        assert compulsory_dram_bytes_per_s(best) == pytest.approx(best.measured_tflops * 1e12 * 3 / 8192)
    full, low, high = power_at_measured(best)
    # the measured rate is under the design's peak, so the model's sustained figure (at the peak) is an upper
    # bound: the power shortfall against the TDP is not caused by the simulated throughput
    assert low.total_w < high.total_w <= full.total_w
