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
from decimal import Decimal

import polars as pl

from taxlens.money import cents, plain

COLUMNS = ["part", "box", "description", "date_acquired", "date_sold", "proceeds", "cost_basis", "code", "adjustment", "gain"]
#: TXF reference numbers (§5.3) by Form 8949 box; G-L have none in v042.
TXF_REFNUM = {"A": 321, "D": 323, "B": 711, "E": 713, "C": 712, "F": 714}


def box(term: str, crypto: bool, acquired: dt.date | None, disposed: dt.date, basis_known: bool) -> str:
    """The Form 8949 box for one slice (see the module docstring for the rule)."""
    short = term != "long"
    if crypto and disposed.year >= 2025:
        reported = basis_known and acquired is not None and acquired.year >= 2026 and disposed.year >= 2026
        return ("G" if short else "J") if reported else ("H" if short else "K")
    if crypto:
        return "C" if short else "F"
    if not basis_known:
        return "B" if short else "E"
    return "A" if short else "D"


def _date(value: dt.date | None) -> str:
    return value.strftime("%m/%d/%Y") if value is not None else "VARIOUS"


def form8949(disposals: pl.DataFrame, crypto: frozenset[str]) -> pl.DataFrame:
    """One Form 8949 row per disposal slice, in the form's order: Part I then II, box by box,
    then by date sold and description. Money is rounded to cents (text, two decimals)."""
    rows = []
    for r in disposals.iter_rows(named=True):
        is_crypto = r["symbol"] in crypto
        known = r["cost_basis"] is not None
        term = r["term"] or "short"
        proceeds = cents(r["proceeds"]) if r["proceeds"] is not None else None
        basis = cents(r["cost_basis"]) if known else None
        adjustment = cents(r["adjustment"])
        gain = None if proceeds is None or basis is None else proceeds - basis + adjustment
        acquired = r["adjusted_acquired"] or r["acquired"]
        unit = "" if is_crypto else " sh."
        rows.append({
            "part": "I" if term == "short" else "II",
            "box": box(term, is_crypto, r["acquired"], r["disposed"], known),
            "description": f"{plain(r['quantity'])}{unit} {r['symbol']}",
            "date_acquired": _date(acquired),
            "date_sold": _date(r["disposed"]),
            "proceeds": None if proceeds is None else f"{proceeds:.2f}",
            "cost_basis": None if basis is None else f"{basis:.2f}",
            "code": r["adjustment_code"] or None,
            "adjustment": f"{adjustment:.2f}" if adjustment else None,
            "gain": None if gain is None else f"{gain:.2f}",
            "_sold": r["disposed"],
        })
    frame = pl.DataFrame(rows, schema={**dict.fromkeys(COLUMNS, pl.String), "_sold": pl.Date})
    return frame.sort(["part", "box", "_sold", "description"]).drop("_sold")


def _money(value: str | Decimal) -> str:
    """A TXF amount: two decimals with thousands separators (the spec's ``$1,000.00``)."""
    return f"{Decimal(value):,.2f}"


def txf(rows: pl.DataFrame, *, program: str, exported: dt.date) -> tuple[str, int]:
    """TXF v042 text (LF line ends) for Form 8949 ``rows`` (``form8949``'s output): record
    format 4, or 5 with the disallowed wash-sale amount. Returns the text and how many rows
    were left out because v042 has no reference number for their box (G-L, digital assets)."""
    lines = ["V042", f"A{program}", f"D{exported.strftime('%m/%d/%Y')}", "^"]
    skipped = 0
    for r in rows.iter_rows(named=True):
        refnum = TXF_REFNUM.get(r["box"])
        if refnum is None:
            skipped += 1
            continue
        acquired = "" if r["date_acquired"] == "VARIOUS" else r["date_acquired"]
        lines += ["TD", f"N{refnum}", "C1", "L1", f"P{r['description']}", f"D{acquired}", f"D{r['date_sold']}",
                  f"${_money(r['cost_basis']) if r['cost_basis'] is not None else ''}", f"${_money(r['proceeds'])}"]
        if r["code"] == "W" and r["adjustment"] is not None:
            lines.append(f"${_money(r['adjustment'])}")
        lines.append("^")
    return "\n".join(lines) + "\n", skipped
