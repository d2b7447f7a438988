"""The normalized trade frame every adapter returns, and helpers to build and check it.

Row-by-row adapters (low-volume formats) build ``Trade`` records and call ``from_trades``;
high-volume adapters build the same columns with polars expressions (see ``generic.py``).
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from taxlens.models import Trade
from taxlens.money import PRECISION, SCALE

DECIMAL = pl.Decimal(PRECISION, SCALE)

#: Column order and types of a normalized trade frame (the ``trades`` table less the ids and
#: the file reference, which the store adds).
SCHEMA: dict[str, pl.DataType] = {
    "line": pl.Int64(),
    "account": pl.String(),
    "symbol": pl.String(),
    "asset_class": pl.String(),
    "action": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "trade_date": pl.Date(),
    "quantity": DECIMAL,
    "price": DECIMAL,
    "fee": DECIMAL,
    "fee_currency": pl.String(),
    "currency": pl.String(),
    "amount": DECIMAL,
    "broker_trade_id": pl.String(),
    "order_id": pl.String(),
    "lot_id": pl.String(),
    "note": pl.String(),
}


def empty() -> pl.DataFrame:
    """A normalized frame with no rows."""
    return pl.DataFrame(schema=SCHEMA)


def from_trades(trades: Iterable[Trade]) -> pl.DataFrame:
    """Build the normalized frame from Trade records, in their order.

    ``fee_currency`` defaults to the trade currency. Prices are rounded to the storage scale
    (they are informational; quantities and amounts were checked to fit exactly).
    """
    rows = []
    for t in trades:
        row = t.model_dump()
        row["ts"] = row.pop("timestamp")
        row["action"] = t.action.value
        row["asset_class"] = t.asset_class.value
        row["fee_currency"] = t.fee_currency or t.currency
        rows.append(row)
    if not rows:
        return empty()
    return pl.DataFrame(rows, schema=SCHEMA)


def to_csv(frame: pl.DataFrame) -> str:
    """Render a normalized frame as CSV text for golden files and debugging, in the listings'
    text forms (plain decimals, ISO 8601 UTC instants), so it does not change with the
    storage scale."""
    import io

    from taxlens.report.listing import write_csv

    out = io.StringIO()
    write_csv(frame.select(list(SCHEMA)), out)
    return out.getvalue()
