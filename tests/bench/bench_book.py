"""End-to-end booking benchmark: `taxlens ingest` + `taxlens gains` against a plain Python FIFO.

For each N, generates (once, cached in bench-data/) a generic CSV of N trades over 2024-2025:
4 accounts x 50 symbols, Zipf-skewed symbols, ~60 % buys, sells never exceeding the holding
(~30 % of sells close the position), 6-decimal quantities, a price random walk per symbol, fees
0 or max(1, 0.05 % of notional). Then times, each as its own fresh process (wall time, and peak
RSS from /usr/bin/time):

  taxlens   `python -m taxlens --db X ingest -q FILE`, then `... gains --format csv > /dev/null`
  baseline  the typical existing-tool shape: stdlib csv, Decimal, a deque of lots per position,
            FIFO, the same CSV columns to /dev/null (always FIFO, whatever --method says)
  floor     DuckDB alone doing only the storage the contract asks for, with no booking and no
            checks: process 1 applies taxlens' migrations and inserts the CSV into `trades`
            (a 64-bit hash as identity, line numbers); process 2 inserts one lot per buy and one
            disposal per sell, in taxlens' own tables, and COPYs the gains columns to stdout.
            What taxlens cannot beat while it keeps every trade, lot and disposal in DuckDB
            (--no-floor skips it)

Not part of the test run; no assertions.

    python tests/bench/bench_book.py                          # N = 100,000 and 1,000,000
    python tests/bench/bench_book.py --sizes 10000000 --repeat 3
    python tests/bench/bench_book.py --sizes 100000 --method hifo
    python tests/bench/bench_book.py --no-wash            # booking alone, as the baseline does
    python tests/bench/bench_book.py --sizes 10000000 --no-baseline   # 2 minutes fewer a run
    python tests/bench/bench_book.py --sizes 1000000 --no-baseline --no-wash --repeat 3  # the README's

Past a million trades taxlens books a chunk of symbols at a time (TAXLENS_CHUNK_TRADES); the
10M runs measure that path.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

DATA = Path(__file__).resolve().parents[2] / "bench-data"
ACCOUNTS = ["Alpaca", "IBKR", "Schwab IRA", "Coinbase"]
SYMBOLS = [f"SYM{i:02d}" for i in range(50)]
P_BUY = 0.46  # before the fix-up that turns sells of an empty position into buys: ~60 % buys after it


def _position(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sides (True = buy) and quantities in micro-units for one position's n trades, in time order,
    never selling more than is held: partial sell k (counted from the last close) sells
    f / (k (k+1)) of what was bought since that close, so partial sells together stay below it
    (sum of 1/(k(k+1)) < 1); a closing sell sells exactly what is left."""
    idx = np.arange(n)
    buy = rng.random(n) < P_BUY
    buy[0] = True
    close = ~buy & (rng.random(n) < 0.3)

    def before(mask: np.ndarray) -> np.ndarray:  # index of the last True strictly before each row, or -1
        return np.concatenate([[-1], np.maximum.accumulate(np.where(mask, idx, -1))[:-1]])

    empty = ~buy & (before(buy) < before(close))  # a sell with no buy since the last close
    buy |= empty
    close &= ~empty
    whole = rng.integers(1, 201, n) * 1_000_000
    frac = np.maximum(1, np.round(rng.lognormal(1.0, 1.0, n) * 1e6)).astype(np.int64)
    qty = np.where(rng.random(n) < 0.5, whole, frac)
    qty[~buy] = 0
    last_close = before(close)
    bought = np.cumsum(qty)
    since = bought - np.where(last_close >= 0, bought[np.maximum(last_close, 0)], 0)
    sells = np.cumsum(~buy)
    k: np.ndarray = sells - np.where(last_close >= 0, sells[np.maximum(last_close, 0)], 0)
    partial = ~buy & ~close
    share = rng.uniform(0.1, 0.95, n) / np.maximum(k * (k + 1), 1)
    qty = np.where(partial, np.floor(share * since).astype(np.int64), qty)
    tiny = partial & (qty == 0)  # too small to sell: make it a buy (only adds to what is held)
    buy |= tiny
    qty[tiny] = whole[tiny]
    net = np.where(buy, qty, -qty)
    net[close] = 0
    running = np.cumsum(net)
    qty[close] = running[close] - np.where(last_close >= 0, running[np.maximum(last_close, 0)], 0)[close]
    net[close] = -qty[close]
    if (np.cumsum(net) < 0).any() or (qty <= 0).any():  # a generator bug, not a benchmark result
        raise RuntimeError("generator oversold")
    return buy, qty


def generate(path: Path, n: int, seed: int = 11) -> None:
    rng = np.random.default_rng(seed)
    days, session = 731, 23_400  # 2024-01-01 .. 2025-12-31, 09:30-16:00 at -05:00
    slot = np.sort(rng.integers(0, days * session - n + 1, n)) + np.arange(n)  # distinct, sorted
    local = np.datetime64("2024-01-01T09:30:00") + (slot // session).astype("timedelta64[D]") + (slot % session).astype("timedelta64[s]")
    weights = 1 / np.arange(1, 51) ** 0.8
    symbol = rng.choice(50, n, p=weights / weights.sum())
    position = rng.integers(0, 4, n) * 50 + symbol
    order = np.argsort(position, kind="stable")  # each position's rows, still in time order
    bounds = np.cumsum(np.bincount(position, minlength=200))
    buy, qty = np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64)
    for rows in np.split(order, bounds[:-1]):
        if rows.size:
            buy[rows], qty[rows] = _position(rng, rows.size)
    cents = np.zeros(n, dtype=np.int64)
    for s in range(50):  # price: a log random walk per symbol, in cents
        rows = np.flatnonzero(symbol == s)
        walk = np.cumsum(rng.normal(0, 0.6 / np.sqrt(max(rows.size, 1)), rows.size))
        cents[rows] = np.maximum(1, np.round(rng.uniform(2_000, 50_000) * np.exp(walk)))
    notional = qty / 1e6 * cents  # in cents
    fee = np.where(rng.random(n) < 0.5, 0, np.maximum(100, np.round(notional * 0.0005))).astype(np.int64)

    def decimal(col: str, units: int, places: int) -> pl.Expr:
        c = pl.col(col)
        return (c // units).cast(pl.String) + "." + (c % units).cast(pl.String).str.zfill(places)

    frame = pl.DataFrame({
        "date": np.datetime_as_string(local, unit="s"), "account": np.array(ACCOUNTS)[position // 50],
        "symbol": np.array(SYMBOLS)[symbol], "buy": buy, "q": qty, "p": cents, "f": fee,
    }).select(
        pl.col("date") + "-05:00", "account", "symbol",
        pl.when(pl.col("buy")).then(pl.lit("buy")).otherwise(pl.lit("sell")).alias("side"),
        decimal("q", 1_000_000, 6).alias("quantity"), decimal("p", 100, 2).alias("price"),
        decimal("f", 100, 2).alias("fee"), pl.lit("USD").alias("currency"), pl.lit("equity").alias("asset_class"),
        ("T" + pl.int_range(0, n).cast(pl.String)).alias("trade_id"), pl.lit(None, pl.String).alias("lot_id"),
    )
    frame.write_csv(path)


BASELINE = r'''
import csv, sys, calendar, datetime as dt
from collections import defaultdict, deque
from decimal import ROUND_HALF_UP, Decimal
CENT = Decimal("0.01")

def anniversary(d):
    last = calendar.monthrange(d.year + 1, d.month)[1]
    if d.day == calendar.monthrange(d.year, d.month)[1]:
        return dt.date(d.year + 1, d.month, last)
    return dt.date(d.year + 1, d.month, min(d.day, last))

def share(total, qty, start, end):  # pro rata, the last slice taking the remainder
    at = lambda x: total if x == qty else total * x / qty
    return at(end) - at(start)

out = csv.writer(open("/dev/null", "w"), lineterminator="\n")
out.writerow(["account", "symbol", "quantity", "acquired", "disposed", "proceeds", "cost_basis",
              "adjustment_code", "adjustment", "gain", "term", "method", "sell_trade_id", "lot_id"])
lots = defaultdict(deque)  # (account, symbol) -> [quantity, used, cost, acquired, lot_id]
rows = 0
with open(sys.argv[1], newline="") as f:
    reader = csv.reader(f)
    next(reader)
    for date, account, symbol, side, quantity, price, fee, *_, trade_id, lot_id in reader:
        qty, when = Decimal(quantity), dt.date.fromisoformat(date[:10])
        open_lots = lots[account, symbol]
        if side == "buy":
            open_lots.append([qty, Decimal(0), qty * Decimal(price) + Decimal(fee), when, trade_id])
            continue
        proceeds, sold = qty * Decimal(price) - Decimal(fee), Decimal(0)
        while sold < qty and open_lots:
            lot = open_lots[0]
            take = min(qty - sold, lot[0] - lot[1])
            basis = share(lot[2], lot[0], lot[1], lot[1] + take).quantize(CENT, ROUND_HALF_UP)
            gets = share(proceeds, qty, sold, sold + take).quantize(CENT, ROUND_HALF_UP)
            term = "long" if when > anniversary(lot[3]) else "short"
            out.writerow([account, symbol, take, lot[3], when, gets, basis, "", "0.00", gets - basis,
                          term, "fifo", trade_id, lot[4]])
            rows += 1
            lot[1] += take
            sold += take
            if lot[1] == lot[0]:
                open_lots.popleft()
print(f"{rows} lot slices sold", file=sys.stderr)
'''


MIGRATIONS = Path(__file__).resolve().parents[2] / "taxlens" / "migrations"

FLOOR_INGEST = r'''
import sys, duckdb
from pathlib import Path
con = duckdb.connect(sys.argv[1])
for sql in sorted(Path(sys.argv[3]).glob("*.sql")):
    con.execute(sql.read_text())
con.execute("BEGIN")
con.execute(f"""
INSERT INTO trades (trade_id, file_sha256, line, adapter, account, symbol, asset_class, action, ts, trade_date,
                    quantity, price, fee, fee_currency, currency, amount, broker_trade_id, order_id, lot_id, note)
SELECT hash(date, account, symbol, side, quantity, price, fee, trade_id)::UHUGEINT, 'sha', (row_number() OVER ())::INTEGER + 1,
       'generic', account, symbol, asset_class, side, date::TIMESTAMPTZ, date::DATE, quantity, price, fee, currency, currency,
       NULL, trade_id, NULL, lot_id, NULL
FROM read_csv('{sys.argv[2]}', types={{'quantity': 'DECIMAL(38,18)', 'price': 'DECIMAL(38,18)', 'fee': 'DECIMAL(38,18)',
                                     'date': 'VARCHAR', 'lot_id': 'VARCHAR'}})""")
con.execute("COMMIT")
con.close()
'''

FLOOR_GAINS = r'''
import sys, duckdb
con = duckdb.connect(sys.argv[1])
value = "(quantity::DECIMAL(38,6) * price::DECIMAL(38,2))"
con.execute("BEGIN")
con.execute(f"""INSERT INTO lots SELECT 'account', account, symbol, broker_trade_id, trade_date, trade_date, quantity,
    {value} + fee, {value} + fee, quantity, {value} + fee, currency, line * 4, 'file.csv:' || line, {value} + fee
    FROM trades WHERE action = 'buy'""")
con.execute(f"""INSERT INTO disposals SELECT 'account', account, symbol, quantity, trade_date, trade_date, {value} - fee,
    {value}, NULL, 0, -fee, 'short', 'fifo', broker_trade_id, broker_trade_id, currency, line * 4, 'file.csv:' || line,
    line * 4, trade_date, 0 FROM trades WHERE action = 'sell'""")
con.execute("COMMIT")
con.execute("""COPY (SELECT account, symbol, quantity, acquired, disposed, round(proceeds, 2), round(cost_basis, 2),
    adjustment_code, round(adjustment, 2), round(gain, 2), term, method, sell_trade_id, lot_id FROM disposals ORDER BY seq)
    TO '/dev/stdout' (HEADER)""")
con.close()
'''


def run(argv: list[str], cwd: str) -> tuple[float, float, str]:
    """Run argv as a process under /usr/bin/time (stdout to /dev/null): wall seconds, peak RSS
    in MB, its stderr. (Not getrusage: a child's ru_maxrss starts at the forking parent's size.)"""
    with tempfile.NamedTemporaryFile("w+") as rss, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *argv], cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        wall = time.perf_counter() - t0
        err.seek(0)
        text = err.read()
        peak = int(rss.read().split()[-1]) / 1024
    if proc.returncode != 0:
        print(f"FAILED (exit {proc.returncode}): {' '.join(argv)}\n{text[-2000:]}", file=sys.stderr)
    return wall, peak, text


def slices(stderr: str) -> int | None:
    found = re.search(r"(\d+) lot slices sold", stderr)
    return int(found.group(1)) if found else None


def bench(n: int, repeat: int, method: str, wash: bool = True, baseline: bool = True, floor: bool = True) -> None:
    DATA.mkdir(exist_ok=True)
    csv_path = DATA / f"book_{n}.csv"
    if not csv_path.exists():
        t0 = time.perf_counter()
        generate(csv_path, n)
        print(f"generated {csv_path} ({csv_path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
    paths = ["taxlens ingest", f"taxlens gains --method {method}", "taxlens ingest + gains"]
    paths += ["baseline (FIFO)"] if baseline else []
    paths += ["floor: ingest", "floor: gains", "floor: ingest + gains"] if floor else []
    walls: dict[str, list[float]] = {p: [] for p in paths}
    peaks: dict[str, float] = dict.fromkeys(paths, 0.0)
    counts: dict[str, int | None] = {}
    problems: list[str] = []
    py, load = sys.executable, os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "baseline.py"
        script.write_text(BASELINE)
        # taxlens reads ./taxlens.toml: with --no-wash, book without the wash-sale pass (the
        # baseline has none), to see booking alone.
        (Path(tmp) / "taxlens.toml").write_text("" if wash else "[wash_sales]\napply = false\n")
        for i in range(repeat):
            db = str(Path(tmp) / f"run{i}.duckdb")
            w1, r1, ingest_err = run([py, "-m", "taxlens", "--db", db, "ingest", "-q", str(csv_path)], tmp)
            w2, r2, err = run([py, "-m", "taxlens", "--db", db, "gains", "--format", "csv", "--method", method], tmp)
            w3, r3, base_err = run([py, str(script), str(csv_path)], tmp) if baseline else (0.0, 0.0, "")
            measured = [(w1, r1), (w2, r2), (w1 + w2, max(r1, r2))] + ([(w3, r3)] if baseline else [])
            if floor:
                for name, code in (("floor_ingest.py", FLOOR_INGEST), ("floor_gains.py", FLOOR_GAINS)):
                    (Path(tmp) / name).write_text(code)
                fdb = str(Path(tmp) / f"floor{i}.duckdb")
                f1, q1, _ = run([py, "floor_ingest.py", fdb, str(csv_path), str(MIGRATIONS)], tmp)
                f2, q2, _ = run([py, "floor_gains.py", fdb], tmp)
                measured += [(f1, q1), (f2, q2), (f1 + f2, max(q1, q2))]
            for path, (wall, rss) in zip(paths, measured, strict=True):
                walls[path].append(wall)
                peaks[path] = max(peaks[path], rss)
            counts = {"taxlens": slices(err), "baseline": slices(base_err)}
            problems = [line for line in (ingest_err + err).splitlines() if "lot slices sold" not in line]
            for leftover in [*Path(tmp).glob(f"run{i}.duckdb*"), *Path(tmp).glob(f"floor{i}.duckdb*")]:
                leftover.unlink()
    base = statistics.median(walls["baseline (FIFO)"]) if baseline else None
    print(f"\nN = {n:,} trades, method {method}, wash sales {'on' if wash else 'off'}, median of {repeat} (min-max), "
          f"{os.cpu_count()} cores, load average {load:.1f} at the start")
    print(f"{'path':<30} {'seconds':>8} {'min-max':>13} {'peak RSS MB':>12} {'trades/s':>11} {'baseline/this':>14} {'this/floor':>11}")
    for k, path in enumerate(paths):
        med = statistics.median(walls[path])
        ratio = f"{base / med:14.2f}" if base is not None and k < 3 else f"{'':>14}"
        # taxlens' three rows against the floor's three, in the same order
        over = f"{med / statistics.median(walls[paths[-3 + k]]):11.2f}" if floor and k < 3 else ""
        print(f"{path:<30} {med:8.2f} {min(walls[path]):6.2f}-{max(walls[path]):<6.2f} {peaks[path]:12.0f} {n / med:11,.0f} {ratio} {over}")
    print(f"disposal rows: taxlens {counts['taxlens']}, baseline {counts['baseline'] if baseline else '(not run)'}")
    if baseline and method != "fifo":
        print("baseline is FIFO (counts are not comparable)")
    elif baseline and (counts["taxlens"] is None or counts["taxlens"] != counts["baseline"]):
        print(f"WARNING: disposal rows differ: taxlens {counts['taxlens']} vs baseline {counts['baseline']}")
    if problems:
        print(f"WARNING: taxlens ingest -q / gains printed {len(problems)} other stderr lines, first: {problems[0][:200]}")


def compile_taxlens() -> None:
    """Write taxlens' bytecode before timing, as ``pip install`` does for a user: a process that
    compiles every module from source first (PYTHONDONTWRITEBYTECODE set, or an editable
    install's first run) spends about 0.1 s more starting."""
    import taxlens

    compileall.compile_dir(Path(taxlens.__file__).parent, quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated trade counts")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--method", default="fifo", choices=["fifo", "lifo", "hifo", "taxmin"])
    parser.add_argument("--no-wash", action="store_true", help="book without the wash-sale pass ([wash_sales] apply = false)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain-Python loop (121 s at 10M)")
    parser.add_argument("--no-floor", action="store_true", help="skip DuckDB's storage floor")
    args = parser.parse_args()
    compile_taxlens()
    for n in (int(s) for s in args.sizes.split(",")):
        bench(n, args.repeat, args.method, wash=not args.no_wash, baseline=not args.no_baseline, floor=not args.no_floor)


if __name__ == "__main__":
    main()
