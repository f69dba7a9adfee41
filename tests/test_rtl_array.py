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
                    row = getattr(dut, f"row_{i}")
                    seen.setdefault(cyc, []).append((i, ctx.get(dut.done_tid[i]),
                                                     [ctx.get(row[j]) for j in range(cols)]))
                if ctx.get(dut.pre_done[i]):
                    pre_seen.setdefault(cyc + 1, []).append((i, ctx.get(dut.pre_tid[i])))
            await ctx.tick()

    _run(dut, bench)
    assert {c: sorted(v) for c, v in seen.items()} == {c: sorted(v) for c, v in expect.items()}
    assert {c: sorted(v) for c, v in pre_seen.items()} == {c: sorted((i, t) for i, t, _ in v)
                                                           for c, v in expect.items()}


@pytest.mark.parametrize("rows,cols", [(2, 2), (4, 4), (4, 3)])
def test_ws_array_streams_with_weight_switch(rows, cols):
    rng = np.random.default_rng(rows * 7 + cols)
    jobs = []
    for M in (6, 3):
        W = rng.integers(-128, 128, (rows, cols))
        X = rng.integers(-128, 128, (M, rows))
        jobs.append((W, X))
    dut = WSArray(rows, cols)
    outs = []

    async def bench(ctx):
        async def load(W):
            for k in range(rows):
                ctx.set(dut.w_en, 1)
                ctx.set(dut.w_row, k)
                for j in range(cols):
                    ctx.set(dut.w[j], int(W[k, j]))
                await ctx.tick()
            ctx.set(dut.w_en, 0)

        await load(jobs[0][0])
        total = sum(x.shape[0] for _, x in jobs)
        t = 0
        for n, (_W, X) in enumerate(jobs):
            for mrow in range(X.shape[0]):
                for k in range(rows):
                    ctx.set(dut.x[k], int(X[mrow, k]))
                ctx.set(dut.valid, 1)
                ctx.set(dut.first, mrow == 0)
                # load the next weights once the last PE has switched (R + C - 2 cycles after first)
                if n + 1 < len(jobs) and mrow == X.shape[0] - 1:
                    pass
                await ctx.tick()
                t += 1
                if ctx.get(dut.out_valid):
                    outs.append([ctx.get(dut.out[j]) for j in range(cols)])
            ctx.set(dut.valid, 0)
            if n + 1 < len(jobs):
                for _ in range(rows + cols):
                    await ctx.tick()
                    if ctx.get(dut.out_valid):
                        outs.append([ctx.get(dut.out[j]) for j in range(cols)])
                await load(jobs[n + 1][0])
        for _ in range(rows + cols + 2):
            await ctx.tick()
            if ctx.get(dut.out_valid):
                outs.append([ctx.get(dut.out[j]) for j in range(cols)])
        assert len(outs) == total

    _run(dut, bench)
    ref = np.concatenate([X @ W for W, X in jobs])
    np.testing.assert_array_equal(np.array(outs), ref)


def test_ws_array_overlapped_streams_keep_their_weights():
    """A new stream (with new weights) right behind the previous one: rows in flight keep the old weights."""
    rows, cols = 3, 3
    rng = np.random.default_rng(5)
    W0, W1 = rng.integers(-128, 128, (2, rows, cols))
    X0, X1 = rng.integers(-128, 128, (2, 4, rows))
    dut = WSArray(rows, cols)
    outs = []

    async def bench(ctx):
        async def step():
            await ctx.tick()
            if ctx.get(dut.out_valid):
                outs.append([ctx.get(dut.out[j]) for j in range(cols)])

        for W in (W0, W1):  # W0 into shadow, then switch via first of stream 0
            for k in range(rows):
                ctx.set(dut.w_en, 1)
                ctx.set(dut.w_row, k)
                for j in range(cols):
                    ctx.set(dut.w[j], int(W[k, j]))
                await step()
            ctx.set(dut.w_en, 0)
            if W is W0:
                # stream 0
                for mrow in range(X0.shape[0]):
                    for k in range(rows):
                        ctx.set(dut.x[k], int(X0[mrow, k]))
                    ctx.set(dut.valid, 1)
                    ctx.set(dut.first, mrow == 0)
                    await step()
                ctx.set(dut.valid, 0)
                ctx.set(dut.first, 0)
        # shadow now holds W1 (loaded while stream 0 drained); stream 1 immediately
        for mrow in range(X1.shape[0]):
            for k in range(rows):
                ctx.set(dut.x[k], int(X1[mrow, k]))
            ctx.set(dut.valid, 1)
            ctx.set(dut.first, mrow == 0)
            await step()
        ctx.set(dut.valid, 0)
        for _ in range(rows + cols + 2):
            await step()

    _run(dut, bench)
    np.testing.assert_array_equal(np.array(outs), np.concatenate([X0 @ W0, X1 @ W1]))
