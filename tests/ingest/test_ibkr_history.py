"""IBKR Transaction History report adapter: identification, each transaction type, quirks, bad rows.

The golden pairs in tests/golden/adapters/ibkr-history/ cover whole files; these tests pin the
rules one at a time. All reports here are synthesised in the formats.md §2d layout.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taxlens.errors import FileError, TaxlensError
from taxlens.ingest import ADAPTERS, Context, Extracted, Source, identify
from taxlens.ingest.ibkr_history import IbkrHistory

ADAPTER = IbkrHistory()
GOLDEN = Path(__file__).parents[1] / "golden" / "adapters"
TOP = (
    "Statement,Header,Field Name,Field Value\n"
    "Statement,Data,Title,Transaction History\n"
    'Statement,Data,Period,"January 1, 2025 - December 31, 2025"\n'
    "Summary,Header,Field Name,Field Value\n"
    "Summary,Data,Base Currency,USD\n"
)
HEADER = (
    "Transaction History,Header,Date,Account,Description,Transaction Type,Symbol,Quantity,Price,"
    "Gross Amount ,Commission,Net Amount\n"
)
FX_HEADER = (
    "Transaction History,Header,Date,Account,Description,Transaction Type,Symbol,Quantity,Price,"
    "Price Currency,Gross Amount ,Commission,Net Amount,Exchange Rate\n"
)
HEAD = TOP + HEADER  # rows start on line 7
BUY = "Transaction History,Data,2025-03-14,U1234567,VANGUARD TOTAL STOCK MKT ETF,Buy,VTI,10,250.1,-2501.0,-1.0,-2502.0\n"
SELL = "Transaction History,Data,2025-08-15,U1234567,VANGUARD TOTAL STOCK MKT ETF,Sell,VTI,-4.0,270.5,1082.0,-1.0,1081.0\n"


def source(text: str, name: str = "hist.csv") -> Source:
    return Source.from_bytes(name, text.encode())


def extract(text: str, context: Context | None = None) -> Extracted:
    return ADAPTER.extract(source(text), context or Context())


def rows(text: str, context: Context | None = None) -> list[dict[str, object]]:
    result = extract(text, context)
    assert not result.errors, [str(e) for e in result.errors]
    return result.trades.to_dicts()


def data(cells: str) -> str:
    return f"Transaction History,Data,{cells}\n"


def errors(text: str) -> list[str]:
    return [str(e) for e in extract(text).errors]


def test_registered_right_after_the_activity_statement() -> None:
    assert isinstance(ADAPTERS["ibkr-history"], IbkrHistory)
    names = list(ADAPTERS)
    assert names[names.index("ibkr-statement") + 1] == "ibkr-history"
    assert set(IbkrHistory.IGNORED) >= {"Forex Trade Component", "Adjustment (FX Translations P&L)"}


# -- identify ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        HEAD + BUY,
        HEADER + BUY,  # cut down to its Transaction History section
        "Statement,Header,Field Name,Field Value\nStatement,Data,Title,Transaction History\n",  # an empty period
        '"Statement","Header","Field Name","Field Value"\n"Transaction History","Header","Date","Account"\n',
        TOP + FX_HEADER,
    ],
    ids=["full", "section-only", "title-only", "quoted", "currency-variant"],
)
def test_identify_true(text: str) -> None:
    assert ADAPTER.identify(source(text))
    assert identify(source(text)).NAME == "ibkr-history"


@pytest.mark.parametrize(
    "text",
    [
        "Statement,Header,Field Name,Field Value\nStatement,Data,Title,Activity Statement\n"
        "Trades,Header,DataDiscriminator,Asset Category,Currency,Symbol,Date/Time,Quantity,T. Price\n",
        '"Buy/Sell","TradeDate","Quantity","TradePrice"\n"BUY","20230522","95","93.78"\n',
        "date,account,symbol,side,quantity,price\n2025-01-02,A,VTI,buy,1,2\n",
        "Transaction History,Data,2025-03-14,U1,X,Buy,VTI,1,1,-1,-,-1\n" + HEADER,  # the first line is not a Header
        "UTC_Time,Account,Operation,Coin,Change,Remark\n",  # Binance's "Transaction History" statement
    ],
    ids=["activity-statement", "flex", "generic", "data-first", "binance"],
)
def test_identify_false(text: str) -> None:
    assert not ADAPTER.identify(source(text))


@pytest.mark.parametrize("folder", ["ibkr-statement", "ibkr-flex"])
def test_the_other_ibkr_golden_files_are_not_claimed(folder: str) -> None:
    for path in sorted((GOLDEN / folder).glob("*")):
        if not path.name.endswith((".trades.csv", ".log.txt", ".md")):
            assert not ADAPTER.identify(Source.read(path)), path.name


def test_the_activity_statement_does_not_claim_these_files() -> None:
    for path in sorted((GOLDEN / "ibkr-history").glob("*.csv")):
        if not path.name.endswith(".trades.csv"):
            assert identify(Source.read(path)).NAME == "ibkr-history", path.name


@pytest.mark.parametrize(
    "text",
    [
        "date,account,symbol,side,quantity,price\n",
        "Statement,Header,Field Name,Field Value\nStatement,Data,Title,Activity Statement\n"
        "Trades,Header,DataDiscriminator,Asset Category\n",
    ],
    ids=["not-sectioned", "activity-statement"],
)
def test_extract_refuses_another_layout(text: str) -> None:
    with pytest.raises(FileError, match="is not an IBKR Transaction History report"):
        extract(text)


def test_a_header_without_a_needed_column_is_a_file_error() -> None:
    header = "Transaction History,Header,Date,Account,Description,Transaction Type,Symbol,Quantity,Price,Net Amount\n"
    with pytest.raises(FileError, match=r"^hist\.csv:6: missing column 'Commission'"):
        extract(TOP + header)


# -- quirks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("gross", ["Gross Amount ", "Gross Amount"])
def test_the_trailing_space_header_and_without_it(gross: str) -> None:
    header = HEADER.replace("Gross Amount ", gross)
    [buy] = rows(TOP + header + BUY)
    assert buy["amount"] == Decimal("-2502.0")


def test_dash_means_no_value() -> None:
    no_commission = data("2025-03-14,U1,VTI,Buy,VTI,5,250.2,-1251.0,-,-1251.0")
    interest = data("2025-02-01,-,USD Credit Interest,Credit Interest,-,-,-,13.0,-,13.0")
    buy, cash = rows(HEAD + no_commission + interest)
    assert buy["fee"] == 0 and buy["amount"] == Decimal("-1251.0")
    assert cash["symbol"] == "USD" and cash["asset_class"] == "cash"
    assert cash["account"] == "IBKR"  # Account '-' falls back to the default
    assert cash["quantity"] == 0 and cash["price"] is None


def test_dates_only_no_instant() -> None:
    [buy] = rows(HEAD + BUY)
    assert buy["ts"] is None and buy["trade_date"] == dt.date(2025, 3, 14)


def test_account_column_and_context_override() -> None:
    assert rows(HEAD + BUY)[0]["account"] == "U1234567"
    assert rows(HEAD + BUY, Context(account="Main"))[0]["account"] == "Main"


def test_base_currency_is_the_currency_and_missing_base_warns() -> None:
    gbp = TOP.replace("Base Currency,USD", "Base Currency,GBP") + HEADER
    [buy] = rows(gbp + BUY)
    assert buy["currency"] == buy["fee_currency"] == "GBP"
    result = extract(HEADER + BUY)
    assert result.trades["currency"].to_list() == ["USD"]
    assert result.warnings == ["no 'Summary,Data,Base Currency' line: amounts taken as USD"]
    with pytest.raises(FileError, match=r"^hist\.csv:5: Summary Base Currency '£' is not a currency code"):
        extract(TOP.replace("Base Currency,USD", "Base Currency,£") + HEADER)


def test_statement_and_summary_rows_are_counted_under_their_names() -> None:
    result = extract(HEAD + BUY)
    assert result.rows_read == 4 and result.ignored == {"Statement": 2, "Summary": 1}


# -- each transaction type ---------------------------------------------------------------------


def test_buy_and_sell_with_signed_quantity_and_net_cash() -> None:
    buy, sell = rows(HEAD + BUY + SELL)
    assert (buy["action"], buy["quantity"], buy["price"], buy["fee"], buy["amount"]) == (
        "buy", Decimal(10), Decimal("250.1"), Decimal(1), Decimal("-2502.0"))
    assert (sell["action"], sell["quantity"], sell["fee"], sell["amount"]) == (
        "sell", Decimal(4), Decimal(1), Decimal("1081.0"))
    assert buy["symbol"] == "VTI" and buy["asset_class"] == "equity" and buy["note"] == "VANGUARD TOTAL STOCK MKT ETF"


def test_a_commission_credit_is_a_negative_fee() -> None:
    [buy] = rows(HEAD + data("2025-03-14,U1,X,Buy,VTI,1,250,-250,0.5,-249.5"))
    assert buy["fee"] == Decimal("-0.5") and "is a credit" in str(buy["note"])


@pytest.mark.parametrize(
    ("kind", "cells", "action", "symbol", "amount"),
    [
        ("Dividend", "VT(US9220427424) Cash Dividend USD 0.50 per Share,Dividend,VT,-,-,20.0,-,20.0",
         "dividend", "VT", "20.0"),
        ("Payment in Lieu", "IBKR(US45841N1072) Payment in Lieu of Dividend,Payment in Lieu,IBKR,-,-,1.0,-,1.0",
         "dividend", "IBKR", "1.0"),
        ("Foreign Tax Withholding", "VT(US9220427424) Cash Dividend - US Tax,Foreign Tax Withholding,VT,-,-,-3.0,-,-3.0",
         "withholding", "VT", "-3.0"),
        ("Credit Interest", "USD Credit Interest for Feb-2025,Credit Interest,-,-,-,13.0,-,13.0",
         "interest", "USD", "13.0"),
        ("Deposit", "Electronic Fund Transfer,Deposit,-,-,-,5000.0,-,5000.0", "deposit", "USD", "5000.0"),
        ("Withdrawal", "Electronic Fund Transfer,Withdrawal,-,-,-,-500.0,-,-500.0", "withdrawal", "USD", "-500.0"),
        ("Other Fee", "MARKET DATA,Other Fee,-,-,-,-10.0,-,-10.0", "fee", "USD", "-10.0"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " not in v and len(v) < 30 else None,
)
def test_cash_types(kind: str, cells: str, action: str, symbol: str, amount: str) -> None:
    [row] = rows(HEAD + data(f"2025-02-01,U1,{cells}"))
    assert (row["action"], row["symbol"], row["amount"], row["currency"]) == (action, symbol, Decimal(amount), "USD")
    assert str(row["note"]).startswith(f"{kind}: ")
    assert row["fee"] == (Decimal(10) if action == "fee" else 0)


def test_dividend_security_from_the_description_and_withholding_refund() -> None:
    dividend = data("2025-10-02,U1,ASML(USN070592100) Cash Dividend USD 1.60,Dividend,-,-,-,16.0,-,16.0")
    refund = data("2025-02-08,U1,CANCEL WITHHOLDING ON Credit Interest,Foreign Tax Withholding,-,-,-,3.9,-,3.9")
    div, back = rows(HEAD + dividend + refund)
    assert (div["symbol"], div["asset_class"]) == ("ASML", "equity")
    assert (back["action"], back["symbol"], back["asset_class"], back["amount"]) == (
        "withholding", "USD", "cash", Decimal("3.9"))


def test_forex_components_and_fx_translation_are_ignored() -> None:
    forex = data("2025-10-01,U1,Net Amount in Base from Forex Trade: 0.8 GBP.USD,Forex Trade Component,"
                 "GBP.USD,0.8,1.32,-2.637591265E-4,-,-2.637591265E-4")
    fx = data("2025-11-30,U1,FX Translations P&L,Adjustment,-,-,-,0.55,-,0.55")
    result = extract(HEAD + forex + fx)
    assert result.trades.height == 0 and not result.errors
    assert result.ignored["Forex Trade Component"] == 1
    assert result.ignored["Adjustment (FX Translations P&L)"] == 1


def test_currency_variant_records_the_trade_in_its_price_currency() -> None:
    gbp = TOP.replace("Base Currency,USD", "Base Currency,GBP")
    eur = data("2023-02-10,U1,ISHARES MSCI WORLD EUR-H,Buy,IWDE,217,67.71,EUR,-13009.5380394,-6.5047690197,"
               "-13016.0428084197,0.88542")
    local = data("2025-04-01,U1,VANGUARD FTSE ALL-WORLD,Buy,VWRL,10,109.32,GBP,-1093.2,-3.0,-1096.2,1")
    dividend = data("2025-09-30,U1,VT(US9220427424) Cash Dividend USD 0.50,Dividend,VT,-,-,USD,7.51,-,7.51,0.7512")
    foreign, home, div = rows(gbp + FX_HEADER + eur + local + dividend)
    assert (foreign["currency"], foreign["price"], foreign["fee"], foreign["fee_currency"], foreign["amount"]) == (
        "EUR", Decimal("67.71"), Decimal("6.5047690197"), "GBP", None)
    assert "Net Amount -13016.0428084197 GBP at Exchange Rate 0.88542 EUR→GBP" in str(foreign["note"])
    assert (home["currency"], home["amount"]) == ("GBP", Decimal("-1096.2"))
    assert (div["currency"], div["amount"]) == ("GBP", Decimal("7.51"))  # amounts are in the base currency


# -- bad rows ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ("2025-03-15,U1,SPIN-OFF,Corporate Action,XYZ,5,-,-,-,-",
         "Transaction Type 'Corporate Action' is not known (expected one of Buy, Sell, Dividend, Payment in Lieu, "
         "Foreign Tax Withholding, Credit Interest, Other Fee, Deposit, Withdrawal, Forex Trade Component, Adjustment)"),
        ("2025-03-15,U1,X,-,VTI,1,1,-1,-,-1", "Transaction Type '' is missing (expected one of Buy,"),
        ("-,U1,X,Buy,VTI,1,250,-250,-1,-251", "Date '' is missing (expected a date such as 2025-03-14"),
        ("14/03/2025x,U1,X,Buy,VTI,1,250,-250,-1,-251", "Date '14/03/2025x' is not a date"),
        ('"2025-03-16, 09:30:00",U1,X,Buy,VTI,1,250,-250,-1,-251',
         "Date '2025-03-16, 09:30:00' is not a date (expected a date such as 2025-03-14; this report gives dates without times)"),
        ("2025-03-14,U1,X,Buy,VTI,-,250,-250,-1,-251", "Quantity '' is missing (expected a signed quantity"),
        ("2025-03-14,U1,X,Buy,VTI,0,250,0,-1,-1", "Quantity '0' is zero"),
        ("2025-03-14,U1,X,Sell,VTI,3,250,750,-1,749", "Quantity '3' is positive on a Sell row (expected a negative quantity)"),
        ("2025-03-14,U1,X,Buy,VTI,-3,250,750,-1,749", "Quantity '-3' is negative on a Buy row (expected a positive quantity)"),
        ("2025-03-14,U1,X,Buy,VTI,1,n/a,-250,-1,-251", "Price 'n/a' is not a number (expected a price such as 187.40)"),
        ("2025-03-14,U1,X,Buy,VTI,1,-250,250,-1,249", "Price '-250' is negative (expected 0 or more)"),
        ("2025-03-14,U1,X,Buy,VTI,1,-,-250,-1,-251", "Price '' is missing"),
        ("2025-03-14,U1,X,Buy,VTI,1,250,-250,lots,-251", "Commission 'lots' is not a number"),
        ("2025-03-14,U1,X,Buy,-,1,250,-250,-1,-251", "Symbol '' is missing (expected the ticker traded)"),
        ("2025-03-14,U1,X,Buy,AAPL 17JAN25 150 C,1,5.2,-520,-0.65,-520.65",
         "Symbol 'AAPL 17JAN25 150 C' looks like an option, which is not supported yet"),
        ("2025-03-14,U1,X,Buy,AAPL  250117C00150000,1,5.2,-520,-0.65,-520.65",
         "Symbol 'AAPL  250117C00150000' looks like an option"),
        ("2025-03-23,U1,Cash Balance Correction,Adjustment,-,-,-,12.5,-,12.5",
         "Description 'Cash Balance Correction' is an Adjustment taxlens does not read (expected FX Translations P&L"),
        ("2025-03-24,U1,EFT,Deposit,-,-,-,-100.0,-,-100.0", "Net Amount '-100.0' is negative on a Deposit row (expected a positive amount)"),
        ("2025-03-24,U1,EFT,Withdrawal,-,-,-,100.0,-,100.0", "Net Amount '100.0' is positive on a Withdrawal row (expected a negative amount)"),
        ("2025-03-25,U1,VTI(US9229087690) Cash Dividend,Dividend,VTI,-,-,12.0,-,-", "Net Amount '' is missing"),
        ("2025-03-14,U1,X,Buy,VTI,1,250,-250,-1,-251,extra", "row has 11 fields after 'Transaction History,Data' (expected 10, as in the Header)"),
        ("2025-03-14,U1,X,Buy,VTI,1,250,-250", "row has 8 fields after 'Transaction History,Data' (expected 10"),
        ("2025-03-14,U1,X,Buy,VTI,0.0000000000000000001,250,-250,-1,-251", "Quantity '0.0000000000000000001' has more than 18 decimal places"),
        ("2025-03-14,U1,X,Buy,VTI,1,250,-250,-1,1e25",
         "Net Amount '1e25' is too large (expected at most 20 digits before the decimal point)"),
    ],
)
def test_bad_rows_name_file_line_and_value(cells: str, message: str) -> None:
    assert len(errors(HEAD + BUY + data(cells))) == 1
    [error] = errors(HEAD + BUY + data(cells))
    assert error.startswith(f"hist.csv:8: {message}"), error
    assert extract(HEAD + BUY + data(cells)).trades.height == 1  # the good row is still read


def test_currency_variant_bad_price_currency() -> None:
    cells = "2025-03-14,U1,X,Buy,VTI,1,250,€,-250,-1,-251,1"
    assert errors(TOP + FX_HEADER + data(cells)) == [
        "hist.csv:7: Price Currency '€' is not a currency code (expected e.g. USD, EUR or GBP)"]


def test_data_before_header_and_unknown_line_types_are_row_errors() -> None:
    text = "Statement,Header,Field Name,Field Value\n" + BUY + HEADER + BUY + "Transaction History,Trailer,x\n"
    assert errors(text) == [
        "hist.csv:2: Transaction History Data row comes before its Header row (expected the Header first)",
        "hist.csv:5: line type 'Trailer' is not known (expected <Section>,Header|Data,… as in a Transaction History report)",
    ]


def test_the_sample_layout_reads_cleanly() -> None:
    """The rows quoted in formats.md §2d."""
    text = HEAD + data("2025-08-15,U***00000,ISHARES NASDAQ 100 USD ACC,Sell,CNX1,-2.0,1001.00,2002.0,-3.0,1999.0") + data(
        "2025-11-03,U***00000,VT(US9220427424) Cash Dividend - US Tax,Foreign Tax Withholding,VT,-,-,-3.0,-,-3.0")
    sell, tax = rows(text)
    assert (sell["action"], sell["quantity"], sell["amount"]) == ("sell", Decimal(2), Decimal(1999))
    assert (tax["action"], tax["symbol"], tax["amount"]) == ("withholding", "VT", Decimal(-3))


# -- fuzz --------------------------------------------------------------------------------------

REPORT = (GOLDEN / "ibkr-history" / "history_fx.csv").read_text() + HEADER + "".join(
    line for line in (GOLDEN / "ibkr-history" / "history.csv").read_text().splitlines(keepends=True)
    if line.startswith("Transaction History,Data")
)
CELL = st.one_of(
    st.sampled_from(["", "-", "--", "Buy", "Sell", "Adjustment", "Forex Trade Component", "Dividend", "Deposit",
                     "Withdrawal", "Other Fee", "0", "-0", "1e999", "NaN", "2025-02-30", "USD", "eur", "Header",
                     "Data", "Total", "Transaction History", "Base Currency", "AAPL 17JAN25 150 C"]),
    st.text(max_size=12),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
)


@given(edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 20), CELL), min_size=1, max_size=6))
def test_mutated_reports_give_clean_results_or_taxlens_errors(edits: list[tuple[int, int, str]]) -> None:
    """Replace cells of a valid report; the adapter only ever returns trades and file:line
    errors, or raises a TaxlensError."""
    lines = [next(csv.reader([line])) for line in REPORT.splitlines()]
    for row, col, value in edits:
        cells = lines[row % len(lines)]
        cells[col % len(cells)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(lines)
    try:
        result = ADAPTER.extract(source(out.getvalue(), "x.csv"), Context())
    except TaxlensError:
        return
    assert all(str(e).startswith("x.csv:") for e in result.errors)
    assert result.trades.height + sum(result.ignored.values()) <= result.rows_read
