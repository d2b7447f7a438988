"""IBKR Flex Query adapter: identification, dates and zones, cancellations, exact messages.

The golden pairs in tests/golden/adapters/ibkr-flex/ cover whole files; these tests pin the
rules one at a time.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from taxlens.errors import FileError
from taxlens.ingest import ADAPTERS, Context, Extracted, Source
from taxlens.ingest.ibkr import IbkrFlex
from taxlens.ingest.ibkr_read import parse_when

ADAPTER = IbkrFlex()
HEADER = '"Buy/Sell","TradeDate","ISIN","Quantity","TradePrice","TradeMoney","CurrencyPrimary","IBCommission","IBCommissionCurrency"'


def source(text: str, name: str = "flex.csv") -> Source:
    return Source.from_bytes(name, text.encode())


def extract(text: str, name: str = "flex.csv", context: Context | None = None) -> Extracted:
    return ADAPTER.extract(source(text, name), context or Context())


def errors(text: str) -> list[str]:
    return [str(e) for e in extract(text).errors]


def xml(*rows: str, sections: str = "") -> str:
    body = "\n".join(rows)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<FlexQueryResponse queryName="q" type="AF">\n'
        '<FlexStatements count="1">\n<FlexStatement accountId="U1">\n'
        f"<Trades>\n{body}\n</Trades>\n{sections}</FlexStatement>\n</FlexStatements>\n</FlexQueryResponse>\n"
    )


def test_registered() -> None:
    assert isinstance(ADAPTERS["ibkr-flex"], IbkrFlex)


# -- identify ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        HEADER + '\n"BUY","20230522","US9220427424","95","93.78","8909.1","USD","-1","USD"',
        HEADER.lower() + "\n",
        '<?xml version="1.0"?>\n<FlexQueryResponse queryName="q">\n</FlexQueryResponse>',
        "<FlexQueryResponse>\n</FlexQueryResponse>",
        '"BOF","U1","q"\n"HEADER","CTRN","Amount"\n"DATA","CTRN","1"\n'
        '"HEADER","TRNT","Buy/Sell","TradeDate","Symbol","Quantity","TradePrice"\n',
    ],
    ids=["sample-layout", "lower-case", "xml-prolog", "xml-bare", "section-codes"],
)
def test_identify_true(text: str) -> None:
    assert ADAPTER.identify(source(text))


@pytest.mark.parametrize(
    "text",
    [
        "Statement,Header,Field Name,Field Value\nStatement,Data,BrokerName,Interactive Brokers\n"
        "Trades,Header,DataDiscriminator,Asset Category,Currency,Symbol,Date/Time,Quantity,T. Price,Buy/Sell,TradePrice\n",
        "Trades,Header,DataDiscriminator,Asset Category,Currency,Symbol,Date/Time,Quantity,T. Price,C. Price,Proceeds,Comm/Fee\n",
        "Transaction History,Header,Date,Account,Description,Transaction Type,Symbol,Quantity,Price,Gross Amount ,Commission,Net Amount\n",
        "date,account,symbol,side,quantity,price\n2025-01-02,A,VTI,buy,1,2\n",
        '<?xml version="1.0"?>\n<OFX><INVSTMTMSGSRSV1/></OFX>',
        '<FlexStatementResponse timestamp="x"><Status>Fail</Status></FlexStatementResponse>',
        '"Date","Note"\n"2025-01-02","Buy/Sell and TradePrice are mentioned only in a later row"\n'
        '"Buy/Sell","TradePrice"\n',
    ],
    ids=["activity-statement", "activity-trades", "transaction-history", "generic", "ofx", "flex-error", "later-row"],
)
def test_identify_false(text: str) -> None:
    assert not ADAPTER.identify(source(text))


# -- dates and zones ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20250314", (dt.date(2025, 3, 14), None)),
        ("2025-03-14", (dt.date(2025, 3, 14), None)),
        ("03/04/2025", (dt.date(2025, 3, 4), None)),  # MM/dd: IBKR's US default, assumed
        ("03/04/25", (dt.date(2025, 3, 4), None)),
        ("14-Mar-25", (dt.date(2025, 3, 14), None)),
        ("20250314;153000", (dt.date(2025, 3, 14), dt.time(15, 30))),
        ("2025-03-14, 15:30:00", (dt.date(2025, 3, 14), dt.time(15, 30))),
        ("2025-03-14 15:30", (dt.date(2025, 3, 14), dt.time(15, 30))),
        ("2025-03-14T15:30:05", (dt.date(2025, 3, 14), dt.time(15, 30, 5))),
        ("14-OCT-25;093000", (dt.date(2025, 10, 14), dt.time(9, 30))),
        ("20251314", None),
        ("2025-03-14;253000", None),
        ("14/03/2025", None),
        ("yesterday", None),
    ],
)
def test_parse_when(text: str, expected: tuple[dt.date, dt.time | None] | None) -> None:
    assert parse_when(text) == expected


@pytest.mark.parametrize(
    ("stamp", "utc"),
    [
        ("20250309;013000", "2025-03-09T06:30:00+00:00"),  # EST, before the spring change
        ("20250309;033000", "2025-03-09T07:30:00+00:00"),  # EDT, after it
        ("20251102;003000", "2025-11-02T04:30:00+00:00"),  # EDT
        ("20251102;013000", "2025-11-02T05:30:00+00:00"),  # repeated hour: the first (EDT)
        ("20251102;030000", "2025-11-02T08:00:00+00:00"),  # EST
    ],
)
def test_times_are_us_eastern_across_dst(stamp: str, utc: str) -> None:
    text = f'"Buy/Sell","DateTime","Symbol","Quantity","TradePrice"\n"BUY","{stamp}","VT","1","100"\n'
    row = extract(text).trades.row(0, named=True)
    assert row["ts"] == dt.datetime.fromisoformat(utc)


@pytest.mark.parametrize(
    ("zone", "day"),
    [("America/New_York", dt.date(2025, 12, 31)), ("Europe/Zurich", dt.date(2026, 1, 1)),
     ("America/Los_Angeles", dt.date(2025, 12, 31))],
)
def test_tax_date_is_in_the_taxpayers_zone(zone: str, day: dt.date) -> None:
    text = '"Buy/Sell","DateTime","Symbol","Quantity","TradePrice"\n"SELL","20251231;203000","VT","-1","100"\n'
    row = extract(text, context=Context(timezone=ZoneInfo(zone))).trades.row(0, named=True)
    assert row["ts"] == dt.datetime(2026, 1, 1, 1, 30, tzinfo=dt.UTC)
    assert row["trade_date"] == day


def test_date_only_is_the_tax_date() -> None:
    text = HEADER + '\n"BUY","20230522","US9220427424","95","93.78","8909.1","USD","-1","USD"\n'
    row = extract(text, context=Context(timezone=ZoneInfo("Asia/Tokyo"))).trades.row(0, named=True)
    assert row["ts"] is None
    assert row["trade_date"] == dt.date(2023, 5, 22)


# -- values ------------------------------------------------------------------------------------


def test_sample_layout_values_are_exact() -> None:
    text = (HEADER + '\n"BUY","20230522","US9220427424","95","93.78","8909.1","USD","-1.79924","CHF"\n'
            '"SELL","20230522","","-8000","1.1173","-8938.4","USD","-1.79924","CHF"\n')
    got = extract(text)
    assert got.ignored == {"forex": 1}
    row = got.trades.row(0, named=True)
    assert (row["symbol"], row["account"], row["action"]) == ("US9220427424", "IBKR", "buy")
    assert (row["quantity"], row["price"], row["fee"]) == (Decimal(95), Decimal("93.78"), Decimal("1.79924"))
    assert (row["fee_currency"], row["currency"], row["amount"]) == ("CHF", "USD", None)


def test_account_override_wins() -> None:
    text = '"ClientAccountID","Buy/Sell","TradeDate","Symbol","Quantity","TradePrice"\n"U9","BUY","20250102","VT","1","100"\n'
    assert extract(text).trades["account"].to_list() == ["U9"]
    assert extract(text, context=Context(account="Roth")).trades["account"].to_list() == ["Roth"]


def test_exact_error_strings() -> None:
    text = (
        '"Buy/Sell","TradeDate","Symbol","AssetClass","Quantity","TradePrice","IBCommission"\n'
        '"BUY","20250314","VT","STK","1O","118.5","-1"\n'
        '"BUY","20250314","VT","OPT","1","2.5","-1"\n'
        '"HOLD","14/03/2025","VT","STK","1","118.5","x"\n'
    )
    assert errors(text) == [
        "flex.csv:2: Quantity '1O' is not a number (expected a number such as 10 or -0.5)",
        "flex.csv:3: AssetClass 'OPT' is not supported: options and futures are not supported yet "
        "(expected STK, FUND, BOND or CRYPTO)",
        "flex.csv:4: Buy/Sell 'HOLD' is not a known side (expected BUY or SELL; BUY (Ca.) and SELL (Ca.) mark cancellations)",
        "flex.csv:4: IBCommission 'x' is not a number (expected a number such as -1.25)",
        "flex.csv:4: TradeDate '14/03/2025' is not a date (expected a date such as 20250314, 2025-03-14, "
        "03/14/2025 or 14-Mar-25, optionally with a time as in 20250314;153000)",
    ]


def test_xml_errors_name_attributes_and_the_start_tag_line() -> None:
    text = xml('<Trade symbol="VT"\n  quantity="ten" tradePrice="1" tradeDate="20250102" buySell="BUY" />')
    assert [str(e) for e in extract(text, "f.xml").errors] == [
        "f.xml:6: quantity 'ten' is not a number (expected a number such as 10 or -0.5)"
    ]


def test_missing_columns_is_a_file_error() -> None:
    with pytest.raises(FileError) as info:
        extract('"Buy/Sell","Symbol","Quantity"\n"BUY","VT","1"\n')
    assert str(info.value) == (
        "flex.csv:1: missing columns 'TradePrice', 'TradeDate' or 'DateTime' "
        "(found 'Buy/Sell', 'Symbol', 'Quantity')"
    )


def test_malformed_xml_is_a_file_error_with_the_parsers_line() -> None:
    text = '<?xml version="1.0"?>\n<FlexQueryResponse>\n<FlexStatements>\n<Trade a="1">\n</FlexStatements>\n'
    with pytest.raises(FileError) as info:
        extract(text, "f.xml")
    assert str(info.value) == "f.xml:5: is not well-formed XML: mismatched tag"


def test_other_xml_and_doctype_are_file_errors() -> None:
    with pytest.raises(FileError, match=r"f.xml:1: root element is <OFX>"):
        extract("<OFX></OFX>", "f.xml")
    with pytest.raises(FileError, match="DOCTYPE"):
        extract('<!DOCTYPE x [<!ENTITY a "b">]>\n<FlexQueryResponse/>', "f.xml")


def test_trade_confirmation_query_is_refused() -> None:
    text = xml("", sections='<TradeConfirms>\n<TradeConfirm symbol="VT" price="1" />\n</TradeConfirms>\n')
    with pytest.raises(FileError, match="Trade Confirmation Flex query"):
        extract(text, "f.xml")


# -- levels of detail and cancellations --------------------------------------------------------


def test_orders_are_imported_when_there_are_no_executions() -> None:
    text = xml('<Trade symbol="VT" quantity="5" tradePrice="100" tradeDate="20250102" buySell="BUY" levelOfDetail="ORDER" />')
    got = extract(text, "f.xml")
    assert got.trades.height == 1 and not got.ignored


def test_cancel_nets_the_rebooked_trade_it_names() -> None:
    # IBKR re-books a corrected trade under the same tradeID: the cancel takes the earlier one.
    text = xml(
        '<Trade symbol="VT" tradeID="7" quantity="2" tradePrice="100" tradeDate="20250102" buySell="BUY" />',
        '<Trade symbol="VT" tradeID="" origTradeID="7" quantity="-2" tradePrice="100" tradeDate="20250102" '
        'buySell="BUY (Ca.)" transactionType="TradeCancel" />',
        '<Trade symbol="VT" tradeID="7" quantity="2" tradePrice="101" tradeDate="20250102" buySell="BUY" />',
    )
    got = extract(text, "f.xml")
    assert got.ignored == {"cancelled": 2}
    assert got.trades["price"].to_list() == [Decimal(101)]


def test_cancel_without_ids_matches_symbol_date_quantity_and_price() -> None:
    text = xml(
        '<Trade symbol="VT" quantity="-3" tradePrice="100" tradeDate="20250102" buySell="SELL" />',
        '<Trade symbol="VT" quantity="-3" tradePrice="101" tradeDate="20250102" buySell="SELL" />',
        '<Trade symbol="VT" quantity="3" tradePrice="101" tradeDate="20250102" buySell="SELL (Ca.)" />',
    )
    got = extract(text, "f.xml")
    assert got.trades["price"].to_list() == [Decimal(100)]


def test_partial_cancel_is_an_error() -> None:
    text = xml(
        '<Trade symbol="VT" tradeID="7" quantity="2" tradePrice="100" tradeDate="20250102" buySell="BUY" />',
        '<Trade symbol="VT" origTradeID="7" quantity="-1" tradePrice="100" tradeDate="20250102" buySell="BUY (Ca.)" />',
    )
    assert [str(e) for e in extract(text, "f.xml").errors] == [
        "f.xml:7: quantity '-1' does not reverse trade 7 (expected its quantity with the opposite sign; "
        "partial cancellations are not supported)"
    ]


def test_short_sale_and_cover_come_from_open_close() -> None:
    text = xml(
        '<Trade symbol="TSLA" quantity="-2" tradePrice="400" tradeDate="20250102" buySell="SELL" openCloseIndicator="O" />',
        '<Trade symbol="TSLA" quantity="2" tradePrice="390" tradeDate="20250103" buySell="BUY" openCloseIndicator="C" />',
    )
    assert extract(text, "f.xml").trades["action"].to_list() == ["sell_short", "buy_to_cover"]


def test_repeated_header_starts_a_new_account_block() -> None:
    text = (
        '"ClientAccountID","Buy/Sell","TradeDate","Symbol","Quantity","TradePrice"\n"U1","BUY","20250102","VT","1","100"\n'
        '"Buy/Sell","ClientAccountID","TradeDate","Symbol","Quantity","TradePrice"\n"SELL","U2","20250103","VT","-1","101"\n'
    )
    got = extract(text)
    assert got.trades["account"].to_list() == ["U1", "U2"]
    assert got.rows_read == 2


def test_section_data_before_its_header_is_an_error() -> None:
    text = ('"HEADER","CTRN","Amount"\n"DATA","TRNT","BUY"\n'
            '"HEADER","TRNT","Buy/Sell","TradeDate","Symbol","Quantity","TradePrice"\n')
    assert errors(text) == [
        "flex.csv:2: DATA row of section 'TRNT' comes before its HEADER row (expected the HEADER first)"
    ]
