"""Records and enums shared by every stage: what a normalized trade is, and its vocabulary.

A ``Trade`` is one event from one export row (or a few rows a source splits one event over).
Quantities are positive; the ``action`` carries the direction. Cash amounts are signed from the
account's point of view (negative = cash out).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from taxlens.money import fits


class Action(StrEnum):
    """What happened. Only buy/sell-like actions move lots; the rest are kept for cash flows,
    income and fees, which the audit and the simulator read."""

    BUY = "buy"
    SELL = "sell"
    SELL_SHORT = "sell_short"  # opening a short: stored so the book can refuse it loudly
    BUY_TO_COVER = "buy_to_cover"
    REINVEST = "reinvest"  # dividend reinvestment: a buy that creates a lot
    SPLIT_IN = "split_in"  # shares added by a split or reverse split (basis carries over)
    SPLIT_OUT = "split_out"  # shares removed by a reverse split or exchange
    TRANSFER_IN = "transfer_in"  # securities moved in (from another of the user's accounts?)
    TRANSFER_OUT = "transfer_out"
    INCOME = "income"  # crypto rewards/staking received as an asset: a lot at market value
    FEE = "fee"  # a fee charged apart from a trade (cash or, for crypto, in coin)
    SALE_FEE = "sale_fee"  # a day's fee on its sales (Alpaca's end-of-day regulatory FEE): booking
    # spreads it over that day's sales in the account, reducing their proceeds
    DIVIDEND = "dividend"
    INTEREST = "interest"
    WITHHOLDING = "withholding"  # tax withheld on income
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    CASH_IN_LIEU = "cash_in_lieu"


#: Actions whose quantity is a security or coin quantity that must be positive.
QUANTITY_ACTIONS = frozenset(
    {
        Action.BUY,
        Action.SELL,
        Action.SELL_SHORT,
        Action.BUY_TO_COVER,
        Action.REINVEST,
        Action.SPLIT_IN,
        Action.SPLIT_OUT,
        Action.TRANSFER_IN,
        Action.TRANSFER_OUT,
        Action.INCOME,
    }
)


class AssetClass(StrEnum):
    EQUITY = "equity"
    ETF = "etf"
    FUND = "fund"
    CRYPTO = "crypto"
    OPTION = "option"
    BOND = "bond"
    CASH = "cash"
    OTHER = "other"


class AccountType(StrEnum):
    TAXABLE = "taxable"
    TRADITIONAL_IRA = "traditional_ira"
    ROTH_IRA = "roth_ira"
    K401 = "401k"
    HSA = "hsa"

    @property
    def tax_advantaged(self) -> bool:
        return self is not AccountType.TAXABLE


def _exact(value: Decimal | None) -> Decimal | None:
    if value is not None and (why := fits(value)):
        raise ValueError(f"{value} {why}")
    return value


class Trade(BaseModel):
    """One normalized event, as an adapter extracts it from a source row.

    ``line`` is the physical line of the source row (the first line of a multi-line record).
    ``timestamp`` is the instant in UTC when the source gives a time; ``trade_date`` is the tax
    date (the date in the taxpayer's time zone, or the source's own date when it gives only a
    date). ``broker_trade_id`` is the source's own id for the event, kept in every output.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    line: int
    account: str = Field(min_length=1)
    symbol: str
    asset_class: AssetClass = AssetClass.EQUITY
    action: Action
    timestamp: dt.datetime | None = None
    trade_date: dt.date
    quantity: Annotated[Decimal, Field(ge=0)] = Decimal(0)
    price: Decimal | None = None
    fee: Decimal = Decimal(0)
    fee_currency: str | None = None
    currency: str = "USD"
    amount: Decimal | None = None
    broker_trade_id: str | None = None
    order_id: str | None = None
    lot_id: str | None = None
    note: str | None = None

    _check_quantity = field_validator("quantity", "fee", "amount")(_exact)

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("timestamp must carry a time zone")
        return value.astimezone(dt.UTC) if value is not None else None
