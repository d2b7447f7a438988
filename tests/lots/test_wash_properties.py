"""Wash-sale properties over random busy histories (Hypothesis).

Wash sales move a loss in time, never create or destroy it: once every lot is sold, the total
gain with the rule applied equals the total without it, to the last digit, when every
replacement is taxable; with IRA replacements the difference is exactly the loss lost for good.
Along the way every match is bounded by what was there to match.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import polars as pl
from hypothesis import assume, given
from hypothesis import strategies as st

import taxlens
from tests.lots.test_lot_properties import FEE_CENTS, MODEST, PRICE_CENTS, QUANTITY_UNITS, Trade, ingested

START = dt.date(2025, 1, 2)
END = dt.date(2025, 12, 30)


@st.composite
def busy(draw: st.DrawFn, accounts: tuple[str, ...]) -> list[Trade]:
    """A rebalancer's history: buys and sells a few days apart in every (account, symbol), so
    most losses have a purchase within 30 days somewhere; every position closed at the end."""
    symbols = draw(st.lists(st.sampled_from(("VTI", "VOO")), min_size=1, max_size=2, unique=True))
    trades: list[Trade] = []
    for account in accounts:
        for symbol in symbols:
            held, day = 0, START
            for _ in range(draw(st.integers(min_value=1, max_value=8))):
                day += dt.timedelta(days=draw(st.integers(min_value=0, max_value=20)))
                sell = held > 0 and draw(st.booleans())
                units = draw(st.one_of(st.just(held), st.integers(min_value=1, max_value=held))) if sell else draw(QUANTITY_UNITS)
                held += -units if sell else units
                # Prices near 100 so that gains and losses both happen.
                cents = draw(st.integers(min_value=9_000, max_value=11_000))
                trades.append(Trade(day, account, symbol, "sell" if sell else "buy", units, cents, draw(FEE_CENTS), f"T{len(trades) + 1}"))
            if held > 0:
                trades.append(Trade(END, account, symbol, "sell", held, draw(PRICE_CENTS), draw(FEE_CENTS), f"T{len(trades) + 1}"))
    return trades


def booked(trades: list[Trade], settings: dict[str, object]) -> taxlens.api.Booked:  # type: ignore[name-defined]
    with tempfile.TemporaryDirectory() as folder, taxlens.open_book(":memory:", taxlens.Config.model_validate(settings)) as book:
        ingested(book, trades, Path(folder))
        return book.booked()


def total(column: pl.Series) -> Decimal:
    values = column.to_list()
    assert None not in values
    return sum(values, Decimal(0))


def check_matches(result: taxlens.api.Booked) -> None:  # type: ignore[name-defined]
    """Every slice's disallowed loss is at most its loss; no replacement lot is used for more
    shares than it has; the matches add up to each slice's adjustment."""
    d, w, lots = result.disposals, result.washes, result.lots
    for row in d.iter_rows(named=True):
        assert row["adjustment"] >= 0
        if row["adjustment"] > 0:
            assert row["adjustment_code"] == "W"
            assert row["gain"] <= 0 and row["gain"] - row["adjustment"] < 0  # only a loss is washed, never past zero
    size: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    for row in lots.iter_rows(named=True):
        size[(row["account"], row["seq"])] += row["quantity"]
    used: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    for row in w.iter_rows(named=True):
        used[(row["replacement_account"], row["replacement_seq"])] += row["quantity"]
        assert row["disallowed"] > 0
        assert abs((row["disposed"] - row["replacement_acquired"]).days) <= 30
    assert all(q <= size[key] for key, q in used.items())
    applied = w.filter(pl.col("status") != "info")
    assert total(applied["disallowed"]) == total(d["adjustment"])


@MODEST
@given(busy(("Alpaca", "Schwab")))
def test_washes_only_defer_losses_between_taxable_accounts(trades: list[Trade]) -> None:
    """Taxable accounts only, everything sold by the end: Σ gain with the rule = Σ gain without,
    and nothing is left deferred."""
    on = booked(trades, {})
    off = booked(trades, {"wash_sales": {"apply": False}})
    check_matches(on)
    assert total(on.disposals["gain"]) == total(off.disposals["gain"])
    assert total(on.disposals["wash_basis"]) == total(on.washes.filter(pl.col("status") == "deferred")["disallowed"])
    assert total(on.lots["open_quantity"]) == 0


@MODEST
@given(busy(("Alpaca", "IRA")))
def test_an_ira_replacement_loses_exactly_the_permanent_amount(trades: list[Trade]) -> None:
    """With IRA purchases in the household: Σ gain with the rule − Σ gain without = the loss
    permanently disallowed (the IRA's own sales are not washed and get no basis)."""
    settings = {"accounts": {"IRA": {"type": "roth_ira"}}}
    on = booked(trades, settings)
    off = booked(trades, {**settings, "wash_sales": {"apply": False}})
    check_matches(on)
    permanent = total(on.washes.filter(pl.col("status") == "permanent")["disallowed"])
    assert total(on.disposals["gain"]) - total(off.disposals["gain"]) == permanent
    assert total(on.disposals.filter(pl.col("account") == "IRA")["adjustment"]) == 0


SPLIT_DAY = dt.date(2025, 6, 16)  # more than 30 days from every trade: no wash window spans it


@st.composite
def split_histories(draw: st.DrawFn) -> tuple[list[Trade], list[Trade]]:
    """The same busy history twice: once with an r-for-1 split of every open position on
    SPLIT_DAY (trades before it in old shares), once as if the split had always been (every
    earlier trade in r times the shares at 1/r the price). Trades come from January to April
    and from August on, so no 30-day window holds both sides of the split."""
    ratio = draw(st.sampled_from((2, 3)))
    symbols = draw(st.lists(st.sampled_from(("VTI", "VOO")), min_size=1, max_size=2, unique=True))
    split, always = [], []
    for account in ("Alpaca", "Schwab"):
        for symbol in symbols:
            held = 0  # in today's shares: old shares before the split, new after
            for start, stop in ((dt.date(2025, 1, 2), dt.date(2025, 4, 30)), (dt.date(2025, 8, 1), dt.date(2025, 12, 20))):
                day = start
                if start > SPLIT_DAY and held:
                    n = f"T{len(split) + 1}"
                    split.append(Trade(SPLIT_DAY, account, symbol, "split_in", held * (ratio - 1), 0, 0, n))
                    held *= ratio
                early = start < SPLIT_DAY
                for _ in range(draw(st.integers(min_value=1, max_value=6))):
                    day = min(stop, day + dt.timedelta(days=draw(st.integers(min_value=0, max_value=20))))
                    sell = held > 0 and draw(st.booleans())
                    units = draw(st.one_of(st.just(held), st.integers(min_value=1, max_value=held))) if sell else draw(QUANTITY_UNITS)
                    held += -units if sell else units
                    cents = draw(st.integers(min_value=1_500, max_value=1_833)) * 6  # near 100, divisible by 2 and 3
                    side, n, fee = "sell" if sell else "buy", f"T{len(split) + 1}", draw(FEE_CENTS)
                    split.append(Trade(day, account, symbol, side, units, cents, fee, n))
                    always.append(Trade(day, account, symbol, side, units * ratio if early else units, cents // ratio if early else cents, fee, n))
            if held:
                n = f"T{len(split) + 1}"
                split.append(Trade(END, account, symbol, "sell", held, 10_000, 0, n))
                always.append(Trade(END, account, symbol, "sell", held, 10_000, 0, n))
    return split, always


def per_sale(result: taxlens.api.Booked) -> dict[tuple[str, str], tuple[Decimal, ...]]:  # type: ignore[name-defined]
    """Each sale's totals by term: proceeds, basis, disallowed loss, deferred loss carried in, gain."""
    sums: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 5)
    for row in result.disposals.iter_rows(named=True):
        totals = sums[(row["sell_trade_id"], row["term"])]
        for i, column in enumerate(("proceeds", "cost_basis", "adjustment", "wash_basis", "gain")):
            totals[i] += row[column]
    return {key: tuple(values) for key, values in sums.items()}


def books_alike(ours: taxlens.api.Booked, theirs: taxlens.api.Booked) -> None:  # type: ignore[name-defined]
    """Both booked without problems, ours within the matching bounds, and every sale's totals by
    term (``per_sale``) the same to 10^-9 of a dollar."""
    assert ours.problems == [] and theirs.problems == []
    check_matches(ours)
    mine, other = per_sale(ours), per_sale(theirs)
    assert mine.keys() == other.keys()
    for key, values in mine.items():
        assert all(abs(a - b) < Decimal("1e-9") for a, b in zip(values, other[key], strict=True)), (key, values, other[key])


@MODEST
@given(split_histories())
def test_a_split_moves_deferred_losses_as_if_the_shares_had_always_been_split(histories: tuple[list[Trade], list[Trade]]) -> None:
    """A split changes share counts, never what a wash deferred: every sale's proceeds, basis,
    disallowed loss, carried-in loss and gain, short and long, match the history written in
    split shares from the start (to 10^-9 of a dollar: the two divide bases over different
    share counts at 18 decimals)."""
    split, always = (booked(trades, {}) for trades in histories)
    books_alike(split, always)


@st.composite
def moved_histories(draw: st.DrawFn) -> tuple[list[Trade], list[Trade]]:
    """The same busy history twice: once with Alpaca's positions moved to a new Schwab account
    on a day mid-year (and traded there afterwards), once left in Alpaca throughout. A Fidelity
    account trades the same symbols all year in both, so losses wash across accounts and
    across the move."""
    symbols = draw(st.lists(st.sampled_from(("VTI", "VOO")), min_size=1, max_size=2, unique=True))
    move_day = START + dt.timedelta(days=draw(st.integers(min_value=20, max_value=300)))
    moved, stayed = [], []
    for account in ("Alpaca", "Fidelity"):
        for symbol in symbols:
            held, day, gone = 0, START, False
            for _ in range(draw(st.integers(min_value=2, max_value=12))):
                day = min(END - dt.timedelta(days=1), day + dt.timedelta(days=draw(st.integers(min_value=0, max_value=25))))
                if account == "Alpaca" and not gone and day >= move_day:
                    gone = True
                    if held:
                        for side, where in (("transfer_out", "Alpaca"), ("transfer_in", "Schwab")):
                            moved.append(Trade(move_day, where, symbol, side, held, 0, 0, f"M{len(moved) + 1}"))
                sell = held > 0 and draw(st.booleans())
                units = draw(st.one_of(st.just(held), st.integers(min_value=1, max_value=held))) if sell else draw(QUANTITY_UNITS)
                held += -units if sell else units
                cents = draw(st.integers(min_value=9_000, max_value=11_000))
                side, n, fee = "sell" if sell else "buy", f"T{len(stayed) + 1}", draw(FEE_CENTS)
                stayed.append(Trade(day, account, symbol, side, units, cents, fee, n))
                moved.append(Trade(day, "Schwab" if gone else account, symbol, side, units, cents, fee, n))
            if held:
                n = f"T{len(stayed) + 1}"
                stayed.append(Trade(END, account, symbol, "sell", held, 10_000, 0, n))
                moved.append(Trade(END, "Schwab" if gone else account, symbol, "sell", held, 10_000, 0, n))
    return moved, stayed


@MODEST
@given(moved_histories())
def test_a_transfer_moves_deferred_losses_as_if_the_shares_had_stayed(histories: tuple[list[Trade], list[Trade]]) -> None:
    """Moving shares between one's own accounts changes where they are, never what a wash
    deferred or which shares replace a loss: every sale's proceeds, basis, disallowed loss,
    carried-in loss and gain, short and long, match the history where they stayed (to 10^-9 of a
    dollar: the move cuts each lot's basis and deferred loss at 18 decimals)."""
    moved, stayed = (booked(trades, {}) for trades in histories)
    books_alike(moved, stayed)


@st.composite
def renamed_histories(draw: st.DrawFn) -> tuple[list[Trade], list[Trade]]:
    """The same busy history twice: once with VTI renamed VTX on a day mid-year in every
    account (a transfer out of VTI and in of as many VTX, as a broker records a ticker change)
    and traded as VTX afterwards, once as VTX from the start. VOO trades beside it."""
    rename_day = START + dt.timedelta(days=draw(st.integers(min_value=20, max_value=300)))
    renamed, always = [], []
    for account in ("Alpaca", "Fidelity"):
        for symbol in ("VTI", "VOO"):
            held, day, done = 0, START, symbol != "VTI"
            for _ in range(draw(st.integers(min_value=2, max_value=12))):
                day = min(END - dt.timedelta(days=1), day + dt.timedelta(days=draw(st.integers(min_value=0, max_value=25))))
                if not done and day >= rename_day:
                    done = True
                    if held:
                        for side, name in (("transfer_out", "VTI"), ("transfer_in", "VTX")):
                            renamed.append(Trade(rename_day, account, name, side, held, 0, 0, f"R{len(renamed) + 1}"))
                sell = held > 0 and draw(st.booleans())
                units = draw(st.one_of(st.just(held), st.integers(min_value=1, max_value=held))) if sell else draw(QUANTITY_UNITS)
                held += -units if sell else units
                cents = draw(st.integers(min_value=9_000, max_value=11_000))
                side, n, fee = "sell" if sell else "buy", f"T{len(always) + 1}", draw(FEE_CENTS)
                now = "VTX" if symbol == "VTI" and done else symbol
                always.append(Trade(day, account, "VTX" if symbol == "VTI" else symbol, side, units, cents, fee, n))
                renamed.append(Trade(day, account, now, side, units, cents, fee, n))
            if not done and held:  # every trade before the rename: the rename still comes before the end
                for side, name in (("transfer_out", "VTI"), ("transfer_in", "VTX")):
                    renamed.append(Trade(rename_day, account, name, side, held, 0, 0, f"R{len(renamed) + 1}"))
            if held:
                n = f"T{len(always) + 1}"
                always.append(Trade(END, account, "VTX" if symbol == "VTI" else symbol, "sell", held, 10_000, 0, n))
                renamed.append(Trade(END, account, "VTX" if symbol == "VTI" else symbol, "sell", held, 10_000, 0, n))
    # A rename is in the data only where shares were held through it: with none, nothing ties
    # VTI to VTX (as in a real export).
    assume(any(t.side == "transfer_out" for t in renamed))
    return renamed, always


@MODEST
@given(renamed_histories())
def test_a_rename_books_as_if_the_new_ticker_had_always_been(histories: tuple[list[Trade], list[Trade]]) -> None:
    """A ticker change renames a security, nothing more: every sale's proceeds, basis,
    disallowed loss, carried-in loss and gain, short and long, match the history written under
    the new ticker from the start, washes across the rename included."""
    renamed, always = (booked(trades, {}) for trades in histories)
    # Each rename is reported (not a problem with the books): the rest must be alike.
    renamed.problems[:] = [p for p in renamed.problems if "booked as one holding renamed" not in p.message]
    books_alike(renamed, always)
