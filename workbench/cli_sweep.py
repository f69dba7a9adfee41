"""CLI for design-space exploration: `workbench sweep SPEC.toml` and `workbench results DB`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from isa.fields import Spec
from workbench.cli_args import COUNT, spec_type
from workbench.outputs import check_output_file, write_file
from workbench.results_db import ResultsDBError
from workbench.results_export import STATUSES, FilterError
from workbench.sweep_spec import MAX_POINTS, STRATEGIES
from workbench.tables import print_lines


def _console():
    from rich.console import Console

    return Console()  # fits the terminal; --json is the form for machines


def _stacked(name: str) -> str:
    """A header that may stack at its underscores ("tflops_per_kusd" over three lines), so narrow columns fit."""
    return name.replace("_", "_\n")


def _table(rows: list[dict[str, Any]], objectives: list[str], title: str, limit: int | None = None) -> None:
    from workbench.sweep_metrics import METRICS
    from workbench.tables import Column, fit_table

    params = list(dict.fromkeys(p for r in rows for p in (r.get("params") or {})))
    metrics = [*objectives, *(m for m in ("tflops", "area_mm2", "peak_power_w", "price_usd") if m not in objectives)]
    # A narrow terminal loses the extra metrics first, then the varied fields (right to left); the
    # workload, the objectives and the status always show, and --json/--csv have everything.
    columns = [Column("workload", "left", wrap=True)]
    columns += [Column(_stacked(p.split(".", 1)[1]), priority=1) for p in params]
    columns += [Column(f"{_stacked(m)}\n{METRICS[m].unit}", priority=0 if m in objectives else 2) for m in metrics]
    columns.append(Column("status", "left", wrap=True))
    table_rows = []
    for r in rows[:limit]:
        cells = [r["workload"], *(str(r["params"].get(p, "")) for p in params)]
        cells += ["—" if r.get(m) is None else f"{r[m]:.4g}" for m in metrics]
        cells.append(r["status"] if r["status"] == "ok" else f"error: {r.get('error') or ''}"[:60])
        table_rows.append(cells)
    console = _console()
    console.print(fit_table(title, columns, table_rows, console))
    if limit is not None and len(rows) > limit:
        print(f"... {len(rows) - limit} more (--limit N, or --csv/--json for all)")


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run or resume a sweep spec on Dask, storing results in SQLite."""
    from workbench.sweep import run_sweep
    from workbench.sweep_report import write_report
    from workbench.sweep_spec import load_spec

    spec = load_spec(args.spec, strategy=args.strategy, points=args.points)  # every check before any work
    db = args.db or f"{Path(args.spec).stem}.db"
    check_output_file(db, "results database")
    if args.report:
        check_output_file(args.report, "report")
    progress = not args.json and not args.quiet
    try:
        summary = run_sweep(spec, db, scheduler=args.scheduler, workers=args.workers, progress=progress)
    except KeyboardInterrupt:
        print(f"sweep {spec.name}: stopped; finished points are in {db}: run the same command to resume",
              file=sys.stderr)
        raise
    if args.report:
        from workbench.results_db import ResultsDB

        with ResultsDB(db) as rdb:
            rows = rdb.rows(spec.name)
        write_report(rows, spec.frontier, spec.constraints, args.report, f"Sweep {spec.name}")
    if args.json:
        print(json.dumps(summary.to_json(), indent=1))
        return 1 if summary.lost else 0
    s = summary
    n_work = len(spec.workloads)
    print_lines([f"sweep {s.name}: {s.results} results ({s.design_points} design points x {n_work} "
                 f"workload{'s' if n_work != 1 else ''}) in {db}; computed {s.computed} in {s.seconds:.1f} s "
                 f"({s.points_per_s:.1f} points/s) on {s.scheduler}, reused {s.reused}, {s.errors} failed"
                 + (f", {s.invalid_skipped} invalid points skipped" if s.invalid_skipped else "")])
    if s.lost:
        print(f"{s.lost} points were lost to the cluster (workers died); run the same command again to finish them",
              file=sys.stderr)
    _table([{"workload": f["workload"], "params": f["params"], "status": "ok", **{k: v for k, v in f.items()}}
            for f in s.frontier], list(spec.frontier), f"Frontier over {', '.join(spec.frontier)} (feasible points)")
    if args.report:
        print(f"report: {args.report}")
    return 1 if s.lost else 0


def _when(utc: str | None) -> str:
    """A stored UTC timestamp as "2026-11-26 15:40:12" (a space, so a narrow column can wrap it)."""
    return (utc or "unfinished").replace("T", " ").split(".")[0].removesuffix("+00:00").removesuffix("Z")


def _constraints(raw: str):
    from workbench.sweep_spec import Constraint

    return tuple(Constraint(c["metric"], c["min"], c["max"], None) for c in json.loads(raw))


def cmd_results(args: argparse.Namespace) -> int:
    """List, filter and export the results stored by `workbench sweep`."""
    from workbench.pareto import rank_rows
    from workbench.results_db import ResultsDB
    from workbench.results_export import parse_filter, to_csv, to_json
    from workbench.sweep_metrics import METRICS
    from workbench.sweep_report import write_report

    for path, what in ((args.report, "report"), (None if args.csv == "-" else args.csv, "CSV file")):
        if path:
            check_output_file(path, what)  # before any work
    with ResultsDB(args.db, create=False) as db:
        sweeps = db.sweeps()
        names = [s["name"] for s in sweeps]
        if args.sweep and args.sweep not in names:
            raise ResultsDBError(f"{args.db}: no sweep {args.sweep!r}; sweeps: {', '.join(names) or 'none'}")
        rows = db.rows(args.sweep)
    meta = next((s for s in sweeps if s["name"] == args.sweep), sweeps[0] if len(sweeps) == 1 else None)
    objectives = json.loads(meta["frontier"]) if meta else ["tflops_per_kusd", "tflops_per_w"]
    constraints = _constraints(meta["constraints"]) if meta else ()
    if args.frontier:
        objectives = [m.strip() for m in args.frontier.split(",")]
        bad = [m for m in objectives if m not in METRICS]
        if bad or len(objectives) not in (2, 3):
            raise FilterError(f"--frontier {args.frontier!r}: give 2 or 3 of {', '.join(METRICS)}")
    known = {p for r in rows for p in (r.get("params") or {})}
    for text in args.where or []:
        keep = parse_filter(text, known)
        rows = [r for r in rows if keep(r)]
    if args.status:
        rows = [r for r in rows if r["status"] == args.status]
    if args.frontier or args.only_frontier:
        ranks = rank_rows(rows, objectives, constraints)
        rows = [r for r, k in zip(rows, ranks, strict=True) if k == 0]
    if args.sort:
        if args.sort not in METRICS:
            raise FilterError(f"--sort {args.sort!r}: not one of {', '.join(METRICS)}")
        m = METRICS[args.sort]
        rows.sort(key=lambda r: (r.get(m.name) is None, -(r.get(m.name) or 0) if m.maximize else (r.get(m.name) or 0)))
    if args.report:
        write_report(rows, objectives, constraints, args.report, f"Results {args.sweep or Path(args.db).name}")
        print(f"report: {args.report}", file=sys.stderr)
    if args.csv:
        text = to_csv(rows)
        sys.stdout.write(text) if args.csv == "-" else write_file(args.csv, text)
        return 0
    if args.json:
        print(to_json(rows))
        return 0
    if not args.sweep:
        from workbench.tables import Column, fit_table

        columns = [Column("sweep", "left", wrap=True), Column("strategy", "left", priority=2), Column("results"),
                   Column("ok"), Column("failed"), Column("frontier", "left", wrap=True, priority=1),
                   Column("started (UTC)", "left", wrap=True, priority=3),
                   Column("finished (UTC)", "left", wrap=True, priority=2)]
        table_rows = [[s["name"], s["strategy"], str(s["points"]), str(s["ok"] or 0), str(s["errors"] or 0),
                       ", ".join(json.loads(s["frontier"])), _when(s["started_utc"]), _when(s["finished_utc"])]
                      for s in sweeps]
        console = _console()
        console.print(fit_table(f"Sweeps in {args.db}", columns, table_rows, console))
    _table(rows, objectives, f"{len(rows)} results", limit=args.limit)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `sweep` and `results` to the workbench CLI."""
    p = sub.add_parser("sweep", help="design-space sweep on Dask; results in SQLite; Pareto frontier",
                       description="Run (or resume) a sweep spec: every design point x workload is simulated on "
                                   "Dask workers and stored in SQLite as it finishes. See docs/sweeps.md.")
    p.add_argument("spec", metavar="SPEC.toml", help="sweep spec (see examples/sweep-edge.toml)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="an existing Dask scheduler (default: a LocalCluster on this machine; 'inline': no Dask)")
    p.add_argument("--workers", type=spec_type(Spec("int", 1, 1024)), default=2,
                   help="LocalCluster worker processes (default 2)")
    p.add_argument("--db", metavar="FILE", help="results database (default: SPEC's name + .db in this folder)")
    p.add_argument("--strategy", choices=STRATEGIES, help="override the spec's strategy")
    p.add_argument("--points", type=spec_type(Spec("int", 1, MAX_POINTS)),
                   help="design points for random/adaptive (overrides the spec)")
    p.add_argument("--report", metavar="FILE.html", help="also write the HTML report with the frontier plots")
    p.add_argument("--json", action="store_true", help="machine-readable summary on stdout (no progress bar)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    r = sub.add_parser("results", help="list, filter and export stored sweep results (CSV/JSON/HTML)",
                       description="List, filter and export the results a sweep stored.")
    r.add_argument("db", metavar="DB", help="results database written by `workbench sweep`")
    r.add_argument("--sweep", metavar="NAME", help="only this sweep's results")
    r.add_argument("--where", action="append", metavar="EXPR",
                   help="filter, e.g. 'area_mm2<=100', 'matrix.rows==32', 'status==error' (repeatable)")
    r.add_argument("--status", choices=STATUSES, help="only ok or failed points")
    r.add_argument("--frontier", metavar="OBJ,OBJ[,OBJ]",
                   help="only the Pareto frontier over these objectives (default: the sweep's)")
    r.add_argument("--only-frontier", action="store_true", help="only the frontier over the sweep's objectives")
    r.add_argument("--sort", metavar="OBJECTIVE", help="sort best first by this objective")
    r.add_argument("--limit", type=COUNT, default=30, help="rows in the terminal table (default 30)")
    r.add_argument("--csv", metavar="FILE", help="export as CSV ('-' for stdout)")
    r.add_argument("--json", action="store_true", help="export as JSON on stdout")
    r.add_argument("--report", metavar="FILE.html", help="write the HTML report of the selected results")
    r.set_defaults(func=cmd_results)
