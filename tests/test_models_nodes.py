"""Node tables and scaling factors."""

import pytest

from workbench.errors import UsageError
from workbench.nodes import area_factor, energy_factor, resolve_node


@pytest.mark.parametrize("name", ["N4", "4nm", "4", 4, "4N", "TSMC 4NP", "n4p"])
def test_node_aliases(name):
    assert resolve_node(name).nm == 4


def test_node_values_cite_reference():
    n5 = resolve_node("N5")
    # CSET wafer price; D0 ~0.06 by 2H 2021 (TSMC projection); ttm-cas/LLMCompass typical density
    assert (n5.wafer_price_usd, n5.defect_density_per_cm2, n5.logic_density_mtr_per_mm2) == (16988, 0.06, 138.2)
    # A14 (N5) averages 134 MTr/mm^2 (b.6): the typical density is within 5% of a real N5 product
    assert n5.logic_density_mtr_per_mm2 == pytest.approx(134, rel=0.05)
    assert resolve_node("7nm").wafer_price_usd == 9346
    assert resolve_node("12nm").nm == 16  # CSET's 16/12 nm row
    assert "wafer_price_usd" in resolve_node("3nm").estimated


def test_unknown_node_suggests_closest():
    with pytest.raises(UsageError, match="closest known: 7nm, 10nm"):
        resolve_node("8nm")
    with pytest.raises(UsageError, match="unknown process node 'abc'"):
        resolve_node("abc")


def test_scaling_factors_b2():
    assert energy_factor(7) == 0.094 and area_factor(7) == 0.059
    assert energy_factor(45) == 1.0 and area_factor(16) == 0.19
    # below 7 nm (hwcomponents): area linear in node, energy ~ sqrt(node ratio)
    assert area_factor(3.5) == pytest.approx(0.059 / 2)
    assert energy_factor(3.5) == pytest.approx(0.094 / 2**0.5)
    # between listed nodes: log-log interpolation, monotone
    assert 0.22 < energy_factor(28) < 0.66 and 0.21 < area_factor(28) < 0.46
    assert energy_factor(90) > 1.0
