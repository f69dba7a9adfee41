"""Sweep results in SQLite (WAL mode): one row per (design point, workload), keyed by a content hash.

The key hashes the design's architecture and tables (not its name), the workload's content and the
workbench version, so the same point in another sweep or a resumed sweep is found and never recomputed.
Each result is written in one transaction as it arrives: a killed client leaves whole rows or none.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from isa.design import Design
from isa.errors import UserError
from workbench import __version__
from workbench.sweep_metrics import METRICS

SCHEMA_VERSION = 1
_METRIC_COLUMNS = ", ".join(f"{m} REAL" for m in METRICS)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    design_name TEXT NOT NULL,
    workload TEXT NOT NULL,
    params TEXT NOT NULL,
    design TEXT NOT NULL,
    workload_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    error TEXT,
    figures TEXT,
    {_METRIC_COLUMNS},
    eval_seconds REAL,
    eval_cpu_seconds REAL,
    worker TEXT,
    version TEXT NOT NULL,
    created_utc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sweeps (
    name TEXT PRIMARY KEY,
    spec_path TEXT NOT NULL,
    spec_text TEXT NOT NULL,
    strategy TEXT NOT NULL,
    frontier TEXT NOT NULL,
    constraints TEXT NOT NULL,
    started_utc TEXT NOT NULL,
    finished_utc TEXT
);
CREATE TABLE IF NOT EXISTS sweep_points (
    sweep TEXT NOT NULL,
    key TEXT NOT NULL REFERENCES results(key),
    PRIMARY KEY (sweep, key)
);
"""


class ResultsDBError(UserError):
    """A results database that cannot be opened or was written by an incompatible version."""


def design_content(design: Design) -> dict[str, Any]:
    """The parts of a design that determine its results (everything but name, description and source)."""
    d = dataclasses.asdict(design)
    for k in ("name", "description", "source"):
        d.pop(k)
    if d.get("l2") is None:  # designs without [l2] keep the keys they had before the section existed
        d.pop("l2", None)
    return d


def point_key(design: Design, workload_key: dict[str, Any]) -> str:
    """SHA-256 of the design content, the workload content and the workbench version."""
    blob = json.dumps({"design": design_content(design), "workload": workload_key, "version": __version__},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class ResultsDB:
    """A results database file; use as a context manager or call close()."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise ResultsDBError(f"{self.path}: results database not found (write one with `workbench sweep SPEC --db FILE`)")
        try:
            self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process loses no commit
            self.conn.executescript(_SCHEMA)
            have = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise ResultsDBError(f"{self.path}: not a results database ({exc})") from None
        if have is None:
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(have[0]) != SCHEMA_VERSION:
            raise ResultsDBError(f"{self.path}: schema version {have[0]}, this workbench reads {SCHEMA_VERSION}; "
                                 "use a new --db file")

    def __enter__(self) -> ResultsDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def begin_sweep(self, name: str, spec_path: str, spec_text: str, strategy: str, frontier: Iterable[str],
                    constraints: list[dict[str, Any]]) -> None:
        """Record (or, when resuming, refresh) a sweep's spec."""
        self.conn.execute(
            "INSERT INTO sweeps (name, spec_path, spec_text, strategy, frontier, constraints, started_utc) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET spec_path=excluded.spec_path, "
            "spec_text=excluded.spec_text, strategy=excluded.strategy, frontier=excluded.frontier, "
            "constraints=excluded.constraints, finished_utc=NULL",
            (name, spec_path, spec_text, strategy, json.dumps(list(frontier)), json.dumps(constraints), _now()),
        )

    def finish_sweep(self, name: str) -> None:
        """Mark a sweep finished."""
        self.conn.execute("UPDATE sweeps SET finished_utc=? WHERE name=?", (_now(), name))

    def done(self, keys: Iterable[str]) -> set[str]:
        """The keys among `keys` that already have a result."""
        keys = list(keys)
        found: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            rows = self.conn.execute(f"SELECT key FROM results WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            found.update(r[0] for r in rows)
        return found

    def link(self, sweep: str, keys: Iterable[str]) -> None:
        """Make existing results (found by key) part of `sweep`."""
        with self.conn:
            self.conn.executemany("INSERT OR IGNORE INTO sweep_points VALUES (?, ?)", ((sweep, k) for k in keys))

    def record(self, sweep: str, row: dict[str, Any]) -> None:
        """Store one result and its sweep membership in a single transaction (a duplicate key is ignored)."""
        metrics = row.get("metrics") or {}
        cols = ["key", "design_name", "workload", "params", "design", "workload_key", "status", "error", "figures",
                *METRICS, "eval_seconds", "eval_cpu_seconds", "worker", "version", "created_utc"]
        values = [row["key"], row["design_name"], row["workload"], json.dumps(row["params"]),
                  json.dumps(row["design"], sort_keys=True), json.dumps(row["workload_key"], sort_keys=True),
                  row["status"], row.get("error"), json.dumps(row["figures"]) if row.get("figures") else None,
                  *(metrics.get(m, {}).get("value") for m in METRICS),
                  row.get("eval_seconds"), row.get("eval_cpu_seconds"), row.get("worker"), __version__, _now()]
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(f"INSERT OR IGNORE INTO results ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                              values)
            self.conn.execute("INSERT OR IGNORE INTO sweep_points VALUES (?, ?)", (sweep, row["key"]))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def sweeps(self) -> list[dict[str, Any]]:
        """Every sweep with its point counts."""
        rows = self.conn.execute(
            "SELECT s.*, COUNT(r.key) AS points, SUM(r.status = 'ok') AS ok, SUM(r.status = 'error') AS errors "
            "FROM sweeps s LEFT JOIN sweep_points p ON p.sweep = s.name LEFT JOIN results r ON r.key = p.key "
            "GROUP BY s.name ORDER BY s.started_utc")
        return [dict(r) for r in rows]

    def rows(self, sweep: str | None = None) -> list[dict[str, Any]]:
        """Results (of one sweep, or all), JSON columns decoded, in insertion order."""
        if sweep is None:
            cur = self.conn.execute("SELECT * FROM results ORDER BY rowid")
        else:
            cur = self.conn.execute("SELECT r.* FROM results r JOIN sweep_points p ON p.key = r.key "
                                    "WHERE p.sweep = ? ORDER BY r.rowid", (sweep,))
        out = []
        for r in cur:
            d = dict(r)
            for k in ("params", "design", "workload_key", "figures"):
                d[k] = json.loads(d[k]) if d[k] else None
            out.append(d)
        return out

    def integrity_ok(self) -> bool:
        """SQLite's own check of the file."""
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
