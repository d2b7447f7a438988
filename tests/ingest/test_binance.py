"""Binance transaction-history statement: grouped fills, fee rows, converts, payouts and messages."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taxlens.errors import FileError, TaxlensError
from taxlens.ingest import Context, Source, identify
from taxlens.ingest.base import Extracted
from taxlens.ingest.binance import Binance

HEADER = "User_ID,UTC_Time,Account,Operation,Coin,Change,Remark"
OLD = "UTC_Time,Account,Operation,Coin,Change,Remark"


def source(text: str, name: str = "b.csv") -> Source:
    return Source.from_bytes(name, text.encode())


def extract(*rows: str, header: str = HEADER, context: Context | None = None) -> Extracted:
    return Binance().extract(source("\n".join([header, *rows]) + "\n"), context or Context())


def messages(extracted: Extracted) -> list[str]:
    return [str(e) for e in extracted.errors]


def rows(extracted: Extracted, *columns: str) -> list[tuple[object, ...]]:
    return [tuple(r[c] for c in columns) for r in extracted.trades.iter_rows(named=True)]


# -- identify --------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [HEADER, OLD])
def test_identify_both_headers(header: str) -> None:
    assert Binance().identify(source(header + "\n"))
    assert identify(source(header + "\n")).NAME == "binance"


@pytest.mark.parametrize(
    "text",
    [
        '"txid","refid","time","type","subtype","aclass","asset","amount","fee","balance"\n',
        "ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency\n",
        "Date(UTC),Pair,Side,Price,Executed,Amount,Fee\n",  # the spot trade history: another export
        "UTC_Time,Operation,Coin\n",
    ],
)
def test_identify_rejects_other_files(text: str) -> None:
    assert not Binance().identify(source(text))


# -- trades ----------------------------------------------------------------------------------


def test_legs_and_a_bnb_fee_row_make_one_buy_and_a_fee() -> None:
    out = extract(
        "1,2020-11-03 21:12:59,Spot,Buy,EUR,-333.209174,",
        "1,2020-11-03 21:12:59,Spot,Fee,BNB,-9.009E-05,",
        "1,2020-11-03 21:12:59,Spot,Buy,ETH,0.0148,",
    )
    assert out.errors == []
    assert rows(out, "line", "symbol", "action", "quantity", "amount", "currency", "fee", "fee_currency") == [
        (2, "ETH", "buy", Decimal("0.0148"), Decimal("-333.209174"), "EUR", Decimal(0), "EUR"),
        (2, "BNB", "fee", Decimal(0), None, "USD", Decimal("0.00009009"), "BNB"),
    ]


def test_many_fills_in_one_second_are_one_trade_with_fees_folded_in() -> None:
    out = extract(
        "1,2021-02-01 08:30:45,Spot,Transaction Spend,USDT,-150,",
        "1,2021-02-01 08:30:45,Spot,Transaction Buy,BTC,0.0015,",
        "1,2021-02-01 08:30:45,Spot,Transaction Fee,BTC,-0.0000015,",
        "1,2021-02-01 08:30:45,Spot,Transaction Spend,USDT,-50,",
        "1,2021-02-01 08:30:45,Spot,Transaction Buy,BTC,0.0005,",
        "1,2021-02-01 08:30:45,Spot,Transaction Fee,BTC,-0.0000005,",
        "1,2021-02-01 08:30:46,Spot,Transaction Sold,BTC,-0.001,",
        "1,2021-02-01 08:30:46,Spot,Transaction Revenue,USD,46,",
        "1,2021-02-01 08:30:46,Spot,Transaction Fee,USD,-0.046,",
    )
    assert out.errors == []
    assert rows(out, "line", "symbol", "action", "quantity", "amount", "currency") == [
        (2, "BTC", "buy", Decimal("0.001998"), Decimal("-200"), "USDT"),
        (2, "USDT", "sell", Decimal("200"), Decimal("200"), "USDT"),
        (8, "BTC", "sell", Decimal("0.001"), Decimal("45.954"), "USD"),
    ]
    assert out.trades["price"][0] == Decimal("100000")


def test_same_second_in_other_wallets_is_another_group() -> None:
    out = extract(
        "1,2021-02-01 08:30:45,Spot,Transaction Spend,USDT,-10,",
        "1,2021-02-01 08:30:45,Spot,Transaction Buy,BTC,0.0002,",
        "1,2021-02-01 08:30:45,Funding,Transfer Between Main and Funding Wallet,USDT,-5,",
        "1,2021-02-01 08:30:45,Spot,Transfer Between Main and Funding Wallet,USDT,5,",
    )
    assert out.errors == [] and out.trades.height == 2
    assert out.ignored == {"Transfer Between Main and Funding Wallet": 2}


def test_convert_dust_payouts_and_transfers() -> None:
    out = extract(
        "1,2021-04-02 11:11:11,Spot,Binance Convert,BTC,-0.0005,",
        "1,2021-04-02 11:11:11,Spot,Binance Convert,ETH,0.0075,",
        "1,2021-05-20 00:10:00,Spot,small assets exchange bnb,DOGE,-12.5,",
        "1,2021-05-20 00:10:00,Spot,Small assets exchange BNB,BNB,0.0021,",
        "1,2021-06-01 01:00:00,Earn,Simple Earn Flexible Interest,USDT,0.0123,",
        "1,2021-06-01 01:00:00,Earn,Savings Interest,EUR,0.05,",
        "1,2021-07-01 09:30:00,Spot,Deposit,BTC,0.5,",
        "1,2021-07-02 09:30:00,Spot,Withdraw,EUR,-100",  # no Remark field at all
    )
    assert out.errors == []
    assert rows(out, "symbol", "action", "quantity", "amount", "currency", "note") == [
        ("ETH", "buy", Decimal("0.0075"), Decimal("-0.0005"), "BTC", "Binance Convert"),
        ("BTC", "sell", Decimal("0.0005"), Decimal("0.0005"), "BTC", "paid for ETH"),
        ("DOGE", "sell", Decimal("12.5"), Decimal("0.0021"), "BNB", "Small Assets Exchange BNB"),
        ("BNB", "buy", Decimal("0.0021"), Decimal("-0.0021"), "BNB", "proceeds of DOGE"),
        ("USDT", "income", Decimal("0.0123"), None, "USD", "Simple Earn Flexible Interest"),
        ("EUR", "interest", Decimal(0), Decimal("0.05"), "EUR", "Savings Interest"),
        ("BTC", "transfer_in", Decimal("0.5"), None, "USD", "basis unknown"),
        ("EUR", "withdrawal", Decimal(0), Decimal(-100), "EUR", None),
    ]


def test_old_header_and_account_override() -> None:
    out = extract(
        "2020-11-04 08:00:00,Spot,Sell,ETH,-0.0100,",
        "2020-11-04 08:00:00,Spot,Sell,EUR,225.10,",
        "2020-11-04 08:00:00,Spot,Fee,EUR,-0.2251,",
        header=OLD, context=Context(account="bn"),
    )
    assert rows(out, "account", "symbol", "action", "amount", "fee") == [("bn", "ETH", "sell", Decimal("224.8749"), Decimal("0.2251"))]


def test_row_errors_point_at_lines() -> None:
    out = extract(
        "1,2021-01-05 10:00:00,Spot,Deposit,EUR,1O00,",
        "1,2021-01-06 10:00:00,USDT-Futures,Funding Fee,USDT,-0.0123,",
        "1,2021-01-07 10:00:00,Spot,Transaction Spend,USDT,-150,",
        "1,2021-01-07 10:00:00,Spot,Transaction Buy,BTC,0.0015,",
        "1,2021-01-07 10:00:00,Spot,Transaction Sold,ETH,-0.1,",
        "1,2021-01-08 10:00:00,Spot,Small assets exchange BNB,DOGE,-12.5,",
        "1,2021-01-08 10:00:00,Spot,Small assets exchange BNB,SHIB,-150000,",
        "1,2021-01-08 10:00:00,Spot,Small assets exchange BNB,BNB,0.004,",
        "1,2021-01-09 10:00:00,Spot,Withdraw,BTC,0.5,",
        "1,2021-01-10 10:00:00,Spot,Transaction Fee,BNB,0.0004,",
        "1,2021-01-11 10:00:00,Spot,Withdraw",
        "1,2021-01-12 25:00:00,Spot,Deposit,BTC,1,",
    )
    got = messages(out)
    assert got[0] == "b.csv:2: Change '1O00' is not a number (expected a signed number such as -333.209174 or -9.009E-05)"
    assert got[1].startswith("b.csv:3: Operation 'Funding Fee' is not handled by the binance adapter (expected one of Buy, Sell,")
    assert got[2:] == [
        "b.csv:4: UTC_Time '2021-01-07 10:00:00' trade rows change USDT -150, BTC 0.0015, ETH -0.1 "
        "(expected one coin spent and one received in the same second and account)",
        "b.csv:7: UTC_Time '2021-01-08 10:00:00' converts 2 coins to BNB at once (DOGE -12.5, SHIB -150000, BNB 0.004); "
        "taxlens can't divide what was received between them (expected one coin)",
        "b.csv:10: Change '0.5' is positive for Withdraw (expected the opposite sign)",
        "b.csv:11: Change '0.0004' is positive (expected a negative fee)",
        "b.csv:12: row has 4 fields (expected 7, as in the header)",
        "b.csv:13: UTC_Time '2021-01-12 25:00:00' is not a date and time (expected a UTC date and time such as 2021-02-02 13:30:51)",
    ]
    assert out.trades.height == 0 and out.rows_read == 12


def test_file_without_the_statement_header_is_a_file_error() -> None:
    for text in ("a,b,c\n1,2,3\n", "UTC_Time,Operation,Coin,Change,Remark\n"):  # the second lacks Account
        with pytest.raises(FileError, match="no Binance statement header"):
            Binance().extract(source(text), Context())


# -- fuzz ------------------------------------------------------------------------------------

CELLS = st.sampled_from([
    "", "1", "Spot", "Funding", "Buy", "Sell", "Fee", "Transaction Fee", "Transaction Buy", "Transaction Spend",
    "Binance Convert", "Small assets exchange BNB", "Deposit", "Withdraw", "Staking Rewards", "Funding Fee",
    "BTC", "EUR", "BNB", "USDT", "-1.5", "0", "2.5E-05", "1e999", "-0.000000000000000000001",
    "99999999999999999999", "2021-01-05 10:00:00", "2021-02-30 00:00:00", "x", '"', ",", "\n",
])


@settings(max_examples=150, deadline=None)
@given(header=st.sampled_from([HEADER, OLD]), cells=st.lists(st.lists(CELLS, min_size=0, max_size=9), max_size=8))
def test_mutated_rows_give_only_trades_or_clean_errors(header: str, cells: list[list[str]]) -> None:
    lines = [",".join('"' + c.replace('"', '""') + '"' if c in ('"', ",", "\n") else c for c in row) for row in cells]
    try:
        out = Binance().extract(source("\n".join([header, *lines]) + "\n"), Context())
    except TaxlensError:
        return
    assert all(str(e).startswith("b.csv:") for e in out.errors)
    assert all(q >= 0 for q in out.trades["quantity"])
