"""The matrix unit: the GEMM sequencer and the two datapaths around the systolic array (OS and WS).

One "step" per cycle in the array stage: OS streams row t of an iteration (t < k); WS first writes
weight row u (u < P) into the idle bank, then streams row t = u - P. Iteration i of a gemm issued in
cycle s starts in s + i*O. Scratchpad rows are read one cycle ahead of their step (for step 0 while the
gemm waits at the head of the compute queue; the read is transparent to a load's write in that cycle),
and each accumulator row is written (read-modify-write, the read one cycle ahead) in the very cycle
the array completes it.
"""
from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, Signature

from isa.instructions import WORD_BITS
from rtl.array import ACC_BITS, OSArray, WSArray
from rtl.decoder import decode_fields
from rtl.params import GA, GB, GC, GK, GR, GSA, GSB, GSC, CoreParams, T
from rtl.signatures import gemm_timing, sram_read, sram_write

TILE_IDS = 4  # tile ids in flight (OS: two overlapped tiles, double-buffered outputs by id parity)


def gemm_step(p: CoreParams) -> Signature:
    """The step in the array stage this cycle: iteration step `t` of `k`, tile id, base rows, flags."""
    return Signature({"valid": Out(1), "t": Out(GK + 1), "k": Out(GK + 1), "tid": Out(range(TILE_IDS)),
                      "preload_steps": Out(range(p.R + 1)), "a": Out(GA), "b": Out(GB), "c": Out(GC),
                      "accumulate": Out(1), "preload": Out(1)})


def gemm_ahead() -> Signature:
    """The step of the next cycle, for scratchpad reads one cycle ahead: `step` when there is one."""
    return Signature({"step": Out(1), "t": Out(GK + 1), "a": Out(GA), "b": Out(GB)})


class GemmSequencer(wiring.Component):
    """Walks a gemm's iterations (`repeat` + 1 of them, strides sa/sb/sc) one array step per cycle."""

    def __init__(self, p: CoreParams):
        self.p = p
        super().__init__({"issue": In(1), "head": In(WORD_BITS), "timing": In(gemm_timing(p)),
                          "step": Out(gemm_step(p)), "ahead": Out(gemm_ahead())})

    def elaborate(self, platform):
        p = self.p
        m = Module()
        gf = decode_fields(self.head, "gemm")
        issue_g = self.issue
        g_P, g_len = self.timing.preload, self.timing.steps
        g_active = Signal()
        g_t = Signal(GK + 1)
        g_k = Signal(GK + 1)
        g_Preg = Signal(range(p.R + 1))
        g_wait = Signal(T)
        g_gap = Signal(T)  # O - k of the running gemm
        g_iters = Signal(GR)  # iterations left after the current one
        g_a, g_b = Signal(GA), Signal(GB)
        g_c = Signal(GC)
        g_sa, g_sb, g_sc = Signal(GSA), Signal(GSB), Signal(GSC)
        g_accum = Signal()
        next_tid = Signal(range(TILE_IDS))
        g_tid = Signal(range(TILE_IDS))  # tile id of the running iteration

        st = self.step
        st_iters = Signal(GR)
        m.d.comb += [st.preload_steps.eq(Mux(issue_g, g_P, g_Preg)),
                     st.accumulate.eq(Mux(issue_g, gf["accumulate"], g_accum)),
                     st.preload.eq(Mux(issue_g, gf["preload"], st.preload_steps != 0))]
        with m.If(issue_g):
            m.d.comb += [st.valid.eq(1), st.t.eq(0), st.k.eq(g_len), st.tid.eq(next_tid), st.a.eq(gf["a"]),
                         st.b.eq(gf["b"]), st.c.eq(gf["c"]), st_iters.eq(gf["repeat"])]
        with m.Else():
            m.d.comb += [st.valid.eq(g_active & (g_wait == 0)), st.t.eq(g_t), st.k.eq(g_k),
                         st.tid.eq(Mux(g_t == 0, next_tid, g_tid)),
                         st.a.eq(g_a), st.b.eq(g_b), st.c.eq(g_c), st_iters.eq(g_iters)]
        with m.If(st.valid):
            m.d.sync += g_tid.eq(st.tid)
        with m.If(st.valid & (st.t == 0)):  # a new iteration (tile) starts
            m.d.sync += next_tid.eq(st.tid + 1)
        with m.If(issue_g):
            m.d.sync += [g_sa.eq(gf["sa"]), g_sb.eq(gf["sb"]), g_sc.eq(gf["sc"]), g_accum.eq(gf["accumulate"]),
                         g_gap.eq(self.timing.gap), g_k.eq(g_len), g_Preg.eq(g_P)]
        cur_sa = Mux(issue_g, gf["sa"], g_sa)
        cur_sb = Mux(issue_g, gf["sb"], g_sb)
        cur_sc = Mux(issue_g, gf["sc"], g_sc)
        cur_gap = Mux(issue_g, self.timing.gap, g_gap)
        # Next state (the array stage of the next cycle).
        n_active, n_t, n_wait = Signal(), Signal(GK + 1), Signal(T)
        n_a, n_b, n_c, n_iters = Signal(GA), Signal(GB), Signal(GC), Signal(GR)
        m.d.comb += [n_active.eq(g_active), n_t.eq(g_t), n_wait.eq(g_wait), n_a.eq(g_a), n_b.eq(g_b),
                     n_c.eq(g_c), n_iters.eq(g_iters)]
        with m.If(st.valid):
            with m.If(st.t + 1 < st.k):
                m.d.comb += [n_active.eq(1), n_t.eq(st.t + 1), n_wait.eq(0), n_a.eq(st.a), n_b.eq(st.b),
                             n_c.eq(st.c), n_iters.eq(st_iters)]
            with m.Elif(st_iters != 0):
                m.d.comb += [n_active.eq(1), n_t.eq(0), n_wait.eq(cur_gap), n_a.eq(st.a + cur_sa),
                             n_b.eq(st.b + cur_sb), n_c.eq(st.c + cur_sc), n_iters.eq(st_iters - 1)]
            with m.Else():
                m.d.comb += n_active.eq(0)
        with m.Elif(g_active & (g_wait != 0)):
            m.d.comb += n_wait.eq(g_wait - 1)
        m.d.sync += [g_active.eq(n_active), g_t.eq(n_t), g_wait.eq(n_wait), g_a.eq(n_a), g_b.eq(n_b),
                     g_c.eq(n_c), g_iters.eq(n_iters)]
        m.d.comb += [self.ahead.step.eq(n_active & (n_wait == 0)), self.ahead.t.eq(n_t), self.ahead.a.eq(n_a),
                     self.ahead.b.eq(n_b)]
        return m


def _matrix_ports(p: CoreParams, lanes: int) -> dict:
    sp_w, acc_w = 8 * p.dim, ACC_BITS * p.dim
    return {
        "issue": In(1), "head": In(WORD_BITS), "next_head": In(WORD_BITS), "timing": In(gemm_timing(p)),
        "sp_a": Out(sram_read(sp_w, p.sp_rows)), "sp_b": Out(sram_read(sp_w, p.sp_rows)),
        "drain_read": Out(sram_read(acc_w, p.acc_rows)).array(lanes),
        "drain_write": Out(sram_write(acc_w, p.acc_rows)).array(lanes),
        "macs": Out(range(p.R * p.C + 1)), "scratchpad_read_bytes": Out(range(p.R + p.C + 1)),
        "accumulator_read_bytes": Out(range(4 * p.C * lanes + 1)),
        "accumulator_write_bytes": Out(range(4 * p.C * lanes + 1)),
    }


def _merge_row(old, new, accumulate, dim: int, C: int):
    """An accumulator row with its first C elements replaced by `new` (or `old + new` when accumulating)."""
    data = []
    for j in range(dim):
        o = old[ACC_BITS * j:ACC_BITS * (j + 1)].as_signed()
        data.append(Mux(accumulate, o + new[j], new[j])[:ACC_BITS] if j < C else o)
    return Cat(*data)


class _MatrixUnit(wiring.Component):
    """What the OS and WS matrix units share: their ports (`LANES` result lanes) and the GEMM sequencer."""

    LANES = 1

    def __init__(self, p: CoreParams):
        self.p = p
        super().__init__(_matrix_ports(p, self.LANES))

    def _sequencer(self, m: Module):
        """The GEMM sequencer, wired to this unit's issue, head and timing ports: (it, its step, its look-ahead,
        the next head's gemm fields)."""
        m.submodules.sequencer = seq = GemmSequencer(self.p)
        m.d.comb += [seq.issue.eq(self.issue), seq.head.eq(self.head)]
        wiring.connect(m, wiring.flipped(self.timing), seq.timing)
        return seq, seq.step, seq.ahead, decode_fields(self.next_head, "gemm")


class OSMatrixUnit(_MatrixUnit):
    """Output-stationary: A rows and B columns stream in; finished rows drain through two lanes (tile parity).

    Two overlapped tiles can complete rows in the same cycle, hence two lanes, each with its own
    accumulator read and write port.
    """

    LANES = 2

    def elaborate(self, platform):
        p = self.p
        m = Module()
        R, C = p.R, p.C
        seq, st, ahead, nf_g = self._sequencer(m)
        m.submodules.array = arr = OSArray(R, C)
        # Where each tile's rows go, by tile id (written when the tile's first step enters the array).
        tile_c = Array(Signal(GC, name=f"tile_c{i}") for i in range(TILE_IDS))
        tile_acc = Array(Signal(name=f"tile_acc{i}") for i in range(TILE_IDS))
        with m.If(st.valid & (st.t == 0)):
            m.d.sync += [tile_c[st.tid].eq(st.c), tile_acc[st.tid].eq(st.accumulate)]
        # Scratchpad reads for the next cycle's step; when none, for the head of the compute queue.
        m.d.comb += [self.sp_a.en.eq(1), self.sp_b.en.eq(1),
                     self.sp_a.addr.eq(Mux(ahead.step, ahead.a + ahead.t, nf_g["a"])),
                     self.sp_b.addr.eq(Mux(ahead.step, ahead.b + ahead.t, nf_g["b"]))]
        for i in range(R):
            m.d.comb += arr.a[i].eq(self.sp_a.data[8 * i:8 * i + 8].as_signed())
        for j in range(C):
            m.d.comb += arr.b[j].eq(self.sp_b.data[8 * j:8 * j + 8].as_signed())
        m.d.comb += [arr.valid.eq(st.valid), arr.first.eq(st.t == 0), arr.last.eq(st.t + 1 == st.k),
                     arr.tid.eq(st.tid)]
        m.d.comb += [self.macs.eq(Mux(st.valid, R * C, 0)), self.scratchpad_read_bytes.eq(Mux(st.valid, R + C, 0))]

        # Drain: the accumulator row is read one cycle ahead and written when the array completes the row.
        wr_bytes, rd_bytes = [], []
        for lane in range(self.LANES):
            rd, wr = self.drain_read[lane], self.drain_write[lane]
            pre_addr = Signal(GC, name=f"drain{lane}_pre_addr")
            for i in range(R):
                with m.If(arr.pre_done[i] & (arr.pre_tid[i][0] == lane)):
                    m.d.comb += pre_addr.eq(tile_c[arr.pre_tid[i]] + i)
            m.d.comb += [rd.en.eq(1), rd.addr.eq(pre_addr)]
            hit = Signal(name=f"drain{lane}_hit")
            addr = Signal(GC, name=f"drain{lane}_addr")
            accum = Signal(name=f"drain{lane}_accum")
            newrow = [Signal(signed(ACC_BITS), name=f"drain{lane}_v{j}") for j in range(C)]
            for i in range(R):
                with m.If(arr.done[i] & (arr.done_tid[i][0] == lane)):
                    m.d.comb += [hit.eq(1), addr.eq(tile_c[arr.done_tid[i]] + i), accum.eq(tile_acc[arr.done_tid[i]])]
                    m.d.comb += [newrow[j].eq(arr.result[i][j]) for j in range(C)]
            m.d.comb += [wr.en.eq(hit), wr.addr.eq(addr), wr.data.eq(_merge_row(rd.data, newrow, accum, p.dim, C))]
            wr_bytes.append(Mux(hit, 4 * C, 0))
            rd_bytes.append(Mux(hit & accum, 4 * C, 0))
        m.d.comb += [self.accumulator_write_bytes.eq(sum(wr_bytes)), self.accumulator_read_bytes.eq(sum(rd_bytes))]
        return m


class WSMatrixUnit(_MatrixUnit):
    """Weight-stationary: weight preload into the idle bank, the activation stream, and one drain lane.

    Result row t of a stream entering in cycle E is complete (combinationally) in E + R + C - 2; its
    accumulator row address travels through a delay line of that length, tapped one cycle early for the
    read-modify-write read.
    """

    LANES = 1

    def elaborate(self, platform):
        p = self.p
        m = Module()
        R, C = p.R, p.C
        seq, st, ahead, nf_g = self._sequencer(m)
        m.submodules.array = arr = WSArray(R, C)
        cur_wbank = Signal()
        g_bank = Signal()
        is_pre = st.valid & (st.t < st.preload_steps)
        is_str = st.valid & (st.t >= st.preload_steps)
        t = (st.t - st.preload_steps)[:GK + 1]
        start = st.valid & (st.t == 0)
        bank_i = Mux(st.preload, ~cur_wbank, cur_wbank)
        st_bank = Mux(start, bank_i, g_bank)
        with m.If(start):
            m.d.sync += [cur_wbank.eq(bank_i), g_bank.eq(bank_i)]
        # Reads one cycle ahead: the stream row, and the weight row.
        m.d.comb += [self.sp_a.en.eq(1), self.sp_b.en.eq(1),
                     self.sp_a.addr.eq(Mux(ahead.step, ahead.a + (ahead.t - st.preload_steps)[:GK + 1], nf_g["a"])),
                     self.sp_b.addr.eq(Mux(ahead.step, ahead.b + ahead.t, nf_g["b"]))]
        for i in range(R):
            m.d.comb += arr.x[i].eq(self.sp_a.data[8 * i:8 * i + 8].as_signed())
        for j in range(C):
            m.d.comb += arr.w[j].eq(self.sp_b.data[8 * j:8 * j + 8].as_signed())
        m.d.comb += [arr.valid.eq(is_str), arr.bank.eq(st_bank), arr.w_en.eq(is_pre), arr.w_row.eq(st.t),
                     arr.w_bank.eq(st_bank)]
        m.d.comb += [self.macs.eq(Mux(is_str, R * C, 0)),
                     self.scratchpad_read_bytes.eq(Mux(is_str, R, 0) + Mux(is_pre, C, 0))]
        # Output row metadata through the array's latency: valid, accumulator row, accumulate.
        lat = R + C - 2
        meta = Cat(is_str, (st.c + t)[:GC], st.accumulate)
        line = [meta]
        for d in range(lat):
            nxt = Signal(len(meta), name=f"ws_meta_d{d + 1}")
            m.d.sync += nxt.eq(line[-1])
            line.append(nxt)
        pre, now = line[lat - 1], line[lat]
        rd, wr = self.drain_read[0], self.drain_write[0]
        m.d.comb += [rd.en.eq(1), rd.addr.eq(pre[1:1 + GC])]
        hit, addr, accum = now[0], now[1:1 + GC], now[1 + GC]
        m.d.comb += [wr.en.eq(hit), wr.addr.eq(addr), wr.data.eq(_merge_row(rd.data, arr.out, accum, p.dim, C))]
        m.d.comb += [self.accumulator_write_bytes.eq(Mux(hit, 4 * C, 0)),
                     self.accumulator_read_bytes.eq(Mux(hit & accum, 4 * C, 0))]
        return m
