"""Fidelity account history CSV adapter: five layouts, framing, actions, corporate actions, errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taxlens.errors import FileError, TaxlensError
from taxlens.ingest import Context, Source, identify
from taxlens.ingest.base import Extracted
from taxlens.ingest.fidelity import Fidelity

CLASSIC = (
    "Run Date,Action,Symbol,Security Description,Security Type,Quantity,Price ($),Commission ($),Fees ($),"
    "Accrued Interest ($),Amount ($),Settlement Date"
)
WITH_ACCOUNT = (
    "Run Date,Account,Action,Symbol,Security Description,Security Type,Quantity,Price ($),Commission ($),"
    "Fees ($),Accrued Interest ($),Amount ($),Settlement Date"
)
CASH_MGMT = (
    "Run Date,Action,Symbol,Description,Type,Quantity,Price ($),Commission ($),Fees ($),Accrued Interest ($),"
    "Amount ($),Cash Balance ($),Settlement Date"
)
INTERNATIONAL = (
    "Run Date,Account,Action,Symbol,Security Description,Security Type,Exchange Quantity,Exchange Currency,"
    "Quantity,Currency,Price,Exchange Rate,Commission,Fees,Accrued Interest,Amount,Settlement Date"
)
ALL_2025 = (
    "Run Date,Account,Account Number,Action,Symbol,Description,Type,Exchange Quantity,Exchange Currency,"
    "Currency,Price,Quantity,Exchange Rate,Commission,Fees,Accrued Interest,Amount,Settlement Date"
)
BUY = "01/03/2024,YOU BOUGHT APPLE INC (AAPL) (Cash),AAPL,APPLE INC,Cash,10,185.00,,,,-1850.00,01/04/2024"


def source(text: str, name: str = "fidelity.csv") -> Source:
    return Source.from_bytes(name, text.encode())


def extract(*rows: str, header: str = CLASSIC, before: str = "", after: str = "", name: str = "fidelity.csv",
            context: Context | None = None) -> Extracted:
    text = before + "\n".join([header, *rows]) + "\n" + after
    return Fidelity().extract(source(text, name), context or Context())


def messages(extracted: Extracted) -> list[str]:
    return [str(e) for e in extracted.errors]


def summary(extracted: Extracted) -> list[tuple[object, ...]]:
    return [(r["action"], r["symbol"], r["quantity"], r["amount"]) for r in extracted.trades.iter_rows(named=True)]


# -- identify --------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [CLASSIC, WITH_ACCOUNT, CASH_MGMT, INTERNATIONAL, ALL_2025])
def test_identify_every_layout(header: str) -> None:
    assert identify(source(",,,,,,\r\n" * 5 + header + "\r\n" + BUY + "\r\n")).NAME == "fidelity"


@pytest.mark.parametrize(
    "text",
    [
        '"Date","Action","Symbol","Description","Quantity","Price","Fees & Comm","Amount"\n',
        '"Activity Date","Process Date","Settle Date","Instrument","Description","Trans Code","Quantity","Price","Amount"\n',
        "Date,Action,Symbol,Quantity\n",
        "\n".join(["x"] * 11) + "\n" + CLASSIC + "\n",  # the header must be among the first 10 lines
    ],
)
def test_identify_rejects_other_files(text: str) -> None:
    assert not Fidelity().identify(source(text))


# -- layouts and framing ---------------------------------------------------------------------


def test_classic_layout_with_leading_blank_rows_crlf_spaces_and_disclaimer() -> None:
    text = (
        ",,,,,,,,,,,\r\n" * 5 + CLASSIC + "\r\n"
        + " 02/15/2024, YOU SOLD APPLE INC (AAPL) (Cash), AAPL, APPLE INC,Cash,-5,182.40,0,0.03,,911.97,02/16/2024\r\n"
        + "\r\n\r\n"
        + '"The data and information in this spreadsheet is provided to you solely for your use, not for tax reporting."\r\n'
        + '"Date downloaded 02/20/2024 9:00 am"\r\n'
    )
    out = Fidelity().extract(source(text, "History_for_Account_X12345678.csv"), Context())
    assert out.errors == [] and out.rows_read == 1
    (row,) = out.trades.iter_rows(named=True)
    assert row["line"] == 7 and row["account"] == "Fidelity X12345678"
    assert (row["action"], row["symbol"], row["quantity"], row["price"], row["fee"], row["amount"]) == (
        "sell", "AAPL", Decimal(5), Decimal("182.4"), Decimal("0.03"), Decimal("911.97"),
    )
    assert row["trade_date"] == dt.date(2024, 2, 15) and row["ts"] is None


def test_2025_all_accounts_layout_names_each_account_and_skips_footer() -> None:
    out = extract(
        '11/17/2025,"Brokerage","333333333","YOU BOUGHT WASTE MANAGEMENT INC (WM) (Margin)",WM,"WASTE MANAGEMENT INC",'
        "Margin,0,,USD,208.64,18,0,,,,-3755.44,11/18/2025",
        '12/03/2025,"Roth IRA","444444444","REINVESTMENT VANGUARD MUN BD FDS TAX EXEMPT BD (VTEB) (Cash)",VTEB,'
        '"VANGUARD MUN BD",Cash,0,,USD,50.21,73.459,0,,,,-3688.33,',
        header=ALL_2025, after="\n\n\n\n\n\"Date downloaded 12/04/2025 9:00 am\"\n",
    )
    assert out.errors == []
    assert out.trades["account"].to_list() == ["Fidelity 333333333", "Fidelity 444444444"]
    assert summary(out) == [
        ("buy", "WM", Decimal(18), Decimal("-3755.44")),
        ("reinvest", "VTEB", Decimal("73.459"), Decimal("-3688.33")),
    ]


def test_international_and_cash_management_layouts_map_by_name() -> None:
    intl = extract(
        '09/03/2024,"Individual X98765432","YOU BOUGHT NESTLE SA (NSRGY) (Cash)",NSRGY,"NESTLE",Cash,0,,12,USD,101.25,0,1.00,,,-1216.00,09/04/2024',
        header=INTERNATIONAL,
    )
    assert summary(intl) == [("buy", "NSRGY", Decimal(12), Decimal(-1216))]
    assert intl.trades["fee"].to_list() == [Decimal(1)]
    assert intl.trades["account"].to_list() == ["Fidelity Individual X98765432"]
    cash = extract('07/01/2024,"ELECTRONIC FUNDS TRANSFER RECEIVED (Cash)", ,"No Description",Cash,0.000,,,,,5000.00,5000.00,',
                   header=CASH_MGMT)
    assert summary(cash) == [("deposit", "USD", Decimal(0), Decimal(5000))]


def test_account_override() -> None:
    out = extract(BUY, header=CLASSIC, name="History_for_Account_X1.csv", context=Context(account="Joint"))
    assert out.trades["account"].to_list() == ["Joint"]


# -- actions ---------------------------------------------------------------------------------


def test_income_cash_moves_and_core_sweeps() -> None:
    out = extract(
        "03/28/2024,DIVIDEND RECEIVED VANGUARD TOTAL (VTI) (Cash),VTI,VANGUARD,Cash,,,,,,8.91,",
        "03/28/2024,REINVESTMENT VANGUARD TOTAL (VTI) (Cash),VTI,VANGUARD,Cash,0.035,254.57,,,,-8.91,",
        "03/29/2024,REINVESTMENT FIDELITY GOVERNMENT MONEY MARKET (SPAXX) (Cash),SPAXX,FIDELITY GOVT MM,Cash,1.27,1,,,,-1.27,",
        "04/03/2024,PURCHASE INTO CORE ACCOUNT FIDELITY GOVERNMENT MONEY MARKET (SPAXX) (Cash),SPAXX,FIDELITY GOVT MM,Cash,2149.75,1,,,,-2149.75,",
        "04/02/2024, DIRECT DEBIT CREDIT CARD PAYMENT (Cash),  ,No Description,Cash,,,,,,-350.25,",
        "05/10/2024,FOREIGN TAX PAID ISHARES INTL (IXUS) (Cash),IXUS,ISHARES,Cash,,,,,,-0.84,",
        "05/11/2024,MARGIN INTEREST CHARGED (Margin),,No Description,Margin,,,,,,-4.12,",
        "05/12/2024,INTEREST EARNED FDIC INSURED DEPOSIT (QPRMQ) (Cash),QPRMQ,FDIC,Cash,,,,,,0.42,",
    )
    assert out.errors == []
    assert summary(out) == [
        ("dividend", "VTI", Decimal(0), Decimal("8.91")),
        ("reinvest", "VTI", Decimal("0.035"), Decimal("-8.91")),
        ("withdrawal", "USD", Decimal(0), Decimal("-350.25")),
        ("withholding", "IXUS", Decimal(0), Decimal("-0.84")),
        ("fee", "USD", Decimal(0), Decimal("-4.12")),
        ("interest", "QPRMQ", Decimal(0), Decimal("0.42")),
    ]
    assert out.ignored == {"REINVESTMENT (core money market fund)": 1, "PURCHASE INTO CORE ACCOUNT": 1}
    assert out.rows_read == 8


def test_short_sale_cover_transfers_and_redemption() -> None:
    out = extract(
        '02/20/2024,"Ind","YOU SOLD SHORT SALE GAMESTOP (GME) (Short)",GME,"GAMESTOP",Short,-10,14.50,0,0.01,,144.99,02/21/2024',
        '02/27/2024,"Ind","YOU BOUGHT SHORT COVER GAMESTOP (GME) (Short)",GME,"GAMESTOP",Short,10,13.20,0,,,-132.00,02/28/2024',
        '02/05/2024,"Ind","TRANSFER OF ASSETS ACAT RECEIVE (Cash)",KO,"COCA COLA CO",Cash,15,,,,,,',
        '02/06/2024,"Ind","TRANSFERRED TO VS X999 (Cash)",KO,"COCA COLA CO",Cash,-5,,,,,,',
        '02/07/2024,"Ind","TRANSFERRED FROM VS Z1 TO X2 (Cash)",,"No Description",Cash,,,,,,1000,',
        '12/01/2025,"Ind","REDEMPTION PAYOUT US TREAS BILLS (912797GK7) (Cash)",912797GK7,"US T-BILL",Cash,-25000,1,,,,25000.00,',
        header=WITH_ACCOUNT,
    )
    assert out.errors == []
    assert summary(out) == [
        ("sell_short", "GME", Decimal(10), Decimal("144.99")),
        ("buy_to_cover", "GME", Decimal(10), Decimal(-132)),
        ("transfer_in", "KO", Decimal(15), None),
        ("transfer_out", "KO", Decimal(5), None),
        ("deposit", "USD", Decimal(0), Decimal(1000)),
        ("sell", "912797GK7", Decimal(25000), Decimal(25000)),
    ]
    assert out.trades["note"][2] == "basis unknown"
    assert out.trades["asset_class"][5] == "bond"


def test_splits_reverse_split_pair_and_cash_in_lieu() -> None:
    out = extract(
        "06/10/2024,STOCK SPLIT NVIDIA CORP (NVDA) (Cash),NVDA,NVIDIA CORP,Cash,90,,,,,,",
        "12/02/2025,REVERSE SPLIT R/S FROM 12345X105#REOR M005 (Cash),12345X105,ACME CORP,Shares,-100,,,,,,",
        "12/02/2025,REVERSE SPLIT R/S TO 12345X204#REOR M005 (Cash),ACME,ACME CORP NEW,Shares,10,,,,,,",
        "06/11/2024,IN LIEU OF FRX SHARE NVIDIA CORP (NVDA) (Cash),NVDA,NVIDIA CORP,Cash,-0.4,,,,,48.60,",
    )
    assert out.errors == []
    assert summary(out) == [
        ("split_in", "NVDA", Decimal(90), None),
        ("split_out", "12345X105", Decimal(100), None),
        ("split_in", "ACME", Decimal(10), None),
        ("cash_in_lieu", "NVDA", Decimal("0.4"), Decimal("48.6")),
    ]


def test_corporate_actions_options_and_unknown_actions_are_row_errors() -> None:
    out = extract(
        "01/09/2024,MERGER MER FROM 123456789 (Cash),NEWCO,NEWCO INC,Shares,25,,,,,,",
        "01/10/2024,DISTRIBUTION SPINCO INC (SPNC) (Cash),SPNC,SPINCO INC,Cash,12,,,,,,",
        "01/11/2024,YOU BOUGHT OPENING TRANSACTION CALL (AAPL) (Cash),-AAPL250117C200,CALL,Cash,1,5.20,,,,-520.00,",
        "01/12/2024,YOU BOUGHT PUT (AAPL) (Cash),-AAPL250117P150,PUT,Cash,1,2.00,,,,-200.00,",
        "01/13/2024,ASSET ROLLOVER (Cash),,No Description,Cash,,,,,,100.00,",
        "01/14/2024,,AAPL,APPLE INC,Cash,1,1,,,,-1,",
    )
    got = messages(out)
    assert got[0] == (
        "fidelity.csv:2: Action 'MERGER MER FROM 123456789 (Cash)': needs a basis allocation the file doesn't give: "
        "enter it by hand (as trades in the generic CSV, or opening lots)"
    )
    assert got[1].startswith("fidelity.csv:3: Action 'DISTRIBUTION SPINCO INC (SPNC) (Cash)': a distribution of shares may be")
    assert got[2].startswith("fidelity.csv:4: Action 'YOU BOUGHT OPENING TRANSACTION CALL (AAPL) (Cash)': options are not supported")
    assert got[3].startswith("fidelity.csv:5: Symbol '-AAPL250117P150' is an option")
    assert got[4].startswith("fidelity.csv:6: Action 'ASSET ROLLOVER (Cash)' is not handled by the fidelity adapter (expected text starting with one of YOU BOUGHT SHORT COVER,")
    assert got[5].startswith("fidelity.csv:7: Action '' is missing")
    assert out.trades.height == 0


def test_bad_cells_and_short_rows_point_at_the_line() -> None:
    out = extract(
        BUY,
        "13/45/2024,YOU BOUGHT APPLE INC (AAPL) (Cash),AAPL,APPLE INC,Cash,10,185.00,,,,-1850.00,",
        "01/05/2024,YOU BOUGHT APPLE INC (AAPL) (Cash),AAPL,APPLE INC,Cash,1O,185.00,,,,-1850.00,",
        "01/12/2024,YOU SOLD APPLE INC (AAPL) (Cash),AAPL,APPLE INC,Cash,-5",
        "01/16/2024,YOU SOLD APPLE INC (AAPL) (Cash),AAPL,APPLE INC,Cash,-5,190.00,,,,,",
    )
    assert messages(out) == [
        "fidelity.csv:3: Run Date '13/45/2024' is not a date (expected MM/DD/YYYY such as 11/17/2025)",
        "fidelity.csv:4: Quantity '1O' is not a number (expected a number of shares such as 18 or -341)",
        "fidelity.csv:5: row has 6 fields (expected 12, as in the header)",
        "fidelity.csv:6: Amount ($) '' is missing (expected an amount such as -3755.44)",
    ]
    assert out.trades.height == 1 and out.rows_read == 5


def test_excel_escaped_cells_are_unwrapped() -> None:
    out = extract('01/03/2024,YOU BOUGHT APPLE INC (AAPL) (Cash),="AAPL",APPLE INC,Cash,="10",185.00,,,,-1850.00,')
    assert summary(out) == [("buy", "AAPL", Decimal(10), Decimal(-1850))]


def test_no_header_or_missing_column_is_a_file_error() -> None:
    with pytest.raises(FileError, match="no Fidelity header"):
        Fidelity().extract(source("a,b\n1,2\n"), Context())
    with pytest.raises(FileError, match="missing column 'Amount \\(\\$\\)'"):
        extract(header="Run Date,Action,Symbol,Quantity,Price ($)")


# -- fuzz ------------------------------------------------------------------------------------

GOOD = [
    BUY,
    "03/28/2024,DIVIDEND RECEIVED VANGUARD (VTI) (Cash),VTI,VANGUARD,Cash,,,,,,8.91,",
    "06/10/2024,STOCK SPLIT NVIDIA CORP (NVDA) (Cash),NVDA,NVIDIA CORP,Cash,90,,,,,,",
    "04/02/2024,DIRECT DEBIT (Cash),,No Description,Cash,,,,,,-350.25,",
]
CELL = st.one_of(
    st.sampled_from(["", "-", "($1.00)", '="x"', "1e999", "NaN", "0", "-0.000001", "99999999999999999999999",
                     "02/30/2024", "YOU SOLD", "MERGER", "\n", '"', "SPAXX", "-AAPL1"]),
    st.text(max_size=12),
)


@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 11), CELL), max_size=6))
def test_mutated_rows_give_trades_or_errors(edits: list[tuple[int, int, str]]) -> None:
    rows = [r.split(",") for r in GOOD]
    for i, column, value in edits:
        rows[i][column % len(rows[i])] = value
    text = CLASSIC + "\n" + "\n".join(",".join(r) for r in rows) + '\n"Date downloaded 01/01/2025 9:00 am"\n'
    try:
        out = Fidelity().extract(source(text, "x.csv"), Context())
    except TaxlensError:
        return
    assert all(str(e).startswith("x.csv:") for e in out.errors)
    assert out.trades.height + len(out.errors) + sum(out.ignored.values()) <= out.rows_read
