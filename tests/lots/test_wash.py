"""Wash sales, worksheet by worksheet (tax-rules.md §3.10 and our own hand-computed cases).

Trades go in as generic CSV rows, the household in as a taxlens.toml dict; out come the
disposal slices (Form 8949: code W, column g the disallowed loss, h the gain net of it), the
wash matches and the lots with adjusted basis and acquisition date. Every expected number has
its arithmetic next to it. Times are given where the order inside a day matters (WS-10).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from taxlens.api import Book
from tests.conftest import write
from tests.lots.test_methods import HEADER, load, rows, table

SOLD = "account,quantity,acquired,adjusted_acquired,disposed,proceeds,cost_basis,adjustment_code,adjustment,gain,term,lot_id"
WASHES = "account,sell_trade_id,lot_id,quantity,disallowed,replacement_account,replacement_lot_id,tacked_days,status,broker_reported"
LOTS = "account,lot_id,acquired,adjusted_acquired,quantity,cost_basis,adjusted_basis,open_quantity,open_adjusted_basis"

Make = Callable[[dict[str, object]], Book]


def test_ws1_basic_wash_defers_the_loss_into_the_replacement(book: Book, tmp_path: Path) -> None:
    """WS-1 (Pub 550 Example 1): bought 100 for 1,000, sold for 750, bought 100 for 800 four
    days later. The 250 loss is disallowed (W 250, gain 0) and the new lot's basis is 1,050; its
    holding period starts 61 days earlier (2014-07-05 − (2014-07-01 − 2014-05-01))."""
    load(book, tmp_path, """\
        2014-05-01,Alpaca,X,buy,100,10.00,0,USD,equity,B1,
        2014-07-01,Alpaca,X,sell,100,7.50,0,USD,equity,S1,
        2014-07-05,Alpaca,X,buy,100,8.00,0,USD,equity,B2,
    """)
    assert table(book.gains(), SOLD) == rows("""
        Alpaca, 100, 2014-05-01, 2014-05-01, 2014-07-01, 750, 1000, W, 250, 0, short, B1
    """)
    assert table(book.washes(), WASHES) == rows("Alpaca, S1, B1, 100, 250, Alpaca, B2, 61, deferred, True")
    assert table(book.lots(open_only=True), LOTS) == rows("Alpaca, B2, 2014-07-05, 2014-05-05, 100, 800, 1050, 100, 1050")


def test_ws2_fewer_shares_bought_than_sold_washes_part_of_the_loss(book: Book, tmp_path: Path) -> None:
    """WS-2 (Reg. §1.1091-1(h) Ex. 2, Pub 550 amounts): 100 sold at a 1,000 loss (10 a share);
    only 75 bought in the window, so 750 is disallowed and 250 allowed. The 50-share lot takes
    500 (2,750 → 3,250), the 25-share lot 250 (1,125 → 1,375); both tack 104 days."""
    load(book, tmp_path, """\
        1954-09-21,Alpaca,M,buy,100,50.00,0,USD,equity,B1,
        1954-12-21,Alpaca,M,buy,50,55.00,0,USD,equity,B2,
        1954-12-27,Alpaca,M,buy,25,45.00,0,USD,equity,B3,
        1955-01-03,Alpaca,M,sell,100,40.00,0,USD,equity,S1,
    """)
    assert table(book.gains(), SOLD) == rows("""
        Alpaca, 100, 1954-09-21, 1954-09-21, 1955-01-03, 4000, 5000, W, 750, -250, short, B1
    """)
    assert table(book.washes(), WASHES) == rows("""
        Alpaca, S1, B1, 50, 500, Alpaca, B2, 104, deferred, True
        Alpaca, S1, B1, 25, 250, Alpaca, B3, 104, deferred, True
    """)
    # 1954-12-21 − 104 days = 1954-09-08; 1954-12-27 − 104 days = 1954-09-14.
    assert table(book.lots(open_only=True), LOTS) == rows("""
        Alpaca, B2, 1954-12-21, 1954-09-08, 50, 2750, 3250, 50, 3250
        Alpaca, B3, 1954-12-27, 1954-09-14, 25, 1125, 1375, 25, 1375
    """)


def test_ws3_more_shares_bought_than_sold_the_earliest_replace_and_turn_long_term(book: Book, tmp_path: Path) -> None:
    """WS-3 (Reg. Ex. 3 / Pub 550 Ex. 2): the 1,000 loss on 100 shares goes to the first 100
    bought after it (2/15 and 2/16, +500 each: 2,000 → 2,500); 2/17 and 2/18 keep 2,000. The
    replacements carry the sold lot's 504 days, so the 2/15 lot sold on 3/1/1956 is long-term:
    2,600 − 2,500 = 100 long-term gain."""
    load(book, tmp_path, """\
        1954-09-15,Alpaca,M,buy,100,50.00,0,USD,equity,B1,
        1956-02-01,Alpaca,M,sell,100,40.00,0,USD,equity,S1,
        1956-02-15,Alpaca,M,buy,50,40.00,0,USD,equity,B2,
        1956-02-16,Alpaca,M,buy,50,40.00,0,USD,equity,B3,
        1956-02-17,Alpaca,M,buy,50,40.00,0,USD,equity,B4,
        1956-02-18,Alpaca,M,buy,50,40.00,0,USD,equity,B5,
        1956-03-01,Alpaca,M,sell,50,52.00,0,USD,equity,S2,
    """)
    assert table(book.gains(), SOLD) == rows("""
        Alpaca, 100, 1954-09-15, 1954-09-15, 1956-02-01, 4000, 5000, W, 1000,   0, long, B1
        Alpaca,  50, 1956-02-15, 1954-09-29, 1956-03-01, 2600, 2500,  ,     0, 100, long, B2
    """)
    # 504 days = 1954-09-15 → 1956-02-01, so 1956-02-15 − 504 days = 1954-09-29 (14 days later).
    assert table(book.lots(open_only=True), LOTS) == rows("""
        Alpaca, B3, 1956-02-16, 1954-09-30, 50, 2000, 2500, 50, 2500
        Alpaca, B4, 1956-02-17, 1956-02-17, 50, 2000, 2000, 50, 2000
        Alpaca, B5, 1956-02-18, 1956-02-18, 50, 2000, 2000, 50, 2000
    """)


def test_ws4_a_loss_block_is_washed_and_the_same_days_gains_stay_whole(book: Book, tmp_path: Path) -> None:
    """WS-4 (Pub 550 "Loss and gain on same day"): blocks at 158, 100 and 95 a share, all 300
    sold at 125. Block 1 loses 3,300, washed by 100 of the 250 bought 1/9; blocks 2 and 3 gain
    2,500 and 3,000, not reduced. The 250 are cut: 100 at 10,000 + 3,300 = 13,300 and 150 at
    15,000."""
    load(book, tmp_path, """\
        2013-01-10,Alpaca,X,buy,100,158.00,0,USD,equity,B1,
        2013-03-01,Alpaca,X,buy,100,100.00,0,USD,equity,B2,
        2013-05-01,Alpaca,X,buy,100,95.00,0,USD,equity,B3,
        2013-12-27,Alpaca,X,sell,300,125.00,0,USD,equity,S1,
        2014-01-09,Alpaca,X,buy,250,100.00,0,USD,equity,B4,
    """)
    assert table(book.gains(), SOLD) == rows("""
        Alpaca, 100, 2013-01-10, 2013-01-10, 2013-12-27, 12500, 15800, W, 3300,    0, short, B1
        Alpaca, 100, 2013-03-01, 2013-03-01, 2013-12-27, 12500, 10000,  ,    0, 2500, short, B2
        Alpaca, 100, 2013-05-01, 2013-05-01, 2013-12-27, 12500,  9500,  ,    0, 3000, short, B3
    """)
    # Tacked: 2013-12-27 − 2013-01-10 = 351 days; 2014-01-09 − 351 days = 2013-01-23.
    assert table(book.lots(open_only=True), LOTS) == rows("""
        Alpaca, B4, 2014-01-09, 2013-01-23, 100, 10000, 13300, 100, 13300
        Alpaca, B4, 2014-01-09, 2014-01-09, 150, 15000, 15000, 150, 15000
    """)


def test_ws5_an_ira_purchase_disallows_the_loss_for_good(book_with: Make, tmp_path: Path) -> None:
    """WS-5 (Rev. Rul. 2008-5): basis 1,000 sold for 600 on 12/20/2007, the IRA buys 100 the
    next day. The 400 loss is disallowed (W 400) and no basis moves: the IRA lot keeps 610."""
    book = book_with({"accounts": {"IRA": {"type": "traditional_ira"}}})
    load(book, tmp_path, """\
        2007-03-01,Alpaca,X,buy,100,10.00,0,USD,equity,B1,
        2007-12-20,Alpaca,X,sell,100,6.00,0,USD,equity,S1,
        2007-12-21,IRA,X,buy,100,6.10,0,USD,equity,B2,
    """)
    assert table(book.gains(), SOLD) == rows("""
        Alpaca, 100, 2007-03-01, 2007-03-01, 2007-12-20, 600, 1000, W, 400, 0, short, B1
    """)
    assert table(book.washes(), WASHES) == rows("Alpaca, S1, B1, 100, 400, IRA, B2, 294, permanent, False")
    assert table(book.lots(open_only=True), LOTS) == rows("IRA, B2, 2007-12-21, 2007-12-21, 100, 610, 610, 100, 610")


@pytest.mark.parametrize(
    ("bought", "washed"),
    [("2012-05-01", False), ("2012-05-02", True), ("2012-06-01", True), ("2012-07-01", True), ("2012-07-02", False)],
)
def test_ws9_the_window_is_30_days_either_side_inclusive(book: Book, tmp_path: Path, bought: str, washed: bool) -> None:
    """WS-9: a loss sale on 6/1/2012 is washed by purchases from 5/2 (−30) to 7/1 (+30)
    inclusive, the sale day among them; 5/1 (−31) and 7/2 (+31) are outside."""
    load(book, tmp_path, f"""\
        2012-01-03,Alpaca,X,buy,100,10.00,0,USD,equity,B1,
        2012-06-01,Alpaca,X,sell,100,9.00,0,USD,equity,S1,
        {bought},Alpaca,X,buy,100,9.50,0,USD,equity,B2,
    """)
    assert table(book.gains(), "adjustment_code,adjustment,gain") == rows("W, 100, 0" if washed else ", 0, -100")
    assert book.washes().height == (1 if washed else 0)


def test_ws10_same_day_round_trips_the_second_buy_absorbs_the_first_loss(book: Book, tmp_path: Path) -> None:
    """WS-10 (Fairmark): on one day buy 100 for 1,000, sell for 900, buy 100 for 800, sell for
    900. The first loss (100) is washed into the second lot: 800 + 100 = 900, so its sale gains
    0. Net: 0, as if no loss was taken."""
    load(book, tmp_path, """\
        2014-05-01T10:00:00-04:00,Alpaca,X,buy,100,10.00,0,USD,equity,B1,
        2014-05-01T11:00:00-04:00,Alpaca,X,sell,100,9.00,0,USD,equity,S1,
        2014-05-01T12:00:00-04:00,Alpaca,X,buy,100,8.00,0,USD,equity,B2,
        2014-05-01T13:00:00-04:00,Alpaca,X,sell,100,9.00,0,USD,equity,S2,
    """)
    assert table(book.gains(), SOLD) == rows("""
        Alpaca, 100, 2014-05-01, 2014-05-01, 2014-05-01, 900, 1000, W, 100, 0, short, B1
        Alpaca, 100, 2014-05-01, 2014-05-01, 2014-05-01, 900,  900,  ,   0, 0, short, B2
    """)


def test_ws12_the_rest_of_the_same_lot_is_not_a_replacement(book: Book, tmp_path: Path) -> None:
    """WS-12 (Fairmark "Selling Half"): buy 200 for 10,000, sell 100 for 4,000 eleven days later,
    nothing else bought: no wash sale, the 1,000 loss stands."""
    load(book, tmp_path, """\
        2014-06-01,Alpaca,X,buy,200,50.00,0,USD,equity,B1,
        2014-06-12,Alpaca,X,sell,100,40.00,0,USD,equity,S1,
    """)
    assert table(book.gains(), "adjustment_code,adjustment,gain") == rows(", 0, -1000")
    assert book.washes().height == 0


def test_ws13_a_reinvested_dividend_fraction_washes_its_share(book: Book, tmp_path: Path) -> None:
    """WS-13 (rebalancer case): 100 shares sold at a 1,000 loss (10 a share); a dividend
    reinvests 0.5 share 10 days later: 0.5 × 10 = 5 disallowed, 995 allowed, the 0.5-share lot
    takes the 5 (0.5 × 42 = 21 → 26)."""
    load(book, tmp_path, """\
        2025-01-02,Alpaca,VTI,buy,100,50.00,0,USD,etf,B1,
        2025-03-03,Alpaca,VTI,sell,100,40.00,0,USD,etf,S1,
        2025-03-13,Alpaca,VTI,reinvest,0.5,42.00,0,USD,etf,R1,
    """)
    assert table(book.gains(), "quantity,proceeds,cost_basis,adjustment_code,adjustment,gain") == rows("100, 4000, 5000, W, 5, -995")
    assert table(book.lots(open_only=True), LOTS) == rows("Alpaca, R1, 2025-03-13, 2025-01-12, 0.5, 21, 26, 0.5, 26")


def test_ws14_crypto_losses_stand_and_the_would_be_wash_is_listed(book_with: Make, tmp_path: Path) -> None:
    """WS-14: selling 1 BTC at a 5,000 loss and rebuying the next day is not a wash sale under
    current law (§3.9): the loss is allowed, and the match is listed as information. With
    ``crypto = true`` the same trades are washed."""
    trades = """\
        2025-02-03,Coinbase,BTC,buy,1,100000.00,0,USD,crypto,B1,
        2025-06-02,Coinbase,BTC,sell,1,95000.00,0,USD,crypto,S1,
        2025-06-03,Coinbase,BTC,buy,1,96000.00,0,USD,crypto,B2,
    """
    book = book_with({})
    load(book, tmp_path, trades)
    assert table(book.gains(), "adjustment_code,adjustment,gain") == rows(", 0, -5000")
    assert table(book.washes(), WASHES) == rows("Coinbase, S1, B1, 1, 5000, Coinbase, B2, 119, info, False")
    assert table(book.lots(open_only=True), LOTS) == rows("Coinbase, B2, 2025-06-03, 2025-06-03, 1, 96000, 96000, 1, 96000")

    applied = book_with({"wash_sales": {"crypto": True}})
    load(applied, tmp_path, trades, name="again.csv")
    assert table(applied.gains(), "adjustment_code,adjustment,gain") == rows("W, 5000, 0")
    assert table(applied.lots(open_only=True), "adjusted_basis") == rows("101000")


# -- our own cases -----------------------------------------------------------------------------------


def test_a_chain_washed_replacement_sold_at_a_loss_washes_again(book: Book, tmp_path: Path) -> None:
    """Chain (§3.5): B1 100 at 10 sold at 8 (loss 200) → B2 (100 at 9) becomes 1,100. B2 sold at
    9.50 (950 − 1,100 = −150: the carried 200 makes it a loss) → B3 (100 at 9.20, 920) takes 150
    → 1,070, and carries B2's tacked holding period. B3 sold at 11: 1,100 − 1,070 = 30. Total:
    −200 − 150 + … netted: (800 + 950 + 1,100) − (1,000 + 900 + 920) = 30, all on the last sale."""
    load(book, tmp_path, """\
        2025-01-02,Alpaca,X,buy,100,10.00,0,USD,equity,B1,
        2025-03-03,Alpaca,X,sell,100,8.00,0,USD,equity,S1,
        2025-03-10,Alpaca,X,buy,100,9.00,0,USD,equity,B2,
        2025-04-01,Alpaca,X,sell,100,9.50,0,USD,equity,S2,
        2025-04-15,Alpaca,X,buy,100,9.20,0,USD,equity,B3,
        2025-09-02,Alpaca,X,sell,100,11.00,0,USD,equity,S3,
    """)
    # B2: held by B1 2025-01-02 → 03-03 = 60 days: adjusted 2025-03-10 − 60 = 2025-01-09.
    # B3: B2's shares were held from 2025-01-09 to 04-01 = 82 days: 2025-04-15 − 82 = 2025-01-23.
    assert table(book.gains(), SOLD) == rows("""
        Alpaca, 100, 2025-01-02, 2025-01-02, 2025-03-03,  800, 1000, W, 200,  0, short, B1
        Alpaca, 100, 2025-03-10, 2025-01-09, 2025-04-01,  950, 1100, W, 150,  0, short, B2
        Alpaca, 100, 2025-04-15, 2025-01-23, 2025-09-02, 1100, 1070,  ,   0, 30, short, B3
    """)
    assert table(book.washes(), "sell_trade_id,replacement_lot_id,disallowed,tacked_days") == rows("""
        S1, B2, 200, 60
        S2, B3, 150, 82
    """)


def test_a_cross_account_wash_is_one_the_broker_would_not_report(book: Book, tmp_path: Path) -> None:
    """Sold at a loss in one taxable account, bought back in another: a wash sale all the same
    (the taxpayer's rule, not the broker's), and flagged as missing from the 1099-B."""
    load(book, tmp_path, """\
        2025-01-02,Alpaca,QQQ,buy,10,500.00,0,USD,etf,B1,
        2025-05-01,Alpaca,QQQ,sell,10,450.00,0,USD,etf,S1,
        2025-05-05,Schwab,QQQ,buy,4,455.00,0,USD,etf,B2,
    """)
    # Loss 500 on 10 shares = 50 a share; 4 replaced → 200 disallowed, 300 allowed.
    assert table(book.gains(), "account,adjustment_code,adjustment,gain") == rows("Alpaca, W, 200, -300")
    assert table(book.washes(), WASHES) == rows("Alpaca, S1, B1, 4, 200, Schwab, B2, 119, deferred, False")
    assert table(book.lots(open_only=True), LOTS) == rows("Schwab, B2, 2025-05-05, 2025-01-06, 4, 1820, 2020, 4, 2020")


def test_spouses_wash_each_other_only_in_one_household(book_with: Make, tmp_path: Path) -> None:
    """Pub 550: a spouse's purchase washes the loss, when the config puts both in one household."""
    trades = """\
        2025-01-02,Sam,X,buy,10,100.00,0,USD,equity,B1,
        2025-05-01,Sam,X,sell,10,90.00,0,USD,equity,S1,
        2025-05-02,Alex,X,buy,10,91.00,0,USD,equity,B2,
    """
    accounts = {"Sam": {"owner": "sam"}, "Alex": {"owner": "alex"}}
    apart = book_with({"accounts": accounts})
    load(apart, tmp_path, trades)
    assert table(apart.gains(), "adjustment,gain") == rows("0, -100")
    together = book_with({"accounts": accounts, "wash_sales": {"households": [["sam", "alex"]]}})
    load(together, tmp_path, trades, name="again.csv")
    assert table(together.gains(), "adjustment,gain") == rows("100, 0")
    assert table(together.washes(), "replacement_account,status,broker_reported") == rows("Alex, deferred, False")


def test_substantially_identical_groups_are_opt_in(book_with: Make, tmp_path: Path) -> None:
    """SPY sold at a loss, IVV bought: not a wash by default (different symbols), a wash when
    the user groups them."""
    trades = """\
        2025-01-02,Alpaca,SPY,buy,10,600.00,0,USD,etf,B1,
        2025-04-07,Alpaca,SPY,sell,10,500.00,0,USD,etf,S1,
        2025-04-08,Alpaca,IVV,buy,10,505.00,0,USD,etf,B2,
    """
    plain_book = book_with({})
    load(plain_book, tmp_path, trades)
    assert plain_book.washes().height == 0
    grouped = book_with({"wash_sales": {"groups": {"sp500": ["SPY", "IVV", "VOO"]}}})
    load(grouped, tmp_path, trades, name="again.csv")
    assert table(grouped.gains(), "adjustment,gain") == rows("1000, 0")
    assert table(grouped.washes(), "symbol,replacement_symbol,disallowed,broker_reported") == rows("SPY, IVV, 1000, False")


def test_a_replacement_in_the_next_year_defers_the_loss_across_years(book: Book, tmp_path: Path) -> None:
    """§3.2: a 29 Dec 2025 loss is washed by a purchase up to 28 Jan 2026: disallowed on the
    2025 return, the basis moves to the 2026 lot."""
    load(book, tmp_path, """\
        2025-06-02,Alpaca,X,buy,10,100.00,0,USD,equity,B1,
        2025-12-29,Alpaca,X,sell,10,80.00,0,USD,equity,S1,
        2026-01-28,Alpaca,X,buy,10,85.00,0,USD,equity,B2,
    """)
    assert table(book.gains(year=2025), "adjustment_code,adjustment,gain") == rows("W, 200, 0")
    assert table(book.lots(open_only=True), "lot_id,adjusted_basis") == rows("B2, 1050")


def test_a_purchase_before_the_loss_still_held_replaces_it(book: Book, tmp_path: Path) -> None:
    """The window looks back 30 days too: B2, bought a week before the loss sale and still held,
    is the replacement; its own later sale is a gain, never washed."""
    load(book, tmp_path, """\
        2025-01-02,Alpaca,X,buy,10,100.00,0,USD,equity,B1,
        2025-03-03,Alpaca,X,buy,10,90.00,0,USD,equity,B2,
        2025-03-10,Alpaca,X,sell,10,95.00,0,USD,equity,S1,
        2025-03-11,Alpaca,X,sell,10,95.00,0,USD,equity,S2,
    """)
    # FIFO: S1 sells B1 at a loss (950 − 1,000 = −50); S2 sells B2 at a gain (950 − 900 = 50).
    # B2 was bought within 30 days of S1 and still held then, so it replaces: S1 is washed and
    # S2's basis becomes 950. Net 0 either way; the point is the gain was not washed.
    assert table(book.gains(), "lot_id,adjustment_code,adjustment,cost_basis,gain") == rows("""
        B1, W, 50, 1000, 0
        B2,  ,  0,  950, 0
    """)


def test_a_loss_with_every_window_purchase_already_sold_stands(book: Book, tmp_path: Path) -> None:
    """B2 is bought in S2's window but sold (S1) before it: not a replacement (tax-rules §3.3,
    the default reading, so no loss is pushed back onto an earlier sale)."""
    load(book, tmp_path, """\
        2025-01-02,Alpaca,X,buy,10,100.00,0,USD,equity,B1,
        2025-03-03,Alpaca,X,buy,10,90.00,0,USD,equity,B2,
        2025-03-10,Alpaca,X,sell,10,95.00,0,USD,equity,S1,
        2025-03-11,Alpaca,X,sell,10,95.00,0,USD,equity,S2,
    """)
    # LIFO picks B2 for S1 (gain 50) and B1 for S2 (loss 50); B2 is gone by then.
    assert table(book.gains(method="lifo"), "lot_id,adjustment,gain") == rows("""
        B2, 0,  50
        B1, 0, -50
    """)


def test_wash_sales_can_be_switched_off_for_a_what_if(book_with: Make, tmp_path: Path) -> None:
    book = book_with({"wash_sales": {"apply": False}})
    load(book, tmp_path, """\
        2014-05-01,Alpaca,X,buy,100,10.00,0,USD,equity,B1,
        2014-07-01,Alpaca,X,sell,100,7.50,0,USD,equity,S1,
        2014-07-05,Alpaca,X,buy,100,8.00,0,USD,equity,B2,
    """)
    assert table(book.gains(), "adjustment,gain") == rows("0, -250")
    assert book.washes().height == 0


def test_cli_wash_lists_matches_and_totals_and_gains_show_code_w(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`taxlens wash --format csv`: every match at full columns, money in cents; the totals on
    stderr. `taxlens gains` shows the W row and says how much was disallowed."""
    write(tmp_path, "taxlens.toml", '[accounts.IRA]\ntype = "roth_ira"\n')
    write(tmp_path, "t.csv", HEADER + textwrap.dedent("""
        2025-01-02,Alpaca,QQQ,buy,10,500.00,0,USD,etf,B1,
        2025-05-01,Alpaca,QQQ,sell,10,450.00,0,USD,etf,S1,
        2025-05-05,Schwab,QQQ,buy,4,455.00,0,USD,etf,B2,
        2025-05-06,IRA,QQQ,buy,2,455.00,0,USD,etf,B3,
        2025-05-07,Alpaca,QQQ,buy,2,455.00,0,USD,etf,B4,
    """).lstrip("\n"))
    assert run("ingest", "t.csv").exit_code == 0
    result = run("wash", "--year", "2025", "--format", "csv")
    assert result.exit_code == 0, result.output
    # 50 a share lost on 10 shares: 4 → Schwab (200, deferred), 2 → the IRA (100, lost), 2 →
    # Alpaca itself (100, the only one a 1099-B shows); 2 shares' loss (100) stands.
    assert result.stdout.splitlines() == [
        "disposed,account,symbol,sell_trade_id,lot_id,quantity,disallowed,status,replacement_account,replacement_symbol,"
        "replacement_lot_id,replacement_acquired,tacked_days,broker_reported,source",
        "2025-05-01,Alpaca,QQQ,S1,B1,4,200.00,deferred,Schwab,QQQ,B2,2025-05-05,119,no,t.csv:3",
        "2025-05-01,Alpaca,QQQ,S1,B1,2,100.00,permanent,IRA,QQQ,B3,2025-05-06,119,no,t.csv:3",
        "2025-05-01,Alpaca,QQQ,S1,B1,2,100.00,deferred,Alpaca,QQQ,B4,2025-05-07,119,yes,t.csv:3",
    ]
    assert ("3 wash-sale matches in 2025: disallowed 400.00 (deferred into replacement lots 300.00, lost to tax-advantaged "
            "purchases 100.00); not on the brokers' 1099-B 300.00; still deferred in open lots at the end of 2025 300.00") in result.stderr
    gains = run("gains", "--format", "csv")
    assert gains.stdout.splitlines()[1] == "Alpaca,QQQ,10,2025-01-02,2025-05-01,4500.00,5000.00,W,400.00,-100.00,short,fifo,S1,B1"
    assert "wash-sale losses disallowed 400.00" in gains.stderr
    table_view = run("wash")
    assert "Per account" in table_view.stdout and "permanent" in table_view.stdout


def test_cli_wash_totals_name_form_8949_s_column_g_when_its_rows_round_apart(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Three 1-share lots at 10.005 sold together at 5: three slices, each losing 5.005, all
    washed by the 3 shares bought back. Form 8949 rounds each row: 5.01 × 3 = 15.03 in column
    (g), where the exact total, 15.015, rounds to 15.02. The wash totals give both, so they
    tie to the gains listing (which adds the rows) and to the form."""
    write(tmp_path, "t.csv", HEADER + textwrap.dedent("""
        2025-01-02,Alpaca,QQQ,buy,1,10.005,0,USD,etf,B1,
        2025-01-03,Alpaca,QQQ,buy,1,10.005,0,USD,etf,B2,
        2025-01-06,Alpaca,QQQ,buy,1,10.005,0,USD,etf,B3,
        2025-05-01,Alpaca,QQQ,sell,3,5.00,0,USD,etf,S1,
        2025-05-05,Alpaca,QQQ,buy,3,5.10,0,USD,etf,B4,
    """).lstrip("\n"))
    assert run("ingest", "t.csv").exit_code == 0
    result = run("wash", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert "disallowed 15.02 (" in result.stderr
    assert result.stderr.rstrip().endswith("; Form 8949 column (g) adds its rows' cents to 15.03")
    assert "wash-sale losses disallowed 15.03" in run("gains").stdout


# -- splits and transfers after a wash -----------------------------------------------------------------


def test_a_forward_split_spreads_the_deferred_loss_over_the_new_shares(book: Book, tmp_path: Path) -> None:
    """The loss deferred into a lot stays with the same shares through a split (basis and
    holding period carry over to the new shares, Pub 550 "Stock splits"). S1 loses 1,000 on B1,
    washed into B2 (4,500 → 5,500, 8 days tacked). A 2:1 split turns B2's 100 shares into 200,
    each now carrying 5 of the loss: the two sales of 100 after it take 500 each, 2,250 +
    500 = 2,750 against 3,000, a gain of 250 apiece, not 1,000 on the first and none on the second."""
    load(book, tmp_path, """\
        2024-01-02,Alpaca,X,buy,100,50.00,0,USD,equity,B1,
        2024-01-05,Alpaca,X,buy,100,45.00,0,USD,equity,B2,
        2024-01-10,Alpaca,X,sell,100,40.00,0,USD,equity,S1,
        2024-02-01,Alpaca,X,split_in,100,0,0,USD,equity,X1,
        2024-03-01,Alpaca,X,sell,100,30.00,0,USD,equity,S2,
        2024-04-01,Alpaca,X,sell,100,30.00,0,USD,equity,S3,
    """)
    # 2024-01-05 − (2024-01-10 − 2024-01-02 = 8 days) = 2023-12-28.
    assert table(book.gains(), SOLD) == rows("""
        Alpaca, 100, 2024-01-02, 2024-01-02, 2024-01-10, 4000, 5000, W, 1000,   0, short, B1
        Alpaca, 100, 2024-01-05, 2023-12-28, 2024-03-01, 3000, 2750,  ,    0, 250, short, B2
        Alpaca, 100, 2024-01-05, 2023-12-28, 2024-04-01, 3000, 2750,  ,    0, 250, short, B2
    """)
    assert book.booked().problems == []


def test_the_split_lot_lists_as_one_lot_with_the_whole_deferred_loss(book: Book, tmp_path: Path) -> None:
    """Before any post-split sale, the split lot B2 is one range of 200 shares with the whole
    1,000 in its adjusted basis and the tacked date, not 100 adjusted shares beside 100 plain."""
    load(book, tmp_path, """\
        2024-01-02,Alpaca,X,buy,100,50.00,0,USD,equity,B1,
        2024-01-05,Alpaca,X,buy,100,45.00,0,USD,equity,B2,
        2024-01-10,Alpaca,X,sell,100,40.00,0,USD,equity,S1,
        2024-02-01,Alpaca,X,split_in,100,0,0,USD,equity,X1,
    """)
    assert table(book.lots(open_only=True), LOTS) == rows("Alpaca, B2, 2024-01-05, 2023-12-28, 200, 4500, 5500, 200, 5500")


def test_a_reverse_split_after_a_partial_sale_keeps_the_rest_of_the_deferred_loss(book: Book, tmp_path: Path) -> None:
    """B2 carries S1's 1,000 (10 a share). S2 sells 40 of it (1,800 + 400 = 2,200 against 1,760:
    a 440 loss, with no purchase in its window). A 1-for-4 reverse split turns the other 60
    into 15, which still carry 600 (40 a new share): S3 sells them for 3,000 against
    2,700 + 600 = 3,300, a 300 loss. Without following the split, S3 would get 150."""
    load(book, tmp_path, """\
        2024-01-02,Alpaca,X,buy,100,50.00,0,USD,equity,B1,
        2024-01-05,Alpaca,X,buy,100,45.00,0,USD,equity,B2,
        2024-01-10,Alpaca,X,sell,100,40.00,0,USD,equity,S1,
        2024-01-20,Alpaca,X,sell,40,44.00,0,USD,equity,S2,
        2024-03-01,Alpaca,X,split_out,45,0,0,USD,equity,X1,
        2024-04-01,Alpaca,X,sell,15,200.00,0,USD,equity,S3,
    """)
    assert table(book.gains(), SOLD) == rows("""
        Alpaca, 100, 2024-01-02, 2024-01-02, 2024-01-10, 4000, 5000, W, 1000,    0, short, B1
        Alpaca,  40, 2024-01-05, 2023-12-28, 2024-01-20, 1760, 2200,  ,    0, -440, short, B2
        Alpaca,  15, 2024-01-05, 2023-12-28, 2024-04-01, 3000, 3300,  ,    0, -300, short, B2
    """)
    # The lot in post-split shares: the 40 sold before the split count as 10 (with the 400 they
    # took), the 15 left make the rest (with 600): 25 shares, 4,500 + 1,000 in all.
    assert table(book.lots(), LOTS)[1:] == rows("""
        Alpaca, B2, 2024-01-05, 2023-12-28, 10, 1800, 2200, 0, 0
        Alpaca, B2, 2024-01-05, 2023-12-28, 15, 2700, 3300, 0, 0
    """)


def test_a_transfer_moves_the_deferred_loss_with_the_shares(book: Book, tmp_path: Path) -> None:
    """Shares moved between the household's accounts keep their basis and holding period
    (lots move whole, tax-rules.md), wash adjustments included. B2 (4,500, +1,000 from S1, 8
    days tacked) moves 60 of its 100 shares to Schwab; the 60 sold there take 600 of the loss
    (2,700 + 600 = 3,300 against 1,800), the 40 left in Alpaca the other 400 (1,800 + 400 =
    2,200 against 1,200)."""
    load(book, tmp_path, """\
        2024-01-02,Alpaca,X,buy,100,50.00,0,USD,equity,B1,
        2024-01-05,Alpaca,X,buy,100,45.00,0,USD,equity,B2,
        2024-01-10,Alpaca,X,sell,100,40.00,0,USD,equity,S1,
        2024-03-01,Alpaca,X,transfer_out,60,0,0,USD,equity,T1,
        2024-03-02,Schwab,X,transfer_in,60,0,0,USD,equity,T2,
        2024-05-01,Schwab,X,sell,60,30.00,0,USD,equity,S2,
        2024-05-01,Alpaca,X,sell,40,30.00,0,USD,equity,S3,
    """)
    assert table(book.gains(), SOLD) == rows("""
        Alpaca, 100, 2024-01-02, 2024-01-02, 2024-01-10, 4000, 5000, W, 1000,     0, short, B1
        Schwab,  60, 2024-01-05, 2023-12-28, 2024-05-01, 1800, 3300,  ,    0, -1500, short, B2
        Alpaca,  40, 2024-01-05, 2023-12-28, 2024-05-01, 1200, 2200,  ,    0, -1000, short, B2
    """)
    assert book.booked().problems == []


def test_shares_moved_before_a_split_carry_their_loss_through_both(book: Book, tmp_path: Path) -> None:
    """A transfer, then a 2:1 split in the new account: the 100 adjusted shares become 200 in
    Schwab, each carrying 5 of the 1,000; selling 50 takes 250 (1,125 + 250 = 1,375 against 1,000)."""
    load(book, tmp_path, """\
        2024-01-02,Alpaca,X,buy,100,50.00,0,USD,equity,B1,
        2024-01-05,Alpaca,X,buy,100,45.00,0,USD,equity,B2,
        2024-01-10,Alpaca,X,sell,100,40.00,0,USD,equity,S1,
        2024-03-01,Alpaca,X,transfer_out,100,0,0,USD,equity,T1,
        2024-03-01,Schwab,X,transfer_in,100,0,0,USD,equity,T2,
        2024-04-01,Schwab,X,split_in,100,0,0,USD,equity,X1,
        2024-05-01,Schwab,X,sell,50,20.00,0,USD,equity,S2,
    """)
    assert table(book.gains(), SOLD)[1:] == rows("Schwab, 50, 2024-01-05, 2023-12-28, 2024-05-01, 1000, 1375, , 0, -375, short, B2")
    # Open: 150 of the 200, basis 4,500 × 150/200 = 3,375, and 750 of the loss.
    assert table(book.lots(open_only=True), LOTS) == rows("Schwab, B2, 2024-01-05, 2023-12-28, 150, 3375, 4125, 150, 4125")


def test_adjusted_shares_that_leave_the_accounts_are_flagged(book: Book, tmp_path: Path) -> None:
    """A transfer out with no transfer in takes the shares (and the loss deferred in them) out of
    what taxlens follows: it says so at the transfer's line, besides the unpaired transfer, with
    the amount to carry over by hand. S1 sells B1 (5,000) for 4,000: the 1,000 loss is deferred
    into B2's 100 shares, which T1 then takes away."""
    path = load(book, tmp_path, """\
        2024-01-02,Alpaca,X,buy,100,50.00,0,USD,equity,B1,
        2024-01-05,Alpaca,X,buy,100,45.00,0,USD,equity,B2,
        2024-01-10,Alpaca,X,sell,100,40.00,0,USD,equity,S1,
        2024-03-01,Alpaca,X,transfer_out,100,0,0,USD,equity,T1,
    """)
    assert [str(p) for p in book.booked().problems if "wash" in str(p)] == [
        f"{path}:5: a transfer moved 100 shares carrying 1000.00 of losses deferred by wash sales "
        "where taxlens does not follow them (an account not in the data, or outside the wash-sale scope): the loss goes "
        "with them, into their basis there (add it by hand)"
    ]


def test_a_deferred_loss_that_left_is_no_longer_still_deferred(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The same history across a year end, through the CLI (stored, then read back): S1's
    1,000 loss is deferred into B2 in 2024; T1 takes B2's 100 shares to another broker in 2025.

    | year | deferred | released by sales | gone with T1 | still deferred at the end |
    | 2024 | 1,000    | 0                 | 0            | 1,000                     |
    | 2025 | 0        | 0                 | 1,000        | 0                         |
    """
    write(tmp_path, "t.csv", HEADER + textwrap.dedent("""
        2024-12-02,Alpaca,X,buy,100,50.00,0,USD,equity,B1,
        2024-12-05,Alpaca,X,buy,100,45.00,0,USD,equity,B2,
        2024-12-10,Alpaca,X,sell,100,40.00,0,USD,equity,S1,
        2025-02-03,Alpaca,X,transfer_out,100,0,0,USD,equity,T1,
    """).lstrip("\n"))
    assert run("ingest", "t.csv").exit_code == 0
    end_2024 = run("wash", "--year", "2024")
    assert "still deferred in open lots at the end of 2024 1000.00\n" in end_2024.stdout
    end_2025 = run("wash", "--year", "2025")
    assert "still deferred in open lots at the end of 2025 0.00 (gone with shares moved where taxlens does not follow " \
           "them: 1000.00)" in end_2025.stdout
    assert "t.csv:5: a transfer moved 100 shares carrying 1000.00 of losses deferred by wash sales" in end_2025.stderr


def test_shares_moved_inside_their_purchase_window_still_replace(book: Book, tmp_path: Path) -> None:
    """The transfer moves B1 (FIFO) to Schwab 8 days after it was bought; S1's loss on B2 10
    days later is within 30 days of that purchase, so the moved shares are its replacement
    where they now are: Schwab's B1 takes the 500 and S1's 15 days (2024-01-02 − 15 days =
    2023-12-18)."""
    load(book, tmp_path, """\
        2024-01-02,Alpaca,X,buy,100,50.00,0,USD,equity,B1,
        2024-01-05,Alpaca,X,buy,100,45.00,0,USD,equity,B2,
        2024-01-10,Alpaca,X,transfer_out,100,0,0,USD,equity,T1,
        2024-01-10,Schwab,X,transfer_in,100,0,0,USD,equity,T2,
        2024-01-20,Alpaca,X,sell,100,40.00,0,USD,equity,S1,
    """)
    assert table(book.washes(), WASHES) == rows("Alpaca, S1, B2, 100, 500, Schwab, B1, 15, deferred, False")
    assert table(book.lots(open_only=True), LOTS) == rows("Schwab, B1, 2024-01-02, 2023-12-18, 100, 5000, 5500, 100, 5500")
    assert book.booked().problems == []


def test_shares_moved_in_from_an_account_outside_the_rule_replace_from_the_move_on(book_with: Make, tmp_path: Path) -> None:
    """B2 is bought in a 401(k) (outside the rule) and moved into Alpaca three days later. The
    shares are still those bought on 2024-01-05: S1's loss on 2024-01-20 (on B1, held 50 days)
    finds them in Alpaca and is washed into them (4,500 + 1,000; 2024-01-05 − 50 days =
    2023-11-16). A loss before the move would not have found them."""
    book = book_with({"accounts": {"Work401k": {"type": "401k"}}})
    load(book, tmp_path, """\
        2023-12-01,Alpaca,X,buy,100,50.00,0,USD,equity,B1,
        2024-01-05,Work401k,X,buy,100,45.00,0,USD,equity,B2,
        2024-01-08,Work401k,X,transfer_out,100,0,0,USD,equity,T1,
        2024-01-08,Alpaca,X,transfer_in,100,0,0,USD,equity,T2,
        2024-01-20,Alpaca,X,sell,100,40.00,0,USD,equity,S1,
    """)
    assert table(book.washes(), WASHES) == rows("Alpaca, S1, B1, 100, 1000, Alpaca, B2, 50, deferred, True")
    assert table(book.lots(open_only=True), LOTS) == rows("Alpaca, B2, 2024-01-05, 2023-11-16, 100, 4500, 5500, 100, 5500")


def test_shares_moved_to_another_household_take_their_deferred_loss_along(book_with: Make, tmp_path: Path) -> None:
    """Sam and Alex are separate households here (no [wash_sales] households): B2, carrying
    S1's 1,000, moves to Alex's Schwab account, where nothing else could wash. The loss still
    goes with the shares: Alex's sale is 3,000 against 4,500 + 1,000."""
    book = book_with({"accounts": {"Alpaca": {"type": "taxable", "owner": "sam"}, "Schwab": {"type": "taxable", "owner": "alex"}}})
    load(book, tmp_path, """\
        2024-01-02,Alpaca,X,buy,100,50.00,0,USD,equity,B1,
        2024-01-05,Alpaca,X,buy,100,45.00,0,USD,equity,B2,
        2024-01-10,Alpaca,X,sell,100,40.00,0,USD,equity,S1,
        2024-03-01,Alpaca,X,transfer_out,100,0,0,USD,equity,T1,
        2024-03-01,Schwab,X,transfer_in,100,0,0,USD,equity,T2,
        2024-05-01,Schwab,X,sell,100,30.00,0,USD,equity,S2,
    """)
    assert table(book.gains(), SOLD)[1:] == rows("Schwab, 100, 2024-01-05, 2023-12-28, 2024-05-01, 3000, 5500, , 0, -2500, short, B2")
    assert book.booked().problems == []


def test_a_replacement_used_before_its_move_is_not_used_again_after(book: Book, tmp_path: Path) -> None:
    """S1's loss on B1 takes B4, the first purchase after B1, as its replacement (6 days
    tacked); the transfer then moves B4 (FIFO) to Schwab with that 1,000. S2's loss on B2 finds
    B4's shares used and takes B3 (5 days)."""
    load(book, tmp_path, """\
        2024-01-02,Alpaca,X,buy,100,50.00,0,USD,equity,B1,
        2024-01-03,Alpaca,X,buy,100,50.00,0,USD,equity,B4,
        2024-01-05,Alpaca,X,buy,100,45.00,0,USD,equity,B2,
        2024-01-06,Alpaca,X,buy,100,45.00,0,USD,equity,B3,
        2024-01-08,Alpaca,X,sell,100,40.00,0,USD,equity,S1,
        2024-01-09,Alpaca,X,transfer_out,100,0,0,USD,equity,T1,
        2024-01-09,Schwab,X,transfer_in,100,0,0,USD,equity,T2,
        2024-01-10,Alpaca,X,sell,100,40.00,0,USD,equity,S2,
    """)
    assert table(book.washes(), WASHES) == rows("""
        Alpaca, S1, B1, 100, 1000, Alpaca, B4, 6, deferred, True
        Alpaca, S2, B2, 100,  500, Alpaca, B3, 5, deferred, True
    """)
    assert table(book.lots(open_only=True), LOTS) == rows("""
        Alpaca, B3, 2024-01-06, 2024-01-01, 100, 4500, 5000, 100, 5000
        Schwab, B4, 2024-01-03, 2023-12-28, 100, 5000, 6000, 100, 6000
    """)


def test_a_loss_under_the_old_ticker_is_washed_by_a_purchase_under_the_new(book: Book, tmp_path: Path) -> None:
    """FB became META on 2022-06-09 (a transfer out of FB and in of as many META, one date):
    one security, so selling FB at a loss on 06-01 and buying META on 06-20 is a wash sale.
    S1: 10 × 180 = 1,800 − 3,000 (B1) = −1,200, all of it disallowed into B2 (10 META at
    190 + 1,200 = 3,100), with B1's 92 days held (2022-03-01 → 06-01) tacked on: 2022-03-20.
    The 5 FB (B3) left at the rename go on as META."""
    load(book, tmp_path, """\
        2022-03-01,Schwab,FB,buy,10,300,0,USD,equity,B1,
        2022-04-01,Schwab,FB,buy,5,200,0,USD,equity,B3,
        2022-06-01,Schwab,FB,sell,10,180,0,USD,equity,S1,
        2022-06-09,Schwab,FB,transfer_out,5,0,0,USD,equity,T1,
        2022-06-09,Schwab,META,transfer_in,5,0,0,USD,equity,T2,
        2022-06-20,Schwab,META,buy,10,190,0,USD,equity,B2,
    """)
    assert table(book.gains(), SOLD) == rows("Schwab, 10, 2022-03-01, 2022-03-01, 2022-06-01, 1800, 3000, W, 1200, 0, short, B1")
    assert table(book.washes(), "wash_group," + WASHES) == rows(
        "FB=META, Schwab, S1, B1, 10, 1200, Schwab, B2, 92, deferred, True")  # one security: the broker sees it
    assert table(book.lots(open_only=True), LOTS) == rows("""
        Schwab, B3, 2022-04-01, 2022-04-01,  5, 1000, 1000,  5, 1000
        Schwab, B2, 2022-06-20, 2022-03-20, 10, 1900, 3100, 10, 3100
    """)


# -- before a sale: what would wash it -----------------------------------------------------------------


def test_the_purchases_that_would_wash_a_loss_sale_today() -> None:
    """``bought_before``: per open lot, the shares of its symbol group bought in its household
    in the 30 days up to the price date, its own purchase aside.

    | lot | account (household)  | symbol | window (price date)      | counted                    |
    | P1  | Alpaca (self)        | SPY    | 06-01..07-01 (2025-07-01) | P2 3 IVV (group) + P3 4 SPY: 7, not its own P1 |
    | L2  | Alpaca (self)        | SPY    | the same                 | P2 + P3 + P1's 5: 12        |
    | L3  | Spouse (spouse)      | SPY    | the same                 | P5 2 (only the spouse's)    |
    | L4  | Alpaca (self)        | QQQ    | 05-01..05-31 (2025-05-31) | nothing: 0                  |
    | L5  | Old 401k (outside)   | SPY    |                          | none: the rule is not applied |
    P4 (05-31) is a day before the July window; P6 in "Old 401k" is outside the rule, so not a purchase.
    """
    import datetime as dt
    from decimal import Decimal

    import polars as pl

    from taxlens.lots.wash import ADVANTAGED, OUTSIDE, TAXABLE, WashSettings, bought_before

    july, may = dt.date(2025, 7, 1), dt.date(2025, 5, 31)
    settings = WashSettings(
        accounts=(("Alpaca", "self", TAXABLE), ("Roth", "self", ADVANTAGED), ("Spouse", "spouse", TAXABLE), ("Old 401k", "self", OUTSIDE)),
        groups=(("IVV", "sp500"), ("SPY", "sp500")),
    )
    lots = pl.DataFrame(
        [("Alpaca", "SPY", "P1", july), ("Alpaca", "SPY", "L2", july), ("Spouse", "SPY", "L3", july),
         ("Alpaca", "QQQ", "L4", may), ("Old 401k", "SPY", "L5", july)],
        schema={"account": pl.String, "symbol": pl.String, "lot_id": pl.String, "price_date": pl.Date}, orient="row",
    )
    purchases = pl.DataFrame(
        [("P1", "Alpaca", "SPY", dt.date(2025, 6, 10), Decimal(5)), ("P2", "Roth", "IVV", dt.date(2025, 6, 1), Decimal(3)),
         ("P3", "Alpaca", "SPY", dt.date(2025, 7, 1), Decimal(4)), ("P4", "Alpaca", "SPY", dt.date(2025, 5, 31), Decimal(9)),
         ("P5", "Spouse", "SPY", dt.date(2025, 6, 15), Decimal(2)), ("P6", "Old 401k", "SPY", dt.date(2025, 6, 15), Decimal(7))],
        schema={"id": pl.String, "account": pl.String, "symbol": pl.String, "trade_date": pl.Date, "quantity": pl.Decimal(38, 18)},
        orient="row",
    )
    counted = bought_before(lots, purchases, settings, frozenset())
    assert counted.to_list() == [Decimal(7), Decimal(12), Decimal(2), Decimal(0), None]
