"""The instruction decoder, generated from the ISA table (`isa.instructions`), never re-typed.

`Decoder` slices a 128-bit word into one output per (instruction, field) of the table, named
`<mnemonic>_<field>` (header fields once, as `<field>`), plus `is_<mnemonic>` one-hot opcode flags
and `valid`. Every width, offset and signedness comes from the table's `Field` entries.
"""
from amaranth import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa.instructions import HEADER_FIELDS, INSTRUCTIONS, OPCODE_BITS, WORD_BITS


def _shape(f):
    return signed(f.width) if f.signed else unsigned(f.width)


def decoder_signature() -> dict:
    """Port map of the generated decoder."""
    ports = {"word": In(WORD_BITS), "valid": Out(1)}
    for f in HEADER_FIELDS:
        ports[f.name] = Out(_shape(f))
    for ins in INSTRUCTIONS.values():
        ports[f"is_{ins.mnemonic}"] = Out(1)
        for f in ins.fields:
            ports[f"{ins.mnemonic}_{f.name}"] = Out(_shape(f))
    return ports


def field_slice(word, f):
    """The Amaranth value of field `f` in `word` (sign-extended when the field is signed)."""
    bits = word[f.lsb:f.lsb + f.width]
    return bits.as_signed() if f.signed else bits


class Decoder(wiring.Component):
    """Combinational decoder of one instruction word into every field of the ISA table."""

    def __init__(self):
        super().__init__(decoder_signature())

    def elaborate(self, platform):
        m = Module()
        opcode = self.word[:OPCODE_BITS]
        for f in HEADER_FIELDS:
            m.d.comb += getattr(self, f.name).eq(field_slice(self.word, f))
        known = 0
        for ins in INSTRUCTIONS.values():
            hit = opcode == ins.opcode
            known = known | hit
            m.d.comb += getattr(self, f"is_{ins.mnemonic}").eq(hit)
            for f in ins.fields:
                m.d.comb += getattr(self, f"{ins.mnemonic}_{f.name}").eq(field_slice(self.word, f))
        m.d.comb += self.valid.eq(known)
        return m


def decode_fields(word, mnemonic: str) -> dict:
    """Field name -> Amaranth value for one instruction of the table, sliced straight from `word`."""
    ins = INSTRUCTIONS[mnemonic]
    return {f.name: field_slice(word, f) for f in ins.all_fields}


def opcode_of(mnemonic: str) -> int:
    """The opcode of an instruction, from the table."""
    return INSTRUCTIONS[mnemonic].opcode
