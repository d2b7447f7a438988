"""Reading CSV text with true line numbers, for error messages that point at the row.

Two readers give the same thing, a list of records each with the physical line it starts on:
``scan_records`` is vectorised (numpy over the bytes) for large files, ``read_rows`` is the
stdlib csv reader for small ones and for anything the fast scan can't vouch for.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

_NL, _QUOTE, _COMMA, _CR = ord("\n"), ord('"'), ord(","), ord("\r")


@dataclass(frozen=True)
class RecordScan:
    """Where each CSV record starts and how many fields it has (header included)."""

    lines: np.ndarray  # int64: 1-based physical line of each record's first line
    fields: np.ndarray  # int64: number of fields in each record


def scan_records(data: bytes) -> RecordScan | None:
    """Locate every record of a comma-separated, double-quoted UTF-8 file without parsing it.

    A newline or comma is a separator only outside quotes (an even number of quote characters
    before it: escaped quotes ``""`` count twice, so they never change the parity). Returns None
    when the file has something this scan doesn't model (blank lines, an unbalanced quote), so
    the caller falls back to ``read_rows``.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        return None
    all_newlines = newlines = np.flatnonzero(buf == _NL)
    commas = np.flatnonzero(buf == _COMMA)
    quoted = b'"' in data
    if quoted:
        quotes = np.flatnonzero(buf == _QUOTE)
        if quotes.size % 2:
            return None
        newlines = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
        commas = commas[np.searchsorted(quotes, commas) % 2 == 0]
    ends = newlines
    if ends.size == 0 or ends[-1] != buf.size - 1:
        ends = np.append(ends, buf.size)  # last record without a trailing newline
    starts = np.concatenate(([0], ends[:-1] + 1))
    length = ends - starts
    if np.any((length == 0) | ((length == 1) & (buf[np.minimum(starts, buf.size - 1)] == _CR))):
        return None
    if quoted:
        lines = np.searchsorted(all_newlines, starts) + 1  # newlines before the start, plus one
    else:
        lines = np.arange(1, starts.size + 1)
    fields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
    return RecordScan(lines=lines.astype(np.int64), fields=fields.astype(np.int64))


def read_rows(text: str, *, delimiter: str = ",", first_line: int = 1) -> Iterator[tuple[int, list[str]]]:
    """Yield (line, fields) for each non-blank record of ``text``.

    ``line`` is the physical line the record starts on, counting ``text``'s first line as
    ``first_line``; quoted fields may span lines.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    consumed = 0  # physical lines consumed before the current record
    for row in reader:
        start = first_line + consumed
        consumed = reader.line_num
        if not row or all(not field.strip() for field in row):
            continue
        yield start, row
