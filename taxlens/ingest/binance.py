"""Binance "Transaction History" statement CSV (Orders → Transaction History → Generate all
statements), the export Binance gives for tax.

Layout: one row per balance change::

    User_ID,UTC_Time,Account,Operation,Coin,Change,Remark

Older statements have no ``User_ID``; some rows have no ``Remark`` field at all (6 fields), and
both read the same way. ``Change`` is signed and may be in scientific notation (``-9.009E-05``).

Quirks this adapter handles:

- A trade is several rows with the same ``UTC_Time`` and ``Account``: the legs (``Buy``/``Sell``,
  or ``Transaction Buy``/``Spend``/``Sold``/``Revenue``) and separate fee rows (``Fee``,
  ``Transaction Fee``), often in BNB. Many fills in one second come as dozens of rows. The rows
  of a second are summed per coin, which must leave one coin spent and one received; they
  become one buy or sell (coin for coin: a sale and a buy, see ``exchange.swap``). A fee in the
  spent or received coin is folded into it; a fee in a third coin (BNB) is a separate fee,
  a disposal of that coin.
- ``Binance Convert`` is two rows (spent, received) handled the same way, as is ``Small assets
  exchange BNB`` when it converts one coin; a dust conversion of several coins at once is a row
  error, since nothing says how the BNB received divides between them.
- ``Deposit``/``Withdraw`` of fiat are cash; of a coin, transfers (a transfer in has no known
  basis). Earn, staking, savings, launchpool and airdrop payouts are income (interest in fiat).
- Moves between the user's own Binance wallets (Spot, Funding, Earn, Futures) are ignored.
- Futures, margin and card operations (``Funding Fee``, ``Realized Profit and Loss``, …) are not
  supported: they are row errors, like any operation not listed here.

Names are matched without regard to case: Binance has changed the capitals between years.
Every row is one account, ``Binance`` (or ``--account``): the wallets are the user's own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Context as DecimalContext
from decimal import Decimal, localcontext
from typing import Any, ClassVar

from taxlens.errors import FileError, RowError
from taxlens.ingest.base import Context, Extracted, Source, missing_columns
from taxlens.ingest.exchange import FIAT, Sheet, fee_paid, find_header, instant, make, swap
from taxlens.ingest.frame import from_trades
from taxlens.ingest.rows import Problem, Row, head_records, problem
from taxlens.models import Action, AssetClass, Trade
from taxlens.money import PRECISION

_KEY = frozenset({"UTC_Time", "Account", "Operation", "Coin", "Change"})
_COLUMNS = ["UTC_Time", "Account", "Operation", "Coin", "Change"]

_LEGS = ("Buy", "Sell", "Transaction Buy", "Transaction Spend", "Transaction Sold", "Transaction Revenue", "Large OTC Trading")
_FEES = ("Fee", "Transaction Fee")
_CONVERT = "Binance Convert"
_DUST = "Small Assets Exchange BNB"
_DEPOSITS = ("Deposit", "Fiat Deposit")
_WITHDRAWALS = ("Withdraw", "Fiat Withdraw", "Fiat Withdrawal")
_INCOME = (
    "Distribution", "Airdrop Assets", "Staking Rewards", "ETH 2.0 Staking Rewards", "POS Savings Interest",
    "Savings Interest", "Simple Earn Flexible Interest", "Simple Earn Locked Rewards", "Launchpool Interest",
    "Launchpool Airdrop", "BNB Vault Rewards", "Cash Voucher Distribution", "Commission Rebate", "Referral Kickback",
)
_INTERNAL = "a move between the user's own Binance wallets (spot, funding, earn, futures): no disposal"
_MOVES = (
    "Transfer Between Main and Funding Wallet", "Transfer Between Spot Account and UM Futures Account",
    "Transfer Between Spot Account and CM Futures Account", "Transfer Between Main Account/Futures and Margin Account",
    "Main and Funding Account Transfer", "Simple Earn Flexible Subscription", "Simple Earn Flexible Redemption",
    "Simple Earn Locked Subscription", "Simple Earn Locked Redemption", "Savings Purchase",
    "Savings Principal Redemption", "POS Savings Purchase", "POS Savings Redemption", "Staking Purchase",
    "Staking Redemption",
)
#: Each known operation, lower-cased -> its name as listed here.
_NAMES = {n.lower(): n for n in (*_LEGS, *_FEES, _CONVERT, _DUST, *_DEPOSITS, *_WITHDRAWALS, *_INCOME, *_MOVES)}
_NUMBER_HINT = "a signed number such as -333.209174 or -9.009E-05"


class Binance:
    """Binance Transaction History statement CSV."""

    NAME: ClassVar[str] = "binance"
    TITLE: ClassVar[str] = "Binance transaction history statement CSV"
    IDENTIFIED_BY: ClassVar[str] = "a header naming UTC_Time, Account, Operation, Coin, Change (User_ID optional)"
    EXAMPLE: ClassVar[str] = (
        "User_ID,UTC_Time,Account,Operation,Coin,Change,Remark\n"
        "1,2020-11-03 21:12:59,Spot,Buy,EUR,-333.209174,\n"
        "1,2020-11-03 21:12:59,Spot,Fee,BNB,-9.009E-05,\n"
        "1,2020-11-03 21:12:59,Spot,Buy,ETH,0.0148,"
    )
    ACTIONS: ClassVar[dict[str, str]] = {
        **dict.fromkeys(_LEGS, "a leg of a buy or sell (rows of one second; coin for coin: sell + buy)"),
        **dict.fromkeys(_FEES, "the fee of that trade (in a third coin: fee)"),
        _CONVERT: "buy or sell (coin for coin: sell + buy)",
        _DUST: "sell + buy (one coin at a time)",
        **dict.fromkeys(_DEPOSITS, "deposit (fiat) or transfer_in (coin, basis unknown)"),
        **dict.fromkeys(_WITHDRAWALS, "withdrawal (fiat) or transfer_out (coin)"),
        **dict.fromkeys(_INCOME, "income (interest when fiat)"),
    }
    IGNORED: ClassVar[dict[str, str]] = dict.fromkeys(_MOVES, _INTERNAL)

    def identify(self, source: Source) -> bool:
        """True when one of the first 3 records names the statement's columns."""
        return any(_KEY <= set(r) for r in head_records(source, 3))

    def extract(self, source: Source, context: Context) -> Extracted:
        """Every row as trades (a second's trade rows together), ignored, or a RowError.

        Raises FileError when there is no statement header or a needed column is missing.
        """
        sheet = find_header(source.name, source.text, lambda r: _KEY <= set(r), within=3)
        if sheet is None:
            raise FileError(source.name, "no Binance statement header (expected User_ID,UTC_Time,Account,Operation,Coin,Change,Remark)")
        missing_columns(source, sheet.header_line, sheet.header, _COLUMNS)
        with localcontext(DecimalContext(prec=2 * PRECISION)):
            return _Statement(source, context, context.account or "Binance").read(sheet)


@dataclass
class _Group:
    """The trade rows of one second in one wallet: per coin, the legs' sum and the fees."""

    first: Row
    kind: str  # "trade", _CONVERT or _DUST
    legs: dict[str, Decimal]
    fees: dict[str, Decimal]


class _Statement:
    def __init__(self, source: Source, context: Context, account: str) -> None:
        self.source, self.context, self.account = source, context, account
        self.out: list[tuple[int, list[Trade]]] = []
        self.errors: list[RowError] = []
        self.ignored: Counter[str] = Counter()
        self.groups: dict[tuple[str, str, str], _Group] = {}
        self.bad: set[tuple[str, str, str]] = set()

    def read(self, sheet: Sheet) -> Extracted:
        rows_read = 0
        for row in self._rows(sheet):
            rows_read += 1
            if isinstance(row, RowError):
                self.errors.append(row)
                continue
            try:
                self._row(row)
            except Problem as exc:
                self.errors.append(RowError(self.source.name, row.line, str(exc)))
                self.bad.add(_key(row))
        for key, group in self.groups.items():
            if key in self.bad:
                continue  # one of its rows is already an error
            try:
                self.out.append((group.first.line, self._trade(group)))
            except Problem as exc:
                self.errors.append(RowError(self.source.name, group.first.line, str(exc)))
        trades = [t for _, ts in sorted(self.out, key=lambda e: e[0]) for t in ts]
        self.errors.sort(key=lambda e: e.line)
        return Extracted(trades=from_trades(trades), errors=self.errors, rows_read=rows_read, ignored=self.ignored)

    def _rows(self, sheet: Sheet) -> Iterator[Row | RowError]:
        """Each record as a Row; a missing last Remark field is allowed."""
        width = len(sheet.header)
        short = width - 1 if sheet.header[-1] == "Remark" else width
        for line, fields in sheet.records:
            while len(fields) > width and not fields[-1].strip():
                fields = fields[:-1]
            if len(fields) not in (width, short):
                yield RowError(self.source.name, line, f"row has {len(fields)} fields (expected {width}, as in the header)")
                continue
            yield Row(line, dict(zip(sheet.header, fields, strict=False)))

    def _row(self, row: Row) -> None:
        op = _NAMES.get(row.get("Operation").lower())
        if op is None:
            what = "is not handled by the binance adapter" if row.get("Operation") else "is missing"
            raise problem("Operation", row.get("Operation"),
                          f"{what} (expected one of {', '.join(Binance.ACTIONS)}; ignored: {', '.join(Binance.IGNORED)})")
        if op in Binance.IGNORED:
            self.ignored[op] += 1
            return
        coin = row.get("Coin").upper()
        if not coin or not coin.replace("_", "").isalnum():
            raise problem("Coin", row.get("Coin"), f"is {'missing' if not coin else 'not a coin'} (expected a coin such as BTC or EUR)")
        change = row.number("Change", _NUMBER_HINT) or Decimal(0)
        instant(row, "UTC_Time")  # a bad time is this row's error
        if op in (*_LEGS, *_FEES, _CONVERT, _DUST):
            kind = op if op in (_CONVERT, _DUST) else "trade"
            group = self.groups.setdefault(_key(row), _Group(row, kind, {}, {}))
            if op in _FEES:
                if change > 0:
                    raise problem("Change", row.get("Change"), "is positive (expected a negative fee)")
                group.fees[coin] = group.fees.get(coin, Decimal(0)) - change
            else:
                group.legs[coin] = group.legs.get(coin, Decimal(0)) + change
            return
        self.out.append((row.line, self._single(op, row, coin, change)))

    def _common(self, row: Row) -> dict[str, Any]:
        when = instant(row, "UTC_Time")
        return {"line": row.line, "account": self.account, "timestamp": when,
                "trade_date": when.astimezone(self.context.timezone).date()}

    def _single(self, op: str, row: Row, coin: str, change: Decimal) -> list[Trade]:
        """The trade for a deposit, withdrawal or payout row. Raises Problem."""
        if change == 0:
            raise problem("Change", row.get("Change"), f"is zero (expected {_NUMBER_HINT})")
        incoming = op not in _WITHDRAWALS
        if (change > 0) != incoming:
            sign = "positive" if change > 0 else "negative"
            raise problem("Change", row.get("Change"), f"is {sign} for {op} (expected the opposite sign)")
        common, fiat = self._common(row), coin in FIAT
        if op in _INCOME:
            if fiat:
                return [make(common, symbol=coin, asset_class=AssetClass.CASH, action=Action.INTEREST,
                             currency=coin, amount=change, note=op)]
            return [make(common, symbol=coin, action=Action.INCOME, quantity=change, note=op)]
        if fiat:
            action = Action.DEPOSIT if incoming else Action.WITHDRAWAL
            return [make(common, symbol=coin, asset_class=AssetClass.CASH, action=action, currency=coin, amount=change)]
        if incoming:
            return [make(common, symbol=coin, action=Action.TRANSFER_IN, quantity=change, note="basis unknown")]
        return [make(common, symbol=coin, action=Action.TRANSFER_OUT, quantity=-change)]

    def _trade(self, group: _Group) -> list[Trade]:
        """One buy or sell (two for coin for coin) from a second's trade rows. Raises Problem."""
        spent = [c for c, v in group.legs.items() if v < 0]
        got = [c for c, v in group.legs.items() if v > 0]
        when = group.first.get("UTC_Time")
        if len(spent) != 1 or len(got) != 1:
            shown = ", ".join(f"{c} {v}" for c, v in group.legs.items()) or "only fees"
            if group.kind == _DUST and len(spent) > 1 and len(got) == 1:
                raise problem("UTC_Time", when, f"converts {len(spent)} coins to {got[0]} at once ({shown}); "
                                                "taxlens can't divide what was received between them (expected one coin)")
            raise problem("UTC_Time", when, f"{group.kind} rows change {shown} (expected one coin spent and one received "
                                            "in the same second and account)")
        out, into = spent[0], got[0]
        common = self._common(group.first)
        fees = dict(group.fees)
        trades = swap(common, (out, -group.legs[out], fees.pop(out, Decimal(0))), (into, group.legs[into], fees.pop(into, Decimal(0))),
                      note=None if group.kind == "trade" else group.kind)
        for coin, fee in sorted(fees.items()):
            if fee:
                trades.append(fee_paid(common, coin, fee, fiat=coin in FIAT, note="trade fee"))
        return trades


def _key(row: Row) -> tuple[str, str, str]:
    """Rows of one trade share the second and the wallet (and a convert is apart from a trade)."""
    op = _NAMES.get(row.get("Operation").lower(), "")
    return row.get("UTC_Time"), row.get("Account"), op if op in (_CONVERT, _DUST) else "trade"
