"""Renderers of an ``Audit``: terminal summary, self-contained HTML, JSON and CSV of the metrics.

Each is deterministic for a given audit (no clock, no randomness): golden files hold them.
Money is rounded to cents here, and only here.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from taxlens import __version__
from taxlens.money import cents, plain
from taxlens.report.audit import Audit
from taxlens.report.listing import as_text, date_text, whole_cents, write_csv
from taxlens.tax.federal import Profile

if TYPE_CHECKING:
    from markupsafe import Markup

STATUS_NAMES = {"single": "single", "mfj": "married filing jointly", "mfs": "married filing separately",
                "hoh": "head of household", "qss": "qualifying surviving spouse"}


def money(value: Decimal | int | None) -> str:
    """Cents with thousands separators, minus sign first: ``-1,234.50``."""
    if value is None:
        return ""
    return f"{cents(Decimal(value)):,.2f}"


def pct(value: Decimal | None) -> str:
    """A share as a percentage: one decimal, two below 1 % (fees are small shares)."""
    if value is None:
        return ""
    scaled = Decimal(value) * 100
    return f"{scaled:.2f}%" if abs(scaled) < 1 else f"{scaled:.1f}%"


def describe_profile(profile: Profile) -> str:
    """The tax profile in a phrase: year, filing status, and the income or flat rate it assumes."""
    parts = [str(profile.year), STATUS_NAMES[profile.status]]
    if profile.marginal_rate is not None:
        parts.append(f"a flat {pct(profile.marginal_rate)} on net gains")
    else:
        parts.append(f"other income {money(profile.other_income)}")
        if profile.state_rate:
            parts.append(f"state {pct(profile.state_rate)}")
    return ", ".join(parts)


# -- terminal ------------------------------------------------------------------------------------


def terminal(a: Audit, console: Console) -> None:
    """The one-screen summary (fits 100 columns)."""
    g = a.gains
    short = Decimal(g["short_gains"]) + Decimal(g["short_losses"])
    long = Decimal(g["long_gains"]) + Decimal(g["long_losses"])
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column(justify="right")
    head.add_column()
    rate = a.tax.effective_rate()
    head.add_row("Tax caused by the trading", money(a.tax.incremental), f"{pct(rate)} of the net realized gain" if rate is not None else "")
    head.add_row("Fees", money(a.fees), f"{pct(a.fee_share)} of the average invested {money(a.invested)} (at cost)" if a.fee_share is not None else "")
    head.add_row("Trades", str(a.trades), f"{a.taxable_events} taxable events, {a.reinvestments} reinvestments")
    head.add_row("Realized gain", money(short + long), f"short-term {money(short)}, long-term {money(long)}")
    head.add_row("Wash sales disallowed", money(a.wash["disallowed"]),
                 f"{money(a.wash['permanent'])} lost for good (IRA buys); {money(a.wash['not_on_1099'])} not on any 1099-B; "
                 f"{money(a.wash['still_deferred'])} still deferred in holdings at the end of {a.year}")
    if a.turnover is not None:
        head.add_row("Turnover", f"{a.turnover:.1f}x", "sales / average invested")
    head.add_row("Sold just short of long-term", money(a.near_long_term["gain"]),
                 f"{a.near_long_term['slices']} short-term gains within {a.near_long_term['days']} days of the line")

    checks = Table(show_edge=False, header_style="bold", box=None, padding=(0, 1))
    checks.add_column("check")
    checks.add_column("")
    checks.add_column("finding", overflow="fold")
    for c in a.checks:
        checks.add_row(c.name, "[green]ok[/green]" if c.ok else "[red]look[/red]", escape(c.finding))

    base = Table(show_edge=False, header_style="bold", box=None, padding=(0, 1))
    for name, justify in (("scenario", "left"), ("tax", "right"), ("fees", "right"), ("total", "right")):
        base.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in a.baselines.iter_rows(named=True):
        base.add_row(r["scenario"], money(r["tax"]), money(r["fees"]), money(r["total"]))

    top = Table(show_edge=False, header_style="bold", box=None, padding=(0, 1))
    for name, justify in (("symbol", "left"), ("realized", "right"), ("tax caused", "right"), ("fees", "right")):
        top.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in a.symbols.head(5).iter_rows(named=True):
        top.add_row(r["symbol"], money(r["realized"]), money(r["tax"]), money(r["fees"]))

    title = f"taxlens audit {a.year}, trades through {a.through.isoformat()}"
    profile = f"Tax estimate for {describe_profile(a.profile)} ([tax] in taxlens.toml)."
    # soft_wrap=False: the CLI's console soft-wraps, which would cut the panel's plain text at
    # its edge rather than wrap it.
    console.print(Panel(Group(head, "", escape(profile), "", checks, "", base, "", top), title=title, title_align="left",
                        width=min(100, console.width)), soft_wrap=False)


# -- HTML --------------------------------------------------------------------------------------


def _escaped(text: pl.Expr) -> pl.Expr:
    """``text`` HTML-escaped as jinja2's autoescape (markupsafe) escapes it."""
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;"), ("'", "&#39;")):
        text = text.str.replace_all(raw, entity, literal=True)
    return text


def _money_text(value: pl.Expr) -> pl.Expr:
    """``money`` as an expression: cents half away from zero, thousands separators, a minus
    sign for any negative amount (``-0.00`` included, as Python formats it), "" for null."""
    whole = whole_cents(value).abs()
    units = whole // 100
    # Eight groups of three digits (Decimal(38,18) holds under 10^20), zero-padded and joined
    # with commas; the leading zeros and commas then go.
    groups = [((units // 1000**k) % 1000).cast(pl.String).str.zfill(3) for k in range(7, -1, -1)]
    integer = pl.concat_str(groups, separator=",").str.strip_chars_start("0,")
    text = pl.concat_str(
        pl.when(value < 0).then(pl.lit("-")).otherwise(pl.lit("")),
        pl.when(integer == "").then(pl.lit("0")).otherwise(integer),
        pl.lit("."), (whole % 100).cast(pl.String).str.zfill(2),
    )
    return pl.when(value.is_null()).then(pl.lit("")).otherwise(text)


def _html_rows(frame: pl.DataFrame, cells: list[tuple[str, pl.Expr]]) -> Markup:
    """``<tr>`` rows of ``frame``, one a line, each cell ``<td{attributes}>text</td>`` for
    (attributes, text expression) in ``cells``, the text escaped: what a jinja2 loop over the
    rows writes, vectorised (a template loop takes 100 µs a row: 46 s for 440k disposals)."""
    from markupsafe import Markup

    if frame.height == 0:
        return Markup("")
    pieces: list[pl.Expr] = [pl.lit("<tr>")]
    for attributes, text in cells:
        pieces += [pl.lit(f"<td{attributes}>"), _escaped(text.fill_null("")), pl.lit("</td>")]
    pieces.append(pl.lit("</tr>\n"))
    # Lazy: the amounts' shared subexpressions are then computed once, not once a use.
    return Markup(frame.lazy().select(pl.concat_str(pieces).str.join("")).collect().item())


def _quantity(frame: pl.DataFrame, column: str) -> pl.Expr:
    """The ``qty`` of each row (``plain``): as ``listing.as_text`` writes a decimal."""
    return pl.lit(as_text(frame.select(column)).get_column(column))


def disposal_rows(disposals: pl.DataFrame) -> Markup:
    """The report's disposals table body."""
    num = ' class="num"'
    return _html_rows(disposals, [
        ("", pl.col("account")), ("", pl.col("symbol")), (num, _quantity(disposals, "quantity")),
        ("", date_text("acquired", disposals.get_column("acquired"))), ("", date_text("disposed", disposals.get_column("disposed"))), (num, _money_text(pl.col("proceeds"))),
        (num, _money_text(pl.col("cost_basis"))), ("", pl.col("adjustment_code")),
        # `money(r.adjustment) if r.adjustment else ""`: any nonzero amount, even one that
        # rounds to 0.00
        (num, pl.when(pl.col("adjustment") != 0).then(_money_text(pl.col("adjustment"))).otherwise(pl.lit(""))),
        (num, _money_text(pl.col("gain"))), ("", pl.col("term")),
    ])


def wash_rows(washes: pl.DataFrame) -> Markup:
    """The report's wash-sales table body."""
    num = ' class="num"'
    return _html_rows(washes, [
        ("", date_text("disposed", washes.get_column("disposed"))), ("", pl.col("account")), ("", pl.col("symbol")), (num, _quantity(washes, "quantity")),
        (num, _money_text(pl.col("disallowed"))), ("", pl.col("status")),
        ("", pl.concat_str(pl.col("replacement_account"), pl.col("replacement_symbol"),
                             date_text("replacement_acquired", washes.get_column("replacement_acquired")), separator=" ")),
        ("", pl.when(pl.col("broker_reported")).then(pl.lit("yes")).otherwise(pl.lit("no"))),
    ])


#: Rows of each long table (disposals, wash sales) the HTML report lists: a busier year says
#: how many more there are and where to get them all. A page of millions of rows would run to
#: hundreds of megabytes, more than a browser opens, and in a box showing twenty at a time.
HTML_ROWS = 5_000


def html(a: Audit, *, rows: int | None = None) -> str:
    """The self-contained report: inline CSS and SVG charts, no script, no network fetch;
    every value escaped (jinja2 autoescape). The disposals and wash-sale tables list their
    first ``rows`` rows (``HTML_ROWS`` by default; by date sold), saying so when there are more."""
    rows = HTML_ROWS if rows is None else rows
    from jinja2 import Environment, PackageLoader, select_autoescape

    from taxlens.report import charts

    env = Environment(loader=PackageLoader("taxlens.report", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      keep_trailing_newline=True)
    g = a.gains
    short = Decimal(g["short_gains"]) + Decimal(g["short_losses"])
    long = Decimal(g["long_gains"]) + Decimal(g["long_losses"])
    top = a.busiest_weeks.row(0, named=True) if a.busiest_weeks.height else None
    drawn = {
        "weekly": charts.trades_per_week(a.weekly, a.busy_week),
        "cumulative": charts.cumulative_gain(a.cumulative),
        "fees": charts.monthly_bars(a.monthly, "fees", "Fees by month", "#718096"),
        "tax": charts.monthly_bars(a.monthly, "tax", "Tax caused, by month", "#c53030"),
        "symbols": charts.top_symbols(a.symbols),
    }
    return env.get_template("report.html.j2").render(
        a=a, charts=drawn, money=money, pct=pct, qty=lambda v: plain(v) if v is not None else "",
        rate=a.tax.effective_rate(), net=short + long, short=short, long=long,
        busiest=f"{top['trades']} trades (week of {top['week'].isoformat()})" if top else "none",
        profile=describe_profile(a.profile), profile_year=a.profile.year, version=__version__,
        disposal_rows=disposal_rows(a.disposals.head(rows)), wash_rows=wash_rows(a.washes.head(rows)), rows=rows,
    )


def simulate_html(metrics: pl.DataFrame, columns: list[str], *, targets: dict[str, float], source: str, start: Any, end: Any,
                  start_state: str, frictions: Any, profile: str) -> str:
    """The policy comparison page: frontier chart and the metrics table (self-contained)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    from taxlens.report import charts

    env = Environment(loader=PackageLoader("taxlens.report", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      keep_trailing_newline=True)
    shown = []
    for r in metrics.iter_rows(named=True):
        row = dict(r)
        for k in ("fees", "short", "long", "washed", "tax", "tax_and_fees", "after_tax"):
            row[k] = money(r[k])
        row["turnover"] = f"{r['turnover']:.2f}x"
        for k in ("tracking_error", "drift_mean", "drift_max"):
            row[k] = f"{r[k] * 100:.2f}%"
        row["dominated"] = r["dominated"]
        shown.append(row)
    fr = f"commission {money(frictions.commission)} a trade, spread {frictions.spread_bps} bp, {'fractional' if frictions.fractional else 'whole'} shares"
    return env.get_template("simulate.html.j2").render(
        chart=charts.frontier(metrics), rows=shown, columns=[c for c in columns if c != "dominated"],
        targets=", ".join(f"{s} {w:.0%}" for s, w in targets.items()), source=source, start=start, end=end,
        start_state=start_state, frictions=fr, profile=profile, version=__version__,
    )


# -- JSON and CSV --------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return plain(cents(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _frame(frame: pl.DataFrame) -> list[dict[str, Any]]:
    text = as_text(frame.with_columns(pl.col(c).round(2) for c, t in frame.schema.items() if isinstance(t, pl.Decimal) and c not in ("quantity",)))
    return text.to_dicts()


def metrics(a: Audit) -> dict[str, Any]:
    """Every metric of the audit as plain JSON-able values (money in cents, as strings)."""
    g = a.gains
    return {
        "year": a.year,
        "through": a.through.isoformat(),
        "trades": a.trades,
        "taxable_events": a.taxable_events,
        "reinvestments": a.reinvestments,
        "fees": _plain(a.fees),
        "average_invested_at_cost": _plain(a.invested),
        "turnover": None if a.turnover is None else f"{a.turnover:.4f}",
        "fee_share": None if a.fee_share is None else f"{a.fee_share:.6f}",
        "gains": {k: _plain(v) for k, v in g.items()},
        "wash_sales": {k: _plain(v) for k, v in a.wash.items()},
        "near_long_term": {k: _plain(v) for k, v in a.near_long_term.items()},
        "tax": {
            "incremental": _plain(a.tax.incremental),
            "effective_rate": None if a.tax.effective_rate() is None else f"{a.tax.effective_rate():.4f}",
            "with_gains": _bill(a.tax.with_gains),
            "without_gains": _bill(a.tax.without_gains),
        },
        "checks": [{"name": c.name, "ok": c.ok, "finding": c.finding} for c in a.checks],
        "baselines": _frame(a.baselines),
        "accounts": _frame(a.accounts),
        "monthly": _frame(a.monthly),
        "weekly": _frame(a.weekly),
        "busiest_weeks": _frame(a.busiest_weeks),
        "holding": _frame(a.holding),
        "symbols": _frame(a.symbols),
    }


def _bill(b: Any) -> dict[str, Any]:
    n = b.netting
    return {
        "net_short": _plain(n.short), "net_long": _plain(n.long), "net": _plain(n.net), "deducted": _plain(n.deducted),
        "carry_short": _plain(n.carry_short), "carry_long": _plain(n.carry_long), "taxable_income": _plain(b.taxable_income),
        "federal": _plain(b.federal), "niit": _plain(b.niit), "state": _plain(b.state), "total": _plain(b.total),
    }


def to_json(a: Audit) -> str:
    return json.dumps(metrics(a), indent=2) + "\n"


def to_csv(a: Audit) -> str:
    """Every metric as ``section,key,value`` rows (tables flattened row by row, with the row's
    first column in the key), written by ``listing.write_csv`` (text neutralised against
    spreadsheet formulas there)."""
    rows: list[tuple[str, str, str | None]] = []

    def cell(value: Any) -> str | None:
        return None if value is None else str(value)

    def walk(section: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{section}.{k}" if section else k, v)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    first = next(iter(item.values()), i)
                    rows.extend((section, f"{first}.{k}", cell(v)) for k, v in item.items())
                else:
                    rows.append((section, str(i), cell(item)))
        else:
            key = section.rsplit(".", 1)
            rows.append((key[0] if len(key) > 1 else "", key[-1], cell(value)))

    walk("", metrics(a))
    out = io.StringIO()
    write_csv(pl.DataFrame(rows, schema=dict.fromkeys(("section", "key", "value"), pl.String), orient="row"), out)
    return out.getvalue()
