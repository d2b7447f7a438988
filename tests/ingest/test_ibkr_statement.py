"""IBKR Activity Statement adapter: identification, each section, quirks, closed lots, reconcile.

The golden pairs in tests/golden/adapters/ibkr-statement/ cover whole files; these tests pin
the rules one at a time. All statements here are synthesised in the real layout.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taxlens.errors import FileError, RowErrors, TaxlensError
from taxlens.ingest import ADAPTERS, Context, Extracted, Source, identify
from taxlens.ingest.ibkr_statement import IbkrStatement, closed_lots
from taxlens.report.reconcile import BROKER_SCHEMA, read_broker
from tests.conftest import write

ADAPTER = IbkrStatement()
TITLE = "Statement,Header,Field Name,Field Value\nStatement,Data,Title,Activity Statement\n"
TRADES = (
    "Trades,Header,DataDiscriminator,Asset Category,Currency,Symbol,Date/Time,Quantity,T. Price,"
    "C. Price,Proceeds,Comm/Fee,Basis,Realized P/L,MTM P/L,Code\n"
)
MULTI = (
    "Trades,Header,DataDiscriminator,Asset Category,Currency,Account,Symbol,Date/Time,Exchange,"
    "Quantity,T. Price,Proceeds,Comm/Fee,Basis,Realized P/L,Code\n"
)
BUY = 'Trades,Data,Order,Stocks,USD,VTI,"2025-01-03, 09:31:42",10,250.1,250.5,-2501,-1,2502,0,4,O\n'
SELL = 'Trades,Data,Order,Stocks,USD,VTI,"2025-06-02, 15:59:59",-12,270.5,270,3246,-1.2,-3022.4,222.4,-6,C;P\n'
LOTS = (
    "Trades,Data,ClosedLot,Stocks,USD,VTI,2024-06-02,10,250.2,,,,2502,202,,LT\n"
    "Trades,Data,ClosedLot,Stocks,USD,VTI,2024-06-03,2,260.2,,,,520.4,20.4,,LT\n"
)


def source(text: str, name: str = "stmt.csv") -> Source:
    return Source.from_bytes(name, text.encode())


def extract(text: str, context: Context | None = None) -> Extracted:
    return ADAPTER.extract(source(text), context or Context())


def rows(text: str, context: Context | None = None) -> list[dict[str, object]]:
    result = extract(text, context)
    assert not result.errors, [str(e) for e in result.errors]
    return result.trades.to_dicts()


def errors(text: str) -> list[str]:
    return [str(e) for e in extract(text).errors]


def test_registered() -> None:
    assert isinstance(ADAPTERS["ibkr-statement"], IbkrStatement)


# -- identify ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        TITLE + TRADES + BUY,
        TRADES + BUY,  # a statement cut down to its Trades section
        TITLE + "Dividends,Header,Currency,Date,Description,Amount\n",  # no trades that period
        '"Statement","Header","Field Name","Field Value"\n"Trades","Header","DataDiscriminator","Asset Category"\n',
    ],
    ids=["full", "trades-only", "title-only", "quoted"],
)
def test_identify_true(text: str) -> None:
    assert ADAPTER.identify(source(text))
    assert identify(source(text)).NAME == "ibkr-statement"


@pytest.mark.parametrize(
    "text",
    [
        # the Transaction History report (formats.md §2d): same first line, another report
        "Statement,Header,Field Name,Field Value\nStatement,Data,Title,Transaction History\n"
        "Transaction History,Header,Date,Account,Description,Transaction Type,Symbol,Quantity,Price,"
        "Gross Amount ,Commission,Net Amount\n",
        # Flex CSVs, plain and with section codes (the ibkr-flex adapter's)
        '"Buy/Sell","TradeDate","ISIN","Quantity","TradePrice","TradeMoney","CurrencyPrimary",'
        '"IBCommission","IBCommissionCurrency"\n"BUY","20230522","US9220427424","95","93.78","8909.1","USD","-1","USD"\n',
        '"HEADER","TRNT","Buy/Sell","TradeDate","Symbol","Quantity","TradePrice"\n',
        "date,account,symbol,side,quantity,price\n2025-01-02,A,VTI,buy,1,2\n",
        "Trades,Data,Order,Stocks,USD,VTI\n" + TRADES,  # the first line is not a Header
    ],
    ids=["transaction-history", "flex-plain", "flex-sections", "generic", "data-first"],
)
def test_identify_false(text: str) -> None:
    assert not ADAPTER.identify(source(text))


def test_the_flex_golden_files_are_not_claimed() -> None:
    root = Path(__file__).parents[1] / "golden" / "adapters" / "ibkr-flex"
    for path in sorted(root.glob("*")):
        if not path.name.endswith((".trades.csv", ".log.txt", ".md")):
            assert not ADAPTER.identify(Source.read(path)), path.name


def test_extract_refuses_another_layout() -> None:
    with pytest.raises(FileError, match="is not an IBKR Activity Statement"):
        extract("Statement,Header,Field Name,Field Value\nTransaction History,Header,Date\n")


# -- trades ------------------------------------------------------------------------------------


def test_order_rows_are_buys_and_sells_with_signed_quantity_and_net_cash() -> None:
    buy, sell = rows(TITLE + "Account Information,Header,Field Name,Field Value\n"
                     "Account Information,Data,Account,U1234567\n" + TRADES + BUY + SELL + LOTS)
    assert buy["action"] == "buy" and sell["action"] == "sell"
    assert (buy["quantity"], buy["price"], buy["fee"], buy["amount"]) == (
        Decimal(10), Decimal("250.1"), Decimal(1), Decimal(-2502))
    assert (sell["quantity"], sell["fee"], sell["amount"]) == (Decimal(12), Decimal("1.2"), Decimal("3244.8"))
    assert buy["account"] == "U1234567" and buy["currency"] == buy["fee_currency"] == "USD"


def test_time_is_eastern_stored_as_utc_and_tax_date_in_the_taxpayers_zone() -> None:
    late = 'Trades,Data,Order,Stocks,USD,VTI,"2025-07-01, 21:30:00",1,250,250,-250,-1,251,0,0,O\n'
    [row] = rows(TRADES + late, Context(timezone=ZoneInfo("Europe/Berlin")))
    assert row["ts"] == dt.datetime(2025, 7, 2, 1, 30, tzinfo=dt.UTC)
    assert row["trade_date"] == dt.date(2025, 7, 2)  # 03:30 in Berlin


def test_context_account_overrides_and_default_is_ibkr() -> None:
    assert rows(TRADES + BUY)[0]["account"] == "IBKR"
    assert rows(TRADES + BUY, Context(account="Main"))[0]["account"] == "Main"


def test_subtotal_and_total_rows_are_skipped() -> None:
    text = TRADES + BUY + "Trades,SubTotal,,Stocks,USD,VTI,,10,,,-2501,-1,2502,0,4,\n" \
        "Trades,Total,,Stocks,USD,,,,,,-2501,-1,2502,0,4,\n"
    result = extract(text)
    assert result.rows_read == 1 and result.trades.height == 1 and not result.errors


def test_executions_win_over_orders_and_account_column_is_read() -> None:
    order = 'Trades,Data,Order,Stocks,USD,U7,VTI,"2025-03-14, 15:30:00",-,4,290,-1160,-0.35,1160.35,0,O\n'
    trade = 'Trades,Data,Trade,Stocks,USD,U7,VTI,"2025-03-14, 15:30:00",ARCA,4,290,-1160,-0.35,1160.35,0,O\n'
    result = extract(MULTI + order + trade)
    assert result.ignored["Order"] == 1
    [row] = result.trades.to_dicts()
    assert (row["line"], row["account"], row["quantity"]) == (3, "U7", Decimal(4))


def test_repeated_headers_change_the_columns_and_forex_is_ignored() -> None:
    forex = (
        "Trades,Header,DataDiscriminator,Asset Category,Currency,Symbol,Date/Time,Quantity,T. Price,,"
        "Proceeds,Comm in USD,,,MTM in USD,Code\n"
        'Trades,Data,Order,Forex,USD,EUR.USD,"2025-05-05, 08:00:01",700,1.1301,,-791.07,-2,,,0.5,\n'
    )
    sap = 'Trades,Data,Order,Stocks,EUR,SAP,"2025-05-06, 03:30:00",3,220,221,-660,-1.25,661.25,0,3,O\n'
    result = extract(TRADES + BUY + forex + TRADES + sap)
    assert result.ignored["Forex"] == 1 and not result.errors
    assert [(r["symbol"], r["currency"], r["fee"]) for r in result.trades.to_dicts()] == [
        ("VTI", "USD", Decimal(1)), ("SAP", "EUR", Decimal("1.25"))]


def test_comm_in_column_names_the_fee_currency() -> None:
    header = TRADES.replace("Comm/Fee", "Comm in CHF")
    [row] = rows(header + BUY)
    assert row["fee_currency"] == "CHF" and row["amount"] is None  # cash net of a CHF fee: unknown in USD


def test_crypto_and_etf_are_flagged() -> None:
    btc = 'Trades,Data,Order,Crypto,USD,BTC,"2025-04-10, 14:02:03",0.01234567,80000.5,80100,-987.66,-1.75,989.41,0,1.23,O\n'
    info = (
        "Financial Instrument Information,Header,Asset Category,Symbol,Description,Conid,Security ID,"
        "Underlying,Listing Exch,Multiplier,Type,Code\n"
        "Financial Instrument Information,Data,Stocks,VTI,VANGUARD TOTAL STOCK MKT ETF,1,US9229087690,VTI,ARCA,1,ETF,\n"
    )
    got = rows(TRADES + BUY + btc + info)
    assert [(r["symbol"], r["asset_class"]) for r in got] == [("VTI", "etf"), ("BTC", "crypto")]
    assert got[1]["quantity"] == Decimal("0.01234567")


def test_short_sale_and_cover_from_the_code() -> None:
    short = 'Trades,Data,Order,Stocks,USD,TSLA,"2025-07-01, 10:00:00",-2,300,300,600,-1,-599,0,0,O\n'
    cover = 'Trades,Data,Order,Stocks,USD,TSLA,"2025-07-02, 10:00:00",2,290,290,-580,-1,599,18,0,C\n'
    assert [r["action"] for r in rows(TRADES + short + cover)] == ["sell_short", "buy_to_cover"]


def test_options_are_row_errors_not_skips() -> None:
    option = 'Trades,Data,Order,Equity and Index Options,USD,VTI 20JUN25 250 C,"2025-01-03, 09:31:42",1,5.2,5.3,-520,-0.65,520.65,0,10,O\n'
    assert errors(TRADES + option) == [
        "stmt.csv:2: Asset Category 'Equity and Index Options' is not supported yet (expected Stocks, "
        "Crypto, Bonds, Treasury Bills, Mutual Funds, Warrants or Forex; options, futures and CFDs must "
        "be added by hand, e.g. in the generic CSV)"
    ]


def test_closed_lots_are_counted_not_imported() -> None:
    result = extract(TRADES + BUY + SELL + LOTS)
    assert result.trades.height == 2 and result.ignored["ClosedLot"] == 2
    assert "read by `taxlens reconcile`" in ADAPTER.IGNORED["ClosedLot"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (BUY.replace(",10,", ",1O,"), "Quantity '1O' is not a number (expected a signed quantity such as 10 or -0.5)"),
        (BUY.replace(",10,", ",0,"), "Quantity '0' is zero (expected a signed quantity such as 10 or -0.5)"),
        (BUY.replace("2025-01-03", "2025-13-03"), "Date/Time '2025-13-03, 09:31:42' is not a date"),
        (BUY.replace(",250.1,", ",-1,"), "T. Price '-1' is negative (expected 0 or more)"),
        (BUY.replace("Order", "Summary"), "DataDiscriminator 'Summary' is not known (expected Order, Trade or ClosedLot)"),
        (BUY.replace(",VTI,", ",,"), "Symbol '' is missing (expected the ticker traded)"),
        (BUY.replace(",O\n", ",O,x\n"), "row has 15 fields after 'Trades,Data' (expected 14, as in the Header)"),
        (BUY.replace(",0,4,O\n", ",0,4\n"), "row has 13 fields after 'Trades,Data' (expected 14, as in the Header)"),
    ],
    ids=["not-a-number", "zero", "bad-date", "negative-price", "discriminator", "no-symbol", "long", "short"],
)
def test_bad_trade_rows_name_file_line_and_value(line: str, message: str) -> None:
    [error] = errors(TITLE + TRADES + BUY + line)
    assert error.startswith(f"stmt.csv:5: {message}")


def test_data_before_header_and_unknown_line_types_are_row_errors() -> None:
    text = TRADES + "Dividends,Data,USD,2025-03-27,X,1\nTrades,Oops,x\n"
    assert errors(text) == [
        "stmt.csv:2: Dividends Data row comes before its Header row (expected the Header first)",
        "stmt.csv:3: line type 'Oops' is not known (expected <Section>,Header|Data|SubTotal|Total|Notes,… "
        "as in an Activity Statement)",
    ]


def test_a_header_without_a_needed_column_is_a_file_error() -> None:
    with pytest.raises(FileError, match=r"stmt.csv:1: missing column 'T. Price'"):
        extract(TRADES.replace("T. Price", "Price") + BUY)


# -- cash sections ----------------------------------------------------------------------------

CASH = """\
Dividends,Header,Currency,Date,Description,Amount
Dividends,Data,USD,2025-03-27,VTI(US9229087690) Cash Dividend USD 0.90 per Share (Ordinary Dividend),13.5
Dividends,Data,Total,,,13.5
Payment In Lieu Of Dividends,Header,Currency,Date,Description,Amount
Payment In Lieu Of Dividends,Data,USD,2025-03-27,BRK B(US0846707026) Payment in Lieu of Dividend,2
Withholding Tax,Header,Currency,Date,Description,Amount,Code
Withholding Tax,Data,USD,2025-02-03,Withholding @ 20% on Credit Interest for Jan-2025,-0.25,
Withholding Tax,Data,USD,2025-03-27,VTI(US9229087690) Cash Dividend USD 0.90 per Share - US Tax,-1.35,
Withholding Tax,Data,Total,,,-1.6,
Interest,Header,Currency,Date,Description,Amount
Interest,Data,EUR,2025-02-03,EUR Credit Interest for Jan-2025,1.25
Interest,Data,Total in USD,,,1.35
Fees,Header,Subtitle,Currency,Date,Description,Amount
Fees,Data,Other Fees,USD,2025-02-03,Balance of Monthly Minimum Fee for Jan 2025,-10
Fees,Data,Total,,,,-10
Deposits & Withdrawals,Header,Currency,Settle Date,Description,Amount
Deposits & Withdrawals,Data,USD,2025-01-02,Electronic Fund Transfer,10000
Deposits & Withdrawals,Data,USD,2025-09-15,Disbursement Initiated by Test Person,-500
Deposits & Withdrawals,Data,Total,,,9500
"""


def test_cash_sections() -> None:
    got = [(r["line"], r["symbol"], r["asset_class"], r["action"], r["currency"], r["amount"], r["fee"])
           for r in rows(TITLE + CASH)]
    assert got == [
        (4, "VTI", "equity", "dividend", "USD", Decimal("13.5"), Decimal(0)),
        (7, "BRK B", "equity", "dividend", "USD", Decimal(2), Decimal(0)),
        (9, "USD", "cash", "withholding", "USD", Decimal("-0.25"), Decimal(0)),
        (10, "VTI", "equity", "withholding", "USD", Decimal("-1.35"), Decimal(0)),
        (13, "EUR", "cash", "interest", "EUR", Decimal("1.25"), Decimal(0)),
        (16, "USD", "cash", "fee", "USD", Decimal(-10), Decimal(10)),
        (19, "USD", "cash", "deposit", "USD", Decimal(10000), Decimal(0)),
        (20, "USD", "cash", "withdrawal", "USD", Decimal(-500), Decimal(0)),
    ]
    assert extract(TITLE + CASH).rows_read == 9  # Total rows are not rows


def test_cash_rows_with_an_account_column() -> None:
    text = "Dividends,Header,Currency,Account,Date,Description,Amount\n" \
        "Dividends,Data,SEK,U1,2025-05-07,HM B(SE0000106270) Cash Dividend SEK 3.25 per Share,835.25\n"
    [row] = rows(text)
    assert (row["account"], row["symbol"], row["currency"]) == ("U1", "HM B", "SEK")


def test_bad_cash_rows() -> None:
    text = "Dividends,Header,Currency,Date,Description,Amount\n" \
        "Dividends,Data,USD,2025-03-27,VTI(US9229087690) Cash Dividend,13.5O\n" \
        "Dividends,Data,USD,27/03/2025,VTI(US9229087690) Cash Dividend,13.5\n"
    assert errors(text) == [
        "stmt.csv:2: Amount '13.5O' is not a number (expected an amount such as -1.25)",
        "stmt.csv:3: Date '27/03/2025' is not a date (expected a date such as 2025-03-14)",
    ]


# -- corporate actions and transfers -----------------------------------------------------------

CORP = "Corporate Actions,Header,Asset Category,Currency,Report Date,Date/Time,Description,Quantity,Proceeds,Value,Realized P/L,Code\n"


def test_forward_split_and_netted_reverse_split_pair() -> None:
    text = CORP + (
        'Corporate Actions,Data,Stocks,USD,2025-06-10,"2025-06-09, 20:25:00","NVDA(US67066G1040) Split 4 for 1 '
        '(NVDA, NVIDIA CORP, US67066G1040)",30,0,0,0,\n'
        'Corporate Actions,Data,Stocks,USD,2025-08-12,"2025-08-11, 20:25:00","GCM(CA38501D2041) Split 1 for 25 '
        '(GCM, GRAN COLOMBIA GOLD CORP, CA38501D5010)",40,0,0,0,\n'
        'Corporate Actions,Data,Stocks,USD,2025-08-12,"2025-08-11, 20:25:00","GCM(CA38501D2041) Split 1 for 25 '
        '(GCM.OLD, GRAN COLOMBIA GOLD CORP, CA38501D2041)",-1000,0,0,0,\n'
        "Corporate Actions,Total,,,,,,,0,0,0,\n"
    )
    got = [(r["line"], r["symbol"], r["action"], r["quantity"], r["trade_date"]) for r in rows(text)]
    assert got == [
        (2, "NVDA", "split_in", Decimal(30), dt.date(2025, 6, 9)),
        (3, "GCM", "split_out", Decimal(960), dt.date(2025, 8, 11)),  # 1000 held → 40
    ]


def test_mergers_and_spinoffs_are_refused_like_schwab() -> None:
    text = CORP + (
        'Corporate Actions,Data,Stocks,USD,2025-07-02,"2025-07-01, 20:25:00","DEF(US0000000003) Spinoff 1 for 10 '
        '(GHI, GHI INC, US0000000004)",5,0,0,0,\n'
    )
    assert errors(text) == [
        "stmt.csv:2: corporate action 'DEF(US0000000003) Spinoff 1 for 10 (GHI, GHI INC, US0000000004)' is not "
        "supported yet: the statement does not say how the basis divides (add it as trades in the generic CSV)"
    ]


TRANSFERS = (
    "Transfers,Header,Asset Category,Currency,Symbol,Date,Type,Direction,Xfer Company,Xfer Account,Qty,"
    "Xfer Price,Market Value,Realized P/L,Cash Amount,Code\n"
)


def test_transfers_in_and_out() -> None:
    text = TRANSFERS + (
        "Transfers,Data,Stocks,USD,MSFT,2025-04-01,ACATS,In,Charles Schwab,****1234,4,--,1600,0,0,\n"
        "Transfers,Data,Stocks,USD,MSFT,2025-11-03,ACATS,Out,Fidelity,****5678,-4,--,2000,0,0,\n"
        "Transfers,Data,Cash,USD,,2025-11-04,Internal,Out,,U2,,--,,0,-250,\n"
    )
    got = [(r["symbol"], r["action"], r["quantity"], r["amount"], r["price"]) for r in rows(text)]
    assert got == [
        ("MSFT", "transfer_in", Decimal(4), None, None),
        ("MSFT", "transfer_out", Decimal(4), None, None),
        ("USD", "withdrawal", Decimal(0), Decimal(-250), None),
    ]
    assert rows(text)[0]["note"] == "ACATS In Charles Schwab ****1234; market value 1600 USD (not the cost basis)"


def test_bad_transfers() -> None:
    text = TRANSFERS + (
        "Transfers,Data,Stocks,USD,MSFT,2025-04-01,ACATS,Sideways,Charles Schwab,****1234,4,--,1600,0,0,\n"
        "Transfers,Data,Stocks,USD,MSFT,2025-04-01,ACATS,In,Charles Schwab,****1234,-4,--,1600,0,0,\n"
    )
    assert errors(text) == [
        "stmt.csv:2: Direction 'Sideways' is not In or Out",
        "stmt.csv:3: Qty '-4' has the wrong sign for Direction 'In'",
    ]


# -- closed lots and reconcile -----------------------------------------------------------------


def test_closed_lots_frame() -> None:
    frame = closed_lots(source(TITLE + TRADES + BUY + SELL + LOTS))
    assert frame.schema == pl.Schema(BROKER_SCHEMA)
    assert frame.to_dicts() == [
        {"symbol": "VTI", "quantity": Decimal(10), "acquired": dt.date(2024, 6, 2), "sold": dt.date(2025, 6, 2),
         "proceeds": Decimal(2704), "basis": Decimal(2502), "adjustment": Decimal(0), "term": "short",
         "source": "stmt.csv:6"},  # sold on the anniversary: short
        {"symbol": "VTI", "quantity": Decimal(2), "acquired": dt.date(2024, 6, 3), "sold": dt.date(2025, 6, 2),
         "proceeds": Decimal("540.8"), "basis": Decimal("520.4"), "adjustment": Decimal(0), "term": "short",
         "source": "stmt.csv:7"},
    ]
    old = LOTS.replace("2024-06-02", "2024-06-01")
    assert closed_lots(source(TITLE + TRADES + SELL + old))["term"].to_list() == ["long", "short"]


def test_closed_lots_errors() -> None:
    with pytest.raises(RowErrors) as caught:
        closed_lots(source(TITLE + TRADES + LOTS.replace(",10,250.2", ",-10,250.2")))
    assert [str(e) for e in caught.value.errors] == [
        "stmt.csv:4: ClosedLot row has no trade of its symbol before it "
        "(expected it after the Order or Trade row that closed the lot)",
        "stmt.csv:5: ClosedLot row has no trade of its symbol before it "
        "(expected it after the Order or Trade row that closed the lot)",
    ]
    with pytest.raises(RowErrors) as caught:
        closed_lots(source(TITLE + TRADES + SELL + LOTS.replace(",10,250.2", ",-10,250.2")))
    assert str(caught.value.errors[0]).startswith("stmt.csv:5: Quantity '-10' is negative: closed lots of short sales")
    with pytest.raises(FileError, match="has no ClosedLot rows"):
        closed_lots(source(TITLE + TRADES + BUY))
    with pytest.raises(FileError, match="is not an IBKR Activity Statement"):
        closed_lots(source("symbol,date_sold,proceeds,cost_basis\n"))


def test_read_broker_detects_the_statement(tmp_path: Path) -> None:
    path = write(tmp_path, "stmt.csv", TITLE + TRADES + BUY + SELL + LOTS)
    assert read_broker(path)["source"].to_list() == [f"{path}:6", f"{path}:7"]


def test_reconcile_cli_compares_against_the_closed_lots(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    buys = (
        'Trades,Data,Order,Stocks,USD,VTI,"2024-06-03, 09:31:42",10,250.1,250.5,-2501,-1,2502,0,4,O\n'
        'Trades,Data,Order,Stocks,USD,VTI,"2024-06-04, 10:00:00",5,260,261,-1300,-1,1301,0,5,O\n'
    )
    lots = LOTS.replace("2024-06-02", "2024-06-03").replace("2024-06-03,2,", "2024-06-04,2,")
    write(tmp_path, "stmt.csv", TITLE + TRADES + buys + SELL + lots)
    assert run("ingest", "-q", "stmt.csv").exit_code == 0
    result = run("reconcile", "stmt.csv", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ["sold", "symbol", "quantity", "difference", "broker", "taxlens", "cause", "source"]
    ]
    assert "2 broker rows; no differences" in result.stderr
    # the broker matched the lots differently: taxlens (FIFO) shows the basis difference
    write(tmp_path, "other.csv", TITLE + TRADES + buys + SELL + lots.replace("2502,202", "2512,192"))
    result = run("reconcile", "other.csv", "--format", "csv")
    assert result.exit_code == 0, result.output
    [_, row] = list(csv.reader(io.StringIO(result.stdout)))
    assert row[:6] == ["2025-06-02", "VTI", "12", "basis", "3032.40", "3022.40"]


# -- fuzz --------------------------------------------------------------------------------------

STATEMENT = TITLE + TRADES + BUY + SELL + LOTS + CASH + TRANSFERS + (
    "Transfers,Data,Stocks,USD,MSFT,2025-04-01,ACATS,In,Charles Schwab,****1234,4,--,1600,0,0,\n"
)
CELL = st.sampled_from(["", "-", "--", "x", "1O", "-0", "1e999", "9" * 30, "0.0000000000000000001",
                        "2025-02-30", "9999-12-31, 23:59:59", "0001-01-01", "Total", "ClosedLot",
                        "Trade", "Forex", "Options", "Split 2 for 1", "In", "Out", '"', ",", "Header"])


@given(edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 20), CELL), min_size=1, max_size=6))
def test_mutated_statements_give_clean_results_or_taxlens_errors(edits: list[tuple[int, int, str]]) -> None:
    """Replace cells of a valid statement; the adapter and closed_lots() only ever return trades
    and file:line errors, or raise a TaxlensError."""
    lines = [next(csv.reader([line])) for line in STATEMENT.splitlines()]
    for row, col, value in edits:
        cells = lines[row % len(lines)]
        cells[col % len(cells)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(lines)
    src = source(out.getvalue(), "x.csv")
    try:
        result = ADAPTER.extract(src, Context())
        assert all(str(e).startswith("x.csv:") for e in result.errors)
        assert result.rows_read >= 0
    except TaxlensError:
        pass
    try:
        closed_lots(src)
    except TaxlensError:
        pass
