"""Encoding: table consistency, encode/decode round trips, rejection of invalid words."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isa.encoding import EncodingError, decode, encode, from_bytes, make, to_bytes
from isa.instructions import INSTRUCTIONS, OPCODES, WORD_BITS, WORD_BYTES


def test_fields_do_not_overlap_and_fit_the_word():
    for ins in INSTRUCTIONS.values():
        used = 0
        for f in ins.all_fields:
            mask = ((1 << f.width) - 1) << f.lsb
            assert not used & mask, f"{ins.mnemonic}.{f.name}"
            assert f.msb < WORD_BITS
            used |= mask
    assert len(OPCODES) == len(INSTRUCTIONS)
    assert 0 not in OPCODES


@st.composite
def instructions(draw):
    ins = draw(st.sampled_from(list(INSTRUCTIONS.values())))
    args = {}
    for f in ins.all_fields[1:]:
        hi = len(f.choices) - 1 if f.kind == "enum" else f.max
        args[f.name] = draw(st.integers(f.min, hi))
    word = ins.opcode
    for f in ins.all_fields[1:]:
        word |= (args[f.name] & ((1 << f.width) - 1)) << f.lsb
    return ins, args, word


@settings(max_examples=300, deadline=None)
@given(instructions())
def test_decode_encode_round_trip(case):
    ins, args, word = case
    instr = decode(word)
    assert instr.mnemonic == ins.mnemonic
    assert instr.args == args
    assert encode(instr) == word


@settings(max_examples=300, deadline=None)
@given(st.integers(0, (1 << WORD_BITS) - 1))
def test_every_decodable_word_re_encodes_identically(word):
    try:
        instr = decode(word)
    except EncodingError:
        return
    assert encode(instr) == word


def test_reserved_bits_unknown_opcode_and_bad_enum_are_rejected():
    finish = encode(make("finish"))
    with pytest.raises(EncodingError, match="reserved"):
        decode(finish | (1 << 100))
    with pytest.raises(EncodingError, match="unknown opcode 0"):
        decode(0)
    vec = encode(make("vec.add", rows=1))
    op = INSTRUCTIONS["vec"].field("op")
    with pytest.raises(EncodingError, match="choices"):
        decode(vec | (15 << op.lsb))


def test_make_checks_ranges_and_names():
    with pytest.raises(EncodingError, match="out of range"):
        make("gemm", k=1 << 16)
    with pytest.raises(EncodingError, match="no field"):
        make("gemm", q=1)
    with pytest.raises(EncodingError, match="suffix"):
        make("load", rows=1)
    assert make("vec.sub", imm=-5)["imm"] == -5


def test_binary_image_round_trip_and_errors():
    prog = [make("load.sp", rows=2, cols=3, stride=8, push_next=1), make("gemm", k=4), make("finish")]
    data = to_bytes(prog)
    assert len(data) == 3 * WORD_BYTES
    assert from_bytes(data) == prog
    with pytest.raises(EncodingError, match="multiple"):
        from_bytes(data[:-1])
    with pytest.raises(EncodingError, match="pc 1"):
        from_bytes(data[:WORD_BYTES] + bytes(WORD_BYTES))
