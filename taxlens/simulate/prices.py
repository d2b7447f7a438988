"""Price panels for the simulator: a CSV of daily closes, or the prices in the stored trades.

A panel is dates × symbols of closes (float64: prices only decide trades and value the
portfolio; the trades themselves are booked at exact decimal prices), forward-filled, with
optional cash dividends per share and split ratios on their dates.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl

from taxlens.errors import FileError, RowError, RowErrors
from taxlens.money import D, NotANumber


@dataclass
class Prices:
    dates: list[dt.date]
    symbols: list[str]
    close: np.ndarray  # (days, symbols); NaN before a symbol's first quote
    dividend: np.ndarray  # cash per share paid on that date (0: none)
    split: np.ndarray  # shares after ÷ before on that date (1: none)
    source: str

    def window(self, start: dt.date | None, end: dt.date | None) -> Prices:
        """The dates from ``start`` to ``end`` inclusive."""
        keep = [i for i, d in enumerate(self.dates) if (start is None or d >= start) and (end is None or d <= end)]
        if not keep:
            raise FileError(self.source, f"no prices between {start} and {end}")
        sl = slice(keep[0], keep[-1] + 1)
        return Prices(self.dates[sl], self.symbols, self.close[sl], self.dividend[sl], self.split[sl], self.source)

    def periods_per_year(self) -> int:
        """252 for daily data, 52 weekly, 12 monthly (from the median gap between dates)."""
        if len(self.dates) < 2:
            return 252
        gap = float(np.median(np.diff([d.toordinal() for d in self.dates])))
        return 12 if gap >= 25 else 52 if gap >= 6 else 252


#: An exact price row: date, symbol, close, cash dividend per share, split ratio.
PriceRow = tuple[dt.date, str, Decimal, Decimal, Decimal]


def read_price_rows(path: str | Path) -> list[PriceRow]:
    """Read ``date,symbol,close`` (optional ``dividend``, ``split``) rows as exact decimals, in
    file order. Raises FileError for an unreadable file, a missing column or no rows, and
    RowErrors naming every bad row."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileError(name, f"cannot read: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in ("date", "symbol", "close") if c not in header]
    if missing:
        raise FileError(name, f"no {', '.join(missing)} column (expected date,symbol,close[,dividend,split])", line=1)
    rows: list[PriceRow] = []
    errors: list[RowError] = []
    for row in reader:
        cells = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        line = reader.line_num
        try:
            try:
                day = dt.date.fromisoformat(cells["date"])
            except ValueError:
                raise ValueError(f"date {cells['date']!r} is not a date (YYYY-MM-DD)") from None
            close = _number(cells, "close", "")
            if close <= 0:
                raise ValueError(f"close {cells['close']!r} is not positive")
            dividend = _number(cells, "dividend", "0")
            split = _number(cells, "split", "1")
            if split <= 0:
                raise ValueError(f"split {cells['split']!r} is not positive")
            if not cells["symbol"]:
                raise ValueError("empty symbol")
            rows.append((day, cells["symbol"], close, dividend, split))
        except ValueError as exc:
            errors.append(RowError(name, line, str(exc)))
    if errors:
        raise RowErrors(name, errors)
    if not rows:
        raise FileError(name, "no price rows")
    return rows


def _number(cells: dict[str, str], column: str, default: str) -> Decimal:
    """A price file's number, exact; ValueError naming the column and text otherwise."""
    text = cells.get(column) or default
    try:
        return D(text)
    except NotANumber:
        raise ValueError(f"{column} {text!r} is not a number") from None


def load_prices(path: str | Path) -> Prices:
    """The panel of ``read_price_rows(path)`` (its errors raised as there)."""
    # Floats for the panel only: prices decide and value, never book.
    return _panel([(d, s, float(c), float(dv), float(sp)) for d, s, c, dv, sp in read_price_rows(path)], str(path))


def prices_from_trades(trades: pl.DataFrame) -> Prices:
    """A panel from the stored trades' prices: each symbol's last traded price of each day,
    carried forward over the weekdays in between, with the splits the stored trades record
    (``split_ratios``) on their dates."""
    priced = trades.filter(pl.col("price").is_not_null() & pl.col("action").is_in(["buy", "sell", "reinvest"]))
    if priced.height == 0:
        raise FileError("trades", "no priced trades to take prices from (pass --prices FILE)")
    last = priced.sort("trade_date", "ts", nulls_last=False).group_by("trade_date", "symbol").agg(pl.col("price").last())
    quotes = {(d, s): float(p) for d, s, p in last.iter_rows()}
    quoted = {s for _, s in quotes}
    ratios = {key: r for key, r in split_ratios(trades).items() if key[1] in quoted}
    rows = [(d, s, quotes.get((d, s), np.nan), 0.0, ratios.get((d, s), 1.0)) for d, s in quotes.keys() | ratios.keys()]
    first, final = min(d for d, _ in quotes), max(d for d, _ in quotes)
    days = [first + dt.timedelta(days=i) for i in range((final - first).days + 1)]
    weekdays = {d for d in days if d.weekday() < 5} | {r[0] for r in rows if first <= r[0] <= final}
    return _panel([r for r in rows if first <= r[0] <= final], "the stored trades", sorted(weekdays))


#: Signs of the actions that change how many shares an account holds.
_HELD = {"buy": 1, "reinvest": 1, "buy_to_cover": 1, "transfer_in": 1, "split_in": 1, "income": 1,
         "sell": -1, "sell_short": -1, "transfer_out": -1, "split_out": -1}


def split_ratios(trades: pl.DataFrame) -> dict[tuple[dt.date, str], float]:
    """Each split the stored trades record, as {(date, symbol): shares after ÷ before}. A split
    is stored as the shares it added (``split_in``) or took away (``split_out``) in an account;
    the ratio is the account's holding after over before, at the end of the day before (the
    account holding the most shares decides). Kept only when it is a ratio a split has, p:q
    with p and q up to 100 to within 0.5% (the rest is cash in lieu): a history that starts
    after the account's first shares gives no true "before", and a wrong ratio would revalue
    the whole holding."""
    from fractions import Fraction

    moves = (
        trades.filter(pl.col("action").is_in(list(_HELD)) & pl.col("quantity").is_not_null())
        .select(
            "account", "symbol", "trade_date",
            (pl.col("quantity").cast(pl.Float64) * pl.col("action").replace_strict(_HELD, return_dtype=pl.Float64)).alias("dq"),
            pl.col("action").is_in(["split_in", "split_out"]).alias("is_split"),
        )
    )
    daily = (
        moves.group_by("account", "symbol", "trade_date")
        .agg(pl.col("dq").sum(), pl.col("dq").filter(pl.col("is_split")).sum().alias("split_dq"), pl.col("is_split").any())
        .sort("account", "symbol", "trade_date")
        .with_columns((pl.col("dq").cum_sum().over("account", "symbol") - pl.col("dq")).alias("before"))
        .filter(pl.col("is_split") & (pl.col("before") > 0) & (pl.col("split_dq") != 0))
        .sort("before", descending=True)
        .unique(["symbol", "trade_date"], keep="first", maintain_order=True)
    )
    ratios: dict[tuple[dt.date, str], float] = {}
    for symbol, day, before, added in daily.select("symbol", "trade_date", "before", "split_dq").iter_rows():
        ratio = (before + added) / before
        clean = Fraction(ratio).limit_denominator(100)
        if ratio > 0 and clean != 1 and clean.numerator <= 100 and abs(float(clean) / ratio - 1) <= 0.005:
            ratios[(day, symbol)] = float(clean)
    return ratios


def _panel(rows: list[tuple[dt.date, str, float, float, float]], source: str, dates: list[dt.date] | None = None) -> Prices:
    dates = dates or sorted({r[0] for r in rows})
    symbols = sorted({r[1] for r in rows})
    di = {d: i for i, d in enumerate(dates)}
    si = {s: i for i, s in enumerate(symbols)}
    close = np.full((len(dates), len(symbols)), np.nan)
    dividend = np.zeros_like(close)
    split = np.ones_like(close)
    for day, symbol, c, dv, sp in rows:
        close[di[day], si[symbol]] = c
        dividend[di[day], si[symbol]] = dv
        split[di[day], si[symbol]] = sp
    # Carry each close forward over days without a quote; one carried across a split is in
    # shares of before it, so it is divided by the splits since (a split applies from the
    # start of its day: a quote that day is already in the new shares).
    for j in range(close.shape[1]):
        col = close[:, j]
        valid = ~np.isnan(col)
        idx = np.where(valid, np.arange(len(col)), 0)
        np.maximum.accumulate(idx, out=idx)
        since = np.cumprod(split[:, j])
        filled = col[idx] * since[idx] / since
        filled[: np.argmax(valid) if valid.any() else len(col)] = np.nan  # nothing before the first quote
        close[:, j] = filled
    return Prices(dates, symbols, close, dividend, split, source)
