"""Process-technology facts shared by every model that turns a design's `chip.node_nm` into area or energy.

One table per fact, each citing `docs/sources.md` by section (a.n/b.n from the reference, C.n/P.n added for
the models): the RTL's area and activity flows and the workbench's area and power models all read these tables
and functions, so they cannot disagree about a node, a register or an SRAM macro.
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
# LLMCompass adds 6 nm (b.6). Below 5 nm no typical figure is published:
# - 4 nm (N4/4N) is an N5-family node: N5's 138.2 [E] (AD102 on 4N averages 125, H100 98, b.6);
# - 3 nm: Angstronomics' N3E <= 215 peak times N5's typical/peak ratio 138.2/171.3 (b.6) [E] = 173.5;
# - 2 nm: 1.1x the 3 nm figure [E] (no density source).
_N3_TYPICAL = 215 * 138.2 / 171.3
LOGIC_DENSITY_MTR_PER_MM2 = {90: 1.6, 65: 3.3, 40: 7.7, 28: 15.3, 20: 22.1, 16: 28.9, 14: 28.9, 10: 52.5,
                             7: 96.3, 6: 114.2, 5: 138.2, 4: 138.2, 3: _N3_TYPICAL, 2: 1.1 * _N3_TYPICAL}

# A NAND2 gate is 4 transistors (two series NMOS, two parallel PMOS): turns NAND2-equivalent gate counts
# (RTL synthesis) into area at a node's typical density.
TRANSISTORS_PER_NAND2 = 4

# Aladdin 40 nm standard-cell register (Shao et al., ISCA 2014, as shipped in hwcomponents-library; b.3):
# energy per bit written and area per bit.
REGISTER_ENERGY_40NM_PJ_PER_BIT = 0.009
REGISTER_AREA_40NM_UM2_PER_BIT = 5.98

# SRAM area: LLMCompass's model (cost_model.py, b.5): an effective bit area of 0.17 um^2 at 7 nm divided by an
# array efficiency that depends on the macro size; big buffers are split into 512 KiB units.
SRAM_BIT_UM2_7NM = 0.17
SRAM_ARRAY_EFFICIENCY_BY_KIB = {4: 0.076, 8: 0.142, 16: 0.247, 32: 0.393, 64: 0.559, 128: 0.704, 256: 0.526,
                                512: 0.602}
SRAM_UNIT_KIB = 512
SRAM_MIN_MACRO_KIB = 4
# Below 5 nm the SRAM bitcell has stopped scaling with the node name (b.5): N5 0.021, N3E 0.021, N2 ~0.0175
# um^2 HD bitcells. The bit area there is N5's scaled by the bitcell ratio; 4 nm is N5-family [E].
_HD_BITCELL_UM2_BELOW_5NM = {5: 0.021, 4: 0.021, 3: 0.021, 2: 0.0175}


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
    """Typical logic density at `nm` (b.6), log-log between listed nodes; below 2 nm scaled by area_factor [E]."""
    smallest = min(LOGIC_DENSITY_MTR_PER_MM2)
    if nm < smallest:
        return LOGIC_DENSITY_MTR_PER_MM2[smallest] * area_factor(smallest) / area_factor(nm)
    return _loglog(LOGIC_DENSITY_MTR_PER_MM2, nm, "linear")


def nand2_um2(nm: float) -> float:
    """Silicon area of one NAND2-equivalent gate: TRANSISTORS_PER_NAND2 at the node's typical logic density."""
    return TRANSISTORS_PER_NAND2 / logic_density_mtr_per_mm2(nm)


def register_energy_pj_per_bit(nm: float) -> float:
    """Energy of writing one register bit at `nm`: Aladdin's 40 nm figure scaled by energy_factor (b.3, b.2)."""
    return REGISTER_ENERGY_40NM_PJ_PER_BIT * energy_factor(nm) / energy_factor(40)


def register_area_um2_per_bit(nm: float) -> float:
    """Area of one register bit at `nm`: Aladdin's 40 nm figure scaled by area_factor (b.3, b.2)."""
    return REGISTER_AREA_40NM_UM2_PER_BIT * area_factor(nm) / area_factor(40)


def sram_bit_um2(nm: float) -> float:
    """Effective SRAM bit area at `nm` before array efficiency: LLMCompass's 7 nm figure, node-scaled (b.5)."""
    if nm >= 5:
        return SRAM_BIT_UM2_7NM * area_factor(nm) / area_factor(7)
    cell = _HD_BITCELL_UM2_BELOW_5NM.get(int(nm), _HD_BITCELL_UM2_BELOW_5NM[2] * nm / 2)
    return sram_bit_um2(5) * cell / _HD_BITCELL_UM2_BELOW_5NM[5]


def sram_array_efficiency(kib: float) -> float:
    """LLMCompass array efficiency of a macro of `kib` KiB, linear between its listed sizes (b.5)."""
    table = SRAM_ARRAY_EFFICIENCY_BY_KIB
    keys = sorted(table)
    if kib <= keys[0]:
        return table[keys[0]]
    if kib >= keys[-1]:
        return table[keys[-1]]
    lo = max(k for k in keys if k <= kib)
    hi = min(k for k in keys if k >= kib)
    if lo == hi:
        return table[lo]
    return table[lo] + (kib - lo) / (hi - lo) * (table[hi] - table[lo])


def sram_macro_um2(bits: float, nm: float) -> float:
    """Area of one SRAM macro of `bits` (at least SRAM_MIN_MACRO_KIB; split into 512 KiB units), um^2 (b.5)."""
    kib = max(bits / 8 / 1024, SRAM_MIN_MACRO_KIB)
    units = 1
    while kib > SRAM_UNIT_KIB:
        kib /= 2
        units *= 2
    return units * kib * 8 * 1024 * sram_bit_um2(nm) / sram_array_efficiency(kib)


def sram_density_mbit_per_mm2(nm: float) -> float:
    """Effective density of a large (512 KiB-unit) SRAM array at `nm`, Mbit/mm^2 (b.5)."""
    return sram_array_efficiency(SRAM_UNIT_KIB) / sram_bit_um2(nm)
