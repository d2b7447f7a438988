"""Properties over random input (hypothesis)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

import taxlens
from taxlens.ingest import Context, GenericCsv, Source

ACCOUNTS = st.sampled_from(["Alpaca", "Schwab IRA", "Coinbase", "joint, brokerage", 'quote "q"', "Café"])
SYMBOLS = st.sampled_from(["VTI", "BTC", "BRK.B", "ETH2", "ÆØÅ"])
# Any positive amount that fits DECIMAL(38,18): up to 20 integer digits and 18 decimals.
AMOUNTS = st.builds(lambda digits, scale: Decimal(digits).scaleb(-scale),
                    st.integers(min_value=1, max_value=10**20 - 1), st.integers(min_value=0, max_value=18))
INSTANTS = st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2090, 1, 1),
                        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5)), dt.timezone(dt.timedelta(hours=9, minutes=30))]))
TRADE = st.fixed_dictionaries({
    "when": st.one_of(INSTANTS, st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2090, 1, 1))),
    "account": ACCOUNTS,
    "symbol": SYMBOLS,
    "side": st.sampled_from(["buy", "sell", "BUY", "Sell"]),
    "quantity": AMOUNTS,
    "price": AMOUNTS,
    "fee": st.one_of(st.none(), AMOUNTS),
    "trade_id": st.one_of(st.none(), st.text("abcXYZ-0123", min_size=1, max_size=8)),
})


def render(trades: list[dict[str, object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["date", "account", "symbol", "side", "quantity", "price", "fee", "trade_id"])
    for t in trades:
        when = t["when"]
        writer.writerow([
            when.isoformat(), t["account"], t["symbol"], t["side"], f"{t['quantity']:f}", f"{t['price']:f}",
            "" if t["fee"] is None else f"{t['fee']:f}", t["trade_id"] or "",
        ])
    return out.getvalue().encode()


@given(st.lists(TRADE, min_size=1, max_size=30))
def test_generic_csv_round_trips_exactly(trades: list[dict[str, object]]) -> None:
    """Every value written to a generic CSV comes back exactly: decimals, instants, tax dates."""
    extracted = GenericCsv().extract(Source.from_bytes("r.csv", render(trades)), Context())
    assert extracted.errors == []
    got = extracted.trades.to_dicts()
    ny = Context().timezone
    for t, row in zip(trades, got, strict=True):
        when = t["when"]
        if isinstance(when, dt.datetime):
            assert row["ts"] == when.astimezone(dt.UTC)
            assert row["trade_date"] == when.astimezone(ny).date()
        else:
            assert row["ts"] is None and row["trade_date"] == when
        assert (row["account"], row["symbol"], row["action"]) == (t["account"], t["symbol"], str(t["side"]).lower())
        assert row["quantity"] == t["quantity"] and row["price"] == t["price"]
        assert row["fee"] == (t["fee"] or Decimal(0))
        assert row["broker_trade_id"] == t["trade_id"]


@given(st.lists(TRADE, min_size=1, max_size=20), st.integers(min_value=0, max_value=19))
def test_importing_twice_or_a_prefix_adds_nothing(trades: list[dict[str, object]], cut: int) -> None:
    """Idempotency over random files: the file again, or any part of it, adds no trade."""
    data = render(trades)
    head = render(trades[: max(1, min(cut, len(trades)))])
    with taxlens.open_book(":memory:", taxlens.Config()) as book:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            full, part = Path(tmp, "full.csv"), Path(tmp, "part.csv")
            full.write_bytes(data)
            part.write_bytes(head)
            assert book.ingest([full]).inserted == len(trades)
            assert book.ingest([part]).inserted == 0
            assert book.trades().height == len(trades)
