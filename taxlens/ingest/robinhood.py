"""Robinhood CSVs: the account activity report (equities) and the crypto order history.

**Activity report** (Account → Reports and statements → Activity reports)::

    "Activity Date","Process Date","Settle Date","Instrument","Description","Trans Code","Quantity","Price","Amount"

- ``Description`` spans several lines inside quotes (name, ``CUSIP: …``, notes): the file is
  read as real CSV, and a row's line is the physical line it starts on.
- Money is ``$1,234.50`` or ``($18,740.00)`` for a negative; Quantity is unsigned, may be
  fractional, and has an ``S`` suffix on stock events (``18S``).
- Dates are ``M/D/YYYY`` with no time; Activity Date is the trade date.
- There is no fee column: fees are netted into Amount, which is kept as the cash effect.
- The file ends with a one-cell disclaimer, skipped as footer text.
- ``Trans Code`` drives the action (see ACTIONS). ``SPL`` (a split) adds the shares it lists,
  or removes them when the quantity is negative; a reverse split (``SPR``), spin-off (``SOFF``),
  stock dividend (``SDIV``) or merger needs a basis allocation the file doesn't give, and options
  aren't booked by taxlens yet: those rows are row errors, never silently booked.

**Crypto order history** (Robinhood Crypto)::

    UUID,Time Entered,Symbol,Side,Quantity,State,Order Type,Leaves Quantity,Entered Price,Average Price,Notional

- Only ``Filled`` orders are trades; canceled, rejected and failed orders with nothing filled
  are ignored. An order in another state that was partly filled (Leaves Quantity below
  Quantity) is a row error: the file doesn't give the filled part's notional.
- ``Time Entered`` is ``MM/DD/YYYY, HH:MM:SS`` in US/Eastern (the footer says "Report generated
  … EST"); it is when the order was placed, which for a limit order can be before the fill.
- Money has trailing spaces; a negative Notional is in parentheses (cash paid for a buy).
  Leaves Quantity is in scientific notation (``0.00E+00``). The footer disclaimer is skipped.
- UUID is kept as broker_trade_id. Redacted exports repeat one placeholder: harmless within a
  file, but the store keeps a broker id once per account across files, so a second redacted
  file in the same account would be taken for the same trades (and said so on import).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from taxlens.errors import FileError
from taxlens.ingest.base import Context, Extracted, Source, missing_columns
from taxlens.ingest.brokercsv import date_cell, extract_rows, head_cells, read_sheet
from taxlens.ingest.rows import Problem, Row, problem
from taxlens.models import Action, AssetClass, Trade
from taxlens.money import D, NotANumber, fits

# -- equity activity report ------------------------------------------------------------------

_EQUITY_KEY = ("Activity Date", "Process Date", "Settle Date", "Trans Code")
_EQUITY_REQUIRED = [
    "Activity Date", "Process Date", "Settle Date", "Instrument", "Description", "Trans Code",
    "Quantity", "Price", "Amount",
]
_TRADES = {"Buy": Action.BUY, "Sell": Action.SELL}
_CASH = {
    "CDIV": Action.DIVIDEND,
    "INT": Action.INTEREST,
    "SLIP": Action.INTEREST,  # stock-lending income: cash, taxed as ordinary income
    "NRAT": Action.WITHHOLDING,
    "DTAX": Action.WITHHOLDING,
    "GOLD": Action.FEE,
    "AFEE": Action.FEE,
    "DFEE": Action.FEE,
}
_NOTES = {"SLIP": "stock lending income", "NRAT": "NRA tax withheld", "DTAX": "dividend tax withheld",
          "GOLD": "Robinhood Gold fee", "AFEE": "ADR fee", "DFEE": "fee"}
_MOVES = ("ACH", "RTP")  # cash in or out: the sign of Amount says which
_OPTIONS = "options are not supported by taxlens yet (enter the trades by hand)"
_BASIS = "needs a basis allocation the file doesn't give: enter it by hand (generic CSV or opening lots)"
#: Trans codes with a tax effect this adapter can't book: row errors, so nothing vanishes.
UNSUPPORTED: dict[str, str] = {
    **dict.fromkeys(("BTO", "STC", "STO", "BTC", "OEXP", "OASGN", "OEXCS"), _OPTIONS),
    "SPR": "a reverse split's rows don't say which shares were removed and which added: "
    "enter it by hand (split_in/split_out in the generic CSV)",
    "SOFF": f"a spin-off {_BASIS}",
    "SDIV": f"a stock dividend {_BASIS}",
    "MRGC": f"a merger {_BASIS}",
    "MRGS": f"a merger {_BASIS}",
}
_EQUITY_CODES = [*_TRADES, *_CASH, *_MOVES, "SPL", "CIL", "REC"]
_DATE_HINT = "M/D/YYYY such as 3/2/2026"
_QTY_HINT = "a number of shares such as 100, 0.5 or 18S"
_MONEY_HINT = "an amount such as $0.13 or ($18,740.00)"


class Robinhood:
    """Robinhood account activity report CSV (equities)."""

    NAME: ClassVar[str] = "robinhood"
    TITLE: ClassVar[str] = "Robinhood account activity report CSV"
    IDENTIFIED_BY: ClassVar[str] = (
        'a first line with "Activity Date","Process Date","Settle Date" and "Trans Code"'
    )
    EXAMPLE: ClassVar[str] = (
        '"Activity Date","Process Date","Settle Date","Instrument","Description","Trans Code","Quantity","Price","Amount"\n'
        '"3/2/2026","3/2/2026","3/4/2026","AAPL","Apple\nCUSIP: 037833100","Buy","100","$187.40","($18,740.00)"'
    )
    ACTIONS: ClassVar[dict[str, str]] = {
        **{c: a.value for c, a in _TRADES.items()},
        **{c: a.value for c, a in _CASH.items()},
        **dict.fromkeys(_MOVES, "deposit or withdrawal (sign of Amount)"),
        "SPL": "split_in or split_out (sign of Quantity)",
        "CIL": Action.CASH_IN_LIEU.value,
        "REC": "transfer_in (basis unknown); deposit when only cash is received",
    }
    IGNORED: ClassVar[dict[str, str]] = {}

    def identify(self, source: Source) -> bool:
        """True when the first non-blank record is an activity-report header."""
        return any(_is_equity_header(r) for r in head_cells(source, 1))

    def extract(self, source: Source, context: Context) -> Extracted:
        """Every data row as a trade or a RowError; the disclaimer footer is skipped.

        Raises FileError when no header is found or a needed column is missing.
        """
        sheet = read_sheet(source, _is_equity_header, within=1)
        if sheet is None:
            raise FileError(source.name, 'no Robinhood header (expected "Activity Date","Process Date",…)')
        missing_columns(source, sheet.header_line, sheet.header, _EQUITY_REQUIRED)
        account = context.account or "Robinhood"
        return extract_rows(source, sheet, lambda row: _equity_trade(row, account))


def _is_equity_header(cells: list[str]) -> bool:
    return all(c in cells for c in _EQUITY_KEY)


def _shares(row: Row, *, required: bool) -> Decimal | None:
    """Quantity as a Decimal, sign kept; the ``S`` suffix of stock events (``18S``) dropped."""
    text = row.get("Quantity")
    if not text:
        if required:
            raise problem("Quantity", text, f"is missing (expected {_QTY_HINT})")
        return None
    try:
        value = D(text[:-1] if text[-1:] in "Ss" else text)
    except NotANumber as exc:
        raise problem("Quantity", text, f"is not a number (expected {_QTY_HINT})") from exc
    if fits(value) is not None:
        raise problem("Quantity", text, f"{fits(value)} (expected {_QTY_HINT})")
    if required and value == 0:
        raise problem("Quantity", text, f"is zero (expected {_QTY_HINT})")
    return value


def _equity_trade(row: Row, account: str) -> Trade:
    """The trade one activity row stands for. Raises Problem for a bad cell or trans code."""
    code = row.get("Trans Code")
    if code in UNSUPPORTED:
        raise Problem(f"Trans Code {code!r}: {UNSUPPORTED[code]}")
    if code not in _EQUITY_CODES:
        what = "is not handled by the robinhood adapter" if code else "is missing"
        raise problem("Trans Code", code, f"{what} (expected one of {', '.join(_EQUITY_CODES)})")
    symbol = row.get("Instrument").upper()
    base: dict[str, Any] = {
        "line": row.line, "account": account, "trade_date": date_cell(row, "Activity Date", _DATE_HINT),
    }

    def cash(action: Action, amount: Decimal, note: str | None = None) -> Trade:
        return Trade(
            **base, symbol=symbol or "USD", asset_class=AssetClass.EQUITY if symbol else AssetClass.CASH,
            action=action, amount=amount, fee=abs(amount) if action is Action.FEE else Decimal(0), note=note,
        )

    if code in _TRADES:
        if not symbol:
            raise problem("Instrument", symbol, f"is missing (expected the ticker of the {code})")
        shares = _shares(row, required=True) or Decimal(0)
        if shares < 0:
            raise problem("Quantity", row.get("Quantity"), "is negative (expected a positive number; Trans Code gives the direction)")
        return Trade(
            **base, symbol=symbol, action=_TRADES[code], quantity=shares,
            price=row.price("Price", "a price such as $187.40"), amount=row.number("Amount", _MONEY_HINT),
        )
    if code in _CASH:
        return cash(_CASH[code], row.number("Amount", _MONEY_HINT) or Decimal(0), _NOTES.get(code))
    if code in _MOVES:
        amount = row.number("Amount", _MONEY_HINT) or Decimal(0)
        return cash(Action.WITHDRAWAL if amount < 0 else Action.DEPOSIT, amount)
    if code == "CIL":
        shares = _shares(row, required=False) or Decimal(0)
        return Trade(
            **base, symbol=symbol or "USD", action=Action.CASH_IN_LIEU, quantity=abs(shares),
            amount=row.number("Amount", _MONEY_HINT),
        )
    if code == "REC" and not row.get("Quantity"):
        amount = row.number("Amount", _MONEY_HINT) or Decimal(0)
        return cash(Action.WITHDRAWAL if amount < 0 else Action.DEPOSIT, amount)
    if not symbol:
        raise problem("Instrument", symbol, "is missing (expected the ticker whose shares moved)")
    shares = _shares(row, required=True) or Decimal(0)
    first_line = row.get("Description").splitlines()[0] if row.get("Description") else None
    if code == "REC":
        if shares < 0:
            raise problem("Quantity", row.get("Quantity"), "is negative (expected the shares received)")
        return Trade(
            **base, symbol=symbol, action=Action.TRANSFER_IN, quantity=shares,
            price=row.price("Price", "a price such as $187.40", required=False), note="basis unknown",
        )
    return Trade(  # SPL
        **base, symbol=symbol, action=Action.SPLIT_IN if shares > 0 else Action.SPLIT_OUT,
        quantity=abs(shares), note=first_line,
    )


# -- crypto order history --------------------------------------------------------------------

_CRYPTO_KEY = ["UUID", "Time Entered", "Symbol", "Side"]
_CRYPTO_REQUIRED = [
    "UUID", "Time Entered", "Symbol", "Side", "Quantity", "State", "Leaves Quantity", "Average Price", "Notional",
]
_SIDES = {"Buy": Action.BUY, "Sell": Action.SELL}
_NOT_FILLED = ("Canceled", "Cancelled", "Rejected", "Failed", "Expired")
_OPEN = ("Confirmed", "Queued", "Pending", "Unconfirmed", "Placed")
_EASTERN = ZoneInfo("America/New_York")
_TIME = re.compile(r"^(\d{1,2}/\d{1,2}/\d{4}),?\s+(\d{1,2}:\d{2}(?::\d{2})?)$")
_TIME_HINT = '"MM/DD/YYYY, HH:MM:SS" such as "12/01/2023, 12:34:56"'
_COIN_HINT = "a quantity such as 0.00010449"
_CRYPTO_MONEY = "an amount such as $1.29 or ($3.00)"


class RobinhoodCrypto:
    """Robinhood Crypto order history CSV."""

    NAME: ClassVar[str] = "robinhood-crypto"
    TITLE: ClassVar[str] = "Robinhood Crypto order history CSV"
    IDENTIFIED_BY: ClassVar[str] = "a first line starting UUID,Time Entered,Symbol,Side"
    EXAMPLE: ClassVar[str] = (
        "UUID,Time Entered,Symbol,Side,Quantity,State,Order Type,Leaves Quantity,Entered Price,Average Price,Notional\n"
        '3f1c…,"12/01/2023, 12:34:56",BTC,Sell,0.00010449,Filled,Limit,0.00E+00,"$12,345.00 ","$12,345.67 ",$1.29'
    )
    ACTIONS: ClassVar[dict[str, str]] = {
        "Buy (State Filled)": Action.BUY.value,
        "Sell (State Filled)": Action.SELL.value,
    }
    IGNORED: ClassVar[dict[str, str]] = {
        **{f"State {s}": "the order did not fill (nothing filled: Leaves Quantity equals Quantity)" for s in _NOT_FILLED},
        **{f"State {s}": "the order was still open when exported: nothing has filled" for s in _OPEN},
    }

    def identify(self, source: Source) -> bool:
        """True when the first non-blank record starts like the crypto order-history header."""
        return any(r[:4] == _CRYPTO_KEY for r in head_cells(source, 1))

    def extract(self, source: Source, context: Context) -> Extracted:
        """Every filled order as a trade; unfilled orders ignored; bad rows as RowErrors.

        Raises FileError when no header is found or a needed column is missing.
        """
        sheet = read_sheet(source, lambda r: r[:4] == _CRYPTO_KEY, within=1)
        if sheet is None:
            raise FileError(source.name, "no Robinhood Crypto header (expected a line starting UUID,Time Entered,Symbol,Side)")
        missing_columns(source, sheet.header_line, sheet.header, _CRYPTO_REQUIRED)
        account = context.account or "Robinhood Crypto"
        return extract_rows(source, sheet, lambda row: _crypto_trade(row, account, context))


def _crypto_trade(row: Row, account: str, context: Context) -> Trade | str:
    """The trade a filled order stands for, or the IGNORED key of an unfilled one."""
    state = row.get("State")
    quantity = row.quantity("Quantity", _COIN_HINT)
    if quantity < 0:
        raise problem("Quantity", row.get("Quantity"), f"is negative (expected {_COIN_HINT}; Side gives the direction)")
    leaves = row.number("Leaves Quantity", _COIN_HINT, required=False) or Decimal(0)
    if state != "Filled":
        if state not in (*_NOT_FILLED, *_OPEN):
            states = ", ".join(("Filled", *_NOT_FILLED, *_OPEN))
            raise problem("State", state, f"{'is not known' if state else 'is missing'} (expected one of {states})")
        if row.get("Leaves Quantity") and leaves < quantity:
            raise Problem(
                f"State {state!r} with Leaves Quantity {row.get('Leaves Quantity')} of {row.get('Quantity')}: "
                "the order partly filled and the file doesn't give the filled part's notional (enter it by hand)"
            )
        return f"State {state}"
    if leaves != 0:
        raise problem("Leaves Quantity", row.get("Leaves Quantity"), "is not zero on a Filled order (expected 0.00E+00)")
    side = row.get("Side")
    if side not in _SIDES:
        raise problem("Side", side, f"{'is not Buy or Sell' if side else 'is missing'} (expected Buy or Sell)")
    symbol = row.get("Symbol").upper()
    if not symbol:
        raise problem("Symbol", symbol, "is missing (expected a coin such as BTC)")
    when = _entered(row)
    action = _SIDES[side]
    notional = abs(row.number("Notional", _CRYPTO_MONEY) or Decimal(0))
    return Trade(
        line=row.line, account=account, symbol=symbol, asset_class=AssetClass.CRYPTO, action=action,
        timestamp=when, trade_date=when.astimezone(context.timezone).date(), quantity=quantity,
        price=row.price("Average Price", _CRYPTO_MONEY), currency="USD",
        amount=-notional if action is Action.BUY else notional,
        broker_trade_id=row.get("UUID") or None,
    )


def _entered(row: Row) -> dt.datetime:
    """Time Entered as an aware instant (the export's times are US/Eastern)."""
    text = row.get("Time Entered")
    match = _TIME.match(text)
    try:
        if match is None:
            raise ValueError(text)
        clock = match.group(2) if match.group(2).count(":") == 2 else match.group(2) + ":00"
        naive = dt.datetime.strptime(f"{match.group(1)} {clock}", "%m/%d/%Y %H:%M:%S")
    except ValueError as exc:
        what = "is not a date and time" if text else "is missing"
        raise problem("Time Entered", text, f"{what} (expected {_TIME_HINT})") from exc
    return naive.replace(tzinfo=_EASTERN)
