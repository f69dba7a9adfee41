"""Assembler and disassembler: syntax, labels, constants, errors with line:column, round trips."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isa.assembler import AssemblyError, assemble, assemble_to_bytes, disassemble
from isa.encoding import make, to_bytes
from isa.instructions import INSTRUCTIONS

SOURCE = """\
; a small program
.equ T 8
.equ B  T * 2 + 1    # expressions
top:
  load.sp sram=0, dram=0x40, stride=T, rows=T, cols=8 push_next
  gemm a=0 b=(B - 1) c=0 k=T repeat=1 sb=T sc=T accumulate pop_prev
after: vec.shr dst=0 src=0 rows=8 imm=3
  vec.add dst=0 src=0 src2=top rows=1 use_imm imm=-7
  vec.mul dst=1 src=1 rows=1 use_imm imm=1.5
  store.acc sram=0 dram=256 stride=8 rows=8 cols=8 narrow
  finish
"""


def test_assembles_fields_labels_and_constants():
    prog = assemble(SOURCE)
    assert [i.mnemonic for i in prog] == ["load", "gemm", "vec", "vec", "vec", "store", "finish"]
    assert prog[0] == make("load.sp", dram=0x40, stride=8, rows=8, cols=8, push_next=1)
    assert prog[1]["b"] == 16 and prog[1]["accumulate"] == 1 and prog[1]["repeat"] == 1
    assert prog[3]["imm"] == -7 and prog[3]["src2"] == 0  # label `top` = instruction 0
    assert prog[4]["imm"] == 0x3FC00000  # 1.5 as fp32 bits


def test_disassembly_reassembles_to_identical_binary():
    binary = assemble_to_bytes(SOURCE)
    text = disassemble(binary)
    assert assemble_to_bytes(text) == binary
    assert disassemble(assemble(text)) == text


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_random_instructions_round_trip_through_text(data):
    prog = []
    for _ in range(data.draw(st.integers(1, 5))):
        ins = data.draw(st.sampled_from(list(INSTRUCTIONS.values())))
        args = {}
        name = ins.mnemonic
        for f in ins.all_fields[1:]:
            if f.kind == "enum":
                name += "." + data.draw(st.sampled_from(f.choices))
            else:
                args[f.name] = data.draw(st.integers(f.min, f.max))
        prog.append(make(name, **args))
    assert to_bytes(assemble(disassemble(prog))) == to_bytes(prog)


@pytest.mark.parametrize("text, where, message", [
    ("gemm k=8 zz=1", "1:10", "no field 'zz'"),
    ("\n  load.xx rows=1", "2:3", "suffix"),
    ("gemm k=70000", "1:8", "out of range 0..65535"),
    ("gemm k=(1+", "1:8", "incomplete"),
    ("frob a=1", "1:1", "unknown instruction 'frob'"),
    ("gemm k=NOPE", "1:8", "undefined name 'NOPE'"),
    ("gemm k", "1:6", "needs a value"),
    ("gemm accumulate=2", "1:6", "takes no value"),
    ("gemm k=1 k=2", "1:10", "given twice"),
    ("vec.add op=1", "1:9", "suffix"),
    (".foo 1", "1:1", "unknown directive"),
    ("x:\nx: finish", "2:1", "defined twice"),
])
def test_errors_name_line_and_column(text, where, message):
    with pytest.raises(AssemblyError) as err:
        assemble(text, path="prog.s")
    assert str(err.value).startswith(f"prog.s:{where}:"), str(err.value)
    assert message in str(err.value)
