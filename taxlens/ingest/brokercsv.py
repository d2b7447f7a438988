"""Reading shared by the US retail-broker CSVs (Fidelity, Robinhood, Vanguard, E*TRADE).

These downloads are small, header-keyed CSVs framed by text a spreadsheet user reads and a
parser must skip: blank or comma-only lines, titles before the header, and disclaimers or a
``Date downloaded …`` line after the data. ``read_sheet`` finds the header (``rows.py``'s
rules: true physical line numbers, cells by header name) and yields each later record as a
``Row``, a ``RowError`` (wrong number of cells) or a ``TextLine`` (one cell of prose: a footer).

Cells are cleaned before an adapter sees them: surrounding spaces go, an Excel-escaped cell
``="0123"`` becomes ``0123``, and a source's "no value" marker (E*TRADE's ``--``) becomes empty.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from taxlens.errors import RowError
from taxlens.ingest.base import Extracted, Source
from taxlens.ingest.csvscan import read_rows
from taxlens.ingest.frame import from_trades
from taxlens.ingest.rows import Problem, Row, guarded, problem
from taxlens.models import Trade

_EXCEL = re.compile(r'^=\s*"(.*)"$', re.DOTALL)
_US_DATE = re.compile(r"^\d{1,2}/\d{1,2}/(?:\d{2}|\d{4})$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

#: A predicate over a record's cleaned cells: is this the header?
HeaderTest = Callable[[list[str]], bool]


def clean(cell: str, na: Iterable[str] = ()) -> str:
    """The cell stripped, with Excel's ``="…"`` escape removed and ``na`` markers made empty."""
    text = cell.strip()
    match = _EXCEL.match(text)
    if match:
        text = match.group(1).strip()
    return "" if text in na else text


@dataclass(frozen=True)
class TextLine:
    """A record holding one cell of prose (a disclaimer, ``Date downloaded …``): not a row."""

    line: int
    text: str


def is_text(cells: list[str]) -> bool:
    """True for a record whose only non-empty cell is prose (it has a space in it). A data row
    always has at least a date and an action, so this never swallows one."""
    filled = [c for c in cells if c]
    return len(filled) == 1 and any(ch.isspace() for ch in filled[0])


@dataclass
class Sheet:
    """A CSV export located by its header: the records before it, the header and the rest."""

    path: str
    header_line: int
    header: list[str]  # cleaned; trailing empty names (a trailing comma) dropped
    preamble: list[list[str]] = field(default_factory=list)
    na: frozenset[str] = frozenset()
    _rest: Iterator[tuple[int, list[str]]] = field(default_factory=lambda: iter(()))

    def rows(self) -> Iterator[Row | RowError | TextLine]:
        """Each later record as a Row, a TextLine, or a RowError when it has more or fewer
        cells than the header (trailing empty cells are not counted)."""
        width = len(self.header)
        for line, fields in self._rest:
            cells = [clean(f, self.na) for f in fields]
            if is_text(cells):
                yield TextLine(line, next(c for c in cells if c))
                continue
            while len(cells) > width and not cells[-1]:
                cells.pop()
            if len(cells) != width:
                yield RowError(self.path, line, f"row has {len(cells)} fields (expected {width}, as in the header)")
                continue
            yield Row(line, dict(zip(self.header, cells, strict=True)))


def read_sheet(source: Source, is_header: HeaderTest, *, within: int | None = 10, na: Iterable[str] = ()) -> Sheet | None:
    """Find the header among the first ``within`` non-blank records (all of them when None).

    Returns None when there is none. Blank and comma-only lines are skipped everywhere; the
    csv module's errors (an unbalanced quote running past its field-size limit) raise FileError.
    """
    records = guarded(source.name, read_rows(source.text))
    preamble: list[list[str]] = []
    for line, fields in records:
        cells = [clean(f) for f in fields]
        if is_header(cells):
            while cells and not cells[-1]:
                cells.pop()
            return Sheet(source.name, line, cells, preamble, frozenset(na), records)
        preamble.append(cells)
        if within is not None and len(preamble) >= within:
            return None
    return None


def head_cells(source: Source, n: int) -> list[list[str]]:
    """The first ``n`` non-blank records of the file's head, cleaned (for identify())."""
    out: list[list[str]] = []
    try:
        for _, fields in read_rows(source.head):
            out.append([clean(f) for f in fields])
            if len(out) >= n:
                break
    except csv.Error:  # a binary or oddly quoted file is simply not this format
        return out
    return out




def date_cell(row: Row, column: str, hint: str) -> dt.date:
    """The cell as a date: ``M/D/YYYY``, ``MM/DD/YY`` or ``YYYY-MM-DD``. Raises Problem."""
    text = row.get(column)
    try:
        if _US_DATE.match(text):
            fmt = "%m/%d/%Y" if len(text.rsplit("/", 1)[1]) == 4 else "%m/%d/%y"
            return dt.datetime.strptime(text, fmt).date()
        if _ISO_DATE.match(text):
            return dt.date.fromisoformat(text)
    except ValueError:  # the right shape but no such day, e.g. 02/30/2024
        pass
    what = "is not a date" if text else "is missing"
    raise problem(column, text, f"{what} (expected {hint})")


def extract_rows(source: Source, sheet: Sheet, to_trade: Callable[[Row], Trade | str]) -> Extracted:
    """Each data row of ``sheet`` through ``to_trade``, which returns the row's Trade, or the
    name of an action ignored on purpose (counted), or raises Problem (a RowError at the row's
    line). Text lines (notes, footers) are skipped and not counted as rows read."""
    trades: list[Trade] = []
    errors: list[RowError] = []
    ignored: Counter[str] = Counter()
    rows_read = 0
    for row in sheet.rows():
        if isinstance(row, TextLine):
            continue
        rows_read += 1
        if isinstance(row, RowError):
            errors.append(row)
            continue
        try:
            result = to_trade(row)
        except Problem as exc:
            errors.append(RowError(source.name, row.line, str(exc)))
            continue
        if isinstance(result, str):
            ignored[result] += 1
        else:
            trades.append(result)
    return Extracted(trades=from_trades(trades), errors=errors, rows_read=rows_read, ignored=ignored)
