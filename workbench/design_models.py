"""A design's unit cost, TDP, static power and reference checks, from its [cost]/[power]/[reference] tables."""

from __future__ import annotations

from isa.design import Design
from workbench.area import AreaBreakdown, memory_phy_units
from workbench.chips import Chip, find_chip
from workbench.cost import NB_ALPHA, Harvest, UnitCost, cost_per_good_die, nre_cost, unit_cost
from workbench.design_tables import Check, design_tables
from workbench.power import PowerResult, run_power, static_power_w


def design_cost(
    design: Design, area: AreaBreakdown, margin: float | None = None, volume: int | None = None
) -> tuple[UnitCost, str]:
    """Unit cost of `design` from its [cost] table and area; also returns the die area's provenance.

    volume (or [cost] volume_units): spread the tapeout NRE (a.5) over that many units; absent: no NRE term.
    """
    c = design_tables(design)["cost"]
    volume = c.get("volume_units") if volume is None else volume
    die_area = c.get("die_area_mm2", area.total_mm2)
    area_prov = "datasheet" if "die_area_mm2" in c else "modelled"
    harvest = Harvest(**c["harvest"]) if "harvest" in c else None
    main = cost_per_good_die(
        die_area,
        design.chip.node_nm,
        name=c.get("die_name", "main"),
        wafer_price_usd=c.get("wafer_price_usd"),
        d0_per_cm2=c.get("defect_density_per_cm2"),
        yield_model=c.get("yield_model", "negative_binomial"),
        alpha=c.get("alpha", NB_ALPHA),
        edge_exclusion_mm=c.get("edge_exclusion_mm"),
        scribe_mm=c.get("scribe_mm"),
        harvest=harvest,
        year=c.get("year"),
    )
    dies = [(main, 1)]
    for ch in c.get("chiplets", []):
        dies.append((cost_per_good_die(ch["area_mm2"], ch["node"], name=ch["name"], year=c.get("year")), ch["count"]))
    memory_gb = c.get("memory_gb", design.memory.dram_capacity_bytes / 2**30)
    uc = unit_cost(
        dies,
        memory_gb=memory_gb,
        memory_type=design.memory.dram_type,
        memory_usd_per_gb_override=c.get("memory_usd_per_gb"),
        packaging_usd=c.get("packaging_usd"),
        test_usd=c.get("test_usd"),
        assembly_yield=c.get("assembly_yield", 1.0),
        board_usd=c.get("board_usd", 0.0),
        system_usd=c.get("system_usd", 0.0),
        nre=nre_cost(design.chip.node_nm, volume) if volume else None,
        margin=c.get("margin", 0.0) if margin is None else margin,
        hbm_stacks=hbm_stacks(design),
    )
    return uc, area_prov


def hbm_stacks(design: Design) -> int | None:
    """HBM stacks the design's bandwidth needs (its memory PHY count), None for other memory types."""
    mem = design.memory
    if not mem.dram_type.startswith("HBM"):
        return None
    return memory_phy_units(mem.dram_type, mem.dram_bandwidth_bytes_per_cycle * design.chip.cores * design.chip.clock_hz)


def reference_chip(design: Design) -> Chip | None:
    """The chip a reference design imitates ([reference] chip), if any."""
    ref = design_tables(design)["reference"]
    return find_chip(ref["chip"]) if "chip" in ref else None


def design_tdp_w(design: Design) -> float | None:
    """TDP the power cap and checks use: [chip] tdp_w, else [power] tdp_w, else the reference chip's datasheet TDP."""
    if design.chip.tdp_w:
        return design.chip.tdp_w
    p = design_tables(design)["power"]
    if "tdp_w" in p:
        return p["tdp_w"]
    chip = reference_chip(design)
    return chip.tdp_w if chip else None


def design_static_w(design: Design) -> float:
    """Static power: [power] static_w, else leakage_fraction of sustained dynamic power, else the node's static
    fraction of the power under load (power.static_fraction, P.4)."""
    p = design_tables(design)["power"]
    if "static_w" in p:
        return p["static_w"]
    return static_power_w(design, p.get("leakage_fraction"))


def design_run_power(design: Design, counters: dict[str, float], seconds: float, flops: float) -> PowerResult:
    """A simulated run's energy and power with the design's own static power and TDP cap (as `estimate` reports)."""
    return run_power(design, counters, seconds, flops, static_w=design_static_w(design), tdp_w=design_tdp_w(design))


def reference_checks(
    design: Design, die_usd: float, unit_usd: float, power: PowerResult | None, peak_power_w: float | None = None
) -> list[Check]:
    """Compare modelled peak, costs and power against the [reference] table's datasheet figure and ranges.

    Power is checked at the peak rate (the design's modelled worst case, independent of the program's data
    reuse): its energy per FLOP against `energy_per_flop_pj_range` and its watts against `power_w_range` and
    the TDP; the workload's average power is checked against the TDP too.
    """
    ref = design_tables(design)["reference"]
    src = ref.get("sources", "")
    checks = []
    if "peak_tflops" in ref:
        want, got = ref["peak_tflops"], design.peak_flops / 1e12
        checks.append(
            Check("peak_tflops within 1%", got, want * 0.99, want * 1.01, abs(got - want) <= 0.01 * want, src)
        )
    for key, name, value in (
        ("die_cost_usd_range", "die_cost_usd", die_usd),
        ("unit_cost_usd_range", "unit_cost_usd", unit_usd),
    ):
        if key in ref:
            lo, hi = ref[key]
            checks.append(Check(name, value, lo, hi, lo <= value <= hi, src))
    if peak_power_w is not None:
        for key, name, value in (
            ("power_w_range", "peak_rate_power_w", peak_power_w),
            ("energy_per_flop_pj_range", "peak_rate_energy_per_flop_pj", peak_power_w / design.peak_flops / 1e-12),
        ):
            if key in ref:
                lo, hi = ref[key]
                checks.append(Check(name, value, lo, hi, lo <= value <= hi, src))
    if power is not None and power.tdp_w is not None:
        tdp_src = "[chip] tdp_w, [power] tdp_w or the reference chip's datasheet TDP"
        if peak_power_w is not None:
            checks.append(
                Check("peak_rate_power_w <= TDP", peak_power_w, 0.0, power.tdp_w, peak_power_w <= power.tdp_w, tdp_src)
            )
        checks.append(
            Check("average_power_w <= TDP", power.average_power_w, 0.0, power.tdp_w, bool(power.within_tdp), tdp_src)
        )
    return checks
