"""Federal tax estimates against tax-rules.md's worked examples (TAX-1..3, NIIT-1..2, NET-1..3),
each with its exact numbers and the arithmetic beside it."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from taxlens.errors import ConfigError
from taxlens.tax.federal import (
    Profile,
    capital_gain_tax,
    estimate,
    net_capital,
    niit,
    ordinary_tax,
    schedule,
    years,
)


def test_tax1_2025_single_gains_in_the_0_and_15_percent_brackets() -> None:
    """TAX-1: 2025 single, taxable income 60,000 of which 20,000 long-term gain. Ordinary tax on
    40,000 = 1,192.50 + 12 % × (40,000 − 11,925) = 4,561.50; 8,350 of the gain fits under the
    0 % top (48,350), 11,650 at 15 % = 1,747.50. Total 6,309.00 (8,114.00 all-ordinary)."""
    s = schedule(2025, "single")
    assert ordinary_tax(D(40_000), s) == D("4561.50")
    assert capital_gain_tax(D(60_000), D(20_000), s) == D("6309.00")
    assert ordinary_tax(D(60_000), s) == D("8114.00")


def test_tax2_2026_single_marginal_cost_of_a_short_and_a_long_gain() -> None:
    """TAX-2: 2026 single with 150,000 of other taxable income: +10,000 short-term costs 2,400
    (24 %), +10,000 long-term 1,500 (15 %); no NIIT below 200,000 of MAGI. The profile's
    other_income is before the 16,100 standard deduction, so 166,100 gives 150,000 taxable."""
    profile = Profile(year=2026, status="single", other_income=D(166_100))
    assert estimate(profile, D(10_000), D(0)).incremental == D("2400.00")
    assert estimate(profile, D(0), D(10_000)).incremental == D("1500.00")
    assert estimate(profile, D(0), D(10_000)).with_gains.niit == 0


def test_tax3_2026_single_all_of_the_gain_at_20_percent() -> None:
    """TAX-3: 2026 single, taxable income 700,000 of which 100,000 long-term: ordinary tax on
    600,000 = 178,769.25 and the whole gain sits above the 15 % top (545,500): 20,000."""
    s = schedule(2026, "single")
    assert ordinary_tax(D(600_000), s) == D("178769.25")
    assert capital_gain_tax(D(700_000), D(100_000), s) == D("198769.25")


@pytest.mark.parametrize(("magi", "expected"), [(400_000, "4750.000"), (300_000, "1900.000")])
def test_niit_on_the_lesser_of_investment_income_and_magi_over_the_threshold(magi: int, expected: str) -> None:
    """NIIT-1/2: married filing jointly, net investment income 125,000. MAGI 400,000 → 3.8 % of
    125,000 = 4,750; MAGI 300,000 → 3.8 % of the 50,000 over 250,000 = 1,900."""
    assert niit(D(magi), D(125_000), "mfj") == D(expected)


def test_net1_short_losses_first_and_the_carryover_keeps_its_character() -> None:
    """NET-1: ST +5,000/−12,000 (net −7,000), LT +4,000/−1,000 (net +3,000), taxable income
    50,000: line 16 = −4,000, 3,000 deducted, 1,000 short-term carried, nothing long-term."""
    n = net_capital(D(-7_000), D(3_000), "single", D(50_000))
    assert (n.net, n.deducted, n.carry_short, n.carry_long, n.income) == (D(-4_000), D(3_000), D(1_000), D(0), D(-3_000))


def test_net2_a_long_term_loss_carries_as_long_term() -> None:
    """NET-2: net ST +2,000, net LT −10,000: line 16 −8,000, 3,000 deducted, 5,000 carried long."""
    n = net_capital(D(2_000), D(-10_000), "single", D(50_000))
    assert (n.deducted, n.carry_short, n.carry_long) == (D(3_000), D(0), D(5_000))


def test_net3_a_deduction_without_benefit_is_carried_too() -> None:
    """NET-3: as NET-1 but taxable income −1,000 after the deduction: l3 = 2,000, l4 = 2,000,
    so 7,000 − (2,000 + 3,000) = 2,000 short-term is carried."""
    n = net_capital(D(-7_000), D(3_000), "single", D(-1_000))
    assert (n.carry_short, n.carry_long) == (D(2_000), D(0))


def test_married_filing_separately_deducts_at_most_1500() -> None:
    assert net_capital(D(-10_000), D(0), "mfs", D(50_000)).deducted == D(1_500)


def test_a_net_loss_lowers_the_bill_and_the_estimate_is_negative() -> None:
    """A 5,000 short-term loss: 3,000 deducted from 2025 single income taxed at 22 % → −660."""
    profile = Profile(year=2025, other_income=D(100_000))  # taxable 84,250: in the 22 % bracket
    result = estimate(profile, D(-5_000), D(0))
    assert result.incremental == D("-660.00")
    assert result.with_gains.netting.carry_short == D(2_000)
    assert result.effective_rate() is None


def test_state_rate_and_flat_override() -> None:
    profile = Profile(year=2025, other_income=D(100_000), state_rate=D("0.05"))
    assert estimate(profile, D(10_000), D(0)).incremental == D("2200.00") + D("500.00")  # 22 % + 5 %
    flat = Profile(year=2025, other_income=D(100_000), marginal_rate=D("0.30"))
    assert estimate(flat, D(10_000), D(0)).incremental == D("3000.00")


def test_every_year_and_status_has_figures_and_unknown_ones_are_refused() -> None:
    assert years() == [2024, 2025, 2026]
    for year in years():
        for status in ("single", "mfj", "mfs", "hoh", "qss"):
            s = schedule(year, status)
            assert len(s.brackets) == 7 and s.brackets[0] == (D(0), D("0.10"))
            assert s.zero_top < s.fifteen_top
    with pytest.raises(ConfigError, match="no federal tax figures for 2019"):
        schedule(2019, "single")
    with pytest.raises(ConfigError, match="filing status 'joint' is not one of"):
        schedule(2025, "joint")
