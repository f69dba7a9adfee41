"""Design files: the shipped designs load, and every kind of bad field gives an error naming it."""
from __future__ import annotations

from pathlib import Path

import pytest

from isa.design import DesignError, load_design, parse_design, shipped_designs

SMALL_TEXT = (Path(__file__).resolve().parent.parent / "designs" / "small-int8-8x8.toml").read_text()


def test_shipped_designs_load():
    names = set(shipped_designs())
    assert {"small-int8-8x8", "edge-int8-16x16", "datacenter-bf16-128x128", "tiny-int8-4x4"} <= names
    for name in names:
        d = load_design(name)
        assert d.scratchpad_rows >= 2 * d.dim and d.accumulator_rows >= 2 * d.dim
    assert load_design("datacenter-bf16-128x128").is_float


@pytest.mark.parametrize("old, new, message", [
    ("rows = 8", "rows = 0", "x.toml:5: field 'matrix.rows' = 0 is out of range; allowed 1..1024"),
    ('dataflow = "os"', 'dataflow = "xs"', "field 'matrix.dataflow' = 'xs' is not one of os, ws"),
    ("scratchpad_banks = 4", "scratchpad_banks = 3", "'memory.scratchpad_banks' = 3 is out of range; allowed 1..64 and a power of two"),
    ("lanes = 8", "lanz = 8", "unknown field 'vector.lanz' (did you mean 'vector.lanes'?)"),
    ('acc_dtype = "int32"', 'acc_dtype = "fp32"', "does not fit input_dtype 'int8'; use 'int32'"),
    ("special_functions = false", "special_functions = true", "needs a floating-point input_dtype"),
    ("scratchpad_bytes = 65536", "scratchpad_bytes = 65000", "need at least 16 rows"),
    ("dram_latency_cycles = 32", "dram_latency_cycles = 3.5", "must be an integer"),
    ('dram_type = "LPDDR4"', 'dram_type = "LPDR4"', "did you mean 'LPDDR4'"),
    ("[vector]", "[vektor]", "unknown top-level entries ['vektor']"),
    ("queue_depth = 8", "queue_depth = 0", "'control.queue_depth' = 0 is out of range"),
])
def test_errors_name_field_value_and_range(old, new, message):
    assert old in SMALL_TEXT
    with pytest.raises(DesignError) as err:
        parse_design(SMALL_TEXT.replace(old, new, 1), "x.toml")
    assert message in str(err.value), str(err.value)
    assert str(err.value).startswith("x.toml")


def test_missing_required_field_and_bad_toml_and_unknown_name():
    with pytest.raises(DesignError, match="missing required field 'matrix.rows'"):
        parse_design(SMALL_TEXT.replace("rows = 8\n", "", 1), "x.toml")
    with pytest.raises(DesignError, match="not valid TOML"):
        parse_design("[matrix", "x.toml")
    with pytest.raises(DesignError, match="did you mean small-int8-8x8"):
        load_design("small-int8-8x9")
    with pytest.raises(DesignError, match="not found"):
        load_design("/nonexistent/d.toml")


def test_tdp_is_a_validated_optional_chip_field():
    assert parse_design(SMALL_TEXT, "x.toml").chip.tdp_w == 0.0  # optional: files without it keep loading
    with_tdp = SMALL_TEXT.replace("[chip]\n", "[chip]\ntdp_w = 5\n", 1)
    assert parse_design(with_tdp, "x.toml").chip.tdp_w == 5.0  # an integer is accepted as watts
    with pytest.raises(DesignError, match=r"x.toml:\d+: field 'chip.tdp_w' = -1.0 is out of range; allowed 0..1e\+06"):
        parse_design(SMALL_TEXT.replace("[chip]\n", "[chip]\ntdp_w = -1.0\n", 1), "x.toml")
    with pytest.raises(DesignError, match="field 'chip.tdp_w' = 'hot' must be a number"):
        parse_design(SMALL_TEXT.replace("[chip]\n", "[chip]\ntdp_w = \"hot\"\n", 1), "x.toml")
    assert load_design("h100-like").chip.tdp_w == 700 and load_design("rx7900xtx-like").chip.tdp_w == 355
