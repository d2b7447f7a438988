"""Interactive Brokers "Transaction History" report CSV (the newer report, beside the Activity Statement).

Layout (``shared/reference/formats.md`` §2d): the same ``<Section>,<Header|Data>,<fields…>``
line shape as the Activity Statement (``ibkr_statement.py``), with three sections:

- ``Statement`` (``Field Name,Field Value``: Title ``Transaction History``, Period,
  WhenGenerated) and ``Summary`` (``Base Currency``, Starting Cash, Change, Ending Cash):
  counted under their names; ``Base Currency`` is the currency of every amount.
- ``Transaction History``: one row per event,
  ``Date,Account,Description,Transaction Type,Symbol,Quantity,Price,Gross Amount ,Commission,Net Amount``.
  The foreign-currency variant adds ``Price Currency`` (after Price) and ``Exchange Rate``
  (last): Price is in the Price Currency, while Gross Amount, Commission and Net Amount stay in
  the base currency, and Exchange Rate converts the first into the second.

Each ``Transaction Type`` is mapped (``ACTIONS``) or ignored with a reason (``IGNORED``); any
other type is a row error naming the file and line. Cells are looked up by column name.

Quirks handled here:

- The header cell ``Gross Amount `` has a trailing space: header cells are stripped.
- ``-`` (and ``--``) means "no value" in any cell.
- Dates are dates only (``2025-08-15``), no times: the trade date is that date, no instant.
- Quantity is signed (negative on a Sell); a sign that contradicts the type is a row error.
  Commission is negative when charged.
- A trade is recorded in its Price Currency (the base currency when the column is absent);
  its fee is the Commission in the base currency, and its cash amount is the Net Amount only
  when that is in the trade's currency (otherwise the note gives it and the rate). Non-USD
  trades are flagged later, at booking.
- The report has no asset category: securities are read as equities, and a symbol that looks
  like an option (``AAPL 17JAN25 150 C``, OCC ``AAPL  250117C00150000``) is a row error, so its
  taxable events don't vanish silently.
- ``Forex Trade Component`` rows are the cash legs of a currency conversion, and an
  ``Adjustment`` described as ``FX Translations P&L`` revalues a currency balance: both are
  ignored. Any other Adjustment is a row error (the report does not say what it adjusts).
- Dividend and withholding rows name the security in Symbol, or as ``SYMBOL(ISIN)`` at the
  start of Description; withholding with no security (on credit interest) is a cash row, and a
  positive withholding (``CANCEL WITHHOLDING …``) is a refund, kept signed.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

from pydantic import ValidationError

from taxlens.errors import FileError, RowError
from taxlens.ingest.base import Context, Extracted, Source, missing_columns
from taxlens.ingest.csvscan import read_rows
from taxlens.ingest.frame import from_trades
from taxlens.ingest.ibkr_read import parse_date
from taxlens.ingest.ibkr_statement import _CURRENCY, _FIRST_HEADER, _KINDS, _LEADING_SYMBOL, _NO_VALUE, _invalid
from taxlens.ingest.rows import Problem, Row, problem
from taxlens.models import Action, AssetClass, Trade
from taxlens.money import plain

_SECTION = "Transaction History"
_HISTORY_HEADER = re.compile(r'^"?Transaction History"?,"?Header"?,', re.MULTILINE)
_HISTORY_TITLE = re.compile(r'^"?Statement"?,"?Data"?,"?Title"?,"?Transaction History"?\s*$', re.MULTILINE)
_REQUIRED = ["Date", "Description", "Transaction Type", "Symbol", "Quantity", "Price", "Commission", "Net Amount"]
_OPTION = re.compile(r"\s\d{1,2}[A-Z]{3}\d{2}\s+\d+(?:\.\d+)?\s+[CP]$|^[A-Z][A-Z0-9.]*\s*\d{6}[CP]\d{8}$")
_FX_TRANSLATION = re.compile(r"\bFX Translations?\b", re.IGNORECASE)

_TRADES = {"Buy": Action.BUY, "Sell": Action.SELL}
_CASH = {
    "Dividend": Action.DIVIDEND,
    "Payment in Lieu": Action.DIVIDEND,
    "Foreign Tax Withholding": Action.WITHHOLDING,
    "Credit Interest": Action.INTEREST,
    "Other Fee": Action.FEE,
    "Deposit": Action.DEPOSIT,
    "Withdrawal": Action.WITHDRAWAL,
}
_FOREX = "Forex Trade Component"
_FX_ADJUSTMENT = "Adjustment (FX Translations P&L)"
_QTY_HINT = "a signed quantity such as 10 or -0.5"
_MONEY_HINT = "an amount such as -1.25"
_PRICE_HINT = "a price such as 187.40"
_DATE_HINT = "a date such as 2025-03-14; this report gives dates without times"
_NOT_A_HISTORY = (
    "is not an IBKR Transaction History report (expected a first line such as 'Statement,Header,Field Name,"
    "Field Value' and a 'Transaction History,Header,Date,…' line; an Activity Statement is --format ibkr-statement)"
)


@dataclass
class _Report:
    """The report's Transaction History rows, keyed by its Header, and what the other sections said."""

    rows: list[Row] = field(default_factory=list)
    other: Counter[str] = field(default_factory=Counter)  # Statement, Summary, any other section: Data rows
    errors: list[RowError] = field(default_factory=list)
    rows_read: int = 0
    base: str | None = None  # Summary Base Currency
    titled: bool = False  # a Statement Title of Transaction History
    has_header: bool = False  # a Transaction History Header line


def _read(source: Source) -> _Report:
    """Every Data row of ``source``; a short row or one before its Header is a RowError.

    Raises FileError when the Transaction History Header lacks a needed column, when the base
    currency is not a currency code, and when the text is not readable as CSV.
    """
    out = _Report()
    headers: dict[str, list[str]] = {}
    line = 0
    try:
        for line, fields in read_rows(source.text):
            cells = [f.strip() for f in fields]  # strips the trailing space of 'Gross Amount '
            if len(cells) < 2 or cells[1] not in _KINDS:
                out.errors.append(RowError(source.name, line, (
                    f"line type {(cells[1] if len(cells) > 1 else '')!r} is not known "
                    "(expected <Section>,Header|Data,… as in a Transaction History report)"
                )))
                continue
            section, kind, values = cells[0], cells[1], cells[2:]
            if kind == "Header":
                while values and not values[-1]:
                    values.pop()
                if section == _SECTION:
                    missing_columns(source, line, values, _REQUIRED)
                    out.has_header = True
                headers[section] = values
                continue
            if kind != "Data" or (values and values[0].lower().startswith("total")):
                continue  # SubTotal, Total, Notes and total Data rows
            out.rows_read += 1
            header = headers.get(section)
            if header is None:
                if section == _SECTION:
                    out.errors.append(RowError(source.name, line, (
                        f"{section} Data row comes before its Header row (expected the Header first)"
                    )))
                else:
                    out.other[section] += 1
                continue
            if len(values) < len(header) or any(values[len(header):]):  # trailing commas are fine
                if section == _SECTION:
                    out.errors.append(RowError(source.name, line, (
                        f"row has {len(values)} fields after '{section},Data' (expected {len(header)}, as in the Header)"
                    )))
                else:
                    out.other[section] += 1
                continue
            row = Row(line, {h: ("" if v in _NO_VALUE else v) for h, v in zip(header, values, strict=False) if h})
            if section == _SECTION:
                out.rows.append(row)
                continue
            out.other[section] += 1
            name, value = row.get("Field Name"), row.get("Field Value")
            if section == "Summary" and name == "Base Currency":
                if not _CURRENCY.fullmatch(value.upper()):
                    raise FileError(source.name, (
                        f"Summary Base Currency {value!r} is not a currency code (expected e.g. USD, GBP or EUR)"
                    ), line)
                out.base = value.upper()
            elif section == "Statement" and name == "Title" and value == _SECTION:
                out.titled = True
    except csv.Error as exc:  # an unbalanced quote made a field too long
        raise FileError(source.name, f"is not readable as CSV after this line ({exc})", line) from exc
    return out


class IbkrHistory:
    """IBKR Transaction History report CSV: trades, dividends, withholding, interest, fees, cash."""

    NAME: ClassVar[str] = "ibkr-history"
    TITLE: ClassVar[str] = "Interactive Brokers Transaction History report (CSV)"
    IDENTIFIED_BY: ClassVar[str] = (
        "lines of the form Section,Header|Data,…, the first a Header, with a "
        "'Transaction History,Header' line or a 'Statement,Data,Title,Transaction History' line"
    )
    EXAMPLE: ClassVar[str] = (
        "Transaction History,Header,Date,Account,Description,Transaction Type,Symbol,Quantity,Price,"
        "Gross Amount ,Commission,Net Amount\n"
        "Transaction History,Data,2025-03-14,U1234567,VANGUARD TOTAL STOCK MKT ETF,Buy,VTI,10,250.1,-2501,-1,-2502"
    )
    ACTIONS: ClassVar[dict[str, str]] = {
        "Buy (Quantity > 0)": Action.BUY.value,
        "Sell (Quantity < 0)": Action.SELL.value,
        **{kind: action.value for kind, action in _CASH.items()},
    }
    IGNORED: ClassVar[dict[str, str]] = {
        _FOREX: "cash leg of a currency conversion: not a security lot (FX gains are not tracked yet)",
        _FX_ADJUSTMENT: "revaluation of a currency balance: no trade, income or fee (FX gains are not tracked yet)",
        "(any other section)": "the Statement and Summary sections (title, period, base currency, cash totals): "
                               "counted under their names",
    }

    def identify(self, source: Source) -> bool:
        """True when the first line is a ``<Section>,Header,…`` line and the head has a
        Transaction History header or title (never an Activity Statement, nor a Flex CSV)."""
        head = source.head
        return bool(_FIRST_HEADER.match(head)) and bool(_HISTORY_HEADER.search(head) or _HISTORY_TITLE.search(head))

    def extract(self, source: Source, context: Context) -> Extracted:
        """Trades and cash rows of ``source``; the rest counted in ``ignored``.

        Raises FileError when the file is not this report, the Header lacks a needed column,
        or the text is not CSV.
        """
        if not _FIRST_HEADER.match(source.head):
            raise FileError(source.name, _NOT_A_HISTORY)
        report = _read(source)
        if not (report.has_header or report.titled):
            raise FileError(source.name, _NOT_A_HISTORY)
        warnings: list[str] = []
        base = report.base
        if base is None:
            base = "USD"
            if report.rows:
                warnings.append("no 'Summary,Data,Base Currency' line: amounts taken as USD")
        errors = list(report.errors)
        ignored: Counter[str] = Counter(report.other)
        trades: list[Trade] = []
        for row in report.rows:
            account = context.account or row.get("Account") or "IBKR"
            try:
                result = _event(row, account, base)
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
        errors.sort(key=lambda e: e.line)
        return Extracted(trades=from_trades(trades), errors=errors, rows_read=report.rows_read,
                         ignored=ignored, warnings=warnings)


def _event(row: Row, account: str, base: str) -> Trade | str:
    """The Trade of one Transaction History row, or the IGNORED key it is counted under."""
    kind = row.get("Transaction Type")
    if kind == _FOREX:
        return _FOREX
    if kind == "Adjustment":
        if _FX_TRANSLATION.search(row.get("Description")):
            return _FX_ADJUSTMENT
        raise problem("Description", row.get("Description"), (
            "is an Adjustment taxlens does not read (expected FX Translations P&L; "
            "add any other adjustment by hand, e.g. in the generic CSV)"
        ))
    if kind in _TRADES:
        return _trade(row, kind, account, base)
    if kind in _CASH:
        return _cash(row, kind, account, base)
    what = "is missing" if not kind else "is not known"
    known = ", ".join([*_TRADES, *_CASH, _FOREX, "Adjustment"])
    raise problem("Transaction Type", kind, f"{what} (expected one of {known})")


def _date(row: Row) -> dt.date:
    text = row.get("Date")
    day = parse_date(text) if text else None
    if day is None:
        raise problem("Date", text, f"{'is missing' if not text else 'is not a date'} (expected {_DATE_HINT})")
    return day


def _price_currency(row: Row, base: str) -> str:
    """The currency of Price: the Price Currency column when there is one, else the base currency."""
    text = row.get("Price Currency")
    if not text:
        return base
    if not _CURRENCY.fullmatch(text.upper()):
        raise problem("Price Currency", text, "is not a currency code (expected e.g. USD, EUR or GBP)")
    return text.upper()


def _trade(row: Row, kind: str, account: str, base: str) -> Trade:
    """A Buy or Sell row. Raises Problem for a bad cell."""
    symbol = row.get("Symbol")
    if not symbol:
        raise problem("Symbol", symbol, "is missing (expected the ticker traded)")
    if _OPTION.search(symbol):
        raise problem("Symbol", symbol, (
            "looks like an option, which is not supported yet (add options by hand, e.g. in the generic CSV)"
        ))
    quantity = row.quantity("Quantity", _QTY_HINT)
    action = _TRADES[kind]
    if (quantity > 0) != (action is Action.BUY):
        sign, want = ("negative", "positive") if quantity < 0 else ("positive", "negative")
        raise problem("Quantity", row.get("Quantity"), f"is {sign} on a {kind} row (expected a {want} quantity)")
    price = row.price("Price", _PRICE_HINT)
    if price is not None and price < 0:
        raise problem("Price", row.get("Price"), "is negative (expected 0 or more)")
    currency = _price_currency(row, base)
    commission = row.number("Commission", _MONEY_HINT, required=False) or Decimal(0)
    net = row.number("Net Amount", _MONEY_HINT, required=False)
    day = _date(row)
    notes = [row.get("Description")] if row.get("Description") else []
    if commission > 0:
        notes.append(f"Commission {plain(commission)} {base} is a credit: stored as a negative fee")
    if currency != base:
        rate = row.number("Exchange Rate", "an exchange rate such as 0.88542", required=False)
        shown = f"Net Amount {plain(net)} {base}" if net is not None else "no Net Amount"
        notes.append(f"{shown}" + (f" at Exchange Rate {plain(rate)} {currency}→{base}" if rate is not None else ""))
    return Trade(
        line=row.line, account=account, symbol=symbol, asset_class=AssetClass.EQUITY, action=action,
        trade_date=day, quantity=abs(quantity), price=price, fee=-commission if commission else Decimal(0),
        fee_currency=base, currency=currency, amount=net if currency == base else None,
        note="; ".join(notes) or None,
    )


def _cash(row: Row, kind: str, account: str, base: str) -> Trade:
    """A dividend, withholding, interest, fee, deposit or withdrawal row, in the base currency."""
    day = _date(row)
    amount = row.number("Net Amount", _MONEY_HINT) or Decimal(0)
    action = _CASH[kind]
    if (action is Action.DEPOSIT and amount < 0) or (action is Action.WITHDRAWAL and amount > 0):
        sign, want = ("negative", "positive") if amount < 0 else ("positive", "negative")
        raise problem("Net Amount", row.get("Net Amount"), f"is {sign} on a {kind} row (expected a {want} amount)")
    description = row.get("Description")
    symbol: str | None = None
    if action in (Action.DIVIDEND, Action.WITHHOLDING):
        found = _LEADING_SYMBOL.match(description)
        symbol = (row.get("Symbol") or (found.group(1) if found else "")).upper() or None
    if symbol is not None and _OPTION.search(symbol):
        raise problem("Symbol", symbol, "looks like an option, which is not supported yet (add it by hand)")
    notes = [f"{kind}: {description}" if description else kind]
    return Trade(
        line=row.line, account=account, action=action, trade_date=day, currency=base, amount=amount,
        symbol=symbol or base, asset_class=AssetClass.CASH if symbol is None else AssetClass.EQUITY,
        fee=-amount if action is Action.FEE and amount else Decimal(0), note="; ".join(notes),
    )
