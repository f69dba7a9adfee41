"""Mapping search for a GEMM on a multi-core design: grid, split-K, batch split, blocking and loop order.

In the spirit of Timeloop's mapper and LLMCompass: every core grid gb x gm x gn x gk with at most
`chip.cores` blocks (idle cores allowed; the grid need not divide the core count) is ranked by an analytical
model of the core (array time against its memory port, `_estimate`) and the chip roofs; the best few, each
with the tiling heuristic's blocking and the next-best blockings and both loop orders, are then simulated
(`chip_model.run_mapping`, the cycle simulator in timing-only mode) and the fastest wins. The heuristic mapping
(`divisor_grid`, the tiling heuristic's blocking) is always one of the simulated candidates, so the search is
never slower than it. The winner is cached on disk per (design content, shape) under `$WB_CACHE_DIR/mapping/`.

A design whose `[chip] gemm_tiles` lists its GEMM library's output tiles is searched over those tiles only: every
block is a whole number of one tile, as a library kernel's thread blocks are, so the grid quantizes into waves
over the cores; the heuristic is then the tile and grid with the smallest block. With `[chip] stream_k` the search
also simulates the best persistent stream-K mapping (`stream_k_candidates`): an extra candidate, so it can only make
a shape faster than the grids alone.
"""
from __future__ import annotations

import dataclasses
import json
import math

from compiler import program_cache
from compiler.accel.chip_model import (
    ChipRun,
    Mapping,
    active_cores,
    block_shape,
    chip_dram_bytes_per_cycle,
    clock_stretch,
    core_view,
    multicast_factor,
    run_mapping,
    stream_k_tiles,
)
from compiler.accel.tiling import MAX_STREAM, OsBlock, os_block_candidates
from isa.design import Design, ceil_div
from isa.errors import UserError

__all__ = ["divisor_grid", "tiled_grid", "heuristic_mapping", "search_mapping", "best_run", "best_mapping", "candidate_grids",
           "stream_k_candidates"]

CACHE_KIND = "mapping"
MODEL_VERSION = "3"  # bump when the chip model or the lowering changes what a mapping costs


def divisor_grid(m: int, n: int, design: Design) -> tuple[int, int]:
    """(gm, gn) with gm x gn = cores minimizing array tiles of the largest block (ties: smaller block)."""
    cores, rows, cols = design.chip.cores, design.matrix.rows, design.matrix.cols
    best: tuple[tuple[int, int], tuple[int, int]] | None = None
    for gm in range(1, cores + 1):
        if cores % gm:
            continue
        gn = cores // gm
        bm, bn = math.ceil(m / gm), math.ceil(n / gn)
        key = (math.ceil(bm / rows) * math.ceil(bn / cols), bm * bn)
        if best is None or key < best[0]:
            best = (key, (gm, gn))
    assert best is not None
    return best[1]


def tiled_grid(m: int, n: int, design: Design) -> Mapping:
    """The library tile and grid (at most `chip.cores` blocks) with the smallest block; ties: fewer cores."""
    cores = design.chip.cores
    best: tuple[tuple[int, int], Mapping] | None = None
    for tile in design.chip.gemm_tiles:
        tiles_m, tiles_n = ceil_div(m, tile[0]), ceil_div(n, tile[1])
        for gm in range(1, min(tiles_m, cores) + 1):
            gn = min(tiles_n, cores // gm)
            mp = Mapping(gm, gn, tile=tile)
            bm, bn, _, _ = block_shape(m, n, 1, 1, mp)
            key = (bm * bn, gm * gn)
            if best is None or key < best[0]:
                best = (key, mp)
    assert best is not None
    return best[1]


def heuristic_mapping(design: Design, m: int, n: int) -> Mapping:
    """The mapping before the search existed: the divisor grid, no split-K, the tiling heuristic's blocking
    (with library tiles: the tiled grid with the smallest block)."""
    if design.chip.gemm_tiles:
        return tiled_grid(m, n, design)
    gm, gn = divisor_grid(m, n, design)
    return Mapping(gm, gn)


def _splits(total: int) -> list[tuple[int, int]]:
    """(parts, per-part size) for every distinct per-part size of `total` items, fewest parts first."""
    out: dict[int, int] = {}
    for parts in range(1, total + 1):
        size = ceil_div(total, parts)
        out.setdefault(size, ceil_div(total, size))
    return sorted(((p, s) for s, p in out.items()), key=lambda x: x[0])


def candidate_grids(design: Design, m: int, n: int, k: int, batch: int = 1) -> list[Mapping]:
    """Every grid (gm, gn, gk, gb) with distinct block sizes and at most `chip.cores` blocks (with library
    tiles: for each tile, grids of whole tiles)."""
    cores, rows, cols = design.chip.cores, design.matrix.rows, design.matrix.cols
    tiles: tuple[tuple[int, int] | None, ...] = design.chip.gemm_tiles or (None,)
    k_parts = [p for p, s in _splits(ceil_div(k, rows)) if p <= 64]  # split-K in whole array tiles
    b_parts = [p for p, _ in _splits(batch)]
    out, seen = [], set()
    for tile in tiles:
        tm, tn = tile or (rows, cols)
        m_parts = [p for p, _ in _splits(ceil_div(m, tm))]
        n_parts = [p for p, _ in _splits(ceil_div(n, tn))]
        for gb in b_parts:
            for gk in k_parts:
                if gb * gk > cores:
                    break
                for gm in m_parts:
                    if gb * gk * gm > cores:
                        break
                    for gn in n_parts:
                        if gb * gk * gm * gn > cores:
                            break
                        mp = Mapping(gm, gn, gk, gb, tile=tile)
                        shape = (block_shape(m, n, k, batch, mp), gm, gn, gk, gb)
                        if shape not in seen:  # two tiles can give the same blocks: simulate them once
                            seen.add(shape)
                            out.append(mp)
    return out


def stream_k_candidates(design: Design, m: int, n: int, k: int, batch: int = 1) -> list[Mapping]:
    """One persistent stream-K mapping per library tile (chip.stream_k; none without it): all cores, with the tile
    grid's rows and columns that one wave of `chip.cores` tiles covers as its grid (L2 reuse, multicast)."""
    if not design.chip.stream_k or design.l2 is None:
        return []
    cores, rows, cols = design.chip.cores, design.matrix.rows, design.matrix.cols
    out = []
    for tile in design.chip.gemm_tiles or ((rows, cols),):
        probe = Mapping(1, 1, tile=tile, sk_cores=cores)
        if stream_k_tiles(m, n, batch, probe) * ceil_div(k, rows) < cores:  # fewer K steps than cores
            continue
        gm = min(ceil_div(m, tile[0]), cores)
        gn = min(ceil_div(n, tile[1]), max(1, cores // gm))
        out.append(Mapping(gm, gn, tile=tile, sk_cores=cores))
    return out


def _estimate(design: Design, m: int, n: int, k: int, batch: int, mp: Mapping, out_bytes: int | None = None) -> float:
    """Analytical cycles of a grid: the core's array time against its port time, and the chip roofs."""
    rows, cols = design.matrix.rows, design.matrix.cols
    ib, ab = design.input_bytes, design.acc_bytes
    bm, bn, bk, bb = block_shape(m, n, k, batch, mp)
    active = active_cores(m, n, k, batch, mp)
    core = core_view(design, active, multicast_factor(design, mp, bm, bn))
    port, lat = core.memory.dram_bandwidth_bytes_per_cycle, core.memory.dram_latency_cycles
    tm, tn = ceil_div(bm, rows), ceil_div(bn, cols)
    compute = tm * tn * max(bk, rows)
    acc_tiles = max(1, design.accumulator_rows // 2 // rows)
    sp_half = design.scratchpad_rows // 2
    best = math.inf
    for b1 in range(1, min(tm, acc_tiles) + 1):
        b2 = max(1, min(tn, acc_tiles // b1))
        kc = max(1, min(bk, MAX_STREAM, sp_half // (b1 + b2)))
        loads = bk * (min(bm, tm * rows) * ib * ceil_div(tn, b2) + min(bn, tn * cols) * ib * ceil_div(tm, b1))
        groups = ceil_div(tm, b1) * ceil_div(tn, b2) * ceil_div(bk, kc)
        mem = loads / port + 2 * groups * lat + bm * bn * ab / port
        best = min(best, max(compute, mem))
    core_cycles = bb * best * clock_stretch(design)
    if design.l2 is None:
        return core_cycles
    unique = batch * (m * k * ib + k * n * ib + m * n * (out_bytes or ab))
    dram = unique / chip_dram_bytes_per_cycle(design)
    reduction = 0.0
    if mp.gk > 1:
        reduction = (mp.gk + 1) * batch * m * n * ab / min(design.l2.bandwidth_bytes_per_cycle,
                                                          design.l2.noc_bandwidth_bytes_per_cycle * design.chip.cores)
    return max(core_cycles, dram) + reduction


def _key(design: Design, m: int, n: int, k: int, batch: int, ideal_memory: bool, out_bytes: int | None = None,
         cold: bool = False) -> str:
    """The cache key: the model version, the design's content (not its name), the shape, C's output bytes and
    whether the call starts cold."""
    content = dataclasses.asdict(design)
    for drop in ("name", "description", "source"):
        content.pop(drop)
    blob = json.dumps(content, sort_keys=True, default=str)
    shape = f"{batch}x{m}x{n}x{k}" + (f" out {out_bytes} B" if out_bytes else "") + (" cold" if cold else "")
    return program_cache.cache_key(MODEL_VERSION, blob, shape, str(ideal_memory))


def _to_json(mp: Mapping) -> str:
    return json.dumps(dataclasses.asdict(mp))


def _from_json(raw: bytes) -> Mapping | None:
    try:
        d = json.loads(raw)
        blk, tile = d.pop("block"), d.pop("tile", None)
        return Mapping(**d, block=OsBlock(**blk) if blk else None,
                       tile=(int(tile[0]), int(tile[1])) if tile else None)  # entries before stream-K: sk_cores 0
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def search_mapping(design: Design, m: int, n: int, k: int, batch: int = 1, *, top: int = 3,
                   ideal_memory: bool = False, out_bytes: int | None = None,
                   cold: bool = False) -> tuple[ChipRun, list[ChipRun]]:
    """The fastest simulated mapping and every simulated candidate (the heuristic first, when the ISA can express it).

    `top` grids from the analytical ranking are simulated, each with the tiling heuristic's blocking; the best
    of them also with the next-best blockings and the other loop order. out_bytes: C's bytes per element as the
    call writes it (None: the accumulator's; chip_model.run_mapping). cold: the call starts after an L2 flush.
    """
    heur = heuristic_mapping(design, m, n)
    if ideal_memory:  # the array-bound figure: the heuristic's fold structure, as SCALE-Sim counts it
        run = run_mapping(design, m, n, k, heur, batch, ideal_memory)
        return run, [run]
    runs: list[ChipRun] = []
    errors: list[UserError] = []

    def attempt(mp: Mapping) -> None:
        # a candidate the ISA cannot express (a field overflows on its block) is skipped, not fatal
        try:
            runs.append(run_mapping(design, m, n, k, mp, batch, out_bytes=out_bytes, cold=cold))
        except UserError as exc:
            errors.append(exc)

    attempt(heur)
    grids = sorted(candidate_grids(design, m, n, k, batch),
                   key=lambda g: _estimate(design, m, n, k, batch, g, out_bytes))
    seen = {heur}
    streamk = sorted(stream_k_candidates(design, m, n, k, batch),
                     key=lambda g: _estimate(design, m, n, k, batch, g, out_bytes))
    for mp in grids[:top] + streamk[:1]:  # the best stream-K mapping is simulated beside the grids, never instead
        if mp not in seen:
            seen.add(mp)
            attempt(mp)
    if not runs:
        raise errors[0]
    lead_run = min(runs, key=lambda r: r.cycles)
    lead = lead_run.mapping
    bm, bn, bk, bb = block_shape(m, n, k, batch, lead)
    core = core_view(design, active_cores(m, n, k, batch, lead), multicast_factor(design, lead, bm, bn))
    rows, cols = design.matrix.rows, design.matrix.cols
    array_bound = bb * ceil_div(bm, rows) * ceil_div(bn, cols) * max(bk, rows)  # the array's own time
    # another blocking or loop order of the same grid only changes memory traffic: not worth simulating when
    # the lead already runs within 2% of its array bound
    if design.matrix.dataflow == "os" and lead_run.core_cycles > 1.02 * array_bound * clock_stretch(design):
        variants = [dataclasses.replace(lead, order="mn")]
        variants += [dataclasses.replace(lead, block=b, order=o) for b in os_block_candidates(core, bm, bn, bk, 2)[1:]
                     for o in ("nm", "mn")]
        for mp in variants:
            if mp not in seen:
                seen.add(mp)
                attempt(mp)
    best = min(runs, key=lambda r: r.cycles)  # min keeps the first of equals: the heuristic wins ties
    return best, runs


def best_mapping(design: Design, m: int, n: int, k: int, batch: int = 1, cache: bool = True,
                 out_bytes: int | None = None, cold: bool = False) -> Mapping:
    """The search's mapping for this (design, shape), from the on-disk cache when it was searched before."""
    return _best(design, m, n, k, batch, cache, out_bytes, cold)[0]


def _best(design: Design, m: int, n: int, k: int, batch: int, cache: bool,
          out_bytes: int | None = None, cold: bool = False) -> tuple[Mapping, ChipRun | None]:
    key = _key(design, m, n, k, batch, False, out_bytes, cold)
    if cache:
        raw = program_cache.read(CACHE_KIND, key)
        mp = _from_json(raw) if raw is not None else None
        if mp is not None:
            return mp, None
        if raw is not None:  # a corrupt entry is searched again
            program_cache.remove(CACHE_KIND, key)
    best, _ = search_mapping(design, m, n, k, batch, out_bytes=out_bytes, cold=cold)
    if cache:
        program_cache.write(CACHE_KIND, key, _to_json(best.mapping).encode())
    return best.mapping, best


def best_run(design: Design, m: int, n: int, k: int, batch: int = 1, ideal_memory: bool = False,
             cache: bool = True, out_bytes: int | None = None, cold: bool = False) -> ChipRun:
    """The best mapping's run (cached per design and shape).

    ideal_memory: the same grid in the simulator's ideal-memory mode (free loads and stores, SCALE-Sim's fold
    structure), so the array-bound figure is never below the run's own.
    out_bytes: C's bytes per element as the call writes it (None: the accumulator's).
    cold: the call starts right after an L2 flush (chip_model.run_mapping).
    """
    mp, run = _best(design, m, n, k, batch, cache, out_bytes, cold)
    if ideal_memory:
        return run_mapping(design, m, n, k, dataclasses.replace(mp, block=None, order="nm"), batch, True)
    return run if run is not None else run_mapping(design, m, n, k, mp, batch, out_bytes=out_bytes, cold=cold)
