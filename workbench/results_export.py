"""Filtering stored results (`--where "area_mm2<=100"`) and exporting them as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from typing import Any

from isa.errors import UserError
from workbench.sweep_metrics import METRICS

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "!=": lambda a, b: a != b,
    "==": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}
PLAIN_FIELDS = ("design_name", "workload", "status")
STATUSES = ("ok", "error")  # what a stored result's status can be


class FilterError(UserError):
    """A `--where` filter that cannot be applied; the message names it and the fix."""


def row_field(row: dict[str, Any], name: str) -> Any:
    """A metric, a plain column (design_name, workload, status) or a varied design field (matrix.rows)."""
    if name in METRICS or name in PLAIN_FIELDS:
        return row.get(name)
    return (row.get("params") or {}).get(name)


def parse_filter(text: str, known_params: set[str]) -> Callable[[dict[str, Any]], bool]:
    """`FIELD OP VALUE` (OP one of <= >= < > == !=) as a row predicate."""
    m = re.fullmatch(r"\s*([A-Za-z_][\w.]*)\s*(<=|>=|!=|==|<|>)\s*(.+?)\s*", text)
    if not m:
        raise FilterError(f"--where {text!r}: expected FIELD OP VALUE, e.g. \"area_mm2<=100\" or \"matrix.rows==32\"")
    name, op, raw = m.groups()
    if name not in METRICS and name not in PLAIN_FIELDS and name not in known_params:
        fields = [*METRICS, *PLAIN_FIELDS, *sorted(known_params)]
        raise FilterError(f"--where {text!r}: unknown field {name!r}; fields: {', '.join(fields)}")
    try:
        value: Any = float(raw)
    except ValueError:
        value = raw.strip("\"'")
        if name in METRICS:  # a metric compared with text would silently compare strings: "area_mm2<<3"
            raise FilterError(f"--where {text!r}: {name} is a number, but {raw!r} is not; "
                              f"e.g. \"{name}{op}100\"") from None
    if name == "status" and value not in STATUSES:  # a typo ("eror") would quietly match nothing
        raise FilterError(f"--where {text!r}: status is one of {', '.join(STATUSES)}")
    fn = _OPS[op]

    def keep(row: dict[str, Any]) -> bool:
        got = row_field(row, name)
        if got is None:
            return False
        try:
            return fn(float(got) if isinstance(value, float) else str(got), value)
        except (TypeError, ValueError):
            return False

    return keep


def flat_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows as flat records: key, names, the varied fields, each metric with its provenance, error."""
    params: list[str] = []
    for r in rows:
        for p in r.get("params") or {}:
            if p not in params:
                params.append(p)
    cols = ["key", "design_name", "workload", "status", *params]
    for m in METRICS:
        cols += [m, f"{m}_provenance"]
    cols += ["error", "eval_seconds", "eval_cpu_seconds", "worker"]
    out = []
    for r in rows:
        rec = {c: r.get(c) for c in ("key", "design_name", "workload", "status", "error", "eval_seconds", "eval_cpu_seconds", "worker")}
        rec.update({p: (r.get("params") or {}).get(p) for p in params})
        figures = r.get("figures") or {}
        for m, metric in METRICS.items():
            rec[m] = r.get(m)
            rec[f"{m}_provenance"] = figures.get(metric.figure, {}).get("provenance") if figures else None
        out.append(rec)
    return cols, out


def to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text of the rows (one column per varied field and per metric, with provenance columns)."""
    cols, recs = flat_rows(rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    writer.writerows(recs)
    return buf.getvalue()


def to_json(rows: list[dict[str, Any]]) -> str:
    """JSON text of the rows, every figure with its unit and provenance."""
    return json.dumps(rows, indent=1, default=str)
