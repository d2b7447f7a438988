"""Netting IBKR trade cancellations against the trades they cancel.

A cancellation is its own Flex row: ``buySell`` is ``BUY (Ca.)`` or ``SELL (Ca.)`` (the side of
the trade it cancels), or ``transactionType`` is ``TradeCancel``/``FracShareCancel``; its
quantity has the opposite sign to the original's, and ``origTradeID`` (sometimes
``origTransactionID``) names the original. IBKR may re-book a corrected trade under the same
tradeID, so an id can match two rows: the one with the reversed quantity just before the
cancellation is taken. Without ids the original is found by symbol, date, |quantity|, price and
side. taxlens has no "cancel" action, so both rows are dropped.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from taxlens.errors import RowError
from taxlens.ingest.ibkr_read import FlexRow, parse_date, parse_when
from taxlens.money import D, NotANumber

_CANCEL_TYPES = {"TRADECANCEL", "FRACSHARECANCEL"}


def is_cancel(row: FlexRow) -> bool:
    """Whether ``row`` cancels an earlier trade."""
    return "(CA.)" in row.get("buysell").upper() or row.get("transactiontype").upper() in _CANCEL_TYPES


def _decimal(text: str) -> Decimal | None:
    try:
        return D(text) if text else None
    except NotANumber:
        return None


def _day(row: FlexRow, key: str) -> dt.date | None:
    """The date part of a date or date-time field, or None."""
    text = row.get(key)
    parsed = parse_when(text) if text else None
    return parsed[0] if parsed else parse_date(text)


def _side(row: FlexRow) -> str:
    """BUY or SELL from Buy/Sell, ``(Ca.)`` removed."""
    return row.get("buysell").upper().replace("(CA.)", "").strip()


def _matches(original: FlexRow, cancel: FlexRow, quantity: Decimal) -> bool:
    """Whether ``original`` is a trade that ``cancel`` (of ``quantity``) reverses."""
    other = _decimal(original.get("quantity"))
    if other is None or abs(other) != abs(quantity):
        return False
    # "SELL (Ca.)" names the cancelled side; a bare TradeCancel row only has the reversed sign.
    if "(CA.)" in cancel.get("buysell").upper():
        wanted = _side(cancel)
    else:
        wanted = "SELL" if quantity > 0 else "BUY"
    return _side(original) == wanted


def _find(cancel: FlexRow, at: int, rows: list[FlexRow], pool: list[int]) -> int | str:
    """The index in ``rows`` of the trade that ``cancel`` (at index ``at``) cancels, or the
    message saying why there is none. ``pool`` holds the indexes still free to match."""
    label = cancel.label
    quantity = _decimal(cancel.get("quantity"))
    if quantity is None:
        return (f"{label('quantity', 'Quantity')} {cancel.get('quantity')!r} is not a number "
                "(expected the cancelled quantity with the opposite sign)")
    orig_txn, orig_id = cancel.get("origtransactionid"), cancel.get("origtradeid")
    if orig_txn or orig_id:
        named = [i for i in pool if orig_txn and rows[i].get("transactionid") == orig_txn]
        named = named or [i for i in pool if orig_id and rows[i].get("tradeid") == orig_id]
        key, value = ("origtradeid", orig_id) if orig_id else ("origtransactionid", orig_txn)
        if not named:
            return (f"{label(key, key)} {value!r} names a trade that is not in this file "
                    "(expected the cancelled trade in the same file: export a period that includes it)")
        candidates = [i for i in named if _matches(rows[i], cancel, quantity)]
        if not candidates:
            return (f"{label('quantity', 'Quantity')} {cancel.get('quantity')!r} does not reverse "
                    f"trade {value} (expected its quantity with the opposite sign; partial "
                    "cancellations are not supported)")
    else:
        symbol = cancel.get("symbol") or cancel.get("isin")
        day = _day(cancel, "origtradedate") or _day(cancel, "datetime") or _day(cancel, "tradedate")
        price = _decimal(cancel.get("origtradeprice")) or _decimal(cancel.get("tradeprice"))
        candidates = [
            i for i in pool
            if (rows[i].get("symbol") or rows[i].get("isin")) == symbol
            and (_day(rows[i], "datetime") or _day(rows[i], "tradedate")) == day
            and _decimal(rows[i].get("tradeprice")) == price
            and _matches(rows[i], cancel, quantity)
        ]
        if not candidates:
            return (f"{label('buysell', 'Buy/Sell')} {cancel.get('buysell')!r} cancels a trade that "
                    f"is not in this file (expected a trade of {abs(quantity)} "
                    f"{symbol or '(no symbol)'} on {day} at {cancel.get('tradeprice')} with the "
                    "opposite sign, or an OrigTradeID)")
    before = [i for i in candidates if i < at]
    return before[-1] if before else candidates[0]


def net_cancellations(rows: list[FlexRow], path: str) -> tuple[list[FlexRow], list[RowError], int]:
    """Drop every cancellation and the trade it cancels.

    Returns the remaining rows in order, one RowError per cancellation whose trade is not in
    ``rows``, and the number of rows dropped in pairs.
    """
    cancels = [i for i, row in enumerate(rows) if is_cancel(row)]
    if not cancels:
        return rows, [], 0
    dropped = set(cancels)
    errors: list[RowError] = []
    for at in cancels:
        pool = [i for i in range(len(rows)) if i not in dropped]
        found = _find(rows[at], at, rows, pool)
        if isinstance(found, str):
            errors.append(RowError(path, rows[at].line, found))
        else:
            dropped.add(found)
    kept = [row for i, row in enumerate(rows) if i not in dropped]
    return kept, errors, 2 * (len(cancels) - len(errors))
