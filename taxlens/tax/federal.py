"""US federal income tax on capital gains: what a year's realized gains add to the tax bill.

Implements tax-rules.md §4.6 and §6: the ordinary schedule, the Qualified Dividends and Capital
Gain Tax Worksheet (0/15/20 % on the net capital gain), ST/LT netting with the $3,000 ($1,500
married filing separately) loss limit and the carryover worksheet, and the 3.8 % Net Investment
Income Tax. Figures per year are cited data files in ``taxlens/tax/data/federal_YYYY.toml``.

Everything is exact Decimal arithmetic on whole-dollar inputs; ``cents()`` rounds for display.
The formula is used throughout (not the IRS Tax Table's $50 bands, which differ by a few dollars
below $100,000 of taxable income).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources

from taxlens.errors import ConfigError

STATUSES = ("single", "mfj", "mfs", "hoh", "qss")
ZERO = Decimal(0)
NIIT_RATE = Decimal("0.038")
#: IRC §1411(b): not indexed for inflation.
NIIT_THRESHOLD = {"single": Decimal(200_000), "hoh": Decimal(200_000), "mfj": Decimal(250_000), "qss": Decimal(250_000), "mfs": Decimal(125_000)}
#: IRC §1211(b).
LOSS_LIMIT = {"mfs": Decimal(1_500)}
DEFAULT_LOSS_LIMIT = Decimal(3_000)


@dataclass(frozen=True)
class Schedule:
    """One year's federal figures for one filing status."""

    year: int
    brackets: tuple[tuple[Decimal, Decimal], ...]  # (lower bound, rate), ascending
    zero_top: Decimal  # taxable income up to which long-term gains are taxed at 0 %
    fifteen_top: Decimal  # ... and at 15 %; above it, 20 %
    standard_deduction: Decimal


def years() -> list[int]:
    """The tax years taxlens has figures for."""
    names = [p.name for p in resources.files("taxlens.tax.data").iterdir() if p.name.startswith("federal_")]
    return sorted(int(n.removeprefix("federal_").removesuffix(".toml")) for n in names)


@cache
def schedule(year: int, status: str) -> Schedule:
    """The figures for ``year`` and filing ``status`` (qss uses the joint figures). Raises
    ConfigError for a year or status taxlens has no figures for."""
    if status not in STATUSES:
        raise ConfigError(f"filing status {status!r} is not one of {', '.join(STATUSES)}")
    if year not in years():
        raise ConfigError(f"no federal tax figures for {year} (taxlens has {', '.join(map(str, years()))})")
    data = tomllib.loads(resources.files("taxlens.tax.data").joinpath(f"federal_{year}.toml").read_text(encoding="utf-8"))
    key = "mfj" if status == "qss" else status
    return Schedule(
        year=year,
        brackets=tuple((Decimal(lower), Decimal(rate)) for lower, rate in data["ordinary"][key]),
        zero_top=Decimal(data["capital_gains"][key][0]),
        fifteen_top=Decimal(data["capital_gains"][key][1]),
        standard_deduction=Decimal(data["standard_deduction"][key]),
    )


def ordinary_tax(taxable: Decimal, s: Schedule) -> Decimal:
    """The ordinary schedule: each rate on the income over its bracket's lower bound."""
    tax = ZERO
    bounds = [*s.brackets[1:], (None, None)]
    for (lower, rate), (upper, _) in zip(s.brackets, bounds, strict=True):
        if taxable <= lower:
            break
        top = taxable if upper is None else min(taxable, upper)
        tax += (top - lower) * rate
    return tax


def capital_gain_tax(taxable: Decimal, preferential: Decimal, s: Schedule) -> Decimal:
    """Form 1040 line 16 by the Qualified Dividends and Capital Gain Tax Worksheet
    (tax-rules §6.5): ``preferential`` = qualified dividends + net capital gain, taxed at
    0/15/20 %, the rest at the ordinary schedule; never more than all-ordinary."""
    l1 = taxable
    l4 = max(ZERO, min(preferential, l1))
    l5 = max(ZERO, l1 - l4)
    l7 = min(l1, s.zero_top)
    l8 = min(l5, l7)
    l9 = l7 - l8
    l10 = min(l1, l4)
    l12 = l10 - l9
    l14 = min(l1, s.fifteen_top)
    l16 = max(ZERO, l14 - (l5 + l9))
    l17 = min(l12, l16)
    l20 = l10 - l9 - l17
    return min(Decimal("0.15") * l17 + Decimal("0.20") * l20 + ordinary_tax(l5, s), ordinary_tax(l1, s))


def niit(magi: Decimal, investment_income: Decimal, status: str) -> Decimal:
    """3.8 % of the lesser of net investment income and MAGI over the threshold (Form 8960)."""
    over = magi - NIIT_THRESHOLD["mfj" if status == "qss" else status]
    return NIIT_RATE * max(ZERO, min(investment_income, over))


@dataclass(frozen=True)
class NetCapital:
    """Schedule D netting: line 7 (net short), line 15 (net long), line 16, the loss deducted
    against ordinary income (line 21, as a positive number), the net capital gain taxed at
    preferential rates, and the losses carried to next year, by character."""

    short: Decimal
    long: Decimal
    net: Decimal
    deducted: Decimal
    net_capital_gain: Decimal
    carry_short: Decimal
    carry_long: Decimal

    @property
    def income(self) -> Decimal:
        """What the capital gains add to income: the net gain, or minus the deducted loss."""
        return self.net if self.net >= 0 else -self.deducted


def net_capital(short: Decimal, long: Decimal, status: str, taxable_income: Decimal) -> NetCapital:
    """Net the year's short- and long-term results (carryovers already included, as negative
    amounts in their character). ``taxable_income`` is the year's Form 1040 taxable income
    after the deduction (negative allowed), which the Capital Loss Carryover Worksheet needs:
    the part of the deduction that gave no tax benefit is carried too."""
    net = short + long
    limit = LOSS_LIMIT.get(status, DEFAULT_LOSS_LIMIT)
    deducted = min(-net, limit) if net < 0 else ZERO
    l3 = max(ZERO, taxable_income + deducted)
    l4 = min(deducted, l3)
    st_loss, lt_loss = max(ZERO, -short), max(ZERO, -long)
    carry_short = max(ZERO, st_loss - (l4 + max(ZERO, long))) if net < 0 else ZERO
    carry_long = max(ZERO, lt_loss - (max(ZERO, short) + max(ZERO, l4 - st_loss))) if net < 0 else ZERO
    gain = max(ZERO, min(long, net)) if net > 0 else ZERO
    return NetCapital(short, long, net, deducted, gain, carry_short, carry_long)


@dataclass(frozen=True)
class Profile:
    """The taxpayer, as far as the estimate needs: ``other_income`` is ordinary income before
    the deduction (wages, interest, …), ``deduction`` None means the standard deduction."""

    year: int
    status: str = "single"
    other_income: Decimal = ZERO
    qualified_dividends: Decimal = ZERO
    deduction: Decimal | None = None
    state_rate: Decimal = ZERO
    marginal_rate: Decimal | None = None  # a flat rate on net gains instead of the schedules
    carry_short: Decimal = ZERO  # capital loss carried into the year (positive amounts)
    carry_long: Decimal = ZERO


@dataclass(frozen=True)
class Bill:
    """The year's tax with a given set of realized gains."""

    netting: NetCapital
    taxable_income: Decimal
    federal: Decimal
    niit: Decimal
    state: Decimal

    @property
    def total(self) -> Decimal:
        return self.federal + self.niit + self.state


def bill(profile: Profile, short: Decimal, long: Decimal) -> Bill:
    """The tax for ``profile`` with these realized short- and long-term gains (net of wash-sale
    adjustments); the profile's carryovers are netted in first."""
    s = schedule(profile.year, profile.status)
    deduction = s.standard_deduction if profile.deduction is None else profile.deduction
    st, lt = short - profile.carry_short, long - profile.carry_long
    provisional = net_capital(st, lt, profile.status, ZERO)
    agi = profile.other_income + profile.qualified_dividends + provisional.income
    taxable = agi - deduction
    netting = net_capital(st, lt, profile.status, taxable)
    if profile.marginal_rate is not None:
        federal = profile.marginal_rate * netting.income
        return Bill(netting, taxable, federal, ZERO, ZERO)
    taxable_pos = max(ZERO, taxable)
    federal = capital_gain_tax(taxable_pos, netting.net_capital_gain + profile.qualified_dividends, s)
    investment = max(ZERO, netting.income) + profile.qualified_dividends
    return Bill(netting, taxable, federal, niit(agi, investment, profile.status), profile.state_rate * taxable_pos)


@dataclass(frozen=True)
class Estimate:
    """What the realized gains cost: the bill with them, without them, and the difference."""

    short: Decimal  # the realized short-term gain (net), as given
    long: Decimal
    with_gains: Bill
    without_gains: Bill

    @property
    def incremental(self) -> Decimal:
        return self.with_gains.total - self.without_gains.total

    def effective_rate(self) -> Decimal | None:
        """The incremental tax per dollar of net realized gain (None when there is no net gain)."""
        gain = self.short + self.long
        return self.incremental / gain if gain > 0 else None


def estimate(profile: Profile, short: Decimal, long: Decimal) -> Estimate:
    """The tax caused by the year's realized ``short`` and ``long`` gains: the bill with them
    minus the bill without them (the same profile, carryovers included in both)."""
    return Estimate(short, long, bill(profile, short, long), bill(profile, ZERO, ZERO))
