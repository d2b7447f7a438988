"""Open lots as a decision sees them: when each turns long-term, and, at a close from a prices
file, what it is worth, what selling it would realize and whether recent purchases would wash
the loss. Pure frame work; ``taxlens lots`` prints it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import polars as pl

from taxlens.ingest.frame import DECIMAL
from taxlens.lots.holding import anniversary_expr
from taxlens.money import cents
from taxlens.report.listing import round_money

#: The columns ``valued`` adds, in order.
VALUE_COLUMNS = ["price_date", "price", "market_value", "unrealized", "term_if_sold", "bought_last_30_days"]


def with_long_term_from(lots: pl.DataFrame, *, month_end_rule: bool) -> pl.DataFrame:
    """``lots`` with ``long_term_from``: the first tax date a sale of the lot is long-term, the
    day after the anniversary of its ``adjusted_acquired`` (tax-rules §1)."""
    turns = anniversary_expr(pl.col("adjusted_acquired"), month_end_rule=month_end_rule, dates=lots.get_column("adjusted_acquired"))
    return lots.with_columns((turns + pl.duration(days=1)).alias("long_term_from"))


def closes(path: str | Path, when: dt.date | None) -> pl.DataFrame:
    """Each symbol's last close in the prices CSV at ``path`` (``simulate.prices.read_price_rows``,
    whose errors it raises) on or before ``when`` (the last of all when None): ``symbol`` (in
    capitals), ``price_date``, ``price`` (exact)."""
    from taxlens.simulate.prices import read_price_rows

    last: dict[str, tuple[dt.date, Decimal]] = {}
    for day, name, close, _dividend, _split in read_price_rows(path):
        name = name.upper()  # tickers are the same in any case: a file's "vti" prices VTI
        if (when is None or day <= when) and (name not in last or day >= last[name][0]):
            last[name] = (day, close)
    return pl.DataFrame(
        [(name, day, close) for name, (day, close) in sorted(last.items())], orient="row",
        schema={"symbol": pl.String, "price_date": pl.Date, "price": DECIMAL},
    )


def valued(lots: pl.DataFrame, quotes: pl.DataFrame, bought: Callable[[pl.DataFrame], pl.Series]) -> pl.DataFrame:
    """Open ``lots`` (``with_long_term_from``'s columns, quantity and basis what remains) with
    ``VALUE_COLUMNS`` at their symbol's close in ``quotes`` (``closes``): the market value and
    the basis in cents, the unrealized gain from them (null where the basis is unknown), the
    term a sale on the close's date would have, and ``bought`` of the priced lots (the
    purchases that would wash a loss sale then: ``Book.bought_before``). Unpriced lots have
    nulls."""
    priced = lots.with_columns(pl.col("symbol").str.to_uppercase().alias("_quoted")).join(
        quotes.rename({"symbol": "_quoted"}), on="_quoted", how="left", maintain_order="left").drop("_quoted")
    money = round_money(priced.with_columns((pl.col("quantity") * pl.col("price")).alias("market_value")),
                        ["cost_basis", "adjusted_basis", "market_value"])
    return money.with_columns(
        (pl.col("market_value") - pl.col("adjusted_basis")).alias("unrealized"),
        pl.when(pl.col("price").is_null()).then(None)
        .when(pl.col("price_date") >= pl.col("long_term_from")).then(pl.lit("long")).otherwise(pl.lit("short")).alias("term_if_sold"),
        bought(priced).alias("bought_last_30_days"),
    )


def unrealized(frame: pl.DataFrame, taxable: list[str]) -> pl.DataFrame:
    """Per ``term_if_sold`` (null: unpriced), the unrealized gains and losses, market value and
    lots of unknown basis of ``valued``'s rows in the ``taxable`` accounts (a sale elsewhere
    realizes nothing for tax). Frames of several batches add up with ``unrealized_line``."""
    return frame.filter(pl.col("account").is_in(taxable)).group_by("term_if_sold").agg(
        pl.col("unrealized").filter(pl.col("unrealized") > 0).sum().alias("gains"),
        pl.col("unrealized").filter(pl.col("unrealized") < 0).sum().alias("losses"),
        pl.col("market_value").sum().alias("value"),
        (pl.col("market_value").is_not_null() & pl.col("unrealized").is_null()).sum().alias("unknown"),
    )


def unrealized_line(parts: list[pl.DataFrame]) -> str:
    """One line of ``unrealized`` totals (money in cents): value, and unrealized gains and
    losses by the term a sale would have."""
    summed = pl.concat(parts).group_by("term_if_sold").agg(pl.all().sum()) if parts else pl.DataFrame()
    by = {row["term_if_sold"]: row for row in summed.iter_rows(named=True)}

    def total(term: str, what: str) -> Decimal:
        value = by.get(term, {}).get(what)
        return Decimal(value) if value is not None else Decimal(0)

    value = total("short", "value") + total("long", "value")
    unpriced = ", some lots unpriced (no close for their symbol)" if None in by else ""
    unknown = sum(int(row["unknown"]) for term, row in by.items() if term is not None)
    left_out = f" ({unknown} lot{'s' if unknown != 1 else ''} of unknown basis left out)" if unknown else ""
    return (f"open lots in taxable accounts valued at {cents(value)}{unpriced}: unrealized{left_out} short-term gains "
            f"{cents(total('short', 'gains'))}, losses {cents(total('short', 'losses'))}; "
            f"long-term gains {cents(total('long', 'gains'))}, losses {cents(total('long', 'losses'))}")
