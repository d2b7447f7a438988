"""A sale whose proceeds the export doesn't give: booked with unknown proceeds, never zero."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from taxlens import Book
from taxlens.lots.engine import book_loop
from taxlens.lots.events import Settings, events_from_trades
from taxlens.lots.fifo import book_fifo
from tests.conftest import write


def test_a_sale_without_price_or_amount_has_unknown_proceeds(book: Book, tmp_path: Path) -> None:
    opening = write(tmp_path, "open.csv", "account,symbol,acquired,quantity,cost_basis\nA,VTI,2024-01-02,10,1000\n")
    # No ingested format yields a sale without a price or amount today (the generic CSV requires
    # a price), but booking must not depend on that: build the sale's trade row by hand.
    book.ingest([opening])
    trades = book.trades()
    sale = trades.with_columns(
        action=pl.lit("sell"), price=None, amount=None, source=trades["source"].str.replace(":2", ":9"),
        id=pl.lit("S1"), trade_date=trades["trade_date"].dt.offset_by("1mo"),
    )
    events, problems = events_from_trades(pl.concat([trades, sale]), Settings())
    assert [str(p) for p in problems] == [f"{opening}:9: sale of 10 VTI has no price or cash amount: its proceeds and gain are unknown"]
    loop, fast = book_loop(events), book_fifo(events)
    assert loop.disposals.equals(fast.disposals)
    assert loop.disposals.select("quantity", "proceeds", "cost_basis", "gain").rows() == [(10, None, 1000, None)]


def test_trades_in_another_currency_are_flagged_not_converted(book: Book, tmp_path: Path) -> None:
    """No exchange rates yet: euro amounts must not pass silently for dollars."""
    path = write(tmp_path, "eur.csv", (
        "date,account,symbol,side,quantity,price,fee,currency,asset_class\n"
        "2025-01-02,Coinbase,BTC,buy,0.1,90000,0,EUR,crypto\n"
        "2025-02-02,Coinbase,BTC,sell,0.1,95000,0,EUR,crypto\n"
    ))
    book.ingest([path])
    booked = book.booked()
    assert [str(p) for p in booked.problems] == [
        f"{path}:2: 2 BTC trades in Coinbase are in EUR: their basis and proceeds are in EUR, not converted to USD (no exchange rates yet)"
    ]
    assert booked.disposals.select("currency").to_series().to_list() == ["EUR"]
