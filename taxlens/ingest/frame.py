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

#: A trade's identity text, whose md5 is its id (before twins are numbered): the normalized
#: fields with ``$adapter``, joined by U+001F. Not the line number: it shifts when the user
#: downloads a wider date range. Not the note: it is descriptive text. The decimals enter as
#: ``_quantity``, ``_price``, ``_fee`` and ``_amount``, their ``decimal_text``. Changing it
#: changes every id (tests/test_store.py pins one).
IDENTITY_SQL = """
    concat_ws(chr(31), $adapter, account, symbol, asset_class, action,
        coalesce(epoch_us(ts)::VARCHAR, ''), trade_date::VARCHAR,
        _quantity, coalesce(_price, ''), _fee, fee_currency, currency, coalesce(_amount, ''),
        coalesce(broker_trade_id, ''), coalesce(order_id, ''), coalesce(lot_id, ''))
"""

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


def identity_columns(adapter: str) -> tuple[str, str]:
    """The names of a normalized frame's optional identity columns: each row's identity hash,
    before twins are numbered, as its high and low 64 bits (UInt64). The hash is
    ``md5_number`` of the store's identity text (``IDENTITY_SQL``) made with ``adapter``;
    ``with_identity`` adds them. The store uses them when it imports the frame under that
    adapter's name and hashes the rows itself otherwise: the names carry the adapter, so a
    frame never lends its hashes to an import under another name."""
    return f"_identity_hi:{adapter}", f"_identity_lo:{adapter}"


def decimal_text(column: str) -> pl.Expr:
    """A decimal column's text in the identity: plain, without trailing zeros or a bare
    point (so a change of storage scale keeps the ids), null for null."""
    return pl.col(column).cast(pl.String).str.strip_chars_end("0").str.strip_chars_end(".")


def with_identity(frame: pl.DataFrame, adapter: str, texts: dict[str, pl.Expr] | None = None) -> pl.DataFrame:
    """``frame`` (SCHEMA's columns, perhaps more) with its identity columns for ``adapter``
    (``identity_columns``), so the store need not hash the rows.

    The text hashed is ``IDENTITY_SQL``'s, built by polars (cheaper than DuckDB's casts and
    concat_ws) from the frame's columns and the decimals' texts: ``decimal_text`` unless
    ``texts`` gives them as expressions over ``frame`` (an adapter may have them more cheaply
    than by casting). polars has no md5: DuckDB hashes."""
    import duckdb

    text = {c: texts[c] if texts and c in texts else decimal_text(c) for c in ("quantity", "price", "fee", "amount")}
    dates = frame.get_column("trade_date").unique()  # a few hundred: each formatted once
    # Streamed: the engine splits the rows among the cores, where one select would build
    # the whole column on one.
    identity = frame.lazy().select(pl.concat_str(
        pl.lit(adapter), "account", "symbol", "asset_class", "action",
        pl.col("ts").dt.epoch("us").cast(pl.String).fill_null(""),  # epoch_us(ts)::VARCHAR
        pl.col("trade_date").replace_strict(dates, dates.cast(pl.String), return_dtype=pl.String),  # ::VARCHAR
        text["quantity"], text["price"].fill_null(""), text["fee"], "fee_currency", "currency",
        text["amount"].fill_null(""), *(pl.col(c).fill_null("") for c in ("broker_trade_id", "order_id", "lot_id")),
        separator="\x1f",  # chr(31)
    ).alias("identity")).collect(engine="streaming")
    with duckdb.connect(":memory:") as con:
        con.register("incoming", identity)
        hashed = con.sql(
            "SELECT (h >> 64)::UBIGINT AS hi, (h & 18446744073709551615::UHUGEINT)::UBIGINT AS lo "
            "FROM (SELECT md5_number(identity) AS h FROM incoming)"
        ).pl()
    hi, lo = identity_columns(adapter)
    # One chunk, as the frame's own columns are: Arrow takes aligned chunks without a copy.
    return frame.with_columns(hashed.get_column("hi").rechunk().alias(hi), hashed.get_column("lo").rechunk().alias(lo))


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
