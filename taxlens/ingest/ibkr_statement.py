"""Interactive Brokers Activity Statement CSV (Reports → Statements → Activity → CSV).

Layout (``shared/reference/formats.md`` §2c): one file of many sections, every line
``<Section>,<Header|Data|SubTotal|Total|Notes>,<fields…>``. A ``Header`` line names the
columns of the ``Data`` lines after it, until the section's next ``Header``; a section can have
several (the Trades columns change with the asset category: forex rows have ``Comm in USD``),
and an ``Account`` column appears only in multi-account statements. Cells are looked up by
column name, never by position. Sections read here:

- ``Trades``: ``DataDiscriminator`` is ``Order`` (one row per order), ``Trade`` (one per
  execution, when the statement was run with executions) or ``ClosedLot`` (the broker's lot
  matching, after the closing trade: open date, quantity, basis, ``Realized P/L``). Trades are
  imported from executions when there are any, else from orders, never both. ClosedLot rows
  are not trades: ``closed_lots()`` reads them for ``taxlens reconcile``.
- ``Dividends``, ``Payment In Lieu Of Dividends``, ``Withholding Tax``, ``Interest``, ``Fees``,
  ``Commission Adjustments``, ``Deposits & Withdrawals``: cash rows (Currency, Date, Description,
  Amount); the security of a dividend is the ``SYMBOL(ISIN)`` its description starts with.
- ``Corporate Actions``: splits become ``split_in``/``split_out``; other actions (mergers,
  spin-offs, tenders…) are row errors, because the statement does not say how the basis divides.
- ``Transfers``: positions moved in or out (``Direction``), as ``transfer_in``/``transfer_out``.
- ``Account Information`` (the account id, when rows have no ``Account`` column) and
  ``Financial Instrument Information`` (``Type`` ETF marks a Stocks symbol as an ETF).
  Every other section (NAV, Open Positions, Codes, Notes…) is counted under its name.

Quirks handled here:

- ``SubTotal``/``Total``/``Notes`` lines are skipped, and so are ``Data`` lines that are totals
  (``Dividends,Data,Total,,,12.34``, ``Total in USD``…: their first cell starts with Total).
- Quantity is signed (negative on sells); Comm/Fee is negative when charged, in the trade
  currency, or in the currency a ``Comm in XXX`` column names. A sell with Code ``O`` opens a
  short, a buy with Code ``C`` covers one. ``-`` and ``--`` mean "no value".
- ``Date/Time`` is ``"2025-01-03, 09:31:42"`` with no zone: IBKR statement time, US/Eastern
  (as in ``ibkr.py``), stored as UTC; the tax date is that instant's date in the taxpayer's zone.
- A reverse split is a pair of rows (the new line +qty, the ``.OLD`` line −qty) under one
  description: rows of one symbol and time are netted into one split row.
- Asset categories: Stocks (an ETF when Financial Instrument Information says so), Crypto,
  Bonds, Treasury Bills, Mutual Funds, Warrants. Forex rows are currency conversions, ignored;
  options, futures and CFDs are row errors, so their taxable events don't vanish silently.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

import polars as pl
from pydantic import ValidationError

from taxlens.errors import FileError, RowError, RowErrors
from taxlens.ingest.base import Context, Extracted, Source, missing_columns
from taxlens.ingest.csvscan import read_rows
from taxlens.ingest.frame import from_trades
from taxlens.ingest.ibkr import EASTERN
from taxlens.ingest.ibkr_read import DATE_HINT, parse_when
from taxlens.ingest.rows import Problem, Row, problem
from taxlens.lots.holding import term
from taxlens.models import Action, AssetClass, Trade
from taxlens.money import plain

_KINDS = ("Header", "Data", "SubTotal", "Total", "Notes")
_NO_VALUE = ("-", "--")
_CURRENCY = re.compile(r"[A-Z][A-Z0-9]{1,9}")
_COMM_IN = re.compile(r"Comm(?:ission)?\s+in\s+([A-Z][A-Z0-9]{1,9})", re.IGNORECASE)
#: ``AAPL(US0378331005) Cash Dividend …`` → AAPL (older statements put a space before the ISIN).
_LEADING_SYMBOL = re.compile(r"^\s*([^(]+?)\s*\(([A-Z]{2}[A-Z0-9]{9}\d)\)")
_SPLIT = re.compile(r"\bsplit\b", re.IGNORECASE)
_TITLE = re.compile(r'^"?Statement"?,"?Data"?,"?Title"?,"?[^,\n]*Activity', re.MULTILINE | re.IGNORECASE)
_TRADES_HEADER = re.compile(r'^"?Trades"?,"?Header"?,"?DataDiscriminator"?,', re.MULTILINE)
_FIRST_HEADER = re.compile(r'^\s*"?[A-Za-z][^,\n]*?"?,"?Header"?,')

_ASSETS = {
    "stocks": AssetClass.EQUITY,
    "crypto": AssetClass.CRYPTO,
    "cryptocurrency": AssetClass.CRYPTO,
    "bonds": AssetClass.BOND,
    "treasury bills": AssetClass.BOND,
    "mutual funds": AssetClass.FUND,
    "funds": AssetClass.FUND,
    "warrants": AssetClass.OTHER,
}
_FOREX = ("forex", "cash")
_ASSET_HINT = "Stocks, Crypto, Bonds, Treasury Bills, Mutual Funds, Warrants or Forex"
_CODES = {"A": "assignment", "Ex": "exercise", "Ep": "expired", "Ca": "cancelled", "L": "liquidation"}

#: Cash sections: the taxlens action of a row (Deposits & Withdrawals go by the sign of Amount).
_CASH = {
    "Dividends": Action.DIVIDEND,
    "Payment In Lieu Of Dividends": Action.DIVIDEND,
    "Withholding Tax": Action.WITHHOLDING,
    "Interest": Action.INTEREST,
    "Fees": Action.FEE,
    "Commission Adjustments": Action.FEE,
    "Deposits & Withdrawals": Action.DEPOSIT,
}
#: Columns each read section must have (a Header without them is a FileError).
_REQUIRED = {
    "Trades": ["DataDiscriminator", "Asset Category", "Currency", "Symbol", "Date/Time", "Quantity", "T. Price"],
    "Corporate Actions": ["Asset Category", "Currency", "Date/Time", "Description", "Quantity"],
    "Transfers": ["Asset Category", "Currency", "Symbol", "Date", "Direction", "Qty"],
    **{s: ["Currency", "Description", "Amount"] for s in _CASH},
}
_QTY_HINT = "a signed quantity such as 10 or -0.5"
_MONEY_HINT = "an amount such as -1.25"
_PRICE_HINT = "a price such as 187.40"
_NOT_A_STATEMENT = (
    "is not an IBKR Activity Statement (expected a first line such as 'Statement,Header,Field Name,"
    "Field Value' and a 'Trades,Header,DataDiscriminator,…' or 'Statement,Data,Title,Activity Statement' line)"
)
_CLOSED_LOT_REASON = "the broker's lot matching, read by `taxlens reconcile`"


@dataclass
class _Statement:
    """The statement's Data rows by section, as Rows keyed by that section's current Header."""

    rows: list[tuple[str, Row]] = field(default_factory=list)  # (section, row), file order
    other: Counter[str] = field(default_factory=Counter)  # unread sections: Data rows
    errors: list[RowError] = field(default_factory=list)
    rows_read: int = 0
    account: str | None = None  # from Account Information
    etfs: set[str] = field(default_factory=set)  # Stocks symbols whose Type is ETF

    def section(self, name: str) -> Iterator[Row]:
        return (row for s, row in self.rows if s == name)


def _read(source: Source) -> _Statement:
    """Every Data row of ``source``; a short row or one before its Header is a RowError.

    Raises FileError when a read section's Header lacks a needed column, and when the text is
    not readable as CSV.
    """
    out = _Statement()
    headers: dict[str, list[str]] = {}
    info = ("Account Information", "Financial Instrument Information")
    line = 0
    try:
        for line, fields in read_rows(source.text):
            cells = [f.strip() for f in fields]
            if len(cells) < 2 or cells[1] not in _KINDS:
                out.errors.append(RowError(source.name, line, (
                    f"line type {(cells[1] if len(cells) > 1 else '')!r} is not known "
                    "(expected <Section>,Header|Data|SubTotal|Total|Notes,… as in an Activity Statement)"
                )))
                continue
            section, kind, values = cells[0], cells[1], cells[2:]
            if kind == "Header":
                while values and not values[-1]:
                    values.pop()
                if section in _REQUIRED:
                    missing_columns(source, line, values, _REQUIRED[section])
                headers[section] = values
                continue
            if kind != "Data" or (values and values[0].lower().startswith("total")):
                continue  # SubTotal, Total, Notes and total Data rows
            out.rows_read += 1
            if section not in _REQUIRED and section not in info:
                out.other[section] += 1
                continue
            header = headers.get(section)
            if header is None:
                out.errors.append(RowError(source.name, line, (
                    f"{section} Data row comes before its Header row (expected the Header first)"
                )))
                continue
            if len(values) < len(header) or any(values[len(header):]):  # trailing commas are fine
                out.errors.append(RowError(source.name, line, (
                    f"row has {len(values)} fields after '{section},Data' "
                    f"(expected {len(header)}, as in the Header)"
                )))
                continue
            row = Row(line, {h: ("" if v in _NO_VALUE else v) for h, v in zip(header, values, strict=False) if h})
            if section == "Account Information":
                if row.get("Field Name") == "Account" and row.get("Field Value"):
                    out.account = row.get("Field Value")
                out.other[section] += 1
            elif section == "Financial Instrument Information":
                if row.get("Asset Category").lower() == "stocks" and row.get("Type").upper() == "ETF":
                    out.etfs.add(row.get("Symbol").upper())
                out.other[section] += 1
            else:
                out.rows.append((section, row))
    except csv.Error as exc:  # an unbalanced quote made a field too long
        raise FileError(source.name, f"is not readable as CSV after this line ({exc})", line) from exc
    return out


class IbkrStatement:
    """IBKR Activity Statement CSV: trades, cash, splits and transfers."""

    NAME: ClassVar[str] = "ibkr-statement"
    TITLE: ClassVar[str] = "Interactive Brokers Activity Statement (CSV)"
    IDENTIFIED_BY: ClassVar[str] = (
        "lines of the form Section,Header|Data,…, the first a Header, with a "
        "'Trades,Header,DataDiscriminator' line or a 'Statement,Data,Title,Activity …' line"
    )
    EXAMPLE: ClassVar[str] = (
        "Trades,Header,DataDiscriminator,Asset Category,Currency,Symbol,Date/Time,Quantity,T. Price,"
        "C. Price,Proceeds,Comm/Fee,Basis,Realized P/L,MTM P/L,Code\n"
        'Trades,Data,Order,Stocks,USD,VTI,"2025-01-03, 09:31:42",10,250.1,250.5,-2501,-1,2502,0,4,O'
    )
    ACTIONS: ClassVar[dict[str, str]] = {
        "Trades Order/Trade, Quantity > 0": Action.BUY.value,
        "Trades Order/Trade, Quantity < 0": Action.SELL.value,
        "Trades, Quantity < 0 with Code O": Action.SELL_SHORT.value,
        "Trades, Quantity > 0 with Code C": Action.BUY_TO_COVER.value,
        **{s: a.value for s, a in _CASH.items() if s != "Deposits & Withdrawals"},
        "Deposits & Withdrawals": "deposit or withdrawal (sign of Amount)",
        "Corporate Actions: Split": "split_in or split_out (sign of the netted Quantity)",
        "Transfers": "transfer_in or transfer_out (Direction); a cash transfer is a deposit or withdrawal",
    }
    IGNORED: ClassVar[dict[str, str]] = {
        "ClosedLot": _CLOSED_LOT_REASON,
        "Order": "order summary: the Trade (execution) rows are imported",
        "Forex": "forex conversion: not a security lot (FX gains are not tracked yet)",
        "split (nets to zero)": "split rows whose quantities cancel out: no shares changed",
        "(any other section)": "not trades or cash (NAV, Open Positions, Codes…): counted under its name",
    }

    def identify(self, source: Source) -> bool:
        """True when the first line is a ``<Section>,Header,…`` line and the head has a Trades
        header with DataDiscriminator or an Activity title (never the Transaction History report,
        nor a Flex CSV)."""
        head = source.head
        return _sectioned(head) and bool(_TRADES_HEADER.search(head) or _TITLE.search(head))

    def extract(self, source: Source, context: Context) -> Extracted:
        """Trades, cash, splits and transfers of ``source``; the rest counted in ``ignored``.

        Raises FileError when a section's Header lacks a needed column or the text is not CSV.
        """
        if not _sectioned(source.head):  # with --format, a statement cut down to a few sections is fine
            raise FileError(source.name, _NOT_A_STATEMENT)
        statement = _read(source)
        errors = list(statement.errors)
        ignored: Counter[str] = Counter(statement.other)
        account = context.account or statement.account or "IBKR"
        trades: list[Trade] = []
        trade_rows = list(statement.section("Trades"))
        executions = any(r.get("DataDiscriminator") == "Trade" for r in trade_rows)
        splits: dict[tuple[str, str, str], list[Trade]] = {}
        for section, row in statement.rows:
            who = context.account or row.get("Account") or account
            try:
                if section == "Trades":
                    kind = row.get("DataDiscriminator")
                    if kind == "ClosedLot" or (kind == "Order" and executions):
                        ignored[kind] += 1
                        continue
                    if kind not in ("Order", "Trade"):
                        raise problem("DataDiscriminator", kind, "is not known (expected Order, Trade or ClosedLot)")
                    result = _trade(row, who, statement.etfs, context)
                elif section in _CASH:
                    result = _cash(section, row, who, statement.etfs)
                elif section == "Corporate Actions":
                    split = _split(row, who, context)
                    if isinstance(split, Trade):
                        splits.setdefault((who, split.symbol, row.get("Date/Time")), []).append(split)
                        continue
                    result = split
                else:
                    result = _transfer(row, who)
            except Problem as exc:
                errors.append(RowError(source.name, row.line, str(exc)))
                continue
            except ValidationError as exc:  # a sum too large to store exactly
                errors.append(RowError(source.name, row.line, _invalid(exc)))
                continue
            if isinstance(result, str):
                ignored[result] += 1
            else:
                trades.append(result)
        for group in splits.values():
            try:
                net = _net_split(group)
            except ValidationError as exc:
                errors.append(RowError(source.name, group[0].line, _invalid(exc)))
                continue
            if net is None:
                ignored["split (nets to zero)"] += len(group)
            else:
                trades.append(net)
        trades.sort(key=lambda t: t.line)
        errors.sort(key=lambda e: e.line)
        return Extracted(trades=from_trades(trades), errors=errors, rows_read=statement.rows_read, ignored=ignored)


def _invalid(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(x) for x in first["loc"])
    return f"{where} {first['msg'].removeprefix('Value error, ')} (expected a value taxlens can store exactly)"


def _sectioned(head: str) -> bool:
    """Whether the file starts with a ``<Section>,Header,…`` line and is not the Transaction
    History report (which shares the layout, formats.md §2d)."""
    return bool(_FIRST_HEADER.match(head)) and not re.search(r'^"?Transaction History"?,', head, re.MULTILINE)


# -- cells -------------------------------------------------------------------------------------


def _currency(row: Row, column: str = "Currency") -> str:
    text = row.get(column).upper() or "USD"
    if not _CURRENCY.fullmatch(text):
        raise problem(column, row.get(column), "is not a currency code (expected e.g. USD, EUR or CHF)")
    return text


def _when(row: Row, column: str, context: Context) -> tuple[dt.datetime | None, dt.date]:
    """(UTC instant or None, tax date) of a ``2025-01-03, 09:31:42`` or ``2025-01-03`` cell."""
    text = row.get(column)
    parsed = parse_when(text) if text else None
    if parsed is None:
        what = "is missing" if not text else "is not a date"
        raise problem(column, text, f"{what} (expected {DATE_HINT})")
    day, clock = parsed
    if clock is None:
        return None, day
    eastern = dt.datetime.combine(day, clock, tzinfo=EASTERN)
    try:
        return eastern.astimezone(dt.UTC), eastern.astimezone(context.timezone).date()
    except OverflowError as exc:  # year 1 or 9999: no such instant in UTC
        raise problem(column, text, f"is out of range (expected {DATE_HINT})") from exc


def _asset(row: Row, symbol: str, etfs: set[str]) -> AssetClass | None:
    """The asset class of a row, or None for a currency conversion (Forex). Raises Problem for
    options, futures and unknown categories."""
    category = row.get("Asset Category")
    key = category.lower()
    if key in _FOREX:
        return None
    if key in _ASSETS:
        asset = _ASSETS[key]
        return AssetClass.ETF if asset is AssetClass.EQUITY and symbol.upper() in etfs else asset
    what = "is not supported yet" if category else "is missing"
    raise problem("Asset Category", category, (
        f"{what} (expected {_ASSET_HINT}; options, futures and CFDs must be added by hand, "
        "e.g. in the generic CSV)"
    ))


# -- sections ----------------------------------------------------------------------------------


def _trade(row: Row, account: str, etfs: set[str], context: Context) -> Trade | str:
    """A buy or sell from an Order or Trade row, or "Forex". Raises Problem for a bad cell."""
    symbol = row.get("Symbol")
    asset = _asset(row, symbol, etfs)
    if asset is None:
        return "Forex"
    if not symbol:
        raise problem("Symbol", symbol, "is missing (expected the ticker traded)")
    quantity = row.quantity("Quantity", _QTY_HINT)
    price = row.price("T. Price", _PRICE_HINT)
    if price is not None and price < 0:
        raise problem("T. Price", row.get("T. Price"), "is negative (expected 0 or more)")
    currency = _currency(row)
    comm_column = next((c for c in row.cells if c.lower().startswith("comm")), "Comm/Fee")
    match = _COMM_IN.fullmatch(comm_column)
    fee_currency = match.group(1).upper() if match else currency
    commission = row.number(comm_column, _MONEY_HINT, required=False) or Decimal(0)
    proceeds = row.number("Proceeds", _MONEY_HINT, required=False)
    timestamp, trade_date = _when(row, "Date/Time", context)

    codes = {c.strip() for c in row.get("Code").split(";") if c.strip()}
    notes = [f"Code {c}: {_CODES[c]}" for c in sorted(codes) if c in _CODES]
    if commission > 0:
        notes.append(f"{comm_column} {plain(commission)} {fee_currency} is a credit: stored as a negative fee")
    action = Action.BUY if quantity > 0 else Action.SELL
    if action is Action.SELL and "O" in codes and "C" not in codes:
        action = Action.SELL_SHORT
    elif action is Action.BUY and "C" in codes and "O" not in codes:
        action = Action.BUY_TO_COVER
    elif {"O", "C"} <= codes:
        notes.append("closes one position and opens the opposite one")
    amount = proceeds + commission if proceeds is not None and fee_currency == currency else None
    return Trade(
        line=row.line, account=account, symbol=symbol, asset_class=asset, action=action,
        timestamp=timestamp, trade_date=trade_date, quantity=abs(quantity), price=price,
        fee=-commission if commission else Decimal(0), fee_currency=fee_currency, currency=currency, amount=amount,
        note="; ".join(notes) or None,
    )


def _cash(section: str, row: Row, account: str, etfs: set[str]) -> Trade:
    """A dividend, withholding, interest, fee, deposit or withdrawal row."""
    column = "Date" if "Date" in row.cells or "Settle Date" not in row.cells else "Settle Date"
    text = row.get(column)
    parsed = parse_when(text) if text else None
    if parsed is None:
        what = "is missing" if not text else "is not a date"
        raise problem(column, text, f"{what} (expected a date such as 2025-03-14)")
    currency = _currency(row)
    amount = row.number("Amount", _MONEY_HINT) or Decimal(0)
    description = row.get("Description")
    action = _CASH[section]
    if action is Action.DEPOSIT and amount < 0:
        action = Action.WITHDRAWAL
    found = _LEADING_SYMBOL.match(description)
    symbol = found.group(1).upper() if found and action in (Action.DIVIDEND, Action.WITHHOLDING) else None
    fields: dict[str, Any] = {
        "symbol": symbol or currency,
        "asset_class": AssetClass.CASH if symbol is None else AssetClass.ETF if symbol in etfs else AssetClass.EQUITY,
    }
    notes = [f"{section}: {description}" if description else section]
    if row.get("Subtitle"):
        notes.insert(0, row.get("Subtitle"))
    return Trade(
        line=row.line, account=account, action=action, trade_date=parsed[0], currency=currency,
        amount=amount, fee=-amount if action is Action.FEE and amount else Decimal(0), note="; ".join(notes),
        **fields,
    )


def _split(row: Row, account: str, context: Context) -> Trade:
    """One row of a split (netted later with its pair). Raises Problem for any other action."""
    description = row.get("Description")
    _asset(row, "", set())  # options adjusted by a split are refused like option trades
    if not _SPLIT.search(description):
        raise Problem(
            f"corporate action {description!r} is not supported yet: the statement does not say how "
            "the basis divides (add it as trades in the generic CSV)"
        )
    found = re.match(r"^\s*([^(]+?)\s*\(", description) or re.match(r"^\s*(\S+)", description)
    if found is None:
        raise problem("Description", description, "names no symbol (expected e.g. 'AAPL(US0378331005) Split 4 for 1 …')")
    symbol = found.group(1).upper().removesuffix(".OLD")
    quantity = row.quantity("Quantity", _QTY_HINT)
    timestamp, trade_date = _when(row, "Date/Time", context)
    return Trade(
        line=row.line, account=account, symbol=symbol, action=Action.SPLIT_IN if quantity > 0 else Action.SPLIT_OUT,
        timestamp=timestamp, trade_date=trade_date, quantity=abs(quantity), currency=_currency(row), note=description,
    )


def _net_split(group: list[Trade]) -> Trade | None:
    """The rows of one split (a reverse split's +new and −.OLD pair) as one row, or None."""
    net = sum((t.quantity if t.action is Action.SPLIT_IN else -t.quantity for t in group), Decimal(0))
    if net == 0:
        return None
    first = group[0]
    note = first.note if len(group) == 1 else f"{first.note} (net of {len(group)} rows)"
    return first.model_copy(update={
        "quantity": abs(net), "action": Action.SPLIT_IN if net > 0 else Action.SPLIT_OUT, "note": note,
    })


def _transfer(row: Row, account: str) -> Trade | str:
    """A position moved in or out; a cash transfer is a deposit or withdrawal."""
    symbol = row.get("Symbol")
    day = parse_when(row.get("Date")) if row.get("Date") else None
    if day is None:
        raise problem("Date", row.get("Date"), "is not a date (expected a date such as 2025-03-14)")
    direction = row.get("Direction").lower()
    if direction not in ("in", "out"):
        raise problem("Direction", row.get("Direction"), "is not In or Out")
    currency = _currency(row)
    notes = [" ".join(x for x in (row.get("Type"), row.get("Direction"), row.get("Xfer Company"),
                                  row.get("Xfer Account")) if x)]
    if row.get("Asset Category").lower() in _FOREX or not symbol:
        amount = abs(row.number("Cash Amount", _MONEY_HINT) or Decimal(0))
        action = Action.DEPOSIT if direction == "in" else Action.WITHDRAWAL
        return Trade(line=row.line, account=account, symbol=currency, asset_class=AssetClass.CASH, action=action,
                     trade_date=day[0], currency=currency, amount=amount if direction == "in" else -amount,
                     note="; ".join(notes))
    asset = _asset(row, symbol, set()) or AssetClass.CASH  # forex is handled above
    quantity = row.quantity("Qty", _QTY_HINT)
    if (quantity < 0) != (direction == "out"):
        raise problem("Qty", row.get("Qty"), f"has the wrong sign for Direction {row.get('Direction')!r}")
    value = row.number("Market Value", _MONEY_HINT, required=False)
    if value is not None:
        notes.append(f"market value {plain(value)} {currency} (not the cost basis)")
    return Trade(
        line=row.line, account=account, symbol=symbol, asset_class=asset,
        action=Action.TRANSFER_IN if direction == "in" else Action.TRANSFER_OUT, trade_date=day[0],
        quantity=abs(quantity), price=row.price("Xfer Price", _PRICE_HINT, required=False), currency=currency,
        note="; ".join(n for n in notes if n) or None,
    )


# -- closed lots -------------------------------------------------------------------------------


def closed_lots(source: Source) -> pl.DataFrame:
    """The broker's lot matching: one row per ClosedLot, in ``reconcile.BROKER_SCHEMA``.

    A ClosedLot row follows the trade that closed it: its date is the date sold; the row's own
    Date/Time is the date acquired. Proceeds are the lot's Basis plus its Realized P/L (so net
    of the sale's commission, as on a 1099-B); the term is from the dates (held over a year).
    Raises FileError when ``source`` is not an Activity Statement or has no ClosedLot rows, and
    RowErrors naming every row that can't be read.
    """
    from taxlens.report.reconcile import BROKER_SCHEMA

    if not IbkrStatement().identify(source):
        raise FileError(source.name, _NOT_A_STATEMENT)
    statement = _read(source)
    errors = list(statement.errors)
    out: list[dict[str, object]] = []
    sold: dict[tuple[str, str], dt.date] = {}  # (currency, symbol) -> date of the last trade
    seen = 0
    for row in statement.section("Trades"):
        key = (row.get("Currency").upper(), row.get("Symbol").upper())
        try:
            if row.get("DataDiscriminator") != "ClosedLot":
                parsed = parse_when(row.get("Date/Time"))
                if parsed is not None:
                    sold[key] = parsed[0]  # the broker's own (Eastern) date
                continue
            seen += 1
            if row.get("Asset Category").lower() in _FOREX:
                continue
            out.append(_closed_lot(row, sold.get(key), source.name))
        except (Problem, ValueError) as exc:  # ValueError: a date whose anniversary is past 9999
            errors.append(RowError(source.name, row.line, str(exc)))
    if errors:
        raise RowErrors(source.name, sorted(errors, key=lambda e: e.line))
    if not seen:
        raise FileError(source.name, (
            "has no ClosedLot rows in its Trades section (expected the broker's lot matching, "
            "which Activity Statements list under each sale)"
        ))
    return pl.DataFrame(out, schema=BROKER_SCHEMA)


def _closed_lot(row: Row, sold: dt.date | None, path: str) -> dict[str, object]:
    symbol = row.get("Symbol")
    if not symbol:
        raise problem("Symbol", symbol, "is missing (expected the ticker of the closed lot)")
    if sold is None:
        raise Problem(
            "ClosedLot row has no trade of its symbol before it "
            "(expected it after the Order or Trade row that closed the lot)"
        )
    quantity = row.quantity("Quantity", _QTY_HINT)
    if quantity < 0:
        raise problem("Quantity", row.get("Quantity"), (
            "is negative: closed lots of short sales are not read yet (expected a long lot)"
        ))
    text = row.get("Date/Time")
    parsed = parse_when(text) if text else None
    if parsed is None:
        raise problem("Date/Time", text, f"is not a date (expected the date acquired, {DATE_HINT})")
    acquired = parsed[0]
    basis = row.number("Basis", _MONEY_HINT) or Decimal(0)
    realized = row.number("Realized P/L", _MONEY_HINT, required=False) or Decimal(0)
    return {
        "symbol": symbol.upper(), "quantity": quantity, "acquired": acquired, "sold": sold,
        "proceeds": basis + realized, "basis": basis, "adjustment": Decimal(0),
        "term": term(acquired, sold), "source": f"{path}:{row.line}",
    }
