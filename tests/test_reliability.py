"""The guarantees in the README's "Reliability" section, one test (or more) each: crash safety,
concurrency, privacy, safe outputs, schema upgrades and config validation. (Adapter fuzzing is in
tests/ingest/test_robustness.py and each adapter's tests.)"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

import taxlens
from taxlens.config import load_config
from taxlens.errors import ConfigError
from taxlens.store import Store, migrations
from tests.conftest import write

ROOT = Path(__file__).parents[1]
HEADER = "date,account,symbol,side,quantity,price,fee,currency,asset_class,trade_id,lot_id\n"


def big_csv(path: Path, rows: int, start: int = 0) -> Path:
    """A generic CSV of ``rows`` buys (distinct ids), fast to write and slow enough to ingest."""
    with path.open("w", encoding="utf-8") as f:
        f.write(HEADER)
        for i in range(start, start + rows):
            f.write(f"2025-01-{1 + i % 28:02d}T10:00:{i % 60:02d}-05:00,Alpaca,S{i % 50},buy,{1 + i % 7}.5,{10 + i % 90}.25,0,USD,equity,T{i},\n")
    return path


def count(db: Path) -> int:
    with taxlens.open_book(db, taxlens.Config(), read_only=True) as book:
        return book.trades().height


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "taxlens", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


# -- crash safety ----------------------------------------------------------------------------------


def _kill_while_writing(args: list[str], db: Path, cwd: Path) -> None:
    """Start taxlens, SIGKILL it once DuckDB has started writing (its WAL file appears)."""
    proc = subprocess.Popen([sys.executable, "-m", "taxlens", *args], cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wal = Path(str(db) + ".wal")
    deadline = time.monotonic() + 120
    while proc.poll() is None and not wal.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_killed_ingest_leaves_the_database_as_it_was_and_the_ingest_then_succeeds(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    first = big_csv(tmp_path / "first.csv", 1_000)
    assert run_cli("--db", str(db), "ingest", "-q", str(first), cwd=tmp_path).returncode == 0
    second = big_csv(tmp_path / "second.csv", 150_000, start=1_000)
    _kill_while_writing(["--db", str(db), "ingest", "-q", str(second)], db, tmp_path)
    assert count(db) in (1_000, 151_000)  # all of the file or none of it, never part
    result = run_cli("--db", str(db), "ingest", "-q", str(second), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert count(db) == 151_000


def test_a_killed_rebooking_leaves_the_derived_tables_whole(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    trades = big_csv(tmp_path / "t.csv", 40_000)
    text = trades.read_text().replace(",buy,", ",sell,", 1)  # (one sale is enough to book)
    trades.write_text(text)
    assert run_cli("--db", str(db), "ingest", "-q", str(trades), cwd=tmp_path).returncode == 0
    _kill_while_writing(["--db", str(db), "gains", "--format", "csv"], db, tmp_path)
    with duckdb.connect(str(db), read_only=True) as con:
        state = con.execute("SELECT lots, disposals FROM book_state").fetchall()
        lots = con.execute("SELECT count(*) FROM lots").fetchall()[0][0]
    assert (state == [] and lots == 0) or state[0][0] == lots  # no booking, or a whole one
    assert run_cli("--db", str(db), "gains", "--format", "csv", cwd=tmp_path).returncode == 0


def test_a_killed_rebooking_in_parts_leaves_the_previous_booking(tmp_path: Path) -> None:
    """Booked in chunks, each part is committed into tables of its own: a kill midway leaves
    the previous booking as it was (and leftovers the next booking drops)."""
    db = tmp_path / "t.duckdb"
    trades = big_csv(tmp_path / "t.csv", 40_000)
    trades.write_text(trades.read_text().replace(",buy,", ",sell,", 1))
    assert run_cli("--db", str(db), "ingest", "-q", str(trades), cwd=tmp_path).returncode == 0
    assert run_cli("--db", str(db), "gains", "--format", "csv", cwd=tmp_path).returncode == 0
    with duckdb.connect(str(db), read_only=True) as con:
        before = con.execute("SELECT key, lots, disposals FROM book_state").fetchall()
    os.environ["TAXLENS_CHUNK_TRADES"] = "4000"
    try:
        _kill_while_writing(["--db", str(db), "gains", "--method", "lifo", "--format", "csv"], db, tmp_path)
        with duckdb.connect(str(db), read_only=True) as con:
            state = con.execute("SELECT key, lots, disposals FROM book_state").fetchall()
            lots = con.execute("SELECT count(*) FROM lots").fetchall()[0][0]
        assert state == before or state[0][0] != before[0][0]  # the previous booking, or the whole new one
        assert state[0][1] == lots
        result = run_cli("--db", str(db), "gains", "--method", "lifo", "--format", "csv", cwd=tmp_path)
    finally:
        del os.environ["TAXLENS_CHUNK_TRADES"]
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_next_%'").fetchall() == [(0,)]


def test_a_rebooking_in_parts_that_fails_leaves_the_previous_booking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import taxlens.api

    write(tmp_path, "t.csv", HEADER + "".join(
        f"2025-01-0{1 + i % 5},Alpaca,S{i % 4},{'buy' if i < 8 else 'sell'},1,{100 + i},0,USD,equity,T{i},\n" for i in range(12)
    ))
    with taxlens.open_book(tmp_path / "t.duckdb", taxlens.Config(), chunk_trades=3) as book:
        book.ingest([tmp_path / "t.csv"])
        fifo, key = book.gains(), book.store.book_key()
        calls = []
        real = taxlens.api.book

        def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(1)
            if len(calls) == 3:
                raise MemoryError("out of memory in the third part")
            return real(*args, **kwargs)

        monkeypatch.setattr(taxlens.api, "book", failing)
        with pytest.raises(MemoryError):
            book.gains(method="lifo")
        monkeypatch.setattr(taxlens.api, "book", real)
        assert book.store.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_next_%'").fetchall() == [(0,)]
        assert book.store.book_key() == key and book.gains().equals(fifo)
        assert not book.gains(method="lifo").equals(fifo)


# -- concurrency -----------------------------------------------------------------------------------


def test_a_database_in_use_by_another_process_is_a_clear_message(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "taxlens.duckdb"
    write(tmp_path, "t.csv", HEADER + "2025-01-02,Alpaca,VTI,buy,1,100,0,USD,etf,B1,\n")
    assert run("ingest", "-q", "t.csv").exit_code == 0
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('ok', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        for args in (("ingest", "t.csv"), ("trades",), ("gains",)):
            result = run(*args)
            assert result.exit_code == 1
            assert "in use by another taxlens process (process " in result.stderr
            assert "Traceback" not in result.stderr and "IO Error" not in result.stderr
    finally:
        holder.kill()
        holder.wait()


def test_reading_commands_open_the_database_read_only(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "t.csv", HEADER + "2025-01-02,Alpaca,VTI,buy,1,100,0,USD,etf,B1,\n")
    assert run("ingest", "-q", "t.csv").exit_code == 0
    with duckdb.connect(str(tmp_path / "taxlens.duckdb"), read_only=True):  # a reader holds a shared lock
        for args in (("trades",), ("files",), ("accounts",)):
            assert run(*args).exit_code == 0


# -- privacy ---------------------------------------------------------------------------------------


def test_the_whole_audit_and_simulation_never_open_a_network_connection(tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, a))  # type: ignore[arg-type]
    samples = sorted(str(p) for p in (ROOT / "sample_exports").glob("*/*"))
    config = str(ROOT / "sample_exports" / "taxlens.toml")
    result = run("--config", config, "audit", *samples, "--out", "out")
    assert result.exit_code == 0, result.output
    result = run("--config", config, "simulate", "--band", "5", "--calendar", "Q", "--html", "out/sim.html")
    assert result.exit_code == 0, result.output
    assert attempts == []
    for page in ("out/report-2025.html", "out/sim.html"):
        html = (tmp_path / page).read_text()
        assert "<script" not in html and "src=\"http" not in html and "href=\"http" not in html and "url(http" not in html


# -- safe outputs ----------------------------------------------------------------------------------


def test_hostile_symbols_are_escaped_in_html_and_neutralised_in_csv(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "t.csv", HEADER + "".join([
        "2025-01-02,Alpaca,<script>alert(1)</script>,buy,10,100,0,USD,equity,B1,\n",
        "2025-03-03,Alpaca,<script>alert(1)</script>,sell,10,110,0,USD,equity,S1,\n",
        "2025-01-02,Alpaca,=HYPERLINK(\"http://x\"),buy,5,10,0,USD,equity,B2,\n",
        "2025-03-03,Alpaca,=HYPERLINK(\"http://x\"),sell,5,12,0,USD,equity,S2,\n",
    ]))
    assert run("ingest", "-q", "t.csv").exit_code == 0
    assert run("audit", "--out", "out").exit_code == 0
    html = (tmp_path / "out" / "report-2025.html").read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for name in ("form8949-2025.csv", "metrics-2025.csv"):
        for row in csv.reader(io.StringIO((tmp_path / "out" / name).read_text())):
            assert not any(cell.startswith(("=", "@", "+")) for cell in row), row
    gains = run("gains", "--format", "csv").stdout
    for row in csv.reader(io.StringIO(gains)):
        assert not any(cell.startswith(("=", "@", "+")) for cell in row), row
    assert "'=HYPERLINK" in gains


def test_out_never_overwrites_a_file_taxlens_did_not_write(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "t.csv", HEADER + "2025-01-02,Alpaca,VTI,buy,1,100,0,USD,etf,B1,\n2025-02-03,Alpaca,VTI,sell,1,90,0,USD,etf,S1,\n")
    assert run("ingest", "-q", "t.csv").exit_code == 0
    (tmp_path / "out").mkdir()
    mine = write(tmp_path, "out/report-2025.html", "my own notes")
    result = run("audit", "--out", "out")
    assert result.exit_code == 1 and "not overwriting out/report-2025.html: taxlens did not write it" in result.stderr
    assert mine.read_text() == "my own notes" and not (tmp_path / "out" / "form8949-2025.csv").exists()  # nothing half-written
    assert run("audit", "--out", "out", "--force").exit_code == 0
    assert run("audit", "--out", "out").exit_code == 0  # its own files: rewritten freely
    (tmp_path / "out" / "form8949-2025.csv").write_text("edited by hand")
    assert run("audit", "--out", "out").exit_code == 1
    assert run("report", "--format", "json", "-o", "t.csv").exit_code == 1  # the export itself, never clobbered


def test_report_files_written_before_a_failure_stay_taxlens_own(tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The audit makes each report file as it writes it (the Form 8949 CSV and the TXF are
    large), so one that fails leaves those before it written, and nothing of itself; the
    manifest still lists them, so the next run rewrites them without --force."""
    import taxlens.cli

    write(tmp_path, "t.csv", HEADER + "2025-01-02,Alpaca,VTI,buy,1,100,0,USD,etf,B1,\n2025-02-03,Alpaca,VTI,sell,1,90,0,USD,etf,S1,\n")
    assert run("ingest", "-q", "t.csv").exit_code == 0
    rendered = taxlens.cli._render

    def failing(a, fmt, out, **options):  # type: ignore[no-untyped-def]
        if fmt == "txf":
            out.write("V042\n")  # part written, then
            raise RuntimeError("disk full")
        rendered(a, fmt, out, **options)

    monkeypatch.setattr(taxlens.cli, "_render", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        run("audit", "--out", "out")
    # The TXF failed half-way: no part of it is left, and the manifest lists the two files written.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".taxlens-written", "form8949-2025.csv", "report-2025.html"]
    assert sorted(json.loads((tmp_path / "out" / ".taxlens-written").read_text())) == ["form8949-2025.csv", "report-2025.html"]
    monkeypatch.setattr(taxlens.cli, "_render", rendered)
    assert run("audit", "--out", "out").exit_code == 0


# -- upgrades --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_a_database_from_an_earlier_schema_is_migrated_on_open(tmp_path: Path, version: int) -> None:
    """tests/golden/db/schemaN.duckdb: a database as schema N wrote it (two trades of VTI)."""
    db = tmp_path / "old.duckdb"
    shutil.copy(ROOT / "tests" / "golden" / "db" / f"schema{version}.duckdb", db)
    with taxlens.open_book(db, taxlens.Config(), read_only=True) as book:  # even a reading command upgrades it
        assert book.store.schema_version() == migrations()[-1][0]
        assert book.trades().height == 2
        sold = book.gains().row(0, named=True)
        assert (sold["quantity"], sold["proceeds"], sold["cost_basis"]) == (4, 360, 400)


def test_a_database_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.duckdb"
    Store(db).close()
    with duckdb.connect(str(db)) as con:
        con.execute("INSERT INTO _taxlens_migrations VALUES (999, 'future', now())")
    with pytest.raises(taxlens.errors.StoreError, match="newer than this taxlens understands"):
        Store(db)


# -- config ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[accounts."Schwab IRA"]\ntype = "roth"\n', r"taxlens.toml:2: accounts.Schwab IRA.type: Input should be 'taxable'"),
        ("[lots]\nmethod = \"fifo\"\ncolour = 3\n", r"taxlens.toml:3: lots.colour: Extra inputs are not permitted"),
        ("[tax]\nother_income = \"lots\"\n", r"taxlens.toml:2: tax.other_income: "),
        ("timezone = \"Mars/Olympus\"\n", r"taxlens.toml:1: timezone: Value error, unknown time zone 'Mars/Olympus'"),
        ("[wash_sales]\ngroups = { a = [\"SPY\"], b = [\"SPY\"] }\n", r"taxlens.toml:2: wash_sales.groups: Value error, symbol 'SPY' is in groups"),
        # A TOML syntax error too is placed first, as every other message: tomllib ends it with
        # "(at line 1, column 6)".
        ("[lots\nmethod = 1\n", r"^.*taxlens\.toml:1: Expected '\]' at the end of a table declaration \(column 6\)$"),
        ("[tax]\nother_income = \n", r"^.*taxlens\.toml:2: Invalid value \(column 16\)$"),
    ],
)
def test_config_errors_name_the_key_and_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, "taxlens.toml", text))
