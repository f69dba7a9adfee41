"""`compare`: designs (simulated + modelled) beside real chips (datasheet), as a terminal table and an HTML
report with PNG plots: TFLOPS/$ against TFLOPS/W, a roofline per design with the workload point, costs.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from isa.design import Design
from workbench.chips import Chip
from workbench.estimate import Estimate

DEFAULT_COMPARE_CHIPS = ("rx-7900-xtx", "h100-sxm", "tinybox-red")


def _add(table, *cells: str) -> None:
    """Add a row of plain text (no rich markup: "[E]" must stay visible)."""
    from rich.text import Text

    table.add_row(*(Text(str(c)) for c in cells))


# Short provenance tags for the terminal table; the JSON and HTML carry the same tags with a legend.
TAGS = {
    "simulated": "sim",
    "modelled": "mod",
    "datasheet": "ds",
    "datasheet [E]": "ds,E",
    "measured (published)": "meas",
    "measured": "here",
    "": "",
}
LEGEND = (
    "sim = simulated, mod = modelled, ds = datasheet, E = estimate, meas = published measurement. Rates are "
    "in the row's unit (column 'ops'): TOPS for int8 designs, TFLOPS for floating-point designs and for the "
    "chips' dense 16-bit (FP16/BF16) peaks. Prices are not alike: a design's is its modelled cost to make "
    "one unit (die, memory, package, test; no board, no margin unless --margin) ('make'), a chip's is "
    "its street/list price ('street'). Designs: peak W = modelled power with every MAC busy and DRAM at "
    "full bandwidth (a worst case: a run that moves less data draws less, so its achieved per W can beat "
    "the peak figure); achieved per W = achieved / modelled average power of the run. Chips: peak W = TDP; "
    "achieved = published measured matmul throughput. here = measured on a device by `workbench measure` "
    "(device time; run W = board power from NVML where available)."
)


@dataclass
class Row:
    """One line of the comparison: a design or a chip, each figure with its provenance."""

    kind: str  # "design" | "chip"
    name: str
    workload: str  # design: the simulated workload; chip: "chip"
    peak_tflops: float | None
    peak_provenance: str  # modelled (design) | datasheet (chip)
    achieved_tflops: float | None
    achieved_provenance: str  # simulated (design) | measured (published) (chip) | ""
    price_usd: float | None
    price_provenance: str  # modelled | datasheet | datasheet [E]
    peak_power_w: float | None  # design: modelled peak-rate power; chip: TDP
    power_provenance: str  # modelled | datasheet
    run_power_w: float | None  # design: modelled average power of the workload; chip: None
    margin: float | None
    peak_tflops_per_kusd: float | None
    achieved_tflops_per_kusd: float | None
    peak_tflops_per_w: float | None
    achieved_tflops_per_w: float | None
    tco_usd: float | None = None  # price + electricity over the TCO period (only with --tco)
    tco_achieved_tflops_per_kusd: float | None = None
    run_power_provenance: str = "modelled"  # "measured" for a `workbench measure` row
    ops: str = "TFLOPS 16-bit"  # the unit of the rates and the precision: "TOPS int8", "TFLOPS bf16", ...

    def to_json(self) -> dict:
        """Plain-dict form."""
        return asdict(self)


def _div(a: float | None, b: float | None, scale: float = 1.0) -> float | None:
    return None if a is None or not b else a / b * scale


def _short_workload(name: str) -> str:
    """'gemm:4096x4096x4096' -> '4096^3'; other names unchanged but for the 'gemm:' prefix."""
    dims = name.removeprefix("gemm:").split("x")
    return f"{dims[0]}^3" if len(dims) == 3 and len(set(dims)) == 1 else name.removeprefix("gemm:")


def design_row(est: Estimate) -> Row:
    """A comparison row from an estimate."""
    f = est.figures
    peak, ach = f["peak_tflops"].value, f["achieved_tflops"].value
    price, run_w, peak_w = f["price_usd"].value, f["average_power_w"].value, f["peak_rate_power_w"].value
    return Row(
        "design",
        est.design,
        _short_workload(est.workload),
        peak,
        "modelled",
        ach,
        "simulated",
        price,
        "modelled",
        peak_w,
        "modelled",
        run_w,
        est.cost.margin,
        _div(peak, price, 1000),
        _div(ach, price, 1000),
        _div(peak, peak_w),
        _div(ach, run_w),
        ops=f["peak_tflops"].unit,
    )


def chip_row(chip: Chip) -> Row:
    """A comparison row from the chip database (datasheet peak, price and TDP; achieved = published figure)."""
    peak, price, meas = chip.peak_16bit_tflops, chip.price_usd, chip.measured_matmul_tflops
    return Row(
        "chip",
        chip.name,
        "chip",
        peak,
        "datasheet",
        meas,
        "measured (published)" if meas else "",
        price,
        "datasheet [E]" if chip.price_is_estimate else "datasheet",
        chip.tdp_w,
        "datasheet",
        None,
        None,
        _div(peak, price, 1000),
        _div(meas, price, 1000),
        _div(peak, chip.tdp_w),
        _div(meas, chip.tdp_w),
    )


def measured_row(m) -> Row:
    """A comparison row from a `workbench measure` result (workbench.measure.Measurement)."""
    return Row(
        "measured",
        f"{m.device_name} ({m.device}, {m.dtype})",
        _short_workload(m.workload),
        None,
        "",
        m.tflops,
        "measured",
        None,
        "",
        None,
        "",
        m.power_w,
        None,
        None,
        None,
        None,
        m.tflops_per_w,
        run_power_provenance="measured",
        ops=f"TFLOPS {'fp32' if m.dtype == 'float32' else 'fp16' if m.dtype == 'float16' else m.dtype}",
    )


def add_tco(rows: list[Row], years: float, usd_per_kwh: float, pue: float) -> None:
    """Fill each row's TCO: price + electricity at run power (designs) or TDP (chips) over `years` (c)."""
    from workbench.cost import operating_cost_usd

    for r in rows:
        power = r.run_power_w if r.kind == "design" else r.peak_power_w
        if r.price_usd is None or power is None:
            continue
        r.tco_usd = r.price_usd + operating_cost_usd(power, years, usd_per_kwh, pue)
        r.tco_achieved_tflops_per_kusd = _div(r.achieved_tflops, r.tco_usd, 1000)


def _fmt(v: float | None, spec: str = "auto") -> str:
    """A number for the table: three significant figures below 100, whole numbers with separators above."""
    if v is None:
        return "—"
    if spec != "auto":
        return format(v, spec)
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _tagged(v: float | None, provenance: str, spec: str = "auto") -> str:
    return "—" if v is None else f"{_fmt(v, spec)} {TAGS.get(provenance, provenance)}"


HEADERS = (
    "name",
    "workload",
    "ops",
    "peak",
    "achieved",
    "price $",
    "peak W",
    "run W",
    "peak per $1k",
    "achieved per $1k",
    "peak per W",
    "achieved per W",
)
# Which columns give way first on a narrow terminal (0: always shown); see workbench.tables.
PRIORITY = {"workload": 3, "peak W": 4, "run W": 4, "achieved": 2, "peak per $1k": 2, "peak per W": 2,
            "achieved per W": 1, "TCO $": 3}

TCO_HEADERS = ("TCO $", "achieved per $1k TCO")


def headers(rows: list[Row]) -> tuple[str, ...]:
    """Column headers; the TCO columns only when a row has a TCO."""
    return HEADERS + (TCO_HEADERS if any(r.tco_usd is not None for r in rows) else ())


def row_cells(r: Row, tco: bool = False) -> list[str]:
    """The table cells of a row, each number tagged with its provenance (TCO columns if `tco`)."""
    extra = [_fmt(r.tco_usd, ",.0f"), _fmt(r.tco_achieved_tflops_per_kusd)] if tco else []
    derived = "mod" if r.kind == "design" else "" if r.kind == "measured" else ("ds,E" if r.price_provenance.endswith("[E]") else "ds")
    basis = ("make" if not r.margin else f"make+{r.margin:.0%}") if r.kind == "design" else \
        ("street,E" if r.price_provenance.endswith("[E]") else "street")
    return [
        r.name,
        r.workload,
        r.ops,
        _tagged(r.peak_tflops, r.peak_provenance),
        _tagged(r.achieved_tflops, r.achieved_provenance),
        "—" if r.price_usd is None else f"{_fmt(r.price_usd, ',.0f')} {basis}",
        _tagged(r.peak_power_w, r.power_provenance),
        _tagged(r.run_power_w, r.run_power_provenance),
        f"{_fmt(r.peak_tflops_per_kusd)} {derived}",
        _fmt(r.achieved_tflops_per_kusd),
        _fmt(r.peak_tflops_per_w),
        _fmt(r.achieved_tflops_per_w),
        *extra,
    ]


def print_table(rows: list[Row], workload: str) -> None:
    """The comparison as a rich table on the terminal."""
    from rich.console import Console

    from workbench.tables import Column, fit_table

    cols = headers(rows)
    columns = [Column(c, "left" if c in ("name", "ops") else "right", wrap=c in ("name", "workload", "ops"),
                      priority=PRIORITY.get(c, 0)) for c in cols]
    cells = [row_cells(r, tco=len(cols) > len(HEADERS)) for r in rows]
    console = Console()  # fits the terminal; --json for machines
    console.print(fit_table(f"workbench compare — workload {workload}", columns, cells, console))
    console.print(LEGEND.replace("[", "\\["), highlight=False)


def _sig(v: float, unit: str) -> str:
    """A figure with three significant digits and its unit, at any scale: 0.0164 TOPS, 197 TFLOPS, 2.05 TB/s."""
    return f"{v:,.0f} {unit}" if abs(v) >= 1000 else f"{v:.3g} {unit}"


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")  # format given: the path is a temporary name
    plt.close(fig)


def scatter_figure(rows: list[Row]):
    """Rate per $1000 against rate per watt, every point labelled (peak filled, achieved hollow)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6))
    for r in rows:
        color = "tab:blue" if r.kind == "design" else "tab:orange"
        marker = "o" if r.kind == "design" else "s"
        points = [
            (x, y, label)
            for x, y, label in (
                (r.peak_tflops_per_w, r.peak_tflops_per_kusd, f"{r.name} ({r.ops}, peak)"),
                (r.achieved_tflops_per_w, r.achieved_tflops_per_kusd, f"{r.name} (achieved)"),
            )
            if x and y
        ]
        for k, (x, y, label) in enumerate(points):
            hollow = label.endswith("(achieved)")
            ax.scatter(x, y, marker=marker, color=None if hollow else color,
                       facecolors="none" if hollow else color, edgecolors=color)
            ax.annotate(label, (x, y), fontsize=6.5, xytext=(4, -9 if hollow else 4), textcoords="offset points",
                        color="dimgray" if hollow else "black")
            if k == 1:
                ax.plot([points[0][0], x], [points[0][1], y], color=color, lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("TOPS (int8 designs) or TFLOPS (float designs; chips: 16-bit) per W")
    ax.set_ylabel("TOPS or TFLOPS per $1000")
    ax.set_title(
        "Designs (circles; simulated + modelled, priced at cost to make) vs chips (squares; datasheet, street price)"
        "\nfilled = peak, hollow = achieved",
        fontsize=8,
    )
    ax.grid(True, which="both", alpha=0.3)
    return fig


def roofline_points(design: Design, est: Estimate) -> tuple[float, float, float, float]:
    """(peak T(FL)OPS, chip DRAM bandwidth TB/s, workload ops/byte from simulated traffic, achieved T(FL)OPS)."""
    bw = design.dram_bandwidth_bytes_per_s * design.chip.cores
    traffic = est.figures["dram_bytes"].value or 0.0
    flops = est.power.flops if est.power else 0.0
    intensity = flops / traffic if traffic else float("inf")
    return design.peak_flops / 1e12, bw / 1e12, intensity, est.figures["achieved_tflops"].value


def roofline_figure(design: Design, est: Estimate):
    """The design's roofline with the workload's simulated point; legend figures at three significant digits."""
    import matplotlib.pyplot as plt
    import numpy as np

    from workbench.estimate import ops_unit

    unit = ops_unit(design)
    op = "OP" if unit == "TOPS" else "FLOP"
    peak, bw, ai, achieved = roofline_points(design, est)
    ridge = peak / bw
    hi = max(ridge, ai if np.isfinite(ai) else ridge) * 8
    x = np.logspace(np.log10(ridge / 64), np.log10(hi), 200)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(x, np.minimum(peak, bw * x), color="black", label=f"roofline: {_sig(peak, unit)}, {_sig(bw, 'TB/s')}")
    if np.isfinite(ai):
        ax.scatter([ai], [achieved], color="tab:red", zorder=3,
                   label=f"{est.workload}: {_sig(achieved, unit)} at {_sig(ai, f'{op}/B')} (simulated)")
    ideal = est.figures.get("achieved_tflops_ideal_memory")
    if ideal and ideal.value:
        ax.axhline(ideal.value, color="tab:green", ls="--", lw=0.8,
                   label=f"same workload, ideal memory: {_sig(ideal.value, unit)} (simulated)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"arithmetic intensity ({op} per DRAM byte)")
    ax.set_ylabel(f"{unit} ({design.matrix.input_dtype})")
    ax.set_title(f"Roofline: {design.name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def cost_figure(estimates: list[Estimate]):
    """Stacked unit-cost terms per design on a log axis (designs differ by orders of magnitude), totals marked."""
    import matplotlib.pyplot as plt

    def usd(e: Estimate, name: str) -> float:
        if name == "dies":
            return sum(t.usd for t in e.cost.terms if t.name.startswith("die:"))
        if name == "margin":
            return e.cost.price_usd - e.cost.cost_usd
        return e.cost.term(name)

    names = ["dies"] + sorted({t.name for e in estimates for t in e.cost.terms if not t.name.startswith("die:")})
    if any(e.cost.margin for e in estimates):
        names.append("margin")
    fig, ax = plt.subplots(figsize=(max(5, 1.8 * len(estimates)), 4.5))
    labels = [e.design for e in estimates]
    bottom = [0.0] * len(estimates)
    for name in names:
        vals = [usd(e, name) for e in estimates]
        ax.bar(labels, vals, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    for label, total in zip(labels, bottom, strict=True):
        ax.annotate(f"${total:,.0f}" if total >= 100 else f"${total:.3g}", (label, total), ha="center",
                    xytext=(0, 3), textcoords="offset points", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("USD per unit, log scale (modelled cost to make" + (" + margin)" if "margin" in names else ")"))
    ax.set_title("Unit cost breakdown\n(designs at cost to make, no board: not comparable with street prices)",
                 fontsize=8)
    ax.tick_params(axis="x", labelrotation=15, labelsize=8)
    ax.legend(fontsize=7)
    return fig


SCATTER_PNG, COSTS_PNG, REPORT_HTML, REPORT_JSON = (
    "tflops_per_dollar_vs_watt.png", "cost_breakdown.png", "report.html", "compare.json")


def roofline_png(design_name: str) -> str:
    """File name of a design's roofline plot (any character unsafe in a file name becomes '_')."""
    return "roofline_" + "".join(c if c.isalnum() or c in "-_." else "_" for c in design_name) + ".png"


def report_files(design_names: list[str]) -> list[str]:
    """Every file `write_report` writes for these designs (to check the output folder before any work)."""
    return [REPORT_HTML, REPORT_JSON, SCATTER_PNG, COSTS_PNG, *(roofline_png(n) for n in design_names)]


def write_report(rows: list[Row], pairs: list[tuple[Design, Estimate]], workload: str, out: Path) -> Path:
    """Write report.html, compare.json and PNG plots into `out`, all or none; returns the HTML path."""
    import matplotlib

    from workbench.outputs import check_output_folder, staged_files

    matplotlib.use("Agg")  # headless
    estimates = [e for _, e in pairs]
    rooflines = [roofline_png(d.name) for d, _ in pairs]
    names = [REPORT_HTML, REPORT_JSON, SCATTER_PNG, *rooflines, *([COSTS_PNG] if estimates else [])]
    check_output_folder(out, names)
    with staged_files([out / n for n in names]) as temps:
        tmp = dict(zip(names, temps, strict=True))
        _save(scatter_figure(rows), tmp[SCATTER_PNG])
        for (design, est), name in zip(pairs, rooflines, strict=True):
            _save(roofline_figure(design, est), tmp[name])
        if estimates:
            _save(cost_figure(estimates), tmp[COSTS_PNG])
        tmp[REPORT_JSON].write_text(
            json.dumps(
                {"workload": workload, "rows": [r.to_json() for r in rows], "estimates": [e.to_json() for e in estimates]},
                indent=1,
                default=str,
            )
        )
        tmp[REPORT_HTML].write_text(_page(rows, estimates, rooflines, workload))
    return out / REPORT_HTML


def _page(rows: list[Row], estimates: list[Estimate], rooflines: list[str], workload: str) -> str:
    """The HTML page of the report."""
    cols = headers(rows)
    tco = len(cols) > len(HEADERS)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row_cells(r, tco)) + "</tr>" for r in rows)
    checks = "".join(
        f"<li>{html.escape(e.design)}: {html.escape(c.name)} = {c.value:,.3g} in "
        f"[{c.low:,.3g}, {c.high:,.3g}]: {'ok' if c.ok else 'OUTSIDE'}</li>"
        for e in estimates
        for c in e.checks
    )
    imgs = "".join(f'<img src="{n}" alt="{html.escape(n)}">' for n in rooflines)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>workbench compare</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}img{{max-width:48%;margin:4px}}
</style></head><body>
<h1>Petaflop Workbench: compare</h1><p>Workload for designs: <b>{html.escape(workload)}</b>.
Designs are simulated (cycles) and modelled (area, cost, energy); chips are datasheet figures;
"measured (published)" are third-party
matmul measurements from the chip database. Design prices are modelled costs to make one unit (no board;
/ (1 - margin) where a margin is given); chip prices are street/list prices. int8 rates are TOPS.</p>
<table><tr>{"".join(f"<th>{h}</th>" for h in cols)}</tr>{trs}</table>
<p>{html.escape(LEGEND)}</p>
<h2>TOPS or TFLOPS per $1000 against per watt</h2><img src="tflops_per_dollar_vs_watt.png" alt="scatter">
<h2>Rooflines</h2>{imgs}
<h2>Unit cost breakdown</h2>{'<img src="cost_breakdown.png" alt="costs">' if estimates else ""}
<h2>Reference checks</h2><ul>{checks or "<li>none</li>"}</ul>
<p>Raw numbers: <a href="compare.json">compare.json</a>.</p></body></html>"""
    return page
