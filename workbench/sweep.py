"""Run a sweep: every (design point, workload) evaluated on Dask workers, each result stored as it arrives.

The client builds the points, skips the ones whose content key is already in the database (resume), submits
the rest to a Dask cluster (a `LocalCluster` here, or `--scheduler tcp://HOST:PORT`), and records each result in
one SQLite transaction. The simulator work runs on the workers (`run_points`: one task per group of points that
share a simulation, see `group_tasks`). A worker lost mid-point has its
task rescheduled by Dask; a point whose model raises is recorded with its error and the sweep goes on.

Adaptive strategy: a quarter of the budget goes to a seeded random sample of the space; then, in rounds of
an eighth of the budget, the untried grid neighbours (one value step along one parameter) of the frontier
points (Pareto rank 0 over the spec's frontier objectives, among feasible results, per workload), then of
rank 1 and so on, are evaluated; when the neighbourhood is used up, random untried points fill the round.
Rounds are synchronous, so a sweep with the same seed always picks the same points (resumed or not).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from isa.design import Design
from workbench.pareto import feasible, rank_rows
from workbench.results_db import ResultsDB, design_content, point_key
from workbench.sweep_metrics import METRICS, metrics_from_figures
from workbench.sweep_spec import SweepSpec, SweepSpecError
from workbench.sweep_workloads import SweepWorkload, evaluate_point, timing_key

DEFAULT_WORKERS = 2


@dataclass
class Task:
    """One (design point, workload) to evaluate."""

    key: str
    index: tuple[int, ...]
    params: dict[str, Any]
    design: Design
    workload: SweepWorkload


def run_point(design: Design, workload: SweepWorkload) -> dict[str, Any]:
    """Evaluate one point (on a worker): status, figures or error, seconds taken and where it ran."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = evaluate_point(design, workload)
    out["eval_seconds"] = time.perf_counter() - t0
    out["eval_cpu_seconds"] = time.process_time() - c0  # unlike wall time, not inflated by a busy machine
    out["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return out


def run_points(pairs: list[tuple[Design, SweepWorkload]]) -> list[dict[str, Any]]:
    """`run_point` for a group of points (on one worker, so points sharing a simulation compute it once)."""
    return [run_point(design, workload) for design, workload in pairs]


MAX_GROUP = 16  # points per Dask task at most: amortizes Dask's per-task cost, keeps the progress bar live


def group_tasks(tasks: list[Task], size: int = MAX_GROUP) -> list[list[Task]]:
    """Tasks packed into groups of at most `size`, the points that share a simulation (`timing_key`, workload)
    kept together, in grid order."""
    shared: dict[Any, list[Task]] = {}
    for t in tasks:
        shared.setdefault((timing_key(t.design), json.dumps(t.workload.key(), sort_keys=True)), []).append(t)
    groups: list[list[Task]] = [[]]
    for members in shared.values():
        for i in range(0, len(members), size):
            part = members[i:i + size]
            if len(groups[-1]) + len(part) > size:
                groups.append([])
            groups[-1].extend(part)
    return [g for g in groups if g]


def make_tasks(spec: SweepSpec, indices: Iterable[tuple[int, ...]]) -> list[Task]:
    """Tasks for these points x every workload, one per distinct content key."""
    tasks, seen = [], set()
    for index in indices:
        params = spec.params(index)
        design = spec.design(index)
        for w in spec.workloads:
            key = point_key(design, w.key())
            if key not in seen:
                seen.add(key)
                tasks.append(Task(key, index, params, design, w))
    return tasks


def result_row(task: Task, out: dict[str, Any]) -> dict[str, Any]:
    """The database row of a finished task."""
    figures = out.get("figures")
    return {
        "key": task.key,
        "design_name": task.design.name,
        "workload": task.workload.name,
        "params": task.params,
        "design": design_content(task.design),
        "workload_key": task.workload.key(),
        "status": out["status"],
        "error": out.get("error"),
        "figures": figures,
        "metrics": metrics_from_figures(figures) if figures else {},
        "eval_seconds": out.get("eval_seconds"),
        "eval_cpu_seconds": out.get("eval_cpu_seconds"),
        "worker": out.get("worker"),
    }


def _import_models() -> None:
    """Import the simulator and the models (run once on each worker)."""
    import compiler.accel.gemm_run  # noqa: F401
    import workbench.estimate  # noqa: F401


# ---- executors: where the points run ------------------------------------------------------------------------


class DaskExecutor:
    """Runs tasks on a Dask cluster: a LocalCluster of `workers` processes, or the scheduler at `address`."""

    def __init__(self, address: str | None = None, workers: int = DEFAULT_WORKERS):
        from distributed import Client, LocalCluster

        self.cluster = None
        if address:
            try:
                self.client = Client(address, timeout="10s")
            except (OSError, ValueError) as exc:
                raise SweepSpecError(f"--scheduler {address}: cannot reach a Dask scheduler ({exc}); start one with "
                                     "`dask scheduler` and workers with `dask worker ADDRESS` (docs/sweeps.md)") from None
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                        dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        self.address = self.client.scheduler.address
        self.client.run(_import_models)  # each worker's one-time imports, before the first point's clock starts

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, dict[str, Any] | BaseException]]:
        """(task, result) as each finishes; a task Dask gave up on (e.g. KilledWorker) yields its exception."""
        from distributed import as_completed

        by_key = {}
        futures = []
        threads = max(1, sum(self.client.nthreads().values()))
        size = max(1, min(MAX_GROUP, -(-len(tasks) // (8 * threads))))  # >= 8 tasks per worker thread to balance
        for group in group_tasks(tasks, size):
            # named by the points' content keys: the scheduler never runs the same group twice at once
            name = hashlib.sha256("".join(t.key for t in group).encode()).hexdigest()
            fut = self.client.submit(run_points, [(t.design, t.workload) for t in group], key=f"sweep-{name}",
                                     pure=False)
            by_key[fut.key] = group
            futures.append(fut)
        try:
            # with_results: the results come back with the completion notice, not in a round trip per task
            for fut, outs in as_completed(futures, with_results=True, raise_errors=False):
                group = by_key[fut.key]
                if fut.status == "error" or isinstance(outs, BaseException):  # lost to the cluster (KilledWorker),
                    outs = [fut.exception() if fut.status == "error" else outs] * len(group)  # not the model
                yield from zip(group, outs, strict=True)
                fut.release()
        finally:
            for fut in futures:
                fut.cancel()

    def close(self) -> None:
        """Disconnect (and stop the LocalCluster if this executor started it)."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class InlineExecutor:
    """Runs tasks one after another in this process (no Dask): for debugging and as the bench's peer."""

    address = "inline"

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, dict[str, Any] | BaseException]]:
        """(task, result) in order."""
        for t in tasks:
            yield t, run_point(t.design, t.workload)

    def close(self) -> None:
        """Nothing to release."""


# ---- progress -------------------------------------------------------------------------------------------------


class Progress:
    """A rich progress bar on stderr: points done, points/s, and the best design so far."""

    def __init__(self, total: int, enabled: bool, label: str):
        self.enabled = enabled
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                TextColumn("{task.fields[best]}"), console=Console(stderr=True), transient=False)
        self.task = self.bar.add_task(label, total=total, rate="", best="")
        self.bar.start()

    def grow(self, total: int) -> None:
        """Raise the total (adaptive rounds)."""
        if self.enabled:
            self.bar.update(self.task, total=total)

    def update(self, done: int, rate: float, best: str) -> None:
        """Show `done` points, the rate and the best so far."""
        if self.enabled:
            self.bar.update(self.task, completed=done, rate=f"{rate:.1f} points/s", best=best)

    def close(self) -> None:
        """Stop drawing."""
        if self.enabled:
            self.bar.stop()


# ---- the sweep ------------------------------------------------------------------------------------------------


@dataclass
class SweepSummary:
    """What a sweep did; the `--json` output."""

    name: str
    db: str
    strategy: str
    scheduler: str
    design_points: int  # distinct design points of the sweep
    results: int  # (point, workload) results the sweep holds
    computed: int  # computed in this run
    reused: int  # found in the database (resume, or shared with another sweep)
    errors: int  # results recorded with an error
    lost: int  # tasks the cluster gave up on (not recorded; a rerun retries them)
    invalid_skipped: int
    seconds: float
    points_per_s: float  # computed results per second of this run's wall time
    frontier: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain-dict form."""
        return asdict(self)


def best_row(rows: list[dict[str, Any]], spec: SweepSpec) -> dict[str, Any] | None:
    """The feasible result with the best value of the first frontier objective."""
    metric = METRICS[spec.frontier[0]]
    ok = [r for r in rows if feasible(r, spec.constraints) and r.get(metric.name) is not None]
    if not ok:
        return None
    return (max if metric.maximize else min)(ok, key=lambda r: r[metric.name])


def frontier_rows(rows: list[dict[str, Any]], spec: SweepSpec) -> list[dict[str, Any]]:
    """Rows on the Pareto frontier of the spec's objectives (per workload), with their params and objectives."""
    ranks = rank_rows(rows, spec.frontier, spec.constraints)
    out = []
    for r, rank in zip(rows, ranks, strict=True):
        if rank == 0:
            out.append({"design": r["design_name"], "workload": r["workload"], "params": r["params"],
                        **{m: r[m] for m in METRICS}})
    first = METRICS[spec.frontier[0]]
    return sorted(out, key=lambda f: f[first.name], reverse=first.maximize)


def _describe(row: dict[str, Any] | None, metric: str) -> str:
    if row is None:
        return "best: —"
    m = METRICS[metric]
    return f"best {metric} {row[metric]:.4g} {m.unit}: {row['design_name']}"


def _summary_row(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"design": row["design_name"], "workload": row["workload"], "params": row["params"],
            **{m: row[m] for m in METRICS}}


def run_sweep(spec: SweepSpec, db_path: str | Path, *, scheduler: str | None = None, workers: int = DEFAULT_WORKERS,
              progress: bool = False, executor: Any = None,
              on_result: Callable[[dict[str, Any]], None] | None = None) -> SweepSummary:
    """Run (or resume) `spec`, storing results in `db_path`; returns the summary with the frontier.

    scheduler: None for a LocalCluster of `workers` processes, "inline" for this process, else a Dask address.
    """
    t0 = time.perf_counter()
    own = executor is None
    if own:  # before the database: an unreachable scheduler leaves no file behind
        executor = InlineExecutor() if scheduler == "inline" else DaskExecutor(scheduler, workers)
    try:
        db = ResultsDB(db_path)
    except BaseException:
        if own:
            executor.close()
        raise
    spec_text = Path(spec.path).read_text() if Path(spec.path).is_file() else ""
    constraints = [{"metric": c.metric, "min": c.low, "max": c.high} for c in spec.constraints]
    state = {"computed": 0, "reused": 0, "errors": 0, "lost": 0, "done": 0}
    bar = Progress(0, progress, f"sweep {spec.name}")
    rows_cache: list[dict[str, Any]] = []

    def run_batch(indices: list[tuple[int, ...]]) -> None:
        tasks = make_tasks(spec, indices)
        have = db.done(t.key for t in tasks)
        db.link(spec.name, have)
        state["reused"] += len(have)
        state["done"] += len(have)
        todo = [t for t in tasks if t.key not in have]
        rows_cache[:] = db.rows(spec.name)
        best = best_row(rows_cache, spec)
        for task, out in executor.run(todo):
            if isinstance(out, BaseException):
                state["lost"] += 1
                continue
            row = result_row(task, out)
            db.record(spec.name, row)
            state["computed"] += 1
            state["done"] += 1
            state["errors"] += row["status"] == "error"
            flat = {**row, **{m: v["value"] for m, v in row["metrics"].items()}}
            rows_cache.append(flat)
            if feasible(flat, spec.constraints):
                best = best_row([r for r in (best, flat) if r is not None], spec)
            if on_result:
                on_result(flat)
            rate = state["computed"] / max(time.perf_counter() - t0, 1e-9)
            bar.update(state["done"], rate, _describe(best, spec.frontier[0]))

    try:
        db.begin_sweep(spec.name, spec.path, spec_text, spec.strategy, spec.frontier, constraints)
        if spec.strategy == "adaptive":
            _adaptive(spec, run_batch, lambda: rows_cache, bar)
        else:
            points = spec.initial_points()
            bar.grow(len(points) * len(spec.workloads))
            run_batch(points)
        if state["lost"] == 0:
            db.finish_sweep(spec.name)
        rows = db.rows(spec.name)
    finally:
        bar.close()
        if own:
            executor.close()
        db.close()
    seconds = time.perf_counter() - t0
    return SweepSummary(
        spec.name, str(db_path), spec.strategy, executor.address,
        design_points=len({tuple(sorted(r["params"].items())) for r in rows}),
        results=len(rows), computed=state["computed"], reused=state["reused"], errors=state["errors"],
        lost=state["lost"], invalid_skipped=len(spec.invalid), seconds=seconds,
        points_per_s=state["computed"] / seconds if seconds else 0.0,
        frontier=frontier_rows(rows, spec), best=_summary_row(best_row(rows, spec)))


def _neighbours(spec: SweepSpec, index: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    for axis, p in enumerate(spec.parameters):
        for step in (-1, 1):
            j = index[axis] + step
            if 0 <= j < len(p.values):
                yield index[:axis] + (j,) + index[axis + 1:]


def _index_of(spec: SweepSpec, names: list[str], params: dict[str, Any]) -> tuple[int, ...] | None:
    """Grid index of a stored point's params (None if it was stored under other parameters)."""
    try:
        return tuple(spec.parameters[a].values.index(params[n]) for a, n in enumerate(names))
    except (KeyError, ValueError):
        return None


def _adaptive(spec: SweepSpec, run_batch: Callable[[list[tuple[int, ...]]], None],
              rows: Callable[[], list[dict[str, Any]]], bar: Progress) -> None:
    """Seeded random start, then rounds of the frontier's untried neighbours (see the module docstring)."""
    valid = spec.valid_grid()
    budget = min(spec.points or len(valid), len(valid))
    rng = random.Random(spec.seed)
    tried: set[tuple[int, ...]] = set()
    invalid = set(spec.invalid)
    names = [p.name for p in spec.parameters]

    def run(batch: list[tuple[int, ...]]) -> None:
        tried.update(batch)
        bar.grow(len(tried) * len(spec.workloads))
        run_batch(batch)

    run(sorted(rng.sample(valid, max(1, budget // 4))))
    round_size = max(1, budget // 8)
    while len(tried) < budget:
        current = rows()
        ranks = rank_rows(current, spec.frontier, spec.constraints)
        best_rank: dict[tuple[int, ...], int] = {}
        for r, rank in zip(current, ranks, strict=True):
            if rank is None:
                continue
            index = _index_of(spec, names, r["params"])
            if index is not None:
                best_rank[index] = min(rank, best_rank.get(index, rank))
        candidates: dict[tuple[int, ...], int] = {}
        for index, rank in sorted(best_rank.items(), key=lambda kv: (kv[1], kv[0])):
            for nb in _neighbours(spec, index):
                if nb not in tried and nb not in invalid and nb not in candidates:
                    candidates[nb] = rank
        want = min(round_size, budget - len(tried))
        ordered = sorted(candidates, key=lambda i: (candidates[i], rng.random()))
        batch = ordered[:want]
        if len(batch) < want:
            rest = [i for i in valid if i not in tried and i not in candidates]
            batch += rng.sample(rest, min(want - len(batch), len(rest)))
        if not batch:
            break
        run(sorted(batch))
