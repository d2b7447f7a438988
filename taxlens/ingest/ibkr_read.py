"""Reading Interactive Brokers Flex Query files into named rows with true line numbers.

Both delivery formats become the same thing, a ``FlexFile`` of ``FlexRow``s whose values are
keyed by a normalised field name, so that the XML attribute ``buySell`` and the CSV display
name ``Buy/Sell`` are both ``buysell``, and ``currency``/``CurrencyPrimary`` both ``currency``.
The adapter (``ibkr.py``) decides what each row means; this module only reads.

- XML: ``FlexQueryResponse > FlexStatements > FlexStatement > <section> > <row/>``, every value
  an attribute. Read with expat, which reports the line each start tag begins on.
- CSV: a header of display names and data rows; or, with "section code and line descriptor"
  on, ``"HEADER","TRNT",…`` / ``"DATA","TRNT",…`` rows for several concatenated sections, and
  with "header and trailer records" on, ``BOF``/``BOA``/``BOS``/``EOS``/``EOA``/``EOF`` rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from xml.parsers import expat

from taxlens.errors import FileError, RowError
from taxlens.ingest.base import Source
from taxlens.ingest.csvscan import read_rows

#: CSV display names whose normalised form differs from the XML attribute's.
_ALIASES = {
    "currencyprimary": "currency",
    "clientaccountid": "accountid",
    "assetclass": "assetcategory",
    "notescodes": "notes",
}

#: Rows of the XML Trades section that are trade-like, with their implied level of detail.
_TRADE_ELEMENTS = {
    "Trade": "EXECUTION",  # the attribute, when present, says which level it really is
    "Order": "ORDER",
    "Lot": "CLOSED_LOT",
    "SymbolSummary": "SYMBOL_SUMMARY",
    "AssetSummary": "ASSET_SUMMARY",
}

#: Section codes of the sectioned CSV, named like the XML elements so both count alike.
SECTION_NAMES = {
    "CTRN": "CashTransaction",
    "CORP": "CorporateAction",
    "POST": "OpenPosition",
    "CRTT": "CashReportCurrency",
    "RATE": "ConversionRate",
    "ACCT": "AccountInformation",
}
TRADES_SECTION = "TRNT"
_ENVELOPE = {"BOF", "BOA", "BOS", "EOS", "EOA", "EOF"}  # header and trailer records


def field_key(name: str) -> str:
    """The normalised key of an XML attribute or CSV header: lower-case letters and digits."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return _ALIASES.get(key, key)


@dataclass(frozen=True)
class FlexRow:
    """One trade-like row: its line, values by field key, and each key's name in the file."""

    line: int
    values: dict[str, str]
    labels: dict[str, str]
    xml: bool = False  # names are XML attributes (``tradeDate``), not CSV columns (``TradeDate``)

    def get(self, key: str) -> str:
        """The stripped value of ``key``, or "" when the row does not have it."""
        return self.values.get(key, "").strip()

    def label(self, key: str, default: str) -> str:
        """The column or attribute name for messages (``default`` when the row lacks it)."""
        return self.labels.get(key, default)


@dataclass
class FlexFile:
    """A Flex file's trade rows, and every other data row counted by element or section."""

    rows: list[FlexRow] = field(default_factory=list)
    other: Counter[str] = field(default_factory=Counter)
    first_line: dict[str, int] = field(default_factory=dict)  # other row name -> first line
    rows_read: int = 0
    errors: list[RowError] = field(default_factory=list)

    def count_other(self, name: str, line: int) -> None:
        self.other[name] += 1
        self.first_line.setdefault(name, line)


# -- XML ---------------------------------------------------------------------------------------


@dataclass
class _Open:
    name: str
    attrs: dict[str, str]
    line: int
    has_child: bool = False


def read_xml(source: Source) -> FlexFile:
    """Read a Flex XML file. Data rows are the childless elements with attributes inside a
    FlexStatement; those inside ``Trades`` become FlexRows, the others are counted.

    Raises FileError for malformed XML (with expat's line), a DTD, or another root element.
    """
    out = FlexFile()
    stack: list[_Open] = []
    parser = expat.ParserCreate("UTF-8")  # Source.data is UTF-8 whatever the prolog says

    def start(name: str, attrs: dict[str, str]) -> None:
        line = parser.CurrentLineNumber
        if not stack and name != "FlexQueryResponse":
            raise FileError(
                source.name, f"root element is <{name}> (expected <FlexQueryResponse>, an IBKR Flex Query)", line
            )
        if stack:
            stack[-1].has_child = True
        stack.append(_Open(name, attrs, line))

    def end(name: str) -> None:
        element = stack.pop()
        # Depth 3 is FlexStatement: rows are at depth 4 (AccountInformation) or 5 (in sections).
        if element.has_child or not element.attrs or len(stack) < 3:
            return
        out.rows_read += 1
        level = _TRADE_ELEMENTS.get(name) if stack[-1].name == "Trades" else None
        if level is None:
            out.count_other(name, element.line)
            return
        values = {field_key(k): v for k, v in element.attrs.items()}
        labels = {field_key(k): k for k in element.attrs}
        if not values.get("levelofdetail", "").strip():
            values["levelofdetail"] = level
        out.rows.append(FlexRow(element.line, values, labels, xml=True))

    def doctype(*_: object) -> None:
        # Flex files have no DTD; refusing one keeps entity expansion out of reach.
        raise FileError(
            source.name, "has a DOCTYPE declaration (expected a plain IBKR Flex Query XML file)",
            parser.CurrentLineNumber,
        )

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = doctype
    try:
        parser.Parse(source.data, True)
    except expat.ExpatError as exc:
        problem = f"is not well-formed XML: {expat.ErrorString(exc.code)}"
        raise FileError(source.name, problem, exc.lineno) from exc
    return out


# -- CSV ---------------------------------------------------------------------------------------


def is_trades_header(fields: list[str]) -> bool:
    """Whether CSV ``fields`` are a Trades header (they name Buy/Sell and TradePrice)."""
    keys = {field_key(f) for f in fields}
    return {"buysell", "tradeprice"} <= keys


def _check_header(source: Source, line: int, header: list[str]) -> None:
    """Raise FileError for a Trades header without the columns a trade needs, or with a duplicate."""
    keys = [field_key(h) for h in header]
    dupes = sorted({h.strip() for h, k in zip(header, keys, strict=True) if k and keys.count(k) > 1})
    if dupes:
        raise FileError(source.name, f"duplicate column {dupes[0]!r} in the header", line)
    need = [
        ("'Buy/Sell'", {"buysell"}), ("'Quantity'", {"quantity"}), ("'TradePrice'", {"tradeprice"}),
        ("'TradeDate' or 'DateTime'", {"tradedate", "datetime"}),
        ("'Symbol' or 'ISIN'", {"symbol", "isin"}),
    ]
    missing = [name for name, alternatives in need if not alternatives & set(keys)]
    if missing:
        have = ", ".join(repr(h.strip()) for h in header)
        plural = "s" if len(missing) > 1 else ""
        raise FileError(source.name, f"missing column{plural} {', '.join(missing)} (found {have})", line)


def _row(source: Source, line: int, header: list[str], fields: list[str], out: FlexFile) -> None:
    if len(fields) != len(header):
        problem = f"row has {len(fields)} fields (expected {len(header)}, as in the header)"
        out.errors.append(RowError(source.name, line, problem))
        return
    keys = [field_key(h) for h in header]
    out.rows.append(FlexRow(line, dict(zip(keys, fields, strict=True)), {k: h.strip() for k, h in zip(keys, header, strict=True)}))


def read_csv(source: Source) -> FlexFile:
    """Read a Flex CSV file, plain or with section codes.

    Plain: the first row (after any BOF/BOA/BOS records) is the header; a later row that is
    itself a Trades header (a second account's) replaces it. Sectioned: each section's HEADER
    row names its DATA rows; only TRNT rows are trades. Raises FileError when there is no
    Trades header or it lacks a required column.
    """
    out = FlexFile()
    header: list[str] | None = None
    sectioned: bool | None = None
    headers: dict[str, list[str]] = {}  # section code -> its column names
    for line, fields in read_rows(source.text):
        tag = fields[0].strip().upper()
        if tag in _ENVELOPE:
            continue
        if sectioned is None:
            code = fields[1].strip().upper() if len(fields) > 2 else ""
            sectioned = tag == "HEADER" and bool(re.fullmatch(r"[A-Z]{3,5}", code))
        if not sectioned:
            if header is None or is_trades_header(fields):
                _check_header(source, line, fields)
                header = fields
                continue
            out.rows_read += 1
            _row(source, line, header, fields, out)
            continue
        code = fields[1].strip().upper() if len(fields) > 1 else ""
        if tag == "HEADER":
            if code == TRADES_SECTION:
                _check_header(source, line, fields[2:])
            headers[code] = fields[2:]
        elif tag == "DATA":
            out.rows_read += 1
            if code != TRADES_SECTION:
                out.count_other(SECTION_NAMES.get(code, code), line)
            elif code not in headers:
                out.errors.append(RowError(source.name, line, (
                    f"DATA row of section {code!r} comes before its HEADER row (expected the HEADER first)"
                )))
            else:
                _row(source, line, headers[code], fields[2:], out)
        else:
            out.errors.append(RowError(source.name, line, (
                f"record type {fields[0]!r} is not known "
                "(expected HEADER or DATA, as in a Flex CSV with section codes)"
            )))
    if (header is None and not sectioned) or (sectioned and TRADES_SECTION not in headers):
        raise FileError(source.name, (
            "has no Trades header (expected a Flex Query CSV with columns such as "
            "Buy/Sell, TradeDate, Quantity, TradePrice)"
        ))
    return out


def csv_header_lines(text: str, limit: int = 200) -> list[list[str]]:
    """The first ``limit`` non-blank lines of ``text`` split as CSV (one physical line each)."""
    lines = [line for line in text.splitlines() if line.strip()][:limit]
    return [next(csv.reader([line]), []) for line in lines]


# -- dates -------------------------------------------------------------------------------------

_DATE = r"(?P<date>\d{8}|\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/(?:\d{4}|\d{2})|\d{1,2}-[A-Za-z]{3}-\d{2})"
_TIME = r"(?P<time>\d{6}|\d{1,2}:\d{2}(?::\d{2})?)"
_WHEN = re.compile(rf"{_DATE}(?:\s*[;,T ]\s*{_TIME})?")
_TIME_ONLY = re.compile(_TIME)
DATE_HINT = (
    "a date such as 20250314, 2025-03-14, 03/14/2025 or 14-Mar-25, "
    "optionally with a time as in 20250314;153000"
)


def parse_date(text: str) -> dt.date | None:
    """The date of a Flex date string, or None if it is not one of the formats IBKR offers.

    ``MM/dd`` and ``dd/MM`` look alike; a slashed date is read as US ``MM/dd/yyyy``.
    """
    for fmt in ("%Y%m%d", "%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y", "%d-%b-%y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def parse_time(text: str) -> dt.time | None:
    """The time of ``HHmmss`` or ``HH:mm[:ss]``, or None."""
    if not _TIME_ONLY.fullmatch(text):
        return None
    for fmt in ("%H%M%S", "%H:%M:%S", "%H:%M"):
        try:
            return dt.datetime.strptime(text, fmt).time()
        except ValueError:
            continue
    return None


def parse_when(text: str) -> tuple[dt.date, dt.time | None] | None:
    """A Flex date or date-time (``;``, ``,``, space or ``T`` between them), or None.

    Returns the date and the time (None for a bare date); the time has no zone.
    """
    match = _WHEN.fullmatch(text.strip())
    if not match:
        return None
    day = parse_date(match["date"])
    if day is None:
        return None
    if match["time"] is None:
        return day, None
    clock = parse_time(match["time"])
    return (day, clock) if clock is not None else None
