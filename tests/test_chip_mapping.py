"""The chip level ([l2], compiler.accel.chip_model) and the mapping search (compiler.accel.mapping)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from compiler.accel import mapping as mapping_mod
from compiler.accel.chip_model import Mapping, run_mapping
from compiler.accel.gemm_lowering import gemm_program
from compiler.accel.gemm_run import run_gemm, simulate_gemm
from compiler.accel.mapping import best_run, candidate_grids, heuristic_mapping, search_mapping
from compiler.accel.tiling import os_block
from isa.design import DesignError, L2Cache, load_design, parse_design

SMALL_TEXT = (Path(__file__).resolve().parent.parent / "designs" / "small-int8-8x8.toml").read_text()
L2_TEXT = """
[l2]
bytes = 1048576
bandwidth_bytes_per_cycle = 64
latency_cycles = 20
noc_bandwidth_bytes_per_cycle = 16
"""


def chip(cores: int, l2_bytes: int = 1 << 20) -> object:
    """small-int8-8x8 (8x8 int8 array) as a multi-core chip with a shared L2."""
    d = load_design("small-int8-8x8")
    return dataclasses.replace(d, chip=dataclasses.replace(d.chip, cores=cores),
                               l2=L2Cache(l2_bytes, 16 * cores, 20, 16))


def test_l2_section_parses_and_is_optional():
    assert load_design("small-int8-8x8").l2 is None
    d = parse_design(SMALL_TEXT + L2_TEXT, "x.toml")
    assert d.l2 == L2Cache(1048576, 64, 20, 16)


@pytest.mark.parametrize("old, new, message", [
    ("latency_cycles = 20", "latency_cycles = -1", "field 'l2.latency_cycles' = -1 is out of range"),
    ("latency_cycles = 20", "latncy_cycles = 20", "unknown field 'l2.latncy_cycles' (did you mean 'l2.latency_cycles'?)"),
    ("bytes = 1048576\n", "", "section [l2] is missing required field 'l2.bytes'"),
])
def test_l2_errors_name_the_field(old, new, message):
    with pytest.raises(DesignError) as err:
        parse_design(SMALL_TEXT + L2_TEXT.replace(old, new), "x.toml")
    assert message in str(err.value) and str(err.value).startswith("x.toml")


def test_search_keeps_the_heuristic_when_nothing_beats_it():
    d = chip(1)
    best, runs = search_mapping(d, 8, 8, 8)  # one array tile on one core: every candidate takes the same time
    assert runs[0].mapping == heuristic_mapping(d, 8, 8) == best.mapping


@pytest.mark.parametrize("shape", [(64, 64, 64), (40, 200, 96), (1, 128, 256)])
def test_search_is_never_slower_than_the_heuristic(shape):
    d = chip(6)
    best, runs = search_mapping(d, *shape)
    assert runs[0].mapping == heuristic_mapping(d, *shape[:2])
    assert best.cycles <= runs[0].cycles


def test_grids_with_idle_cores_are_searched_and_can_win():
    d = chip(7)  # prime: the divisor grid is 1x7 or 7x1
    assert any(g.cores < 7 for g in candidate_grids(d, 64, 64, 64))
    best, runs = search_mapping(d, 64, 64, 64)
    assert best.active < 7 and best.cycles < runs[0].cycles


def test_split_k_grid_runs_and_partials_sum_to_the_product():
    d = chip(4)
    run = run_mapping(d, 8, 8, 512, Mapping(1, 1, gk=4))
    assert run.active == 4 and run.block == (8, 8, 128) and run.reduction_cycles > 0
    assert run.dram_read_bytes == 8 * 512 + 512 * 8  # the partials stay in the L2
    # each core's program computes its K slice exactly; the reduction adds the slices
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (8, 512), dtype=np.int8)
    b = rng.integers(-128, 128, (512, 8), dtype=np.int8)
    parts = [run_gemm(d, a[:, k0:k0 + 128], b[k0:k0 + 128])[0] for k0 in range(0, 512, 128)]
    assert np.array_equal(sum(p.astype(np.int64) for p in parts), a.astype(np.int64) @ b.astype(np.int64))


def test_gemv_reads_the_activation_once_without_padding():
    d = load_design("small-int8-8x8")
    gp = gemm_program(d, 1, 64, 256)
    a_loads = [i for i in gp.program if i.mnemonic == "load" and gp.a_addr <= i["dram"] < gp.b_addr and i["rows"]]
    assert {i["cols"] for i in a_loads} == {1}  # one element per row: the zeros beside it are never read
    assert 64 // 8 // os_block(d, 1, 64, 256).bn > 2  # several column blocks...
    assert sum(i["rows"] for i in a_loads) == 2 * 256  # ...but the activation is loaded once per scratchpad half
    assert simulate_gemm(1, 64, 256, design=d).verified is True
    assert simulate_gemm(3, 5, 40, design=d, seed=2).verified is True  # M < ROWS and N < COLS
    run = run_mapping(chip(4), 1, 64, 256, heuristic_mapping(chip(4), 1, 64))
    assert run.dram_read_bytes == 256 + 256 * 64  # the activation and the weights, each once


def test_dram_traffic_counts_shared_panels_once_when_the_l2_holds_them():
    big, small = chip(4), chip(4, l2_bytes=1024)
    mp = Mapping(2, 2, block=None)
    shared = run_mapping(big, 128, 128, 512, mp)
    assert shared.dram_read_bytes == 2 * 128 * 512  # A and B once, though two cores read each panel
    assert run_mapping(small, 128, 128, 512, mp).dram_read_bytes > shared.dram_read_bytes


def test_best_mapping_is_cached_per_design_and_shape(tmp_path, monkeypatch):
    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path))
    d = chip(6)
    first = best_run(d, 64, 64, 64)
    monkeypatch.setattr(mapping_mod, "search_mapping", lambda *a, **k: pytest.fail("searched again"))
    assert best_run(d, 64, 64, 64).cycles == first.cycles
    entry = next((tmp_path / "mapping").iterdir())
    entry.write_bytes(b"not json")  # a corrupt entry is searched again, not trusted
    monkeypatch.undo()
    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path))
    assert best_run(d, 64, 64, 64).cycles == first.cycles


def test_designs_without_l2_keep_the_old_estimate_path():
    from workbench.estimate import Layer, Workload, simulate_workload
    d = load_design("small-int8-8x8")
    d = dataclasses.replace(d, chip=dataclasses.replace(d.chip, cores=4))
    runs, _, _ = simulate_workload(d, Workload("w", (Layer("g", 64, 64, 64),)))
    assert runs[0].mapping == "" and runs[0].grid[0] * runs[0].grid[1] == 4
    runs, _, _ = simulate_workload(chip(4), Workload("w", (Layer("g", 64, 64, 64),)))
    assert runs[0].mapping.startswith("grid")


def test_conv_and_attention_workloads_become_gemm_layers():
    from workbench.estimate import WorkloadError, parse_workload
    (conv,) = parse_workload("conv:2x64x56x56,128x3x3,s2,p1").layers
    assert (conv.m, conv.n, conv.k) == (2 * 28 * 28, 128, 64 * 9)  # implicit GEMM
    scores, context = parse_workload("attention:2x4x256x64").layers
    assert (scores.m, scores.n, scores.k, scores.count) == (256, 256, 64, 8)
    assert (context.m, context.n, context.k, context.count) == (256, 64, 256, 8)
    for bad in ("conv:1x3x8x8,4x9x9", "conv:1x3x8x8", "attention:1x2x3"):
        with pytest.raises(WorkloadError, match="expected|must"):
            parse_workload(bad)


def test_batched_layers_spread_the_batch_over_cores():
    d = chip(8)
    best, _ = search_mapping(d, 16, 16, 64, batch=8)
    assert best.mapping.gb > 1 and best.active > 1


def test_sweep_points_of_l2_designs_take_the_chip_level(tmp_path, monkeypatch):
    from workbench.estimate import Layer, Workload, estimate
    from workbench.sweep_workloads import GemmLayers
    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path))
    d = dataclasses.replace(chip(4), name="chip4")
    layers = (Layer("g", 64, 64, 64),)
    swept = GemmLayers("g", layers).evaluate(d)
    assert swept["seconds"]["value"] == estimate(d, Workload("g", layers)).figures["seconds"].value
