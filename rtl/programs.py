"""Example programs: design constants for assembly text, and the default DRAM image generator."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from isa.assembler import assemble
from isa.design import Design
from isa.encoding import Instr

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "programs"
IN_ADDR, OUT_ADDR, IN_BYTES = 0, 16384, 16384


def design_constants(design: Design) -> dict[str, int]:
    """Constants every example program may use (examples/programs/README.md)."""
    return {"DIM": design.dim, "ROWS": design.matrix.rows, "COLS": design.matrix.cols,
            "SP_HALF": design.scratchpad_rows // 2, "ACC_HALF": design.accumulator_rows // 2,
            "IN": IN_ADDR, "OUT": OUT_ADDR}


def assemble_for(design: Design, text: str, path: str = "<string>") -> list[Instr]:
    """Assemble `text` with the design constants defined first (the file's own `.equ` lines win)."""
    head = "".join(f".equ {k} {v}\n" for k, v in design_constants(design).items())
    # The header adds lines: shift error line numbers back by assembling with a path note instead.
    try:
        return assemble(head + text, path)
    except ValueError as exc:
        msg = str(exc)
        prefix = f"{path}:"
        if msg.startswith(prefix):
            line, _, rest = msg[len(prefix):].partition(":")
            if line.isdigit():
                msg = f"{prefix}{int(line) - len(design_constants(design))}:{rest}"
        raise type(exc)(msg) from None


def load_program(design: Design, path: str | Path) -> list[Instr]:
    """An assembly file (`.s`) or a binary program (any other suffix) for `design`."""
    path = Path(path)
    if path.suffix in (".s", ".asm"):
        return assemble_for(design, path.read_text(), str(path))
    from isa.encoding import from_bytes

    return from_bytes(path.read_bytes())


def dram_image(design: Design, seed: int = 0) -> np.ndarray:
    """The default DRAM image of the examples: IN_BYTES seeded random bytes at IN, zeros after."""
    rng = np.random.default_rng(seed)
    image = np.zeros(min(design.memory.dram_bytes, IN_ADDR + IN_BYTES), dtype=np.uint8)
    image[IN_ADDR:IN_ADDR + IN_BYTES] = rng.integers(0, 256, IN_BYTES, dtype=np.uint8)
    return image


def example_programs() -> list[Path]:
    """The shipped example programs."""
    return sorted(EXAMPLES.glob("*.s"))
