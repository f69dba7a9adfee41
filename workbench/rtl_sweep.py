"""Agreement sweep: example programs and seeded random programs on several designs, RTL vs the models.

    python -m workbench.rtl_sweep [--random N [--first-seed S] | --seeds 1000-1039,2000] [--designs a,b] [--json]

Prints, per design, how many programs agreed in values, cycles and counters, with build and run times.
A random program is `workbench.rtl_agreement.valid_random_program(design, seed)`: the same seed gives
the same program, so a failure found here is reproduced by its seed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time

from isa.design import Design, load_design

DEFAULT_DESIGNS = "tiny-int8-4x4,small-int8-8x8,tiny-int8-4x4+ws,edge-int8-16x16"
DEFAULT_FIRST_SEED = 1000


# Suffixes of a sweep design name: `NAME+ws+merge` is NAME weight-stationary with dram_burst_merge.
VARIANTS = {"ws": ("matrix", {"dataflow": "ws"}), "merge": ("memory", {"dram_burst_merge": True}),
            "posted": ("memory", {"dram_posted_stores": True})}


def sweep_design(name: str) -> Design:
    """A shipped design by name, with optional suffixes: `+ws` (weight-stationary, WS coverage at small size),
    `+merge` / `+posted` (the DRAM options dram_burst_merge / dram_posted_stores of docs/timing.md section 7),
    `+nN` (N DRAM requests in flight: dram_outstanding_requests = N)."""
    base, *suffixes = name.split("+")
    d = load_design(base)
    for suffix in suffixes:
        if re.fullmatch(r"n[1-9][0-9]*", suffix):  # +n4: four DRAM requests in flight (dram_outstanding_requests)
            d = d.replace(memory=dataclasses.replace(d.memory, dram_outstanding_requests=int(suffix[1:])))
            continue
        if suffix not in VARIANTS:
            raise ValueError(f"design {name!r}: unknown suffix +{suffix} (known: "
                             f"{', '.join('+' + v for v in VARIANTS)}, +nN)")
        section, fields = VARIANTS[suffix]
        d = d.replace(**{section: dataclasses.replace(getattr(d, section), **fields)})
    return dataclasses.replace(d, name=name) if suffixes else d


def parse_seeds(text: str) -> list[int]:
    """Seeds from `1000-1039,2000`: comma-separated integers and inclusive ranges."""
    seeds: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, sep, hi = part.partition("-")
        try:
            first, last = (int(lo), int(hi)) if sep else (int(part), int(part))
        except ValueError:
            raise ValueError(f"--seeds: {part!r} is not an integer or a range like 1000-1039") from None
        if first < 0 or last < first:
            raise ValueError(f"--seeds: {part!r} must be non-negative and ascending (e.g. 1000-1039)")
        seeds.extend(range(first, last + 1))
    if not seeds:
        raise ValueError("--seeds: no seeds given (e.g. --seeds 1000-1039)")
    return seeds


def sweep(designs: list[str], seeds: list[int]) -> dict:
    """Run the example programs and one random program per seed on each design; agreement counts per design."""
    from isa.functional import ExecutionError
    from rtl.programs import dram_image, example_programs, load_program
    from rtl.run import build_core
    from sim.simulator import DeadlockError, RaceError
    from workbench.rtl_agreement import run_on_rtl, valid_random_program

    out = {}
    for name in designs:
        d = sweep_design(name)
        t0 = time.monotonic()
        built = build_core(d)
        rec = {"build_seconds": built.build_seconds or (time.monotonic() - t0), "build_cached": built.cached,
               "examples": {}, "seeds": list(seeds), "random_ok": 0, "random_total": 0, "failures": [],
               "cycles_run": 0, "run_seconds": 0.0, "rejected": []}
        jobs = [(p.name, load_program(d, p), dram_image(d)) for p in example_programs()]
        for s in seeds:  # with burst merging, mostly contiguous rows (else merging would rarely happen)
            prog, image = valid_random_program(d, s, dense=d.memory.dram_burst_merge)
            jobs.append((f"random-{s}", prog, image))
        for label, prog, image in jobs:
            try:
                r = run_on_rtl(d, prog, image)
            except (RaceError, DeadlockError, ExecutionError) as exc:
                # the simulator rejects this program on this design (e.g. an example written for the
                # output-stationary array races on a weight-stationary one): nothing to compare, not a mismatch
                rec["rejected"].append(f"{label}: {exc}")
                continue
            rec["cycles_run"] += r.rtl_cycles or 0
            rec["run_seconds"] += r.run_seconds
            if label.startswith("random"):
                rec["random_total"] += 1
                rec["random_ok"] += int(r.ok)
            else:
                rec["examples"][label] = {"ok": r.ok, "cycles": r.rtl_cycles}
            if not r.ok:
                rec["failures"].append(f"{label}: {r.mismatch}")
        out[name] = rec
    return out


def build_parser() -> argparse.ArgumentParser:
    """The sweep's command line."""
    ap = argparse.ArgumentParser(prog="python -m workbench.rtl_sweep", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--designs", default=DEFAULT_DESIGNS,
                    help="comma-separated design names; NAME+ws = that design weight-stationary, +merge / "
                         f"+posted = with dram_burst_merge / dram_posted_stores (default {DEFAULT_DESIGNS})")
    seeds = ap.add_mutually_exclusive_group()
    seeds.add_argument("--random", type=int, default=20, metavar="N",
                       help="number of random programs per design, seeds --first-seed .. +N-1 (default 20)")
    seeds.add_argument("--seeds", help="explicit seeds of the random programs: integers and inclusive ranges, "
                                       "e.g. 1000-1039,2000")
    ap.add_argument("--first-seed", type=int, default=DEFAULT_FIRST_SEED,
                    help=f"first seed with --random (default {DEFAULT_FIRST_SEED})")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run the sweep; exit 0 when every program agreed, 1 otherwise, 2 on bad arguments."""
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.seeds is not None:
        try:
            seeds = parse_seeds(args.seeds)
        except ValueError as exc:
            ap.error(str(exc))
    else:
        if args.random < 0 or args.first_seed < 0:
            ap.error("--random and --first-seed must be non-negative")
        seeds = list(range(args.first_seed, args.first_seed + args.random))
    names = [n for n in args.designs.split(",") if n]
    for n in names:
        try:
            sweep_design(n)
        except ValueError as exc:
            ap.error(f"--designs: {exc}")
    res = sweep(names, seeds)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for name, r in res.items():
            ex_ok = sum(v["ok"] for v in r["examples"].values())
            print(f"{name}: examples {ex_ok}/{len(r['examples'])}, random {r['random_ok']}/{r['random_total']}, "
                  f"build {r['build_seconds']:.0f} s, {r['cycles_run']} cycles in {r['run_seconds']:.1f} s")
            for f in r["failures"]:
                print(f"  FAIL {f}")
            for f in r["rejected"]:
                print(f"  not run (the simulator rejects it on this design) {f}")
    return 0 if all(not r["failures"] for r in res.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
