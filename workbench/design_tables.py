"""Validation of a design file's [cost], [power] and [reference] tables (kept raw in `Design.extras`).

Each error names the file, the field, the value and the allowed range, like the strict sections do.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any

from isa.design import Design
from isa.fields import Spec, check_number, is_number
from workbench.cost import MAX_HARVEST_BLOCKS
from workbench.errors import UsageError


class DesignTableError(UsageError):
    """A [cost], [power] or [reference] field that is unknown, of the wrong type or out of range."""


INF = float("inf")
COST_FIELDS: dict[str, Spec] = {
    "die_area_mm2": Spec("number", 0, 900, lo_open=True, doc="die area to cost instead of the modelled area"),
    "die_name": Spec("str", doc="label of the main die"),
    "wafer_price_usd": Spec("number", 0, 1e6, lo_open=True),
    "defect_density_per_cm2": Spec("number", 0, 10),
    "yield_model": Spec("str", doc="negative_binomial, poisson, murphy or seeds"),
    "alpha": Spec("number", 0, 100, lo_open=True),
    "edge_exclusion_mm": Spec("number", 0, 20, doc="wafer rim lost (default cost.EDGE_EXCLUSION_MM)"),
    "scribe_mm": Spec("number", 0, 2, doc="saw lane between dies (default cost.SCRIBE_MM)"),
    "year": Spec("number", 1990, 2100, doc="calendar year of the node's defect density (default: mature)"),
    "harvest": Spec("harvest", doc="{blocks, required, fraction}"),
    "chiplets": Spec("chiplets", doc="[{name, area_mm2, node, count}] extra dies in the package"),
    "memory_gb": Spec("number", 0, 1e5),
    "memory_usd_per_gb": Spec("number", 0, 1e4),
    "packaging_usd": Spec("number", 0, 1e6),
    "test_usd": Spec("number", 0, 1e6),
    "assembly_yield": Spec("number", 0, 1, lo_open=True),
    "board_usd": Spec("number", 0, 1e7),
    "system_usd": Spec("number", 0, 1e7),
    "margin": Spec("number", 0, 1, hi_open=True),
    "volume_units": Spec("int", 1, 1e12, doc="units the tapeout NRE (a.5) is spread over; absent: no NRE"),
    "host_pcie_lanes": Spec("int", 0, 256),
    "sources": Spec("str"),
}
POWER_FIELDS: dict[str, Spec] = {
    "tdp_w": Spec("number", 0, 1e6, lo_open=True),
    "static_w": Spec("number", 0, 1e6),
    "leakage_fraction": Spec("number", 0, 1, hi_open=True),
    "core_voltage_v": Spec("number", 0, 2, lo_open=True, doc="core supply voltage; on-die energies scale by "
                           "(V / 0.8 V)^2 (default 0.8 V, docs/sources.md P.6)"),
    "simt_instruction_overhead": Spec("bool", doc="charge GPU instruction overhead on tensor instructions (b.3)"),
    "vrm_efficiency": Spec("number", 0, 1, lo_open=True, doc="voltage-regulator efficiency (default 0.9, P.7; "
                           "1 = the chip alone)"),
    "sources": Spec("str"),
}
REFERENCE_FIELDS: dict[str, Spec] = {
    "chip": Spec("str", doc="key of the imitated chip in the chip database"),
    "peak_tflops": Spec("number", 0, INF, lo_open=True, doc="datasheet dense peak the design must reproduce"),
    "die_cost_usd_range": Spec("range", doc="[low, high] published die cost"),
    "unit_cost_usd_range": Spec("range", doc="[low, high] published unit (package) cost"),
    "power_w_range": Spec("range", doc="[low, high] published power during the workload"),
    "energy_per_flop_pj_range": Spec("range", doc="[low, high] published energy per FLOP"),
    "sources": Spec("str"),
    "notes": Spec("str"),
}
TABLES = {"cost": COST_FIELDS, "power": POWER_FIELDS, "reference": REFERENCE_FIELDS}


def _check(where: str, name: str, v: Any, spec: Spec) -> Any:
    if spec.kind == "number":
        return float(check_number(where, name, v, spec, DesignTableError))
    if spec.kind == "int":
        return int(check_number(where, name, v, spec, DesignTableError))
    if spec.kind == "bool":
        if not isinstance(v, bool):
            raise DesignTableError(f"{where}: field '{name}' = {v!r} must be true or false")
        return v
    if spec.kind == "str":
        if not isinstance(v, str):
            raise DesignTableError(f"{where}: field '{name}' = {v!r} must be a string")
        return v
    if spec.kind == "range":
        if (
            not isinstance(v, list)
            or len(v) != 2
            or not all(is_number(x) and math.isfinite(x) for x in v)
            or v[0] > v[1]
            or v[0] < 0
        ):
            raise DesignTableError(f"{where}: field '{name}' = {v!r} must be [low, high] with 0 <= low <= high")
        return (float(v[0]), float(v[1]))
    if spec.kind == "harvest":
        if not isinstance(v, dict) or set(v) != {"blocks", "required", "fraction"}:
            raise DesignTableError(
                f"{where}: field '{name}' = {v!r} must be a table {{blocks = N, required = K, fraction = F}}"
            )
        blocks = check_number(where, f"{name}.blocks", v["blocks"], Spec("int", 1, MAX_HARVEST_BLOCKS), DesignTableError)
        required = check_number(where, f"{name}.required", v["required"], Spec("int", 1, blocks), DesignTableError)
        frac = check_number(
            where, f"{name}.fraction", v["fraction"], Spec("number", 0, 1, True, True), DesignTableError
        )
        return {"blocks": blocks, "required": required, "fraction": float(frac)}
    if spec.kind == "chiplets":
        if not isinstance(v, list):
            raise DesignTableError(f"{where}: field '{name}' must be a list of tables {{name, area_mm2, node, count}}")
        out = []
        for i, c in enumerate(v):
            here = f"{name}[{i}]"
            if not isinstance(c, dict) or set(c) != {"name", "area_mm2", "node", "count"}:
                raise DesignTableError(f"{where}: field '{here}' = {c!r} must have exactly name, area_mm2, node, count")
            out.append(
                {
                    "name": _check(where, f"{here}.name", c["name"], Spec("str")),
                    "area_mm2": float(
                        check_number(
                            where,
                            f"{here}.area_mm2",
                            c["area_mm2"],
                            Spec("number", 0, 900, lo_open=True),
                            DesignTableError,
                        )
                    ),
                    "node": str(c["node"]),
                    "count": int(
                        check_number(where, f"{here}.count", c["count"], Spec("int", 1, 1000), DesignTableError)
                    ),
                }
            )
        return out
    raise AssertionError(spec.kind)


def design_tables(design: Design) -> dict[str, dict[str, Any]]:
    """The validated [cost], [power] and [reference] tables of `design` (missing tables are empty)."""
    out: dict[str, dict[str, Any]] = {}
    for table, fields in TABLES.items():
        raw = design.extras.get(table, {})
        where = design.source
        clean: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in fields:
                hint = difflib.get_close_matches(key, fields, n=1)
                raise DesignTableError(
                    f"{where}: unknown field '{table}.{key}'"
                    + (f" (did you mean '{table}.{hint[0]}'?)" if hint else f"; allowed: {', '.join(fields)}")
                )
            clean[key] = _check(where, f"{table}.{key}", value, fields[key])
        out[table] = clean
    return out


@dataclass
class Check:
    """A modelled figure checked against a published range."""

    name: str
    value: float
    low: float
    high: float
    ok: bool
    source: str = ""
    notes: list[str] = field(default_factory=list)
