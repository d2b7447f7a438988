"""The audit: what a year of automated trading cost, as numbers every renderer shares.

``build_audit`` reads a booked book (trades, disposals after wash sales, washes) and returns an
``Audit``: frames and totals, no formatting. Renderers (terminal, HTML, Form 8949, TXF, JSON,
CSV) only read it. Money stays exact here; renderers round to cents.

Definitions (the README's "The audit" section says the same):
* a *trade* is a buy, sell, short sale or cover (reinvestments and rewards are counted apart);
  a *taxable event* is a sale (one per sale, however many lots it took) in a taxable account;
* *invested* is the cost basis held (before wash adjustments), at each month end; its average
  over the year is the denominator of turnover and of fees as a share of the portfolio
  (taxlens has no market prices, so it is a cost-basis proxy, and says so);
* the *tax caused by the trading* is the federal (+ NIIT + flat state) tax with the year's
  realized gains in taxable accounts minus the tax without them (tax-rules §6).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Context, Decimal, localcontext

import polars as pl

from taxlens.config import Config
from taxlens.lots.book import crypto_symbols, summary
from taxlens.lots.engine import Booked
from taxlens.lots.wash import matches, wash_summary
from taxlens.report.listing import round_money
from taxlens.tax.federal import Estimate, Profile, estimate

TRADES = ("buy", "sell", "sell_short", "buy_to_cover")
ZERO = Decimal(0)


@dataclass(frozen=True)
class Check:
    """One safety check: what it looked at, whether it passed, and what it found."""

    name: str
    ok: bool
    finding: str


@dataclass
class Audit:
    year: int
    through: dt.date  # the last trade date in the data for the year
    accounts: pl.DataFrame  # account, type, owner, trades, taxable_events, fees, proceeds
    daily: pl.DataFrame  # date, trades, taxable_events
    weekly: pl.DataFrame  # week (Monday), trades, taxable_events
    monthly: pl.DataFrame  # month, trades, taxable_events, fees, realized, tax
    busiest_weeks: pl.DataFrame
    bursts: pl.DataFrame  # weeks over the busy-week threshold
    trades: int
    taxable_events: int
    reinvestments: int
    fees: Decimal
    invested: Decimal  # average cost basis held at month ends
    proceeds: Decimal  # sales in taxable accounts
    gains: dict[str, Decimal | int]  # book.summary of taxable accounts' disposals
    wash: dict[str, Decimal | int]
    near_long_term: dict[str, Decimal | int]  # short-term gains sold close to turning long
    holding: pl.DataFrame  # held-for buckets of what was sold: bucket, slices, proceeds, gain
    tax: Estimate
    profile: Profile  # the taxpayer the estimate is for
    crypto: frozenset[str]  # the symbols that are digital assets (Form 8949 boxes G-L)
    symbols: pl.DataFrame  # symbol, realized, tax (leave-one-out), fees
    baselines: pl.DataFrame  # scenario, tax, fees, total
    checks: list[Check]
    disposals: pl.DataFrame  # the year's disposal slices in taxable accounts
    washes: pl.DataFrame  # the year's wash matches, in booking order: all, or the first of a long history's
    wash_count: int  # how many wash matches the year has (``washes`` may hold only the first)
    cumulative: pl.DataFrame  # date, short, long: running realized gain through the year
    busy_week: int = 100  # the burst threshold the checks used
    notes: list[str] = field(default_factory=list)

    @property
    def turnover(self) -> Decimal | None:
        return self.proceeds / self.invested if self.invested > 0 else None

    @property
    def fee_share(self) -> Decimal | None:
        return self.fees / self.invested if self.invested > 0 else None


def audit_years(trades: pl.DataFrame) -> list[int]:
    """The tax years with trades, oldest first."""
    return sorted(trades.get_column("trade_date").dt.year().unique().to_list())


#: The trade columns ``build_audit`` reads (in any order of rows; ``trades`` table columns, so
#: ``Store.trade_columns`` reads them unsorted): a large book's trades load in a fraction of the
#: memory all of them take.
AUDIT_TRADE_COLUMNS = ("trade_date", "account", "symbol", "asset_class", "action", "fee", "fee_currency", "currency", "note")


#: What ``build_audit`` reads of a booking beyond the audited year's disposals and the washes it
#: shows: per table, the columns it groups by and those it adds up. A large book's booking is
#: read as those totals (``Store.booked_totals``, with a count ``n``): at 10M trades, 38M rows
#: become a few hundred thousand.
AUDIT_BOOKING_TOTALS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "lots": (("account", "symbol", "acquired"), ("cost_basis",)),
    "disposals": (("account", "symbol", "disposed"), ("cost_basis", "wash_basis")),
    "washes": (("disposed", "status", "broker_reported"), ("disallowed",)),
}


def build_audit(
    trades: pl.DataFrame, booked: Booked, config: Config, year: int, *,
    year_disposals: pl.DataFrame | None = None, year_washes: pl.DataFrame | None = None,
    account_names: list[str] | None = None, crypto: frozenset[str] | None = None,
) -> Audit:
    """The audit of ``year`` from the stored ``trades`` (trade_list columns, or at least
    ``AUDIT_TRADE_COLUMNS``, in any order; those of the year at least) and the ``booked`` lots,
    disposals and washes (with wash sales applied). With ``year_disposals`` (every column, in
    the booking's order; at least those of the year), ``booked``'s frames may be
    ``AUDIT_BOOKING_TOTALS``; with ``year_washes``, the washes to show (every column, in the
    booking's order: the year's first, say; those of other years are left out).
    ``account_names`` and ``crypto``: every account with trades, and the symbols that are
    digital assets, when ``trades`` holds only some years (taken from ``trades`` otherwise)."""
    types = {name: a.type.value for name, a in config.accounts.items()}
    names = trades.get_column("account").unique().to_list() if account_names is None else account_names
    taxable_accounts = _taxable(names, booked, config)
    in_year = trades.filter(pl.col("trade_date").dt.year() == year)
    if in_year.height == 0:
        raise ValueError(f"no trades in {year}")
    through = in_year.get_column("trade_date").max()
    assert isinstance(through, dt.date)
    trade_rows = in_year.select("trade_date", "account", "action").filter(pl.col("action").is_in(TRADES))  # counted only
    shown = booked.disposals if year_disposals is None else year_disposals
    # In cents row by row, as Form 8949 is filled (gain from the rounded figures), so that every
    # total here, and the tax on them, is the total of the form8949 file written beside it.
    disposals = round_money(
        shown.filter((pl.col("disposed").dt.year() == year) & pl.col("account").is_in(taxable_accounts)),
        ["proceeds", "cost_basis", "adjustment"], gain="gain",
    )
    washes_year = (booked.washes if year_washes is None else year_washes).filter(pl.col("disposed").dt.year() == year)
    wash_count = matches(booked.washes.filter(pl.col("disposed").dt.year() == year))

    fee_rows = _fees(in_year)
    # Each pass over the year's disposals first narrows them to the columns it reads: a filter or
    # a group_by over all 21 columns copies them all (1.5 GB at 10M trades).
    events = disposals.select("seq", "disposed", "account").group_by("seq").agg(pl.col("disposed").first().alias("date"), pl.col("account").first())

    def per(period: str, trunc: str) -> pl.DataFrame:
        t = trade_rows.group_by(pl.col("trade_date").dt.truncate(trunc).alias(period)).agg(pl.len().alias("trades"))
        e = events.group_by(pl.col("date").dt.truncate(trunc).alias(period)).agg(pl.len().alias("taxable_events"))
        return (
            t.join(e, on=period, how="full", coalesce=True)
            .with_columns(pl.col("trades").fill_null(0).cast(pl.Int64), pl.col("taxable_events").fill_null(0).cast(pl.Int64))
            .sort(period)
        )

    daily = per("date", "1d")
    weekly = per("week", "1w")
    monthly = per("month", "1mo")

    # Money by month: fees, realized gain (net of wash adjustments), and the tax each month's
    # gains add to the year's bill, taken in order (so netting within the year is respected).
    profile = tax_profile(config, year)
    months = [dt.date(year, m, 1) for m in range(1, 13)]
    realized = disposals.select("disposed", "term", "gain").filter(pl.col("gain").is_not_null()).with_columns(
        pl.col("disposed").dt.truncate("1mo").alias("month"))
    fees_by_month = fee_rows.group_by(pl.col("trade_date").dt.truncate("1mo").alias("month")).agg(pl.col("fee").sum())
    running_short, running_long, before = ZERO, ZERO, ZERO
    month_rows = []
    for m in months:
        part = realized.filter(pl.col("month") == m)
        running_short += _sum(part.filter(pl.col("term") == "short"), "gain")
        running_long += _sum(part.filter(pl.col("term") == "long"), "gain")
        so_far = estimate(profile, running_short, running_long).incremental
        month_rows.append({
            "month": m,
            "fees": _sum(fees_by_month.filter(pl.col("month") == m), "fee"),
            "realized": _sum(part, "gain"),
            "tax": so_far - before,
        })
        before = so_far
    money = pl.DataFrame(month_rows, schema={"month": pl.Date, "fees": pl.Decimal(38, 18), "realized": pl.Decimal(38, 18), "tax": pl.Decimal(38, 18)})
    monthly = money.join(monthly, on="month", how="left").with_columns(
        pl.col("trades").fill_null(0), pl.col("taxable_events").fill_null(0)
    ).select("month", "trades", "taxable_events", "fees", "realized", "tax")

    cfg = config.audit
    busiest = weekly.sort(["trades", "week"], descending=[True, False]).head(5)
    bursts = weekly.filter(pl.col("trades") > cfg.busy_week)

    gains = summary(disposals)
    short_net = gains["short_gains"] + gains["short_losses"]  # type: ignore[operator]
    long_net = gains["long_gains"] + gains["long_losses"]  # type: ignore[operator]
    tax = estimate(profile, short_net, long_net)  # type: ignore[arg-type]

    fees_total = _sum(fee_rows, "fee")
    invested = _average_invested(booked, taxable_accounts, year)
    proceeds = _sum(disposals, "proceeds")
    symbols = _symbols(disposals, fee_rows, profile, tax)
    baselines = pl.DataFrame(
        [
            {"scenario": "as traded (taxable accounts)", "tax": tax.incremental, "fees": fees_total},
            {"scenario": "held the start-of-year portfolio untouched", "tax": ZERO, "fees": ZERO},
            {"scenario": "the same trades inside a tax-deferred account", "tax": ZERO, "fees": fees_total},
        ],
        schema={"scenario": pl.String, "tax": pl.Decimal(38, 18), "fees": pl.Decimal(38, 18)},
    ).with_columns((pl.col("tax") + pl.col("fees")).alias("total"))

    accounts = _accounts(in_year, trade_rows, events, fee_rows, disposals, types)
    checks = _checks(in_year, booked, config, weekly, fees_total, trade_rows.height, year, taxable_accounts)
    return Audit(
        year=year, through=through, accounts=accounts, daily=daily, weekly=weekly, monthly=monthly,
        busiest_weeks=busiest, bursts=bursts, trades=trade_rows.height, taxable_events=events.height,
        reinvestments=in_year.filter(pl.col("action") == "reinvest").height, fees=fees_total,
        invested=invested, proceeds=proceeds, gains=gains,
        wash=wash_summary(booked.washes, booked.disposals, year, booked.carried),
        near_long_term=_near_long_term(disposals, cfg.near_long_term_days, config.lots.holding_period_month_end),
        holding=_holding(disposals), tax=tax, profile=profile, crypto=crypto_symbols(trades) if crypto is None else crypto, symbols=symbols, baselines=baselines, checks=checks,
        disposals=disposals, washes=washes_year, wash_count=wash_count, cumulative=_cumulative(disposals), busy_week=cfg.busy_week,
    )


# -- pieces -------------------------------------------------------------------------------------


def _sum(frame: pl.DataFrame, column: str) -> Decimal:
    if frame.height == 0:
        return ZERO
    value = frame.select(pl.col(column).sum()).item()
    return Decimal(value) if value is not None else ZERO


def tax_profile(config: Config, year: int) -> Profile:
    """The taxpayer profile of taxlens.toml's [tax] for ``year`` (its own year when set)."""
    t = config.tax
    return Profile(
        year=t.year or year, status=t.filing_status, other_income=t.other_income,
        qualified_dividends=t.qualified_dividends, deduction=t.deduction, state_rate=t.state_rate,
        marginal_rate=t.marginal_rate, carry_short=t.carryover_short, carry_long=t.carryover_long,
    )


def _taxable(accounts: list[str], booked: Booked, config: Config) -> list[str]:
    names = set(accounts) | set(booked.disposals.get_column("account").unique().to_list())
    return sorted(n for n in names if config.account(n).type.value == "taxable")


def _fees(trades: pl.DataFrame) -> pl.DataFrame:
    """Every fee paid in cash (the trade's currency): commissions on trades, regulatory fees on
    sales, standalone cash fees. Coin fees are disposals and show in the gains instead."""
    return trades.filter(
        (pl.col("fee") != 0) & ((pl.col("fee_currency") == pl.col("currency")) | (pl.col("fee_currency") == "USD"))
        & (pl.col("fee_currency") != pl.col("symbol"))
    ).select("trade_date", "account", "symbol", "action", "fee")


def _basis_changes(booked: Booked, accounts: list[str] | None = None) -> pl.DataFrame:
    """What each lot and each sale did to the cost basis held (``date``, ``symbol``, ``b``), in
    ``accounts`` (all when None): a lot adds its basis on its acquisition date, a sale takes off
    the original basis of what it sold (wash adjustments excluded). Lots and sales of unknown
    basis are left out."""
    known = pl.col("cost_basis").is_not_null()
    if accounts is not None:
        known &= pl.col("account").is_in(accounts)
    return pl.concat([
        booked.lots.filter(known).select(pl.col("acquired").alias("date"), "symbol", pl.col("cost_basis").alias("b")),
        booked.disposals.filter(known).select(pl.col("disposed").alias("date"), "symbol", (-(pl.col("cost_basis") - pl.col("wash_basis"))).alias("b")),
    ])


def _basis_held(booked: Booked, end: dt.date) -> pl.DataFrame:
    """Cost basis held at the end of ``end`` per symbol (``symbol``, ``b``): the ``_basis_changes``
    up to then."""
    return _basis_changes(booked).filter(pl.col("date") <= end).group_by("symbol").agg(pl.col("b").sum())


def _average_invested(booked: Booked, accounts: list[str], year: int) -> Decimal:
    """Mean of the cost basis held in ``accounts`` at each month end of ``year``.

    One pass, not one per month end: each of the ``_basis_changes`` counts from the first month
    end on or after its date (those before the year from the first), so the basis held at month
    end k is the running total of months 1..k."""
    date = pl.col("date")
    month = pl.when(date.dt.year() < year).then(pl.lit(1, pl.Int8)).otherwise(date.dt.month().cast(pl.Int8))
    moves = (
        _basis_changes(booked, accounts).filter(date <= dt.date(year, 12, 31))
        .group_by(month.alias("month")).agg(pl.col("b").sum())
    )
    totals = dict(zip(moves.get_column("month").to_list(), moves.get_column("b").to_list(), strict=True))
    held, total = ZERO, ZERO
    with localcontext(Context(prec=60)):  # the running totals exactly; 28 digits is a billion at 18 places
        for month_end in range(1, 13):
            held += Decimal(totals.get(month_end) or 0)
            total += held
    return total / 12


def _near_long_term(disposals: pl.DataFrame, days: int, month_end_rule: bool) -> dict[str, Decimal | int]:
    """Short-term gains realized within ``days`` of the shares turning long-term."""
    from taxlens.lots.holding import anniversary_expr

    rows = disposals.select("adjusted_acquired", "disposed", "term", "gain").filter((pl.col("term") == "short") & (pl.col("gain") > 0))
    turns = anniversary_expr(pl.col("adjusted_acquired"), month_end_rule=month_end_rule, dates=rows.get_column("adjusted_acquired"))
    near = rows.filter((turns - pl.col("disposed")).dt.total_days() < days)
    gain = near.get_column("gain").sum() if near.height else None
    return {"days": days, "slices": near.height, "gain": Decimal(gain) if gain is not None else ZERO}


BUCKETS = ((7, "up to a week"), (30, "8-30 days"), (90, "31-90 days"), (182, "3-6 months"), (365, "6-12 months"), (10**6, "over a year"))


def _holding(disposals: pl.DataFrame) -> pl.DataFrame:
    """How long what was sold had been held (by its adjusted acquisition date)."""
    held = disposals.select("adjusted_acquired", "disposed", "proceeds", "gain").filter(pl.col("adjusted_acquired").is_not_null()).with_columns(
        (pl.col("disposed") - pl.col("adjusted_acquired")).dt.total_days().alias("days")
    )
    rows = []
    low = -1
    for top, label in BUCKETS:
        part = held.filter((pl.col("days") > low) & (pl.col("days") <= top))
        rows.append({"held": label, "slices": part.height, "proceeds": _sum(part, "proceeds"), "gain": _sum(part, "gain")})
        low = top
    return pl.DataFrame(rows, schema={"held": pl.String, "slices": pl.Int64, "proceeds": pl.Decimal(38, 18), "gain": pl.Decimal(38, 18)})


def _symbols(disposals: pl.DataFrame, fees: pl.DataFrame, profile: Profile, tax: Estimate) -> pl.DataFrame:
    """Per symbol: realized gain, the tax it causes (the year's tax minus the tax without that
    symbol's gains), fees; costliest first."""
    known = disposals.select("symbol", "term", "gain").filter(pl.col("gain").is_not_null())
    short_all, long_all = tax.short, tax.long
    gain = pl.col("gain")
    sums = known.group_by("symbol").agg(gain.filter(pl.col("term") == "short").sum().alias("s"), gain.filter(pl.col("term") == "long").sum().alias("l"))
    gains = {r[0]: (Decimal(r[1] or 0), Decimal(r[2] or 0)) for r in sums.iter_rows()}
    paid = {r[0]: Decimal(r[1]) for r in fees.group_by("symbol").agg(pl.col("fee").sum()).iter_rows()}
    rows = []
    for symbol in sorted(gains.keys() | paid.keys()):
        s, lg = gains.get(symbol, (ZERO, ZERO))
        without = estimate(profile, short_all - s, long_all - lg).incremental
        rows.append({"symbol": symbol, "realized": s + lg, "tax": tax.incremental - without, "fees": paid.get(symbol, ZERO)})
    frame = pl.DataFrame(rows, schema={"symbol": pl.String, "realized": pl.Decimal(38, 18), "tax": pl.Decimal(38, 18), "fees": pl.Decimal(38, 18)})
    return frame.sort(["tax", "symbol"], descending=[True, False])


def _accounts(in_year: pl.DataFrame, trade_rows: pl.DataFrame, events: pl.DataFrame, fees: pl.DataFrame,
              disposals: pl.DataFrame, types: dict[str, str]) -> pl.DataFrame:
    names = sorted(in_year.get_column("account").unique().to_list())

    def per_account(frame: pl.DataFrame, value: pl.Expr) -> dict[str, object]:
        return dict(frame.group_by("account").agg(value).iter_rows())

    trades, taxable_events = per_account(trade_rows, pl.len()), per_account(events, pl.len())
    paid = per_account(fees, pl.col("fee").sum())
    realized = per_account(disposals.select("account", "gain").filter(pl.col("gain").is_not_null()), pl.col("gain").sum())
    rows = [{
        "account": name, "type": types.get(name, "taxable"), "trades": trades.get(name, 0),
        "taxable_events": taxable_events.get(name, 0), "fees": Decimal(paid.get(name) or 0),  # type: ignore[arg-type]
        "realized": Decimal(realized.get(name) or 0),  # type: ignore[arg-type]
    } for name in names]
    return pl.DataFrame(rows, schema={"account": pl.String, "type": pl.String, "trades": pl.Int64, "taxable_events": pl.Int64,
                                      "fees": pl.Decimal(38, 18), "realized": pl.Decimal(38, 18)})


def _cumulative(disposals: pl.DataFrame) -> pl.DataFrame:
    """Realized gain through the year, by date: running short- and long-term totals."""
    known = disposals.select("disposed", "term", "gain").filter(pl.col("gain").is_not_null())
    daily = (
        known.group_by("disposed")
        .agg(
            pl.col("gain").filter(pl.col("term") == "short").sum().alias("short"),
            pl.col("gain").filter(pl.col("term") == "long").sum().alias("long"),
        )
        .sort("disposed")
    )
    return daily.select(pl.col("disposed").alias("date"), pl.col("short").cum_sum(), pl.col("long").cum_sum())


def _checks(in_year: pl.DataFrame, booked: Booked, config: Config, weekly: pl.DataFrame, fees: Decimal,
            trades: int, year: int, taxable: list[str]) -> list[Check]:
    cfg = config.audit
    checks: list[Check] = []
    # Concentration: the largest open position at year end, at cost basis.
    held = (
        _basis_held(booked, dt.date(year, 12, 31))
        .filter(pl.col("b") > 0).sort(["b", "symbol"], descending=[True, False])
    )
    total = _sum(held, "b")
    if total > 0:
        top_symbol, top = held.row(0)
        share = Decimal(top) / total
        checks.append(Check(
            "concentration", share <= cfg.concentration_cap,
            f"largest position at the end of {year}: {top_symbol}, {share * 100:.1f}% of the portfolio at cost "
            f"(cap {cfg.concentration_cap * 100:.0f}%)",
        ))
    else:
        checks.append(Check("concentration", True, f"no open positions at the end of {year}"))
    # Leverage, margin, shorts.
    shorts = in_year.filter(pl.col("action").is_in(["sell_short", "buy_to_cover"])).height
    oversold = sum(1 for p in booked.problems if "exceeds the" in p.message)
    margin = in_year.filter(pl.col("note").fill_null("").str.to_lowercase().str.contains("margin")).height
    checks.append(Check(
        "leverage, margin and shorts", shorts == 0 and margin == 0,
        f"{shorts} short sales or covers, {margin} rows mentioning margin, {oversold} sales larger than the lots held "
        "(a short or missing history: see `taxlens gains`)",
    ))
    # Bursts.
    bursts = weekly.filter(pl.col("trades") > cfg.busy_week)
    if bursts.height:
        worst = bursts.sort("trades", descending=True).row(0, named=True)
        finding = (f"{bursts.height} {'week' if bursts.height == 1 else 'weeks'} over {cfg.busy_week} trades; the busiest, the week of {worst['week'].isoformat()}, "
                   f"had {worst['trades']}")
    else:
        most = int(weekly.get_column("trades").max() or 0) if weekly.height else 0  # type: ignore[arg-type]
        finding = f"no week over {cfg.busy_week} trades (the busiest had {most})"
    checks.append(Check("trade bursts", bursts.height == 0, finding))
    # Fees against expectations.
    if cfg.expected_fees is not None:
        diff = fees - cfg.expected_fees
        checks.append(Check(
            "fees", diff <= 0,
            f"fees found in the exports {fees:.2f}, expected {cfg.expected_fees:.2f} ({'+' if diff > 0 else ''}{diff:.2f})",
        ))
    else:
        checks.append(Check("fees", True, f"fees found in the exports {fees:.2f} (set [audit] expected_fees to compare)"))
    # Trade count against a typical rebalancer.
    months = max(1, in_year.get_column("trade_date").dt.month().n_unique())
    per_month = Decimal(trades) / months
    low, high = cfg.typical_month
    checks.append(Check(
        "trade count", per_month <= high,
        f"{trades} trades over {months} months, {per_month:.0f} a month (typical for an automated rebalancer: {low}-{high})",
    ))
    return checks
