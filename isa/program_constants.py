"""Names every assembly program may use without defining them: the design's sizes and the DRAM regions.

One source for `workbench asm`, `workbench sim run` and `workbench rtl run` (examples/programs/README.md).
"""
from __future__ import annotations

from isa.design import Design

IN_ADDR, OUT_ADDR, IN_BYTES = 0, 16384, 16384  # DRAM regions of the example programs' default image
DESIGN_CONSTANT_NAMES = ("DIM", "ROWS", "COLS", "SP_HALF", "ACC_HALF", "IN", "OUT")


def design_constants(design: Design) -> dict[str, int]:
    """The predefined constants for programs written for `design` (a file's own `.equ` wins)."""
    values = {"DIM": design.dim, "ROWS": design.matrix.rows, "COLS": design.matrix.cols,
              "SP_HALF": design.scratchpad_rows // 2, "ACC_HALF": design.accumulator_rows // 2,
              "IN": IN_ADDR, "OUT": OUT_ADDR}
    assert tuple(values) == DESIGN_CONSTANT_NAMES
    return values
