"""Assembler and disassembler for the text syntax, driven by the instruction table.

Syntax, one instruction per line (commas between operands are optional):

    ; a comment (also `#`)
    .equ TILE 8                  ; a named constant
    start:                       ; a label: the index of the next instruction
    load.sp sram=0 dram=0x100 stride=TILE rows=TILE cols=8 push_next
    gemm a=0 b=TILE c=0 k=TILE accumulate pop_prev push_next
    vec.requant dst=0 src=0 rows=8 use_imm imm=7
    finish

Fields are `name=value` (value: an integer, a constant, a label, `+ - * //` and parentheses, or a float
literal such as `1.5`, stored as fp32 bits); flags are bare names; missing fields are 0.
"""
from __future__ import annotations

import re
import struct
from collections.abc import Mapping

from isa.encoding import EncodingError, Instr, format_instr, from_bytes, make, to_bytes
from isa.errors import UserError
from isa.instructions import INSTRUCTIONS

__all__ = ["AssemblyError", "assemble", "assemble_to_bytes", "disassemble", "format_instr"]


class AssemblyError(UserError):
    """A syntax or range error in assembly text; the message starts with file:line:column."""


class _UndefinedName(ValueError):
    def __init__(self, name: str):
        super().__init__(f"undefined name {name!r}")
        self.name = name


def _undefined_hint(name: str, constants: Mapping[str, int] | None) -> str:
    """Where names come from, for an undefined-name error."""
    from isa.program_constants import DESIGN_CONSTANT_NAMES

    hint = f"; define it with '.equ {name} VALUE' or as a label '{name}:'"
    if constants:
        return hint + f" (the design constants here are {', '.join(constants)})"
    if name in DESIGN_CONSTANT_NAMES:
        return hint + f", or assemble for a design, which predefines {', '.join(DESIGN_CONSTANT_NAMES)}"
    return hint


_TOKEN = re.compile(r"\s*(?:(?P<num>0[xX][0-9a-fA-F_]+|0[bB][01_]+|\d[\d_]*)|(?P<name>[A-Za-z_][\w.]*)"
                    r"|(?P<op>//|[-+*()]))")
_FLOAT = re.compile(r"^[-+]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+)$")


def _eval(expr: str, symbols: dict[str, int]) -> int:
    """Evaluate an integer expression with + - * // and parentheses over constants and labels."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"unexpected {expr[pos:].strip()[:1]!r} in {expr!r}")
        kind = m.lastgroup or "op"
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    i = 0

    def atom() -> int:
        nonlocal i
        if i >= len(tokens):
            raise ValueError(f"incomplete expression {expr!r}")
        kind, text = tokens[i]
        i += 1
        if kind == "num":
            return int(text.replace("_", ""), 0)
        if kind == "name":
            if text not in symbols:
                raise _UndefinedName(text)
            return symbols[text]
        if text == "-":
            return -atom()
        if text == "+":
            return atom()
        if text == "(":
            v = sum_()
            if i >= len(tokens) or tokens[i][1] != ")":
                raise ValueError(f"missing ')' in {expr!r}")
            i += 1
            return v
        raise ValueError(f"unexpected {text!r} in {expr!r}")

    def product() -> int:
        nonlocal i
        v = atom()
        while i < len(tokens) and tokens[i][1] in ("*", "//"):
            op = tokens[i][1]
            i += 1
            rhs = atom()
            if op == "//" and rhs == 0:
                raise ValueError("division by zero")
            v = v * rhs if op == "*" else v // rhs
        return v

    def sum_() -> int:
        nonlocal i
        v = product()
        while i < len(tokens) and tokens[i][1] in ("+", "-"):
            op = tokens[i][1]
            i += 1
            v = v + product() if op == "+" else v - product()
        return v

    value = sum_()
    if i != len(tokens):
        raise ValueError(f"unexpected {tokens[i][1]!r} in {expr!r}")
    return value


def _strip_comment(line: str) -> str:
    for mark in (";", "#"):
        cut = line.find(mark)
        if cut >= 0:
            line = line[:cut]
    return line


def _words(line: str) -> list[tuple[int, str]]:
    """Operands of a line with their 1-based columns.

    Commas separate operands; so does whitespace, except inside parentheses or next to an operator
    or `=`, so `b = (B - 1) * 2` stays one operand.
    """
    words: list[tuple[int, str]] = []
    start, depth, i, n = None, 0, 0, len(line)
    ops = "=+-*/("
    while i < n:
        ch = line[i]
        if ch == "," and depth == 0:
            if start is not None:
                words.append((start + 1, line[start:i].strip()))
            start = None
        elif ch.isspace():
            j = i
            while j < n and line[j].isspace():
                j += 1
            if start is not None and depth == 0 and j < n and line[j] not in ops + ")," \
                    and line[i - 1] not in ops:
                words.append((start + 1, line[start:i].strip()))
                start = None
            i = j
            continue
        else:
            if start is None:
                start = i
            depth += (ch == "(") - (ch == ")")
        i += 1
    if start is not None:
        words.append((start + 1, line[start:].strip()))
    return words


def assemble(text: str, path: str = "<string>", constants: Mapping[str, int] | None = None) -> list[Instr]:
    """Assemble text into instructions; errors raise AssemblyError naming path:line:column.

    `constants` are names defined before the first line (e.g. `isa.program_constants.design_constants`);
    the file's own `.equ` lines and labels override them.
    """
    lines = text.splitlines()
    symbols: dict[str, int] = dict(constants or {})
    defined: set[str] = set()  # names the file itself defines (a predefined constant may be redefined)
    count = 0
    # Pass 1: labels and constants, so later lines may refer to them.
    for ln, raw in enumerate(lines, 1):
        line = _strip_comment(raw)
        col = len(line) - len(line.lstrip()) + 1
        body = line.strip()
        while (m := re.match(r"([A-Za-z_]\w*)\s*:", body)):
            name = m.group(1)
            if name in defined:
                raise AssemblyError(f"{path}:{ln}:{col}: label {name!r} defined twice")
            symbols[name] = count
            defined.add(name)
            col += m.end() + (len(body) - len(body[m.end():].lstrip()) - m.end())
            body = body[m.end():].lstrip()
        if not body:
            continue
        if body.startswith(".equ"):
            parts = body.split(None, 2)
            if len(parts) != 3 or not re.fullmatch(r"[A-Za-z_]\w*", parts[1]):
                raise AssemblyError(f"{path}:{ln}:{col}: expected '.equ NAME VALUE'")
            try:
                symbols[parts[1]] = _eval(parts[2], symbols)
            except _UndefinedName as exc:
                raise AssemblyError(f"{path}:{ln}:{col + body.find(parts[2])}: {exc}"
                                    f"{_undefined_hint(exc.name, constants)}") from None
            except ValueError as exc:
                raise AssemblyError(f"{path}:{ln}:{col + body.find(parts[2])}: {exc}") from None
            defined.add(parts[1])
            continue
        if body.startswith("."):
            raise AssemblyError(f"{path}:{ln}:{col}: unknown directive {body.split()[0]!r}; known: .equ")
        count += 1
    # Pass 2: instructions.
    program: list[Instr] = []
    for ln, raw in enumerate(lines, 1):
        line = _strip_comment(raw)
        while (m := re.match(r"\s*[A-Za-z_]\w*\s*:", line)):
            line = " " * m.end() + line[m.end():]
        if not line.strip() or line.strip().startswith("."):
            continue
        words = _words(line)
        col0, mnemonic = words[0]
        base = mnemonic.partition(".")[0].lower()
        spec = INSTRUCTIONS.get(base)
        if spec is None:
            raise AssemblyError(f"{path}:{ln}:{col0}: unknown instruction {mnemonic!r}; "
                                f"known: {', '.join(INSTRUCTIONS)}")
        values: dict[str, int] = {}
        for col, word in words[1:]:
            key, eq, value = (s.strip() for s in word.partition("="))
            key = key.lower()
            try:
                field = spec.field(key)
            except KeyError:
                names = [f.name for f in spec.all_fields[1:] if f.kind != "enum"]
                raise AssemblyError(f"{path}:{ln}:{col}: {base} has no field {key!r}; "
                                    f"fields: {', '.join(names)}") from None
            if key in values:
                raise AssemblyError(f"{path}:{ln}:{col}: field {key!r} given twice")
            if field.kind == "flag":
                if eq and value not in ("0", "1"):
                    raise AssemblyError(f"{path}:{ln}:{col}: flag {key!r} takes no value (write just {key})")
                values[key] = int(value) if eq else 1
                continue
            if field.kind == "enum":
                raise AssemblyError(f"{path}:{ln}:{col}: {key!r} is written as a suffix: "
                                    f"{', '.join(base + '.' + c for c in field.choices)}")
            if not eq:
                raise AssemblyError(f"{path}:{ln}:{col}: field {key!r} needs a value ({key}=...)")
            after = word.split("=", 1)[1]
            vcol = col + word.index("=") + 1 + len(after) - len(after.lstrip())
            try:
                if _FLOAT.match(value):
                    v = struct.unpack("<i", struct.pack("<f", float(value)))[0]
                else:
                    v = _eval(value, symbols)
            except _UndefinedName as exc:
                raise AssemblyError(f"{path}:{ln}:{vcol}: {exc}{_undefined_hint(exc.name, constants)}") from None
            except (ValueError, OverflowError) as exc:
                raise AssemblyError(f"{path}:{ln}:{vcol}: {exc}") from None
            if not field.min <= v <= field.max:
                raise AssemblyError(f"{path}:{ln}:{vcol}: {base} field {key} = {v} out of range "
                                    f"{field.min}..{field.max} ({field.width} bits)")
            values[key] = v
        try:
            program.append(make(mnemonic.lower(), **values))
        except EncodingError as exc:
            raise AssemblyError(f"{path}:{ln}:{col0}: {exc}") from None
    return program


def assemble_to_bytes(text: str, path: str = "<string>", constants: Mapping[str, int] | None = None) -> bytes:
    """Assemble text straight to a binary image."""
    return to_bytes(assemble(text, path, constants))


def disassemble(program: list[Instr] | bytes) -> str:
    """Assembly text of a program (instructions or a binary image), one line each, with the pc as comment."""
    instrs = from_bytes(program) if isinstance(program, (bytes, bytearray)) else program
    return "".join(f"{format_instr(i):<72} ; pc {pc}\n" for pc, i in enumerate(instrs))
