"""Agreement sweep: example programs and seeded random programs on several designs, RTL vs models.

    python -m rtl.sweep [--random N] [--designs a,b,...] [--json]

Prints, per design, how many programs agreed in values, cycles and counters, with build and run times.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

from isa.design import load_design


def _design(name: str):
    if name.endswith("+ws"):  # a shipped OS design turned weight-stationary (for WS coverage at small size)
        base = load_design(name[:-3])
        d = base.replace(matrix=dataclasses.replace(base.matrix, dataflow="ws"))
        return dataclasses.replace(d, name=name)
    return load_design(name)


def sweep(designs: list[str], n_random: int, seed0: int = 1000) -> dict:
    from rtl.programs import dram_image, example_programs, load_program
    from rtl.randprog import valid_random_program
    from rtl.run import build_core, run_on_rtl

    out = {}
    for name in designs:
        d = _design(name)
        t0 = time.monotonic()
        built = build_core(d)
        rec = {"build_seconds": built.build_seconds or (time.monotonic() - t0), "build_cached": built.cached,
               "examples": {}, "random_ok": 0, "random_total": 0, "failures": [], "cycles_run": 0,
               "run_seconds": 0.0}
        jobs = [(p.name, load_program(d, p), dram_image(d)) for p in example_programs()]
        for s in range(seed0, seed0 + n_random):
            prog, image = valid_random_program(d, s)
            jobs.append((f"random-{s}", prog, image))
        for label, prog, image in jobs:
            r = run_on_rtl(d, prog, image)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--designs", default="tiny-int8-4x4,small-int8-8x8,tiny-int8-4x4+ws,edge-int8-16x16")
    ap.add_argument("--random", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = sweep(args.designs.split(","), args.random)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    for name, r in res.items():
        ex_ok = sum(v["ok"] for v in r["examples"].values())
        print(f"{name}: examples {ex_ok}/{len(r['examples'])}, random {r['random_ok']}/{r['random_total']}, "
              f"build {r['build_seconds']:.0f} s, {r['cycles_run']} cycles in {r['run_seconds']:.1f} s")
        for f in r["failures"]:
            print(f"  FAIL {f}")


if __name__ == "__main__":
    main()
