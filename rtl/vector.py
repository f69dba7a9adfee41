"""The vector unit: a sequencer streaming accumulator rows through `VectorALU`, one row per ceil(dim/lanes) cycles.

Row r of a `vec` issued in cycle s is computed and written in s + r*ceil(dim/lanes); its source rows
are read one cycle ahead (for row 0 while the instruction waits at the head of the compute queue).
"""
from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa.instructions import VECTOR_OPS, VECTOR_SHIFT_IMM, VECTOR_UNARY, WORD_BITS
from rtl.array import ACC_BITS
from rtl.decoder import decode_fields
from rtl.params import VA, VIMM, VOP, VR, CoreParams
from rtl.signatures import sram_read, sram_write

# Vector ops that never read src2 (unary, or shift amount from imm), in opcode order: a fixed order keeps
# the generated Verilog identical from run to run (iterating the frozensets follows the hash seed).
_ONE_SOURCE_OPS = tuple(i for i, name in enumerate(VECTOR_OPS) if name in VECTOR_UNARY | VECTOR_SHIFT_IMM)


def reads_src2(op, use_imm):
    """True when vector op `op` reads a second accumulator row (not an immediate, not a one-source op)."""
    two = ~use_imm
    for code in _ONE_SOURCE_OPS:
        two = two & (op != code)
    return two


class VectorALU(wiring.Component):
    """One accumulator row through the integer vector operations of the ISA table (dim elements at once)."""

    def __init__(self, dim: int):
        self.dim = dim
        super().__init__({"x": In(ACC_BITS * dim), "y_row": In(ACC_BITS * dim), "op": In(VOP),
                          "imm": In(signed(VIMM)), "use_imm": In(1), "out": Out(ACC_BITS * dim)})

    def elaborate(self, platform):
        m = Module()
        ops = {name: i for i, name in enumerate(VECTOR_OPS)}
        s = self.imm[:5]
        for e in range(self.dim):
            x = self.x[32 * e:32 * e + 32].as_signed()
            y = Mux(self.use_imm, self.imm, self.y_row[32 * e:32 * e + 32].as_signed())
            rnd = Mux(s == 0, 0, Const(1, unsigned(33)) << (s - 1)[:5])
            shr = Signal(signed(34), name=f"shr{e}")
            m.d.comb += shr.eq((x + rnd.as_signed()) >> s)
            r = Signal(signed(32), name=f"out{e}")
            with m.Switch(self.op):
                with m.Case(ops["add"]):
                    m.d.comb += r.eq((x + y)[:32])
                with m.Case(ops["sub"]):
                    m.d.comb += r.eq((x - y)[:32])
                with m.Case(ops["mul"]):
                    m.d.comb += r.eq((x * y)[:32])
                with m.Case(ops["max"]):
                    m.d.comb += r.eq(Mux(x > y, x, y))
                with m.Case(ops["min"]):
                    m.d.comb += r.eq(Mux(x < y, x, y))
                with m.Case(ops["shr"]):
                    m.d.comb += r.eq(shr[:32])
                with m.Case(ops["shl"]):
                    m.d.comb += r.eq((x << s)[:32])
                with m.Case(ops["relu"]):
                    m.d.comb += r.eq(Mux(x > 0, x, 0))
                with m.Case(ops["requant"]):
                    m.d.comb += r.eq(Mux(shr > 127, 127, Mux(shr < -128, -128, shr)))
                with m.Default():
                    m.d.comb += r.eq(x)
            m.d.comb += self.out[32 * e:32 * e + 32].eq(r)
        return m


class VectorUnit(wiring.Component):
    """Sequences a `vec` over its rows: source reads one cycle ahead, the ALU, and the destination write."""

    def __init__(self, p: CoreParams):
        self.p = p
        width = ACC_BITS * p.dim
        super().__init__({
            "issue": In(1), "head": In(WORD_BITS), "next_head": In(WORD_BITS),
            "src": Out(sram_read(width, p.acc_rows)), "src2": Out(sram_read(width, p.acc_rows)),
            "dst": Out(sram_write(width, p.acc_rows)),
            "vector_ops": Out(range(p.dim + 1)), "accumulator_read_bytes": Out(range(8 * p.dim + 1)),
            "accumulator_write_bytes": Out(range(4 * p.dim + 1)),
        })

    def elaborate(self, platform):
        p = self.p
        m = Module()
        vf = decode_fields(self.head, "vec")
        nf_v = decode_fields(self.next_head, "vec")
        issue_v = self.issue
        v_active = Signal()
        v_rows = Signal(VR)  # rows left after the current one
        v_wait = Signal(range(p.ch + 1))
        v_src, v_src2, v_dst = Signal(VA), Signal(VA), Signal(VA)
        v_opr, v_imm, v_useimm = Signal(VOP), Signal(signed(VIMM)), Signal()
        vr_valid = Signal()
        vr_src, vr_src2, vr_dst = Signal(VA), Signal(VA), Signal(VA)
        vr_left = Signal(VR)
        vr_op, vr_imm, vr_useimm = Signal(VOP), Signal(signed(VIMM)), Signal()
        with m.If(issue_v):
            m.d.comb += [vr_valid.eq(1), vr_src.eq(vf["src"]), vr_src2.eq(vf["src2"]), vr_dst.eq(vf["dst"]),
                         vr_left.eq(vf["rows"] - 1), vr_op.eq(vf["op"]), vr_imm.eq(vf["imm"]),
                         vr_useimm.eq(vf["use_imm"])]
            m.d.sync += [v_opr.eq(vf["op"]), v_imm.eq(vf["imm"]), v_useimm.eq(vf["use_imm"])]
        with m.Else():
            m.d.comb += [vr_valid.eq(v_active & (v_wait == 0)), vr_src.eq(v_src), vr_src2.eq(v_src2),
                         vr_dst.eq(v_dst), vr_left.eq(v_rows), vr_op.eq(v_opr), vr_imm.eq(v_imm),
                         vr_useimm.eq(v_useimm)]
        nv_active, nv_wait = Signal(), Signal(range(p.ch + 1))
        nv_src, nv_src2, nv_dst, nv_rows = Signal(VA), Signal(VA), Signal(VA), Signal(VR)
        m.d.comb += [nv_active.eq(v_active), nv_wait.eq(v_wait), nv_src.eq(v_src), nv_src2.eq(v_src2),
                     nv_dst.eq(v_dst), nv_rows.eq(v_rows)]
        with m.If(vr_valid):
            with m.If(vr_left != 0):
                m.d.comb += [nv_active.eq(1), nv_wait.eq(p.ch - 1), nv_src.eq(vr_src + 1), nv_src2.eq(vr_src2 + 1),
                             nv_dst.eq(vr_dst + 1), nv_rows.eq(vr_left - 1)]
            with m.Else():
                m.d.comb += nv_active.eq(0)
        with m.Elif(v_active & (v_wait != 0)):
            m.d.comb += nv_wait.eq(v_wait - 1)
        m.d.sync += [v_active.eq(nv_active), v_wait.eq(nv_wait), v_src.eq(nv_src), v_src2.eq(nv_src2),
                     v_dst.eq(nv_dst), v_rows.eq(nv_rows)]
        nv_row = nv_active & (nv_wait == 0)
        m.d.comb += [self.src.en.eq(1), self.src2.en.eq(1),
                     self.src.addr.eq(Mux(nv_row, nv_src, nf_v["src"])),
                     self.src2.addr.eq(Mux(nv_row, nv_src2, nf_v["src2"]))]
        m.submodules.alu = alu = VectorALU(p.dim)
        m.d.comb += [alu.x.eq(self.src.data), alu.y_row.eq(self.src2.data), alu.op.eq(vr_op), alu.imm.eq(vr_imm),
                     alu.use_imm.eq(vr_useimm)]
        m.d.comb += [self.dst.en.eq(vr_valid), self.dst.addr.eq(vr_dst), self.dst.data.eq(alu.out)]
        m.d.comb += [self.vector_ops.eq(Mux(vr_valid, p.dim, 0)),
                     self.accumulator_read_bytes.eq(Mux(vr_valid, Mux(reads_src2(vr_op, vr_useimm), 8 * p.dim,
                                                                       4 * p.dim), 0)),
                     self.accumulator_write_bytes.eq(Mux(vr_valid, 4 * p.dim, 0))]
        return m
