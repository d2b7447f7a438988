"""The DuckDB store: the only module that opens the database file.

Schema and migrations live in ``taxlens/migrations/NNNN_name.sql`` and are applied in order on
open, each recorded in ``_taxlens_migrations``. One transaction per imported file: a crash or a
kill mid-import leaves the database as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import re
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import duckdb
import polars as pl

from taxlens.config import Config
from taxlens.errors import RowError, StoreError
from taxlens.ingest.frame import IDENTITY_SQL, SCHEMA, decimal_text, identity_columns

DEFAULT_DB = "taxlens.duckdb"
ENV_DB = "TAXLENS_DB"

_MIGRATION = re.compile(r"^(\d{4})_(\w+)\.sql$")

_DECIMALS = ("quantity", "price", "fee", "amount")  # their decimal_text goes into the identity
_STAGE_ROWS = 1_000_000  # rows hashed and staged at a time by import_trades
#: DuckDB's memory while it stages and inserts a file's rows. The normalised frame of a large
#: file is already in memory beside it; DuckDB spills its sort and hash state to disk past this
#: limit, so a 10M-row file ingests in under 4 GB in all.
IMPORT_MEMORY = os.environ.get("TAXLENS_IMPORT_MEMORY", "256MB")
#: A row ``k`` whose broker trade id is not stored from another file in its account. A broker's
#: id names one trade whatever the export: Kraken's trades.csv and ledgers.csv both hold each
#: trade (different rounding, so different content hashes), and a re-download may correct a
#: price. The trade is kept once, as first imported.
_NOT_ELSEWHERE = """(k.broker_trade_id IS NULL OR NOT EXISTS (
    SELECT 1 FROM trades t WHERE t.account = k.account AND t.broker_trade_id = k.broker_trade_id
    AND t.file_sha256 <> $sha))"""

TRADE_COLUMNS = (
    "trade_id, file_sha256, line, adapter, account, symbol, asset_class, action, ts, trade_date, "
    "quantity, price, fee, fee_currency, currency, amount, broker_trade_id, order_id, lot_id, note"
)


def default_db_path() -> str:
    """The database path: $TAXLENS_DB, else ./taxlens.duckdb."""
    return os.environ.get(ENV_DB) or DEFAULT_DB


def migrations() -> list[tuple[int, str, str]]:
    """Return (version, name, sql) for every packaged migration, in order."""
    found = []
    for entry in resources.files("taxlens.migrations").iterdir():
        if m := _MIGRATION.match(entry.name):
            found.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


@dataclass(frozen=True)
class FileRecord:
    """What the store keeps about one imported file."""

    sha256: str
    path: str
    adapter: str
    rows_read: int
    trades: int
    ignored: int
    bad_rows: int


class Imported(NamedTuple):
    """What ``Store.import_trades`` did with one file's rows."""

    inserted: int  # trades new to the database
    elsewhere: int = 0  # rows left out because another file brought their broker trade id
    elsewhere_line: int | None = None  # the first of those


#: The ``trade_list`` view's columns that are not plain ``trades`` columns, over ``trades t``,
#: ``files f`` and ``accounts a`` (as migrations/0001_initial.sql defines the view; a test holds
#: ``Store.trades_of`` to the view).
_TRADE_LIST = {
    "id": "coalesce(t.broker_trade_id, printf('%032x', t.trade_id))",
    "account_type": "a.type",
    "owner": "a.owner",
    "source": "f.path || ':' || t.line",
    "trade_id": "printf('%032x', t.trade_id)",
}

#: A trade_id (UHUGEINT, which Arrow has no type for) as two UBIGINTs that sort as it does.
_TRADE_ID_HALVES = "(t.trade_id >> 64)::UBIGINT AS _hi, (t.trade_id & 18446744073709551615::UHUGEINT)::UBIGINT AS _lo"


def _through(through: dt.date | None) -> str:
    """A condition keeping the trades (``trades t``) with a tax date up to ``through`` (TRUE
    for None). Its parameter: ``_dated``."""
    return "t.trade_date <= $through" if through is not None else "TRUE"


def _dated(through: dt.date | None) -> dict[str, object]:
    return {"through": through} if through is not None else {}


def _where(
    *, account: str | None, symbol: str | None, year: int | None = None, dated: str | None = None, also: Sequence[str] = (),
) -> tuple[str, list[object]]:
    """A WHERE clause (empty when nothing filters) and its parameters, for a listing's
    --account, --symbol and --year (the year of the ``dated`` column), and ``also``."""
    where = list(also)
    params: list[object] = []
    for column, value in (("account", account), ("symbol", symbol)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if year is not None:
        where.append(f"year({dated}) = ?")
        params.append(year)
    return (f"WHERE {' AND '.join(where)}" if where else ""), params


class BookWriter:
    """Adds a booking's parts inside ``Store.book_writer``; ``problems`` and ``errors`` are
    stored at its end."""

    def __init__(self, con: duckdb.DuckDBPyConnection, prefix: str = "") -> None:
        self.con = con
        self.prefix = prefix  # "_next_" while a booking in parts fills tables of its own
        self.lots = self.disposals = 0
        self.problems: list[RowError] = []  # booked but flagged
        self.errors: list[RowError] = []  # specific-ID selections that could not be honoured

    def add(self, lots: pl.DataFrame, disposals: pl.DataFrame, washes: pl.DataFrame, carried: pl.DataFrame | None = None) -> None:
        """Append lots, disposals, washes and deferred losses carried out of sight (each in
        seq order within itself). In parts, each part is a transaction of its own: DuckDB keeps
        what a transaction adds in memory until it commits."""
        if self.prefix:
            self.con.execute("BEGIN TRANSACTION")
        frames = [("lots", lots), ("disposals", disposals), ("washes", washes)]
        if carried is not None and carried.height:
            frames.append(("carried_out", carried))
        for table, frame in frames:
            # As Arrow string views, polars' own layout: registering the frame itself copies
            # every text into a plain Arrow string first (a tenth of the insert).
            self.con.register("incoming", frame.to_arrow(compat_level=pl.CompatLevel.newest()))
            self.con.execute(f"INSERT INTO {self.prefix}{table} BY NAME SELECT * FROM incoming")
            self.con.unregister("incoming")
        if self.prefix:
            self.con.execute("COMMIT")
        self.lots += lots.height
        self.disposals += disposals.height


class Store:
    """An open taxlens database. Use as a context manager, or call ``close()``.

    ``path`` may be ``":memory:"`` for a throwaway store (tests). Read-only stores never migrate.
    """

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        if read_only and self.path != ":memory:" and not Path(self.path).exists():
            raise StoreError(f"{self.path}: no taxlens database here yet (run `taxlens ingest`)")
        self.con = self._connect(read_only)
        if read_only and self._pending():
            # An older schema is upgraded even by a reading command: briefly open it for writing.
            self.con.close()
            self.con, self.read_only = self._connect(False), False
            self._migrate()
            self.con.close()
            self.con, self.read_only = self._connect(True), True
        self._migrate()

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        try:
            con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.Error as exc:
            held = re.search(r"Conflicting lock is held in .*?\(PID (\d+)\)", str(exc))
            if held or "Could not set lock" in str(exc):
                pid = f" (process {held.group(1)})" if held else ""
                raise StoreError(
                    f"{self.path}: in use by another taxlens process{pid}; wait for it to finish and try again"
                ) from exc
            raise StoreError(f"{self.path}: cannot open the database: {exc}") from exc
        # Timestamps render in UTC whatever the machine's zone; tax dates are computed apart.
        con.execute("SET TimeZone = 'UTC'")
        # DuckDB draws its own progress bar on stdout for long queries: it would land in the
        # middle of `taxlens gains --format csv > file`. taxlens reports progress itself.
        con.execute("SET enable_progress_bar = false")
        return con

    def _pending(self) -> bool:
        return self.schema_version() < migrations()[-1][0]

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    # -- schema -----------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The highest migration applied, 0 for an empty database."""
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = '_taxlens_migrations'"
        ).fetchall()[0][0]
        if not exists:
            return 0
        return self.con.execute("SELECT coalesce(max(version), 0) FROM _taxlens_migrations").fetchall()[0][0]

    def _migrate(self) -> None:
        known = migrations()
        current = self.schema_version()
        latest = known[-1][0]
        if current > latest:
            raise StoreError(
                f"{self.path}: database schema version {current} is newer than this taxlens "
                f"understands ({latest}); upgrade taxlens"
            )
        pending = [m for m in known if m[0] > current]
        if not pending:
            return
        if self.read_only:
            raise StoreError(
                f"{self.path}: database schema version {current} needs migrating to {latest}; "
                "run any writing command (e.g. `taxlens ingest`) first"
            )
        for version, name, sql in pending:
            self.con.execute("BEGIN TRANSACTION")
            try:
                self.con.execute(
                    "CREATE TABLE IF NOT EXISTS _taxlens_migrations "
                    "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
                )
                self.con.execute(sql)
                self.con.execute(
                    "INSERT INTO _taxlens_migrations VALUES (?, ?, ?)",
                    [version, name, dt.datetime.now(dt.UTC)],
                )
                self.con.execute("COMMIT")
            except duckdb.Error as exc:
                self.con.execute("ROLLBACK")
                raise StoreError(f"{self.path}: migration {version} ({name}) failed: {exc}") from exc

    # -- files ------------------------------------------------------------------------------

    def imported_file(self, sha256: str) -> str | None:
        """The path a file with these bytes was first imported from, or None."""
        rows = self.con.execute("SELECT path FROM files WHERE sha256 = ?", [sha256]).fetchall()
        return rows[0][0] if rows else None

    def import_trades(self, record: FileRecord, trades: pl.DataFrame, config: Config) -> Imported:
        """Insert one file's normalized trades and its record in one transaction.

        ``trades`` has the columns of ``taxlens.ingest.frame.SCHEMA``, and may have the
        identity columns for ``record.adapter`` (``frame.identity_columns``), which then stand
        for hashing the rows here. Returns how many trades were new: a trade whose id is
        already stored (same fields, same occurrence among identical rows of its file) is
        skipped, so re-imports and overlapping exports add nothing while two identical fills
        in one file stay two trades. So is a row whose broker trade id another file already
        brought into its account (``_NOT_ELSEWHERE``); those are counted in the result.
        """
        con = self.con
        limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        if self.path != ":memory:":  # an in-memory database's own rows count against the limit
            con.execute(f"SET memory_limit = '{IMPORT_MEMORY}'")
        con.execute("BEGIN TRANSACTION")
        try:
            hashed = identity_columns(record.adapter)
            if all(c in trades.columns for c in hashed):
                inserted, elsewhere = self._insert_hashed(record, trades.rename(dict(zip(hashed, ("_hi", "_lo"), strict=True))))
            else:
                inserted, elsewhere = self._insert_staged(record, trades)
            con.execute(
                "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    record.sha256, record.path, record.adapter, record.rows_read, record.trades,
                    inserted, record.ignored, record.bad_rows, dt.datetime.now(dt.UTC),
                ],
            )
            accounts = trades.get_column("account").unique().sort().to_list()
            self._upsert_accounts(accounts, record.adapter, config)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.execute(f"SET memory_limit = '{limit}'")
        return Imported(int(inserted), *elsewhere)

    def _elsewhere(self, relation: str, hash_expr: str, sha: str) -> tuple[int, int | None]:
        """Rows of ``relation`` (aliased k) that are new by content (``hash_expr`` not stored)
        but whose broker trade id another file brought: how many, and the first one's line."""
        count, line = self.con.execute(
            f"SELECT count(*), min(line) FROM {relation} k WHERE NOT {_NOT_ELSEWHERE} "
            f"AND NOT EXISTS (SELECT 1 FROM trades t WHERE t.trade_id = {hash_expr})",
            {"sha": sha},
        ).fetchall()[0]
        return int(count), line

    def _insert_staged(self, record: FileRecord, trades: pl.DataFrame) -> tuple[int, tuple[int, int | None]]:
        """Hash (``IDENTITY_SQL``), number twins and insert ``trades``; return how many were new,
        and ``_elsewhere``'s count and line."""
        con = self.con
        trades = trades.select(list(SCHEMA))  # not another adapter's hidden identity columns
        # Stage the rows with their content hash a million at a time (the hash's text
        # forms of the decimals would double a large file's memory), then number twins
        # and insert in one statement over the staged table.
        for start in range(0, max(trades.height, 1), _STAGE_ROWS):
            keyed = trades.slice(start, _STAGE_ROWS).with_columns(decimal_text(c).alias(f"_{c}") for c in _DECIMALS)
            con.register("incoming", keyed)
            select = f"SELECT * EXCLUDE ({', '.join('_' + c for c in _DECIMALS)}), md5_number({IDENTITY_SQL}) AS h FROM incoming"
            con.execute(f"CREATE TEMP TABLE staged AS {select}" if start == 0 else f"INSERT INTO staged {select}",
                        {"adapter": record.adapter})
            con.unregister("incoming")
            del keyed
        elsewhere = self._elsewhere("staged", "k.h", record.sha256)
        # The n-th (n > 1) of several identical rows in a file hashes with "#n", so a later
        # export holding only the first still matches it. Only rows with a twin pay for the
        # numbering window.
        inserted = con.execute(
            f"""
            INSERT INTO trades ({TRADE_COLUMNS})
            WITH twins AS (SELECT h FROM staged GROUP BY h HAVING count(*) > 1),
            k AS (
                SELECT h AS trade_id, * FROM staged WHERE h NOT IN (SELECT h FROM twins)
                UNION ALL
                SELECT CASE WHEN n = 1 THEN h ELSE md5_number(h::VARCHAR || '#' || n) END, * EXCLUDE (n)
                FROM (SELECT *, row_number() OVER (PARTITION BY h ORDER BY line) AS n
                      FROM staged WHERE h IN (SELECT h FROM twins))
            )
            SELECT trade_id, $sha, line, $adapter, account, symbol, asset_class, action, ts,
                   trade_date, quantity, price, fee, fee_currency, currency, amount,
                   broker_trade_id, order_id, lot_id, note
            FROM k
            WHERE NOT EXISTS (SELECT 1 FROM trades t WHERE t.trade_id = k.trade_id) AND {_NOT_ELSEWHERE}
            """,
            {"adapter": record.adapter, "sha": record.sha256},
        ).fetchall()[0][0]
        con.execute("DROP TABLE staged")
        return int(inserted), elsewhere

    def _insert_hashed(self, record: FileRecord, trades: pl.DataFrame) -> tuple[int, tuple[int, int | None]]:
        """Number twins and insert ``trades``, whose identity hashes came with it (``_hi``,
        ``_lo``: ``frame.identity_columns``), straight from the frame; return how many were
        new. The same ids as ``_insert_staged``, without a staged copy of the rows."""
        con = self.con
        h = "((_hi::UHUGEINT << 64) | _lo::UHUGEINT)"
        # The n-th (n > 1) of several identical rows in a file hashes with "#n", as in
        # _insert_staged. Twins are rare: when the hashes' high halves are all distinct there
        # are none, and otherwise only the rows sharing a hash are numbered, into a small
        # table of ids by row.
        twins = trades.get_column("_hi").n_unique() < trades.height
        if twins:
            trades = trades.with_row_index("_row")
        con.register("incoming", trades)
        try:
            elsewhere = self._elsewhere("incoming", h, record.sha256)
            if twins:
                con.execute(
                    f"""
                    CREATE TEMP TABLE twins AS
                    WITH dup AS (SELECT {h} AS h FROM incoming GROUP BY ALL HAVING count(*) > 1)
                    SELECT _row, md5_number(h::VARCHAR || '#' || n) AS trade_id
                    FROM (SELECT _row, h, row_number() OVER (PARTITION BY h ORDER BY line, _row) AS n
                          FROM (SELECT _row, line, {h} AS h FROM incoming) SEMI JOIN dup USING (h))
                    WHERE n > 1
                    """
                )
            # The anti-join stays even when the table is empty (a first import): it also keeps
            # the insert on every core. Without it DuckDB plans an order-keeping batch insert,
            # which under IMPORT_MEMORY runs on one thread: twice as long on two free cores.
            inserted = con.execute(
                f"""
                INSERT INTO trades ({TRADE_COLUMNS})
                SELECT * FROM (
                    SELECT {f"coalesce(w.trade_id, {h})" if twins else h} AS trade_id, $sha, line, $adapter,
                           account, symbol, asset_class, action, ts, trade_date, quantity, price, fee,
                           fee_currency, currency, amount, broker_trade_id, order_id, lot_id, note
                    FROM incoming {"LEFT JOIN twins w USING (_row)" if twins else ""}
                ) k
                WHERE NOT EXISTS (SELECT 1 FROM trades t WHERE t.trade_id = k.trade_id) AND {_NOT_ELSEWHERE}
                """,
                {"adapter": record.adapter, "sha": record.sha256},
            ).fetchall()[0][0]
            if twins:
                con.execute("DROP TABLE twins")
        finally:
            con.unregister("incoming")
        return int(inserted), elsewhere

    def _upsert_accounts(self, names: list[str], adapter: str, config: Config) -> None:
        for name in names:
            settings = config.account(name)
            self.con.execute(
                """
                INSERT INTO accounts VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (account) DO UPDATE SET type = excluded.type, owner = excluded.owner,
                    configured = excluded.configured
                """,
                [name, settings.type.value, settings.owner, name in config.accounts, adapter],
            )

    # -- queries ----------------------------------------------------------------------------

    def trades(
        self,
        *,
        account: str | None = None,
        symbol: str | None = None,
        year: int | None = None,
        columns: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """Stored trades in (trade_date, ts, source) order, optionally filtered; a polars frame
        with the columns of the ``trade_list`` view, or only ``columns`` of them (a narrower
        frame loads faster and takes less memory: booking reads 16 of the 21)."""
        clause, params = _where(account=account, symbol=symbol, year=year, dated="trade_date")
        return self._frame(
            f"SELECT {', '.join(columns) if columns else '*'} FROM trade_list {clause} {self.TRADE_ORDER}",
            params,
        )

    def trade_columns(self, columns: Sequence[str], year: int | None = None) -> pl.DataFrame:
        """``columns`` of the stored trades (of tax year ``year``, when given), read from the
        ``trades`` table itself (not the ``trade_list`` view: no ``id``, ``source``, type or
        owner), in no particular order: what an audit's totals need. At 10M trades this takes
        1.3 s and 2.1 GB where the view's ordered listing took 4.0 s and 3.9 GB (sorting by
        its text ``source``)."""
        dated = "WHERE trade_date BETWEEN ? AND ?" if year is not None else ""
        return self._frame(
            f"SELECT {', '.join(columns)} FROM trades {dated}",
            [dt.date(year, 1, 1), dt.date(year, 12, 31)] if year is not None else None,
        )

    def trade_years(self) -> list[int]:
        """The tax years with stored trades, oldest first."""
        return [r[0] for r in self.con.execute("SELECT DISTINCT year(trade_date) FROM trades ORDER BY 1").fetchall()]

    def trade_accounts(self) -> list[str]:
        """The accounts of the stored trades, sorted."""
        return [r[0] for r in self.con.execute("SELECT DISTINCT account FROM trades ORDER BY 1").fetchall()]

    def purchases(self, first: dt.date, last: dt.date) -> pl.DataFrame:
        """Buys and reinvestments with a tax date from ``first`` to ``last``: ``id``, ``account``,
        ``symbol``, ``trade_date``, ``quantity`` (the purchases a wash-sale window looks at)."""
        return self._frame(
            "SELECT id, account, symbol, trade_date, quantity FROM trade_list "
            "WHERE action IN ('buy', 'reinvest') AND trade_date BETWEEN ? AND ?", [first, last],
        )

    #: The order of ``trades()``, the listing's (booking in chunks reads in ``BOOK_ORDER``).
    TRADE_ORDER = "ORDER BY trade_date, ts NULLS FIRST, source, trade_id"

    def trade_count(self, through: dt.date | None = None) -> int:
        """How many trades are stored (with a tax date up to ``through``, when given)."""
        return int(self.con.execute(f"SELECT count(*) FROM trades t WHERE {_through(through)}", _dated(through)).fetchall()[0][0])

    @contextlib.contextmanager
    def memory_limit(self, limit: str) -> Iterator[None]:
        """DuckDB's memory limit lowered to ``limit`` meanwhile ("1GB"): its sorts spill to
        disk rather than take memory the booking needs (the default is 80% of RAM)."""
        before = self.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        self.con.execute(f"SET memory_limit = '{limit}'")
        try:
            yield
        finally:
            self.con.execute(f"SET memory_limit = '{before}'")

    #: The order booking reads trades in, a chunk at a time: (trade_date, ts, trade_id), nulls
    #: first. Cheaper than ``trades()``' (no text to build and sort), and the same where it
    #: matters: rows ``trades()`` orders by ``source`` as well are put in order by
    #: ``events.event_ranks``, down to trades of one line, which both orders take by
    #: ``trade_id``.
    BOOK_ORDER = "ORDER BY t.trade_date, t.ts NULLS FIRST, t.trade_id"

    def booking_keys(self, through: dt.date | None = None) -> pl.DataFrame:
        """What planning a booking in chunks needs of every stored trade (with a tax date up to
        ``through``, when given), in booking order: ``trade_date``, ``ts``, ``action``,
        ``symbol``, ``account``, and a sale fee's ``trade_id`` (as ``trade_list`` shows it) as
        ``fee_id``."""
        return self._frame(
            "SELECT trade_date, ts, action, symbol, account, "
            f"CASE WHEN action = 'sale_fee' THEN {_TRADE_LIST['trade_id']} END AS fee_id "
            f"FROM trades t WHERE {_through(through)} {self.BOOK_ORDER}",
            _dated(through),
        )

    def booking_sources(self, through: dt.date | None = None) -> pl.Series:
        """The ``source`` (path:line) of the trades ``booking_keys`` gives, in its order."""
        return self._frame(
            f"SELECT {_TRADE_LIST['source']} AS source FROM trades t JOIN files f ON f.sha256 = t.file_sha256 "
            f"WHERE {_through(through)} {self.BOOK_ORDER}",
            _dated(through),
        ).get_column("source")

    def trades_of(
        self, symbols: Sequence[str] | None, fee_ids: Sequence[str] | None, columns: Sequence[str], through: dt.date | None = None,
        *, actions: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """``columns`` of the stored trades of ``symbols`` (their sale fees aside) and of the
        sale fees ``fee_ids``, in booking order (``BOOK_ORDER``): one chunk of a booking; with
        ``symbols`` None, every trade (a booking in one piece), or, with ``actions``, every
        trade of those actions. With ``through``, only trades with a tax date up to it.

        Read from the tables, as ``_TRADE_LIST`` spells the view's columns, with the 128-bit
        trade_id as two integers to sort by: through the view, ordering by its 32 hex digits
        took as long as reading everything else."""
        joins = "FROM trades t JOIN files f ON f.sha256 = t.file_sha256 LEFT JOIN accounts a ON a.account = t.account"
        listed = ", ".join(f"{_TRADE_LIST.get(c, 't.' + c)} AS {c}" for c in columns)
        selected = f"SELECT {listed}, {_TRADE_ID_HALVES} {joins} WHERE {_through(through)}"
        if symbols is None and actions is not None:
            frame = self._frame(f"{selected} AND list_contains($actions, t.action)", {"actions": list(actions), **_dated(through)})
        elif symbols is None:
            frame = self._frame(selected, _dated(through))
        else:
            # Two selects, not one WHERE with an OR: DuckDB then filters the symbols as the
            # table is scanned, a third quicker per chunk.
            frame = self._frame(
                f"{selected} AND t.action <> 'sale_fee' AND list_contains($symbols, t.symbol) "
                f"UNION ALL {selected} AND t.action = 'sale_fee' AND list_contains($fees, {_TRADE_LIST['trade_id']})",
                {"symbols": list(symbols), "fees": list(fee_ids or []), **_dated(through)},
            )
        # Sorted here: DuckDB would sort these wide rows on disk under the memory limit booking
        # in chunks sets, and through the view (by its text source) takes longer even in memory.
        return frame.sort(["trade_date", "ts", "_hi", "_lo"], nulls_last=False, maintain_order=True).drop("_hi", "_lo")

    def booked_batches(
        self, table: str, *, year: int | None = None, account: str | None = None, symbol: str | None = None,
        open_only: bool = False, rows: int = 250_000,
    ) -> Generator[pl.DataFrame]:
        """A stored booking table (lots, disposals, washes) in (seq, row) order, about ``rows``
        at a time: a listing of millions of rows without holding them all. Filtered by account
        and symbol, by ``year`` (of the sale: disposals and washes), and to lots still open.

        A batch is a window of seq values holding about ``rows`` rows (all of any one seq's).
        A booking stored in chunks has each chunk's rows in seq order, one chunk after another,
        so DuckDB's zone maps skip the row groups outside a window: one ORDER BY over the whole
        table would sort every wide row, a third longer at 9M disposals, and in more memory."""
        also = ["open_quantity > 0"] if open_only else []
        clause, params = _where(account=account, symbol=symbol, year=year, dated="disposed", also=also)
        windowed, _ = _where(account=account, symbol=symbol, year=year, dated="disposed", also=[*also, "seq >= ?", "seq < ?"])
        cursor = self.con.cursor()
        try:
            seqs = pl.DataFrame(pl.from_arrow(cursor.sql(f"SELECT seq FROM {table} {clause}", params=params).to_arrow_table()))
            if seqs.height == 0:  # one batch at least: the listing's header comes from its columns
                yield pl.DataFrame(pl.from_arrow(cursor.sql(f"SELECT * FROM {table} LIMIT 0").to_arrow_table()))
                return
            ordered = seqs.get_column("seq").sort()
            bounds = [*ordered.gather_every(max(rows, 1)).unique(maintain_order=True).to_list(), ordered[-1] + 1]
            for low, high in itertools.pairwise(bounds):
                batch = cursor.sql(f"SELECT * FROM {table} {windowed} ORDER BY seq, rowid", params=[low, high, *params])
                yield pl.DataFrame(pl.from_arrow(batch.to_arrow_table()))
        finally:
            cursor.close()

    def booked_totals(self, table: str, keys: Sequence[str], sums: Sequence[str]) -> pl.DataFrame:
        """A stored booking table added up: one row per distinct ``keys``, with the sum of each
        of ``sums`` and the count of rows ``n``, in no particular order. Rows where an amount
        is unknown (null) are added up apart from those where it is known, so a total is either
        known or null (as a lot of unknown basis is left out, not counted as zero)."""
        unknown = [f"{c} IS NULL" for c in sums]
        return self._frame(
            f"SELECT {', '.join([*keys, *(f'sum({c}) AS {c}' for c in sums)])}, count(*) AS n "
            f"FROM {table} GROUP BY {', '.join([*keys, *unknown])}"
        )

    def booked_columns(self, table: str, columns: Sequence[str], *, account: str | None = None, symbol: str | None = None) -> pl.DataFrame:
        """Only ``columns`` of a stored booking table, filtered by account and symbol, in no
        particular order: what totals over millions of rows need."""
        clause, params = _where(account=account, symbol=symbol)
        return self._frame(f"SELECT {', '.join(columns)} FROM {table} {clause}", params)

    def accounts(self, config: Config) -> pl.DataFrame:
        """Every account seen in the data, plus any configured but not yet seen, with its type,
        owner, whether taxlens.toml lists it, and its trade count."""
        seen = self._frame(
            """
            SELECT a.account, a.first_adapter AS adapter, count(t.trade_id) AS trades,
                   min(t.trade_date) AS first_date, max(t.trade_date) AS last_date
            FROM accounts a LEFT JOIN trades t USING (account)
            GROUP BY ALL ORDER BY a.account
            """
        )
        names = sorted(set(seen.get_column("account").to_list()) | set(config.accounts))
        rows = []
        by_name = {r["account"]: r for r in seen.iter_rows(named=True)}
        for name in names:
            settings = config.account(name)
            row = by_name.get(name, {})
            rows.append(
                {
                    "account": name,
                    "type": settings.type.value,
                    "owner": settings.owner,
                    "configured": name in config.accounts,
                    "adapter": row.get("adapter"),
                    "trades": row.get("trades", 0),
                    "first_date": row.get("first_date"),
                    "last_date": row.get("last_date"),
                }
            )
        return pl.DataFrame(
            rows,
            schema={
                "account": pl.String, "type": pl.String, "owner": pl.String,
                "configured": pl.Boolean, "adapter": pl.String, "trades": pl.Int64,
                "first_date": pl.Date, "last_date": pl.Date,
            },
        )

    def files(self) -> pl.DataFrame:
        """The import log, oldest first."""
        return self._frame("SELECT * FROM files ORDER BY imported_at, path")

    def summary(self, sha256s: list[str]) -> pl.DataFrame:
        """Trades per account, symbol and action from the given files (the ingest summary)."""
        return self._frame(
            """
            SELECT account, symbol,
                   count(*) FILTER (WHERE action IN ('buy', 'reinvest', 'buy_to_cover')) AS buys,
                   count(*) FILTER (WHERE action IN ('sell', 'sell_short')) AS sells,
                   count(*) FILTER (WHERE action NOT IN ('buy', 'reinvest', 'buy_to_cover', 'sell', 'sell_short')) AS other,
                   count(*) AS events, min(trade_date) AS first_date, max(trade_date) AS last_date
            FROM trades WHERE list_contains(?, file_sha256)
            GROUP BY ALL ORDER BY account, symbol
            """,
            [sha256s],
        )

    # -- booked lots and disposals ------------------------------------------------------------

    def files_fingerprint(self) -> str:
        """A text that changes whenever the set of imported files changes."""
        rows = self.con.execute("SELECT sha256 FROM files ORDER BY sha256").fetchall()
        return ",".join(r[0] for r in rows)

    def book_key(self) -> str | None:
        rows = self.con.execute("SELECT key FROM book_state").fetchall()
        return rows[0][0] if rows else None

    def save_book(
        self, key: str, lots: pl.DataFrame, disposals: pl.DataFrame, washes: pl.DataFrame,
        problems: list[RowError], errors: list[RowError], *, con: duckdb.DuckDBPyConnection | None = None,
        carried: pl.DataFrame | None = None,
    ) -> None:
        """Replace the stored lots, disposals, washes, deferred losses carried out of sight,
        problems and errors with a new booking, in one transaction, on ``con`` (the store's
        connection, or a cursor of it)."""
        with self.book_writer(key, con=con) as writer:
            writer.add(lots, disposals, washes, carried)
            writer.problems, writer.errors = problems, errors

    #: The tables a booking fills (``book_problems`` and ``book_state`` besides).
    BOOK_TABLES = ("lots", "disposals", "washes", "carried_out")

    @contextlib.contextmanager
    def book_writer(self, key: str, *, con: duckdb.DuckDBPyConnection | None = None, parts: bool = False) -> Iterator[BookWriter]:
        """A new booking stored part by part (``BookWriter.add``) on ``con``: it replaces the
        stored one when the block ends, or leaves it untouched on an error (or a crash).

        One transaction holds it all; or, with ``parts``, each part is committed on its own
        into ``_next_`` copies of the booking tables (same columns and constraints), which
        take the stored tables' place in one last transaction. (DuckDB holds what a
        transaction adds in memory until it commits: 0.5 GB per million trades.) What a failed
        booking in parts leaves over is dropped by the next one."""
        con = self.con if con is None else con
        if not parts:
            con.execute("BEGIN TRANSACTION")
            try:
                for table in self.BOOK_TABLES:  # _finish_book empties book_state and book_problems
                    con.execute(f"DELETE FROM {table}")
                writer = BookWriter(con)
                yield writer
                self._finish_book(con, key, writer)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            return
        self._drop_next(con)
        try:
            for table in self.BOOK_TABLES:
                sql = con.execute(
                    "SELECT sql FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'", [table]
                ).fetchall()[0][0]
                con.execute(re.sub(rf"^CREATE TABLE {table}\(", f"CREATE TABLE _next_{table}(", sql))
            writer = BookWriter(con, prefix="_next_")
            yield writer
            con.execute("BEGIN TRANSACTION")
            try:
                for table in self.BOOK_TABLES:
                    con.execute(f"DROP TABLE {table}")
                    con.execute(f"ALTER TABLE _next_{table} RENAME TO {table}")
                self._finish_book(con, key, writer)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except BaseException:
            self._drop_next(con)
            raise

    def _drop_next(self, con: duckdb.DuckDBPyConnection) -> None:
        for table in self.BOOK_TABLES:
            con.execute(f"DROP TABLE IF EXISTS _next_{table}")

    def _finish_book(self, con: duckdb.DuckDBPyConnection, key: str, writer: BookWriter) -> None:
        """Inside the booking's last transaction: its problems and errors (``kind`` tells them
        apart), and the key it is stored under."""
        for table in ("book_state", "book_problems"):
            con.execute(f"DELETE FROM {table}")
        flagged = [("problem", p) for p in writer.problems] + [("error", e) for e in writer.errors]
        if flagged:
            con.executemany(
                "INSERT INTO book_problems VALUES (?, ?, ?, ?)",
                [[kind, p.path, p.line, p.message] for kind, p in flagged],
            )
        con.execute(
            "INSERT INTO book_state VALUES (?, ?, ?, ?)",
            [key, dt.datetime.now(dt.UTC), writer.lots, writer.disposals],
        )

    def load_book(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, list[RowError], list[RowError]]:
        """The stored lots (by seq), disposals (by sale, then slice), washes, problems and errors
        (the deferred losses carried out of sight: ``load_carried``)."""
        lots, disposals, washes = (self._in_seq_order(table) for table in ("lots", "disposals", "washes"))
        return lots, disposals, washes, *self.load_book_problems()

    def load_carried(self) -> pl.DataFrame:
        """The stored booking's deferred losses carried out of sight, by seq: the table's columns
        are CARRIED_SCHEMA's (migrations/0004_carried_out.sql)."""
        return self._in_seq_order("carried_out")

    def load_book_problems(self) -> tuple[list[RowError], list[RowError]]:
        """The stored booking's problems and errors, each in the order found."""
        rows = self.con.execute("SELECT kind, path, line, message FROM book_problems ORDER BY rowid").fetchall()

        def of(kind: str) -> list[RowError]:
            return [RowError(path, line, message) for k, path, line, message in rows if k == kind]

        return of("problem"), of("error")

    def crypto_symbols(self) -> frozenset[str]:
        """The symbols stored trades call digital assets (as ``lots.book.crypto_symbols``)."""
        rows = self.con.execute("SELECT DISTINCT symbol FROM trades WHERE asset_class = 'crypto'").fetchall()
        return frozenset(r[0] for r in rows)

    def _in_seq_order(self, table: str) -> pl.DataFrame:
        """A booking table's rows in (seq, rowid) order. save_book inserts them in that order
        already, and DuckDB returns a plain scan in insertion order: the sort only runs when
        the rows say otherwise (an ORDER BY would sort a million rows every time, doubling the
        read)."""
        frame = self._frame(f"SELECT *, rowid AS _row FROM {table}")
        if not frame.get_column("_row").is_sorted():
            frame = frame.sort("_row")
        if not frame.get_column("seq").is_sorted(nulls_last=True):
            frame = frame.sort("seq", maintain_order=True, nulls_last=True)
        return frame.drop("_row")

    def _frame(self, sql: str, params: Sequence[object] | dict[str, object] | None = None) -> pl.DataFrame:
        """Run a query and return its rows as a polars frame (Decimal columns kept exact)."""
        return pl.DataFrame(pl.from_arrow(self.con.sql(sql, params=params).to_arrow_table()))
