"""Charles Schwab brokerage transactions CSV (Accounts → History → Export).

Layout: an optional title row ``"Transactions  for account <name> ...XXX as of <when> ET"``,
the header ``"Date","Action","Symbol","Description","Quantity","Price","Fees & Comm","Amount"``,
the rows (newest first), and a footer ``"Transactions Total","",…,"-$1,574.04"``. The older
layout has Price before Quantity and a trailing empty column (with or without the trailing
comma on each row): columns are looked up by name.

Quirks this adapter handles:

- Dates are ``MM/DD/YYYY`` or ``MM/DD/YYYY as of MM/DD/YYYY``: the first is when Schwab
  posted the row, the second the effective date, which is the trade date (the posted date goes
  in the note). There are no times.
- Quantity is positive for Buy and Sell; Action gives the direction. Amount is signed from the
  account's point of view; money has ``$``, thousands separators and ``-$`` negatives.
- A reinvestment is two rows (Reinvest Dividend +cash, Reinvest Shares -cash +shares); a
  reverse split is two rows (new symbol +qty, old CUSIP -qty). Each row maps on its own.
- ``Cancel Buy`` reverses an earlier Buy with the same symbol, quantity and price: both drop.
- The export names the account only in the title row (or the file name): see ``_account``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from decimal import Decimal
from pathlib import PurePath
from typing import Any, ClassVar

from taxlens.errors import FileError, RowError
from taxlens.ingest.base import Context, Extracted, Source, missing_columns
from taxlens.ingest.frame import from_trades
from taxlens.ingest.rows import Problem, Row, head_records, problem, read_table
from taxlens.models import Action, AssetClass, Trade
from taxlens.money import D, NotANumber, plain

_KEY_COLUMNS = ("Date", "Action", "Symbol", "Description", "Fees & Comm")
_REQUIRED = [
    "Date", "Action", "Symbol", "Description", "Quantity", "Price", "Fees & Comm", "Amount",
]

_TRADES = {
    "Buy": Action.BUY,
    "Sell": Action.SELL,
    "Reinvest Shares": Action.REINVEST,
    "Sell Short": Action.SELL_SHORT,
    "Buy to Cover": Action.BUY_TO_COVER,
}
_CASH = {  # income, tax and fee rows: Amount is the whole story
    **dict.fromkeys(
        ("Qualified Dividend", "Cash Dividend", "Non-Qualified Div", "Special Non Qual Div",
         "Pr Yr Cash Div", "Reinvest Dividend", "Qual Div Reinvest", "Pr Yr Div Reinvest",
         "Long Term Cap Gain Reinvest", "Short Term Cap Gain"),
        Action.DIVIDEND,
    ),
    **dict.fromkeys(("Bank Interest", "Credit Interest", "Bond Interest"), Action.INTEREST),
    **dict.fromkeys(("Foreign Tax Paid", "NRA Tax Adj"), Action.WITHHOLDING),
    **dict.fromkeys(("Service Fee", "ADR Mgmt Fee", "Advisor Fee"), Action.FEE),
}
#: Cash in or out of the account; the sign of Amount says which (a "Journal" goes both ways).
_MOVES = (
    "MoneyLink Deposit", "Funds Received", "Wire Funds", "MoneyLink Transfer", "Journal",
    "Internal Transfer", "Wire Sent", "MoneyLink Adj",
)
#: Share movements; the sign of Quantity says which way.
_SHARES = {
    "Stock Split": (Action.SPLIT_IN, Action.SPLIT_OUT),
    "Reverse Split": (Action.SPLIT_IN, Action.SPLIT_OUT),
    "Journaled Shares": (Action.TRANSFER_IN, Action.TRANSFER_OUT),
    "Security Transfer": (Action.TRANSFER_IN, Action.TRANSFER_OUT),
}
#: Corporate actions whose basis effect the CSV doesn't give: refused, never skipped.
_CORPORATE = (
    "Stock Merger", "Name Change", "Conversion", "Spin-off", "Cash Merger", "Cash Merger Adj",
    "Stock Div Dist",
)
_KNOWN = [*_TRADES, *_CASH, *_MOVES, *_SHARES, "Cash In Lieu", "Cancel Buy"]

_DATE = re.compile(r"^(\d{1,2}/\d{1,2}/\d{4})(?:\s+as\s+of\s+(\d{1,2}/\d{1,2}/\d{4}))?$")
_TITLE = re.compile(r"^Transactions\s+for\s+account\s+(.+?)\s+as\s+of\s", re.IGNORECASE)
_FILE_ACCOUNT = re.compile(r"_XX(\d{3,4})_")
_FOOTER = "Transactions Total"
_DATE_HINT = 'MM/DD/YYYY or "MM/DD/YYYY as of MM/DD/YYYY"'
_QTY_HINT = "a number of shares such as 45 or 0.0249"
_MONEY_HINT = "an amount such as -$3,320.05"


class Schwab:
    """Schwab brokerage transactions CSV (current and older layouts)."""

    NAME: ClassVar[str] = "schwab"
    TITLE: ClassVar[str] = "Charles Schwab transactions CSV"
    IDENTIFIED_BY: ClassVar[str] = (
        'a header (first or second line) with "Date","Action","Symbol","Description" and "Fees & Comm"'
    )
    EXAMPLE: ClassVar[str] = (
        '"Date","Action","Symbol","Description","Quantity","Price","Fees & Comm","Amount"\n'
        '"04/18/2023","Sell","BND","VANGUARD TOTAL BOND MARKET ETF","10.065","$73.4049","$0.01","$738.81"'
    )
    ACTIONS: ClassVar[dict[str, str]] = {
        **{a: t.value for a, t in _TRADES.items()},
        **{a: t.value for a, t in _CASH.items()},
        **dict.fromkeys(_MOVES, "deposit or withdrawal (sign of Amount)"),
        **{a: f"{i.value} or {o.value} (sign of Quantity)" for a, (i, o) in _SHARES.items()},
        "Cash In Lieu": Action.CASH_IN_LIEU.value,
    }
    IGNORED: ClassVar[dict[str, str]] = {
        "Cancel Buy": "reverses a Buy with the same Symbol, Quantity and Price: both rows are dropped "
        "(counted here)",
    }

    def identify(self, source: Source) -> bool:
        """True when the first or second non-blank record is a Schwab header."""
        return any(_is_header(r) for r in head_records(source, 2))

    def extract(self, source: Source, context: Context) -> Extracted:
        """Every data row as a trade, a cancelled pair, or a RowError; the footer is checked.

        Raises FileError when no header is found or a needed column is missing.
        """
        table = read_table(source, _is_header, within=2)
        if table is None:
            raise FileError(
                source.name, 'no Schwab header (expected "Date","Action","Symbol","Description",…)'
            )
        missing_columns(source, table.header_line, table.header, _REQUIRED)
        account = context.account or _account(source.name, table.preamble)

        trades: list[Trade] = []
        errors: list[RowError] = []
        warnings: list[str] = []
        ignored: Counter[str] = Counter()
        cancels: list[tuple[Row, dt.date]] = []
        rows_read = 0
        total, total_ok = Decimal(0), True
        for row in table.rows():
            if isinstance(row, RowError):
                rows_read += 1
                total_ok = False  # its Amount can't be read, so the footer can't be checked
                errors.append(row)
                continue
            if row.get("Date") == _FOOTER:
                if total_ok and (warning := _check_footer(source.name, row, total)):
                    warnings.append(warning)
                continue
            rows_read += 1
            try:
                amount = row.number("Amount", _MONEY_HINT, required=False)
                total += amount or 0
            except Problem:
                total_ok = False  # the row's own error is reported below
            try:
                trade_date, posted = _dates(row)
                if row.get("Action") == "Cancel Buy":
                    cancels.append((row, trade_date))
                    continue
                trades.append(_trade(row, account, trade_date, posted))
            except Problem as exc:
                errors.append(RowError(source.name, row.line, str(exc)))

        for row, when in cancels:
            try:
                trades.remove(_cancelled(row, when, trades))
                ignored["Cancel Buy"] += 2
            except Problem as exc:
                errors.append(RowError(source.name, row.line, str(exc)))
        errors.sort(key=lambda e: e.line)
        return Extracted(
            trades=from_trades(trades), errors=errors, rows_read=rows_read,
            ignored=ignored, warnings=warnings,
        )


def _is_header(fields: list[str]) -> bool:
    return all(c in fields for c in _KEY_COLUMNS)


def _account(name: str, preamble: list[list[str]]) -> str:
    """The account name: from the title row, else the file name's ``_XX876_``, else "Schwab"."""
    for record in preamble:
        match = _TITLE.match(record[0]) if record else None
        if match:
            return f"Schwab {match.group(1).strip()}"
    match = _FILE_ACCOUNT.search(PurePath(name).name)
    return f"Schwab ...{match.group(1)}" if match else "Schwab"


def _dates(row: Row) -> tuple[dt.date, dt.date | None]:
    """(trade date, posted date or None): the "as of" date is the effective, trade date."""
    text = row.get("Date")
    match = _DATE.match(text)
    if match is None:
        raise problem("Date", text, f"is not a date (expected {_DATE_HINT})")
    posted, effective = match.groups()
    try:
        first = dt.datetime.strptime(posted, "%m/%d/%Y").date()
        as_of = dt.datetime.strptime(effective, "%m/%d/%Y").date() if effective else None
    except ValueError as exc:  # the right shape but no such day, e.g. 02/30/2024
        raise problem("Date", text, f"is not a date (expected {_DATE_HINT})") from exc
    return (as_of, first) if as_of is not None else (first, None)


def _trade(row: Row, account: str, trade_date: dt.date, posted: dt.date | None) -> Trade:
    """The one trade a (non-cancel) row stands for. Raises Problem for a bad cell or action."""
    action = row.get("Action")
    symbol = row.get("Symbol").upper()
    notes = [f"posted {posted:%m/%d/%Y}"] if posted else []
    base: dict[str, Any] = {
        "line": row.line, "account": account, "trade_date": trade_date, "currency": "USD",
    }

    def done(**fields: Any) -> Trade:
        return Trade(**base, **fields, note="; ".join(notes) or None)

    if action in _TRADES:
        if not symbol:
            raise problem("Symbol", symbol, f"is missing (expected the ticker {action} traded)")
        quantity = row.quantity("Quantity", _QTY_HINT)
        if quantity < 0:
            raise problem(
                "Quantity", row.get("Quantity"),
                "is negative (expected a positive number; Action gives the direction)",
            )
        return done(
            symbol=symbol, action=_TRADES[action], quantity=quantity,
            price=row.price("Price", "a price such as $73.7789"),
            fee=abs(row.number("Fees & Comm", _MONEY_HINT, required=False) or Decimal(0)),
            amount=row.number("Amount", _MONEY_HINT),
        )
    if action in _CASH:
        amount = row.number("Amount", _MONEY_HINT) or Decimal(0)
        kind = _CASH[action]
        notes.insert(0, action)  # qualified vs not, capital-gain distributions: the 1099 cares
        fee = abs(amount) if kind is Action.FEE else Decimal(0)
        return done(
            symbol=symbol or "USD", asset_class=_class(symbol), action=kind, amount=amount, fee=fee
        )
    if action in _MOVES:
        amount = row.number("Amount", _MONEY_HINT) or Decimal(0)
        kind = Action.WITHDRAWAL if amount < 0 else Action.DEPOSIT
        return done(symbol="USD", asset_class=AssetClass.CASH, action=kind, amount=amount)
    if action in _SHARES:
        cash_only = not row.get("Quantity") and row.get("Amount")
        if cash_only and action in ("Journaled Shares", "Security Transfer"):
            # A transfer of cash alone (the cash leg of an ACAT): a deposit or withdrawal.
            amount = row.number("Amount", _MONEY_HINT) or Decimal(0)
            kind = Action.WITHDRAWAL if amount < 0 else Action.DEPOSIT
            return done(symbol="USD", asset_class=AssetClass.CASH, action=kind, amount=amount)
        if not symbol:
            raise problem(
                "Symbol", symbol, "is missing (expected the ticker or CUSIP whose shares moved)"
            )
        quantity = row.quantity("Quantity", "a signed number of shares such as 300 or -1")
        if action == "Reverse Split":
            notes.append(row.get("Description"))
        into, out_of = _SHARES[action]
        return done(
            symbol=symbol, action=into if quantity > 0 else out_of, quantity=abs(quantity),
            price=row.price("Price", "a price such as $73.7789", required=False),
            amount=row.number("Amount", _MONEY_HINT, required=False),
        )
    if action == "Cash In Lieu":
        shares = row.number("Quantity", _QTY_HINT, required=False)
        return done(
            symbol=symbol or "USD", asset_class=_class(symbol), action=Action.CASH_IN_LIEU,
            quantity=abs(shares or Decimal(0)), amount=row.number("Amount", _MONEY_HINT),
        )
    if action in _CORPORATE:
        raise Problem(
            f"corporate action {action!r} is not supported yet (add it as trades in the generic CSV)"
        )
    what = "is not handled by the schwab adapter" if action else "is missing"
    raise problem("Action", action, f"{what} (expected one of {', '.join(_KNOWN)})")


def _class(symbol: str) -> AssetClass:
    """Cash rows without a symbol are filed under USD as cash; the rest are equity (the CSV
    can't tell an ETF or a fund from a stock)."""
    return AssetClass.EQUITY if symbol else AssetClass.CASH


def _cancelled(row: Row, when: dt.date, trades: list[Trade]) -> Trade:
    """The Buy a Cancel Buy row reverses: same symbol, quantity and price, nearest on or before
    its date (else nearest after). Raises Problem when there is none."""
    symbol = row.get("Symbol").upper()
    quantity = row.quantity("Quantity", _QTY_HINT)
    price = row.price("Price", "a price such as $73.7789")
    candidates = [
        t for t in trades
        if t.action is Action.BUY and (t.symbol, t.quantity, t.price) == (symbol, abs(quantity), price)
    ]
    if not candidates:
        raise Problem(
            f"Action 'Cancel Buy' has no Buy of {plain(abs(quantity))} {symbol} at ${plain(price)} "
            "to cancel (expected a Buy row with the same Symbol, Quantity and Price in this file)"
        )
    return min(candidates, key=lambda t: (t.trade_date > when, abs((t.trade_date - when).days)))


def _check_footer(path: str, row: Row, total: Decimal) -> str | None:
    """A warning when the footer's total differs from the sum of Amount; None when it agrees."""
    text = row.get("Amount")
    try:
        stated = D(text)
    except NotANumber:
        return (
            f"{path}:{row.line}: Amount {text!r} in the {_FOOTER} row is not a number; "
            "the total was not checked"
        )
    if stated == total:
        return None
    return (
        f"{path}:{row.line}: {_FOOTER} {text} differs from the sum of the Amount column "
        f"({plain(total)}): the export may be missing rows"
    )
