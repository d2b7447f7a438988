"""Booking in chunks of symbols (lots/chunks.py, Book.chunk_trades): the same book as booking
everything at once, row for row, whatever the chunk size; and the symbols that must be booked
together (wash-sale groups, a day's sale fee, pooled crypto) are."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import taxlens
from taxlens.lots.chunks import plan
from taxlens.lots.events import Settings
from taxlens.lots.wash import WashSettings
from tests.conftest import write

HEADER = "date,account,symbol,side,quantity,price,fee,currency,asset_class,trade_id,lot_id\n"

CONFIG: dict[str, Any] = {
    "accounts": {"IRA": {"type": "roth_ira"}},
    "wash_sales": {"groups": {"sp500": ["SPY", "IVV"]}},
    "lots": {"crypto_scope": "universal"},
}

#: A household's year: SPY and IVV grouped for wash sales; BTC and ETH pooled before 2025;
#: a VTI loss washed into a lot that is then split, moved to another account and renamed
#: (VTI → VTIX, a ticker change: another symbol, so another chunk but for the rule), 2 of whose
#: shares leave for a broker taxlens does not follow, their deferred loss with them; a sale with
#: no lots behind it (a shortfall);
#: a short sale (unsupported); ETH moved to Kraken less a network fee; and on Alpaca, a
#: day's fee over QQQ's and AAPL's sales.
TRADES = HEADER + """\
2024-03-01,Alpaca,SPY,buy,10,500,1,USD,etf,B1,
2024-03-01,IBKR,IVV,buy,5,505,0,USD,etf,B2,
2024-06-03,Alpaca,SPY,sell,10,450,1,USD,etf,S1,
2024-06-20,IRA,IVV,buy,3,455,0,USD,etf,B3,
2024-06-28,IBKR,VTI,buy,4,300,0,USD,etf,B5,
2024-07-01,IBKR,VTI,buy,8,250,0,USD,etf,B4,
2024-07-02,IBKR,VTI,sell,4,240,0,USD,etf,S3,
2024-08-01,IBKR,VTI,split_in,8,0,0,USD,etf,SP1,
2024-09-02,IBKR,VTI,transfer_out,16,0,0,USD,etf,T1,
2024-09-03,Alpaca,VTI,transfer_in,16,0,0,USD,etf,T2,
2024-10-01,Alpaca,VTI,sell,4,130,0,USD,etf,S2,
2024-12-02,Alpaca,VTI,transfer_out,12,0,0,USD,etf,R1,
2024-12-02,Alpaca,VTIX,transfer_in,12,0,0,USD,etf,R2,
2025-01-10,Alpaca,VTIX,transfer_out,2,0,0,USD,etf,R3,
2025-01-15,Alpaca,VTIX,sell,5,140,0,USD,etf,S4,
2024-02-01,Coinbase,BTC,buy,0.5,40000,5,USD,crypto,C1,
2024-02-02,Kraken,BTC,buy,0.25,42000,5,USD,crypto,C2,
2024-11-05,Kraken,BTC,sell,0.6,60000,5,USD,crypto,C3,
2024-04-04,Coinbase,ETH,buy,2,3000,1,USD,crypto,E1,
2025-02-02,Coinbase,BTC,sell,0.1,90000,5,USD,crypto,C4,
2025-02-03,Coinbase,ETH,sell,1,2500,1,USD,crypto,E2,
2025-04-01,Coinbase,ETH,transfer_out,0.5,0,0,USD,crypto,E3,
2025-04-02,Kraken,ETH,transfer_in,0.499,0,0,USD,crypto,E4,
2025-05-01,Kraken,ETH,sell,0.4,3100,1,USD,crypto,E5,
2025-03-03,IBKR,NVDA,sell,2,100,0,USD,equity,N1,
2025-03-04,IBKR,TSLA,sell_short,1,200,0,USD,equity,X1,
"""


def fill(when: str, symbol: str, side: str, qty: str, price: str, n: int) -> dict[str, str]:
    return {"id": f"{when[:10].replace('-', '')}0000000{n:02d}::f{n}", "activity_type": "FILL", "transaction_time": when,
            "type": "fill", "price": price, "qty": qty, "side": side, "symbol": symbol, "order_id": f"o{n}"}


ALPACA = [
    fill("2025-01-02T15:00:00Z", "QQQ", "buy", "10", "500", 1),
    fill("2025-01-02T15:01:00Z", "AAPL", "buy", "10", "200", 2),
    fill("2025-03-03T15:00:00Z", "QQQ", "sell", "4", "480", 3),
    fill("2025-03-03T16:00:00Z", "AAPL", "sell", "5", "210", 4),
    {"id": "20250303170000000::fee5", "activity_type": "FEE", "date": "2025-03-03", "net_amount": "-0.07",
     "description": "REG/TAF fee", "status": "executed"},
    {"id": "20250305170000000::fee6", "activity_type": "FEE", "date": "2025-03-05", "net_amount": "-0.02",
     "description": "REG/TAF fee", "status": "executed"},
]


def booked(paths: list[Path], config: dict[str, Any], chunk_trades: int, **options: Any) -> taxlens.lots.engine.Booked:
    with taxlens.open_book(":memory:", taxlens.Config.model_validate(config), chunk_trades=chunk_trades) as book:
        book.ingest(paths)
        return book.booked(**options)


def assert_same_book(whole: Any, chunked: Any) -> None:
    assert_frame_equal(whole.lots, chunked.lots)
    assert_frame_equal(whole.disposals, chunked.disposals)
    assert_frame_equal(whole.washes, chunked.washes)
    assert_frame_equal(whole.carried, chunked.carried)
    assert [str(p) for p in whole.problems] == [str(p) for p in chunked.problems]
    assert [str(e) for e in whole.errors] == [str(e) for e in chunked.errors]


@pytest.mark.parametrize("chunk_trades", [1, 2, 5])
@pytest.mark.parametrize("method", ["fifo", "hifo"])
def test_a_household_booked_in_chunks_is_the_whole_book(tmp_path: Path, chunk_trades: int, method: str) -> None:
    paths = [write(tmp_path, "trades.csv", TRADES), write(tmp_path, "activities.json", json.dumps(ALPACA, indent=1))]
    whole = booked(paths, CONFIG, 10**9, method=method)
    chunked = booked(paths, CONFIG, chunk_trades, method=method)
    assert whole.washes.height and whole.problems  # the history exercises both
    assert any("has no sale that day" in p.message for p in whole.problems)
    assert any("booked as one holding renamed" in p.message for p in whole.problems)
    assert whole.disposals.filter(pl.col("sell_trade_id") == "E3").get_column("quantity").to_list() == [Decimal("0.001")]
    # The rename took B4's deferred loss along, 30 a share on 4 shares: R3 took 2 of them out
    # of sight, and S4's 5 shares sold hold the other 2.
    assert whole.disposals.filter(pl.col("symbol") == "VTIX").get_column("wash_basis").to_list() == [Decimal(60)]
    assert whole.carried.select("symbol", "lot_id", "date", "quantity", "amount").rows() == [
        ("VTIX", "B4", dt.date(2025, 1, 10), Decimal(2), Decimal(60))]
    assert_same_book(whole, chunked)


def test_specific_identification_and_its_errors_in_chunks(tmp_path: Path) -> None:
    """Lot selections (one naming a lot that does not exist) honoured, and refused, alike."""
    paths = [write(tmp_path, "trades.csv", TRADES), write(tmp_path, "activities.json", json.dumps(ALPACA, indent=1))]
    selections = write(tmp_path, "selections.csv", """\
        sell_trade_id,lot_id,quantity
        S1,B1,10
        C3,C2,0.25
        C3,C1,0.35
        E2,NOPE,1
    """)
    config = {**CONFIG, "lots": {**CONFIG["lots"], "selections": str(selections)}}
    whole = booked(paths, config, 10**9, method="specific")
    assert [e.message for e in whole.errors] and whole.disposals.filter(pl.col("sell_trade_id") == "C3").height == 2
    for chunk_trades in (1, 4):
        assert_same_book(whole, booked(paths, config, chunk_trades, method="specific"))


def test_the_plan_keeps_together_what_crosses_symbols() -> None:
    # symbol  account  day    trades  bound to
    # SPY     A        03-03  3       IVV (wash group)
    # IVV     B        03-03  1       SPY
    # QQQ     A        03-04  2       AAPL: both sold on A's fee day 03-04
    # AAPL    A        03-04  2       QQQ
    # BTC     C        03-03  2       ETH (pooled crypto)
    # ETH     C        03-03  1       BTC
    # VTI     B        03-04  4       -
    # (fee)   A        03-04  1       QQQ, AAPL
    a, b = dt.date(2025, 3, 3), dt.date(2025, 3, 4)
    rows = [("SPY", "A", a, "buy")] * 2 + [("SPY", "A", a, "sell"), ("IVV", "B", a, "buy")]
    rows += [("QQQ", "A", b, "buy"), ("QQQ", "A", b, "sell"), ("AAPL", "A", b, "buy"), ("AAPL", "A", b, "sell")]
    rows += [("BTC", "C", a, "buy"), ("BTC", "C", a, "sell"), ("ETH", "C", a, "buy")]
    rows += [("VTI", "B", b, "buy")] * 4 + [("USD", "A", b, "sale_fee")]
    keys = pl.DataFrame(
        {"symbol": [r[0] for r in rows], "account": [r[1] for r in rows], "trade_date": [r[2] for r in rows],
         "action": [r[3] for r in rows], "fee_id": [None] * (len(rows) - 1) + ["F1"]},
        schema={"symbol": pl.String, "account": pl.String, "trade_date": pl.Date, "action": pl.String, "fee_id": pl.String},
    )
    rules = Settings(crypto_universal=True, wash=WashSettings(groups=(("IVV", "sp500"), ("SPY", "sp500"))))
    chunks, chunk_of = plan(keys, rules, frozenset({"BTC", "ETH"}), target=4)
    # Components in order of their first symbol, packed up to 4 trades a chunk (one of 5
    # stays whole).
    assert [(c.symbols, c.fee_ids, c.trades) for c in chunks] == [
        (("AAPL", "QQQ"), ("F1",), 5),
        (("BTC", "ETH"), (), 3),
        (("IVV", "SPY"), (), 4),
        (("VTI",), (), 4),
    ]
    assert chunk_of.to_list() == [2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1, 3, 3, 3, 3, 0]
    # Without pooled crypto, BTC and ETH part; a larger target packs small components together.
    chunks, _ = plan(keys, Settings(wash=rules.wash), frozenset({"BTC", "ETH"}), target=8)
    assert [(c.symbols, c.trades) for c in chunks] == [(("AAPL", "BTC", "ETH", "QQQ"), 8), (("IVV", "SPY", "VTI"), 8)]


SYMBOLS = ["SPY", "IVV", "VTI", "BTC"]
ACCOUNTS = ["Alpaca", "IBKR", "IRA"]

TRADE = st.tuples(
    st.integers(min_value=0, max_value=500),  # day from 2024-01-01
    st.sampled_from(ACCOUNTS),
    st.sampled_from(SYMBOLS),
    st.sampled_from(["buy", "buy", "sell"]),
    st.integers(min_value=1, max_value=40),  # quantity
    st.integers(min_value=50, max_value=150),  # price
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(TRADE, min_size=1, max_size=40), st.integers(min_value=1, max_value=12), st.sampled_from(["fifo", "lifo", "taxmin"]))
def test_any_history_booked_in_chunks_is_the_whole_book(
    tmp_path: Path, trades: list[tuple[int, str, str, str, int, int]], chunk_trades: int, method: str,
) -> None:
    """Random households, some sales larger than the lots held: same lots, disposals, washes
    and problems in chunks of any size as booked at once."""
    text = HEADER + "".join(
        f"{dt.date(2024, 1, 1) + dt.timedelta(days=day)},{account},{symbol},{side},{qty},{price},0,USD,"
        f"{'crypto' if symbol == 'BTC' else 'etf'},T{i},\n"
        for i, (day, account, symbol, side, qty, price) in enumerate(trades)
    )
    path = write(tmp_path, "random.csv", text)
    whole = booked([path], CONFIG, 10**9, method=method)
    assert_same_book(whole, booked([path], CONFIG, chunk_trades, method=method))


@pytest.mark.parametrize("chunk_trades", [1, 4])
@pytest.mark.parametrize("as_of", [dt.date(2024, 4, 4), dt.date(2024, 8, 1), dt.date(2024, 12, 31), dt.date(2025, 3, 4)])
def test_lots_as_of_a_date_are_replayed_in_chunks_as_a_whole(tmp_path: Path, chunk_trades: int, as_of: dt.date) -> None:
    """``lots(as_of=...)`` on a book larger than a chunk replays the trades up to that date a
    chunk of symbols at a time (its memory that of a chunk): the same lots, open or all,
    filtered or not, as the replay of everything at once."""
    paths = [write(tmp_path, "trades.csv", TRADES), write(tmp_path, "activities.json", json.dumps(ALPACA, indent=1))]
    config = taxlens.Config.model_validate(CONFIG)
    options: list[dict[str, Any]] = [{}, {"open_only": True}, {"account": "Coinbase"}, {"symbol": "VTI", "method": "hifo"}]
    with taxlens.open_book(tmp_path / "whole.duckdb", config, chunk_trades=10**9) as book:
        book.ingest(paths)
        whole = [book.lots(as_of=as_of, **o) for o in options]
    with taxlens.open_book(tmp_path / "chunked.duckdb", config, chunk_trades=chunk_trades) as book:
        book.ingest(paths)
        assert book.store.trade_count(as_of) > chunk_trades  # so the replay goes in chunks
        for o, expected in zip(options, whole, strict=True):
            assert_frame_equal(book.lots(as_of=as_of, **o), expected)
    assert whole[0].height


def whole_then_chunked(tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch, *args: str):  # type: ignore[no-untyped-def]
    """The household ingested into two databases, one booked whole and one in chunks of 3
    trades; ``args`` run on each. Yields (database name, result): the whole book's first."""
    write(tmp_path, "trades.csv", TRADES)
    write(tmp_path, "activities.json", json.dumps(ALPACA, indent=1))
    write(tmp_path, "taxlens.toml", '[accounts.IRA]\ntype = "roth_ira"\n[wash_sales.groups]\nsp500 = ["SPY", "IVV"]\n')
    for chunk in (None, "3"):
        if chunk is None:
            monkeypatch.delenv("TAXLENS_CHUNK_TRADES", raising=False)
        else:
            monkeypatch.setenv("TAXLENS_CHUNK_TRADES", chunk)
        db = f"db{chunk}"
        assert run("--db", f"{db}.duckdb", "ingest", "-q", "trades.csv", "activities.json").exit_code == 0
        result = run("--db", f"{db}.duckdb", *(a.format(db=db) for a in args))
        assert result.exit_code == 0, result.output
        yield db, result


@pytest.mark.parametrize("args", [
    ["gains", "--format", "csv"], ["gains", "--format", "csv", "--year", "2025"], ["gains", "--format", "json", "--account", "Alpaca"],
    ["gains", "--format", "csv", "--symbol", "NONE"], ["gains", "--format", "table"],
    ["lots", "--format", "csv"], ["lots", "--open", "--format", "csv"], ["lots", "--open", "--account", "Alpaca", "--format", "json"],
    ["lots", "--format", "csv", "--as-of", "2024-12-31"], ["lots", "--open", "--format", "csv", "--as-of", "2025-02-02"],
    ["lots", "--format", "json", "--as-of", "2024-06-30", "--account", "Alpaca"],
    ["wash", "--format", "csv"], ["wash", "--format", "table", "--year", "2024"], ["wash", "--format", "json", "--account", "Alpaca"],
    ["wash", "--format", "csv", "--account", "IBKR"],
])
def test_the_cli_lists_a_book_in_chunks_as_it_lists_the_whole(tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    """``gains``, ``lots`` and ``wash`` read a book booked in chunks back from the database a
    batch at a time: the same CSV, JSON, table and totals line as from a book held whole."""
    outputs = [(result.stdout, result.stderr) for _, result in whole_then_chunked(tmp_path, run, monkeypatch, *args)]
    assert outputs[0] == outputs[1]
    assert outputs[0][0].strip()


@pytest.mark.parametrize("year", [[], ["--year", "2024"]])
def test_the_audit_of_a_book_in_chunks_is_the_audit_of_the_whole(tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch, year: list[str]) -> None:  # type: ignore[no-untyped-def]
    """``taxlens audit`` over a book booked in chunks reads its other years narrow
    (``Book.audit_booking``): the same summary and the same five files as over a book held
    whole."""
    outputs = []
    for db, result in whole_then_chunked(tmp_path, run, monkeypatch, "audit", "--out", "{db}-out", *year):
        files = {p.name: p.read_bytes() for p in sorted((tmp_path / f"{db}-out").iterdir()) if not p.name.startswith(".")}
        outputs.append((result.stdout.replace(f"{db}-out", "OUT"), result.stderr, files))
    assert outputs[0] == outputs[1]
    assert len(outputs[0][2]) == 5 and b"<tr>" in outputs[0][2][next(n for n in outputs[0][2] if n.endswith(".html"))]


def test_the_audit_of_a_book_in_chunks_loads_only_the_washes_it_shows(tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A long history's audit reads only the first washes of the year its HTML lists (here 1,
    of 2 in 2024), yet counts them all, as the audit of the whole book does."""
    from taxlens.report import render

    monkeypatch.setattr(render, "HTML_ROWS", 1)
    outputs = []
    for db, _ in whole_then_chunked(tmp_path, run, monkeypatch, "audit", "--year", "2024", "--out", "{db}-out"):
        outputs.append((tmp_path / f"{db}-out" / "report-2024.html").read_text())
    assert outputs[0] == outputs[1]
    assert "<h2>Wash sales (2)</h2>" in outputs[0] and "The first 1 of 2, by date sold." in outputs[0]


def test_a_read_only_book_lists_a_stored_booking_in_batches(tmp_path: Path) -> None:
    """Booked in chunks and stored, a large book opened read-only (as by another process) is
    still read back a batch at a time; not yet booked, it is booked whole in memory."""
    paths = [write(tmp_path, "trades.csv", TRADES), write(tmp_path, "activities.json", json.dumps(ALPACA, indent=1))]
    db = tmp_path / "t.duckdb"
    config = taxlens.Config.model_validate(CONFIG)
    with taxlens.open_book(db, config, chunk_trades=3) as book:
        book.ingest(paths)
    with taxlens.open_book(db, config, read_only=True, chunk_trades=3) as book:
        assert book.in_batches("disposals") is None  # nothing stored, nowhere to store it
        whole = book.gains()
    with taxlens.open_book(db, config, chunk_trades=3) as book:
        assert book.gains().equals(whole)  # booked in chunks, and stored
    with taxlens.open_book(db, config, read_only=True, chunk_trades=3) as book:
        streamed = book.in_batches("disposals", year=2025)
        assert streamed is not None
        problems, _, batches = streamed
        assert pl.concat(list(batches)).select(whole.columns).equals(whole.filter(pl.col("disposed").dt.year() == 2025))
        assert [str(p) for p in problems] == [str(p) for p in book.booked().problems]


@pytest.mark.parametrize("rows", [1, 2, 3, 1000])
@pytest.mark.parametrize("table", ["lots", "disposals", "washes"])
def test_batches_are_windows_of_seq_in_the_stored_order(tmp_path: Path, table: str, rows: int) -> None:
    """``Store.booked_batches`` reads a window of seq values at a time: together the batches are
    the table in (seq, row) order, as one ORDER BY gives it, filtered alike, and a seq's rows
    (a sale's slices) never straddle two batches."""
    paths = [write(tmp_path, "trades.csv", TRADES), write(tmp_path, "activities.json", json.dumps(ALPACA, indent=1))]
    with taxlens.open_book(tmp_path / "t.duckdb", taxlens.Config.model_validate(CONFIG), chunk_trades=3) as book:
        book.ingest(paths)
        book.booked()  # booked in chunks and stored
        store = book.store
        for filters in ({}, {"account": "Coinbase"}, {"year": 2025} if table != "lots" else {"open_only": True}, {"symbol": "none"}):
            batches = list(store.booked_batches(table, rows=rows, **filters))
            clause, params = taxlens.store._where(
                account=filters.get("account"), symbol=filters.get("symbol"), year=filters.get("year"), dated="disposed",
                also=["open_quantity > 0"] if filters.get("open_only") else [],
            )
            expected = store._frame(f"SELECT * FROM {table} {clause} ORDER BY seq, rowid", params)
            assert_frame_equal(pl.concat(batches), expected)
            assert batches[0].columns == expected.columns  # a header even with no rows
            seqs = [set(b.get_column("seq").to_list()) for b in batches]
            assert all(not (a & b) for i, a in enumerate(seqs) for b in seqs[i + 1:])
            if expected.height and rows < expected.height:
                assert len(batches) > 1


def test_a_reader_left_open_is_closed_with_the_book(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A listing stopped early (``taxlens gains | head``) leaves its reader open: closing the
    book closes it first, so nothing is left to fail against a closed database later."""
    import gc
    import sys

    raised: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", raised.append)
    paths = [write(tmp_path, "trades.csv", TRADES), write(tmp_path, "activities.json", json.dumps(ALPACA, indent=1))]
    with taxlens.open_book(tmp_path / "t.duckdb", taxlens.Config.model_validate(CONFIG), chunk_trades=3) as book:
        book.ingest(paths)
        streamed = book.in_batches("lots")
        assert streamed is not None
        reader = streamed[2]
        next(reader)
    del reader, streamed
    gc.collect()
    assert raised == []


def test_gains_fails_alike_when_selections_cannot_be_honoured(tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "trades.csv", TRADES)
    write(tmp_path, "selections.csv", "sell_trade_id,lot_id,quantity\nS1,B1,10\nE2,NOPE,1\n")
    write(tmp_path, "taxlens.toml", '[lots]\nselections = "selections.csv"\n')
    outputs = []
    for chunk in ("1000000000", "2"):
        monkeypatch.setenv("TAXLENS_CHUNK_TRADES", chunk)
        db = f"db{chunk}.duckdb"
        assert run("--db", db, "ingest", "-q", "trades.csv").exit_code == 0
        result = run("--db", db, "gains", "--method", "specific", "--format", "csv")
        outputs.append((result.exit_code, result.stdout, result.stderr))
    assert outputs[0] == outputs[1]
    assert outputs[0][0] == 1 and "NOPE" in outputs[0][2]
