"""The generic CSV's fast path (fastcsv) and the identity columns: the same frame, the same ids.

The fast path may decline any file; whatever it accepts must come out exactly as the general
path (generic.normalize) reads it, identity hashes included, and the hashes must be the ids
the store would compute itself.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

import taxlens
from taxlens.config import Config
from taxlens.ingest import Context, GenericCsv, Layout, Source, fastcsv, load_mapping
from taxlens.ingest.frame import DECIMAL, SCHEMA, identity_columns, with_identity
from taxlens.ingest.generic import parse_dates
from taxlens.store import FileRecord, Store
from tests.conftest import write

HEADER = "date,account,symbol,side,quantity,price,fee,currency,asset_class,trade_id,lot_id\n"


def general(data: bytes, layout: Layout | None = None, **context: object):  # type: ignore[no-untyped-def]
    """What the general path (generic.normalize) makes of ``data``."""
    original = fastcsv.read
    fastcsv.read = lambda *a, **k: None  # type: ignore[assignment]
    try:
        return GenericCsv(layout).extract(Source.from_bytes("t.csv", data), Context(**context))  # type: ignore[arg-type]
    finally:
        fastcsv.read = original  # type: ignore[assignment]


def fast(data: bytes, layout: Layout | None = None, **context: object):  # type: ignore[no-untyped-def]
    layout = layout or Layout()
    return fastcsv.read(Source.from_bytes("t.csv", data), layout, Context(**context), layout.name)  # type: ignore[arg-type]


# Values the fast path takes (GOOD), and near misses it must decline or read identically (ODD).
PLAIN = st.one_of(
    st.builds(lambda i, f: f"{i}" + (f".{f}" if f else ""), st.integers(1, 10**20 - 1), st.text("0123456789", max_size=18)),
    st.sampled_from(["1", "10", "100.500", "0.5", "0.000000000000000001", "99999999999999999999.999999999999999999", "7.000"]),
)
OFFSET = st.one_of(st.sampled_from(["Z", "-05:00", "+05:30", "+00:00", "-00:00", "+14:00", "-12:00"]),
                   st.builds(lambda s, h, m: f"{s}{h:02d}:{m:02d}", st.sampled_from("+-"), st.integers(0, 99), st.integers(0, 99)))
INSTANT = st.builds(lambda d, h, m, s, o: f"{d.isoformat()}T{h:02d}:{m:02d}:{s:02d}{o}",
                    st.dates(min_value=dt.date(1905, 1, 1), max_value=dt.date(2095, 12, 31)),
                    st.integers(0, 23), st.integers(0, 59), st.integers(0, 59), OFFSET)
GOOD = {
    "date": st.one_of(INSTANT, st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)).map(str)),
    "account": st.sampled_from(["Alpaca", "Schwab IRA", " padded ", "Café", "IBKR\u00a0"]),
    "symbol": st.sampled_from(["VTI", "BRK.B", "btc", " X "]),
    "side": st.sampled_from(["buy", "sell", "BUY", "Sell", "reinvest", "split_in", "transfer_out", "income", " buy "]),
    "quantity": PLAIN,
    "price": st.one_of(PLAIN, st.sampled_from(["0", "0.00"])),
    "fee": st.one_of(st.just(""), PLAIN, st.sampled_from(["0", "0.00"])),
    "currency": st.sampled_from(["", "USD", "usd", "EUR", "BTC", "Eth2"]),
    "asset_class": st.sampled_from(["", "equity", "ETF", "crypto", " fund"]),
    "trade_id": st.sampled_from(["", "T-1", "T-2", " T-3 ", "Ж-4"]),
    "lot_id": st.sampled_from(["", "", "L-1", " "]),
}
ODD = {
    "date": st.one_of(
        st.builds(lambda d, h, m, s, o, sep: f"{d.isoformat()}{sep}{h:02d}:{m:02d}:{s:02d}{o}",
                  st.dates(min_value=dt.date(1899, 12, 30), max_value=dt.date(2101, 1, 2)), st.integers(0, 24),
                  st.integers(0, 60), st.integers(0, 60), st.sampled_from(["Z", "+0530", "+05", "", "-05:00"]), st.sampled_from(["T", " "])),
        st.sampled_from(["2025-02-30", "2025-1-2", "", "2025-01-02T10:00:00.5Z", "1899-12-31", "2101-01-01", " 2025-01-02"])),
    "account": st.sampled_from(["", " "]),
    "symbol": st.sampled_from(["", "\t"]),
    "side": st.sampled_from(["hold", "", "bought"]),
    "quantity": st.sampled_from(["0", "0.0", "007", ".5", "5.", "+5", "-1", "1e3", "1,000", " 7 ", "", "100000000000000000000",
                                 "1.0000000000000000001", "١٢"]),
    "price": st.sampled_from(["-1", "", "1.0000000000000000001", "x", " 2"]),
    "fee": st.sampled_from(["-0", "-1", " ", "1.0000000000000000001", "1 "]),
    "currency": st.sampled_from(["U", "ÉUR", "US D", "1USD"]),
    "asset_class": st.sampled_from(["stock", "Équity"]),
    "trade_id": st.just("a\tb"),
    "lot_id": st.just("\u3000L"),
}
COLUMNS = list(GOOD)


@st.composite
def files(draw: st.DrawFn, odd: bool) -> list[tuple[str, ...]]:
    """Rows of good values; with ``odd``, one value of one row a near miss."""
    rows = [tuple(draw(GOOD[c]) for c in COLUMNS) for _ in range(draw(st.integers(1, 12)))]
    if odd:
        i, c = draw(st.integers(0, len(rows) - 1)), draw(st.sampled_from(COLUMNS))
        row = list(rows[i])
        row[COLUMNS.index(c)] = draw(ODD[c])
        rows[i] = tuple(row)
    return rows


def render(rows: list[tuple[str, ...]]) -> bytes:
    return (HEADER + "".join(",".join(r) + "\n" for r in rows)).encode()


ZONES = st.sampled_from(["America/New_York", "Asia/Tokyo", "UTC", "Australia/Lord_Howe", "Asia/Kathmandu"])


ACCOUNTS = st.sampled_from([None, None, "Joint", " Joint ", "\tJoint\u3000"])  # --account


@given(files(odd=False), ZONES, ACCOUNTS)
def test_regular_files_take_the_fast_path_and_read_exactly_as_normalize(rows: list[tuple[str, ...]], zone: str, account: str | None) -> None:
    data = render(rows)
    got = fast(data, timezone=ZoneInfo(zone), account=account)
    want = general(data, timezone=ZoneInfo(zone), account=account)
    assert want.errors == []
    assert got is not None
    assert got.rows_read == want.rows_read
    assert got.trades.equals(want.trades)


@given(files(odd=True), ZONES)
def test_a_near_miss_is_declined_or_read_exactly_as_normalize(rows: list[tuple[str, ...]], zone: str) -> None:
    data = render(rows)
    got = fast(data, timezone=ZoneInfo(zone))
    if got is not None:
        want = general(data, timezone=ZoneInfo(zone))
        assert want.errors == []
        assert got.trades.equals(want.trades)


def test_irregular_files_are_left_to_the_general_path() -> None:
    row = "2025-01-02T10:00:00Z,A,VTI,buy,1,2,0,USD,etf,T1,\n"
    assert fast((HEADER + row).encode()) is not None
    for text in [
        HEADER + row.replace(",A,", ',"A",'),  # quotes
        (HEADER + row).replace("\n", "\r\n"),  # CRLF
        HEADER + row + "\n" + row,  # a blank line
        HEADER + row.replace("T1,", "T1,,"),  # a field too many
        HEADER + row.replace(",T1,", ","),  # a field too few
        HEADER + row.replace(",1,2,", ",1O,2,"),  # a bad value
        HEADER + row.replace("10:00:00Z", "10:00:00.5Z"),  # a date form the fast path does not model
        HEADER,  # no rows
    ]:
        assert fast(text.encode()) is None, text


def test_a_mapped_layout_with_iso_dates_takes_the_fast_path(tmp_path: Path) -> None:
    layout = load_mapping(write(tmp_path, "m.toml", '[columns]\ndate = "When"\naccount = "Acct"\nsymbol = "Ticker"\n'
                                                    'side = "Action"\nquantity = "Qty"\nprice = "Px"\n[sides]\n"bought" = "buy"\n'))
    data = b"Ticker,Qty,When,Px,Acct,Action,Notes\nVTI,1.50,2025-01-02T10:00:00-05:00,100,A,Bought,x\nVTI,2,2025-01-03,101.10,A,sell,\n"
    got = fast(data, layout)
    assert got is not None
    assert got.trades.equals(general(data, layout).trades)
    assert got.trades.get_column("action").to_list() == ["buy", "sell"]


def test_the_fast_instants_are_parse_dates_values() -> None:
    """Every ISO instant form the fast path takes, in zones with odd offsets and half-hour DST."""
    forms = [f"{y}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:07{o}" for y in (1901, 1969, 2025) for m in (1, 3, 7, 10, 11) for d in (1, 9, 31)
             for h in (0, 1, 2, 6, 23) for mi in (0, 30, 59) for o in ("Z", "-05:00", "+05:30", "+05:99", "-12:00", "+14:00")]
    text = pl.Series("date", forms)
    for zone in ("America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Europe/Dublin"):
        offsets = text.str.slice(19).unique()
        ts_expr, instant = fastcsv._instants(pl.col("date"), offsets)
        got = pl.DataFrame(text).select(ts_expr.alias("ts"), instant.alias("instant"))
        want_ts, want_dates = parse_dates(text, None, zone)
        valid = want_ts.is_not_null()  # (Feb 31 and the like are nobody's instants)
        assert got.get_column("instant").all()
        assert got.get_column("ts").filter(valid).equals(want_ts.filter(valid), check_names=False)
        assert got.get_column("ts").dt.convert_time_zone(zone).dt.date().filter(valid).equals(want_dates.filter(valid), check_names=False)
        assert got.get_column("ts").filter(~valid).is_null().all()


# -- identity columns ---------------------------------------------------------------------------

TEXT = st.text("aZ9 .-", max_size=6)
FRAME_ROW = st.fixed_dictionaries({
    "account": st.sampled_from(["A", "Schwab IRA", "Café"]),
    "symbol": st.sampled_from(["VTI", "BTC"]),
    "asset_class": st.sampled_from(["equity", "crypto"]),
    "action": st.sampled_from(["buy", "sell", "split_in"]),
    "ts": st.one_of(st.none(), st.datetimes(min_value=dt.datetime(1901, 1, 1), max_value=dt.datetime(2099, 1, 1)).map(lambda d: d.replace(tzinfo=dt.UTC))),
    "trade_date": st.dates(min_value=dt.date(1901, 1, 1), max_value=dt.date(2099, 1, 1)),
    "quantity": st.decimals(min_value=0, max_value=10**6, places=6),
    "price": st.one_of(st.none(), st.decimals(min_value=0, max_value=10**19, places=18)),
    "fee": st.sampled_from([Decimal(0), Decimal("0.35"), Decimal("10.000")]),
    "fee_currency": st.just("USD"),
    "currency": st.sampled_from(["USD", "EUR"]),
    "amount": st.one_of(st.none(), st.decimals(min_value=-(10**6), max_value=10**6, places=2)),
    "broker_trade_id": st.one_of(st.none(), TEXT),
    "order_id": st.one_of(st.none(), TEXT),
    "lot_id": st.one_of(st.none(), TEXT),
    "note": st.one_of(st.none(), TEXT),
})


def frame_of(rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame([{"line": i + 2, **r} for i, r in enumerate(rows)], schema=SCHEMA)


def stored_ids(frame: pl.DataFrame, adapter: str = "generic") -> list[tuple[int, str]]:
    with Store(":memory:") as store:
        record = FileRecord(sha256="s", path="p", adapter=adapter, rows_read=frame.height, trades=frame.height, ignored=0, bad_rows=0)
        store.import_trades(record, frame, Config())
        return store.con.execute("SELECT line, printf('%032x', trade_id) FROM trades ORDER BY line").fetchall()


@given(st.lists(FRAME_ROW, min_size=1, max_size=12), st.data())
def test_identity_columns_give_the_ids_the_store_computes(rows: list[dict[str, object]], data: st.DataObject) -> None:
    """Rows repeated (twins) and nulls included; the store's own hash (IDENTITY_SQL, in SQL) is the reference."""
    rows = rows + [rows[i] for i in data.draw(st.lists(st.integers(0, len(rows) - 1), max_size=6))]
    frame = frame_of(rows)
    assert stored_ids(with_identity(frame, "generic")) == stored_ids(frame)


def test_identity_columns_of_another_adapter_are_not_used() -> None:
    frame = frame_of([{"account": "A", "symbol": "VTI", "asset_class": "equity", "action": "buy", "ts": None,
                       "trade_date": dt.date(2025, 1, 2), "quantity": Decimal(1), "price": Decimal(2), "fee": Decimal(0),
                       "fee_currency": "USD", "currency": "USD", "amount": None, "broker_trade_id": None, "order_id": None,
                       "lot_id": None, "note": None}])
    hashed = with_identity(frame, "mapped")
    assert set(identity_columns("mapped")) <= set(hashed.columns)
    assert stored_ids(hashed, "generic") == stored_ids(frame, "generic") != stored_ids(frame, "mapped")


def test_every_generic_frame_carries_its_identity(tmp_path: Path) -> None:
    """Fast or general path, the frame has SCHEMA's columns and the identity columns, and the ids
    stored from them are the ones the store computes from SCHEMA's columns alone."""
    text = HEADER + "2025-01-02T10:00:00Z,A,VTI,buy,1.50,2,0,USD,etf,,\n" * 3 + '2025-01-03,"B",VTI,sell,1,2,,,,T9,\n'
    out = GenericCsv().extract(Source.from_bytes("t.csv", text.encode()), Context())  # quotes: the general path
    assert out.trades.columns == [*SCHEMA, *identity_columns("generic")]
    assert out.trades.schema["quantity"] == DECIMAL
    assert stored_ids(out.trades) == stored_ids(out.trades.select(list(SCHEMA)))
    with taxlens.open_book(tmp_path / "t.duckdb", taxlens.Config()) as book:
        assert book.ingest([write(tmp_path, "t.csv", text)]).inserted == 4
