"""Holding period worked examples HP-1..HP-8 (tax-rules.md §1.3), in Python and in polars."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taxlens.lots.holding import anniversary, term, term_expr

D = dt.date.fromisoformat

CASES = [
    ("HP-1", "2024-02-05", "2025-02-05", "short"),  # exactly one year
    ("HP-2", "2024-02-05", "2025-02-06", "long"),
    ("HP-3", "2024-01-10", "2025-01-10", "short"),  # 366 days, still one calendar year
    ("HP-4", "2024-02-29", "2025-02-28", "short"),
    ("HP-5", "2024-02-29", "2025-03-01", "long"),
    ("HP-6", "2023-02-28", "2024-02-29", "short"),  # month-end rule (the configurable case)
    ("HP-7", "2025-03-03", "2025-03-03", "short"),  # same-day round trip
    ("HP-8", "2024-06-06", "2025-06-06", "short"),  # trade dates govern, not settlement (06-07 → 06-09)
    ("month-end", "2024-04-30", "2025-04-30", "short"),
    ("month-end+1", "2024-04-30", "2025-05-01", "long"),
    ("new-year", "2024-12-31", "2025-12-31", "short"),
    ("new-year+1", "2024-12-31", "2026-01-01", "long"),
]


@pytest.mark.parametrize(("case", "acquired", "disposed", "expected"), CASES, ids=[c[0] for c in CASES])
def test_holding_period_worked_examples(case: str, acquired: str, disposed: str, expected: str) -> None:
    assert term(D(acquired), D(disposed)) == expected
    frame = pl.DataFrame({"a": [D(acquired)], "d": [D(disposed)]})
    assert frame.select(term_expr(pl.col("a"), pl.col("d"))).item() == expected


def test_hp6_without_the_month_end_rule_is_long_term() -> None:
    assert term(D("2023-02-28"), D("2024-02-29"), month_end_rule=False) == "long"
    frame = pl.DataFrame({"a": [D("2023-02-28")], "d": [D("2024-02-29")]})
    assert frame.select(term_expr(pl.col("a"), pl.col("d"), month_end_rule=False)).item() == "long"


def test_a_new_year_fill_is_dated_by_the_taxpayers_zone() -> None:
    """design.md §3: a fill at 2026-01-01T01:30Z is a 2025-12-31 trade in New York, so a lot
    bought then and sold on 2026-12-31 has been held more than a year."""
    from zoneinfo import ZoneInfo

    trade_date = dt.datetime(2026, 1, 1, 1, 30, tzinfo=dt.UTC).astimezone(ZoneInfo("America/New_York")).date()
    assert trade_date == D("2025-12-31")
    assert term(trade_date, D("2026-12-31")) == "short"
    assert term(trade_date, D("2027-01-01")) == "long"


@given(st.dates(dt.date(1990, 1, 1), dt.date(2090, 1, 1)), st.integers(0, 800), st.booleans())
def test_python_and_polars_agree(acquired: dt.date, days: int, month_end: bool) -> None:
    disposed = acquired + dt.timedelta(days=days)
    frame = pl.DataFrame({"a": [acquired], "d": [disposed]})
    assert frame.select(term_expr(pl.col("a"), pl.col("d"), month_end_rule=month_end)).item() == term(
        acquired, disposed, month_end_rule=month_end
    )
    assert anniversary(acquired, month_end_rule=month_end) > acquired


@pytest.mark.parametrize("month_end", [True, False])
def test_the_looked_up_anniversaries_agree_with_the_rule_on_every_day(month_end: bool) -> None:
    """term_expr with ``dates`` (anniversaries per distinct date, looked up) gives term() for
    every acquisition date of 1999-2101, sold 365 and 366 days later, leap days included."""
    days = pl.date_range(dt.date(1999, 1, 1), dt.date(2101, 12, 31), eager=True)
    frame = pl.DataFrame({"a": pl.concat([days, days])}).with_columns(
        (pl.col("a") + pl.duration(days=pl.int_range(pl.len()) // days.len() + 365)).alias("d")
    )
    got = frame.select(term_expr(pl.col("a"), pl.col("d"), month_end_rule=month_end, dates=frame["a"])).to_series()
    expected = [term(a, d, month_end_rule=month_end) for a, d in frame.iter_rows()]
    assert got.to_list() == expected
