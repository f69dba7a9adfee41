"""SCALE-Sim's cycle convention, converted in exactly one place."""
from __future__ import annotations

__all__ = ["cycles_from_scalesim"]


def cycles_from_scalesim(total_cycles: int, stall_cycles: int) -> int:
    """Our cycle count for a SCALE-Sim run: its stall-free figure is a 0-based index, so add one."""
    return total_cycles - stall_cycles + 1
