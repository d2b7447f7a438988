"""Policy rules on small price panels whose every trade can be checked by hand, and the
simulator's promises: never = buy and hold, a 0 % band trades every month, the replayed actual
trades give the audit's gains, an IRA placement owes no current tax."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import taxlens
from taxlens.report.audit import build_audit, tax_profile
from taxlens.simulate.engine import Frictions, Policy, evaluate, simulate, trade_frame
from taxlens.simulate.prices import Prices, load_prices
from taxlens.simulate.sweep import compare, grid, replay
from taxlens.tax.federal import Profile
from tests.conftest import write
from tests.test_report import CONFIG, HEADER, TRADES

TARGETS = {"AAA": 0.6, "BBB": 0.4}
PROFILE = Profile(year=2025, other_income=Decimal(100_000))


def panel(days: int = 260, seed: int = 3) -> Prices:
    """Weekday closes through 2025 for two symbols: AAA drifts up, BBB sideways (deterministic)."""
    rng = np.random.default_rng(seed)
    dates, day = [], dt.date(2025, 1, 2)
    while len(dates) < days:
        if day.weekday() < 5:
            dates.append(day)
        day += dt.timedelta(days=1)
    steps = rng.normal([0.001, 0.0], [0.01, 0.004], size=(days, 2))
    steps[0] = 0
    close = 100 * np.exp(np.cumsum(steps, axis=0))
    return Prices(dates, ["AAA", "BBB"], close, np.zeros_like(close), np.ones_like(close), "test")


def test_never_trades_once_and_equals_buy_and_hold() -> None:
    p = panel()
    run = simulate(Policy("never", never=True), p, TARGETS, cash=100_000.0)
    assert [t[6] for t in run.trades] == ["initial", "initial"] and run.events == 0
    shares = np.array([t[3] for t in run.trades]) / 1_000_000
    leftover = 100_000.0 - float((shares * p.close[0]).sum())
    assert np.allclose(run.values, p.close @ shares + leftover)


def test_a_zero_band_checked_monthly_rebalances_at_every_month_end() -> None:
    p = panel()
    run = simulate(Policy("m0", calendar="M", band=0.0), p, TARGETS, cash=100_000.0)
    month_ends = {max(d for d in p.dates if d.month == m) for m in {d.month for d in p.dates}}
    assert run.events == len(month_ends)
    assert {t[0] for t in run.trades if t[6] == "band"} == month_ends


def test_bands_calendars_and_destinations() -> None:
    p = panel()
    wide = simulate(Policy("b10", band=0.10), p, TARGETS, cash=100_000.0)
    narrow = simulate(Policy("b1", band=0.01), p, TARGETS, cash=100_000.0)
    assert wide.events < narrow.events
    # Checked daily, a band trade happens the first day the weight is 1 point off, and only then.
    for day, *_ in (t for t in narrow.trades if t[6] == "band"):
        d = p.dates.index(day)
        assert abs(narrow.weights[d][0] - 0.6) >= 0.01
    edge = simulate(Policy("edge", band=0.01, to="edge"), p, TARGETS, cash=100_000.0)
    after = [edge.weights[p.dates.index(t[0]) + 1][0] for t in edge.trades if t[6] == "band" and p.dates.index(t[0]) + 1 < len(p.dates)]
    assert edge.events >= narrow.events  # stopping at the edge leaves it closer to the next breach
    assert all(abs(w - 0.6) < 0.03 for w in after)
    cool = simulate(Policy("cool", band=0.01, cooldown=30), p, TARGETS, cash=100_000.0)
    days = sorted({t[0] for t in cool.trades if t[6] == "band"})
    assert all((b - a).days >= 30 for a, b in itertools.pairwise(days))


def test_frictions_commission_spread_and_whole_shares() -> None:
    p = panel()
    run = simulate(Policy("q", calendar="Q"), p, TARGETS, cash=100_000.0,
                   frictions=Frictions(commission=Decimal(1), spread_bps=Decimal(10), fractional=False))
    assert all(t[3] % 1_000_000 == 0 for t in run.trades)  # whole shares
    assert all(t[5] == 1.0 for t in run.trades)
    for day, symbol, side, _, price, _, _ in run.trades:
        close = p.close[p.dates.index(day), p.symbols.index(symbol)]
        assert price == pytest.approx(close * (1.0005 if side == "buy" else 0.9995))
    fees = evaluate(run, p, TARGETS, PROFILE)["fees"]
    assert fees == Decimal(len(run.trades))


def test_wash_aware_buying_skips_a_buy_after_a_loss_sale() -> None:
    """AAA slips 5 % while BBB falls 40 %: AAA is overweight, so a daily 1-point band sells it at
    a loss; BBB then recovers and the band would buy AAA back within days. Wash-aware, those buys
    are skipped and logged, and less loss is washed."""
    dates = [dt.date(2025, 3, 3) + dt.timedelta(days=i) for i in range(40)]
    aaa = np.concatenate([np.linspace(100, 95, 10), np.full(30, 95.0)])
    bbb = np.concatenate([np.linspace(100, 60, 10), np.linspace(60, 100, 30)])
    close = np.column_stack([aaa, bbb])
    p = Prices(dates, ["AAA", "BBB"], close, np.zeros_like(close), np.ones_like(close), "test")
    plain_run = simulate(Policy("b1", band=0.01), p, TARGETS, cash=100_000.0)
    aware = simulate(Policy("b1w", band=0.01, wash_aware=True), p, TARGETS, cash=100_000.0)
    assert any("would wash" in why for _, _, why in aware.skipped)
    assert evaluate(aware, p, TARGETS, PROFILE)["washed"] <= evaluate(plain_run, p, TARGETS, PROFILE)["washed"]


def test_deferring_short_term_gains_close_to_long_term() -> None:
    """Lots that are 340 days old at the first month-end are short-term gains turning long-term
    within 30 days: a 30-day deferral holds their sale until after the anniversary."""
    p = panel(60)
    first_month_end = max(d for d in p.dates if d.month == 1)
    bought = first_month_end - dt.timedelta(days=340)
    lots = [(bought, "AAA", Decimal(700), Decimal(50 * 700)), (bought, "BBB", Decimal(300), Decimal(100 * 300))]
    eager = simulate(Policy("m", calendar="M", band=0.0), p, TARGETS, lots=lots)
    patient = simulate(Policy("m30", calendar="M", band=0.0, defer_days=30), p, TARGETS, lots=lots)
    first_sell = min(t[0] for t in eager.trades if t[2] == "sell")
    assert (first_sell - lots[0][0]).days <= 365
    assert any("turns long-term" in why for _, _, why in patient.skipped)
    held = [t[0] for t in patient.trades if t[2] == "sell" and t[1] == "AAA"]
    assert all((d - lots[0][0]).days > 365 for d in held)
    terms = evaluate(patient, p, TARGETS, PROFILE)
    assert terms["short"] == 0


def test_the_same_trades_in_an_ira_owe_no_current_tax() -> None:
    p = panel()
    taxable = evaluate(simulate(Policy("m", calendar="M"), p, TARGETS, cash=100_000.0), p, TARGETS, PROFILE)
    ira = evaluate(simulate(Policy("m ira", calendar="M", placement="ira"), p, TARGETS, cash=100_000.0), p, TARGETS, PROFILE)
    assert taxable["trades"] == ira["trades"] and taxable["tax"] != 0
    assert (ira["tax"], ira["taxable_events"], ira["short"], ira["long"]) == (0, 0, 0, 0)


def test_the_replayed_actual_trades_give_the_audits_gains(tmp_path: Path) -> None:
    """`actual` books the stored trades with the audit's code: the same realized gains and tax."""
    prices = write(tmp_path, "p.csv", "date,symbol,close\n" + "".join(
        f"{(dt.date(2025, 1, 2) + dt.timedelta(days=i)).isoformat()},{s},{c}\n"
        for i in range(364) for s, c in (("VTI", 100), ("MSFT", 400), ("BTC", 100000))
    ))
    with taxlens.open_book(":memory:", taxlens.Config.model_validate(CONFIG)) as book:
        assert book.ingest([write(tmp_path, "t.csv", HEADER + TRADES)]).ok
        trades = book.trades()
        audit = build_audit(trades, book.booked(), book.config, 2025)
        p = load_prices(prices)
        metrics, _ = compare([Policy("never", never=True)], p, {"VTI": 0.5, "MSFT": 0.5}, tax_profile(book.config, 2025),
                             cash=1000.0, actual=trades)
    actual = metrics.filter(pl.col("policy") == "actual").row(0, named=True)
    g = audit.gains
    assert actual["short"] == (g["short_gains"] + g["short_losses"]).quantize(Decimal("0.01"))  # type: ignore[union-attr]
    assert actual["long"] == (g["long_gains"] + g["long_losses"]).quantize(Decimal("0.01"))  # type: ignore[union-attr]
    assert actual["tax"] == audit.tax.incremental.quantize(Decimal("0.01"))
    assert actual["washed"] == Decimal("50.50")


def test_no_trigger_asked_for_runs_the_common_policies() -> None:
    """A bare `taxlens simulate` compared `never` with `actual` alone: now the common triggers,
    crossed with what else is asked for (here two lot rules)."""
    policies = grid(bands=[], relatives=[], hybrid=False, calendars=[], lots=["fifo", "taxmin"], to=["target"],
                    defer=[0], cooldown=0, wash_aware=False, placements=["taxable"])
    assert [p.name for p in policies] == [
        "never",
        "monthly fifo", "monthly taxmin", "quarterly fifo", "quarterly taxmin", "annual fifo", "annual taxmin",
        "band 5pp daily fifo", "band 5pp daily taxmin", "5/25 daily fifo", "5/25 daily taxmin",
    ]
    # Any trigger asked for replaces them.
    assert [p.name for p in grid(bands=[], relatives=[], hybrid=False, calendars=["Q"], lots=["fifo"], to=["target"],
                                 defer=[0], cooldown=0, wash_aware=False, placements=["taxable"])] == ["never", "quarterly fifo"]


def test_the_grid_and_the_frontier() -> None:
    policies = grid(bands=[0.01, 0.05], relatives=[], hybrid=True, calendars=["M", "Q"], lots=["fifo", "taxmin"], to=["target"],
                    defer=[0], cooldown=0, wash_aware=False, placements=["taxable"])
    names = [p.name for p in policies]
    assert names[0] == "never" and len(policies) == 1 + 3 * 2 * 2
    assert "band 1pp monthly fifo" in names and "5/25 quarterly taxmin" in names
    metrics, runs = compare(policies, panel(), TARGETS, PROFILE, cash=100_000.0)
    assert metrics.height == len(policies) and set(runs) == set(names)
    never = metrics.filter(pl.col("policy") == "never").row(0, named=True)
    assert never["trades"] == 2 and never["tax"] == 0
    # A dominated policy has another at least as good on both axes and better on one.
    for r in metrics.filter("dominated").iter_rows(named=True):
        assert any(o["tax_and_fees"] <= r["tax_and_fees"] and o["tracking_error"] <= r["tracking_error"]
                   for o in metrics.iter_rows(named=True) if o["policy"] != r["policy"])
    assert trade_frame(runs["never"]).height == 2


def test_cli_simulate_with_a_price_file(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "taxlens.toml", '[simulate]\ntargets = { VTI = 0.5, MSFT = 0.5 }\n')
    write(tmp_path, "t.csv", HEADER + TRADES)
    assert run("ingest", "-q", "t.csv").exit_code == 0
    write(tmp_path, "p.csv", "date,symbol,close\n" + "".join(
        f"{(dt.date(2025, 1, 2) + dt.timedelta(days=i)).isoformat()},{s},{c + i / 10}\n"
        for i in range(300) for s, c in (("VTI", 100), ("MSFT", 400))
    ))
    result = run("simulate", "--prices", "p.csv", "--cash", "10000", "--band", "1,5", "--calendar", "M", "--format", "csv",
                 "--log", "log.csv", "--html", "sim.html")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("policy,events,trades,turnover,fees,taxable_events,short,long,washed,tax,tax_and_fees")
    assert [line.split(",")[0] for line in lines[1:]] == ["never", "band 1pp monthly fifo", "band 5pp monthly fifo", "actual"]
    assert (tmp_path / "sim.html").read_text().count("<svg") == 1
    assert (tmp_path / "log.csv").read_text().splitlines()[0] == "policy,date,symbol,side,quantity,price,fee,reason"
    write(tmp_path, "bad.csv", "date,symbol,close\n2025-01-02,VTI,-1\n2025-13-01,VTI,5\n")
    bad = run("simulate", "--prices", "bad.csv")
    assert bad.exit_code == 1
    assert "bad.csv:2: close '-1' is not positive" in bad.stderr and "bad.csv:3:" in bad.stderr
    assert "no targets" not in bad.stderr
    nothing = run("simulate", "--prices", "p.csv", "--target", "VTI=0.7", "--target", "MSFT=0.7")
    assert nothing.exit_code == 1 and "add up to" in nothing.stderr


def test_asset_location_puts_the_costliest_holding_in_the_ira() -> None:
    """Three holdings, a 35 % IRA: the run all-taxable ranks them by gain realized per dollar of
    target; the costliest that fits (30 %) moves to the IRA, its gains stop being taxed, and
    the trades stay the same."""
    rng = np.random.default_rng(5)
    days = 260
    dates, day = [], dt.date(2025, 1, 2)
    while len(dates) < days:
        if day.weekday() < 5:
            dates.append(day)
        day += dt.timedelta(days=1)
    steps = rng.normal([0.002, 0.0, 0.0005], [0.02, 0.002, 0.01], size=(days, 3))
    steps[0] = 0
    close = 100 * np.exp(np.cumsum(steps, axis=0))
    p = Prices(dates, ["AAA", "BBB", "CCC"], close, np.zeros_like(close), np.ones_like(close), "test")
    targets = {"AAA": 0.3, "BBB": 0.3, "CCC": 0.4}
    base = Policy("band 2pp daily fifo", band=0.02)
    metrics, runs = compare([base, replace(base, name="band 2pp daily fifo located", placement="location")], p, targets, PROFILE,
                            cash=100_000.0, ira_share=0.35)
    taxable, located = metrics.row(0, named=True), metrics.row(1, named=True)
    assert located["policy"] == "band 2pp daily fifo located (IRA: AAA)"
    assert located["trades"] == taxable["trades"]
    assert 0 <= located["tax"] < taxable["tax"]
    ira_trades = trade_frame(runs[located["policy"]]).filter(pl.col("account") == "simulated IRA")
    assert set(ira_trades.get_column("symbol").to_list()) == {"AAA"}


@pytest.mark.parametrize("with_lots", [True, False])
def test_the_replay_starts_from_the_shares_held_once(with_lots: bool) -> None:
    """The replayed `actual` starts from the real lots open on the first price date, then
    applies the year's trades. It also applied every trade before that date on top of those
    lots, so the sample's 2024 purchases counted twice (an end value of 600,450.44 where the
    policies held about 250,000). Without lots, the earlier trades build the start."""
    dates = [dt.date(2025, 1, 2) + dt.timedelta(days=i) for i in range(90)]
    p = Prices(dates, ["VTI"], np.full((90, 1), 100.0), np.zeros((90, 1)), np.ones((90, 1)), "test")
    trades = pl.DataFrame({
        "trade_date": [dt.date(2024, 6, 3), dt.date(2025, 3, 3)], "symbol": ["VTI", "VTI"],
        "action": ["buy", "buy"], "quantity": [Decimal(10), Decimal(5)],
    })
    lots = [(dt.date(2024, 6, 3), "VTI", Decimal(10), Decimal(1000))] if with_lots else None
    run = replay(trades, p, {"VTI": 1.0}, lots)
    # 10 shares × 100.00 at the start; 15 after the March buy, whose 500.00 came from cash the
    # replay does not hold: a flow, which the after-tax value takes out.
    assert (run.values[0], run.values[-1]) == (1000.0, 1500.0)
    assert run.flows[1:].sum() == 500.0


def test_the_after_tax_value_leaves_out_the_money_added_during_the_year() -> None:
    """`never` keeps a deposit as cash: the ending value grows by it, the after-tax value (what
    the starting portfolio became) does not, so runs with and without flows compare."""
    p = panel()
    bare = evaluate(simulate(Policy("never", never=True), p, TARGETS, cash=100_000.0), p, TARGETS, PROFILE)
    funded = evaluate(simulate(Policy("never", never=True), p, TARGETS, cash=100_000.0, flows={p.dates[100]: 1000.0}),
                      p, TARGETS, PROFILE)
    assert funded["end_value"] == bare["end_value"] + 1000
    assert funded["after_tax"] == bare["after_tax"]


def test_the_frontier_labels_policies_on_one_point_once() -> None:
    """Bands too wide to trigger all sit on `never`'s point: their names were drawn on top of
    one another. One label now says how many share the point."""
    from taxlens.report import charts

    metrics = pl.DataFrame({
        "policy": ["never", "band 5pp quarterly fifo", "band 10pp annual fifo", "monthly fifo", "actual"],
        "tracking_error": [0.0126, 0.0126, 0.0126, 0.0098, 0.0146],
        "tax_and_fees": [Decimal(0), Decimal(0), Decimal(0), Decimal("3380.91"), Decimal("20452.02")],
        "dominated": [False, False, False, False, True],
    })
    svg = charts.frontier(metrics)
    assert svg.count("never and 2 more alike") == 1
    assert "band 5pp quarterly fifo" not in svg and "monthly fifo" in svg
