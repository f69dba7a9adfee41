"""CLI for the models: `chips`, `cost`, `estimate`, `compare`."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from isa.design import load_design
from isa.fields import Spec
from workbench.cli_args import COUNT, MARGIN, NON_NEGATIVE, POSITIVE, spec_type
from workbench.errors import UsageError
from workbench.tables import Column, fit_table, print_lines


def _add(table, *cells: str) -> None:
    """Add a row of plain text (no rich markup: "[E]" must stay visible)."""
    from rich.text import Text

    table.add_row(*(Text(str(c)) for c in cells))


def _console():
    from rich.console import Console

    return Console()  # the terminal's width (80 when not a terminal, or $COLUMNS)


def _fmt(v: float | None, spec: str = ",.1f") -> str:
    return "—" if v is None else format(v, spec)


CHIP_COLUMNS = (
    Column("key", "left"),
    Column("name", "left", wrap=True),
    Column("price $", priority=1),
    Column("node", "left", wrap=True, priority=4),
    Column("die mm^2", priority=5),
    Column("TDP W", priority=2),
    Column("memory", "left", wrap=True, priority=4),
    Column("GB/s", priority=3),
    Column("FP32 TFLOPS", priority=3),
    Column("16-bit TFLOPS", priority=0),
    Column("INT8 TOPS", priority=2),
    Column("16-bit TFLOPS/$1k", priority=1),
    Column("16-bit TFLOPS/W", priority=1),
)


def cmd_chips(args: argparse.Namespace) -> int:
    """List the chip database with peak 16-bit TFLOPS per $1000 and per watt (datasheet)."""
    from workbench.chips import all_chips

    chips = all_chips()
    if args.json:
        print(json.dumps([c.to_json() for c in chips], indent=1))
        return 0
    rows = [
        (
            c.key,
            c.name,
            f"{_fmt(c.price_usd, ',.0f')}{'[E]' if c.price_is_estimate and c.price_usd else ''}",
            c.process_node,
            _fmt(c.die_area_mm2, ",.0f"),
            _fmt(c.tdp_w, ",.0f"),
            f"{_fmt(c.memory_gb, 'g')} GB {c.memory_type}",
            _fmt(c.memory_bw_gbs, ",.0f"),
            _fmt(c.peak_fp32_tflops),
            _fmt(c.peak_16bit_tflops),
            _fmt(c.peak_int8_tops_dense),
            _fmt(c.tflops_per_kusd),
            _fmt(c.tflops_per_w, ".2f"),
        )
        for c in chips
    ]
    console = _console()
    title = "Chip database: datasheet dense peaks (TFLOPS: FP32 and 16-bit FP16/BF16; TOPS: INT8); street/list prices"
    console.print(fit_table(title, CHIP_COLUMNS, rows, console, caption="[E] = estimate."))
    return 0


def _harvest(text: str | None):
    from workbench.cost import CostInputError, Harvest

    if text is None:
        return None
    try:
        blocks, required, fraction = text.split(":")
        h = Harvest(int(blocks), int(required), float(fraction))
    except ValueError:
        raise CostInputError(f"--harvest {text!r}: expected BLOCKS:REQUIRED:FRACTION, e.g. 144:132:0.6") from None
    h.validate("--harvest")
    return h


def _design_cost(args: argparse.Namespace) -> int:
    """`cost --design`: modelled area and unit cost of a design from its [cost] table (no simulation)."""
    from workbench.area import design_area
    from workbench.design_models import design_cost
    from workbench.design_tables import design_tables

    design = load_design(args.design)
    area = design_area(
        design, synth=_load_synth(args.rtl_synth), host_pcie_lanes=design_tables(design)["cost"].get("host_pcie_lanes")
    )
    cost, area_prov = design_cost(design, area, args.margin if args.margin else None, args.volume)
    if args.json:
        print(json.dumps({"area": area.to_json(), "die_area_provenance": area_prov, "unit": cost.to_json()}, indent=1))
        return 0
    lines = [f"{design.name}: modelled area {area.total_mm2:,.1f} mm^2 at {area.node}"]
    lines += [f"  {i.name:<12} {i.mm2:>9,.3f} mm^2  {i.detail}" for i in area.items]
    lines.append(f"unit cost (modelled; die area {cost.dies[0].area_mm2:,.1f} mm^2 is {area_prov}):")
    for d in cost.dies:
        lines.append(
            f"  {d.name}: {d.area_mm2:g} mm^2 at {d.node}, {d.gross_dies_per_wafer:.1f} gross dies, yield "
            f"{d.effective_yield:.3f}, ${d.cost_per_good_die_usd:,.2f} per good die"
        )
    lines += [f"  {t.name:<20} ${t.usd:>10,.2f}  {t.detail}  [{t.source}]" for t in cost.terms]
    lines += [
        f"  {'cost':<20} ${cost.cost_usd:>10,.2f}",
        f"  {'price':<20} ${cost.price_usd:>10,.2f}  cost / (1 - margin {cost.margin:g})",
    ]
    lines += [f"note: {n}" for n in cost.notes]
    print_lines(lines)
    return 0


def _published_costs(args: argparse.Namespace) -> int:
    """`cost --published`: each published die-cost estimate beside the model under its inputs and with defaults."""
    from dataclasses import asdict

    from workbench.cost_calibration import SUBJECT_DIES, calibration_rows, consensus_usd, model_with_defaults

    rows = calibration_rows()
    if args.json:
        summary = {d: {"median_published_usd": consensus_usd(d), "model_default_usd": model_with_defaults(d)}
                   for d in SUBJECT_DIES}
        print(json.dumps({"estimates": [asdict(r) for r in rows], "by_die": summary}, indent=1))
        return 0
    lines = ["published die-cost estimates (docs/sources.md C.4) and the model (docs/models.md 'Cost'):"]
    for die in SUBJECT_DIES:
        default, median = model_with_defaults(die), consensus_usd(die)
        lines.append(f"{die}: model with defaults ${default:,.2f}; median of published ${median:,.2f} "
                     f"({default / median - 1:+.1%})")
        for r in (r for r in rows if r.die == die):
            stated = ("states neither D0 nor wafer price" if r.model_stated_usd is None
                      else f"under its inputs ${r.model_stated_usd:,.2f} ({r.stated_error:+.1%})")
            implied = "" if r.implied_d0 is None else f"; its good dies need D0 {r.implied_d0:.3f}"
            lines.append(f"  {r.key:<22} ${r.published_usd:>7,.2f}  {stated}; defaults {r.default_error:+.1%}{implied}")
            lines.append(f"  {'':<22} {r.method}  [{r.source}]")
    print_lines(lines)
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    """Cost of a bare die (and, with memory/packaging options, of a unit), each term shown."""
    from workbench.cost import (
        RETICLE_MM2,
        RETICLE_NOTE,
        YIELD_MODELS,
        cost_per_good_die,
        die_yield,
        memory_usd_per_gb,
        nre_cost,
        unit_cost,
    )

    if args.published:
        if args.design or args.area_mm2 is not None or args.node is not None:
            raise UsageError("--published prints the published die-cost comparison; drop --design/--area-mm2/--node")
        return _published_costs(args)
    if args.design:
        if args.area_mm2 is not None or args.node is not None:
            raise UsageError("--design takes the die area and node from the design; drop --area-mm2 and --node")
        return _design_cost(args)
    if args.rtl_synth:
        raise UsageError("--rtl-synth calibrates a design's logic area; use it with --design DESIGN")
    if args.area_mm2 is None or args.node is None:
        raise UsageError("give --area-mm2 and --node for a bare die, or --design DESIGN for a design's unit cost")
    die = cost_per_good_die(
        args.area_mm2,
        args.node,
        wafer_price_usd=args.wafer_price_usd,
        d0_per_cm2=args.d0,
        yield_model=args.yield_model,
        alpha=args.alpha,
        edge_exclusion_mm=args.edge_exclusion_mm,
        scribe_mm=args.scribe_mm,
        year=args.year,
        harvest=_harvest(args.harvest),
    )
    all_yields = {m: die_yield(args.area_mm2, die.defect_density_per_cm2, m, args.alpha) for m in YIELD_MODELS}
    unit = None
    if args.memory_gb or args.packaging_usd is not None or args.test_usd is not None or args.margin or args.volume:
        if args.memory_type:
            memory_usd_per_gb(args.memory_type)  # validates the type even without memory
        unit = unit_cost(
            [(die, 1)],
            memory_gb=args.memory_gb,
            memory_type=args.memory_type,
            memory_usd_per_gb_override=args.memory_usd_per_gb,
            nre=nre_cost(die.node, args.volume) if args.volume else None,
            packaging_usd=args.packaging_usd,
            test_usd=args.test_usd,
            margin=args.margin,
        )
    if args.json:
        print(
            json.dumps(
                {"die": die.__dict__, "yield_by_model": all_yields, "unit": unit.to_json() if unit else None,
                 "notes": [RETICLE_NOTE.format(area=die.area_mm2)] if die.area_mm2 > RETICLE_MM2 else []},
                indent=1,
            )
        )
        return 0
    lines = [
        f"die: {die.area_mm2:g} mm^2 at {die.node} (modelled)",
        f"  wafer price          ${die.wafer_price_usd:,.0f} per 300 mm wafer",
        f"  gross dies per wafer {die.gross_dies_per_wafer:.1f}  (edge excl. {die.edge_exclusion_mm:g} mm, "
        f"scribe {die.scribe_mm:g} mm)",
        "                       = pi(d/2)^2/A' - pi d/sqrt(2A')",
        f"  defect density D0    {die.defect_density_per_cm2:g} /cm^2, "
        f"lambda = {die.defect_density_per_cm2 * die.area_mm2 / 100:.3f}",
        *([f"  note: {RETICLE_NOTE.format(area=die.area_mm2)}"] if die.area_mm2 > RETICLE_MM2 else []),
        "  yield by model       " + ", ".join(f"{m} {y:.3f}" for m, y in all_yields.items()),
        f"  yield used           {die.defect_free_yield:.3f} ({die.yield_model}"
        + (f", alpha {die.alpha:g})" if die.yield_model == "negative_binomial" else ")"),
    ]
    if die.harvest:
        h = die.harvest
        lines.append(
            f"  with harvesting      {die.effective_yield:.3f} ({h['required']} of {h['blocks']} blocks "
            f"covering {h['fraction']:.0%} of the die)"
        )
    lines += [
        f"  good dies per wafer  {die.good_dies_per_wafer:.1f}",
        f"  cost per good die    ${die.cost_per_good_die_usd:,.2f}",
    ]
    if unit:
        lines.append("unit (modelled):")
        lines += [f"  {t.name:<20} ${t.usd:>10,.2f}  {t.detail}  [{t.source}]" for t in unit.terms]
        lines += [
            f"  {'cost':<20} ${unit.cost_usd:>10,.2f}",
            f"  {'price':<20} ${unit.price_usd:>10,.2f}  cost / (1 - margin {unit.margin:g})",
        ]
    print_lines(lines)
    return 0


def _load_synth(path: str | None):
    from workbench.area import load_synth_result

    return load_synth_result(path) if path else None


def _print_estimate(est, design) -> None:
    from rich.table import Table

    console = _console()
    rows = [
        (name, "—" if f.value is None else (f"{f.value:,.4g}" if abs(f.value) < 1e6 else f"{f.value:,.0f}"), f.unit,
         f.provenance, f.note)
        for name, f in est.figures.items()
    ]
    columns = (Column("figure", "left", wrap=True), Column("value"), Column("unit", "left", wrap=True),
               Column("provenance", "left", wrap=True, priority=1), Column("note", "left", wrap=True, priority=2))
    console.print(fit_table(f"estimate: {est.design} on {est.workload}", columns, rows, console))
    for layer in est.layers:
        if layer.mapping:  # designs with [l2]: the chip-level mapping the search chose
            console.print(f"mapping of {layer.name}: {layer.mapping}; {layer.cycles:,} cycles, bound by {layer.bound}",
                          highlight=False)
    a = Table(title=f"area at {est.area.node} (modelled, mm^2)")
    for col in ("component", "mm^2", "detail", "source"):
        a.add_column(col, overflow="fold")
    for i in est.area.items:
        _add(a, i.name, f"{i.mm2:,.3f}", i.detail, i.source)
    _add(a, "total", f"{est.area.total_mm2:,.3f}", "", "")
    console.print(a)
    c = Table(title="unit cost to make (modelled, USD; no board)")
    for col in ("term", "USD", "detail", "source"):
        c.add_column(col, overflow="fold")
    for term in est.cost.terms:
        _add(c, term.name, f"{term.usd:,.2f}", term.detail, term.source)
    _add(c, "cost", f"{est.cost.cost_usd:,.2f}", "", "")
    _add(c, "price", f"{est.cost.price_usd:,.2f}", f"cost / (1 - margin {est.cost.margin:g})", "")
    console.print(c)
    for note in est.cost.notes:
        console.print(f"note: {note}", highlight=False)
    if est.power:
        e = Table(title="energy (modelled from simulated counters)")
        for col in ("event", "count", "pJ each", "J"):
            e.add_column(col, justify="right" if col != "event" else "left")
        for term in est.power.terms:
            _add(e, term.event, f"{term.count:,.0f}", f"{term.pj_each:.4f}", f"{term.joules:.4g}")
        _add(
            e,
            "static",
            f"{est.power.seconds:.4g} s",
            f"{est.power.static_w:.1f} W",
            f"{est.power.static_j:.4g}",
        )
        console.print(e)
    for chk in est.checks:
        console.print(
            f"check {chk.name}: {chk.value:,.4g} in \\[{chk.low:,.4g}, {chk.high:,.4g}] -> "
            + ("[green]ok[/]" if chk.ok else "[red]OUTSIDE[/]")
        )


def cmd_estimate(args: argparse.Namespace) -> int:
    """Simulate a workload on a design and apply the area, cost and power models."""
    from workbench.estimate import estimate, resolve_workload

    design = load_design(args.design)
    measured = _measured(args)  # a bad --measured file fails before the simulation
    est = estimate(
        design,
        resolve_workload(args.workload, design),
        margin=args.margin,
        volume=args.volume,
        synth=_load_synth(args.rtl_synth),
    )
    if args.json:
        out = est.to_json()
        if measured:
            out["measured"] = [m.to_json() for m in measured]
        print(json.dumps(out, indent=1, default=str))
    else:
        _print_estimate(est, design)
        if measured:
            from workbench.report import design_row, measured_row, print_table

            print_table([design_row(est)] + [measured_row(m) for m in measured], est.workload)
    return 0


def _tco(text: str) -> tuple[float, float, float]:
    """YEARS:USD_PER_KWH[:PUE] -> (years, $/kWh, PUE)."""
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        years, usd, pue = float(parts[0]), float(parts[1]), float(parts[2]) if len(parts) == 3 else 1.0
    except ValueError:
        raise UsageError(f"--tco {text!r}: expected YEARS:USD_PER_KWH[:PUE], e.g. 3:0.10:1.2") from None
    rules = ((years, Spec("number", 0, 100, lo_open=True), "YEARS"), (usd, Spec("number", 0, 100), "USD_PER_KWH"),
             (pue, Spec("number", 1, 10), "PUE"))
    for value, spec, name in rules:
        if not (math.isfinite(value) and spec.admits(value)):
            raise UsageError(f"--tco {text!r}: {name} = {value:g} is out of range; allowed {spec.rule()}")
    return years, usd, pue


def _measured(args: argparse.Namespace) -> list:
    """The `workbench measure` results named by --measured (none without it)."""
    from workbench.measure import load_measurements

    return [m for path in (args.measured or []) for m in load_measurements(path)]


def cmd_compare(args: argparse.Namespace) -> int:
    """Designs and chips side by side; with --out, an HTML report with PNG plots."""
    from workbench.chips import find_chip
    from workbench.estimate import AUTO_GEMM_START, WorkloadError, estimate, resolve_workload
    from workbench.outputs import check_output_folder
    from workbench.report import (
        DEFAULT_COMPARE_CHIPS,
        add_tco,
        chip_row,
        design_row,
        measured_row,
        print_table,
        report_files,
        write_report,
    )

    designs = [load_design(d) for d in args.designs]
    if args.out:  # before any simulation: a report folder that cannot be written fails now, not at the end
        check_output_folder(args.out, report_files([d.name for d in designs]))
    chips = [find_chip(c) for c in (args.chip or DEFAULT_COMPARE_CHIPS)]
    for chip in chips:
        if chip.peak_16bit_tflops is None:
            raise UsageError(f"--chip {chip.key}: the chip database has no 16-bit peak for {chip.name}, so there is "
                             "nothing to compare; `workbench chips` lists the figures each chip has")
    synth = _load_synth(args.rtl_synth)
    measured = _measured(args)  # a bad --measured file fails before any simulation
    pairs, skipped = [], []
    for d in designs:
        try:
            est = estimate(d, resolve_workload(args.workload, d), margin=args.margin, volume=args.volume, synth=synth)
        except WorkloadError as exc:  # one design too small for the workload does not stop the others
            skipped.append(exc)
            print(f"workbench compare: skipped {d.name}: {exc}", file=sys.stderr)
            continue
        pairs.append((d, est))
    if skipped and not pairs:
        raise skipped[0]
    rows = [design_row(e) for _, e in pairs] + [measured_row(m) for m in measured] + [chip_row(c) for c in chips]
    if args.tco:
        add_tco(rows, *_tco(args.tco))
    workload = args.workload
    if workload == "auto":
        workload = f"auto (per design: the largest square power-of-two GEMM up to {AUTO_GEMM_START} that fits its memory)"
    if args.json:
        print(json.dumps({"workload": workload, "rows": [r.to_json() for r in rows]}, indent=1))
    else:
        print_table(rows, workload)
    if args.out:
        path = write_report(rows, pairs, workload, Path(args.out))
        if not args.json:
            print(f"report: {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `chips`, `cost`, `estimate` and `compare` to the CLI."""
    from workbench.cost import EDGE_EXCLUSION_MM, NB_ALPHA, SCRIBE_MM, WAFER_DIAMETER_MM, YIELD_MODELS
    from workbench.estimate import AUTO_GEMM_START
    from workbench.report import DEFAULT_COMPARE_CHIPS

    auto = f"the largest square power-of-two GEMM up to {AUTO_GEMM_START} that fits the design's memory"
    p = sub.add_parser("chips", help="list real accelerators with peak TFLOPS per $1000 and per watt")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_chips)

    p = sub.add_parser("cost", help="cost of a bare die (dies per wafer, yield, cost per good die), each term shown")
    p.add_argument("--area-mm2", type=POSITIVE, help="die area in mm^2 (one exposure prints at most 858)")
    p.add_argument("--node", help="process node, e.g. N4, 5nm, 7")
    p.add_argument("--design", help="instead of --area-mm2/--node: a design's modelled area and unit cost")
    p.add_argument("--published", action="store_true",
                   help="instead: published H100, AD102-104 and Navi 31 die-cost estimates beside the model (C.4)")
    p.add_argument("--rtl-synth", metavar="FILE.json", help="with --design: RTL synthesis result for logic areas")
    p.add_argument("--wafer-price-usd", type=POSITIVE, help="override the node's wafer price (USD per 300 mm wafer)")
    p.add_argument("--d0", type=NON_NEGATIVE, help="defect density per cm^2 (default: the node's, see --year)")
    p.add_argument("--yield-model", choices=YIELD_MODELS, default="negative_binomial",
                   help="die yield model (default negative_binomial)")
    p.add_argument("--alpha", type=POSITIVE, default=NB_ALPHA,
                   help=f"negative-binomial clustering (default {NB_ALPHA:g}, ttm-cas; docs/sources.md a.2)")
    p.add_argument("--edge-exclusion-mm", type=spec_type(Spec("number", 0, WAFER_DIAMETER_MM / 2, hi_open=True)),
                   help=f"unusable ring at the wafer edge in mm (default {EDGE_EXCLUSION_MM:g}; docs/sources.md C.1)")
    p.add_argument("--scribe-mm", type=NON_NEGATIVE,
                   help=f"saw lane between dies in mm (default {SCRIBE_MM:g}; docs/sources.md C.1)")
    p.add_argument("--year", type=spec_type(Spec("number", 1990, 2100)),
                   help="calendar year of the node's defect density (default: the mature value; docs/sources.md C.2)")
    p.add_argument("--harvest", metavar="BLOCKS:REQUIRED:FRACTION", help="spare blocks, e.g. 144:132:0.6")
    p.add_argument("--memory-gb", type=NON_NEGATIVE, default=0.0, help="memory per unit (adds a unit-cost breakdown)")
    p.add_argument(
        "--memory-type",
        help="memory for --memory-gb, also the package class (HBM: CoWoS-class; else simple): HBM3e, HBM3, HBM2e, "
        "GDDR6X, GDDR6, DDR5, DDR4, LPDDR5, LPDDR4",
    )
    p.add_argument("--memory-usd-per-gb", type=NON_NEGATIVE,
                   help="override the memory type's $/GB (HBM range 7-20, a.7)")
    p.add_argument("--packaging-usd", type=NON_NEGATIVE, help="packaging per unit (default: by memory type, a.5/a.6)")
    p.add_argument("--test-usd", type=NON_NEGATIVE, help="assembly and test per unit (default: by memory type)")
    p.add_argument("--margin", type=MARGIN, default=0.0,
                   help="gross margin for the price, 0 <= margin < 1, e.g. 0.6 (default 0: price = cost)")
    p.add_argument("--volume", type=COUNT, help="units to spread the tapeout NRE (masks, IP, package design; a.5) over")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_cost)

    p = sub.add_parser("estimate", help="simulate a workload on a design: TFLOPS, energy, area, cost, ratios")
    p.add_argument("design", help="design name (see designs/) or path to a .toml file")
    p.add_argument("--workload", default="auto",
                   help=f"gemm:MxNxK, conv:NxCxHxW,KxRxS[,sS][,pP], attention:BxHxSxD, layers.csv (name,m,n,k[,count]) "
                   f"or auto (default: {auto})")
    p.add_argument("--margin", type=MARGIN,
                   help="gross margin for the price, 0 <= margin < 1 (default: the design's [cost] margin or 0)")
    p.add_argument("--volume", type=COUNT, help="units to spread the tapeout NRE over (default: [cost] volume_units)")
    p.add_argument("--rtl-synth", metavar="FILE.json", help="RTL synthesis result calibrating logic areas")
    p.add_argument("--measured", action="append", metavar="FILE.json",
                   help="a `workbench measure --out` result to show beside the design (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("compare", help="designs beside real chips: table, and an HTML report with plots (--out)")
    p.add_argument("designs", nargs="+", metavar="DESIGN", help="design names (see designs/) or .toml paths")
    p.add_argument("--chip", action="append",
                   help=f"chip key to compare against (repeatable; see `workbench chips`; default: "
                        f"{', '.join(DEFAULT_COMPARE_CHIPS)})")
    p.add_argument("--workload", default="auto",
                   help=f"gemm:MxNxK, conv:..., attention:..., layers.csv or auto (default: per design, {auto})")
    p.add_argument("--margin", type=MARGIN,
                   help="gross margin on the designs' cost, 0 <= margin < 1 (default: each design's [cost] margin "
                        "or 0, i.e. designs at cost to make)")
    p.add_argument("--volume", type=COUNT, help="units to spread each design's tapeout NRE over")
    p.add_argument("--tco", metavar="YEARS:USD_PER_KWH[:PUE]",
                   help="add price + electricity over YEARS (designs at run power, chips at TDP), e.g. 3:0.10:1.2")
    p.add_argument("--rtl-synth", metavar="FILE.json", help="RTL synthesis result calibrating logic areas")
    p.add_argument("--measured", action="append", metavar="FILE.json",
                   help="a `workbench measure --out` result to show as a measured row (repeatable)")
    p.add_argument("--out", metavar="DIR", help="write report.html, compare.json and PNG plots here")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_compare)
