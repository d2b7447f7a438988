"""Robinhood adapters: the equity activity report and the crypto order history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taxlens.errors import FileError, TaxlensError
from taxlens.ingest import Context, Source, identify
from taxlens.ingest.base import Extracted
from taxlens.ingest.robinhood import Robinhood, RobinhoodCrypto

HEADER = '"Activity Date","Process Date","Settle Date","Instrument","Description","Trans Code","Quantity","Price","Amount"'
CRYPTO = "UUID,Time Entered,Symbol,Side,Quantity,State,Order Type,Leaves Quantity,Entered Price,Average Price,Notional"
DISCLAIMER = '"The data provided is for informational purposes only. Please consult a professional tax service."'
CRYPTO_FOOTER = '"Robinhood does not provide tax or legal advice. Report generated: 01/03/2024, 3:00:00 PM EST",,,,,,,,,,'
BUY = '"3/2/2026","3/2/2026","3/4/2026","AAPL","Apple\nCUSIP: 037833100","Buy","100","$187.40","($18,740.00)"'
FILLED = 'u-1,"12/01/2023, 12:34:56",BTC,Sell,0.00010449,Filled,Limit,0.00E+00,"$12,345.00 ","$12,345.67 ",$1.29 '


def source(text: str, name: str = "rh.csv") -> Source:
    return Source.from_bytes(name, text.encode())


def equity(*rows: str, footer: str = DISCLAIMER, context: Context | None = None) -> Extracted:
    text = "\n".join([HEADER, *rows, footer]) + "\n"
    return Robinhood().extract(source(text), context or Context())


def crypto(*rows: str, context: Context | None = None) -> Extracted:
    text = "\n".join([CRYPTO, *rows, CRYPTO_FOOTER]) + "\n"
    return RobinhoodCrypto().extract(source(text), context or Context())


def messages(extracted: Extracted) -> list[str]:
    return [str(e) for e in extracted.errors]


def summary(extracted: Extracted) -> list[tuple[object, ...]]:
    return [(r["action"], r["symbol"], r["quantity"], r["amount"]) for r in extracted.trades.iter_rows(named=True)]


# -- identify --------------------------------------------------------------------------------


def test_identify_each_layout_and_not_the_other() -> None:
    eq = source(HEADER + "\n" + BUY + "\n")
    cr = source(CRYPTO + "\n" + FILLED + "\n")
    assert identify(eq).NAME == "robinhood" and identify(cr).NAME == "robinhood-crypto"
    assert not RobinhoodCrypto().identify(eq) and not Robinhood().identify(cr)


@pytest.mark.parametrize(
    "text",
    [
        '"Date","Action","Symbol","Description","Quantity","Price","Fees & Comm","Amount"\n',
        "ID,Timestamp,Transaction Type,Asset,Quantity Transacted\n",
        "title\n" + HEADER + "\n",  # the header must be the first line
        "UUID,Time,Symbol,Side\n",
    ],
)
def test_identify_rejects_other_files(text: str) -> None:
    assert not Robinhood().identify(source(text)) and not RobinhoodCrypto().identify(source(text))


# -- equity activity report ------------------------------------------------------------------


def test_multiline_description_keeps_true_lines_and_parenthesised_negatives() -> None:
    out = equity(
        BUY,
        '"3/9/2026","3/9/2026","3/10/2026","VOO","Vanguard S&P 500 ETF\nCUSIP: 922908363\nRecurring","Buy","0.199682","$500.80","($100.00)"',
        '"6/15/2026","6/15/2026","6/16/2026","AAPL","Apple","Sell","40","$201.10","$8,043.98"',
    )
    assert out.errors == [] and out.rows_read == 3
    assert out.trades["line"].to_list() == [2, 4, 7]
    assert summary(out) == [
        ("buy", "AAPL", Decimal(100), Decimal(-18740)),
        ("buy", "VOO", Decimal("0.199682"), Decimal(-100)),
        ("sell", "AAPL", Decimal(40), Decimal("8043.98")),
    ]
    assert out.trades["trade_date"].to_list() == [dt.date(2026, 3, 2), dt.date(2026, 3, 9), dt.date(2026, 6, 15)]
    assert out.trades["account"].to_list() == ["Robinhood"] * 3


def test_income_fees_and_cash_moves() -> None:
    out = equity(
        '"4/27/2026","4/27/2026","4/27/2026","GE","Cash Div: R/D 2026-03-09","CDIV","","","$0.13"',
        '"4/27/2026","4/27/2026","4/27/2026","TSM","Tax","DTAX","","","($1.43)"',
        '"4/28/2026","4/28/2026","4/28/2026","TSM","NRA tax","NRAT","","","($0.50)"',
        '"5/1/2026","5/1/2026","5/1/2026","TSM","ADR Fee","AFEE","","","($0.20)"',
        '"5/4/2026","5/4/2026","5/4/2026","","Gold Subscription Fee","GOLD","","","($5.00)"',
        '"5/29/2026","5/29/2026","5/29/2026","","Interest Payment","INT","","","$12.34"',
        '"5/30/2026","5/30/2026","5/30/2026","AAPL","Stock lending","SLIP","","","$0.05"',
        '"3/5/2026","3/5/2026","3/5/2026","","ACH Deposit","ACH","","","$20,000.00"',
        '"10/1/2026","10/1/2026","10/1/2026","","Instant withdrawal","RTP","","","($250.00)"',
    )
    assert out.errors == []
    assert summary(out) == [
        ("dividend", "GE", Decimal(0), Decimal("0.13")),
        ("withholding", "TSM", Decimal(0), Decimal("-1.43")),
        ("withholding", "TSM", Decimal(0), Decimal("-0.5")),
        ("fee", "TSM", Decimal(0), Decimal("-0.2")),
        ("fee", "USD", Decimal(0), Decimal(-5)),
        ("interest", "USD", Decimal(0), Decimal("12.34")),
        ("interest", "AAPL", Decimal(0), Decimal("0.05")),
        ("deposit", "USD", Decimal(0), Decimal(20000)),
        ("withdrawal", "USD", Decimal(0), Decimal(-250)),
    ]
    assert out.trades["fee"][4] == Decimal(5)


def test_split_with_s_suffix_cash_in_lieu_and_acats_receipt() -> None:
    out = equity(
        '"9/15/2026","9/15/2026","9/15/2026","NVDA","Forward Split","SPL","18S","",""',
        '"9/16/2026","9/16/2026","9/16/2026","NVDA","Cash in Lieu","CIL","0.25","","$31.75"',
        '"6/1/2026","6/1/2026","6/1/2026","MSFT","Microsoft\nACATS transfer in","REC","12","",""',
        '"6/2/2026","6/2/2026","6/2/2026","","ACATS cash","REC","","","$40.00"',
    )
    assert out.errors == []
    assert summary(out) == [
        ("split_in", "NVDA", Decimal(18), None),
        ("cash_in_lieu", "NVDA", Decimal("0.25"), Decimal("31.75")),
        ("transfer_in", "MSFT", Decimal(12), None),
        ("deposit", "USD", Decimal(0), Decimal(40)),
    ]
    assert out.trades["note"].to_list()[:3] == ["Forward Split", None, "basis unknown"]


def test_options_corporate_actions_and_unknown_codes_are_row_errors() -> None:
    out = equity(
        '"3/4/2026","3/4/2026","3/4/2026","AAPL 4/17/2026 Call $200.00","Call","BTO","1","$3.10","($310.00)"',
        '"3/5/2026","3/5/2026","3/5/2026","SPNC","SpinCo","SOFF","12S","",""',
        '"3/6/2026","3/6/2026","3/6/2026","XYZ","Reverse Split","SPR","5S","",""',
        '"3/6/2026","3/6/2026","3/6/2026","XYZ","Stock dividend","SDIV","5S","",""',
        '"3/7/2026","3/7/2026","3/7/2026","","Mystery","ZZZ","","","$1.00"',
    )
    got = messages(out)
    assert got[0] == "rh.csv:2: Trans Code 'BTO': options are not supported by taxlens yet (enter the trades by hand)"
    assert got[1].startswith("rh.csv:3: Trans Code 'SOFF': a spin-off needs a basis allocation")
    assert got[2].startswith("rh.csv:4: Trans Code 'SPR': a reverse split's rows")
    assert got[3].startswith("rh.csv:5: Trans Code 'SDIV': a stock dividend needs a basis allocation")
    assert got[4].startswith("rh.csv:6: Trans Code 'ZZZ' is not handled by the robinhood adapter (expected one of Buy, Sell,")
    assert out.trades.height == 0


def test_bad_cells_point_at_the_first_line_of_the_record() -> None:
    out = equity(
        BUY,
        '"2/30/2026","2/30/2026","3/4/2026","AAPL","Apple\nCUSIP: 037833100","Buy","100","$187.40","($18,740.00)"',
        '"3/3/2026","3/3/2026","3/5/2026","AAPL","Apple","Buy","ten","$187.40","($1,874.00)"',
        '"3/3/2026","3/3/2026","3/5/2026","AAPL","Apple","Sell","-1","$187.40","$187.40"',
        '"3/8/2026","3/8/2026","3/8/2026","AAPL","Apple","Sell","10","$190.00"',
    )
    assert messages(out) == [
        "rh.csv:4: Activity Date '2/30/2026' is not a date (expected M/D/YYYY such as 3/2/2026)",
        "rh.csv:6: Quantity 'ten' is not a number (expected a number of shares such as 100, 0.5 or 18S)",
        "rh.csv:7: Quantity '-1' is negative (expected a positive number; Trans Code gives the direction)",
        "rh.csv:8: row has 8 fields (expected 9, as in the header)",
    ]


def test_equity_missing_column_is_a_file_error() -> None:
    with pytest.raises(FileError, match="missing column 'Amount'"):
        Robinhood().extract(source(HEADER.replace(',"Amount"', "") + "\n"), Context())


# -- crypto order history --------------------------------------------------------------------


def test_crypto_filled_orders_eastern_times_and_footer() -> None:
    out = crypto(
        FILLED,
        'u-2,"06/01/2022, 15:00:00",BTC,Buy,0.00030037,Filled,Limit,0.00E+00,"$10,000.00 ","$9,987.65 ",($3.00)',
        'u-3,"12/31/2025, 22:30:00",SOL,Buy,1.5,Filled,Market,0.00E+00,$190.00 ,$189.50 ,($284.25)',
    )
    assert out.errors == [] and out.rows_read == 3
    rows = list(out.trades.iter_rows(named=True))
    assert summary(out) == [
        ("sell", "BTC", Decimal("0.00010449"), Decimal("1.29")),
        ("buy", "BTC", Decimal("0.00030037"), Decimal(-3)),
        ("buy", "SOL", Decimal("1.5"), Decimal("-284.25")),
    ]
    assert rows[0]["ts"] == dt.datetime(2023, 12, 1, 17, 34, 56, tzinfo=dt.UTC)
    assert rows[0]["price"] == Decimal("12345.67") and rows[0]["broker_trade_id"] == "u-1"
    assert rows[0]["asset_class"] == "crypto" and rows[0]["account"] == "Robinhood Crypto"
    # 22:30 Eastern on New Year's Eve is 2026 in UTC but a 2025 trade for a US taxpayer
    assert rows[2]["ts"].year == 2026 and rows[2]["trade_date"] == dt.date(2025, 12, 31)


def test_crypto_unfilled_orders_are_ignored_and_partial_fills_are_errors() -> None:
    out = crypto(
        'u-3,"11/19/2025, 23:59:59",DOGE,Buy,1000,Canceled,Limit,1.00E+03,$0.10 ,,$0.00 ',
        'u-4,"11/19/2025, 23:59:59",ETH,Sell,0.01,Rejected,Limit,1.00E-02,"$4,000.00 ",,$0.00 ',
        'u-5,"11/19/2025, 23:59:59",DOGE,Buy,1000,Canceled,Limit,4.00E+02,$0.10 ,$0.10 ,($60.00)',
        'u-6,"11/19/2025, 23:59:59",DOGE,Buy,1000,Settled,Limit,0.00E+00,$0.10 ,$0.10 ,($100.00)',
        'u-7,"11/19/2025, 23:59:59",DOGE,Swap,1000,Filled,Limit,0.00E+00,$0.10 ,$0.10 ,($100.00)',
        'u-8,"11/19/2025, 23:59:59",DOGE,Buy,1000,Filled,Limit,1.00E+02,$0.10 ,$0.10 ,($100.00)',
        'u-9,"11/31/2025, 23:59:59",DOGE,Buy,1000,Filled,Limit,0.00E+00,$0.10 ,$0.10 ,($100.00)',
    )
    assert out.ignored == {"State Canceled": 1, "State Rejected": 1}
    assert messages(out) == [
        "rh.csv:4: State 'Canceled' with Leaves Quantity 4.00E+02 of 1000: the order partly filled and the file "
        "doesn't give the filled part's notional (enter it by hand)",
        "rh.csv:5: State 'Settled' is not known (expected one of Filled, Canceled, Cancelled, Rejected, Failed, "
        "Expired, Confirmed, Queued, Pending, Unconfirmed, Placed)",
        "rh.csv:6: Side 'Swap' is not Buy or Sell (expected Buy or Sell)",
        "rh.csv:7: Leaves Quantity '1.00E+02' is not zero on a Filled order (expected 0.00E+00)",
        "rh.csv:8: Time Entered '11/31/2025, 23:59:59' is not a date and time "
        '(expected "MM/DD/YYYY, HH:MM:SS" such as "12/01/2023, 12:34:56")',
    ]


def test_crypto_missing_column_is_a_file_error() -> None:
    with pytest.raises(FileError, match="missing column 'Notional'"):
        RobinhoodCrypto().extract(source(CRYPTO.replace(",Notional", "") + "\n"), Context())


# -- fuzz ------------------------------------------------------------------------------------

CELL = st.one_of(
    st.sampled_from(["", "(", "($1.00)", '="x"', "1e999", "18S", "S", "-0.000001", "99999999999999999999999",
                     "2/30/2026", "Buy", "SPL", "CIL", "REC", "Filled", "Canceled", "\n", '"', "0.00E+00"]),
    st.text(max_size=12),
)
EQUITY_ROWS = [
    ["3/2/2026", "3/2/2026", "3/4/2026", "AAPL", "Apple", "Buy", "100", "$187.40", "($18,740.00)"],
    ["9/15/2026", "9/15/2026", "9/15/2026", "NVDA", "Forward Split", "SPL", "18S", "", ""],
    ["4/27/2026", "4/27/2026", "4/27/2026", "GE", "Cash Div", "CDIV", "", "", "$0.13"],
]
CRYPTO_ROWS = [
    ["u-1", "12/01/2023, 12:34:56", "BTC", "Sell", "0.00010449", "Filled", "Limit", "0.00E+00", "$12,345.00", "$12,345.67", "$1.29"],
    ["u-2", "06/01/2022, 15:00:00", "BTC", "Buy", "0.00030037", "Canceled", "Limit", "0.00030037", "$10.00", "", "$0.00"],
]


def _render(header: str, rows: list[list[str]], footer: str) -> str:
    quoted = ['"' + '","'.join(c.replace('"', '""') for c in r) + '"' for r in rows]
    return "\n".join([header, *quoted, footer]) + "\n"


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 2), st.integers(0, 10), CELL), max_size=6))
def test_mutated_rows_give_trades_or_errors(edits: list[tuple[bool, int, int, str]]) -> None:
    eq = [list(r) for r in EQUITY_ROWS]
    cr = [list(r) for r in CRYPTO_ROWS]
    for is_crypto, i, column, value in edits:
        rows = cr if is_crypto else eq
        row = rows[i % len(rows)]
        row[column % len(row)] = value
    for adapter, text in (
        (Robinhood(), _render(HEADER, eq, DISCLAIMER)),
        (RobinhoodCrypto(), _render(CRYPTO, cr, CRYPTO_FOOTER)),
    ):
        try:
            out = adapter.extract(source(text, "x.csv"), Context())
        except TaxlensError:
            continue
        assert all(str(e).startswith("x.csv:") for e in out.errors)
        assert out.trades.height + len(out.errors) + sum(out.ignored.values()) <= out.rows_read
