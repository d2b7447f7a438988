"""Vanguard OfxDownload.csv adapter: two sections, trailing commas, sweeps, actions and errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taxlens.errors import FileError, TaxlensError
from taxlens.ingest import Context, Source, identify
from taxlens.ingest.base import Extracted
from taxlens.ingest.vanguard import Vanguard

POSITIONS = (
    "Account Number,Investment Name,Symbol,Shares,Share Price,Total Value,\n"
    "12345678,INVESCO QQQ ETF,QQQ,5.00000,480.12,2400.60,\n\n\n"
)
HEADER = (
    "Account Number,Trade Date,Settlement Date,Transaction Type,Transaction Description,Investment Name,Symbol,"
    "Shares,Share Price,Principal Amount,Commissions and Fees,Net Amount,Accrued Interest,Account Type,"
)
OLD_HEADER = '"Trade Date","Transaction Type","Investment Name","Symbol","Shares","Principal Amount","Net Amount"'
BUY = "68411173,2024-07-19,2024-07-22,Buy,Buy,INVESCO QQQ ETF,QQQ,5.00000,477.81,-2389.05,0.0,-2389.05,0.0,CASH,"


def source(text: str, name: str = "OfxDownload.csv") -> Source:
    return Source.from_bytes(name, text.encode())


def extract(*rows: str, header: str = HEADER, before: str = POSITIONS, context: Context | None = None) -> Extracted:
    return Vanguard().extract(source(before + "\n".join([header, *rows]) + "\n"), context or Context())


def summary(extracted: Extracted) -> list[tuple[object, ...]]:
    return [(r["action"], r["symbol"], r["quantity"], r["amount"]) for r in extracted.trades.iter_rows(named=True)]


def test_identify_with_positions_without_and_older_layout() -> None:
    assert identify(source(POSITIONS + HEADER + "\n" + BUY + "\n")).NAME == "vanguard"
    assert Vanguard().identify(source(HEADER + "\n" + BUY + "\n"))
    assert Vanguard().identify(source(OLD_HEADER + "\n"))
    many = "Account Number,Investment Name,Symbol,Shares,Share Price,Total Value,\n" + "1,X,Y,1,1,1,\n" * 50
    assert identify(source(many + "\n" + HEADER + "\n" + BUY + "\n")).NAME == "vanguard"


@pytest.mark.parametrize(
    "text",
    [
        '"Date","Action","Symbol","Description","Quantity","Price","Fees & Comm","Amount"\n',
        "Account Number,Trade Date,Symbol\n",
        "Run Date,Action,Symbol,Security Description,Quantity,Amount ($)\n",
    ],
)
def test_identify_rejects_other_files(text: str) -> None:
    assert not Vanguard().identify(source(text))


def test_transactions_after_positions_with_true_lines_and_signs() -> None:
    out = extract(
        BUY,
        "68411173,2024-09-03,2024-09-04,Sell,Sell,INVESCO QQQ ETF,QQQ,-2.50000,470.00,1175.00,-0.02,1174.98,0.0,CASH,",
    )
    assert out.errors == [] and out.rows_read == 2
    rows = list(out.trades.iter_rows(named=True))
    assert [r["line"] for r in rows] == [6, 7]
    assert summary(out) == [("buy", "QQQ", Decimal(5), Decimal("-2389.05")), ("sell", "QQQ", Decimal("2.5"), Decimal("1174.98"))]
    assert rows[1]["fee"] == Decimal("0.02") and rows[1]["price"] == Decimal(470)
    assert rows[0]["account"] == "Vanguard 68411173" and rows[0]["trade_date"] == dt.date(2024, 7, 19)


def test_income_cash_moves_sweeps_transfers_and_split() -> None:
    out = extract(
        "1,2024-07-16,2024-07-16,Funds Received,Electronic Bank Transfer,CASH,,0,0,400.00,0,400.00,0,CASH,",
        "1,2024-07-19,2024-07-19,Sweep out,Sweep,VANGUARD FEDERAL MONEY MARKET FUND,VMFXX,0,1,-2389.05,0,-2389.05,0,CASH,",
        "1,2025-12-31,2026-01-02,Reinvestment,Dividend Reinvestment,EXAMPLE FUND,TEST,2.50000,40,-100,0,-100,0,CASH,",
        "1,2024-09-30,2024-09-30,Dividend,Dividend Received,EXAMPLE FUND,TEST,0,0,100,0,100,0,CASH,",
        "1,2024-12-20,2024-12-20,Capital gain (ST),Short-term capital gain,EXAMPLE FUND,TEST,0,0,3.10,0,3.10,0,CASH,",
        "1,2024-12-27,2024-12-27,Transfer (incoming),Transfer,APPLE INC,AAPL,10.00000,0,0,0,0,0,CASH,",
        "1,2024-12-28,2024-12-28,Transfer (outgoing),Transfer,APPLE INC,AAPL,4.00000,0,0,0,0,0,CASH,",
        "1,2025-01-10,2025-01-10,Stock split,Stock split 2:1,INVESCO QQQ ETF,QQQ,5.00000,0,0,0,0,0,CASH,",
        "1,2025-02-03,2025-02-03,Withdrawal,Electronic Bank Transfer,CASH,,0,0,-500.00,0,-500.00,0,CASH,",
        "1,2025-02-15,2025-02-15,Fee,Account service fee,CASH,,0,0,-20.00,0,-20.00,0,CASH,",
    )
    assert out.errors == []
    assert out.ignored == {"Sweep out": 1}
    assert summary(out) == [
        ("deposit", "USD", Decimal(0), Decimal(400)),
        ("reinvest", "TEST", Decimal("2.5"), Decimal(-100)),
        ("dividend", "TEST", Decimal(0), Decimal(100)),
        ("dividend", "TEST", Decimal(0), Decimal("3.1")),
        ("transfer_in", "AAPL", Decimal(10), None),
        ("transfer_out", "AAPL", Decimal(4), None),
        ("split_in", "QQQ", Decimal(5), None),
        ("withdrawal", "USD", Decimal(0), Decimal(-500)),
        ("fee", "USD", Decimal(0), Decimal(-20)),
    ]


def test_older_layout_without_account_column() -> None:
    out = extract('"01/04/2021","Buy","VANGUARD 500 INDEX ADMIRAL","VFIAX","2.500","-850.00","-850.00"',
                  header=OLD_HEADER, before="")
    assert summary(out) == [("buy", "VFIAX", Decimal("2.5"), Decimal(-850))]
    assert out.trades["account"].to_list() == ["Vanguard"]
    assert out.trades["trade_date"].to_list() == [dt.date(2021, 1, 4)]


def test_corporate_actions_unknown_types_and_bad_cells_are_row_errors() -> None:
    out = extract(
        "1,2024-07-21,2024-07-21,Conversion (incoming),Share class conversion,VANGUARD 500,VFIAX,10,0,0,0,0,0,CASH,",
        "1,2024-07-23,2024-07-23,Mystery type,Something,CASH,,0,0,1.00,0,1.00,0,CASH,",
        "1,2024-13-19,2024-07-22,Buy,Buy,INVESCO QQQ ETF,QQQ,5,477.81,-2389.05,0.0,-2389.05,0.0,CASH,",
        "1,2024-07-20,2024-07-22,Buy,Buy,INVESCO QQQ ETF,QQQ,0,477.81,-2389.05,0.0,-2389.05,0.0,CASH,",
        "1,2024-07-24,2024-07-24,Buy,Buy,INVESCO QQQ ETF,QQQ",
        "1,2024-07-25,2024-07-25,Stock split,Split,INVESCO QQQ ETF,QQQ,0,0,0,0,0,0,CASH,",
    )
    got = [str(e) for e in out.errors]
    assert got[0] == (
        "OfxDownload.csv:6: Transaction Type 'Conversion (incoming)': this corporate action needs a basis allocation "
        "the file doesn't give: enter it by hand (generic CSV or opening lots)"
    )
    assert got[1].startswith("OfxDownload.csv:7: Transaction Type 'Mystery type' is not handled by the vanguard adapter")
    assert got[2] == "OfxDownload.csv:8: Trade Date '2024-13-19' is not a date (expected YYYY-MM-DD such as 2024-07-19)"
    assert got[3] == "OfxDownload.csv:9: Shares '0' is zero (expected a number of shares such as 5.00000 or -2.5)"
    assert got[4] == "OfxDownload.csv:10: row has 7 fields (expected 14, as in the header)"
    assert got[5] == "OfxDownload.csv:11: Shares '0' is missing or zero (expected a number of shares such as 5.00000 or -2.5)"
    assert out.trades.height == 0


def test_positions_only_or_missing_column_is_a_file_error() -> None:
    with pytest.raises(FileError, match="no Vanguard transactions section"):
        Vanguard().extract(source(POSITIONS), Context())
    with pytest.raises(FileError, match="missing column 'Net Amount'"):
        extract(header=HEADER.replace("Net Amount,", ""))


CELL = st.one_of(
    st.sampled_from(["", "-", "(1.00)", '="x"', "1e999", "0", "-0.000001", "99999999999999999999999", "2024-02-30",
                     "Sweep in", "Stock split", "Transfer (outgoing)", "\n", '"']),
    st.text(max_size=12),
)
GOOD = [
    BUY.split(","),
    "1,2024-09-30,2024-09-30,Dividend,Dividend Received,EXAMPLE FUND,TEST,0,0,100,0,100,0,CASH,".split(","),
    "1,2024-12-27,2024-12-27,Transfer (incoming),Transfer,APPLE INC,AAPL,10.00000,0,0,0,0,0,CASH,".split(","),
]


@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 14), CELL), max_size=6))
def test_mutated_rows_give_trades_or_errors(edits: list[tuple[int, int, str]]) -> None:
    rows = [list(r) for r in GOOD]
    for i, column, value in edits:
        rows[i][column % len(rows[i])] = value
    text = POSITIONS + HEADER + "\n" + "\n".join(",".join(r) for r in rows) + "\n"
    try:
        out = Vanguard().extract(source(text, "x.csv"), Context())
    except TaxlensError:
        return
    assert all(str(e).startswith("x.csv:") for e in out.errors)
    assert out.trades.height + len(out.errors) + sum(out.ignored.values()) <= out.rows_read
