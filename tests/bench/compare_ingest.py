"""Check that two versions of taxlens store exactly the same rows for the same files.

Ingests FILES in order with the taxlens at --old (a copy of the tree before a change, e.g.
``cp -r taxlens /tmp/old/``) and with this tree, each into its own new database, each command
its own process, then compares the stored tables: ``trades`` row for row in every column (ids,
twin numbering, file and line included; the order of rows aside), ``files`` and ``accounts``.
Exits 1 on any difference. Extra ingest options go after ``--``. Not part of the test run.

    python tests/bench/compare_ingest.py --old /tmp/old bench-data/book_100000.csv
    python tests/bench/compare_ingest.py --old /tmp/old a.csv b.csv -- --skip-bad-rows
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = (
    "trade_id, file_sha256, line, adapter, account, symbol, asset_class, action, ts, trade_date, "
    "quantity, price, fee, fee_currency, currency, amount, broker_trade_id, order_id, lot_id, note"
)


def ingest(tree: Path, db: Path, files: list[str], options: list[str], cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    for f in files:
        # The working directory must not hold a taxlens package: the tree is the one imported.
        subprocess.run([sys.executable, "-m", "taxlens", "--db", str(db), "ingest", "-q", f, *options],
                       cwd=cwd, env=env, check=False)


def compare(old: Path, new: Path) -> bool:
    con = duckdb.connect()
    con.execute(f"ATTACH '{old}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{new}' AS b (READ_ONLY)")

    def one(sql: str) -> object:
        return con.sql(sql).fetchall()[0][0]

    rows = one("SELECT count(*) FROM a.trades"), one("SELECT count(*) FROM b.trades")
    only_old = one(f"SELECT count(*) FROM (SELECT {COLUMNS} FROM a.trades EXCEPT ALL SELECT {COLUMNS} FROM b.trades)")
    only_new = one(f"SELECT count(*) FROM (SELECT {COLUMNS} FROM b.trades EXCEPT ALL SELECT {COLUMNS} FROM a.trades)")
    types = [con.sql(f"SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = '{d}' "
                     "AND table_name = 'trades' ORDER BY column_index").fetchall() for d in "ab"]
    files = [con.sql(f"SELECT * EXCLUDE (imported_at) FROM {d}.files ORDER BY sha256").fetchall() for d in "ab"]
    accounts = [con.sql(f"SELECT * FROM {d}.accounts ORDER BY account").fetchall() for d in "ab"]
    twins = one("SELECT count(*) FROM b.trades WHERE (account, symbol, action, ts, trade_date, quantity, price, fee) IN "
                "(SELECT (account, symbol, action, ts, trade_date, quantity, price, fee) FROM b.trades GROUP BY ALL HAVING count(*) > 1)")
    same = rows[0] == rows[1] and only_old == only_new == 0 and types[0] == types[1] and files[0] == files[1] and accounts[0] == accounts[1]
    print(f"{'IDENTICAL' if same else 'DIFFERENT'}: trades {rows[0]:,} (old) and {rows[1]:,} (new), {only_old} only in old, "
          f"{only_new} only in new; column types {'same' if types[0] == types[1] else 'differ'}; files {'same' if files[0] == files[1] else 'differ'}; "
          f"accounts {'same' if accounts[0] == accounts[1] else 'differ'}; {twins:,} rows look like another (twins)")
    return same


def main() -> None:
    argv = sys.argv[1:]
    options = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", type=Path, required=True, help="a directory holding the old taxlens package")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    files = [str(Path(f).resolve()) for f in args.files]
    with tempfile.TemporaryDirectory() as tmp:
        old, new = Path(tmp, "old.duckdb"), Path(tmp, "new.duckdb")
        ingest(args.old.resolve(), old, files, options, Path(tmp))
        ingest(ROOT, new, files, options, Path(tmp))
        sys.exit(0 if compare(old, new) else 1)


if __name__ == "__main__":
    main()
