"""The vectorised FIFO (lots/fifo.py) against the reference loop, to the last digit."""

from __future__ import annotations

import datetime as dt
import decimal
from decimal import Decimal

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from taxlens.lots.engine import book_loop
from taxlens.lots.fifo import book_fifo, fast_positions
from taxlens.lots.frames import EVENT_SCHEMA

Row = tuple[object, ...]


def _event(scope: str, account: str, symbol: str, kind: str, date: dt.date, quantity: Decimal,
           amount: Decimal | None, trade_id: str, method: str | None = None) -> Row:
    """An event row without its seq (EVENT_SCHEMA order after seq)."""
    if method is None and kind == "dispose":
        method = "fifo"
    return (scope, account, symbol, kind, date, quantity, amount, trade_id, None, method, None, "USD", f"t.csv:{trade_id}")


def _frame(rows: list[Row]) -> pl.DataFrame:
    """Events numbered 1..n in the order given (the caller gives date order)."""
    return pl.DataFrame([(i, *row) for i, row in enumerate(rows, start=1)], schema=EVENT_SCHEMA, orient="row")


# Quantities: whole numbers and fractions with up to 18 decimals.
QUANTITIES = st.builds(lambda units, scale: Decimal(units).scaleb(-scale),
                       st.integers(min_value=1, max_value=10**9), st.sampled_from([0, 0, 2, 8, 18]))
# Amounts: cents, odd 18-decimal values like 100/3, and arbitrary scales.
AMOUNTS = st.one_of(
    st.builds(lambda cents: Decimal(cents).scaleb(-2), st.integers(min_value=0, max_value=10**11)),
    st.sampled_from([Decimal("33.333333333333333333"), Decimal("66.666666666666666667"),
                     Decimal("0.000000000000000001"), Decimal("1000.000000000000000001"), Decimal("7")]),
    st.builds(lambda units, scale: Decimal(units).scaleb(-scale),
              st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=18)),
)
ACCOUNTS = ("Alpaca", "Coinbase")
SYMBOLS = ("VTI", "BTC", "BRK.B")


def _price(quantity: Decimal, amount: Decimal) -> Decimal:
    """``amount``, capped at 1e15 per unit: a unit amount near 1e20 can't be a Decimal(38,18),
    so ``fast_positions`` sends such positions to the loop (tested on its own below)."""
    return min(amount, quantity.scaleb(15))


@st.composite
def histories(draw: st.DrawFn) -> pl.DataFrame:
    """Random buy/sell histories of several positions, sales never exceeding holdings.

    Sometimes BTC is pooled across both accounts (one "universal:" scope, as crypto before
    2025), so a position's events carry different accounts."""
    pooled = draw(st.booleans())
    positions: list[tuple[str, tuple[str, ...], str]] = []
    for symbol in SYMBOLS:
        if pooled and symbol == "BTC":
            positions.append(("universal:self", ACCOUNTS, symbol))
        else:
            positions.extend((account, (account,), symbol) for account in ACCOUNTS)
    timeline: list[tuple[dt.date, int, int, Row]] = []
    for p, (scope, accounts, symbol) in enumerate(positions):
        date = draw(st.dates(min_value=dt.date(2021, 1, 1), max_value=dt.date(2022, 12, 31)))
        held = Decimal(0)
        for i in range(draw(st.integers(min_value=1, max_value=60))):
            date += dt.timedelta(days=draw(st.sampled_from([0, 0, 1, 30, 200, 365, 366, 400])))
            account = draw(st.sampled_from(accounts))
            if held > 0 and draw(st.booleans()):
                units = int(held.scaleb(18))  # sell 1e-18 .. everything held, often exactly all
                sold = held if draw(st.booleans()) else Decimal(draw(st.integers(1, units))).scaleb(-18)
                held -= sold
                row = _event(scope, account, symbol, "dispose", date, sold, _price(sold, draw(AMOUNTS)), f"s{p}-{i}")
            else:
                bought = draw(QUANTITIES)
                held += bought
                row = _event(scope, account, symbol, "acquire", date, bought, _price(bought, draw(AMOUNTS)), f"b{p}-{i}")
            timeline.append((date, p, i, row))
    timeline.sort(key=lambda item: item[:3])  # date order; each position keeps its own order
    return _frame([row for *_, row in timeline])


@given(histories(), st.booleans())
def test_book_fifo_equals_the_loop_exactly(events: pl.DataFrame, month_end_rule: bool) -> None:
    assert fast_positions(events).all()
    fast = book_fifo(events, month_end_rule=month_end_rule)
    loop = book_loop(events, month_end_rule=month_end_rule)
    assert fast.lots.equals(loop.lots)
    assert fast.disposals.equals(loop.disposals)
    assert fast.problems == loop.problems == []
    assert fast.errors == loop.errors == []


def _total(frame: pl.DataFrame, column: str) -> Decimal:
    return sum(frame[column].to_list(), Decimal(0))


@given(histories())
def test_quantity_and_basis_are_conserved_exactly(events: pl.DataFrame) -> None:
    booked = book_fifo(events)
    lots, disposals = booked.lots, booked.disposals
    with decimal.localcontext() as context:
        context.prec = 60  # exact sums: the default 28 digits would round them
        assert _total(lots, "quantity") == _total(disposals, "quantity") + _total(lots, "open_quantity")
        assert _total(lots, "cost_basis") == _total(disposals, "cost_basis") + _total(lots, "open_basis")
    # Each sale's slices add up to its quantity and its net proceeds.
    sales = events.filter(pl.col("kind") == "dispose").select(
        pl.col("seq"), pl.col("quantity").alias("q"), pl.col("amount").alias("p"))
    sums = disposals.group_by("seq").agg(pl.col("quantity").sum(), pl.col("proceeds").sum())
    both = sales.join(sums, on="seq", how="left")
    assert both.filter((pl.col("q") != pl.col("quantity")) | (pl.col("p") != pl.col("proceeds"))).height == 0


def test_fast_positions_sends_anything_unusual_to_the_loop() -> None:
    d = dt.date.fromisoformat
    one, five = Decimal(1), Decimal(5)
    rows = [
        _event("A", "A", "CLEAN", "acquire", d("2024-01-02"), five, Decimal(100), "c1"),
        _event("A", "A", "SHORT", "acquire", d("2024-01-02"), one, Decimal(100), "h1"),
        _event("A", "A", "SPLIT", "acquire", d("2024-01-02"), one, Decimal(100), "p1"),
        _event("A", "A", "MOVE", "acquire", d("2024-01-02"), five, Decimal(100), "m1"),
        _event("A", "A", "LIFO", "acquire", d("2024-01-02"), five, Decimal(100), "l1"),
        _event("A", "A", "NOBASIS", "acquire", d("2024-01-02"), five, None, "n1"),
        _event("A", "A", "BACKDATED", "acquire", d("2024-01-05"), five, Decimal(100), "k1"),
        _event("A", "A", "CLEAN", "dispose", d("2024-01-03"), Decimal(3), Decimal(70), "c2"),
        _event("A", "A", "SHORT", "dispose", d("2024-01-03"), Decimal(2), Decimal(70), "h2"),  # 2 > 1 held
        _event("A", "A", "SPLIT", "split_in", d("2024-01-03"), one, None, "p2"),
        _event("A", "A", "MOVE", "transfer_out", d("2024-01-03"), one, None, "m2"),
        _event("A", "A", "LIFO", "dispose", d("2024-01-03"), one, Decimal(20), "l2", method="lifo"),
        _event("A", "A", "NOBASIS", "dispose", d("2024-01-03"), one, Decimal(20), "n2"),
        _event("A", "A", "CLEAN", "acquire", d("2024-01-04"), five, Decimal(90), "c3"),
        _event("A", "A", "SHORT", "acquire", d("2024-01-04"), five, Decimal(90), "h3"),  # too late
        _event("A", "A", "BACKDATED", "acquire", d("2024-01-04"), five, Decimal(100), "k2"),  # seq after k1, dated before
        _event("A", "A", "CLEAN", "dispose", d("2024-01-05"), Decimal(7), Decimal(150), "c4"),  # exactly all held
    ]
    events = _frame(rows)
    verdict = events.with_columns(fast_positions(events)).group_by("symbol").agg(pl.col("fast").all())
    assert dict(verdict.iter_rows()) == {
        "CLEAN": True, "SHORT": False, "SPLIT": False, "MOVE": False, "LIFO": False, "NOBASIS": False,
        "BACKDATED": False,
    }
    clean = events.filter(fast_positions(events))
    assert book_fifo(clean).disposals.equals(book_loop(clean).disposals)
    assert book_fifo(clean).lots.equals(book_loop(clean).lots)


def test_amounts_beyond_decimal_range_go_to_the_loop() -> None:
    d = dt.date.fromisoformat
    wei = Decimal("0.000000000000000001")
    events = _frame([
        _event("A", "A", "DUST", "acquire", d("2024-01-02"), wei, Decimal(1000), "d1"),  # 1e21 a unit
        _event("A", "A", "HUGE", "acquire", d("2024-01-02"), Decimal(9) * 10**19, Decimal(1), "h1"),
        _event("A", "A", "HUGE", "acquire", d("2024-01-03"), Decimal(9) * 10**19, Decimal(1), "h2"),  # 1.8e20 held
        _event("A", "A", "OK", "acquire", d("2024-01-02"), wei, Decimal("0.01"), "o1"),
        _event("A", "A", "DUST", "dispose", d("2024-01-04"), wei, Decimal(1), "d2"),
        _event("A", "A", "OK", "dispose", d("2024-01-04"), wei, Decimal("0.02"), "o2"),
    ])
    verdict = events.with_columns(fast_positions(events)).group_by("symbol").agg(pl.col("fast").all())
    assert dict(verdict.iter_rows()) == {"DUST": False, "HUGE": False, "OK": True}


def _wei_sale() -> pl.DataFrame:
    """A lot of 12345678901.123456789012345678 (29 significant digits: a memecoin with wei
    precision) less one wei sold."""
    return _frame([
        _event("A", "A", "SHIB", "acquire", dt.date(2024, 1, 2), Decimal("12345678901.123456789012345678"), Decimal(100), "b"),
        _event("A", "A", "SHIB", "dispose", dt.date(2024, 3, 1), Decimal("0.000000000000000001"), Decimal(0), "s"),
    ])


def test_sums_beyond_28_digits_are_exact() -> None:
    """Python's default decimal context (28 digits) would leave ...680 here."""
    events = _wei_sale()
    assert book_fifo(events).lots["open_quantity"].item() == Decimal("12345678901.123456789012345677")
    assert book_loop(events).lots.equals(book_fifo(events).lots)


def test_worked_example() -> None:
    d = dt.date.fromisoformat
    events = _frame([
        _event("A", "A", "VTI", "acquire", d("2024-01-02"), Decimal(5), Decimal("1000.00"), "A"),
        _event("A", "A", "VTI", "acquire", d("2024-02-01"), Decimal(4), Decimal("840.00"), "B"),
        _event("A", "A", "VTI", "dispose", d("2024-03-01"), Decimal(7), Decimal("1540.00"), "S"),
    ])
    booked = book_fifo(events)
    slices = booked.disposals.select("lot_id", "quantity", "cost_basis", "proceeds", "gain", "term").rows()
    assert slices == [
        ("A", Decimal(5), Decimal(1000), Decimal(1100), Decimal(100), "short"),
        ("B", Decimal(2), Decimal(420), Decimal(440), Decimal(20), "short"),
    ]
    assert booked.lots.select("lot_id", "open_quantity", "open_basis").rows() == [
        ("A", Decimal(0), Decimal(0)), ("B", Decimal(2), Decimal(420)),
    ]
    assert booked.disposals.equals(book_loop(events).disposals)
    assert booked.lots.equals(book_loop(events).lots)


def test_no_events_books_nothing() -> None:
    empty = pl.DataFrame(schema=EVENT_SCHEMA)
    booked = book_fifo(empty)
    assert booked.lots.equals(book_loop(empty).lots)
    assert booked.disposals.equals(book_loop(empty).disposals)
