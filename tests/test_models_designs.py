"""Reference designs hit datasheet peaks and published cost ranges; [cost]/[power]/[reference] validation."""

from pathlib import Path

import pytest

from isa.design import load_design, parse_design
from workbench.area import design_area
from workbench.chips import find_chip
from workbench.design_models import design_cost
from workbench.design_tables import DesignTableError, design_tables

BASE = (Path(__file__).resolve().parent.parent / "designs" / "small-int8-8x8.toml").read_text()


@pytest.mark.parametrize("name,chip", [("rx7900xtx-like", "rx-7900-xtx"), ("h100-like", "h100-sxm")])
def test_reference_design_peak_and_cost(name, chip):
    d = load_design(name)
    ref = design_tables(d)["reference"]
    datasheet = find_chip(chip).peak_16bit_tflops
    assert ref["peak_tflops"] == datasheet
    assert d.peak_flops / 1e12 == pytest.approx(datasheet, rel=0.01)
    cost, prov = design_cost(d, design_area(d))
    die_usd = sum(t.usd for t in cost.terms if t.name.startswith("die:"))
    lo, hi = ref["die_cost_usd_range"]
    assert lo <= die_usd <= hi
    if "unit_cost_usd_range" in ref:
        lo, hi = ref["unit_cost_usd_range"]
        assert lo <= cost.cost_usd <= hi
    assert prov == "datasheet"


@pytest.mark.parametrize(
    "extra,match",
    [
        ("[cost]\nmargin = 1.5\n", r"'cost.margin' = 1.5 is out of range; allowed \[0, 1\)"),
        ("[cost]\nmargni = 0.5\n", r"unknown field 'cost.margni' \(did you mean 'cost.margin'\?\)"),
        ("[power]\ntdp_w = 'hot'\n", r"'power.tdp_w' = 'hot' must be a number"),
        ("[reference]\ndie_cost_usd_range = [3, 1]\n", r"must be \[low, high\]"),
        (
            "[cost]\nharvest = { blocks = 10, required = 12, fraction = 0.5 }\n",
            r"'cost.harvest.required' = 12",
        ),
        (
            "[cost]\nchiplets = [{ name = 'x', area_mm2 = 0, node = 'N6', count = 1 }]\n",
            r"chiplets\[0\].area_mm2",
        ),
    ],
)
def test_table_errors_name_file_field_value_range(extra, match):
    d = parse_design(BASE + extra, "x.toml")
    with pytest.raises(DesignTableError, match=match) as exc:
        design_tables(d)
    assert str(exc.value).startswith("x.toml")


def test_chiplet_node_error_suggests():
    from workbench.nodes import UnknownNodeError

    d = parse_design(BASE + "[cost]\nchiplets = [{ name = 'x', area_mm2 = 10, node = 'N8', count = 1 }]\n", "x.toml")
    with pytest.raises(UnknownNodeError, match="closest known"):
        design_cost(d, design_area(d))


def test_volume_adds_nre_per_unit():
    d = parse_design(BASE + "[cost]\nvolume_units = 100000\n", "x.toml")  # 28 nm: masks 1.2 M + IP 1.03 M
    cost, _ = design_cost(d, design_area(d))
    assert cost.term("nre") == pytest.approx((1.2e6 + 1.03e6 + 105e3) / 1e5)
    no_nre, _ = design_cost(load_design("small-int8-8x8"), design_area(load_design("small-int8-8x8")))
    assert no_nre.term("nre") == 0
