"""estimate: workload parsing, fit checks, core split, and composition of simulator output with the models."""

import math
from types import SimpleNamespace

import pytest

from isa.counters import MACS_COUNTER
from isa.design import load_design
from workbench.estimate import (
    Layer,
    WorkloadError,
    check_fits,
    core_grid,
    estimate,
    parse_workload,
)
from workbench.power import event_energies


def test_parse_workload(tmp_path):
    w = parse_workload("gemm:64x32x16")
    assert w.layers == (Layer("gemm 64x32x16", 64, 32, 16, 1),) and w.flops == 2 * 64 * 32 * 16
    f = tmp_path / "layers.csv"
    f.write_text("name,m,n,k,count\nqkv,128,384,128,2\nffn,128,512,128,\n")
    w = parse_workload(str(f))
    assert [(x.name, x.count) for x in w.layers] == [("qkv", 2), ("ffn", 1)]
    assert w.flops == 2 * 128 * 384 * 128 * 2 + 2 * 128 * 512 * 128
    for bad in ("gemm:4x4", "gemm:0x4x4", "conv:1x2x3", str(tmp_path / "none.csv")):
        with pytest.raises(WorkloadError):
            parse_workload(bad)
    f.write_text("name,m,n\nx,1,2\n")
    with pytest.raises(WorkloadError, match="missing column"):
        parse_workload(str(f))


def test_core_grid_minimizes_tiles():
    d = load_design("rx7900xtx-like")  # 96 cores, 16x16
    gm, gn = core_grid(4096, 4096, d)
    assert gm * gn == 96
    tiles = math.ceil(math.ceil(4096 / gm) / 16) * math.ceil(math.ceil(4096 / gn) / 16)
    # e.g. 6 x 16 blocks: ceil(683/16) = 43 x 256/16 = 16 -> 688 tiles, fewer than 8 x 12 (32 x 22 = 704)
    assert tiles == 688
    assert core_grid(16, 4096, d) == (1, 96)  # too few rows to split M


def test_fit_check_names_the_memory():
    d = load_design("small-int8-8x8")  # 16 MiB simulated DRAM, no product capacity beyond it
    with pytest.raises(WorkloadError, match=r"memory.dram_capacity_bytes is 16,777,216"):
        check_fits(d, Layer("big", 4096, 4096, 4096), 4096, 4096)
    h = load_design("h100-like")  # 80 GiB product memory, 1 GiB simulated per core
    with pytest.raises(WorkloadError, match=r"simulated DRAM: one core's block needs A 16384x16384"):
        check_fits(h, Layer("big", 16384, 16384, 16384), 16384, 16384)
    check_fits(h, Layer("ok", 4096, 4096, 4096), 373, 342)


def _analytic_sim(calls):
    """A simple timing model standing in for compiler.accel.gemm_run: one array tile per k cycles, A and B read once."""

    def simulate(m, n, k, design, values, ideal_memory=False):
        if not ideal_memory:
            calls.append((m, n, k, values))
        cycles = math.ceil(m / design.matrix.rows) * math.ceil(n / design.matrix.cols) * k
        counters = {
            MACS_COUNTER[design.matrix.input_dtype]: m * n * k,
            "dram_read_bytes": (m + n) * k * 2,
            "dram_write_bytes": m * n * 4,
            "instructions": 10,
        }
        return SimpleNamespace(cycles=cycles, counters=counters)

    return simulate


def test_estimate_composes_models():
    d = load_design("datacenter-bf16-128x128")  # 4 cores of 128x128 at 1.5 GHz
    calls = []
    est = estimate(d, parse_workload("gemm:1024x1024x512"), simulate=_analytic_sim(calls))
    assert calls == [(1024, 256, 512, False)]  # grid (1, 4): the first of the equal-tile splits
    cycles = 8 * 2 * 512
    seconds = cycles / 1.5e9
    f = est.figures
    assert f["achieved_tflops"].value == pytest.approx(2 * 1024 * 1024 * 512 / seconds / 1e12)
    assert f["achieved_tflops"].provenance == "simulated"
    assert f["utilization"].value == pytest.approx(1.0)
    # counters scaled from one core's block to the whole GEMM (x4)
    assert est.counters["macs_bf16"] == 1024 * 1024 * 512
    assert est.counters["instructions"] == 40
    e = event_energies(d)
    dram_bytes = 4 * (1024 + 256) * 512 * 2 + 1024 * 1024 * 4
    on_chip = (
        1024 * 1024 * 512 * e["macs_bf16"].pj
        + 40 * e["instructions"].pj
        + dram_bytes * (e["l2_bytes"].pj + e["noc_bytes"].pj + e["memory_phy_bytes"].pj)
    )
    dyn = (on_chip / 0.75 + dram_bytes * e["dram_read_bytes"].pj) * 1e-12  # clock tree: a quarter of on-chip power
    dyn /= 0.9  # all of it drawn through voltage regulators of 90% efficiency (docs/sources.md P.7)
    assert est.power.dynamic_j == pytest.approx(dyn)
    assert f["average_power_w"].value == pytest.approx(dyn / seconds + est.power.static_w)
    assert f["price_usd"].value == pytest.approx(est.cost.cost_usd)  # no margin
    assert f["achieved_tflops_per_kusd"].value == pytest.approx(
        f["achieved_tflops"].value / f["price_usd"].value * 1000
    )
    assert f["die_area_costed_mm2"].provenance == "modelled"
    assert est.checks == []  # no [reference] table
    m = estimate(d, parse_workload("gemm:1024x1024x512"), margin=0.5, simulate=_analytic_sim([]))
    assert m.figures["price_usd"].value == pytest.approx(2 * m.cost.cost_usd)


def test_estimate_layers_sum(tmp_path):
    d = load_design("small-int8-8x8")
    f = tmp_path / "l.csv"
    f.write_text("name,m,n,k,count\na,16,16,16,3\nb,8,8,8,1\n")
    est = estimate(d, parse_workload(str(f)), simulate=_analytic_sim([]))
    assert est.figures["seconds"].value == pytest.approx((3 * 4 * 16 + 8) / 800e6)
    assert est.counters["macs_int8"] == 3 * 16**3 + 8**3


def test_auto_workload_is_largest_fitting_square():
    from workbench.estimate import auto_workload, resolve_workload

    # tiny: 1 MiB simulated DRAM; 256^3 int8 needs 2 x 64 KiB + 256 KiB (int32 C), 512^3 needs 1.5 MiB
    assert auto_workload(load_design("tiny-int8-4x4")).name == "gemm:256x256x256"
    assert auto_workload(load_design("small-int8-8x8")).name == "gemm:1024x1024x1024"
    assert resolve_workload("auto", load_design("h100-like")).name == "gemm:4096x4096x4096"
    assert resolve_workload("gemm:8x8x8", load_design("h100-like")).flops == 2 * 512
