"""Fidelity account history CSV (``Accounts_History.csv`` / ``History_for_Account_*.csv``).

Layouts (all read by header name; a column's name varies, its meaning does not):

1. classic: ``Run Date,Action,Symbol,Security Description,Security Type,Quantity,Price ($),
   Commission ($),Fees ($),Accrued Interest ($),Amount ($),Settlement Date``
2. classic with ``Account`` after Run Date;
3. cash management: ``Description``/``Type`` and an extra ``Cash Balance ($)``;
4. international: ``Exchange Quantity,Exchange Currency,Quantity,Currency,Price,Exchange Rate,
   Commission,Fees,Accrued Interest,Amount`` (no ``($)`` suffixes);
5. 2025 all-accounts: ``Run Date,Account,Account Number,Action,Symbol,Description,Type,…``,
   one file for every account, each row naming its account.

Quirks this adapter handles:

- Framing: older files open with blank comma-only lines (CRLF); newer ones end with blank
  lines, a disclaimer and ``Date downloaded MM/DD/YYYY h:mm am``. Blank lines are skipped and
  one-cell prose lines after the header are footer text, not rows.
- ``Action`` is free text whose prefix is the type (``YOU BOUGHT …``, ``DIVIDEND RECEIVED …``,
  ``REINVESTMENT …``) with the sub-account appended (``(Cash)``/``(Margin)``): it is matched
  by prefix, longest first. Cells carry stray leading spaces (``" DIRECT DEBIT…"``, Symbol ``"  "``).
- Quantity is negative on sells and Amount negative on buys; quantities are stored positive
  and the direction comes from Action. Commission and Fees are often blank.
- Dates are ``MM/DD/YYYY`` with no time; Run Date is the trade date.
- Cash swept into and out of the core money-market fund (``PURCHASE INTO CORE ACCOUNT``,
  ``REDEMPTION FROM CORE ACCOUNT``, a ``REINVESTMENT`` into SPAXX and the like) is ignored: it
  is cash at $1 a share. The core fund's dividend is still income.
- Corporate actions: splits and reverse splits (``STOCK SPLIT``, ``REVERSE SPLIT``: one row per
  side, direction from the sign of Quantity) map to split_in/split_out; cash in lieu to
  cash_in_lieu. A ``DISTRIBUTION`` of shares may be a split, a stock dividend or a spin-off, and
  mergers, exchanges and spin-offs need a basis allocation the file doesn't give: those are row
  errors, never booked silently. Options are row errors too (taxlens doesn't book them yet).
- Account: ``--account``, else the row's ``Account Number`` (or ``Account``), else the
  ``History_for_Account_X1234.csv`` file name, else "Fidelity".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import PurePath
from typing import Any, ClassVar

from taxlens.errors import FileError
from taxlens.ingest.base import Context, Extracted, Source, missing_columns
from taxlens.ingest.brokercsv import date_cell, extract_rows, head_cells, read_sheet
from taxlens.ingest.rows import Problem, Row, problem
from taxlens.models import Action, AssetClass, Trade

#: Canonical column -> the names it has in the five layouts (first found wins).
_ALIASES: dict[str, tuple[str, ...]] = {
    "Run Date": ("Run Date",),
    "Action": ("Action",),
    "Symbol": ("Symbol",),
    "Quantity": ("Quantity",),
    "Price": ("Price ($)", "Price"),
    "Amount": ("Amount ($)", "Amount"),
    "Commission": ("Commission ($)", "Commission"),
    "Fees": ("Fees ($)", "Fees"),
}
_OPTIONAL = ("Commission", "Fees")

#: Core money-market funds: Fidelity's cash position, valued at $1.
_CORE = frozenset({"SPAXX", "FDRXX", "FZFXX", "SPRXX", "FZDXX", "FCASH", "CORE"})
_CORE_REINVEST = "REINVESTMENT (core money market fund)"
_SWEEP = "cash swept into or out of the core money-market fund: it stays the user's cash at $1 a share"
_OPTIONS = "options are not supported by taxlens yet (enter the trades by hand)"
_BASIS = (
    "needs a basis allocation the file doesn't give: enter it by hand "
    "(as trades in the generic CSV, or opening lots)"
)


@dataclass(frozen=True)
class _Kind:
    """How an Action prefix is read: ``how`` is trade, cash, move, shares, lieu, ignore or refuse."""

    how: str
    action: Action | None = None
    out: Action | None = None  # for shares: the action when Quantity is negative
    why: str = ""


def _trade(a: Action) -> _Kind:
    return _Kind("trade", a)


def _cash(a: Action) -> _Kind:
    return _Kind("cash", a)


_MOVE = _Kind("move")
_TRANSFER = _Kind("shares", Action.TRANSFER_IN, Action.TRANSFER_OUT)
_SPLIT = _Kind("shares", Action.SPLIT_IN, Action.SPLIT_OUT)

#: Action prefix -> how it is read. Matched longest prefix first.
_PREFIXES: dict[str, _Kind] = {
    # options: "YOU BOUGHT OPENING TRANSACTION CALL (AAPL) …" and their expiry/assignment rows
    **dict.fromkeys(
        ("YOU BOUGHT OPENING TRANSACTION", "YOU SOLD OPENING TRANSACTION",
         "YOU BOUGHT CLOSING TRANSACTION", "YOU SOLD CLOSING TRANSACTION",
         "EXPIRED", "ASSIGNED", "EXERCISED"),
        _Kind("refuse", why=_OPTIONS),
    ),
    "YOU BOUGHT SHORT COVER": _trade(Action.BUY_TO_COVER),
    "YOU SOLD SHORT": _trade(Action.SELL_SHORT),
    "YOU BOUGHT": _trade(Action.BUY),
    "YOU SOLD": _trade(Action.SELL),
    "REINVESTMENT": _trade(Action.REINVEST),
    "REDEMPTION PAYOUT": _trade(Action.SELL),  # a bond or CD repaid: a disposal at Amount
    "PURCHASE INTO CORE ACCOUNT": _Kind("ignore", why=_SWEEP),
    "REDEMPTION FROM CORE ACCOUNT": _Kind("ignore", why=_SWEEP),
    "DIVIDEND RECEIVED": _cash(Action.DIVIDEND),
    "LONG-TERM CAP GAIN": _cash(Action.DIVIDEND),
    "SHORT-TERM CAP GAIN": _cash(Action.DIVIDEND),
    "INTEREST EARNED": _cash(Action.INTEREST),
    "FOREIGN TAX PAID": _cash(Action.WITHHOLDING),
    "FEE CHARGED": _cash(Action.FEE),
    "ADVISORY FEE": _cash(Action.FEE),
    "MARGIN INTEREST": _cash(Action.FEE),
    **dict.fromkeys(
        ("DIRECT DEPOSIT", "DIRECT DEBIT", "ELECTRONIC FUNDS TRANSFER", "WIRE TRANSFER",
         "CHECK RECEIVED", "CHECK PAID", "DEBIT CARD PURCHASE", "BILL PAYMENT", "CASH CONTRIBUTION",
         "PARTIC CONTR"),
        _MOVE,
    ),
    **dict.fromkeys(("TRANSFERRED FROM", "TRANSFERRED TO", "TRANSFER OF ASSETS", "JOURNALED"), _TRANSFER),
    "STOCK SPLIT": _SPLIT,
    "REVERSE SPLIT": _SPLIT,
    "IN LIEU OF FRX SHARE": _Kind("lieu"),
    "CASH IN LIEU": _Kind("lieu"),
    "DISTRIBUTION": _Kind(
        "refuse",
        why="a distribution of shares may be a stock split, a stock dividend or a spin-off and the "
        "file doesn't say which: enter it by hand (a split as split_in in the generic CSV)",
    ),
    **dict.fromkeys(
        ("MERGER", "SPIN OFF", "SPINOFF", "SPIN-OFF", "NAME CHANGE", "EXCHANGED", "CONVERSION",
         "TENDERED", "RETURN OF CAPITAL"),
        _Kind("refuse", why=_BASIS),
    ),
}
_ORDER = sorted(_PREFIXES, key=len, reverse=True)
_HANDLED = [p for p, k in _PREFIXES.items() if k.how != "refuse"]
_FILE_ACCOUNT = re.compile(r"History_for_Account_([A-Z0-9]+)", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_DATE_HINT = "MM/DD/YYYY such as 11/17/2025"
_QTY_HINT = "a number of shares such as 18 or -341"
_PRICE_HINT = "a price such as 208.64"
_MONEY_HINT = "an amount such as -3755.44"


def _describe(kind: _Kind) -> str:
    if kind.how == "trade" and kind.action is not None:
        return kind.action.value
    if kind.how == "cash" and kind.action is not None:
        return kind.action.value
    if kind.how == "move":
        return "deposit or withdrawal (sign of Amount)"
    if kind.how == "shares" and kind.action is not None and kind.out is not None:
        return f"{kind.action.value} or {kind.out.value} (sign of Quantity; deposit or withdrawal when no shares)"
    return Action.CASH_IN_LIEU.value


class Fidelity:
    """Fidelity account history CSV (classic, with-account, cash-management, international,
    2025 all-accounts)."""

    NAME: ClassVar[str] = "fidelity"
    TITLE: ClassVar[str] = "Fidelity account history CSV"
    IDENTIFIED_BY: ClassVar[str] = (
        "a header with Run Date, Action and Symbol among the first 10 non-blank lines"
    )
    EXAMPLE: ClassVar[str] = (
        "Run Date,Account,Account Number,Action,Symbol,Description,Type,Exchange Quantity,Exchange Currency,"
        "Currency,Price,Quantity,Exchange Rate,Commission,Fees,Accrued Interest,Amount,Settlement Date\n"
        '11/17/2025,"Brokerage","333333333","YOU BOUGHT WASTE MANAGEMENT INC (WM) (Margin)",WM,'
        '"WASTE MANAGEMENT INC",Margin,0,,USD,208.64,18,0,,,,-3755.44,11/18/2025'
    )
    ACTIONS: ClassVar[dict[str, str]] = {
        p: _describe(k) for p, k in _PREFIXES.items() if k.how not in ("ignore", "refuse")
    }
    IGNORED: ClassVar[dict[str, str]] = {
        **{p: k.why for p, k in _PREFIXES.items() if k.how == "ignore"},
        _CORE_REINVEST: _SWEEP,
    }

    def identify(self, source: Source) -> bool:
        """True when one of the first 10 non-blank records is a Fidelity history header."""
        return any(_is_header(r) for r in head_cells(source, 10))

    def extract(self, source: Source, context: Context) -> Extracted:
        """Every data row as a trade, an ignored sweep, or a RowError; footer text is skipped.

        Raises FileError when no header is found or a needed column is missing.
        """
        sheet = read_sheet(source, _is_header)
        if sheet is None:
            raise FileError(source.name, "no Fidelity header (expected a line starting Run Date,…,Action,Symbol)")
        columns = {c: next((n for n in names if n in sheet.header), names[0]) for c, names in _ALIASES.items()}
        missing_columns(
            source, sheet.header_line, sheet.header, [n for c, n in columns.items() if c not in _OPTIONAL]
        )
        match = _FILE_ACCOUNT.search(PurePath(source.name).name)
        default = f"Fidelity {match.group(1).upper()}" if match else "Fidelity"

        return extract_rows(source, sheet, lambda row: _row_trade(row, columns, _account(row, context, default)))


def _is_header(cells: list[str]) -> bool:
    return "Run Date" in cells and "Action" in cells and "Symbol" in cells


def _account(row: Row, context: Context, default: str) -> str:
    if context.account:
        return context.account
    named = row.get("Account Number") or row.get("Account")
    return f"Fidelity {named}" if named else default


def _kind(action: str) -> tuple[str, _Kind] | None:
    text = _SPACES.sub(" ", action.upper())
    for prefix in _ORDER:
        if text.startswith(prefix):
            return prefix, _PREFIXES[prefix]
    return None


def _row_trade(row: Row, columns: dict[str, str], account: str) -> Trade | str:
    """The trade one row stands for, or the IGNORED key it counts under. Raises Problem."""
    action_text = row.get(columns["Action"])
    found = _kind(action_text)
    if found is None:
        what = "is not handled by the fidelity adapter" if action_text else "is missing"
        raise problem(
            "Action", action_text, f"{what} (expected text starting with one of {', '.join(_HANDLED)})"
        )
    prefix, kind = found
    symbol = row.get(columns["Symbol"]).upper().rstrip("*")
    if kind.how == "ignore":
        return prefix
    if kind.how == "refuse":
        raise Problem(f"Action {action_text!r}: {kind.why}")
    if symbol.startswith("-"):  # Fidelity writes option symbols as -AAPL250117C200
        raise problem("Symbol", symbol, f"is an option: {_OPTIONS}")
    trade_date = date_cell(row, columns["Run Date"], _DATE_HINT)
    currency = (row.get("Currency") or "USD").upper()
    base: dict[str, Any] = {"line": row.line, "account": account, "trade_date": trade_date, "currency": currency}

    def amount(required: bool = True) -> Decimal | None:
        return row.number(columns["Amount"], _MONEY_HINT, required=required)

    def cash(kind_action: Action, value: Decimal, note: str | None = None) -> Trade:
        return Trade(
            **base, symbol=symbol or currency, asset_class=AssetClass.EQUITY if symbol else AssetClass.CASH,
            action=kind_action, amount=value, fee=abs(value) if kind_action is Action.FEE else Decimal(0),
            note=note,
        )

    if kind.how == "trade" and kind.action is not None:
        if kind.action is Action.REINVEST and symbol in _CORE:
            return _CORE_REINVEST
        if not symbol:
            raise problem("Symbol", symbol, f"is missing (expected the ticker or CUSIP the row {prefix.lower()})")
        fee = sum(
            (abs(row.number(columns[c], _MONEY_HINT, required=False) or Decimal(0)) for c in _OPTIONAL),
            Decimal(0),
        )
        return Trade(
            **base, symbol=symbol, action=kind.action,
            asset_class=AssetClass.BOND if prefix == "REDEMPTION PAYOUT" else AssetClass.EQUITY,
            quantity=abs(row.quantity(columns["Quantity"], _QTY_HINT)),
            price=row.price(columns["Price"], _PRICE_HINT, required=False),
            fee=fee, amount=amount(),
        )
    if kind.how == "cash" and kind.action is not None:
        return cash(kind.action, amount() or Decimal(0), prefix.title())
    if kind.how == "move":
        value = amount() or Decimal(0)
        return cash(Action.WITHDRAWAL if value < 0 else Action.DEPOSIT, value)
    if kind.how == "lieu":
        shares = row.number(columns["Quantity"], _QTY_HINT, required=False) or Decimal(0)
        return Trade(
            **base, symbol=symbol or currency, action=Action.CASH_IN_LIEU, quantity=abs(shares), amount=amount()
        )
    # shares moved in or out (a transfer, or one side of a split): the sign of Quantity says which
    shares = row.number(columns["Quantity"], _QTY_HINT, required=False) or Decimal(0)
    if shares == 0 and kind.action is Action.TRANSFER_IN:  # the cash leg of a transfer
        value = amount() or Decimal(0)
        return cash(Action.WITHDRAWAL if value < 0 else Action.DEPOSIT, value)
    if not symbol:
        raise problem("Symbol", symbol, "is missing (expected the ticker or CUSIP whose shares moved)")
    if shares == 0:
        raise problem(columns["Quantity"], row.get(columns["Quantity"]), f"is missing (expected {_QTY_HINT})")
    assert kind.action is not None and kind.out is not None  # every "shares" kind names both
    moved = kind.action if shares > 0 else kind.out
    note = None
    if moved is Action.TRANSFER_IN:
        note = "basis unknown"
    elif kind.action is Action.SPLIT_IN:
        note = action_text
    return Trade(
        **base, symbol=symbol, action=moved, quantity=abs(shares), amount=amount(required=False) or None, note=note
    )
