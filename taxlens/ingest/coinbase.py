"""Coinbase (retail) transaction-history CSV, layouts v2 to v4.

v4 (2023 on) starts with a preamble (a blank line, ``Transactions``, ``User,<name>,<uuid>``)
and then the header::

    ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,Price at Transaction,
    Subtotal,Total (inclusive of fees and/or spread),Fees and/or Spread,Notes

2025 exports add ``Sender Address,Recipient Address``; v3 has no ``ID`` and says ``Spot Price
Currency`` / ``Spot Price at Transaction``; v2 says ``Total (inclusive of fees)`` and ``Fees``.
Columns are looked up by name, so all of these read the same way.

Quirks this adapter handles:

- Money carries a currency sign (``€39999.33``, ``-€597.49``), sometimes not on the fee; prices
  have up to 22 decimals (rounded to the storage scale: they are informational).
- v4 makes Quantity, Subtotal and Total negative for Sell and Send; v3 does not. Signs are
  therefore ignored and the direction comes from Transaction Type.
- Timestamps are UTC: ``2025-01-17 16:57:02 UTC`` (v4) or ``2021-01-01T12:00:00Z`` (older).
- ``Convert`` is one row for two legs; the received asset and quantity are only in Notes
  (``Converted 0.00363125 BTC to 156.145683 XRP``). It becomes a sell and a buy, both valued at
  Total, so the cash amounts net to zero.
- ``Advanced Trade Buy/Sell`` may settle in a stablecoin (Notes: ``… for 50.25 USDC on
  BTC-USDC at …``) while Price Currency is the user's fiat: the stablecoin leg is a hidden
  disposal or acquisition, emitted as a second trade in the same way as Convert.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from decimal import Decimal
from typing import Any, ClassVar

from taxlens.errors import FileError, RowError
from taxlens.ingest.base import Context, Extracted, Source, missing_columns
from taxlens.ingest.frame import from_trades
from taxlens.ingest.rows import Problem, Row, head_records, problem, read_table
from taxlens.models import Action, AssetClass, Trade
from taxlens.money import D, NotANumber, fits, to_scale

_V4 = ["ID", "Timestamp", "Transaction Type", "Asset"]
_V3 = ["Timestamp", "Transaction Type", "Asset"]

#: v4 column name -> the names it has had in older layouts (first found wins).
_ALIASES: dict[str, tuple[str, ...]] = {
    "Timestamp": ("Timestamp",),
    "Transaction Type": ("Transaction Type",),
    "Asset": ("Asset",),
    "Quantity Transacted": ("Quantity Transacted",),
    "Price Currency": ("Price Currency", "Spot Price Currency"),
    "Price at Transaction": ("Price at Transaction", "Spot Price at Transaction"),
    "Total": ("Total (inclusive of fees and/or spread)", "Total (inclusive of fees)"),
    "Fees": ("Fees and/or Spread", "Fees"),
    "Notes": ("Notes",),
}

#: Currencies a Deposit or Withdrawal of cash is in; any other asset is a coin transfer.
_FIAT = frozenset({"USD", "EUR", "GBP", "CAD", "AUD", "CHF", "JPY", "SGD"})

_TRADES = {
    "Buy": Action.BUY,
    "Advanced Trade Buy": Action.BUY,
    "Sell": Action.SELL,
    "Advanced Trade Sell": Action.SELL,
}
_INCOME = (
    "Staking Income", "Rewards Income", "Learning Reward", "Coinbase Earn",
    "Inflation Reward", "Subscription Rebates",
)
_INTERNAL = "internal move between the user's own Coinbase wallets: no disposal"

_CONVERTED = re.compile(r"^Converted\s+([\d,]*\.?\d+)\s+(\S+)\s+to\s+([\d,]*\.?\d+)\s+(\S+?)\s*$")
_ADVANCED = re.compile(
    r"^(?:Bought|Sold)\s+[\d,]*\.?\d+\s+\S+\s+for\s+[$€£]?([\d,]*\.?\d+)\s+(\w+)\s+on\s+\w+-\w+\b"
)
_CURRENCY = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
_NUMBER_HINT = "a number such as 0.0016 or -0.18"
_MONEY_HINT = "an amount such as €67.01 or $70.00"
_CONVERT_HINT = 'Notes like "Converted 0.5 BTC to 10 ETH"'


class Coinbase:
    """Coinbase retail transaction history (v2-v4 CSV)."""

    NAME: ClassVar[str] = "coinbase"
    TITLE: ClassVar[str] = "Coinbase transaction history CSV"
    IDENTIFIED_BY: ClassVar[str] = (
        "a header starting ID,Timestamp,Transaction Type,Asset (v4) or "
        "Timestamp,Transaction Type,Asset (v2/v3), after an optional preamble"
    )
    EXAMPLE: ClassVar[str] = (
        "ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,Price at Transaction,"
        "Subtotal,Total (inclusive of fees and/or spread),Fees and/or Spread,Notes\n"
        "623d65,2022-03-25 06:45:27 UTC,Buy,BTC,0.00166779,USD,$39999.33,$67.01,$70.00,$2.99,"
        "Bought 0.00166779 BTC for 70 USD"
    )
    ACTIONS: ClassVar[dict[str, str]] = {
        **{t: a.value for t, a in _TRADES.items()},
        "Convert": "sell + buy",
        "Send": Action.TRANSFER_OUT.value,
        "Receive": Action.TRANSFER_IN.value,
        **{t: Action.INCOME.value for t in _INCOME},
        "Deposit": "deposit (cash) or transfer_in (coin)",
        "Withdrawal": "withdrawal (cash) or transfer_out (coin)",
    }
    IGNORED: ClassVar[dict[str, str]] = {
        t: _INTERNAL
        for t in (
            "Retail Staking Transfer", "Retail Unstaking Transfer", "Pro Deposit", "Pro Withdrawal",
            "Exchange Deposit", "Exchange Withdrawal", "Vault Deposit", "Vault Withdrawal",
        )
    }

    def identify(self, source: Source) -> bool:
        """True when one of the first 10 non-blank records starts like a Coinbase header."""
        return any(r[:4] == _V4 or r[:3] == _V3 for r in head_records(source, 10))

    def extract(self, source: Source, context: Context) -> Extracted:
        """Every data row as trades (two for a Convert), an ignored type, or a RowError.

        Raises FileError when no header is found or a needed column is missing.
        """
        table = read_table(source, lambda r: r[:4] == _V4 or r[:3] == _V3)
        if table is None:
            raise FileError(
                source.name,
                "no Coinbase header (expected a line starting ID,Timestamp,Transaction Type,Asset)",
            )
        columns = {
            canon: next((n for n in names if n in table.header), names[0])
            for canon, names in _ALIASES.items()
        }
        missing_columns(source, table.header_line, table.header, list(columns.values()))
        has_id = "ID" in table.header
        account = context.account or "Coinbase"

        trades: list[Trade] = []
        errors: list[RowError] = []
        ignored: Counter[str] = Counter()
        rows_read = 0
        for row in table.rows():
            rows_read += 1
            if isinstance(row, RowError):
                errors.append(row)
                continue
            kind = row.get(columns["Transaction Type"])
            if kind in self.IGNORED:
                ignored[kind] += 1
                continue
            try:
                trades.extend(_row_trades(row, kind, columns, account, context, has_id))
            except Problem as exc:
                errors.append(RowError(source.name, row.line, str(exc)))
        return Extracted(
            trades=from_trades(trades), errors=errors, rows_read=rows_read, ignored=ignored
        )


def _row_trades(
    row: Row, kind: str, columns: dict[str, str], account: str, context: Context, has_id: bool
) -> list[Trade]:
    """The trades one row stands for. Raises Problem for a bad cell or an unknown type."""
    known = [*_TRADES, "Convert", "Send", "Receive", *_INCOME, "Deposit", "Withdrawal"]
    if kind not in known:
        what = "is not handled by the coinbase adapter" if kind else "is missing"
        raise problem(
            columns["Transaction Type"], kind,
            f"{what} (expected one of {', '.join(known)}; ignored: {', '.join(Coinbase.IGNORED)})",
        )
    when = _instant(row, columns["Timestamp"])
    asset = row.get(columns["Asset"]).upper()
    if not asset:
        raise problem(columns["Asset"], "", "is missing (expected a coin such as BTC)")
    currency = row.get(columns["Price Currency"]).upper()
    if not _CURRENCY.match(currency):
        what = "is not a currency code" if currency else "is missing"
        expected = "(expected a currency code such as USD or EUR)"
        raise problem(columns["Price Currency"], currency, f"{what} {expected}")
    quantity = abs(row.quantity(columns["Quantity Transacted"], _NUMBER_HINT))
    fee = abs(row.number(columns["Fees"], _MONEY_HINT, required=False) or Decimal(0))
    base: dict[str, Any] = {
        "line": row.line,
        "account": account,
        "timestamp": when,
        "trade_date": when.astimezone(context.timezone).date(),
        "currency": currency,
        "broker_trade_id": (row.get("ID") or None) if has_id else None,
    }

    if kind in ("Deposit", "Withdrawal") and asset in _FIAT:
        # Cash: the amount is the quantity, in the deposited currency.
        deposit = kind == "Deposit"
        return [Trade(**{
            **base, "currency": asset, "symbol": asset, "asset_class": AssetClass.CASH,
            "action": Action.DEPOSIT if deposit else Action.WITHDRAWAL,
            "fee": fee, "fee_currency": currency, "amount": quantity if deposit else -quantity,
        })]

    transfer_out = kind in ("Send", "Withdrawal")
    transfer_in = kind in ("Receive", "Deposit")
    # A transfer's price is only informational; income and trades need it for the basis.
    needs_price = not (transfer_in or transfer_out)
    price = row.price(columns["Price at Transaction"], _MONEY_HINT, required=needs_price)
    coin: dict[str, Any] = {
        **base, "symbol": asset, "asset_class": AssetClass.CRYPTO, "quantity": quantity,
        "price": abs(price) if price is not None else None, "fee": fee,
    }
    if kind in _INCOME:
        return [Trade(**coin, action=Action.INCOME)]
    if transfer_out:
        return [Trade(**coin, action=Action.TRANSFER_OUT)]
    if transfer_in:
        return [Trade(**coin, action=Action.TRANSFER_IN, note="basis unknown")]

    total = abs(row.number(columns["Total"], _MONEY_HINT) or Decimal(0))
    if kind == "Convert":
        got, got_asset = _converted(row, columns["Notes"], asset)
        return [
            Trade(**coin, action=Action.SELL, amount=total, note="convert"),
            _leg(base, got_asset, got, total, Action.BUY, "convert"),
        ]

    action = _TRADES[kind]
    trade = Trade(**coin, action=action, amount=-total if action is Action.BUY else total)
    quote = _advanced_quote(row.get(columns["Notes"])) if kind.startswith("Advanced") else None
    if quote is None or quote[1] == currency:
        return [trade]
    paid, paid_asset = quote
    if action is Action.BUY:
        return [trade, _leg(base, paid_asset, paid, total, Action.SELL, f"paid in {paid_asset}")]
    return [trade, _leg(base, paid_asset, paid, total, Action.BUY, f"proceeds in {paid_asset}")]


def _leg(
    base: dict[str, Any], asset: str, quantity: Decimal, value: Decimal, action: Action, note: str
) -> Trade:
    """The second leg of a coin-for-coin trade: ``quantity`` of ``asset`` worth ``value`` in
    the row's fiat. Its amount mirrors the first leg's, so the pair moves no cash."""
    price = to_scale(value / quantity)
    amount = -value if action is Action.BUY else value
    asset_class = AssetClass.CASH if asset in _FIAT else AssetClass.CRYPTO
    return Trade(
        **base, symbol=asset, asset_class=asset_class, action=action,
        quantity=quantity, price=price, amount=amount, note=note,
    )


def _instant(row: Row, column: str) -> dt.datetime:
    """The row's UTC instant. Coinbase stamps are UTC; a stamp with no zone is taken as UTC."""
    text = row.get(column)
    iso = text[:-4] + "+00:00" if text.endswith(" UTC") else text
    try:
        when = dt.datetime.fromisoformat(iso) if len(iso) > 10 else None
    except ValueError:
        when = None
    if when is None:
        raise problem(column, text, "is not a date and time (expected e.g. 2025-01-17 16:57:02 UTC)")
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _converted(row: Row, column: str, sent_asset: str) -> tuple[Decimal, str]:
    """The (quantity, asset) a Convert row received, read from its Notes."""
    notes = row.get(column)
    match = _CONVERTED.match(notes)
    if match is None or match.group(2).upper() != sent_asset:
        raise problem(
            column, notes, f"does not say what {sent_asset} was converted to (expected {_CONVERT_HINT})"
        )
    try:
        quantity = D(match.group(3))
    except NotANumber as exc:  # pragma: no cover - the pattern admits only digits
        raise problem(column, notes, f"is not readable (expected {_CONVERT_HINT})") from exc
    if quantity == 0 or fits(quantity) is not None:
        raise problem(
            column, notes, f"gives a received quantity that can't be stored (expected {_CONVERT_HINT})"
        )
    return quantity, match.group(4).upper()


def _advanced_quote(notes: str) -> tuple[Decimal, str] | None:
    """(amount, asset) an Advanced Trade was settled in, from Notes; None if Notes don't say.

    Unreadable Notes are not an error: the fiat columns already describe the trade, and only a
    stablecoin pair needs the second leg.
    """
    match = _ADVANCED.match(notes)
    if match is None:
        return None
    try:
        amount = D(match.group(1))
    except NotANumber:  # pragma: no cover - the pattern admits only digits
        return None
    if amount == 0 or fits(amount) is not None:
        return None
    return amount, match.group(2).upper()
