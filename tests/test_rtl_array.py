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
def test_os_array_back_to_back_tiles(rows, cols):
    rng = np.random.default_rng(rows * 10 + cols)
    tiles = []
    for K in (5, 1, 7):  # tiles of different depth, streamed back to back (overlapped)
        A = rng.integers(-128, 128, (rows, K))
        B = rng.integers(-128, 128, (K, cols))
        tiles.append((A, B))
    dut = OSArray(rows, cols)
    got = []

    async def bench(ctx):
        starts = []
        t = 0
        for A, B in tiles:
            starts.append(t)
            K = A.shape[1]
            for k in range(K):
                for i in range(rows):
                    ctx.set(dut.a[i], int(A[i, k]))
                for j in range(cols):
                    ctx.set(dut.b[j], int(B[k, j]))
                ctx.set(dut.valid, 1)
                ctx.set(dut.first, k == 0)
                ctx.set(dut.last, k == K - 1)
                await ctx.tick()
                t += 1
                # Results of the previous tile are read while this one streams, as late as allowed.
            ctx.set(dut.valid, 0)
        # The documented readiness: PE(i, j) of a tile started at s with depth K is final from s + K + i + j
        # until the next tile's last step reaches it. Read the last tile after it drains.
        for _ in range(rows + cols):
            await ctx.tick()
        for i in range(rows):
            ctx.set(dut.read_row, i)
            got.append([ctx.get(dut.row_out[j]) for j in range(cols)])

    _run(dut, bench)
    A, B = tiles[-1]
    np.testing.assert_array_equal(np.array(got), A @ B)


def test_os_array_result_ready_time():
    rows, cols, K = 3, 4, 6
    rng = np.random.default_rng(1)
    A = rng.integers(-128, 128, (rows, K))
    B = rng.integers(-128, 128, (K, cols))
    dut = OSArray(rows, cols)
    ref = A @ B

    async def bench(ctx):
        for k in range(K + rows + cols):
            if k < K:
                for i in range(rows):
                    ctx.set(dut.a[i], int(A[i, k]))
                for j in range(cols):
                    ctx.set(dut.b[j], int(B[k, j]))
            ctx.set(dut.valid, k < K)
            ctx.set(dut.first, k == 0)
            ctx.set(dut.last, k == K - 1)
            await ctx.tick()
            cycle = k + 1  # cycles elapsed since the first input
            for i in range(rows):
                ctx.set(dut.read_row, i)
                row = [ctx.get(dut.row_out[j]) for j in range(cols)]
                for j in range(cols):
                    if cycle >= K + i + j:
                        assert row[j] == ref[i, j], (cycle, i, j)

    _run(dut, bench)


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
