"""Booking: stored trades → lots and disposals. Pure: frames in, frames out, no database.

The events of most positions (FIFO sales, no splits or transfers, never selling more than held)
go through the vectorised FIFO in ``fifo.py``; the rest through the loop in ``engine.py``. Both
produce the same rows to the last digit (a property test holds them to it), so which path a
position takes never shows in the result.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from decimal import Decimal
from pathlib import Path

import polars as pl

from taxlens.config import DEFAULT_OWNER, Config
from taxlens.errors import ConfigError, RowError
from taxlens.lots.engine import Booked, Selections, book_loop
from taxlens.lots.events import Settings, events_from_trades
from taxlens.lots.fifo import book_fifo, fast_positions
from taxlens.lots.frames import DISPOSAL_SCHEMA, LOT_SCHEMA
from taxlens.lots.wash import ADVANTAGED, OUTSIDE, TAXABLE, WashSettings, apply_wash_sales
from taxlens.money import D, NotANumber, fits

#: Part of the stored booking's key: bump it whenever booking rules change, so a database booked
#: by an earlier taxlens is booked again rather than served stale.
BOOK_REVISION = 13


def settings_from_config(config: Config, method: str | None = None) -> Settings:
    """Booking settings from taxlens.toml, with ``--method`` overriding every sale's method."""
    rules: list[tuple[str, int | None, str]] = []
    for name, account in sorted(config.accounts.items()):
        if account.method is not None:
            rules.append((name, None, account.method.value))
        rules.extend((name, year, m.value) for year, m in sorted(account.methods.items()))
    return Settings(
        wash=wash_settings(config),
        default_method=config.lots.method.value,
        account_methods=tuple(rules),
        crypto_universal=config.lots.crypto_scope == "universal",
        month_end_rule=config.lots.holding_period_month_end,
        override=method,
    )


def wash_settings(config: Config) -> WashSettings:
    """The wash-sale scope from taxlens.toml: each configured account's household and role
    (taxable; tax-advantaged, whose purchases wash losses for good; or outside the rule)."""
    wash = config.wash_sales
    household_of = {owner: "+".join(members) for members in wash.households for owner in members}
    advantaged = set(wash.tax_advantaged)
    accounts = tuple(
        (
            name,
            household_of.get(account.owner, account.owner),
            TAXABLE if account.type == "taxable" else ADVANTAGED if account.type in advantaged else OUTSIDE,
        )
        for name, account in sorted(config.accounts.items())
    )
    return WashSettings(
        apply=wash.apply, crypto=wash.crypto, accounts=accounts,
        default_household=household_of.get(DEFAULT_OWNER, DEFAULT_OWNER),
        groups=tuple(sorted((symbol, name) for name, symbols in wash.groups.items() for symbol in symbols)),
    )


#: The ``trade_list`` view's columns that ``book`` reads.
TRADE_COLUMNS = (
    "id", "trade_date", "ts", "account", "owner", "symbol", "asset_class", "action", "quantity", "price",
    "fee", "fee_currency", "currency", "amount", "lot_id", "source",
)


def book(trades: pl.DataFrame, settings: Settings, selections: Selections | None = None) -> Booked:
    """Book ``trades`` (the ``trade_list`` view's ``TRADE_COLUMNS``, or all of them), then apply
    the wash-sale rule.
    Returns every lot, every disposal slice (WASHED_* schemas), the wash matches, the problems
    (booked but flagged) and the errors (specific-ID selections that could not be honoured)."""
    crypto = crypto_symbols(trades)
    events, problems = events_from_trades(trades, settings)
    # The events hold all booking needs: where the caller handed over its only reference,
    # the trades' memory goes back for the booking to reuse (a lower peak on big books).
    del trades
    fast = fast_positions(events)
    every = bool(fast.all())  # the usual case: no copy of the events to filter
    quick = book_fifo(events if every else events.filter(fast), month_end_rule=settings.month_end_rule) if fast.any() else None
    slow = book_loop(events.clear() if every else events.filter(~fast), selections=selections, month_end_rule=settings.month_end_rule)
    parts = [b for b in (quick, slow) if b is not None]
    lots = pl.concat([b.lots for b in parts]) if parts else pl.DataFrame(schema=LOT_SCHEMA)
    disposals = pl.concat([b.disposals for b in parts]) if parts else pl.DataFrame(schema=DISPOSAL_SCHEMA)
    # Each part comes in seq order, so one part alone (the usual case) needs no sort: a sort
    # would copy every row only to change nothing.
    if not lots.get_column("seq").is_sorted():
        lots = lots.sort("seq")
    if not disposals.get_column("seq").is_sorted():
        disposals = disposals.with_row_index("_i").sort(["seq", "_i"]).drop("_i")
    problems, errors, splits, moves = problems + slow.problems, slow.errors, slow.splits, slow.moves
    del quick, slow, parts  # copied into lots and disposals: freed before the wash pass
    washed = apply_wash_sales(
        lots, disposals, events, crypto, with_renames(settings.wash, events), month_end_rule=settings.month_end_rule,
        splits=splits, moves=moves,
    )
    return Booked(washed.lots, washed.disposals, in_file_order(problems + washed.problems), in_file_order(errors), washed.washes,
                  carried=washed.carried)


def with_renames(wash: WashSettings, events: pl.DataFrame) -> WashSettings:
    """``wash`` with the symbols a rename joins (a transfer pair of two symbols: FB and META, a
    ticker change) in one wash-sale group: they are one security, so a loss under the old name
    is washed by a purchase under the new within 30 days. A renamed symbol already in a group
    of taxlens.toml brings the other into it."""
    paired = events.filter(pl.col("transfer_key").is_not_null())
    if paired.height == 0:
        return wash
    renames = paired.group_by("transfer_key").agg(pl.col("symbol").unique().sort()).filter(pl.col("symbol").list.len() == 2)
    if renames.height == 0:
        return wash
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for symbol, name in wash.groups:  # a configured group: its members under one root
        parent[find(symbol)] = find("\0" + name)
    for a, b in renames.get_column("symbol").to_list():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)  # a configured group's root ("\0name") wins
    members: dict[str, list[str]] = {}
    for symbol in {*parent} - {x for x in parent if x.startswith("\0")}:
        members.setdefault(find(symbol), []).append(symbol)
    groups = []
    for root, symbols in members.items():
        if len(symbols) > 1 or root.startswith("\0"):
            # A configured group keeps its name; a group the renames made is named by its symbols.
            name = root[1:] if root.startswith("\0") else "=".join(sorted(symbols))
            groups += [(symbol, name) for symbol in symbols]
    # For the broker's view: the two names of a rename are one security.
    renamed_symbols = {symbol for pair in renames.get_column("symbol").to_list() for symbol in pair}
    security = {s: "=".join(sorted(x for x in renamed_symbols if find(x) == find(s))) for s in renamed_symbols}
    return dataclasses.replace(wash, groups=tuple(sorted(groups)), renamed=tuple(sorted(security.items())))


def in_file_order(problems: list[RowError]) -> list[RowError]:
    """``problems`` by file and line (a stable sort: one line's problems keep their order).
    One order whichever symbols were booked together: a line's problems all come from one
    trade, so from one chunk of a book booked in chunks."""
    return sorted(problems, key=lambda p: (p.path, p.line))


def crypto_symbols(trades: pl.DataFrame) -> frozenset[str]:
    """The symbols the stored ``trades`` call digital assets (their asset class is crypto)."""
    return frozenset(trades.filter(pl.col("asset_class") == "crypto").get_column("symbol").unique().to_list())


def load_selections(path: str | os.PathLike[str]) -> Selections:
    """Read a lot-selection CSV (``sell_trade_id,lot_id,quantity``): which lots each sale took.

    Raises ConfigError naming the file and line of a bad row.
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ConfigError(f"{name}: lot-selection file not found") from exc
    reader = csv.DictReader(io.StringIO(text))
    need = {"sell_trade_id", "lot_id", "quantity"}
    if not need <= set(reader.fieldnames or []):
        raise ConfigError(f"{name}:1: lot-selection header must have sell_trade_id, lot_id, quantity")
    out: Selections = {}
    for row in reader:
        try:
            quantity = D(row["quantity"] or "")
        except NotANumber as exc:
            raise ConfigError(f"{name}:{reader.line_num}: quantity {row['quantity']!r} is not a number") from exc
        if quantity <= 0:
            raise ConfigError(f"{name}:{reader.line_num}: quantity {row['quantity']!r} is not positive")
        if why := fits(quantity):
            raise ConfigError(f"{name}:{reader.line_num}: quantity {row['quantity']!r} {why}")
        out.setdefault(row["sell_trade_id"].strip(), []).append((row["lot_id"].strip(), Decimal(quantity)))
    return out


def summary(disposals: pl.DataFrame) -> dict[str, Decimal | int]:
    """Totals of a disposals frame: proceeds, basis, short/long gains and losses, and the count
    and proceeds of slices whose basis is unknown (left out of the gains)."""
    known = pl.col("cost_basis").is_not_null()
    gain, term = pl.col("gain"), pl.col("term")
    # Each total filters inside its own sum: one pass, where filtering the frame first would
    # copy a million-row frame for every total.
    sums = {
        "proceeds": pl.col("proceeds").filter(known),
        "cost_basis": pl.col("cost_basis").filter(known),
        "short_gains": gain.filter(known & (term == "short") & (gain > 0)),
        "short_losses": gain.filter(known & (term == "short") & (gain < 0)),
        "long_gains": gain.filter(known & (term == "long") & (gain > 0)),
        "long_losses": gain.filter(known & (term == "long") & (gain < 0)),
        "disallowed": pl.col("adjustment").filter(known),
        "unknown_basis_proceeds": pl.col("proceeds").filter(~known),
    }
    row = disposals.select(
        *(e.sum().alias(name) for name, e in sums.items()), (~known).sum().alias("unknown_basis"),
    ).row(0, named=True)
    totals = {name: Decimal(row[name]) if row[name] is not None else Decimal(0) for name in sums}
    return {
        "disposals": disposals.height,
        **{name: totals[name] for name in ("proceeds", "cost_basis", "short_gains", "short_losses", "long_gains", "long_losses", "disallowed")},
        "unknown_basis": int(row["unknown_basis"] or 0),
        "unknown_basis_proceeds": totals["unknown_basis_proceeds"],
    }


def summed(parts: list[dict[str, Decimal | int]]) -> dict[str, Decimal | int]:
    """The ``summary`` of several disposal frames together, from each one's ``summary``."""
    empty = summary(pl.DataFrame(schema=DISPOSAL_SCHEMA))
    return {name: sum((part[name] for part in parts), start=zero) for name, zero in empty.items()}


__all__ = ["TRADE_COLUMNS", "Booked", "RowError", "book", "load_selections", "settings_from_config", "summary"]
