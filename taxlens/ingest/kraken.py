"""Kraken ``trades.csv`` and ``ledgers.csv`` exports (History → Export).

``trades.csv`` has one row per fill::

    "txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol","margin","misc","ledgers"

(newer files insert ``aclass,subclass`` after ``pair``; position columns may follow).
``ledgers.csv`` has one row per balance change::

    "txid","refid","time","type","subtype","aclass","asset","amount","fee","balance"

(newer files add ``wallet``, ``subclass`` and ``amountusd``/``feeusd``/``balanceusd``). Columns
are looked up by name, so every variant reads the same way. One adapter reads both; the header
says which file it is.

Quirks this adapter handles:

- Asset codes: legacy X/Z prefixes (``XXBT``, ``XETH``, ``ZEUR``, ``ZUSD``), ``XBT`` and ``XDG``
  for BTC and DOGE, and staked or earn variants (``DOT.S``, ``DOT28.S``, ``ETH2.S``, ``XBT.M``,
  ``USD.HOLD``) are all reduced to the plain ticker, so staking wallets hold the same lots.
- Pairs are concatenated (``XXBTZEUR``, ``XBTUSDC``) or slashed (``XBT/USD``): split on the
  known quote codes. In trades.csv ``cost`` and ``fee`` are in the quote currency.
- In a ledger, a trade (``trade``, or ``spend`` + ``receive`` for "Buy Crypto") is two rows
  sharing a ``refid``: they are combined into one buy or sell (see ``exchange.swap``). Each
  row's fee is in its own asset and is folded in: Kraken's balance moves by amount − fee.
- A coin-for-coin trade is a sale of one coin and a buy of the other, valued in the quote coin;
  a non-USD quote stays in that currency (taxlens flags it later).
- Deposits and withdrawals appear twice, first as a pending row with an empty ``txid``:
  that copy is ignored. Fiat moves are cash; coin moves are transfers (a transfer in has no
  known basis); a coin withdrawal fee is a separate fee in the coin.
- ``staking``, ``reward``, ``dividend``, ``airdrop`` and ``earn``/``reward`` are income (interest
  when the asset is fiat), valued with ``amountusd`` when the file has it.
- Moves between the user's own spot, staking, earn and futures wallets are ignored.
- trades.csv rows sometimes carry the ``ledgers`` value split over two fields: extra fields
  are joined back into ``ledgers``. Margin trades are row errors (not supported).

trades.csv and ledgers.csv describe the same trades, with different rounding and timestamps,
so their rows hash differently; both carry the trade's txid (ledgers.csv as ``refid``) as the
broker trade id, and the store keeps each trade once, from the file imported first, and says
so. ledgers.csv is the complete one (it also has deposits, withdrawals and rewards): import it
first, or alone.
"""

from __future__ import annotations

import re
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
from taxlens.money import PRECISION, to_scale

_TRADES_KEY = frozenset({"txid", "ordertxid", "pair", "time", "type", "cost", "vol"})
_LEDGERS_KEY = frozenset({"txid", "refid", "time", "type", "asset", "amount", "fee"})
_TRADES_COLUMNS = ["txid", "pair", "time", "type", "cost", "fee", "vol"]
_LEDGERS_COLUMNS = ["txid", "refid", "time", "type", "asset", "amount", "fee"]

#: Kraken's legacy and alternative codes -> the usual ticker.
_CODES = {
    "XXBT": "BTC", "XBT": "BTC", "XXDG": "DOGE", "XDG": "DOGE", "XETH": "ETH", "ETH2": "ETH",
    "XETC": "ETC", "XLTC": "LTC", "XMLN": "MLN", "XREP": "REP", "XXLM": "XLM", "XXMR": "XMR",
    "XXRP": "XRP", "XZEC": "ZEC", "XNMC": "NMC", "XXVN": "XVN", "XICN": "ICN",
    "ZUSD": "USD", "ZEUR": "EUR", "ZGBP": "GBP", "ZCAD": "CAD", "ZJPY": "JPY", "ZAUD": "AUD",
}
#: Staked, bonded, opt-in rewards and earn variants: DOT.S, DOT28.S, XBT.M, USD.HOLD, ETH2.S.
_VARIANT = re.compile(r"^(.+?)(?:\d\d)?\.(?:S|M|P|F|B|HOLD)$")
#: Quote codes a concatenated pair can end with, longest first.
_QUOTES = sorted(
    ["ZUSD", "ZEUR", "ZGBP", "ZCAD", "ZJPY", "ZAUD", "XXBT", "XETH", "USDT", "USDC", "PYUSD", "EURT",
     "USD", "EUR", "GBP", "CAD", "JPY", "CHF", "AUD", "XBT", "ETH", "DAI", "DOT"],
    key=len, reverse=True,
)
_ASSET = re.compile(r"^[A-Z0-9]{1,12}$")

_PAIRED = ("trade", "spend", "receive")
_INCOME = ("staking", "reward", "dividend", "airdrop", "earn reward")
_SINGLE = ("deposit", "withdrawal", "transfer", *_INCOME)
_INTERNAL = "a move between the user's own Kraken wallets (spot, staking, earn, futures): no disposal"
_PENDING = "pending (empty txid)"
_NUMBER_HINT = "a number such as 0.0344 or -997.4067"


class Kraken:
    """Kraken trades.csv and ledgers.csv."""

    NAME: ClassVar[str] = "kraken"
    TITLE: ClassVar[str] = "Kraken trades.csv or ledgers.csv"
    IDENTIFIED_BY: ClassVar[str] = (
        "a first line naming txid, ordertxid, pair, time, type, cost, vol (trades.csv) or "
        "txid, refid, time, type, asset, amount, fee (ledgers.csv)"
    )
    EXAMPLE: ClassVar[str] = (
        '"txid","refid","time","type","subtype","aclass","asset","amount","fee","balance"\n'
        '"L1","T1","2024-02-02 13:30:51","trade","","currency","ZUSD",-997.4067,2.5933,"0"\n'
        '"L2","T1","2024-02-02 13:30:51","trade","","currency","XXBT",0.0344177800,0.0000000000,"0.0344"'
    )
    ACTIONS: ClassVar[dict[str, str]] = {
        "buy": "buy (trades.csv; coin quote: sell + buy)",
        "sell": "sell (trades.csv; coin quote: sell + buy)",
        "trade": "buy or sell: two ledger rows sharing a refid (coin for coin: sell + buy)",
        "spend": "with its receive row: buy or sell",
        "receive": "with its spend row: buy or sell",
        "deposit": "deposit (fiat) or transfer_in (coin, basis unknown)",
        "withdrawal": "withdrawal (fiat) or transfer_out (coin) + fee in the coin",
        **dict.fromkeys(_INCOME, "income (interest when fiat)"),
        "transfer": "transfer_in or transfer_out (subtypes not listed as ignored)",
    }
    IGNORED: ClassVar[dict[str, str]] = {
        **{f"transfer {s}": _INTERNAL for s in (
            "spottostaking", "stakingfromspot", "stakingtospot", "spotfromstaking",
            "spottofutures", "spotfromfutures",
        )},
        **{f"earn {s}": _INTERNAL for s in ("allocation", "autoallocation", "deallocation", "migration")},
        _PENDING: "the pending copy of a deposit or withdrawal: the completed row follows with a txid",
        "KFEE": "a fee paid in Kraken fee credits, which are not an asset",
    }

    def identify(self, source: Source) -> bool:
        """True when the first record is a trades.csv or ledgers.csv header."""
        records = head_records(source, 1)
        return bool(records) and (_TRADES_KEY <= set(records[0]) or _LEDGERS_KEY <= set(records[0]))

    def extract(self, source: Source, context: Context) -> Extracted:
        """Every row as trades, an ignored row, or a RowError (ledger pairs: at the first row).

        Raises FileError when there is no Kraken header or a needed column is missing.
        """
        sheet = find_header(source.name, source.text, lambda r: _TRADES_KEY <= set(r) or _LEDGERS_KEY <= set(r), within=1)
        if sheet is None:
            raise FileError(source.name, "no Kraken header (expected a first line naming txid, refid or ordertxid, time, type, …)")
        account = context.account or "Kraken"
        with localcontext(DecimalContext(prec=2 * PRECISION)):
            if _LEDGERS_KEY <= set(sheet.header):
                missing_columns(source, sheet.header_line, sheet.header, _LEDGERS_COLUMNS)
                return _Ledger(source, context, account).read(sheet)
            missing_columns(source, sheet.header_line, sheet.header, _TRADES_COLUMNS)
            return _read_trades(source, sheet, context, account)


def asset(code: str) -> str:
    """Kraken's asset code as the usual ticker (``XXBT`` → BTC, ``DOT28.S`` → DOT)."""
    code = code.strip().upper()
    if match := _VARIANT.match(code):
        code = match.group(1)
    return _CODES.get(code, code)


def split_pair(pair: str) -> tuple[str, str] | None:
    """(base, quote) tickers of a Kraken pair (``XXBTZEUR``, ``XBTUSDC``, ``XBT/USD``), or None."""
    text = pair.strip().upper()
    if "/" in text:
        base, _, quote = text.partition("/")
    else:
        quote = next((q for q in _QUOTES if text.endswith(q) and len(text) > len(q)), "")
        base = text.removesuffix(quote) if quote else ""
    if not (_ASSET.match(base) and _ASSET.match(quote)):
        return None
    return asset(base), asset(quote)


def _fields(fields: list[str], width: int, spill: int | None) -> list[str] | None:
    """The record cut to the header's width: trailing empty fields dropped, and extra fields
    joined into the ``spill`` column (trades.csv's split ``ledgers`` value). None if it can't be."""
    while len(fields) > width and not fields[-1].strip():
        fields = fields[:-1]
    if len(fields) > width and spill is not None:
        extra = len(fields) - width
        joined = ",".join(f.strip() for f in fields[spill:spill + extra + 1])
        fields = [*fields[:spill], joined, *fields[spill + extra + 1:]]
    return fields if len(fields) == width else None


def _rows(source: Source, sheet: Sheet, spill: str | None = None) -> Iterator[Row | RowError]:
    """Each record as a Row, or a RowError for a record with the wrong number of fields."""
    width = len(sheet.header)
    at = sheet.header.index(spill) if spill in sheet.header else None
    for line, fields in sheet.records:
        cut = _fields(fields, width, at)
        if cut is None:
            yield RowError(source.name, line, f"row has {len(fields)} fields (expected {width}, as in the header)")
        else:
            yield Row(line, dict(zip(sheet.header, cut, strict=True)))


def _common(row: Row, column: str, context: Context, account: str, **ids: str | None) -> dict[str, Any]:
    when = instant(row, column)
    return {
        "line": row.line, "account": account, "timestamp": when,
        "trade_date": when.astimezone(context.timezone).date(), **ids,
    }


# -- trades.csv ------------------------------------------------------------------------------


def _read_trades(source: Source, sheet: Sheet, context: Context, account: str) -> Extracted:
    trades: list[Trade] = []
    errors: list[RowError] = []
    rows_read = 0
    for row in _rows(source, sheet, spill="ledgers"):
        rows_read += 1
        if isinstance(row, RowError):
            errors.append(row)
            continue
        try:
            trades.extend(_fill(row, context, account))
        except Problem as exc:
            errors.append(RowError(source.name, row.line, str(exc)))
    return Extracted(trades=from_trades(trades), errors=errors, rows_read=rows_read)


def _fill(row: Row, context: Context, account: str) -> list[Trade]:
    """The trades for one trades.csv row. Raises Problem."""
    kind = row.get("type").lower()
    if kind not in ("buy", "sell"):
        what = "is not handled by the kraken adapter" if kind else "is missing"
        raise problem("type", row.get("type"), f"{what} (expected buy or sell)")
    pair = split_pair(row.get("pair"))
    if pair is None:
        raise problem("pair", row.get("pair"), "is not a pair taxlens can split (expected e.g. XXBTZEUR, XBTUSDC or XBT/USD)")
    base, quote = pair
    if base == quote:
        raise problem("pair", row.get("pair"), "has the same asset on both sides (expected e.g. XXBTZEUR)")
    margin = row.number("margin", _NUMBER_HINT, required=False)
    if margin:
        raise problem("margin", row.get("margin"), "is not zero: margin trades are not supported (expected 0)")
    common = _common(row, "time", context, account,
                     broker_trade_id=row.get("txid") or None, order_id=row.get("ordertxid") or None)
    vol = abs(row.quantity("vol", _NUMBER_HINT))
    cost = abs(row.quantity("cost", _NUMBER_HINT))
    fee = abs(row.number("fee", _NUMBER_HINT, required=False) or Decimal(0))
    price = row.price("price", _NUMBER_HINT, required=False)
    price = abs(price) if price else None
    if kind == "buy":
        return swap(common, (quote, cost, fee), (base, vol, Decimal(0)), quote=quote, price=price)
    return swap(common, (base, vol, Decimal(0)), (quote, cost, fee), quote=quote, price=price)


# -- ledgers.csv -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Leg:
    row: Row
    asset: str
    amount: Decimal
    fee: Decimal


class _Ledger:
    """One pass over a ledgers.csv: single rows become trades at once; trade rows wait for the
    other row with their refid."""

    def __init__(self, source: Source, context: Context, account: str) -> None:
        self.source, self.context, self.account = source, context, account
        self.out: list[tuple[int, list[Trade]]] = []
        self.errors: list[RowError] = []
        self.ignored: Counter[str] = Counter()
        self.groups: dict[str, list[_Leg]] = {}
        self.bad_refids: set[str] = set()

    def read(self, sheet: Sheet) -> Extracted:
        rows_read = 0
        for row in _rows(self.source, sheet):
            rows_read += 1
            if isinstance(row, RowError):
                self.errors.append(row)
                continue
            try:
                self._row(row)
            except Problem as exc:
                self.errors.append(RowError(self.source.name, row.line, str(exc)))
                if row.get("type").lower() in _PAIRED:
                    self.bad_refids.add(row.get("refid"))
        for refid, legs in self.groups.items():
            if refid in self.bad_refids:
                continue  # one of its rows is already an error
            try:
                self.out.append((legs[0].row.line, self._pair(refid, legs)))
            except Problem as exc:
                self.errors.append(RowError(self.source.name, legs[0].row.line, str(exc)))
        trades = [t for _, ts in sorted(self.out, key=lambda e: e[0]) for t in ts]
        self.errors.sort(key=lambda e: e.line)
        return Extracted(trades=from_trades(trades), errors=self.errors, rows_read=rows_read, ignored=self.ignored)

    def _row(self, row: Row) -> None:
        kind, sub = row.get("type").lower(), row.get("subtype").lower()
        if kind in ("deposit", "withdrawal") and not row.get("txid"):
            self.ignored[_PENDING] += 1
            return
        if f"{kind} {sub}" in Kraken.IGNORED:
            self.ignored[f"{kind} {sub}"] += 1
            return
        if kind == "earn" and sub == "reward":
            kind = "earn reward"
        if kind not in (*_PAIRED, *_SINGLE):
            what = "is not handled by the kraken adapter" if kind else "is missing"
            shown = f"{row.get('type')} {row.get('subtype')}".strip()
            expected = [k for k in Kraken.ACTIONS if k not in ("buy", "sell")]
            raise problem("type", shown, f"{what} (expected one of {', '.join(expected)}; "
                                         f"ignored: {', '.join(Kraken.IGNORED)})")
        code = row.get("asset")
        if not code:
            raise problem("asset", code, "is missing (expected an asset code such as XXBT or ZUSD)")
        amount = row.number("amount", _NUMBER_HINT) or Decimal(0)
        fee = row.number("fee", _NUMBER_HINT, required=False) or Decimal(0)
        if fee < 0:
            raise problem("fee", row.get("fee"), "is negative (expected a fee of 0 or more)")
        instant(row, "time")  # a bad time is this row's error, not its pair's
        leg = _Leg(row, asset(code), amount, fee)
        if kind in _PAIRED:
            refid = row.get("refid")
            if not refid:
                raise problem("refid", refid, "is missing (expected the id shared by a trade's two rows)")
            self.groups.setdefault(refid, []).append(leg)
            return
        self.out.append((row.line, self._single(kind, leg)))

    def _single(self, kind: str, leg: _Leg) -> list[Trade]:
        """The trades for a deposit, withdrawal, transfer or reward row. Raises Problem."""
        row, coin, amount, fee = leg.row, leg.asset, leg.amount, leg.fee
        common = _common(row, "time", self.context, self.account, broker_trade_id=row.get("txid") or None)
        fiat = coin in FIAT
        if amount == 0:
            raise problem("amount", row.get("amount"), f"is zero (expected {_NUMBER_HINT})")
        incoming = amount > 0
        if kind in ("deposit", "withdrawal") and incoming != (kind == "deposit"):
            sign = "positive" if incoming else "negative"
            raise problem("amount", row.get("amount"), f"is {sign} for a {kind} (expected the opposite sign)")
        if kind in _INCOME:
            if not incoming:
                raise problem("amount", row.get("amount"), f"is negative (expected a positive {kind} received)")
            net = amount - fee
            if net <= 0:
                raise problem("fee", row.get("fee"), "is not less than the amount received")
            if fiat:
                return [make(common, symbol=coin, asset_class=AssetClass.CASH, action=Action.INTEREST,
                             currency=coin, amount=net, fee=fee, note=kind)]
            return [make(common, symbol=coin, action=Action.INCOME, quantity=net, price=self._usd_price(row, amount),
                         fee=fee, fee_currency=coin, note=kind)]
        if fiat:
            action = Action.DEPOSIT if incoming else Action.WITHDRAWAL
            note = None if kind != "transfer" else "transfer"
            return [make(common, symbol=coin, asset_class=AssetClass.CASH, action=action, currency=coin,
                         amount=amount - fee, fee=fee, note=note)]
        note = "basis unknown" if incoming else None
        if kind == "transfer":
            sub = row.get("subtype")
            note = "; ".join(n for n in (f"transfer {sub}".strip(), note) if n)
        action = Action.TRANSFER_IN if incoming else Action.TRANSFER_OUT
        trades = [make(common, symbol=coin, action=action, quantity=abs(amount), note=note)]
        if fee:
            trades.append(fee_paid(common, coin, fee, fiat=False, note=f"{kind} fee"))
        return trades

    def _usd_price(self, row: Row, amount: Decimal) -> Decimal | None:
        """The USD price from ``amountusd``, when the file has it (newer exports)."""
        usd = row.number("amountusd", "a USD amount such as 12.34", required=False)
        return to_scale(abs(usd) / amount) if usd else None

    def _pair(self, refid: str, legs: list[_Leg]) -> list[Trade]:
        """One buy or sell (two for coin for coin) from the rows sharing ``refid``. Raises Problem."""
        trades: list[Trade] = []
        moving: list[_Leg] = []
        first = legs[0].row
        common = _common(first, "time", self.context, self.account, broker_trade_id=refid)
        for leg in legs:
            if leg.asset == "KFEE":
                self.ignored["KFEE"] += 1
            elif leg.amount:
                moving.append(leg)
            elif leg.fee:  # a fee charged on its own row, in an asset the trade didn't touch
                trades.append(fee_paid(common, leg.asset, leg.fee, fiat=leg.asset in FIAT, note="trade fee"))
        spent = [g for g in moving if g.amount < 0]
        got = [g for g in moving if g.amount > 0]
        if len(spent) != 1 or len(got) != 1:
            shown = ", ".join(f"{g.asset} {g.amount}" for g in moving) or "no amounts"
            rows = "1 row that moves" if len(moving) == 1 else f"{len(moving)} rows that move"
            raise problem("refid", refid, f"has {rows} an asset ({shown}; "
                                          "expected two rows sharing it: one asset spent, one received)")
        out, into = spent[0], got[0]
        if out.asset == into.asset:
            raise problem("refid", refid, f"spends and receives {out.asset} (expected two different assets)")
        return swap(common, (out.asset, -out.amount, out.fee), (into.asset, into.amount, into.fee)) + trades
