"""The DMA engines: DRAM -> SRAM (`LoadDMA`) and SRAM -> DRAM (`StoreDMA`), both on the core's one DRAM port.

The issue logic sends the DRAM command when a DMA issues (it owns the port's timing); the engines move
the data: LOAD writes row r in the cycle its last DRAM beat arrives (beat i of a command issued in
cycle s arrives in s + lat + i), then its pad rows one per cycle; STORE reads row r in cycle
s + lat + r*B - 1 and drives its B beats in s + lat + r*B + j.
"""
from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa.instructions import WORD_BITS
from rtl.array import ACC_BITS
from rtl.decoder import decode_fields
from rtl.issue import dram_beats
from rtl.params import DC, DD, DP, DR, DS, DT, ROW_BYTES, CoreParams, T
from rtl.signatures import dram_read_beat, dram_write_beat, sram_read, sram_write


class LoadDMA(wiring.Component):
    """DRAM -> SRAM: assembles each row from its beats and writes it when the last beat arrives; then pad rows."""

    def __init__(self, p: CoreParams):
        self.p = p
        super().__init__({
            "issue": In(1), "word": In(WORD_BITS), "dram": In(dram_read_beat(p.bw)),
            "sp": Out(sram_write(8 * p.dim, p.sp_rows)), "acc": Out(sram_write(ACC_BITS * p.dim, p.acc_rows)),
            "dram_read_bytes": Out(ROW_BYTES), "scratchpad_write_bytes": Out(range(p.dim + 1)),
            "accumulator_write_bytes": Out(range(4 * p.dim + 1)),
        })

    def elaborate(self, platform):
        p = self.p
        m = Module()
        f = decode_fields(self.word, "load")
        wr_en, wr_mem, wr_addr = Signal(), Signal(), Signal(DS)
        wr_data_sp, wr_data_acc = Signal(8 * p.dim), Signal(ACC_BITS * p.dim)
        mem, row, rows_left, pad_left, cols = Signal(), Signal(DS), Signal(DR), Signal(DP), Signal(DC)
        beat, nbeats = Signal(range(p.max_beats + 1)), Signal(range(p.max_beats + 1))
        buf_bytes = p.max_beats * p.bw
        buf = Signal(8 * buf_bytes)
        eb4 = f["mem"] == 1
        row_bytes = Mux(eb4, f["cols"] << 2, f["cols"])
        # Queued (N > 1): a command with rows arrives while the previous one may write its last row; it only
        # sets the registers (its first beat comes next cycle), after the previous one's statements.
        starts = [self.issue & (f["rows"] == 0), self.issue & (f["rows"] != 0)] if p.queued else [self.issue]
        for nth, start in enumerate(starts):
            with m.If(start):
                m.d.sync += [mem.eq(f["mem"]), cols.eq(f["cols"]), beat.eq(0), nbeats.eq(dram_beats(row_bytes, p))]
                with m.If(f["rows"] != 0):
                    m.d.sync += [row.eq(f["sram"]), rows_left.eq(f["rows"]), pad_left.eq(f["pad"])]
                with m.Elif(f["pad"] != 0):  # pad rows only: the first one in the issue cycle
                    m.d.comb += [wr_en.eq(1), wr_mem.eq(f["mem"]), wr_addr.eq(f["sram"])]
                    m.d.sync += [row.eq(f["sram"] + 1), rows_left.eq(0), pad_left.eq(f["pad"] - 1)]
            if nth:
                break
            with m.Elif(rows_left != 0):
                full = Signal(8 * buf_bytes)
                m.d.comb += full.eq(buf)
                with m.Switch(beat):
                    for j in range(p.max_beats):
                        with m.Case(j):
                            m.d.comb += full[8 * p.bw * j:8 * p.bw * (j + 1)].eq(self.dram.data)
                with m.If(self.dram.valid):
                    m.d.sync += buf.eq(full)
                    with m.If(beat + 1 == nbeats):
                        m.d.comb += [wr_en.eq(1), wr_mem.eq(mem), wr_addr.eq(row),
                                     self.dram_read_bytes.eq(Mux(mem, cols << 2, cols))]
                        m.d.sync += [beat.eq(0), row.eq(row + 1), rows_left.eq(rows_left - 1)]
                        for e in range(p.dim):
                            keep = e < cols
                            m.d.comb += wr_data_sp[8 * e:8 * e + 8].eq(Mux(keep, full[8 * e:8 * e + 8], 0))
                            if 4 * e + 4 <= buf_bytes:
                                m.d.comb += wr_data_acc[32 * e:32 * e + 32].eq(Mux(keep, full[32 * e:32 * e + 32], 0))
                    with m.Else():
                        m.d.sync += beat.eq(beat + 1)
            with m.Elif(pad_left != 0):
                m.d.comb += [wr_en.eq(1), wr_mem.eq(mem), wr_addr.eq(row)]
                m.d.sync += [row.eq(row + 1), pad_left.eq(pad_left - 1)]
        to_sp, to_acc = wr_en & (wr_mem == 0), wr_en & (wr_mem == 1)
        m.d.comb += [self.sp.en.eq(to_sp), self.sp.addr.eq(wr_addr), self.sp.data.eq(wr_data_sp),
                     self.acc.en.eq(to_acc), self.acc.addr.eq(wr_addr), self.acc.data.eq(wr_data_acc),
                     self.scratchpad_write_bytes.eq(Mux(to_sp, p.dim, 0)),
                     self.accumulator_write_bytes.eq(Mux(to_acc, 4 * p.dim, 0))]
        return m


class StoreDMA(wiring.Component):
    """SRAM -> DRAM: reads row r in cycle s + lead + r*B - 1 and drives its B beats from s + lead + r*B.

    lead = `p.store_lead`: the round trip `lat`, or 1 for a posted store (its data then travels lat - 1 cycles).
    """

    def __init__(self, p: CoreParams):
        self.p = p
        super().__init__({
            "issue": In(1), "word": In(WORD_BITS), "issue_beats": In(range(p.max_beats + 1)),
            "issue_row_bytes": In(ROW_BYTES),
            "sp": Out(sram_read(8 * p.dim, p.sp_rows)), "acc": Out(sram_read(ACC_BITS * p.dim, p.acc_rows)),
            "dram": Out(dram_write_beat(p.bw)),
            "dram_write_bytes": Out(ROW_BYTES), "scratchpad_read_bytes": Out(ROW_BYTES),
            "accumulator_read_bytes": Out(ROW_BYTES),
        })

    def elaborate(self, platform):
        p = self.p
        m = Module()
        f = decode_fields(self.word, "store")
        lead = p.store_lead  # cycles from the issue to the first beat: lat, or 1 for a posted store
        rd_en, rd_mem, rd_addr = Signal(), Signal(), Signal(DS)
        mem, narrow = Signal(), Signal()
        busy = Signal()
        tau = Signal(T)  # cycles since issue (the issue cycle is 0)
        next_read = Signal(T)
        rows_read, rows_sent = Signal(DR), Signal(DR)
        rows = Signal(DR)
        sram = Signal(DS)
        nbeats = Signal(range(p.max_beats + 1))
        beat = Signal(range(p.max_beats + 1))
        row_bytes = Signal(ROW_BYTES)
        cols = Signal(DC)
        addr, stride = Signal(DD), Signal(DT)
        buf_bytes = p.max_beats * p.bw
        rowreg = Signal(8 * buf_bytes)
        if p.queued:  # the beats and row bytes of the delayed command, from its word
            issue_row_bytes = Mux((f["mem"] == 1) & ~f["narrow"], f["cols"] << 2, f["cols"])
            issue_beats = dram_beats(issue_row_bytes, p)
        else:
            issue_row_bytes, issue_beats = self.issue_row_bytes, self.issue_beats
        starts = self.issue & (f["rows"] != 0)
        with m.If(starts):
            m.d.sync += [busy.eq(1), tau.eq(1), mem.eq(f["mem"]), narrow.eq(f["narrow"]), rows.eq(f["rows"]),
                         sram.eq(f["sram"]), nbeats.eq(issue_beats), row_bytes.eq(issue_row_bytes),
                         cols.eq(f["cols"]), addr.eq(f["dram"]), stride.eq(f["stride"]), beat.eq(0),
                         rows_sent.eq(0)]
            if lead == 1:  # row 0 is read in the issue cycle
                m.d.comb += [rd_en.eq(1), rd_mem.eq(f["mem"]), rd_addr.eq(f["sram"])]
                m.d.sync += [rows_read.eq(1), next_read.eq(lead - 1 + issue_beats)]
            else:
                m.d.sync += [rows_read.eq(0), next_read.eq(lead - 1)]
        with m.Elif(busy):
            m.d.sync += tau.eq(tau + 1)
            with m.If((tau == next_read) & (rows_read != rows)):
                m.d.comb += [rd_en.eq(1), rd_mem.eq(mem), rd_addr.eq(sram + rows_read)]
                m.d.sync += [rows_read.eq(rows_read + 1), next_read.eq(next_read + nbeats)]
        m.d.comb += [self.sp.en.eq(rd_en & (rd_mem == 0)), self.sp.addr.eq(rd_addr),
                     self.acc.en.eq(rd_en & (rd_mem == 1)), self.acc.addr.eq(rd_addr)]
        # Packed bytes of the row just read.
        packed = Signal(8 * buf_bytes)
        for e in range(p.dim):
            v = self.acc.data[32 * e:32 * e + 32].as_signed()
            sat = Mux(v > 127, 127, Mux(v < -128, -128, v))[:8]
            with m.If(mem == 0):
                m.d.comb += packed[8 * e:8 * e + 8].eq(self.sp.data[8 * e:8 * e + 8])
            with m.Elif(narrow):
                m.d.comb += packed[8 * e:8 * e + 8].eq(sat)
            with m.Else():
                if 32 * e + 32 <= 8 * buf_bytes:
                    m.d.comb += packed[32 * e:32 * e + 32].eq(self.acc.data[32 * e:32 * e + 32])
        sending = busy & (tau >= lead) & (rows_sent != rows)
        cur = Mux(beat == 0, packed, rowreg)
        out = self.dram
        with m.If(sending):
            with m.If(beat == 0):
                m.d.sync += rowreg.eq(packed)
            m.d.comb += [out.valid.eq(1), out.addr.eq(addr + beat * p.bw)]
            with m.Switch(beat):
                for j in range(p.max_beats):
                    with m.Case(j):
                        m.d.comb += out.data.eq(cur[8 * p.bw * j:8 * p.bw * (j + 1)])
            left = row_bytes - beat * p.bw
            m.d.comb += out.len.eq(Mux(left > p.bw, p.bw, left))
            with m.If(beat + 1 == nbeats):
                m.d.sync += [beat.eq(0), rows_sent.eq(rows_sent + 1), addr.eq(addr + stride)]
                eb = Mux((mem == 1) & ~narrow, 4, 1)
                m.d.comb += [self.dram_write_bytes.eq(cols * eb),
                             self.scratchpad_read_bytes.eq(Mux(mem == 0, cols, 0)),
                             self.accumulator_read_bytes.eq(Mux(mem == 1, cols << 2, 0))]
                with m.If(rows_sent + 1 == rows):
                    m.d.sync += busy.eq(0)
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
        if p.queued:  # a command may start in the cycle of the previous one's last beat: its registers win
            with m.If(starts):
                m.d.sync += [busy.eq(1), beat.eq(0), rows_sent.eq(0), addr.eq(f["dram"])]
        return m
