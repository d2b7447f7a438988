"""A grid of policies in one run, the actual trades replayed beside them, and the frontier.

``grid`` turns the command line's lists into policies; ``compare`` simulates, books and taxes
each on the same prices and returns one row of metrics per policy (plus ``actual`` when the
audited trades are given), with ``dominated`` marking policies that another beats on both tax
plus fees and tracking error.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from decimal import Decimal

import numpy as np
import polars as pl

from taxlens.simulate.engine import METRIC_SCHEMA, Frictions, Policy, Run, evaluate, simulate
from taxlens.simulate.prices import Prices
from taxlens.tax.federal import Profile

#: The triggers simulated when none is asked for, as (bands, hybrid, calendars): monthly,
#: quarterly and annual calendars, a 5-point band checked daily and Swedroe's 5/25 band, the
#: policies a rebalancer's settings most often offer, so a bare `taxlens simulate` compares them.
DEFAULT_TRIGGERS: tuple[tuple[tuple[float, ...], bool, tuple[str, ...]], ...] = (
    ((), False, ("M", "Q", "A")),
    ((0.05,), True, ()),
)


def grid(
    *, bands: list[float], relatives: list[float], hybrid: bool, calendars: list[str], lots: list[str],
    to: list[str], defer: list[int], cooldown: int, wash_aware: bool, placements: list[str],
) -> list[Policy]:
    """Every combination asked for, plus ``never``. Bands with calendars are checked on the
    calendar's dates; bands alone every date; calendars alone rebalance on their dates. With no
    band, relative band, hybrid or calendar asked for, the common triggers (``DEFAULT_TRIGGERS``)."""
    if not (bands or relatives or hybrid or calendars):
        policies = [Policy("never", never=True)]
        for widths_, hybrid_, calendars_ in DEFAULT_TRIGGERS:
            policies += grid(bands=list(widths_), relatives=[], hybrid=hybrid_, calendars=list(calendars_), lots=lots,
                             to=to, defer=defer, cooldown=cooldown, wash_aware=wash_aware, placements=placements)[1:]
        return policies
    triggers: list[dict[str, object]] = []
    widths: list[dict[str, object]] = [{"band": b} for b in bands]
    widths += [{"relative": r} for r in relatives]
    if hybrid:
        widths.append({"hybrid": True})
    if widths:
        for w, c in itertools.product(widths, calendars or ["D"]):
            triggers.append({**w, "calendar": c})
    elif calendars:
        triggers += [{"calendar": c} for c in calendars]
    policies = [Policy("never", never=True)]
    for trig, lot, dest, days, place in itertools.product(triggers, lots or ["fifo"], to or ["target"], defer or [0], placements or ["taxable"]):
        if dest == "edge" and "calendar" in trig and len(trig) == 1:
            continue  # no band, no edge
        policy = Policy(_name(trig, lot, dest, days, place, wash_aware, cooldown), lots=lot, to=dest, defer_days=days,
                        placement=place, wash_aware=wash_aware, cooldown=cooldown, **trig)  # type: ignore[arg-type]
        policies.append(policy)
    return policies


def _name(trig: dict[str, object], lot: str, dest: str, days: int, place: str, wash: bool, cooldown: int) -> str:
    parts = []
    if "band" in trig:
        parts.append(f"band {float(trig['band']) * 100:g}pp")  # type: ignore[arg-type]
    if "relative" in trig:
        parts.append(f"band {float(trig['relative']) * 100:g}%")  # type: ignore[arg-type]
    if trig.get("hybrid"):
        parts.append("5/25")
    cal = str(trig.get("calendar", "D"))
    parts.append({"D": "daily", "W": "weekly", "M": "monthly", "Q": "quarterly", "S": "semiannual", "A": "annual"}[cal])
    parts.append(lot)
    if dest == "edge":
        parts.append("to edge")
    if days:
        parts.append(f"defer {days}d")
    if wash:
        parts.append("wash-aware")
    if cooldown:
        parts.append(f"cooldown {cooldown}d")
    if place == "ira":
        parts.append("in IRA")
    if place == "location":
        parts.append("located")
    return " ".join(parts)


def compare(
    policies: list[Policy], prices: Prices, targets: dict[str, float], profile: Profile, *, cash: float = 0.0,
    lots: list[tuple[dt.date, str, Decimal, Decimal]] | None = None, flows: dict[dt.date, float] | None = None,
    frictions: Frictions | None = None, actual: pl.DataFrame | None = None,
    progress: Callable[[int, int, str], None] | None = None, ira_share: float = 0.3,
) -> tuple[pl.DataFrame, dict[str, Run]]:
    """Metrics per policy (METRIC_SCHEMA + ``dominated``), and each run (for the trade log).
    A ``location`` policy holds its least tax-efficient holdings in a tax-deferred account
    that is ``ira_share`` of the portfolio (see ``locate``)."""
    rows, runs = [], {}
    for k, policy in enumerate(policies):
        if progress:
            progress(k, len(policies), policy.name)
        if policy.placement == "location" and not policy.ira_symbols:
            policy = locate(policy, prices, targets, profile, ira_share, cash=cash, lots=lots, flows=flows, frictions=frictions)
        run = simulate(policy, prices, targets, cash=cash, lots=lots, flows=flows, frictions=frictions or Frictions())
        runs[policy.name] = run
        rows.append(evaluate(run, prices, targets, profile))
    if actual is not None:
        run = replay(actual, prices, targets, lots)
        runs["actual"] = run
        rows.append(evaluate(run, prices, targets, profile, trades=actual))
    frame = pl.DataFrame(rows, schema=METRIC_SCHEMA)
    return frame.with_columns(pl.Series("dominated", _dominated(frame))), runs


def locate(policy: Policy, prices: Prices, targets: dict[str, float], profile: Profile, ira_share: float, **run_args: object) -> Policy:
    """Asset location: run the policy all-taxable, rank the holdings by the taxable gain they
    realized per dollar of target weight (short-term gains counted in full, long-term at
    half: the rate gap), and put the costliest in the tax-deferred account while their target
    weights fit in ``ira_share`` of the portfolio. Returns the policy with ``ira_symbols``."""
    from dataclasses import replace

    from taxlens.lots.book import book
    from taxlens.lots.events import Settings
    from taxlens.simulate.engine import trade_frame

    taxable = replace(policy, placement="taxable")
    run = simulate(taxable, prices, targets, **run_args)  # type: ignore[arg-type]
    disposals = book(trade_frame(run), Settings(default_method=policy.lots)).disposals
    weight = pl.when(pl.col("term") == "long").then(0.5).otherwise(1.0)
    cost = (
        disposals.filter(pl.col("gain") > 0)
        .group_by("symbol").agg((pl.col("gain").cast(pl.Float64) * weight).sum().alias("cost"))  # a ranking, not money
    )
    per = {s: 0.0 for s in targets} | {s: c for s, c in cost.iter_rows() if s in targets}
    ranked = sorted(targets, key=lambda s: (-per[s] / targets[s], s))
    chosen, room = [], ira_share
    for symbol in ranked:
        if per[symbol] > 0 and targets[symbol] <= room + 1e-12:
            chosen.append(symbol)
            room -= targets[symbol]
    name = f"{policy.name.removesuffix(' located')} located (IRA: {', '.join(sorted(chosen)) or 'none'})"
    return replace(policy, ira_symbols=tuple(sorted(chosen)), name=name)


def replay(trades: pl.DataFrame, prices: Prices, targets: dict[str, float], lots: list[tuple[dt.date, str, Decimal, Decimal]] | None) -> Run:
    """The actual trades as a path on the panel: holdings of the target symbols valued at the
    panel's closes (for tracking error and drift), trades counted as events by day. It starts
    from ``lots`` (the real lots open on the first price date) when given, else from the
    buys and sells before that date."""
    names = list(targets)
    idx = [prices.symbols.index(s) for s in names]
    close, split, dividend = prices.close[:, idx], prices.split[:, idx], prices.dividend[:, idx]
    paid = 0.0  # dividends, kept as cash as a policy keeps them
    q = np.zeros(len(names))
    for acquired, symbol, quantity, _ in lots or []:
        if symbol in names and acquired < prices.dates[0]:
            q[names.index(symbol)] += float(quantity)
    moves = trades.filter(pl.col("symbol").is_in(names) & pl.col("action").is_in(["buy", "sell", "reinvest"]))
    by_day: dict[dt.date, list[tuple[int, float]]] = {}
    for day, symbol, action, quantity in moves.select("trade_date", "symbol", "action", "quantity").iter_rows():
        by_day.setdefault(day, []).append((names.index(symbol), float(quantity) * (-1 if action == "sell" else 1)))
    values, weights, flows = np.zeros(len(prices.dates)), np.zeros((len(prices.dates), len(names))), np.zeros(len(prices.dates))
    events = 0
    # The lots open at the start already hold what the earlier trades bought and sold: those
    # trades build the start only when there are no lots.
    pending = [] if lots else sorted(d for d in by_day if d < prices.dates[0])
    for d in pending:
        for j, dq in by_day[d]:
            q[j] += dq
    cursor = prices.dates[0]
    for i, day in enumerate(prices.dates):
        q *= split[i]  # a split changes the shares, not their value (the closes are as quoted)
        paid += float((q * dividend[i]).sum())
        held = q * close[i]
        total = held.sum()
        weights[i] = held / total if total > 0 else 0
        moved = [d for d in by_day if cursor < d <= day] if i else [d for d in by_day if d == day]
        before = total
        for d in moved:
            for j, dq in by_day[d]:
                q[j] += dq
        if moved:
            events += 1
        values[i] = (q * close[i]).sum() + paid
        flows[i] = values[i] - paid - before  # buying and selling move money in and out of the holdings
        cursor = day
    policy = Policy("actual", lots="fifo")
    return Run(policy, [], [], values, flows, weights, events)


def _dominated(frame: pl.DataFrame) -> list[bool]:
    cost = [float(v) for v in frame.get_column("tax_and_fees").to_list()]
    te = frame.get_column("tracking_error").to_list()
    out = []
    for i in range(frame.height):
        out.append(any(cost[j] <= cost[i] and te[j] <= te[i] and (cost[j] < cost[i] or te[j] < te[i]) for j in range(frame.height)))
    return out
