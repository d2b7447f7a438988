"""The audit and its renderers on one small fixed year: golden files for every format, and the
rules behind them (Form 8949 boxes and columns, TXF records, escaping, formula neutralising).

Scenario (2025, married filing jointly, 120,000 of other income, 5 % state):
  Alpaca (taxable) VTI: 10 bought 1/2 at 100 (+1 fee), 5 sold 3/3 at 110 (−1 fee), 5 sold 6/2
    at 90 and 4 bought back 6/10 at 92 (a wash: 4 of the 5 shares' loss), 4 sold 12/1 at 95.
  Alpaca MSFT: 2 bought 2024-01-05 at 300, sold 2025-04-01 at 400: long-term.
  Coinbase BTC: 0.1 bought 1/6 at 90,000, sold 0.05 on 7/1 at 100,000 (box H: 1099-DA, basis
    not reported in 2025).
  Roth IRA VTI: 3 bought 6/3 at 91: its purchase washes the last share of the 6/2 loss for good.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import sys
import textwrap
import unittest.mock
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

import taxlens
from taxlens.money import cents, plain
from taxlens.report import forms, listing, render
from taxlens.report.audit import build_audit
from taxlens.report.listing import neutralise, write_csv
from tests.conftest import write

GOLDEN = Path(__file__).parent / "golden" / "reports"
HEADER = "date,account,symbol,side,quantity,price,fee,currency,asset_class,trade_id,lot_id\n"
TRADES = """\
2024-01-05,Alpaca,MSFT,buy,2,300.00,0,USD,equity,M1,
2025-01-02,Alpaca,VTI,buy,10,100.00,1.00,USD,etf,V1,
2025-01-06,Coinbase,BTC,buy,0.1,90000.00,0,USD,crypto,C1,
2025-03-03,Alpaca,VTI,sell,5,110.00,1.00,USD,etf,V2,
2025-04-01,Alpaca,MSFT,sell,2,400.00,0,USD,equity,M2,
2025-06-02,Alpaca,VTI,sell,5,90.00,0,USD,etf,V3,
2025-06-03,Roth IRA,VTI,buy,3,91.00,0,USD,etf,R1,
2025-06-10,Alpaca,VTI,buy,4,92.00,0,USD,etf,V4,
2025-07-01,Coinbase,BTC,sell,0.05,100000.00,0,USD,crypto,C2,
2025-12-01,Alpaca,VTI,sell,4,95.00,0,USD,etf,V5,
"""
CONFIG = {
    "accounts": {"Roth IRA": {"type": "roth_ira"}},
    "tax": {"filing_status": "mfj", "other_income": 120000, "state_rate": "0.05"},
    "audit": {"expected_fees": 1},
}


@pytest.fixture
def year(tmp_path: Path):  # type: ignore[no-untyped-def]
    with taxlens.open_book(":memory:", taxlens.Config.model_validate(CONFIG)) as book:
        report = book.ingest([write(tmp_path, "trades.csv", HEADER + TRADES)])
        assert report.ok
        a = build_audit(book.trades(), book.booked(), book.config, 2025)
        yield a, book


def test_the_audit_needs_only_its_trade_columns(year) -> None:  # type: ignore[no-untyped-def]
    """``taxlens audit`` reads only ``AUDIT_TRADE_COLUMNS`` of the trades: the same audit as
    from every column."""
    from taxlens.report.audit import AUDIT_TRADE_COLUMNS

    a, book = year
    narrow = build_audit(book.trades(columns=AUDIT_TRADE_COLUMNS), book.booked(), book.config, 2025)
    assert render.to_json(narrow) == render.to_json(a)
    assert render.html(narrow) == render.html(a)


def test_the_numbers_behind_the_report(year) -> None:  # type: ignore[no-untyped-def]
    a, _book = year
    # VTI: 10 at 100 + 1 fee = 1,001 (100.10 a share). 3/3: 5 × 110 − 1 = 549 − 500.50 = 48.50.
    # 6/2: 450 − 500.50 = −50.50 (−10.10 a share); replacements in order of purchase: the IRA's 3
    # on 6/3 (30.30 lost for good), then 2 of the 4 on 6/10 (20.20 deferred): W 50.50, gain 0.
    # 12/1: 4 × 95 = 380 from the 6/10 lot, basis 368 + 20.20 = 388.20 → −8.20 (no rebuy).
    # MSFT long: 800 − 600 = 200. BTC: 0.05 × 100,000 = 5,000 − 4,500 = 500.
    gains = a.gains
    assert (gains["short_gains"], gains["short_losses"], gains["long_gains"]) == (Decimal("548.50"), Decimal("-8.20"), Decimal("200"))
    assert gains["disallowed"] == Decimal("50.50")
    assert (a.wash["permanent"], a.wash["deferred"], a.wash["not_on_1099"]) == (Decimal("30.30"), Decimal("20.20"), Decimal("30.30"))
    assert (a.trades, a.taxable_events, a.fees) == (9, 5, Decimal("2.00"))  # 2025's trades only
    # Tax: MFJ 2025, 120,000 − 31,500 = 88,500 taxable before the gains (12 % bracket to 96,950).
    # +540.30 short at 12 % = 64.836; +200 long inside the 0 % band (96,700): 0; state 5 % of
    # 740.30 = 37.015. Total 101.851.
    assert a.tax.incremental == Decimal("101.851")
    assert [c.name for c in a.checks if not c.ok] == ["concentration", "fees"]
    # Invested at cost in the taxable accounts at each month end (original basis: the wash
    # adjustment is not money put in). MSFT 600 (from 2024) until its 4/1 sale; VTI 1,001,
    # 500.50 after 3/3, 0 after 6/2, 368 from 6/10, 0 after 12/1; BTC 9,000, 4,500 after 7/1:
    # Jan-Feb 10,601; Mar 10,100.50; Apr-May 9,500.50; Jun 9,368; Jul-Nov 4,868; Dec 4,500.
    # Mean: 88,511.50 / 12.
    assert a.invested == Decimal("88511.50") / 12


def test_the_audit_s_totals_are_the_totals_of_its_form_8949_rows(tmp_path: Path) -> None:
    """Forms are filled in cents row by row, so the audit adds rounded rows too: its gains, and
    the tax on them, tie to the form8949 file written beside it.

    | sale | proceeds (exact → row) | basis (exact → row) | gain (row) |
    | S1   | 10.005 → 10.01         | 3.3333… → 3.33      | 6.68       |
    | S2   | 10.005 → 10.01         | 3.3333… → 3.33      | 6.68       |
    | S3   | 10.005 → 10.01         | 3.3333… → 3.33      | 6.68       |
    Rows: proceeds 30.03, basis 9.99, gain 20.04; the exact totals would round to 30.02, 10.00
    and 20.02."""
    trades = HEADER + "2025-01-02,Alpaca,VTI,buy,3,3.3333333333333333,0,USD,etf,B1,\n" + "".join(
        f"2025-02-0{k},Alpaca,VTI,sell,1,10.005,0,USD,etf,S{k},\n" for k in (3, 4, 5))
    with taxlens.open_book(":memory:", taxlens.Config()) as book:
        assert book.ingest([write(tmp_path, "trades.csv", trades)]).ok
        a = build_audit(book.trades(), book.booked(), book.config, 2025)
    assert (a.gains["proceeds"], a.gains["cost_basis"], a.gains["short_gains"]) == (Decimal("30.03"), Decimal("9.99"), Decimal("20.04"))
    rows = forms.form8949(a.disposals, a.crypto)
    assert sum(Decimal(g) for g in rows.get_column("gain")) == a.gains["short_gains"]
    assert a.monthly.filter(pl.col("month") == dt.date(2025, 2, 1)).get_column("realized").item() == Decimal("20.04")


def test_form_8949_rows_boxes_and_columns(year) -> None:  # type: ignore[no-untyped-def]
    a, _book = year
    rows = forms.form8949(a.disposals, frozenset({"BTC"}))
    text = io.StringIO()
    write_csv(rows, text)
    assert text.getvalue().splitlines() == [
        "part,box,description,date_acquired,date_sold,proceeds,cost_basis,code,adjustment,gain",
        "I,A,5 sh. VTI,01/02/2025,03/03/2025,549.00,500.50,,,48.50",
        "I,A,5 sh. VTI,01/02/2025,06/02/2025,450.00,500.50,W,50.50,0.00",
        "I,A,4 sh. VTI,06/10/2025,12/01/2025,380.00,388.20,,,-8.20",
        "I,H,0.05 BTC,01/06/2025,07/01/2025,5000.00,4500.00,,,500.00",
        "II,D,2 sh. MSFT,01/05/2024,04/01/2025,800.00,600.00,,,200.00",
    ]
    # Column (b) of the 12/1 row: of the 4 shares bought 6/10, 2 replaced the 6/2 loss and
    # carry its 151 days (1/2 → 6/2: adjusted 2025-01-10), 2 carry none. Both halves are
    # short-term on 12/1, so they are one row that keeps the fewest tacked days: 06/10/2025.


def test_txf_reproduces_the_spec_example() -> None:
    """TXF-1 (tax-rules §5.4): the spec's two records, amounts in the writer's one style
    (``$1,500.00`` where the example's second record writes ``$1500``; commas are optional)."""
    rows = pl.DataFrame([
        {"part": "I", "box": "A", "description": "200 Reebok", "date_acquired": "01/05/2011", "date_sold": "10/01/2011",
         "proceeds": "2000.00", "cost_basis": "1000.00", "code": None, "adjustment": None, "gain": "1000.00"},
        {"part": "I", "box": "A", "description": "50 QCOM", "date_acquired": "01/02/2011", "date_sold": "01/15/2011",
         "proceeds": "1300.00", "cost_basis": "1500.00", "code": "W", "adjustment": "200.00", "gain": "0.00"},
    ], schema=dict.fromkeys(forms.COLUMNS, pl.String))
    text, skipped = forms.txf(rows, program="Taxlens 0.1", exported=dt.date(2025, 10, 27))
    assert skipped == 0
    assert text == textwrap.dedent("""\
        V042
        ATaxlens 0.1
        D10/27/2025
        ^
        TD
        N321
        C1
        L1
        P200 Reebok
        D01/05/2011
        D10/01/2011
        $1,000.00
        $2,000.00
        ^
        TD
        N321
        C1
        L1
        P50 QCOM
        D01/02/2011
        D01/15/2011
        $1,500.00
        $1,300.00
        $200.00
        ^
    """)


@pytest.mark.parametrize(
    ("term", "crypto", "acquired", "disposed", "known", "expected"),
    [
        ("short", False, dt.date(2025, 1, 2), dt.date(2025, 3, 3), True, "A"),
        ("long", False, dt.date(2023, 1, 2), dt.date(2025, 3, 3), True, "D"),
        ("short", False, None, dt.date(2025, 3, 3), False, "B"),
        ("short", True, dt.date(2025, 1, 2), dt.date(2025, 3, 3), True, "H"),
        ("long", True, dt.date(2026, 1, 2), dt.date(2027, 3, 3), True, "J"),
        ("short", True, dt.date(2024, 1, 2), dt.date(2024, 3, 3), True, "C"),
    ],
)
def test_form_8949_box_rules(term: str, crypto: bool, acquired: dt.date | None, disposed: dt.date, known: bool, expected: str) -> None:
    assert _box(term, crypto, acquired, disposed, known) == expected
    slice_ = pl.DataFrame(
        {"term": [term], "symbol": ["BTC" if crypto else "VTI"], "acquired": [acquired], "disposed": [disposed],
         "cost_basis": [Decimal(1) if known else None]},
        schema={"term": pl.String, "symbol": pl.String, "acquired": pl.Date, "disposed": pl.Date, "cost_basis": pl.Decimal(38, 18)},
    )
    assert slice_.select(forms.box_expr(frozenset({"BTC"}))).item() == expected


def _box(term: str, crypto: bool, acquired: dt.date | None, disposed: dt.date, basis_known: bool) -> str:
    """The Form 8949 box for one slice, as a worksheet decides it (forms' module docstring)."""
    short = term != "long"
    if crypto and disposed.year >= 2025:
        reported = basis_known and acquired is not None and acquired.year >= 2026 and disposed.year >= 2026
        return ("G" if short else "J") if reported else ("H" if short else "K")
    if crypto:
        return "C" if short else "F"
    if not basis_known:
        return "B" if short else "E"
    return "A" if short else "D"


def _form8949_row_by_row(disposals: pl.DataFrame, crypto: frozenset[str]) -> list[dict[str, str | None]]:
    """Form 8949 the way a worksheet fills it, a slice at a time, with Python decimals: the
    reference ``forms.form8949`` (vectorised) is held to."""
    rows = []
    for r in disposals.iter_rows(named=True):
        is_crypto, known, term = r["symbol"] in crypto, r["cost_basis"] is not None, r["term"] or "short"
        proceeds = cents(r["proceeds"])
        basis = cents(r["cost_basis"]) if known else None
        adjustment = cents(r["adjustment"])
        acquired = r["adjusted_acquired"] or r["acquired"]
        rows.append({
            "part": "I" if term == "short" else "II",
            "box": _box(term, is_crypto, r["acquired"], r["disposed"], known),
            "description": f"{plain(r['quantity'])}{'' if is_crypto else ' sh.'} {r['symbol']}",
            "date_acquired": acquired.strftime("%m/%d/%Y") if acquired else "VARIOUS",
            "date_sold": r["disposed"].strftime("%m/%d/%Y"),
            "proceeds": f"{proceeds + 0:.2f}",  # + 0: -0.00 reads 0.00
            "cost_basis": None if basis is None else f"{basis + 0:.2f}",
            "code": r["adjustment_code"] or None,
            "adjustment": f"{adjustment:.2f}" if adjustment else None,
            "gain": None if basis is None else f"{proceeds - basis + adjustment + 0:.2f}",
        })
    keyed = sorted(enumerate(rows), key=lambda ir: (ir[1]["part"], ir[1]["box"], disposals["disposed"][ir[0]], ir[1]["description"], ir[0]))
    return [row for _, row in keyed]


MONEY = st.decimals(min_value=Decimal("-50"), max_value=Decimal("100000"), places=6, allow_nan=False, allow_infinity=False)
SLICE = st.fixed_dictionaries({
    "symbol": st.sampled_from(["VTI", "BTC", "ETH"]),
    "quantity": st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("5000"), places=8, allow_nan=False, allow_infinity=False),
    "acquired": st.one_of(st.none(), st.dates(dt.date(2023, 1, 1), dt.date(2027, 12, 31))),
    "adjusted_acquired": st.one_of(st.none(), st.dates(dt.date(2022, 1, 1), dt.date(2027, 12, 31))),
    "disposed": st.dates(dt.date(2024, 1, 1), dt.date(2027, 12, 31)),
    "proceeds": MONEY,
    "cost_basis": st.one_of(st.none(), MONEY),
    "adjustment_code": st.sampled_from([None, "W"]),
    "adjustment": st.sampled_from([Decimal(0), Decimal("0.004"), Decimal("0.005"), Decimal("12.345"), Decimal("-0.005")]),
    "term": st.sampled_from([None, "short", "long"]),
})


@settings(max_examples=60, deadline=None)
@given(st.lists(SLICE, max_size=25))
def test_form_8949_rows_are_the_worksheet_s_rows(slices: list[dict[str, object]]) -> None:
    """The vectorised Form 8949 gives what filling it in a row at a time gives: boxes, ISO
    dates turned US, "VARIOUS" for an unknown date, cents half away from zero, (h) from the
    rounded figures, and the form's order (rows alike in it keep the book's order)."""
    schema = {
        "symbol": pl.String, "quantity": pl.Decimal(38, 18), "acquired": pl.Date, "adjusted_acquired": pl.Date, "disposed": pl.Date,
        "proceeds": pl.Decimal(38, 18), "cost_basis": pl.Decimal(38, 18), "adjustment_code": pl.String,
        "adjustment": pl.Decimal(38, 18), "term": pl.String,
    }
    disposals = pl.DataFrame(slices, schema=schema)
    crypto = frozenset({"BTC", "ETH"})
    assert forms.form8949(disposals, crypto).to_dicts() == _form8949_row_by_row(disposals, crypto)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.none(), st.decimals(min_value=Decimal("-1e15"), max_value=Decimal("1e15"), places=18,
                                                  allow_nan=False, allow_infinity=False)), max_size=30))
def test_html_money_cells_read_as_the_template_s_money(values: list[Decimal | None]) -> None:
    """The report's long tables are written by polars, not a template loop: each amount reads
    as ``render.money`` writes it (cents half away from zero, thousands separators, -0.00 for
    a negative amount that rounds to zero, nothing for none)."""
    frame = pl.DataFrame({"v": values}, schema={"v": pl.Decimal(38, 18)})
    assert frame.select(render._money_text(pl.col("v"))).to_series().to_list() == [render.money(v) for v in values]


def test_html_table_rows_are_escaped_as_the_template_escapes() -> None:
    """Text in the vectorised rows is escaped as jinja2's autoescape does it."""
    from markupsafe import escape

    texts = ["Tom & Jerry's <IRA>", '"quoted"', "plain", ""]
    frame = pl.DataFrame({"t": texts})
    rows = str(render._html_rows(frame, [("", pl.col("t")), (' class="num"', pl.lit("1"))]))
    assert rows == "".join(f'<tr><td>{escape(t)}</td><td class="num">1</td></tr>\n' for t in texts)


def test_short_term_gains_just_short_of_long_term() -> None:
    """The audit's "sold just short of long-term": short-term gains sold fewer than 30 days
    before the anniversary after which they would have been long-term (tax-rules.md §1)."""
    from taxlens.report.audit import _near_long_term

    d = dt.date
    slices = pl.DataFrame(
        [  # adjusted_acquired, disposed, term, gain: counted?
            (d(2024, 3, 10), d(2025, 3, 1), "short", Decimal("5.25")),   # 9 days before 2025-03-10: yes
            (d(2024, 3, 10), d(2025, 2, 8), "short", Decimal("7")),      # 30 days before: no
            (d(2024, 3, 10), d(2025, 2, 9), "short", Decimal("1.5")),    # 29 days before: yes
            (d(2024, 2, 29), d(2025, 2, 27), "short", Decimal("2")),     # month end: turns after 2025-02-28: yes
            (d(2024, 3, 10), d(2025, 3, 5), "short", Decimal("-4")),     # a loss: no
            (d(2024, 1, 2), d(2025, 3, 5), "long", Decimal("9")),        # already long-term: no
            (d(2025, 1, 2), d(2025, 3, 5), "short", Decimal("3")),       # ten months early: no
        ],
        schema={"adjusted_acquired": pl.Date, "disposed": pl.Date, "term": pl.String, "gain": pl.Decimal(38, 18)},
        orient="row",
    )
    assert _near_long_term(slices, 30, True) == {"days": 30, "slices": 3, "gain": Decimal("8.75")}
    assert _near_long_term(slices.head(0), 30, True) == {"days": 30, "slices": 0, "gain": Decimal(0)}


def test_csv_cells_that_look_like_formulas_are_neutralised() -> None:
    assert [neutralise(v) for v in ("=1+2", "+SUM(A1)", "-cmd", "@A1", "-12.50", "+3", "VTI", 5)] == [
        "'=1+2", "'+SUM(A1)", "'-cmd", "'@A1", "-12.50", "+3", "VTI", 5,
    ]
    out = io.StringIO()
    write_csv(pl.DataFrame({"account": ["=HYPERLINK(\"x\")", "Alpaca"], "gain": [Decimal("-1.50"), Decimal("2")]}), out)
    assert out.getvalue().splitlines() == ["account,gain", "\"'=HYPERLINK(\"\"x\"\")\",-1.5", "Alpaca,2"]


def test_csv_is_written_in_batches_that_join_into_one_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of rows (CSV_BATCH) give the same text as one: a header once, every row once, in
    order, formulas neutralised in each batch; an empty frame still gets its header."""
    frame = pl.DataFrame({"account": ["=x", "A", "B", "@y", "C"], "gain": [Decimal(i) - 2 for i in range(5)]})
    whole = io.StringIO()
    write_csv(frame, whole)
    monkeypatch.setattr(listing, "CSV_BATCH", 2)
    batched = io.StringIO()
    write_csv(frame, batched)
    assert batched.getvalue() == whole.getvalue()
    assert whole.getvalue().splitlines() == ["account,gain", "'=x,-2", "A,-1", "B,0", "'@y,1", "C,2"]
    empty = io.StringIO()
    write_csv(frame.clear(), empty)
    assert empty.getvalue() == "account,gain\n"


def test_csv_to_stdout_is_the_text_written_anywhere_else(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """On stdout the CSV goes straight to the bytes, and columns whose cells can't start like a
    formula skip the per-cell test (``_neutralised``): the same bytes as through a StringIO, and
    every text cell as ``neutralise`` alone makes it, whatever its first characters (each column
    here starts, or not, with the bytes just around the formula ones)."""
    starts = ["\t", "\n", "\r", "*", "+", "-", ".", "0", "9", "<", "=", ">", "?", "@", "A", "é", ""]
    cells = [a + b for a in starts for b in ("", "1", "x", "-", "=", "1.5")]
    texts = {f"c{i}": [c for c in cells if c[:1] in group] + [None]
             for i, group in enumerate([starts[:3], starts[3:6], starts[6:10], starts[10:13], starts[13:], starts])}
    rows = max(len(v) for v in texts.values())
    frame = pl.DataFrame({k: v + [v[0]] * (rows - len(v)) for k, v in texts.items()}, schema=dict.fromkeys(texts, pl.String))
    frame = frame.with_columns(n=pl.int_range(pl.len()).cast(pl.Decimal(38, 18)) / 8 - 3, day=pl.lit(dt.date(2025, 1, 2)))
    text = io.StringIO()
    write_csv(frame, text)
    capsysbinary.readouterr()
    assert listing._byte_stream(sys.stdout) is not None  # the bytes path is the one under test
    sys.stdout.write("before\n")
    write_csv(frame, sys.stdout)
    sys.stdout.write("after\n")
    sys.stdout.flush()
    assert capsysbinary.readouterr().out.decode() == "before\n" + text.getvalue() + "after\n"
    cells_out = list(csv.reader(io.StringIO(text.getvalue(), newline="")))[1:]
    for r, row in enumerate(cells_out):
        for c, name in enumerate(texts):
            value = frame.get_column(name)[r]
            assert row[c] == ("" if not value else neutralise(value)), (name, value)


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    """No network fetch (no external src/href, no script), and data is escaped."""
    config = taxlens.Config.model_validate({"accounts": {"<b>Joint</b>": {"type": "taxable"}}})
    with taxlens.open_book(":memory:", config) as book:
        book.ingest([write(tmp_path, "t.csv", HEADER + "2025-01-02,<b>Joint</b>,VTI,buy,1,100,0,USD,etf,B1,\n"
                                                     "2025-02-03,<b>Joint</b>,VTI,sell,1,90,0,USD,etf,S1,\n")])
        a = build_audit(book.trades(), book.booked(), book.config, 2025)
        page = render.html(a)
    assert "&lt;b&gt;Joint&lt;/b&gt;" in page and "<b>Joint</b>" not in page
    assert "<script" not in page and "src=\"http" not in page and "href=\"http" not in page and "@import" not in page


def test_html_long_tables_list_their_first_rows_and_say_where_the_rest_are(year) -> None:  # type: ignore[no-untyped-def]
    """A busy year's page lists the first rows of each long table (a million rows would make a
    page no browser opens) and says how many there are and which command lists them all;
    a table that fits is listed whole, with no such line."""
    a, _book = year
    assert a.disposals.height > 1 and a.washes.height > 1
    whole, capped = render.html(a), render.html(a, rows=1)
    assert "by date sold" not in whole
    body = capped.split("<h2>Disposals", 1)[1]
    assert body.count("<tr><td>") == 1  # the header row is <tr><th>
    assert str(render.disposal_rows(a.disposals.head(1))) in body and str(render.disposal_rows(a.disposals.slice(1, 1))) not in body
    assert f"The first 1 of {a.disposals.height:,}, by date sold. All of them: <code>taxlens gains --year {a.year} --format csv</code>" in body
    washes = capped.split("<h2>Wash sales", 1)[1].split("<h2>Disposals", 1)[0]
    assert washes.count("<tr><td>") == 1
    assert f"The first 1 of {a.washes.height:,}, by date sold. All of them: <code>taxlens wash --year {a.year} --format csv</code>" in washes


def _txf_by_loop(rows: pl.DataFrame, program: str, exported: dt.date) -> tuple[str, int]:
    """TXF v042 written the plain way, a record per row in Python: the reference ``forms.txf``
    (vectorised) must equal byte for byte."""
    records = [f"V042\nA{program}\nD{exported.strftime('%m/%d/%Y')}\n^"]
    skipped = 0
    for r in rows.iter_rows(named=True):
        refnum = forms.TXF_REFNUM.get(r["box"])
        if refnum is None:
            skipped += 1
            continue
        acquired = "" if r["date_acquired"] == "VARIOUS" else r["date_acquired"]
        basis = f"{Decimal(r['cost_basis']):,.2f}" if r["cost_basis"] is not None else ""
        washed = f"\n${Decimal(r['adjustment']):,.2f}" if r["code"] == "W" and r["adjustment"] is not None else ""
        records.append(f"TD\nN{refnum}\nC1\nL1\nP{r['description']}\nD{acquired}\nD{r['date_sold']}\n"
                       f"${basis}\n${Decimal(r['proceeds']):,.2f}{washed}\n^")
    return "\n".join(records) + "\n", skipped


_AMOUNTS = st.decimals(min_value=Decimal("-1e13"), max_value=Decimal("1e13"), places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from("ABCDEFGHIJKL"), st.sampled_from(["01/02/2025", "VARIOUS"]), _AMOUNTS, st.none() | _AMOUNTS,
    st.sampled_from([None, "W", "B"]), st.none() | _AMOUNTS,
), max_size=12))
def test_txf_equals_a_record_by_record_loop(slices) -> None:  # type: ignore[no-untyped-def]
    """The vectorised TXF writes what the plain loop writes: amounts of any size and sign
    (thousands separators), unknown basis, wash adjustments, VARIOUS dates, boxes without
    a TXF code left out and counted."""
    two = pl.Decimal(38, 2)
    rows = pl.DataFrame(
        [{"part": "I", "box": box, "description": f"{k} sh. VTI", "date_acquired": acquired, "date_sold": "12/31/2025",
          "proceeds": proceeds, "cost_basis": basis, "code": code, "adjustment": adjustment, "gain": "0.00"}
         for k, (box, acquired, proceeds, basis, code, adjustment) in enumerate(slices)],
        schema={**dict.fromkeys(forms.COLUMNS, pl.String), "proceeds": two, "cost_basis": two, "adjustment": two},
    ).with_columns(pl.col(c).cast(pl.String) for c in ("proceeds", "cost_basis", "adjustment"))  # form8949's text
    expected = _txf_by_loop(rows, "taxlens test", dt.date(2026, 1, 31))
    assert forms.txf(rows, program="taxlens test", exported=dt.date(2026, 1, 31)) == expected
    # ... and written a few records at a time, as a large year is, the same text.
    with unittest.mock.patch.object(forms, "TXF_BATCH", 5):
        assert forms.txf(rows, program="taxlens test", exported=dt.date(2026, 1, 31)) == expected


@pytest.mark.parametrize("fmt", ["terminal", "html", "8949", "txf", "json", "csv"])
def test_every_renderer_against_its_golden_file(year, golden, fmt: str) -> None:  # type: ignore[no-untyped-def]
    a, _book = year
    if fmt == "terminal":
        # soft_wrap as the CLI's console has it, which leaves plain text unwrapped unless the
        # renderer asks for wrapping: the profile line was cut at the panel's edge.
        console = Console(file=io.StringIO(), width=100, color_system=None, force_terminal=False, record=True, soft_wrap=True)
        render.terminal(a, console)
        text = console.export_text()
        assert max(len(line) for line in text.splitlines()) <= 100
    elif fmt == "html":
        text = render.html(a)
    elif fmt in ("8949", "txf"):
        rows = forms.form8949(a.disposals, frozenset({"BTC"}))
        if fmt == "8949":
            buf = io.StringIO()
            write_csv(rows, buf)
            text = buf.getvalue()
        else:
            text, skipped = forms.txf(rows, program="taxlens test", exported=a.through)
            assert skipped == 1  # the BTC row: box H has no TXF code
    elif fmt == "json":
        text = render.to_json(a)
    else:
        text = render.to_csv(a)
    suffix = {"terminal": "txt", "8949": "csv", "csv": "metrics.csv"}.get(fmt, fmt)
    golden.check(GOLDEN / f"audit-2025.{suffix}", text)


IBKR_WORKSHEET = """\
Title,Worksheet for Form 8949,2025,
Account,U999999,Test Person,
Part,I,
Box,A,
Header,Description,Code,Date Acquired,Date Sold,Sales Price,Cost Basis,Adjustment,
Data,5 sh VTI,,01/02/2025,03/03/2025,549.00,500.50,,
Data,5 sh VTI,W,01/02/2025,06/02/2025,450.00,500.50,"10.10",
Data,4 sh VTI,,06/10/2025,12/01/2025,380.00,368.00,,
Footer,,,,,"1,379.00","1,369.00",,
Part,II,
Box,D,
Header,Description,Code,Date Acquired,Date Sold,Sales Price,Cost Basis,Adjustment,
Data,2 sh MICROSOFT CORP,,01/05/2024,04/01/2025,800.00,600.00,,
Footer,,,,,800.00,600.00,,
"""


def test_reconcile_explains_what_the_broker_could_not_see(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The broker (Alpaca's own worksheet, in IBKR's layout) saw the 6/2 wash only against its
    own later purchase: it disallowed 10.10 where taxlens, seeing the IRA's purchase, disallows
    50.50 (30.30 for good). It never carried the deferred 20.20 into the 12/1 basis either.
    MICROSOFT CORP is a name, not a ticker: that line matches nothing."""
    write(tmp_path, "taxlens.toml", '[accounts."Roth IRA"]\ntype = "roth_ira"\n')
    write(tmp_path, "trades.csv", HEADER + TRADES)
    assert run("ingest", "-q", "trades.csv").exit_code == 0
    write(tmp_path, "worksheet.csv", IBKR_WORKSHEET)
    result = run("reconcile", "worksheet.csv", "--account", "Alpaca", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["sold", "symbol", "quantity", "difference", "broker", "taxlens", "cause", "source"]
    assert [r[:6] for r in rows[1:]] == [
        ["2025-04-01", "MICROSOFT CORP", "2", "only in broker", "800.00", ""],
        ["2025-04-01", "MSFT", "2", "only in taxlens", "", "800.00"],
        ["2025-06-02", "VTI", "5", "adjustment", "10.10", "50.50"],  # 50.50 = 10.10 a share on all 5
        ["2025-12-01", "VTI", "4", "basis", "368.00", "388.20"],  # 368 + the 20.20 deferred
    ]
    assert rows[3][6].startswith("a wash sale across accounts or into an IRA") and rows[3][7] == "worksheet.csv:7"
    assert rows[4][6].startswith("basis includes a deferred wash-sale loss")
    assert "4 broker rows; 4 differences" in result.stderr


def test_reconcile_names_bad_rows_and_unknown_layouts(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "t.csv", HEADER + TRADES)
    assert run("ingest", "-q", "t.csv").exit_code == 0
    write(tmp_path, "bad.csv", "symbol,date_sold,proceeds,cost_basis\nVTI,13/45/2025,1,1\nVTI,03/03/2025,x,1\n")
    result = run("reconcile", "bad.csv")
    assert result.exit_code == 1
    assert "bad.csv:2: date '13/45/2025' is not MM/DD/YYYY, YYYY-MM-DD or VARIOUS" in result.stderr
    assert "bad.csv:3:" in result.stderr
    write(tmp_path, "other.csv", "a,b\n1,2\n")
    result = run("reconcile", "other.csv")
    assert result.exit_code == 1 and "other.csv:1: not a realized gain/loss layout taxlens knows" in result.stderr


def test_table_cuts_long_ids_to_one_line_and_csv_keeps_them_whole() -> None:
    """On a terminal a row is a line: a 57-character Alpaca id is cut to 20 with an ellipsis,
    where wrapping it made each row 7 lines tall. Amounts are never cut; CSV keeps the id."""
    long_id = "20251231141933356::9509796c-e7a4-44e4-96fd-799f5cf99afd"
    frame = pl.DataFrame({"symbol": ["VTI"], "proceeds": [Decimal("934.28")], "sell_trade_id": [long_id]})
    console = Console(width=60, record=True)
    console.print(listing.table(frame))
    lines = console.export_text().splitlines()
    assert len(lines) == 3  # header, rule, the row
    assert "934.28" in lines[2] and "20251231141933356::…" in lines[2]
    out = io.StringIO()
    listing.write_csv(frame, out)
    assert long_id in out.getvalue()


WASH_ROWS = pl.DataFrame({
    "disposed": [dt.date(2025, 3, 6), dt.date(2025, 2, 19)],
    "account": ["Alpaca", "Schwab Roth IRA ...123"],
    "symbol": ["MSFT", "VXUS"],
    "sell_trade_id": ["20250306115931994::0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"] * 2,
    "quantity": [Decimal("5.175204632"), Decimal("37")],
    "disallowed": ["125.00", "16.37"],  # as the CLI renders money (listing.money_columns)
    "status": ["deferred", "permanent"],
    "replacement_account": ["Alpaca", "Schwab Roth IRA ...123"],
    "replacement_lot_id": ["20250212100630607::1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d"] * 2,
    "replacement_acquired": [dt.date(2025, 2, 12), dt.date(2025, 1, 27)],
    "broker_reported": ["yes", "no"],
})


def _printed(frame: pl.DataFrame, width: int) -> list[str]:
    # soft_wrap as the CLI's console has it
    console = Console(file=io.StringIO(), width=width, record=True, soft_wrap=True, color_system=None)
    console.print(listing.table(frame))
    return console.export_text().splitlines()


@pytest.mark.parametrize("width", [100, 120, 160])
def test_a_table_too_wide_for_the_terminal_keeps_amounts_and_dates_whole(width: int) -> None:
    """Rich alone squeezed the wash listing at 120 columns by folding "125.00" into "125.0"
    over "0" (two values to the eye) and cutting dates while ids kept their room. Fitted, the
    ids and text give way first: every amount, quantity and date is on its row whole."""
    lines = _printed(WASH_ROWS, width)
    assert max(len(line) for line in lines) <= width
    rows = [line for line in lines if "│" in line]
    first = next(i for i, line in enumerate(rows) if "2025-03-06" in line)
    assert all(v in rows[first] for v in ("2025-03-06", "5.175204632", "125.00", "2025-02-12"))
    second = next(i for i, line in enumerate(rows) if "2025-02-19" in line)
    assert all(v in rows[second] for v in ("2025-02-19", "37", "16.37", "2025-01-27"))
    assert "cut to fit" not in "\n".join(lines)


def test_a_table_that_cannot_keep_its_values_whole_says_so() -> None:
    lines = _printed(WASH_ROWS, 60)
    assert lines[-1] == "Some values are cut to fit 60 columns: a wider terminal, or --format csv, shows them whole."


def test_a_table_that_fits_is_laid_out_as_rich_lays_it_out() -> None:
    """Wide enough, nothing changes but the headers' spaces: one header line, ids at 20."""
    lines = _printed(WASH_ROWS, 220)
    assert lines[0].split("┃")[-3].strip() == "replacement lot id"
    assert "20250306115931994::…" in lines[2]


@pytest.mark.parametrize(("room", "widths"), [
    # Columns: an amount (needs 6), an id (needs 4, wants 20), text (needs 4, wants 10).
    (40, [None, None, None]),      # everything fits
    (13, [None, None, None]),      # not even the first tier: rich decides
    (14, [6, 4, 4]),               # the first tier exactly
    (20, [6, 7, 7]),               # 6 more, shared 4 : 4 towards the second tier (8, 8)
    (26, [6, 12, 8]),              # the second tier, then 4 towards the last, shared 12 : 2
])
def test_fit_widths_shares_the_room_tier_by_tier(room: int, widths: list[int | None]) -> None:
    tiers = [[6, 4, 4], [6, 8, 8], [6, 20, 10]]
    assert listing.fit_widths(tiers, room) == widths
