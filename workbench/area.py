"""Per-component die area of a design at its node: MAC array, SRAMs, vector unit, control, DMA and PHYs.

Logic areas start from 45 nm (Horowitz) or 40 nm (Aladdin) figures and are scaled by Stillmaker-Baas area
factors (docs/sources.md b.2); SRAM uses an effective die-level density (b.5); PHYs do not scale (b.7).
An RTL synthesis result (NAND2-equivalent gates per block, per core) replaces the modelled logic area of
the blocks it names.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from isa.design import ACC_DTYPE_FOR_INPUT, DTYPE_BYTES, Design
from isa.files import read_text
from isa.technology import (
    TRANSISTORS_PER_NAND2,
    area_factor,
    nand2_um2,
    register_area_um2_per_bit,
    sram_macro_um2,
)
from workbench.errors import UsageError
from workbench.nodes import resolve_node


class SynthResultError(UsageError):
    """An RTL synthesis result file that cannot be used for calibration."""


# Horowitz ISSCC 2014 area column, 45 nm, um^2 (b.1; the reference marks this column unverified).
# A MAC is the input-width multiplier plus the accumulator-width adder.
MAC_AREA_45NM_UM2 = {
    "int8": 282 + 137,  # 8-bit int mult + 32-bit int add
    "fp16": 1640 + 4184,  # 16-bit FP mult + 32-bit FP add (fp32 accumulation)
    "bf16": 1640 + 4184,  # [E] no bf16 entry: fp16 multiplier used (bf16's 8-bit mantissa makes it smaller)
    "fp32": 7700 + 4184,  # 32-bit FP mult + 32-bit FP add
}
# Each processing element holds two input-width pipeline registers and one accumulator-width register (both
# dataflows: A pass-through + B/weight + partial sum), at Aladdin's register area (isa.technology, b.3).
# Vector lane: an FP32 FMA for float designs (fp32 mult + add, b.1); int32 mult + add for int8 requantization.
VECTOR_LANE_AREA_45NM_UM2 = {True: 7700 + 4184, False: 3495 + 137}
# [E] special functions (exp2, reciprocal, sqrt) assumed to cost one more FP32 multiplier per lane (b.1 area).
SPECIAL_FUNCTION_AREA_45NM_UM2 = 7700
# LLMCompass per-sublane control, ~1.0 M transistors (b.7), used per core.
CONTROL_TRANSISTORS_PER_CORE = 1.0e6
# [E] no source: a DMA engine (address generators, descriptor queue) assumed half the control block.
DMA_TRANSISTORS_PER_CORE = 0.5e6

# Memory PHY per type: (mm^2 per unit, bits per unit, Gbit/s per pin). Areas do not scale with node (b.7).
# HBM: LLMCompass's HBM2e PHY, 10.45 mm^2 per 1024-bit stack interface (b.7), reused for HBM3/3e [E].
# DDR-class: LLMCompass's DDR5 PHY, 1.45 mm^2 per 32-bit unit (b.7), reused for (LP)DDR4/5 and GDDR6/6X [E].
# Pin rates are [E]: HBM2e 3.2 (A100: 2039 GB/s over five 1024-bit stacks, chips.csv); GDDR6 20 and GDDR6X 21
# (7900 XTX 960 GB/s and RTX 4090 1008 GB/s over 384 bits, chips.csv); the others are JEDEC nominal rates.
PHY_BY_MEMORY: dict[str, tuple[float, int, float]] = {
    "HBM2e": (10.45, 1024, 3.2),
    "HBM3": (10.45, 1024, 6.4),
    "HBM3e": (10.45, 1024, 9.6),
    "GDDR6": (1.45, 32, 20.0),
    "GDDR6X": (1.45, 32, 21.0),
    "DDR5": (1.45, 32, 4.8),
    "DDR4": (1.45, 32, 3.2),
    "LPDDR5": (1.45, 32, 6.4),
    "LPDDR4": (1.45, 32, 4.266),
}
PCIE_PHY_MM2_PER_LANE = 0.64  # LLMCompass PCIe5 PHY (b.7); does not scale


# [E] host link lanes: x16 (the GPU norm) for parts with HBM, GDDR or DDR5; x4 (an M.2-class edge module) for
# LPDDR/DDR4 parts. A design sets its own with [cost] host_pcie_lanes.
def default_host_pcie_lanes(memory_type: str) -> int:
    """Host PCIe lanes assumed when the design does not say."""
    return 16 if memory_type.startswith(("HBM", "GDDR", "DDR5")) else 4


SYNTH_BLOCKS = ("matrix", "vector", "control", "dma")
# Names an RTL synthesis report may give a block (rtl/synth.py's `workbench rtl synth --json` uses "array").
SYNTH_ALIASES = {
    "matrix": "matrix",
    "array": "matrix",
    "systolic": "matrix",
    "vector": "vector",
    "vec": "vector",
    "control": "control",
    "ctrl": "control",
    "decoder": "control",
    "fetch": "control",
    "dma": "dma",
}
SYNTH_GATE_KEYS = ("logic_ge", "nand2_eq", "nand2_equivalents", "nand2", "gates")


@dataclass
class AreaItem:
    """One component's area."""

    name: str
    mm2: float
    detail: str
    source: str
    provenance: str = "modelled"


@dataclass
class AreaBreakdown:
    """Per-component area of a design; `total_mm2` is their sum."""

    design: str
    node: str
    items: list[AreaItem]
    total_mm2: float
    calibrated_blocks: list[str] = field(default_factory=list)
    provenance: str = "modelled"

    def item(self, name: str) -> float:
        """mm^2 of the named component."""
        return sum(i.mm2 for i in self.items if i.name == name)

    def to_json(self) -> dict:
        """Plain-dict form."""
        return asdict(self)


def mac_area_um2(input_dtype: str, nm: float) -> float:
    """One processing element (MAC plus its pipeline registers) at `nm`, um^2."""
    reg_bits = 2 * 8 * DTYPE_BYTES[input_dtype] + 8 * DTYPE_BYTES[ACC_DTYPE_FOR_INPUT[input_dtype]]
    return MAC_AREA_45NM_UM2[input_dtype] * area_factor(nm) + reg_bits * register_area_um2_per_bit(nm)


def sram_area_mm2(size_bytes: int, banks: int, nm: float) -> float:
    """Area of an SRAM of `size_bytes` built as `banks` equal macros at `nm` (LLMCompass model, b.5).

    The same model as `rtl synth` (isa.technology.sram_macro_um2), so both report the same area for the same
    macros: small macros pay for their periphery (array efficiency 0.076 at 4 KiB, 0.6 at 512 KiB).
    """
    return banks * sram_macro_um2(size_bytes * 8 / banks, nm) / 1e6


def memory_phy_units(memory_type: str, bandwidth_bytes_per_s: float) -> int:
    """Memory PHY units (stacks or 32-bit channels) needed to carry a bandwidth."""
    _, bits, gbps = PHY_BY_MEMORY[memory_type]
    per_unit = bits * gbps * 1e9 / 8
    return max(1, math.ceil(bandwidth_bytes_per_s / per_unit - 1e-9))


def load_synth_result(path: str | Path) -> dict[str, float]:
    """NAND2-eq gates per block (per core) from an RTL synthesis JSON (`workbench rtl synth --json`)."""
    p = Path(path)
    try:
        data = json.loads(read_text(p, "synthesis result (JSON)", SynthResultError))
    except json.JSONDecodeError as exc:
        raise SynthResultError(f"{p}: not valid JSON: {exc}") from None
    return parse_synth_result(data, str(p))


def parse_synth_result(data: Any, where: str = "<synth>") -> dict[str, float]:
    """Gates per calibrated block from {"blocks": {name: gates | {"logic_ge" | "nand2_eq": gates}}} or {name: gates}.

    Block names are matched by SYNTH_ALIASES (the RTL report calls the array "array"); other blocks are ignored.
    """
    blocks = data.get("blocks", data) if isinstance(data, dict) else None
    if not isinstance(blocks, dict) or not blocks:
        raise SynthResultError(
            f"{where}: expected an object of blocks ({', '.join(SYNTH_BLOCKS)}) with NAND2-equivalent gate counts"
        )
    out: dict[str, float] = {}
    for name, value in blocks.items():
        block = SYNTH_ALIASES.get(str(name).lower())
        if block is None:
            continue  # other blocks (e.g. buffers, counted as SRAM) are not calibration targets
        if isinstance(value, dict):
            value = next((value[k] for k in SYNTH_GATE_KEYS if k in value), None)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < math.inf:
            raise SynthResultError(
                f"{where}: block {name!r} needs a non-negative NAND2-equivalent count, got {value!r}"
            )
        out[block] = out.get(block, 0.0) + float(value)
    if not out:
        raise SynthResultError(
            f"{where}: none of the blocks {', '.join(SYNTH_ALIASES)} found (got {', '.join(map(str, blocks))})"
        )
    return out


def design_area(
    design: Design, synth: dict[str, float] | None = None, host_pcie_lanes: int | None = None
) -> AreaBreakdown:
    """Per-component area of `design` at its node; `synth` (gates per block, per core) overrides logic."""
    node = resolve_node(design.chip.node_nm)
    nm, cores = node.nm, design.chip.cores
    m = design.matrix
    pes = m.rows * m.cols * cores
    items = [
        AreaItem(
            "matrix",
            pes * mac_area_um2(m.input_dtype, nm) / 1e6,
            f"{pes:,} PEs ({m.rows}x{m.cols} x {cores} cores) of {m.input_dtype} MAC + pipeline registers",
            "b.1 Horowitz 45 nm area (unverified column) + b.3 Aladdin 40 nm register, scaled by b.2",
        ),
    ]
    lane = VECTOR_LANE_AREA_45NM_UM2[design.is_float]
    if design.vector.special_functions:
        lane += SPECIAL_FUNCTION_AREA_45NM_UM2
    lanes = design.vector.lanes * cores
    items.append(
        AreaItem(
            "vector",
            lanes * lane * area_factor(nm) / 1e6,
            f"{lanes:,} lanes",
            "b.1 Horowitz 45 nm area scaled by b.2; special functions [E]",
        )
    )
    for name, size, banks in (
        ("scratchpad", design.memory.scratchpad_bytes, design.memory.scratchpad_banks),
        ("accumulator", design.memory.accumulator_bytes, design.memory.accumulator_banks),
    ):
        mm2 = cores * sram_area_mm2(size, banks, nm)
        items.append(
            AreaItem(
                name,
                mm2,
                f"{cores} x {banks} macros of {size // banks:,} B ({cores * size * 8 / mm2 / 1e6:.2f} Mbit/mm^2)",
                f"b.5 LLMCompass bit area / array efficiency by macro size; {node.name}",
            )
        )
    per_transistor_mm2 = 1.0 / (node.logic_density_mtr_per_mm2 * 1e6)
    items.append(
        AreaItem(
            "control",
            cores * CONTROL_TRANSISTORS_PER_CORE * per_transistor_mm2,
            f"{cores} x {CONTROL_TRANSISTORS_PER_CORE:.2g} transistors",
            "b.7 LLMCompass control; b.6",
        )
    )
    items.append(
        AreaItem(
            "dma",
            cores * DMA_TRANSISTORS_PER_CORE * per_transistor_mm2,
            f"{cores} x {DMA_TRANSISTORS_PER_CORE:.2g} transistors",
            "[E] half of control; b.6",
        )
    )
    calibrated = []
    for block, gates in (synth or {}).items():
        item = next(i for i in items if i.name == block)
        item.mm2 = cores * gates * nand2_um2(nm) / 1e6
        item.detail = f"{cores} x {gates:,.0f} NAND2-eq from RTL synthesis"
        item.source = f"RTL synthesis; [E] {TRANSISTORS_PER_NAND2} transistors/NAND2 at b.6 density"
        calibrated.append(block)
    mem_type = design.memory.dram_type
    bw = design.memory.dram_bandwidth_bytes_per_cycle * cores * design.chip.clock_hz
    units = memory_phy_units(mem_type, bw)
    unit_mm2, bits, gbps = PHY_BY_MEMORY[mem_type]
    items.append(
        AreaItem(
            "memory_phy",
            units * unit_mm2,
            f"{units} x {bits}-bit {mem_type} PHY for {bw / 1e9:,.0f} GB/s at {gbps:g} Gb/s/pin [E]",
            "b.7 LLMCompass PHY areas (do not scale)",
        )
    )
    lanes_pcie = default_host_pcie_lanes(mem_type) if host_pcie_lanes is None else host_pcie_lanes
    items.append(
        AreaItem(
            "host_phy",
            lanes_pcie * PCIE_PHY_MM2_PER_LANE,
            f"{lanes_pcie} PCIe lanes",
            "b.7 LLMCompass PCIe5 0.64 mm^2/lane",
        )
    )
    return AreaBreakdown(
        design=design.name,
        node=node.name,
        items=items,
        total_mm2=sum(i.mm2 for i in items),
        calibrated_blocks=calibrated,
    )
