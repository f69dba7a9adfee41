"""Compare the reference designs' simulated GEMM throughput with published measurements of the real chips.

    PYTHONPATH=$PWD python -m bench.validate_silicon                  # table and error statistics per chip
    PYTHONPATH=$PWD python -m bench.validate_silicon --json out.json  # every comparison as JSON
    PYTHONPATH=$PWD python -m bench.validate_silicon --markdown t.md  # the tables as Markdown
    PYTHONPATH=$PWD python -m bench.validate_silicon --update-docs    # regenerate the table in docs/models.md

Data: workbench/measured_gemm.csv (each row cites its source: docs/sources.md V). For each chip the design whose
[reference] chip names it is simulated on the same shape through the public estimate path
(`workbench.estimate.estimate`: the cycle simulator, the mapping over the cores and the power cap), so the
table follows whatever the simulator and the mapping do today. Prints, per chip and per shape kind, the median
and worst absolute error of simulated / measured - 1. Issue 14's bar: median <= 10%, worst <= 25%.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "models.md"

from isa.errors import UserError  # noqa: E402
from workbench.measured import (  # noqa: E402
    Comparison,
    compare_to_design,
    comparison_markdown,
    error_stats,
    load_measurements,
    reference_design_for,
    replace_docs_block,
)
from workbench.outputs import check_output_file, write_file  # noqa: E402


def run(chips: list[str] | None = None) -> dict[str, list[Comparison]]:
    """Every measurement of `chips` (default: all in the data) against its reference design, printed as it goes."""
    rows = load_measurements()
    by_chip: dict[str, list[Comparison]] = {}
    for chip in chips or sorted({r.chip for r in rows}):
        design = reference_design_for(chip)
        t0 = time.perf_counter()
        results = compare_to_design([r for r in rows if r.chip == chip], design)
        wall = time.perf_counter() - t0
        print(f"\n{chip} vs {design.name} ({len(results)} measurements, {wall:.1f} s of simulation)")
        print(f"  {'dtype':<9} {'shape (batch x m x n x k)':<28} {'kind':<8} {'measured':>9} {'simulated':>9} {'error':>8}")
        for c in results:
            shape = f"{c.batch} x {c.m} x {c.n} x {c.k}"
            sim = f"{c.simulated_tflops:9.1f}" if c.simulated_tflops is not None else "      n/a"
            err = f"{c.error:+8.1%}" if c.error is not None else f"  ({c.note[:40]})"
            print(f"  {c.dtype:<9} {shape:<28} {c.kind:<8} {c.measured_tflops:9.1f} {sim} {err}")
        for name in ["all", *sorted({c.kind for c in results})]:
            s = error_stats(results if name == "all" else [c for c in results if c.kind == name])
            if s.get("count"):
                print(f"  {name:<8} n={s['count']:<3} median |error| {s['median_abs_error']:.1%}, worst "
                      f"{s['worst_abs_error']:.1%}, median signed {s['median_signed_error']:+.1%}")
        by_chip[chip] = results
    return by_chip


def main(argv: list[str] | None = None) -> int:
    """Run the comparison, print it and write the requested outputs; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="also write every comparison to this JSON file")
    ap.add_argument("--markdown", help="also write the tables as Markdown to this file")
    ap.add_argument("--update-docs", action="store_true",
                    help="rewrite the generated validation table in docs/models.md")
    ap.add_argument("--chip", action="append", help="only these chip keys (default: every chip in the data)")
    args = ap.parse_args(argv)
    try:
        for path in (args.json, args.markdown):  # checked before the simulations, not after
            if path:
                check_output_file(path)
        if args.update_docs:
            check_output_file(DOCS)
            replace_docs_block(DOCS.read_text(), "")  # the markers must be there
        by_chip = run(args.chip)
        table = comparison_markdown(by_chip)
        if args.json:
            report = {chip: {"design": res[0].design if res else None,
                             "stats": error_stats(res), "rows": [c.to_json() for c in res]}
                      for chip, res in by_chip.items()}
            write_file(args.json, json.dumps(report, indent=1))
        if args.markdown:
            write_file(args.markdown, table)
        if args.update_docs:
            write_file(DOCS, replace_docs_block(DOCS.read_text(), table))
            print(f"\nrewrote the validation table in {DOCS}")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
