"""Binary encoding of instructions, generated from the table in `isa.instructions`.

A word is a Python int of `WORD_BITS` bits; a program file is the words in order, each stored as
`WORD_BYTES` little-endian bytes. `encode(decode(w)) == w` for every valid word.
"""
from __future__ import annotations

from collections.abc import Iterable

from isa.errors import UserError
from isa.instructions import INSTRUCTIONS, OPCODE_BITS, OPCODES, WORD_BITS, WORD_BYTES, Instruction

__all__ = ["Instr", "EncodingError", "encode", "decode", "to_bytes", "from_bytes", "make", "format_instr", "OPCODE_BITS"]


class EncodingError(UserError):
    """A word or field value that the instruction set cannot represent."""


class Instr:
    """A decoded instruction: its table entry and a value for every field except the opcode."""

    __slots__ = ("spec", "args")

    def __init__(self, spec: Instruction, args: dict[str, int]):
        self.spec = spec
        self.args = args

    @property
    def mnemonic(self) -> str:
        """Base mnemonic (`load`, `gemm`, ...)."""
        return self.spec.mnemonic

    def __getitem__(self, name: str) -> int:
        return self.args[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Instr) and self.spec is other.spec and self.args == other.args

    def __hash__(self) -> int:
        return hash((self.spec.opcode, tuple(sorted(self.args.items()))))

    def __repr__(self) -> str:
        return f"Instr({self.text!r})"

    @property
    def text(self) -> str:
        """Assembly text of this instruction (the disassembler's spelling)."""
        return format_instr(self)


def format_instr(instr: Instr) -> str:
    """One instruction as assembly text: non-zero fields in table order, flags as bare names.

    It lives here, not in the assembler, so `Instr.text` needs no import back from the assembler.
    """
    spec = instr.spec
    head = spec.mnemonic
    parts: list[str] = []
    for f in spec.all_fields[1:]:
        v = instr.args.get(f.name, 0)
        if f.kind == "enum":
            head += "." + f.choices[v]
        elif f.kind == "flag":
            if v:
                parts.append(f.name)
        elif v:
            parts.append(f"{f.name}={v}")
    return " ".join([head, *parts])


# Per mnemonic spelling ("load.sp", "gemm"): the spec, the enum value and each field's (name, min, max).
_SPELLINGS: dict[str, tuple[Instruction, dict[str, int], tuple[tuple[str, int, int], ...]]] = {}
for _ins in INSTRUCTIONS.values():
    _limits = tuple((f.name, f.min, f.max) for f in _ins.all_fields[1:] if f.kind != "enum")
    _enum = _ins.enum_field
    for _choice in (_enum.choices if _enum else ("",)):
        _fixed = {_enum.name: _enum.choices.index(_choice)} if _enum else {}
        _SPELLINGS[_ins.mnemonic + ("." + _choice if _choice else "")] = (_ins, _fixed, _limits)


def make(mnemonic: str, **values: int | bool | str) -> Instr:
    """Build an instruction from keyword fields; missing fields are 0, enum fields take their choice name."""
    entry = _SPELLINGS.get(mnemonic)
    if entry is None:
        base, _, suffix = mnemonic.partition(".")
        spec = INSTRUCTIONS.get(base)
        if spec is None:
            raise EncodingError(f"unknown instruction {mnemonic!r}; known: {', '.join(INSTRUCTIONS)}")
        enum = spec.enum_field
        if enum is not None:
            raise EncodingError(f"{base} needs a suffix, one of {', '.join('.' + c for c in enum.choices)}")
        raise EncodingError(f"{base} takes no suffix (got .{suffix})")
    spec, fixed, limits = entry
    args = dict(fixed)
    for name, lo, hi in limits:
        v = values.pop(name, 0)
        if type(v) is not int:
            v = int(v)
        if not lo <= v <= hi:
            raise EncodingError(f"{spec.mnemonic}: field {name} = {v} out of range {lo}..{hi}")
        args[name] = v
    if values:
        names = sorted(f.name for f in spec.all_fields[1:])
        raise EncodingError(f"{spec.mnemonic} has no field {next(iter(values))!r}; fields: {', '.join(names)}")
    return Instr(spec, args)


def encode(instr: Instr) -> int:
    """The word of one instruction; raises EncodingError for a value that does not fit its field."""
    spec = instr.spec
    word = spec.opcode
    for f in spec.all_fields[1:]:
        v = instr.args.get(f.name, 0)
        if not f.min <= v <= f.max:
            raise EncodingError(f"{spec.mnemonic}: field {f.name} = {v} out of range {f.min}..{f.max}")
        word |= (v & ((1 << f.width) - 1)) << f.lsb
    return word


# Bits each opcode may use; any other bit set makes the word invalid (reserved bits must be zero).
_USED_MASK = {ins.opcode: sum(((1 << f.width) - 1) << f.lsb for f in ins.all_fields) for ins in INSTRUCTIONS.values()}


def decode(word: int) -> Instr:
    """The instruction of a word; raises EncodingError for an unknown opcode, reserved bits or a bad enum."""
    if not 0 <= word < (1 << WORD_BITS):
        raise EncodingError(f"word {word:#x} does not fit {WORD_BITS} bits")
    opcode = word & ((1 << OPCODE_BITS) - 1)
    spec = OPCODES.get(opcode)
    if spec is None:
        raise EncodingError(f"unknown opcode {opcode} in word {word:#034x}")
    if word & ~_USED_MASK[opcode]:
        raise EncodingError(f"{spec.mnemonic}: reserved bits set in word {word:#034x}")
    args: dict[str, int] = {}
    for f in spec.all_fields[1:]:
        v = (word >> f.lsb) & ((1 << f.width) - 1)
        if f.signed and v >> (f.width - 1):
            v -= 1 << f.width
        if f.kind == "enum" and v >= len(f.choices):
            raise EncodingError(f"{spec.mnemonic}: field {f.name} = {v} is not one of {len(f.choices)} choices")
        args[f.name] = v
    return Instr(spec, args)


def to_bytes(program: Iterable[Instr]) -> bytes:
    """Binary image of a program: each word as WORD_BYTES little-endian bytes."""
    return b"".join(encode(i).to_bytes(WORD_BYTES, "little") for i in program)


def from_bytes(data: bytes) -> list[Instr]:
    """Decode a binary image; its length must be a multiple of WORD_BYTES."""
    if len(data) % WORD_BYTES:
        raise EncodingError(f"binary program of {len(data)} bytes is not a multiple of {WORD_BYTES}-byte words")
    out = []
    for pc in range(len(data) // WORD_BYTES):
        word = int.from_bytes(data[pc * WORD_BYTES:(pc + 1) * WORD_BYTES], "little")
        try:
            out.append(decode(word))
        except EncodingError as exc:
            raise EncodingError(f"pc {pc}: {exc}") from None
    return out
