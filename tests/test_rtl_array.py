"""Systolic arrays (both dataflows) against numpy, in Amaranth's Python simulator (no Verilator)."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from rtl.array import OSArray, WSArray

pytestmark = pytest.mark.rtl


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("rows,cols", [(2, 2), (4, 4), (3, 5)])
def test_os_array_rows_complete_on_time_back_to_back(rows, cols):
    """Tiles of different depth streamed back to back: row i of a tile started at s with depth K is
    presented (done) exactly in cycle s + K - 1 + i + cols - 1, with pre_done one cycle earlier."""
    rng = np.random.default_rng(rows * 10 + cols)
    tiles = []
    for K in (5, 1, 7, 2, 2):
        tiles.append((rng.integers(-128, 128, (rows, K)), rng.integers(-128, 128, (K, cols))))
    dut = OSArray(rows, cols)
    expect = {}  # cycle -> list of (row, tid, values)
    schedule = []  # per cycle: (a column, b row, first, last, tid)
    for n, (A, B) in enumerate(tiles):
        K = A.shape[1]
        start = len(schedule)
        for k in range(K):
            schedule.append((A[:, k], B[k, :], k == 0, k == K - 1, n % 4))
        ref = A @ B
        for i in range(rows):
            expect.setdefault(start + K - 1 + i + cols - 1, []).append((i, n % 4, [int(x) for x in ref[i]]))
    seen = {}
    pre_seen = {}

    async def bench(ctx):
        for cyc in range(len(schedule) + rows + cols + 2):
            step = schedule[cyc] if cyc < len(schedule) else None
            ctx.set(dut.valid, step is not None)
            if step is not None:
                a, b, first, last, tid = step
                for i in range(rows):
                    ctx.set(dut.a[i], int(a[i]))
                for j in range(cols):
                    ctx.set(dut.b[j], int(b[j]))
                ctx.set(dut.first, first)
                ctx.set(dut.last, last)
                ctx.set(dut.tid, tid)
            for i in range(rows):
                if ctx.get(dut.done[i]):
                    row = dut.result[i]
                    seen.setdefault(cyc, []).append((i, ctx.get(dut.done_tid[i]),
                                                     [ctx.get(row[j]) for j in range(cols)]))
                if ctx.get(dut.pre_done[i]):
                    pre_seen.setdefault(cyc + 1, []).append((i, ctx.get(dut.pre_tid[i])))
            await ctx.tick()

    _run(dut, bench)
    assert {c: sorted(v) for c, v in seen.items()} == {c: sorted(v) for c, v in expect.items()}
    assert {c: sorted(v) for c, v in pre_seen.items()} == {c: sorted((i, t) for i, t, _ in v)
                                                           for c, v in expect.items()}


@pytest.mark.parametrize("rows,cols", [(2, 2), (4, 4), (4, 3), (3, 5)])
def test_ws_array_streams_back_to_back_with_weight_banks(rows, cols):
    """Streams right behind each other, each with its own weights loaded into the other bank while the
    previous stream is in flight; result row t of a stream started at E appears in cycle E + t + R + C - 2."""
    rng = np.random.default_rng(rows * 7 + cols)
    jobs = [(rng.integers(-128, 128, (rows, cols)), rng.integers(-128, 128, (M, rows))) for M in (5, 1, 3, 4)]
    dut = WSArray(rows, cols)
    # Schedule: job n loads its weights (rows cycles, into bank n % 2), then streams; the next job's
    # weight load overlaps this stream (as the core does with preload).
    plan = {}  # cycle -> dict of inputs
    expect = {}
    t = 0
    for n, (W, X) in enumerate(jobs):
        for i in range(rows):
            plan.setdefault(t + i, {})["w"] = (i, n % 2, W[i])
        t += rows
        for r in range(X.shape[0]):
            plan.setdefault(t + r, {})["x"] = (X[r], n % 2)
            expect[t + r + rows + cols - 2] = [int(v) for v in (X[r] @ W)]
        t += X.shape[0]
    got = {}

    async def bench(ctx):
        for cyc in range(t + rows + cols + 2):
            step = plan.get(cyc, {})
            ctx.set(dut.w_en, "w" in step)
            if "w" in step:
                i, bank, wrow = step["w"]
                ctx.set(dut.w_row, i)
                ctx.set(dut.w_bank, bank)
                for j in range(cols):
                    ctx.set(dut.w[j], int(wrow[j]))
            ctx.set(dut.valid, "x" in step)
            if "x" in step:
                xrow, bank = step["x"]
                ctx.set(dut.bank, bank)
                for i in range(rows):
                    ctx.set(dut.x[i], int(xrow[i]))
            if ctx.get(dut.out_valid):
                got[cyc] = [ctx.get(dut.out[j]) for j in range(cols)]
            await ctx.tick()

    _run(dut, bench)
    assert got == expect
