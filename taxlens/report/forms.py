"""Form 8949 rows and TXF v042 records from disposal slices (tax-rules.md §4 and §5).

Box choice, absent the brokers' own 1099 forms (taxlens does not read them yet):
* securities: box A (short) / D (long), "basis reported to the IRS", what a broker reports
  for covered shares; a slice with unknown basis goes to B / E;
* digital assets: from 2025 the 1099-DA boxes, G / J when basis was reported (assets
  acquired from 2026 on and sold from 2026 on) and H / K otherwise (2025 forms report gross
  proceeds only); before 2025, C / F (no form existed).
Column (b) is the wash-adjusted acquisition date when a holding period was tacked on (§3.4);
(h) = (d) − (e) + (g) from the rounded figures, as the form adds them.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import TextIO

import polars as pl

COLUMNS = ["part", "box", "description", "date_acquired", "date_sold", "proceeds", "cost_basis", "code", "adjustment", "gain"]
#: TXF reference numbers (§5.3) by Form 8949 box; G-L have none in v042.
TXF_REFNUM = {"A": 321, "D": 323, "B": 711, "E": 713, "C": 712, "F": 714}


def box_expr(crypto: frozenset[str]) -> pl.Expr:
    """Each slice's Form 8949 box (see the module docstring for the rule), over a disposals
    frame (``term``, ``symbol``, ``acquired``, ``disposed``, ``cost_basis``); ``crypto``: the
    digital assets' symbols."""
    short = pl.col("term").fill_null("short") != "long"
    disposed, acquired = pl.col("disposed").dt.year(), pl.col("acquired").dt.year()
    reported = pl.col("cost_basis").is_not_null() & (acquired >= 2026).fill_null(False) & (disposed >= 2026)

    def pick(when_short: str, when_long: str) -> pl.Expr:
        return pl.when(short).then(pl.lit(when_short)).otherwise(pl.lit(when_long))

    return (
        pl.when(pl.col("symbol").is_in(list(crypto)) & (disposed >= 2025))
        .then(pl.when(reported).then(pick("G", "J")).otherwise(pick("H", "K")))
        .when(pl.col("symbol").is_in(list(crypto))).then(pick("C", "F"))
        .when(pl.col("cost_basis").is_null()).then(pick("B", "E"))
        .otherwise(pick("A", "D"))
    )


def form8949(disposals: pl.DataFrame, crypto: frozenset[str]) -> pl.DataFrame:
    """One Form 8949 row per disposal slice, in the form's order: Part I then II, box by box,
    then by date sold and description (rows alike in all four keep the order of
    ``disposals``). Money is rounded to cents, half away from zero (text, two decimals; an
    amount that rounds to zero reads ``0.00``, never ``-0.00``); (h) = (d) − (e) + (g) from the
    rounded figures. Vectorised: a million slices take well under a second."""
    from taxlens.report.listing import as_text, cents_expr, date_text

    def dated(frame: pl.DataFrame, column: str) -> pl.Expr:
        return date_text(column, frame.get_column(column), "%m/%d/%Y").fill_null("VARIOUS")

    crypto_row = pl.col("symbol").is_in(list(crypto))
    quantity = as_text(disposals.select("quantity")).get_column("quantity")
    # The form's order first, from the few columns it depends on; the text columns are then
    # made in that order (sorting them once made would hold two copies: 1 GB at 10M trades).
    keys = disposals.select(
        pl.when(pl.col("term").fill_null("short") == "short").then(pl.lit("I")).otherwise(pl.lit("II")).alias("part"),
        box_expr(crypto).alias("box"),
        pl.col("disposed").alias("_sold"),
        pl.concat_str(quantity, pl.when(crypto_row).then(pl.lit("")).otherwise(pl.lit(" sh.")), pl.lit(" "), pl.col("symbol")).alias("description"),
    ).with_row_index("_row").sort(["part", "box", "_sold", "description"], maintain_order=True)
    rounded = disposals.select("adjusted_acquired", "acquired", "disposed", "proceeds", "cost_basis", "adjustment", "adjustment_code").gather(
        keys.get_column("_row")
    ).with_columns(
        pl.coalesce("adjusted_acquired", "acquired").alias("_b"),
        *(cents_expr(pl.col(c)).alias(f"_{c}") for c in ("proceeds", "cost_basis", "adjustment")),
    )
    two = pl.Decimal(38, 2)
    proceeds, basis, adjustment = (pl.col(f"_{c}").cast(two) for c in ("proceeds", "cost_basis", "adjustment"))
    return keys.select("part", "box", "description").hstack(rounded.select(
        dated(rounded, "_b").alias("date_acquired"),
        dated(rounded, "disposed").alias("date_sold"),
        proceeds.cast(pl.String).alias("proceeds"),
        basis.cast(pl.String).alias("cost_basis"),
        pl.when(pl.col("adjustment_code") != "").then(pl.col("adjustment_code")).alias("code"),
        pl.when(adjustment != 0).then(adjustment.cast(pl.String)).alias("adjustment"),
        (proceeds - basis + adjustment).cast(two).cast(pl.String).alias("gain"),
    ))


def _money_expr(column: str) -> pl.Expr:
    """A TXF amount (the spec's ``$1,000.00``: two decimals, thousands separators) of a column
    of amounts in ``form8949``'s text (an optional minus, digits, a point and two decimals):
    the integer digits get a comma every three from the right (reversed, a comma after each
    full group of three, the trailing one dropped, reversed back)."""
    text = pl.col(column)
    point = text.str.find(".", literal=True)
    digits = text.str.slice(0, point).str.strip_chars_start("-")
    grouped = digits.str.reverse().str.replace_all(r"([0-9]{3})", "${1},").str.strip_chars_end(",").str.reverse()
    sign = pl.when(text.str.starts_with("-")).then(pl.lit("-")).otherwise(pl.lit(""))
    return pl.concat_str(sign, grouped, text.str.slice(point))


def txf(rows: pl.DataFrame, *, program: str, exported: dt.date) -> tuple[str, int]:
    """TXF v042 text (LF line ends) for Form 8949 ``rows`` (``form8949``'s output): record
    format 4, or 5 with the disallowed wash-sale amount. Returns the text and how many rows
    were left out because v042 has no reference number for their box (G-L, digital assets)."""
    buf = io.StringIO()
    skipped = write_txf(rows, buf, program=program, exported=exported)
    return buf.getvalue(), skipped


#: Records made and written at a time by ``write_txf``.
TXF_BATCH = 250_000


def write_txf(rows: pl.DataFrame, out: TextIO, *, program: str, exported: dt.date) -> int:
    """``txf``'s text written to ``out`` a batch of records at a time (at 10M trades the whole
    text is over half a gigabyte); returns how many rows were left out. Vectorised: each record
    is one string built by polars (a Python loop over 4M rows took 19 s)."""
    out.write(f"V042\nA{program}\nD{exported.strftime('%m/%d/%Y')}\n^\n")
    refnum = pl.col("box").replace_strict(TXF_REFNUM, default=None, return_dtype=pl.String)
    kept = rows.with_columns(refnum.alias("_refnum")).filter(pl.col("_refnum").is_not_null())
    washed = pl.when((pl.col("code") == "W") & pl.col("adjustment").is_not_null()).then(
        pl.concat_str(pl.lit("\n$"), _money_expr("adjustment"))).otherwise(pl.lit(""))
    record = pl.concat_str(
        pl.lit("TD\nN"), "_refnum", pl.lit("\nC1\nL1\nP"), "description",
        pl.lit("\nD"), pl.when(pl.col("date_acquired") == "VARIOUS").then(pl.lit("")).otherwise(pl.col("date_acquired")),
        pl.lit("\nD"), "date_sold",
        pl.lit("\n$"), _money_expr("cost_basis").fill_null(""),
        pl.lit("\n$"), _money_expr("proceeds"),
        washed, pl.lit("\n^\n"),
    )
    for at in range(0, kept.height, TXF_BATCH):
        out.write(kept.slice(at, TXF_BATCH).select(record.str.join("")).item())
    return rows.height - kept.height
