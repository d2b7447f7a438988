"""Lot booking, worksheet by worksheet: trades in as a generic CSV, disposals out as a table.

Each test is one tax worksheet: the trades as the user would write them in taxlens' generic CSV,
the booking done through the public API (``Book.ingest`` then ``gains``/``lots``/``booked``), and
the expected disposal slices as a small table whose amounts are exact Decimals (``plain``: no
rounding, no trailing zeros). The arithmetic behind every expected number is in a comment next
to it. Rules: tax-rules.md §1 (holding period) and §2 (basis, fees, lot selection); the pro-rata
rule is in taxlens/lots/engine.py's docstring.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

import taxlens
import taxlens.api
from taxlens.api import Book
from taxlens.money import plain
from tests.conftest import write

HEADER = "date,account,symbol,side,quantity,price,fee,currency,asset_class,trade_id,lot_id\n"
SLICE = "quantity,acquired,disposed,proceeds,cost_basis,gain,term,lot_id"
OPEN = "account,symbol,lot_id,acquired,quantity,cost_basis"


# -- the worksheet helpers -------------------------------------------------------------------------


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return plain(value)  # exact: every digit kept, only trailing zeros dropped
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def table(frame: pl.DataFrame, columns: str) -> list[str]:
    """The frame's ``columns`` as lines of comma-separated text, Decimals exact."""
    names = columns.split(",")
    return [",".join(_cell(row[c]) for c in names) for row in frame.select(names).iter_rows(named=True)]


def rows(text: str) -> list[str]:
    """An expected table written with aligned columns: spaces around each field are dropped."""
    return [",".join(f.strip() for f in line.split(",")) for line in textwrap.dedent(text).strip().splitlines()]


def load(book: Book, tmp_path: Path, trades: str, name: str = "trades.csv") -> Path:
    """Write ``trades`` (generic-CSV rows, header added) to ``tmp_path/name`` and ingest it."""
    path = write(tmp_path, name, HEADER + textwrap.dedent(trades).lstrip("\n"))
    report = book.ingest([path])
    assert report.ok, [(f.problem, f.errors) for f in report.files]
    return path


def total(column: pl.Series) -> Decimal:
    """The exact sum of a Decimal column (no unknown values allowed)."""
    values = column.to_list()
    assert None not in values
    return sum(values, Decimal(0))


def messages(problems: list[taxlens.errors.RowError]) -> list[str]:
    return [str(p) for p in problems]


# -- one history, every method --------------------------------------------------------------------

# Three buys and two sales of VTI. Unit bases: B1 100, B2 120, B3 105. Anniversaries (the last
# short-term day): B1 2025-01-02, B2 2025-03-01, B3 2025-06-03. So on 2025-02-03 (S1) B1 is
# long-term and B2, B3 short-term; on 2025-04-01 (S2) B1 and B2 are long-term, B3 short-term.
# S1 sells 15 for 1650.00 (110.00 a share), S2 sells 8 for 920.00 (115.00 a share). S2's lot_id
# is only read under specific identification; every other method ignores it.
HISTORY = """\
2024-01-02,Alpaca,VTI,buy,10,100.00,0,USD,etf,B1,
2024-03-01,Alpaca,VTI,buy,10,120.00,0,USD,etf,B2,
2024-06-03,Alpaca,VTI,buy,10,105.00,0,USD,etf,B3,
2025-02-03,Alpaca,VTI,sell,15,110.00,0,USD,etf,S1,
2025-04-01,Alpaca,VTI,sell,8,115.00,0,USD,etf,S2,B1
"""


def test_fifo_takes_the_earliest_lots_first(book: Book, tmp_path: Path) -> None:
    """FIFO (the default, Reg. §1.1012-1(c)(1)): earliest acquired first; a sale spans lots."""
    load(book, tmp_path, HISTORY)
    assert table(book.gains(), SLICE) == rows("""
        10, 2024-01-02, 2025-02-03, 1100, 1000,  100, long,  B1
         5, 2024-03-01, 2025-02-03,  550,  600,  -50, short, B2
         5, 2024-03-01, 2025-04-01,  575,  600,  -25, long,  B2
         3, 2024-06-03, 2025-04-01,  345,  315,   30, short, B3
    """)
    # S1: B1 all 10 (10 × 110 = 1100 − 1000) and 5 of B2 (5 × 110 = 550 − 5 × 120 = 600).
    # S2: B2's other 5 (5 × 115 = 575 − 600) and 3 of B3 (3 × 115 = 345 − 3 × 105 = 315).
    # Left open: 7 of B3, basis 1050 − 315 = 735.
    assert table(book.lots(open_only=True), OPEN) == rows("Alpaca, VTI, B3, 2024-06-03, 7, 735")
    assert set(book.gains()["method"]) == {"fifo"}


def test_lifo_takes_the_latest_lots_first(book: Book, tmp_path: Path) -> None:
    """LIFO: latest acquired first."""
    load(book, tmp_path, HISTORY)
    assert table(book.gains(method="lifo"), SLICE) == rows("""
        10, 2024-06-03, 2025-02-03, 1100, 1050,   50, short, B3
         5, 2024-03-01, 2025-02-03,  550,  600,  -50, short, B2
         5, 2024-03-01, 2025-04-01,  575,  600,  -25, long,  B2
         3, 2024-01-02, 2025-04-01,  345,  300,   45, long,  B1
    """)
    # S1: B3 all 10 (1100 − 1050), then 5 of B2 (550 − 600). S2: B2's last 5 (575 − 600), then
    # 3 of B1 (345 − 300). Left open: 7 of B1, basis 700.
    assert table(book.lots(open_only=True, method="lifo"), OPEN) == rows("Alpaca, VTI, B1, 2024-01-02, 7, 700")
    assert set(book.gains(method="lifo")["method"]) == {"lifo"}


def test_hifo_takes_the_highest_basis_per_share_first(book: Book, tmp_path: Path) -> None:
    """HIFO: highest basis per share first (120 B2, then 105 B3, then 100 B1)."""
    load(book, tmp_path, HISTORY)
    assert table(book.gains(method="hifo"), SLICE) == rows("""
        10, 2024-03-01, 2025-02-03, 1100, 1200, -100, short, B2
         5, 2024-06-03, 2025-02-03,  550,  525,   25, short, B3
         5, 2024-06-03, 2025-04-01,  575,  525,   50, short, B3
         3, 2024-01-02, 2025-04-01,  345,  300,   45, long,  B1
    """)
    # S1: B2 all 10 (1100 − 1200), 5 of B3 (550 − 525). S2: B3's other 5 (575 − 525), 3 of B1
    # (345 − 300). Left open: 7 of B1, basis 700.
    assert table(book.lots(open_only=True, method="hifo"), OPEN) == rows("Alpaca, VTI, B1, 2024-01-02, 7, 700")


def test_taxmin_takes_losses_then_long_term_gains_before_short_term_gains(book: Book, tmp_path: Path) -> None:
    """TaxMin: short-term losses, long-term losses, long-term gains, then short-term gains.

    At S1 (110.00): B2 is a short-term loss (−10/sh), B1 a long-term gain (+10/sh), B3 a
    short-term gain (+5/sh). HIFO would take B3 (105) before B1 (100); TaxMin takes the
    long-term gain B1 first. At S2 (115.00): B1 a long-term gain, B3 a short-term gain."""
    load(book, tmp_path, HISTORY)
    assert table(book.gains(method="taxmin"), SLICE) == rows("""
        10, 2024-03-01, 2025-02-03, 1100, 1200, -100, short, B2
         5, 2024-01-02, 2025-02-03,  550,  500,   50, long,  B1
         5, 2024-01-02, 2025-04-01,  575,  500,   75, long,  B1
         3, 2024-06-03, 2025-04-01,  345,  315,   30, short, B3
    """)
    # S1: B2 all 10 (1100 − 1200), 5 of B1 (550 − 500). S2: B1's other 5 (575 − 500), 3 of B3
    # (345 − 315). Left open: 7 of B3, basis 735.
    assert table(book.lots(open_only=True, method="taxmin"), OPEN) == rows("Alpaca, VTI, B3, 2024-06-03, 7, 735")


def test_specific_identification_by_lot_id_and_selection_file(book_with, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Specific ID: a sale takes exactly the lots it names, from a lot-selection file (several
    lots, in the file's order) or from the sell row's lot_id column (the buy's trade_id)."""
    selections = write(tmp_path, "lots.csv", "sell_trade_id,lot_id,quantity\nS1,B3,7\nS1,B2,8\n")
    book = book_with({"lots": {"method": "specific", "selections": str(selections)}})
    load(book, tmp_path, HISTORY)
    assert table(book.gains(), SLICE) == rows("""
        7, 2024-06-03, 2025-02-03,  770,  735,   35, short, B3
        8, 2024-03-01, 2025-02-03,  880,  960,  -80, short, B2
        8, 2024-01-02, 2025-04-01,  920,  800,  120, long,  B1
    """)
    # S1 (file): 7 of B3 (7 × 110 = 770 − 7 × 105 = 735), 8 of B2 (880 − 960).
    # S2 (lot_id B1): 8 of B1 (8 × 115 = 920 − 800).
    assert table(book.lots(open_only=True), OPEN) == rows("""
        Alpaca, VTI, B1, 2024-01-02, 2, 200
        Alpaca, VTI, B2, 2024-03-01, 2, 240
        Alpaca, VTI, B3, 2024-06-03, 3, 315
    """)
    assert book.booked().errors == [] and book.booked().problems == []


def test_every_method_conserves_the_history(book: Book, tmp_path: Path) -> None:
    """Whatever the order, the same shares and the same basis leave: sold + open = bought."""
    load(book, tmp_path, HISTORY)
    for method in ("fifo", "lifo", "hifo", "taxmin"):
        sold, lots = book.booked(method=method).disposals, book.booked(method=method).lots
        assert total(sold["quantity"]) + total(lots["open_quantity"]) == Decimal(30)
        assert total(sold["cost_basis"]) + total(lots["open_basis"]) == Decimal(3250)  # 1000 + 1200 + 1050
        assert total(sold["proceeds"]) == Decimal(2570)  # 1650 + 920


# -- fees ------------------------------------------------------------------------------------------


def test_buy_fees_add_to_basis_and_sell_fees_reduce_proceeds(book: Book, tmp_path: Path) -> None:
    """Fees (tax-rules.md §2.1): a purchase fee is part of the cost; a selling fee comes off the
    amount realized. The basis is then split pro rata at 18 decimals."""
    load(book, tmp_path, """
        2025-01-02,Alpaca,VTI,buy,3,50.00,0.35,USD,etf,B1,
        2025-03-03,Alpaca,VTI,sell,2,55.00,0.20,USD,etf,S1,
    """)
    # Basis 3 × 50.00 + 0.35 = 150.35; unit 150.35 ÷ 3 = 50.116666666666666666|67 → …667 (half
    # even at 18 places); 2 shares: 2 × 50.116666666666666667 = 100.233333333333333334.
    # Proceeds 2 × 55.00 − 0.20 = 109.80; gain 109.80 − 100.233333333333333334.
    assert table(book.gains(), SLICE) == rows("""
        2, 2025-01-02, 2025-03-03, 109.8, 100.233333333333333334, 9.566666666666666666, short, B1
    """)
    # What stays is the rest of the 150.35, to the last digit: 150.35 − 100.233333333333333334.
    assert table(book.lots(open_only=True), OPEN) == rows("Alpaca, VTI, B1, 2025-01-02, 1, 50.116666666666666666")


def test_hifo_ranks_lots_by_their_basis_with_the_fee(book: Book, tmp_path: Path) -> None:
    """HIFO ranks by basis per share with the purchase fee in it, as the broker's 1099-B does
    (RP2's HIFO ranked by price alone and differed from an exchange's 1099: rp2#150). B2 was
    bought cheaper per share but its fee makes its basis the higher one."""
    load(book, tmp_path, """
        2025-01-02,Alpaca,VTI,buy,10,100.00,0,USD,etf,B1,
        2025-01-03,Alpaca,VTI,buy,10,99.95,1.00,USD,etf,B2,
        2025-03-03,Alpaca,VTI,sell,10,101.00,0,USD,etf,S1,
    """)
    # B1: 10 × 100.00 = 1000.00 (100.00 a share). B2: 10 × 99.95 + 1.00 = 1000.50 (100.05 a
    # share): HIFO sells B2. Proceeds 1010.00 − 1000.50 = 9.50.
    assert table(book.gains(method="hifo"), SLICE) == rows("""
        10, 2025-01-03, 2025-03-03, 1010, 1000.5, 9.5, short, B2
    """)


def test_a_fee_in_another_currency_is_left_out_with_a_problem(book: Book, tmp_path: Path) -> None:
    """A fee charged in another currency has no exchange rate to bring it into the trade's
    currency: it is left out of basis or proceeds, and a problem names the row. (The generic
    CSV's fee is always in the trade currency, so this uses an IBKR Flex export, whose
    IBCommissionCurrency can differ.)"""
    path = write(tmp_path, "flex.csv", """
        "Buy/Sell","TradeDate","Symbol","Quantity","TradePrice","CurrencyPrimary","IBCommission","IBCommissionCurrency","TradeID"
        "BUY","20250102","VT","10","100","USD","-1","USD","B1"
        "SELL","20250203","VT","-4","110","USD","-0.35","CHF","S1"
    """)
    assert book.ingest([path]).ok
    # Buy: 10 × 100 + 1.00 USD fee = 1001.00; 4 shares carry 400.40. Sale: 4 × 110 = 440.00,
    # the 0.35 CHF commission is not subtracted.
    assert table(book.gains(), SLICE) == rows("4, 2025-01-02, 2025-02-03, 440, 400.4, 39.6, short, B1")
    assert messages(book.booked().problems) == [
        f"{path}:3: fee of 0.35 CHF on a USD trade is left out of its basis or proceeds (no exchange rate)",
    ]


# -- fractions and the pro-rata rule ---------------------------------------------------------------


def test_a_basis_that_does_not_divide_evenly_adds_up_exactly(book: Book, tmp_path: Path) -> None:
    """Pro rata: F(c) = (B ÷ Q) × c rounded at 18 places, and F(Q) = B, so the slices of a lot
    add up to its basis exactly whatever the rounding."""
    load(book, tmp_path, """
        2025-01-02,Coinbase,BTC,buy,3,33.33,0.01,USD,crypto,B1,
        2025-02-03,Coinbase,BTC,sell,1,40.00,0,USD,crypto,S1,
    """)
    # Basis 3 × 33.33 + 0.01 = 100.00. Unit 100 ÷ 3 = 33.333333333333333333 (18 places).
    assert table(book.gains(), SLICE) == rows("1, 2025-01-02, 2025-02-03, 40, 33.333333333333333333, 6.666666666666666667, short, B1")
    # The remaining 2 carry 100 − 33.333333333333333333 = 66.666666666666666667, not 2 × 33.33…
    assert table(book.lots(open_only=True), OPEN) == rows("Coinbase, BTC, B1, 2025-01-02, 2, 66.666666666666666667")

    load(book, tmp_path, "2025-03-03,Coinbase,BTC,sell,2,45.00,0,USD,crypto,S2,\n", name="more.csv")
    # Last slice: F(3) − F(1) = 100 − 33.333333333333333333; the lot's slices sum to 100 exactly.
    gains = book.gains()
    assert table(gains, SLICE)[1] == "2,2025-01-02,2025-03-03,90,66.666666666666666667,23.333333333333333333,short,B1"
    assert gains["cost_basis"].sum() == Decimal(100)


def test_crypto_quantities_with_8_and_18_decimals(book: Book, tmp_path: Path) -> None:
    """Fractional crypto: quantities up to 18 decimals, basis split pro rata exactly."""
    load(book, tmp_path, """
        2025-01-02,Coinbase,ETH,buy,0.123456789012345678,2500.00,1.99,USD,crypto,E1,
        2025-02-03,Coinbase,ETH,sell,0.1,3000.00,0.50,USD,crypto,E2,
        2025-01-02,Coinbase,BTC,buy,0.00012345,97123.45,0.99,USD,crypto,C1,
        2025-02-03,Coinbase,BTC,sell,0.0001,100000.00,0.10,USD,crypto,C2,
    """)
    # ETH basis 0.123456789012345678 × 2500 + 1.99 = 310.631972530864195;
    #   unit 310.631972530864195 ÷ 0.123456789012345678 = 2516.119000145071001438 (18 places),
    #   × 0.1 = 251.611900014507100144 (rounded at 18 places: …1001438 × 0.1 = …10014|38 → …100144);
    #   proceeds 0.1 × 3000 − 0.50 = 299.50; gain 299.50 − 251.611900014507100144.
    # BTC basis 0.00012345 × 97123.45 + 0.99 = 11.9898899025 + 0.99 = 12.9798899025;
    #   unit 12.9798899025 ÷ 0.00012345 = 105142.891069258809234508, × 0.0001 = 10.514289106925880923
    #   (…9234508 × 0.0001 → …923|4508 → …923); proceeds 0.0001 × 100000 − 0.10 = 9.90.
    assert table(book.gains(symbol="ETH"), SLICE) == rows("""
        0.1, 2025-01-02, 2025-02-03, 299.5, 251.611900014507100144, 47.888099985492899856, short, E1
    """)
    assert table(book.gains(symbol="BTC"), SLICE) == rows("""
        0.0001, 2025-01-02, 2025-02-03, 9.9, 10.514289106925880923, -0.614289106925880923, short, C1
    """)
    # Open: ETH 0.023456789012345678 with 310.631972530864195 − 251.611900014507100144;
    #       BTC 0.00002345 with 12.9798899025 − 10.514289106925880923.
    assert table(book.lots(open_only=True), OPEN) == rows("""
        Coinbase, ETH, E1, 2025-01-02, 0.023456789012345678, 59.020072516357094856
        Coinbase, BTC, C1, 2025-01-02, 0.00002345, 2.465600795574119077
    """)


# -- holding period and tax dates --------------------------------------------------------------------


def test_a_sale_on_the_anniversary_is_short_term_the_day_after_long_term(book: Book, tmp_path: Path) -> None:
    """Holding period (tax-rules.md §1, HP-1/HP-2): long-term only if held *more than* a year,
    counting from the day after the trade date; a sale on the anniversary is short-term."""
    load(book, tmp_path, """
        2024-02-05,Alpaca,VTI,buy,2,200.00,0,USD,etf,B1,
        2025-02-05,Alpaca,VTI,sell,1,210.00,0,USD,etf,S1,
        2025-02-06,Alpaca,VTI,sell,1,220.00,0,USD,etf,S2,
    """)
    assert table(book.gains(), SLICE) == rows("""
        1, 2024-02-05, 2025-02-05, 210, 200, 10, short, B1
        1, 2024-02-05, 2025-02-06, 220, 200, 20, long,  B1
    """)


def test_a_fill_after_midnight_utc_is_a_new_york_trade_of_the_day_before(book: Book, tmp_path: Path) -> None:
    """Tax dates are in the taxpayer's time zone (America/New_York by default): a fill at
    2026-01-01T01:30:00Z is 2025-12-31 20:30 in New York, so it is a 2025 sale, and for the
    holding period it falls on the anniversary of a 2024-12-31 buy (month end: the last short-
    term day is 2025-12-31), so it is short-term. At 05:30Z (00:30 in New York) it is a 2026,
    long-term sale."""
    load(book, tmp_path, """
        2024-12-31,Coinbase,BTC,buy,1,50000.00,0,USD,crypto,B1,
        2026-01-01T01:30:00Z,Coinbase,BTC,sell,0.5,90000.00,0,USD,crypto,S1,
        2026-01-01T05:30:00Z,Coinbase,BTC,sell,0.25,92000.00,0,USD,crypto,S2,
    """)
    # S1: 0.5 × 90000 = 45000 − 0.5 × 50000 = 25000. S2: 0.25 × 92000 = 23000 − 12500.
    assert table(book.gains(year=2025), SLICE) == rows("0.5, 2024-12-31, 2025-12-31, 45000, 25000, 20000, short, B1")
    assert table(book.gains(year=2026), SLICE) == rows("0.25, 2024-12-31, 2026-01-01, 23000, 12500, 10500, long, B1")



def test_same_day_lots_of_a_date_only_file_go_in_line_order(book: Book, tmp_path: Path) -> None:
    """Two buys on one date with no time: the file's order decides which is first (line 2
    before line 11, by number, although "trades.csv:11" sorts before "trades.csv:2" as text)."""
    load(book, tmp_path, "2025-03-03,Alpaca,VTI,buy,1,100.00,0,USD,equity,B1,\n"
         + "".join(f"2025-03-03,Alpaca,QQQ,buy,1,400.00,0,USD,equity,Q{i},\n" for i in range(8))
         + "2025-03-03,Alpaca,VTI,buy,1,200.00,0,USD,equity,B2,\n"
         + "2025-03-04,Alpaca,VTI,sell,1,150.00,0,USD,equity,S1,\n")
    # FIFO takes B1 (line 2): 150 − 100 = 50. Taking B2 (line 11) would give 150 − 200 = −50.
    assert table(book.gains(), SLICE) == rows("1, 2025-03-03, 2025-03-04, 150, 100, 50, short, B1")

# -- splits ------------------------------------------------------------------------------------------


def test_forward_and_reverse_splits_change_quantities_and_keep_basis_and_dates(book: Book, tmp_path: Path) -> None:
    """Splits: split_in adds shares and split_out removes them, pro rata across the open lots;
    each lot keeps its basis and its acquisition date (so the holding period is unchanged)."""
    load(book, tmp_path, """
        2024-01-02,Alpaca,NVDA,buy,10,500.00,0,USD,equity,B1,
        2024-02-01,Alpaca,NVDA,buy,5,600.00,0,USD,equity,B2,
        2024-03-01,Alpaca,NVDA,sell,3,700.00,0,USD,equity,S1,
        2024-06-10,Alpaca,NVDA,split_in,108,0,0,USD,equity,X1,
        2024-09-03,Alpaca,NVDA,split_out,60,0,0,USD,equity,X2,
        2025-03-03,Alpaca,NVDA,sell,30,120.00,0,USD,equity,S2,
    """)
    # Before the splits: B1 7 left (basis 3500), B2 5 (3000): 12 held.
    # 10-for-1 (12 + 108 = 120): B1 70, B2 50. 1-for-2 (120 − 60 = 60): B1 35, B2 25.
    # S2 takes 30 of B1's 35: basis 3500 × 30 ÷ 35 = 3000, acquired still 2024-01-02: long-term.
    assert table(book.gains(), SLICE) == rows("""
         3, 2024-01-02, 2024-03-01, 2100, 1500, 600, short, B1
        30, 2024-01-02, 2025-03-03, 3600, 3000, 600, long,  B1
    """)
    assert table(book.lots(open_only=True), OPEN) == rows("""
        Alpaca, NVDA, B1, 2024-01-02,  5,  500
        Alpaca, NVDA, B2, 2024-02-01, 25, 3000
    """)
    # Basis is conserved through both splits: 1500 + 3000 sold, 500 + 3000 open = 5000 + 3000.
    lots = book.lots()
    assert lots["cost_basis"].sum() == Decimal(8000)
    assert book.booked().problems == []


# -- transfers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("arrives", ["2024-05-03", "2024-05-01", "2024-04-28"], ids=["after", "same-day", "before"])
def test_a_transfer_between_own_accounts_moves_the_lot(book: Book, tmp_path: Path, arrives: str) -> None:
    """Transfers between the household's own accounts are not sales: a transfer_out and a
    transfer_in of the same symbol and quantity within 7 days pair up, and the lot arrives with
    its basis and acquisition date, whichever side is dated first."""
    load(book, tmp_path, f"""
        2024-01-02,Schwab,VTI,buy,10,100.00,0,USD,etf,B1,
        2024-05-01,Schwab,VTI,transfer_out,10,0,0,USD,etf,T1,
        {arrives},Fidelity,VTI,transfer_in,10,0,0,USD,etf,T2,
        2025-02-03,Fidelity,VTI,sell,6,110.00,0,USD,etf,S1,
    """)
    # 6 of B1 sold from Fidelity: 660 − 6 × 100 = 600, acquired 2024-01-02, so long-term.
    gains = book.gains()
    assert table(gains, "account," + SLICE) == rows("Fidelity, 6, 2024-01-02, 2025-02-03, 660, 600, 60, long, B1")
    assert table(book.lots(open_only=True), OPEN) == rows("Fidelity, VTI, B1, 2024-01-02, 4, 400")
    assert book.booked().problems == []


def test_an_unpaired_transfer_in_has_unknown_basis(book: Book, tmp_path: Path) -> None:
    """A transfer in with no transfer out (from outside the data) has unknown basis: its sale
    shows an empty cost_basis and gain, never zero, and a problem names the row."""
    path = load(book, tmp_path, """
        2024-01-02,Schwab,VTI,buy,4,100.00,0,USD,etf,B1,
        2024-05-01,Schwab,VTI,transfer_out,4,0,0,USD,etf,T1,
        2024-05-09,Fidelity,VTI,transfer_in,4,0,0,USD,etf,T2,
        2025-02-03,Fidelity,VTI,sell,4,110.00,0,USD,etf,S1,
    """)
    # The transfer in is 8 days after the transfer out: outside the 7-day window, unpaired.
    assert table(book.gains(), SLICE) == rows("4, 2024-05-09, 2025-02-03, 440, , , short, T2")
    problems = messages(book.booked().problems)
    assert problems == [
        f"{path}:3: transfer out of 4 VTI from Schwab has no matching transfer in: its lots left the accounts taxlens knows (not a sale)",
        f"{path}:4: transfer in of 4 VTI to Fidelity has no matching transfer out within 7 days: its basis is unknown (add it as an opening lot)",
    ]
    lot = book.lots(account="Fidelity").row(0, named=True)
    assert (lot["cost_basis"], lot["open_basis"]) == (None, None)


def test_a_coin_transfer_that_arrives_short_by_a_network_fee_pays_the_fee_in_the_coin(book: Book, tmp_path: Path) -> None:
    """Binance withdraws 0.5 BTC and Kraken receives 0.4995: the sender paid the network fee
    out of the coins. Using coins to pay a fee is a disposition (Reg. §1.1001-7(b)(1)(ii)):
    the 0.0005 leaves first as a coin fee (no proceeds), then the lot moves what arrived.

    | slice | quantity | acquired   | disposed   | proceeds | basis                 | gain   |
    | W1    | 0.0005   | 2025-01-10 | 2025-03-01 | 0        | 0.0005 × 40,000 = 20  | -20    |
    | S1    | 0.4995   | 2025-01-10 | 2025-06-02 | 29,970   | 0.4995 × 40,000 = 19,980 | 9,990 |
    """
    path = load(book, tmp_path, """
        2025-01-10T10:00:00Z,Binance,BTC,buy,0.5,40000,0,USD,crypto,B1,
        2025-03-01T12:00:00Z,Binance,BTC,transfer_out,0.5,0,0,USD,crypto,W1,
        2025-03-01T12:40:00Z,Kraken,BTC,transfer_in,0.4995,0,0,USD,crypto,D1,
        2025-06-02T09:00:00Z,Kraken,BTC,sell,0.4995,60000,0,USD,crypto,S1,
    """)
    assert table(book.gains(), "account,sell_trade_id," + SLICE) == rows("""
        Binance, W1, 0.0005, 2025-01-10, 2025-03-01,     0,    20,  -20, short, B1
        Kraken,  S1, 0.4995, 2025-01-10, 2025-06-02, 29970, 19980, 9990, short, B1
    """)
    assert book.lots(open_only=True).height == 0
    assert messages(book.booked().problems) == [
        f"{path}:3: transfer out of 0.5 BTC from Binance arrived in Kraken as 0.4995: the 0.0005 BTC between is booked "
        "as a network fee paid in the coin (a disposal for no proceeds)",
    ]


@pytest.mark.parametrize("asset_class,arrived", [("equity", "99"), ("crypto", "94")], ids=["shares", "over-5%"])
def test_a_transfer_in_short_of_its_transfer_out_pairs_only_for_a_coin_within_5_percent(
    book: Book, tmp_path: Path, asset_class: str, arrived: str,
) -> None:
    """Shares move whole (a broker transfer has no network fee), and a coin that arrives more
    than 5% short is not taken for a fee: both stay two unpaired transfers, as before."""
    load(book, tmp_path, f"""
        2025-01-10,Schwab,X,buy,100,10,0,USD,{asset_class},B1,
        2025-03-01,Schwab,X,transfer_out,100,0,0,USD,{asset_class},W1,
        2025-03-02,Fidelity,X,transfer_in,{arrived},0,0,USD,{asset_class},D1,
    """)
    assert table(book.lots(open_only=True), OPEN) == rows(f"Fidelity, X, D1, 2025-03-02, {arrived}, ")
    assert book.gains().height == 0


def test_a_transfer_out_and_in_of_another_symbol_at_one_moment_is_a_rename(book: Book, tmp_path: Path) -> None:
    """Coinbase turned staked ETH2 back into ETH as a Send of ETH2 and a Receive of as much ETH
    at the same second; a ticker change looks the same. That pair is one holding renamed: the
    lots go on under the new symbol with their basis and dates, and taxlens says so.

    | lot | acquired   | basis            | after the 2025-01-07 rename       |
    | B1  | 2023-05-28 | 0.5 × 1800 = 900 | ETH, 2023-05-28, 900              |
    | B2  | 2024-03-01 | 0.25 × 3000 = 750| ETH, 2024-03-01, 750              |
    Sale S1 of 0.6 ETH at 3400 = 2040 (FIFO): 0.5 of B1 (1700 − 900 = 800, long) and 0.1 of B2
    (340 − 300 = 40, short: 2024-03-01 to 2025-02-10 is under a year).
    """
    path = load(book, tmp_path, """
        2023-05-28T06:23:38Z,Coinbase,ETH2,buy,0.5,1800,0,USD,crypto,B1,
        2024-03-01T10:00:00Z,Coinbase,ETH2,buy,0.25,3000,0,USD,crypto,B2,
        2025-01-07T19:26:56Z,Coinbase,ETH2,transfer_out,0.75,0,0,USD,crypto,T1,
        2025-01-07T19:26:56Z,Coinbase,ETH,transfer_in,0.75,0,0,USD,crypto,T2,
        2025-02-10T12:00:00Z,Coinbase,ETH,sell,0.6,3400,0,USD,crypto,S1,
    """)
    assert table(book.gains(), "symbol," + SLICE) == rows("""
        ETH, 0.5, 2023-05-28, 2025-02-10, 1700, 900, 800, long, B1
        ETH, 0.1, 2024-03-01, 2025-02-10, 340,  300,  40, short, B2
    """)
    assert table(book.lots(open_only=True), OPEN) == rows("Coinbase, ETH, B2, 2024-03-01, 0.15, 450")
    assert messages(book.booked().problems) == [
        f"{path}:4: transfer out of 0.75 ETH2 and in of as many ETH at the same moment in Coinbase: booked as one holding "
        "renamed, its lots keep their basis and dates (not a sale)",
    ]


@pytest.mark.parametrize("out_at,in_at,asset_class,renamed", [
    ("2022-06-09", "2022-06-09", "equity", True),  # dates only (a broker's ticker change): the same day
    ("2025-01-07T19:26:56Z", "2025-01-07T19:26:57Z", "equity", False),  # a second apart: two transfers
    ("2022-06-09", "2022-06-10", "equity", False),
    ("2022-06-09", "2022-06-09", "crypto", False),  # coins need the instant: a day's out and in may be two
], ids=["same-date", "another-instant", "another-date", "coins-same-date"])
def test_a_rename_needs_one_account_one_moment_and_one_quantity(
    book: Book, tmp_path: Path, out_at: str, in_at: str, asset_class: str, renamed: bool,
) -> None:
    """FB became META on 2022-06-09: a transfer out of FB and in of as many META in one account
    on that date (no times given) is a rename. At other moments they stay two unpaired
    transfers, as before: the FB lot leaves, and the META shares arrive with unknown basis."""
    load(book, tmp_path, f"""
        2021-03-01,Schwab,FB,buy,10,250,0,USD,{asset_class},B1,
        {out_at},Schwab,FB,transfer_out,10,0,0,USD,{asset_class},T1,
        {in_at},Schwab,META,transfer_in,10,0,0,USD,{asset_class},T2,
    """)
    expected = "Schwab, META, B1, 2021-03-01, 10, 2500" if renamed else f"Schwab, META, T2, {in_at[:10]}, 10, "
    assert table(book.lots(open_only=True), OPEN) == rows(expected)


# -- partial histories -------------------------------------------------------------------------------


def test_a_sale_larger_than_the_holdings_books_the_excess_with_unknown_basis(book: Book, tmp_path: Path) -> None:
    """Partial history: a sale of more than is held books what is held against its lots and
    the excess as a basis-unknown slice (no lot, no basis, no gain; never a zero basis), with a
    problem pointing at the sale's file and line and at opening lots."""
    path = load(book, tmp_path, """
        2025-01-02,Alpaca,VTI,buy,2,100.00,0,USD,etf,B1,
        2025-02-03,Alpaca,VTI,sell,5,110.00,0,USD,etf,S1,
        2025-02-04,Alpaca,QQQ,sell,1,500.00,0,USD,etf,S2,
    """)
    # S1: 5 × 110 = 550 split pro rata: 2 from B1 (220 − 200) and 3 unknown (330).
    # S2: nothing held at all: the whole sale is unknown.
    assert table(book.gains(), SLICE) == rows("""
        2, 2025-01-02, 2025-02-03, 220, 200, 20, short, B1
        3,           , 2025-02-03, 330,    ,   ,      ,
        1,           , 2025-02-04, 500,    ,   ,      ,
    """)
    problems = messages(book.booked().problems)
    assert problems == [
        f'{path}:3: sale of 5 VTI in Alpaca exceeds the 2 held; 3 booked with unknown basis (add opening lots: README, "Partial histories")',
        f'{path}:4: sale of 1 QQQ in Alpaca exceeds the 0 held; 1 booked with unknown basis (add opening lots: README, "Partial histories")',
    ]
    assert all("opening lots" in p for p in problems)
    assert book.gains().filter(pl.col("lot_id").is_null())["cost_basis"].null_count() == 2


# -- methods from configuration -----------------------------------------------------------------------

# Two accounts with the same three lots (unit bases 100, 120, 105), each selling 5 in 2024 and 5 in
# 2025 at 110.00 (550.00). Every lot is long-term at both sales.
TWO_ACCOUNTS = """\
2023-01-03,Alpaca,VTI,buy,10,100.00,0,USD,etf,A1,
2023-02-01,Alpaca,VTI,buy,10,120.00,0,USD,etf,A2,
2023-03-01,Alpaca,VTI,buy,10,105.00,0,USD,etf,A3,
2024-06-03,Alpaca,VTI,sell,5,110.00,0,USD,etf,AS1,
2025-06-02,Alpaca,VTI,sell,5,110.00,0,USD,etf,AS2,
2023-01-03,Schwab,VTI,buy,10,100.00,0,USD,etf,C1,
2023-02-01,Schwab,VTI,buy,10,120.00,0,USD,etf,C2,
2023-03-01,Schwab,VTI,buy,10,105.00,0,USD,etf,C3,
2024-06-03,Schwab,VTI,sell,5,110.00,0,USD,etf,CS1,
2025-06-02,Schwab,VTI,sell,5,110.00,0,USD,etf,CS2,
"""
WITH_METHOD = "account,method,sell_trade_id," + SLICE


def test_a_method_per_account_and_per_tax_year(book_with, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """taxlens.toml: [lots] method is the default; an account's method applies to its sales, and
    its methods = {year = …} to the sales of that tax year (the more specific rule wins)."""
    book = book_with({
        "lots": {"method": "fifo"},
        "accounts": {"Alpaca": {"method": "lifo", "methods": {"2025": "hifo"}}},
    })
    load(book, tmp_path, TWO_ACCOUNTS)
    gains = book.gains().sort("account", "disposed")
    assert table(gains, WITH_METHOD) == rows("""
        Alpaca, lifo, AS1, 5, 2023-03-01, 2024-06-03, 550, 525,  25, long, A3
        Alpaca, hifo, AS2, 5, 2023-02-01, 2025-06-02, 550, 600, -50, long, A2
        Schwab, fifo, CS1, 5, 2023-01-03, 2024-06-03, 550, 500,  50, long, C1
        Schwab, fifo, CS2, 5, 2023-01-03, 2025-06-02, 550, 500,  50, long, C1
    """)
    # Alpaca 2024, LIFO: 5 of A3 (5 × 105 = 525). Alpaca 2025, HIFO: 5 of A2 (5 × 120 = 600).
    # Schwab, default FIFO: 5 of C1 each year (5 × 100 = 500).


def test_the_method_override_applies_to_every_sale(book_with, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--method (``method=``) overrides taxlens.toml for every sale of every account and year."""
    book = book_with({
        "lots": {"method": "fifo"},
        "accounts": {"Alpaca": {"method": "lifo", "methods": {"2025": "hifo"}}},
    })
    load(book, tmp_path, TWO_ACCOUNTS)
    gains = book.gains(method="lifo").sort("account", "disposed")
    assert table(gains, WITH_METHOD) == rows("""
        Alpaca, lifo, AS1, 5, 2023-03-01, 2024-06-03, 550, 525, 25, long, A3
        Alpaca, lifo, AS2, 5, 2023-03-01, 2025-06-02, 550, 525, 25, long, A3
        Schwab, lifo, CS1, 5, 2023-03-01, 2024-06-03, 550, 525, 25, long, C3
        Schwab, lifo, CS2, 5, 2023-03-01, 2025-06-02, 550, 525, 25, long, C3
    """)
    # Each sale takes 5 of the latest lot (105.00): 550 − 525. The configured methods are back
    # without the override.
    assert set(book.gains()["method"]) == {"lifo", "hifo", "fifo"}


# -- specific-ID errors -------------------------------------------------------------------------------


def test_specific_id_errors_point_at_the_sale(book: Book, tmp_path: Path) -> None:
    """Specific identification that can't be honoured (a lot that doesn't exist, a lot already
    sold, a lot with too few shares left, no lot named) is an error naming the sale's file and
    line; the sales that can be honoured are booked."""
    path = load(book, tmp_path, """
        2025-01-02,Alpaca,VTI,buy,2,100.00,0,USD,etf,B1,
        2025-01-03,Alpaca,VTI,buy,2,101.00,0,USD,etf,B2,
        2025-02-03,Alpaca,VTI,sell,1,110.00,0,USD,etf,S1,NOPE
        2025-02-04,Alpaca,VTI,sell,2,110.00,0,USD,etf,S2,B1
        2025-02-05,Alpaca,VTI,sell,1,110.00,0,USD,etf,S3,B1
        2025-02-06,Alpaca,VTI,sell,1,110.00,0,USD,etf,S4,B2
        2025-02-07,Alpaca,VTI,sell,2,110.00,0,USD,etf,S5,B2
        2025-02-10,Alpaca,VTI,sell,1,110.00,0,USD,etf,S6,
    """)
    booked = book.booked(method="specific")
    assert messages(booked.errors) == [
        f"{path}:4: sale S1 names lot 'NOPE', which is not open in Alpaca VTI",
        f"{path}:6: sale S3 names lot 'B1', which is not open in Alpaca VTI",  # exhausted by S2
        f"{path}:8: sale S5 takes 2 from lot 'B2', which has 1 left",
        f"{path}:9: sale S6 names no lot (specific identification needs a lot_id or a lot-selection file)",
    ]
    # Only S2 (2 of B1: 220 − 200) and S4 (1 of B2: 110 − 101) are booked.
    assert table(booked.disposals, "sell_trade_id," + SLICE) == rows("""
        S2, 2, 2025-01-02, 2025-02-04, 220, 200, 20, short, B1
        S4, 1, 2025-01-03, 2025-02-06, 110, 101,  9, short, B2
    """)


# -- the command line ---------------------------------------------------------------------------------


def test_cli_gains_and_open_lots_as_csv(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`taxlens gains --format csv` prints the contract columns with money in cents (gain from
    the rounded figures); a basis-unknown slice has empty basis and gain. `taxlens lots --open
    --format csv` prints what remains of each open lot."""
    write(tmp_path, "t.csv", HEADER + textwrap.dedent("""
        2025-01-02,Coinbase,BTC,buy,3,33.33,0.01,USD,crypto,B1,
        2025-02-03,Coinbase,BTC,sell,1,40.005,0,USD,crypto,S1,
        2025-01-02,Alpaca,VTI,buy,2,100.00,0.35,USD,etf,B2,
        2025-02-03,Alpaca,VTI,sell,5,110.00,0,USD,etf,S2,
    """).lstrip("\n"))
    assert run("ingest", "t.csv").exit_code == 0
    gains = run("gains", "--format", "csv")
    assert gains.exit_code == 0, gains.output
    # BTC: proceeds 40.005 → 40.01 (half up), basis 33.333… → 33.33, gain 40.01 − 33.33 = 6.68.
    # VTI: 550 split 2 : 3 → 220.00 and 330.00; B2's basis 200 + 0.35 fee = 200.35.
    assert gains.stdout.splitlines() == [
        "account,symbol,quantity,acquired,disposed,proceeds,cost_basis,adjustment_code,adjustment,gain,term,method,sell_trade_id,lot_id",
        "Coinbase,BTC,1,2025-01-02,2025-02-03,40.01,33.33,,0.00,6.68,short,fifo,S1,B1",
        "Alpaca,VTI,2,2025-01-02,2025-02-03,220.00,200.35,,0.00,19.65,short,fifo,S2,B2",
        "Alpaca,VTI,3,,2025-02-03,330.00,,,0.00,,,fifo,S2,",
    ]
    assert 't.csv:5: sale of 5 VTI in Alpaca exceeds the 2 held; 3 booked with unknown basis' in gains.stderr

    lots = run("lots", "--open", "--format", "csv")
    assert lots.exit_code == 0, lots.output
    # 2 BTC left with 100 − 33.333333333333333333 = 66.666666666666666667 → 66.67.
    assert lots.stdout.splitlines() == [
        "account,symbol,lot_id,acquired,adjusted_acquired,quantity,cost_basis,adjusted_basis,long_term_from",
        "Coinbase,BTC,B1,2025-01-02,2025-01-02,2,66.67,66.67,2026-01-03",
    ]


@pytest.mark.parametrize("month_end_rule", [True, False])
def test_cli_lots_say_when_each_turns_long_term(run, tmp_path: Path, month_end_rule: bool) -> None:  # type: ignore[no-untyped-def]
    """`long_term_from` is the first tax date a sale of the lot is long-term: the day after the
    anniversary of its (wash-adjusted) acquisition date, leap days as tax-rules §1 counts them.

    | lot | acquired   | anniversary                     | long-term from |
    | B1  | 2023-02-28 | 2024-02-29 (month end; HP-6)    | 2024-03-01     |
    |     |            | 2024-02-28 (same date, rule off)| 2024-02-29     |
    | B2  | 2024-02-29 | 2025-02-28                      | 2025-03-01     |
    | B4  | 2024-05-10, replacing the 5/1 loss on B3 (bought 2024-03-04, held 58 days):
    |     | adjusted 2024-03-13 | 2025-03-13             | 2025-03-14     |
    """
    if not month_end_rule:
        write(tmp_path, "taxlens.toml", "[lots]\nholding_period_month_end = false\n")
    write(tmp_path, "t.csv", HEADER + textwrap.dedent("""
        2023-02-28,Alpaca,VTI,buy,1,100.00,0,USD,etf,B1,
        2024-02-29,Alpaca,VXUS,buy,1,50.00,0,USD,etf,B2,
        2024-03-04,Alpaca,BND,buy,1,80.00,0,USD,etf,B3,
        2024-05-01,Alpaca,BND,sell,1,70.00,0,USD,etf,S3,
        2024-05-10,Alpaca,BND,buy,1,71.00,0,USD,etf,B4,
    """).lstrip("\n"))
    assert run("ingest", "t.csv").exit_code == 0
    lots = run("lots", "--open", "--format", "csv")
    assert lots.exit_code == 0, lots.output
    b1 = "2024-03-01" if month_end_rule else "2024-02-29"
    assert [line.split(",")[2:5] + line.split(",")[-1:] for line in lots.stdout.splitlines()[1:]] == [
        ["B1", "2023-02-28", "2023-02-28", b1],
        ["B2", "2024-02-29", "2024-02-29", "2025-03-01"],
        ["B4", "2024-05-10", "2024-03-13", "2025-03-14"],
    ]


def test_cli_open_lots_valued_at_the_last_close(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`lots --open --prices FILE` values each open lot at its symbol's last close on or before
    --as-of (exact, then cents), with the term a sale at that close would have, the shares
    bought in the 30 days before that would wash a loss sale, and totals by term over the
    taxable accounts: what tax-loss harvesting could realize.

    | lot | open         | adjusted basis | close (date)     | value     | unrealized | term  | bought |
    | B1  | 10 VTI       | 2,000          | 190 (2025-06-30) | 1,900     | -100       | long  | 5      |
    | B2  |  5 VTI       | 1,250.05       | 190              |   950     | -300.05    | short | 5      |
    | B3  |  2 VTI       | 378            | 190              |   380     | 2          | short | 3      |
    | R1  |  3 VTI (IRA) | 564            | 190              |   570     | 6          | short |        |
    | C1  | 0.5 BTC      | 30,000         | 66,000.5         | 33,000.25 | 3,000.25   | short |        |
    | T1  | 3 BND (in)   | unknown        | 72.5             |   217.50  | (unknown)  | short | 0      |
    | Q1  | 4 QQQ        | 2,000          | none             |           |            |       |        |
    B1: 2024-03-01 → long-term from 2025-03-02. The 2025-07-01 close is after --as-of: unused.
    The file's "btc" prices BTC: tickers match in any case.
    Bought in 2025-05-31..2025-06-30: R1's 3 (an IRA purchase washes a taxable loss too) and
    B3's 2; B3 does not count its own. Nothing for the IRA lot (no loss there is disallowed),
    BTC (the rule is off for crypto) or a transfer in (not a purchase).
    """
    write(tmp_path, "taxlens.toml", '[accounts.IRA]\ntype = "roth_ira"\n')
    write(tmp_path, "t.csv", HEADER + textwrap.dedent("""
        2024-03-01,Alpaca,VTI,buy,10,200,0,USD,etf,B1,
        2025-02-03,Alpaca,VTI,buy,5,250,0.05,USD,etf,B2,
        2025-03-10,Coinbase,BTC,buy,0.5,60000,0,USD,crypto,C1,
        2025-04-01,Alpaca,BND,transfer_in,3,0,0,USD,etf,T1,
        2025-05-01,Alpaca,QQQ,buy,4,500,0,USD,etf,Q1,
        2025-06-20,IRA,VTI,buy,3,188,0,USD,etf,R1,
        2025-06-25,Alpaca,VTI,buy,2,189,0,USD,etf,B3,
    """).lstrip("\n"))
    write(tmp_path, "closes.csv", """\
        date,symbol,close
        2025-06-27,VTI,185
        2025-06-30,VTI,190
        2025-07-01,VTI,400
        2025-06-30,btc,66000.5
        2025-06-30,BND,72.5
    """)
    assert run("ingest", "t.csv").exit_code == 0
    lots = run("lots", "--open", "--prices", "closes.csv", "--as-of", "2025-06-30", "--format", "csv")
    assert lots.exit_code == 0, lots.output
    assert [line.split(",")[:3] + line.split(",")[7:] for line in lots.stdout.splitlines()] == [
        ["account", "symbol", "lot_id", "adjusted_basis", "long_term_from", "price_date", "price", "market_value", "unrealized",
         "term_if_sold", "bought_last_30_days"],
        ["Alpaca", "VTI", "B1", "2000.00", "2025-03-02", "2025-06-30", "190", "1900.00", "-100.00", "long", "5"],
        ["Alpaca", "VTI", "B2", "1250.05", "2026-02-04", "2025-06-30", "190", "950.00", "-300.05", "short", "5"],
        ["Coinbase", "BTC", "C1", "30000.00", "2026-03-11", "2025-06-30", "66000.5", "33000.25", "3000.25", "short", ""],
        ["Alpaca", "BND", "T1", "", "2026-04-02", "2025-06-30", "72.5", "217.50", "", "short", "0"],
        ["Alpaca", "QQQ", "Q1", "2000.00", "2026-05-02", "", "", "", "", "", ""],
        ["IRA", "VTI", "R1", "564.00", "2026-06-21", "2025-06-30", "190", "570.00", "6.00", "short", ""],
        ["Alpaca", "VTI", "B3", "378.00", "2026-06-26", "2025-06-30", "190", "380.00", "2.00", "short", "3"],
    ]
    # Totals: taxable accounts only (not R1); the value of every priced lot (Q1 has no close),
    # the gains of those of known basis (not the BND lot).
    assert lots.stderr.strip() == (
        "open lots in taxable accounts valued at 36447.75, some lots unpriced (no close for their symbol): unrealized "
        "(1 lot of unknown basis left out) short-term gains 3002.25, losses -300.05; long-term gains 0.00, losses -100.00"
    )
    refused = run("lots", "--prices", "closes.csv")
    assert refused.exit_code == 2 and "--prices values what is still open: add --open" in refused.output
    write(tmp_path, "bad.csv", "date,symbol,close\n2025-06-30,VTI,abc\n")
    bad = run("lots", "--open", "--prices", "bad.csv")
    assert bad.exit_code == 1
    assert bad.stderr.splitlines() == ["bad.csv:2: close 'abc' is not a number", "Error: bad.csv: 1 price row could not be read (listed above)"]


def test_cli_open_lots_count_purchases_under_a_renamed_ticker(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """FB became META on 2022-06-09. A purchase of FB before the change washes a loss sale of
    META after it, as a purchase of META would: one security under two tickers.

    | lot | open      | basis | close (2022-06-30) | bought in 2022-05-31..2022-06-30 |
    | B1  | 10 META   | 3,000 | 160                | 4 (B2, as FB on 06-02)           |
    | B2  |  4 META   |   800 | 160                | 0 (its own purchase)             |
    B1 and B2 were bought as FB and renamed with the holding. Without the rename in the
    window, B1 would count nothing: no META was bought in those 30 days.
    """
    write(tmp_path, "t.csv", HEADER + textwrap.dedent("""
        2022-03-01,Schwab,FB,buy,10,300,0,USD,equity,B1,
        2022-06-02,Schwab,FB,buy,4,200,0,USD,equity,B2,
        2022-06-09,Schwab,FB,transfer_out,14,0,0,USD,equity,T1,
        2022-06-09,Schwab,META,transfer_in,14,0,0,USD,equity,T2,
    """).lstrip("\n"))
    write(tmp_path, "closes.csv", "date,symbol,close\n2022-06-30,META,160\n")
    assert run("ingest", "t.csv").exit_code == 0
    lots = run("lots", "--open", "--prices", "closes.csv", "--as-of", "2022-06-30", "--format", "csv")
    assert lots.exit_code == 0, lots.output
    assert [line.split(",")[1:3] + line.split(",")[-3:] for line in lots.stdout.splitlines()[1:]] == [
        ["META", "B1", "-1400.00", "short", "4"],
        ["META", "B2", "-160.00", "short", "0"],
    ]


def test_cli_gains_fails_when_a_specific_lot_cannot_be_honoured(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An unhonoured specific-ID selection makes `taxlens gains` exit 1, naming the sale."""
    write(tmp_path, "t.csv", HEADER + "2025-01-02,Alpaca,VTI,buy,2,100,0,USD,etf,B1,\n2025-02-03,Alpaca,VTI,sell,1,110,0,USD,etf,S1,NOPE\n")
    assert run("ingest", "t.csv").exit_code == 0
    result = run("gains", "--method", "specific", "--format", "csv")
    assert result.exit_code == 1
    assert "t.csv:3: sale S1 names lot 'NOPE', which is not open in Alpaca VTI" in result.stderr
    assert "Error: some specific-ID selections could not be honoured" in result.stderr


# -- the stored booking -------------------------------------------------------------------------------


def test_the_stored_booking_is_reused_until_the_files_change(book: Book, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """booked() stores its result: asked again with the same files and settings it reads the
    store (the same frames, no booking); a newly ingested file, or another method, books again."""
    load(book, tmp_path, HISTORY)
    first = book.booked()
    calls: list[str | None] = []
    real = taxlens.api.book

    def counting(trades, settings, selections=None):  # type: ignore[no-untyped-def]
        calls.append(settings.override)
        return real(trades, settings, selections)

    monkeypatch.setattr(taxlens.api, "book", counting)
    again = book.booked()
    assert calls == []
    assert again.lots.equals(first.lots) and again.disposals.equals(first.disposals)
    assert (again.problems, again.errors) == (first.problems, first.errors)

    book.booked(method="lifo")
    assert calls == ["lifo"]
    load(book, tmp_path, "2025-05-01,Alpaca,VTI,sell,7,120.00,0,USD,etf,S3,\n", name="may.csv")
    later = book.booked()
    assert calls == ["lifo", None]
    # FIFO again, plus S3: the 7 of B3 left (7 × 120 = 840 − 735).
    assert table(later.disposals, SLICE)[-1] == "7,2024-06-03,2025-05-01,840,735,105,short,B3"
    assert table(later.disposals, SLICE)[:-1] == table(first.disposals, SLICE)
    assert book.booked().disposals.equals(later.disposals) and calls == ["lifo", None]



def test_the_booking_is_stored_in_the_background_and_close_waits_for_it(tmp_path: Path) -> None:
    """booked() returns before its result is stored (the write runs beside the caller's
    rendering); close() waits, so the next process finds it stored under the same key."""
    db = tmp_path / "t.duckdb"
    with Book(db) as first:
        load(first, tmp_path, HISTORY)
        booked = first.booked()
    with Book(db, read_only=True) as again:
        stored = again.store.load_book()
        assert again.store.book_key() is not None
        assert stored[1].select(list(booked.disposals.columns)).equals(booked.disposals)
        assert again.booked().lots.equals(booked.lots)




def test_long_work_is_announced_in_stages(tmp_path: Path) -> None:
    """on_stage hears what booked() is doing (the CLI shows it as a status line on a terminal),
    then None when it is done: a new booking reads and books; a stored one is read."""
    stages: list[str | None] = []
    with Book(tmp_path / "t.duckdb") as book:
        load(book, tmp_path, HISTORY)
        book.on_stage = stages.append
        book.booked()
        book._saved()
        new = stages.copy()
        stages.clear()
        book.booked()
    assert new[:3] == ["reading trades", "booking 5 trades and applying the wash-sale rule", None]
    assert stages[:2] == ["reading the stored booking", None]

def test_stored_rows_come_back_in_seq_then_insertion_order(tmp_path: Path) -> None:
    """load_book reads the tables without an ORDER BY and sorts only when the rows are out of
    order: rows stored in reverse come back as ORDER BY seq, rowid would give them."""
    with Book(tmp_path / "t.duckdb") as book:
        load(book, tmp_path, HISTORY)
        booked = book.booked()
        book._saved()
        store = book.store
        reversed_disposals = booked.disposals.reverse()
        store.save_book("k", booked.lots.reverse(), reversed_disposals, booked.washes, [], [])
        lots, disposals, *_ = store.load_book()
    assert lots.select(booked.lots.columns).equals(booked.lots.reverse().sort("seq", maintain_order=True))
    assert disposals.select(booked.disposals.columns).equals(reversed_disposals.sort("seq", maintain_order=True))

def test_a_failed_background_store_is_raised_by_close(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error while storing the booking is not lost with its thread: close() raises it, and
    nothing of the booking is stored."""
    db = tmp_path / "t.duckdb"
    book = Book(db)
    load(book, tmp_path, HISTORY)

    def failing(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(book.store, "save_book", failing)
    book.booked()
    with pytest.raises(OSError, match="disk full"):
        book.close()
    with Book(db, read_only=True) as again:
        assert again.store.book_key() is None

def test_pooled_crypto_lots_before_2025_are_handed_to_the_accounts_on_2025_01_01(book_with, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """crypto_scope = "universal": before 2025 a sale takes the owner's oldest BTC lot whatever
    the account (Kraken's 2024 sale takes Coinbase's C1). On 2025-01-01 the pool's open lots go
    to the accounts holding the coins then, accounts in name order, oldest lots first:
    Coinbase (holds 1) gets C2, Kraken (holds 1) gets K1. From then each account's sales take
    its own lots: Kraken's 2025 sale takes K1 (a pooled FIFO would have taken C2), with K1's
    original date and basis."""
    book = book_with({"lots": {"crypto_scope": "universal"}})
    load(book, tmp_path, """\
        2024-01-10,Coinbase,BTC,buy,1,40000,0,USD,crypto,C1,
        2024-02-12,Coinbase,BTC,buy,1,45000,0,USD,crypto,C2,
        2024-03-01,Kraken,BTC,buy,2,60000,0,USD,crypto,K1,
        2024-06-03,Kraken,BTC,sell,1,65000,0,USD,crypto,K2,
        2025-02-03,Kraken,BTC,sell,1,90000,0,USD,crypto,K3,
        2025-02-04,Coinbase,BTC,sell,1,91000,0,USD,crypto,C3,
    """)
    # Holdings on 2025-01-01: Coinbase bought 2; Kraken bought 2 and sold 1. The pool then holds
    # C2 (1) and K1 (2): Coinbase's 2 coins take C2 and one of K1, Kraken's 1 the other K1.
    assert table(book.gains(), "account,acquired,disposed,proceeds,cost_basis,gain,term,lot_id") == rows("""
        Kraken,   2024-01-10, 2024-06-03, 65000, 40000, 25000, short, C1
        Kraken,   2024-03-01, 2025-02-03, 90000, 60000, 30000, short, K1
        Coinbase, 2024-02-12, 2025-02-04, 91000, 45000, 46000, short, C2
    """)
    assert book.booked().problems == []


def test_booked_totals_add_up_known_amounts_apart_from_unknown_ones(tmp_path: Path) -> None:
    """``Store.booked_totals`` (how the audit of a long history reads the booking): one row per
    account, symbol and date, the count of lots beside; a lot of unknown basis (T1, a transfer
    in from nowhere) is totalled apart, as null, never as zero nor added to the known ones.

    | account | symbol | acquired   | cost_basis          | n |
    | A       | VTI    | 2025-01-02 | 1,250 + 102 = 1,352 | 2 |
    | A       | VTI    | 2025-01-02 | unknown             | 1 |
    | A       | VTI    | 2025-02-03 | 240                 | 1 |
    """
    with taxlens.open_book(tmp_path / "t.duckdb", taxlens.Config()) as book:
        load(book, tmp_path, """\
            2025-01-02,A,VTI,buy,5,250,0,USD,etf,B1,
            2025-01-02,A,VTI,buy,1,101,1,USD,etf,B2,
            2025-01-02,A,VTI,transfer_in,3,0,0,USD,etf,T1,
            2025-02-03,A,VTI,buy,1,240,0,USD,etf,B3,
        """)
        book.booked()
    with taxlens.open_book(tmp_path / "t.duckdb", taxlens.Config(), read_only=True) as book:  # the booking stored
        totals = book.store.booked_totals("lots", ["account", "symbol", "acquired"], ["cost_basis"])
    assert sorted(totals.rows(), key=str) == [
        ("A", "VTI", dt.date(2025, 1, 2), Decimal(1352), 2),
        ("A", "VTI", dt.date(2025, 1, 2), None, 1),
        ("A", "VTI", dt.date(2025, 2, 3), Decimal(240), 1),
    ]
