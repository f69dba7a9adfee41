"""The accelerator core in Amaranth: fetch, queues, token counters, issue logic, DMA, matrix and vector units.

Timing follows docs/timing.md cycle for cycle: the issue logic implements each rule of section 2 as
hardware (per-unit free-at registers, per-bank busy-until registers for the bank interlock, a DRAM-port
free-at register, token counters whose pushes mature at s + L), and every datapath finishes its memory
writes inside its instruction's busy window `s .. s+L-1`, so a consumer that issues when the producer
completes reads the new data:

- LOAD writes row r in the cycle its last DRAM beat arrives (beat i arrives in cycle s + lat + i; the
  bench's DRAM model drives it), then its pad rows one per cycle.
- STORE reads row r in cycle s + lat + r*B - 1 and drives its beats in s + lat + r*B + j.
- GEMM (OS) streams step t of iteration i in cycle s + i*O + t. Its scratchpad rows are read one cycle
  earlier (step 0: while the instruction waits at the head of the queue; the read is transparent to a
  load's write in that cycle). Accumulator row i of an iteration is written (read-modify-write, the read
  one cycle ahead) in the very cycle the array completes it; the last one in cycle s + L - 1. Two
  overlapped iterations can complete rows in the same cycle, so the accumulator has two drain lanes
  (by tile parity).
- VEC processes row r in cycle s + r*ceil(dim/lanes): reads one cycle ahead, writes in that cycle.

The cycle counter numbers the first cycle with `run` high as cycle 1; `done` rises in the cycle FINISH
retires and `cycle` then holds that cycle's number.
"""
from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from isa.design import Design, ceil_div
from isa.errors import UserError
from isa.instructions import INSTRUCTIONS, OPCODE_BITS, VECTOR_OPS, VECTOR_SHIFT_IMM, VECTOR_UNARY, WORD_BITS
from rtl.array import ACC_BITS, OSArray, WSArray
from rtl.decoder import Decoder, decode_fields
from rtl.sram import BankedSRAM

T = 32  # bits of cycle numbers and times
COUNTERS = ("instructions", "vector_ops", "scratchpad_read_bytes", "scratchpad_write_bytes",
            "accumulator_read_bytes", "accumulator_write_bytes", "dram_read_bytes", "dram_write_bytes",
            "macs_int8")
_OP = {ins.mnemonic: ins.opcode for ins in INSTRUCTIONS.values()}
L2C, C2L, C2S, S2C = range(4)
UNIT_COUNTERS = ("fetch_instructions", "fetch_last_dispatch", *(f"{u}_{k}" for u in ("load", "matrix", "vector", "store")
                                                               for k in ("busy", "stalled", "instructions")))


def _w(mnemonic: str, field: str) -> int:
    """Width of an instruction field, from the ISA table."""
    return INSTRUCTIONS[mnemonic].field(field).width


GA, GB, GC, GK = _w("gemm", "a"), _w("gemm", "b"), _w("gemm", "c"), _w("gemm", "k")
GR, GSA, GSB, GSC = _w("gemm", "repeat"), _w("gemm", "sa"), _w("gemm", "sb"), _w("gemm", "sc")
VA, VR = max(_w("vec", "dst"), _w("vec", "src"), _w("vec", "src2")), _w("vec", "rows")
DS, DR, DP, DC = _w("load", "sram"), _w("load", "rows"), _w("load", "pad"), _w("load", "cols")
DD, DT = _w("load", "dram"), _w("load", "stride")
# Blocks of the core for the area and activity reports: block -> submodule (instance) names.
# "control" is everything else: fetch, decoder, queues, token counters, issue logic, the GEMM sequencer
# and the accumulator drain (read-modify-write) adders.
AREA_BLOCKS = {"array": "top.array", "vector": "top.vector", "dma": ("top.load_dma", "top.store_dma"),
               "scratchpad": "top.scratchpad", "accumulator": "top.accumulator", "imem": "top.imem"}
ACTIVITY_BLOCKS = {"array": "array", "vector": "vector", "dma": ("load_dma", "store_dma"),
                   "scratchpad": "scratchpad", "accumulator": "accumulator", "imem": "imem"}


class UnsupportedDesignError(UserError):
    """The design is valid but outside what the RTL implements; the message says which limit and why."""


class CoreParams:
    """The design numbers the RTL is built from (all from the design file)."""

    def __init__(self, design: Design, imem_words: int = 1024):
        if design.is_float:
            raise UnsupportedDesignError(f"design {design.name}: the RTL implements the integer designs (int8 inputs, "
                                         "int32 accumulators); simulate a float design with `workbench sim run`")
        m, mem = design.matrix, design.memory
        self.ws = m.dataflow == "ws"
        if m.cols < 2 or m.rows < 2:
            raise UnsupportedDesignError(f"design {design.name}: the RTL needs an array of at least 2 x 2 "
                                         f"(matrix.rows = {m.rows}, matrix.cols = {m.cols})")
        self.design = design
        self.R, self.C, self.dim = m.rows, m.cols, design.dim
        self.overlap = m.overlap_tiles
        self.sp_rows, self.acc_rows = design.scratchpad_rows, design.accumulator_rows
        self.sp_banks, self.acc_banks = mem.scratchpad_banks, mem.accumulator_banks
        self.bw, self.lat = mem.dram_bandwidth_bytes_per_cycle, mem.dram_latency_cycles
        if self.lat < 1:
            raise UnsupportedDesignError(f"design {design.name}: the RTL's DMA needs memory.dram_latency_cycles >= 1")
        self.depth = design.control.queue_depth
        self.lanes = design.vector.lanes
        self.ch = ceil_div(self.dim, self.lanes)
        self.max_beats = ceil_div(self.dim * 4, self.bw)
        self.imem_words = imem_words


def _beats(row_bytes, p: CoreParams):
    """ceil(row_bytes / bw) as a sum of comparisons with constants (no divider)."""
    total = Const(0, range(p.max_beats + 1))
    for m_ in range(1, p.max_beats + 1):
        total = total + (row_bytes > (m_ - 1) * p.bw)
    return total


# Vector ops that never read src2 (unary, or shift amount from imm), in opcode order: a fixed order keeps
# the generated Verilog identical from run to run (iterating the frozensets follows the hash seed).
_ONE_SOURCE_OPS = tuple(i for i, name in enumerate(VECTOR_OPS) if name in VECTOR_UNARY | VECTOR_SHIFT_IMM)


def _reads_src2(op, use_imm):
    """True when vector op `op` reads a second accumulator row (not an immediate, not a one-source op)."""
    two = ~use_imm
    for code in _ONE_SOURCE_OPS:
        two = two & (op != code)
    return two


def _bank_mask(lo, hi, rows: int, banks: int):
    """Bit b set when rows [lo, hi) touch bank b (rows of bank b: [b*per, (b+1)*per))."""
    per = rows // banks
    return Cat(*[(hi > lo) & (lo < (b + 1) * per) & (hi > b * per) for b in range(banks)])


class Core(wiring.Component):
    """The whole core; DRAM is outside (the bench), reached through one command/beat port."""

    def __init__(self, design: Design, imem_words: int = 1024):
        self.p = p = CoreParams(design, imem_words)
        ports = {
            "run": In(1), "done": Out(1), "cycle": Out(T), "error": Out(1),
            "imem_we": In(1), "imem_addr": In(range(imem_words)), "imem_wdata": In(WORD_BITS),
            "dram_cmd_valid": Out(1), "dram_cmd_write": Out(1), "dram_cmd_addr": Out(DD),
            "dram_cmd_stride": Out(DT), "dram_cmd_rows": Out(DR), "dram_cmd_row_bytes": Out(16),
            "dram_rvalid": In(1), "dram_rdata": In(8 * p.bw),
            "dram_wvalid": Out(1), "dram_waddr": Out(32), "dram_wlen": Out(range(p.bw + 1)),
            "dram_wdata": Out(8 * p.bw),
        }
        for name in COUNTERS:
            ports[f"cnt_{name}"] = Out(48)
        for name in UNIT_COUNTERS:
            ports[f"unit_{name}"] = Out(T)
        super().__init__(ports)

    def elaborate(self, platform):  # noqa: C901 - one place for the whole timing contract
        p = self.p
        m = Module()
        R, C, dim = p.R, p.C, p.dim

        # ---------------------------------------------------------------- cycle counter and fetch
        cyc = Signal(T, init=1)
        finished = Signal()
        active = self.run & ~finished
        retire = Signal()
        with m.If(active & ~retire):
            m.d.sync += cyc.eq(cyc + 1)
        m.d.comb += self.cycle.eq(cyc)

        m.submodules.imem = imem_holder = _IMem(p.imem_words)
        m.d.comb += [imem_holder.we.eq(self.imem_we), imem_holder.waddr.eq(self.imem_addr),
                     imem_holder.wdata.eq(self.imem_wdata)]
        pc = Signal(range(p.imem_words + 1))
        fetch_stopped = Signal()
        finish_cycle = Signal(T)
        m.d.comb += imem_holder.raddr.eq(pc)
        word = imem_holder.rdata
        m.submodules.decoder = dec = Decoder()
        m.d.comb += dec.word.eq(word)

        queues = {}
        for qname in ("load", "compute", "store"):
            q = PeekFIFO(WORD_BITS, p.depth)
            m.submodules[f"{qname}_queue"] = q
            queues[qname] = q
        lq, cq, sq = queues["load"], queues["compute"], queues["store"]
        to_q = {"load": dec.is_load, "store": dec.is_store, "compute": dec.is_gemm | dec.is_vec}
        can_fetch = active & ~fetch_stopped
        dispatched = Signal()
        for qname, q in queues.items():
            m.d.comb += [q.w_data.eq(word), q.w_en.eq(can_fetch & to_q[qname] & q.w_rdy)]
            with m.If(can_fetch & to_q[qname] & q.w_rdy):
                m.d.comb += dispatched.eq(1)
        finish_now = can_fetch & dec.is_finish
        with m.If(dispatched):
            m.d.sync += pc.eq(pc + 1)
        with m.If(finish_now):
            m.d.sync += [fetch_stopped.eq(1), finish_cycle.eq(cyc)]
        bad_op = can_fetch & ~dec.valid
        err = Signal()
        m.d.comb += self.error.eq(err)
        with m.If(bad_op):
            m.d.sync += [err.eq(1), fetch_stopped.eq(1)]

        # ---------------------------------------------------------------- heads of the queues, decoded
        lw, sw, cw = lq.r_data, sq.r_data, cq.r_data
        lf = decode_fields(lw, "load")
        sf = decode_fields(sw, "store")
        gf = decode_fields(cw, "gemm")
        vf = decode_fields(cw, "vec")
        # The head of the compute queue in the next cycle (for reads one cycle ahead of issue).
        nf_g = decode_fields(cq.next_data, "gemm")
        nf_v = decode_fields(cq.next_data, "vec")
        c_is_gemm = cw[:OPCODE_BITS] == _OP["gemm"]
        c_is_vec = cw[:OPCODE_BITS] == _OP["vec"]

        # Latencies (docs/timing.md section 3).
        l_eb4 = lf["mem"] == 1
        l_row_bytes = Mux(l_eb4, lf["cols"] << 2, lf["cols"])
        l_beats = _beats(l_row_bytes, p)
        l_rows_nz = lf["rows"] != 0
        l_L = Signal(T)
        m.d.comb += l_L.eq(Mux(l_rows_nz, p.lat + lf["rows"] * l_beats + lf["pad"],
                               Mux(lf["pad"] > 1, lf["pad"], 1)))
        s_eb4 = (sf["mem"] == 1) & ~sf["narrow"]
        s_row_bytes = Mux(s_eb4, sf["cols"] << 2, sf["cols"])
        s_beats = _beats(s_row_bytes, p)
        s_rows_nz = sf["rows"] != 0
        s_L = Signal(T)
        m.d.comb += s_L.eq(Mux(s_rows_nz, p.lat + sf["rows"] * s_beats, 1))
        g_Li = Signal(T)
        g_O = Signal(T)
        g_P = Signal(range(R + 1))  # WS weight preload cycles of the head gemm
        g_len = Signal(GK + 1)  # array-stage steps of one iteration (OS: k; WS: P + k)
        if p.ws:
            m.d.comb += [g_P.eq(Mux(gf["preload"], R, 0)), g_len.eq(g_P + gf["k"])]
            m.d.comb += g_Li.eq(g_P + gf["k"] + (R + C - 2))
            m.d.comb += g_O.eq(g_P + gf["k"] if p.overlap else g_Li)
        else:
            m.d.comb += [g_P.eq(0), g_len.eq(gf["k"])]
            m.d.comb += g_Li.eq(gf["k"] + (R + C - 2))
            m.d.comb += g_O.eq(Mux(gf["k"] > R, gf["k"], R) if p.overlap else g_Li)
        g_L = Signal(T)
        g_occ = Signal(T)
        m.d.comb += [g_L.eq(gf["repeat"] * g_O + g_Li), g_occ.eq((gf["repeat"] + 1) * g_O)]
        v_L = Signal(T)
        m.d.comb += v_L.eq(vf["rows"] * p.ch)
        v_op = vf["op"]
        v_two_src = _reads_src2(v_op, vf["use_imm"])
        c_L = Mux(c_is_gemm, g_L, v_L)

        # Bank sets (section 5): index 0 scratchpad, 1 accumulator.
        SPB, ACB = p.sp_banks, p.acc_banks
        l_lo, l_hi = lf["sram"], lf["sram"] + lf["rows"] + lf["pad"]
        l_sp = Mux(lf["mem"] == 0, _bank_mask(l_lo, l_hi, p.sp_rows, SPB), 0)
        l_ac = Mux(lf["mem"] == 1, _bank_mask(l_lo, l_hi, p.acc_rows, ACB), 0)
        s_lo, s_hi = sf["sram"], sf["sram"] + sf["rows"] + sf["pad"]
        s_sp = Mux(sf["mem"] == 0, _bank_mask(s_lo, s_hi, p.sp_rows, SPB), 0)
        s_ac = Mux(sf["mem"] == 1, _bank_mask(s_lo, s_hi, p.acc_rows, ACB), 0)
        if p.ws:
            g_sp = (_bank_mask(gf["a"], gf["a"] + gf["repeat"] * gf["sa"] + gf["k"], p.sp_rows, SPB)
                    | Mux(gf["preload"], _bank_mask(gf["b"], gf["b"] + gf["repeat"] * gf["sb"] + R, p.sp_rows, SPB),
                          0))
            g_ac = _bank_mask(gf["c"], gf["c"] + gf["repeat"] * gf["sc"] + gf["k"], p.acc_rows, ACB)
        else:
            g_sp = (_bank_mask(gf["a"], gf["a"] + gf["repeat"] * gf["sa"] + gf["k"], p.sp_rows, SPB)
                    | _bank_mask(gf["b"], gf["b"] + gf["repeat"] * gf["sb"] + gf["k"], p.sp_rows, SPB))
            g_ac = _bank_mask(gf["c"], gf["c"] + gf["repeat"] * gf["sc"] + R, p.acc_rows, ACB)
        v_ac = (_bank_mask(vf["src"], vf["src"] + vf["rows"], p.acc_rows, ACB)
                | _bank_mask(vf["dst"], vf["dst"] + vf["rows"], p.acc_rows, ACB)
                | Mux(v_two_src, _bank_mask(vf["src2"], vf["src2"] + vf["rows"], p.acc_rows, ACB), 0))
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

        tok = [Signal(16, name=f"tok_{n}") for n in ("l2c", "c2l", "c2s", "s2c")]
        pend_l_valid, pend_l_time = Signal(), Signal(T)
        pend_s_valid, pend_s_time = Signal(), Signal(T)
        NP = 8
        pend_c_time = Array(Signal(T, name=f"pend_c_time{i}") for i in range(NP))
        pend_c_prev = Array(Signal(name=f"pend_c_prev{i}") for i in range(NP))
        pend_c_next = Array(Signal(name=f"pend_c_next{i}") for i in range(NP))
        pend_c_head = Signal(range(NP))
        pend_c_count = Signal(range(NP + 1))
        l_mature = pend_l_valid & (pend_l_time <= cyc)
        s_mature = pend_s_valid & (pend_s_time <= cyc)
        c_mature = (pend_c_count != 0) & (pend_c_time[pend_c_head] <= cyc)
        avail = [tok[L2C] + l_mature, tok[C2L] + (c_mature & pend_c_prev[pend_c_head]),
                 tok[C2S] + (c_mature & pend_c_next[pend_c_head]), tok[S2C] + s_mature]

        # ---------------------------------------------------------------- issue (compute, then store, then load)
        issue_c, issue_s, issue_l = Signal(), Signal(), Signal()
        c_ready = cq.r_rdy & active & Mux(c_is_gemm, (cyc >= pipe_free) & (cyc >= vec_done), cyc >= compute_done)
        c_tokens = (~gf["pop_prev"] | (avail[L2C] != 0)) & (~gf["pop_next"] | (avail[S2C] != 0))
        m.d.comb += issue_c.eq(c_ready & c_tokens & banks_free(dma_busy, c_sp, c_ac) & (c_is_gemm | c_is_vec))

        def no_clash(sp_mask, ac_mask):
            return ~issue_c | (((sp_mask & c_sp) == 0) & ((ac_mask & c_ac) == 0))

        s_ready = sq.r_rdy & active & (cyc >= store_free)
        s_tokens = ~sf["pop_prev"] | (avail[C2S] != 0)
        s_port = ~s_rows_nz | (cyc >= port_free)
        m.d.comb += issue_s.eq(s_ready & s_tokens & s_port & banks_free(cmp_busy, s_sp, s_ac) & no_clash(s_sp, s_ac))
        l_ready = lq.r_rdy & active & (cyc >= load_free)
        l_tokens = ~lf["pop_next"] | (avail[C2L] != 0)
        l_port = ~l_rows_nz | ((cyc >= port_free) & ~(issue_s & s_rows_nz))
        m.d.comb += issue_l.eq(l_ready & l_tokens & l_port & banks_free(cmp_busy, l_sp, l_ac) & no_clash(l_sp, l_ac))
        m.d.comb += [lq.r_en.eq(issue_l), sq.r_en.eq(issue_s), cq.r_en.eq(issue_c)]

        # Token counters: this cycle's matured pushes minus this cycle's pops.
        pops = [issue_c & gf["pop_prev"], issue_l & lf["pop_next"], issue_s & sf["pop_prev"], issue_c & gf["pop_next"]]
        for i in range(4):
            m.d.sync += tok[i].eq(avail[i] - pops[i])
        with m.If(l_mature):
            m.d.sync += pend_l_valid.eq(0)
        with m.If(s_mature):
            m.d.sync += pend_s_valid.eq(0)
        with m.If(issue_l & lf["push_next"]):
            m.d.sync += [pend_l_valid.eq(1), pend_l_time.eq(cyc + l_L)]
        with m.If(issue_s & sf["push_prev"]):
            m.d.sync += [pend_s_valid.eq(1), pend_s_time.eq(cyc + s_L)]
        c_push = issue_c & (gf["push_prev"] | gf["push_next"])
        head_next = Mux(pend_c_head == NP - 1, 0, pend_c_head + 1)
        with m.If(c_mature):
            m.d.sync += pend_c_head.eq(head_next)
        tail = Signal(range(NP))
        m.d.comb += tail.eq((pend_c_head + pend_c_count)[:3])
        with m.If(c_push):
            m.d.sync += [pend_c_time[tail].eq(cyc + c_L), pend_c_prev[tail].eq(gf["push_prev"]),
                         pend_c_next[tail].eq(gf["push_next"])]
            with m.If(pend_c_count == NP):
                m.d.sync += err.eq(1)
        m.d.sync += pend_c_count.eq(pend_c_count + c_push - c_mature)

        # Resource bookkeeping.
        l_end, s_end, c_end = cyc + l_L, cyc + s_L, cyc + c_L
        with m.If(issue_l):
            m.d.sync += load_free.eq(l_end)
            with m.If(l_rows_nz):
                m.d.sync += port_free.eq(l_end)
        with m.If(issue_s):
            m.d.sync += store_free.eq(s_end)
            with m.If(s_rows_nz):
                m.d.sync += port_free.eq(s_end)
        with m.If(issue_c):
            with m.If(c_is_gemm):
                m.d.sync += pipe_free.eq(cyc + g_occ)
            with m.Else():
                m.d.sync += vec_done.eq(c_end)
            with m.If(c_end > compute_done):
                m.d.sync += compute_done.eq(c_end)
        new_last = last_end
        for n_, (iss, end) in enumerate(((issue_l, l_end), (issue_s, s_end), (issue_c, c_end))):
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
        finish_seen = fetch_stopped | finish_now
        m.d.comb += retire.eq(active & finish_seen & queues_drain & (cyc + 1 >= new_last) & ~err)
        with m.If(retire):
            m.d.sync += finished.eq(1)
        m.d.comb += self.done.eq(finished)

        # ---------------------------------------------------------------- memories
        # Scratchpad: read ports 0 (gemm A), 1 (gemm B), 2 (store); write port 0 (load).
        m.submodules.scratchpad = sp = BankedSRAM(8 * dim, p.sp_rows, SPB, n_read=3, n_write=1)
        # Accumulator: read ports 0/1 (drain lanes), 2/3 (vec src/src2), 4 (store);
        # write ports 0 (drain lane 0 or vec), 1 (drain lane 1), 2 (load).
        m.submodules.accumulator = acc = BankedSRAM(ACC_BITS * dim, p.acc_rows, ACB, n_read=5, n_write=3)

        counters = {name: Signal(48, name=f"cnt_{name}_r") for name in COUNTERS}
        incr = {name: [] for name in COUNTERS}
        for name in COUNTERS:
            m.d.comb += getattr(self, f"cnt_{name}").eq(counters[name])
        incr["instructions"] += [issue_l, issue_s, issue_c]

        # ---------------------------------------------------------------- DRAM command
        with m.If(issue_s & s_rows_nz):
            m.d.comb += [self.dram_cmd_valid.eq(1), self.dram_cmd_write.eq(1), self.dram_cmd_addr.eq(sf["dram"]),
                         self.dram_cmd_stride.eq(sf["stride"]), self.dram_cmd_rows.eq(sf["rows"]),
                         self.dram_cmd_row_bytes.eq(s_row_bytes)]
        with m.Elif(issue_l & l_rows_nz):
            m.d.comb += [self.dram_cmd_valid.eq(1), self.dram_cmd_write.eq(0), self.dram_cmd_addr.eq(lf["dram"]),
                         self.dram_cmd_stride.eq(lf["stride"]), self.dram_cmd_rows.eq(lf["rows"]),
                         self.dram_cmd_row_bytes.eq(l_row_bytes)]

        # ---------------------------------------------------------------- load engine (DRAM -> SRAM)
        m.submodules.load_dma = ldma = LoadDMA(p)
        m.d.comb += [ldma.issue.eq(issue_l), ldma.word.eq(lw), ldma.rvalid.eq(self.dram_rvalid),
                     ldma.rdata.eq(self.dram_rdata)]
        m.d.comb += [sp.w0_en.eq(ldma.wr_en & (ldma.wr_mem == 0)), sp.w0_addr.eq(ldma.wr_addr),
                     sp.w0_data.eq(ldma.wr_data_sp),
                     acc.w2_en.eq(ldma.wr_en & (ldma.wr_mem == 1)), acc.w2_addr.eq(ldma.wr_addr),
                     acc.w2_data.eq(ldma.wr_data_acc)]
        incr["dram_read_bytes"].append(ldma.cnt_dram)
        incr["scratchpad_write_bytes"].append(Mux(ldma.wr_en & (ldma.wr_mem == 0), dim, 0))
        incr["accumulator_write_bytes"].append(Mux(ldma.wr_en & (ldma.wr_mem == 1), 4 * dim, 0))

        # ---------------------------------------------------------------- store engine (SRAM -> DRAM)
        m.submodules.store_dma = sdma = StoreDMA(p)
        m.d.comb += [sdma.issue.eq(issue_s), sdma.word.eq(sw), sdma.issue_beats.eq(s_beats),
                     sdma.issue_row_bytes.eq(s_row_bytes)]
        m.d.comb += [sp.r2_en.eq(sdma.rd_en & (sdma.rd_mem == 0)), sp.r2_addr.eq(sdma.rd_addr),
                     acc.r4_en.eq(sdma.rd_en & (sdma.rd_mem == 1)), acc.r4_addr.eq(sdma.rd_addr),
                     sdma.rd_data_sp.eq(sp.r2_data), sdma.rd_data_acc.eq(acc.r4_data)]
        m.d.comb += [self.dram_wvalid.eq(sdma.wvalid), self.dram_waddr.eq(sdma.waddr), self.dram_wlen.eq(sdma.wlen),
                     self.dram_wdata.eq(sdma.wdata)]
        incr["dram_write_bytes"].append(sdma.cnt_dram)
        incr["scratchpad_read_bytes"].append(sdma.cnt_sp)
        incr["accumulator_read_bytes"].append(sdma.cnt_acc)

        # ---------------------------------------------------------------- matrix unit (gemm sequencer)
        # One "step" per cycle in the array stage: OS: stream row t of an iteration (t < k); WS: weight
        # row u (u < P) then stream row t = u - P. Iteration i of a gemm starts O cycles after i - 1.
        m.submodules.array = arr = WSArray(R, C) if p.ws else OSArray(R, C)
        issue_g = issue_c & c_is_gemm
        g_active = Signal()
        g_t = Signal(GK + 1)
        g_k = Signal(GK + 1)
        g_Preg = Signal(range(R + 1))
        g_wait = Signal(T)
        g_gap = Signal(T)  # O - k of the running gemm
        g_iters = Signal(GR)  # iterations left after the current one
        g_a, g_b = Signal(GA), Signal(GB)
        g_c = Signal(GC)
        g_sa, g_sb, g_sc = Signal(GSA), Signal(GSB), Signal(GSC)
        g_accum = Signal()
        next_tid = Signal(2)
        g_tid = Signal(2)  # tile id of the running iteration
        tile_c = Array(Signal(GC, name=f"tile_c{i}") for i in range(4))
        tile_acc = Array(Signal(name=f"tile_acc{i}") for i in range(4))

        # The step in the array stage this cycle.
        st_valid = Signal()
        st_t, st_k = Signal(GK + 1), Signal(GK + 1)
        st_P = Mux(issue_g, g_P, g_Preg)
        st_tid = Signal(2)
        st_a, st_b = Signal(GA), Signal(GB)
        st_c = Signal(GC)
        st_iters = Signal(GR)
        with m.If(issue_g):
            m.d.comb += [st_valid.eq(1), st_t.eq(0), st_k.eq(g_len), st_tid.eq(next_tid), st_a.eq(gf["a"]),
                         st_b.eq(gf["b"]), st_c.eq(gf["c"]), st_iters.eq(gf["repeat"])]
        with m.Else():
            m.d.comb += [st_valid.eq(g_active & (g_wait == 0)), st_t.eq(g_t), st_k.eq(g_k),
                         st_tid.eq(Mux(g_t == 0, next_tid, g_tid)),
                         st_a.eq(g_a), st_b.eq(g_b), st_c.eq(g_c), st_iters.eq(g_iters)]
        with m.If(st_valid):
            m.d.sync += g_tid.eq(st_tid)
        # A new iteration (tile) starts in this cycle: record where its rows go.
        with m.If(st_valid & (st_t == 0)):
            m.d.sync += [tile_c[st_tid].eq(st_c), tile_acc[st_tid].eq(Mux(issue_g, gf["accumulate"], g_accum)),
                         next_tid.eq(st_tid + 1)]
        with m.If(issue_g):
            m.d.sync += [g_sa.eq(gf["sa"]), g_sb.eq(gf["sb"]), g_sc.eq(gf["sc"]), g_accum.eq(gf["accumulate"]),
                         g_gap.eq(g_O - g_len), g_k.eq(g_len), g_Preg.eq(g_P)]
        cur_sa = Mux(issue_g, gf["sa"], g_sa)
        cur_sb = Mux(issue_g, gf["sb"], g_sb)
        cur_sc = Mux(issue_g, gf["sc"], g_sc)
        cur_gap = Mux(issue_g, g_O - g_len, g_gap)
        # Next state (the array stage of the next cycle).
        n_active, n_t, n_wait = Signal(), Signal(GK + 1), Signal(T)
        n_a, n_b, n_c, n_iters = Signal(GA), Signal(GB), Signal(GC), Signal(GR)
        m.d.comb += [n_active.eq(g_active), n_t.eq(g_t), n_wait.eq(g_wait), n_a.eq(g_a), n_b.eq(g_b),
                     n_c.eq(g_c), n_iters.eq(g_iters)]
        with m.If(st_valid):
            with m.If(st_t + 1 < st_k):
                m.d.comb += [n_active.eq(1), n_t.eq(st_t + 1), n_wait.eq(0), n_a.eq(st_a), n_b.eq(st_b),
                             n_c.eq(st_c), n_iters.eq(st_iters)]
            with m.Elif(st_iters != 0):
                m.d.comb += [n_active.eq(1), n_t.eq(0), n_wait.eq(cur_gap), n_a.eq(st_a + cur_sa),
                             n_b.eq(st_b + cur_sb), n_c.eq(st_c + cur_sc), n_iters.eq(st_iters - 1)]
            with m.Else():
                m.d.comb += n_active.eq(0)
        with m.Elif(g_active & (g_wait != 0)):
            m.d.comb += n_wait.eq(g_wait - 1)
        m.d.sync += [g_active.eq(n_active), g_t.eq(n_t), g_wait.eq(n_wait), g_a.eq(n_a), g_b.eq(n_b),
                     g_c.eq(n_c), g_iters.eq(n_iters)]
        if p.ws:
            self._ws_datapath(m, arr, sp, acc, incr, gf, issue_g, st_valid, st_t, st_P, st_a, st_b, st_c,
                              n_active, n_wait, n_t, n_a, n_b, nf_g, g_accum)
            lane_we, lane_addr, lane_data = [Const(0)], [Const(0)], [Const(0)]
        else:
            # Scratchpad reads for the next cycle's step; when none, for the head of the compute queue.
            n_step = n_active & (n_wait == 0)
            m.d.comb += [sp.r0_en.eq(1), sp.r1_en.eq(1),
                         sp.r0_addr.eq(Mux(n_step, n_a + n_t, nf_g["a"])),
                         sp.r1_addr.eq(Mux(n_step, n_b + n_t, nf_g["b"]))]
            for i in range(R):
                m.d.comb += arr.a[i].eq(sp.r0_data[8 * i:8 * i + 8].as_signed())
            for j in range(C):
                m.d.comb += arr.b[j].eq(sp.r1_data[8 * j:8 * j + 8].as_signed())
            m.d.comb += [arr.valid.eq(st_valid), arr.first.eq(st_t == 0), arr.last.eq(st_t + 1 == st_k),
                         arr.tid.eq(st_tid)]
            incr["macs_int8"].append(Mux(st_valid, R * C, 0))
            incr["scratchpad_read_bytes"].append(Mux(st_valid, R + C, 0))

            # Drain: two lanes by tile parity; the accumulator row is read one cycle ahead and written in the
            # cycle the array completes the row.
            lane_we, lane_addr, lane_data = [], [], []
            for lane in range(2):
                rd_port = lane
                pre_hit = [arr.pre_done[i] & (arr.pre_tid[i][0] == lane) for i in range(R)]
                pre_addr = Signal(GC, name=f"drain{lane}_pre_addr")
                for i in range(R):
                    with m.If(pre_hit[i]):
                        m.d.comb += pre_addr.eq(tile_c[arr.pre_tid[i]] + i)
                m.d.comb += [getattr(acc, f"r{rd_port}_en").eq(1), getattr(acc, f"r{rd_port}_addr").eq(pre_addr)]
                old = getattr(acc, f"r{rd_port}_data")
                hit = Signal(name=f"drain{lane}_hit")
                addr = Signal(GC, name=f"drain{lane}_addr")
                accum = Signal(name=f"drain{lane}_accum")
                newrow = [Signal(signed(ACC_BITS), name=f"drain{lane}_v{j}") for j in range(C)]
                for i in range(R):
                    with m.If(arr.done[i] & (arr.done_tid[i][0] == lane)):
                        m.d.comb += [hit.eq(1), addr.eq(tile_c[arr.done_tid[i]] + i), accum.eq(tile_acc[arr.done_tid[i]])]
                        row = getattr(arr, f"row_{i}")
                        m.d.comb += [newrow[j].eq(row[j]) for j in range(C)]
                data = []
                for j in range(dim):
                    o = old[ACC_BITS * j:ACC_BITS * (j + 1)].as_signed()
                    if j < C:
                        data.append(Mux(accum, o + newrow[j], newrow[j])[:ACC_BITS])
                    else:
                        data.append(o)
                lane_we.append(hit)
                lane_addr.append(addr)
                lane_data.append(Cat(*data))
                incr["accumulator_write_bytes"].append(Mux(hit, 4 * C, 0))
                incr["accumulator_read_bytes"].append(Mux(hit & accum, 4 * C, 0))
            m.d.comb += [acc.w1_en.eq(lane_we[1]), acc.w1_addr.eq(lane_addr[1]), acc.w1_data.eq(lane_data[1])]
        self.debug = {"st_valid": st_valid, "st_t": st_t, "st_a": st_a, "st_c": st_c, "issue_c": issue_c}

        # ---------------------------------------------------------------- vector unit
        issue_v = issue_c & c_is_vec
        v_active = Signal()
        v_rows = Signal(VR)  # rows left after the current one
        v_wait = Signal(range(p.ch + 1))
        v_src, v_src2, v_dst = Signal(VA), Signal(VA), Signal(VA)
        v_opr, v_imm, v_useimm = Signal(4), Signal(signed(32)), Signal()
        vr_valid = Signal()
        vr_src, vr_src2, vr_dst = Signal(VA), Signal(VA), Signal(VA)
        vr_left = Signal(VR)
        vr_op, vr_imm, vr_useimm = Signal(4), Signal(signed(32)), Signal()
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
        m.d.comb += [acc.r2_en.eq(1), acc.r3_en.eq(1),
                     acc.r2_addr.eq(Mux(nv_row, nv_src, nf_v["src"])),
                     acc.r3_addr.eq(Mux(nv_row, nv_src2, nf_v["src2"]))]
        m.submodules.vector = valu = VectorALU(dim)
        m.d.comb += [valu.x.eq(acc.r2_data), valu.y_row.eq(acc.r3_data), valu.op.eq(vr_op), valu.imm.eq(vr_imm),
                     valu.use_imm.eq(vr_useimm)]
        vr_two = _reads_src2(vr_op, vr_useimm)
        incr["vector_ops"].append(Mux(vr_valid, dim, 0))
        incr["accumulator_read_bytes"].append(Mux(vr_valid, Mux(vr_two, 8 * dim, 4 * dim), 0))
        incr["accumulator_write_bytes"].append(Mux(vr_valid, 4 * dim, 0))
        # Write port 0: drain lane 0, or the vector unit (never in the same cycle: vec waits for the
        # matrix unit to drain, and a gemm's first row completes >= 1 cycle after it issues).
        m.d.comb += [acc.w0_en.eq(lane_we[0] | vr_valid), acc.w0_addr.eq(Mux(vr_valid, vr_dst, lane_addr[0])),
                     acc.w0_data.eq(Mux(vr_valid, valu.out, lane_data[0]))]

        # ---------------------------------------------------------------- counters
        for name in COUNTERS:
            total = 0
            for v in incr[name]:
                total = total + v
            m.d.sync += counters[name].eq(counters[name] + total)

        # Per-unit accounting, as the simulator's `units`: a unit is busy in a cycle covered by one of its
        # instructions' busy windows; it is stalled in a cycle where its oldest waiting instruction has
        # been dispatched, the unit is free, and it does not issue. Fetch: busy = dispatches; stalled =
        # the cycle of the last (non-FINISH) dispatch minus the number of dispatches.
        ucnt = {name: Signal(T, name=f"unit_{name}_r") for name in UNIT_COUNTERS}
        for name in UNIT_COUNTERS:
            m.d.comb += getattr(self, f"unit_{name}").eq(ucnt[name])
        n_gemm, n_vec = Signal(range(p.depth + 1)), Signal(range(p.depth + 1))
        disp_g = cq.w_en & cq.w_rdy & dec.is_gemm
        disp_v = cq.w_en & cq.w_rdy & dec.is_vec
        m.d.sync += [n_gemm.eq(n_gemm + disp_g - issue_g), n_vec.eq(n_vec + disp_v - issue_v)]
        units = (("load", issue_l, l_end, lq.r_rdy), ("matrix", issue_g, c_end, n_gemm != 0),
                 ("vector", issue_v, c_end, n_vec != 0), ("store", issue_s, s_end, sq.r_rdy))
        for name, iss, end, waiting in units:
            bu = Signal(T, name=f"unit_{name}_busy_until")
            with m.If(iss & (end > bu)):
                m.d.sync += bu.eq(end)
            with m.If(active):
                m.d.sync += [ucnt[f"{name}_busy"].eq(ucnt[f"{name}_busy"] + (iss | (cyc < bu))),
                             ucnt[f"{name}_stalled"].eq(ucnt[f"{name}_stalled"] + (waiting & (cyc >= bu) & ~iss)),
                             ucnt[f"{name}_instructions"].eq(ucnt[f"{name}_instructions"] + iss)]
        with m.If(dispatched):
            m.d.sync += [ucnt["fetch_instructions"].eq(ucnt["fetch_instructions"] + 1),
                         ucnt["fetch_last_dispatch"].eq(cyc)]
        return m


def _ws_datapath_impl(self, m, arr, sp, acc, incr, gf, issue_g, st_valid, st_t, st_P, st_a, st_b, st_c,
                      n_active, n_wait, n_t, n_a, n_b, nf_g, g_accum):
    """Weight-stationary hookup: weight preload into the idle bank, the stream, and one drain lane.

    Result row t of a stream entering in cycle E is complete (combinationally) in E + R + C - 2; its
    accumulator row address travels through a delay line of that length, tapped one cycle early for the
    read-modify-write read.
    """
    p = self.p
    R, C, dim = p.R, p.C, p.dim
    cur_wbank = Signal()
    g_bank = Signal()
    is_pre = st_valid & (st_t < st_P)
    is_str = st_valid & (st_t >= st_P)
    t = (st_t - st_P)[:GK + 1]
    start = st_valid & (st_t == 0)
    preload = Mux(issue_g, gf["preload"], st_P != 0)
    bank_i = Mux(preload, ~cur_wbank, cur_wbank)
    st_bank = Mux(start, bank_i, g_bank)
    with m.If(start):
        m.d.sync += [cur_wbank.eq(bank_i), g_bank.eq(bank_i)]
    accumulate = Mux(issue_g, gf["accumulate"], g_accum)
    # Reads one cycle ahead: port 0 the stream row, port 1 the weight row.
    n_step = n_active & (n_wait == 0)
    n_P = st_P
    m.d.comb += [sp.r0_en.eq(1), sp.r1_en.eq(1),
                 sp.r0_addr.eq(Mux(n_step, n_a + (n_t - n_P)[:GK + 1], nf_g["a"])),
                 sp.r1_addr.eq(Mux(n_step, n_b + n_t, nf_g["b"]))]
    for i in range(R):
        m.d.comb += arr.x[i].eq(sp.r0_data[8 * i:8 * i + 8].as_signed())
    for j in range(C):
        m.d.comb += arr.w[j].eq(sp.r1_data[8 * j:8 * j + 8].as_signed())
    m.d.comb += [arr.valid.eq(is_str), arr.bank.eq(st_bank), arr.w_en.eq(is_pre), arr.w_row.eq(st_t),
                 arr.w_bank.eq(st_bank)]
    incr["macs_int8"].append(Mux(is_str, R * C, 0))
    incr["scratchpad_read_bytes"].append(Mux(is_str, R, 0) + Mux(is_pre, C, 0))
    # Output row metadata: valid, accumulator row, accumulate.
    lat = R + C - 2
    meta = Cat(is_str, (st_c + t)[:GC], accumulate)
    line = [meta]
    for d in range(lat):
        nxt = Signal(len(meta), name=f"ws_meta_d{d + 1}")
        m.d.sync += nxt.eq(line[-1])
        line.append(nxt)
    pre, now = line[lat - 1], line[lat]
    m.d.comb += [acc.r1_en.eq(1), acc.r1_addr.eq(pre[1:1 + GC])]
    old = acc.r1_data
    hit, addr, accum = now[0], now[1:1 + GC], now[1 + GC]
    data = []
    for j in range(dim):
        o = old[ACC_BITS * j:ACC_BITS * (j + 1)].as_signed()
        if j < C:
            data.append(Mux(accum, o + arr.out[j], arr.out[j])[:ACC_BITS])
        else:
            data.append(o)
    m.d.comb += [acc.w1_en.eq(hit), acc.w1_addr.eq(addr), acc.w1_data.eq(Cat(*data))]
    incr["accumulator_write_bytes"].append(Mux(hit, 4 * C, 0))
    incr["accumulator_read_bytes"].append(Mux(hit & accum, 4 * C, 0))


Core._ws_datapath = _ws_datapath_impl


class _IMem(wiring.Component):
    """Instruction memory: written by the bench before `run`, read combinationally by fetch."""

    def __init__(self, words: int):
        self.words = words
        super().__init__({"we": In(1), "waddr": In(range(words)), "wdata": In(WORD_BITS),
                          "raddr": In(range(words + 1)), "rdata": Out(WORD_BITS)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=WORD_BITS, depth=self.words, init=[])
        wp = mem.write_port()
        rp = mem.read_port(domain="comb")
        m.d.comb += [wp.en.eq(self.we), wp.addr.eq(self.waddr), wp.data.eq(self.wdata),
                     rp.addr.eq(self.raddr), self.rdata.eq(rp.data)]
        return m


class LoadDMA(wiring.Component):
    """DRAM -> SRAM: assembles each row from its beats and writes it when the last beat arrives; then pad rows."""

    def __init__(self, p: CoreParams):
        self.p = p
        super().__init__({
            "issue": In(1), "word": In(WORD_BITS), "rvalid": In(1), "rdata": In(8 * p.bw),
            "wr_en": Out(1), "wr_mem": Out(1), "wr_addr": Out(DS),
            "wr_data_sp": Out(8 * p.dim), "wr_data_acc": Out(ACC_BITS * p.dim), "cnt_dram": Out(16),
        })

    def elaborate(self, platform):
        p = self.p
        m = Module()
        f = decode_fields(self.word, "load")
        mem, row, rows_left, pad_left, cols = Signal(), Signal(DS), Signal(DR), Signal(DP), Signal(DC)
        beat, nbeats = Signal(range(p.max_beats + 1)), Signal(range(p.max_beats + 1))
        buf_bytes = p.max_beats * p.bw
        buf = Signal(8 * buf_bytes)
        eb4 = f["mem"] == 1
        row_bytes = Mux(eb4, f["cols"] << 2, f["cols"])
        with m.If(self.issue):
            m.d.sync += [mem.eq(f["mem"]), cols.eq(f["cols"]), beat.eq(0), nbeats.eq(_beats(row_bytes, p))]
            with m.If(f["rows"] != 0):
                m.d.sync += [row.eq(f["sram"]), rows_left.eq(f["rows"]), pad_left.eq(f["pad"])]
            with m.Elif(f["pad"] != 0):  # pad rows only: the first one in the issue cycle
                m.d.comb += [self.wr_en.eq(1), self.wr_mem.eq(f["mem"]), self.wr_addr.eq(f["sram"])]
                m.d.sync += [row.eq(f["sram"] + 1), rows_left.eq(0), pad_left.eq(f["pad"] - 1)]
        with m.Elif(rows_left != 0):
            full = Signal(8 * buf_bytes)
            m.d.comb += full.eq(buf)
            with m.Switch(beat):
                for j in range(p.max_beats):
                    with m.Case(j):
                        m.d.comb += full[8 * p.bw * j:8 * p.bw * (j + 1)].eq(self.rdata)
            with m.If(self.rvalid):
                m.d.sync += buf.eq(full)
                with m.If(beat + 1 == nbeats):
                    m.d.comb += [self.wr_en.eq(1), self.wr_mem.eq(mem), self.wr_addr.eq(row),
                                 self.cnt_dram.eq(Mux(mem, cols << 2, cols))]
                    m.d.sync += [beat.eq(0), row.eq(row + 1), rows_left.eq(rows_left - 1)]
                    for e in range(p.dim):
                        keep = e < cols
                        m.d.comb += self.wr_data_sp[8 * e:8 * e + 8].eq(Mux(keep, full[8 * e:8 * e + 8], 0))
                        if 4 * e + 4 <= buf_bytes:
                            m.d.comb += self.wr_data_acc[32 * e:32 * e + 32].eq(
                                Mux(keep, full[32 * e:32 * e + 32], 0))
                with m.Else():
                    m.d.sync += beat.eq(beat + 1)
        with m.Elif(pad_left != 0):
            m.d.comb += [self.wr_en.eq(1), self.wr_mem.eq(mem), self.wr_addr.eq(row)]
            m.d.sync += [row.eq(row + 1), pad_left.eq(pad_left - 1)]
        return m


class StoreDMA(wiring.Component):
    """SRAM -> DRAM: reads row r in cycle s + lat + r*B - 1 and drives its B beats from s + lat + r*B."""

    def __init__(self, p: CoreParams):
        self.p = p
        super().__init__({
            "issue": In(1), "word": In(WORD_BITS), "issue_beats": In(range(p.max_beats + 1)),
            "issue_row_bytes": In(16),
            "rd_en": Out(1), "rd_mem": Out(1), "rd_addr": Out(DS),
            "rd_data_sp": In(8 * p.dim), "rd_data_acc": In(ACC_BITS * p.dim),
            "wvalid": Out(1), "waddr": Out(32), "wlen": Out(range(p.bw + 1)), "wdata": Out(8 * p.bw),
            "cnt_dram": Out(16), "cnt_sp": Out(16), "cnt_acc": Out(16),
        })

    def elaborate(self, platform):
        p = self.p
        m = Module()
        f = decode_fields(self.word, "store")
        mem, narrow = Signal(), Signal()
        busy = Signal()
        tau = Signal(T)  # cycles since issue (the issue cycle is 0)
        next_read = Signal(T)
        rows_read, rows_sent = Signal(DR), Signal(DR)
        rows = Signal(DR)
        sram = Signal(DS)
        nbeats = Signal(range(p.max_beats + 1))
        beat = Signal(range(p.max_beats + 1))
        row_bytes = Signal(16)
        cols = Signal(DC)
        addr, stride = Signal(DD), Signal(DT)
        buf_bytes = p.max_beats * p.bw
        rowreg = Signal(8 * buf_bytes)
        with m.If(self.issue & (f["rows"] != 0)):
            m.d.sync += [busy.eq(1), tau.eq(1), mem.eq(f["mem"]), narrow.eq(f["narrow"]), rows.eq(f["rows"]),
                         sram.eq(f["sram"]), nbeats.eq(self.issue_beats), row_bytes.eq(self.issue_row_bytes),
                         cols.eq(f["cols"]), addr.eq(f["dram"]), stride.eq(f["stride"]), beat.eq(0),
                         rows_sent.eq(0)]
            if p.lat == 1:  # row 0 is read in the issue cycle
                m.d.comb += [self.rd_en.eq(1), self.rd_mem.eq(f["mem"]), self.rd_addr.eq(f["sram"])]
                m.d.sync += [rows_read.eq(1), next_read.eq(p.lat - 1 + self.issue_beats)]
            else:
                m.d.sync += [rows_read.eq(0), next_read.eq(p.lat - 1)]
        with m.Elif(busy):
            m.d.sync += tau.eq(tau + 1)
            with m.If((tau == next_read) & (rows_read != rows)):
                m.d.comb += [self.rd_en.eq(1), self.rd_mem.eq(mem), self.rd_addr.eq(sram + rows_read)]
                m.d.sync += [rows_read.eq(rows_read + 1), next_read.eq(next_read + nbeats)]
        # Packed bytes of the row just read.
        packed = Signal(8 * buf_bytes)
        for e in range(p.dim):
            v = self.rd_data_acc[32 * e:32 * e + 32].as_signed()
            sat = Mux(v > 127, 127, Mux(v < -128, -128, v))[:8]
            with m.If(mem == 0):
                m.d.comb += packed[8 * e:8 * e + 8].eq(self.rd_data_sp[8 * e:8 * e + 8])
            with m.Elif(narrow):
                m.d.comb += packed[8 * e:8 * e + 8].eq(sat)
            with m.Else():
                if 32 * e + 32 <= 8 * buf_bytes:
                    m.d.comb += packed[32 * e:32 * e + 32].eq(self.rd_data_acc[32 * e:32 * e + 32])
        sending = busy & (tau >= p.lat) & (rows_sent != rows)
        cur = Mux(beat == 0, packed, rowreg)
        with m.If(sending):
            with m.If(beat == 0):
                m.d.sync += rowreg.eq(packed)
            m.d.comb += [self.wvalid.eq(1), self.waddr.eq(addr + beat * p.bw)]
            with m.Switch(beat):
                for j in range(p.max_beats):
                    with m.Case(j):
                        m.d.comb += self.wdata.eq(cur[8 * p.bw * j:8 * p.bw * (j + 1)])
            left = row_bytes - beat * p.bw
            m.d.comb += self.wlen.eq(Mux(left > p.bw, p.bw, left))
            with m.If(beat + 1 == nbeats):
                m.d.sync += [beat.eq(0), rows_sent.eq(rows_sent + 1), addr.eq(addr + stride)]
                eb = Mux((mem == 1) & ~narrow, 4, 1)
                m.d.comb += [self.cnt_dram.eq(cols * eb), self.cnt_sp.eq(Mux(mem == 0, cols, 0)),
                             self.cnt_acc.eq(Mux(mem == 1, cols << 2, 0))]
                with m.If(rows_sent + 1 == rows):
                    m.d.sync += busy.eq(0)
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
        return m


class VectorALU(wiring.Component):
    """One accumulator row through the integer vector operations of the ISA table (dim elements at once)."""

    def __init__(self, dim: int):
        self.dim = dim
        super().__init__({"x": In(ACC_BITS * dim), "y_row": In(ACC_BITS * dim), "op": In(4), "imm": In(signed(32)),
                          "use_imm": In(1), "out": Out(ACC_BITS * dim)})

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


class PeekFIFO(wiring.Component):
    """An instruction queue: `depth` entries, visible to the unit the cycle after they are written.

    `w_rdy` counts entries at the start of the cycle (an entry issued in cycle t frees its slot for
    cycle t + 1, docs/timing.md section 1). `next_data` is the head as it will be in the next cycle
    (after this cycle's read and write), for reads one cycle ahead of issue.
    """

    def __init__(self, width: int, depth: int):
        self.width, self.depth = width, depth
        super().__init__({"w_en": In(1), "w_data": In(width), "w_rdy": Out(1),
                          "r_en": In(1), "r_data": Out(width), "r_rdy": Out(1), "level": Out(range(depth + 1)),
                          "next_data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        D = self.depth
        mem = Array(Signal(self.width, name=f"entry{i}") for i in range(D))
        head = Signal(range(D))
        level = Signal(range(D + 1))
        tail = Signal(range(D))

        def inc(x):
            return Mux(x == D - 1, 0, x + 1)

        m.d.comb += [self.level.eq(level), self.w_rdy.eq(level < D), self.r_rdy.eq(level != 0),
                     self.r_data.eq(mem[head]), tail.eq(Mux(head + level >= D, head + level - D, head + level))]
        do_w = self.w_en & (level < D)
        do_r = self.r_en & (level != 0)
        with m.If(do_w):
            m.d.sync += mem[tail].eq(self.w_data)
        with m.If(do_r):
            m.d.sync += head.eq(inc(head))
        m.d.sync += level.eq(level + do_w - do_r)
        nh = Mux(do_r, inc(head), head)
        left = level - do_r
        m.d.comb += self.next_data.eq(Mux(left != 0, mem[nh], self.w_data))
        return m
