"""E*TRADE transaction history CSV (``DownloadTxnHistory.csv``), old and 2025+ layouts.

Old layout: ``For Account:,####1234``, a blank line, then::

    TransactionDate,TransactionType,SecurityType,Symbol,Quantity,Amount,Price,Commission,Description

2025+ layout: a preamble (``All Transactions Activity Types``, ``Account Activity for <name>
-1234 from <range>``, ``Total:,<amount>``, blank lines between), then::

    Activity/Trade Date,Transaction Date,Settlement Date,Activity Type,Description,Symbol,Cusip,
    Quantity #,Price $,Amount $,Commission,Category,Note

and a disclaimer footer. Both are read by header name through one column map.

Quirks this adapter handles:

- Dates are ``MM/DD/YY``; the trade date is TransactionDate (old) or Activity/Trade Date (new).
- ``--`` means "no value" (new layout) and reads as an empty cell.
- Quantity is signed (negative on sells); Amount is signed cash. Quantities are stored
  positive; the transaction type gives the direction.
- A dividend reinvestment is a ``Dividend`` row with a positive quantity and a negative amount:
  it is a reinvest; a plain ``Dividend`` (no shares) is income.
- Options (SecurityType ``OPTN``, or a Description starting ``PUT``/``CALL``) and
  reorganisations (mergers, spin-offs, exchanges) are row errors, never booked silently;
  ``Stock Split``/``Reverse Split`` rows map to split_in/split_out by the sign of Quantity.
- One-cell prose lines after the header (the disclaimer) are footer text, not rows.
- Account: ``--account``, else ``E*TRADE <account>`` from the preamble, else "E*TRADE".
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, ClassVar

from taxlens.errors import FileError
from taxlens.ingest.base import Context, Extracted, Source, missing_columns
from taxlens.ingest.brokercsv import date_cell, extract_rows, head_cells, read_sheet
from taxlens.ingest.rows import Problem, Row, problem
from taxlens.models import Action, AssetClass, Trade

_OLD = ("TransactionDate", "TransactionType", "SecurityType", "Symbol", "Quantity", "Amount")
_NEW = ("Activity/Trade Date", "Activity Type", "Symbol", "Quantity #", "Amount $")
#: Canonical column -> (old layout name, new layout name).
_COLUMNS = {
    "Date": ("TransactionDate", "Activity/Trade Date"),
    "Type": ("TransactionType", "Activity Type"),
    "Symbol": ("Symbol", "Symbol"),
    "Quantity": ("Quantity", "Quantity #"),
    "Amount": ("Amount", "Amount $"),
    "Price": ("Price", "Price $"),
    "Commission": ("Commission", "Commission"),
    "Description": ("Description", "Description"),
}

_TRADES = {
    "Bought": Action.BUY,
    "Sold": Action.SELL,
    "Sold Short": Action.SELL_SHORT,
    "Bought To Cover": Action.BUY_TO_COVER,
    "Reinvest": Action.REINVEST,
    "Dividend Reinvestment": Action.REINVEST,
}
_CASH = {
    "Dividend": Action.DIVIDEND,  # a reinvest when it carries shares (see _trade)
    "Qualified Dividend": Action.DIVIDEND,
    "Capital Gain": Action.DIVIDEND,
    "Interest": Action.INTEREST,
    "Interest Income": Action.INTEREST,
    "Fee": Action.FEE,
    "Service Fee": Action.FEE,
    "Margin Interest": Action.FEE,
    "Foreign Withholding": Action.WITHHOLDING,
    "Tax Withholding": Action.WITHHOLDING,
    "Backup Withholding": Action.WITHHOLDING,
}
_MOVES = ("Deposit", "Withdrawal", "Online Transfer", "Direct Deposit", "Direct Debit", "Wire In", "Wire Out", "ACH")
_SHARES = {
    "Transfer": (Action.TRANSFER_IN, Action.TRANSFER_OUT),
    "Stock Split": (Action.SPLIT_IN, Action.SPLIT_OUT),
    "Reverse Split": (Action.SPLIT_IN, Action.SPLIT_OUT),
}
_OPTIONS = "options are not supported by taxlens yet (enter the trades by hand)"
_BASIS = "needs a basis allocation the file doesn't give: enter it by hand (generic CSV or opening lots)"
UNSUPPORTED: dict[str, str] = {
    **dict.fromkeys(
        ("Bought To Open", "Sold To Close", "Sold To Open", "Bought To Close", "Option Expired",
         "Option Assigned", "Option Exercised", "Expired", "Assigned", "Exercised"),
        _OPTIONS,
    ),
    **dict.fromkeys(("Reorganization", "Merger", "Spin-off", "Spinoff", "Exchange", "Return of Capital"), _BASIS),
}
_KNOWN = [*_TRADES, *_CASH, *_MOVES, *_SHARES, "Cash In Lieu"]
_OLD_ACCOUNT = re.compile(r"^For Account:?$", re.IGNORECASE)
_NEW_ACCOUNT = re.compile(r"^Account Activity for (.+?)(?:\s+from\s.*)?$", re.IGNORECASE)
_OPTION_TEXT = re.compile(r"^(PUT|CALL)\s", re.IGNORECASE)
_DATE_HINT = "MM/DD/YY such as 04/05/23"
_QTY_HINT = "a signed number of shares such as 10 or -2"
_MONEY_HINT = "an amount such as -1011.00"


class Etrade:
    """E*TRADE transaction history CSV (old and 2025+ layouts)."""

    NAME: ClassVar[str] = "etrade"
    TITLE: ClassVar[str] = "E*TRADE transaction history CSV"
    IDENTIFIED_BY: ClassVar[str] = (
        "a header TransactionDate,TransactionType,SecurityType,… (old) or Activity/Trade Date,…,"
        "Activity Type,… (2025+) among the first 10 non-blank lines"
    )
    EXAMPLE: ClassVar[str] = (
        "For Account:,####1234\n\n"
        "TransactionDate,TransactionType,SecurityType,Symbol,Quantity,Amount,Price,Commission,Description\n"
        "04/05/23,Sold,EQ,AMZN,-2,202.19,101.1,0,AMAZON.COM INC"
    )
    ACTIONS: ClassVar[dict[str, str]] = {
        **{t: a.value for t, a in _TRADES.items()},
        **{t: a.value for t, a in _CASH.items()},
        "Dividend": "dividend, or reinvest when it has a positive Quantity and a negative Amount",
        **dict.fromkeys(_MOVES, "deposit or withdrawal (sign of Amount)"),
        **{t: f"{i.value} or {o.value} (sign of Quantity)" for t, (i, o) in _SHARES.items()},
        "Cash In Lieu": Action.CASH_IN_LIEU.value,
    }
    IGNORED: ClassVar[dict[str, str]] = {}

    def identify(self, source: Source) -> bool:
        """True when one of the first 10 non-blank records is an old or new E*TRADE header."""
        return any(_is_header(r) for r in head_cells(source, 10))

    def extract(self, source: Source, context: Context) -> Extracted:
        """Every data row as a trade or a RowError; the preamble and footer text are skipped.

        Raises FileError when no header is found or a needed column is missing.
        """
        sheet = read_sheet(source, _is_header, na=("--",))
        if sheet is None:
            raise FileError(source.name, "no E*TRADE header (expected TransactionDate,TransactionType,… or Activity/Trade Date,…)")
        new = "Activity Type" in sheet.header
        columns = {c: names[1] if new else names[0] for c, names in _COLUMNS.items()}
        required = [columns[c] for c in ("Date", "Type", "Symbol", "Quantity", "Amount", "Price", "Commission", "Description")]
        missing_columns(source, sheet.header_line, sheet.header, required)
        account = context.account or _account(sheet.preamble)

        return extract_rows(source, sheet, lambda row: _trade(row, columns, account))


def _is_header(cells: list[str]) -> bool:
    return all(c in cells for c in _OLD) or all(c in cells for c in _NEW)


def _account(preamble: list[list[str]]) -> str:
    """``E*TRADE <account>`` from ``For Account:,####1234`` or ``Account Activity for …``."""
    for record in preamble:
        if len(record) > 1 and _OLD_ACCOUNT.match(record[0]) and record[1]:
            return f"E*TRADE {record[1]}"
        match = _NEW_ACCOUNT.match(record[0]) if record else None
        if match:
            return f"E*TRADE {match.group(1).strip()}"
    return "E*TRADE"


def _trade(row: Row, columns: dict[str, str], account: str) -> Trade:
    """The trade one row stands for. Raises Problem for a bad cell or type."""
    kind = row.get(columns["Type"])
    column = columns["Type"]
    if kind in UNSUPPORTED:
        raise Problem(f"{column} {kind!r}: {UNSUPPORTED[kind]}")
    if kind not in _KNOWN:
        what = "is not handled by the etrade adapter" if kind else "is missing"
        raise problem(column, kind, f"{what} (expected one of {', '.join(_KNOWN)})")
    description = row.get(columns["Description"])
    if row.get("SecurityType").upper() == "OPTN" or _OPTION_TEXT.match(description):
        raise Problem(f"{column} {kind!r} on {description or row.get('Symbol')!r}: {_OPTIONS}")
    symbol = row.get(columns["Symbol"]).upper()
    base: dict[str, Any] = {
        "line": row.line, "account": account, "trade_date": date_cell(row, columns["Date"], _DATE_HINT),
    }

    def amount(required: bool = True) -> Decimal | None:
        return row.number(columns["Amount"], _MONEY_HINT, required=required)

    def cash(action: Action, value: Decimal, note: str | None = None) -> Trade:
        return Trade(
            **base, symbol=symbol or "USD", asset_class=AssetClass.EQUITY if symbol else AssetClass.CASH,
            action=action, amount=value, fee=abs(value) if action is Action.FEE else Decimal(0), note=note,
        )

    shares = row.number(columns["Quantity"], _QTY_HINT, required=False) or Decimal(0)
    action = _TRADES.get(kind)
    if kind == "Dividend" and shares > 0:
        action = Action.REINVEST  # E*TRADE books a reinvestment as a Dividend row with shares
    if action is not None:
        if not symbol:
            raise problem(columns["Symbol"], symbol, f"is missing (expected the ticker of the {kind})")
        if shares == 0:
            raise problem(columns["Quantity"], row.get(columns["Quantity"]), f"is missing or zero (expected {_QTY_HINT})")
        return Trade(
            **base, symbol=symbol, action=action, quantity=abs(shares),
            price=row.price(columns["Price"], "a price such as 101.1", required=False),
            fee=abs(row.number(columns["Commission"], _MONEY_HINT, required=False) or Decimal(0)),
            amount=amount(), note="dividend reinvestment" if kind == "Dividend" else None,
        )
    if kind in _CASH:
        return cash(_CASH[kind], amount() or Decimal(0), kind if _CASH[kind] is Action.DIVIDEND else None)
    if kind in _MOVES:
        value = amount() or Decimal(0)
        return cash(Action.WITHDRAWAL if value < 0 else Action.DEPOSIT, value)
    if kind == "Cash In Lieu":
        return Trade(
            **base, symbol=symbol or "USD", action=Action.CASH_IN_LIEU, quantity=abs(shares), amount=amount()
        )
    into, out_of = _SHARES[kind]
    if shares == 0 and into is Action.TRANSFER_IN:  # cash transferred, no shares
        value = amount() or Decimal(0)
        return cash(Action.WITHDRAWAL if value < 0 else Action.DEPOSIT, value)
    if not symbol:
        raise problem(columns["Symbol"], symbol, "is missing (expected the ticker whose shares moved)")
    if shares == 0:
        raise problem(columns["Quantity"], row.get(columns["Quantity"]), f"is missing or zero (expected {_QTY_HINT})")
    moved = into if shares > 0 else out_of
    return Trade(
        **base, symbol=symbol, action=moved, quantity=abs(shares),
        note="basis unknown" if moved is Action.TRANSFER_IN else description or None,
    )
