"""The issue logic of docs/timing.md section 2 as registers and comparators, and the core's run control.

Each cycle it decides which queue heads issue (compute, then store, then load: the same-cycle priority
for the DRAM port and the bank interlock), from per-unit "free at" registers, a DRAM-port "free at"
register, per-bank "busy until" registers (DMA side and compute side) and the token counters. It also
counts cycles (cycle 1 is the first with `run` high), drives the DRAM command of an issuing DMA, and
retires FINISH in the first cycle at or after its dispatch by whose end everything has completed.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa.counters import C2L, C2S, L2C, S2C
from isa.instructions import OPCODE_BITS, QUEUES
from rtl.decoder import decode_fields, opcode_of
from rtl.params import DD, DR, DT, ROW_BYTES, CoreParams, T
from rtl.signatures import dram_command, gemm_timing, queue_head
from rtl.tokens import Tokens
from rtl.vector import reads_src2


def dram_beats(row_bytes, p: CoreParams):
    """ceil(row_bytes / bw) as a sum of comparisons with constants (no divider)."""
    total = Const(0, range(p.max_beats + 1))
    for m_ in range(1, p.max_beats + 1):
        total = total + (row_bytes > (m_ - 1) * p.bw)
    return total


def burst_beats(rows, row_bytes, stride, row_beats, p: CoreParams):
    """DRAM port beats of a DMA with rows > 0 (docs/timing.md, sections 3 and 7): one burst of `row_beats`
    per row, or with `dram_burst_merge` and rows contiguous in DRAM (stride = row bytes) ceil(rows * row bytes / bw)."""
    per_row = rows * row_beats
    if not p.merge:
        return per_row
    total = rows * row_bytes + (p.bw - 1)
    merged = total >> (p.bw.bit_length() - 1) if p.bw & (p.bw - 1) == 0 else total // p.bw
    return Mux(stride == row_bytes, merged, per_row)


def bank_mask(lo, hi, rows: int, banks: int):
    """Bit b set when rows [lo, hi) touch bank b (rows of bank b: [b*per, (b+1)*per))."""
    per = rows // banks
    return Cat(*[(hi > lo) & (lo < (b + 1) * per) & (hi > b * per) for b in range(banks)])


def dram_range(f, row_bytes):
    """DRAM bytes [lo, hi) a DMA touches (docs/timing.md section 5: its bounding range)."""
    return f["dram"], f["dram"] + (f["rows"] - 1) * f["stride"] + row_bytes


class Requests(wiring.Component):
    """The N request slots of section 7: each holds the end (s + R) of a DMA in flight, and for a posted store
    its DRAM range, so a load that overlaps it waits for its arrival (which is that end)."""

    def __init__(self, p: CoreParams, cycle):
        self.p, self._cycle = p, cycle
        super().__init__({"take": In(1), "end": In(T), "posted": In(1), "lo": In(DD + 1), "hi": In(DD + DR + DT + 1),
                          "free": Out(1)})
        n = p.outstanding
        self._end = [Signal(T, init=1, name=f"req_end{i}") for i in range(n)]
        self._post = [Signal(name=f"req_posted{i}") for i in range(n)]
        self._lo = [Signal(DD + 1, name=f"req_lo{i}") for i in range(n)]
        self._hi = [Signal(DD + DR + DT + 1, name=f"req_hi{i}") for i in range(n)]

    def posted_overlap(self, lo, hi):
        """A posted store still in flight writes DRAM bytes in [lo, hi)."""
        hit = Const(0)
        if not self.p.posted:
            return hit
        for e, ps, slo, shi in zip(self._end, self._post, self._lo, self._hi, strict=True):
            hit = hit | (ps & (e > self._cycle) & (lo < shi) & (slo < hi))
        return hit

    def elaborate(self, platform):
        m = Module()
        cyc = self._cycle
        free = [e <= cyc for e in self._end]
        m.d.comb += self.free.eq(Cat(*free).any())
        taken = Const(0)
        for i, f in enumerate(free):  # the first free slot takes the new request
            with m.If(self.take & f & ~taken):
                m.d.sync += [self._end[i].eq(self.end), self._post[i].eq(self.posted), self._lo[i].eq(self.lo),
                             self._hi[i].eq(self.hi)]
            taken = taken | f
        return m


class IssueUnit(wiring.Component):
    """Which queue head issues this cycle, and when each issued instruction ends (its s + L)."""

    def __init__(self, p: CoreParams):
        self.p = p
        super().__init__({
            "run": In(1), "finish_seen": In(1), "bad_op": In(1),
            **{q: In(queue_head(p.depth)) for q in QUEUES},
            "cycle": Out(T), "active": Out(1), "done": Out(1), "error": Out(1),
            "issue_load": Out(1), "issue_store": Out(1), "issue_gemm": Out(1), "issue_vec": Out(1),
            "load_end": Out(T), "store_end": Out(T), "compute_end": Out(T),
            "store_beats": Out(range(p.max_beats + 1)), "store_row_bytes": Out(ROW_BYTES),
            "gemm": Out(gemm_timing(p)), "dram_cmd": Out(dram_command()),
        })

    def elaborate(self, platform):  # one place for the issue rules of the timing contract
        p = self.p
        m = Module()
        R, C = p.R, p.C
        lq, cq, sq = self.load, self.compute, self.store

        # ---------------------------------------------------------------- cycle counter, run control
        cyc = Signal(T, init=1)
        finished = Signal()
        err = Signal()
        active = self.run & ~finished
        retire = Signal()
        with m.If(active & ~retire):
            m.d.sync += cyc.eq(cyc + 1)
        m.d.comb += [self.cycle.eq(cyc), self.active.eq(active), self.error.eq(err), self.done.eq(finished)]

        # ---------------------------------------------------------------- heads of the queues, decoded
        lf = decode_fields(lq.data, "load")
        sf = decode_fields(sq.data, "store")
        gf = decode_fields(cq.data, "gemm")
        vf = decode_fields(cq.data, "vec")
        c_is_gemm = cq.data[:OPCODE_BITS] == opcode_of("gemm")
        c_is_vec = cq.data[:OPCODE_BITS] == opcode_of("vec")

        # Latencies (docs/timing.md section 3).
        l_row_bytes = Mux(lf["mem"] == 1, lf["cols"] << 2, lf["cols"])
        l_beats = burst_beats(lf["rows"], l_row_bytes, lf["stride"], dram_beats(l_row_bytes, p), p)
        l_rows_nz = lf["rows"] != 0
        l_L = Signal(T)
        m.d.comb += l_L.eq(Mux(l_rows_nz, p.lat + l_beats + lf["pad"],
                               Mux(lf["pad"] > 1, lf["pad"], 1)))
        s_row_bytes = Mux((sf["mem"] == 1) & ~sf["narrow"], sf["cols"] << 2, sf["cols"])
        s_beats = dram_beats(s_row_bytes, p)
        m.d.comb += [self.store_beats.eq(s_beats), self.store_row_bytes.eq(s_row_bytes)]
        s_rows_nz = sf["rows"] != 0
        s_L = Signal(T)
        s_B = burst_beats(sf["rows"], s_row_bytes, sf["stride"], s_beats, p)
        # A posted store is done once its beats have left (section 7); its request lasts the round trip.
        m.d.comb += s_L.eq(Mux(s_rows_nz, s_B if p.posted else p.lat + s_B, 1))
        g_Li = Signal(T)
        g_O = Signal(T)
        g_P, g_len = self.gemm.preload, self.gemm.steps  # WS preload cycles; array steps of one iteration
        if p.ws:
            m.d.comb += [g_P.eq(Mux(gf["preload"], R, 0)), g_len.eq(g_P + gf["k"])]
            m.d.comb += g_Li.eq(g_P + gf["k"] + (R + C - 2))
            m.d.comb += g_O.eq(g_P + gf["k"] if p.overlap else g_Li)
        else:
            m.d.comb += [g_P.eq(0), g_len.eq(gf["k"])]
            m.d.comb += g_Li.eq(gf["k"] + (R + C - 2))
            m.d.comb += g_O.eq(Mux(gf["k"] > R, gf["k"], R) if p.overlap else g_Li)
        m.d.comb += self.gemm.gap.eq(g_O - g_len)
        g_L = Signal(T)
        g_occ = Signal(T)
        m.d.comb += [g_L.eq(gf["repeat"] * g_O + g_Li), g_occ.eq((gf["repeat"] + 1) * g_O)]
        v_L = Signal(T)
        m.d.comb += v_L.eq(vf["rows"] * p.ch)
        v_two_src = reads_src2(vf["op"], vf["use_imm"])
        c_L = Mux(c_is_gemm, g_L, v_L)

        # Bank sets (section 5): index 0 scratchpad, 1 accumulator.
        SPB, ACB = p.sp_banks, p.acc_banks
        l_lo, l_hi = lf["sram"], lf["sram"] + lf["rows"] + lf["pad"]
        l_sp = Mux(lf["mem"] == 0, bank_mask(l_lo, l_hi, p.sp_rows, SPB), 0)
        l_ac = Mux(lf["mem"] == 1, bank_mask(l_lo, l_hi, p.acc_rows, ACB), 0)
        s_lo, s_hi = sf["sram"], sf["sram"] + sf["rows"] + sf["pad"]
        s_sp = Mux(sf["mem"] == 0, bank_mask(s_lo, s_hi, p.sp_rows, SPB), 0)
        s_ac = Mux(sf["mem"] == 1, bank_mask(s_lo, s_hi, p.acc_rows, ACB), 0)
        if p.ws:
            g_sp = (bank_mask(gf["a"], gf["a"] + gf["repeat"] * gf["sa"] + gf["k"], p.sp_rows, SPB)
                    | Mux(gf["preload"], bank_mask(gf["b"], gf["b"] + gf["repeat"] * gf["sb"] + R, p.sp_rows, SPB),
                          0))
            g_ac = bank_mask(gf["c"], gf["c"] + gf["repeat"] * gf["sc"] + gf["k"], p.acc_rows, ACB)
        else:
            g_sp = (bank_mask(gf["a"], gf["a"] + gf["repeat"] * gf["sa"] + gf["k"], p.sp_rows, SPB)
                    | bank_mask(gf["b"], gf["b"] + gf["repeat"] * gf["sb"] + gf["k"], p.sp_rows, SPB))
            g_ac = bank_mask(gf["c"], gf["c"] + gf["repeat"] * gf["sc"] + R, p.acc_rows, ACB)
        v_ac = (bank_mask(vf["src"], vf["src"] + vf["rows"], p.acc_rows, ACB)
                | bank_mask(vf["dst"], vf["dst"] + vf["rows"], p.acc_rows, ACB)
                | Mux(v_two_src, bank_mask(vf["src2"], vf["src2"] + vf["rows"], p.acc_rows, ACB), 0))
        c_sp = Mux(c_is_gemm, g_sp, 0)
        c_ac = Mux(c_is_gemm, g_ac, v_ac)

        # ---------------------------------------------------------------- resources and tokens
        load_free = Signal(T, init=1)
        store_free = Signal(T, init=1)
        port_free = Signal(T, init=1)
        pipe_free = Signal(T, init=1)
        vec_done = Signal(T, init=1)
        compute_done = Signal(T, init=1)
        last_end = Signal(T, init=1)  # max over issued instructions of s + L
        dma_busy = [[Signal(T, name=f"dma_busy_{s}{b}") for b in range(n)] for s, n in (("sp", SPB), ("acc", ACB))]
        cmp_busy = [[Signal(T, name=f"cmp_busy_{s}{b}") for b in range(n)] for s, n in (("sp", SPB), ("acc", ACB))]

        def banks_free(busy, sp_mask, ac_mask):
            ok = Const(1)
            for b in range(SPB):
                ok = ok & (~sp_mask[b] | (cyc >= busy[0][b]))
            for b in range(ACB):
                ok = ok & (~ac_mask[b] | (cyc >= busy[1][b]))
            return ok

        m.submodules.tokens = tokens = Tokens(p)
        m.d.comb += tokens.cycle.eq(cyc)
        avail = tokens.avail

        # ---------------------------------------------------------------- issue (compute, then store, then load)
        issue_c, issue_s, issue_l = Signal(), Signal(), Signal()
        c_ready = cq.ready & active & Mux(c_is_gemm, (cyc >= pipe_free) & (cyc >= vec_done), cyc >= compute_done)
        c_tokens = (~gf["pop_prev"] | (avail[L2C] != 0)) & (~gf["pop_next"] | (avail[S2C] != 0))
        m.d.comb += issue_c.eq(c_ready & c_tokens & banks_free(dma_busy, c_sp, c_ac) & (c_is_gemm | c_is_vec))

        def no_clash(sp_mask, ac_mask):
            return ~issue_c | (((sp_mask & c_sp) == 0) & ((ac_mask & c_ac) == 0))

        if p.queued:  # section 7: a unit's next DMA with rows > 0 once the beats (and pad rows) are done
            load_done, store_done = Signal(T, init=1), Signal(T, init=1)
            s_ready = sq.ready & active & (cyc >= Mux(s_rows_nz, store_free, store_done))
            req = Requests(p, cyc)
            m.submodules.requests = req
        else:
            s_ready = sq.ready & active & (cyc >= store_free)
        s_tokens = ~sf["pop_prev"] | (avail[C2S] != 0)
        s_port = ~s_rows_nz | (cyc >= port_free)
        if p.queued:
            s_port = s_port & (~s_rows_nz | req.free)
        m.d.comb += issue_s.eq(s_ready & s_tokens & s_port & banks_free(cmp_busy, s_sp, s_ac) & no_clash(s_sp, s_ac))
        if p.queued:
            l_ready = lq.ready & active & (cyc >= Mux(l_rows_nz, load_free, load_done))
        else:
            l_ready = lq.ready & active & (cyc >= load_free)
        l_tokens = ~lf["pop_next"] | (avail[C2L] != 0)
        l_port = ~l_rows_nz | ((cyc >= port_free) & ~(issue_s & s_rows_nz))
        if p.queued:
            l_lo, l_hi = dram_range(lf, l_row_bytes)
            l_port = l_port & (~l_rows_nz | (req.free & ~req.posted_overlap(l_lo, l_hi)))
        m.d.comb += issue_l.eq(l_ready & l_tokens & l_port & banks_free(cmp_busy, l_sp, l_ac) & no_clash(l_sp, l_ac))
        m.d.comb += [lq.take.eq(issue_l), sq.take.eq(issue_s), cq.take.eq(issue_c),
                     self.issue_load.eq(issue_l), self.issue_store.eq(issue_s),
                     self.issue_gemm.eq(issue_c & c_is_gemm), self.issue_vec.eq(issue_c & c_is_vec)]

        # Token counters: this cycle's pops; pushes mature at s + L.
        pops = {L2C: issue_c & gf["pop_prev"], C2L: issue_l & lf["pop_next"], C2S: issue_s & sf["pop_prev"],
                S2C: issue_c & gf["pop_next"]}
        m.d.comb += [tokens.pop.eq(Cat(*(pops[i] for i in range(len(pops))))),
                     tokens.push_load.valid.eq(issue_l & lf["push_next"]), tokens.push_load.at.eq(cyc + l_L),
                     tokens.push_store.valid.eq(issue_s & sf["push_prev"]), tokens.push_store.at.eq(cyc + s_L),
                     tokens.push_compute.valid.eq(issue_c & (gf["push_prev"] | gf["push_next"])),
                     tokens.push_compute.at.eq(cyc + c_L), tokens.push_compute.prev.eq(gf["push_prev"]),
                     tokens.push_compute.next.eq(gf["push_next"])]
        with m.If(self.bad_op | tokens.overflow):
            m.d.sync += err.eq(1)

        # Resource bookkeeping.
        l_end, s_end, c_end = cyc + l_L, cyc + s_L, cyc + c_L
        m.d.comb += [self.load_end.eq(l_end), self.store_end.eq(s_end), self.compute_end.eq(c_end)]
        if p.queued:  # the port for the beats, a request slot for the round trip (section 7)
            s_lo, s_hi = dram_range(sf, s_row_bytes)
            m.d.comb += [req.take.eq((issue_l & l_rows_nz) | (issue_s & s_rows_nz)),
                         req.end.eq(Mux(issue_s, cyc + p.lat + s_B, l_end)),
                         req.posted.eq(issue_s & p.posted), req.lo.eq(s_lo), req.hi.eq(s_hi)]
            with m.If(issue_l):
                m.d.sync += [load_done.eq(l_end), load_free.eq(Mux(l_rows_nz, cyc + l_beats + lf["pad"], l_end))]
                with m.If(l_rows_nz):
                    m.d.sync += port_free.eq(cyc + l_beats)
            with m.If(issue_s):
                m.d.sync += [store_done.eq(s_end), store_free.eq(Mux(s_rows_nz, cyc + s_B, s_end))]
                with m.If(s_rows_nz):
                    m.d.sync += port_free.eq(cyc + s_B)
        else:
            with m.If(issue_l):
                m.d.sync += load_free.eq(l_end)
                with m.If(l_rows_nz):
                    m.d.sync += port_free.eq(l_end)
            with m.If(issue_s):
                m.d.sync += store_free.eq(s_end)
                with m.If(s_rows_nz):
                    # Posted: the one request slot stays taken until the data has reached DRAM (s + R), which
                    # also keeps every later load, whatever its bytes, from reading DRAM before the store's arrival.
                    m.d.sync += port_free.eq(cyc + p.lat + s_B if p.posted else s_end)
        with m.If(issue_c):
            with m.If(c_is_gemm):
                m.d.sync += pipe_free.eq(cyc + g_occ)
            with m.Else():
                m.d.sync += vec_done.eq(c_end)
            with m.If(c_end > compute_done):
                m.d.sync += compute_done.eq(c_end)
        new_last = last_end
        ends = [(issue_l, l_end), (issue_s, s_end), (issue_c, c_end)]
        if p.posted:  # FINISH waits until a posted store's data has reached DRAM
            ends.append((issue_s & s_rows_nz, cyc + p.lat + s_B))
        for n_, (iss, end) in enumerate(ends):
            nxt = Signal(T, name=f"new_last{n_}")
            m.d.comb += nxt.eq(Mux(iss & (end > new_last), end, new_last))
            new_last = nxt
        m.d.sync += last_end.eq(new_last)
        for sram, nb, lmask, smask, cmask in ((0, SPB, l_sp, s_sp, c_sp), (1, ACB, l_ac, s_ac, c_ac)):
            for b in range(nb):
                n1 = Signal(T, name=f"dma_busy_l_{sram}{b}")
                m.d.comb += n1.eq(Mux(issue_l & lmask[b] & (l_end > dma_busy[sram][b]), l_end, dma_busy[sram][b]))
                m.d.sync += dma_busy[sram][b].eq(Mux(issue_s & smask[b] & (s_end > n1), s_end, n1))
                with m.If(issue_c & cmask[b] & (c_end > cmp_busy[sram][b])):
                    m.d.sync += cmp_busy[sram][b].eq(c_end)

        # FINISH retires in the first cycle >= its dispatch by whose end everything has completed.
        queues_drain = ((lq.level == 0) | ((lq.level == 1) & issue_l)) & \
                       ((sq.level == 0) | ((sq.level == 1) & issue_s)) & \
                       ((cq.level == 0) | ((cq.level == 1) & issue_c))
        m.d.comb += retire.eq(active & self.finish_seen & queues_drain & (cyc + 1 >= new_last) & ~err)
        with m.If(retire):
            m.d.sync += finished.eq(1)

        # ---------------------------------------------------------------- DRAM command of an issuing DMA
        cmd = self.dram_cmd
        with m.If(issue_s & s_rows_nz):
            m.d.comb += [cmd.valid.eq(1), cmd.write.eq(1), cmd.addr.eq(sf["dram"]), cmd.stride.eq(sf["stride"]),
                         cmd.rows.eq(sf["rows"]), cmd.row_bytes.eq(s_row_bytes)]
        with m.Elif(issue_l & l_rows_nz):
            m.d.comb += [cmd.valid.eq(1), cmd.write.eq(0), cmd.addr.eq(lf["dram"]), cmd.stride.eq(lf["stride"]),
                         cmd.rows.eq(lf["rows"]), cmd.row_bytes.eq(l_row_bytes)]
        return m
