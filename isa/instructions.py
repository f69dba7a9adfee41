"""The instruction set as one declarative table: fields (lsb, width, signedness), opcodes, queues, semantics.

Everything else (encoder, decoder, assembler, disassembler, docs/isa.md, the RTL decoder) is generated
from `INSTRUCTIONS`. Every instruction is one 128-bit word; bits [3:0] are the opcode and bits [7:4] the
four dependency-token flags, common to all instructions.
"""
from __future__ import annotations

from dataclasses import dataclass

WORD_BITS = 128
WORD_BYTES = WORD_BITS // 8
OPCODE_BITS = 4
QUEUES = ("load", "compute", "store")  # FINISH is handled by fetch and goes to no queue


@dataclass(frozen=True)
class Field:
    """One bit field of an instruction word: bits [lsb + width - 1 : lsb]."""

    name: str
    lsb: int
    width: int
    doc: str
    signed: bool = False
    kind: str = "int"  # "int" (number), "flag" (1 bit, written as a bare word), "enum" (mnemonic suffix)
    choices: tuple[str, ...] = ()  # for kind "enum": value i is choices[i]

    @property
    def msb(self) -> int:
        """Highest bit of the field."""
        return self.lsb + self.width - 1

    @property
    def min(self) -> int:
        """Smallest encodable value."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        """Largest encodable value."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1


@dataclass(frozen=True)
class Instruction:
    """One opcode: its mnemonic, the queue fetch dispatches it to, its fields and what it does."""

    mnemonic: str
    opcode: int
    queue: str | None  # None: handled by fetch (FINISH)
    fields: tuple[Field, ...]  # the fields after the common header (opcode and token flags)
    semantics: str
    timing: str

    @property
    def all_fields(self) -> tuple[Field, ...]:
        """Header fields followed by this instruction's own fields."""
        return HEADER_FIELDS + self.fields

    @property
    def enum_field(self) -> Field | None:
        """The field written as the mnemonic suffix (`load.sp`, `vec.add`), if any."""
        return next((f for f in self.fields if f.kind == "enum"), None)

    def field(self, name: str) -> Field:
        """The field called `name`."""
        for f in self.all_fields:
            if f.name == name:
                return f
        raise KeyError(name)


TOKEN_FLAGS = ("pop_prev", "pop_next", "push_prev", "push_next")
HEADER_FIELDS = (
    Field("opcode", 0, OPCODE_BITS, "operation code"),
    Field("pop_prev", 4, 1, "wait for and take a token from the previous unit before issue", kind="flag"),
    Field("pop_next", 5, 1, "wait for and take a token from the next unit before issue", kind="flag"),
    Field("push_prev", 6, 1, "give a token to the previous unit at completion", kind="flag"),
    Field("push_next", 7, 1, "give a token to the next unit at completion", kind="flag"),
)

MEMORIES = ("sp", "acc")  # scratchpad (input dtype rows), accumulator (accumulator dtype rows)

# Vector operations on accumulator rows: value i of the `op` field is VECTOR_OPS[i].
VECTOR_OPS = ("add", "sub", "mul", "max", "min", "shr", "shl", "relu", "requant", "exp2", "recip", "sqrt")
VECTOR_UNARY = frozenset({"relu", "exp2", "recip", "sqrt"})  # ignore src2 and imm
VECTOR_SHIFT_IMM = frozenset({"shr", "shl", "requant"})  # take the shift amount from imm only
VECTOR_INT_ONLY = frozenset({"shr", "shl"})
VECTOR_SPECIAL = frozenset({"exp2", "recip", "sqrt"})  # need design.vector.special_functions

_DMA_FIELDS = (
    Field("mem", 8, 1, "on-chip memory: sp = scratchpad, acc = accumulator", kind="enum", choices=MEMORIES),
    Field("narrow", 9, 1, "STORE from acc only: convert accumulator values to the input dtype "
          "(int32 -> int8 saturating; fp32 -> bf16/fp16 round to nearest even)", kind="flag"),
    Field("sram", 10, 20, "first on-chip row"),
    Field("dram", 30, 32, "DRAM byte address of the first row"),
    Field("stride", 62, 24, "DRAM bytes from one row to the next"),
    Field("rows", 86, 12, "rows transferred between DRAM and SRAM"),
    Field("cols", 98, 12, "elements per row (1..dim); the rest of each on-chip row is zero on LOAD"),
    Field("pad", 110, 8, "LOAD only: zero rows written after the transferred rows"),
)

INSTRUCTIONS: dict[str, Instruction] = {}


def _add(ins: Instruction) -> None:
    bits = [0] * (WORD_BITS + 64)
    for f in ins.all_fields:
        for b in range(f.lsb, f.lsb + f.width):
            assert bits[b] == 0, f"{ins.mnemonic}.{f.name} overlaps another field at bit {b}"
            bits[b] = 1
        assert f.msb < WORD_BITS, f"{ins.mnemonic}.{f.name} does not fit the word"
    INSTRUCTIONS[ins.mnemonic] = ins


_add(Instruction(
    "load", 1, "load", _DMA_FIELDS,
    semantics="for r < rows: SRAM[mem][sram + r][0:cols] = DRAM[dram + r*stride : +cols elements]; "
              "SRAM[mem][sram + r][cols:dim] = 0; then rows sram+rows .. sram+rows+pad-1 are zeroed. "
              "Elements are the input dtype for sp, the accumulator dtype for acc.",
    timing="dram_latency + rows * ceil(cols * elem_bytes / bw) + pad cycles, holding the DRAM port "
           "when rows > 0; max(1, pad) cycles when rows = 0; 0 cycles with ideal memory. (Default DRAM rules; "
           "docs/timing.md section 7 has the simulator's outstanding requests and burst merging.)"))
_add(Instruction(
    "store", 2, "store", _DMA_FIELDS,
    semantics="for r < rows: DRAM[dram + r*stride : +cols elements] = SRAM[mem][sram + r][0:cols], "
              "converted to the input dtype when narrow is set (acc only); pad must be 0.",
    timing="dram_latency + rows * ceil(cols * dram_elem_bytes / bw) cycles holding the DRAM port; "
           "1 cycle when rows = 0; 0 cycles with ideal memory. (Default DRAM rules; docs/timing.md section 7 "
           "has the simulator's outstanding requests, burst merging and posted stores.)"))
_add(Instruction(
    "gemm", 3, "compute", (
        Field("accumulate", 8, 1, "add into the accumulator rows (else overwrite them)", kind="flag"),
        Field("preload", 9, 1, "weight-stationary only: load the rows x cols weight tile from b first "
              "(else reuse the weights held in the array)", kind="flag"),
        Field("a", 10, 18, "scratchpad row of the first streamed input row"),
        Field("b", 28, 18, "scratchpad row of the first B row (OS) or weight row (WS)"),
        Field("c", 46, 16, "accumulator row of the first output row"),
        Field("k", 62, 16, "streamed rows: the reduction length (OS) or output rows (WS), >= 1"),
        Field("repeat", 78, 8, "extra iterations: the GEMM runs repeat + 1 times; iteration i uses "
              "a + i*sa, b + i*sb, c + i*sc"),
        Field("sa", 86, 14, "a stride per iteration (rows)"),
        Field("sb", 100, 14, "b stride per iteration (rows)"),
        Field("sc", 114, 14, "c stride per iteration (rows)"),
    ),
    semantics="OS (output-stationary), per iteration: for r < ROWS, j < COLS: "
              "ACC[c + r][j] (+)= sum_{t < k} SP[a + t][r] * SP[b + t][j]  (a holds A transposed). "
              "WS (weight-stationary), per iteration: W[i][j] = SP[b + i][j] for i < ROWS, j < COLS "
              "(loaded when preload is set); for t < k, j < COLS: ACC[c + t][j] (+)= "
              "sum_{i < ROWS} SP[a + t][i] * W[i][j]. Accumulator columns >= COLS are left unchanged.",
    timing="per iteration, latency L and pipeline occupancy O (O = L without tile overlap): "
           "OS: L = k + ROWS + COLS - 2, O = max(k, ROWS); "
           "WS: L = P + k + ROWS + COLS - 2 with P = ROWS if preload else 0, O = P + k."))
_add(Instruction(
    "vec", 4, "compute", (
        Field("op", 8, 4, "vector operation", kind="enum", choices=VECTOR_OPS),
        Field("use_imm", 12, 1, "second operand is imm (else accumulator rows from src2)", kind="flag"),
        Field("dst", 13, 16, "first accumulator row written"),
        Field("src", 29, 16, "first accumulator row read"),
        Field("src2", 45, 16, "first accumulator row of the second operand"),
        Field("rows", 61, 12, "rows processed, >= 1"),
        Field("imm", 73, 32, "immediate: int32, or fp32 bits on floating-point designs", signed=True),
    ),
    semantics="for r < rows: ACC[dst + r][:] = op(ACC[src + r][:], imm if use_imm else ACC[src2 + r][:]) over "
              "all dim elements. Integer: add/sub/mul wrap to int32; shr = (x + 2^(s-1)) >> s arithmetic "
              "(round half up, s = imm, s = 0: x); shl wraps; relu = max(x, 0); requant = shr then saturate "
              "to [-128, 127]. Float (fp32): IEEE add/sub/mul/max/min, relu, requant = round to the input dtype "
              "(bf16/fp16, nearest even), exp2/recip/sqrt need a special-function unit.",
    timing="rows * ceil(dim / lanes) cycles; issues only after every earlier compute instruction completed."))
_add(Instruction(
    "finish", 15, None, (),
    semantics="end of program: fetch stops; the program is done when every earlier instruction has completed.",
    timing="retires in cycle max(dispatch cycle, last busy cycle of any unit)."))

OPCODES: dict[int, Instruction] = {ins.opcode: ins for ins in INSTRUCTIONS.values()}

__all__ = ["Field", "Instruction", "INSTRUCTIONS", "OPCODES", "HEADER_FIELDS", "TOKEN_FLAGS", "WORD_BITS",
           "WORD_BYTES", "OPCODE_BITS", "QUEUES", "MEMORIES", "VECTOR_OPS", "VECTOR_UNARY", "VECTOR_SHIFT_IMM",
           "VECTOR_INT_ONLY", "VECTOR_SPECIAL"]
