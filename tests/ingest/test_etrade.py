"""E*TRADE transaction history adapter: old and 2025+ layouts, reinvestments, options, errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taxlens.errors import FileError, TaxlensError
from taxlens.ingest import Context, Source, identify
from taxlens.ingest.base import Extracted
from taxlens.ingest.etrade import Etrade

OLD_PREAMBLE = "For Account:,####1234\n\n"
OLD = "TransactionDate,TransactionType,SecurityType,Symbol,Quantity,Amount,Price,Commission,Description"
NEW_PREAMBLE = (
    "All Transactions Activity Types\n\nAccount Activity for Individual Brokerage -1234 from 01/01/2026 to 03/31/2026\n\n"
    "Total:,-1297.52\n\n"
)
NEW = (
    "Activity/Trade Date,Transaction Date,Settlement Date,Activity Type,Description,Symbol,Cusip,Quantity #,Price $,"
    "Amount $,Commission,Category,Note"
)
FOOTER = '\n"The information provided is for informational purposes only and is not a substitute for your statements."\n'
SOLD = "04/05/23,Sold,EQ,AMZN,-2,202.19,101.1,0,AMAZON.COM INC"
BOUGHT = "01/05/26,01/05/26,01/06/26,Bought,APPLE INC,AAPL,037833100,5.0,250.00,-1250.00,0.0,--,--"


def source(text: str, name: str = "DownloadTxnHistory.csv") -> Source:
    return Source.from_bytes(name, text.encode())


def old(*rows: str, context: Context | None = None) -> Extracted:
    return Etrade().extract(source(OLD_PREAMBLE + "\n".join([OLD, *rows]) + "\n"), context or Context())


def new(*rows: str, context: Context | None = None) -> Extracted:
    return Etrade().extract(source(NEW_PREAMBLE + "\n".join([NEW, *rows]) + "\n" + FOOTER), context or Context())


def summary(extracted: Extracted) -> list[tuple[object, ...]]:
    return [(r["action"], r["symbol"], r["quantity"], r["amount"]) for r in extracted.trades.iter_rows(named=True)]


def test_identify_both_layouts() -> None:
    assert identify(source(OLD_PREAMBLE + OLD + "\n" + SOLD + "\n")).NAME == "etrade"
    assert identify(source(NEW_PREAMBLE + NEW + "\n" + BOUGHT + "\n")).NAME == "etrade"


@pytest.mark.parametrize(
    "text",
    [
        '"Date","Action","Symbol","Description","Quantity","Price","Fees & Comm","Amount"\n',
        "TransactionDate,TransactionType,Symbol\n",
        "\n".join(["x"] * 11) + "\n" + OLD + "\n",
    ],
)
def test_identify_rejects_other_files(text: str) -> None:
    assert not Etrade().identify(source(text))


def test_old_layout_trades_reinvestment_and_account() -> None:
    out = old(
        "04/04/23,Bought,EQ,AMZN,10,-1011.00,101.1,0.5,AMAZON.COM INC",
        SOLD,
        "05/15/23,Dividend,EQ,VTI,0,12.40,0,0,VANGUARD TOTAL",
        "05/15/23,Dividend,EQ,VTI,0.0578,-12.40,214.53,0,VANGUARD TOTAL REINVEST",
        "04/03/23,Online Transfer,,,0,5000,0,0,TRANSFER FROM CHECKING",
        "07/03/23,Transfer,EQ,MSFT,20,0,0,0,ACATS TRANSFER IN",
        "07/04/23,Transfer,EQ,MSFT,-5,0,0,0,ACATS TRANSFER OUT",
    )
    assert out.errors == [] and out.rows_read == 7
    assert summary(out) == [
        ("buy", "AMZN", Decimal(10), Decimal(-1011)),
        ("sell", "AMZN", Decimal(2), Decimal("202.19")),
        ("dividend", "VTI", Decimal(0), Decimal("12.4")),
        ("reinvest", "VTI", Decimal("0.0578"), Decimal("-12.4")),
        ("deposit", "USD", Decimal(0), Decimal(5000)),
        ("transfer_in", "MSFT", Decimal(20), None),
        ("transfer_out", "MSFT", Decimal(5), None),
    ]
    rows = list(out.trades.iter_rows(named=True))
    assert rows[0]["line"] == 4 and rows[0]["fee"] == Decimal("0.5") and rows[0]["account"] == "E*TRADE ####1234"
    assert rows[1]["trade_date"] == dt.date(2023, 4, 5)


def test_new_layout_preamble_dashes_footer_and_actions() -> None:
    out = new(
        BOUGHT,
        "01/20/26,01/20/26,01/21/26,Sold Short,GAMESTOP CORP CL A,GME,36467W109,-10.0,25.00,249.49,0.51,--,--",
        "01/27/26,01/27/26,01/28/26,Bought To Cover,GAMESTOP CORP CL A,GME,36467W109,10.0,22.00,-220.00,0.0,--,--",
        "02/14/26,02/14/26,02/14/26,Qualified Dividend,APPLE INC CASH DIV,AAPL,037833100,,,1.30,0.0,--,--",
        "02/28/26,02/28/26,02/28/26,Foreign Withholding,NESTLE TAX,NSRGY,641069406,,,-2.10,0.0,--,--",
        "03/02/26,03/02/26,03/02/26,Stock Split,APPLE INC 2 FOR 1 SPLIT,AAPL,037833100,5.0,,,0.0,--,--",
        "03/03/26,03/03/26,03/03/26,Cash In Lieu,APPLE INC CIL,AAPL,037833100,-0.5,,60.00,0.0,--,--",
        "03/31/26,03/31/26,03/31/26,Online Transfer,TRANSFER TO CHECKING,--,--,,,-76.30,0.0,--,--",
    )
    assert out.errors == [] and out.rows_read == 8
    assert summary(out) == [
        ("buy", "AAPL", Decimal(5), Decimal(-1250)),
        ("sell_short", "GME", Decimal(10), Decimal("249.49")),
        ("buy_to_cover", "GME", Decimal(10), Decimal(-220)),
        ("dividend", "AAPL", Decimal(0), Decimal("1.3")),
        ("withholding", "NSRGY", Decimal(0), Decimal("-2.1")),
        ("split_in", "AAPL", Decimal(5), None),
        ("cash_in_lieu", "AAPL", Decimal("0.5"), Decimal(60)),
        ("withdrawal", "USD", Decimal(0), Decimal("-76.3")),
    ]
    assert out.trades["account"][0] == "E*TRADE Individual Brokerage -1234"
    assert out.trades["fee"][1] == Decimal("0.51")


def test_account_override() -> None:
    assert old(SOLD, context=Context(account="Joint")).trades["account"].to_list() == ["Joint"]


def test_options_reorganisations_unknown_types_and_bad_cells_are_row_errors() -> None:
    out = new(
        "02/18/26,02/18/26,02/19/26,Sold Short,PUT  IWM    02/27/26   260.000,IWM,--,-1.0,2.13,212.49,0.51,--,--",
        "02/19/26,02/19/26,02/19/26,Reorganization,ACME CORP MERGER,ACME,--,-10.0,,,0.0,--,--",
        "02/20/26,02/20/26,02/20/26,Option Expired,CALL AAPL 03/20/26,AAPL,--,1.0,,,0.0,--,--",
        "02/21/26,02/21/26,02/21/26,Mystery,SOMETHING,--,--,,,1.00,0.0,--,--",
        "01/32/26,01/05/26,01/06/26,Bought,APPLE INC,AAPL,037833100,5.0,250.00,-1250.00,0.0,--,--",
        "01/06/26,01/06/26,01/07/26,Bought,APPLE INC,AAPL,037833100,--,250.00,-1250.00,0.0,--,--",
        "02/22/26,02/22/26,02/23/26,Sold,APPLE INC,AAPL",
    )
    got = [str(e) for e in out.errors]
    assert got == [
        "DownloadTxnHistory.csv:8: Activity Type 'Sold Short' on 'PUT  IWM    02/27/26   260.000': options are not "
        "supported by taxlens yet (enter the trades by hand)",
        "DownloadTxnHistory.csv:9: Activity Type 'Reorganization': needs a basis allocation the file doesn't give: "
        "enter it by hand (generic CSV or opening lots)",
        "DownloadTxnHistory.csv:10: Activity Type 'Option Expired': options are not supported by taxlens yet "
        "(enter the trades by hand)",
        got[3],
        "DownloadTxnHistory.csv:12: Activity/Trade Date '01/32/26' is not a date (expected MM/DD/YY such as 04/05/23)",
        "DownloadTxnHistory.csv:13: Quantity # '' is missing or zero (expected a signed number of shares such as 10 or -2)",
        "DownloadTxnHistory.csv:14: row has 6 fields (expected 13, as in the header)",
    ]
    assert got[3].startswith("DownloadTxnHistory.csv:11: Activity Type 'Mystery' is not handled by the etrade adapter")
    assert out.trades.height == 0


def test_old_layout_option_security_type_is_refused() -> None:
    out = old("04/05/23,Bought,OPTN,AAPL Jan 17 '25 $200 Call,1,-520,5.2,0.65,CALL AAPL")
    assert [str(e) for e in out.errors] == [
        "DownloadTxnHistory.csv:4: TransactionType 'Bought' on 'CALL AAPL': options are not supported by taxlens yet "
        "(enter the trades by hand)"
    ]


def test_missing_column_is_a_file_error() -> None:
    with pytest.raises(FileError, match="missing column 'Commission'"):
        Etrade().extract(source(OLD.replace(",Commission", "") + "\n"), Context())


CELL = st.one_of(
    st.sampled_from(["", "--", "-", "(1.00)", '="x"', "1e999", "0", "-0.000001", "99999999999999999999999",
                     "02/30/26", "Dividend", "Transfer", "Stock Split", "OPTN", "PUT X", "\n", '"']),
    st.text(max_size=12),
)
GOOD = [
    SOLD.split(","),
    "05/15/23,Dividend,EQ,VTI,0.0578,-12.40,214.53,0,VANGUARD TOTAL REINVEST".split(","),
    "07/03/23,Transfer,EQ,MSFT,20,0,0,0,ACATS TRANSFER IN".split(","),
]


@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 8), CELL), max_size=6))
def test_mutated_rows_give_trades_or_errors(edits: list[tuple[int, int, str]]) -> None:
    rows = [list(r) for r in GOOD]
    for i, column, value in edits:
        rows[i][column % len(rows[i])] = value
    text = OLD_PREAMBLE + OLD + "\n" + "\n".join(",".join(r) for r in rows) + FOOTER
    try:
        out = Etrade().extract(source(text, "x.csv"), Context())
    except TaxlensError:
        return
    assert all(str(e).startswith("x.csv:") for e in out.errors)
    assert out.trades.height + len(out.errors) <= out.rows_read
