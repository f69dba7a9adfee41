"""SCALE-Sim's cycle convention, converted in exactly one place."""
from __future__ import annotations

from math import ceil

__all__ = ["cycles_from_scalesim", "stall_free_formula"]


def cycles_from_scalesim(total_cycles: int, stall_cycles: int) -> int:
    """Our cycle count for a SCALE-Sim run: its stall-free figure is a 0-based index, so add one."""
    return total_cycles - stall_cycles + 1


def stall_free_formula(m: int, n: int, k: int, rows: int, cols: int, dataflow: str) -> int:
    """SCALE-Sim 3.0's stall-free cycles (Total Cycles - Stall Cycles) for a GEMM, raw 0-based convention.

    Every fold (one tile of the array's rows x cols) costs the same number of cycles whether or not the
    tile is full: a partial fold is padded with idle PEs. Folds run back to back, no overlap. Verified against
    every point of tests/fixtures/scalesim/gemm_points.json (SCALE-Sim's own output, stored raw).
    """
    if dataflow == "os":   # array rows <- M, array columns <- N, K streams through
        folds = ceil(m / rows) * ceil(n / cols)
        per_fold = k + rows + cols - 2
    elif dataflow == "ws":  # array rows <- K, array columns <- N, M streams through
        folds = ceil(k / rows) * ceil(n / cols)
        per_fold = m + 2 * rows + cols - 2
    else:
        raise ValueError(f"dataflow {dataflow!r}: expected 'os' or 'ws'")
    return folds * per_fold - 1  # SCALE-Sim reports the index of the last cycle, not a count
