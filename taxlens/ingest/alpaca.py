"""Alpaca account activities (``GET /v2/account/activities``) saved as JSON, or flattened to CSV.

Layouts (formats.md §1): a JSON array of activity objects, an object whose ``"activities"`` is
that array, or JSON Lines; or a CSV with the API's field names as header columns, any subset and
order (Alpaca offers no CSV itself: this is what bots write). Numbers are JSON strings.

Quirks:

* ``FILL`` is one execution: an order filled in pieces gives several ``partial_fill`` rows that
  share an ``order_id``. Each is its own trade; nothing is merged. Fills carry no fee.
* ``transaction_time`` is UTC (``Z``, microseconds), so the tax date is its date in the
  taxpayer's zone. Other activities have only a ``date``, which is already a tax date.
* Equity regulatory fees are a daily cash ``FEE``. Crypto fees are ``CFEE`` rows posted end of
  day in the coin received (negative ``qty``) or in USD (negative ``net_amount``), with no
  ``order_id``. Fills say ``BTC/USD`` and fees ``BTCUSD``: both become ``BTC`` in ``USD``.
* ``status: canceled`` means the activity never took effect. A fill's ``order_status`` of
  ``canceled`` does not: shares filled before the cancel are real.
* Options, mergers, spin-offs and activities Alpaca doesn't document are row errors, never
  silent skips: each may be a taxable event.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from decimal import Decimal, localcontext
from typing import Any, ClassVar

from pydantic import ValidationError

from taxlens.errors import FileError, RowError
from taxlens.ingest.base import Context, Extracted, Source, missing_columns
from taxlens.ingest.csvscan import read_rows
from taxlens.ingest.frame import from_trades
from taxlens.models import Action, AssetClass, Trade
from taxlens.money import PRECISION, D, NotANumber, fits, to_scale

_SIDES = {"buy": Action.BUY, "sell": Action.SELL, "sell_short": Action.SELL_SHORT}
_FEES = {"FEE", "PTC", "DIVFEE"}  # cash charges: fee = -net_amount
_BY_CASH_SIGN = {"JNLC", "ACATC"}  # cash moved between accounts: direction from net_amount
_BY_QTY_SIGN = {  # shares added or removed: direction from qty
    **dict.fromkeys(("JNLS", "ACATS"), (Action.TRANSFER_IN, Action.TRANSFER_OUT)),
    **dict.fromkeys(("SPLIT", "NC"), (Action.SPLIT_IN, Action.SPLIT_OUT)),
}
_NOTES = {
    "DIVROC": "return of capital", "DIVCGL": "capital gain distribution, long term",
    "DIVCGS": "capital gain distribution, short term", "DIVTXEX": "tax-exempt dividend",
    "NC": "name change", "PTC": "pass-through charge", "DIVFEE": "dividend fee",
}
#: Activities with a tax effect this adapter can't book: row errors, so nothing vanishes.
UNSUPPORTED: dict[str, str] = {
    **dict.fromkeys(("OPTRD", "OPASN", "OPEXC", "OPEXP", "OPCSH", "OPCA"),
                    "options are not supported by taxlens yet"),
    **dict.fromkeys(("MA", "REORG", "SPIN"), "a merger, reorganisation or spin-off can be a "
                    "tax-free exchange, a sale for cash or both; enter it by hand"),
    **dict.fromkeys(("EXTRD", "FXTRD"), "external and currency trades are not supported yet"),
    **dict.fromkeys(("INTPNL", "OCT", "VOF"), "Alpaca does not document what it moves"),
}
# Quote currencies, longest first: BTCUSDT is BTC in USDT, not BTCUSD plus a T.
_QUOTES = ("USDT", "USDC", "USD", "BTC")
# Coins Alpaca lists: a slashless symbol is a pair only if its base is one (it could be a stock).
_COINS = frozenset({
    "AAVE", "AVAX", "BAT", "BCH", "BTC", "CRV", "DOGE", "DOT", "ETH", "GRT", "LINK", "LTC", "MKR",
    "PEPE", "SHIB", "SKY", "SOL", "SUSHI", "TRUMP", "UNI", "USDC", "USDT", "XRP", "XTZ", "YFI",
})
_WS = re.compile(r"[ \t\n\r]*")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME_HINT = "an ISO 8601 UTC time such as 2025-03-04T14:35:12.104381Z"
_QTY_HINT = "such as 10 or 0.38962051"
_PRICE_HINT = "such as 128.33"


class Alpaca:
    """Alpaca Trading/Broker API account activities."""

    NAME: ClassVar[str] = "alpaca"
    TITLE: ClassVar[str] = "Alpaca account activities (API JSON, JSON Lines or CSV)"
    IDENTIFIED_BY: ClassVar[str] = (
        'JSON whose objects have "activity_type", or a CSV header with id and activity_type'
    )
    EXAMPLE: ClassVar[str] = (
        '[{"id":"20250304143512104::8f0e2c1a-...","activity_type":"FILL",'
        '"transaction_time":"2025-03-04T14:35:12.104381Z","type":"fill","price":"235.12",'
        '"qty":"10","side":"buy","symbol":"AAPL","order_id":"1c9e6f0a-..."}]'
    )
    ACTIONS: ClassVar[dict[str, str]] = {
        "FILL buy": "buy", "FILL sell": "sell", "FILL sell_short": "sell_short",
        "FEE": "sale_fee",
        **dict.fromkeys(("CFEE", "PTC", "DIVFEE"), "fee"),
        **dict.fromkeys(("DIV", "DIVCGL", "DIVCGS", "DIVTXEX", "DIVROC"), "dividend"),
        **dict.fromkeys(("DIVNRA", "DIVWH", "DIVFT", "DIVTW", "INTNRA", "INTTW", "WH"),
                        "withholding"),
        "INT": "interest", "CSD": "deposit", "CSW": "withdrawal", "CIL": "cash_in_lieu",
        "JNLC net_amount>0": "deposit", "JNLC net_amount<0": "withdrawal",
        "ACATC net_amount>0": "deposit", "ACATC net_amount<0": "withdrawal",
        "JNLS qty>0": "transfer_in", "JNLS qty<0": "transfer_out",
        "ACATS qty>0": "transfer_in", "ACATS qty<0": "transfer_out",
        "SPLIT qty>0": "split_in", "SPLIT qty<0": "split_out",
        "NC qty>0": "split_in", "NC qty<0": "split_out",
    }
    IGNORED: ClassVar[dict[str, str]] = {
        "MEM": "a memo: no cash or shares move",
        "SWP": "a sweep of cash to or from the bank sweep program: the cash stays the user's",
        "status canceled": "the activity was canceled and never took effect",
    }

    def identify(self, source: Source) -> bool:
        """True for JSON naming ``"activity_type"``, or a CSV header with id and activity_type."""
        head = source.head.lstrip()
        if head[:1] in ("[", "{"):
            return '"activity_type"' in head
        lines = source.head_lines(1)
        header = {h.strip().lower() for h in next(csv.reader(lines[:1]), [])}
        return {"id", "activity_type"} <= header

    def extract(self, source: Source, context: Context) -> Extracted:
        """Every activity as a trade, an ignored count or RowErrors (sorted by line).

        Raises FileError for invalid JSON, JSON without activities, or CSV without activity_type.
        """
        is_json = source.head.lstrip()[:1] in ("[", "{")
        records = _json_records(source) if is_json else _csv_records(source)
        trades: list[Trade] = []
        errors: list[RowError] = []
        ignored: Counter[str] = Counter()
        rows_read = 0
        # 38 significant digits must survive abs() and fits()' quantize (default precision: 28).
        with localcontext(prec=2 * PRECISION):
            for line, fields, problem in records:
                rows_read += 1
                if fields is None:
                    errors.append(RowError(source.name, line, problem or ""))
                    continue
                row = _Row(fields, line, source.name)
                trade = _activity(row, context, ignored)
                errors.extend(row.errors)
                if trade is not None and not row.errors:
                    trades.append(trade)
            frame = from_trades(trades)
        errors.sort(key=lambda e: e.line)
        return Extracted(trades=frame, errors=errors, rows_read=rows_read, ignored=ignored)


_HANDLED = list(dict.fromkeys(key.split()[0] for key in Alpaca.ACTIONS))
_EXPECTED = "expected one of " + ", ".join(_HANDLED + [k for k in Alpaca.IGNORED if " " not in k])


class _Row:
    """One activity's fields, read as text; each bad value adds a RowError to ``errors``."""

    def __init__(self, fields: Mapping[str, Any], line: int, path: str) -> None:
        self.fields, self.line, self.path = fields, line, path
        self.errors: list[RowError] = []

    def text(self, key: str) -> str | None:
        """The field stripped, or None when it is absent, null or blank."""
        value = self.fields.get(key)
        return ("" if value is None else str(value).strip()) or None

    def bad(self, key: str, problem: str) -> None:
        shown = self.text(key) or ""
        self.errors.append(RowError(self.path, self.line, f"{key} {shown!r} {problem}"))

    def require(self, key: str, hint: str) -> str | None:
        """The field's text; None (and an error) when it is missing."""
        if (value := self.text(key)) is None:
            self.bad(key, f"is missing (expected {hint})")
        return value

    def number(self, key: str, hint: str, *, required: bool = False, exact: bool = True,
               ) -> Decimal | None:
        """The field as a Decimal; None when absent or bad (bad adds an error).

        ``exact`` values must fit DECIMAL(38,18) unrounded; others (prices) are rounded to it.
        """
        text = self.require(key, f"a number {hint}") if required else self.text(key)
        if text is None:
            return None
        try:
            value = D(text)
        except NotANumber:
            self.bad(key, f"is not a number (expected a number {hint})")
            return None
        if value.is_finite() and not exact:
            value = to_scale(value)
        if why := fits(value):
            self.bad(key, f"{why} (expected a number {hint})")
            return None
        return value

    def date(self) -> dt.date | None:
        """``date`` (YYYY-MM-DD) of a non-trade activity: already a tax date."""
        hint = "a date YYYY-MM-DD such as 2025-03-14"
        if (text := self.require("date", hint)) is None:
            return None
        try:
            if _ISO_DATE.fullmatch(text):
                return dt.date.fromisoformat(text)
        except ValueError:
            pass
        self.bad("date", f"is not a date (expected {hint})")
        return None

    def instant(self) -> dt.datetime | None:
        """``transaction_time`` in UTC; it must carry its offset (Alpaca's ``Z``)."""
        if (text := self.require("transaction_time", _TIME_HINT)) is None:
            return None
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            self.bad("transaction_time", f"is not a time (expected {_TIME_HINT})")
            return None
        if value.utcoffset() is None:
            self.bad("transaction_time", f"has no UTC offset (expected {_TIME_HINT})")
            return None
        return value.astimezone(dt.UTC)


def _pair(symbol: str, *, any_base: bool = False) -> tuple[str, str] | None:
    """(coin, quote currency) when ``symbol`` is a crypto pair, else None.

    ``BTC/USD`` is always a pair; ``BTCUSD`` only if BTC is a known coin (a slashless symbol
    could be a stock), unless ``any_base`` (CFEE rows are crypto by definition).
    """
    if "/" in symbol:
        base, _, quote = symbol.partition("/")
        return (base, quote) if base and quote else None
    for quote in _QUOTES:
        base = symbol.removesuffix(quote)
        if base != symbol and base and (any_base or base in _COINS):
            return base, quote
    return None


def _instrument(symbol: str | None) -> tuple[str, AssetClass, str]:
    """(symbol, asset class, currency) for an activity's symbol; no symbol means USD cash."""
    if symbol is None:
        return "USD", AssetClass.CASH, "USD"
    if pair := _pair(symbol):
        return pair[0], AssetClass.CRYPTO, pair[1]
    return symbol, AssetClass.EQUITY, "USD"


def _activity(row: _Row, context: Context, ignored: Counter[str]) -> Trade | None:
    """The trade for one activity, or None (counted in ``ignored``, or errors on ``row``)."""
    if (row.text("status") or "").lower() in ("canceled", "cancelled"):
        ignored["canceled"] += 1
        return None
    kind = (row.text("activity_type") or "").upper()
    if kind in Alpaca.IGNORED:
        ignored[kind] += 1
    elif kind in UNSUPPORTED:
        row.bad("activity_type", f"is not supported: {UNSUPPORTED[kind]} "
                "(expected a trade, fee, income, cash or share-transfer activity)")
    elif kind not in _HANDLED:
        problem = "is not handled by the alpaca adapter" if kind else "is missing"
        row.bad("activity_type", f"{problem} ({_EXPECTED})")
    else:
        account = context.account or row.text("account_id") or "Alpaca"
        try:
            if kind == "FILL":
                return _fill(row, account, context)
            return _non_trade(row, kind, account)
        except ValidationError as exc:  # a value the checks above let through: still a row error
            why = exc.errors()[0]["msg"]
            row.errors.append(RowError(row.path, row.line, f"activity is not a valid trade: {why}"))
    return None


def _fill(row: _Row, account: str, context: Context) -> Trade | None:
    """A FILL: one execution, quantity positive, direction from ``side``, no fee."""
    when = row.instant()
    symbol = row.require("symbol", "a ticker or pair such as AAPL or BTC/USD")
    side = row.require("side", "buy, sell or sell_short")
    qty = row.number("qty", _QTY_HINT, required=True)
    price = row.number("price", _PRICE_HINT, required=True, exact=False)
    action = _SIDES.get(side.lower()) if side else None
    if side and action is None:
        row.bad("side", "is not a known side (expected buy, sell or sell_short)")
    if qty is not None and qty <= 0:
        row.bad("qty", "is not positive (expected a positive number; side gives the direction)")
    if price is not None and price < 0:
        row.bad("price", "is negative (expected 0 or more)")
    if row.errors or when is None or symbol is None or action is None or qty is None:
        return None
    name, asset_class, currency = _instrument(symbol.upper())
    return Trade(
        line=row.line, account=account, symbol=name, asset_class=asset_class, action=action,
        timestamp=when, trade_date=when.astimezone(context.timezone).date(), quantity=qty,
        price=price, currency=currency, broker_trade_id=row.text("id"),
        order_id=row.text("order_id"),
    )


def _non_trade(row: _Row, kind: str, account: str) -> Trade | None:
    """A non-trade activity: cash (amount = signed net_amount), a fee, or shares in or out."""
    day = row.date()
    symbol = (row.text("symbol") or "").upper() or None
    cash_required = kind not in _BY_QTY_SIGN and kind != "CFEE"
    net = row.number("net_amount", "such as -0.03 or 1.02", required=cash_required)
    qty = row.number("qty", _QTY_HINT, required=kind in _BY_QTY_SIGN)
    price = row.number("price", _PRICE_HINT, exact=False)
    name, asset_class, currency = _instrument(symbol)
    quantity, fee, fee_currency = abs(qty) if qty is not None else Decimal(0), Decimal(0), None
    action: Action | None = None
    if kind == "CFEE":
        pair = _pair(symbol, any_base=True) if symbol else None
        name, currency = pair or (symbol or "USD", "USD")
        asset_class = AssetClass.CRYPTO if symbol else AssetClass.CASH
        if qty:  # charged in the coin received: a small disposal of that coin
            if qty > 0:
                row.bad("qty", "is positive (expected a negative coin quantity: the fee charged)")
            row.require("symbol", "the coin pair such as ETHUSD")
            action, quantity, fee, fee_currency = Action.FEE, Decimal(0), -qty, name
        elif net is not None and net < 0:  # "Coin Pair Transaction Fee (USD)"
            action, fee, fee_currency = Action.FEE, -net, "USD"
        elif not row.errors:
            row.bad("qty", "is missing (expected a negative coin quantity, "
                    "or a negative net_amount for a fee in USD)")
    elif kind in _FEES:
        if net is not None and net > 0:
            row.bad("net_amount", "is positive (expected a negative amount: a fee is cash out)")
        elif net is not None:
            # FEE is the day's regulatory fees on sales (SEC, FINRA TAF): a selling expense.
            action = Action.SALE_FEE if kind == "FEE" else Action.FEE
            fee, fee_currency = -net, "USD"
    elif kind in _BY_CASH_SIGN:
        if net == 0:
            row.bad("net_amount", "is zero (expected a positive amount for cash in, negative out)")
        elif net is not None:
            action = Action.DEPOSIT if net > 0 else Action.WITHDRAWAL
    elif kind in _BY_QTY_SIGN:
        row.require("symbol", "the ticker whose shares moved")
        if qty == 0:
            row.bad("qty", "is zero (expected a positive number for shares in, negative for out)")
        elif qty is not None:
            action = _BY_QTY_SIGN[kind][0 if qty > 0 else 1]
    else:
        action = Action(Alpaca.ACTIONS[kind])
    if row.errors or day is None or action is None:
        return None
    return Trade(
        line=row.line, account=account, symbol=name, asset_class=asset_class, action=action,
        trade_date=day, quantity=quantity, price=price, fee=fee, fee_currency=fee_currency,
        currency=currency, amount=net, broker_trade_id=row.text("id"), note=_NOTES.get(kind),
    )


# -- reading the layouts ----------------------------------------------------------------------

Record = tuple[int, Mapping[str, Any] | None, str | None]  # line, fields, or why it's unreadable


def _skip(text: str, pos: int) -> int:
    """The offset of the first non-whitespace character at or after ``pos``."""
    return _WS.match(text, pos).end()  # type: ignore[union-attr]  # the pattern matches ""


def _json_records(source: Source) -> list[Record]:
    """Each activity of a JSON source with the line its value starts on.

    Raises FileError when the text is not JSON or holds no activities.
    """
    text = source.text
    decoder = json.JSONDecoder(parse_float=Decimal)  # a saver that wrote bare numbers stays exact
    values: list[tuple[int, Any]] = []  # top-level values: one, or one a line for JSON Lines
    pos = _skip(text, 0)
    while pos < len(text):
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise FileError(source.name, f"is not valid JSON: {exc.msg}", exc.lineno) from None
        values.append((pos, value))
        pos = _skip(text, end)
    first = values[0][1]
    if len(values) == 1 and isinstance(first, dict) and isinstance(first.get("activities"), list):
        members = _children(text, values[0][0], decoder)
        start = [offset for key, offset, _ in members if key == "activities"][-1]
        values = [(o, v) for _, o, v in _children(text, start, decoder)]
    elif len(values) == 1 and isinstance(first, list):
        values = [(o, v) for _, o, v in _children(text, values[0][0], decoder)]
    elif len(values) == 1 and not (isinstance(first, dict) and "activity_type" in first):
        raise FileError(source.name, "has no activities (expected an array of activity objects, "
                        'an object with an "activities" array, or one activity object a line)', 1)
    records: list[Record] = []
    line, counted = 1, 0
    for offset, value in values:
        line, counted = line + text.count("\n", counted, offset), offset
        if isinstance(value, dict):
            records.append((line, value, None))
        else:
            shown = json.dumps(value, default=str)[:40]
            problem = (f"activity {shown!r} is not an object "
                       '(expected an activity object such as {"activity_type": "FILL", ...})')
            records.append((line, None, problem))
    return records


def _children(text: str, start: int, decoder: json.JSONDecoder,
              ) -> list[tuple[str | None, int, Any]]:
    """(key or None, offset, value) of each member of the validated array or object at ``start``."""
    out: list[tuple[str | None, int, Any]] = []
    close = "]" if text[start] == "[" else "}"
    pos = _skip(text, start + 1)
    while text[pos] != close:
        key = None
        if close == "}":
            key, pos = decoder.raw_decode(text, pos)  # a key is a JSON string
            pos = _skip(text, _skip(text, pos) + 1)  # past the colon
        value, end = decoder.raw_decode(text, pos)
        out.append((key, pos, value))
        pos = _skip(text, end)
        if text[pos] == ",":
            pos = _skip(text, pos + 1)
    return out


def _csv_records(source: Source) -> Iterator[Record]:
    """Each data row of a CSV source as {lower-case header: value}, with its physical line.

    Raises FileError (when iterated) for no header, a duplicate column or no activity_type.
    """
    rows = read_rows(source.text)
    first = next(rows, None)
    if first is None:
        raise FileError(source.name, "has no header line")
    header_line, header = first[0], [h.strip().lower() for h in first[1]]
    dupes = sorted({h for h in header if header.count(h) > 1 and h})
    if dupes:
        raise FileError(source.name, f"duplicate column {dupes[0]!r} in the header", header_line)
    missing_columns(source, header_line, header, ["activity_type"])
    for line, row in rows:
        if len(row) != len(header):
            problem = f"row has {len(row)} fields (expected {len(header)}, as in the header)"
            yield line, None, problem
        else:
            yield line, dict(zip(header, row, strict=True)), None
