"""Schwab transactions CSV adapter: layouts, as-of dates, accounts, cancels, footer and messages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from taxlens.errors import FileError
from taxlens.ingest import Context, Source, identify
from taxlens.ingest.base import Extracted
from taxlens.ingest.schwab import Schwab

HEADER = '"Date","Action","Symbol","Description","Quantity","Price","Fees & Comm","Amount"'
OLD_HEADER = '"Date","Action","Symbol","Description","Price","Quantity","Fees & Comm","Amount",'
TITLE = '"Transactions  for account General Investing ...XXX as of 05/03/2023 02:21:05 PM ET"'


def source(text: str, name: str = "schwab.csv") -> Source:
    return Source.from_bytes(name, text.encode())


def extract(*rows: str, header: str = HEADER, title: str | None = None, name: str = "schwab.csv",
            context: Context | None = None) -> Extracted:
    lines = ([title] if title else []) + [header, *rows]
    return Schwab().extract(source("\n".join(lines) + "\n", name), context or Context())


def messages(extracted: Extracted) -> list[str]:
    return [str(e) for e in extracted.errors]


# -- identify --------------------------------------------------------------------------------


def test_identify_with_and_without_title_and_old_layout() -> None:
    assert Schwab().identify(source(TITLE + "\n" + HEADER + "\n"))
    assert Schwab().identify(source(HEADER + "\n"))
    assert Schwab().identify(source(OLD_HEADER + "\n"))
    assert identify(source(TITLE + "\n" + HEADER + "\n")).NAME == "schwab"


@pytest.mark.parametrize(
    "text",
    [
        "ID,Timestamp,Transaction Type,Asset,Quantity Transacted\n",
        '"Date","Action","Symbol","Description","Quantity","Price","Amount"\n',  # no Fees & Comm
        "one\ntwo\n" + HEADER + "\n",  # the header must be the first or second line
    ],
)
def test_identify_rejects_other_files(text: str) -> None:
    assert not Schwab().identify(source(text))


# -- dates, layouts, accounts ----------------------------------------------------------------


def test_as_of_date_is_the_trade_date_and_posted_date_goes_in_the_note() -> None:
    out = extract(
        '"04/17/2023 as of 04/15/2023","Bank Interest","","BANK INT","","","","$0.03"',
        '"04/18/2023","Sell","BND","VANGUARD","10.065","$73.4049","$0.01","$738.81"',
    )
    interest, sell = out.trades.iter_rows(named=True)
    assert interest["trade_date"] == dt.date(2023, 4, 15)
    assert interest["note"] == "Bank Interest; posted 04/17/2023"
    assert interest["ts"] is None and interest["symbol"] == "USD" and interest["action"] == "interest"
    assert sell["trade_date"] == dt.date(2023, 4, 18) and sell["note"] is None
    assert (sell["quantity"], sell["price"], sell["fee"], sell["amount"]) == (
        Decimal("10.065"), Decimal("73.4049"), Decimal("0.01"), Decimal("738.81"),
    )


def test_old_layout_maps_by_header_name_with_or_without_trailing_comma() -> None:
    out = extract(
        '"01/04/2021","Buy","SCHB","SCHWAB US BROAD MARKET ETF","$91.1000","50","$4.95","-$4,559.95",',
        '"01/05/2021","Buy","SCHB","SCHWAB US BROAD MARKET ETF","$91.2000","5","","-$456.00"',
        header=OLD_HEADER,
    )
    assert out.errors == []
    assert out.trades["quantity"].to_list() == [Decimal(50), Decimal(5)]
    assert out.trades["price"].to_list() == [Decimal("91.1"), Decimal("91.2")]
    assert out.trades["amount"].to_list() == [Decimal("-4559.95"), Decimal("-456")]


@pytest.mark.parametrize(
    ("title", "name", "context", "expected"),
    [
        (TITLE, "x.csv", Context(), "Schwab General Investing ...XXX"),
        (None, "dl/schwab_csv_brokerage_XX876_Transactions_20220731.csv", Context(), "Schwab ...876"),
        (None, "x.csv", Context(), "Schwab"),
        (TITLE, "schwab_XX876_.csv", Context(account="Joint"), "Joint"),
    ],
)
def test_account_naming(title: str | None, name: str, context: Context, expected: str) -> None:
    out = extract('"01/09/2023","MoneyLink Deposit","","JOHN","","","","$25.00"', title=title, name=name, context=context)
    assert out.trades["account"].to_list() == [expected]


# -- actions ---------------------------------------------------------------------------------


def test_reverse_split_pair_and_share_movements() -> None:
    out = extract(
        '"06/10/2024","Reverse Split","TNXP","TONIX PHARMA REVERSE SPLIT EFF: 06/10/24","2","","",""',
        '"06/10/2024","Reverse Split","890260854","TONIX PHARMA XXXREVERSE SPLIT EFF: 06/10/24","-64","","",""',
        '"08/01/2024","Journaled Shares","VTI","JOURNAL TO ...456","-3","","",""',
        '"08/01/2024","Security Transfer","","TOA ACAT 0226","","","","$29.55"',
    )
    rows = list(out.trades.iter_rows(named=True))
    assert [(r["action"], r["symbol"], r["quantity"]) for r in rows] == [
        ("split_in", "TNXP", Decimal(2)),
        ("split_out", "890260854", Decimal(64)),
        ("transfer_out", "VTI", Decimal(3)),
        ("deposit", "USD", Decimal(0)),
    ]
    assert rows[1]["note"] == "TONIX PHARMA XXXREVERSE SPLIT EFF: 06/10/24"


def test_fees_withholding_and_cash_moves() -> None:
    out = extract(
        '"11/01/2024","ADR Mgmt Fee","TSM","ADR FEE","","","","-$0.30"',
        '"11/02/2024","Foreign Tax Paid","VXUS","TAX","","","","-$1.21"',
        '"11/03/2024","Journal","","TRANSFER FUNDS TO SCHWAB BANK","","","","-$7,461.72"',
        '"11/04/2024","Journal","","TRANSFER FUNDS FROM SCHWAB BANK","","","","$7,461.72"',
    )
    rows = list(out.trades.iter_rows(named=True))
    assert [(r["action"], r["symbol"], r["fee"], r["amount"]) for r in rows] == [
        ("fee", "TSM", Decimal("0.3"), Decimal("-0.3")),
        ("withholding", "VXUS", Decimal(0), Decimal("-1.21")),
        ("withdrawal", "USD", Decimal(0), Decimal("-7461.72")),
        ("deposit", "USD", Decimal(0), Decimal("7461.72")),
    ]


def test_cancel_buy_drops_itself_and_the_matching_buy() -> None:
    out = extract(
        '"12/27/2024","Cancel Buy","AAPL","APPLE INC","10","$250.00","","$2,500.00"',
        '"12/26/2024","Buy","AAPL","APPLE INC","10","$251.00","","-$2,510.00"',
        '"12/26/2024","Buy","AAPL","APPLE INC","10","$250.00","","-$2,500.00"',
    )
    assert out.errors == []
    assert out.trades["price"].to_list() == [Decimal(251)]
    assert out.ignored == {"Cancel Buy": 2}
    assert out.rows_read == 3


def test_cancel_buy_without_a_buy_is_a_row_error() -> None:
    out = extract('"06/10/2024","Cancel Buy","MSFT","MICROSOFT CORP","5","$420.00","","$2,100.00"')
    assert messages(out) == [
        "schwab.csv:2: Action 'Cancel Buy' has no Buy of 5 MSFT at $420 to cancel "
        "(expected a Buy row with the same Symbol, Quantity and Price in this file)"
    ]


def test_unknown_and_corporate_actions_are_row_errors() -> None:
    out = extract(
        '"06/21/2024","Expired","SPY 06/21/2024 500.00 P","PUT","-1","","",""',
        '"06/14/2024","Stock Merger","NEWCO","NEWCO INC MERGER","25","","",""',
        '"06/13/2024","Buy","AAPL","APPLE INC","1O","$210.00","","-$2,100.00"',
        '"13/45/2024","Buy","AAPL","APPLE INC","10","$210.00","","-$2,100.00"',
    )
    got = messages(out)
    assert got[0].startswith("schwab.csv:2: Action 'Expired' is not handled by the schwab adapter (expected one of Buy, Sell,")
    assert got[1] == "schwab.csv:3: corporate action 'Stock Merger' is not supported yet (add it as trades in the generic CSV)"
    assert got[2] == "schwab.csv:4: Quantity '1O' is not a number (expected a number of shares such as 45 or 0.0249)"
    assert got[3] == "schwab.csv:5: Date '13/45/2024' is not a date (expected MM/DD/YYYY or \"MM/DD/YYYY as of MM/DD/YYYY\")"
    assert out.trades.height == 0


# -- footer and file errors ------------------------------------------------------------------


def test_footer_is_skipped_and_checked() -> None:
    rows = ('"01/09/2023","MoneyLink Deposit","","JOHN","","","","$25.00"',
            '"01/10/2023","Buy","GIS","GENERAL MILLS","1","$20.00","","-$20.00"')
    good = extract(*rows, '"Transactions Total","","","","","","","$5.00",')
    assert good.warnings == [] and good.rows_read == 2 and good.trades.height == 2
    bad = extract(*rows, '"Transactions Total","","","","","","","-$1,574.04",')
    assert bad.warnings == [
        "schwab.csv:4: Transactions Total -$1,574.04 differs from the sum of the Amount column (5): "
        "the export may be missing rows"
    ]


def test_missing_column_is_a_file_error() -> None:
    with pytest.raises(FileError, match="missing column 'Amount'"):
        extract(header='"Date","Action","Symbol","Description","Quantity","Price","Fees & Comm"')
