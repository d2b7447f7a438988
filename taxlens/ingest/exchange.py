"""Helpers shared by the crypto-exchange ledger adapters (``kraken.py``, ``binance.py``).

Both exchanges describe a trade as balance changes, one row per asset (Kraken pairs them by
``refid``, Binance by timestamp), and neither says which side is the "quote". This module turns
"spent X of A, received Y of B" into taxlens trades:

- fiat for coin (or coin for fiat): one buy or sell of the coin, priced in the fiat;
- coin for coin: a sale of one coin and a buy of the other, both valued in the quote coin
  (chosen by ``quote_of``: fiat first, then stablecoins, then BTC, ETH, BNB, else the coin
  spent), so the pair moves no cash. taxlens flags trades not in USD later;
- fiat for fiat: a withdrawal of one currency and a deposit of the other (no lots).

Fees are folded into the quantities and amounts (received net of its fee, spent plus its fee),
so quantities match the exchange's balances; the ``fee`` column repeats the fee for reference.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from taxlens.ingest.csvscan import read_rows
from taxlens.ingest.rows import Problem, Row, guarded, problem
from taxlens.models import Action, AssetClass, Trade
from taxlens.money import fits, to_scale

#: Fiat currencies the exchanges list; any other asset is a coin (stablecoins included).
FIAT = frozenset({
    "USD", "EUR", "GBP", "CAD", "AUD", "CHF", "JPY", "NZD", "SGD", "HKD", "SEK", "NOK", "DKK",
    "PLN", "CZK", "TRY", "BRL", "RUB", "UAH", "NGN", "ZAR", "ARS", "MXN", "INR", "IDR", "KZT",
    "AED",
})
#: Coins preferred as the quote of a coin-for-coin trade, best first (after any fiat).
QUOTE_COINS = ("USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USDP", "DAI", "PYUSD", "EURT", "BTC", "ETH", "BNB")

_TIME_HINT = "a UTC date and time such as 2021-02-02 13:30:51"


def quote_of(spent: str, received: str, fiat: Callable[[str], bool] = FIAT.__contains__) -> str:
    """The asset a trade is priced in: a fiat side, else the better-known coin, else the one spent."""
    for asset in (spent, received):
        if fiat(asset):
            return asset
    ranked = [a for a in QUOTE_COINS if a in (spent, received)]
    return ranked[0] if ranked else spent


def swap(
    common: dict[str, Any],
    spent: tuple[str, Decimal, Decimal],
    received: tuple[str, Decimal, Decimal],
    *,
    quote: str | None = None,
    fiat: Callable[[str], bool] = FIAT.__contains__,
    note: str | None = None,
    price: Decimal | None = None,
) -> list[Trade]:
    """Trades for spending ``spent`` and receiving ``received``, each (asset, gross, fee) with
    gross > 0 and fee >= 0 in that asset. ``common`` holds line, account, timestamp, trade_date
    and ids; ``price``, when the source gives one, replaces the computed price. Raises Problem
    when the fees leave nothing received."""
    (out_asset, out_gross, out_fee), (in_asset, in_gross, in_fee) = spent, received
    out_total, in_net = out_gross + out_fee, in_gross - in_fee
    if in_net <= 0:
        raise Problem(f"the fee of {in_fee} {in_asset} is not less than the {in_gross} {in_asset} received")
    fee, fee_currency = (out_fee, out_asset) if out_fee else (in_fee, in_asset if in_fee else None)
    if fiat(out_asset) and fiat(in_asset):
        exchange = note or f"currency exchange {out_asset} to {in_asset}"
        return [
            make(common, symbol=out_asset, asset_class=AssetClass.CASH, action=Action.WITHDRAWAL, currency=out_asset,
                 amount=-out_total, fee=out_fee, fee_currency=out_asset, note=exchange),
            make(common, symbol=in_asset, asset_class=AssetClass.CASH, action=Action.DEPOSIT, currency=in_asset,
                 amount=in_net, fee=in_fee, fee_currency=in_asset, note=exchange),
        ]
    if quote not in (out_asset, in_asset) or fiat(out_asset) or fiat(in_asset):
        chosen = quote_of(out_asset, in_asset, fiat)  # a fiat side is always the quote
        price = price if chosen == quote else None  # the source's price is per the other asset
        quote = chosen
    if quote == out_asset:  # a buy of the coin received, paid in the quote
        trades = [make(common, symbol=in_asset, action=Action.BUY, quantity=in_net, price=price or to_scale(out_gross / in_gross),
                       currency=out_asset, amount=-out_total, fee=fee, fee_currency=fee_currency, note=note)]
        if not fiat(out_asset):
            trades.append(make(common, symbol=out_asset, action=Action.SELL, quantity=out_total, price=Decimal(1),
                               currency=out_asset, amount=out_total, note=f"paid for {in_asset}"))
        return trades
    trades = [make(common, symbol=out_asset, action=Action.SELL, quantity=out_total, price=price or to_scale(in_gross / out_gross),
                   currency=in_asset, amount=in_net, fee=fee, fee_currency=fee_currency, note=note)]
    if not fiat(in_asset):
        trades.append(make(common, symbol=in_asset, action=Action.BUY, quantity=in_net, price=Decimal(1),
                           currency=in_asset, amount=-in_net, note=f"proceeds of {out_asset}"))
    return trades


def fee_paid(common: dict[str, Any], asset: str, fee: Decimal, *, fiat: bool, note: str | None = None) -> Trade:
    """A fee charged apart from a trade: in a coin it disposes of that coin for nothing; in fiat
    it is cash only."""
    if fiat:
        return make(common, symbol=asset, asset_class=AssetClass.CASH, action=Action.FEE, currency=asset,
                    fee=fee, fee_currency=asset, amount=-fee, note=note)
    # The currency only has to differ from the coin for the fee to be a coin disposal.
    return make(common, symbol=asset, action=Action.FEE, currency="USD", fee=fee, fee_currency=asset, note=note)


def make(common: dict[str, Any], **fields: Any) -> Trade:
    """A Trade from ``common`` and ``fields`` (asset class crypto unless given). Raises Problem
    for a value the store can't hold exactly (a sum that grew past 20 digits)."""
    fields.setdefault("asset_class", AssetClass.CRYPTO)
    for name in ("quantity", "amount", "fee"):
        value = fields.get(name)
        if isinstance(value, Decimal) and (why := fits(value)):
            raise Problem(f"{name} {value} {why}")
    try:
        return Trade(**common, **fields)
    except ValidationError as exc:  # pragma: no cover - fits() above catches what the model checks
        raise Problem(f"can't be stored ({exc.errors()[0]['msg']})") from exc


def instant(row: Row, column: str) -> dt.datetime:
    """The row's UTC instant (``2021-02-02 13:30:51.7025``; a zone, if given, is honoured)."""
    text = row.get(column)
    try:
        when = dt.datetime.fromisoformat(text.removesuffix(" UTC")) if len(text) > 10 else None
    except ValueError:
        when = None
    if when is None:
        raise problem(column, text, f"is not a date and time (expected {_TIME_HINT})")
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


@dataclass
class Sheet:
    """A CSV export located by its header: the header and the records after it."""

    header_line: int
    header: list[str]  # stripped; trailing empty names dropped
    records: Iterator[tuple[int, list[str]]]  # (physical line, fields) of each later record


def find_header(source_name: str, text: str, is_header: Callable[[list[str]], bool], *, within: int = 5) -> Sheet | None:
    """The first record among the first ``within`` that passes ``is_header``, and the rest."""
    records = guarded(source_name, read_rows(text))
    for n, (line, fields) in enumerate(records):
        stripped = [f.strip() for f in fields]
        if is_header(stripped):
            while stripped and not stripped[-1]:
                stripped.pop()
            return Sheet(line, stripped, records)
        if n + 1 >= within:
            return None
    return None




def header_test(required: set[str]) -> Callable[[list[str]], bool]:
    """A header predicate: the record names every column in ``required``."""
    return lambda fields: required <= set(fields)
