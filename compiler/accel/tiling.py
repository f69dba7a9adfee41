"""Block-size choice for the GEMM generator: an analytical model of one design's array, SRAM and DRAM.

Output-stationary: a block of `bm x bn` array tiles of C stays in one accumulator half while the reduction
streams in chunks of `kc` rows; per chunk the generator loads `bm` A tiles and `bn` B tiles (`kc` rows each)
into one scratchpad half and runs `bm * bn` tile iterations. Per reduction row that is `bm * bn` matrix
cycles for `bm + bn` DRAM rows, so larger blocks raise the arithmetic intensity; the capacities bound them.
The model below mirrors docs/timing.md (DMA latency per instruction, one burst per row, one DRAM port shared
by loads and stores, OS occupancy `max(k, ROWS)` per tile) and picks the block with the fewest estimated
cycles. It only chooses sizes: any choice gives a valid, exact program.
"""
from __future__ import annotations

from dataclasses import dataclass

from isa.design import Design, ceil_div
from isa.instructions import INSTRUCTIONS

# The ISA's field widths, read from the instruction table (the one source); the lowering imports them from here.
MAX_STREAM = INSTRUCTIONS["gemm"].field("k").max  # longest stream of one gemm
MAX_REPEAT = INSTRUCTIONS["gemm"].field("repeat").max + 1  # iterations of one gemm
MAX_DMA_ROWS = INSTRUCTIONS["load"].field("rows").max  # rows of one load or store; longer ones are split


@dataclass(frozen=True)
class OsBlock:
    """Output-stationary blocking: `bm` row tiles x `bn` column tiles of C, reduction chunks of `kc` rows."""

    bm: int
    bn: int
    kc: int
    acc_buffers: int = 2  # 1: the block fills the whole accumulator and its stores hold up the next block


@dataclass(frozen=True)
class WsBlock:
    """Weight-stationary blocking: `ml` streamed rows x `bn` column tiles of C, `kg` K tiles per load group."""

    ml: int
    bn: int
    kg: int


def _beats(design: Design, elems: int, elem_bytes: int) -> int:
    """DRAM port cycles per row of `elems` elements (one burst per row)."""
    return ceil_div(elems * elem_bytes, design.memory.dram_bandwidth_bytes_per_cycle)


def _dma(design: Design, rows: int, beats: int) -> int:
    """Port cycles of one logical DMA of `rows` rows (split into several at the rows-field limit)."""
    return ceil_div(rows, MAX_DMA_ROWS) * design.memory.dram_latency_cycles + rows * beats


def _splits(total: int, block: int) -> list[tuple[int, int]]:
    """(size, count) of the blocks that cover `total` items in blocks of `block` (the last one ragged)."""
    full, rest = divmod(total, block)
    return [(block, full)] + ([(rest, 1)] if rest else [])


def _os_cycles(design: Design, m_tiles: int, n_tiles: int, k: int, bm: int, bn: int, kc: int,
               acc_buffers: int = 2) -> int:
    """Estimated cycles of the whole OS GEMM with this blocking.

    Each block takes the longer of its matrix time and its DRAM port time (loads overlap the previous
    group's compute); the first loads and the last stores are exposed. With one reduction chunk the generator
    keeps B (and A, with one row block) resident in both scratchpad halves, so only the first two blocks of a
    column (or of the whole run) load them.
    """
    rows, cols = design.matrix.rows, design.matrix.cols
    beat_a = _beats(design, rows, design.input_bytes)
    beat_b = _beats(design, cols, design.input_bytes)
    beat_c = _beats(design, cols, design.acc_bytes)
    chunks = _splits(k, kc)
    one_chunk = sum(c for _, c in chunks) == 1
    i_blocks = [bi for bi, c in _splits(m_tiles, bm) for _ in range(c)]
    total = total_compute = blocks = 0
    first_load = last_store = 0
    for bj, nj in _splits(n_tiles, bn):
        for _ in range(nj):
            for pos, bi in enumerate(i_blocks):
                load_a = not (one_chunk and len(i_blocks) == 1 and blocks >= 2)
                load_b = not (one_chunk and pos >= 2)
                compute = sum(c * bi * bj * max(kl, rows) for kl, c in chunks)
                loads = sum(c * (load_a * _dma(design, bi * kl, beat_a) + load_b * _dma(design, bj * kl, beat_b))
                            for kl, c in chunks)
                last_store = bi * bj * _dma(design, rows, beat_c)
                if blocks == 0:
                    first_load = loads // sum(c for _, c in chunks)
                if acc_buffers == 1:  # the next block's gemms wait for these stores
                    total += max(compute, loads) + last_store
                else:
                    total += max(compute, loads + last_store)
                total_compute += compute
                blocks += 1
    return max(total, total_compute + first_load + last_store) + rows + cols


def os_block(design: Design, m: int, n: int, k: int, whole_k: bool = False) -> OsBlock:
    """The OS blocking with the fewest estimated cycles that fits half the scratchpad and accumulator.

    whole_k: every tile streams the whole reduction in one gemm (up to the `k` field), as the ideal-memory
    (SCALE-Sim) mode needs; blocks then grow only along N, the fold structure the formula counts.
    """
    rows, sp_half = design.matrix.rows, design.scratchpad_rows // 2
    n_tiles = ceil_div(n, design.matrix.cols)
    if whole_k:
        kc = min(k, MAX_STREAM, sp_half // 2)
        bn = max(1, min(n_tiles, sp_half // kc - 1, design.accumulator_rows // 2 // rows, MAX_REPEAT))
        return OsBlock(1, bn, kc)
    ranked = os_block_candidates(design, m, n, k, 1)
    # not even one A and one B row fit a half: the caller's design is unusable anyway
    return ranked[0] if ranked else OsBlock(1, 1, 1)


def os_block_candidates(design: Design, m: int, n: int, k: int, count: int) -> list[OsBlock]:
    """The `count` OS blockings with the fewest estimated cycles, best first (os_block's ranking)."""
    rows = design.matrix.rows
    sp_half = design.scratchpad_rows // 2
    m_tiles, n_tiles = ceil_div(m, rows), ceil_div(n, design.matrix.cols)
    ranked: list[tuple[int, int, OsBlock]] = []
    # Two accumulator buffers hide a block's stores; one buffer doubles the block (more reuse per DRAM byte)
    # at the price of exposed stores, which pays off when loads dominate and stores are rare (long K).
    for buffers in (2, 1):
        acc_tiles = design.accumulator_rows // buffers // rows
        for bm in range(1, min(m_tiles, acc_tiles) + 1):
            for bn in range(1, min(n_tiles, acc_tiles // bm, MAX_REPEAT) + 1):
                kc_max = min(k, MAX_STREAM, sp_half // (bm + bn))
                if kc_max < 1:
                    continue
                kc = ceil_div(k, ceil_div(k, kc_max))  # equal chunks: no short tail chunk
                ranked.append((_os_cycles(design, m_tiles, n_tiles, k, bm, bn, kc, buffers), bm * bn,
                               OsBlock(bm, bn, kc, buffers)))
    ranked.sort(key=lambda r: r[:2])  # stable: the first of equal keys, as a strict-less scan picks
    return [r[2] for r in ranked[:count]]


def _ws_cycles(design: Design, m: int, n_tiles: int, k_tiles: int, ml: int, bn: int, kg: int) -> int:
    """Estimated cycles of the whole WS GEMM with this blocking (same block model as `_os_cycles`)."""
    rows, cols = design.matrix.rows, design.matrix.cols
    beat_a = _beats(design, rows, design.input_bytes)
    beat_b = _beats(design, cols, design.input_bytes)
    beat_c = _beats(design, cols, design.acc_bytes)
    lat = design.memory.dram_latency_cycles
    groups = _splits(k_tiles, kg)
    one_group = sum(c for _, c in groups) == 1
    j_blocks = [bj for bj, c in _splits(n_tiles, bn) for _ in range(c)]
    total = total_compute = blocks = 0
    first_load = last_store = 0
    for bi, ni in _splits(m, ml):
        for _ in range(ni):
            for pos, bj in enumerate(j_blocks):
                load_a = not (one_group and pos >= 2)
                compute = sum(c * kl * bj * (rows + bi) for kl, c in groups)
                loads = sum(c * (load_a * kl * _dma(design, bi, beat_a) + bj * (lat + kl * rows * beat_b))
                            for kl, c in groups)
                last_store = bj * _dma(design, bi, beat_c)
                if blocks == 0:
                    first_load = loads // sum(c for _, c in groups)
                total += max(compute, loads + last_store)
                total_compute += compute
                blocks += 1
    return max(total, total_compute + first_load + last_store) + rows + cols


def ws_block(design: Design, m: int, n: int, k: int, whole_k: bool = False) -> WsBlock:
    """The WS blocking with the fewest estimated cycles that fits half the scratchpad and accumulator.

    whole_k: each fold streams all the M rows it can (up to the `k` field and half the accumulator), one
    column tile at a time, the fold structure SCALE-Sim's formula counts in the ideal-memory mode.
    """
    rows = design.matrix.rows
    sp_half, acc_half = design.scratchpad_rows // 2, design.accumulator_rows // 2
    k_tiles, n_tiles = ceil_div(k, rows), ceil_div(n, design.matrix.cols)
    ml_max = max(1, min(m, MAX_STREAM, acc_half, sp_half - rows))
    if whole_k:
        return WsBlock(ml_max, 1, max(1, min(k_tiles, sp_half // (ml_max + rows), MAX_REPEAT)))
    best: tuple[int, int, WsBlock] | None = None
    for parts in range(ceil_div(m, ml_max), ceil_div(m, ceil_div(ml_max, 8)) + 1):
        ml = ceil_div(m, parts)  # equal row chunks
        if ml < rows and parts > ceil_div(m, ml_max):
            break  # shorter streams than a preload only add preload time
        for bn in range(1, min(n_tiles, acc_half // ml) + 1):
            kg_max = min(k_tiles, MAX_REPEAT, sp_half // (ml + bn * rows))
            if kg_max < 1:
                continue
            kg = ceil_div(k_tiles, ceil_div(k_tiles, kg_max))
            key = (_ws_cycles(design, m, n_tiles, k_tiles, ml, bn, kg), -ml)
            if best is None or key < best[:2]:
                best = (*key, WsBlock(ml, bn, kg))
    if best is None:
        return WsBlock(ml_max, 1, 1)
    return best[2]
