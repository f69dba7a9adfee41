"""The objectives a sweep can rank designs by: name, the `estimate` figure it comes from, unit and direction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Metric:
    """One sweep objective: which `Estimate.figures` entry it reads and whether more is better."""

    name: str
    figure: str  # key in workbench.estimate.Estimate.figures
    unit: str
    maximize: bool
    doc: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("tflops", "achieved_tflops", "TFLOPS", True, "achieved on the workload (simulated)"),
        Metric("tflops_per_kusd", "achieved_tflops_per_kusd", "TFLOPS/$1000", True, "achieved TFLOPS per $1000 of price"),
        Metric("tflops_per_w", "achieved_tflops_per_w", "TFLOPS/W", True, "achieved TFLOPS per average watt of the run"),
        Metric("latency_s", "seconds", "s", False, "time of one inference (the whole workload once)"),
        Metric("area_mm2", "die_area_costed_mm2", "mm^2", False, "die area that is costed (modelled)"),
        Metric("energy_j", "energy_j", "J", False, "energy of one inference (the whole workload once)"),
        Metric("power_w", "average_power_w", "W", False, "average power during the workload"),
        Metric("peak_power_w", "peak_rate_power_w", "W", False, "every MAC busy and DRAM at full bandwidth"),
        Metric("price_usd", "price_usd", "USD", False, "modelled unit cost / (1 - margin)"),
        Metric("utilization", "utilization", "fraction", True, "achieved / peak"),
        Metric("peak_tflops", "peak_tflops", "TFLOPS", True, "2 x rows x cols x cores x clock"),
    )
}


def metrics_from_figures(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{metric: {value, unit, provenance}} from an `Estimate`'s figures (dataclasses or their dict form)."""
    out = {}
    for m in METRICS.values():
        f = figures[m.figure]
        f = f if isinstance(f, dict) else {"value": f.value, "unit": f.unit, "provenance": f.provenance}
        out[m.name] = {"value": f["value"], "unit": f["unit"], "provenance": f["provenance"]}
    return out
