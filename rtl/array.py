"""Processing elements and the systolic array, in both dataflows (output- and weight-stationary).

Both arrays take unskewed vectors at their edges and skew/deskew them internally, so a sequencer
drives one column of A (or one row of activations) per cycle and reads whole result rows.

Output-stationary (`OSArray`, rows R x cols C): C[i, j] = sum_k A[i, k] * B[k, j].
  Cycle t of a tile drives `a[i] = A[i, t]`, `b[j] = B[t, j]`, `valid`, `first` (t == 0), `last`
  (t == K-1) and a tile id. Row i of A is delayed i cycles and column j of B j cycles, so PE(i, j) sees
  step k at cycle k + i + j; row i is complete at cycle K - 1 + i + C - 1 (counting the first input
  cycle as 0) and is presented whole in that cycle. Outputs are double-buffered by tile id parity, so
  tiles can stream back to back (overlapped).

Weight-stationary (`WSArray`, rows R = reduction depth, cols C = outputs):
  out[m, j] = sum_k X[m, k] * W[k, j].
  Weights are written one array row per cycle (`w_en`, `w_row`, `w[j]`) into a shadow bank. Cycle t of
  a stream drives `x[k] = X[t, k]` with `valid`, and `first` on its first row; row k is delayed k cycles
  and `first` travels with the data, so each PE switches to the shadow weights exactly when the new
  stream's first row reaches it (rows of the previous stream still in flight keep the old weights).
  The shadow bank may be rewritten once the last PE has switched, R + C - 2 cycles after `first`.
  Partial sums flow down; the bottom of column j is delayed C-1-j more cycles so row m of the result
  comes out whole on `out`, with `out_valid`, at cycle m + R + C - 1.
"""
from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

IN_BITS = 8
ACC_BITS = 32


def _delay(m: Module, sig, n: int, name: str):
    """`sig` delayed by n clock cycles through a register chain (n == 0 returns `sig`)."""
    cur = sig
    for d in range(n):
        nxt = Signal.like(sig, name=f"{name}_d{d + 1}")
        m.d.sync += nxt.eq(cur)
        cur = nxt
    return cur


class OSPE(wiring.Component):
    """Output-stationary PE: accumulates a*b, passes a (with its flags) right and b down.

    On the last step of a tile it stores the finished sum in result register `tid % 2` (double-buffered
    outputs: the next tile can finish while this one is still being read). `total` is the sum being
    formed this cycle (combinational), so a row can be read in the very cycle its last PE finishes.
    """

    a_in: In(signed(IN_BITS))
    b_in: In(signed(IN_BITS))
    valid_in: In(1)
    first_in: In(1)
    last_in: In(1)
    tid_in: In(2)
    a_out: Out(signed(IN_BITS))
    b_out: Out(signed(IN_BITS))
    valid_out: Out(1)
    first_out: Out(1)
    last_out: Out(1)
    tid_out: Out(2)
    total: Out(signed(ACC_BITS))
    res0: Out(signed(ACC_BITS))
    res1: Out(signed(ACC_BITS))

    def elaborate(self, platform):
        m = Module()
        acc = Signal(signed(ACC_BITS))
        prod = Signal(signed(2 * IN_BITS))
        m.d.comb += prod.eq(self.a_in * self.b_in)
        m.d.comb += self.total.eq(Mux(self.first_in, prod, prod + acc))
        with m.If(self.valid_in):
            m.d.sync += acc.eq(self.total)
            with m.If(self.last_in):
                with m.If(self.tid_in[0]):
                    m.d.sync += self.res1.eq(self.total)
                with m.Else():
                    m.d.sync += self.res0.eq(self.total)
        m.d.sync += [self.a_out.eq(self.a_in), self.b_out.eq(self.b_in), self.valid_out.eq(self.valid_in),
                     self.first_out.eq(self.first_in), self.last_out.eq(self.last_in), self.tid_out.eq(self.tid_in)]
        return m


class OSArray(wiring.Component):
    """Output-stationary R x C array with input skew; each result row is presented the cycle it completes.

    Row i of a tile completes in the cycle PE(i, C-1) takes the tile's last step: then `done[i]` is high,
    `done_tid[i]` names the tile and `result[i]` holds its C sums. `pre_done[i]`/`pre_tid[i]` say the same
    one cycle ahead (for a read-modify-write of the accumulator row). Needs C >= 2.
    """

    def __init__(self, rows: int, cols: int):
        assert cols >= 2, "the output-stationary array needs at least 2 columns"
        self.rows, self.cols = rows, cols
        ports = {
            "a": In(signed(IN_BITS)).array(rows),
            "b": In(signed(IN_BITS)).array(cols),
            "valid": In(1), "first": In(1), "last": In(1), "tid": In(2),
            "done": Out(1).array(rows), "done_tid": Out(2).array(rows),
            "pre_done": Out(1).array(rows), "pre_tid": Out(2).array(rows),
            "result": Out(signed(ACC_BITS)).array(rows, cols),
        }
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        R, C = self.rows, self.cols
        pes = [[OSPE() for _ in range(C)] for _ in range(R)]
        for i in range(R):
            for j in range(C):
                m.submodules[f"pe_{i}_{j}"] = pes[i][j]
        for i in range(R):
            a_i = _delay(m, self.a[i], i, f"askew{i}")
            v_i = _delay(m, self.valid, i, f"vskew{i}")
            f_i = _delay(m, self.first, i, f"fskew{i}")
            l_i = _delay(m, self.last, i, f"lskew{i}")
            t_i = _delay(m, self.tid, i, f"tskew{i}")
            for j in range(C):
                pe = pes[i][j]
                if j == 0:
                    m.d.comb += [pe.a_in.eq(a_i), pe.valid_in.eq(v_i), pe.first_in.eq(f_i),
                                 pe.last_in.eq(l_i), pe.tid_in.eq(t_i)]
                else:
                    left = pes[i][j - 1]
                    m.d.comb += [pe.a_in.eq(left.a_out), pe.valid_in.eq(left.valid_out),
                                 pe.first_in.eq(left.first_out), pe.last_in.eq(left.last_out),
                                 pe.tid_in.eq(left.tid_out)]
                if i == 0:
                    m.d.comb += pe.b_in.eq(_delay(m, self.b[j], j, f"bskew{j}"))
                else:
                    m.d.comb += pe.b_in.eq(pes[i - 1][j].b_out)
        for i in range(R):
            end, pre = pes[i][C - 1], pes[i][C - 2]
            m.d.comb += [self.done[i].eq(end.valid_in & end.last_in), self.done_tid[i].eq(end.tid_in),
                         self.pre_done[i].eq(pre.valid_in & pre.last_in), self.pre_tid[i].eq(pre.tid_in)]
            row = self.result[i]
            for j in range(C - 1):
                pe = pes[i][j]
                m.d.comb += row[j].eq(Mux(end.tid_in[0], pe.res1, pe.res0))
            m.d.comb += row[C - 1].eq(end.total)
        return m


class WSPE(wiring.Component):
    """Weight-stationary PE: psum_out <= psum_in + x * w[bank]; x and its flags pass right.

    Two weight registers (banks): a stream uses the bank named by the `bank` flag travelling with its
    rows, so the next tile's weights can be written into the other bank while this stream is in flight.
    `psum` is the sum formed this cycle (combinational), `psum_out` the registered one.
    """

    x_in: In(signed(IN_BITS))
    psum_in: In(signed(ACC_BITS))
    valid_in: In(1)
    bank_in: In(1)
    w_data: In(signed(IN_BITS))
    w_en: In(1)
    w_bank: In(1)
    x_out: Out(signed(IN_BITS))
    valid_out: Out(1)
    bank_out: Out(1)
    psum: Out(signed(ACC_BITS))
    psum_out: Out(signed(ACC_BITS))

    def elaborate(self, platform):
        m = Module()
        w0 = Signal(signed(IN_BITS))
        w1 = Signal(signed(IN_BITS))
        with m.If(self.w_en & ~self.w_bank):
            m.d.sync += w0.eq(self.w_data)
        with m.If(self.w_en & self.w_bank):
            m.d.sync += w1.eq(self.w_data)
        m.d.comb += self.psum.eq(self.psum_in + self.x_in * Mux(self.bank_in, w1, w0))
        m.d.sync += [self.x_out.eq(self.x_in), self.valid_out.eq(self.valid_in), self.bank_out.eq(self.bank_in),
                     self.psum_out.eq(self.psum)]
        return m


class WSArray(wiring.Component):
    """Weight-stationary R x C array: skewed activation input, one whole result row out per cycle.

    Cycle t of a stream drives `x[i] = X[t, i]` with `valid` and the weight `bank`; row i is delayed i
    cycles. Weights are written one array row per cycle (`w_en`, `w_row`, `w_bank`, `w[j]`). Result row t
    (sum over i of X[t, i] * W[i, j]) is presented on `out` with `out_valid` in cycle t + R + C - 2
    (counting the stream's first cycle as 0): column C-1 straight from the bottom PE's adder, the other
    columns from its register, delayed to line up.
    """

    def __init__(self, rows: int, cols: int):
        self.rows, self.cols = rows, cols
        super().__init__({
            "x": In(signed(IN_BITS)).array(rows),
            "valid": In(1), "bank": In(1),
            "w": In(signed(IN_BITS)).array(cols),
            "w_en": In(1), "w_row": In(range(max(rows, 2))), "w_bank": In(1),
            "out": Out(signed(ACC_BITS)).array(cols),
            "out_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        R, C = self.rows, self.cols
        pes = [[WSPE() for _ in range(C)] for _ in range(R)]
        for i in range(R):
            for j in range(C):
                m.submodules[f"pe_{i}_{j}"] = pes[i][j]
        for i in range(R):
            x_i = _delay(m, self.x[i], i, f"xskew{i}")
            v_i = _delay(m, self.valid, i, f"vskew{i}")
            b_i = _delay(m, self.bank, i, f"bskew{i}")
            for j in range(C):
                pe = pes[i][j]
                m.d.comb += [pe.w_data.eq(self.w[j]), pe.w_en.eq(self.w_en & (self.w_row == i)),
                             pe.w_bank.eq(self.w_bank)]
                if j == 0:
                    m.d.comb += [pe.x_in.eq(x_i), pe.valid_in.eq(v_i), pe.bank_in.eq(b_i)]
                else:
                    left = pes[i][j - 1]
                    m.d.comb += [pe.x_in.eq(left.x_out), pe.valid_in.eq(left.valid_out),
                                 pe.bank_in.eq(left.bank_out)]
                m.d.comb += pe.psum_in.eq(0 if i == 0 else pes[i - 1][j].psum_out)
        bottom = pes[R - 1]
        for j in range(C - 1):
            m.d.comb += self.out[j].eq(_delay(m, bottom[j].psum_out, C - 2 - j, f"deskew{j}"))
        m.d.comb += [self.out[C - 1].eq(bottom[C - 1].psum), self.out_valid.eq(bottom[C - 1].valid_in)]
        return m
