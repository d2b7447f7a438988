"""The store: idempotent imports, identical fills kept, migrations, one transaction per file."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

import taxlens
from taxlens.errors import StoreError
from taxlens.store import Store, migrations
from tests.conftest import write

HEADER = "date,account,symbol,side,quantity,price,fee\n"
JAN = "2025-01-02,A,VTI,buy,10,250.50,0.35\n2025-01-15,A,VTI,sell,4,251,0\n"
FEB = "2025-02-03,A,VTI,buy,1,240,0\n"


def test_reimporting_a_file_adds_nothing(book, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "jan.csv", HEADER + JAN)
    first = book.ingest([path])
    again = book.ingest([path])
    assert (first.inserted, again.inserted) == (2, 0)
    assert again.files[0].status == "already imported"
    assert book.trades().height == 2


def test_an_overlapping_wider_export_adds_only_the_new_trades(book, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    book.ingest([write(tmp_path, "jan.csv", HEADER + JAN)])
    # A wider download: the same January rows on other lines, in another order, plus February.
    wider = write(tmp_path, "jan-feb.csv", HEADER + FEB + JAN.splitlines()[1] + "\n" + JAN.splitlines()[0] + "\n")
    report = book.ingest([wider])
    assert report.inserted == 1
    assert report.files[0].trades == 3
    assert sorted(book.trades().get_column("trade_date").cast(str).to_list()) == ["2025-01-02", "2025-01-15", "2025-02-03"]


def test_a_broker_trade_id_already_brought_by_another_file_is_kept_once(book, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A re-download that corrects T1's price holds the same trade, by the broker's id: the
    first import's T1 stays, the new copy is left out and named in a warning. The same id in
    another account is another trade; an identical row (the usual overlap) warns of nothing."""
    ids = "date,account,symbol,side,quantity,price,fee,trade_id\n"
    book.ingest([write(tmp_path, "jan.csv", ids + "2025-01-02,A,VTI,buy,10,250.50,0,T1\n2025-01-03,A,VTI,buy,1,251,0,T2\n")])
    report = book.ingest([write(tmp_path, "again.csv", ids + "2025-01-02,A,VTI,buy,10,250.55,0,T1\n"
                                "2025-01-02,B,VTI,buy,10,250.55,0,T1\n2025-01-03,A,VTI,buy,1,251,0,T2\n")])
    assert report.inserted == 1
    assert report.files[0].warnings == [
        f"{tmp_path / 'again.csv'}:2: 1 row (this one first) carries a broker trade id that another file already "
        "brought into the same account: each trade is kept once, as first imported"
    ]
    assert sorted(book.trades().select("account", "id", "price").rows()) == [
        ("A", "T1", Decimal("250.50")), ("A", "T2", Decimal(251)), ("B", "T1", Decimal("250.55")),
    ]

def test_identical_fills_in_one_file_stay_two_trades(book, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    twice = "2025-01-02,A,VTI,buy,10,250.50,0.35\n" * 2
    book.ingest([write(tmp_path, "fills.csv", HEADER + twice)])
    assert book.trades().height == 2
    # The same two fills inside a wider export are recognised, not added a third time.
    book.ingest([write(tmp_path, "wider.csv", HEADER + FEB + twice)])
    assert book.trades().height == 3
    # A narrower export holding one of the two is the first of them, already stored.
    book.ingest([write(tmp_path, "narrow.csv", HEADER + twice.splitlines()[0] + "\n")])
    assert book.trades().height == 3


def test_trade_ids_are_stable_content_hashes(book, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Changing the identity hash would duplicate every trade on the next import: pin it.

    trade_id = the MD5 of the normalized fields joined by U+001F, read as a little-endian 128-bit
    integer (DuckDB's md5_number) and shown as 32 hex digits; the n-th identical row of a file
    (n > 1) hashes the first one's integer in decimal plus "#n" (README, "Trade identity").
    """
    row = "2025-01-02,A,VTI,buy,10,250.50,0.35\n"
    book.ingest([write(tmp_path, "two.csv", HEADER + row + row)])
    fields = ["generic", "A", "VTI", "equity", "buy", "", "2025-01-02", "10", "250.5", "0.35", "USD", "USD", "", "", "", ""]

    def md5_number(text: str) -> int:
        return int.from_bytes(hashlib.md5(text.encode()).digest(), "little")

    first = md5_number("\x1f".join(fields))
    second = md5_number(f"{first}#2")
    assert f"{first:032x}" == "049beddd6be7d3342382d8e7fa508b5b"
    assert book.trades().sort("source").get_column("trade_id").to_list() == [f"{first:032x}", f"{second:032x}"]


def test_a_file_with_bad_rows_imports_nothing_unless_asked(book, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "bad.csv", HEADER + JAN + "2025-01-20,A,VTI,buy,1O,1,0\n")
    report = book.ingest([path])
    assert not report.ok and report.files[0].status == "failed"
    assert [str(e) for e in report.files[0].errors] == [
        f"{path}:4: quantity '1O' is not a number (expected a number such as 10 or 0.5)"
    ]
    assert book.trades().height == 0
    skipped = book.ingest([path], skip_bad_rows=True)
    assert skipped.inserted == 2 and not skipped.ok
    assert book.files().get_column("bad_rows").to_list() == [1]


def test_one_bad_file_does_not_stop_the_others(book, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report = book.ingest([tmp_path / "missing.csv", write(tmp_path, "jan.csv", HEADER + JAN)])
    assert [f.status for f in report.files] == ["failed", "imported"]
    assert str(report.files[0].problem) == f"{tmp_path / 'missing.csv'}: file not found"


def test_a_failure_mid_import_leaves_the_database_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "t.duckdb"
    with taxlens.open_book(db, taxlens.Config()) as book:
        book.ingest([write(tmp_path, "jan.csv", HEADER + JAN)])

        def boom(*args: object) -> None:
            raise RuntimeError("disk full")

        monkeypatch.setattr(Store, "_upsert_accounts", boom)
        with pytest.raises(RuntimeError, match="disk full"):
            book.ingest([write(tmp_path, "feb.csv", HEADER + FEB)])
    with taxlens.open_book(db, taxlens.Config(), read_only=True) as book:
        assert book.trades().height == 2
        assert book.files().height == 1


def test_migrations_are_recorded_and_a_newer_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    with Store(db) as store:
        assert store.schema_version() == migrations()[-1][0]
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO _taxlens_migrations VALUES (999, 'future', now())")
    con.close()
    with pytest.raises(StoreError, match=rf"database schema version 999 is newer than this taxlens understands \({migrations()[-1][0]}\); upgrade taxlens"):
        Store(db)


def test_read_only_needs_an_existing_database(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no taxlens database here yet \(run `taxlens ingest`\)"):
        Store(tmp_path / "none.duckdb", read_only=True)


def test_decimal_columns_are_declared_exactly(book) -> None:  # type: ignore[no-untyped-def]
    types = dict(book.store.con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'trades'"
    ).fetchall())
    assert {types[c] for c in ("quantity", "price", "fee", "amount")} == {"DECIMAL(38,18)"}


def test_views_answer_direct_queries(book, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    book.ingest([write(tmp_path, "jan.csv", HEADER + JAN)])
    con = book.store.con
    assert con.execute("SELECT account, symbol, quantity::VARCHAR FROM positions").fetchall() == [
        ("A", "VTI", "6.000000000000000000")
    ]
    assert con.execute("SELECT source, account_type FROM trade_list ORDER BY source").fetchall() == [
        (f"{tmp_path / 'jan.csv'}:2", "taxable"), (f"{tmp_path / 'jan.csv'}:3", "taxable"),
    ]


def test_accounts_take_type_and_owner_from_the_config(tmp_path: Path) -> None:
    config = write(tmp_path, "taxlens.toml", """
        [accounts."IRA"]
        type = "roth_ira"
        owner = "sam"
    """)
    with taxlens.open_book(":memory:", config) as book:
        book.ingest([write(tmp_path, "t.csv", HEADER + "2025-01-02,IRA,VTI,buy,1,1,0\n2025-01-02,Taxable,VTI,buy,1,1,0\n")])
        assert book.accounts().select("account", "type", "owner", "configured", "trades").rows() == [
            ("IRA", "roth_ira", "sam", True, 1),
            ("Taxable", "taxable", "self", False, 1),
        ]


def test_a_booking_chunk_reads_the_trades_as_the_view_shows_them(tmp_path: Path) -> None:
    """``Store.trades_of`` spells the ``trade_list`` view's columns over the tables (to sort by
    the 128-bit trade_id cheaply): for every symbol and sale fee it gives the view's rows, in
    the order ``booking_keys`` plans by; and so for every trade at once."""
    root = Path(__file__).parents[1] / "sample_exports"
    write(tmp_path, "twins.csv", HEADER + "2025-01-02,A,VTI,buy,1,10,0\n" * 3 + FEB)
    with taxlens.open_book(tmp_path / "t.duckdb", taxlens.Config()) as book:
        book.ingest([*sorted(root.glob("*/*")), tmp_path / "twins.csv"])
        store = book.store
        view = store.trades()
        keys = store.booking_keys()
        fees = keys.get_column("fee_id").drop_nulls().to_list()
        assert fees  # Alpaca's sale fees are among them
        read = store.trades_of(view.get_column("symbol").unique().to_list(), fees, view.columns)
        every = store.trades_of(None, None, view.columns)
    assert every.equals(read)  # all of them, for a booking in one piece
    assert read.height == view.height
    assert read.sort(view.columns).equals(view.sort(view.columns))
    assert read.select(keys.columns[:5]).equals(keys.select(keys.columns[:5]))
