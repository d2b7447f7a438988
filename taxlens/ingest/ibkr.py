"""Interactive Brokers Flex Query trades, delivered as XML or as CSV.

Formats (``shared/reference/formats.md`` §2a, §2b):

- XML: ``<FlexQueryResponse>`` with one ``<FlexStatement>`` per account; the ``<Trades>``
  section's ``<Trade …/>`` elements carry every value as an attribute (``buySell``,
  ``quantity``, ``tradePrice``, ``ibCommission``, ``dateTime``…). Other sections are counted
  and ignored for now.
- CSV: the same fields under display names (``Buy/Sell``, ``TradeDate``, ``CurrencyPrimary``,
  ``IBCommission``…), with or without "section code and line descriptor" prefixes.

Quirks handled here:

- Every field is optional (the user ticks them); a trade needs Buy/Sell, Quantity, TradePrice,
  a date, and a Symbol or ISIN. Quantity is negative on sells; the side comes from Buy/Sell.
- Dates use whatever format the query was set up with, and can differ between fields. Times
  carry no zone: they are IBKR statement time, US/Eastern, stored as UTC; the tax date is that
  instant's date in the taxpayer's zone. ``DateTime`` wins over ``TradeDate`` + ``TradeTime``;
  a date alone is the tax date. A slashed date is read as US MM/dd (dd/MM looks the same).
- ``(Ca.)`` sides and TradeCancel rows cancel an earlier row; both are dropped (netted).
- ORDER rows summarise EXECUTION rows: when both are present only executions are imported.
- Forex conversions (asset class CASH, or no ISIN and no symbol) are not security lots.
- The commission can be in another currency than the trade (a CHF commission on a USD trade).
  It is negative when charged; a positive one (a credit, seen on re-booked corrections) becomes
  a negative fee with a note, so the cost basis is not overstated.
- A SELL that opens a position (Open/CloseIndicator O) is a short sale, a BUY that closes one
  a cover: the book must see them as such.
- Options and futures are errors, not skips: their taxable events must not vanish.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from decimal import Decimal
from typing import ClassVar
from zoneinfo import ZoneInfo

from taxlens.errors import FileError, RowError
from taxlens.ingest.base import Context, Extracted, Source
from taxlens.ingest.frame import from_trades
from taxlens.ingest.ibkr_cancel import net_cancellations
from taxlens.ingest.ibkr_read import (
    DATE_HINT,
    FlexFile,
    FlexRow,
    csv_header_lines,
    is_trades_header,
    parse_time,
    parse_when,
    read_csv,
    read_xml,
)
from taxlens.models import Action, AssetClass, Trade
from taxlens.money import SCALE, D, NotANumber, fits, plain, to_scale

#: IBKR statement time. Inferred (formats.md §2a: statements say EST/EDT in WhenGenerated).
EASTERN = ZoneInfo("America/New_York")

_ASSET_CLASSES = {
    "STK": AssetClass.EQUITY,  # ETFs are STK at IBKR
    "FUND": AssetClass.FUND,
    "BOND": AssetClass.BOND,
    "BILL": AssetClass.BOND,
    "CRYPTO": AssetClass.CRYPTO,
    "WAR": AssetClass.OTHER,
    "CMDTY": AssetClass.OTHER,
}
_DERIVATIVES = {"OPT", "FOP", "FUT", "FSFOP", "FSOPT", "SSF", "IOPT", "CFD", "FWD"}
_FOREX_SYMBOL = re.compile(r"[A-Z]{3}\.[A-Z]{3}")
_CURRENCY = re.compile(r"[A-Z][A-Z0-9]{1,9}")
_XML_START = re.compile(r"\s*(<\?xml[^>]*\?>\s*)?(<!--.*?-->\s*)*<FlexQueryResponse[\s>/]", re.S)
_NUMBER_HINT = {"quantity": "such as 10 or -0.5", "tradeprice": "such as 187.40",
                "ibcommission": "such as -1.25", "netcash": "such as -1876.25",
                "proceeds": "such as 1875", "taxes": "such as -0.5"}
#: Field key -> the CSV display name, used in messages when a row lacks the field entirely.
_DISPLAY = {"buysell": "Buy/Sell", "quantity": "Quantity", "tradeprice": "TradePrice",
            "tradedate": "TradeDate", "datetime": "DateTime", "tradetime": "TradeTime",
            "ibcommission": "IBCommission", "ibcommissioncurrency": "IBCommissionCurrency",
            "currency": "CurrencyPrimary", "netcash": "NetCash", "proceeds": "Proceeds",
            "taxes": "Taxes", "assetcategory": "AssetClass", "symbol": "Symbol",
            "levelofdetail": "LevelOfDetail"}
#: The same for XML rows, by attribute name.
_ATTRIBUTE = {"buysell": "buySell", "quantity": "quantity", "tradeprice": "tradePrice",
              "tradedate": "tradeDate", "datetime": "dateTime", "tradetime": "tradeTime",
              "ibcommission": "ibCommission", "ibcommissioncurrency": "ibCommissionCurrency",
              "currency": "currency", "netcash": "netCash", "proceeds": "proceeds",
              "taxes": "taxes", "assetcategory": "assetCategory", "symbol": "symbol",
              "levelofdetail": "levelOfDetail"}
#: Sections that change lots: ignoring them is worth a warning.
_LOT_SECTIONS = {"CorporateAction": "corporate action", "Transfer": "position transfer"}


class IbkrFlex:
    """IBKR Flex Query Trades, XML or CSV."""

    NAME: ClassVar[str] = "ibkr-flex"
    TITLE: ClassVar[str] = "Interactive Brokers Flex Query (Trades, XML or CSV)"
    IDENTIFIED_BY: ClassVar[str] = (
        "XML starting with <FlexQueryResponse, or a CSV header with Buy/Sell and TradePrice"
    )
    EXAMPLE: ClassVar[str] = (
        '"Buy/Sell","TradeDate","ISIN","Quantity","TradePrice","TradeMoney","CurrencyPrimary",'
        '"IBCommission","IBCommissionCurrency"\n'
        '"BUY","20230522","US9220427424","95","93.78","8909.1","USD","-1","USD"'
    )
    ACTIONS: ClassVar[dict[str, str]] = {
        "BUY": Action.BUY.value,
        "SELL": Action.SELL.value,
        "SELL with Open/CloseIndicator O": Action.SELL_SHORT.value,
        "BUY with Open/CloseIndicator C": Action.BUY_TO_COVER.value,
    }
    IGNORED: ClassVar[dict[str, str]] = {
        "forex": "forex conversion: not a security lot (FX gains are not tracked yet)",
        "cancelled": (
            "a cancellation (BUY (Ca.), SELL (Ca.), TradeCancel) and the trade it cancels: "
            "they net to nothing"
        ),
        "ORDER": "order summary: executions are imported",
        "CLOSED_LOT": "broker's lot matching: used for reconciliation later",
        "SYMBOL_SUMMARY": "subtotal of trades that are imported one by one",
        "ASSET_SUMMARY": "subtotal of trades that are imported one by one",
        "WashSale": "broker's wash-sale adjustment: taxlens computes wash sales itself",
        "TradeConfirm": "trade confirmation: repeats the Trades section",
        "CashTransaction": "dividends, interest, withholding, deposits and fees: not imported yet",
        "CorporateAction": "split, merger or spin-off: not imported yet (a warning names the count)",
        "Transfer": "position transfer: not imported yet (a warning names the count)",
        "OpenPosition": "position snapshot: used for reconciliation later",
        "FxTransaction": "FX gain or loss: not tracked yet",
        "AccountInformation": "account details, not a trade",
        "ConversionRate": "exchange rate table, not a trade",
        "(any other section)": "not the Trades section: counted under its element name or section code",
    }

    def identify(self, source: Source) -> bool:
        """True for Flex XML, or a CSV whose (first, or first TRNT) header names Buy/Sell and
        TradePrice; never for the Activity Statement or Transaction History CSVs."""
        head = source.head
        if head.lstrip().startswith("<"):
            return bool(_XML_START.match(head))
        rows = csv_header_lines(head)
        if not rows or rows[0][:2] in (["Statement", "Header"], ["Trades", "Header"]):
            return False  # the Activity Statement and Transaction History reports

        def tag(fields: list[str]) -> str:
            return fields[0].strip().upper() if fields else ""

        rows = [f for f in rows if tag(f) not in ("BOF", "BOA", "BOS")]
        if rows and tag(rows[0]) == "HEADER":  # section codes: the Trades header may come later
            return any(tag(f) == "HEADER" and is_trades_header(f[2:]) for f in rows)
        return bool(rows) and is_trades_header(rows[0])  # plain: the first row is the header

    def extract(self, source: Source, context: Context) -> Extracted:
        """Trades of ``source``; other rows counted in ``ignored``, bad ones as RowErrors.

        Raises FileError for malformed XML, a CSV without a usable Trades header, or a Trade
        Confirmation query (which has no Trades section).
        """
        flex = read_xml(source) if source.head.lstrip().startswith("<") else read_csv(source)
        errors = list(flex.errors)
        ignored: Counter[str] = Counter(flex.other)
        warnings: list[str] = []
        if not flex.rows and "TradeConfirm" in flex.other:
            raise FileError(
                source.name,
                "is a Trade Confirmation Flex query, which taxlens does not read "
                "(expected an Activity Flex query with the Trades section)",
                flex.first_line["TradeConfirm"],
            )
        rows = _by_level(flex, source.name, ignored, errors)
        rows, cancel_errors, netted = net_cancellations(rows, source.name)
        errors.extend(cancel_errors)
        if netted:
            ignored["cancelled"] += netted
        trades: list[Trade] = []
        no_currency = 0
        for row in rows:
            result = _trade(row, source.name, context)
            if isinstance(result, str):
                ignored[result] += 1
            elif isinstance(result, list):
                errors.extend(result)
            else:
                trades.append(result)
                no_currency += not row.get("currency")
        if no_currency:
            plural = "s" if no_currency > 1 else ""
            warnings.append(f"{no_currency} trade{plural} had no currency: assumed USD")
        for name, what in _LOT_SECTIONS.items():
            if n := flex.other.get(name):
                warnings.append(
                    f"{n} {what} row{'s' if n > 1 else ''} not imported: lots they change must be "
                    "adjusted by hand until taxlens reads them"
                )
        errors.sort(key=lambda e: e.line)
        return Extracted(trades=from_trades(trades), errors=errors, rows_read=flex.rows_read,
                         ignored=ignored, warnings=warnings)


def _by_level(
    flex: FlexFile, path: str, ignored: Counter[str], errors: list[RowError]
) -> list[FlexRow]:
    """The rows to import by level of detail: executions, or orders when there are none.

    Returns the kept rows; counts the others in ``ignored`` and unknown levels in ``errors``.
    """
    def level(row: FlexRow) -> str:
        return row.get("levelofdetail").upper() or "EXECUTION"  # older queries omit it

    has_executions = any(level(r) == "EXECUTION" for r in flex.rows)
    kept = []
    for row in flex.rows:
        lod = level(row)
        if lod == "EXECUTION" or (lod == "ORDER" and not has_executions):
            kept.append(row)
        elif lod in ("ORDER", "CLOSED_LOT", "SYMBOL_SUMMARY", "ASSET_SUMMARY"):
            ignored[lod] += 1
        else:
            label = row.label("levelofdetail", "LevelOfDetail")
            errors.append(RowError(path, row.line, (
                f"{label} {row.get('levelofdetail')!r} is not a known level of detail "
                "(expected EXECUTION, ORDER or CLOSED_LOT)"
            )))
    return kept


def is_forex(row: FlexRow) -> bool:
    """Whether ``row`` is a currency conversion rather than a security trade."""
    asset = row.get("assetcategory").upper()
    if asset == "CASH":
        return True
    if asset:
        return False
    symbol = row.get("symbol")
    return bool(_FOREX_SYMBOL.fullmatch(symbol)) or (not symbol and not row.get("isin"))


class _Row:
    """Collects one row's values and the errors found reading them."""

    def __init__(self, row: FlexRow, path: str) -> None:
        self.row, self.path = row, path
        self.errors: list[RowError] = []

    def label(self, key: str) -> str:
        names = _ATTRIBUTE if self.row.xml else _DISPLAY
        return self.row.label(key, names.get(key, key))

    def fail(self, key: str, problem: str, value: str | None = None) -> None:
        shown = self.row.get(key) if value is None else value
        self.errors.append(RowError(self.path, self.row.line, f"{self.label(key)} {shown!r} {problem}"))

    def number(self, key: str, *, required: bool = False, exact: bool = True) -> Decimal | None:
        """The field as an exact Decimal; None (with an error if required or bad) otherwise."""
        text = self.row.get(key)
        hint = f"(expected a number {_NUMBER_HINT.get(key, 'such as 10')})"
        if not text:
            if required:
                self.fail(key, f"is missing {hint}")
            return None
        try:
            value = D(text)
        except NotANumber:
            self.fail(key, f"is not a number {hint}")
            return None
        why = fits(value)
        if why and "decimal places" in why and exact:
            self.fail(key, f"{why} (expected at most {SCALE})")
            return None
        if why and "decimal places" not in why:
            self.fail(key, why)  # fits() says what the limit is
            return None
        return value if not why else to_scale(value)  # a price may carry more digits than it means

    def when(self, tz: ZoneInfo) -> tuple[dt.datetime | None, dt.date] | None:
        """(UTC timestamp or None, tax date) from DateTime, or TradeDate and TradeTime.

        A time is US/Eastern; the tax date is its date in ``tz``. A date alone is the tax date.
        """
        stamp, day_text, clock_text = (self.row.get(k) for k in ("datetime", "tradedate", "tradetime"))
        parsed = parse_when(stamp) if stamp else None
        if stamp and parsed is None:
            self.fail("datetime", f"is not a date (expected {DATE_HINT})")
            return None
        if parsed is None or parsed[1] is None:
            if day_text:
                when = parse_when(day_text)
                if when is None:
                    self.fail("tradedate", f"is not a date (expected {DATE_HINT})")
                    return None
                clock = when[1]
                if clock is None and clock_text:
                    clock = parse_time(clock_text)
                    if clock is None:
                        self.fail("tradetime", "is not a time (expected HHmmss or HH:mm:ss, such as 153000)")
                        return None
                parsed = (when[0], clock)
            elif parsed is None:
                has = self.row.labels
                key = "datetime" if "datetime" in has and "tradedate" not in has else "tradedate"
                self.fail(key, f"is missing (expected {DATE_HINT})")
                return None
        day, clock = parsed
        if clock is None:
            return None, day
        # In the repeated autumn hour fold=0 takes the first (EDT) reading; IBKR gives no hint.
        eastern = dt.datetime.combine(day, clock, tzinfo=EASTERN)
        return eastern.astimezone(dt.UTC), eastern.astimezone(tz).date()


def _trade(row: FlexRow, path: str, context: Context) -> Trade | str | list[RowError]:
    """One Flex row as a Trade, or the IGNORED key it is counted under, or its errors."""
    if is_forex(row):
        return "forex"
    r = _Row(row, path)
    side = row.get("buysell").upper()
    if side not in ("BUY", "SELL"):
        problem = "is missing" if not side else "is not a known side"
        r.fail("buysell", f"{problem} (expected BUY or SELL; BUY (Ca.) and SELL (Ca.) mark cancellations)")
    asset_text = row.get("assetcategory").upper()
    asset = _ASSET_CLASSES.get(asset_text or "STK")
    if asset_text in _DERIVATIVES:
        r.fail("assetcategory", "is not supported: options and futures are not supported yet "
               "(expected STK, FUND, BOND or CRYPTO)")
    elif asset is None:
        r.fail("assetcategory", "is not a known asset class (expected STK, FUND, BOND, CRYPTO or CASH)")
    if not row.get("symbol") and not row.get("isin"):
        r.fail("symbol", "is missing (expected a ticker such as VT, or an ISIN)")
    quantity = r.number("quantity", required=True)
    if quantity is not None and quantity == 0:
        r.fail("quantity", "is zero (expected a non-zero quantity)")
    price = r.number("tradeprice", required=True, exact=False)
    if price is not None and price < 0:
        r.fail("tradeprice", "is negative (expected 0 or more)")
    currency = row.get("currency").upper() or "USD"
    if not _CURRENCY.fullmatch(currency):
        r.fail("currency", "is not a currency code (expected e.g. USD, EUR or CHF)")
    fee_currency = row.get("ibcommissioncurrency").upper() or currency
    if not _CURRENCY.fullmatch(fee_currency):
        r.fail("ibcommissioncurrency", "is not a currency code (expected e.g. USD, EUR or CHF)")
    commission = r.number("ibcommission") or Decimal(0)
    taxes = r.number("taxes")
    net_cash = r.number("netcash")
    proceeds = r.number("proceeds")
    when = r.when(context.timezone)
    if r.errors:
        return r.errors
    assert quantity is not None and when is not None  # checked above: errors return first

    notes = []
    if commission > 0:
        notes.append(f"IBCommission {plain(commission)} {fee_currency} is a credit: stored as a negative fee")
    if taxes:
        notes.append(f"Taxes {plain(taxes)} {currency}")
    amount = net_cash
    if amount is None and proceeds is not None and fee_currency == currency:
        # netCash = proceeds + taxes + ibCommission (formats.md §2a, checked on the sample)
        amount = proceeds + commission + (taxes or 0)
    action = Action.BUY if side == "BUY" else Action.SELL
    open_close = row.get("opencloseindicator").upper()
    if side == "SELL" and open_close == "O":
        action = Action.SELL_SHORT
    elif side == "BUY" and open_close == "C":
        action = Action.BUY_TO_COVER
    elif open_close in ("C;O", "O;C"):
        notes.append("closes one position and opens the opposite one")
    timestamp, trade_date = when
    return Trade(
        line=row.line,
        account=context.account or row.get("accountid") or "IBKR",
        symbol=row.get("symbol") or row.get("isin"),
        asset_class=asset or AssetClass.EQUITY,
        action=action,
        timestamp=timestamp,
        trade_date=trade_date,
        quantity=abs(quantity),
        price=price,
        fee=-commission if commission else Decimal(0),  # IBKR's commission is negative when charged
        fee_currency=fee_currency,
        currency=currency,
        amount=amount,
        broker_trade_id=row.get("tradeid") or row.get("transactionid") or None,
        order_id=row.get("iborderid") or None,
        note="; ".join(notes) or None,
    )
