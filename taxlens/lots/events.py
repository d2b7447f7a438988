"""Stored trades → lot events: what each action does to lots, with amounts and order fixed.

    buy, reinvest        acquire: basis = the cash paid (−amount) when the source gives it,
                         else quantity × price + fee (the fee adds to basis)
    income               acquire at market value (quantity × price): rewards and staking
    sell                 dispose: proceeds = the cash received (amount), else
                         quantity × price − fee (the fee reduces proceeds)
    fee paid in the coin dispose of that coin for nothing (Reg. §1.1001-7(b)(1)(ii))
    split_in, split_out  split: shares added to / removed from the open lots, basis kept
    transfer_out/_in     lots move between the household's own accounts with basis and dates
                         (paired by symbol and quantity within 7 days); an unpaired
                         transfer in has unknown basis, never zero
    sell_short, buy_to_cover  not booked: reported as unsupported
    dividend, interest, deposit, … cash only: no lot changes

Events apply in (tax date, instant, acquisitions before disposals, source, line) order: a
date-only export cannot say whether a same-day buy came before a sale, and buying first never
invents a shortfall.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import polars as pl

from taxlens.errors import RowError
from taxlens.ingest.frame import DECIMAL
from taxlens.lots.frames import (
    ACQUIRE,
    DISPOSE,
    EVENT_SCHEMA,
    SPLIT_IN,
    SPLIT_OUT,
    TRANSFER_IN,
    TRANSFER_OUT,
)
from taxlens.lots.wash import WashSettings
from taxlens.money import plain

TRANSFER_WINDOW = dt.timedelta(days=7)
UNIVERSAL_UNTIL = dt.date(2025, 1, 1)  # pooled crypto lots end here (per-account from 2025)

_KIND = {
    "buy": ACQUIRE, "reinvest": ACQUIRE, "income": ACQUIRE,
    "sell": DISPOSE, "fee": DISPOSE,
    "split_in": SPLIT_IN, "split_out": SPLIT_OUT,
    "transfer_in": TRANSFER_IN, "transfer_out": TRANSFER_OUT,
}
_FIRST = {ACQUIRE: 0, TRANSFER_IN: 0, SPLIT_IN: 1, SPLIT_OUT: 1, DISPOSE: 2, TRANSFER_OUT: 2}


@dataclass(frozen=True)
class Settings:
    """How to book: a method per (account, tax year), the lot scope for crypto, the HP-6 rule."""

    default_method: str = "fifo"
    account_methods: tuple[tuple[str, int | None, str], ...] = ()  # (account, year or None, method)
    crypto_universal: bool = False  # pool crypto lots across accounts (allowed before 2025 only)
    month_end_rule: bool = True
    override: str | None = None  # --method
    wash: WashSettings = field(default_factory=WashSettings)  # the wash-sale pass after booking

    def method_expr(self) -> pl.Expr:
        """The method for each sale: --method, else account+year, else account, else default."""
        if self.override:
            return pl.lit(self.override)
        expr = pl.lit(self.default_method)
        year = pl.col("trade_date").dt.year()
        # Later rules win: account-wide first, then account+year.
        for account, y, method in sorted(self.account_methods, key=lambda r: r[1] is not None):
            cond = pl.col("account") == account
            if y is not None:
                cond = cond & (year == y)
            expr = pl.when(cond).then(pl.lit(method)).otherwise(expr)
        return expr


def events_from_trades(trades: pl.DataFrame, settings: Settings) -> tuple[pl.DataFrame, list[RowError]]:
    """Lot events (``EVENT_SCHEMA``) for the stored ``trades`` (the ``trade_list`` view's columns),
    and the problems: short sales, fees in another currency, unpaired transfers.
    """
    problems: list[RowError] = []
    t = trades.with_columns(pl.col("action").replace_strict(_KIND, default=None).alias("kind"))
    if "_rank" not in t.columns:
        t = t.with_columns(event_ranks(t).alias("_rank"))
    for row in t.filter(pl.col("action").is_in(["sell_short", "buy_to_cover"])).iter_rows(named=True):
        problems.append(RowError.at(row["source"], f"{row['action']} of {row['symbol']}: short positions are not supported, so it is not booked"))
    # A fee is a lot event only when paid in the asset itself (a coin fee), not in cash.
    coin_fee = (pl.col("fee_currency") == pl.col("symbol")) & (pl.col("symbol") != pl.col("currency"))
    t = t.filter(pl.col("kind").is_not_null() & ((pl.col("action") != "fee") | coin_fee))
    odd_fee = t.filter(
        pl.col("kind").is_in([ACQUIRE, DISPOSE]) & (pl.col("action") != "fee") & (pl.col("fee") != 0)
        & (pl.col("fee_currency") != pl.col("currency")) & pl.col("amount").is_null()
    )
    for row in odd_fee.iter_rows(named=True):
        problems.append(RowError.at(row["source"], f"fee of {plain(row['fee'])} {row['fee_currency']} on a {row['currency']} trade is left out of its basis or proceeds (no exchange rate)"))
    # US returns are in dollars and taxlens has no exchange rates yet: say so once per position
    # rather than let euro amounts pass for dollars.
    foreign = (
        t.filter(pl.col("kind").is_in([ACQUIRE, DISPOSE]) & (pl.col("currency") != "USD"))
        .group_by("account", "symbol", "currency").agg(pl.col("source").first(), pl.len().alias("n"))
        .sort("source")
    )
    for row in foreign.iter_rows(named=True):
        problems.append(RowError.at(row["source"], f"{row['n']} {row['symbol']} trades in {row['account']} are in {row['currency']}: "
                                              f"their basis and proceeds are in {row['currency']}, not converted to USD (no exchange rates yet)"))

    fee_in_trade_currency = pl.when(pl.col("fee_currency") == pl.col("currency")).then(pl.col("fee")).otherwise(pl.lit(0).cast(DECIMAL))
    gross = pl.col("quantity") * pl.col("price")
    basis = (
        pl.when(pl.col("action") == "income").then(gross)
        .when(pl.col("amount") < 0).then(-pl.col("amount"))
        .when(pl.col("price").is_not_null()).then(gross + fee_in_trade_currency)
        .otherwise(None)
    )
    proceeds = (
        pl.when(pl.col("action") == "fee").then(pl.lit(0).cast(DECIMAL))
        .when(pl.col("amount") > 0).then(pl.col("amount"))
        .when(pl.col("price").is_not_null()).then(gross - fee_in_trade_currency)
        .otherwise(None)
    )
    amount = (
        pl.when(pl.col("kind") == ACQUIRE).then(basis)
        .when(pl.col("kind") == DISPOSE).then(proceeds)
        .otherwise(None)
    )
    scope = pl.col("account")
    if settings.crypto_universal:
        # Pooled ("universal") crypto lots are allowed for years before 2025 only; from 2025
        # lots are per account (the pool is handed out to the accounts on 2025-01-01 below).
        pooled = (pl.col("asset_class") == "crypto") & (pl.col("trade_date") < UNIVERSAL_UNTIL)
        scope = pl.when(pooled).then(pl.lit("universal:") + pl.col("owner").fill_null("self")).otherwise(scope)
    # The stored trades usually arrive in event order already; moving every wide string
    # column costs more than finding the order.
    ordered = t if t.get_column("_rank").is_sorted() else t.sort("_rank")
    events = ordered.select(
        _seq(pl.col("_rank")),
        scope.alias("scope"),
        "account", "symbol", "kind",
        pl.col("trade_date").alias("date"),
        pl.when(pl.col("action") == "fee").then(pl.col("fee")).otherwise(pl.col("quantity")).cast(DECIMAL).alias("quantity"),
        amount.cast(DECIMAL).alias("amount"),
        pl.col("id").alias("trade_id"),
        pl.col("lot_id"),
        pl.when(pl.col("kind") == DISPOSE).then(settings.method_expr()).otherwise(None).alias("method"),
        pl.lit(None, dtype=pl.String).alias("transfer_key"),
        "currency", "source",
        # For pairing transfers (dropped by the final select): the instant, whether a coin,
        # and the method a network fee taken out of a transfer would be booked by.
        pl.col("ts").alias("_ts"),
        (pl.col("asset_class") == "crypto").alias("_coin"),
        pl.when(pl.col("kind") == TRANSFER_OUT).then(settings.method_expr()).otherwise(None).alias("_method"),
    )
    events = events.filter(pl.col("quantity") > 0)
    events = _spread_sale_fees(events, trades, problems)
    for row in events.filter((pl.col("kind") == DISPOSE) & pl.col("amount").is_null()).iter_rows(named=True):
        problems.append(RowError.at(row["source"], f"sale of {plain(row['quantity'])} {row['symbol']} has no price or cash amount: its proceeds and gain are unknown"))
    events, unpaired, renamed, fees = _pair_transfers(events)
    for out, into in fees:
        fee = out["quantity"] - into["quantity"]  # type: ignore[operator]
        problems.append(RowError.at(out["source"], f"transfer out of {plain(out['quantity'])} {out['symbol']} from {out['account']} "  # type: ignore[arg-type]
                                                   f"arrived in {into['account']} as {plain(into['quantity'])}: the {plain(fee)} {out['symbol']} "  # type: ignore[arg-type]
                                                   "between is booked as a network fee paid in the coin (a disposal for no proceeds)"))
    for out, into in renamed:
        problems.append(RowError.at(out["source"], f"transfer out of {plain(out['quantity'])} {out['symbol']} and in of as many "  # type: ignore[arg-type]
                                                   f"{into['symbol']} at the same moment in {out['account']}: booked as one holding renamed, "
                                                   "its lots keep their basis and dates (not a sale)"))
    for row in unpaired:
        quantity = row["quantity"]
        assert isinstance(quantity, Decimal)
        if row["kind"] == TRANSFER_IN:
            problems.append(RowError.at(row["source"], f"transfer in of {plain(quantity)} {row['symbol']} to {row['account']} has no matching transfer out within 7 days: its basis is unknown (add it as an opening lot)"))
        else:
            problems.append(RowError.at(row["source"], f"transfer out of {plain(quantity)} {row['symbol']} from {row['account']} has no matching transfer in: its lots left the accounts taxlens knows (not a sale)"))
    if settings.crypto_universal:
        events = _allocate_pool(events.with_columns(
            pl.when(pl.col("date") >= UNIVERSAL_UNTIL).then(pl.col("seq") + _LATER).otherwise(pl.col("seq")).alias("seq")
        ))
    return events.cast(EVENT_SCHEMA).select(list(EVENT_SCHEMA)), problems  # type: ignore[arg-type]


#: ``seq`` is 4 × (rank + 1), the rank being the trade's place in the event order of *all* the
#: stored trades: unique and in event order, but sparse, so that booking the trades in chunks
#: of symbols (api.py) gives each event the very seq the whole book would. The number after
#: each is left for a transfer in moved behind its transfer out, the one before it for the
#: network fee taken out of a transfer out. With pooled crypto, events from 2025 move up by
#: ``_LATER`` and the pool's hand-out to the accounts takes ``_POOL`` + 2k between them.
_LATER, _POOL = 1 << 40, 1 << 39
_SPACING = 4


def _seq(rank: pl.Expr) -> pl.Expr:
    return ((rank.cast(pl.Int64) + 1) * _SPACING).alias("seq")


def event_ranks(trades: pl.DataFrame, source: Callable[[], pl.Series] | None = None) -> pl.Series:
    """Each row's place (0, 1, …) in the order events apply in, as ``_event_order``.
    ``trades`` needs ``trade_date``, ``ts`` and ``action`` (or ``kind``), and ``source`` unless
    ``source()`` gives that column (it is read only when the other keys tie)."""
    t = trades if "kind" in trades.columns else trades.with_columns(
        pl.col("action").replace_strict(_KIND, default=None).alias("kind")
    )
    order = _event_order(t, source or (lambda: t.get_column("source"))).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return pl.Series("_rank", rank)


def _event_order(t: pl.DataFrame, source: Callable[[], pl.Series]) -> pl.Series:
    """The row order events apply in: (tax date, untimed rank, instant, acquisitions first,
    source file, source line). Returns row numbers of ``t`` (which has ``kind``).

    The file and line come out of ``source`` text, which is slow to cut and to sort on, and
    they only break ties: when the numeric keys alone leave none, they are not computed."""
    numeric = ["trade_date", "_untimed", "ts", "_first"]
    keys = t.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"),
        "trade_date",
        # Without a time, a purchase counts as the day's first event and a sale as its last,
        # so a date-only export never invents a shortfall against a timed one.
        pl.when(pl.col("ts").is_not_null()).then(1).when(pl.col("kind").is_in([ACQUIRE, TRANSFER_IN])).then(0)
        .otherwise(2).alias("_untimed"),
        "ts",
        # Rows that are no lot event (dividends, cash) sort among the splits; they are dropped.
        pl.col("kind").replace_strict(_FIRST, default=1, return_dtype=pl.Int64).alias("_first"),
    )
    # Stable sorts: rows equal in every key (one line's trades) keep the stored order.
    by_number = keys.sort(numeric, nulls_last=False, maintain_order=True)
    tied = by_number.select(pl.all_horizontal(pl.col(c).eq_missing(pl.col(c).shift(1)) for c in numeric).any()).item()
    if not tied:
        return by_number.get_column("_row")
    text = source()
    return keys.with_columns(
        text.str.replace(r":\d+$", "").alias("_file"),
        text.str.extract(r":(\d+)$").cast(pl.Int64).alias("_line"),
    ).sort([*numeric, "_file", "_line"], nulls_last=False, maintain_order=True).get_column("_row")


def _allocate_pool(events: pl.DataFrame) -> pl.DataFrame:
    """Hand the pooled crypto lots still open on 2025-01-01 to the accounts that hold the coins
    then (per-account lots are the rule from 2025; Rev. Proc. 2024-28's allocation): for each
    owner's coin, a transfer out of the pool and into each account of that account's holding
    (bought − sold before 2025), accounts in name order, so the oldest pooled lots go first,
    with their basis and dates. Only coins with activity from 2025 on need it."""
    pool = events.filter(pl.col("scope").str.starts_with("universal:"))
    later = events.filter(pl.col("date") >= UNIVERSAL_UNTIL)
    if pool.height == 0 or later.height == 0:
        return events
    signed = (
        pl.when(pl.col("kind").is_in([ACQUIRE, TRANSFER_IN, SPLIT_IN])).then(pl.col("quantity"))
        .when(pl.col("kind").is_in([DISPOSE, TRANSFER_OUT, SPLIT_OUT])).then(-pl.col("quantity"))
        .otherwise(0)
    )
    held = (
        pool.group_by("scope", "account", "symbol")
        .agg(signed.sum().alias("quantity"), pl.col("currency").last(), pl.col("source").last(), pl.col("seq").max().alias("_last"))
        .filter(pl.col("quantity") > 0)
        .join(later.select("symbol").unique(), on="symbol", how="semi")
        .sort("scope", "symbol", "account")
    )
    if held.height == 0:
        return events
    moves = []
    for r in held.iter_rows(named=True):
        key = f"pool:{r['scope']}:{r['symbol']}:{r['account']}"
        common = {"account": r["account"], "symbol": r["symbol"], "date": UNIVERSAL_UNTIL, "quantity": r["quantity"],
                  "amount": None, "trade_id": key, "lot_id": None, "method": "fifo", "transfer_key": key,
                  "currency": r["currency"], "source": r["source"]}
        moves.append({**common, "scope": r["scope"], "kind": TRANSFER_OUT})
        moves.append({**common, "scope": r["account"], "kind": TRANSFER_IN})
    # The allocation happens at the very start of 2025: after every earlier event and before
    # every later one (moved up by _LATER), in (scope, symbol, account) order.
    added = pl.DataFrame(moves).with_columns((_POOL + 2 * pl.int_range(pl.len(), dtype=pl.Int64)).alias("seq"))
    return pl.concat([events, added.select(events.columns).cast(events.schema)]).sort("seq")  # type: ignore[arg-type]


def _spread_sale_fees(events: pl.DataFrame, trades: pl.DataFrame, problems: list[RowError]) -> pl.DataFrame:
    """Take each day's ``sale_fee`` out of that day's sales in the account, pro rata by their
    proceeds, cumulatively so the shares add up to the fee exactly: the sale ending at c dollars
    of the day's P has taken F(c) = fee × c ÷ P (multiplied first: c runs to thousands of
    dollars, and a per-dollar rate rounded to 18 places would lose digits). A fee on a day
    without sales stays out of every gain, and is reported."""
    fees = (
        trades.filter(pl.col("action") == "sale_fee")
        .group_by("account", pl.col("trade_date").alias("date"))
        .agg(pl.col("fee").sum().alias("_fee"), pl.col("source").min().alias("_fee_source"))
    )
    if fees.height == 0:
        return events
    group = ["account", "date"]
    sales = (
        events.filter((pl.col("kind") == DISPOSE) & pl.col("amount").is_not_null())
        .select("seq", "account", "date", "amount")
        .join(fees, on=group, how="inner")
        .sort("seq")
        .with_columns(pl.col("amount").cum_sum().over(group).alias("_c"), pl.col("amount").sum().over(group).alias("_P"))
        .filter(pl.col("_P") > 0)
    )

    def share(c: pl.Expr) -> pl.Expr:
        return pl.when(c == pl.col("_P")).then(pl.col("_fee")).otherwise((pl.col("_fee") * c) / pl.col("_P"))

    cut = sales.select("seq", (share(pl.col("_c")) - share(pl.col("_c") - pl.col("amount"))).alias("_cut"))
    for row in fees.join(sales.select(group).unique(), on=group, how="anti").sort("_fee_source").iter_rows(named=True):
        problems.append(RowError.at(row["_fee_source"], f"fee of {plain(row['_fee'])} on {row['date']} in {row['account']} has no sale that day to reduce: it is left out of every gain"))
    return (
        events.join(cut, on="seq", how="left", maintain_order="left")
        .with_columns((pl.col("amount") - pl.col("_cut").fill_null(0)).alias("amount"))
        .drop("_cut")
    )


#: A coin's transfer in may arrive short of its transfer out by the network fee the sender
#: paid out of it (Binance's withdrawals, for one): up to this share of what left.
NETWORK_FEE_SHARE = Decimal("0.05")

Pair = tuple[dict[str, object], dict[str, object]]


def _pair_transfers(events: pl.DataFrame) -> tuple[pl.DataFrame, list[dict[str, object]], list[Pair], list[Pair]]:
    """Give each transfer_in the key of its transfer_out: the earliest unpaired one that is,
    in this order of preference,

    1. in the same account at the same moment (the same instant; for shares without times,
       the same date) under another symbol, of the same quantity (a rename, such as Coinbase
       turning ETH2 back into ETH, or a ticker change: the lots go on under the new symbol);
    2. of the same symbol and quantity from another account within 7 days (either side);
    3. for a coin, as 2 but larger by at most ``NETWORK_FEE_SHARE``: the difference, the
       network fee, becomes a disposal for no proceeds (a coin fee) just before the transfer
       out, which then moves what arrived.

    Returns the events, the unpaired transfers, the renames and the pairs with a fee (out, in).
    Transfers are rare: a loop."""
    extra = ["_ts", "_coin", "_method"]
    moves = events.filter(pl.col("kind").is_in([TRANSFER_IN, TRANSFER_OUT]))
    if moves.height == 0:
        return events.drop(extra, strict=False), [], [], []
    outs = [r for r in moves.iter_rows(named=True) if r["kind"] == TRANSFER_OUT]
    keys: dict[int, str] = {}
    unpaired = []
    renamed: list[Pair] = []
    fees: list[Pair] = []

    def renames(o: dict[str, object], row: dict[str, object]) -> bool:
        # The same moment: the same instant, or, for shares, the same date where the source
        # gives no time (a broker's ticker change). Coins move at all hours, so a day's 1 BTC
        # out and 1 ETH in could be two transfers: they need the instant.
        timed = o["_ts"] is not None and row["_ts"] is not None
        when = o["_ts"] == row["_ts"] if timed else o["date"] == row["date"] and not o["_coin"]
        return o["quantity"] == row["quantity"] and o["account"] == row["account"] and o["symbol"] != row["symbol"] and when

    def moved(o: dict[str, object], row: dict[str, object]) -> bool:
        return (o["quantity"] == row["quantity"] and o["symbol"] == row["symbol"] and o["account"] != row["account"]
                and abs(o["date"] - row["date"]) <= TRANSFER_WINDOW)  # type: ignore[operator]

    def moved_less_a_fee(o: dict[str, object], row: dict[str, object]) -> bool:
        sent, got = o["quantity"], row["quantity"]
        return (bool(o["_coin"]) and o["symbol"] == row["symbol"] and o["account"] != row["account"]
                and abs(o["date"] - row["date"]) <= TRANSFER_WINDOW  # type: ignore[operator]
                and got < sent and sent - got <= sent * NETWORK_FEE_SHARE)  # type: ignore[operator]

    for row in (r for r in moves.iter_rows(named=True) if r["kind"] == TRANSFER_IN):
        match = None
        for rule in (renames, moved, moved_less_a_fee):
            match = next((o for o in outs if o["seq"] not in keys and rule(o, row)), None)
            if match is not None:
                if rule is renames:
                    renamed.append((match, row))
                elif rule is moved_less_a_fee:
                    fees.append((match, row))
                break
        if match is None:
            unpaired.append(row)
            continue
        key = f"t{match['seq']}"
        keys[match["seq"]] = keys[row["seq"]] = key
    unpaired += [o for o in outs if o["seq"] not in keys]
    unpaired.sort(key=lambda r: r["seq"])
    if fees:
        # The fee leaves first, by the account's method, at the seq before the transfer out's
        # (no other event has it); the transfer out then moves what arrived.
        fee_rows = pl.DataFrame([
            {**{c: out[c] for c in events.columns}, "seq": int(out["seq"]) - 1, "kind": DISPOSE,  # type: ignore[call-overload]
             "quantity": out["quantity"] - into["quantity"], "amount": Decimal(0),  # type: ignore[operator]
             "method": "fifo" if out["_method"] == "specific" else out["_method"]}  # no selection names a fee's lots
            for out, into in fees
        ], schema=events.schema)
        arrived = pl.DataFrame({"seq": [out["seq"] for out, _ in fees], "_arrived": [into["quantity"] for _, into in fees]},
                               schema={"seq": pl.Int64, "_arrived": events.schema["quantity"]})
        events = (
            pl.concat([events, fee_rows]).join(arrived, on="seq", how="left")
            .with_columns(pl.coalesce("_arrived", "quantity").alias("quantity")).drop("_arrived").sort("seq")
        )
    events = events.drop(extra)
    if not keys:
        return events, unpaired, renamed, fees
    keyed = pl.DataFrame({"seq": list(keys), "_key": list(keys.values())}, schema={"seq": pl.Int64, "_key": pl.String})
    events = events.join(keyed, on="seq", how="left").with_columns(pl.col("_key").alias("transfer_key")).drop("_key")
    # A transfer in that arrives before its transfer out waits for it: it moves just after,
    # to the odd seq after its transfer out's, which no other event has.
    paired_in = (pl.col("kind") == TRANSFER_IN) & pl.col("transfer_key").is_not_null()
    out_seq = pl.col("seq").filter(pl.col("kind") == TRANSFER_OUT).first().over("transfer_key")
    events = events.with_columns(
        pl.when(paired_in & (out_seq > pl.col("seq"))).then(out_seq + 1).otherwise(pl.col("seq")).alias("seq")
    ).sort("seq")
    return events, unpaired, renamed, fees

