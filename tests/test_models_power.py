"""Power model: energies per event against hand-computed values, and run power composition."""

import pytest

from isa.design import load_design
from workbench.nodes import energy_factor
from workbench.power import (
    PowerInputError,
    event_energies,
    peak_dynamic_power_w,
    run_power,
    sram_pj_per_byte_45nm,
)


def test_sram_energy_by_macro_size():
    # Horowitz 45 nm: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ per 64-bit read -> per byte / 8
    assert sram_pj_per_byte_45nm(8 * 1024) == pytest.approx(1.25)
    assert sram_pj_per_byte_45nm(32 * 1024) == pytest.approx(2.5)
    assert sram_pj_per_byte_45nm(2**20) == pytest.approx(12.5)
    # log-log midpoint of 8 KB and 32 KB (16 KB) -> geometric mean of 10 and 20 pJ
    assert sram_pj_per_byte_45nm(16 * 1024) == pytest.approx((200**0.5) / 8)


def test_event_energies_hand_computed():
    d = load_design("edge-int8-16x16")  # 16 nm, ws dataflow, LPDDR5
    e = event_energies(d)
    f = energy_factor(16)  # 0.17
    hop = (8 + 32) * 0.009 * f / energy_factor(40)  # ws: A + partial sum per MAC
    assert e["macs_int8"].pj == pytest.approx(0.3 * f + hop)
    assert e["dram_read_bytes"].pj == pytest.approx(8 * 7.5)
    assert e["instructions"].pj == pytest.approx(30.0)  # Dally's figure taken at 16 nm
    # scratchpad 256 KiB in 4 banks -> 64 KiB macro
    assert e["scratchpad_read_bytes"].pj == pytest.approx(sram_pj_per_byte_45nm(64 * 1024) * f)


def test_run_power_composition():
    d = load_design("small-int8-8x8")
    e = event_energies(d)
    counters = {"macs_int8": 1e9, "dram_read_bytes": 1e6, "unknown_counter": 5}
    r = run_power(d, counters, seconds=2.0, flops=2e9, static_w=0.5, tdp_w=1.0)
    dyn = (1e9 * e["macs_int8"].pj + 1e6 * e["dram_read_bytes"].pj) * 1e-12
    assert r.dynamic_j == pytest.approx(dyn)
    assert r.energy_j == pytest.approx(dyn + 1.0)
    assert r.average_power_w == pytest.approx((dyn + 1.0) / 2)
    assert r.energy_per_flop_j == pytest.approx((dyn + 1.0) / 2e9)
    assert r.within_tdp == (r.average_power_w <= 1.0)
    # default static = 0.3 x peak dynamic
    assert run_power(d, counters, 2.0, 2e9).static_w == pytest.approx(0.3 * peak_dynamic_power_w(d))
    with pytest.raises(PowerInputError, match="does not match"):
        run_power(d, {"macs_bf16": 1}, 1.0, 2.0)
    with pytest.raises(PowerInputError):
        run_power(d, counters, 0.0, 1.0)
