"""Chip database."""

import pytest

from workbench.chips import UnknownChipError, all_chips, find_chip

REQUIRED = [
    "rx-7900-xtx",
    "rtx-4090",
    "a100-sxm",
    "h100-sxm",
    "h100-pcie",
    "h200",
    "b200",
    "mi300x",
    "tpu-v4",
    "tpu-v5e",
    "tinybox-red",
    "tinybox-green",
]


def test_required_chips_present_with_sources():
    keys = {c.key for c in all_chips()}
    assert set(REQUIRED) <= keys
    for c in all_chips():
        assert c.sources.startswith("http"), c.key


def test_ratios_match_reference_c():
    # docs/sources.md (c): 7900 XTX 123 TFLOPS/$1k, 0.35 TFLOPS/W; H100 SXM ~36, 1.41; tinybox red 49
    xtx = find_chip("7900xtx")
    assert xtx.tflops_per_kusd == pytest.approx(122.9, abs=0.1)
    assert xtx.tflops_per_w == pytest.approx(0.346, abs=0.001)
    h100 = find_chip("H100 SXM")
    assert h100.key == "h100-sxm" and h100.price_is_estimate
    assert h100.tflops_per_kusd == pytest.approx(36.0, abs=0.05)
    assert h100.tflops_per_w == pytest.approx(1.413, abs=0.001)
    assert find_chip("tinybox red").tflops_per_kusd == pytest.approx(49.2, abs=0.1)
    assert find_chip("tpu-v4").tflops_per_kusd is None  # no price published


def test_unknown_chip_suggests():
    assert find_chip("h100-s").key == "h100-sxm"  # an unambiguous fragment is enough
    with pytest.raises(UnknownChipError, match=r"'h10' is ambiguous: it matches h100-sxm \(NVIDIA H100 SXM\), "
                       r"h100-pcie \(NVIDIA H100 PCIe\); give one of these keys"):
        find_chip("h10")
    with pytest.raises(UnknownChipError, match="ambiguous"):  # two H100s: ask rather than pick one (issue 15.8)
        find_chip("h100")
    with pytest.raises(UnknownChipError, match="tinybox-red .* tinybox-green"):
        find_chip("tinybox")
    with pytest.raises(UnknownChipError, match="did you mean tpu-v"):
        find_chip("tpu-v6")
