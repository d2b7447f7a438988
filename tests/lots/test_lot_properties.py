"""Booking invariants on random histories, for every method, through the public API.

Random buy/sell histories of 1–3 accounts × 1–3 symbols that never sell more than is held
(quantities with up to 8 decimals, prices in cents, fees sometimes) are written as a generic CSV,
ingested into an in-memory book and booked with each method. Whatever the method:

* quantity is conserved: bought = sold + still open, for every lot;
* basis is conserved: a lot's cost basis = the basis of its disposal slices + its open basis,
  exactly (the pro-rata rule in engine.py: slices of a lot telescope to its basis);
* proceeds are conserved: a sale's slices add up to its net proceeds exactly;

and once every position is closed, FIFO, LIFO, HIFO and TaxMin give the same total gain to the
last digit: the order in which lots are consumed changes when gains are realised and their term,
never their sum.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import taxlens
from taxlens.api import Book
from taxlens.config import WashConfig
from taxlens.money import plain

HEADER = "date,account,symbol,side,quantity,price,fee,currency,asset_class,trade_id,lot_id\n"
ACCOUNTS = ("Alpaca", "Schwab", "Coinbase")
SYMBOLS = ("VTI", "BTC", "BRK.B")
METHODS = ("fifo", "lifo", "hifo", "taxmin")
START = dt.date(2023, 1, 2)
UNIT = Decimal("0.00000001")  # quantities are whole multiples of 10^-8

# Each example opens a book and books it four times: keep the count modest (the suite runs on
# two cores), scaled with the Hypothesis profile loaded by conftest.py.
MODEST = settings(
    max_examples=max(10, getattr(settings.default, "max_examples", 50) // 2),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class Trade:
    """One generic-CSV row, with the amounts it must book to (basis or net proceeds)."""

    def __init__(self, day: dt.date, account: str, symbol: str, side: str, units: int, cents: int, fee_cents: int, trade_id: str) -> None:
        self.day, self.account, self.symbol, self.side = day, account, symbol, side
        self.quantity = units * UNIT
        self.price = Decimal(cents).scaleb(-2)
        self.fee = Decimal(fee_cents).scaleb(-2)
        self.trade_id = trade_id

    @property
    def amount(self) -> Decimal:
        """Buy: basis = quantity × price + fee. Sell: net proceeds = quantity × price − fee."""
        gross = self.quantity * self.price
        return gross + self.fee if self.side == "buy" else gross - self.fee

    def csv(self) -> str:
        return (f"{self.day.isoformat()},{self.account},{self.symbol},{self.side},{plain(self.quantity)},"
                f"{self.price},{self.fee},USD,{'crypto' if self.symbol == 'BTC' else 'equity'},{self.trade_id},\n")


QUANTITY_UNITS = st.one_of(
    st.integers(min_value=1, max_value=40).map(lambda whole: whole * 10**8),  # whole shares
    st.integers(min_value=1, max_value=5 * 10**9),  # fractions with up to 8 decimals
)
PRICE_CENTS = st.integers(min_value=1, max_value=200_000)
FEE_CENTS = st.one_of(st.just(0), st.just(0), st.integers(min_value=1, max_value=999))


@st.composite
def histories(draw: st.DrawFn, *, close_all: bool = False) -> list[Trade]:
    """Buys and sells per (account, symbol), in date order, never selling more than is held at
    that point of the position's history (booking applies same-day buys first, which only adds
    to what is held). With ``close_all``, a final sale empties every position."""
    accounts = draw(st.lists(st.sampled_from(ACCOUNTS), min_size=1, max_size=3, unique=True))
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=3, unique=True))
    trades: list[Trade] = []
    for account in accounts:
        for symbol in symbols:
            held, day = 0, START
            for _ in range(draw(st.integers(min_value=1, max_value=5))):
                day += dt.timedelta(days=draw(st.integers(min_value=0, max_value=200)))
                sell = held > 0 and draw(st.booleans())
                if sell:
                    units = draw(st.one_of(st.just(held), st.integers(min_value=1, max_value=held)))
                    held -= units
                else:
                    units = draw(QUANTITY_UNITS)
                    held += units
                side = "sell" if sell else "buy"
                trades.append(Trade(day, account, symbol, side, units, draw(PRICE_CENTS), draw(FEE_CENTS), f"T{len(trades) + 1}"))
            if close_all and held > 0:
                trades.append(Trade(dt.date(2026, 6, 1), account, symbol, "sell", held, draw(PRICE_CENTS), draw(FEE_CENTS), f"T{len(trades) + 1}"))
    return trades


def ingested(book: Book, trades: list[Trade], folder: Path) -> None:
    path = folder / "history.csv"
    path.write_text(HEADER + "".join(t.csv() for t in trades), encoding="utf-8")
    report = book.ingest([path])
    assert report.ok, [(f.problem, f.errors) for f in report.files]


def total(values: list[Decimal | None]) -> Decimal:
    assert all(v is not None for v in values), "no basis or proceeds may be unknown here"
    return sum((v for v in values if v is not None), Decimal(0))


def by(frame: pl.DataFrame, key: str, column: str) -> dict[str, Decimal]:
    """Exact per-key sums of a Decimal column (in Python, so no engine rounding can hide)."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for k, v in frame.select(key, column).iter_rows():
        sums[k] += v
    return dict(sums)


@MODEST
@given(histories())
def test_quantity_basis_and_proceeds_are_conserved_by_every_method(trades: list[Trade]) -> None:
    """Conservation (engine.py pro-rata rule): for every lot, quantity bought = quantity sold +
    open quantity, and cost basis = basis of its slices + open basis, exactly; a sale's slices
    add up to its net proceeds. Never a shortfall: nothing is oversold. (Booking alone: wash
    sales move basis between lots on purpose, and tests/lots/test_wash_properties.py holds them.)"""
    buys = [t for t in trades if t.side == "buy"]
    sells = [t for t in trades if t.side == "sell"]
    no_wash = taxlens.Config(wash_sales=WashConfig(apply=False))
    with tempfile.TemporaryDirectory() as folder, taxlens.open_book(":memory:", no_wash) as book:
        ingested(book, trades, Path(folder))
        for method in METHODS:
            booked = book.booked(method=method)
            lots, disposals = booked.lots, booked.disposals
            assert booked.problems == [] and booked.errors == []
            assert disposals["lot_id"].null_count() == 0  # no basis-unknown slice
            assert set(disposals["method"]) <= {method}

            # Lots are the buys, with their basis = quantity × price + fee.
            assert {r["lot_id"]: (r["quantity"], r["cost_basis"]) for r in lots.iter_rows(named=True)} == {
                t.trade_id: (t.quantity, t.amount) for t in buys
            }
            # Totals: bought = sold + open; basis = sold basis + open basis.
            assert total(lots["quantity"].to_list()) == total(disposals["quantity"].to_list()) + total(lots["open_quantity"].to_list())
            assert total(lots["cost_basis"].to_list()) == total(disposals["cost_basis"].to_list()) + total(lots["open_basis"].to_list())
            # Lot by lot.
            sold_q, sold_b = by(disposals, "lot_id", "quantity"), by(disposals, "lot_id", "cost_basis")
            for lot in lots.iter_rows(named=True):
                assert sold_q.get(lot["lot_id"], Decimal(0)) + lot["open_quantity"] == lot["quantity"]
                assert sold_b.get(lot["lot_id"], Decimal(0)) + lot["open_basis"] == lot["cost_basis"]
                assert lot["open_quantity"] >= 0 and (lot["open_quantity"] != 0 or lot["open_basis"] == 0)
            # Sale by sale: the slices add up to the sale's quantity and net proceeds.
            assert by(disposals, "sell_trade_id", "quantity") == {t.trade_id: t.quantity for t in sells}
            assert by(disposals, "sell_trade_id", "proceeds") == {t.trade_id: t.amount for t in sells}
            # Gain is proceeds − basis on every slice.
            assert all(r["gain"] == r["proceeds"] - r["cost_basis"] for r in disposals.iter_rows(named=True))


@MODEST
@given(histories(close_all=True))
def test_when_every_lot_is_sold_every_method_gives_the_same_total_gain(trades: list[Trade]) -> None:
    """Lot order moves gains between sales, years and terms but, once every lot is sold, the
    total is Σ net proceeds − Σ basis for all of them: the same for FIFO, LIFO, HIFO and TaxMin,
    to the last digit, with wash sales applied (they only defer losses into later sales)."""
    expected = sum((t.amount for t in trades if t.side == "sell"), Decimal(0)) - sum(
        (t.amount for t in trades if t.side == "buy"), Decimal(0)
    )
    with tempfile.TemporaryDirectory() as folder, taxlens.open_book(":memory:", taxlens.Config()) as book:
        ingested(book, trades, Path(folder))
        gains = {}
        for method in METHODS:
            booked = book.booked(method=method)
            assert booked.problems == []
            assert total(booked.lots["open_quantity"].to_list()) == 0
            assert total(booked.lots["open_basis"].to_list()) == 0
            gains[method] = total(booked.disposals["gain"].to_list())
        assert gains == dict.fromkeys(METHODS, expected)
