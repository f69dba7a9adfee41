"""Process-technology facts (isa.technology) against independent oracles: published figures derived from the same
sources, hand-computed cases and observable behaviour, never the table a function reads."""
from __future__ import annotations

import math

import pytest

from isa.technology import (
    area_factor,
    energy_factor,
    logic_density_mtr_per_mm2,
    nand2_um2,
    register_energy_pj_per_bit,
    sram_array_efficiency,
    sram_density_mbit_per_mm2,
    sram_macro_um2,
)


def test_7nm_energies_match_the_published_scaled_table():
    # cost_power_model.md b.2 publishes Horowitz x 0.094 at 7 nm: int8 mult 0.019, fp16 mult 0.10, fp32 add 0.085,
    # fp32 mult 0.35 pJ (from the 45 nm 0.2, 1.1, 0.9, 3.7 pJ of b.1)
    for e45, e7 in ((0.2, 0.019), (1.1, 0.10), (0.9, 0.085), (3.7, 0.35)):
        assert e45 * energy_factor(7) == pytest.approx(e7, abs=0.0051)


def test_12nm_is_log_log_between_10_and_14nm():
    # hand computed: 0.12 * (12/10)^(ln(0.14/0.12)/ln(1.4)) = 0.12 * 1.2^0.4582 = 0.12 * 1.08712 = 0.13045
    assert energy_factor(12) == pytest.approx(0.13045, abs=1e-5)
    nodes = [3, 5, 7, 10, 12, 16, 20, 28, 32, 45, 65]
    assert all(energy_factor(a) < energy_factor(b) for a, b in zip(nodes, nodes[1:], strict=False))
    assert all(area_factor(a) < area_factor(b) for a, b in zip(nodes, nodes[1:], strict=False))


def test_below_7nm_halving_the_node_halves_area_and_divides_energy_by_sqrt2():
    # hwcomponents' rule (b.2), as behaviour: a ratio between two sub-7 nm nodes, not a table value
    assert area_factor(3) / area_factor(6) == pytest.approx(0.5)
    assert energy_factor(3) / energy_factor(6) == pytest.approx(1 / math.sqrt(2))


def test_logic_density_against_real_products():
    # b.6: Apple A14 (N5) averages 134 MTr/mm^2; typical density must be within 5% of a real N5 product
    assert logic_density_mtr_per_mm2(5) == pytest.approx(134, rel=0.05)
    # whole-product averages (b.6) sit at or below the typical density of their node: H100 98 and AD102 125 (4N),
    # A100 66 (N7); Navi31's GCD (152, N5) is the densest shipped N5 die and stays under N5's 171.3 peak
    assert 125 <= logic_density_mtr_per_mm2(4) <= 171.3
    assert 66 <= logic_density_mtr_per_mm2(7)
    assert logic_density_mtr_per_mm2(3) > logic_density_mtr_per_mm2(5)


def test_nand2_area_against_the_nangate45_cell():
    # Nangate FreePDK45 NAND2_X1 is 0.798 um^2 (rtl/synth.py's GE weights); 4 transistors at the 45 nm typical
    # density must land within 25% of a real 45 nm library cell
    assert nand2_um2(45) == pytest.approx(0.798, rel=0.25)
    assert nand2_um2(5) < nand2_um2(7) < nand2_um2(16)


def test_register_energy_is_aladdins_figure_at_40nm_and_scales_down():
    assert register_energy_pj_per_bit(40) == pytest.approx(0.009)  # Aladdin 40 nm (b.3) is defined at 40 nm
    assert register_energy_pj_per_bit(7) < register_energy_pj_per_bit(16) < register_energy_pj_per_bit(40)


def test_sram_model_reproduces_llmcompass_published_results():
    # b.5: "a 512 KB buffer at 7 nm = 1.18 mm^2"
    assert sram_macro_um2(512 * 1024 * 8, 7) / 1e6 == pytest.approx(1.18, abs=0.01)
    # b.5: A100's 40 MB L2 in 119.3 mm^2 of die shot is ~2.8 Mbit/mm^2; the model's large-array density at N7
    # must be of that order (die shots include tags and wiring, so the model may be denser, not 30% more)
    assert 2.8 <= sram_density_mbit_per_mm2(7) <= 1.3 * 2.8
    # b.5: the N3E HD bitcell equals N5's, so SRAM stops shrinking below 5 nm while logic does not
    assert sram_density_mbit_per_mm2(3) == sram_density_mbit_per_mm2(5)


def test_small_macros_pay_for_their_periphery():
    # observable: eight 4 KiB macros cost more than one 32 KiB macro of the same bits
    assert 8 * sram_macro_um2(4 * 1024 * 8, 16) > sram_macro_um2(32 * 1024 * 8, 16)
    # efficiency peaks at 128 KiB (0.704), the largest listed value
    assert max(sram_array_efficiency(k) for k in (4, 16, 64, 128, 256, 512)) == sram_array_efficiency(128)
    # a 1 KiB macro is billed as the 4 KiB minimum
    assert sram_macro_um2(1024 * 8, 28) == sram_macro_um2(4096 * 8, 28)
