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
    carried forward over the weekdays in between."""
    priced = trades.filter(pl.col("price").is_not_null() & pl.col("action").is_in(["buy", "sell", "reinvest"]))
    if priced.height == 0:
        raise FileError("trades", "no priced trades to take prices from (pass --prices FILE)")
    last = priced.sort("trade_date", "ts", nulls_last=False).group_by("trade_date", "symbol").agg(pl.col("price").last())
    rows = [(d, s, float(p), 0.0, 1.0) for d, s, p in last.iter_rows()]
    first, final = min(r[0] for r in rows), max(r[0] for r in rows)
    days = [first + dt.timedelta(days=i) for i in range((final - first).days + 1)]
    weekdays = {d for d in days if d.weekday() < 5} | {r[0] for r in rows}
    return _panel(rows, "the stored trades", sorted(weekdays))


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
    # Carry each close forward over days without a quote.
    for j in range(close.shape[1]):
        col = close[:, j]
        valid = ~np.isnan(col)
        idx = np.where(valid, np.arange(len(col)), 0)
        np.maximum.accumulate(idx, out=idx)
        filled = col[idx]
        filled[: np.argmax(valid) if valid.any() else len(col)] = np.nan  # nothing before the first quote
        close[:, j] = filled
    return Prices(dates, symbols, close, dividend, split, source)
