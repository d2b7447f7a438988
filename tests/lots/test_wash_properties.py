"""Wash-sale properties over random busy histories (Hypothesis).

Wash sales move a loss in time, never create or destroy it: once every lot is sold, the total
gain with the rule applied equals the total without it, to the last digit, when every
replacement is taxable; with IRA replacements the difference is exactly the loss lost for good.
Along the way every match is bounded by what was there to match.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

import taxlens
from tests.lots.test_lot_properties import FEE_CENTS, MODEST, PRICE_CENTS, QUANTITY_UNITS, Trade, ingested

START = dt.date(2025, 1, 2)
END = dt.date(2025, 12, 30)


@st.composite
def busy(draw: st.DrawFn, accounts: tuple[str, ...]) -> list[Trade]:
    """A rebalancer's history: buys and sells a few days apart in every (account, symbol), so
    most losses have a purchase within 30 days somewhere; every position closed at the end."""
    symbols = draw(st.lists(st.sampled_from(("VTI", "VOO")), min_size=1, max_size=2, unique=True))
    trades: list[Trade] = []
    for account in accounts:
        for symbol in symbols:
            held, day = 0, START
            for _ in range(draw(st.integers(min_value=1, max_value=8))):
                day += dt.timedelta(days=draw(st.integers(min_value=0, max_value=20)))
                sell = held > 0 and draw(st.booleans())
                units = draw(st.one_of(st.just(held), st.integers(min_value=1, max_value=held))) if sell else draw(QUANTITY_UNITS)
                held += -units if sell else units
                # Prices near 100 so that gains and losses both happen.
                cents = draw(st.integers(min_value=9_000, max_value=11_000))
                trades.append(Trade(day, account, symbol, "sell" if sell else "buy", units, cents, draw(FEE_CENTS), f"T{len(trades) + 1}"))
            if held > 0:
                trades.append(Trade(END, account, symbol, "sell", held, draw(PRICE_CENTS), draw(FEE_CENTS), f"T{len(trades) + 1}"))
    return trades


def booked(trades: list[Trade], settings: dict[str, object]) -> taxlens.api.Booked:  # type: ignore[name-defined]
    with tempfile.TemporaryDirectory() as folder, taxlens.open_book(":memory:", taxlens.Config.model_validate(settings)) as book:
        ingested(book, trades, Path(folder))
        return book.booked()


def total(column: pl.Series) -> Decimal:
    values = column.to_list()
    assert None not in values
    return sum(values, Decimal(0))


def check_matches(result: taxlens.api.Booked) -> None:  # type: ignore[name-defined]
    """Every slice's disallowed loss is at most its loss; no replacement lot is used for more
    shares than it has; the matches add up to each slice's adjustment."""
    d, w, lots = result.disposals, result.washes, result.lots
    for row in d.iter_rows(named=True):
        assert row["adjustment"] >= 0
        if row["adjustment"] > 0:
            assert row["adjustment_code"] == "W"
            assert row["gain"] <= 0 and row["gain"] - row["adjustment"] < 0  # only a loss is washed, never past zero
    size: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    for row in lots.iter_rows(named=True):
        size[(row["account"], row["seq"])] += row["quantity"]
    used: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    for row in w.iter_rows(named=True):
        used[(row["replacement_account"], row["replacement_seq"])] += row["quantity"]
        assert row["disallowed"] > 0
        assert abs((row["disposed"] - row["replacement_acquired"]).days) <= 30
    assert all(q <= size[key] for key, q in used.items())
    applied = w.filter(pl.col("status") != "info")
    assert total(applied["disallowed"]) == total(d["adjustment"])


@MODEST
@given(busy(("Alpaca", "Schwab")))
def test_washes_only_defer_losses_between_taxable_accounts(trades: list[Trade]) -> None:
    """Taxable accounts only, everything sold by the end: Σ gain with the rule = Σ gain without,
    and nothing is left deferred."""
    on = booked(trades, {})
    off = booked(trades, {"wash_sales": {"apply": False}})
    check_matches(on)
    assert total(on.disposals["gain"]) == total(off.disposals["gain"])
    assert total(on.disposals["wash_basis"]) == total(on.washes.filter(pl.col("status") == "deferred")["disallowed"])
    assert total(on.lots["open_quantity"]) == 0


@MODEST
@given(busy(("Alpaca", "IRA")))
def test_an_ira_replacement_loses_exactly_the_permanent_amount(trades: list[Trade]) -> None:
    """With IRA purchases in the household: Σ gain with the rule − Σ gain without = the loss
    permanently disallowed (the IRA's own sales are not washed and get no basis)."""
    settings = {"accounts": {"IRA": {"type": "roth_ira"}}}
    on = booked(trades, settings)
    off = booked(trades, {**settings, "wash_sales": {"apply": False}})
    check_matches(on)
    permanent = total(on.washes.filter(pl.col("status") == "permanent")["disallowed"])
    assert total(on.disposals["gain"]) - total(off.disposals["gain"]) == permanent
    assert total(on.disposals.filter(pl.col("account") == "IRA")["adjustment"]) == 0
