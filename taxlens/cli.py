"""The `taxlens` command: a thin click layer over the library in ``taxlens.api``.

Each command parses options, calls one library function and renders the result. Library errors
(TaxlensError) become ``Error: ...`` on stderr and exit code 1; usage errors exit 2 (click).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import os
import sys
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import closing, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TextIO

import click
import polars as pl
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.status import Status

from taxlens import __version__
from taxlens.api import Book, FileResult, IngestReport, open_part, select_gains
from taxlens.api import Progress as IngestProgress
from taxlens.errors import RowError, RowErrors, TaxlensError
from taxlens.ingest import ADAPTERS
from taxlens.lots.book import summary, summed
from taxlens.lots.engine import Booked
from taxlens.lots.wash import WASH_SUMMARY_COLUMNS, wash_summary
from taxlens.models import AccountType
from taxlens.report import forms, holdings, listing, render
from taxlens.report.audit import AUDIT_BOOKING_TOTALS, AUDIT_TRADE_COLUMNS, Audit, audit_years, build_audit
from taxlens.report.reconcile import read_broker
from taxlens.report.reconcile import reconcile as reconcile_frames
from taxlens.store import DEFAULT_DB, ENV_DB

FORMAT_OPTION = click.option(
    "--format", "fmt", type=click.Choice(listing.FORMATS), default="table", show_default=True,
    help="Output format: a table for the terminal (long ids cut to fit), or csv or json, whole.",
)


class Settings:
    def __init__(self, db: str | None, config: str | None) -> None:
        self.db = db
        self.config = config


def _console(stderr: bool = False) -> Console:
    """A console for messages and tables; wide when writing to a file or pipe, where there is
    no terminal width to fit and wrapped cells would only hurt."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", 160))
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


@contextmanager
def _book(ctx: click.Context, *, read_only: bool = False, create: bool = False) -> Iterator[Book]:
    """Open the book for a command. Only ``ingest`` creates a database; the others say there is
    none yet instead of creating an empty one."""
    settings: Settings = ctx.obj
    path = settings.db or os.environ.get(ENV_DB) or DEFAULT_DB
    if not create and path != ":memory:" and not os.path.exists(path):
        raise click.ClickException(f"{path}: no taxlens database here yet (run `taxlens ingest`)")
    try:
        book = Book(settings.db, settings.config, read_only=read_only)
    except TaxlensError as exc:
        raise click.ClickException(str(exc)) from exc
    book.on_stage = _stage_line(_console(stderr=True))
    try:
        yield book
    except TaxlensError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        book.close()


def _stage_line(console: Console) -> Callable[[str | None], None] | None:
    """A status line with a spinner for the book's long work ("booking 1,000,000 trades"), on
    a terminal only: piped output and logs get nothing."""
    if not console.is_terminal:
        return None
    status: Status | None = None

    def stage(what: str | None) -> None:
        nonlocal status
        if what is None:
            if status is not None:
                status.stop()
                status = None
        elif status is not None:
            status.update(f"{what}…")
        else:
            status = console.status(f"{what}…", spinner="dots")
            status.start()

    return stage


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--db", type=click.Path(dir_okay=False), envvar=ENV_DB, show_envvar=True,
    help=f"DuckDB database file [default: ./{DEFAULT_DB}].",
)
@click.option(
    "--config", type=click.Path(dir_okay=False), default=None,
    help="Settings file [default: ./taxlens.toml when present].",
)
@click.version_option(__version__, prog_name="taxlens")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config: str | None) -> None:
    """Audit what automated trading costs in taxes and fees, from your broker exports.

    Everything stays on this machine, in one DuckDB file you can query directly.

    \b
    Start with:
      taxlens audit ~/Downloads/*.csv       read exports, report what the year cost
      taxlens accounts                      check account types (IRA, taxable...)
      taxlens gains --year 2025             realized gains, one row per lot slice
      taxlens wash --year 2025              wash sales across all your accounts
      taxlens simulate --band 2,5 --calendar M,Q   compare rebalancing policies
    """
    ctx.obj = Settings(db, config)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(list(ADAPTERS)), help="Read every file as this format, skipping detection (see `taxlens formats`).")
@click.option("--mapping", type=click.Path(dir_okay=False), help="Read any other CSV through a column-mapping TOML.")
@click.option("--account", help="Put the trades in this account (for exports that don't name one).")
@click.option("--skip-bad-rows", is_flag=True, help="Import a file's good rows even if some rows are bad (still reports them, exits 1).")
@click.option("--encoding", help="Text encoding of the files [default: UTF-8, with or without BOM].")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.pass_context
def ingest(
    ctx: click.Context, files: tuple[str, ...], fmt: str | None, mapping: str | None,
    account: str | None, skip_bad_rows: bool, encoding: str | None, quiet: bool,
) -> None:
    """Import broker and platform exports into the database.

    Each file is imported whole or not at all (one transaction). Importing a file again, or an
    export whose dates overlap one already imported, adds nothing. A file with unreadable rows
    imports nothing (unless --skip-bad-rows); every bad row is listed as FILE:LINE: problem.
    """
    out, err = _console(), _console(stderr=True)
    with _book(ctx, create=True) as book, _progress(err, quiet or not err.is_terminal) as progress:
        report = book.ingest(
            files, format=fmt, mapping=mapping, account=account,
            skip_bad_rows=skip_bad_rows, encoding=encoding, progress=progress,
        )
        for result in report.files:
            _print_file_result(result, out, err, quiet)
        if not quiet:
            summary = book.summary(report)
            if summary.height:
                out.print(listing.table(summary, title="Trades added"))
            added = summary.get_column("account").unique().to_list()
            unknown = book.accounts().filter(~pl.col("configured") & pl.col("account").is_in(added))
            if unknown.height:
                names = ", ".join(unknown.get_column("account").to_list())
                out.print(f"Accounts not in taxlens.toml, treated as taxable: {names}")
    if not report.ok:
        raise click.ClickException(_failure_summary(report))


def _print_file_result(result: FileResult, out: Console, err: Console, quiet: bool) -> None:
    for error in result.errors:
        err.print(str(error), markup=False)
    if result.problem is not None:
        err.print(f"{result.problem}", markup=False)
        return
    for warning in result.warnings:
        # Warnings that point at a line already start with "path:line:".
        where, _, rest = warning.partition(": ") if warning.startswith(f"{result.path}:") else (result.path, "", warning)
        err.print(f"{where}: warning: {rest}", markup=False)
    if quiet:
        return
    if result.status == "already imported":
        out.print(f"{result.path}: already imported, nothing added", markup=False)
    elif result.status == "imported":
        ignored = sum(result.ignored.values())
        skipped = f", {len(result.errors)} bad rows skipped" if result.errors else ""
        dupes = result.trades - result.inserted
        out.print(
            f"{result.path} ({result.adapter}): {result.rows_read} rows, {result.inserted} trades added"
            + (f", {dupes} already stored" if dupes else "")
            + (f", {ignored} ignored" if ignored else "")
            + skipped,
            markup=False,
        )


def _failure_summary(report: IngestReport) -> str:
    failed = [f for f in report.files if not f.ok]
    partial = [f for f in report.files if f.ok and f.errors]
    parts = []
    rows = sum(len(f.errors) for f in failed)
    if failed:
        parts.append(
            f"{len(failed)} of {len(report.files)} files not imported"
            + (f" ({rows} bad rows; fix them or pass --skip-bad-rows)" if rows else "")
        )
    if partial:
        parts.append(f"{sum(len(f.errors) for f in partial)} bad rows skipped")
    return "; ".join(parts)


@contextmanager
def _progress(console: Console, disabled: bool) -> Iterator[IngestProgress | None]:
    if disabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} files"),
        TimeElapsedColumn(), console=console, transient=True,
    ) as bar:
        task = bar.add_task("ingest", total=None)

        def update(index: int, total: int, path: str, stage: str) -> None:
            bar.update(task, total=total, completed=index, description=f"{stage} {path}")

        yield update


@cli.command()
@click.option("--account", help="Only this account.")
@click.option("--symbol", help="Only this symbol.")
@click.option("--year", type=int, help="Only trades whose tax date falls in this year.")
@click.option("--limit", type=int, help="At most this many rows (the oldest first).")
@FORMAT_OPTION
@click.pass_context
def trades(ctx: click.Context, account: str | None, symbol: str | None, year: int | None, limit: int | None, fmt: str) -> None:
    """List imported trades and other events, oldest first."""
    with _book(ctx, read_only=True) as book:
        frame = book.trades(account=account, symbol=symbol, year=year)
    if limit is not None:
        frame = frame.head(limit)
    if fmt == "table":
        # The content hash is 32 characters; 12 identify a trade in any real book.
        short_id = pl.when(pl.col("id") == pl.col("trade_id")).then(pl.col("id").str.head(12)).otherwise(pl.col("id"))
        frame = frame.select(
            "trade_date", "account", "symbol", "action", "quantity", "price", "fee", "amount",
            short_id.alias("id"), "source",
        )
    listing.render(frame, fmt, sys.stdout, _console())


@cli.command()
@FORMAT_OPTION
@click.pass_context
def accounts(ctx: click.Context, fmt: str) -> None:
    """List accounts: type and owner from taxlens.toml, trade counts from the data.

    Accounts found in the data but not in taxlens.toml are taxable by default; add them under
    [accounts."NAME"] with type = "roth_ira" (or traditional_ira, 401k, hsa) where they are not.
    """
    settings: Settings = ctx.obj
    db = settings.db or os.environ.get(ENV_DB) or DEFAULT_DB
    exists = os.path.exists(db)
    if not exists:  # nothing imported yet: the configured accounts alone, from an empty book
        ctx.obj = Settings(":memory:", settings.config)
    with _book(ctx, read_only=exists) as book:
        frame = book.accounts()
    listing.render(frame, fmt, sys.stdout, _console())


@cli.command()
@click.argument("name", required=False, type=click.Choice(list(ADAPTERS)))
@FORMAT_OPTION
def formats(name: str | None, fmt: str) -> None:
    """List the export formats taxlens reads and how each is recognised.

    With a NAME, show that format's example and every source action: what it becomes in
    taxlens, or why it is ignored. Any action not listed is reported as an error, never
    skipped.
    """
    console = _console()
    if name is None:
        frame = pl.DataFrame(
            [{"format": a.NAME, "source": a.TITLE, "identified by": a.IDENTIFIED_BY} for a in ADAPTERS.values()]
        )
        listing.render(frame, fmt, sys.stdout, console)
        return
    adapter = ADAPTERS[name]
    rows = [{"source action": k, "taxlens action": v, "note": ""} for k, v in adapter.ACTIONS.items()]
    rows += [{"source action": k, "taxlens action": "(ignored)", "note": why} for k, why in adapter.IGNORED.items()]
    frame = pl.DataFrame(rows, schema={"source action": pl.String, "taxlens action": pl.String, "note": pl.String})
    if fmt == "table":
        console.print(f"[bold]{adapter.NAME}[/bold]: {adapter.TITLE}\nIdentified by {adapter.IDENTIFIED_BY}.")
        example = getattr(adapter, "EXAMPLE", "")
        if example:
            console.print("Example:", markup=False)
            console.print(example, markup=False, highlight=False)
    listing.render(frame, fmt, sys.stdout, console)


@cli.command()
@FORMAT_OPTION
@click.pass_context
def files(ctx: click.Context, fmt: str) -> None:
    """List the imported files: format, rows read, trades added, when."""
    with _book(ctx, read_only=True) as book:
        frame = book.files()
    listing.render(frame, fmt, sys.stdout, _console())


GAINS_COLUMNS = [
    "account", "symbol", "quantity", "acquired", "disposed", "proceeds", "cost_basis",
    "adjustment_code", "adjustment", "gain", "term", "method", "sell_trade_id", "lot_id",
]
LOTS_COLUMNS = ["account", "symbol", "lot_id", "acquired", "adjusted_acquired", "quantity", "cost_basis", "adjusted_basis"]
METHOD_OPTION = click.option(
    "--method", type=click.Choice(["fifo", "lifo", "hifo", "taxmin", "specific"]),
    help="Book every sale with this method instead of taxlens.toml's.",
)


def _render_batches(read: Generator[pl.DataFrame], shown: Callable[[pl.DataFrame], pl.DataFrame], fmt: str, out: Console) -> None:
    """A listing read back a batch at a time (``Book.in_batches``), each batch as ``shown``
    makes it: CSV written batch by batch; a table or JSON document, all in memory anyway, from
    them all at once. ``read`` is closed first, even on a closed pipe, before the book is."""
    with closing(read) as batches:
        if fmt == "csv":
            for i, batch in enumerate(batches):
                listing.write_csv(shown(batch), sys.stdout, header=i == 0)
        else:
            listing.render(pl.concat([shown(batch) for batch in batches]), fmt, sys.stdout, out)


def _print_problems(problems: list[RowError], err: Console) -> None:
    """Booking problems (booked but flagged) and errors, as FILE:LINE: message on stderr."""
    for problem in problems:
        err.print(f"{problem}", markup=False)


@cli.command()
@click.option("--year", type=int, help="Only sales whose tax date falls in this year.")
@click.option("--account", help="Only this account.")
@click.option("--symbol", help="Only this symbol.")
@METHOD_OPTION
@FORMAT_OPTION
@click.pass_context
def gains(ctx: click.Context, year: int | None, account: str | None, symbol: str | None, method: str | None, fmt: str) -> None:
    """Realized gains: one row per lot slice sold (what Form 8949 needs), then the totals.

    Money is rounded to cents here, and only here: proceeds, basis and adjustment each to the
    cent, and gain = proceeds - basis + adjustment from the rounded figures, as the form adds
    them. A sale larger than the lots held is listed with an empty basis ("basis unknown"),
    never a zero one, and reported on stderr with its file and line.
    """
    out, err = _console(), _console(stderr=True)
    advantaged: list[str] = []

    def shown(frame: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, Decimal | int], dict[str, Decimal | int]]:
        rounded = listing.round_money(frame, ["proceeds", "cost_basis", "adjustment"], gain="gain")
        return rounded.select(GAINS_COLUMNS).with_columns(
            pl.col(c).cast(pl.String) for c in ("proceeds", "cost_basis", "adjustment", "gain")
        ), summary(rounded), summary(rounded.filter(pl.col("account").is_in(advantaged)) if advantaged else rounded.clear())

    # Rendered with the book open: a new booking is being stored meanwhile (Book.close waits).
    with _book(ctx) as book:
        advantaged += [name for name, acc in book.config.accounts.items() if acc.type != AccountType.TAXABLE]
        streamed = book.in_batches("disposals", year=year, account=account, symbol=symbol, method=method)
        if streamed is None:
            result = book.booked(method=method)
            problems, errors = result.problems, result.errors
            _print_problems(problems + errors, err)
            rows, totals, sheltered = shown(select_gains(result.disposals, year=year, account=account, symbol=symbol))
            listing.render(rows, fmt, sys.stdout, out)
        else:
            # A book of millions of trades: read back from the stored booking a batch at a
            # time, the totals added up batch by batch.
            problems, errors, read = streamed
            _print_problems(problems + errors, err)
            sums, sheltered_sums = [], []

            def counted(batch: pl.DataFrame) -> pl.DataFrame:
                rows, part, sheltered_part = shown(batch)
                sums.append(part)
                sheltered_sums.append(sheltered_part)
                return rows

            _render_batches(read, counted, fmt, out)
            totals, sheltered = summed(sums), summed(sheltered_sums)
    line = listing.gains_summary(totals)
    if sheltered["disposals"]:
        # The totals above are the booking's, every account in; a reader adding up a tax year
        # must not count what an IRA sold.
        line += "\n" + listing.sheltered_summary(sheltered)
    (out if fmt == "table" else err).print(line, markup=False)
    if errors:
        raise click.ClickException("some specific-ID selections could not be honoured (listed above)")


@cli.command()
@click.option("--open", "open_only", is_flag=True, help="Only lots with shares left; quantity and basis are what remains.")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), help="The book at the end of this tax date.")
@click.option("--account", help="Only this account.")
@click.option("--symbol", help="Only this symbol.")
@click.option("--prices", "prices_file", type=click.Path(dir_okay=False, exists=True),
              help="Value the open lots at each symbol's last close in this CSV (date,symbol,close), on or before --as-of.")
@METHOD_OPTION
@FORMAT_OPTION
@click.pass_context
def lots(ctx: click.Context, open_only: bool, as_of: object, account: str | None, symbol: str | None,
         prices_file: str | None, method: str | None, fmt: str) -> None:
    """Tax lots rebuilt from the trades: acquired date, quantity and basis (original and adjusted).

    Adjusted columns equal the originals until wash sales adjust them. A lot whose basis is
    unknown (a transfer in without one) shows an empty basis. long_term_from is the first tax
    date a sale of the lot is long-term (the day after the anniversary of adjusted_acquired).

    With --open --prices FILE, each lot is valued at its symbol's last close: market_value,
    unrealized gain or loss against the adjusted basis, the term a sale at that close would
    have, and bought_last_30_days: shares of the symbol (or its wash-sale group) bought in the
    household in the 30 days to the close, the lot's own purchase aside, which would make a
    loss sale then a wash sale (so would a purchase in the 30 days after; empty where the rule
    does not apply: IRAs, crypto). Then the totals, short- and long-term: what tax-loss
    harvesting could realize.
    """
    if prices_file is not None and not open_only:
        raise click.UsageError("--prices values what is still open: add --open")
    when = as_of.date() if as_of is not None else None  # type: ignore[attr-defined]
    try:
        quotes = holdings.closes(prices_file, when) if prices_file is not None else None
    except RowErrors as exc:
        raise _bad_prices(exc) from exc
    except TaxlensError as exc:
        raise click.ClickException(str(exc)) from exc
    out = _console()
    with _book(ctx) as book:
        month_end_rule = book.config.lots.holding_period_month_end
        totals: list[pl.DataFrame] = []

        def shown(frame: pl.DataFrame) -> pl.DataFrame:
            frame = holdings.with_long_term_from(frame.select(LOTS_COLUMNS), month_end_rule=month_end_rule)
            if quotes is None:
                return listing.money_columns(frame, ["cost_basis", "adjusted_basis"])
            valued = holdings.valued(frame, quotes, book.bought_before)
            names = valued.get_column("account").unique().to_list()
            totals.append(holdings.unrealized(valued, [n for n in names if book.config.account(n).type.value == "taxable"]))
            valued = valued.with_columns(pl.col(c).cast(pl.String) for c in ("cost_basis", "adjusted_basis", "market_value", "unrealized"))
            # A terminal is not wide enough for every column: the table keeps what a sale decides on.
            return valued.select(VALUED_TABLE_COLUMNS) if fmt == "table" else valued

        streamed = None if when is not None else book.in_batches(
            "lots", account=account, symbol=symbol, open_only=open_only, method=method,
        )
        if streamed is None:
            frame = book.lots(open_only=open_only, as_of=when, account=account, symbol=symbol, method=method)
            listing.render(shown(frame), fmt, sys.stdout, out)
        else:
            # A book of millions of trades: read back from the database a batch at a time.
            _render_batches(streamed[2], lambda batch: shown(open_part(batch) if open_only else batch), fmt, out)
    if quotes is not None:
        (out if fmt == "table" else _console(stderr=True)).print(holdings.unrealized_line(totals), markup=False)


VALUED_TABLE_COLUMNS = [
    "account", "symbol", "adjusted_acquired", "quantity", "adjusted_basis", "long_term_from", "price", "market_value",
    "unrealized", "term_if_sold", "bought_last_30_days",
]


def _bad_prices(exc: RowErrors) -> click.ClickException:
    """Each bad row of a prices CSV on stderr, and the error that ends the command."""
    _print_problems(exc.errors, _console(stderr=True))
    n = len(exc.errors)
    return click.ClickException(f"{exc.path}: {n} price row{'s' if n != 1 else ''} could not be read (listed above)")


WASH_COLUMNS = [
    "disposed", "account", "symbol", "sell_trade_id", "lot_id", "quantity", "disallowed", "status",
    "replacement_account", "replacement_symbol", "replacement_lot_id", "replacement_acquired", "tacked_days",
    "broker_reported", "source",
]

WASH_TABLE_COLUMNS = [
    "disposed", "account", "symbol", "sell_trade_id", "quantity", "disallowed", "status",
    "replacement_account", "replacement_lot_id", "replacement_acquired", "broker_reported",
]


@cli.command()
@click.option("--year", type=int, help="Only loss sales whose tax date falls in this year.")
@click.option("--account", help="Only loss sales in this account.")
@click.option("--symbol", help="Only loss sales of this symbol.")
@METHOD_OPTION
@FORMAT_OPTION
@click.pass_context
def wash(ctx: click.Context, year: int | None, account: str | None, symbol: str | None, method: str | None, fmt: str) -> None:
    """Wash sales: each loss sale matched to the shares that replaced it, then the totals.

    One row per (loss slice, replacement lot). Status `deferred`: the loss is added to the
    replacement's basis and comes back when it is sold; `permanent`: the replacement was bought
    in a tax-advantaged account, so the loss is gone (Rev. Rul. 2008-5); `info`: a crypto
    match, listed only (the rule does not cover digital assets unless taxlens.toml says
    [wash_sales] crypto = true). `broker_reported` is no for washes a broker's 1099-B
    cannot show: across accounts, across a symbol group, or into an IRA.
    """
    out, err = _console(), _console(stderr=True)
    # The terminal gets the columns that fit; CSV and JSON get all of them.
    columns = WASH_TABLE_COLUMNS if fmt == "table" else WASH_COLUMNS

    def shown(frame: pl.DataFrame) -> pl.DataFrame:
        return listing.money_columns(frame.select(columns), ["disallowed"])

    with _book(ctx) as book:  # open while rendering, as in `gains`
        streamed = book.in_batches("washes", year=year, account=account, symbol=symbol, method=method)
        if streamed is None:
            result = book.booked(method=method)
            _print_problems(result.problems + result.errors, err)
            washes = result.washes
            frame = select_gains(washes, year=year, account=account, symbol=symbol)
            listing.render(shown(frame), fmt, sys.stdout, out)
            disposals = select_gains(result.disposals, account=account, symbol=symbol)
            totals = wash_summary(select_gains(washes, account=account, symbol=symbol), disposals, year,
                                  select_gains(result.carried, account=account, symbol=symbol))
        else:
            # A book of millions of trades: read back from the database a batch at a time; the
            # totals from the few columns they need.
            problems, errors, read = streamed
            _print_problems(problems + errors, err)
            kept = []  # the table's per-account part needs its rows

            def keeping(batch: pl.DataFrame) -> pl.DataFrame:
                if fmt == "table":
                    kept.append(batch)
                return shown(batch)

            _render_batches(read, keeping, fmt, out)
            frame = pl.concat(kept) if kept else pl.DataFrame()
            disposals = book.store.booked_columns("disposals", WASH_SUMMARY_COLUMNS["disposals"], account=account, symbol=symbol)
            totals = wash_summary(
                book.store.booked_columns("washes", WASH_SUMMARY_COLUMNS["washes"], account=account, symbol=symbol),
                disposals, year,
                book.store.booked_columns("carried_out", WASH_SUMMARY_COLUMNS["carried_out"], account=account, symbol=symbol),
            )
    target = out if fmt == "table" else err
    target.print(listing.wash_summary_line(totals, year, disposals), markup=False)
    if frame.height and fmt == "table":
        per = (
            frame.filter(pl.col("status") != "info")
            .group_by("account")
            .agg(
                pl.len().alias("washes"),
                pl.col("disallowed").sum().alias("disallowed"),
                pl.col("disallowed").filter(pl.col("status") == "permanent").sum().alias("permanent"),
                pl.col("disallowed").filter(~pl.col("broker_reported")).sum().alias("not_on_1099"),
            )
            .sort("account")
        )
        if per.height:
            out.print(listing.table(listing.money_columns(per, ["disallowed", "permanent", "not_on_1099"]), "Per account"))


REPORT_FORMATS = ("terminal", "html", "8949", "txf", "json", "csv")
MANIFEST = ".taxlens-written"  # in each folder taxlens writes reports to: name -> sha256 of what it wrote
FORCE_OPTION = click.option("--force", is_flag=True, help="Overwrite files that taxlens did not write.")


def _write_outputs(files: Mapping[Path, str | Callable[[TextIO], None]], force: bool) -> None:
    """Write report files, refusing (unless ``force``) to replace one taxlens did not write or
    that was changed since: each folder keeps a manifest of what taxlens wrote there. A file is
    its text, or a function that writes it to a stream: called once every file may be written,
    one file after another (at 10M trades the Form 8949 CSV and the TXF are half a gigabyte of
    text each, never held whole). Each file is written whole or not at all, and the manifest
    lists those written even if a later one fails."""
    import hashlib
    import json

    def digest(path: Path) -> str:
        with path.open("rb") as f:  # in blocks: a report file can be half a gigabyte
            return hashlib.file_digest(f, "sha256").hexdigest()

    manifests: dict[Path, dict[str, str]] = {}
    blocked = []
    for path in files:
        folder = path.parent
        if folder not in manifests:
            try:
                manifests[folder] = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                manifests[folder] = {}
        if path.exists() and not force and manifests[folder].get(path.name) != digest(path):
            blocked.append(str(path))
    if blocked:
        raise click.ClickException(
            f"not overwriting {', '.join(blocked)}: taxlens did not write {'it' if len(blocked) == 1 else 'them'} "
            "(or it was changed since); pass --force, or choose another --out"
        )
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written beside it, then renamed over it: a file that fails half-way is never left.
            part = path.with_name(f".{path.name}.part")
            try:
                with part.open("w", encoding="utf-8", newline="") as out:  # newline="": "\n" as written, everywhere
                    if callable(text):
                        text(out)
                    else:
                        out.write(text)
                part.replace(path)
            finally:
                part.unlink(missing_ok=True)
            manifests[path.parent][path.name] = digest(path)
    finally:
        for folder, manifest in manifests.items():
            if folder.is_dir():
                (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _build(book: Book, year: int | None) -> tuple[Audit, Booked]:
    """The audit of ``year`` (default: the latest year with trades) over the stored book."""
    years = book.store.trade_years()
    if not years:
        raise click.ClickException("no trades in the database yet (run `taxlens ingest` or `taxlens audit FILES`)")
    chosen = year if year is not None else years[-1]
    if chosen not in years:
        raise click.ClickException(f"no trades in {chosen} (the data covers {', '.join(map(str, years))})")
    # Of the trades, only the year's rows and what the audit reads of them; of a long history's
    # booking, the year's disposals and the washes shown, and totals of the rest.
    trades = book.store.trade_columns(AUDIT_TRADE_COLUMNS, year=chosen)
    parts = book.audit_booking(chosen, AUDIT_BOOKING_TOTALS, render.HTML_ROWS)
    booked, year_disposals, year_washes = parts if parts is not None else (book.booked(), None, None)
    try:
        return build_audit(
            trades, booked, book.config, chosen, year_disposals=year_disposals, year_washes=year_washes,
            account_names=book.store.trade_accounts(), crypto=book.store.crypto_symbols(),
        ), booked
    except TaxlensError as exc:
        raise click.ClickException(str(exc)) from exc


#: The report formats made as one text (small at any size); the Form 8949 CSV and TXF stream.
WHOLE_TEXT: dict[str, Callable[[Audit], str]] = {"html": render.html, "json": render.to_json, "csv": render.to_csv}


def _render(a: Audit, fmt: str, out: TextIO, form_rows: Callable[[], pl.DataFrame] | None = None) -> None:
    """One report format (terminal excluded) written to ``out``; the Form 8949 CSV and the TXF
    a batch of rows at a time. ``form_rows`` gives the audit's Form 8949 rows when several
    formats share them (``_form_rows``); built here otherwise."""
    if fmt in WHOLE_TEXT:
        out.write(WHOLE_TEXT[fmt](a))
        return
    rows = form_rows() if form_rows is not None else forms.form8949(a.disposals, a.crypto)
    if fmt == "8949":
        listing.write_csv(rows, out)
        return
    skipped = forms.write_txf(rows, out, program=f"taxlens {__version__}", exported=a.through)
    if skipped:
        _console(stderr=True).print(
            f"{skipped} digital-asset rows (Form 8949 boxes G-L) left out of the TXF: v042 has no code for them; "
            "enter them from the Form 8949 CSV", markup=False)


def _form_rows(a: Audit) -> Callable[[], pl.DataFrame]:
    """The audit's Form 8949 rows, built on the first call only: the CSV and the TXF both
    start from them (4 s at 4M slices)."""
    return functools.cache(lambda: forms.form8949(a.disposals, a.crypto))


REPORT_FILES = {"html": "report-{y}.html", "8949": "form8949-{y}.csv", "txf": "taxlens-{y}.txf", "json": "audit-{y}.json", "csv": "metrics-{y}.csv"}


@cli.command()
@click.argument("exports", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--year", type=int, help="The tax year to audit [default: the latest year in the data].")
@click.option("--out", "out_dir", default="reports", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the report files.")
@click.option("--open", "open_report", is_flag=True, help="Open the HTML report in the browser when done.")
@FORCE_OPTION
@click.pass_context
def audit(ctx: click.Context, exports: tuple[str, ...], year: int | None, out_dir: str, open_report: bool, force: bool) -> None:
    """Ingest EXPORTS (if any), book lots and wash sales, and report what the year cost.

    Prints a one-screen summary and writes, to --out: the HTML report (report-YEAR.html, charts
    and tables, works offline), Form 8949 rows (form8949-YEAR.csv), a TXF file for tax software
    (taxlens-YEAR.txf), and every metric as JSON and CSV. The tax estimate uses [tax] in
    taxlens.toml (filing status, other income, state rate).
    """
    out, err = _console(), _console(stderr=True)
    failed = None
    with _book(ctx, create=bool(exports)) as book:  # without exports, a read: no empty database made
        if exports:
            with _progress(err, not err.is_terminal) as progress:
                report = book.ingest(exports, progress=progress)
            for result in report.files:
                _print_file_result(result, out, err, quiet=False)
            if not report.ok:
                failed = _failure_summary(report)
        a, booked = _build(book, year)
        _print_problems(booked.problems + booked.errors, err)
        render.terminal(a, out)
        folder = Path(out_dir)
        form_rows = _form_rows(a)
        files = {
            folder / pattern.format(y=a.year): functools.partial(_render, a, fmt, form_rows=form_rows)
            for fmt, pattern in REPORT_FILES.items()
        }
        _write_outputs(files, force)
    out.print("Wrote " + ", ".join(str(p) for p in files), markup=False)
    if open_report:
        import webbrowser

        webbrowser.open((folder / REPORT_FILES["html"].format(y=a.year)).resolve().as_uri())
    if failed:
        raise click.ClickException(failed)


@cli.command()
@click.option("--year", type=int, help="The tax year [default: the latest year in the data].")
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="terminal", show_default=True,
              help="terminal summary, HTML report, Form 8949 CSV, TXF, or every metric as JSON or CSV.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of standard output.")
@FORCE_OPTION
@click.pass_context
def report(ctx: click.Context, year: int | None, fmt: str, output: str | None, force: bool) -> None:
    """The audit of one year over the database, in one format (see `taxlens audit`)."""
    with _book(ctx) as book:
        a, booked = _build(book, year)
        _print_problems(booked.problems + booked.errors, _console(stderr=True))
        if fmt == "terminal":
            render.terminal(a, _console())
        elif output:
            _write_outputs({Path(output): functools.partial(_render, a, fmt)}, force)
        else:
            _render(a, fmt, sys.stdout)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--account", "accounts", multiple=True, help="Compare only this account's sales (repeat for more).")
@FORMAT_OPTION
@click.pass_context
def reconcile(ctx: click.Context, file: str, accounts: tuple[str, ...], fmt: str) -> None:
    """Compare taxlens' sales with a broker's realized gain/loss or Form 8949 export.

    Reads IBKR's "Worksheet for Form 8949" CSV, or any CSV with symbol (or description),
    date_sold, proceeds and cost_basis columns (quantity, date_acquired, adjustment and term
    optional; taxlens' own form8949 CSV is one). Compares the sales of taxable accounts (or
    --account). Lists every difference in proceeds, basis or wash-sale adjustment, and every
    sale only one side has, with its likely cause. Exits 0
    either way: differences are information, often taxlens being right where the broker can't be.
    """
    err = _console(stderr=True)
    try:
        broker = read_broker(file)
    except RowErrors as exc:
        for e in exc.errors:
            err.print(str(e), markup=False)
        raise click.ClickException(str(exc)) from exc
    except TaxlensError as exc:
        raise click.ClickException(str(exc)) from exc
    with _book(ctx) as book:
        booked = book.booked()
        taxable = [a for a in book.accounts().get_column("account").to_list() if book.config.account(a).type.value == "taxable"]
    frame = reconcile_frames(broker, booked.disposals, booked.washes, accounts=list(accounts) or taxable)
    shown = listing.money_columns(frame, ["broker", "taxlens"])
    listing.render(shown, fmt, sys.stdout, _console())
    n = frame.height
    (_console() if fmt == "table" else err).print(
        f"{broker.height} broker rows; {n} difference{'s' if n != 1 else ''}" if n else f"{broker.height} broker rows; no differences",
        markup=False)


def _floats(text: str | None, scale: float = 1.0) -> list[float]:
    return [float(x) * scale for x in text.split(",") if x.strip()] if text else []


def _words(text: str | None) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()] if text else []


SIM_TABLE_COLUMNS = ["policy", "events", "trades", "turnover", "fees", "short", "long", "tax", "tax_and_fees",
                     "tracking_error", "drift_max", "dominated"]
SIM_COLUMNS = ["policy", "events", "trades", "turnover", "fees", "taxable_events", "short", "long", "washed", "tax",
               "tax_and_fees", "after_tax", "tracking_error", "drift_mean", "drift_max", "dominated"]


@cli.command()
@click.option("--year", type=int, help="Simulate this tax year [default: the latest year in the data].")
@click.option("--prices", "prices_file", type=click.Path(dir_okay=False, exists=True),
              help="Daily closes: date,symbol,close[,dividend,split] [default: [simulate] prices, else the stored trades' prices].")
@click.option("--target", "target_opts", multiple=True, metavar="SYMBOL=WEIGHT", help="Target weight (repeat) [default: [simulate] targets].")
@click.option("--cash", type=float, help="Start from this much cash [default: the real open lots on the start date].")
@click.option("--band", help="Absolute bands in percentage points, e.g. 1,2,5,10.")
@click.option("--relative", help="Relative bands in percent of the target, e.g. 20,25.")
@click.option("--hybrid", is_flag=True, help="Add the 5/25 band (5 points or 25%% of the target, whichever is smaller).")
@click.option("--calendar", help="Calendars: D (every date), W, M, Q, S, A. With bands: check them only on these dates.")
@click.option("--lots", "lot_rules", default="fifo", show_default=True, help="Lot rules: fifo, lifo, hifo, taxmin.")
@click.option("--to", "destinations", default="target", show_default=True, help="Trade back to: target, edge.")
@click.option("--defer", help="Defer sales of short-term gains turning long-term within N days, e.g. 0,30.")
@click.option("--cooldown", type=int, default=0, help="At least this many days between rebalances.")
@click.option("--wash-aware", is_flag=True, help="Skip buys that would wash a loss sale of the last 30 days.")
@click.option("--placement", default="taxable", show_default=True,
              help="taxable, ira (the same trades in a tax-deferred account), location (the least tax-efficient holdings in one).")
@click.option("--ira-share", type=float, default=0.3, show_default=True,
              help="location: the tax-deferred account's share of the portfolio.")
@click.option("--flows", type=click.Choice(["none", "actual"]), default="none", show_default=True,
              help="Cash flows: none, or the real deposits and withdrawals.")
@click.option("--commission", type=float, help="Per trade [default: [simulate] commission].")
@click.option("--spread-bps", type=float, help="Bid-ask spread in basis points [default: [simulate] spread_bps].")
@click.option("--whole-shares", is_flag=True, help="Trade whole shares only.")
@click.option("--actual/--no-actual", default=True, show_default=True, help="Replay the real trades as the policy `actual`.")
@click.option("--log", "log_file", type=click.Path(dir_okay=False), help="Write every simulated trade, with its reason, to this CSV.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), help="The comparison with its frontier chart [default: reports/simulate-YEAR.html].")
@FORCE_OPTION
@FORMAT_OPTION
@click.pass_context
def simulate(ctx: click.Context, year: int | None, prices_file: str | None, target_opts: tuple[str, ...], cash: float | None,
             band: str | None, relative: str | None, hybrid: bool, calendar: str | None, lot_rules: str, destinations: str,
             defer: str | None, cooldown: int, wash_aware: bool, placement: str, ira_share: float, flows: str, commission: float | None,
             spread_bps: float | None, whole_shares: bool, actual: bool, log_file: str | None, html_file: str | None, force: bool,
             fmt: str) -> None:
    """Compare rebalancing policies on the same prices, taxed exactly like the audit.

    Runs every combination of the options given (e.g. --band 1,2,5,10 --calendar M,Q,A
    --lots fifo,taxmin), plus `never`, and the year's real trades replayed as `actual`. With
    no --band, --relative, --hybrid or --calendar: monthly, quarterly and annual calendars, a
    5-point band and the 5/25 band. Prints one row per policy (events, trades, turnover, fees,
    realized gains, wash sales, tax, tracking error, drift) and writes an HTML page with the
    frontier of tax plus fees against tracking error.
    """
    import datetime as dt
    from decimal import Decimal

    from taxlens.report.audit import tax_profile
    from taxlens.simulate.engine import Frictions
    from taxlens.simulate.prices import load_prices, prices_from_trades
    from taxlens.simulate.sweep import compare, grid

    err = _console(stderr=True)
    with _book(ctx) as book:
        config = book.config
        trades = book.trades()
        if trades.height == 0:
            raise click.ClickException("no trades in the database yet (run `taxlens ingest`)")
        years = audit_years(trades)
        chosen = year if year is not None else years[-1]
        targets = {s: float(w) for s, w in config.simulate.targets.items()}
        for opt in target_opts:
            symbol, _, weight = opt.partition("=")
            try:
                targets[symbol.strip()] = float(weight)
            except ValueError as exc:
                raise click.ClickException(f"--target {opt!r}: expected SYMBOL=WEIGHT") from exc
        if not targets:
            raise click.ClickException("no targets: pass --target SYMBOL=WEIGHT (repeat) or set [simulate] targets in taxlens.toml")
        if abs(sum(targets.values()) - 1) > 1e-9:
            raise click.ClickException(f"target weights add up to {sum(targets.values()):g}, not 1")
        try:
            source = prices_file or config.simulate.prices
            panel = load_prices(source) if source else prices_from_trades(trades)
            panel = panel.window(dt.date(chosen, 1, 1), dt.date(chosen, 12, 31))
        except RowErrors as exc:
            raise _bad_prices(exc) from exc
        except TaxlensError as exc:
            raise click.ClickException(str(exc)) from exc
        missing = [s for s in targets if s not in panel.symbols]
        if missing:
            raise click.ClickException(f"no prices for {', '.join(missing)} in {panel.source}")
        start = panel.dates[0]
        lots: list[tuple[dt.date, str, Decimal, Decimal]] = []
        start_cash = cash if cash is not None else (float(config.simulate.cash) if config.simulate.cash is not None else None)
        if start_cash is None:
            open_lots = book.lots(open_only=True, as_of=start - dt.timedelta(days=1))
            open_lots = open_lots.filter(pl.col("cost_basis").is_not_null() & pl.col("symbol").is_in(list(targets)))
            lots = [(a, s, q, b) for a, s, q, b in open_lots.select("acquired", "symbol", "quantity", "cost_basis").iter_rows()]
            if not lots:
                start_cash = 100_000.0
        cash_flows: dict[dt.date, float] | None = None
        if flows == "actual":
            moves = trades.filter(pl.col("action").is_in(["deposit", "withdrawal"]) & pl.col("trade_date").is_between(start, panel.dates[-1]))
            cash_flows = {}
            for day, amount in moves.select("trade_date", "amount").iter_rows():
                if amount is not None:
                    key = next((d for d in panel.dates if d >= day), None)
                    if key is not None:
                        cash_flows[key] = cash_flows.get(key, 0.0) + float(amount)
        frictions = Frictions(
            commission=Decimal(str(commission)) if commission is not None else config.simulate.commission,
            spread_bps=Decimal(str(spread_bps)) if spread_bps is not None else config.simulate.spread_bps,
            fractional=not whole_shares and config.simulate.fractional,
        )
        bad = [c for c in _words(calendar) if c not in ("D", "W", "M", "Q", "S", "A")]
        bad += [m for m in _words(lot_rules) if m not in ("fifo", "lifo", "hifo", "taxmin")]
        bad += [t for t in _words(destinations) if t not in ("target", "edge")]
        bad += [p for p in _words(placement) if p not in ("taxable", "ira", "location")]
        if bad:
            raise click.ClickException(f"unknown value(s): {', '.join(bad)} (see `taxlens simulate --help`)")
        policies = grid(
            bands=_floats(band, 0.01), relatives=_floats(relative, 0.01), hybrid=hybrid, calendars=_words(calendar),
            lots=_words(lot_rules), to=_words(destinations), defer=[int(x) for x in _floats(defer)], cooldown=cooldown,
            wash_aware=wash_aware, placements=_words(placement),
        )
        profile = tax_profile(config, chosen)
        replayed = trades if actual else None
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task("simulate", total=len(policies))

            def step(k: int, total: int, name: str) -> None:
                bar.update(task, completed=k, description=f"simulate {name}")

            metrics, runs = compare(policies, panel, targets, profile, cash=start_cash or 0.0, lots=lots, flows=cash_flows,
                                    frictions=frictions, actual=replayed, progress=step, ira_share=ira_share)
    columns = SIM_TABLE_COLUMNS if fmt == "table" else SIM_COLUMNS
    shown = metrics.select(columns).with_columns(
        pl.col("turnover").round(3), pl.col("tracking_error").round(5), pl.col("drift_max").round(5),
        *([pl.col("drift_mean").round(5)] if "drift_mean" in columns else []),
    )
    money_cols: list[str] = [c for c in ("fees", "short", "long", "washed", "tax", "tax_and_fees", "after_tax") if c in columns]
    listing.render(listing.money_columns(shown, money_cols), fmt, sys.stdout, _console())
    if log_file:
        rows = [
            {"policy": name, "date": d, "symbol": s, "side": side, "quantity": Decimal(m) / 1_000_000,
             "price": Decimal(f"{p:.6f}"), "fee": Decimal(f"{f:.2f}"), "reason": why}
            for name, run in runs.items() for d, s, side, m, p, f, why in run.trades
        ] + [
            {"policy": name, "date": d, "symbol": s, "side": "none", "quantity": None, "price": None, "fee": None, "reason": why}
            for name, run in runs.items() for d, s, why in run.skipped
        ]
        log = pl.DataFrame(rows, schema={"policy": pl.String, "date": pl.Date, "symbol": pl.String, "side": pl.String,
                                         "quantity": pl.Decimal(38, 18), "price": pl.Decimal(38, 18), "fee": pl.Decimal(38, 18),
                                         "reason": pl.String})
        buf = io.StringIO()
        listing.write_csv(log, buf)
        _write_outputs({Path(log_file): buf.getvalue()}, force)
    page = Path(html_file) if html_file else Path("reports") / f"simulate-{chosen}.html"
    start_state = f"{start_cash:,.2f} in cash" if start_cash else f"the {len(lots)} real lots open on {start}"
    _write_outputs({page: render.simulate_html(metrics, SIM_COLUMNS, targets=targets, source=panel.source, start=start,
                                               end=panel.dates[-1], start_state=start_state, frictions=frictions,
                                               profile=render.describe_profile(profile))}, force)
    err.print(f"{len(policies)} {'policy' if len(policies) == 1 else 'policies'} simulated; wrote {page}", markup=False)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="taxlens")


if __name__ == "__main__":  # pragma: no cover
    main()
