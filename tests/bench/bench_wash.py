"""Wash-sale pass benchmark: the pass alone, on a busy rebalancer's history, against a
straightforward scan.

The history is bench_book.py's (cached in bench-data/): 4 accounts x 50 symbols, Zipf-skewed,
over 2024-2025, all in one household. It is dense (about 1,000 buys per symbol-month at 1M
trades), so nearly every loss has replacements in its window and chains run long: the worst
case for the pass. Each size is booked FIFO first (not timed), then timed in this process:

  taxlens   ``lots.wash.apply_wash_sales`` as it runs by default: the sequential pass in the
            compiled core (taxlens/lots/_washcore.c; union-find skip over used-up lots, no pair
            listed), the frames around it in polars
  python    the same with ``core="python"``: the pure-Python pass, the reference (--python)
  baseline  the Python pass with the textbook inner loop: for every loss, walk every acquisition
            of the group in its 61-day window (the (sale, buy) pairs a range join would list),
            skipping used-up ones one by one; run only where it finishes in minutes

Prints the pass time, the peak RSS of the process, and the counts that drive the work (loss
slices washed, matches, lot rows after cutting). Not part of the test run; no assertions.

    python tests/bench/bench_wash.py                      # 100,000 and 1,000,000 trades
    python tests/bench/bench_wash.py --sizes 100000 --python --baseline
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

import taxlens.lots.wash as wash  # noqa: E402
from taxlens.lots.book import settings_from_config  # noqa: E402
from taxlens.lots.events import events_from_trades  # noqa: E402
from taxlens.lots.fifo import book_fifo  # noqa: E402
from tests.bench.bench_book import DATA, generate  # noqa: E402


class ScanGroup(wash._Group):
    """The textbook loop: every acquisition in the window is looked at, used up or not."""

    def match(self, j, sold_lot, q, loss, first, stop, applies, held):  # type: ignore[no-untyped-def]
        total = matched = 0
        need = q
        for i in range(first, stop):
            if need <= 0:
                break
            k = self.lots[i]
            start = max(self.free[k], self.sold[k])
            if start >= self.qty[k] or k == sold_lot:
                continue
            m = min(need, self.qty[k] - start)
            amount = wash._part(loss, q, matched, matched + m)
            matched += m
            need -= m
            self.free[k] = start + m
            if applies:
                total += amount
                if self.taxable[k]:
                    if self.segs[k] is None:
                        self.segs[k] = []
                    self.segs[k].append((start, start + m, amount, held))
            self.w.extend((j, k, start, m, amount, held))
        return total


def booked(n: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Events, lots and disposals of the cached N-trade history (FIFO, no wash pass)."""
    path = DATA / f"book_{n}.csv"
    if not path.exists():
        DATA.mkdir(exist_ok=True)
        generate(path, n)
    import taxlens

    db = DATA / f"wash_{n}.duckdb"
    if not db.exists():
        subprocess.run([sys.executable, "-m", "taxlens", "--db", str(db), "ingest", "-q", str(path)], check=True)
    with taxlens.open_book(db, taxlens.Config()) as book:
        trades = book.store.trades()
    settings = settings_from_config(taxlens.Config())
    events, _ = events_from_trades(trades, settings)
    result = book_fifo(events)
    return events, result.lots, result.disposals


def run(n: int, python: bool, baseline: bool) -> None:
    events, lots, disposals = booked(n)
    settings = settings_from_config(taxlens_config()).wash
    timings = {}
    for name in ("taxlens", *(("python",) if python else ()), *(("baseline",) if baseline else ())):
        wash._Group = ScanGroup if name == "baseline" else ORIGINAL  # type: ignore[misc]
        t = time.perf_counter()
        result = wash.apply_wash_sales(lots, disposals, events, frozenset(), settings, core=None if name == "taxlens" else "python")
        timings[name] = time.perf_counter() - t
        washed = result.disposals.filter(pl.col("adjustment") > 0).height
        print(f"{n:>10,} trades  {name:<8}  pass {timings[name]:6.2f} s   loss slices washed {washed:,}   "
              f"matches {result.washes.height:,}   lots {lots.height:,} -> {result.lots.height:,}   "
              f"disallowed {result.washes['disallowed'].sum():.2f}   ({result.core} core)", flush=True)
    wash._Group = ORIGINAL  # type: ignore[misc]
    for name in timings.keys() - {"taxlens"}:
        print(f"{'':>10}         {name} / taxlens = {timings[name] / timings['taxlens']:.1f}x")
    print(f"{'':>10}         peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


def taxlens_config():  # type: ignore[no-untyped-def]
    import taxlens

    return taxlens.Config()


ORIGINAL = wash._Group


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated trade counts")
    parser.add_argument("--python", action="store_true", help="also time the pure-Python pass")
    parser.add_argument("--baseline", action="store_true", help="also time the textbook scan (in the Python pass)")
    args = parser.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        run(n, args.python, args.baseline)


if __name__ == "__main__":
    main()
