"""The generic CSV's fast path: a regular file normalised in one lean pass.

``generic.normalize`` reads anything a generic CSV may hold (several date forms, lenient
numbers, bad rows to be named), so it parses dates with a chain of parsers and keeps a column
of booleans per check. Most large files are machine-written and regular, and for those
``read`` gives exactly the same frame for a fraction of the work: the same polars reader and
the same value expressions, less the steps that change nothing on such a file, one combined
check, and the identity's decimal texts taken from the plain text of the numbers rather than
cast back from the decimals (``frame.with_identity``).

Regular means: the file is quote-free and LF-terminated, every line has the header's field
count, and every row holds values in the forms ``normalize`` can read only one way: an ISO
8601 instant with seconds and a ``Z`` or ``±HH:MM`` offset, or a bare date; numbers without
sign, exponent or leading zeros and with at most 18 decimals (exact in DECIMAL(38,18), and
their canonical text is themselves less trailing zeros); a known side, currency and asset
class. Anything else, any bad row included, returns None, and ``generic`` reads the file the
general way, which names every bad value: nothing here makes a message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import polars as pl

from taxlens.ingest.base import Context, Extracted, Source
from taxlens.ingest.frame import DECIMAL, SCHEMA, with_identity
from taxlens.models import AssetClass

if TYPE_CHECKING:
    from taxlens.ingest.generic import Layout

_PLAIN_NUMBER = r"^(0|[1-9][0-9]{0,19})(\.[0-9]{1,18})?$"
_ISO_OFFSET = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](Z|[+-][0-9]{2}:[0-9]{2})$"
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_CURRENCY = r"^[A-Z][A-Z0-9]{1,9}$"  # generic._CURRENCY
_CLASSES = [a.value for a in AssetClass]
_MAX_OFFSETS = 1000  # distinct UTC offsets (and the like) a chunk may have


def read(source: Source, layout: Layout, context: Context, adapter: str) -> Extracted | None:
    """The normalised trades of a regular generic CSV (with their identity hashes), or None
    when the file is not regular. Raises FileError for a bad header, as ``generic`` would."""
    from taxlens.ingest import generic  # generic imports this module

    if not _layout_ok(layout):
        return None
    data = source.data
    if b'"' in data or b"\r" in data:
        return None
    header_line, header, index = generic._columns(source, layout)
    if header_line != 1:
        return None
    lines = data.count(b"\n") + (not data.endswith(b"\n"))
    # polars raises on a line with too many fields and pads one with too few (or a blank
    # line) with nulls: with exactly (fields - 1) commas a line, no line can be short.
    if data.count(b",") != (len(header) - 1) * lines:
        return None
    # In ASCII text without tabs, vertical tabs or form feeds, a space is the only
    # whitespace a value can start or end with: where none does, stripping changes nothing.
    spaces_only = data.isascii() and b"\t" not in data and b"\x0b" not in data and b"\x0c" not in data
    frames: list[pl.DataFrame] = []
    for raw, expected in _chunks(data, lines - 1, len(header), index, generic.CHUNK):
        if raw is None or raw.height != expected:
            return None
        frame = _normalize(raw, layout, context, adapter, spaces_only)
        if frame is None:
            return None
        frames.append(frame)
    if not frames:
        return None
    trades = frames[0] if len(frames) == 1 else pl.concat(frames, rechunk=False)
    return Extracted(trades=trades, errors=[], rows_read=trades.height)


def _layout_ok(layout: Layout) -> bool:
    """Layouts ``_normalize`` models: ISO dates, no constants, no ignored or signed sides."""
    return (
        layout.date_format is None and not layout.constants and not layout.ignored
        and not layout.signed_quantity and layout.delimiter == "," and layout.skip_lines == 0
    )


def _chunks(data: bytes, rows: int, fields: int, index: dict[str, int], chunk: int) -> Iterator[tuple[pl.DataFrame | None, int]]:
    """The ``rows`` data lines as string frames (canonical names, plus ``line``) of ``chunk``
    lines each, with the number of rows each must have; a frame is None when polars would
    not read it (a line with too many fields)."""
    from taxlens.ingest.generic import _line_starts

    schema = {f"c{i}": pl.String for i in range(fields)}
    if rows <= 0:
        return  # a header and nothing else
    starts = [0] if rows <= chunk else _line_starts(data, chunk)
    for k, begin in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(data)
        try:
            # The whole file is read with its header skipped, a chunk from a copy of its bytes.
            df = pl.read_csv(data if begin == 0 else data[begin:end], has_header=False, skip_rows=int(begin == 0),
                             schema=schema, raise_if_empty=False)
        except pl.exceptions.PolarsError:
            yield None, 0
            return
        line = 2 + k * chunk
        yield df.select(pl.col(f"c{i}").alias(canon) for canon, i in index.items()).with_columns(
            pl.int_range(line, line + df.height, dtype=pl.Int64).alias("line")
        ), min(chunk, rows - k * chunk)


def _normalize(raw: pl.DataFrame, layout: Layout, context: Context, adapter: str, spaces_only: bool) -> pl.DataFrame | None:
    """``generic.normalize`` of a chunk whose every row is regular, with the identity
    columns; None if any row is not.

    The values are ``normalize``'s expressions, less the steps that change nothing: a strip
    where no value has a space at either end (``spaces_only``), a lower- or upper-casing
    where every value is already one of the few ASCII codes it must become, a mapping of
    sides that sends each to itself."""
    from taxlens.ingest.generic import _number_text, _text

    if raw.height == 0:
        return None
    for canon in ("fee", "currency", "asset_class", "trade_id", "lot_id"):
        if canon not in raw.columns:
            raw = raw.with_columns(pl.lit(None, dtype=pl.String).alias(canon))
    if context.account is not None:
        raw = raw.with_columns(pl.lit(context.account).alias("account"))
    strings = [c for c in raw.columns if c != "line"]
    side, currency, asset_class = pl.col("side"), pl.col("currency"), pl.col("asset_class")
    sides = layout.sides

    def survey(chunk: pl.DataFrame, padding: list[str]) -> dict[str, Any]:
        # What decides the expressions below, in one pass over the chunk rather than one
        # each: which of `padding` have a value with a space at either end; what follows the
        # seconds ("Z" or an offset, "" for a bare date; other forms, fractions of a second
        # say, are not modelled, and make many distinct tails); and whether every side,
        # currency and asset class is already the code it must become.
        return chunk.select(
            *((pl.col(c).str.starts_with(" ") | pl.col(c).str.ends_with(" ")).any().alias(c) for c in padding),
            pl.col("date").str.slice(19).unique().head(_MAX_OFFSETS + 1).implode().alias("_tails"),
            (side.is_in(list(sides)).all() & all(k.isascii() for k in sides)).alias("_side"),
            (currency.is_null() | currency.str.contains(_CURRENCY)).all().alias("_currency"),
            (asset_class.is_null() | asset_class.is_in(_CLASSES)).all().alias("_asset_class"),
        ).row(0, named=True)

    facts = survey(raw, strings) if spaces_only else {}
    padded = {c: facts.get(c, True) for c in strings}
    if context.account is not None:
        padded["account"] = True  # not from the file: it may have any whitespace
    stripped = [c for c in strings if padded[c]]
    raw = raw.with_columns(_text(c) for c in stripped)  # generic._text: strip
    if not facts or {"date", "side", "currency", "asset_class"} & set(stripped):
        facts = survey(raw, [])  # of the stripped values

    tails = pl.Series("date", facts["_tails"], dtype=pl.String)
    if tails.len() > _MAX_OFFSETS:
        return None
    ts, instant = _instants(pl.col("date"), tails)
    codes = {"side": facts["_side"], "currency": facts["_currency"], "asset_class": facts["_asset_class"]}
    # Where every side is already a key of a mapping that sends each key to itself (the
    # canonical layout's), the mapping changes nothing.
    action = side if codes["side"] and all(k == v for k, v in sides.items()) else (
        (side if codes["side"] else side.str.to_lowercase()).replace_strict(sides, default=None, return_dtype=pl.String))

    def number(c: str) -> pl.Expr:  # generic._number_text (the strip done above)
        return _number_text(c, True) if layout.lenient_numbers else pl.col(c)

    # Independent expressions in one select run in parallel.
    work = raw.select(
        pl.col("line"),
        pl.col("account"),
        pl.col("symbol"),
        action.alias("action"),
        *(number(c).alias(f"_{c[0]}") for c in ("quantity", "price", "fee")),
        (currency if codes["currency"] else currency.str.to_uppercase()).fill_null("USD"),
        (asset_class if codes["asset_class"] else asset_class.str.to_lowercase()).fill_null("equity"),
        pl.col("trade_id").alias("_trade_id"),
        pl.col("lot_id").alias("_lot_id"),
        pl.col("date").alias("_date"),
        instant.alias("_instant"),
        ts.alias("ts"),
    )
    every = bool(work.get_column("_instant").all())
    if not every and not work.select((pl.col("_instant") | pl.col("_date").str.contains(_ISO_DATE)).all()).item():
        return None  # a date in a form the fast path does not read: leave early
    local_date = pl.col("ts").dt.convert_time_zone(context.timezone.key).dt.date()
    bare_date = pl.col("_date").str.to_date("%Y-%m-%d", strict=False)

    def plain(c: str) -> pl.Expr:
        return pl.col(c).str.contains(_PLAIN_NUMBER)

    def canonical(c: str) -> pl.Expr:
        # frame.decimal_text of the value, from its plain text: the same, since a plain
        # number has no zeros to drop but trailing ones after a point.
        e = pl.col(c)
        return pl.when(e.str.contains(".", literal=True)).then(e.str.strip_chars_end("0").str.strip_chars_end(".")).otherwise(e)

    work = work.with_columns(
        (local_date if every else pl.when("_instant").then(local_date).otherwise(bare_date)).alias("trade_date"),
        pl.col("_q").cast(DECIMAL, strict=False).alias("quantity"),
        pl.col("_p").cast(DECIMAL, strict=False).alias("price"),
        pl.col("_f").cast(DECIMAL, strict=False).alias("fee"),
        canonical("_q").alias("_qt"),
        canonical("_p").alias("_pt"),
        canonical("_f").fill_null("0").alias("_ft"),
        plain("_q").alias("_q_plain"),
        plain("_p").alias("_p_plain"),
        (pl.col("_f").is_null() | plain("_f")).alias("_f_plain"),
    )
    regular = work.select(pl.all_horizontal(
        pl.col("trade_date").is_between(pl.date(1900, 1, 1), pl.date(2100, 12, 31)),
        pl.col("account").str.len_bytes() > 0,
        pl.col("symbol").str.len_bytes() > 0,
        pl.col("action").is_not_null(),
        pl.col("_q_plain"), pl.col("quantity") > 0,
        pl.col("_p_plain"), pl.col("price").is_not_null(),
        pl.col("_f_plain"), pl.col("_f").is_null() | pl.col("fee").is_not_null(),
        pl.lit(True) if codes["currency"] else pl.col("currency").str.contains(_CURRENCY),
        pl.lit(True) if codes["asset_class"] else pl.col("asset_class").is_in(_CLASSES),
    ).fill_null(False).all()).item()
    if not regular:
        return None
    frame = work.select(
        pl.col("line").cast(pl.Int64),
        "account", "symbol", "asset_class", "action",
        pl.col("ts") if every else pl.when("_instant").then(pl.col("ts")),
        "trade_date", "quantity", "price",
        pl.col("fee").fill_null(0),
        pl.col("currency").alias("fee_currency"),
        "currency",
        pl.lit(None, dtype=DECIMAL).alias("amount"),
        pl.col("_trade_id").replace("", None).alias("broker_trade_id"),
        pl.lit(None, dtype=pl.String).alias("order_id"),
        pl.col("_lot_id").replace("", None).alias("lot_id"),
        pl.lit(None, dtype=pl.String).alias("note"),
        "_qt", "_pt", "_ft",
    ).cast(SCHEMA)  # type: ignore[arg-type]
    del work
    texts = {"quantity": pl.col("_qt"), "price": pl.col("_pt"), "fee": pl.col("_ft")}
    return with_identity(frame, adapter, texts).drop("_qt", "_pt", "_ft")


def _instants(date: pl.Expr, offsets: pl.Series) -> tuple[pl.Expr, pl.Expr]:
    """``generic._parse_iso_offset`` of ``date`` (its UTC instant) for the values of the ISO
    form it reads, which then have no other reading (null elsewhere), and whether each value
    is of that form. ``offsets``: the distinct text after the first 19 characters, so each
    offset's minutes are worked out once."""
    offsets = offsets.drop_nulls()
    sign = pl.when(offsets.str.starts_with("-")).then(-1).otherwise(1)
    minutes = pl.select(
        pl.when(offsets == "Z").then(0).otherwise(
            (offsets.str.slice(1, 2).cast(pl.Int64, strict=False) * 60 + offsets.str.slice(4, 2).cast(pl.Int64, strict=False)) * sign
        )
    ).to_series()
    instant = date.str.contains(_ISO_OFFSET)
    # Nearly every instant is distinct: a cache of parsed texts only costs.
    local = date.str.slice(0, 19).str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False, time_unit="us", cache=False)
    shift = date.str.slice(19).replace_strict(offsets, minutes, default=None, return_dtype=pl.Int64)
    return (local - pl.duration(minutes=shift)).dt.replace_time_zone("UTC"), instant
