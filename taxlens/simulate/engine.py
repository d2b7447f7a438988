"""Rebalancing policies simulated on a price panel, then booked and taxed by the audit's code.

Each step, on each date of the panel (taxlens/simulate docs in the README, simulation.md §5.3):

1. splits adjust the shares held, dividends are paid into cash;
2. cash flows (the real deposits and withdrawals, when asked) arrive: new cash buys the most
   underweight holdings first, a withdrawal sells the most overweight first;
3. weights are measured at the close (after the day's move, before trading);
4. the policy decides whether to rebalance: on calendar dates, on a band breach checked every
   date, or on a band breach checked only on calendar dates; never within ``cooldown`` days of
   the last rebalance;
5. sells first (at the close less half the spread), then buys with the cash there is (at the
   close plus half the spread), each trade paying the commission; trades smaller than
   ``min_trade`` are skipped. A sale can be deferred when the shares it would sell (first in,
   first out) are short-term gains turning long-term within ``defer_days``; a buy can be
   skipped when the symbol was sold at a loss in the last 30 days (wash-sale aware).

The simulated trades then go through ``lots.book.book`` (the policy's lot rule, the wash-sale
pass) and ``tax.federal.estimate``, unchanged: a simulated year is taxed exactly as an audited
one. Quantities are exact micro-shares (or whole shares) and trade prices are quotes to six
decimals, so the booking is exact; the float panel only decides and values.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from decimal import Decimal

import numpy as np
import polars as pl

from taxlens.lots.book import book
from taxlens.lots.events import Settings
from taxlens.lots.wash import ADVANTAGED, TAXABLE, WashSettings
from taxlens.simulate.prices import Prices
from taxlens.tax.federal import Profile, estimate

MICRO = 1_000_000
ACCOUNT = "simulated"
IRA_ACCOUNT = "simulated IRA"
CALENDARS = {"D": "every date", "W": "weekly", "M": "monthly", "Q": "quarterly", "S": "semiannual", "A": "annual"}


@dataclass(frozen=True)
class Frictions:
    commission: Decimal = Decimal(0)  # per trade
    spread_bps: Decimal = Decimal(0)  # full bid-ask spread, in basis points
    fractional: bool = True  # micro-shares, else whole shares
    min_trade: Decimal = Decimal("0.01")  # skip smaller trades (in value)


@dataclass(frozen=True)
class Policy:
    """A rebalancing rule. ``calendar`` alone: rebalance on those dates. ``band`` (absolute,
    as a weight: 0.05 = 5 percentage points), ``relative`` (share of the target) or ``hybrid``
    (5/25: 5 points or 25 % of the target, whichever is smaller) alone: check every date;
    with ``calendar``: check only on its dates."""

    name: str
    never: bool = False
    calendar: str | None = None
    band: float | None = None
    relative: float | None = None
    hybrid: bool = False
    to: str = "target"  # target | edge
    cooldown: int = 0  # days
    lots: str = "fifo"
    defer_days: int = 0
    wash_aware: bool = False
    placement: str = "taxable"  # taxable | ira (the same trades inside a tax-deferred account) | location
    ira_symbols: tuple[str, ...] = ()  # location: the holdings kept in the tax-deferred account

    @property
    def banded(self) -> bool:
        return self.band is not None or self.relative is not None or self.hybrid


@dataclass
class Run:
    """One policy's simulated path: trades with their reasons, and the daily state."""

    policy: Policy
    trades: list[tuple[dt.date, str, str, int, float, float, str]]  # date, symbol, side, micro, price, fee, reason
    skipped: list[tuple[dt.date, str, str]]  # date, symbol, why
    values: np.ndarray  # portfolio value per date (after trading)
    flows: np.ndarray  # cash flow per date
    weights: np.ndarray  # (dates, symbols) weights before trading
    events: int
    opening: list[tuple[dt.date, str, int, Decimal]] = field(default_factory=list)  # acquired, symbol, micro, basis
    splits: list[tuple[dt.date, str, int]] = field(default_factory=list)  # date, symbol, micro added (< 0: taken)


def _period_ends(dates: list[dt.date], calendar: str) -> np.ndarray:
    """True on the last date of each period of the panel."""
    if calendar == "D":
        return np.ones(len(dates), dtype=bool)

    def key(d: dt.date) -> tuple[int, ...]:
        if calendar == "W":
            return tuple(d.isocalendar()[:2])
        months = {"M": 1, "Q": 3, "S": 6, "A": 12}[calendar]
        return (d.year, (d.month - 1) // months)

    keys = [key(d) for d in dates]
    return np.array([i == len(keys) - 1 or keys[i] != keys[i + 1] for i in range(len(keys))])


def simulate(
    policy: Policy, prices: Prices, targets: dict[str, float], *, cash: float = 0.0,
    lots: list[tuple[dt.date, str, Decimal, Decimal]] | None = None, flows: dict[dt.date, float] | None = None,
    frictions: Frictions | None = None,
) -> Run:
    """Run ``policy`` over ``prices`` toward ``targets`` (weights summing to 1), starting from
    ``cash`` (invested at the first close) and/or open ``lots`` (acquired, symbol, quantity,
    basis). Returns the path; deterministic for the same inputs."""
    frictions = frictions or Frictions()
    symbols = prices.symbols
    idx = [symbols.index(s) for s in targets]
    target = np.array([targets[s] for s in targets])
    close = prices.close[:, idx]
    n_days, n = close.shape
    dividend, split = prices.dividend[:, idx], prices.split[:, idx]
    half = float(frictions.spread_bps) / 20_000
    fee = float(frictions.commission)
    min_trade = float(frictions.min_trade)
    step = 1 if frictions.fractional else MICRO
    due = np.zeros(n_days, dtype=bool) if policy.never else (
        _period_ends(prices.dates, policy.calendar) if policy.calendar else np.ones(n_days, dtype=bool)
    )
    if policy.hybrid:
        threshold = np.minimum(0.05, 0.25 * target)
    elif policy.relative is not None:
        threshold = policy.relative * target
    elif policy.band is not None:
        threshold = np.full(n, policy.band)
    else:
        threshold = None

    q = np.zeros(n, dtype=np.int64)  # micro-shares held
    fifo: list[list[list[float]]] = [[] for _ in range(n)]  # per symbol: [day ordinal, micro, unit cost]
    opening = []
    for acquired, symbol, quantity, basis in lots or []:
        if symbol not in targets:
            continue
        j = list(targets).index(symbol)
        micro = int(quantity * MICRO)
        q[j] += micro
        fifo[j].append([acquired.toordinal(), micro, float(basis / quantity)])
        opening.append((acquired, symbol, micro, basis))
    cash_now = cash
    trades: list[tuple[dt.date, str, str, int, float, float, str]] = []
    skipped: list[tuple[dt.date, str, str]] = []
    split_moves: list[tuple[dt.date, str, int]] = []
    values = np.zeros(n_days)
    flow_in = np.zeros(n_days)
    weights = np.zeros((n_days, n))
    last_event: int | None = None
    last_loss = np.full(n, -10**9)
    events = 0
    names = list(targets)

    def sell(d: int, j: int, micro: int, reason: str) -> None:
        nonlocal cash_now
        price = close[d, j] * (1 - half)
        day = prices.dates[d].toordinal()
        if policy.defer_days:
            need = float(micro)
            for acq, m, cost in fifo[j]:
                if need <= 0:
                    break
                age = day - int(acq)
                if price > cost and 365 - policy.defer_days <= age <= 365:
                    skipped.append((prices.dates[d], names[j], f"sale deferred: short-term gain turns long-term in {366 - age} days"))
                    return
                need -= m
        q[j] -= micro
        cash_now += micro / MICRO * price - fee
        left, cost_total = micro, 0.0
        while left > 0 and fifo[j]:
            lot = fifo[j][0]
            take = min(left, int(lot[1]))
            cost_total += take / MICRO * lot[2]
            lot[1] -= take
            left -= take
            if lot[1] <= 0:
                fifo[j].pop(0)
        if cost_total > micro / MICRO * price:
            last_loss[j] = day
        trades.append((prices.dates[d], names[j], "sell", micro, price, fee, reason))

    def buy(d: int, j: int, micro: int, reason: str) -> None:
        nonlocal cash_now
        price = close[d, j] * (1 + half)
        if policy.wash_aware and prices.dates[d].toordinal() - last_loss[j] <= 30:
            skipped.append((prices.dates[d], names[j], "buy skipped: it would wash a loss sale of the last 30 days"))
            return
        q[j] += micro
        cash_now -= micro / MICRO * price + fee
        fifo[j].append([prices.dates[d].toordinal(), micro, price])
        trades.append((prices.dates[d], names[j], "buy", micro, price, fee, reason))

    def shares(value: float, price: float) -> int:
        micro = int(value / price * MICRO)
        return micro - micro % step

    def trade_to(d: int, desired: np.ndarray, reason: str, *, buys_only: bool = False, sells_only: bool = False) -> bool:
        held = q / MICRO * close[d]
        delta = desired - held
        traded = False
        if not buys_only:
            for j in np.argsort(delta, kind="stable"):  # most overweight first
                if delta[j] < -min_trade:
                    micro = min(shares(-delta[j], close[d, j] * (1 - half)), int(q[j]))
                    if micro > 0:
                        sell(d, int(j), micro, reason)
                        traded = True
        if not sells_only:
            for j in np.argsort(-delta, kind="stable"):  # most underweight first
                if delta[j] > min_trade:
                    price = close[d, j] * (1 + half)
                    spend = min(delta[j], cash_now - fee)
                    micro = shares(spend, price) if spend > min_trade else 0
                    if micro > 0:
                        buy(d, int(j), micro, reason)
                        traded = True
        return traded

    for d in range(n_days):
        day = prices.dates[d]
        px = close[d]
        if np.isnan(px).any():
            raise ValueError(f"no price for {', '.join(names[j] for j in np.flatnonzero(np.isnan(px)))} on {day}")
        ratio = split[d]
        for jj in np.flatnonzero(ratio != 1):
            j = int(jj)
            after = int(q[j] * ratio[j])
            after -= after % step
            if after != q[j]:
                split_moves.append((day, names[j], after - int(q[j])))  # booked with the trades
            q[j] = after
            for lot in fifo[j]:
                lot[1], lot[2] = lot[1] * ratio[j], lot[2] / ratio[j]
        cash_now += float((q / MICRO * dividend[d]).sum())
        if flows and day in flows:
            amount = flows[day]
            cash_now += amount
            flow_in[d] = amount
        value = float((q / MICRO * px).sum()) + cash_now
        weights[d] = q / MICRO * px / value if value > 0 else 0
        if d == 0 and cash > 0 and not q.any():
            trade_to(d, target * value, "initial")
        elif flows and flow_in[d] != 0 and not policy.never:
            desired = target * value
            trade_to(d, desired, "cashflow", buys_only=flow_in[d] > 0, sells_only=flow_in[d] < 0)
        elif not policy.never and due[d] and (last_event is None or (day - prices.dates[last_event]).days >= policy.cooldown):
            deviation = weights[d] - target
            if threshold is None:
                breach = np.abs(deviation) > 0
            else:
                breach = np.abs(deviation) >= threshold
            if breach.any():
                desired = target * value
                if policy.to == "edge" and threshold is not None:
                    edge = np.where(deviation > 0, target + threshold, target - threshold)
                    desired = np.where(breach, edge * value, weights[d] * value)
                if trade_to(d, desired, "calendar" if threshold is None else "band"):
                    events += 1
                    last_event = d
        values[d] = float((q / MICRO * px).sum()) + cash_now
    return Run(policy, trades, skipped, values, flow_in, weights, events, opening, split_moves)


# -- booking and metrics ---------------------------------------------------------------------------

TRADE_COLUMNS: dict[str, pl.DataType] = {
    "id": pl.String(), "trade_date": pl.Date(), "ts": pl.Datetime("us", "UTC"), "account": pl.String(), "account_type": pl.String(),
    "owner": pl.String(), "symbol": pl.String(), "asset_class": pl.String(), "action": pl.String(), "quantity": pl.Decimal(38, 18),
    "price": pl.Decimal(38, 18), "fee": pl.Decimal(38, 18), "fee_currency": pl.String(), "currency": pl.String(),
    "amount": pl.Decimal(38, 18), "order_id": pl.String(), "lot_id": pl.String(), "note": pl.String(), "source": pl.String(),
    "adapter": pl.String(), "trade_id": pl.String(),
}


def account_of(policy: Policy, symbol: str) -> str:
    """Where the policy holds ``symbol``: the taxable account, or the tax-deferred one."""
    if policy.placement == "ira" or (policy.placement == "location" and symbol in policy.ira_symbols):
        return IRA_ACCOUNT
    return ACCOUNT


def trade_frame(run: Run) -> pl.DataFrame:
    """The run's trades (and its opening lots and the splits of its holdings) as stored trades:
    what ``book`` reads."""
    rows = []
    for k, (acquired, symbol, micro, basis) in enumerate(run.opening):
        rows.append(_row(f"O{k}", acquired, symbol, "buy", micro, None, Decimal(0), -basis, "opening lot", account_of(run.policy, symbol)))
    for k, (day, symbol, side, micro, price, fee, reason) in enumerate(run.trades):
        rows.append(_row(f"S{k}", day, symbol, side, micro, Decimal(f"{price:.6f}"), Decimal(f"{fee:.2f}"), None, reason,
                         account_of(run.policy, symbol)))
    for k, (day, symbol, micro) in enumerate(run.splits):
        rows.append(_row(f"X{k}", day, symbol, "split_in" if micro > 0 else "split_out", abs(micro), None, Decimal(0), None,
                         "split", account_of(run.policy, symbol)))
    return pl.DataFrame(rows, schema=TRADE_COLUMNS)


def _row(tid: str, day: dt.date, symbol: str, action: str, micro: int, price: Decimal | None, fee: Decimal,
         amount: Decimal | None, note: str, account: str = ACCOUNT) -> dict[str, object]:
    return {
        "id": tid, "trade_date": day, "ts": None, "account": account,
        "account_type": "traditional_ira" if account == IRA_ACCOUNT else "taxable", "owner": "self",
        "symbol": symbol, "asset_class": "equity", "action": action, "quantity": Decimal(micro) / MICRO, "price": price,
        "fee": fee, "fee_currency": "USD", "currency": "USD", "amount": amount, "order_id": None, "lot_id": None,
        "note": note, "source": f"simulation:{tid}", "adapter": "simulate", "trade_id": tid,
    }


METRIC_SCHEMA: dict[str, pl.DataType] = {
    "policy": pl.String(), "events": pl.Int64(), "trades": pl.Int64(), "turnover": pl.Float64(), "fees": pl.Decimal(38, 2),
    "taxable_events": pl.Int64(), "short": pl.Decimal(38, 2), "long": pl.Decimal(38, 2), "washed": pl.Decimal(38, 2),
    "tax": pl.Decimal(38, 2), "tax_and_fees": pl.Decimal(38, 2), "end_value": pl.Decimal(38, 2),
    "after_tax": pl.Decimal(38, 2), "tracking_error": pl.Float64(), "drift_mean": pl.Float64(), "drift_max": pl.Float64(),
}


def evaluate(run: Run, prices: Prices, targets: dict[str, float], profile: Profile, trades: pl.DataFrame | None = None) -> dict[str, object]:
    """Book the run's trades (``trades`` instead, for the actual replay) and measure it."""
    frame = trades if trades is not None else trade_frame(run)
    roles = ((ACCOUNT, "self", TAXABLE), (IRA_ACCOUNT, "self", ADVANTAGED))
    settings = Settings(default_method=run.policy.lots, wash=WashSettings(accounts=roles if trades is None else ()))
    booked = book(frame, settings)
    start, end = prices.dates[0], prices.dates[-1]
    disposals = booked.disposals.filter(pl.col("disposed").is_between(start, end))
    if trades is None:
        disposals = disposals.filter(pl.col("account") == ACCOUNT)  # the IRA's sales are not taxed
    else:
        taxable = set(trades.filter(pl.col("account_type").fill_null("taxable") == "taxable").get_column("account").to_list())
        disposals = disposals.filter(pl.col("account").is_in(list(taxable)))
    known = disposals.filter(pl.col("gain").is_not_null())
    tax = Decimal(0)
    short_total = long_total = Decimal(0)
    for year in sorted({d.year for d in known.get_column("disposed").to_list()}):
        part = known.filter(pl.col("disposed").dt.year() == year)
        short = Decimal(part.filter(pl.col("term") == "short").select(pl.col("gain").sum()).item() or 0)
        long = Decimal(part.filter(pl.col("term") == "long").select(pl.col("gain").sum()).item() or 0)
        short_total += short
        long_total += long
        tax += estimate(replace(profile, year=min(max(year, 2024), 2026)), short, long).incremental
    in_window = frame.filter(pl.col("trade_date").is_between(start, end) & (pl.col("fee_currency") != pl.col("symbol")))
    fees = Decimal(in_window.select(pl.col("fee").sum()).item() or 0)
    end_value = Decimal(f"{run.values[-1]:.2f}")
    # After tax, what the starting portfolio became: the money added along the way (deposits;
    # for the replayed `actual`, the cash its buys took net of its sales, which the replay does
    # not hold) is taken out, so a policy and `actual` compare from the same start.
    added = Decimal(f"{run.flows[1:].sum():.2f}") if run.flows.size else Decimal(0)
    sells = frame.filter((pl.col("action") == "sell") & pl.col("trade_date").is_between(start, end))
    sold_value = float(sells.select((pl.col("quantity") * pl.col("price")).sum()).item() or 0)
    years = max((end - start).days, 1) / 365.25
    mean_value = float(np.mean(run.values)) if run.values.size else 0.0
    te, drift_mean, drift_max = _tracking(run, prices, targets)
    washed = booked.washes.filter(pl.col("status") != "info")
    return {
        "policy": run.policy.name, "events": run.events, "trades": len(run.trades) if trades is None else frame.filter(
            pl.col("action").is_in(["buy", "sell"]) & pl.col("trade_date").is_between(start, end)).height,
        "turnover": sold_value / mean_value / years if mean_value else 0.0, "fees": fees,
        "taxable_events": disposals.select(pl.col("seq").n_unique()).item() if disposals.height else 0,
        "short": short_total, "long": long_total,
        "washed": Decimal(washed.filter(pl.col("disposed").is_between(start, end)).select(pl.col("disallowed").sum()).item() or 0),
        "tax": tax, "tax_and_fees": tax + fees, "end_value": end_value, "after_tax": end_value - added - tax,
        "tracking_error": te, "drift_mean": drift_mean, "drift_max": drift_max,
    }


def _tracking(run: Run, prices: Prices, targets: dict[str, float]) -> tuple[float, float, float]:
    """Annualised tracking error of the portfolio's returns (flows excluded) against the target
    weights rebalanced every period, and the mean and largest drift (max |weight − target|)."""
    idx = [prices.symbols.index(s) for s in targets]
    close, split, dividend = prices.close[:, idx], prices.split[:, idx], prices.dividend[:, idx]
    target = np.array(list(targets.values()))
    v = run.values
    if v.size < 3 or not np.all(v[:-1] > 0):
        return 0.0, 0.0, 0.0
    r_p = (v[1:] - run.flows[1:]) / v[:-1] - 1
    # A share's total return, as the portfolio earns it: a split multiplies the shares held
    # (the close is as quoted, halved by a 2-for-1) and a dividend is paid on them.
    r_t = (split[1:] * (close[1:] + dividend[1:]) / close[:-1] - 1) @ target
    te = float(np.std(r_p - r_t, ddof=1) * math.sqrt(prices.periods_per_year()))
    drift = np.abs(run.weights[1:] - target).max(axis=1)
    return te, float(drift.mean()), float(drift.max())
