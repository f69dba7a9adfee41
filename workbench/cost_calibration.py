"""Published die-cost estimates (docs/sources.md C.4) with the inputs each states, and the model's figure for each:
under the estimate's own stated inputs (does the model reproduce it?) and under the project's defaults (does the
model agree with the consensus?). `workbench cost --published` prints the table; docs/models.md 'Cost' quotes it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from isa.design import load_design
from workbench.cost import Harvest, cost_per_good_die
from workbench.design_tables import design_tables

# The H100 SXM's 132 of GH100's 144 SMs, as designs/h100-like.toml's [cost] harvest states it (one source).
H100_HARVEST = Harvest(**design_tables(load_design("h100-like"))["cost"]["harvest"])


@dataclass(frozen=True)
class PublishedDieCost:
    """One published estimate of a die's (or a set of dies') manufacturing cost, with the inputs it states."""

    key: str
    die: str  # what it prices: a key of SUBJECT_DIES
    usd: float
    dies: tuple[tuple[float, str, int], ...]  # (area mm^2, node, count) as the estimate priced them
    source: str  # docs/sources.md entry and address
    method: str  # what the estimate says it did, in a few words
    wafer_price_usd: float | None = None  # stated wafer price; None: not stated (the model's default is used)
    d0_per_cm2: float | None = None  # stated defect density; None: not stated
    good_dies_per_wafer: float | None = None  # stated good dies per wafer, for estimates that give a count
    harvest: Harvest | None = None  # spare blocks the estimate counts (only product facts)


PUBLISHED: tuple[PublishedDieCost, ...] = (
    PublishedDieCost(
        "h100-siliconanalysts", "H100", 300.0, ((814.0, "N4", 1),),
        "C.4, a.6: https://siliconanalysts.com/tools/cost-bridge",
        "logic die ~$300 in an H100 bill of materials; inputs not itemized", harvest=H100_HARVEST,
    ),
    PublishedDieCost(
        "h100-szyunze", "H100", 200.0, ((814.0, "N4", 1),),
        "C.4, a.6: https://www.szyunze.com/how-profitable-is-nvidia-h100-find-out-in-1-minute",
        "$13,400 wafer; 86 dies per wafer by area alone (no edge loss); 80% yield and losses -> 65 good",
        wafer_price_usd=13400.0, good_dies_per_wafer=65.0, harvest=H100_HARVEST,
    ),
    PublishedDieCost(
        "h200-okx", "H100", 345.45, ((814.0, "N4", 1),),
        "C.4: https://web3.okx.com/de/discover/post/64639582664800",
        "H200 (the same GH100 die), 2026: 55 dies per wafer (85% yield) at $18-20k per N4 wafer = $327-364; midpoint",
        wafer_price_usd=19000.0, good_dies_per_wafer=55.0, harvest=H100_HARVEST,
    ),
    PublishedDieCost(
        "ad102-mackerel", "AD102", 378.0, ((608.0, "N4", 1),),
        "C.4: https://www.overclockers.com/forums/threads/estimated-costs-for-gpu-dies.803946/",
        "N4 priced as N5 (web search); D0 0.1 'for everything'; good = zero defects, no harvesting",
        d0_per_cm2=0.1,
    ),
    PublishedDieCost(
        "ad102-vgchartz", "AD102", 212.66, ((608.0, "N4", 1),),
        "C.4: https://gamrconnect.vgchartz.com/post.php?id=9402926",
        "5 nm wafer ~$14.5k + 10% for 4N = $15,950; 75 viable dies from a die-yield calculator, D0 not stated",
        wafer_price_usd=15950.0, good_dies_per_wafer=75.0,
    ),
    PublishedDieCost(
        "ad102-size-cset", "AD102", 238.0, ((610.0, "N5", 1),),
        "C.4: CSET, Khan & Mann 2020, Table 9 (https://www.eenewseurope.com/en/5nm-wafer-costs-double-says-ai-chip-report/)",
        "a 610 mm^2 5 nm chip: foundry price $16,988 per wafer, 71.4 chips per wafer (2020); yield not stated",
        wafer_price_usd=16988.0, good_dies_per_wafer=71.4,
    ),
    PublishedDieCost(
        "ad102-size-ocuk", "AD102", 280.0, ((600.0, "N5", 1),),
        "C.4: https://forums.overclockers.co.uk/threads/rx-7900xt-15-360-cores-mcm-tapeout-q4.18933812/page-5",
        "a 600 mm^2 (24.5 x 24.5 mm) 5 nm die: $15,000 wafer, D0 0.09 (TSMC's N7 figure), Caly die-yield calculator",
        wafer_price_usd=15000.0, d0_per_cm2=0.09,
    ),
    PublishedDieCost(
        "ad103-mackerel", "AD103", 179.0, ((379.0, "N4", 1),),
        "C.4: https://www.overclockers.com/forums/threads/estimated-costs-for-gpu-dies.803946/",
        "as for AD102: N4 priced as N5, D0 0.1, zero-defect dies", d0_per_cm2=0.1,
    ),
    PublishedDieCost(
        "ad103-hardwaretimes", "AD103", 150.0, ((379.0, "N4", 1),),
        "C.4: https://www.hardwaretimes.com/amd-radeon-rx-7900-xtx-manufacturing-costs-higher-than-nvidias-rtx-4080-up-to-500-per-card-report/",
        "'the AD103 die, which should cost roughly $150'; inputs not stated",
    ),
    PublishedDieCost(
        "ad104-mackerel", "AD104", 122.0, ((295.0, "N4", 1),),
        "C.4: https://www.overclockers.com/forums/threads/estimated-costs-for-gpu-dies.803946/",
        "as for AD102: N4 priced as N5, D0 0.1, zero-defect dies", d0_per_cm2=0.1,
    ),
    PublishedDieCost(
        "ad104-vgchartz", "AD104", 93.82, ((295.0, "N4", 1),),
        "C.4: https://gamrconnect.vgchartz.com/post.php?id=9402926",
        "as for AD102: $15,950 wafer, 170 dies per wafer from a die-yield calculator, D0 not stated",
        wafer_price_usd=15950.0, good_dies_per_wafer=170.0,
    ),
    PublishedDieCost(
        "navi31-mackerel", "Navi31", 166.0, ((308.0, "N5", 1), (37.5, "N6", 6)),
        "C.4: https://www.overclockers.com/forums/threads/estimated-costs-for-gpu-dies.803946/",
        "GCD on N5 + six MCDs on N6 (priced as N7); D0 0.1; zero-defect dies",
        d0_per_cm2=0.1,
    ),
)

# The die each comparison is about, as the project models it with defaults (harvesting only where a product
# fact: the H100 SXM's 132 of 144 SMs).
SUBJECT_DIES: dict[str, tuple[tuple[float, str, int], ...]] = {
    "H100": ((814.0, "N4", 1),),
    "AD102": ((608.0, "N4", 1),),
    "AD103": ((379.0, "N4", 1),),
    "AD104": ((295.0, "N4", 1),),
    "Navi31": ((308.0, "N5", 1), (37.5, "N6", 6)),
}
SUBJECT_HARVEST: dict[str, Harvest | None] = {"H100": H100_HARVEST}  # the others: no harvesting


def _cost(
    dies: tuple[tuple[float, str, int], ...], harvest: Harvest | None, wafer: float | None = None, d0: float | None = None
) -> float:
    """Sum of count x cost per good die; `harvest` applies to the first (main) die only."""
    total = 0.0
    for i, (area, node, count) in enumerate(dies):
        d = cost_per_good_die(area, node, wafer_price_usd=wafer, d0_per_cm2=d0, harvest=harvest if i == 0 else None)
        total += count * d.cost_per_good_die_usd
    return total


def model_with_defaults(die: str) -> float:
    """The model's cost of `die` (a key of SUBJECT_DIES) with every default: wafer price, D0, edge, scribe."""
    return _cost(SUBJECT_DIES[die], SUBJECT_HARVEST.get(die))


def model_under_stated_inputs(est: PublishedDieCost) -> float | None:
    """The model's cost of what `est` priced, with its stated wafer price and D0; None if it states neither D0
    nor a wafer price (nothing of its own to reproduce)."""
    if est.d0_per_cm2 is None and est.wafer_price_usd is None:
        return None
    return _cost(est.dies, est.harvest, est.wafer_price_usd, est.d0_per_cm2)


def implied_d0(est: PublishedDieCost) -> float | None:
    """The D0 at which the model gives `est`'s stated good dies per wafer (one-die estimates without a stated D0);
    None where it states a D0, gives no count, or counts more good dies than the model's wafer holds at D0 = 0."""
    if est.good_dies_per_wafer is None or est.d0_per_cm2 is not None or len(est.dies) != 1:
        return None
    area, node, _ = est.dies[0]

    def good(d0: float) -> float:
        return cost_per_good_die(area, node, d0_per_cm2=d0, harvest=est.harvest).good_dies_per_wafer

    lo, hi = 0.0, 1.0
    if good(lo) < est.good_dies_per_wafer:
        return None  # more good dies than the model's wafer holds at D0 = 0 (an area-only count): no D0 gives it
    for _ in range(60):  # bisection: good dies fall monotonically with D0
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if good(mid) > est.good_dies_per_wafer else (lo, mid)
    return (lo + hi) / 2


def published_for(die: str) -> list[PublishedDieCost]:
    """The published estimates of `die`."""
    return [e for e in PUBLISHED if e.die == die]


def consensus_usd(die: str) -> float:
    """Median of the published estimates of `die`."""
    return statistics.median(e.usd for e in published_for(die))


@dataclass
class CalibrationRow:
    """One published estimate beside the model's figures."""

    key: str
    die: str
    published_usd: float
    method: str
    source: str
    model_stated_usd: float | None
    stated_error: float | None  # model under stated inputs / published - 1
    implied_d0: float | None
    model_default_usd: float
    default_error: float  # model with defaults / published - 1


def calibration_rows() -> list[CalibrationRow]:
    """Every published estimate with the model's figure under its stated inputs and with the defaults."""
    rows = []
    for e in PUBLISHED:
        stated = model_under_stated_inputs(e)
        default = model_with_defaults(e.die)
        rows.append(
            CalibrationRow(
                e.key, e.die, e.usd, e.method, e.source, stated,
                None if stated is None else stated / e.usd - 1, implied_d0(e), default, default / e.usd - 1,
            )
        )
    return rows
