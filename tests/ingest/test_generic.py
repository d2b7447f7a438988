"""The generic CSV: parsing, tax dates, every error path, and the fast and slow readers agreeing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from taxlens.errors import ConfigError, FileError
from taxlens.ingest import Context, GenericCsv, Layout, Source, load_mapping
from taxlens.ingest.frame import to_csv
from tests.conftest import write

HEADER = "date,account,symbol,side,quantity,price,fee,currency,asset_class,trade_id,lot_id\n"


def extract(text: str | bytes, layout: Layout | None = None, **context: object):  # type: ignore[no-untyped-def]
    data = text.encode() if isinstance(text, str) else text
    source = Source.from_bytes("t.csv", data)
    return GenericCsv(layout).extract(source, Context(**context))  # type: ignore[arg-type]


def rows(text: str, columns: str = "line,account,symbol,action,ts,trade_date,quantity,price,fee") -> list[str]:
    """The extracted trades as CSV lines limited to ``columns``, for worksheet-style asserts."""
    out = to_csv(extract(text).trades).splitlines()
    header = out[0].split(",")
    keep = [header.index(c) for c in columns.split(",")]
    return [",".join(line.split(",")[i] for i in keep) for line in out[1:]]


def test_canonical_rows_become_trades() -> None:
    assert rows(
        HEADER
        + "2025-01-02,Alpaca,VTI,buy,10,250.50,0.35,USD,etf,T-1,\n"
        + "2025-03-14T15:30:00-04:00,Alpaca,VTI,SELL,5,260.125,,,etf,T-2,T-1\n"
        + "2025-06-30 16:00:00,Alpaca,AAPL,Sell,0.38962051,201.5,0,USD,,,\n"
    ) == [
        "2,Alpaca,VTI,buy,,2025-01-02,10,250.5,0.35",
        "3,Alpaca,VTI,sell,2025-03-14T19:30:00Z,2025-03-14,5,260.125,0",
        "4,Alpaca,AAPL,sell,2025-06-30T20:00:00Z,2025-06-30,0.38962051,201.5,0",
    ]


def test_a_fill_after_midnight_utc_on_new_year_is_a_trade_of_the_old_year() -> None:
    """design.md §3: 2026-01-01T01:30Z is 2025-12-31 20:30 in New York."""
    out = extract(HEADER + "2026-01-01T01:30:00Z,A,BTC,buy,0.5,94000,0,USD,crypto,,\n")
    assert out.trades.get_column("trade_date").to_list() == [dt.date(2025, 12, 31)]
    tokyo = extract(HEADER + "2026-01-01T01:30:00Z,A,BTC,buy,0.5,94000,0,USD,crypto,,\n",
                    timezone=__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    assert tokyo.trades.get_column("trade_date").to_list() == [dt.date(2026, 1, 1)]


def test_naive_times_are_the_taxpayers_local_time() -> None:
    out = extract(HEADER + "2025-07-01 23:30:00,A,VTI,buy,1,1,0,USD,etf,,\n")
    assert out.trades.get_column("ts").to_list() == [dt.datetime(2025, 7, 2, 3, 30, tzinfo=dt.UTC)]
    assert out.trades.get_column("trade_date").to_list() == [dt.date(2025, 7, 1)]


def test_mixed_date_forms_in_one_file() -> None:
    assert rows(
        HEADER
        + "2025-01-02T10:00:00.123456+05:30,A,X,buy,1,1,0,USD,,,\n"
        + "2025-01-02,A,X,buy,1,1,0,USD,,,\n"
        + "2025-01-02 10:00,A,X,buy,1,1,0,USD,,,\n"
        + "2025-01-02T10:00Z,A,X,buy,1,1,0,USD,,,\n",
        "line,ts,trade_date",
    ) == [
        "2,2025-01-02T04:30:00.123456Z,2025-01-01",
        "3,,2025-01-02",
        "4,2025-01-02T15:00:00Z,2025-01-02",
        "5,2025-01-02T10:00:00Z,2025-01-02",
    ]


def test_quantities_keep_every_decimal() -> None:
    out = extract(HEADER + "2025-01-02,A,ETH,buy,0.000000000000000001,3102.3217898325970226955,0,USD,crypto,,\n")
    assert out.trades.get_column("quantity").to_list() == [Decimal("1E-18")]
    # A price is informational and is rounded to the storage scale; a quantity never is.
    assert out.trades.get_column("price").to_list() == [Decimal("3102.321789832597022696")]


def test_every_bad_value_is_reported_with_file_and_line() -> None:
    out = extract(
        HEADER
        + "2025-01-02,A,VTI,buy,10,250,0,USD,etf,,\n"
        + "2025-13-01,,VTI,hold,1O,-3,x,US$,stonk,,\n"
        + "2025-01-02,A,,sell,-5,abc,,,,,\n"
        + "2025-01-02,A,VTI,buy,0.1234567890123456789,1,0.0000000000000000001,,,,\n"
        + ",A,VTI,buy,,,,,,,\n"
        + "2025-01-02,A,VTI,buy,1,123456789012345678901,0,,,,\n"
        + "2025-01-02,A,VTI,buy,1,1,0\n"
    )
    assert [str(e) for e in out.errors] == [
        "t.csv:3: date '2025-13-01' is not a date (expected YYYY-MM-DD, optionally with a time and UTC offset such as 2025-03-14T15:30:00-04:00)",
        "t.csv:3: account '' is missing (expected the account's name)",
        "t.csv:3: side 'hold' is not a known side (expected buy or sell)",
        "t.csv:3: quantity '1O' is not a number (expected a number such as 10 or 0.5)",
        "t.csv:3: price '-3' is negative (expected 0 or more)",
        "t.csv:3: fee 'x' is not a number (expected a number such as 0.35)",
        "t.csv:3: currency 'US$' is not a currency code (expected e.g. USD, EUR or BTC)",
        "t.csv:3: asset_class 'stonk' is not an asset class (expected one of equity, etf, fund, crypto, option, bond, cash, other)",
        "t.csv:4: symbol '' is missing (expected a ticker or coin such as VTI or BTC)",
        "t.csv:4: quantity '-5' is not positive (expected a positive number; the side gives the direction)",
        "t.csv:4: price 'abc' is not a number (expected a number such as 187.40)",
        "t.csv:5: quantity '0.1234567890123456789' has more than 18 decimal places (expected at most 18)",
        "t.csv:5: fee '0.0000000000000000001' has more than 18 decimal places (expected at most 18)",
        "t.csv:6: date '' is missing (expected YYYY-MM-DD, optionally with a time and UTC offset such as 2025-03-14T15:30:00-04:00)",
        "t.csv:6: quantity '' is missing (expected a number such as 10 or 0.5)",
        "t.csv:6: price '' is missing (expected a number such as 187.40)",
        "t.csv:7: price '123456789012345678901' is too large (expected at most 20 digits before the decimal point)",
        "t.csv:8: row has 7 fields (expected 11, as in the header)",
    ]
    assert out.trades.get_column("line").to_list() == [2]
    assert out.rows_read == 6


def test_quoted_multiline_fields_keep_true_line_numbers() -> None:
    text = (
        '"date","account","symbol","side","quantity","price"\n'
        '"2025-01-02","My\nBrokerage","VTI","buy","1","1"\n'
        '"2025-01-03","A","VTI","buy","1O","1"\n'
    )
    out = extract(text)
    assert [str(e) for e in out.errors] == ["t.csv:4: quantity '1O' is not a number (expected a number such as 10 or 0.5)"]
    assert out.trades.get_column("account").to_list() == ["My\nBrokerage"]


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda t: t, id="plain"),
        pytest.param(lambda t: t.replace("\n", "\r\n"), id="crlf"),
        pytest.param(lambda t: t.replace("\n", "\n\n"), id="blank-lines"),
        pytest.param(lambda t: "\n".join(",".join(f'"{c}"' for c in line.split(",")) for line in t.splitlines()) + "\n", id="quoted"),
        pytest.param(lambda t: t.rstrip("\n"), id="no-final-newline"),
        pytest.param(lambda t: "\ufeff" + t, id="utf8-bom"),
    ],
)
def test_fast_and_slow_readers_agree(variant) -> None:  # type: ignore[no-untyped-def]
    base = HEADER + "".join(
        f"2025-01-{d:02d}T15:00:00Z,A,VTI,{'buy' if d % 3 else 'sell'},{d}.5,{100 + d},0.{d},USD,etf,T{d},\n"
        for d in range(1, 9)
    )
    expected = extract(base).trades.drop("line")
    got = extract(variant(base))
    assert got.errors == []
    assert got.trades.drop("line").equals(expected)


def test_a_ragged_row_in_the_middle_names_its_line() -> None:
    body = "".join(f"2025-01-02,A,VTI,buy,{i},1,0,USD,etf,,\n" for i in range(1, 50))
    body += "2025-01-02,A,VTI,buy,7,1,0,USD,etf,,,extra\n" + body
    out = extract(HEADER + body)
    assert [str(e) for e in out.errors] == ["t.csv:51: row has 12 fields (expected 11, as in the header)"]
    assert out.trades.height == 98


def test_header_problems_fail_the_whole_file() -> None:
    with pytest.raises(FileError, match=r"^t.csv:1: missing columns 'side', 'price' \(found 'date', 'account', 'symbol', 'quantity'\)$"):
        extract("date,account,symbol,quantity\n2025-01-01,A,X,1\n")
    with pytest.raises(FileError, match=r"^t.csv:1: unknown column 'fees' \(expected date, account, symbol, side, quantity, price, fee, currency, asset_class, trade_id, lot_id\)$"):
        extract("date,account,symbol,side,quantity,price,fees\n")
    with pytest.raises(FileError, match=r"^t.csv:1: duplicate column 'price' in the header$"):
        extract("date,account,symbol,side,quantity,price,price\n")


def test_account_override_applies_to_every_row() -> None:
    out = extract(HEADER + "2025-01-02,A,VTI,buy,1,1,0,USD,etf,,\n", account="Joint")
    assert out.trades.get_column("account").to_list() == ["Joint"]


def test_identify_needs_the_six_required_columns() -> None:
    adapter = GenericCsv()
    assert adapter.identify(Source.from_bytes("x", HEADER.encode()))
    assert adapter.identify(Source.from_bytes("x", b"\xef\xbb\xbfDate,Account,Symbol,Side,Quantity,Price\n"))
    assert not adapter.identify(Source.from_bytes("x", b"date,account,symbol,quantity,price\n"))


MAPPING = """
name = "mybroker"
date_format = "%m/%d/%Y"
signed_quantity = false

[columns]
date = "Trade Date"
symbol = "Ticker"
side = "Action"
quantity = "Shares"
price = "Price ($)"
fee = "Commission"

[constants]
account = "My Broker"
asset_class = "etf"

[sides]
"Bought" = "buy"
"Sold" = "sell"

[ignore]
"Dividend" = "cash income, not a trade"
"""


def test_a_column_mapping_reads_any_csv(tmp_path: Path) -> None:
    layout = load_mapping(write(tmp_path, "m.toml", MAPPING))
    out = extract(
        "Trade Date,Action,Ticker,Shares,Price ($),Commission,Notes\n"
        '01/02/2025,Bought,VTI,10,"$1,250.50",($0.35),first\n'
        "01/03/2025,Dividend,VTI,,,,\n"
        "01/04/2025,Sold,VTI,4,$1300,,\n"
        "1/5/25,Held,VTI,x,1,,\n",
        layout,
    )
    assert to_csv(out.trades).splitlines()[1:] == [
        "2,My Broker,VTI,etf,buy,,2025-01-02,10,1250.5,0.35,USD,USD,,,,,",
        "4,My Broker,VTI,etf,sell,,2025-01-04,4,1300,0,USD,USD,,,,,",
    ]
    assert dict(out.ignored) == {"dividend": 1}
    assert [str(e) for e in out.errors] == [
        "t.csv:5: Trade Date '1/5/25' is not a plausible trade date (expected a year from 1900 to 2100)",
        "t.csv:5: Action 'Held' is not a known side (expected bought, sold, buy, sell; ignored: dividend)",
        "t.csv:5: Shares 'x' is not a number (expected a number such as 10 or 0.5)",
    ]


def test_a_signed_quantity_mapping_takes_the_side_from_the_sign(tmp_path: Path) -> None:
    layout = load_mapping(write(tmp_path, "m.toml", """
        signed_quantity = true
        [columns]
        date = "Date"
        account = "Acct"
        symbol = "Sym"
        quantity = "Qty"
        price = "Px"
    """))
    out = extract("Date,Acct,Sym,Qty,Px\n2025-01-02,A,VTI,-3,10\n2025-01-02,A,VTI,2,10\n", layout)
    assert out.trades.select("action", "quantity").rows() == [("sell", Decimal(3)), ("buy", Decimal(2))]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n", "unknown key 'colour'"),
        ("[columns]\nwhen = 'Date'\n", "[columns] 'when' is not a taxlens column"),
        ("[columns]\ndate='D'\naccount='A'\nsymbol='S'\nside='X'\nquantity='Q'\nprice='P'\n[sides]\nBought='purchase'\n", "[sides] 'bought' = 'purchase' is not a taxlens side"),
        ("[columns]\ndate = 'D'\n", "no column or constant for account, symbol, side, quantity, price"),
        ("[columns]\ndate = \n", "m.toml:2: Invalid value (column 8)"),
    ],
)
def test_mapping_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=__import__("re").escape(message)):
        load_mapping(write(tmp_path, "m.toml", text))


def test_frame_schema_is_exact_decimal() -> None:
    out = extract(HEADER + "2025-01-02,A,VTI,buy,1,1,0,USD,etf,,\n")
    assert out.trades.schema["quantity"] == pl.Decimal(38, 18)


def test_offsets_in_every_form_agree_with_the_fast_iso_reader() -> None:
    """The first value takes the sliced fast path; the others must not be misread by it."""
    forms = ["2025-01-02T10:00:00+05:30", "2025-01-02T10:00:00+0530", "2025-01-02T09:30:00+05",
             "2025-01-02T10:00:00.000+05:30", "2025-01-02 10:00:00+05:30", "2025-01-02T04:30:00Z"]
    out = extract(HEADER + "".join(f"{f},A,X,buy,1,1,0,USD,,,\n" for f in forms))
    assert out.errors == []
    assert set(out.trades.get_column("ts").to_list()) == {dt.datetime(2025, 1, 2, 4, 30, tzinfo=dt.UTC)}
    bad = extract(HEADER + "2025-01-02T10:00:00+05:30,A,X,buy,1,1,0,USD,,,\n2025-01-02T25:00:00+05:30,A,X,buy,1,1,0,USD,,,\n")
    assert [e.line for e in bad.errors] == [3]


def test_a_large_file_read_in_chunks_gives_exactly_what_a_whole_read_gives(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Big quote-free files are read and normalised CHUNK lines at a time (memory); with tiny
    chunks, a small file must come out identical to the whole-file read, line numbers
    included, and a bad record still falls back to the whole-file readers that name it."""
    from taxlens.ingest import generic
    from taxlens.ingest.frame import to_csv

    rows = "".join(f"2025-01-{1 + i % 28:02d},Alpaca,S{i % 3},{'buy' if i % 2 else 'sell'},{i + 1},{10 + i}.5,0.1,USD,equity,T{i},\n" for i in range(23))
    text = "date,account,symbol,side,quantity,price,fee,currency,asset_class,trade_id,lot_id\n" + rows
    whole = GenericCsv().extract(Source.from_bytes("t.csv", text.encode()), Context())
    monkeypatch.setattr(generic, "CHUNK", 5)
    monkeypatch.setattr(generic, "CHUNK_BYTES", 0)
    assert generic._line_chunks(Source.from_bytes("t.csv", text.encode()), GenericCsv().layout) is not None
    chunked = GenericCsv().extract(Source.from_bytes("t.csv", text.encode()), Context())
    assert to_csv(chunked.trades) == to_csv(whole.trades) and chunked.rows_read == whole.rows_read == 23
    bad = text.replace("T7,\n", "T7,,extra\n")
    out = GenericCsv().extract(Source.from_bytes("t.csv", bad.encode()), Context())
    assert len(out.errors) == 1 and str(out.errors[0]).startswith("t.csv:9: ")  # T7 is on line 9
