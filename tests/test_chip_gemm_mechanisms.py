"""The chip level's per-chip GEMM mechanisms: library tiles (wave quantization), the sustained clock, the fixed
cost of a GEMM call, L2 multicast, a call that starts after an L2 flush and stream-K mappings (docs/timing.md, "Chip
level"). Small cases on an 8x8 int8 chip (~5 s)."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from compiler.accel.chip_model import (
    Mapping,
    active_cores,
    block_shape,
    chip_dram_bytes_per_cycle,
    clock_stretch,
    cold_start_cycles,
    core_view,
    flush_write_back_bytes,
    multicast_factor,
    overhead_cycles,
    run_mapping,
    stream_k_peers,
    stream_k_tiles,
)
from compiler.accel.mapping import candidate_grids, heuristic_mapping, search_mapping, stream_k_candidates
from isa.design import DesignError, L2Cache, load_design, parse_design

SMALL_TEXT = (Path(__file__).resolve().parent.parent / "designs" / "small-int8-8x8.toml").read_text()
L2_TEXT = """
[l2]
bytes = 1048576
bandwidth_bytes_per_cycle = 64
latency_cycles = 20
noc_bandwidth_bytes_per_cycle = 16
"""


def with_chip(lines: str, l2: str = L2_TEXT) -> str:
    """small-int8-8x8's text with extra [chip] lines (and an [l2] section unless l2 is empty)."""
    assert "[chip]\n" in SMALL_TEXT
    return SMALL_TEXT.replace("[chip]\n", "[chip]\n" + lines + "\n") + l2


def chip(cores: int, **fields) -> object:
    """small-int8-8x8 (8x8 int8 array, 800 MHz) as a multi-core chip with a shared L2 and the given [chip] fields."""
    d = load_design("small-int8-8x8")
    multicast = fields.pop("multicast_cores", 1)
    return dataclasses.replace(d, chip=dataclasses.replace(d.chip, cores=cores, **fields),
                               l2=L2Cache(1 << 20, 16 * cores, 20, 16, multicast))


def test_chip_fields_parse():
    d = parse_design(with_chip("gemm_tiles = [[16, 8], [16, 16]]\nsustained_clock_hz = 600e6\n"
                               "kernel_overhead_s = 2e-6"), "x.toml")
    assert d.chip.gemm_tiles == ((16, 8), (16, 16))
    assert d.chip.sustained_clock_hz == 600e6 and d.chip.kernel_overhead_s == 2e-6
    assert clock_stretch(d) == pytest.approx(800 / 600) and overhead_cycles(d) == 1600
    plain = load_design("small-int8-8x8")
    assert plain.chip.gemm_tiles == () and clock_stretch(plain) == 1.0 and overhead_cycles(plain) == 0


@pytest.mark.parametrize("lines, l2, message", [
    ("gemm_tiles = [[12, 8]]", L2_TEXT, "tile 12x8 of 'chip.gemm_tiles' is not a whole number of 8x8 array tiles"),
    ("gemm_tiles = [[16]]", L2_TEXT, "must be a list of [M, N] pairs of positive integers"),
    ("gemm_tiles = [[16, 0]]", L2_TEXT, "must be a list of [M, N] pairs"),
    ("sustained_clock_hz = 900e6", L2_TEXT, "must be 0 (= clock_hz) or between 1e6 and clock_hz"),
    ("kernel_overhead_s = -1", L2_TEXT, "field 'chip.kernel_overhead_s' = -1.0 is out of range"),
    # small-int8-8x8: 8 B/cycle x 1 core x 800 MHz = 6.4 GB/s of datasheet DRAM bandwidth
    ("sustained_dram_bandwidth_bytes_per_s = 7e9", L2_TEXT, "exceeds the datasheet DRAM bandwidth (6.4e+09 B/s"),
])
def test_chip_field_errors_name_file_line_and_fix(lines, l2, message):
    with pytest.raises(DesignError) as err:
        parse_design(with_chip(lines, l2), "x.toml")
    assert message in str(err.value) and str(err.value).startswith("x.toml:")


def test_l2_multicast_field_defaults_to_one_and_is_checked():
    assert parse_design(with_chip(""), "x.toml").l2.multicast_cores == 1
    assert parse_design(with_chip("") + "multicast_cores = 2\n", "x.toml").l2.multicast_cores == 2
    with pytest.raises(DesignError, match="field 'l2.multicast_cores' = 0 is out of range"):
        parse_design(with_chip("") + "multicast_cores = 0\n", "x.toml")


def test_blocks_are_whole_library_tiles_clipped_to_the_matrix():
    mp = Mapping(2, 3, tile=(16, 16))
    # 40 rows = 3 tiles of 16 over 2 grid rows: 2 tiles (32 rows) per core; 200 columns = 13 tiles over 3: 5 tiles
    assert block_shape(40, 200, 64, 1, mp)[:2] == (32, 80)
    assert block_shape(1, 8, 64, 1, Mapping(1, 1, tile=(16, 16)))[:2] == (1, 8)  # a GEMV is not padded to a tile
    d = chip(6, gemm_tiles=((16, 16), (16, 32)))
    grids = candidate_grids(d, 40, 200, 64)
    assert grids and all(g.tile in d.chip.gemm_tiles for g in grids)
    for g in grids:
        bm, bn, _, _ = block_shape(40, 200, 64, 1, g)
        assert (bm % g.tile[0] == 0 or bm == 40) and (bn % g.tile[1] == 0 or bn == 200)
    heur = heuristic_mapping(d, 40, 200)
    assert heur.tile in d.chip.gemm_tiles and heur.cores <= 6


def test_tiles_quantize_the_grid_into_waves():
    # 7 column tiles of 16 on 6 cores: the last tile makes a second wave, so one core computes two tiles
    tiled = chip(6, gemm_tiles=((16, 16),))
    best, runs = search_mapping(tiled, 16, 112, 256)
    assert best.block[1] % 16 == 0 and best.block[1] >= 32
    free, _ = search_mapping(chip(6), 16, 112, 256)  # any block size: 112 columns split finer
    assert free.block[1] < best.block[1] and free.cycles < best.cycles
    assert all(r.mapping.tile == (16, 16) for r in runs)


def test_sustained_clock_stretches_the_core_but_not_dram():
    mp = Mapping(2, 2)
    nominal = run_mapping(chip(4), 64, 64, 512, mp)
    slow = run_mapping(chip(4, sustained_clock_hz=400e6), 64, 64, 512, mp)  # half the 800 MHz clock
    assert slow.core_cycles == 2 * nominal.core_cycles
    assert slow.dram_roof_cycles == nominal.dram_roof_cycles  # bytes per second do not follow the core clock
    assert slow.l2_roof_cycles == pytest.approx(2 * nominal.l2_roof_cycles, abs=1)
    assert slow.cycles > nominal.cycles


def test_sustained_dram_bandwidth_sets_the_dram_roof():
    d = parse_design(with_chip("sustained_dram_bandwidth_bytes_per_s = 4.8e9"), "x.toml")
    assert d.chip.sustained_dram_bandwidth_bytes_per_s == 4.8e9
    assert chip_dram_bytes_per_cycle(d) == pytest.approx(6.0)  # 4.8 GB/s at 800 MHz, below the datasheet's 8
    assert chip_dram_bytes_per_cycle(load_design("small-int8-8x8")) == 8.0  # unset: cores x the per-core share
    # a GEMV streams its matrix once: at half the datasheet bandwidth the DRAM roof doubles and sets the time
    mp = Mapping(1, 4)
    full = run_mapping(chip(4), 1, 256, 4096, mp)
    half = run_mapping(chip(4, sustained_dram_bandwidth_bytes_per_s=0.5 * 4 * 8 * 800e6), 1, 256, 4096, mp)
    assert half.dram_roof_cycles == pytest.approx(2 * full.dram_roof_cycles, abs=1)
    assert half.bound == "dram" and half.core_cycles == full.core_cycles
    assert half.cycles > full.cycles


def test_c_leaves_the_chip_in_the_calls_output_dtype():
    # a library epilogue converts the int32 accumulator (here to int8): C's DRAM writes shrink 4x, and a split-K
    # run's partial sums stay in the accumulator dtype
    acc = run_mapping(chip(4), 64, 64, 512, Mapping(2, 2))
    narrow = run_mapping(chip(4), 64, 64, 512, Mapping(2, 2), out_bytes=1)
    assert acc.dram_write_bytes == 64 * 64 * 4 and narrow.dram_write_bytes == 64 * 64
    assert narrow.dram_read_bytes == acc.dram_read_bytes and narrow.dram_roof_cycles < acc.dram_roof_cycles
    small_l2 = dataclasses.replace(chip(4), l2=L2Cache(4096, 64, 20, 16))  # partials spill to DRAM
    split = run_mapping(small_l2, 64, 64, 512, Mapping(1, 1, 4), out_bytes=1)
    assert split.dram_write_bytes == 64 * 64 * (1 + 4 * 4)  # C in int8, four int32 partial blocks


def test_kernel_overhead_is_added_once_per_call():
    mp = Mapping(2, 2)
    base = run_mapping(chip(4), 64, 64, 512, mp)
    for batch in (1, 4):
        with_cost = run_mapping(chip(4, kernel_overhead_s=5e-6), 64, 64, 512, mp, batch=batch)
        plain = base if batch == 1 else run_mapping(chip(4), 64, 64, 512, mp, batch=batch)
        assert with_cost.cycles - plain.cycles == round(5e-6 * 800e6)  # 4,000 cycles, once, whatever the batch


def test_multicast_shares_the_larger_panel_and_widens_each_cores_l2_share():
    d = chip(8, multicast_cores=2)
    assert multicast_factor(d, Mapping(1, 1), 64, 64) == 1.0  # no second core in a row or column to share with
    assert multicast_factor(d, Mapping(2, 2), 64, 64) == pytest.approx(128 / 96)
    assert multicast_factor(d, Mapping(4, 1), 64, 256) == pytest.approx(320 / 192)  # B shared down a column
    assert multicast_factor(chip(8), Mapping(2, 2), 64, 64) == 1.0  # multicast_cores = 1: no sharing
    narrow = dataclasses.replace(d, l2=dataclasses.replace(d.l2, noc_bandwidth_bytes_per_cycle=1024))
    plain, shared = core_view(narrow, 8), core_view(narrow, 8, multicast_factor(d, Mapping(2, 4), 64, 64))
    assert shared.memory.dram_bandwidth_bytes_per_cycle == math.floor(128 * 4 / 3) // 8 > \
        plain.memory.dram_bandwidth_bytes_per_cycle
    no_mc = run_mapping(chip(8), 256, 256, 256, Mapping(2, 4))
    mc = run_mapping(d, 256, 256, 256, Mapping(2, 4))
    assert mc.l2_roof_cycles < no_mc.l2_roof_cycles and mc.cycles <= no_mc.cycles


def test_cold_start_fields_parse_default_to_zero_and_are_checked():
    d = parse_design(with_chip("cold_start_s = 2e-6") + "flush_dirty_bytes = 4096\n", "x.toml")
    assert d.chip.cold_start_s == 2e-6 and d.l2.flush_dirty_bytes == 4096
    assert cold_start_cycles(d) == 1600  # 2 us at 800 MHz
    plain = load_design("small-int8-8x8")
    assert plain.chip.cold_start_s == 0.0 and cold_start_cycles(plain) == 0
    assert parse_design(with_chip(""), "x.toml").l2.flush_dirty_bytes == 0
    with pytest.raises(DesignError, match="field 'chip.cold_start_s' = -1.0 is out of range"):
        parse_design(with_chip("cold_start_s = -1"), "x.toml")
    with pytest.raises(DesignError, match="field 'l2.flush_dirty_bytes' = -1 is out of range"):
        parse_design(with_chip("") + "flush_dirty_bytes = -1\n", "x.toml")


def test_a_cold_call_pays_the_cold_start_once_and_a_warm_one_does_not():
    mp = Mapping(2, 2)
    plain = run_mapping(chip(4), 64, 64, 512, mp)
    d = chip(4, cold_start_s=5e-6)
    assert run_mapping(d, 64, 64, 512, mp).cycles == plain.cycles  # warm: the field changes nothing
    assert run_mapping(chip(4), 64, 64, 512, mp, cold=True).cycles == plain.cycles  # cold, field unset: nothing
    for batch in (1, 4):
        warm = plain if batch == 1 else run_mapping(d, 64, 64, 512, mp, batch=batch)
        cold = run_mapping(d, 64, 64, 512, mp, batch=batch, cold=True)
        assert cold.cycles - warm.cycles == 4000  # 5 us at 800 MHz, once per call whatever the batch
        assert cold.dram_write_bytes == warm.dram_write_bytes


def test_a_cold_call_writes_back_the_dirty_lines_its_reads_evict():
    d = chip(4)
    d = dataclasses.replace(d, l2=dataclasses.replace(d.l2, bytes=65536, flush_dirty_bytes=16384))
    assert flush_write_back_bytes(d, 0) == 0
    assert flush_write_back_bytes(d, 32768) == 8192  # half an L2 of reads evicts half the dirty lines
    assert flush_write_back_bytes(d, 10 * 65536) == 16384  # an L2's worth or more: all of them
    assert flush_write_back_bytes(chip(4), 10 * 65536) == 0  # none set
    # a GEMV reading 512 KB (more than the 64 KB L2): 16 KB more DRAM traffic, a longer DRAM roof; on the core-bound
    # chip the write-back hides behind the core, at half the DRAM bandwidth it sets the time
    mp = Mapping(1, 4)
    warm = run_mapping(d, 1, 256, 2048, mp)
    cold = run_mapping(d, 1, 256, 2048, mp, cold=True)
    assert cold.dram_write_bytes - warm.dram_write_bytes == 16384 and cold.dram_read_bytes == warm.dram_read_bytes
    assert cold.dram_roof_cycles > warm.dram_roof_cycles and cold.counters["dram_write_bytes"] == cold.dram_write_bytes
    assert warm.bound == "core" and cold.cycles == warm.cycles
    slow = dataclasses.replace(d, chip=dataclasses.replace(d.chip, sustained_dram_bandwidth_bytes_per_s=0.5 * 4 * 8 * 800e6))
    warm, cold = run_mapping(slow, 1, 256, 2048, mp), run_mapping(slow, 1, 256, 2048, mp, cold=True)
    assert cold.bound == "dram" and cold.cycles - warm.cycles == cold.dram_roof_cycles - warm.dram_roof_cycles > 0


def test_a_cold_start_is_set_only_where_flushed_measurements_exist():
    # the cold start is calibrated on flushed measurements of the imitated chip (h100-like: docs/sources.md V.11); a
    # design without any leaves both fields at 0, so a cold call there costs exactly what a warm one does
    from isa.design import shipped_designs
    from workbench.measured import load_measurements

    flushed = {r.chip for r in load_measurements() if r.l2 == "flushed"}
    assert "h100-sxm" in flushed
    for name in shipped_designs():
        d = load_design(name)
        dirty = d.l2.flush_dirty_bytes if d.l2 is not None else 0
        if d.extras.get("reference", {}).get("chip") in flushed:
            assert d.chip.cold_start_s > 0 and 0 < dirty < d.l2.bytes, name
        else:
            assert d.chip.cold_start_s == 0 and dirty == 0, name


def test_stream_k_field_parses_defaults_to_off_and_is_checked():
    assert parse_design(with_chip("stream_k = true"), "x.toml").chip.stream_k is True
    assert load_design("small-int8-8x8").chip.stream_k is False
    with pytest.raises(DesignError, match=r"x.toml:\d+: field 'chip.stream_k' = 1 must be true or false"):
        parse_design(with_chip("stream_k = 1"), "x.toml")


def test_stream_k_shares_all_tiles_k_steps_evenly_over_the_cores():
    # 3 output tiles of 16x16 (K = 64) on 4 cores: a grid of whole tiles leaves a core idle; stream-K gives each
    # core 3 * 64 / 4 = 48 K steps of one tile (shares that end mid-tile: up to 3 cores meet in one tile)
    mp = Mapping(3, 1, tile=(16, 16), sk_cores=4)
    assert block_shape(48, 16, 64, 1, mp) == (16, 16, 48, 1) and active_cores(48, 16, 64, 1, mp) == 4
    assert stream_k_tiles(48, 16, 1, mp) == 3 and stream_k_peers(64, 48) == 3
    assert stream_k_peers(64, 64) == 1 and stream_k_peers(64, 128) == 1 and stream_k_peers(64, 96) == 2
    assert "stream-K on 4 cores of 16x16 tiles" in mp.describe() and mp.cores == 4


def test_stream_k_balances_a_partial_wave_and_pays_a_fixup_only_for_split_tiles():
    d = chip(4, gemm_tiles=((16, 16),), stream_k=True)
    grid = run_mapping(d, 48, 16, 512, Mapping(3, 1, tile=(16, 16)))  # 3 tiles: one core idle
    sk = run_mapping(d, 48, 16, 512, Mapping(3, 1, tile=(16, 16), sk_cores=4))
    assert grid.active == 3 and sk.active == 4 and grid.reduction_cycles == 0
    assert sk.core_cycles < grid.core_cycles and sk.reduction_cycles > 0
    # 4 tiles on 4 cores: every share is one whole tile, nothing to fix up, and the same work as the grid's
    even = run_mapping(d, 64, 16, 512, Mapping(4, 1, tile=(16, 16), sk_cores=4))
    assert even.reduction_cycles == 0 and even.block == (16, 16, 512)


def test_stream_k_is_an_extra_candidate_of_the_search_never_a_slower_one():
    off = chip(4, gemm_tiles=((16, 16),))
    on = dataclasses.replace(off, chip=dataclasses.replace(off.chip, stream_k=True))
    assert stream_k_candidates(off, 48, 16, 512) == []
    assert [mp.sk_cores for mp in stream_k_candidates(on, 48, 16, 512)] == [4]
    base, _ = search_mapping(off, 48, 16, 512)
    best, runs = search_mapping(on, 48, 16, 512)
    assert any(r.mapping.sk_cores for r in runs) and best.cycles <= base.cycles
    no_l2 = dataclasses.replace(on, l2=None)  # stream-K is a chip-level mapping: none without an L2
    assert stream_k_candidates(no_l2, 48, 16, 512) == []


def test_stream_k_is_on_for_h100_like_only():
    # cited for CUTLASS's sm90 kernels (docs/sources.md V.13); no Tensile stream-K kernel was found for gfx1100
    assert load_design("h100-like").chip.stream_k is True
    assert load_design("rx7900xtx-like").chip.stream_k is False
