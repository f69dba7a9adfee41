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

DEFAULT_COMPARE_WORKLOAD = "gemm:4096x4096x4096"
DEFAULT_COMPARE_CHIPS = ("rx-7900-xtx", "h100-sxm", "tinybox-red")


def _add(table, *cells: str) -> None:
    """Add a row of plain text (no rich markup: "[E]" must stay visible)."""
    from rich.text import Text

    table.add_row(*(Text(str(c)) for c in cells))


@dataclass
class Row:
    """One line of the comparison: a design or a chip, each figure with its provenance."""

    kind: str  # "design" | "chip"
    name: str
    peak_tflops: float | None
    achieved_tflops: float | None
    achieved_provenance: str  # simulated (design) | measured (published, chip) | ""
    price_usd: float | None
    price_provenance: str  # modelled (unit cost / (1 - margin)) | datasheet | datasheet [E]
    power_w: float | None
    power_provenance: str  # modelled (average over the run) | datasheet (TDP)
    area_mm2: float | None
    peak_tflops_per_kusd: float | None
    achieved_tflops_per_kusd: float | None
    tflops_per_w: float | None  # achieved / average power for designs; peak / TDP for chips

    def to_json(self) -> dict:
        """Plain-dict form."""
        return asdict(self)


def _div(a: float | None, b: float | None, scale: float = 1.0) -> float | None:
    return None if a is None or not b else a / b * scale


def design_row(est: Estimate) -> Row:
    """A comparison row from an estimate."""
    f = est.figures
    peak, ach = f["peak_tflops"].value, f["achieved_tflops"].value
    price, power = f["price_usd"].value, f["average_power_w"].value
    return Row(
        "design",
        est.design,
        peak,
        ach,
        "simulated",
        price,
        f"modelled (margin {est.cost.margin:g})",
        power,
        "modelled",
        f["die_area_costed_mm2"].value,
        _div(peak, price, 1000),
        _div(ach, price, 1000),
        _div(ach, power),
    )


def chip_row(chip: Chip) -> Row:
    """A comparison row from the chip database (datasheet peak and price; achieved = published figure)."""
    peak, price = chip.peak_16bit_tflops, chip.price_usd
    return Row(
        "chip",
        chip.name,
        peak,
        chip.measured_matmul_tflops,
        "measured (published)" if chip.measured_matmul_tflops else "",
        price,
        "datasheet [E]" if chip.price_is_estimate else "datasheet",
        chip.tdp_w,
        "datasheet (TDP)",
        chip.die_area_mm2,
        _div(peak, price, 1000),
        _div(chip.measured_matmul_tflops, price, 1000),
        _div(peak, chip.tdp_w),
    )


def _fmt(v: float | None, spec: str = ",.1f") -> str:
    return "—" if v is None else format(v, spec)


def print_table(rows: list[Row], workload: str) -> None:
    """The comparison as a rich table on the terminal."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"workbench compare — workload {workload} (designs: simulated + modelled; chips: datasheet)"
    )
    for col in (
        "name",
        "kind",
        "peak TFLOPS",
        "achieved TFLOPS",
        "price $",
        "power W",
        "peak TFLOPS/$1k",
        "achieved TFLOPS/$1k",
        "TFLOPS/W",
    ):
        table.add_column(col, justify="left" if col in ("name", "kind") else "right", overflow="fold")
    for r in rows:
        _add(
            table,
            r.name,
            r.kind,
            _fmt(r.peak_tflops),
            f"{_fmt(r.achieved_tflops)} {r.achieved_provenance}",
            f"{_fmt(r.price_usd, ',.0f')} {r.price_provenance}",
            f"{_fmt(r.power_w)} {r.power_provenance}",
            _fmt(r.peak_tflops_per_kusd),
            _fmt(r.achieved_tflops_per_kusd),
            _fmt(r.tflops_per_w, ".2f"),
        )
    console = Console(width=max(160, Console().width))
    console.print(table)
    console.print(
        "TFLOPS/W: achieved / modelled average power for designs; peak / TDP for chips. Design prices are "
        "modelled unit cost / (1 - margin), chip prices are street/list prices (\\[E] = estimate)."
    )


def _plot_scatter(rows: list[Row], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for r in rows:
        if r.tflops_per_w is None or r.peak_tflops_per_kusd is None:
            continue
        y = r.achieved_tflops_per_kusd if r.kind == "design" else r.peak_tflops_per_kusd
        ax.scatter(
            r.tflops_per_w,
            y,
            marker="o" if r.kind == "design" else "s",
            color="tab:blue" if r.kind == "design" else "tab:orange",
        )
        ax.annotate(r.name, (r.tflops_per_w, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("TFLOPS per W (designs: achieved / modelled power; chips: peak / TDP)")
    ax.set_ylabel("TFLOPS per $1000 (designs: achieved / modelled price; chips: peak / price)")
    ax.set_title("Cost-performance: designs (circles) vs real chips (squares)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def roofline_points(design: Design, est: Estimate) -> tuple[float, float, float, float]:
    """(peak TFLOPS, chip DRAM bandwidth TB/s, workload FLOP/byte from simulated traffic, achieved TFLOPS)."""
    bw = design.dram_bandwidth_bytes_per_s * design.chip.cores
    traffic = est.figures["dram_bytes"].value or 0.0
    flops = est.power.flops if est.power else 0.0
    intensity = flops / traffic if traffic else float("inf")
    return design.peak_flops / 1e12, bw / 1e12, intensity, est.figures["achieved_tflops"].value


def _plot_roofline(design: Design, est: Estimate, path: Path) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    peak, bw, ai, achieved = roofline_points(design, est)
    ridge = peak / bw
    hi = max(ridge, ai if np.isfinite(ai) else ridge) * 8
    x = np.logspace(np.log10(ridge / 64), np.log10(hi), 200)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(x, np.minimum(peak, bw * x), color="black", label=f"roofline: {peak:,.1f} TFLOPS, {bw:,.2f} TB/s")
    if np.isfinite(ai):
        ax.scatter(
            [ai],
            [achieved],
            color="tab:red",
            zorder=3,
            label=f"{est.workload}: {achieved:,.1f} TFLOPS at {ai:,.0f} FLOP/B (simulated)",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP per DRAM byte)")
    ax.set_ylabel("TFLOPS")
    ax.set_title(f"Roofline: {design.name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_costs(estimates: list[Estimate], path: Path) -> None:
    import matplotlib.pyplot as plt

    names = sorted({t.name for e in estimates for t in e.cost.terms})
    if any(e.cost.margin for e in estimates):
        names.append("margin")
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(estimates)), 4.5))
    bottom = [0.0] * len(estimates)
    for name in names:
        vals = [
            (e.cost.price_usd - e.cost.cost_usd) if name == "margin" else e.cost.term(name) for e in estimates
        ]
        ax.bar([e.design for e in estimates], vals, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_ylabel("USD per unit (modelled)")
    ax.set_title("Unit cost breakdown")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(rows: list[Row], pairs: list[tuple[Design, Estimate]], workload: str, out: Path) -> Path:
    """Write report.html, compare.json and PNG plots into `out`; returns the HTML path."""
    import matplotlib

    matplotlib.use("Agg")  # headless
    out.mkdir(parents=True, exist_ok=True)
    _plot_scatter(rows, out / "tflops_per_dollar_vs_watt.png")
    rooflines = []
    for design, est in pairs:
        name = f"roofline_{design.name}.png"
        _plot_roofline(design, est, out / name)
        rooflines.append(name)
    estimates = [e for _, e in pairs]
    if estimates:
        _plot_costs(estimates, out / "cost_breakdown.png")
    (out / "compare.json").write_text(
        json.dumps(
            {
                "workload": workload,
                "rows": [r.to_json() for r in rows],
                "estimates": [e.to_json() for e in estimates],
            },
            indent=1,
            default=str,
        )
    )
    head = [
        "name",
        "kind",
        "peak TFLOPS",
        "achieved TFLOPS",
        "price $",
        "power W",
        "peak TFLOPS/$1k",
        "achieved TFLOPS/$1k",
        "TFLOPS/W",
    ]
    trs = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(c)}</td>"
            for c in (
                r.name,
                r.kind,
                _fmt(r.peak_tflops),
                f"{_fmt(r.achieved_tflops)} {r.achieved_provenance}",
                f"{_fmt(r.price_usd, ',.0f')} {r.price_provenance}",
                f"{_fmt(r.power_w)} {r.power_provenance}",
                _fmt(r.peak_tflops_per_kusd),
                _fmt(r.achieved_tflops_per_kusd),
                _fmt(r.tflops_per_w, ".2f"),
            )
        )
        + "</tr>"
        for r in rows
    )
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
matmul measurements from the chip database. Design prices are modelled unit costs / (1 - margin).</p>
<table><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>{trs}</table>
<h2>TFLOPS per $1000 against TFLOPS per watt</h2><img src="tflops_per_dollar_vs_watt.png" alt="scatter">
<h2>Rooflines</h2>{imgs}
<h2>Unit cost breakdown</h2>{'<img src="cost_breakdown.png" alt="costs">' if estimates else ""}
<h2>Reference checks</h2><ul>{checks or "<li>none</li>"}</ul>
<p>Raw numbers: <a href="compare.json">compare.json</a>.</p></body></html>"""
    path = out / "report.html"
    path.write_text(page)
    return path
