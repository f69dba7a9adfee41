"""The DMA engines of a design with `dram_burst_merge` (docs/timing.md, section 7): rows contiguous in DRAM
(stride = row bytes) travel as one stream of beats, so one beat can finish (load) or start (store) several
rows, up to `p.dma_rows` (= bw: rows of one byte). Each engine then has that many SRAM ports and moves every
row in the cycle its bytes arrive or are due, which keeps the writes and reads inside the DMA's busy window
as in `rtl.dma`. A DMA whose rows are not contiguous gets one burst per row, as without the option.

Both engines see a DMA as a byte stream in which row r starts at `r * slot`: `slot` is the row's bytes when
the rows are merged, its whole burst (beats x bw) otherwise, so the bytes a burst carries past the end of a
row are skipped.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa.instructions import WORD_BITS
from rtl.array import ACC_BITS
from rtl.decoder import decode_fields
from rtl.issue import burst_beats, dram_beats
from rtl.params import DC, DD, DP, DR, DS, DT, ROW_BYTES, CoreParams, T
from rtl.signatures import dram_read_beat, dram_write_beat, sram_read, sram_write


def _place(value, offset, width: int):
    """`value` moved up by `offset` bytes inside `width` bytes (a left shift whose result stays `width` bytes wide)."""
    pad = Const(0, 8 * width)
    return Cat(pad, value, pad).bit_select(((width - offset) * 8).as_unsigned(), 8 * width)


def _or_all(values) -> object:
    """The bitwise OR of `values` (0 for none)."""
    out = 0
    for v in values:
        out = out | v
    return out


def _row_bytes(f, narrowed):
    """DRAM bytes of one row: int32 elements from the accumulator unless narrowed, int8 otherwise."""
    return Mux((f["mem"] == 1) & ~narrowed, f["cols"] << 2, f["cols"])


class BurstLoadDMA(wiring.Component):
    """DRAM -> SRAM: collects the stream's bytes and writes each row in the cycle its last byte arrives; then pad rows."""

    def __init__(self, p: CoreParams):
        self.p = p
        k = p.dma_rows
        super().__init__({
            "issue": In(1), "word": In(WORD_BITS), "dram": In(dram_read_beat(p.bw)),
            "sp": Out(sram_write(8 * p.dim, p.sp_rows)).array(k),
            "acc": Out(sram_write(ACC_BITS * p.dim, p.acc_rows)).array(k),
            "dram_read_bytes": Out(range(k * 4 * p.dim + 1)), "scratchpad_write_bytes": Out(range(k * p.dim + 1)),
            "accumulator_write_bytes": Out(range(k * 4 * p.dim + 1)),
        })

    def elaborate(self, platform):
        p = self.p
        m = Module()
        k, bw, row_max = p.dma_rows, p.bw, 4 * p.dim
        f = decode_fields(self.word, "load")
        buf_bytes = max(row_max - 1 + bw, p.max_beats * bw)  # a row's worth of bytes short of complete, plus a beat
        mem, row, rows_left, pad_left, cols = Signal(), Signal(DS), Signal(DR), Signal(DP), Signal(DC)
        rb, slot = Signal(ROW_BYTES), Signal(range(p.max_beats * bw + 1))
        fill = Signal(range(buf_bytes + 1))  # stream bytes held in `buf`, from the first row not yet written
        buf = Signal(8 * buf_bytes)
        row_bytes = _row_bytes(f, 0)
        en = [Signal(name=f"wr{i}_en") for i in range(k)]
        data = [Signal(8 * row_max, name=f"wr{i}_data") for i in range(k)]
        pad_row = Signal()  # write port 0 writes a zero pad row
        # Queued (N > 1): a command with rows arrives while the previous one may write its last rows; it only
        # sets the registers (its first beat comes next cycle), after the previous one's statements.
        pad_issue = self.issue & (f["rows"] == 0) if p.queued else self.issue  # may write a pad row now
        for nth, start in enumerate([pad_issue, self.issue & (f["rows"] != 0)] if p.queued else [pad_issue]):
            with m.If(start):
                merged = f["stride"] == row_bytes
                m.d.sync += [mem.eq(f["mem"]), cols.eq(f["cols"]), rb.eq(row_bytes), fill.eq(0),
                             slot.eq(Mux(merged, row_bytes, dram_beats(row_bytes, p) * bw))]
                with m.If(f["rows"] != 0):
                    m.d.sync += [row.eq(f["sram"]), rows_left.eq(f["rows"]), pad_left.eq(f["pad"])]
                with m.Elif(f["pad"] != 0):  # pad rows only: the first one in the issue cycle
                    m.d.comb += pad_row.eq(1)
                    m.d.sync += [row.eq(f["sram"] + 1), rows_left.eq(0), pad_left.eq(f["pad"] - 1)]
            if nth:
                break
            with m.Elif(rows_left != 0):
                full = Signal(8 * (buf_bytes + row_max))  # room to cut a whole row from any offset
                m.d.comb += full.eq(buf | _place(self.dram.data, fill, buf_bytes))
                total = fill + bw
                used = 0
                for i in range(k):
                    m.d.comb += [en[i].eq(self.dram.valid & (rows_left > i) & (i * slot + rb <= total)),
                                 data[i].eq(full >> (i * slot * 8))]
                    used = used + Mux(en[i], slot, 0)
                n = sum(en)
                with m.If(self.dram.valid):
                    m.d.sync += [row.eq(row + n), rows_left.eq(rows_left - n), fill.eq(total - used),
                                 buf.eq(full >> (used * 8))]
            with m.Elif(pad_left != 0):
                m.d.comb += pad_row.eq(1)
                m.d.sync += [row.eq(row + 1), pad_left.eq(pad_left - 1)]
        read_bytes, sp_bytes, acc_bytes = 0, 0, 0
        for i in range(k):
            wr_sp, wr_acc = Signal(8 * p.dim, name=f"wr{i}_sp"), Signal(ACC_BITS * p.dim, name=f"wr{i}_acc")
            for e in range(p.dim):  # bytes past the row's columns are zero-filled
                keep = e < cols
                m.d.comb += [wr_sp[8 * e:8 * e + 8].eq(Mux(keep, data[i][8 * e:8 * e + 8], 0)),
                             wr_acc[32 * e:32 * e + 32].eq(Mux(keep, data[i][32 * e:32 * e + 32], 0))]
            row_en = en[i] | pad_row if i == 0 else en[i]
            addr = Mux(pad_row, Mux(pad_issue, f["sram"], row), row + i) if i == 0 else row + i
            pad_mem = Mux(pad_issue, f["mem"], mem)
            to_sp = row_en & Mux(pad_row, pad_mem == 0, mem == 0)
            to_acc = row_en & Mux(pad_row, pad_mem == 1, mem == 1)
            sp, acc = self.sp[i], self.acc[i]
            m.d.comb += [sp.en.eq(to_sp), sp.addr.eq(addr), sp.data.eq(Mux(en[i], wr_sp, 0)),
                         acc.en.eq(to_acc), acc.addr.eq(addr), acc.data.eq(Mux(en[i], wr_acc, 0))]
            read_bytes = read_bytes + Mux(en[i], rb, 0)
            sp_bytes = sp_bytes + Mux(to_sp, p.dim, 0)
            acc_bytes = acc_bytes + Mux(to_acc, 4 * p.dim, 0)
        m.d.comb += [self.dram_read_bytes.eq(read_bytes), self.scratchpad_write_bytes.eq(sp_bytes),
                     self.accumulator_write_bytes.eq(acc_bytes)]
        return m


class BurstStoreDMA(wiring.Component):
    """SRAM -> DRAM: reads each row the cycle before the beat that carries its first byte, and drives one beat a
    cycle from `p.store_lead` cycles after the issue (the round trip, or 1 for a posted store)."""

    def __init__(self, p: CoreParams):
        self.p = p
        k = p.dma_rows
        super().__init__({
            "issue": In(1), "word": In(WORD_BITS),
            "sp": Out(sram_read(8 * p.dim, p.sp_rows)).array(k),
            "acc": Out(sram_read(ACC_BITS * p.dim, p.acc_rows)).array(k),
            "dram": Out(dram_write_beat(p.bw)),
            "dram_write_bytes": Out(range(p.bw + 1)), "scratchpad_read_bytes": Out(range(k * p.dim + 1)),
            "accumulator_read_bytes": Out(range(k * 4 * p.dim + 1)),
        })

    def elaborate(self, platform):
        p = self.p
        m = Module()
        k, bw, row_max, lead = p.dma_rows, p.bw, 4 * p.dim, p.store_lead
        f = decode_fields(self.word, "store")
        buf_bytes = bw + p.max_beats * bw  # bytes not yet sent plus the rows that arrive for the next beat
        busy, tau = Signal(), Signal(T)  # tau: cycles since the issue (the issue cycle is 0)
        mem, narrow, rows, sram, cols = Signal(), Signal(), Signal(DR), Signal(DS), Signal(DC)
        rb, slot = Signal(ROW_BYTES), Signal(range(p.max_beats * bw + 1))
        rows_read, arriving = Signal(DR), Signal(range(k + 1))  # arriving: rows read last cycle
        have = Signal(range(buf_bytes + 1))  # bytes in `buf`, from the next beat's first byte
        buf = Signal(8 * buf_bytes)
        beats_left = Signal(T)
        addr, row_addr, stride = Signal(DD), Signal(DD), Signal(DT)
        left = Signal(DR + ROW_BYTES)  # bytes left in the burst (one row's, or the merged rows')
        row_bytes = _row_bytes(f, f["narrow"])
        merged = f["stride"] == row_bytes
        starts = self.issue & (f["rows"] != 0)
        with m.If(starts):
            m.d.sync += [busy.eq(1), tau.eq(1), mem.eq(f["mem"]), narrow.eq(f["narrow"]), rows.eq(f["rows"]),
                         sram.eq(f["sram"]), cols.eq(f["cols"]), rb.eq(row_bytes),
                         slot.eq(Mux(merged, row_bytes, dram_beats(row_bytes, p) * bw)),
                         have.eq(0), buf.eq(0), addr.eq(f["dram"]), row_addr.eq(f["dram"]), stride.eq(f["stride"]),
                         beats_left.eq(burst_beats(f["rows"], row_bytes, f["stride"], dram_beats(row_bytes, p), p)),
                         left.eq(Mux(merged, f["rows"] * row_bytes, row_bytes))]
        with m.Elif(busy):
            m.d.sync += tau.eq(tau + 1)

        # The bytes of the next beat: what is left of `buf` and the rows read last cycle, each at its offset.
        packed = []
        for i in range(k):
            row_data = Signal(8 * row_max, name=f"rd{i}_packed")
            for e in range(p.dim):
                v = self.acc[i].data[32 * e:32 * e + 32].as_signed()
                sat = Mux(v > 127, 127, Mux(v < -128, -128, v))[:8]
                with m.If(mem == 0):
                    m.d.comb += row_data[8 * e:8 * e + 8].eq(self.sp[i].data[8 * e:8 * e + 8])
                with m.Elif(narrow):
                    m.d.comb += row_data[8 * e:8 * e + 8].eq(sat)
                with m.Else():
                    m.d.comb += row_data[32 * e:32 * e + 32].eq(self.acc[i].data[32 * e:32 * e + 32])
            masked = Signal(8 * row_max, name=f"rd{i}_masked")  # only the row's own bytes: the next row follows
            for b in range(row_max):
                m.d.comb += masked[8 * b:8 * b + 8].eq(Mux(b < rb, row_data[8 * b:8 * b + 8], 0))
            packed.append(masked)
        full = Signal(8 * (buf_bytes + row_max))
        m.d.comb += full.eq(buf | _or_all(Mux(arriving > i, _place(packed[i], have + i * slot, buf_bytes), 0)
                                          for i in range(k)))
        avail = have + arriving * slot
        sending = busy & (tau >= lead) & (beats_left != 0)
        have_next = Signal.like(have)
        out = self.dram
        with m.If(sending):
            m.d.comb += [out.valid.eq(1), out.addr.eq(addr), out.data.eq(full[:8 * bw]),
                         out.len.eq(Mux(left > bw, bw, left)), self.dram_write_bytes.eq(out.len),
                         have_next.eq(Mux(avail > bw, avail - bw, 0))]
            m.d.sync += [buf.eq(full >> (8 * bw)), beats_left.eq(beats_left - 1)]
            with m.If(left > bw):
                m.d.sync += [left.eq(left - bw), addr.eq(addr + bw)]
            with m.Else():  # the end of a row's burst: the next row starts at its own address
                m.d.sync += [left.eq(rb), row_addr.eq(row_addr + stride), addr.eq(row_addr + stride)]
            with m.If(beats_left == 1):
                m.d.sync += busy.eq(0)
        with m.Else():
            m.d.comb += have_next.eq(avail)
            m.d.sync += buf.eq(full)
        m.d.sync += have.eq(have_next)

        # Rows to read now for the next beat: those starting inside it (lead = 1: the first in the issue cycle).
        if lead == 1:
            reading = starts | busy
            cur = {"rows": Mux(starts, f["rows"], rows), "read": Mux(starts, 0, rows_read),
                   "sram": Mux(starts, f["sram"], sram), "mem": Mux(starts, f["mem"], mem),
                   "slot": Mux(starts, Mux(merged, row_bytes, dram_beats(row_bytes, p) * bw), slot),
                   "have": Mux(starts, 0, have_next), "cols": Mux(starts, f["cols"], cols)}
        else:
            reading = busy & (tau >= lead - 1)
            cur = {"rows": rows, "read": rows_read, "sram": sram, "mem": mem, "slot": slot, "have": have_next,
                   "cols": cols}
        rd = [Signal(name=f"rd{i}_en") for i in range(k)]
        sp_bytes, acc_bytes = 0, 0
        for i in range(k):
            m.d.comb += rd[i].eq(reading & (cur["read"] + i < cur["rows"]) & (cur["have"] + i * cur["slot"] < bw))
            a = cur["sram"] + cur["read"] + i
            m.d.comb += [self.sp[i].en.eq(rd[i] & (cur["mem"] == 0)), self.sp[i].addr.eq(a),
                         self.acc[i].en.eq(rd[i] & (cur["mem"] == 1)), self.acc[i].addr.eq(a)]
            sp_bytes = sp_bytes + Mux(self.sp[i].en, cur["cols"], 0)
            acc_bytes = acc_bytes + Mux(self.acc[i].en, cur["cols"] << 2, 0)
        n = sum(rd)
        m.d.sync += [rows_read.eq(Mux(starts & (lead != 1), 0, cur["read"] + n)), arriving.eq(n)]
        m.d.comb += [self.scratchpad_read_bytes.eq(sp_bytes), self.accumulator_read_bytes.eq(acc_bytes)]
        if p.queued:  # a command may start in the cycle of the previous one's last beat: its registers win
            with m.If(starts):
                m.d.sync += [busy.eq(1), have.eq(0), buf.eq(0), addr.eq(f["dram"]), row_addr.eq(f["dram"]),
                             beats_left.eq(burst_beats(f["rows"], row_bytes, f["stride"], dram_beats(row_bytes, p),
                                                       p)),
                             left.eq(Mux(merged, f["rows"] * row_bytes, row_bytes))]
        return m

