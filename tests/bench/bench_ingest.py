"""Ingest benchmark: a generated generic CSV into a fresh taxlens database.

Prints rows/s for `taxlens ingest` (the library call a user's command makes, and the whole
command as a process) beside the floor: DuckDB's own ``read_csv`` of the same file into a
table in a database file. Not part of the test run; no assertions.

    python tests/bench/bench_ingest.py               # 1,000,000 rows
    python tests/bench/bench_ingest.py --rows 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_book import compile_taxlens  # a sibling script: python tests/bench/bench_ingest.py

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "bench-data"


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Write ``rows`` trades in the generic CSV layout: 4 accounts x 50 symbols, timestamps
    through 2025 with offsets, fractional quantities, prices with cents, some fees and ids."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2025-01-02T14:30:00")
    seconds = np.sort(rng.integers(0, 360 * 86400, rows))
    ts = (start + seconds.astype("timedelta64[s]")).astype(str)
    accounts = np.array(["Alpaca", "IBKR", "Schwab IRA", "Coinbase"])[rng.integers(0, 4, rows)]
    symbols = np.array([f"SYM{i:02d}" for i in range(50)])[rng.zipf(1.8, rows) % 50]
    sides = np.where(rng.random(rows) < 0.6, "buy", "sell")
    qty = np.round(rng.lognormal(2, 1, rows), 6)
    price = np.round(rng.uniform(5, 900, rows), 2)
    fee = np.where(rng.random(rows) < 0.3, np.round(rng.uniform(0, 2, rows), 2), 0.0)
    trade_ids = np.char.add("T", np.arange(rows).astype(str))
    with path.open("w") as out:
        out.write("date,account,symbol,side,quantity,price,fee,currency,asset_class,trade_id,lot_id\n")
        chunk = 200_000
        for lo in range(0, rows, chunk):
            hi = min(rows, lo + chunk)
            lines = [
                f"{t}-05:00,{a},{s},{d},{q:.6f},{p:.2f},{f:.2f},USD,equity,{i},"
                for t, a, s, d, q, p, f, i in zip(
                    ts[lo:hi], accounts[lo:hi], symbols[lo:hi], sides[lo:hi], qty[lo:hi],
                    price[lo:hi], fee[lo:hi], trade_ids[lo:hi], strict=True,
                )
            ]
            out.write("\n".join(lines) + "\n")


def floor(csv_path: Path, db_path: Path) -> float:
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect(str(db_path))
    con.execute(f"CREATE TABLE raw AS SELECT * FROM read_csv('{csv_path}')")
    con.execute("CHECKPOINT")
    con.close()
    return time.perf_counter() - t0


def library(csv_path: Path, db_path: Path) -> float:
    import taxlens

    t0 = time.perf_counter()
    with taxlens.open_book(db_path) as book:
        report = book.ingest([csv_path])
        assert report.ok, report
    return time.perf_counter() - t0


def process(csv_path: Path, db_path: Path) -> tuple[float, float]:
    """Wall time and peak RSS (MB) of `taxlens ingest` as its own process.

    Peak RSS comes from /usr/bin/time: getrusage(RUSAGE_CHILDREN) would count the pages the
    child shared with this (large) benchmark process at fork time."""
    argv = [sys.executable, "-m", "taxlens", "--db", str(db_path), "ingest", "-q", str(csv_path)]
    with tempfile.NamedTemporaryFile("r") as rss:
        timed = ["/usr/bin/time", "-f", "%M", "-o", rss.name, *argv] if os.path.exists("/usr/bin/time") else argv
        t0 = time.perf_counter()
        subprocess.run(timed, check=True)
        wall = time.perf_counter() - t0
        text = rss.read().strip().splitlines()
    peak = int(text[-1]) / 1024 if text and text[-1].isdigit() else resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    compile_taxlens()

    DATA.mkdir(exist_ok=True)
    csv_path = DATA / f"generic_{args.rows}.csv"
    if not csv_path.exists():
        t0 = time.perf_counter()
        generate(csv_path, args.rows)
        print(f"generated {csv_path} ({csv_path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")

    results: dict[str, list[float]] = {"duckdb read_csv (floor)": [], "taxlens ingest (library)": [], "taxlens ingest (process)": []}
    peaks = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for name, fn in (("duckdb read_csv (floor)", floor), ("taxlens ingest (library)", library)):
                db = Path(tmp) / f"{i}-{name.split()[0]}.duckdb"
                results[name].append(fn(csv_path, db))
                os.remove(db)
            wall, peak = process(csv_path, Path(tmp) / f"{i}-proc.duckdb")
            results["taxlens ingest (process)"].append(wall)
            peaks.append(peak)
            os.remove(Path(tmp) / f"{i}-proc.duckdb")

    base = statistics.median(results["duckdb read_csv (floor)"])
    print(f"\n{args.rows:,} rows, median of {args.repeat} (min-max), {os.cpu_count()} cores")
    print(f"{'path':<28} {'seconds':>8} {'min-max':>13} {'rows/s':>11} {'x floor':>8}")
    for name, times in results.items():
        med = statistics.median(times)
        print(f"{name:<28} {med:8.2f} {min(times):6.2f}-{max(times):<6.2f} {args.rows / med:11,.0f} {med / base:8.2f}")
    print(f"peak RSS of the ingest process: {max(peaks):.0f} MB")


if __name__ == "__main__":
    main()
