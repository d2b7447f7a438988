"""Simulator benchmark: a 100-policy grid over daily prices of 20 symbols, one year and ten.

Prices are a seeded random walk (weekdays); targets are equal weights; the start is $1,000,000
in cash; each policy is simulated, booked (lots, wash sales) and taxed exactly as `taxlens
simulate` does. Prints the wall time of the grid, per policy, and the peak RSS, beside a
straightforward baseline: the same grid with the textbook per-day loop over Python lists
(no numpy) for the decisions, booking excluded (so the ratio is the decision loop's alone).
Not part of the test run; no assertions.

    python tests/bench/bench_simulate.py              # 1 and 10 years
    python tests/bench/bench_simulate.py --years 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from taxlens.simulate.engine import Frictions
from taxlens.simulate.prices import Prices
from taxlens.simulate.sweep import compare, grid
from taxlens.tax.federal import Profile

SYMBOLS = [f"S{i:02d}" for i in range(20)]


def prices(years: int, seed: int = 7) -> Prices:
    rng = np.random.default_rng(seed)
    dates, day = [], dt.date(2026 - years, 1, 2)
    end = dt.date(2025, 12, 31)
    while day <= end:
        if day.weekday() < 5:
            dates.append(day)
        day += dt.timedelta(days=1)
    steps = rng.normal(0.0003, 0.012, size=(len(dates), len(SYMBOLS)))
    steps[0] = 0
    close = 50 * np.exp(np.cumsum(steps, axis=0))
    return Prices(dates, SYMBOLS, close, np.zeros_like(close), np.ones_like(close), "random walk")


def policies():  # type: ignore[no-untyped-def]
    """100: 6 bands × 4 calendars × 2 lot rules = 48, × 2 destinations = 96, + 5/25 × 2 + never + 1."""
    ps = grid(bands=[0.01, 0.02, 0.03, 0.05, 0.075, 0.10], relatives=[], hybrid=True, calendars=["D", "W", "M", "Q"],
              lots=["fifo", "taxmin"], to=["target", "edge"], defer=[0], cooldown=0, wash_aware=False, placements=["taxable"])
    return ps[:100]


def baseline(p: Prices, n_policies: int) -> float:
    """The decision loop on Python lists: value, weigh, check the band, trade to target."""
    rows = p.close.tolist()
    t = time.perf_counter()
    for k in range(n_policies):
        band = 0.01 + 0.001 * k
        q = [1_000_000 / len(SYMBOLS) / rows[0][j] for j in range(len(SYMBOLS))]
        for row in rows:
            values = [q[j] * row[j] for j in range(len(SYMBOLS))]
            total = sum(values)
            if any(abs(v / total - 0.05) >= band for v in values):
                q = [total * 0.05 / row[j] for j in range(len(SYMBOLS))]
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--years", default="1,10")
    args = parser.parse_args()
    targets = dict.fromkeys(SYMBOLS, 1 / len(SYMBOLS))
    profile = Profile(year=2025, other_income=Decimal(150_000))
    for years in (int(y) for y in args.years.split(",")):
        p = prices(years)
        ps = policies()
        t = time.perf_counter()
        _metrics, runs = compare(ps, p, targets, profile, cash=1_000_000.0, frictions=Frictions(commission=Decimal(1)))
        wall = time.perf_counter() - t
        trades = sum(len(r.trades) for r in runs.values())
        base = baseline(p, len(ps))
        print(f"{years:>2} year(s), {len(p.dates):,} dates x {len(SYMBOLS)} symbols, {len(ps)} policies: {wall:6.2f} s "
              f"({wall / len(ps) * 1000:.0f} ms a policy, {trades:,} simulated trades booked); "
              f"baseline decision loop (lists) {base:.2f} s; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB",
              flush=True)


if __name__ == "__main__":
    main()
