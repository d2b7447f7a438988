"""Opening lots: positions held before the exported history begins.

Real exports rarely reach back to every purchase. Without the lots a sale draws on, taxlens
books the sale against an explicit "basis unknown" shortfall; an opening-lots file supplies
those lots instead (a broker's open-lots or unrealized-gain export, reshaped)::

    account,symbol,acquired,quantity,cost_basis,lot_id,asset_class,currency
    Alpaca,VTI,2021-03-15,12.5,2543.10,OPEN-VTI-1,etf,USD

``account``, ``symbol``, ``acquired``, ``quantity`` and ``cost_basis`` are required columns;
``cost_basis`` is the lot's total basis with fees. A blank ``cost_basis`` is a lot of unknown
basis (never zero). ``lot_id`` names the lot for specific identification. Each row becomes a
purchase on ``acquired`` whose cash amount is exactly the basis.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import ClassVar

from taxlens.errors import FileError, RowError
from taxlens.ingest.base import Context, Extracted, Source
from taxlens.ingest.frame import from_trades
from taxlens.ingest.rows import Problem, Row, head_records, problem, read_table
from taxlens.models import Action, AssetClass, Trade
from taxlens.money import div18

REQUIRED = ("account", "symbol", "acquired", "quantity", "cost_basis")
OPTIONAL = ("lot_id", "asset_class", "currency")


def _is_header(fields: list[str]) -> bool:
    names = {f.lower() for f in fields}
    return set(REQUIRED) <= names and "side" not in names


class OpeningLots:
    """Opening-lots CSV: one row per lot held before the history starts."""

    NAME: ClassVar[str] = "opening-lots"
    TITLE: ClassVar[str] = "taxlens opening lots CSV (positions held before the exports begin)"
    IDENTIFIED_BY: ClassVar[str] = "a header with account, symbol, acquired, quantity, cost_basis"
    EXAMPLE: ClassVar[str] = (
        "account,symbol,acquired,quantity,cost_basis,lot_id\n"
        "Alpaca,VTI,2021-03-15,12.5,2543.10,OPEN-VTI-1"
    )
    ACTIONS: ClassVar[dict[str, str]] = {"(each row)": "buy (an opening lot)"}
    IGNORED: ClassVar[dict[str, str]] = {}

    def identify(self, source: Source) -> bool:
        records = head_records(source, 1)
        return bool(records) and _is_header(records[0])

    def extract(self, source: Source, context: Context) -> Extracted:
        table = read_table(source, _is_header, within=1)
        if table is None:
            raise FileError(source.name, f"no opening-lots header (expected {', '.join(REQUIRED)})", 1)
        table.header = [h.lower() for h in table.header]
        unknown = [h for h in table.header if h not in REQUIRED + OPTIONAL]
        if unknown:
            raise FileError(source.name, f"unknown column {unknown[0]!r} (expected {', '.join(REQUIRED + OPTIONAL)})", table.header_line)
        trades, errors, rows = [], [], 0
        for row in table.rows():
            rows += 1
            if isinstance(row, RowError):
                errors.append(row)
                continue
            try:
                trades.append(_lot(row, context))
            except Problem as exc:
                errors.append(RowError(source.name, row.line, str(exc)))
        return Extracted(trades=from_trades(trades), errors=errors, rows_read=rows, ignored=Counter())


def _lot(row: Row, context: Context) -> Trade:
    account = context.account or row.get("account")
    if not account:
        raise problem("account", "", "is missing (expected the account's name)")
    symbol = row.get("symbol")
    if not symbol:
        raise problem("symbol", "", "is missing (expected a ticker or coin such as VTI or BTC)")
    text = row.get("acquired")
    try:
        acquired = dt.date.fromisoformat(text)
    except ValueError as exc:
        raise problem("acquired", text, "is not a date (expected YYYY-MM-DD)") from exc
    quantity = row.number("quantity", "a positive number such as 12.5")
    if quantity is None or quantity <= 0:
        raise problem("quantity", row.get("quantity"), "is not positive (expected a positive number such as 12.5)")
    basis = row.number("cost_basis", "the lot's total cost with fees, such as 2543.10", required=False)
    if basis is not None and basis < 0:
        raise problem("cost_basis", row.get("cost_basis"), "is negative (expected 0 or more)")
    asset = row.get("asset_class").lower() or "equity"
    if asset not in {a.value for a in AssetClass}:
        raise problem("asset_class", row.get("asset_class"), f"is not an asset class (expected one of {', '.join(a.value for a in AssetClass)})")
    common = {
        "line": row.line, "account": account, "symbol": symbol, "asset_class": AssetClass(asset),
        "trade_date": acquired, "quantity": quantity, "currency": (row.get("currency") or "USD").upper(),
        "broker_trade_id": row.get("lot_id") or None, "note": "opening lot",
    }
    if basis is None:
        return Trade(action=Action.TRANSFER_IN, **common)  # type: ignore[arg-type]
    return Trade(action=Action.BUY, price=div18(basis, quantity), amount=-basis, **common)  # type: ignore[arg-type]
