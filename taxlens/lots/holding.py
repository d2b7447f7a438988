"""Holding period: short- or long-term (tax-rules.md §1).

The period starts the day after acquisition and includes the disposal day; it is long-term only
if the asset was held *more than* one year, counted in calendar months on trade dates:

    anniversary(acquired) = the same month and day a year later, or, when ``acquired`` is the
                            last day of its month, the last day of that month a year later
    long-term            ⇔  disposed > anniversary(acquired)

So a sale on the anniversary is short-term (HP-1), 366 days across a leap day can still be
short-term (HP-3), and a lot bought on 2023-02-28 and sold on 2024-02-29 is short-term under the
month-end rule (HP-6, Rev. Rul. 66-7 and *Caspe v. United States*). HP-6 is the one case where
authorities disagree; ``month_end_rule=False`` uses the plain same-date anniversary instead
(taxlens.toml: ``holding_period_month_end = false``), which makes that sale long-term.
"""

from __future__ import annotations

import calendar
import datetime as dt

import polars as pl


def anniversary(acquired: dt.date, *, month_end_rule: bool = True) -> dt.date:
    """The last day of the first year of holding: a sale after it is long-term."""
    year = acquired.year + 1
    last = calendar.monthrange(year, acquired.month)[1]
    if month_end_rule and acquired.day == calendar.monthrange(acquired.year, acquired.month)[1]:
        return dt.date(year, acquired.month, last)
    return dt.date(year, acquired.month, min(acquired.day, last))


def term(acquired: dt.date, disposed: dt.date, *, month_end_rule: bool = True) -> str:
    """'long' if held more than one year, else 'short'."""
    return "long" if disposed > anniversary(acquired, month_end_rule=month_end_rule) else "short"


def term_expr(acquired: pl.Expr, disposed: pl.Expr, *, month_end_rule: bool = True, dates: pl.Series | None = None) -> pl.Expr:
    """``term`` as a polars expression over date columns (same rule, vectorised; ``dates`` as
    for ``anniversary_expr``)."""
    anniversary = anniversary_expr(acquired, month_end_rule=month_end_rule, dates=dates)
    return pl.when(disposed > anniversary).then(pl.lit("long")).otherwise(pl.lit("short"))


def anniversary_expr(acquired: pl.Expr, *, month_end_rule: bool = True, dates: pl.Series | None = None) -> pl.Expr:
    """``anniversary`` as a polars expression over a date column (same rule, vectorised).

    ``dates``, when given, holds every value ``acquired`` takes: each anniversary is then worked
    out once per distinct date and looked up, which is several times faster than date arithmetic
    on every row (a big booking has many rows per acquisition date)."""
    if dates is None:
        return _anniversary_expr(acquired, month_end_rule)
    days = dates.unique().drop_nulls()
    ends = pl.select(_anniversary_expr(pl.lit(days), month_end_rule)).to_series()
    return acquired.replace_strict(days, ends, default=None, return_dtype=pl.Date)


def _anniversary_expr(acquired: pl.Expr, month_end_rule: bool) -> pl.Expr:
    """``anniversary`` as a polars expression."""
    same_day = acquired.dt.offset_by("1y")  # polars clamps 29 Feb to 28 Feb, as ``anniversary`` does
    if month_end_rule:
        is_month_end = acquired == acquired.dt.month_end()
        same_day = pl.when(is_month_end).then(same_day.dt.month_end()).otherwise(same_day)
    return same_day
