"""Properties of the cost formulas over random inputs (hypothesis)."""

from hypothesis import given
from hypothesis import strategies as st

from workbench.cost import (
    Harvest,
    die_yield,
    dies_per_wafer,
    harvested_yield,
    negative_binomial_yield,
    poisson_yield,
    seeds_yield,
)

lam = st.floats(min_value=1e-4, max_value=20)
alpha = st.floats(min_value=1.0, max_value=50)
area = st.floats(min_value=1, max_value=850)


@given(lam, alpha)
def test_negative_binomial_between_poisson_and_seeds(x, a):
    # alpha = 1 is Seeds, alpha -> infinity is Poisson; NB is monotone in alpha between them (a.2)
    y = negative_binomial_yield(x, a)
    assert poisson_yield(x) - 1e-12 <= y <= seeds_yield(x) + 1e-12


@given(area, area)
def test_bigger_dies_fewer_and_worse(a1, a2):
    small, big = sorted((a1, a2))
    assert dies_per_wafer(big) <= dies_per_wafer(small)
    assert die_yield(big, 0.1) <= die_yield(small, 0.1)


@given(area, st.integers(min_value=2, max_value=200), st.data())
def test_spares_never_hurt(a, blocks, data):
    required = data.draw(st.integers(min_value=1, max_value=blocks))
    fraction = data.draw(st.floats(min_value=0.05, max_value=0.95))
    with_spares = harvested_yield(a, 0.1, Harvest(blocks, required, fraction))
    no_spares = harvested_yield(a, 0.1, Harvest(blocks, blocks, fraction))
    assert with_spares >= no_spares - 1e-12
    assert 0 <= with_spares <= 1
