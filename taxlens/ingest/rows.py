"""Row-by-row reading for small, header-keyed broker exports (Coinbase, Schwab).

These exports have a few lines of preamble before the header (a title, a user line), trailing
empty columns, and a footer; they are small (a retail account's history), so they are read
with the stdlib csv reader and handled one row at a time. Cells are looked up by header name,
never by position, because the brokers reorder and add columns between layouts.

A cell that can't be read raises ``Problem`` with a message of the form
``<column> '<value>' <what is wrong> (expected …)``; the adapter turns it into a RowError
for that row and carries on, so that all of a file's errors are reported at once.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from taxlens.errors import FileError, RowError
from taxlens.ingest.base import Source
from taxlens.ingest.csvscan import read_rows
from taxlens.money import PRECISION, SCALE, D, NotANumber, fits, to_scale

_DIGITS = PRECISION - SCALE

#: A predicate over a record's stripped fields: is this the header?
HeaderTest = Callable[[list[str]], bool]


class Problem(Exception):
    """One cell (or one row) can't be read; ``str()`` is the message for the RowError."""


def problem(column: str, value: str, what: str) -> Problem:
    """A Problem worded as the design asks: ``column 'value' what``."""
    return Problem(f"{column} {value!r} {what}")


def head_records(source: Source, n: int) -> list[list[str]]:
    """The first ``n`` non-blank records of the file's head, fields stripped (for identify())."""
    out: list[list[str]] = []
    try:
        for _, fields in read_rows(source.head):
            out.append([f.strip() for f in fields])
            if len(out) >= n:
                break
    except csv.Error:  # a binary or oddly quoted file is simply not this format
        return out
    return out


@dataclass(frozen=True)
class Row:
    """One data record: its physical line and its cells keyed by header name."""

    line: int
    cells: dict[str, str]

    def get(self, column: str) -> str:
        """The stripped cell, or "" when the column is absent or empty."""
        return self.cells.get(column, "").strip()

    def number(self, column: str, expected: str, *, required: bool = True) -> Decimal | None:
        """The cell as an exact Decimal (``$``, ``€``, thousands separators and ``-$`` accepted).

        Returns None for an empty cell when not ``required``. Raises Problem for an empty
        required cell, text that is not a number, or a value that can't be stored exactly.
        """
        value = self._parse(column, expected, required)
        if value is not None and (why := fits(value)) and why.startswith("has more than"):
            raise problem(column, self.get(column), f"{why} (expected at most {SCALE})")
        return value

    def price(self, column: str, expected: str, *, required: bool = True) -> Decimal | None:
        """Like ``number`` but rounded to the storage scale: a price is informational, and
        brokers print more decimals than it has meaning (Coinbase gives 22)."""
        value = self._parse(column, expected, required)
        return to_scale(value) if value is not None else None

    def _parse(self, column: str, expected: str, required: bool) -> Decimal | None:
        """The cell parsed by ``D()``, checked only for size; None when empty and optional."""
        text = self.get(column)
        if not text:
            if required:
                raise problem(column, text, f"is missing (expected {expected})")
            return None
        try:
            value = D(text)
        except NotANumber as exc:
            raise problem(column, text, f"is not a number (expected {expected})") from exc
        if value and value.adjusted() >= _DIGITS:  # abs() would overflow on 1e9999999
            expected = f"(expected at most {_DIGITS} digits before the decimal point)"
            raise problem(column, text, f"is too large {expected}")
        return value

    def quantity(self, column: str, expected: str) -> Decimal:
        """A required, non-zero quantity, sign kept (the caller decides what a sign means)."""
        value = self.number(column, expected) or Decimal(0)  # None only when not required
        if value == 0:
            raise problem(column, self.get(column), f"is zero (expected {expected})")
        return value


@dataclass
class Table:
    """A CSV export located by its header: the preamble records, the header and the data rows."""

    path: str
    header_line: int
    header: list[str]  # stripped; trailing empty names (a trailing comma) dropped
    preamble: list[list[str]] = field(default_factory=list)  # records before the header
    _rest: Iterator[tuple[int, list[str]]] = field(default_factory=lambda: iter(()))

    def rows(self) -> Iterator[Row | RowError]:
        """Each data record as a Row, or a RowError when it has more or fewer cells than the
        header. Trailing empty cells are not counted: Schwab rows come with and without a
        trailing comma in the same file."""
        width = len(self.header)
        for line, fields in guarded(self.path, self._rest, self.header_line):
            while len(fields) > width and not fields[-1].strip():
                fields = fields[:-1]
            if len(fields) != width:
                problem_text = f"row has {len(fields)} fields (expected {width}, as in the header)"
                yield RowError(self.path, line, problem_text)
                continue
            yield Row(line, dict(zip(self.header, fields, strict=True)))


def read_table(source: Source, is_header: HeaderTest, *, within: int = 10) -> Table | None:
    """Find the header among the first ``within`` non-blank records and return the Table.

    Returns None when no record there passes ``is_header``. Rows are read lazily from the
    same csv reader, so line numbers are physical lines of the whole file.
    """
    records = guarded(source.name, read_rows(source.text))
    preamble: list[list[str]] = []
    for line, fields in records:
        stripped = [f.strip() for f in fields]
        if is_header(stripped):
            while stripped and not stripped[-1]:
                stripped.pop()
            return Table(source.name, line, stripped, preamble, records)
        preamble.append(stripped)
        if len(preamble) >= within:
            return None
    return None


def guarded(
    path: str, records: Iterator[tuple[int, list[str]]], line: int = 0
) -> Iterator[tuple[int, list[str]]]:
    """``records``, with the csv module's errors (a field over its size limit, which is what an
    unbalanced quote in a large file turns into) raised as a FileError after the last good line."""
    try:
        for line, fields in records:
            yield line, fields
    except csv.Error as exc:
        raise FileError(path, f"is not readable as CSV after this line ({exc})", line) from exc
