"""Process-technology scaling shared by every model that turns a design's `chip.node_nm` into area or energy.

One table per fact, each citing `docs/sources.md` by section: the RTL's area and
activity flows and the workbench's area and power models all scale through these functions, so they
cannot disagree about a node.
"""
from __future__ import annotations

import math

# Stillmaker & Baas 2017 factors relative to 45 nm, as used by Accelergy's hwcomponents (b.2).
# Energy at a fixed 0.8 V; area. Points between listed nodes are interpolated log-log [E]; above 45 nm the
# 32->45 nm slope is extended [E]; below 7 nm hwcomponents' rule is used: area linear in node, energy as the
# square root of the node ratio (b.2).
ENERGY_FACTOR_VS_45NM = {45: 1.0, 32: 0.66, 20: 0.22, 16: 0.17, 14: 0.14, 10: 0.12, 7: 0.094}
AREA_FACTOR_VS_45NM = {45: 1.0, 32: 0.46, 20: 0.21, 16: 0.19, 14: 0.17, 10: 0.10, 7: 0.059}

# Typical (not peak) logic density in million transistors per mm^2: CSET / ttm-cas transistor_density_arr,
# LLMCompass adds 6 nm (b.6).
LOGIC_DENSITY_MTR_PER_MM2 = {90: 1.6, 65: 3.3, 40: 7.7, 28: 15.3, 20: 22.1, 16: 28.9, 14: 28.9, 10: 52.5,
                             7: 96.3, 6: 114.2, 5: 138.2}


def _loglog(table: dict[int, float], nm: float, below_smallest: str) -> float:
    """Log-log interpolation in `table`; below its smallest node, 'linear' or 'sqrt' in the node ratio."""
    smallest = min(table)
    if nm < smallest:
        ratio = nm / smallest
        return table[smallest] * (ratio if below_smallest == "linear" else math.sqrt(ratio))
    if nm in table:
        return table[int(nm)]
    points = sorted(table.items())
    if nm > points[-1][0]:
        (n0, f0), (n1, f1) = points[-2], points[-1]
    else:
        (n0, f0), (n1, f1) = next((a, b) for a, b in zip(points, points[1:], strict=False) if a[0] < nm < b[0])
    slope = math.log(f1 / f0) / math.log(n1 / n0)
    return f0 * (nm / n0) ** slope


def energy_factor(nm: float) -> float:
    """Energy per operation at `nm` relative to 45 nm (Stillmaker-Baas via hwcomponents, b.2)."""
    return _loglog(ENERGY_FACTOR_VS_45NM, nm, "sqrt")


def area_factor(nm: float) -> float:
    """Area of a logic block at `nm` relative to 45 nm (Stillmaker-Baas via hwcomponents, b.2)."""
    return _loglog(AREA_FACTOR_VS_45NM, nm, "linear")


def logic_density_mtr_per_mm2(nm: float) -> float:
    """Typical logic density at `nm` (b.6), log-log between listed nodes; below 5 nm scaled by area_factor [E]."""
    if nm < min(LOGIC_DENSITY_MTR_PER_MM2):
        smallest = min(LOGIC_DENSITY_MTR_PER_MM2)
        return LOGIC_DENSITY_MTR_PER_MM2[smallest] * area_factor(smallest) / area_factor(nm)
    return _loglog(LOGIC_DENSITY_MTR_PER_MM2, nm, "linear")
