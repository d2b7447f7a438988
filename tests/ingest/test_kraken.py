"""Kraken trades.csv and ledgers.csv: asset codes, pairs, refid pairing, fees and messages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taxlens.errors import FileError, TaxlensError
from taxlens.ingest import Context, Source, identify
from taxlens.ingest.base import Extracted
from taxlens.ingest.kraken import Kraken, asset, split_pair

TRADES = '"txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol","margin","misc","ledgers"'
TRADES_NEW = (
    '"txid","ordertxid","pair","aclass","subclass","time","type","ordertype","price","cost","fee","vol",'
    '"margin","misc","ledgers"'
)
LEDGERS = '"txid","refid","time","type","subtype","aclass","asset","amount","fee","balance"'
LEDGERS_NEW = (
    '"txid","refid","time","type","subtype","aclass","subclass","asset","wallet","amount","fee","balance",'
    '"amountusd"'
)


def source(text: str, name: str = "k.csv") -> Source:
    return Source.from_bytes(name, text.encode())


def extract(*rows: str, header: str = LEDGERS, context: Context | None = None) -> Extracted:
    return Kraken().extract(source("\n".join([header, *rows]) + "\n"), context or Context())


def messages(extracted: Extracted) -> list[str]:
    return [str(e) for e in extracted.errors]


def rows(extracted: Extracted, *columns: str) -> list[tuple[object, ...]]:
    return [tuple(r[c] for c in columns) for r in extracted.trades.iter_rows(named=True)]


# -- codes and pairs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "ticker"),
    [("XXBT", "BTC"), ("XBT", "BTC"), ("XETH", "ETH"), ("ZUSD", "USD"), ("ZEUR", "EUR"), ("XXDG", "DOGE"),
     ("DOT.S", "DOT"), ("DOT28.S", "DOT"), ("ETH2.S", "ETH"), ("ETH2", "ETH"), ("XBT.M", "BTC"),
     ("USD.HOLD", "USD"), ("KAVA21.S", "KAVA"), ("SOL", "SOL"), ("usdc", "USDC"), ("XTZ", "XTZ")],
)
def test_asset_codes_become_tickers(code: str, ticker: str) -> None:
    assert asset(code) == ticker


@pytest.mark.parametrize(
    ("pair", "split"),
    [("XXBTZUSD", ("BTC", "USD")), ("XETHZEUR", ("ETH", "EUR")), ("XBTUSDC", ("BTC", "USDC")),
     ("XETHXXBT", ("ETH", "BTC")), ("USDTZUSD", ("USDT", "USD")), ("DOTUSDT", ("DOT", "USDT")),
     ("SOL/USD", ("SOL", "USD")), ("XBT/EUR", ("BTC", "EUR")), ("FOOBAR", None), ("USD", None), ("/USD", None)],
)
def test_pairs_split_on_known_quotes(pair: str, split: tuple[str, str] | None) -> None:
    assert split_pair(pair) == split


# -- identify --------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [TRADES, TRADES_NEW, LEDGERS, LEDGERS_NEW, LEDGERS.replace('"', "")])
def test_identify_every_layout(header: str) -> None:
    assert Kraken().identify(source(header + "\n"))
    assert identify(source(header + "\n")).NAME == "kraken"


@pytest.mark.parametrize(
    "text",
    [
        "User_ID,UTC_Time,Account,Operation,Coin,Change,Remark\n",
        "ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency\n",
        '"Date","Action","Symbol","Description","Quantity","Price","Fees & Comm","Amount"\n',
        '"txid","time","type","asset","amount"\n',  # no refid, no fee
        "junk\n" + LEDGERS + "\n",  # the header must be the first line
    ],
)
def test_identify_rejects_other_files(text: str) -> None:
    assert not Kraken().identify(source(text))


# -- trades.csv ------------------------------------------------------------------------------


def test_trades_buy_in_fiat_with_fee_in_the_quote() -> None:
    out = extract(
        '"T1","O1","XXBTZUSD","2024-01-03 15:04:22.5821","buy","limit",42510.1,425.101,1.10526,0.01,0,"","L1,L2"',
        header=TRADES,
    )
    assert out.errors == []
    (row,) = out.trades.iter_rows(named=True)
    assert (row["symbol"], row["action"], row["quantity"], row["amount"]) == ("BTC", "buy", Decimal("0.01"), Decimal("-426.20626"))
    assert (row["price"], row["fee"], row["fee_currency"], row["currency"]) == (Decimal("42510.1"), Decimal("1.10526"), "USD", "USD")
    assert (row["broker_trade_id"], row["order_id"]) == ("T1", "O1")
    assert row["ts"] == dt.datetime(2024, 1, 3, 15, 4, 22, 582100, tzinfo=dt.UTC)
    assert out.warnings == []


def test_trades_coin_quote_is_a_sale_and_a_buy() -> None:
    out = extract('"T1","O1","XBTUSDC","2024-04-01 12:00:00","sell","market",69000,345,0.897,0.005,0,"","L1,L2"', header=TRADES)
    assert rows(out, "symbol", "action", "quantity", "amount", "currency") == [
        ("BTC", "sell", Decimal("0.005"), Decimal("344.103"), "USDC"),
        ("USDC", "buy", Decimal("344.103"), Decimal("-344.103"), "USDC"),
    ]


def test_trades_split_ledgers_value_and_newer_columns() -> None:
    split = extract('"T1","O1","XETHZEUR","2024-02-10 09:12:01","buy","market",2250.5,450.1,1.17,0.2,0,"","L1","L2"', header=TRADES)
    assert split.errors == [] and split.trades.height == 1
    newer = extract('"T1","O1","ETH/EUR","currency","crypto","2024-02-10 09:12:01","buy","market",2250.5,450.1,1.17,0.2,0,"","L1,L2"',
                    header=TRADES_NEW)
    assert rows(newer, "symbol", "currency", "amount") == [("ETH", "EUR", Decimal("-451.27"))]


def test_trades_row_errors() -> None:
    out = extract(
        '"T1","O1","XXBTZUSD","2024-01-03 15:04:22","buy","limit",1,425,1,0.01,212.5,"","L1"',
        '"T2","O2","NOPE","2024-01-03 15:04:22","buy","limit",1,425,1,0.01,0,"","L2"',
        '"T3","O3","XXBTZUSD","2024-01-03 15:04:22","short","limit",1,425,1,0.01,0,"","L3"',
        '"T4","O4","XXBTZUSD","2024-01-03"',
        header=TRADES,
    )
    assert messages(out) == [
        "k.csv:2: margin '212.5' is not zero: margin trades are not supported (expected 0)",
        "k.csv:3: pair 'NOPE' is not a pair taxlens can split (expected e.g. XXBTZEUR, XBTUSDC or XBT/USD)",
        "k.csv:4: type 'short' is not handled by the kraken adapter (expected buy or sell)",
        "k.csv:5: row has 4 fields (expected 13, as in the header)",
    ]


# -- ledgers.csv -----------------------------------------------------------------------------


def test_ledger_pair_by_refid_even_when_apart_with_fees_folded_in() -> None:
    out = extract(
        '"L1","T1","2024-01-03 15:04:22","trade","","currency","ZUSD",-425.1010,1.1053,0',
        '"L9","D9","2024-01-03 15:04:22","deposit","","currency","ZUSD",10,0,0',
        '"L2","T1","2024-01-03 15:04:22","trade","","currency","XXBT",0.0100000000,0.0000100000,0',
    )
    assert out.errors == []
    assert rows(out, "line", "symbol", "action", "quantity", "amount", "broker_trade_id") == [
        (2, "BTC", "buy", Decimal("0.00999"), Decimal("-426.2063"), "T1"),
        (3, "USD", "deposit", Decimal(0), Decimal(10), "L9"),
    ]


def test_ledger_coin_for_coin_and_spend_receive() -> None:
    out = extract(
        '"L1","T1","2024-03-05 18:30:45","trade","","currency","XETH",-0.02,0,0',
        '"L2","T1","2024-03-05 18:30:45","trade","","currency","XXBT",0.0010824,0.0000028,0',
        '"L3","R2","2024-01-20 08:00:12","spend","","currency","ZEUR",-100,1.49,0',
        '"L4","R2","2024-01-20 08:00:12","receive","","currency","XETH",0.04,0,0',
    )
    assert rows(out, "symbol", "action", "quantity", "amount", "currency") == [
        ("ETH", "sell", Decimal("0.02"), Decimal("0.0010796"), "BTC"),
        ("BTC", "buy", Decimal("0.0010796"), Decimal("-0.0010796"), "BTC"),
        ("ETH", "buy", Decimal("0.04"), Decimal("-101.49"), "EUR"),
    ]


def test_ledger_pending_rows_internal_moves_and_kfee_are_ignored() -> None:
    out = extract(
        '"","D1","2024-01-02 10:33:53","deposit","","currency","ZUSD",1000,0,""',
        '"L1","D1","2024-01-02 10:36:03","deposit","","currency","ZUSD",1000,0,1000',
        '"L2","S1","2024-04-01 09:00:00","transfer","spottostaking","currency","DOT",-10,0,0',
        '"L3","S1","2024-04-01 09:05:00","transfer","stakingfromspot","currency","DOT.S",10,0,10',
        '"L4","T1","2024-03-10 14:02:31","trade","","currency","KFEE",0.00,26.20,0',
        '"L5","T1","2024-03-10 14:02:31","trade","","currency","XXBT",-0.003,0,0',
        '"L6","T1","2024-03-10 14:02:31","trade","","currency","ZUSD",210.45,0,0',
    )
    assert out.errors == []
    assert out.ignored == {"pending (empty txid)": 1, "transfer spottostaking": 1, "transfer stakingfromspot": 1, "KFEE": 1}
    assert rows(out, "symbol", "action", "amount") == [("USD", "deposit", Decimal(1000)), ("BTC", "sell", Decimal("210.45"))]
    assert out.rows_read == 7


def test_ledger_staking_income_transfers_and_withdrawal_fee() -> None:
    out = extract(
        '"L1","R1","2024-04-08 01:14:20","staking","","currency","DOT28.S",0.04,0.001,0',
        '"L2","W1","2024-05-01 16:25:12","withdrawal","","currency","XXBT",-0.005,0.0001,0',
        '"L3","D1","2024-05-02 16:25:12","deposit","","currency","XETH",1.5,0,0',
        '"L4","W2","2024-05-03 17:00:00","withdrawal","","currency","ZUSD",-500,5,0',
        context=Context(timezone=ZoneInfo("America/New_York")),
    )
    assert out.errors == []
    assert rows(out, "symbol", "action", "quantity", "fee", "fee_currency", "amount", "note") == [
        ("DOT", "income", Decimal("0.039"), Decimal("0.001"), "DOT", None, "staking"),
        ("BTC", "transfer_out", Decimal("0.005"), Decimal(0), "USD", None, None),
        ("BTC", "fee", Decimal(0), Decimal("0.0001"), "BTC", None, "withdrawal fee"),
        ("ETH", "transfer_in", Decimal("1.5"), Decimal(0), "USD", None, "basis unknown"),
        ("USD", "withdrawal", Decimal(0), Decimal(5), "USD", Decimal(-505), None),
    ]
    assert out.trades["trade_date"][0] == dt.date(2024, 4, 7)  # 01:14 UTC is the evening before in New York


def test_newest_ledger_layout_earn_rewards_valued_in_usd() -> None:
    out = extract(
        '"L1","E1","2025-02-03 11:10:00","earn","allocation","currency","crypto","ETH","spot / main",-1,0,0,-2700',
        '"L2","E2","2025-02-10 02:00:00.5","earn","reward","currency","crypto","ETH","earn / flexible",0.0006,0,1,1.62',
        header=LEDGERS_NEW, context=Context(account="kraken-main"),
    )
    assert out.errors == [] and out.ignored == {"earn allocation": 1}
    (row,) = out.trades.iter_rows(named=True)
    assert (row["action"], row["symbol"], row["price"], row["account"]) == ("income", "ETH", Decimal("2700"), "kraken-main")


def test_ledger_row_errors_point_at_lines() -> None:
    out = extract(
        '"L1","T1","2024-01-03 15:04:22","trade","","currency","ZUSD",-425.1010,1.1053,0',
        '"L2","R2","2024-01-04 15:04:22","margin","","currency","ZUSD",-3.5,0,0',
        '"L3","R3","2024-01-05 15:04:22","deposit","","currency","XXBT",-0.5,0,0',
        '"L4","T4","2024-01-06 15:04:22","trade","","currency","XXBT",1O,0,0',
        '"L5","T4","2024-01-06 15:04:22","trade","","currency","ZUSD",-100,0,0',
        '"L6","T6","2024-01-07 15:04:22","trade","","currency","XXBT",-0.1,0,0',
        '"L7","T6","2024-01-07 15:04:22","trade","","currency","XBT.M",0.1,0,0',
    )
    got = messages(out)
    assert got[0] == "k.csv:2: refid 'T1' has 1 row that moves an asset (USD -425.1010; expected two rows sharing it: one asset spent, one received)"
    assert got[1].startswith("k.csv:3: type 'margin' is not handled by the kraken adapter (expected one of trade, spend, receive,")
    assert got[2:] == [
        "k.csv:4: amount '-0.5' is negative for a deposit (expected the opposite sign)",
        "k.csv:5: amount '1O' is not a number (expected a number such as 0.0344 or -997.4067)",  # its pair is not reported twice
        "k.csv:7: refid 'T6' spends and receives BTC (expected two different assets)",  # XBT.M is BTC
    ]
    assert out.trades.height == 0


def test_missing_column_and_no_header_are_file_errors() -> None:
    with pytest.raises(FileError, match=r"k.csv:1: missing column 'fee'"):
        Kraken().extract(source('"txid","ordertxid","pair","time","type","cost","vol"\n'), Context())
    with pytest.raises(FileError, match="no Kraken header"):
        Kraken().extract(source("a,b,c\n1,2,3\n"), Context())


# -- fuzz ------------------------------------------------------------------------------------

CELLS = st.sampled_from([
    "", "trade", "spend", "receive", "deposit", "withdrawal", "staking", "transfer", "earn", "reward", "margin",
    "XXBT", "ZUSD", "KFEE", "DOT.S", "XETHXXBT", "XBT/USD", "buy", "sell", "T1", "T2", "-1.5", "0", "1e5",
    "1e999", "-0.000000000000000000001", "99999999999999999999", "2024-01-03 15:04:22", "2024-02-30 00:00:00",
    "x", '"', ",", "\n", "\u00e9",
])


@settings(max_examples=150, deadline=None)
@given(header=st.sampled_from([TRADES, LEDGERS, LEDGERS_NEW]), cells=st.lists(st.lists(CELLS, min_size=0, max_size=16), max_size=6))
def test_mutated_rows_give_only_trades_or_clean_errors(header: str, cells: list[list[str]]) -> None:
    lines = [",".join('"' + c.replace('"', '""') + '"' if c in ('"', ",", "\n") else c for c in row) for row in cells]
    try:
        out = Kraken().extract(source("\n".join([header, *lines]) + "\n"), Context())
    except TaxlensError:
        return
    assert all(str(e).startswith("k.csv:") for e in out.errors)
    assert out.rows_read >= 0
    assert all(q >= 0 for q in out.trades["quantity"])


# -- both files ---------------------------------------------------------------------------------


def test_trades_and_ledgers_of_the_same_trades_count_them_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """trades.csv and ledgers.csv both hold trade T1 (as txid and as refid), rounded differently.
    Imported together, T1 is stored once, from the file imported first; the other file's copy
    is left out with a warning at its line, and its other rows (a deposit) still come in."""
    import taxlens

    trades_csv = tmp_path / "trades.csv"
    trades_csv.write_text(TRADES + "\n" + '"T1","O1","XXBTZUSD","2024-01-03 15:04:22.5821","buy","limit",42510.1,425.101,1.10526,0.01,0,"","L1,L2"\n')
    ledgers_csv = tmp_path / "ledgers.csv"
    ledgers_csv.write_text("\n".join([
        LEDGERS,
        '"L9","D9","2024-01-02 10:00:00","deposit","","currency","ZUSD",1000,0,0',
        '"L1","T1","2024-01-03 15:04:22","trade","","currency","ZUSD",-425.1010,1.1053,0',
        '"L2","T1","2024-01-03 15:04:22","trade","","currency","XXBT",0.0100000000,0.0000100000,0',
    ]) + "\n")
    with taxlens.open_book(tmp_path / "t.duckdb", taxlens.Config()) as book:
        first = book.ingest([trades_csv, ledgers_csv], account="Kraken")
        stored = book.trades().select("symbol", "action", "id", "source").rows()
    assert [f.inserted for f in first.files] == [1, 1]
    assert stored == [("USD", "deposit", "L9", f"{ledgers_csv}:2"), ("BTC", "buy", "T1", f"{trades_csv}:2")]
    assert first.files[0].warnings == []
    assert first.files[1].warnings == [
        f"{ledgers_csv}:3: 1 row (this one first) carries a broker trade id that another file already brought "
        "into the same account: each trade is kept once, as first imported"
    ]
