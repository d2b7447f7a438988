"""Render any frame as a terminal table, CSV or JSON: the ``--format`` of listing commands.

Decimals are written exactly in plain form (``0.38962051``, never ``3.8962051E-1``); JSON keeps
them as strings so no reader turns them into floats. Output is deterministic for a given frame.
"""

from __future__ import annotations

import codecs
import io
import json
import os
import re
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import BinaryIO, TextIO

import polars as pl
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from taxlens.money import cents

FORMATS = ("table", "csv", "json")
#: Columns right-aligned in tables even when rendered as text (cents keep their two decimals).
MONEY = {
    "proceeds", "cost_basis", "adjusted_basis", "adjustment", "gain", "amount", "fee", "price",
    "disallowed", "permanent", "not_on_1099", "market_value", "unrealized",
    # simulate's
    "fees", "short", "long", "washed", "tax", "tax_and_fees", "after_tax",
}


def as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text, vectorised: plain decimals (``0.38962051``, never an exponent), ISO
    dates, UTC instants with Z, yes/no, and null for missing. The one definition of how a value
    reads in a table, a CSV or a JSON listing."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Decimal):
            text = col.cast(pl.String)
            if (dtype.scale or 0) > 0:
                text = text.str.strip_chars_end("0").str.strip_chars_end(".")
                # `replace` names ``text`` once: a when/then naming it twice formats every
                # decimal twice (an eager select has no common-subexpression elimination).
                text = text.replace(["", "-", "-0"], "0")
            exprs.append(text.alias(name))
        elif isinstance(dtype, pl.Datetime):
            exprs.append(
                col.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f")
                .str.replace(r"\.000000$", "").alias(name) + pl.lit("Z")
            )
        elif dtype == pl.Date:
            exprs.append(date_text(name, frame.get_column(name)).alias(name))
        elif dtype == pl.Boolean:
            exprs.append(pl.when(col).then(pl.lit("yes")).when(~col).then(pl.lit("no")).otherwise(None).alias(name))
        else:
            # CSV can't tell "" from missing; polars would quote "" to keep them apart.
            exprs.append(pl.when(col.cast(pl.String) == "").then(None).otherwise(col.cast(pl.String)).alias(name))
    return frame.select(exprs)


def date_text(column: str, dates: pl.Series, form: str = "%Y-%m-%d") -> pl.Expr:
    """The dates of ``column`` as text in ``form`` (ISO by default), null for null. ``dates``
    holds every value the column takes: a listing holds few distinct dates, and each is
    formatted once and looked up, several times faster than formatting every cell."""
    days = dates.drop_nulls().unique()
    if days.len() == 0:  # no dates at all: nothing to look up (polars can't replace from nothing)
        return pl.col(column).cast(pl.String)
    return pl.col(column).replace_strict(days, days.dt.strftime(form), default=None, return_dtype=pl.String)


_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)$"
_FORMULA_START = r"^[=+\-@\t\r]"  # the bytes of _FORMULA_BYTES


def neutralise_expr(col: pl.Expr) -> pl.Expr:
    """A text cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab or CR
    first) gets a leading apostrophe; numbers (``-12.50``) and everything else pass. The one
    rule, for every CSV taxlens writes (``write_csv``)."""
    risky = col.str.contains(_FORMULA_START) & ~col.str.contains(_NUMBER)
    return pl.when(risky).then(pl.lit("'") + col).otherwise(col)


def neutralise(value: object) -> object:
    """``neutralise_expr`` for one value: text is neutralised, anything else passes."""
    if not isinstance(value, str):
        return value
    return pl.select(neutralise_expr(pl.lit(value, dtype=pl.String))).item()


#: Rows formatted and written at a time by ``write_csv``: the text of a whole 10M-row listing
#: would take gigabytes; this much takes tens of megabytes.
CSV_BATCH = 250_000


def write_csv(frame: pl.DataFrame, out: TextIO, *, header: bool = True) -> None:
    """CSV of ``frame`` in ``as_text``'s forms (vectorised: a million rows take under a second),
    written a batch of rows at a time; text that a spreadsheet would take for a formula is
    neutralised (``neutralise``). Only text columns can hold one: the other types are written in
    fixed forms (numbers, dates, yes/no) that ``neutralise`` leaves alone. Without ``header``,
    only the rows: a listing written a part at a time."""
    texts = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    raw = _byte_stream(out)
    if raw is not None:
        out.flush()  # what was written to ``out`` goes first
    for at in range(0, max(frame.height, 1), CSV_BATCH):
        text = _neutralised(as_text(frame.slice(at, CSV_BATCH)), texts)
        if raw is not None:
            # Straight to the bytes: making a str of the CSV and encoding it again takes
            # longer than polars takes to write it.
            try:
                text.write_csv(raw, include_header=header and at == 0, null_value="", line_terminator="\n", quote_style="necessary")
            except OSError as exc:
                known = _with_errno(exc)
                if known is exc:
                    raise
                raise known from exc
        else:
            out.write(text.write_csv(include_header=header and at == 0, null_value="", line_terminator="\n", quote_style="necessary"))


def _neutralised(text: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """``text`` with ``neutralise_expr`` applied to ``columns`` (text columns). A column whose
    cells' first bytes all lie between two of the bytes a formula starts with is left as it is:
    most are (names and ids start with letters, positive amounts with digits), and the smallest
    and largest cell, which bound every cell's first byte, cost far less than testing each."""
    if not columns:
        return text
    bounds = text.select(
        e for i, c in enumerate(columns) for e in (pl.col(c).min().alias(f"{i}<"), pl.col(c).max().alias(f"{i}>"))
    ).row(0)
    risky = [c for i, c in enumerate(columns) if _may_start_formula(bounds[2 * i], bounds[2 * i + 1])]
    return text.with_columns(neutralise_expr(pl.col(c)).alias(c) for c in risky) if risky else text


#: The first bytes of the cells ``neutralise_expr`` looks at further (``_FORMULA_START``).
_FORMULA_BYTES = b"\t\r+-=@"


def _may_start_formula(low: str | None, high: str | None) -> bool:
    """Whether some text between ``low`` and ``high`` (bytewise, as polars orders text) can start
    with one of ``_FORMULA_BYTES``; None for both when every cell is missing."""
    if low is None or high is None:
        return False
    first, last = low.encode()[:1] or b"\0", high.encode()[:1] or b"\0"
    return any(first[0] <= b <= last[0] for b in _FORMULA_BYTES)


def _with_errno(exc: OSError) -> OSError:
    """The OSError polars raised for a failed write (its text ends ``(os error 32)``, its errno is
    None) with the errno, as Python raises it (``BrokenPipeError`` for 32): click exits quietly
    on a closed pipe (``taxlens gains --format csv | head``) only when it can tell."""
    found = re.search(r"\(os error (\d+)\)$", str(exc))
    if exc.errno is not None or found is None:
        return exc
    code = int(found.group(1))
    return OSError(code, os.strerror(code))


def _byte_stream(out: TextIO) -> BinaryIO | None:
    """The byte stream under ``out`` when writing UTF-8 bytes to it is exactly what writing
    their text to ``out`` does, else None: ``out`` is ``sys.stdout`` (the process's, or a test
    runner's stand-in), a TextIOWrapper encoding UTF-8, on a system whose line end is \\n (where
    stdout translates none)."""
    if out is not sys.stdout or os.linesep != "\n" or not isinstance(out, io.TextIOWrapper):
        return None
    if codecs.lookup(out.encoding).name != "utf-8":
        return None
    return out.buffer


def write_json(frame: pl.DataFrame, out: TextIO) -> None:
    """A JSON list of objects: integers, booleans and strings native, every other value (decimals
    above all, so no reader turns them into floats) in ``as_text``'s forms."""
    native = [n for n, d in frame.schema.items() if d.is_integer() or d in (pl.Boolean, pl.String)]
    merged = frame.select(native).hstack(as_text(frame.drop(native))).select(frame.columns)
    json.dump(merged.to_dicts(), out, indent=2)
    out.write("\n")


#: Columns of ids: cut short on a terminal, never wrapped.
IDS = frozenset({"id", "trade_id", "sell_trade_id", "lot_id", "replacement_lot_id", "order_id", "sha256"})
ID_WIDTH = 20
#: When a table must be squeezed: the characters an id keeps, the longest word of text kept
#: whole, and the longest word of a header kept whole; and, when even these do not fit, the
#: characters any id, text or header keeps (amounts and dates keep their widest value).
ID_MIN, WORD_MAX, HEAD_MIN, LAST_MIN = 8, 10, 6, 4


class FittedTable:
    """A listing ``Table`` that fits the width it is printed in. Rich squeezes a table too wide
    for the terminal by narrowing every wrappable column alike, which folds an amount over two
    lines ("125.0" over "0", read as two values) and cuts dates while the ids keep their room.
    This gives each column its whole width when the table fits. When it does not, amounts and
    dates keep their widest value, and the room left goes, in turn, to ids and words
    (``tiers``: see ``table``), then headers' words, then values, then whole headers, each share
    in proportion to what a column lacks. Headers wrap at their words (a column's name with
    spaces for underscores: the CSV and JSON keep the name). Where even the first tier does not
    fit, rich's own squeeze decides, and a line under the table says values are cut."""

    def __init__(self, table: Table, tiers: list[list[int]]) -> None:
        self.table, self.tiers = table, tiers

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        n = len(self.tiers[0])
        room = options.max_width - 3 * n + 1  # a space either side of each column, a rule between
        widths = fit_widths(self.tiers, room)
        for column, width in zip(self.table.columns, widths, strict=True):
            column.width = width
        yield self.table
        if sum(self.tiers[0]) > room:  # rich squeezed the table: amounts and dates are cut
            yield Text(f"Some values are cut to fit {options.max_width} columns: a wider terminal, or --format csv, shows them whole.",
                       style="dim")


def fit_widths(tiers: list[list[int]], room: int) -> list[int | None]:
    """Content widths for columns in ``room`` characters, from ``tiers`` of widths, each at
    least the one before: the first what each column needs, the last what it wants. All None
    (rich lays the columns out) when the last fits, and when the first does not. Otherwise the
    first, then what is left shared towards each later tier in turn, in proportion to what
    each column lacks of it."""
    if sum(tiers[-1]) <= room or sum(tiers[0]) > room:
        return [None] * len(tiers[0])
    widths = list(tiers[0])
    for target in tiers[1:]:
        lack = [max(t - w, 0) for t, w in zip(target, widths, strict=True)]
        spare = min(room - sum(widths), sum(lack))
        if spare <= 0:
            break
        given = [spare * d // sum(lack) for d in lack]
        # The remainder, a character each, to the columns that lack most.
        for i in sorted(range(len(lack)), key=lambda i: -lack[i])[: spare - sum(given)]:
            given[i] += 1
        widths = [w + g for w, g in zip(widths, given, strict=True)]
    return list(widths)


def table(frame: pl.DataFrame, title: str | None = None, *, right: set[str] | None = None) -> FittedTable:
    """A rich Table of the frame, fitted to the terminal (``FittedTable``): numeric columns
    right-aligned, ids (``IDS``) cut to ``ID_WIDTH``, amounts and dates never folded."""
    numeric = {
        name for name, dtype in frame.schema.items()
        if dtype.is_numeric() or isinstance(dtype, pl.Decimal)
    } | (right or set()) | (MONEY & set(frame.columns))
    t = Table(title=title, show_edge=False, header_style="bold")
    text = as_text(frame)
    lengths = text.select(pl.all().str.len_chars().max().fill_null(0)).row(0) if frame.height else (0,) * frame.width
    longest_words = (
        text.select(pl.all().str.split(" ").list.eval(pl.element().str.len_chars()).list.max().max().fill_null(0)).row(0)
        if frame.height else (0,) * frame.width
    )
    # Per column, the tiers FittedTable shares room by: what it needs at the last (values whole,
    # LAST_MIN of the rest), what it needs (ID_MIN of an id, words up to WORD_MAX, headers' words
    # up to HEAD_MIN), its header's words, its values (ids up to ID_WIDTH), its header whole.
    tiers: list[list[int]] = [[], [], [], [], []]
    for name, longest, word in zip(frame.columns, lengths, longest_words, strict=True):
        # Spaces, so that a header wraps at its words ("adjustment" over "code") rather than
        # stand a column of one-letter codes one letter a line.
        label = name.replace("_", " ")
        header = Text(label, overflow="fold")
        head_word = max((len(w) for w in label.split()), default=0)
        if name in IDS:
            # A source's own ids run to 57 characters (Alpaca's, a timestamp and a UUID): on a
            # terminal they are cut to fit, a row to a line; the CSV and JSON keep them whole.
            t.add_column(header, overflow="ellipsis", max_width=ID_WIDTH)
            values = min(longest, ID_WIDTH)
            last, need = min(values, LAST_MIN), min(values, ID_MIN)
        elif name in numeric or frame.schema[name] in (pl.Date, pl.Datetime):
            t.add_column(header, justify="right" if name in numeric else "left", overflow="ellipsis")
            values = max(longest, 1)
            last = need = values
        else:
            t.add_column(header, overflow="fold")
            values = longest
            last, need = min(values, LAST_MIN), min(values, word, WORD_MAX)
        last = max(last, min(head_word, LAST_MIN))
        need = max(need, last, min(head_word, HEAD_MIN))
        words = max(need, min(head_word, ID_WIDTH) if name in IDS else head_word)
        values = max(values, words)
        whole = max(values, min(len(label), ID_WIDTH) if name in IDS else len(label))
        for tier, width in zip(tiers, (last, need, words, values, whole), strict=True):
            tier.append(width)
    for row in text.iter_rows():
        t.add_row(*(v or "" for v in row))
    return FittedTable(t, tiers)


def render(frame: pl.DataFrame, fmt: str, out: TextIO, console: Console, title: str | None = None) -> None:
    """Write ``frame`` in ``fmt`` (table, csv or json)."""
    writers: dict[str, Callable[[], None]] = {
        "table": lambda: console.print(table(frame, title)),
        "csv": lambda: write_csv(frame, out),
        "json": lambda: write_json(frame, out),
    }
    writers[fmt]()


def cents_expr(value: pl.Expr) -> pl.Expr:
    """Round a Decimal column to cents, half away from zero (as forms are filled), vectorised."""
    return whole_cents(value).cast(pl.Decimal(38, 2)) / 100


def whole_cents(value: pl.Expr) -> pl.Expr:
    """A Decimal column in whole cents (Int128), rounded half away from zero: shifted by half a
    cent, then truncated (the cast truncates toward zero)."""
    half = pl.when(value >= 0).then(pl.lit(Decimal("0.5"))).otherwise(pl.lit(Decimal("-0.5")))
    return (value * 100 + half).cast(pl.Int128)


def round_money(frame: pl.DataFrame, columns: list[str], *, gain: str | None = None) -> pl.DataFrame:
    """Money columns rounded to cents (``cents_expr``); with ``gain``, recompute it from the
    rounded proceeds, basis and adjustment so every row adds up the way the form does, and
    totals of the rounded rows are the form's totals."""
    out = frame.with_columns(cents_expr(pl.col(c)).alias(c) for c in columns)
    if gain is not None:
        out = out.with_columns((pl.col("proceeds") - pl.col("cost_basis") + pl.col("adjustment")).alias(gain))
    return out


def money_columns(frame: pl.DataFrame, columns: list[str], *, gain: str | None = None) -> pl.DataFrame:
    """``round_money``, then those columns as text with exactly two decimals (``100.00``)."""
    out = round_money(frame, columns, gain=gain)
    shown = [*columns, gain] if gain is not None else columns
    return out.with_columns(pl.col(c).cast(pl.String) for c in shown)


def gains_summary(totals: dict[str, Decimal | int]) -> str:
    """One line of totals for ``taxlens gains`` (money in cents)."""
    c = {k: cents(v) if isinstance(v, Decimal) else v for k, v in totals.items()}
    line = (
        f"{c['disposals']} lot slices sold: proceeds {c['proceeds']}, basis {c['cost_basis']}; "
        f"short-term gains {c['short_gains']}, losses {c['short_losses']}; "
        f"long-term gains {c['long_gains']}, losses {c['long_losses']}"
    )
    if c.get("disallowed"):
        line += f"; wash-sale losses disallowed {c['disallowed']} (code W, in the gains above)"
    if c["unknown_basis"]:
        line += f"; {c['unknown_basis']} with unknown basis (proceeds {c['unknown_basis_proceeds']}) left out"
    return line


def sheltered_summary(totals: dict[str, Decimal | int]) -> str:
    """The line under ``gains_summary`` for the part of it sold in tax-advantaged accounts."""
    c = {k: cents(v) if isinstance(v, Decimal) else v for k, v in totals.items()}
    gain = cents(sum((Decimal(totals[k]) for k in ("short_gains", "short_losses", "long_gains", "long_losses")), Decimal(0)))
    return (
        f"of which {c['disposals']} in tax-advantaged accounts (not taxed, not on Form 8949): "
        f"proceeds {c['proceeds']}, basis {c['cost_basis']}, gain {gain}"
    )


def wash_summary_line(totals: dict[str, Decimal | int], year: int | None, disposals: pl.DataFrame | None = None) -> str:
    """The totals of ``taxlens wash`` (money in cents). With ``disposals`` (``disposed`` and
    ``adjustment`` of the sales the totals cover), also Form 8949's column (g) total, its rows
    each rounded to cents, where that differs from the exact total rounded once."""
    c = {k: cents(v) if isinstance(v, Decimal) else v for k, v in totals.items()}
    when = f" in {year}" if year is not None else ""
    line = (
        f"{c['washes']} wash-sale matches{when}: disallowed {c['disallowed']} "
        f"(deferred into replacement lots {c['deferred']}, lost to tax-advantaged purchases {c['permanent']}); "
        f"not on the brokers' 1099-B {c['not_on_1099']}; "
        f"still deferred in open lots at {'the end of ' + str(year) if year is not None else 'the end'} {c['still_deferred']}"
    )
    if c.get("carried_out"):
        line += f" (gone with shares moved where taxlens does not follow them: {c['carried_out']})"
    if c["info"]:
        line += f"; crypto (rule not applied, information only) {c['info']}"
    if disposals is not None:
        sold = disposals if year is None else disposals.filter(pl.col("disposed").dt.year() == year)
        on_form = Decimal(sold.select(cents_expr(pl.col("adjustment")).sum()).item() or 0)
        if on_form != c["disallowed"]:
            line += f"; Form 8949 column (g) adds its rows' cents to {cents(on_form)}"
    return line
