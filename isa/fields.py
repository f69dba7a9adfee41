"""What a field of a design file accepts, and the one check of a numeric field against it.

Both the architecture sections (`isa.design`) and the workbench's [cost], [power] and [reference] tables
(`workbench.design_tables`) describe their fields with `Spec` and check numbers with `check_number`, so a
design file's errors read the same in every section.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from isa.errors import UserError


@dataclass(frozen=True)
class Spec:
    """A field's kind ("int", "number", "str", or a workbench table kind), its bounds and a line of help."""

    kind: str
    lo: float = 0.0
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    pow2: bool = False
    doc: str = ""

    def rule(self) -> str:
        """The allowed range as the error message states it: `1..1024` or `[0, 1)`."""
        if self.hi == math.inf:
            text = f"{'>' if self.lo_open else '>='} {self.lo:g}"
        elif not (self.lo_open or self.hi_open):
            text = f"{self.lo:g}..{self.hi:g}"
        else:
            text = f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        return text + (" and a power of two" if self.pow2 else "")

    def admits(self, value: float) -> bool:
        """True if the finite `value` lies within the bounds (and is a power of two where required)."""
        low_ok = value > self.lo if self.lo_open else value >= self.lo
        high_ok = value < self.hi if self.hi_open else value <= self.hi
        return low_ok and high_ok and not (self.pow2 and int(value) & (int(value) - 1))


def is_number(value: Any) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_bool(where: str, name: str, value: Any, error: type[UserError] = UserError) -> bool:
    """`value` if it is a TOML boolean; else `error` naming the field (0/1 or "yes" are not accepted)."""
    if not isinstance(value, bool):
        raise error(f"{where}: field '{name}' = {value!r} must be true or false")
    return value


def check_number(where: str, name: str, value: Any, spec: Spec,
                 error: type[UserError] = UserError) -> int | float:
    """`value` if it is a finite number of the spec's kind within its bounds; else `error` naming the field."""
    integer = spec.kind == "int"
    if not is_number(value) or (integer and not isinstance(value, int)):
        raise error(f"{where}: field '{name}' = {value!r} must be {'an integer' if integer else 'a number'}")
    if not math.isfinite(value):
        raise error(f"{where}: field '{name}' = {value!r} must be a finite number; allowed {spec.rule()}")
    if not spec.admits(value):
        raise error(f"{where}: field '{name}' = {value!r} is out of range; allowed {spec.rule()}")
    return value
