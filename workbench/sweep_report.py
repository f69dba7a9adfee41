"""HTML report of a sweep: frontier plots over 2 or 3 objectives (dominated points faint), the frontier table,
and the chip database's datasheet figures overlaid where a chip has the plotted quantity.

One self-contained file (plots are embedded PNGs), written to a temporary file and renamed.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workbench.chips import Chip, all_chips
from workbench.outputs import write_file
from workbench.pareto import feasible, pareto_mask
from workbench.sweep_metrics import METRICS

# The chip database's figure for an objective (datasheet; the dense 16-bit peak, TDP as power).
CHIP_FIGURES: dict[str, Callable[[Chip], float | None]] = {
    "tflops": lambda c: c.peak_16bit_tflops,
    "peak_tflops": lambda c: c.peak_16bit_tflops,
    "tflops_per_kusd": lambda c: c.tflops_per_kusd,
    "tflops_per_w": lambda c: c.tflops_per_w,
    "area_mm2": lambda c: c.die_area_mm2,
    "power_w": lambda c: c.tdp_w,
    "peak_power_w": lambda c: c.tdp_w,
    "price_usd": lambda c: c.price_usd,
}


def _label(metric: str) -> str:
    m = METRICS[metric]
    return f"{metric} ({m.unit}, {'higher' if m.maximize else 'lower'} is better)"


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _log_if_wide(ax: Any, axis: str, values: np.ndarray) -> None:
    v = values[np.isfinite(values) & (values > 0)]
    if len(v) and v.max() / v.min() > 20:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def _chips_for(objectives: Sequence[str]) -> list[tuple[Chip, list[float]]]:
    if not all(m in CHIP_FIGURES for m in objectives):
        return []
    out = []
    for c in all_chips():
        vals = [CHIP_FIGURES[m](c) for m in objectives]
        if all(v is not None for v in vals):
            out.append((c, [float(v) for v in vals]))
    return out


def plot_2d(rows: list[dict[str, Any]], x: str, y: str, title: str, chips: bool = True) -> str:
    """Base64 PNG: feasible points (dominated faint), the x-y frontier bold and joined, chips as squares."""
    import matplotlib.pyplot as plt

    vals = np.array([[r[x], r[y]] for r in rows], dtype=float).reshape(-1, 2)
    front = pareto_mask(vals, [METRICS[x].maximize, METRICS[y].maximize]) if len(vals) else np.zeros(0, bool)
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.scatter(vals[~front, 0], vals[~front, 1], s=10, color="tab:blue", alpha=0.15, label="dominated design points")
    fv = vals[front][np.argsort(vals[front, 0])]
    ax.plot(fv[:, 0], fv[:, 1], "o-", color="tab:blue", ms=5, lw=1, label="frontier")
    overlay = _chips_for((x, y)) if chips else []
    for c, (cx, cy) in overlay:
        ax.scatter(cx, cy, marker="s", color="tab:orange", s=25)
        ax.annotate(c.key, (cx, cy), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if overlay:
        ax.scatter([], [], marker="s", color="tab:orange", label="chips (datasheet peak)")
    all_x = np.concatenate([vals[:, 0], [v[0] for _, v in overlay]])
    all_y = np.concatenate([vals[:, 1], [v[1] for _, v in overlay]])
    _log_if_wide(ax, "x", all_x)
    _log_if_wide(ax, "y", all_y)
    ax.set_xlabel(_label(x), fontsize=8)
    ax.set_ylabel(_label(y), fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def plot_3d(rows: list[dict[str, Any]], objectives: Sequence[str], title: str) -> str:
    """Base64 PNG: a 3-objective scatter, frontier bold, dominated faint, chips as squares."""
    import matplotlib.pyplot as plt

    vals = np.array([[r[m] for m in objectives] for r in rows], dtype=float).reshape(-1, 3)
    front = pareto_mask(vals, [METRICS[m].maximize for m in objectives]) if len(vals) else np.zeros(0, bool)
    fig = plt.figure(figsize=(7, 6))
    ax = fig.add_subplot(projection="3d")
    ax.scatter(*vals[~front].T, s=8, color="tab:blue", alpha=0.12, label="dominated")
    ax.scatter(*vals[front].T, s=22, color="tab:blue", label="frontier")
    for c, v in _chips_for(objectives):
        ax.scatter(*v, marker="s", color="tab:orange", s=20)
        ax.text(*v, c.key, fontsize=6)
    every = np.vstack([vals, *(np.array([v]) for _, v in _chips_for(objectives))])
    for axis, col in zip("xyz", every.T, strict=True):
        lo, hi = float(np.nanmin(col)), float(np.nanmax(col))
        pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
        getattr(ax, f"set_{axis}lim")(lo - pad, hi + pad)  # 3D autoscale misses ranges far below 1
    ax.set_xlabel(_label(objectives[0]), fontsize=7)
    ax.set_ylabel(_label(objectives[1]), fontsize=7)
    ax.set_zlabel(_label(objectives[2]), fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "—" if v is None else str(v)


def frontier_table(rows: list[dict[str, Any]], objectives: Sequence[str]) -> str:
    """HTML table of the rows on the frontier of `objectives`, best first on the first objective."""
    vals = np.array([[r[m] for m in objectives] for r in rows], dtype=float).reshape(-1, len(objectives))
    front = [r for r, f in zip(rows, pareto_mask(vals, [METRICS[m].maximize for m in objectives]), strict=True) if f]
    first = METRICS[objectives[0]]
    front.sort(key=lambda r: r[first.name], reverse=first.maximize)
    params = list(dict.fromkeys(p for r in front for p in (r.get("params") or {})))
    metrics = [*objectives, *(m for m in METRICS if m not in objectives)]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["design point", *params, *metrics])
    body = ""
    for r in front:
        figures = r.get("figures") or {}
        cells = [html.escape(r["design_name"])] + [html.escape(_fmt(r["params"].get(p))) for p in params]
        for m in metrics:
            prov = figures.get(METRICS[m].figure, {}).get("provenance", "")
            cells.append(f"{html.escape(_fmt(r.get(m)))} <small>{html.escape(prov[:3])}</small>")
        body += "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(rows: list[dict[str, Any]], objectives: Sequence[str], constraints: Sequence, path: str | Path,
                 title: str) -> Path:
    """Write the sweep report (HTML) for these result rows; returns its path."""
    import matplotlib

    matplotlib.use("Agg")  # headless
    objectives = list(objectives)
    sections = []
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    for wl in workloads:
        mine = [r for r in rows if r["workload"] == wl]
        ok = [r for r in mine if feasible(r, constraints) and all(r.get(m) is not None for m in objectives)]
        failed = sum(r["status"] == "error" for r in mine)
        infeasible = sum(r["status"] == "ok" for r in mine) - len(ok)
        plots = [plot_2d(ok, x, y, f"{wl}: {y} against {x}") for x, y in itertools.combinations(objectives, 2)] if ok else []
        if len(objectives) == 3 and ok:
            plots.insert(0, plot_3d(ok, objectives, f"{wl}: frontier over {', '.join(objectives)}"))
        imgs = "".join(f'<img src="data:image/png;base64,{p}" alt="frontier plot">' for p in plots)
        sections.append(
            f"<h2>Workload {html.escape(wl)}</h2><p>{len(mine)} results: {len(ok)} feasible, {infeasible} outside "
            f"the constraints, {failed} failed (see <code>workbench results DB --where status==error</code>).</p>"
            f"{imgs}<h3>Frontier designs</h3>{frontier_table(ok, objectives) if ok else '<p>none feasible</p>'}")
    cons = ", ".join(f"{c.metric} {'>= ' + format(c.low, 'g') if c.low is not None else ''}"
                     f"{' ' if c.low is not None and c.high is not None else ''}"
                     f"{'<= ' + format(c.high, 'g') if c.high is not None else ''}" for c in constraints) or "none"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:80%}}td,th{{border:1px solid
#ccc;padding:3px 6px;text-align:right}}td:first-child{{text-align:left}}img{{max-width:48%;margin:4px}}</style>
</head><body><h1>{html.escape(title)}</h1>
<p>Frontier objectives: {html.escape(', '.join(objectives))}. Constraints: {html.escape(cons)}.
Design points: performance and latency simulated (cycle-level simulator), area, cost, power and energy modelled;
the small tag after each figure is its provenance (sim = simulated, mod = modelled).
Chips (orange squares) are datasheet figures from the chip database: dense 16-bit peak TFLOPS, price, TDP, die
area; a design point's TFLOPS is what it achieves on the workload, so a chip's square is its upper bound.
Pale points are dominated (some other point is at least as good on every objective and better on one).</p>
{''.join(sections)}</body></html>"""
    return write_file(path, page)
