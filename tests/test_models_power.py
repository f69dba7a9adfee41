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


@pytest.mark.parametrize("name,tdp", [("h100-like", 700), ("rx7900xtx-like", 355)])
def test_sustained_gemm_power_within_15_percent_of_tdp(name, tdp):
    # H100s run large GEMMs at their power cap (issue 14); the 7900 XTX likewise at its board power
    sp = sustained_power(load_design(name))
    assert abs(sp.total_w / tdp - 1) <= 0.15, {i.name: round(i.watts, 1) for i in sp.items}


def test_chip_level_runs_charge_the_l2_and_noc_on_core_traffic():
    d = load_design("h100-like")
    dram = {"macs_bf16": 1e12, "dram_read_bytes": 1e9}
    chip = {**dram, "l2_read_bytes": 8e9}
    terms = {t.event: t.count for t in run_power(d, chip, seconds=1.0, flops=2e12, static_w=0.0).terms}
    # the cores' 8 GB cross the NoC and the L2; the 1 GB of DRAM crosses the PHY and refills the L2
    assert terms["noc_bytes"] == 8e9 and terms["l2_bytes"] == 9e9 and terms["memory_phy_bytes"] == 1e9
    plain = {t.event: t.count for t in run_power(d, dram, seconds=1.0, flops=2e12, static_w=0.0).terms}
    assert plain["noc_bytes"] == plain["l2_bytes"] == plain["memory_phy_bytes"] == 1e9
    # at sustained load the [l2] designs fill their cores from the L2 at its bandwidth, not at the DRAM rate
    sp = sustained_power(d)
    l2_fill = d.l2.bandwidth_bytes_per_cycle * d.chip.clock_hz
    noc = next(i for i in sp.items if i.name == "network_on_chip")
    assert "from the L2" in next(i for i in sp.items if i.name == "l2").detail
    assert noc.watts > sustained_power(d, dram_bytes_per_s=0.0).item("memory_phy") and l2_fill > 6e12


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
    # the array side and the L2-to-core fills (h100-like has [l2]) halve with the FLOP rate; DRAM, its PHY and
    # the leakage do not move
    for part in ("datapath", "pe_registers", "register_file", "network_on_chip"):
        assert half.item(part) == pytest.approx(full.item(part) / 2)
    for part in ("dram", "memory_phy", "static"):
        assert half.item(part) == pytest.approx(full.item(part))
    idle_memory = sustained_power(d, flops_per_s=d.peak_flops, dram_bytes_per_s=0)
    assert idle_memory.item("dram") == idle_memory.item("memory_phy") == 0
    assert idle_memory.item("network_on_chip") == pytest.approx(full.item("network_on_chip"))
    flat = d.replace(l2=None)  # without [l2] the cores fill from DRAM: the NoC follows the DRAM rate
    assert sustained_power(flat, flops_per_s=flat.peak_flops, dram_bytes_per_s=0).item("network_on_chip") == 0
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


def _with_power(design, **fields):
    """`design` with its [power] table extended by `fields` (as a design file would set them)."""
    extras = {**design.extras, "power": {**design.extras.get("power", {}), **fields}}
    return design.replace(extras=extras)


def test_voltage_regulators_are_a_board_loss_on_everything_they_feed():
    d = load_design("h100-like")
    chip_only = sustained_power(_with_power(d, vrm_efficiency=1.0))
    board = sustained_power(d)  # default 90% (P.7)
    assert chip_only.item("voltage_regulators") == 0
    # a regulator of efficiency eta draws delivered / eta: the loss is delivered x (1/eta - 1)
    assert board.total_w == pytest.approx(chip_only.total_w / 0.9)
    # the board group does not touch the die: on-chip energy per FLOP is the same with and without it
    assert board.on_chip_pj_per_flop == pytest.approx(chip_only.on_chip_pj_per_flop)
    vrm = next(i for i in board.items if i.name == "voltage_regulators")
    assert vrm.group == "board" and not vrm.on_chip


def test_core_voltage_scales_on_die_energy_by_v_squared_and_leaves_dram_alone():
    d = load_design("small-int8-8x8")
    base = sustained_power(d)  # 0.8 V, the voltage of the b.2 energy factors
    hot = sustained_power(_with_power(d, core_voltage_v=1.0))
    for part in ("datapath", "pe_registers", "register_file", "l1_scratchpad", "l2", "network_on_chip"):
        assert hot.item(part) == pytest.approx(base.item(part) * (1.0 / 0.8) ** 2)
    # the DRAM devices and the memory PHY are on their own rails
    assert hot.item("dram") == pytest.approx(base.item("dram"))
    assert hot.item("memory_phy") == pytest.approx(base.item("memory_phy"))


def test_simt_instruction_overhead_is_a_fifth_of_a_tensor_instruction():
    # Dally (b.3): instruction overhead is ~20% of a tensor-core instruction's energy; only designs that say they
    # imitate SIMT tensor instructions pay it
    d = load_design("small-int8-8x8")
    assert sustained_power(d).item("instruction_overhead") == 0
    gpu = sustained_power(_with_power(d, simt_instruction_overhead=True))
    over, math_ = gpu.item("instruction_overhead"), gpu.item("datapath")
    assert over / (over + math_) == pytest.approx(0.20)
    run = run_power(_with_power(d, simt_instruction_overhead=True), {"macs_int8": 1e9}, 1.0, 2e9, static_w=0.0)
    plain = run_power(d, {"macs_int8": 1e9}, 1.0, 2e9, static_w=0.0)
    assert run.dynamic_j > plain.dynamic_j
    assert "voltage_regulators" in {t.event for t in plain.terms}


@pytest.mark.parametrize("field,value,match", [
    ("core_voltage_v", 3.0, "core_voltage_v"),
    ("vrm_efficiency", 0.0, "vrm_efficiency"),
    ("simt_instruction_overhead", "yes", "true or false"),
])
def test_bad_power_options_name_the_field(field, value, match):
    from workbench.errors import UsageError

    with pytest.raises(UsageError, match=match):
        sustained_power(_with_power(load_design("small-int8-8x8"), **{field: value}))
