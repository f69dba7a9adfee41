"""argparse types for numeric options: finite numbers within a range, rejected by argparse with exit code 2.

The bounds are `isa.fields.Spec`s, the same description the design file's fields use.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from isa.fields import Spec


def spec_type(spec: Spec) -> Callable[[str], float | int]:
    """An argparse `type=` that parses a finite number (an integer for kind "int") within `spec`."""
    integer = spec.kind == "int"

    def parse(text: str) -> float | int:
        try:
            value: float | int = int(text, 10) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'an integer' if integer else 'a number'}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number; allowed {spec.rule()}")
        if not spec.admits(value):
            raise argparse.ArgumentTypeError(f"{text!r} is out of range; allowed {spec.rule()}")
        return value

    parse.__name__ = "integer" if integer else "number"  # argparse names the type in some messages
    return parse


POSITIVE = spec_type(Spec("number", 0, math.inf, lo_open=True, hi_open=True))
NON_NEGATIVE = spec_type(Spec("number", 0, math.inf, hi_open=True))
MARGIN = spec_type(Spec("number", 0, 1, hi_open=True))  # gross margin: price = cost / (1 - margin)
COUNT = spec_type(Spec("int", 1, math.inf, hi_open=True))  # a number of things: units, cycles, sizes
SEED = spec_type(Spec("int", 0, 2**63 - 1))
