"""Pareto frontiers: which points no other point beats on every objective at once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _as_min(values: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[1] != len(maximize):
        raise ValueError(f"values must be (points, {len(maximize)}), got {v.shape}")
    return np.where(np.asarray(maximize, dtype=bool), -v, v)


def pareto_mask(values: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Boolean mask of the non-dominated points (ties are all kept).

    A point is dominated when another is at least as good on every objective and better on one. Each kept
    point in turn drops every point it dominates, so the cost is O(points x frontier size).
    """
    v = _as_min(values, maximize)
    order = np.argsort(v.sum(axis=1), kind="stable")  # likely dominators first: fewer survivors to scan
    pts, idx = v[order], order
    i = 0
    while i < len(pts):
        p = pts[i]
        keep = np.any(pts < p, axis=1) | np.all(pts == p, axis=1)
        keep[i] = True
        pts, idx = pts[keep], idx[keep]
        i = int(np.count_nonzero(keep[:i])) + 1
    mask = np.zeros(len(v), dtype=bool)
    mask[idx] = True
    return mask


def pareto_ranks(values: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Non-dominated sorting: 0 for the frontier, 1 for the frontier of the rest, and so on."""
    v = np.asarray(values, dtype=float)
    ranks = np.full(len(v), -1)
    left = np.arange(len(v))
    rank = 0
    while len(left):
        front = pareto_mask(v[left], maximize)
        ranks[left[front]] = rank
        left = left[~front]
        rank += 1
    return ranks


def row_value(row: dict, metric: str) -> float:
    """A result row's value of `metric` (NaN when missing)."""
    v = row.get(metric)
    return float("nan") if v is None else float(v)


def feasible(row: dict, constraints: Sequence) -> bool:
    """True for an ok result that meets every constraint (objects with `.metric` and `.ok(value)`)."""
    return row.get("status") == "ok" and all(c.ok(row.get(c.metric)) for c in constraints)


def rank_rows(rows: Sequence[dict], objectives: Sequence[str], constraints: Sequence = ()) -> list[int | None]:
    """Pareto rank of each row among the feasible rows of the same workload (None: infeasible or failed)."""
    from workbench.sweep_metrics import METRICS

    maximize = [METRICS[m].maximize for m in objectives]
    ranks: list[int | None] = [None] * len(rows)
    by_workload: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if feasible(r, constraints) and all(r.get(m) is not None for m in objectives):
            by_workload.setdefault(r["workload"], []).append(i)
    for idx in by_workload.values():
        vals = np.array([[row_value(rows[i], m) for m in objectives] for i in idx])
        for i, rank in zip(idx, pareto_ranks(vals, maximize), strict=True):
            ranks[i] = int(rank)
    return ranks
