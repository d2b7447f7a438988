"""Vanguard brokerage CSV download (``OfxDownload.csv``).

Layout: two CSVs in one file. First the positions::

    Account Number,Investment Name,Symbol,Shares,Share Price,Total Value,

then blank line(s) and the transactions::

    Account Number,Trade Date,Settlement Date,Transaction Type,Transaction Description,
    Investment Name,Symbol,Shares,Share Price,Principal Amount,Commissions and Fees,Net Amount,
    Accrued Interest,Account Type,

Quirks this adapter handles:

- Only the transactions section is read (positions are a snapshot, not events); the header is
  searched for anywhere in the file, after any number of position rows.
- A trailing comma on every line (15 fields, the last empty).
- Dates are ISO ``YYYY-MM-DD`` (the older layout's ``MM/DD/YYYY`` is accepted too).
- Shares are negative on sells; Net Amount is signed (negative = cash out). Quantities are
  stored positive and Transaction Type gives the direction.
- Sweeps into and out of the settlement money-market fund are ignored: the cash stays the
  user's. Funds Received and Withdrawal are cash moves.
- ``Stock split`` adds (or removes, if Shares is negative) shares: split_in/split_out.
  Share-class conversions, exchanges and other corporate actions need a basis allocation the
  file doesn't give: row errors, never booked silently.
- The older csv2txf-style layout (quoted ``"Trade Date","Transaction Type","Investment Name",
  "Symbol","Shares","Principal Amount","Net Amount"``, no account column) reads the same way.
- Account: ``--account``, else ``Vanguard <Account Number>``, else "Vanguard".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from taxlens.errors import FileError
from taxlens.ingest.base import Context, Extracted, Source, missing_columns
from taxlens.ingest.brokercsv import date_cell, extract_rows, head_cells, read_sheet
from taxlens.ingest.rows import Problem, Row, problem
from taxlens.models import Action, AssetClass, Trade

_KEY = ("Trade Date", "Transaction Type", "Investment Name", "Symbol", "Shares")
_POSITIONS = ["Account Number", "Investment Name", "Symbol", "Shares", "Share Price", "Total Value"]
_REQUIRED = ["Trade Date", "Transaction Type", "Investment Name", "Symbol", "Shares", "Net Amount"]

_TRADES = {
    "Buy": Action.BUY,
    "Sell": Action.SELL,
    "Reinvestment": Action.REINVEST,
    "Reinvestment (LT gain)": Action.REINVEST,
    "Reinvestment (ST gain)": Action.REINVEST,
    "Short sale": Action.SELL_SHORT,
    "Buy to cover": Action.BUY_TO_COVER,
}
_CASH = {
    "Dividend": Action.DIVIDEND,
    "Capital gain (LT)": Action.DIVIDEND,
    "Capital gain (ST)": Action.DIVIDEND,
    "Interest": Action.INTEREST,
    "Fee": Action.FEE,
    "Foreign tax withholding": Action.WITHHOLDING,
    "Tax withholding": Action.WITHHOLDING,
}
_MOVES = ("Funds Received", "Withdrawal", "Deposit", "Wire transfer", "Electronic transfer")
_SHARES = {
    "Transfer (incoming)": (Action.TRANSFER_IN, Action.TRANSFER_OUT),
    "Transfer (outgoing)": (Action.TRANSFER_IN, Action.TRANSFER_OUT),
    "Stock split": (Action.SPLIT_IN, Action.SPLIT_OUT),
}
_BASIS = "needs a basis allocation the file doesn't give: enter it by hand (generic CSV or opening lots)"
_CORPORATE = (
    "Conversion (incoming)", "Conversion (outgoing)", "Exchange (incoming)", "Exchange (outgoing)",
    "Corp Action (Redemption)", "Corp Action (Exchange)", "Corp Action (Spin-off)", "Corp Action (Merger)",
    "Return of capital",
)
_IGNORED = {
    "Sweep in": "cash swept into the settlement fund: it stays the user's cash",
    "Sweep out": "cash swept out of the settlement fund: it stays the user's cash",
}
_KNOWN = [*_TRADES, *_CASH, *_MOVES, *_SHARES, *_IGNORED]
_DATE_HINT = "YYYY-MM-DD such as 2024-07-19"
_QTY_HINT = "a number of shares such as 5.00000 or -2.5"
_MONEY_HINT = "an amount such as -2389.05"


class Vanguard:
    """Vanguard brokerage CSV download (positions, then transactions)."""

    NAME: ClassVar[str] = "vanguard"
    TITLE: ClassVar[str] = "Vanguard transactions CSV (OfxDownload.csv)"
    IDENTIFIED_BY: ClassVar[str] = (
        "a first line Account Number,Investment Name,Symbol,Shares,Share Price,Total Value, or a "
        "header with Trade Date, Transaction Type, Investment Name, Symbol and Shares"
    )
    EXAMPLE: ClassVar[str] = (
        "Account Number,Trade Date,Settlement Date,Transaction Type,Transaction Description,Investment Name,"
        "Symbol,Shares,Share Price,Principal Amount,Commissions and Fees,Net Amount,Accrued Interest,Account Type,\n"
        "68411173,2024-07-19,2024-07-22,Buy,Buy,INVESCO QQQ ETF,QQQ,5.00000,477.81,-2389.05,0.0,-2389.05,0.0,CASH,"
    )
    ACTIONS: ClassVar[dict[str, str]] = {
        **{t: a.value for t, a in _TRADES.items()},
        **{t: a.value for t, a in _CASH.items()},
        **dict.fromkeys(_MOVES, "deposit or withdrawal (sign of Net Amount)"),
        **{t: f"{i.value} or {o.value} (sign of Shares; deposit or withdrawal when no shares)"
           for t, (i, o) in _SHARES.items()},
    }
    IGNORED: ClassVar[dict[str, str]] = dict(_IGNORED)

    def identify(self, source: Source) -> bool:
        """True for a positions header first, or a transactions header in the file's head."""
        records = head_cells(source, 200)
        if records and records[0][:6] == _POSITIONS:
            return True
        return any(_is_header(r) for r in records)

    def extract(self, source: Source, context: Context) -> Extracted:
        """Every transaction row as a trade, an ignored sweep, or a RowError.

        Raises FileError when there is no transactions section or a needed column is missing.
        """
        sheet = read_sheet(source, _is_header, within=None)
        if sheet is None:
            raise FileError(
                source.name,
                "no Vanguard transactions section (expected a line Account Number,Trade Date,Settlement Date,"
                "Transaction Type,…)",
            )
        missing_columns(source, sheet.header_line, sheet.header, _REQUIRED)
        def to_trade(row: Row) -> Trade | str:
            kind = row.get("Transaction Type")
            return kind if kind in _IGNORED else _trade(row, kind, context)

        return extract_rows(source, sheet, to_trade)


def _is_header(cells: list[str]) -> bool:
    return all(c in cells for c in _KEY)


def _trade(row: Row, kind: str, context: Context) -> Trade:
    """The trade one transaction row stands for. Raises Problem for a bad cell or type."""
    if kind in _CORPORATE:
        raise Problem(f"Transaction Type {kind!r}: this corporate action {_BASIS}")
    if kind not in _KNOWN:
        what = "is not handled by the vanguard adapter" if kind else "is missing"
        raise problem("Transaction Type", kind, f"{what} (expected one of {', '.join(_KNOWN)})")
    number = row.get("Account Number")
    account = context.account or (f"Vanguard {number}" if number else "Vanguard")
    symbol = row.get("Symbol").upper()
    base: dict[str, Any] = {
        "line": row.line, "account": account, "trade_date": date_cell(row, "Trade Date", _DATE_HINT),
    }

    def amount(required: bool = True) -> Decimal | None:
        return row.number("Net Amount", _MONEY_HINT, required=required)

    def cash(action: Action, value: Decimal, note: str | None = None) -> Trade:
        return Trade(
            **base, symbol=symbol or "USD", asset_class=AssetClass.EQUITY if symbol else AssetClass.CASH,
            action=action, amount=value, fee=abs(value) if action is Action.FEE else Decimal(0), note=note,
        )

    if kind in _TRADES:
        if not symbol:
            raise problem("Symbol", symbol, f"is missing (expected the ticker of the {kind})")
        return Trade(
            **base, symbol=symbol, action=_TRADES[kind],
            quantity=abs(row.quantity("Shares", _QTY_HINT)),
            price=row.price("Share Price", "a price such as 477.81", required=False),
            fee=abs(row.number("Commissions and Fees", _MONEY_HINT, required=False) or Decimal(0)),
            amount=amount(),
        )
    if kind in _CASH:
        return cash(_CASH[kind], amount() or Decimal(0), kind if _CASH[kind] is Action.DIVIDEND else None)
    if kind in _MOVES:
        value = amount() or Decimal(0)
        return cash(Action.WITHDRAWAL if value < 0 else Action.DEPOSIT, value)
    into, out_of = _SHARES[kind]
    shares = row.number("Shares", _QTY_HINT, required=False) or Decimal(0)
    if shares == 0 and into is Action.TRANSFER_IN:  # cash transferred, no shares
        value = amount() or Decimal(0)
        return cash(Action.WITHDRAWAL if value < 0 else Action.DEPOSIT, value)
    if not symbol:
        raise problem("Symbol", symbol, "is missing (expected the ticker whose shares moved)")
    if shares == 0:
        raise problem("Shares", row.get("Shares"), f"is missing or zero (expected {_QTY_HINT})")
    if kind == "Transfer (outgoing)":
        shares = -abs(shares)  # the type says out, whatever the sign
    elif kind == "Transfer (incoming)":
        shares = abs(shares)
    moved = into if shares > 0 else out_of
    return Trade(
        **base, symbol=symbol, action=moved, quantity=abs(shares),
        note="basis unknown" if moved is Action.TRANSFER_IN else row.get("Transaction Description") or None,
    )
