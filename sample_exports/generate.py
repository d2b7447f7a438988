"""Generate taxlens's synthetic sample exports: Alpaca activities JSON, Coinbase v4 CSV, Schwab CSV.

Everything is made up but shaped like the real exports (see "Supported formats" in the top-level
README). The output depends only on ``SEED``: no clock is read, every collection is iterated
in a fixed order, and each file draws from its own stream ``Random(f"{SEED}/<part>")`` so that
changing one part leaves the others alone. Every money and quantity value is a ``Decimal``.
Floats appear only in the price-path arithmetic and in yes/no probability draws, and prices are
quantized to Decimal cents before anything uses them. (The normal draws call no libm function;
the one ``**`` in the path ramp could only change a price on an exact half-cent tie.)

    python sample_exports/generate.py           # (re)write the files next to this script
    python sample_exports/generate.py --check   # exit 1 if the files on disk differ
    python sample_exports/generate.py --stats   # print trade counts and other facts

Rounding: the cash value of a fill or trade is ``qty * price`` rounded half-up to the cent; an
Alpaca daily FEE is the day's exact regulatory fees rounded *up* to the cent; dividends are
``shares * per_share`` rounded half-up; reinvested shares are ``amount / price`` rounded down to
4 decimals; notional-order quantities are ``notional / price`` rounded down to 9 (Alpaca) or 8
(Coinbase) decimals.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from itertools import pairwise
from pathlib import Path
from random import Random
from zoneinfo import ZoneInfo

SEED = 20250407
HERE = Path(__file__).resolve().parent
NY = ZoneInfo("America/New_York")
CENT, BP, Q8, Q9 = Decimal("0.01"), Decimal("0.0001"), Decimal("1e-8"), Decimal("1e-9")
D0 = Decimal(0)

# Price paths are random walks pinned (within 2%) to these approximate historical levels.
EQUITY_MARKS = [date(2023, 12, 29), date(2024, 6, 28), date(2024, 12, 31), date(2025, 4, 2),
                date(2025, 6, 30), date(2025, 12, 31)]
# symbol: (levels at EQUITY_MARKS, annual vol, market correlation, April-2025 crash beta,
#          target weight, month of its first buy in 2024)
UNIVERSE: dict[str, tuple[tuple[float, ...], float, float, float, str, int]] = {
    "VTI": ((237.2, 265.0, 290.0, 280.0, 305.0, 335.0), 0.16, 0.95, 1.0, "0.20", 1),
    "BND": ((72.7, 72.2, 71.8, 73.0, 72.9, 74.0), 0.06, 0.20, 0.1, "0.15", 1),
    "VXUS": ((57.6, 59.9, 58.6, 64.0, 70.0, 75.0), 0.15, 0.80, 0.9, "0.12", 2),
    "QQQ": ((409.0, 479.0, 511.0, 476.0, 551.0, 615.0), 0.21, 0.90, 1.2, "0.12", 3),
    "GLD": ((190.9, 215.0, 242.0, 290.0, 304.0, 395.0), 0.15, 0.10, -0.2, "0.08", 4),
    "MSFT": ((376.0, 447.0, 421.0, 382.0, 497.0, 485.0), 0.24, 0.70, 1.1, "0.09", 5),
    "AAPL": ((192.5, 210.0, 250.0, 223.0, 205.0, 272.0), 0.26, 0.70, 1.3, "0.09", 6),
    "VNQ": ((88.4, 83.8, 89.0, 90.0, 89.0, 89.0), 0.19, 0.70, 0.9, "0.06", 7),
    "NVDA": ((49.5, 123.5, 134.0, 110.0, 158.0, 187.0), 0.50, 0.60, 1.8, "0.09", 9),
}
SYMBOLS = list(UNIVERSE)
CRYPTO_MARKS = [date(2023, 12, 31), date(2024, 3, 13), date(2024, 12, 31), date(2025, 4, 8),
                date(2025, 10, 6), date(2025, 12, 31)]
CRYPTO: dict[str, tuple[tuple[float, ...], float, float, float]] = {
    "BTC": ((42_280.0, 73_100.0, 93_400.0, 76_300.0, 124_000.0, 87_500.0), 0.50, 0.9, 1.2),
    "ETH": ((2_281.0, 4_000.0, 3_330.0, 1_470.0, 4_500.0, 2_970.0), 0.70, 0.9, 1.8)}
HOLIDAYS = {date(y, m, d) for y, m, d in [  # NYSE closed (2025-01-09: national day of mourning)
    (2024, 1, 1), (2024, 1, 15), (2024, 2, 19), (2024, 3, 29), (2024, 5, 27), (2024, 6, 19),
    (2024, 7, 4), (2024, 9, 2), (2024, 11, 28), (2024, 12, 25), (2025, 1, 1), (2025, 1, 9),
    (2025, 1, 20), (2025, 2, 17), (2025, 4, 18), (2025, 5, 26), (2025, 6, 19), (2025, 7, 4),
    (2025, 9, 1), (2025, 11, 27), (2025, 12, 25)]}
# Market-wide return shocks (times each symbol's crash beta): the April 2025 sell-off.
CRASH = {date(2025, 4, 3): -0.048, date(2025, 4, 4): -0.058, date(2025, 4, 7): -0.004,
         date(2025, 4, 8): -0.016, date(2025, 4, 9): 0.095, date(2025, 4, 10): -0.034,
         date(2025, 4, 11): 0.018}
VOLATILE_WEEK = (date(2025, 4, 7), date(2025, 4, 11))
DEPOSITS = {date(2024, 1, 2): Decimal(300_000), date(2025, 6, 16): Decimal(50_000)}
VNQ_EXIT = (date(2025, 8, 4), date(2025, 9, 2))  # the bot sells all its VNQ and stays out a month
# 2025 dividends (synthetic per-share amounts): VTI quarterly, VXUS quarterly (Schwab only),
# BND monthly on each month's first trading day.
VTI_DIVS = {date(2025, 3, 31): "0.9148", date(2025, 6, 30): "0.9305",
            date(2025, 9, 30): "0.9533", date(2025, 12, 29): "0.9627"}
VXUS_DIVS = {date(2025, 3, 27): "0.2874", date(2025, 6, 24): "0.2874",
             date(2025, 9, 23): "0.2874", date(2025, 12, 23): "0.5821"}
BND_DIVS = ["0.2231", "0.2203", "0.2187", "0.2244", "0.2259", "0.2246",
            "0.2301", "0.2298", "0.2275", "0.2312", "0.2290", "0.2335"]
SCHWAB_NAMES = {"VTI": "VANGUARD TOTAL STOCK MARKET ETF", "VXUS": "VANGUARD TOTAL INTL STOCK ETF",
                "BND": "VANGUARD TOTAL BOND MARKET ETF"}


def plain(x: Decimal) -> str:
    """A Decimal without exponent or trailing zeros, as in Alpaca's JSON strings."""
    return "0" if x == 0 else format(x.normalize(), "f")


def usd(x: Decimal, commas: bool = True) -> str:
    """``$1,259.59`` / ``-$3,320.05`` (Schwab) or ``$1259.59`` (Coinbase: commas=False)."""
    return ("-$" if x < 0 else "$") + format(abs(x).quantize(CENT), ",f" if commas else "f")


def cents(x: Decimal) -> Decimal:
    """Round half-up to the cent: the rule for every cash amount in these files."""
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def normal(rng: Random) -> float:
    """An approximately standard-normal draw: the sum of 12 uniforms minus 6."""
    return sum(rng.random() for _ in range(12)) - 6.0


def uuid4(rng: Random) -> str:
    """A version-4 UUID drawn from the seeded generator."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def pick(rng: Random, scores: list[tuple[str, Decimal]]) -> str:
    """Choose a key with probability proportional to its Decimal score."""
    r = Decimal(rng.randrange(10**9)) / 10**9 * sum(s for _, s in scores)
    for key, s in scores:
        r -= s
        if r < 0:
            return key
    return scores[-1][0]


DAYS = [d for d in (date(2024, 1, 2) + timedelta(n) for n in range(730))
        if d.weekday() < 5 and d not in HOLIDAYS]  # NYSE trading days 2024-01-02 .. 2025-12-31


def pinned_walks(rng: Random, days: list[date], marks: list[date], per_year: int,
                 specs: dict[str, tuple[tuple[float, ...], float, float, float]]
                 ) -> dict[date, dict[str, Decimal]]:
    """Correlated multiplicative random walks, bent to pass near each mark's level.

    A step is ``1 + vol * z + beta * shock`` (vol tripled around the April 2025 sell-off).
    Between two marks the walk is multiplied by a geometric ramp that lands it on the next
    level, moved by up to 2% so that no close is a round number.
    """
    raw = {s: [1.0] for s in specs}
    for d in days[1:]:
        market, boost = normal(rng), 3.0 if date(2025, 4, 2) <= d <= date(2025, 4, 14) else 1.0
        for s, (_, vol, rho, beta) in specs.items():
            z = rho * market + (1 - rho * rho) ** 0.5 * normal(rng)
            raw[s].append(raw[s][-1] * (1 + boost * vol / per_year**0.5 * z
                                        + beta * CRASH.get(d, 0.0)))
    out: dict[date, dict[str, Decimal]] = {d: {} for d in days}
    at = [days.index(m) for m in marks]
    for s, (marked, *_) in specs.items():
        levels = [marked[0], *(x * (0.98 + 0.04 * rng.random()) for x in marked[1:])]
        for k, (i0, i1) in enumerate(pairwise(at)):
            fix = levels[k + 1] / (levels[k] * raw[s][i1] / raw[s][i0])
            for i in range(i0, i1 + 1):
                p = levels[k] * raw[s][i] / raw[s][i0] * fix ** ((i - i0) / (i1 - i0))
                out[days[i]][s] = Decimal(repr(p)).quantize(CENT)
    return out


class AlpacaBot:
    """Simulates the rebalancer's Alpaca account and emits its activity objects."""

    def __init__(self, rng: Random, closes: dict[date, dict[str, Decimal]]) -> None:
        self.rng, self.closes, self.cash, self.day_fees = rng, closes, D0, D0
        self.lots: dict[str, list[list]] = {s: [] for s in SYMBOLS}  # FIFO [date, qty, price]
        self.activities: list[dict[str, str]] = []
        # every FIFO piece sold: (sale date, symbol, qty, sale price, lot price, lot date)
        self.sales: list[tuple[date, str, Decimal, Decimal, Decimal, date]] = []

    def held(self, sym: str) -> Decimal:
        """Shares of ``sym`` held now."""
        return sum((lot[1] for lot in self.lots[sym]), D0)

    def nta(self, d: date, hour: int, kind: str, amount: Decimal, **extra: str) -> None:
        """Book a non-trade activity; like Alpaca's, its id starts with the New York time."""
        stamp = f"{d:%Y%m%d}{hour:02d}0000000::{uuid4(self.rng)}"
        self.activities.append({"id": stamp, "activity_type": kind, "date": d.isoformat(),
                                "net_amount": plain(amount), **extra, "status": "executed"})
        self.cash += amount

    def split(self, qty: Decimal, rows: int) -> list[Decimal]:
        """Cut an order's quantity into ``rows`` positive executions (whole shares stay whole)."""
        if qty == qty.to_integral_value() and qty >= rows:
            cuts = sorted(self.rng.sample(range(1, int(qty)), rows - 1))
            return [Decimal(b - a) for a, b in zip([0, *cuts], [*cuts, int(qty)], strict=True)]
        parts: list[Decimal] = []
        for _ in range(rows - 1):
            parts.append(((qty - sum(parts, D0)) * Decimal(self.rng.randrange(25, 65)) / 100
                          ).quantize(Q9, ROUND_DOWN))
        return [*parts, qty - sum(parts, D0)]

    def order(self, when: datetime, sym: str, side: str, qty: Decimal, rows: int) -> datetime:
        """Fill one order as one ``fill`` row, or partial_fill rows then a fill; returns the
        time of the last row."""
        order_id, cum, close = uuid4(self.rng), D0, self.closes[when.date()][sym]
        for i, part in enumerate(self.split(qty, rows)):
            when += timedelta(microseconds=self.rng.randrange(40_000, 2_500_000) if i else 0)
            quantum = CENT if self.rng.random() < 0.7 else BP
            px = (close * (1 + Decimal(self.rng.randrange(-300, 301)) / 100_000)).quantize(quantum)
            cum += part
            done = cum == qty
            self.activities.append({
                "id": f"{when:%Y%m%d%H%M%S}{when.microsecond // 1000:03d}::{uuid4(self.rng)}",
                "activity_type": "FILL",
                "transaction_time": f"{when.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}",
                "type": "fill" if done else "partial_fill", "price": plain(px), "qty": plain(part),
                "side": side, "symbol": sym, "leaves_qty": plain(qty - cum), "order_id": order_id,
                "cum_qty": plain(cum), "order_status": "filled" if done else "partially_filled"})
            value = cents(part * px)
            if side == "buy":
                self.lots[sym].append([when.date(), part, px])
                self.cash -= value
                continue
            self.sell_fifo(when.date(), sym, part, px)
            self.cash += value
            sec = (Decimal("0.000008") if when.date() < date(2024, 5, 22) else  # SEC $/$ sold
                   Decimal("0.0000278") if when.date() < date(2025, 5, 14) else D0)
            self.day_fees += sec * value + min(Decimal("0.000166") * part, Decimal("8.30"))  # TAF
        return when

    def sell_fifo(self, d: date, sym: str, qty: Decimal, px: Decimal) -> None:
        """Consume lots first-in first-out, recording each piece for the stats."""
        while qty > 0:
            lot = self.lots[sym][0]
            take = min(qty, lot[1])
            self.sales.append((d, sym, take, px, lot[2], lot[0]))
            lot[1] -= take
            qty -= take
            if lot[1] == 0:
                self.lots[sym].pop(0)

    def decide(self, d: date) -> tuple[str, str, Decimal] | None:
        """Pick (symbol, side, qty) for the next order, leaning toward the target weights.

        Buys are likelier when cash is above 2% of the account; in the volatile week the bot
        dumps on 7-8 April and buys back on 9-11 April with double-size orders.
        """
        rng, px = self.rng, self.closes[d]
        value = {s: self.held(s) * px[s] for s in SYMBOLS}
        total = sum(value.values()) + self.cash
        target = {s: Decimal(UNIVERSE[s][4]) for s in SYMBOLS}
        if VNQ_EXIT[0] <= d < VNQ_EXIT[1]:
            target["VNQ"] = D0
        p_buy = min(max(Decimal("0.5") + (self.cash / total - Decimal("0.02")) * 5,
                        Decimal("0.2")), Decimal("0.8"))
        volatile = VOLATILE_WEEK[0] <= d <= VOLATILE_WEEK[1]
        if volatile:
            p_buy = Decimal("0.2") if d <= date(2025, 4, 8) else Decimal("0.8")
        side = "buy" if rng.randrange(100) < p_buy * 100 else "sell"
        sign = -1 if side == "buy" else 1
        sym = pick(rng, [(s, max(sign * (value[s] / total - target[s]), D0) + Decimal("0.02"))
                         for s in SYMBOLS if (target[s] if side == "buy" else self.held(s))])
        notional = Decimal(min(rng.randrange(50_000, 600_001), rng.randrange(50_000, 600_001)))
        qty = (notional / 100 * (2 if volatile else 1) / px[sym]).quantize(Q9, ROUND_DOWN)
        if rng.random() < 0.25 and qty >= 2:  # a share-quantity order instead of a notional one
            qty = qty.to_integral_value(ROUND_DOWN)
        if side == "sell":  # a sale that would leave under $1 sells the whole position
            return sym, side, self.held(sym) if (self.held(sym) - qty) * px[sym] < 1 else qty
        return (sym, side, qty) if qty * px[sym] < self.cash - 500 else None

    def run(self) -> None:
        """Simulate 2024 (building positions) and 2025 (rebalancing), day by day."""
        rng, plan24, quota = self.rng, self.plan_2024(), self.quota_2025()
        divs = {d: ("VTI", p) for d, p in VTI_DIVS.items()} | {
            next(d for d in DAYS if (d.year, d.month) == (2025, m)): ("BND", p)
            for m, p in enumerate(BND_DIVS, 1)}
        vnq_exited = False
        for d in DAYS:
            if d in DEPOSITS:
                self.nta(d, 8, "CSD", DEPOSITS[d], description="ACH deposit")
            if d in divs and self.held(divs[d][0]) > 0:
                sym, per = divs[d]
                self.nta(d, 6, "DIV", cents(self.held(sym) * Decimal(per)), symbol=sym,
                         qty=plain(self.held(sym)), per_share_amount=per,
                         description="Cash dividend")
            planned = [(s, "buy", (n / self.closes[d][s]).quantize(Q9, ROUND_DOWN))
                       for s, n in plan24.get(d, [])]
            sizes = [1 if rng.random() < 0.85 else 2 for _ in planned]
            left = quota.get(d, 0)
            while left:  # 2025: cut the day's FILL-row quota into orders of 1-3 rows
                sizes.append(min(left, 1 if rng.random() < 0.88 else rng.choice([2, 3])))
                left -= sizes[-1]
            offsets = sorted(rng.randrange(390 * 60 * 10**6) for _ in sizes)  # microseconds
            last = bell = datetime(d.year, d.month, d.day, 9, 30, tzinfo=NY)  # into 09:30-16:00
            for i, rows in enumerate(sizes):
                t = max(bell + timedelta(microseconds=offsets[i]), last + timedelta(seconds=1))
                if planned:
                    sym, side, qty = planned[i]
                elif d >= VNQ_EXIT[0] and not vnq_exited and self.held("VNQ"):
                    sym, side, qty, vnq_exited = "VNQ", "sell", self.held("VNQ"), True
                else:
                    choice = None
                    while choice is None or choice[2] * self.closes[d][choice[0]] < 1:
                        choice = self.decide(d)
                    sym, side, qty = choice
                last = self.order(t, sym, side, qty, rows)
            if self.day_fees:
                self.nta(d, 17, "FEE", -self.day_fees.quantize(CENT, ROUND_UP),
                         description="REG/TAF fee")
                self.day_fees = D0
            assert self.cash >= 0, (d, self.cash)
        self.activities.sort(key=lambda a: a["id"])

    def plan_2024(self) -> dict[date, list[tuple[str, Decimal]]]:
        """Initial positions: each symbol is bought in up to 5 months from its first month to
        November 2024, for $275,000 in all split by target weight."""
        plan: dict[date, list[tuple[str, Decimal]]] = {}
        for s in SYMBOLS:
            months = list(range(UNIVERSE[s][5], 12))
            chosen = sorted({months[0], *self.rng.sample(months, min(4, len(months)))})
            for m in chosen:
                d = self.rng.choice([x for x in DAYS if (x.year, x.month) == (2024, m)])
                share = 275_000 * Decimal(UNIVERSE[s][4]) / len(chosen)
                plan.setdefault(d, []).append((s, cents(share * self.rng.randrange(80, 121) / 100)))
        return plan

    def quota_2025(self) -> dict[date, int]:
        """FILL rows per 2025 trading day: 44-56 a month outside the volatile week, 112-126 in
        it."""
        quota: dict[date, int] = {}
        week = [d for d in DAYS if VOLATILE_WEEK[0] <= d <= VOLATILE_WEEK[1]]
        for days, n in [([d for d in DAYS if (d.year, d.month) == (2025, m) and d not in week],
                         self.rng.randint(44, 56)) for m in range(1, 13)] + [
                (week, self.rng.randint(112, 126))]:
            for _ in range(n):
                d = self.rng.choice(days)
                quota[d] = quota.get(d, 0) + 1
        return quota


def coinbase_rows(rng: Random) -> list[list[str]]:
    """Coinbase v4 rows for BTC and ETH, newest first as Coinbase exports them."""
    px = pinned_walks(rng, [date(2023, 12, 31) + timedelta(n) for n in range(732)],
                      CRYPTO_MARKS, 365, CRYPTO)  # crypto trades every calendar day

    def at(d: date) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(
            seconds=rng.randrange(86_400))

    days = [d for d in sorted(px) if d.year >= 2024]
    plan = [(at(d), "Buy", "BTC", rng.choice([100, 250, 500, 1000]))
            for d in sorted(rng.sample(days, 15))]
    plan += [(at(d), "Buy", "ETH", rng.choice([100, 250, 500]))
             for d in sorted(rng.sample(days, 10))]
    plan += [(datetime(2024, 2, 12, 15, 4, 31, tzinfo=UTC), "Buy", "ETH", 2000),
             # 2025-01-01 03:15 UTC is still 2024-12-31 in New York: a tax-year edge case
             (datetime(2025, 1, 1, 3, 15, tzinfo=UTC), "Buy", "BTC", 250)]
    plan += [(at(date.fromisoformat(d)), kind, asset, 0) for d, kind, asset in [
        ("2024-11-22", "Sell", "ETH"), ("2025-03-10", "Sell", "BTC"),
        ("2025-06-18", "Convert", "ETH"), ("2025-08-25", "Sell", "ETH"),
        ("2025-11-14", "Sell", "BTC")]]
    plan += [(at(date(2025, m, 20)), "Staking Income", "ETH", 0) for m in (2, 5, 8, 11)]
    held = {"BTC": D0, "ETH": D0}
    rows: list[tuple[datetime, list[str]]] = []
    for when, kind, asset, amount in sorted(plan):
        p = px[when.date()][asset]
        if kind == "Buy":  # a round USD total; fee $1.99 on $100, else 1.49%
            total = Decimal(amount)
            fee = Decimal("1.99") if amount <= 100 else cents(total * Decimal("0.0149"))
            qty = ((total - fee) / p).quantize(Q8, ROUND_DOWN)
            sub, note = total - fee, f"Bought {plain(qty)} {asset} for {amount} USD"
        elif kind == "Staking Income":  # about 3% a year, to 12 decimals
            qty = (held[asset] * Decimal("0.0025")).quantize(Decimal("1e-12"), ROUND_DOWN)
            sub = total = cents(qty * p)
            fee, note = D0, ""
        elif kind == "Convert":  # the row shows the ETH sent; the BTC received is only in Notes
            qty = Decimal("0.5")
            sub = total = cents(qty * p)
            fee = cents(sub * Decimal("0.01"))
            got = ((sub - fee) / px[when.date()]["BTC"]).quantize(Q8, ROUND_DOWN)
            note = f"Converted {plain(qty)} {asset} to {plain(got)} BTC"
            held["BTC"] += got
        else:  # Sell a third: negative quantity, positive Subtotal, Total = Subtotal - fee
            qty = -(held[asset] / 3).quantize(Q8, ROUND_DOWN)
            sub = cents(-qty * p)
            fee = cents(sub * Decimal("0.0149"))
            total, note = sub - fee, f"Sold {plain(-qty)} {asset} for {sub - fee} USD"
        held[asset] += -qty if kind == "Convert" else qty
        assert held[asset] >= 0
        oid = f"{int(when.timestamp()):08x}{rng.getrandbits(64):016x}"  # ObjectId-like
        rows.append((when, [oid, f"{when:%Y-%m-%d %H:%M:%S} UTC", kind, asset, plain(qty), "USD",
                            *(usd(x, commas=False) for x in (p, sub, total, fee)), note]))
    return [r for _, r in sorted(rows, reverse=True)]


SchwabRow = tuple[date, str, list[str], Decimal]  # (date, Date text, middle fields, Amount)
Wash = tuple[date, date, str]  # (Alpaca loss sale, IRA buy, symbol)


def schwab_rows(rng: Random, closes: dict[date, dict[str, Decimal]], bot: AlpacaBot
                ) -> tuple[list[SchwabRow], list[Wash]]:
    """The Roth IRA's 2025 rows, oldest first, as (date, Date text, fields, amount).

    Up to two VTI and two VXUS buys land 3-20 days after an Alpaca sale of the same fund at a
    FIFO loss (a wash sale into the IRA); they are returned too, as (sale, buy, symbol).
    """
    days25 = [d for d in DAYS if d.year == 2025]
    loss: dict[tuple[date, str], Decimal] = {}
    for d, sym, q, p, basis, _ in bot.sales:
        if sym in ("VTI", "VXUS") and d.year == 2025 and d.month < 12:
            loss[(d, sym)] = loss.get((d, sym), D0) + q * (p - basis)
    washes: list[Wash] = []
    for fund in ("VTI", "VXUS"):
        lossy = sorted(k for k, g in loss.items() if g < 0 and k[1] == fund)
        for sold, sym in sorted(rng.sample(lossy, min(2, len(lossy)))):
            buy = next(d for d in days25 if d >= sold + timedelta(rng.randint(3, 20)))
            if (buy, sym) not in [(b, s) for _, b, s in washes]:
                washes.append((sold, buy, sym))
    wash_buys = {(b, s) for _, b, s in washes}
    trades = [(d, rng.choice(["VTI", "VTI", "VXUS", "VXUS", "BND"])) for m in range(1, 13)
              for d in sorted(rng.sample([x for x in days25 if x.month == m], 2))]
    events = sorted([(d, 2, s) for d, s in trades] + [(b, 2, s) for b, s in sorted(wash_buys)]
                    + [(d, 1, "VTI") for d in VTI_DIVS] + [(d, 1, "VXUS") for d in VXUS_DIVS]
                    + [(next(d for d in days25 if d.month == m), 1, "BND") for m in range(1, 13)])
    held = {s: D0 for s in SCHWAB_NAMES}
    cash = Decimal(45_000)  # already in the IRA on 2025-01-01 (not in the file)
    out: list[SchwabRow] = [
        (date(2025, 1, 17), "01/17/2025 as of 01/15/2025",
         ["Bank Interest", "", "BANK INT 121624-011525 SCHWAB BANK", "", "", ""], Decimal("0.37")),
        (date(2025, 3, 14), "03/14/2025",  # the 2025 Roth contribution
         ["MoneyLink Transfer", "", "Tfr SAMPLE BANK NA, ALEX SAMPLE", "", "", ""], Decimal(7000)),
        (date(2025, 6, 16), "06/16/2025",
         ["Bank Interest", "", "BANK INT 051625-061525 SCHWAB BANK", "", "", ""], Decimal("0.21"))]
    for d, kind, sym in events:
        text, name = f"{d:%m/%d/%Y}", SCHWAB_NAMES[sym]
        price = (closes[d][sym] * (1 + Decimal(rng.randrange(-200, 201)) / 100_000)).quantize(BP)
        if kind == 1 and held[sym] > 0 and sym != "BND":
            amt = cents(held[sym] * Decimal((VTI_DIVS | VXUS_DIVS)[d]))
            out.append((d, text, ["Qualified Dividend", sym, name, "", "", ""], amt))
            cash += amt
        elif kind == 1 and held[sym] > 0:  # BND's dividend is reinvested: two rows, a new lot
            amt = cents(held[sym] * Decimal(BND_DIVS[d.month - 1]))
            shares = (amt / price).quantize(BP, ROUND_DOWN)
            out.append((d, text, ["Reinvest Dividend", sym, name, "", "", ""], amt))
            out.append((d, text, ["Reinvest Shares", sym, name, plain(shares), f"${price}", ""],
                        -amt))
            held[sym] += shares
        elif kind == 2 and held[sym] >= 10 and rng.random() < 0.25 and (d, sym) not in wash_buys:
            qty = (held[sym] * Decimal(rng.randrange(30, 51)) / 100).to_integral_value(ROUND_DOWN)
            amt = cents(qty * price) - CENT  # a cent of regulatory fees
            out.append((d, text, ["Sell", sym, name, plain(qty), f"${price}", "$0.01"], amt))
            held[sym] -= qty
            cash += amt
        elif kind == 2:  # whole shares for $1,000-$2,800, if the cash is there
            qty = (Decimal(rng.randrange(1000, 2801)) / price).to_integral_value(ROUND_DOWN)
            if cash < qty * price:
                assert (d, sym) not in wash_buys
                continue
            amt = -cents(qty * price)
            out.append((d, text, ["Buy", sym, name, plain(qty), f"${price}", ""], amt))
            held[sym] += qty
            cash += amt
    out.sort(key=lambda r: r[0])  # stable: same-day rows keep their order
    return out, washes


def csv_text(rows: list[list[str]], quote_all: bool = False) -> str:
    """Rows as CSV text with LF line endings."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n",
               quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL).writerows(rows)
    return buf.getvalue()


def generate(seed: int = SEED) -> tuple[dict[str, bytes], AlpacaBot, list[Wash]]:
    """Build every file in memory as {path relative to this folder: bytes}."""
    closes = pinned_walks(Random(f"{seed}/prices"), [EQUITY_MARKS[0], *DAYS], EQUITY_MARKS, 252,
                          {s: u[:4] for s, u in UNIVERSE.items()})
    bot = AlpacaBot(Random(f"{seed}/alpaca"), closes)
    bot.run()
    alpaca = "[\n" + ",\n".join(json.dumps(a, separators=(",", ":")) for a in bot.activities)
    rng = Random(f"{seed}/coinbase")
    coinbase = "\nTransactions\n" + csv_text([["User", "Sample User", uuid4(rng)], [
        "ID", "Timestamp", "Transaction Type", "Asset", "Quantity Transacted", "Price Currency",
        "Price at Transaction", "Subtotal", "Total (inclusive of fees and/or spread)",
        "Fees and/or Spread", "Notes"]] + coinbase_rows(rng))
    rows, washes = schwab_rows(Random(f"{seed}/schwab"), closes, bot)
    schwab = ('"Transactions  for account Roth IRA ...123 as of 01/05/2026 09:15:02 AM ET"\n'
              + csv_text([["Date", "Action", "Symbol", "Description", "Quantity", "Price",
                           "Fees & Comm", "Amount"]]
                         + [[text, *f, usd(a)] for _, text, f, a in reversed(rows)], True)
              + f'"Transactions Total","","","","","","","{usd(sum((r[3] for r in rows), D0))}",\n')
    files = {"alpaca/activities_2025.json": alpaca + "\n]\n",
             "coinbase/coinbase_transactions_2025.csv": coinbase,
             "schwab/Roth_IRA_XXX123_Transactions_2025.csv": schwab}
    return {k: v.encode("utf-8") for k, v in files.items()}, bot, washes


def stats(files: dict[str, bytes], bot: AlpacaBot, washes: list[Wash]) -> str:
    """Facts about the generated data; counts and holdings are recomputed from the JSON."""
    acts = json.loads(files["alpaca/activities_2025.json"])
    fills = [a for a in acts if a["activity_type"] == "FILL"]
    lines = ["Alpaca FILL rows per month (orders; orders filled in several rows):"]
    for ym in sorted({a["transaction_time"][:7] for a in fills}):
        month = [a for a in fills if a["transaction_time"].startswith(ym)]
        split = {a["order_id"] for a in month if a["type"] == "partial_fill"}
        lines.append(f"  {ym}: {len(month):4d} rows ({len({a['order_id'] for a in month})} "
                     f"orders; {len(split)} split)")
    first, last = (d.isoformat() for d in VOLATILE_WEEK)
    week = [a for a in fills if first <= a["transaction_time"][:10] <= last]
    held: dict[str, Decimal] = {}
    low = D0
    for a in fills:  # replay in file order: holdings must never go negative
        qty = Decimal(a["qty"]) if a["side"] == "buy" else -Decimal(a["qty"])
        held[a["symbol"]] = held.get(a["symbol"], D0) + qty
        low = min(low, held[a["symbol"]])
    kinds = {k: sum(a["activity_type"] == k for a in acts)
             for k in sorted({a["activity_type"] for a in acts})}
    buys = {(a["symbol"], a["transaction_time"][:10]) for a in fills if a["side"] == "buy"}
    pieces = [p for p in bot.sales if p[0].year == 2025]
    lt = [p for p in pieces  # long-term: sold after the lot's first anniversary
          if (p[0].year - 1, p[0].month, p[0].day) > (p[5].year, p[5].month, p[5].day)]
    near = [p for p in pieces if p not in lt and (p[0] - p[5]).days >= 330]
    losses: dict[tuple[date, str], Decimal] = {}
    for d, s, q, px, basis, _ in pieces:
        losses[(d, s)] = losses.get((d, s), D0) + q * (px - basis)
    lossy = [k for k, g in losses.items() if g < 0]
    rebought = [k for k in lossy
                if any((k[1], f"{k[0] + timedelta(n)}") in buys for n in range(1, 31))]
    lines += [f"Volatile week {first}..{last}: {len(week)} FILL rows",
              f"Alpaca activities by type: {kinds}; lowest running holding: {low}",
              "Holdings at 2025-12-31: " + ", ".join(f"{s} {plain(held[s])}" for s in SYMBOLS),
              (f"2025 sales as FIFO lot pieces: {len(pieces)}; {len(lt)} long-term; "
               f"{len(near)} short-term held 330-365 days"),
              (f"2025 (day, symbol) sales at a FIFO loss: {len(lossy)}; re-bought in Alpaca "
               f"within 30 days: {len(rebought)}"), "Schwab IRA buys after an Alpaca FIFO-loss sale:"]
    lines += [f"  {s}: Alpaca sold {sold}, IRA bought {buy} ({(buy - sold).days} days later)"
              for sold, buy, s in washes]
    lines += [f"{path}: {len(data):,} bytes" for path, data in sorted(files.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Write the files (default), compare them with the disk (--check) or print facts (--stats)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stats", action="store_true", help="print facts, write nothing")
    parser.add_argument("--check", action="store_true", help="exit 1 if the files on disk differ")
    args = parser.parse_args(argv)
    files, bot, washes = generate()
    if args.stats:
        print(stats(files, bot, washes))
        return 0
    stale = [p for p, data in files.items()
             if not (HERE / p).is_file() or (HERE / p).read_bytes() != data]
    if args.check:
        print("\n".join(f"differs: {p}" for p in stale) or "all files up to date")
        return 1 if stale else 0
    for path in stale:
        (HERE / path).parent.mkdir(parents=True, exist_ok=True)
        (HERE / path).write_bytes(files[path])
    return 0


if __name__ == "__main__":
    sys.exit(main())
