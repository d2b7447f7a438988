"""Splits (and dividends) in the simulator's price panel, its policies and its replay of the
actual trades, worksheet by worksheet.

The stored trades' prices are as quoted: after a 2-for-1 split a share trades at half. The
panel must carry the split on its date, or every policy holding the stock loses half its value
overnight and the bands buy it back.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import polars as pl

from taxlens.lots.book import book
from taxlens.lots.events import Settings
from taxlens.simulate.engine import Policy, evaluate, simulate, trade_frame
from taxlens.simulate.prices import Prices, prices_from_trades, split_ratios
from taxlens.simulate.sweep import replay
from taxlens.tax.federal import Profile

PROFILE = Profile(year=2025, other_income=Decimal(100_000))


def trades(rows: str) -> pl.DataFrame:
    """``date, account, symbol, action, quantity, price`` lines as a trades frame."""
    parsed = [[f.strip() for f in line.split(",")] for line in rows.strip().splitlines()]
    return pl.DataFrame({
        "trade_date": [dt.date.fromisoformat(r[0]) for r in parsed],
        "ts": [None] * len(parsed),
        "account": [r[1] for r in parsed], "symbol": [r[2] for r in parsed], "action": [r[3] for r in parsed],
        "quantity": [Decimal(r[4]) for r in parsed], "price": [Decimal(r[5]) if r[5] else None for r in parsed],
    }, schema_overrides={"ts": pl.Datetime("us", "UTC"), "quantity": pl.Decimal(38, 18), "price": pl.Decimal(38, 18)})


HISTORY = trades("""
    2025-01-02, A, VTI,  buy,        10,  100.00
    2025-01-02, B, VTI,  buy,         4,  100.00
    2025-03-03, A, VTI,  sell,        2,  104.00
    2025-06-02, A, VTI,  split_in,    8,
    2025-06-02, B, VTI,  split_in,    4,
    2025-06-04, A, VTI,  buy,         2,   51.00
    2025-01-02, A, XYZ,  buy,       100,    2.00
    2025-05-01, A, XYZ,  split_out,  90,
    2025-05-02, A, XYZ,  sell,        5,   21.00
    2025-02-03, C, LATE, split_in,   17,
    2025-01-02, C, LATE, buy,         3,   10.00
""")


def test_a_split_ratio_is_the_holding_after_over_before() -> None:
    # VTI: A held 10 − 2 = 8 at the end of 2025-06-01; the split added 8: 16 / 8 = 2 (B, 4 + 4,
    # agrees). XYZ: 100 held, 90 taken away: 10 / 100 = 1:10. LATE: 3 held, 17 added: 20/3 is
    # a ratio p:q up to 100, kept (a history that starts late can mislead; see split_ratios).
    assert split_ratios(HISTORY) == {
        (dt.date(2025, 6, 2), "VTI"): 2.0, (dt.date(2025, 5, 1), "XYZ"): 0.1, (dt.date(2025, 2, 3), "LATE"): 20 / 3,
    }


def test_a_split_ratio_that_no_split_has_is_left_out() -> None:
    # ODD: 997 held, 3 added: 1000/997 is within 0.5% of 1:1, no split. RUM: 7 held, 5 added:
    # 12/7 is p:q up to 100. BIG: 3 held, 997 added: 1000/3 has no p up to 100.
    odd = trades("""
        2025-01-02, A, ODD, buy,      997, 1.00
        2025-02-03, A, ODD, split_in,   3,
        2025-01-02, A, RUM, buy,        7, 1.00
        2025-02-03, A, RUM, split_in,   5,
        2025-01-02, A, BIG, buy,        3, 1.00
        2025-02-03, A, BIG, split_in, 997,
    """)
    assert split_ratios(odd) == {(dt.date(2025, 2, 3), "RUM"): 12 / 7}


def test_the_panel_carries_a_split_on_its_date_and_divides_the_close_carried_across_it() -> None:
    p = prices_from_trades(HISTORY).window(dt.date(2025, 5, 29), dt.date(2025, 6, 5))
    j = p.symbols.index("VTI")
    by_day = {d: (float(p.close[i, j]), float(p.split[i, j])) for i, d in enumerate(p.dates)}
    # The last quote before the split is 104.00 (2025-03-03), carried forward; from the split
    # on it is 52.00 in the new shares, until the quote of 51.00 on 2025-06-04.
    assert by_day[dt.date(2025, 5, 30)] == (104.0, 1.0)
    assert by_day[dt.date(2025, 6, 2)] == (52.0, 2.0)
    assert by_day[dt.date(2025, 6, 3)] == (52.0, 1.0)
    assert by_day[dt.date(2025, 6, 4)] == (51.0, 1.0)


def test_holding_through_a_split_keeps_its_value() -> None:
    """`never` and the replayed actual hold 8 VTI into the split: 16 after it, at half the
    price, the same 832.00 (the split is not a loss); at the 51.00 quote, 16 × 51 = 816.00.
    Without the split in the panel, 8 shares at 51.00 were worth 408.00."""
    p = prices_from_trades(HISTORY).window(dt.date(2025, 5, 1), dt.date(2025, 6, 5))
    lots = [(dt.date(2025, 1, 2), "VTI", Decimal(8), Decimal(800))]
    never = simulate(Policy("never", never=True), p, {"VTI": 1.0}, lots=lots)
    split_day = p.dates.index(dt.date(2025, 6, 2))
    assert np.allclose(never.values[: split_day + 2], 832.0) and never.values[-1] == 816.0  # the panel ends at the last quote
    # Holding the target itself tracks it exactly: the target's return counts the split too
    # (against the quoted closes, the split day was a 50% fall: a tracking error of 162% a year).
    assert evaluate(never, p, {"VTI": 1.0}, PROFILE)["tracking_error"] == 0
    # The replay also buys 2 at 51.00 on 2025-06-04: 102.00 of cash it does not hold, a flow.
    actual = replay(HISTORY, p, {"VTI": 1.0}, lots)
    assert np.allclose(actual.values[-1] - actual.flows[1:].sum(), 816.0)


def test_a_policy_that_sells_after_a_split_books_the_split() -> None:
    """The simulated trades are booked for their tax: the split must be booked too, or a sale
    of post-split shares finds half of them in no lot (basis unknown, left out of the tax).
    A monthly rebalance of VTI and XYZ: VTI splits 2-for-1 on 2025-06-02, at 60.00 after
    (120.00 a pre-split share, up from 100.00), and the June rebalance sells some of it."""
    days = [d for d in (dt.date(2025, 5, 1) + dt.timedelta(days=i) for i in range(61)) if d.weekday() < 5]
    close = np.array([[100.0 if d < dt.date(2025, 6, 2) else 60.0, 10.0] for d in days])
    split = np.ones_like(close)
    split[days.index(dt.date(2025, 6, 2)), 0] = 2.0
    p = Prices(days, ["VTI", "XYZ"], close, np.zeros_like(close), split, "test")
    lots = [(dt.date(2025, 1, 2), "VTI", Decimal(10), Decimal(900)), (dt.date(2025, 1, 2), "XYZ", Decimal(100), Decimal(1000))]
    run = simulate(Policy("m", calendar="M"), p, {"VTI": 0.5, "XYZ": 0.5}, lots=lots)
    frame = trade_frame(run)
    held = frame.filter((pl.col("symbol") == "VTI") & (pl.col("trade_date") < dt.date(2025, 6, 2)))
    before = sum(q if a == "buy" else -q for a, q in held.select("action", "quantity").iter_rows())
    # The split adds as many shares as were held the day before.
    assert frame.filter(pl.col("action") == "split_in").select("trade_date", "symbol", "quantity").rows() == [
        (dt.date(2025, 6, 2), "VTI", before)]
    assert frame.filter((pl.col("symbol") == "VTI") & (pl.col("action") == "sell") & (pl.col("trade_date") >= dt.date(2025, 6, 2))).height
    booked = book(frame, Settings(default_method="fifo"))
    assert booked.disposals.filter(pl.col("cost_basis").is_null()).height == 0


def test_the_replay_keeps_the_dividends_its_shares_earn() -> None:
    """A policy is paid its dividends into cash; the replayed actual was not, which put it
    behind every policy by the year's yield. 8 VTI at 104.00 paid 1.50 a share: 12.00."""
    dates = [dt.date(2025, 5, 1) + dt.timedelta(days=i) for i in range(10)]
    close = np.full((10, 1), 104.0)
    dividend = np.zeros((10, 1))
    dividend[3, 0] = 1.5
    p = Prices(dates, ["VTI"], close, dividend, np.ones((10, 1)), "test")
    lots = [(dt.date(2025, 1, 2), "VTI", Decimal(8), Decimal(800))]
    never = simulate(Policy("never", never=True), p, {"VTI": 1.0}, lots=lots)
    actual = replay(HISTORY.filter(pl.col("trade_date") < dt.date(2025, 5, 1)), p, {"VTI": 1.0}, lots)
    assert never.values[-1] == actual.values[-1] == 8 * 104.0 + 12.0
    assert not actual.flows.any()
