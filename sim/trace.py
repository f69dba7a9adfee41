"""Perfetto / Chrome trace JSON: one complete ("X") event per instruction on its unit's track."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sim.units import UNIT_NAMES

__all__ = ["trace_event", "trace_document", "write_trace"]


def trace_event(unit: int, name: str, pc: int, start: int, duration: int) -> dict[str, Any]:
    """One complete event; timestamps are cycles (shown by the viewer as microseconds)."""
    return {"name": name, "ph": "X", "ts": start, "dur": duration, "pid": 1, "tid": unit,
            "args": {"pc": pc, "unit": UNIT_NAMES[unit]}}


def trace_document(events: list[dict[str, Any]], design_name: str) -> dict[str, Any]:
    """The whole trace: unit track names first, then the instruction events."""
    meta: list[dict[str, Any]] = [{"name": "process_name", "ph": "M", "pid": 1, "tid": 0,
                                   "args": {"name": f"accelerator {design_name} (1 us = 1 cycle)"}}]
    meta += [{"name": "thread_name", "ph": "M", "pid": 1, "tid": i, "args": {"name": n}}
             for i, n in enumerate(UNIT_NAMES)]
    return {"traceEvents": meta + events, "displayTimeUnit": "ns"}


def write_trace(path: str | Path, events: list[dict[str, Any]], design_name: str) -> None:
    """Write the trace JSON to `path`."""
    Path(path).write_text(json.dumps(trace_document(events, design_name)))
