"""Per-node process facts (wafer price, defect density, logic and SRAM density) and 45 nm scaling factors.

Every figure cites `docs/sources.md` by section; [E] marks an estimate, with the
reasoning next to it. Node names are forgiving: "N4", "4nm", "4", "4N", "TSMC 4NP" all mean 4 nm.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import asdict, dataclass, field

from isa.technology import area_factor, energy_factor, logic_density_mtr_per_mm2  # noqa: F401
from workbench.errors import UsageError


class UnknownNodeError(UsageError):
    """A process node the tables do not cover; the message lists the closest known nodes."""


@dataclass(frozen=True)
class Node:
    """Process facts the cost and area models need for one node."""

    name: str  # canonical name, e.g. "4nm"
    nm: int
    wafer_price_usd: float  # foundry sale price of one 300 mm wafer
    defect_density_per_cm2: float  # D0, killer defects per cm^2
    logic_density_mtr_per_mm2: float  # typical (not peak) logic density, million transistors per mm^2
    sram_density_mbit_per_mm2: float  # effective die-level SRAM density for large arrays
    estimated: tuple[str, ...] = field(default=())  # which of the fields above are estimates [E]
    sources: str = ""

    def to_json(self) -> dict:
        """Plain-dict form."""
        return asdict(self)


_CSET = "docs/sources.md a.4 (CSET, Khan & Mann 2020, App. D)"
_D0_MATURE = "docs/sources.md a.3 recommended: 28/16 nm 0.05; mature N7/N5/N4 0.10; early N3/N2 0.20"
_CSET_DENSITY = "docs/sources.md b.6 (CSET / ttm-cas transistor_density_arr)"

# nm: (wafer $, D0, logic MTr/mm^2, SRAM Mbit/mm^2, estimated fields, sources)
# SRAM densities: b.5 recommends 3 Mbit/mm^2 at N7 and 4 at N5 for large caches [E, derived from LLMCompass's
# effective bitcell / array efficiency, calibrated on the A100 die]. Other nodes are scaled from those by the
# HD-bitcell ratio (b.5 table) or, above 16 nm where no bitcell is listed, by logic-density ratio (b.6) [E].
_TABLE: dict[int, tuple[float, float, float, float, tuple[str, ...], str]] = {
    90: (
        1650,
        0.05,
        1.6,
        1.09 * 1.6 / 28.9,
        ("sram_density_mbit_per_mm2",),
        f"{_CSET}; {_D0_MATURE}; {_CSET_DENSITY}",
    ),
    65: (
        1937,
        0.05,
        3.3,
        1.09 * 3.3 / 28.9,
        ("sram_density_mbit_per_mm2",),
        f"{_CSET}; {_D0_MATURE}; {_CSET_DENSITY}",
    ),
    40: (
        2274,
        0.05,
        7.7,
        1.09 * 7.7 / 28.9,
        ("sram_density_mbit_per_mm2",),
        f"{_CSET}; {_D0_MATURE}; {_CSET_DENSITY}",
    ),
    28: (
        2891,
        0.05,
        15.3,
        1.09 * 15.3 / 28.9,
        ("sram_density_mbit_per_mm2",),
        f"{_CSET}; {_D0_MATURE}; {_CSET_DENSITY}",
    ),
    20: (
        3677,
        0.05,
        22.1,
        1.09 * 22.1 / 28.9,
        ("sram_density_mbit_per_mm2",),
        f"{_CSET}; {_D0_MATURE}; {_CSET_DENSITY}",
    ),
    # 16 nm SRAM: N7's 3 Mbit/mm^2 x (N7 bitcell 0.027 / 16 nm bitcell 0.074 um^2), b.5 [E] = 1.09
    16: (
        3984,
        0.05,
        28.9,
        3.0 * 0.027 / 0.074,
        ("sram_density_mbit_per_mm2",),
        f"{_CSET}; {_D0_MATURE}; {_CSET_DENSITY}",
    ),
    # 10 nm: D0 not in a.3's recommendation; a mature FinFET node like N7 [E]. SRAM: geometric mean of
    # the 16 nm and N7 figures [E] (no 10 nm bitcell in b.5).
    10: (
        5992,
        0.10,
        52.5,
        math.sqrt(3.0 * 0.027 / 0.074 * 3.0),
        ("defect_density_per_cm2", "sram_density_mbit_per_mm2"),
        f"{_CSET}; {_CSET_DENSITY}",
    ),
    7: (
        9346,
        0.10,
        96.3,
        3.0,
        ("sram_density_mbit_per_mm2",),
        f"{_CSET}; {_D0_MATURE}; {_CSET_DENSITY}; b.5",
    ),
    # N6 (a 7 nm derivative): no wafer price in a.4, so the 7 nm price is used [E]; logic density 114.2 is
    # LLMCompass's 6 nm figure (b.6); SRAM scaled by the effective bitcell 0.17 (7 nm) / 0.14 (6 nm), b.5 [E].
    6: (
        9346,
        0.10,
        114.2,
        3.0 * 0.17 / 0.14,
        ("wafer_price_usd", "sram_density_mbit_per_mm2"),
        f"{_CSET} (7 nm price); {_D0_MATURE}; {_CSET_DENSITY} (LLMCompass 6 nm); b.5",
    ),
    5: (
        16988,
        0.10,
        138.2,
        4.0,
        ("sram_density_mbit_per_mm2",),
        f"{_CSET}; {_D0_MATURE}; {_CSET_DENSITY}; b.5",
    ),
    # N4/4N/4NP: a.4 says treat as the N5 price [E]; density taken as N5's (4 nm is an N5-family node) [E].
    4: (
        16988,
        0.10,
        138.2,
        4.0,
        ("wafer_price_usd", "logic_density_mtr_per_mm2", "sram_density_mbit_per_mm2"),
        f"{_CSET} (N5 price, per a.4); {_D0_MATURE}; {_CSET_DENSITY} (N5 value); b.5",
    ),
    # N3: wafer 20k [E] (a.4 recommended default). Logic: Angstronomics' N3E <=215 MTr/mm^2 (b.6) times the N5
    # typical/peak ratio 138.2/171.3 (b.6) [E] = 173. SRAM: N3E bitcell 0.021 = N5's (b.5): 4 Mbit/mm^2 [E].
    3: (
        20000,
        0.20,
        215 * 138.2 / 171.3,
        4.0,
        ("wafer_price_usd", "logic_density_mtr_per_mm2", "sram_density_mbit_per_mm2"),
        "docs/sources.md a.4 recommended 3 nm default [E]; a.3; b.6; b.5",
    ),
    # N2: wafer 30k [E] (a.4). No density source: 1.1x N3 [E]. SRAM: bitcell 0.0175 vs 0.021 (b.5) [E].
    2: (
        30000,
        0.20,
        1.1 * 215 * 138.2 / 171.3,
        4.0 * 0.021 / 0.0175,
        ("wafer_price_usd", "logic_density_mtr_per_mm2", "sram_density_mbit_per_mm2"),
        "docs/sources.md a.4 recommended 2 nm default [E]; a.3; b.5",
    ),
}

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
    price, d0, logic, sram, est, src = _TABLE[nm]
    return Node(f"{nm}nm", nm, price, d0, logic, sram, est, src)


# Node scaling lives in isa.technology, shared with the RTL flows; re-exported here for the models.
