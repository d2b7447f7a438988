"""Coinbase transaction-history adapter: layouts, Convert legs, signs, dates and messages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from taxlens.errors import FileError
from taxlens.ingest import Context, Source, identify
from taxlens.ingest.base import Extracted
from taxlens.ingest.coinbase import Coinbase

V4 = (
    "ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,Price at Transaction,"
    "Subtotal,Total (inclusive of fees and/or spread),Fees and/or Spread,Notes"
)
V3 = (
    "Timestamp,Transaction Type,Asset,Quantity Transacted,Spot Price Currency,"
    "Spot Price at Transaction,Subtotal,Total (inclusive of fees and/or spread),Fees and/or Spread,Notes"
)
PREAMBLE = "\nTransactions\nUser,Jane Doe,2f1c5a0e-1b2c-4d3e-8f9a-0b1c2d3e4f5a\n"


def source(text: str, name: str = "cb.csv") -> Source:
    return Source.from_bytes(name, text.encode())


def extract(*rows: str, header: str = V4, context: Context | None = None) -> Extracted:
    return Coinbase().extract(source("\n".join([header, *rows]) + "\n"), context or Context())


def messages(extracted: Extracted) -> list[str]:
    return [str(e) for e in extracted.errors]


# -- identify --------------------------------------------------------------------------------


def test_identify_v4_with_preamble_and_v3() -> None:
    assert Coinbase().identify(source(PREAMBLE + V4 + ",Sender Address,Recipient Address\n"))
    assert Coinbase().identify(source(V3 + "\n"))
    assert identify(source(PREAMBLE + V4 + "\n")).NAME == "coinbase"


@pytest.mark.parametrize(
    "text",
    [
        '"Date","Action","Symbol","Description","Quantity","Price","Fees & Comm","Amount"\n',
        "date,account,symbol,side,quantity,price\n",
        "Timestamp,Type,Asset\n",
        "\n".join(["junk"] * 12 + [V4]) + "\n",  # the header must be near the top
    ],
)
def test_identify_rejects_other_files(text: str) -> None:
    assert not Coinbase().identify(source(text))


# -- trades ----------------------------------------------------------------------------------


def test_buy_and_v4_negative_sell() -> None:
    out = extract(
        "a1,2024-03-01 14:05:10 UTC,Buy,BTC,0.005,USD,$62000.12,$310.00,$313.99,$3.99,Bought",
        "a2,2024-04-15 20:30:00 UTC,Sell,BTC,-0.002,USD,$63500.5,-$127.00,-$125.01,$1.99,Sold",
    )
    assert out.errors == []
    buy, sell = out.trades.iter_rows(named=True)
    assert (buy["action"], buy["quantity"], buy["fee"], buy["amount"]) == ("buy", Decimal("0.005"), Decimal("3.99"), Decimal("-313.99"))
    assert (sell["action"], sell["quantity"], sell["amount"]) == ("sell", Decimal("0.002"), Decimal("125.01"))
    assert buy["broker_trade_id"] == "a1" and buy["asset_class"] == "crypto"
    assert buy["ts"] == dt.datetime(2024, 3, 1, 14, 5, 10, tzinfo=dt.UTC)


def test_convert_makes_a_sell_and_a_buy_on_the_same_line() -> None:
    out = extract(
        "c1,2024-12-05 06:33:40 UTC,Convert,BTC,0.00363125,EUR,€96847.405873901104437015,"
        "€338.92698,€351.66322,,Converted 0.00363125 BTC to 156.145683 XRP"
    )
    assert out.errors == []
    sell, buy = out.trades.iter_rows(named=True)
    assert (sell["action"], sell["symbol"], sell["quantity"], sell["amount"]) == ("sell", "BTC", Decimal("0.00363125"), Decimal("351.66322"))
    assert sell["price"] == Decimal("96847.405873901104437015")  # 18 decimals kept, the rest rounded
    assert (buy["action"], buy["symbol"], buy["quantity"], buy["amount"]) == ("buy", "XRP", Decimal("156.145683"), Decimal("-351.66322"))
    assert buy["price"] == Decimal("2.252148207004864809")
    assert sell["line"] == buy["line"] == 2
    assert sell["note"] == buy["note"] == "convert"
    assert sell["currency"] == buy["currency"] == "EUR"


def test_convert_notes_with_thousands_separator() -> None:
    out = extract(
        "c1,2021-04-20 18:00:00 UTC,Convert,BTC,0.004,USD,56000,220,224,,\"Converted 0.004 BTC to 1,234.5 DOGE\""
    )
    assert out.trades["quantity"].to_list() == [Decimal("0.004"), Decimal("1234.5")]


def test_convert_without_readable_notes_is_a_row_error() -> None:
    out = extract("c1,2024-12-05 06:33:40 UTC,Convert,BTC,0.1,USD,$1,$1,$1,,Converted stuff")
    assert messages(out) == [
        "cb.csv:2: Notes 'Converted stuff' does not say what BTC was converted to "
        '(expected Notes like "Converted 0.5 BTC to 10 ETH")'
    ]
    assert out.trades.height == 0


def test_advanced_trade_paid_in_stablecoin_adds_the_stablecoin_leg() -> None:
    out = extract(
        "t1,2024-03-03 18:45:30 UTC,Advanced Trade Buy,BTC,0.001,USD,$50000.00,$50.00,$50.25,$0.25,"
        "Bought 0.001 BTC for 50.25 USDC on BTC-USDC at 50000 USDC/BTC",
        "t2,2024-03-04 18:45:30 UTC,Advanced Trade Buy,ETH,0.1,USD,$3400,$340,$341.36,$1.36,"
        "Bought 0.1 ETH for 341.36 USD on ETH-USD at 3400 USD/ETH",
    )
    rows = list(out.trades.iter_rows(named=True))
    assert [(r["symbol"], r["action"], r["quantity"], r["amount"]) for r in rows] == [
        ("BTC", "buy", Decimal("0.001"), Decimal("-50.25")),
        ("USDC", "sell", Decimal("50.25"), Decimal("50.25")),
        ("ETH", "buy", Decimal("0.1"), Decimal("-341.36")),
    ]
    assert rows[1]["note"] == "paid in USDC"


def test_transfers_income_cash_and_internal_moves() -> None:
    out = extract(
        "s1,2025-01-07 19:26:56 UTC,Send,ETH2,-0.180914809326,EUR,€3302.65,-€597.49,-€597.49,€0.00,Sent",
        "r1,2025-01-07 19:26:56 UTC,Receive,ETH,0.180914809326,EUR,€3302.65,€597.49,€597.49,€0.00,Received",
        "i1,2025-01-17 16:57:02 UTC,Staking Income,ETH,0.000037835729,EUR,€3343.11,€0.12,€0.12,€0.00,",
        "d1,2025-01-18 10:00:00 UTC,Deposit,EUR,100,EUR,€1.00,€100.00,€100.00,€0.00,",
        "w1,2025-01-19 10:00:00 UTC,Withdrawal,EUR,-40,EUR,€1.00,-€40.00,-€40.00,€0.00,",
        "x1,2025-01-20 10:00:00 UTC,Retail Staking Transfer,ETH,-0.1,EUR,€3000,-€300,-€300,€0.00,",
        "x2,2025-01-21 10:00:00 UTC,Pro Withdrawal,ETH,0.1,EUR,€3000,€300,€300,€0.00,",
    )
    assert out.errors == []
    rows = list(out.trades.iter_rows(named=True))
    assert [(r["action"], r["symbol"], r["amount"]) for r in rows] == [
        ("transfer_out", "ETH2", None),
        ("transfer_in", "ETH", None),
        ("income", "ETH", None),
        ("deposit", "EUR", Decimal("100")),
        ("withdrawal", "EUR", Decimal("-40")),
    ]
    assert rows[1]["note"] == "basis unknown"
    assert rows[2]["price"] == Decimal("3343.11") and rows[2]["quantity"] == Decimal("0.000037835729")
    assert rows[3]["asset_class"] == "cash"
    assert out.ignored == {"Retail Staking Transfer": 1, "Pro Withdrawal": 1}
    assert out.rows_read == 7


# -- v3, dates, accounts ---------------------------------------------------------------------


def test_v3_iso_timestamps_and_tax_date_in_the_taxpayers_zone() -> None:
    row = "2021-02-10T03:15:00Z,Coinbase Earn,XLM,12.3456789,USD,0.41,5.06,5.06,0.00,Received"
    ny = extract(row, header=V3)
    tokyo = extract(row, header=V3, context=Context(timezone=ZoneInfo("Asia/Tokyo")))
    assert ny.trades["trade_date"].to_list() == [dt.date(2021, 2, 9)]
    assert tokyo.trades["trade_date"].to_list() == [dt.date(2021, 2, 10)]
    assert ny.trades["broker_trade_id"].to_list() == [None]


def test_account_is_coinbase_unless_overridden() -> None:
    text = PREAMBLE + V4 + "\na1,2024-03-01 14:05:10 UTC,Buy,BTC,0.005,USD,$1,$1,$1,$0,\n"
    assert Coinbase().extract(source(text), Context()).trades["account"].to_list() == ["Coinbase"]
    assert Coinbase().extract(source(text), Context(account="CB Jane")).trades["account"].to_list() == ["CB Jane"]


def test_preamble_keeps_physical_line_numbers() -> None:
    text = PREAMBLE + V4 + "\na1,2024-03-01 14:05:10 UTC,Buy,BTC,1O,USD,$1,$1,$1,$0,\n"
    out = Coinbase().extract(source(text), Context())
    assert messages(out) == ["cb.csv:5: Quantity Transacted '1O' is not a number (expected a number such as 0.0016 or -0.18)"]


# -- errors ----------------------------------------------------------------------------------


def test_row_errors_are_collected_with_exact_messages() -> None:
    out = extract(
        "b1,2024-13-01 10:00:00 UTC,Buy,BTC,0.005,USD,$1,$1,$1,$0,",
        "b2,2024-03-02 10:00:00 UTC,Airdrop,XYZ,10,USD,$1,$10,$10,$0,",
        "b3,2024-03-03 10:00:00 UTC,Buy,BTC,0,USD,$1,$1,$1,$0,",
        "b4,2024-03-04 10:00:00 UTC,Buy,BTC,1,USD,$1,$1,,$0,",
    )
    got = messages(out)
    assert got[0] == "cb.csv:2: Timestamp '2024-13-01 10:00:00 UTC' is not a date and time (expected e.g. 2025-01-17 16:57:02 UTC)"
    assert got[1].startswith(
        "cb.csv:3: Transaction Type 'Airdrop' is not handled by the coinbase adapter (expected one of Buy, Advanced Trade Buy,"
    )
    assert got[2] == "cb.csv:4: Quantity Transacted '0' is zero (expected a number such as 0.0016 or -0.18)"
    assert got[3] == "cb.csv:5: Total (inclusive of fees and/or spread) '' is missing (expected an amount such as €67.01 or $70.00)"
    assert out.trades.height == 0 and out.rows_read == 4


def test_missing_column_is_a_file_error() -> None:
    header = V4.replace(",Notes", "")
    with pytest.raises(FileError, match="missing column 'Notes'"):
        extract(header=header)


def test_file_without_header_is_a_file_error() -> None:
    with pytest.raises(FileError, match="no Coinbase header"):
        Coinbase().extract(source("a,b,c\n1,2,3\n"), Context())
