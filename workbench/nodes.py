"""Per-node process facts (wafer price, defect density, logic and SRAM density) and 45 nm scaling factors.

Every figure cites `docs/sources.md` by section; [E] marks an estimate, with the
reasoning next to it. Node names are forgiving: "N4", "4nm", "4", "4N", "TSMC 4NP" all mean 4 nm.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field

from isa.technology import (  # noqa: F401  (area_factor and energy_factor are re-exported for the models)
    area_factor,
    energy_factor,
    logic_density_mtr_per_mm2,
    sram_density_mbit_per_mm2,
)
from workbench.errors import UsageError


class UnknownNodeError(UsageError):
    """A process node the tables do not cover; the message lists the closest known nodes."""


@dataclass(frozen=True)
class Node:
    """Process facts the cost and area models need for one node."""

    name: str  # canonical name, e.g. "4nm"
    nm: int
    wafer_price_usd: float  # foundry sale price of one 300 mm wafer
    defect_density_per_cm2: float  # D0, killer defects per cm^2, mature value (defect_density() by year)
    logic_density_mtr_per_mm2: float  # typical (not peak) logic density, million transistors per mm^2
    sram_density_mbit_per_mm2: float  # effective die-level SRAM density for large arrays
    estimated: tuple[str, ...] = field(default=())  # which of the fields above are estimates [E]
    sources: str = ""

    def to_json(self) -> dict:
        """Plain-dict form."""
        return asdict(self)


_CSET = "docs/sources.md a.4 (CSET, Khan & Mann 2020, App. D)"
_DENSITY = "isa.technology (b.6 logic, b.5 LLMCompass SRAM)"

# nm: (wafer $, estimated fields, sources). Logic and SRAM densities are not retyped here: they come from
# isa.technology, the one table the RTL flows read too. D0 comes from DEFECT_DENSITY below.
_TABLE: dict[int, tuple[float, tuple[str, ...], str]] = {
    90: (1650, (), _CSET),
    65: (1937, (), _CSET),
    40: (2274, (), _CSET),
    28: (2891, (), _CSET),
    20: (3677, (), _CSET),
    16: (3984, (), _CSET),
    10: (5992, ("defect_density_per_cm2",), _CSET),
    7: (9346, (), _CSET),
    # N6 (a 7 nm derivative): no wafer price in a.4, so the 7 nm price is used [E].
    6: (9346, ("wafer_price_usd",), f"{_CSET} (7 nm price)"),
    5: (16988, (), _CSET),
    # N4/4N/4NP: a.4 says treat as the N5 price [E]; density and D0 as N5's (an N5-family node) [E].
    4: (16988, ("wafer_price_usd", "logic_density_mtr_per_mm2", "defect_density_per_cm2"),
        f"{_CSET} (N5 price, per a.4)"),
    3: (20000, ("wafer_price_usd", "logic_density_mtr_per_mm2", "sram_density_mbit_per_mm2", "defect_density_per_cm2"),
        "docs/sources.md a.4 recommended 3 nm default [E]"),
    2: (30000, ("wafer_price_usd", "logic_density_mtr_per_mm2", "sram_density_mbit_per_mm2"),
        "docs/sources.md a.4 recommended 2 nm default [E]"),
}

# Defect density D0 (killer defects per cm^2) by node and calendar year, from published points only
# (docs/sources.md C.2): (year, D0). A year between points takes the latest point at or before it; a
# year before the first point takes the first; no year takes the last (the mature value).
# - N7: 0.09 three quarters after HVM, i.e. early 2019 (TSMC at VLSI 2019, via AnandTech 16028).
# - N5: ~1.27 in risk production, December 2019 (AnandTech 15219's figure from TSMC's IEDM test chip: 17.92 mm^2,
#   80% average yield); 0.10-0.11 in mid-2020, below 0.10 as HVM ramped (AnandTech 16028); ~0.06 by 2H 2021
#   read off TSMC's 2020 symposium projection (SemiWiki thread 12942) [E].
# - N6 follows N7 and N4 follows N5 (derivative nodes on the same lines) [E].
# - 28/16 nm and older: 0.05 mature (a.3 recommendation); 10 nm: 0.10 (a mature FinFET node like N7) [E].
# - N3: 0.20 at its 2023 ramp (a.3 early-ramp recommendation); by May 2024 TSMC said N3E's defect density was
#   "at levels similar to" N5's (Evertiq 55741), so N5's latest point from 2024.4 [E].
# - N2: 0.20 early ramp (a.3); TSMC's 2025 slide puts it below N3 at the same stage, with no number (C.2).
_N5_D0 = ((2019.95, 1.271), (2020.5, 0.105), (2021.5, 0.06))
DEFECT_DENSITY: dict[int, tuple[tuple[float, float], ...]] = {
    90: ((2005.0, 0.05),), 65: ((2007.0, 0.05),), 40: ((2009.0, 0.05),), 28: ((2012.0, 0.05),),
    20: ((2015.0, 0.05),), 16: ((2016.0, 0.05),), 10: ((2017.0, 0.10),),
    7: ((2019.0, 0.09),), 6: ((2019.0, 0.09),),
    5: _N5_D0, 4: _N5_D0,
    3: ((2023.0, 0.20), (2024.4, _N5_D0[-1][1])), 2: ((2025.5, 0.20),),
}
_D0_SOURCE = "docs/sources.md C.2 (TSMC via AnandTech 15219 and 16028, SemiWiki 12942 [E], Evertiq 55741 [E]; a.3)"


def defect_density(nm: int, year: float | None = None) -> float:
    """D0 per cm^2 of node `nm` in `year` (latest published point at or before it); None: the mature value."""
    points = DEFECT_DENSITY[nm]
    if year is None:
        return points[-1][1]
    earlier = [d0 for y, d0 in points if y <= year]
    return earlier[-1] if earlier else points[0][1]


# Foundry names that share a row: 12/14 nm FinFET nodes are sold with 16 nm (CSET's "16/12 nm" row, a.4).
_ALIAS_NM = {12: 16, 14: 16}

NODE_NAMES = tuple(f"{nm}nm" for nm in sorted(_TABLE, reverse=True))


def _parse_nm(name: str | int) -> int | None:
    """The node number in a name like 'N4', '4nm', '4N', 'TSMC 4NP', 'N5P', '16FF', or an int."""
    if isinstance(name, bool):
        return None
    if isinstance(name, int):
        return name
    text = str(name).strip().upper().replace("TSMC", "").replace(" ", "")
    m = re.fullmatch(r"N?(\d+)(NM|N|NP|P|E|B|FF|FFC|FF\+)?", text)
    return int(m.group(1)) if m else None


def resolve_node(name: str | int) -> Node:
    """The Node for a name like 'N4', '4nm', '4' or 4; unknown names raise UnknownNodeError (suggests)."""
    nm = _parse_nm(name)
    nm = _ALIAS_NM.get(nm, nm) if nm is not None else None
    if nm not in _TABLE:
        if nm is not None:
            closest = sorted(_TABLE, key=lambda n: (abs(n - nm), -n))[:2]
            hint = ", ".join(f"{n}nm" for n in closest)
        else:
            hint = ", ".join(difflib.get_close_matches(str(name).lower(), NODE_NAMES, n=2, cutoff=0.3))
        raise UnknownNodeError(
            f"unknown process node {name!r}; "
            + (f"closest known: {hint} " if hint else "")
            + f"(known: {', '.join(NODE_NAMES)}; also written N4, 4N, N5P, 12nm, 14nm)"
        )
    price, est, src = _TABLE[nm]
    return Node(
        f"{nm}nm",
        nm,
        price,
        defect_density(nm),
        logic_density_mtr_per_mm2(nm),
        sram_density_mbit_per_mm2(nm),
        est,
        f"{src}; D0 {_D0_SOURCE}; densities {_DENSITY}",
    )


# Node scaling lives in isa.technology, shared with the RTL flows; re-exported here for the models.
