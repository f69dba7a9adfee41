"""Node scaling shared by the RTL flows and the workbench models (isa.technology)."""
from __future__ import annotations

import pytest

from isa.technology import (
    AREA_FACTOR_VS_45NM,
    ENERGY_FACTOR_VS_45NM,
    area_factor,
    energy_factor,
    logic_density_mtr_per_mm2,
)


@pytest.mark.parametrize("nm", sorted(ENERGY_FACTOR_VS_45NM))
def test_listed_nodes_return_the_cited_factors(nm):
    assert energy_factor(nm) == ENERGY_FACTOR_VS_45NM[nm]
    assert area_factor(nm) == AREA_FACTOR_VS_45NM[nm]


def test_between_nodes_is_log_log_and_monotonic():
    # log-log between 10 nm (0.12) and 14 nm (0.14) at 12 nm: 0.12 * (12/10)^(ln(0.14/0.12)/ln(1.4))
    import math

    slope = math.log(0.14 / 0.12) / math.log(14 / 10)
    assert energy_factor(12) == pytest.approx(0.12 * 1.2**slope)
    nodes = [3, 5, 7, 10, 12, 16, 20, 28, 32, 45, 65]
    assert all(energy_factor(a) < energy_factor(b) for a, b in zip(nodes, nodes[1:], strict=False))
    assert all(area_factor(a) < area_factor(b) for a, b in zip(nodes, nodes[1:], strict=False))


def test_below_7nm_follows_hwcomponents_rule():
    # area linear in node, energy as the square root of the node ratio (docs/sources.md b.2)
    assert area_factor(3.5) == pytest.approx(0.059 / 2)
    assert energy_factor(3.5) == pytest.approx(0.094 / 2**0.5)


def test_logic_density_cited_points_and_extrapolation():
    assert logic_density_mtr_per_mm2(7) == 96.3 and logic_density_mtr_per_mm2(5) == 138.2
    assert logic_density_mtr_per_mm2(3) > logic_density_mtr_per_mm2(5)
