"""Die and unit cost: dies per wafer, yield (negative binomial, Poisson, Murphy, Seeds), harvesting, memory,
packaging, test, board, margin. Formulas and defaults from docs/sources.md section (a).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from workbench.errors import UsageError
from workbench.nodes import Node, defect_density, resolve_node

WAFER_DIAMETER_MM = 300.0  # a.1: all prices in a.4 are per 300 mm wafer
# a.1: the usable wafer excludes a rim of 2-5 mm (citicalculator.com; coldcalculator.com says 3-10 mm); 3 mm is
# taken by default, the value of the worked 300 mm exercise with a 100 um scribe line (docs/sources.md C.1).
EDGE_EXCLUSION_MM = 3.0
# Dies are separated by scribe (saw) lanes: 100 um by default (same exercise; GF180MCU's DRM makes a scribe
# line and guard ring mandatory on every side, C.1). Each die occupies (sqrt(A) + scribe)^2 of the wafer.
SCRIBE_MM = 0.1
NB_ALPHA = 3.0  # a.2: ttm-cas / LLMCompass clustering parameter; a.3 recommends NB with alpha = 3
YIELD_MODELS = ("negative_binomial", "poisson", "murphy", "seeds")
RETICLE_MM2 = 26 * 33  # the standard scanner exposure field (26 mm x 33 mm): the largest single die
RETICLE_NOTE = ("{area:,.0f} mm^2 exceeds one 26 x 33 mm = 858 mm^2 lithography field (the reticle limit); "
                "a real part needs several dies (chiplets) or wafer-scale stitching")


class CostInputError(UsageError):
    """A cost input out of range (area, yield, margin, harvesting)."""


def dies_per_wafer(
    die_area_mm2: float,
    wafer_diameter_mm: float = WAFER_DIAMETER_MM,
    edge_exclusion_mm: float | None = None,
    scribe_mm: float | None = None,
) -> float:
    """Gross dies per wafer, pi(d/2)^2/A' - pi d/sqrt(2A') (a.1): d less twice the edge exclusion, A' the die
    with its scribe lane, (sqrt(A) + scribe)^2. None takes EDGE_EXCLUSION_MM and SCRIBE_MM."""
    edge = EDGE_EXCLUSION_MM if edge_exclusion_mm is None else edge_exclusion_mm
    scribe = SCRIBE_MM if scribe_mm is None else scribe_mm
    if die_area_mm2 <= 0:
        raise CostInputError(f"die area must be > 0 mm^2, got {die_area_mm2}")
    if edge < 0 or scribe < 0:
        raise CostInputError(f"edge exclusion ({edge} mm) and scribe width ({scribe} mm) must be >= 0")
    d = wafer_diameter_mm - 2 * edge
    if d <= 0:
        raise CostInputError(f"edge exclusion {edge} mm leaves no wafer (diameter {wafer_diameter_mm} mm)")
    site = (math.sqrt(die_area_mm2) + scribe) ** 2
    return max(0.0, math.pi * (d / 2) ** 2 / site - math.pi * d / math.sqrt(2 * site))


def poisson_yield(defects_per_die: float) -> float:
    """Y = exp(-lambda): random defects, the pessimistic bound (a.2)."""
    return math.exp(-defects_per_die)


def murphy_yield(defects_per_die: float) -> float:
    """Y = ((1 - exp(-lambda)) / lambda)^2, Murphy 1964 (a.2)."""
    lam = defects_per_die
    return 1.0 if lam == 0 else ((1 - math.exp(-lam)) / lam) ** 2


def seeds_yield(defects_per_die: float) -> float:
    """Y = 1 / (1 + lambda): the heavy-clustering limit (a.2; implemented by formula, not by name)."""
    return 1.0 / (1.0 + defects_per_die)


def negative_binomial_yield(defects_per_die: float, alpha: float = NB_ALPHA) -> float:
    """Y = (1 + lambda/alpha)^-alpha, Stapper's negative binomial (a.2)."""
    if alpha <= 0:
        raise CostInputError(f"clustering alpha must be > 0, got {alpha}")
    return (1 + defects_per_die / alpha) ** (-alpha)


def die_yield(
    die_area_mm2: float, d0_per_cm2: float, model: str = "negative_binomial", alpha: float = NB_ALPHA
) -> float:
    """Defect-free yield of a die of `die_area_mm2` at defect density D0 (per cm^2) under `model`."""
    lam = d0_per_cm2 * die_area_mm2 / 100.0  # A in cm^2 (a.2)
    if model == "negative_binomial":
        return negative_binomial_yield(lam, alpha)
    if model == "poisson":
        return poisson_yield(lam)
    if model == "murphy":
        return murphy_yield(lam)
    if model == "seeds":
        return seeds_yield(lam)
    raise CostInputError(f"unknown yield model {model!r}; choose one of {', '.join(YIELD_MODELS)}")


def at_least_k_of_n(k: int, n: int, p: float) -> float:
    """P(at least k of n independent blocks are good), each good with probability p (binomial, a.2)."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


MAX_HARVEST_BLOCKS = 100_000  # far above real parts (H100: 144 SMs); keeps the binomial sum quick


@dataclass(frozen=True)
class Harvest:
    """Spare blocks: `fraction` of the die is `blocks` identical blocks, `required` of which must work."""

    blocks: int
    required: int
    fraction: float

    def validate(self, where: str = "harvest") -> None:
        """Raise CostInputError naming the field if out of range."""
        if not 1 <= self.blocks <= MAX_HARVEST_BLOCKS:
            raise CostInputError(f"{where}.blocks = {self.blocks} must be in 1..{MAX_HARVEST_BLOCKS:,}")
        if not 1 <= self.required <= self.blocks:
            raise CostInputError(f"{where}.required = {self.required} must be in 1..blocks ({self.blocks})")
        if not 0 < self.fraction < 1:
            raise CostInputError(f"{where}.fraction = {self.fraction} must be in (0, 1) (exclusive)")


def harvested_yield(
    die_area_mm2: float,
    d0_per_cm2: float,
    harvest: Harvest,
    model: str = "negative_binomial",
    alpha: float = NB_ALPHA,
) -> float:
    """Y_eff = Y(non-redundant area) x P(>= required of blocks good) (a.2, a.8 step 4)."""
    harvest.validate()
    fixed = die_yield(die_area_mm2 * (1 - harvest.fraction), d0_per_cm2, model, alpha)
    block = die_yield(die_area_mm2 * harvest.fraction / harvest.blocks, d0_per_cm2, model, alpha)
    return fixed * at_least_k_of_n(harvest.required, harvest.blocks, block)


@dataclass
class DieCost:
    """Cost of one good die, with every term of the calculation."""

    name: str
    area_mm2: float
    node: str
    wafer_price_usd: float
    defect_density_per_cm2: float
    yield_model: str
    alpha: float
    gross_dies_per_wafer: float
    defect_free_yield: float
    effective_yield: float  # with harvesting; equals defect_free_yield without
    good_dies_per_wafer: float
    cost_per_good_die_usd: float
    harvest: dict | None = None
    edge_exclusion_mm: float = EDGE_EXCLUSION_MM
    scribe_mm: float = SCRIBE_MM
    year: float | None = None
    provenance: str = "modelled"
    sources: str = ""


def cost_per_good_die(
    die_area_mm2: float,
    node: str | int | Node,
    *,
    name: str = "die",
    wafer_price_usd: float | None = None,
    d0_per_cm2: float | None = None,
    yield_model: str = "negative_binomial",
    alpha: float = NB_ALPHA,
    edge_exclusion_mm: float | None = None,
    scribe_mm: float | None = None,
    harvest: Harvest | None = None,
    year: float | None = None,
) -> DieCost:
    """Wafer price / (gross dies x yield) for a die at a node; node defaults for price and D0 unless given.

    year: the node's D0 in that year (nodes.defect_density); None takes the node's mature D0.
    """
    n = node if isinstance(node, Node) else resolve_node(node)
    price = n.wafer_price_usd if wafer_price_usd is None else float(wafer_price_usd)
    d0 = defect_density(n.nm, year) if d0_per_cm2 is None else float(d0_per_cm2)
    if price <= 0:
        raise CostInputError(f"wafer price must be > 0 USD, got {price}")
    if d0 < 0:
        raise CostInputError(f"defect density must be >= 0 per cm^2, got {d0}")
    gross = dies_per_wafer(die_area_mm2, edge_exclusion_mm=edge_exclusion_mm, scribe_mm=scribe_mm)
    y0 = die_yield(die_area_mm2, d0, yield_model, alpha)
    y = harvested_yield(die_area_mm2, d0, harvest, yield_model, alpha) if harvest else y0
    good = gross * y
    if good <= 0:
        raise CostInputError(f"{name}: {die_area_mm2} mm^2 yields no good dies on a {WAFER_DIAMETER_MM:g} mm wafer")
    return DieCost(
        name=name,
        area_mm2=die_area_mm2,
        node=n.name,
        wafer_price_usd=price,
        defect_density_per_cm2=d0,
        yield_model=yield_model,
        alpha=alpha,
        gross_dies_per_wafer=gross,
        defect_free_yield=y0,
        effective_yield=y,
        good_dies_per_wafer=good,
        cost_per_good_die_usd=price / good,
        harvest=asdict(harvest) if harvest else None,
        edge_exclusion_mm=EDGE_EXCLUSION_MM if edge_exclusion_mm is None else edge_exclusion_mm,
        scribe_mm=SCRIBE_MM if scribe_mm is None else scribe_mm,
        year=year,
        sources=f"a.1 dies/wafer (edge exclusion, scribe: C.1); a.2 yield; {n.name}: D0 C.2"
        + ("" if year is None else f" in {year:g}")
        + ", a.4 wafer price"
        + (" [E]" if "wafer_price_usd" in n.estimated and wafer_price_usd is None else "")
        + ("" if wafer_price_usd is None else f" (given ${price:,.0f})"),
    )


# Memory price per GB by type (docs/sources.md a.7).
MEMORY_USD_PER_GB: dict[str, tuple[float, str]] = {
    "HBM3e": (15.0, "a.7 recommended HBM3/3e default [E] (B200 teardown ~$2.9k/192 GB)"),
    "HBM3": (15.0, "a.7 recommended HBM3/3e default [E] (H100 teardowns $1.35-1.5k/80 GB)"),
    "HBM2e": (15.0, "a.7 HBM default [E]; sensitivity range 7-20"),
    "DDR5": (2.4, "a.7 LLMCompass cost_model.py (Oct 2025)"),
    "DDR4": (2.4, "[E] DDR5 price used: a.7 has no DDR4 figure"),
    "LPDDR5": (2.4, "[E] DDR5 price used: a.7 has no LPDDR figure (gap)"),
    "LPDDR4": (2.4, "[E] DDR5 price used: a.7 has no LPDDR figure (gap)"),
    # Gap in a.7: GDDR6/6X have no sourced $/GB. HBM is ~5x DDR5 per bit (TrendForce, a.7); GDDR sits between
    # commodity DDR and HBM, so 2x DDR5 is assumed [E].
    "GDDR6": (4.8, "[E] 2x the DDR5 price: a.7 has no GDDR6 figure (gap)"),
    "GDDR6X": (4.8, "[E] 2x the DDR5 price: a.7 has no GDDR6X figure (gap)"),
}

# Packaging and test per unit. HBM parts need 2.5D (CoWoS-class) packaging; the only itemized published figures
# are a.6's H100 ones [E]: CoWoS-S packaging ~$750 and test & assembly ~$920 for the 814 mm^2 GH100 with five
# active 16 GB HBM3 stacks (80 GB, chips.csv). They are scaled, not charged as constants:
# - packaging by the silicon the interposer carries (logic dies + HBM stacks), the interposer's area being what
#   the 2.5D process prices [E]; a stack's footprint is taken as 11 x 10 mm (the HBM2E KGSD outline) [E];
# - test & assembly by logic area: ttm-cas models OSAT test time as proportional to transistor count (a.5,
#   supply_chain_model.py osat_time), i.e. to logic area at one node.
# Checks (docs/models.md): B200 (2 x ~800 mm^2, 8 stacks) gives ~$1.4k against a published ~$1.1k; MI300X
# (~2.4k mm^2 of chiplets, 8 stacks) ~$1.8k against ~$1.2k: the area rule overstates multi-die parts.
# Other parts sit in an organic flip-chip package. Two published points: ttm-cas's starter package $20 + $1
# assembly (a.5, "starter examples" for small packages) and CSET's $80 assembly, test and packaging for a 610 mm^2
# 5 nm chip (C.3). Between them the cost follows the logic area, as ttm-cas's OSAT packaging and test times do
# (a.5, osat_time) [E]: max($21, $80 x area / 610 mm^2), split 20:1 like the starter figures [E].
COWOS_REF_PACKAGING_USD = 750.0
COWOS_REF_TEST_USD = 920.0
COWOS_REF_LOGIC_MM2 = 814.0
COWOS_REF_HBM_STACKS = 5
HBM_STACK_FOOTPRINT_MM2 = 11.0 * 10.0
HBM_GB_PER_STACK = 16.0  # H100: 80 GB over five active stacks (chips.csv), used when the stack count is not given
SIMPLE_PACKAGING_USD = 20.0  # a.5 ttm-cas starter package
SIMPLE_TEST_USD = 1.0  # a.5 ttm-cas starter assembly
FLIP_CHIP_REF_ATP_USD = 80.0  # C.3: CSET's assembly, test and packaging per chip (2020)
FLIP_CHIP_REF_LOGIC_MM2 = 610.0  # C.3: CSET's chip, the die area of Nvidia's P100


def memory_usd_per_gb(memory_type: str) -> tuple[float, str]:
    """Default $/GB and its source for a memory type."""
    if memory_type not in MEMORY_USD_PER_GB:
        raise CostInputError(f"unknown memory type {memory_type!r}; known: {', '.join(MEMORY_USD_PER_GB)}")
    return MEMORY_USD_PER_GB[memory_type]


def default_packaging(
    memory_type: str | None, logic_mm2: float = COWOS_REF_LOGIC_MM2, hbm_stacks: int | None = None
) -> tuple[tuple[float, str], tuple[float, str]]:
    """(packaging, test) USD with sources: CoWoS-class scaled by interposer silicon for HBM, else an organic
    flip-chip package scaled by logic area (never below ttm-cas's starter package)."""
    if not (memory_type and memory_type.startswith("HBM")):
        starter = SIMPLE_PACKAGING_USD + SIMPLE_TEST_USD
        atp = max(starter, FLIP_CHIP_REF_ATP_USD * logic_mm2 / FLIP_CHIP_REF_LOGIC_MM2)
        why = (
            f"max(a.5 ttm-cas starter ${starter:g}, C.3 CSET ${FLIP_CHIP_REF_ATP_USD:g} x logic area "
            f"{logic_mm2:,.0f} / {FLIP_CHIP_REF_LOGIC_MM2:g} mm^2) [E]"
        )
        return (
            (atp * SIMPLE_PACKAGING_USD / starter, f"organic flip-chip package: {why}, package share 20/21"),
            (atp * SIMPLE_TEST_USD / starter, f"assembly and test: {why}, share 1/21"),
        )
    stacks = COWOS_REF_HBM_STACKS if hbm_stacks is None else hbm_stacks
    ref_silicon = COWOS_REF_LOGIC_MM2 + COWOS_REF_HBM_STACKS * HBM_STACK_FOOTPRINT_MM2
    silicon = logic_mm2 + stacks * HBM_STACK_FOOTPRINT_MM2
    pkg = COWOS_REF_PACKAGING_USD * silicon / ref_silicon
    test = COWOS_REF_TEST_USD * logic_mm2 / COWOS_REF_LOGIC_MM2
    return (
        (pkg, f"a.6 H100 CoWoS-S ~$750 [E] x interposer silicon {silicon:,.0f} / {ref_silicon:,.0f} mm^2 "
         f"({stacks} HBM stacks of {HBM_STACK_FOOTPRINT_MM2:g} mm^2 [E])"),
        (test, f"a.6 H100 test & assembly ~$920 [E] x logic area {logic_mm2:,.0f} / {COWOS_REF_LOGIC_MM2:g} mm^2 "
         "(ttm-cas: test time ~ transistors)"),
    )


# Non-recurring engineering per tapeout (a.5, ttm-cas / Moonwalk / IC Knowledge): mask set and licensed IP, USD.
# Nodes a.5 does not list take the nearest listed node's figure [E]: 65/90 nm the 40 nm mask set (an upper bound),
# 6 nm the 7 nm set, 4/3/2 nm the 5 nm set (a lower bound); IP is listed only for 28, 7 and 5 nm.
MASK_SET_USD = {40: 0.5e6, 28: 1.2e6, 20: 1.9e6, 16: 2.82e6, 10: 4.74e6, 7: 10.5e6, 5: 18.1e6}
IP_PER_TAPEOUT_USD = {28: 1.03e6, 7: 2.34e6, 5: 2.64e6}
PACKAGE_DESIGN_USD = 105e3  # a.5: flip-chip BGA package design


def _nearest(table: dict[int, float], nm: int) -> tuple[float, bool]:
    """The figure for `nm`, or the nearest listed node's (ties: the smaller node); True if it was exact."""
    if nm in table:
        return table[nm], True
    key = min(table, key=lambda n: (abs(n - nm), n))
    return table[key], False


@dataclass
class Nre:
    """One-time cost of a tapeout, spread over a production volume."""

    mask_set_usd: float
    ip_usd: float
    package_design_usd: float
    total_usd: float
    volume_units: int
    per_unit_usd: float
    estimated: list[str]
    source: str = "a.5 (ttm-cas: masks, licensed IP, package design); engineering labour not included"


def nre_cost(node: str | int | Node, volume_units: int) -> Nre:
    """Mask set + licensed IP + package design for a tapeout at `node`, per unit over `volume_units` (a.5)."""
    if volume_units < 1:
        raise CostInputError(f"volume = {volume_units} units must be >= 1")
    n = node if isinstance(node, Node) else resolve_node(node)
    masks, exact_m = _nearest(MASK_SET_USD, n.nm)
    ip, exact_ip = _nearest(IP_PER_TAPEOUT_USD, n.nm)
    total = masks + ip + PACKAGE_DESIGN_USD
    est = [name for name, exact in (("mask_set_usd", exact_m), ("ip_usd", exact_ip)) if not exact]
    return Nre(masks, ip, PACKAGE_DESIGN_USD, total, volume_units, total / volume_units, est)


HOURS_PER_YEAR = 8760


def operating_cost_usd(power_w: float, years: float, usd_per_kwh: float, pue: float = 1.0) -> float:
    """Electricity over `years`: P(kW) x 8760 h x years x $/kWh x PUE (docs/sources.md c; inputs user-set)."""
    if power_w < 0 or years < 0 or usd_per_kwh < 0 or pue < 1:
        raise CostInputError(
            f"operating cost needs power, years, $/kWh >= 0 and PUE >= 1; got {power_w} W, "
            f"{years} years, ${usd_per_kwh}/kWh, PUE {pue}"
        )
    return power_w / 1000 * HOURS_PER_YEAR * years * usd_per_kwh * pue


@dataclass
class CostTerm:
    """One line of a unit-cost breakdown."""

    name: str
    usd: float
    detail: str
    provenance: str = "modelled"
    source: str = ""


@dataclass
class UnitCost:
    """Per-unit cost: dies / assembly yield + memory + packaging + test + board + system; then price."""

    dies: list[DieCost]
    terms: list[CostTerm]
    cost_usd: float
    margin: float
    price_usd: float
    provenance: str = "modelled"
    notes: list[str] = field(default_factory=list)

    def term(self, name: str) -> float:
        """USD of the named term (0 if absent)."""
        return sum(t.usd for t in self.terms if t.name == name)

    def to_json(self) -> dict:
        """Plain-dict form."""
        return asdict(self)


def unit_cost(
    dies: list[tuple[DieCost, int]],
    *,
    memory_gb: float = 0.0,
    memory_type: str | None = None,
    memory_usd_per_gb_override: float | None = None,
    packaging_usd: float | None = None,
    test_usd: float | None = None,
    assembly_yield: float = 1.0,
    board_usd: float = 0.0,
    system_usd: float = 0.0,
    nre: Nre | None = None,
    margin: float = 0.0,
    hbm_stacks: int | None = None,
) -> UnitCost:
    """Unit cost from (die, count) pairs and per-unit terms; price = cost / (1 - margin) (a.8 steps 6-7)."""
    if not 0 < assembly_yield <= 1:
        raise CostInputError(f"assembly_yield = {assembly_yield} must be in (0, 1]")
    if not 0 <= margin < 1:
        raise CostInputError(f"margin = {margin} must be in [0, 1) (a gross margin, e.g. 0.6 for 60%)")
    if memory_gb < 0:
        raise CostInputError(f"memory_gb = {memory_gb} must be >= 0")
    terms: list[CostTerm] = []
    for die, count in dies:
        usd = count * die.cost_per_good_die_usd / assembly_yield
        terms.append(
            CostTerm(
                f"die:{die.name}",
                usd,
                f"{count} x ${die.cost_per_good_die_usd:,.2f} / assembly yield {assembly_yield:g}",
                source=die.sources,
            )
        )
    if memory_gb:
        if memory_type is None:
            raise CostInputError("memory_gb given without a memory type (e.g. HBM3, GDDR6, LPDDR5)")
        per_gb, src = memory_usd_per_gb(memory_type)
        if memory_usd_per_gb_override is not None:
            per_gb, src = float(memory_usd_per_gb_override), "design file [cost] memory_usd_per_gb"
        terms.append(
            CostTerm("memory", memory_gb * per_gb, f"{memory_gb:g} GB {memory_type} x ${per_gb:g}/GB", source=src)
        )
    logic_mm2 = sum(die.area_mm2 * count for die, count in dies)
    if hbm_stacks is None and memory_gb and memory_type and memory_type.startswith("HBM"):
        hbm_stacks = math.ceil(memory_gb / HBM_GB_PER_STACK)
    (pkg_default, pkg_src), (test_default, test_src) = default_packaging(memory_type, logic_mm2, hbm_stacks)
    pkg = pkg_default if packaging_usd is None else float(packaging_usd)
    tst = test_default if test_usd is None else float(test_usd)
    terms.append(
        CostTerm(
            "packaging",
            pkg,
            "per unit",
            source=pkg_src if packaging_usd is None else "set in the design [cost] or on the command line",
        )
    )
    terms.append(
        CostTerm(
            "test",
            tst,
            "per unit",
            source=test_src if test_usd is None else "set in the design [cost] or on the command line",
        )
    )
    if board_usd:
        terms.append(CostTerm("board", float(board_usd), "per unit", source="given"))
    if system_usd:
        terms.append(CostTerm("system", float(system_usd), "per unit", source="given"))
    if nre is not None:
        terms.append(
            CostTerm(
                "nre",
                nre.per_unit_usd,
                f"${nre.total_usd / 1e6:,.2f} M tapeout / {nre.volume_units:,} "
                "units" + (f" ({', '.join(nre.estimated)} [E])" if nre.estimated else ""),
                source=nre.source,
            )
        )
    cost = sum(t.usd for t in terms)
    notes = [f"{d.name}: {RETICLE_NOTE.format(area=d.area_mm2)}" for d, _ in dies if d.area_mm2 > RETICLE_MM2]
    return UnitCost(
        dies=[d for d, _ in dies], terms=terms, cost_usd=cost, margin=margin, price_usd=cost / (1 - margin), notes=notes
    )
