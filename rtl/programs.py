"""Example programs: design constants for assembly text, and the default DRAM image generator."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from isa.assembler import assemble
from isa.design import Design
from isa.encoding import Instr
from isa.files import read_bytes, read_text
from isa.program_constants import IN_ADDR, IN_BYTES, design_constants

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "programs"


def assemble_for(design: Design, text: str, path: str = "<string>") -> list[Instr]:
    """Assemble `text` with the design constants defined first (the file's own `.equ` lines win)."""
    return assemble(text, path, design_constants(design))


def load_program(design: Design, path: str | Path) -> list[Instr]:
    """An assembly file (`.s`) or a binary program (any other suffix) for `design`."""
    path = Path(path)
    if path.suffix in (".s", ".asm"):
        return assemble_for(design, read_text(path, "assembly program"), str(path))
    from isa.encoding import from_bytes

    return from_bytes(read_bytes(path, "binary program"))


def dram_image(design: Design, seed: int = 0) -> np.ndarray:
    """The default DRAM image of the examples: IN_BYTES seeded random bytes at IN, zeros after."""
    rng = np.random.default_rng(seed)
    image = np.zeros(min(design.memory.dram_bytes, IN_ADDR + IN_BYTES), dtype=np.uint8)
    image[IN_ADDR:IN_ADDR + IN_BYTES] = rng.integers(0, 256, IN_BYTES, dtype=np.uint8)
    return image


def example_programs() -> list[Path]:
    """The shipped example programs."""
    return sorted(EXAMPLES.glob("*.s"))
