"""Reconcile: taxlens' disposals against the broker's own realized gain/loss (1099-B) rows.

Readers (``read_broker``), each giving one row per broker line with ``symbol`` (the ticker, or
the description's name when only that is given), ``quantity``, ``acquired`` (None for
VARIOUS), ``sold``, ``proceeds``, ``basis``, ``adjustment`` (wash sale disallowed, ≥ 0),
``term`` and ``source`` (path:line):

* IBKR "Worksheet for Form 8949" CSV (``Part``/``Box``/``Header``/``Data`` rows, formats.md §10);
* IBKR Activity Statement CSV (its Trades section's ClosedLot rows, formats.md §2c; read by
  ``taxlens.ingest.ibkr_statement.closed_lots``);
* a generic CSV with a header naming ``symbol`` (or ``description``), ``quantity`` (optional when
  the description starts with it), ``date_sold``, ``proceeds``, ``cost_basis`` and optionally
  ``date_acquired``, ``adjustment`` (or ``wash_sale_disallowed``) and ``term`` (or ``part``);
  taxlens' own form8949 CSV is one.

Matching is per sale: taxlens' slices of one sale are summed, and so are broker rows with the
same date sold, security and quantity. A broker row matches the taxlens sale on that date with
the same quantity whose symbol the row names (the ticker, or a word of its description). What
differs is listed with its likely cause.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl

from taxlens.errors import FileError, RowError, RowErrors
from taxlens.money import D, NotANumber, cents

DECIMAL = pl.Decimal(38, 18)
BROKER_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(), "quantity": DECIMAL, "acquired": pl.Date(), "sold": pl.Date(), "proceeds": DECIMAL,
    "basis": DECIMAL, "adjustment": DECIMAL, "term": pl.String(), "source": pl.String(),
}
TOLERANCE = Decimal("0.01")  # a cent: rounding on either side is not a difference


def _date(text: str) -> dt.date | None:
    text = text.strip()
    if not text or text.upper() == "VARIOUS":
        return None
    for fmt in ("%m/%d/%Y", "%Y-%m-%d", "%m/%d/%y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"date {text!r} is not MM/DD/YYYY, YYYY-MM-DD or VARIOUS")


def _money(text: str) -> Decimal:
    text = text.strip()
    return Decimal(0) if not text else D(text)


_DESCRIPTION = re.compile(r"^\s*([\d,]*\.?\d+)\s*(?:sh\.?|shares?)?\s+(.+?)\s*$", re.IGNORECASE)


def _split_description(text: str) -> tuple[Decimal | None, str]:
    """``100 sh GOOGLE INC`` → (100, "GOOGLE INC"); anything else → (None, text)."""
    m = _DESCRIPTION.match(text)
    if not m:
        return None, text.strip()
    return D(m.group(1)), m.group(2)


def read_broker(path: str | Path) -> pl.DataFrame:
    """The broker's rows from ``path`` (layout detected from the first cells). Raises FileError
    for an unknown layout and RowErrors naming every bad row."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileError(name, f"cannot read: {exc}") from exc
    rows = list(csv.reader(io.StringIO(text)))
    if rows and rows[0] and rows[0][0] == "Title" and "8949" in ",".join(rows[0]):
        return _ibkr_worksheet(name, rows)
    if rows and rows[0][:2] in (["Statement", "Header"], ["Trades", "Header"]):
        return _ibkr_statement(path)
    return _generic(name, rows)


def _ibkr_statement(path: str | Path) -> pl.DataFrame:
    """The ClosedLot rows of an IBKR Activity Statement (the broker's own lot matching)."""
    from taxlens.ingest.base import Source
    from taxlens.ingest.ibkr_statement import closed_lots

    return closed_lots(Source.read(path))


def _ibkr_worksheet(name: str, rows: list[list[str]]) -> pl.DataFrame:
    out, errors = [], []
    part, header = None, None
    for line, row in enumerate(rows, start=1):
        kind = row[0] if row else ""
        if kind == "Part":
            part = row[1].strip()
        elif kind == "Header":
            header = [c.strip() for c in row]
        elif kind == "Data" and header is not None:
            cells = dict(zip(header, row, strict=False))
            try:
                quantity, security = _split_description(cells.get("Description", ""))
                out.append({
                    "symbol": security, "quantity": quantity, "acquired": _date(cells.get("Date Acquired", "")),
                    "sold": _date(cells.get("Date Sold", "")), "proceeds": _money(cells.get("Sales Price", "")),
                    "basis": _money(cells.get("Cost Basis", "")), "adjustment": abs(_money(cells.get("Adjustment", ""))),
                    "term": "long" if part == "II" else "short", "source": f"{name}:{line}",
                })
            except (ValueError, NotANumber) as exc:
                errors.append(RowError(name, line, str(exc)))
    if errors:
        raise RowErrors(name, errors)
    return pl.DataFrame(out, schema=BROKER_SCHEMA)


_ALIASES = {
    "symbol": ("symbol", "ticker", "security", "description"),
    "quantity": ("quantity", "qty", "shares"),
    "acquired": ("date_acquired", "acquired", "open date", "date acquired"),
    "sold": ("date_sold", "sold", "close date", "closed date", "date sold"),
    "proceeds": ("proceeds", "sales price", "adj proceeds"),
    "basis": ("cost_basis", "cost basis", "cost", "adj cost"),
    "adjustment": ("adjustment", "wash_sale_disallowed", "disallowed loss", "wash sale loss disallowed"),
    "term": ("term", "part"),
}


def _generic(name: str, rows: list[list[str]]) -> pl.DataFrame:
    if not rows:
        raise FileError(name, "empty file")
    header = [c.strip().lower() for c in rows[0]]
    index = {}
    for key, names in _ALIASES.items():
        for alias in names:
            if alias in header:
                index[key] = header.index(alias)
                break
    missing = [k for k in ("symbol", "sold", "proceeds", "basis") if k not in index]
    if missing:
        raise FileError(name, f"not a realized gain/loss layout taxlens knows: no {', '.join(missing)} column "
                        "(expected e.g. symbol,quantity,date_acquired,date_sold,proceeds,cost_basis,adjustment,term)", line=1)
    out, errors = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue

        def cell(key: str, row: list[str] = row) -> str:
            return row[index[key]].strip() if key in index and index[key] < len(row) else ""

        try:
            quantity, security = _split_description(cell("symbol"))
            if cell("quantity"):
                quantity = D(cell("quantity"))
            term = cell("term").lower()
            out.append({
                "symbol": security, "quantity": quantity, "acquired": _date(cell("acquired")), "sold": _date(cell("sold")),
                "proceeds": _money(cell("proceeds")), "basis": _money(cell("basis")), "adjustment": abs(_money(cell("adjustment"))),
                "term": "long" if term in ("long", "ii", "lt", "long-term", "long term") else "short", "source": f"{name}:{line}",
            })
        except (ValueError, NotANumber) as exc:
            errors.append(RowError(name, line, str(exc)))
    if errors:
        raise RowErrors(name, errors)
    return pl.DataFrame(out, schema=BROKER_SCHEMA)


@dataclass(frozen=True)
class Difference:
    sold: dt.date | None
    symbol: str
    quantity: Decimal | None
    field: str  # proceeds | basis | adjustment | only in broker | only in taxlens
    broker: Decimal | None
    taxlens: Decimal | None
    cause: str
    source: str


RECONCILE_SCHEMA: dict[str, pl.DataType] = {
    "sold": pl.Date(), "symbol": pl.String(), "quantity": DECIMAL, "difference": pl.String(), "broker": DECIMAL,
    "taxlens": DECIMAL, "cause": pl.String(), "source": pl.String(),
}


def reconcile(broker: pl.DataFrame, disposals: pl.DataFrame, washes: pl.DataFrame, *, accounts: list[str] | None = None) -> pl.DataFrame:
    """Every difference between the broker's rows and taxlens' sales (RECONCILE_SCHEMA), with a
    likely cause. Both sides are summed per (date sold, security), so a broker's one line per
    lot, per sale or per day all compare, to within a cent per broker line (each was rounded).
    ``accounts``: only these accounts' sales (a 1099-B covers one account; IRAs have none)."""
    if accounts:
        disposals = disposals.filter(pl.col("account").is_in(accounts))
    if broker.height:
        disposals = disposals.filter(pl.col("disposed").is_between(broker["sold"].min(), broker["sold"].max()))
    cross = set(washes.filter(~pl.col("broker_reported")).get_column("seq").to_list()) if washes.height else set()
    ours = (
        disposals.with_columns(pl.col("seq").is_in(list(cross)).alias("_cross"))
        .group_by(pl.col("disposed").alias("sold"), "symbol")
        .agg(
            pl.col("quantity").sum(), pl.col("proceeds").sum(), pl.col("cost_basis").sum().alias("basis"),
            pl.col("cost_basis").null_count().alias("_unknown"), pl.col("adjustment").sum(), pl.col("_cross").any(),
            pl.col("method").first(), pl.col("source").first(),
            (pl.col("wash_basis").sum() if "wash_basis" in disposals.columns else pl.lit(0)).alias("_wash_basis"),
        )
    )
    known = {(d, s.upper()): s for d, s in ours.select("sold", "symbol").iter_rows()}

    def key(sold: dt.date | None, name: str) -> str:
        """The taxlens symbol a broker row names (the ticker, or a word of its description)."""
        words = [name.upper(), *re.split(r"[^A-Z0-9.]+", name.upper())]
        return next((known[(sold, w)] for w in words if (sold, w) in known), name)

    theirs = (
        broker.with_columns(pl.struct("sold", "symbol").map_elements(lambda r: key(r["sold"], r["symbol"]), return_dtype=pl.String).alias("symbol"))
        .group_by("sold", "symbol", maintain_order=True)
        .agg(pl.col("quantity").sum(), pl.col("proceeds").sum(), pl.col("basis").sum(), pl.col("adjustment").sum(),
             pl.col("source").first(), pl.len().alias("_rows"))
    )
    both = theirs.join(ours, on=["sold", "symbol"], how="full", coalesce=True, suffix="_t")
    out: list[dict[str, object]] = []
    for r in both.iter_rows(named=True):
        if r["proceeds_t"] is None and r["_cross"] is None:
            out.append(_row(r, "only in broker", r["proceeds"], None, "no taxlens sale of it that day: a missing export, "
                            "a sale booked on another date, or a security named differently"))
            continue
        if r["proceeds"] is None:
            out.append(_row(r, "only in taxlens", None, r["proceeds_t"], "a sale the broker's form does not list: "
                            "another account's (use --account), or not on this form", source=r["source_t"]))
            continue
        for field, theirs_v, ours_v in (("proceeds", r["proceeds"], r["proceeds_t"]), ("basis", r["basis"], r["basis_t"]),
                                        ("adjustment", r["adjustment"], r["adjustment_t"])):
            unknown = field == "basis" and r["_unknown"]
            # Each broker line was rounded to the cent on its own: allow a cent per line.
            if unknown or abs(cents(theirs_v) - cents(ours_v)) > TOLERANCE * r["_rows"]:
                out.append(_row(r, field, theirs_v, None if unknown else ours_v, _cause(field, r, unknown)))
    return pl.DataFrame(out, schema=RECONCILE_SCHEMA).sort(["sold", "symbol", "difference"], nulls_last=True)


def _row(r: dict[str, object], field: str, theirs: object, ours: object, cause: str, source: object = None) -> dict[str, object]:
    return {
        "sold": r["sold"], "symbol": r["symbol"], "quantity": r["quantity"] if r["quantity"] is not None else r["quantity_t"],
        "difference": field, "broker": theirs, "taxlens": ours, "cause": cause, "source": source or r["source"],
    }


def _cause(field: str, r: dict[str, object], unknown: bool) -> str:
    if unknown:
        return "taxlens has no basis for part of these shares (basis unknown: add opening lots)"
    if field == "adjustment":
        if r["_cross"]:
            return "a wash sale across accounts or into an IRA: the broker cannot see it (taxlens applies it, as you must)"
        return "wash-sale adjustment differs: the broker matched other replacements"
    if field == "proceeds":
        return "fee treatment: the broker nets fees differently (taxlens: sale fees reduce proceeds)"
    if r["method"] not in (None, "fifo"):
        return f"lot method: taxlens booked {str(r['method']).upper()}, the broker its own default"
    if r["_wash_basis"]:
        return "basis includes a deferred wash-sale loss the broker did not carry (a replacement in another account)"
    return "basis differs: lot method, fees added to basis, a corporate action, or a missing purchase"
