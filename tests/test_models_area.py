"""Area model: hand-computed component areas and the RTL-synthesis calibration hook."""

import json

import pytest

from isa.design import load_design
from workbench.area import (
    SynthResultError,
    design_area,
    load_synth_result,
    mac_area_um2,
    memory_phy_units,
    parse_synth_result,
    sram_area_mm2,
)


def test_mac_area_hand_computed():
    # int8 at 7 nm: (282 + 137) um^2 x 0.059 + 48 register bits x 5.98 um^2 x 0.059 / area_factor(40)
    from workbench.nodes import area_factor

    expect = 419 * 0.059 + 48 * 5.98 * 0.059 / area_factor(40)
    assert mac_area_um2("int8", 7) == pytest.approx(expect)
    assert mac_area_um2("bf16", 7) > 10 * mac_area_um2("int8", 7) / 2  # fp MACs are far larger


def test_sram_and_phy():
    # 1 MiB at 3 Mbit/mm^2 = 8,388,608 bits / 3e6 = 2.796 mm^2 (b.5 N7 default)
    assert sram_area_mm2(2**20, 3.0) == pytest.approx(2.796, abs=1e-3)
    # H100: 3,350 GB/s of HBM3 at 819.2 GB/s per stack -> 5 stacks
    assert memory_phy_units("HBM3", 3350e9) == 5
    assert memory_phy_units("GDDR6", 960e9) == 12  # 12 x 32-bit = 384-bit bus at 20 Gb/s


def test_design_area_components_sum():
    d = load_design("datacenter-bf16-128x128")
    a = design_area(d)
    assert a.total_mm2 == pytest.approx(sum(i.mm2 for i in a.items))
    # 16 MiB scratchpad x 4 cores at N5's 4 Mbit/mm^2
    assert a.item("scratchpad") == pytest.approx(4 * 16 * 2**20 * 8 / 4e6)
    assert a.item("matrix") == pytest.approx(4 * 128 * 128 * mac_area_um2("bf16", 5) / 1e6)
    assert a.item("host_phy") == pytest.approx(16 * 0.64)


def test_synth_calibration_overrides_logic_blocks(tmp_path):
    d = load_design("small-int8-8x8")
    f = tmp_path / "synth.json"
    f.write_text(json.dumps({"blocks": {"matrix": {"nand2_eq": 100_000}, "vector": 5000, "top": 1}}))
    synth = load_synth_result(f)
    assert synth == {"matrix": 100_000.0, "vector": 5000.0}
    a = design_area(d, synth=synth)
    # 28 nm: 15.3 MTr/mm^2; 100k NAND2 x 4 transistors = 0.4 MTr -> 0.02614 mm^2
    assert a.item("matrix") == pytest.approx(0.4 / 15.3)
    assert a.calibrated_blocks == ["matrix", "vector"]
    # the RTL report's own shape: {"blocks": {"array": {"logic_ge": ...}, "control": {...}, "buffers": {...}}}
    rtl = {
        "design": "t",
        "blocks": {
            "array": {"logic_ge": 1200.5, "sram_bits": 0},
            "control": {"logic_ge": 300},
            "buffers": {"logic_ge": 50, "sram_bits": 8192},
        },
    }
    assert parse_synth_result(rtl) == {"matrix": 1200.5, "control": 300.0}
    with pytest.raises(SynthResultError, match="none of the blocks"):
        parse_synth_result({"blocks": {"alu": 3}})
    with pytest.raises(SynthResultError, match="non-negative"):
        parse_synth_result({"matrix": -1})
    with pytest.raises(SynthResultError, match="not found"):
        load_synth_result(tmp_path / "missing.json")
