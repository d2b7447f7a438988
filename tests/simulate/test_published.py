"""The simulator against published, independently computed numbers (simulation.md §3.7): a
50/50 US stock / T-bill portfolio on Ken French monthly data, 1926-07 to 2009-12, monitored at
month-ends, quarter-ends or year-ends, rebalanced back to 50/50 when the stock weight is off by
at least the threshold. No costs, no taxes (pre-tax wealth). The reference table's counts and
returns were cross-checked there against bt 1.4.1; the data's provenance is in tests/data/."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest

from taxlens.simulate.engine import Policy, simulate
from taxlens.simulate.prices import Prices

DATA = Path(__file__).parents[1] / "data" / "french_monthly_1926_2009.csv"


def _month_end(ym: str) -> dt.date:
    y, m = map(int, ym.split("-"))
    return dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)


@pytest.fixture(scope="module")
def panel() -> Prices:
    """Total-return indexes: stocks (Mkt-RF + RF) and bills (RF), 1.0 at the end of June 1926."""
    rows = [line.split(",") for line in DATA.read_text().splitlines()[1:]]
    dates = [dt.date(1926, 6, 30)] + [_month_end(r[0]) for r in rows]
    stocks, bills = [1.0], [1.0]
    for _, mkt_rf, rf in rows:  # floats: these are index levels, not money
        stocks.append(stocks[-1] * (1 + (float(mkt_rf) + float(rf)) / 100))
        bills.append(bills[-1] * (1 + float(rf) / 100))
    close = np.column_stack([stocks, bills])
    return Prices(dates, ["STK", "BIL"], close, np.zeros_like(close), np.ones_like(close), "Ken French via arch 8.0.0")


@pytest.mark.parametrize(
    ("calendar", "band", "events", "cagr", "vol"),
    [
        (None, None, 0, 8.71, 14.00),
        ("M", 0.00, 1001, 7.08, 9.48),
        ("M", 0.01, 417, 7.08, 9.48),
        ("M", 0.05, 60, 7.15, 9.54),
        ("M", 0.10, 25, 7.42, 9.64),
        ("Q", 0.00, 334, 7.22, 9.55),
        ("Q", 0.01, 220, 7.23, 9.55),
        ("Q", 0.05, 57, 7.36, 9.63),
        ("Q", 0.10, 24, 7.46, 9.65),
        ("A", 0.00, 84, 7.18, 9.34),
        ("A", 0.01, 74, 7.18, 9.34),
        ("A", 0.05, 35, 7.20, 9.33),
        ("A", 0.10, 19, 7.41, 9.59),
    ],
)
def test_rebalancing_events_and_returns_match_the_reference(panel: Prices, calendar: str | None, band: float | None,
                                                              events: int, cagr: float, vol: float) -> None:
    """Every row of the 1926-07…2009-12 table: the event count exactly (Nov 1964 had no drift,
    so monthly 0 % gives 1,001 for 1,002 months), CAGR and volatility to the table's 0.01 %."""
    policy = Policy("p", never=calendar is None, calendar=calendar, band=band)
    run = simulate(policy, panel, {"STK": 0.5, "BIL": 0.5}, cash=1_000_000.0)
    years = (len(panel.dates) - 1) / 12
    returns = run.values[1:] / run.values[:-1] - 1
    assert run.events == events
    assert round(((run.values[-1] / 1_000_000) ** (1 / years) - 1) * 100, 2) == cagr
    assert round(float(np.std(returns, ddof=1)) * math.sqrt(12) * 100, 2) == vol
