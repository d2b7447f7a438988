"""The library API the CLI is a thin layer over: open a book, ingest exports, query trades.

>>> import taxlens
>>> with taxlens.open_book("taxlens.duckdb") as book:          # doctest: +SKIP
...     report = book.ingest(["sample_exports/alpaca/activities_2025.json"])
...     trades = book.trades(year=2025)                          # a polars DataFrame
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import os
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from taxlens.config import Config, load_config
from taxlens.errors import RowError, StoreError, TaxlensError
from taxlens.ingest import Adapter, Context, GenericCsv, Source, adapter_named, identify, load_mapping
from taxlens.ingest.frame import DECIMAL
from taxlens.lots.book import (
    BOOK_REVISION,
    TRADE_COLUMNS,
    book,
    in_file_order,
    load_selections,
    settings_from_config,
    wash_settings,
    with_renames,
)
from taxlens.lots.chunks import CHUNK_TRADES, CHUNK_TRADES_WITHOUT_WASH
from taxlens.lots.chunks import plan as chunks_plan
from taxlens.lots.engine import Booked, Selections
from taxlens.lots.events import Settings, event_ranks, events_from_trades
from taxlens.lots.wash import WASHED_DISPOSAL_SCHEMA, WASHED_LOT_SCHEMA, bought_before
from taxlens.money import PRECISION
from taxlens.store import FileRecord, Store, default_db_path

#: DuckDB's memory limits while a book is booked and listed in chunks (its default is 80% of
#: RAM): enough to sort every trade's keys, or a listing, mostly in memory; and while each
#: chunk is booked, little, so that its cache gives the booking room (at 10M trades with wash
#: sales, 0.8 GB less at the peak, in the same time).
DUCKDB_SORTING, DUCKDB_BOOKING = "1GB", "256MB"

#: Called as progress(file_index, file_count, path, stage) while ingesting.
Progress = Callable[[int, int, str, str], None]


@dataclass
class FileResult:
    """What happened to one file given to ``ingest``."""

    path: str
    adapter: str | None = None
    status: str = "failed"  # imported | already imported | failed
    rows_read: int = 0
    trades: int = 0
    inserted: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    errors: list[RowError] = field(default_factory=list)
    problem: TaxlensError | None = None  # why the whole file failed
    warnings: list[str] = field(default_factory=list)
    sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass
class IngestReport:
    """The result of one ``ingest`` call: a FileResult per file, in the order given."""

    files: list[FileResult]

    @property
    def ok(self) -> bool:
        """True when every file was read without errors (skipped bad rows count as errors)."""
        return all(f.ok and not f.errors for f in self.files)

    @property
    def inserted(self) -> int:
        return sum(f.inserted for f in self.files)


class Book:
    """An open taxlens database with its settings. Use as a context manager.

    ``db`` defaults to $TAXLENS_DB or ./taxlens.duckdb; ``config`` is a Config, a path to a
    taxlens.toml, or None for ./taxlens.toml when present.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] | None = None,
        config: Config | str | os.PathLike[str] | None = None,
        *,
        read_only: bool = False,
        chunk_trades: int | None = None,
    ) -> None:
        self.config = config if isinstance(config, Config) else load_config(config)
        #: A book of more trades than this is booked a chunk of symbols at a time (lots.chunks),
        #: each chunk stored as it is done, so memory follows the chunk, not the history.
        #: None: lots.chunks' size for the wash-sale setting.
        env = os.environ.get("TAXLENS_CHUNK_TRADES")
        self.chunk_trades = chunk_trades if chunk_trades is not None else int(env) if env else None
        self.store = Store(db if db is not None else default_db_path(), read_only=read_only)
        self._saving: _Saving | None = None
        self._reading: weakref.WeakSet[Generator[pl.DataFrame]] = weakref.WeakSet()  # in_batches' readers
        #: Told what long work is under way ("booking 1,000,000 trades"), and None when it is
        #: over: the CLI shows it as a status line. The library itself never prints.
        self.on_stage: Callable[[str | None], None] | None = None

    def __enter__(self) -> Book:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait for a booking still being stored (raising its error, if any), close the
        readers ``in_batches`` handed out, then the database."""
        try:
            self._saved()
        finally:
            for reader in list(self._reading):
                reader.close()
            self.store.close()

    def _saved(self) -> None:
        """Wait for the booking being stored in the background, if any; raise its error."""
        saving, self._saving = self._saving, None
        if saving is not None:
            if saving.thread.is_alive():
                self._stage("storing the booking")
            try:
                saving.wait()
            finally:
                self._stage(None)

    def _stage(self, what: str | None) -> None:
        if self.on_stage is not None:
            self.on_stage(what)

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.config.timezone)

    def ingest(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        format: str | None = None,
        mapping: str | os.PathLike[str] | None = None,
        account: str | None = None,
        skip_bad_rows: bool = False,
        encoding: str | None = None,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Import export files, each in its own transaction.

        A file with unreadable rows imports nothing unless ``skip_bad_rows``; either way its
        errors are in the report. A file already imported (same bytes) adds nothing. Problems
        with one file never stop the others.
        """
        forced: Adapter | None = None
        if mapping is not None:
            forced = GenericCsv(load_mapping(mapping))
        elif format is not None:
            forced = adapter_named(format)
        context = Context(timezone=self.timezone, account=account)
        names = [str(p) for p in paths]
        results = []
        for i, path in enumerate(names):
            result = FileResult(path=path)
            results.append(result)
            try:
                if progress:
                    progress(i, len(names), path, "reading")
                source = Source.read(path, encoding=encoding)
                result.sha256 = source.sha256
                adapter = forced or identify(source)
                result.adapter = adapter.NAME if not isinstance(adapter, GenericCsv) else adapter.layout.name
                if (first := self.store.imported_file(source.sha256)) is not None:
                    result.status = "already imported"
                    if first != path:
                        result.warnings.append(f"same contents as {first}, imported before")
                    continue
                if progress:
                    progress(i, len(names), path, "parsing")
                # Row adapters do Decimal arithmetic (abs, sums) on values of up to 38 digits;
                # Python's default context keeps 28.
                with decimal.localcontext(decimal.Context(prec=2 * PRECISION)):
                    extracted = adapter.extract(source, context)
                del source  # a large file's bytes are not needed once extracted
                result.rows_read = extracted.rows_read
                result.trades = extracted.trades.height
                result.ignored = extracted.ignored
                result.errors = extracted.errors
                result.warnings.extend(extracted.warnings)
                if extracted.errors and not skip_bad_rows:
                    continue
                if progress:
                    progress(i, len(names), path, "storing")
                record = FileRecord(
                    sha256=result.sha256, path=path, adapter=result.adapter,
                    rows_read=extracted.rows_read, trades=extracted.trades.height,
                    ignored=sum(extracted.ignored.values()), bad_rows=len(extracted.errors),
                )
                imported = self.store.import_trades(record, extracted.trades, self.config)
                result.inserted = imported.inserted
                if imported.elsewhere:
                    n = imported.elsewhere
                    result.warnings.append(
                        f"{result.path}:{imported.elsewhere_line}: {n} row{'s' if n != 1 else ''} (this one first) "
                        f"{'carry broker trade ids' if n != 1 else 'carries a broker trade id'} that another file already "
                        "brought into the same account: each trade is kept once, as first imported"
                    )
                result.status = "imported"
            except TaxlensError as exc:
                result.problem = exc
        if progress:
            progress(len(names), len(names), "", "done")
        return IngestReport(results)

    def trades(
        self, *, account: str | None = None, symbol: str | None = None, year: int | None = None,
        columns: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """Stored trades, oldest first (see the ``trade_list`` view for the columns); only
        ``columns`` of them when given."""
        return self.store.trades(account=account, symbol=symbol, year=year, columns=columns)

    def accounts(self) -> pl.DataFrame:
        """Accounts in the data or in taxlens.toml, with type, owner and trade counts."""
        return self.store.accounts(self.config)

    def files(self) -> pl.DataFrame:
        """The import log."""
        return self.store.files()

    # -- booking ------------------------------------------------------------------------------

    def booked(self, *, method: str | None = None, selections: str | os.PathLike[str] | None = None) -> Booked:
        """Lots, disposals and problems for the stored trades under the configured methods
        (``method`` overrides every sale's). Reuses the stored booking when neither the imported
        files nor the settings changed since; otherwise books again and stores the result
        (unless the book is read-only)."""
        self._saved()
        key, settings, chosen = self._key(method, selections)
        try:
            return self._book(key, settings, chosen)
        finally:
            self._stage(None)

    def _key(self, method: str | None, selections: str | os.PathLike[str] | None) -> tuple[str, Settings, Selections | None]:
        """The booking's settings, and the key its stored form is kept under: it changes when
        the imported files, the settings or taxlens' booking rules change."""
        settings, chosen = self._settings(method, selections)
        fingerprint = json.dumps(
            [BOOK_REVISION, self.store.files_fingerprint(), repr(settings), sorted((chosen or {}).items(), key=str), self.config.timezone],
            default=str,
        )
        return hashlib.sha256(fingerprint.encode()).hexdigest(), settings, chosen

    def _large(self, through: dt.date | None = None) -> bool:
        """Whether the book (its trades up to ``through``, when given) has more trades than a
        chunk: a booking then goes a chunk at a time where it can be stored (a read-only book
        is booked whole, in memory)."""
        return self.store.trade_count(through) > self._chunk_target()

    def _chunk_target(self) -> int:
        if self.chunk_trades is not None:
            return self.chunk_trades
        return CHUNK_TRADES if self.config.wash_sales.apply else CHUNK_TRADES_WITHOUT_WASH

    def in_batches(
        self, table: str, *, method: str | None = None, **filters: object,
    ) -> tuple[list[RowError], list[RowError], Generator[pl.DataFrame]] | None:
        """For a book booked in chunks (see ``chunk_trades``): its problems, its errors, and a
        booking table (lots, disposals, washes) read back from the database in batches
        (``Store.booked_batches``, which takes the ``filters``), so that millions of rows are
        never all in memory (a reader left open is closed with the book). Books and stores it
        first unless the stored booking is current. None for a smaller book (``gains``,
        ``lots`` and ``washes`` are then quicker), and for a read-only one not booked yet."""
        flagged = self._stored_in_chunks(method)
        if flagged is None:
            return None
        problems, errors = flagged

        def batches() -> Generator[pl.DataFrame]:
            with self.store.memory_limit(DUCKDB_SORTING):
                yield from self.store.booked_batches(table, **filters)  # type: ignore[arg-type]

        reader = batches()
        self._reading.add(reader)
        return problems, errors, reader

    def _stored_in_chunks(self, method: str | None) -> tuple[list[RowError], list[RowError]] | None:
        """For a book larger than a chunk: its stored booking made current (booked and stored
        a chunk at a time first, if need be), and that booking's problems and errors. None
        for a smaller book, and for a read-only one not booked yet (nowhere to store it)."""
        self._saved()
        if not self._large():
            return None
        key, settings, chosen = self._key(method, None)
        if self.store.book_key() != key:
            if self.store.read_only:
                return None
            self._book_in_chunks(key, settings, chosen)
        return self.store.load_book_problems()

    def _book_in_chunks(self, key: str, settings: Settings, chosen: Selections | None) -> None:
        """Book the stored trades a chunk of symbols at a time (``lots.chunks``) and store the
        booking under ``key``: all of it or, on an error, none. Each chunk is stored on a
        thread while the next is booked."""
        problems: list[RowError] = []
        errors: list[RowError] = []
        cursor = self.store.con.cursor()
        try:
            with ExitStack() as stack:
                writer = stack.enter_context(self.store.book_writer(key, con=cursor, parts=True))
                pool = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="taxlens-save-chunk"))
                stored: Future[None] | None = None
                results = stack.enter_context(closing(self._chunks_booked(settings, chosen)))
                for result in results:
                    problems += result.problems
                    errors += result.errors
                    if stored is not None:
                        stored.result()
                    stored = pool.submit(writer.add, result.lots, result.disposals, result.washes, result.carried)
                    del result
                if stored is not None:
                    stored.result()
                writer.problems, writer.errors = in_file_order(problems), in_file_order(errors)
        finally:
            cursor.close()

    def audit_booking(
        self, year: int, totals: dict[str, tuple[tuple[str, ...], tuple[str, ...]]], wash_rows: int,
    ) -> tuple[Booked, pl.DataFrame, pl.DataFrame] | None:
        """For a book booked in chunks (see ``in_batches``): the stored booking as ``totals``
        (per table, ``lots``, ``disposals`` and ``washes``: the columns to group by and those to
        add up, ``Store.booked_totals``) with its problems and deferred losses carried out of
        sight, ``year``'s disposals whole and its first ``wash_rows`` washes, in the booking's
        order: what an audit of a long history needs (it shows that many washes), without every
        row of every year in memory. Books and stores it first unless the stored booking is
        current. None for a smaller book, and for a read-only one not booked yet."""
        flagged = self._stored_in_chunks(None)
        if flagged is None:
            return None
        problems, errors = flagged
        with self.store.memory_limit(DUCKDB_SORTING):
            year_disposals = pl.concat(list(self.store.booked_batches("disposals", year=year)))
            # The first window of seq values holds at least wash_rows rows (or all the year's).
            with closing(self.store.booked_batches("washes", year=year, rows=max(wash_rows, 1))) as batches:
                year_washes = next(batches).head(wash_rows)
        narrow = {table: self.store.booked_totals(table, keys, sums) for table, (keys, sums) in totals.items()}
        booked = Booked(narrow["lots"], narrow["disposals"], problems, errors, narrow["washes"],
                        carried=self.store.load_carried())
        return booked, year_disposals, year_washes

    def _chunks_booked(self, settings: Settings, chosen: Selections | None, through: dt.date | None = None) -> Generator[Booked]:
        """The booking of the stored trades (those with a tax date up to ``through``, when
        given), a chunk of symbols at a time: each chunk's lots, disposals and washes as the
        whole book would have them, its seq included."""
        self._stage("ordering the trades")
        with self.store.memory_limit(DUCKDB_SORTING):
            keys = self.store.booking_keys(through)
            ranks = event_ranks(keys, source=lambda: self.store.booking_sources(through))
        chunks, chunk_of = chunks_plan(keys, settings, self.store.crypto_symbols(), self._chunk_target())
        del keys
        with self.store.memory_limit(DUCKDB_BOOKING):
            for number, chunk in enumerate(chunks, 1):
                self._stage(_booking(chunk.trades, settings, f" (part {number} of {len(chunks)})"))
                trades = self.store.trades_of(chunk.symbols, chunk.fee_ids, TRADE_COLUMNS, through)
                own = ranks.filter(chunk_of == number - 1)
                if own.len() != trades.height:  # the plan and the query disagree: a bug
                    raise StoreError(f"booking part {number}: {trades.height} trades read, {own.len()} planned")
                loaded = [trades.with_columns(own)]
                del trades
                yield book(loaded.pop(), settings, chosen)  # its only reference, as in _book

    def _book(self, key: str, settings: Settings, chosen: Selections | None) -> Booked:
        """booked()'s work: the stored booking under ``key``, or a new one (stored meanwhile)."""
        if self.store.book_key() != key and not self.store.read_only and self._large():
            self._book_in_chunks(key, settings, chosen)
        if self.store.book_key() == key:
            self._stage("reading the stored booking")
            lots, disposals, washes, problems, errors = self.store.load_book()
            return Booked(
                lots.select(list(WASHED_LOT_SCHEMA)), disposals.select(list(WASHED_DISPOSAL_SCHEMA)),
                problems, errors, washes, carried=self.store.load_carried(),
            )
        self._stage("reading trades")
        loaded = [self.store.trades_of(None, None, TRADE_COLUMNS)]
        self._stage(_booking(loaded[0].height, settings))
        result = book(loaded.pop(), settings, chosen)  # its only reference: book frees the trades early
        if not self.store.read_only:
            # Stored while the caller renders the result (DuckDB writes without the GIL): at a
            # million trades the write takes as long as the CSV. close() waits for it.
            self._saving = _Saving(self.store, key, result)
        return result

    def _settings(self, method: str | None, selections: str | os.PathLike[str] | None = None) -> tuple[Settings, Selections | None]:
        settings = settings_from_config(self.config, method)
        selection_file = selections if selections is not None else self.config.lots.selections
        return settings, load_selections(selection_file) if selection_file else None

    def gains(
        self, *, year: int | None = None, account: str | None = None, symbol: str | None = None,
        method: str | None = None,
    ) -> pl.DataFrame:
        """Disposals (one row per lot slice sold), filtered by year disposed, account, symbol."""
        return select_gains(self.booked(method=method).disposals, year=year, account=account, symbol=symbol)

    def bought_before(self, lots: pl.DataFrame) -> pl.Series:
        """For each of ``lots`` (``account``, ``symbol``, ``lot_id``, ``price_date``): the shares
        bought in the 30 days up to ``price_date`` that would make a loss sale of it then a wash
        sale (``lots.wash.bought_before``, under taxlens.toml's [wash_sales])."""
        dates = lots.get_column("price_date").drop_nulls()
        if dates.is_empty():
            return pl.Series("bought_last_30_days", [None] * lots.height, dtype=DECIMAL)
        first, last = dates.min(), dates.max()
        assert isinstance(first, dt.date) and isinstance(last, dt.date)
        purchases = self.store.purchases(first - dt.timedelta(days=30), last)
        # A renamed holding's two tickers are one security (book.with_renames): the renames are
        # in the transfers alone, paired as booking pairs them.
        transfers = self.store.trades_of(None, None, TRADE_COLUMNS, actions=("transfer_in", "transfer_out"))
        events, _ = events_from_trades(transfers, settings_from_config(self.config, None))
        wash = with_renames(wash_settings(self.config), events)
        return bought_before(lots, purchases, wash, self.store.crypto_symbols())

    def washes(
        self, *, year: int | None = None, account: str | None = None, symbol: str | None = None,
        method: str | None = None,
    ) -> pl.DataFrame:
        """Wash-sale matches (``lots.frames.WASH_SCHEMA``): one row per loss slice and replacement,
        filtered by the year of the loss sale, and by the loss sale's account and symbol."""
        return select_gains(self.booked(method=method).washes, year=year, account=account, symbol=symbol)

    def lots(
        self, *, open_only: bool = False, as_of: dt.date | None = None, account: str | None = None,
        symbol: str | None = None, method: str | None = None,
    ) -> pl.DataFrame:
        """Lots; with ``as_of``, the book replayed to the end of that date; with ``open_only``,
        only lots with shares left (quantity and basis then mean what remains)."""
        def kept(frame: pl.DataFrame) -> pl.DataFrame:
            frame = _filter(frame, account=account, symbol=symbol)
            return frame.filter(pl.col("open_quantity") > 0) if open_only else frame

        if as_of is None:
            frame = kept(self.booked(method=method).lots)
        else:
            settings, chosen = self._settings(method)
            if self._large(as_of):
                # Replayed a chunk of symbols at a time, as a large book is booked, keeping only
                # the lots asked for: the whole replay would need the memory of the whole book.
                parts = []
                try:
                    with closing(self._chunks_booked(settings, chosen, as_of)) as results:
                        for result in results:
                            parts.append(kept(result.lots))
                            del result  # before the next chunk is read: one chunk in memory at a time
                finally:
                    self._stage(None)
                frame = pl.concat(parts).sort("seq", maintain_order=True)  # as the stored booking reads back
            else:
                frame = kept(book(self.store.trades_of(None, None, TRADE_COLUMNS, as_of), settings, chosen).lots)
        return open_part(frame) if open_only else frame

    def summary(self, report: IngestReport) -> pl.DataFrame:
        """Trades added by ``report``'s files, per account and symbol."""
        shas = [f.sha256 for f in report.files if f.status == "imported" and f.sha256]
        return self.store.summary(shas)


class _Saving:
    """A booking being stored by ``Store.save_book`` on a thread of its own, through a cursor
    of the book's connection (its own transaction: all of the booking lands, or none)."""

    def __init__(self, store: Store, key: str, result: Booked) -> None:
        self.error: BaseException | None = None
        cursor = store.con.cursor()

        def run() -> None:
            try:
                store.save_book(key, result.lots, result.disposals, result.washes, result.problems, result.errors, con=cursor,
                                carried=result.carried)
            except BaseException as exc:  # handed to the caller by wait()
                self.error = exc
            finally:
                cursor.close()

        self.thread = threading.Thread(target=run, name="taxlens-save-book")
        self.thread.start()

    def wait(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


def _booking(trades: int, settings: Settings, part: str = "") -> str:
    """The stage line while booking: "booking 1,000,000 trades (part 2 of 9) and applying …"."""
    return f"booking {trades:,} trades{part}" + (" and applying the wash-sale rule" if settings.wash.apply else "")


def open_part(lots: pl.DataFrame) -> pl.DataFrame:
    """Open ``lots`` with quantity and basis meaning what remains open."""
    return lots.with_columns(
        pl.col("open_quantity").alias("quantity"), pl.col("open_basis").alias("cost_basis"),
        pl.col("open_adjusted_basis").alias("adjusted_basis"),
    )


def select_gains(disposals: pl.DataFrame, *, year: int | None = None, account: str | None = None, symbol: str | None = None) -> pl.DataFrame:
    """The disposals of one tax year (by date disposed), account and symbol."""
    if year is not None:
        disposals = disposals.filter(pl.col("disposed").dt.year() == year)
    return _filter(disposals, account=account, symbol=symbol)


def _filter(frame: pl.DataFrame, *, account: str | None, symbol: str | None) -> pl.DataFrame:
    if account is not None:
        frame = frame.filter(pl.col("account") == account)
    if symbol is not None:
        frame = frame.filter(pl.col("symbol") == symbol)
    return frame


def open_book(
    db: str | os.PathLike[str] | None = None,
    config: Config | str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    chunk_trades: int | None = None,
) -> Book:
    """Open (creating and migrating if needed) a taxlens database. See ``Book``."""
    return Book(db, config, read_only=read_only, chunk_trades=chunk_trades)


def ingest(paths: Iterable[str | Path], db: str | None = None, **options: object) -> IngestReport:
    """One-shot: open the book, ingest ``paths`` (options as ``Book.ingest``), close."""
    with open_book(db) as book:
        return book.ingest(paths, **options)  # type: ignore[arg-type]
