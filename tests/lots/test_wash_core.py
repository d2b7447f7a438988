"""The compiled wash-sale core (taxlens/lots/_washcore.c) against the pure-Python pass.

``apply_wash_sales`` runs the compiled core by default and the Python pass with
``core="python"``: on random histories both must give the same lots, disposals, washes and
problems, frame for frame. Histories are lot events booked by the general loop: buys and
sales a few days apart (with year-long gaps, so that chains of tacked holding periods cross
the one-year line and slices get cut by term), transfers between accounts (several lots
moved by one event: lot seqs repeat), splits, shortfalls, unknown bases, an IRA, an account
outside the rule, a crypto symbol, a substantially-identical group, quantities with 0 to 18
decimals. Where the core cannot be exact (amounts too large for 128-bit splits at the run's
quantity scale) it hands the run to the Python pass: the results are the same either way.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from taxlens.ingest.frame import DECIMAL
from taxlens.lots import wash
from taxlens.lots.engine import book_loop
from taxlens.lots.frames import ACQUIRE, DISPOSE, EVENT_SCHEMA, SPLIT_IN, TRANSFER_IN, TRANSFER_OUT
from taxlens.lots.holding import anniversary
from taxlens.lots.wash import ADVANTAGED, OUTSIDE, TAXABLE, Washed, WashSettings, apply_wash_sales

START = dt.date(2023, 1, 2)
UNIT = 10**18  # one share or dollar in units of 1e-18

# Each example books a history and runs the pass twice; the count follows the profile.
EXAMPLES = settings(
    max_examples=max(25, getattr(settings.default, "max_examples", 50)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class History:
    """Lot events (EVENT_SCHEMA) and the wash settings to run them with."""

    def __init__(self, rows: list[dict[str, object]], settings: WashSettings, crypto: frozenset[str], month_end_rule: bool,
                 decimals: int) -> None:
        rows.sort(key=lambda r: r["date"])  # type: ignore[arg-type, return-value]  # stable: same-day events keep their order
        for seq, row in enumerate(rows, start=1):
            row["seq"], row["source"], row["trade_id"] = seq, f"h.csv:{seq}", f"T{seq}"
        self.events = pl.DataFrame(
            [{**{c: None for c in EVENT_SCHEMA}, **r} for r in rows], schema={c: t for c, t in EVENT_SCHEMA.items() if c not in ("quantity", "amount")}
            | {"quantity": pl.Int128, "amount": pl.Int128},
        ).with_columns(pl.col("quantity", "amount").reinterpret(dtype=DECIMAL)).select(list(EVENT_SCHEMA))
        self.settings, self.crypto, self.month_end_rule, self.decimals = settings, crypto, month_end_rule, decimals

    def __repr__(self) -> str:
        return f"History(decimals={self.decimals}, month_end_rule={self.month_end_rule}, settings={self.settings}, events=\n{self.events})"

    def washed(self, core: str) -> Washed:
        booked = book_loop(self.events, month_end_rule=self.month_end_rule)
        disposals = booked.disposals.with_row_index("_i").sort(["seq", "_i"]).drop("_i")  # as taxlens.lots.book does
        self.slices = disposals.height
        return apply_wash_sales(booked.lots, disposals, self.events, self.crypto, self.settings,
                                month_end_rule=self.month_end_rule, core=core)


@st.composite
def histories(draw: st.DrawFn, *, decimals: st.SearchStrategy[int] | None = None, price_scale: int = 1) -> History:
    """A rebalancer's history over a few accounts and symbols on one calendar: trades a few
    days apart (so most losses have a purchase in their window), now and then a pause of about
    a year (so the shares of one sale can carry both terms). ``price_scale`` multiplies every
    price (large amounts)."""
    places = draw(decimals if decimals is not None else st.sampled_from((0, 2, 6, 8, 18)))
    step = 10 ** (18 - places)  # units in the smallest quantity
    accounts = ["A", *draw(st.lists(st.sampled_from(("B", "B", "IRA", "OUT")), max_size=2, unique=True))]
    symbols = ["X", *draw(st.sampled_from(((), (), ("Y",), ("BTC",))))]

    def shares() -> int:  # quantity in units: whole shares or fractions at this many decimals
        whole = draw(st.booleans())
        return draw(st.integers(1, 12)) * UNIT if whole else draw(st.integers(1, 12 * UNIT // step)) * step

    def amount(units: int) -> int:  # basis or proceeds near $100 a share (so losses and gains both happen)
        return units * draw(st.integers(8_000, 12_000)) * price_scale // 100 + draw(st.sampled_from((0, 0, 1, 10**16)))

    rows: list[dict[str, object]] = []
    held: dict[tuple[str, str], int] = {}
    day, transfers = START, 0
    for _ in range(draw(st.integers(8, 30))):
        day += dt.timedelta(days=draw(st.one_of(*[st.integers(0, 9)] * 6, st.integers(330, 380))))
        account, symbol = draw(st.sampled_from(accounts)), draw(st.sampled_from(symbols))
        have = held.get((account, symbol), 0)
        base = {"scope": account, "account": account, "symbol": symbol, "date": day, "currency": "USD"}
        action = draw(st.sampled_from(("buy", "buy", "buy", "sell", "sell", "sell", "split", "transfer")))
        if action == "buy" or have == 0:
            q = shares()
            unknown = draw(st.integers(0, 14)) == 0  # a basis nobody knows
            rows.append({**base, "kind": ACQUIRE, "quantity": q, "amount": None if unknown else amount(q)})
            have += q
        elif action == "sell":
            # All of it, part of it, or (now and then) more than is held: a shortfall.
            q = draw(st.sampled_from((have, max(step, have // 2 // step * step), max(step, have // 3 // step * step), have + shares())))
            method = draw(st.sampled_from(("fifo", "fifo", "fifo", "lifo", "hifo", "taxmin")))
            rows.append({**base, "kind": DISPOSE, "quantity": q, "amount": amount(q), "method": method})
            have = max(0, have - q)
        elif action == "split":
            q = have * draw(st.integers(1, 2))  # 2:1 or 3:1
            rows.append({**base, "kind": SPLIT_IN, "quantity": q})
            have += q
        else:  # the position's lots moved to another account by one event (their rows share its seq)
            to = draw(st.sampled_from([*(a for a in ("A", "B", "IRA") if a != account), None]))
            transfers += 1
            key = f"K{transfers}" if to is not None else None  # None: to an account taxlens does not follow
            rows.append({**base, "kind": TRANSFER_OUT, "quantity": have, "transfer_key": key})
            if to is not None:
                rows.append({**base, "scope": to, "account": to, "kind": TRANSFER_IN, "quantity": have, "transfer_key": key})
                held[(to, symbol)] = held.get((to, symbol), 0) + have
            have = 0
        held[(account, symbol)] = have
    households = draw(st.sampled_from((("self", "self"), ("self", "self"), ("self", "spouse"))))
    settings = WashSettings(
        apply=True,
        crypto=draw(st.booleans()),
        accounts=(("A", households[0], TAXABLE), ("B", households[1], TAXABLE), ("IRA", "self", ADVANTAGED), ("OUT", "self", OUTSIDE)),
        default_household="self",
        groups=draw(st.sampled_from(((), (("X", "xy"), ("Y", "xy"))))),
    )
    crypto = frozenset({"BTC"}) & set(symbols)
    return History(rows, settings, crypto, draw(st.booleans()), places)


def same(a: Washed, b: Washed) -> None:
    for name in ("lots", "disposals", "washes"):
        x, y = getattr(a, name), getattr(b, name)
        assert_frame_equal(x, y, check_exact=True)
        assert x.equals(y, null_equal=True), name
    assert a.problems == b.problems


def both(history: History) -> tuple[Washed, Washed]:
    return history.washed("compiled"), history.washed("python")


@EXAMPLES
@given(histories())
def test_the_compiled_core_gives_the_python_pass_frames(history: History) -> None:
    compiled, python = both(history)
    same(compiled, python)
    assert python.core in ("python", "none")
    event(f"core: {compiled.core}{' (fell back)' if compiled.fallback else ''}")
    event(f"washes: {'some' if compiled.washes.height else 'none'}")
    event(f"chains: {'some' if compiled.disposals['wash_basis'].sum() else 'none'}")
    event(f"slices cut by term: {'some' if compiled.disposals.height > history.slices else 'none'}")
    event(f"lots moved by one event: {'some' if history.events['kind'].eq(TRANSFER_IN).any() else 'none'}")
    event(f"problems: {'some' if compiled.problems else 'none'}")
    if compiled.core != "none" and history.decimals <= 8:
        # Quantities with up to 8 decimals and amounts near $100 a share: always exact in 128 bits.
        assert (compiled.core, compiled.fallback) == ("compiled", None)


@EXAMPLES
@given(histories())
def test_groups_a_split_or_transfer_changed_take_the_python_pass_and_the_rest_the_core(history: History) -> None:
    """Given booking's splits and transfers, the groups whose lots they changed go to the Python
    pass (which follows shares through them) and the others to the compiled core: the merged
    result is the Python pass's on everything, frame for frame."""
    booked = book_loop(history.events, month_end_rule=history.month_end_rule)
    disposals = booked.disposals.with_row_index("_i").sort(["seq", "_i"]).drop("_i")

    def washed(core: str) -> Washed:
        return apply_wash_sales(booked.lots, disposals, history.events, history.crypto, history.settings,
                                month_end_rule=history.month_end_rule, core=core, splits=booked.splits, moves=booked.moves)

    compiled, python = washed("compiled"), washed("python")
    same(compiled, python)
    event(f"core: {compiled.core}")


@EXAMPLES
@given(histories())
def test_the_pass_follows_splits_and_transfers_and_keeps_every_deferred_dollar(history: History) -> None:
    """Given booking's splits and transfers, the pass follows adjusted shares through them (the
    Python pass: the compiled core hands such runs over). Each lot's rows still tile it, and
    unless a replacement's basis is unknown (it has no basis to add to), every deferred dollar
    is in a later slice's carried-in loss, still in an open lot, or gone with shares moved to
    an account the pass does not follow (``carried``, and reported at the transfer), exactly."""
    booked = book_loop(history.events, month_end_rule=history.month_end_rule)
    disposals = booked.disposals.with_row_index("_i").sort(["seq", "_i"]).drop("_i")
    washed = apply_wash_sales(booked.lots, disposals, history.events, history.crypto, history.settings,
                              month_end_rule=history.month_end_rule, splits=booked.splits, moves=booked.moves)
    event(f"splits: {'some' if booked.splits.height else 'none'}; transfers: {'some' if booked.moves.height else 'none'}")
    key = ["scope", "seq", "lot_id"]
    tiled = washed.lots.group_by(key).agg(pl.col("quantity").sum()).join(booked.lots.select(*key, "quantity"), on=key, suffix="_lot")
    assert tiled.height == booked.lots.height
    assert (tiled["quantity"] == tiled["quantity_lot"]).all()
    reported = [re.search(r"carrying (-?[\d.]+) of losses", str(p)) for p in washed.problems]
    if all(reported) and booked.lots["cost_basis"].null_count() == 0:
        deferred = washed.washes.filter(pl.col("status") == "deferred")["disallowed"].sum()
        open_part = (washed.lots["open_adjusted_basis"] - washed.lots["open_basis"]).sum()
        away = washed.carried["amount"].sum() or Decimal(0)  # left with shares for an account not followed
        event(f"deferred loss carried away: {'some' if away else 'none'}")
        assert (deferred or 0) == (washed.disposals["wash_basis"].sum() or 0) + (open_part or 0) + away
        # ... and reported at each transfer's line, to the cent.
        said = sum((Decimal(m.group(1)) for m in reported if m), Decimal(0))
        assert abs(said - away) <= Decimal("0.005") * len(reported)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories(decimals=st.just(18), price_scale=10**6))
def test_eighteen_decimal_quantities_with_large_amounts_fall_back_to_the_python_pass(history: History) -> None:
    """With wei-sized quantities the splits keep the full 10^18: $10^8 amounts no longer fit
    128 bits, so the core hands the run over, and the result is the Python pass's."""
    compiled, python = both(history)
    same(compiled, python)
    if compiled.core != "none" and compiled.fallback is None:
        # Every quantity happened to be a multiple of a power of ten: the core could scale down.
        assert compiled.core == "compiled"


@st.composite
def straddles(draw: st.DrawFn) -> History:
    """Losses on lots held for different times, washed into one replacement lot R, whose
    shares so carry different tacked periods; R then sold (in one slice or two) around its
    first anniversary, where some of its shares are long-term and others not: the slice is cut
    by term and each piece washed on its own against a purchase in its window."""
    places = draw(st.sampled_from((0, 2, 6, 8)))
    step = 10 ** (18 - places)
    price = lambda units, low, high: units * draw(st.integers(low, high)) // 100  # noqa: E731  (cents a share)
    rows: list[tuple[int, str, str, str, int, int | None]] = []
    sizes = [draw(st.integers(1, 8 * UNIT // step)) * step for _ in range(draw(st.integers(2, 4)))]
    # Bought on different days, more than 30 days before the losses (so that R replaces them all).
    days = sorted(draw(st.lists(st.integers(0, 165), min_size=len(sizes), max_size=len(sizes), unique=True)))
    for i, (day, q) in enumerate(zip(days, sizes, strict=True)):  # bought on different days, sold in turn at a loss
        rows += [(day, "A", "X", ACQUIRE, q, price(q, 9_000, 11_000)), (200 + i, "A", "X", DISPOSE, q, price(q, 5_000, 8_000))]
    total = sum(sizes)
    r_day = 200 + draw(st.integers(0, 5))
    rows.append((r_day, "B", "X", ACQUIRE, total + draw(st.sampled_from((0, step, total))), price(total, 9_000, 11_000)))
    # R's ranges are dated back by the days each loss lot was held: sold between their
    # anniversaries (mostly), its shares are of both terms.
    held = [200 + i - day for i, day in enumerate(days)]
    sale = r_day + 365 - draw(st.integers(min(held) - 3, max(held) + 3))
    if draw(st.booleans()):  # a purchase in the window of R's sale
        rows.append((sale - draw(st.integers(0, 30)), "A", "X", ACQUIRE, total, price(total, 5_000, 7_000)))
    first = draw(st.sampled_from((total, total // 2 // step * step or step)))
    rows.append((sale, "B", "X", DISPOSE, first, price(first, 4_000, 13_000)))
    if first < total:
        rows.append((sale + draw(st.integers(0, 3)), "B", "X", DISPOSE, total - first, price(total - first, 4_000, 13_000)))
    return history_of(rows, decimals=places, month_end_rule=draw(st.booleans()))


@EXAMPLES
@given(straddles())
def test_slices_cut_by_term_give_the_python_pass_frames(history: History) -> None:
    compiled, python = both(history)
    same(compiled, python)
    assert (compiled.core, compiled.fallback) == ("compiled", None)
    event(f"slices cut by term: {'some' if compiled.disposals.height > history.slices else 'none'}")
    event(f"R's sale washed: {'yes' if compiled.washes['account'].eq('B').any() else 'no'}")


def test_a_slice_whose_shares_carry_both_terms_is_cut_in_two() -> None:
    """R (10 shares, day 200) replaces two losses: shares [0, 5) from a lot held 205 days,
    [5, 10) from one held 106. Sold on day 400, the first half is long-term (adjusted date day
    −5), the second short (day 94): two rows, each washed against the buy on day 395."""
    rows: list[tuple[int, str, str, str, int, int | None]] = [
        (0, "A", "X", ACQUIRE, 5 * UNIT, 500 * UNIT), (100, "A", "X", ACQUIRE, 5 * UNIT, 500 * UNIT),
        (200, "B", "X", ACQUIRE, 10 * UNIT, 1000 * UNIT),
        (205, "A", "X", DISPOSE, 5 * UNIT, 400 * UNIT), (206, "A", "X", DISPOSE, 5 * UNIT, 400 * UNIT),
        (395, "A", "X", ACQUIRE, 10 * UNIT, 700 * UNIT), (400, "B", "X", DISPOSE, 10 * UNIT, 700 * UNIT),
    ]
    history = history_of(rows)
    compiled, python = both(history)
    same(compiled, python)
    assert compiled.core == "compiled"
    sale = compiled.disposals.filter(pl.col("account") == "B").sort("term")
    assert sale["term"].to_list() == ["long", "short"]
    assert sale["quantity"].to_list() == [Decimal(5), Decimal(5)]
    assert sale["wash_basis"].to_list() == [Decimal(100), Decimal(100)]  # each half carries a $100 deferred loss
    assert (sale["adjustment"] > 0).all()  # and is washed again on its own


def history_of(rows: list[tuple[int, str, str, str, int, int | None]], *, decimals: int = 0, month_end_rule: bool = True) -> History:
    """(day, account, symbol, kind, quantity units, amount units) rows, all in household self."""
    events: list[dict[str, object]] = [
        {"scope": a, "account": a, "symbol": s, "kind": k, "date": START + dt.timedelta(days=day), "quantity": q, "amount": amt,
         "currency": "USD", "method": "fifo" if k == DISPOSE else None}
        for day, a, s, k, q, amt in rows
    ]
    settings = WashSettings(accounts=(("A", "self", TAXABLE), ("B", "self", TAXABLE), ("IRA", "self", ADVANTAGED)))
    return History(events, settings, frozenset(), month_end_rule, decimals)


def chain(q: int, dollars: int) -> list[tuple[int, str, str, str, int, int | None]]:
    """Buy, sell at a loss, buy back within 30 days, sell at a loss again, buy back (a chain
    of two washes, the second carrying the first's deferred loss), amounts ~ ``dollars`` a lot."""
    return [
        (0, "A", "X", ACQUIRE, q, 10 * dollars), (40, "A", "X", DISPOSE, q, 8 * dollars),
        (50, "B", "X", ACQUIRE, q, 9 * dollars), (60, "B", "X", DISPOSE, q, 7 * dollars),
        (70, "A", "X", ACQUIRE, q, 7 * dollars), (90, "IRA", "X", ACQUIRE, q // 2 or 1, 3 * dollars),
        (100, "A", "X", DISPOSE, q, 6 * dollars),
    ]


def test_a_split_in_one_symbol_leaves_the_other_symbols_to_the_core() -> None:
    """X's last loss is washed into a lot bought just before it, which is then split (the Python
    pass follows it); Y's washes touch no split or transfer (the compiled core books them):
    "compiled+python", and the Python pass's frames."""
    unit = 10**18
    rows = [*chain(4 * unit, 100 * unit), *[(day, a, "Y", k, q, amt) for day, a, _, k, q, amt in chain(2 * unit, 50 * unit)]]
    rows += [(95, "A", "X", ACQUIRE, 4 * unit, 600 * unit), (120, "A", "X", SPLIT_IN, 4 * unit, None)]  # a replacement, then split
    history = history_of(rows)
    booked = book_loop(history.events)
    disposals = booked.disposals.with_row_index("_i").sort(["seq", "_i"]).drop("_i")
    assert booked.splits.height

    def washed(core: str) -> Washed:
        return apply_wash_sales(booked.lots, disposals, history.events, history.crypto, history.settings, core=core,
                                splits=booked.splits, moves=booked.moves)

    compiled, python = washed("compiled"), washed("python")
    same(compiled, python)
    assert (compiled.core, python.core) == ("compiled+python", "python")
    assert compiled.washes["symbol"].unique().sort().to_list() == ["X", "Y"]
    split_lot = compiled.lots.filter((pl.col("symbol") == "X") & (pl.col("account") == "A") & (pl.col("open_quantity") > 0))
    assert split_lot["open_quantity"].sum() == 8  # 4 shares, 2-for-1
    assert (split_lot["open_adjusted_basis"] - split_lot["open_basis"]).sum() > 0  # with the deferred loss


def test_the_extension_is_built_and_runs_an_ordinary_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI must fail loudly if the build silently left the extension out: it is imported, and
    the default ("auto", no $TAXLENS_WASH_CORE) runs it on an everyday history."""
    from taxlens.lots import _washcore  # noqa: F401  (ImportError here: the extension was not built)

    monkeypatch.delenv("TAXLENS_WASH_CORE", raising=False)
    history = history_of(chain(10 * UNIT, 1000 * UNIT))  # 10 shares, $1,000s
    washed = apply_wash_sales(*_booked(history), history.crypto, history.settings)
    assert (washed.core, washed.fallback) == ("compiled", None)
    assert washed.washes.height >= 3 and washed.disposals["adjustment"].sum() > 0
    same(washed, history.washed("python"))


def _booked(history: History) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    booked = book_loop(history.events)
    return booked.lots, booked.disposals.with_row_index("_i").sort(["seq", "_i"]).drop("_i"), history.events


def test_the_core_is_chosen_by_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    history = history_of(chain(10 * UNIT, 1000 * UNIT))
    lots, disposals, events = _booked(history)
    monkeypatch.setenv("TAXLENS_WASH_CORE", "python")
    assert apply_wash_sales(lots, disposals, events, history.crypto, history.settings).core == "python"
    assert apply_wash_sales(lots, disposals, events, history.crypto, history.settings, core="compiled").core == "compiled"
    monkeypatch.setenv("TAXLENS_WASH_CORE", "fortran")
    with pytest.raises(ValueError, match="fortran"):
        apply_wash_sales(lots, disposals, events, history.crypto, history.settings)


def test_quantities_are_scaled_by_their_common_power_of_ten() -> None:
    """Quantities with 6 decimals are multiples of 10^12 units: the core divides them by that
    and splits with 10^6 for 10^18, so $10^9 amounts still fit 128 bits and it runs itself."""
    q = 1_234_567 * 10**12  # 1.234567 shares
    history = history_of(chain(q, 10**9 * UNIT))
    compiled = history.washed("compiled")
    assert (compiled.core, compiled.fallback) == ("compiled", None)
    same(compiled, history.washed("python"))


@pytest.mark.parametrize(
    ("q", "dollars"),
    [
        # 18 decimals (k = 0): a $10^6 loss times 10^18 needs about 2^139.
        (10**18 + 1, 10**5 * UNIT),
        # Whole shares (k = 18) but amounts near DECIMAL(38,18)'s limit, $5·10^19 a lot: no room for the splits' products.
        (7 * UNIT, 5 * 10**18 * UNIT),
    ],
)
def test_runs_the_core_cannot_do_exactly_fall_back_to_the_python_pass(q: int, dollars: int) -> None:
    history = history_of(chain(q, dollars))
    compiled, python = both(history)
    assert compiled.core == "python" and compiled.fallback is not None and "amounts too large" in compiled.fallback
    assert compiled.washes.height > 0
    same(compiled, python)


def test_a_value_outside_decimal_38_18_on_output_is_left_to_the_python_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Amounts within the core's bounds ($2·10^19 lots sold for nothing) whose deferred losses
    pile up along a chain past DECIMAL(38,18)'s 10^20: the core stops rather than wrap, and
    the Python pass does what it always did with such a value (polars refuses it)."""
    big = 2 * 10**19 * UNIT
    rows: list[tuple[int, str, str, str, int, int | None]] = [(0, "A", "X", ACQUIRE, UNIT, big)]
    for i in range(6):  # sell each lot for a unit, a lot bought 5 days before replacing it
        here, there = ("A", "B") if i % 2 == 0 else ("B", "A")
        rows += [(20 * i + 10, there, "X", ACQUIRE, UNIT, big), (20 * i + 15, here, "X", DISPOSE, UNIT, 1)]
    history = history_of(rows)
    reasons: list[str | None] = []
    compiled_pass = wash._Pass.compiled

    def spy(self: wash._Pass) -> tuple[object, str | None]:
        out, why = compiled_pass(self)
        reasons.append(why)
        return out, why

    monkeypatch.setattr(wash._Pass, "compiled", spy)
    outcomes: list[object] = []
    for core in ("compiled", "python"):
        try:
            outcomes.append(history.washed(core))
        except Exception as exc:  # the same error either way is the point
            outcomes.append(type(exc))
    assert reasons == ["a value outside DECIMAL(38,18)"]
    if isinstance(outcomes[0], Washed) and isinstance(outcomes[1], Washed):
        same(outcomes[0], outcomes[1])
    else:
        assert outcomes[0] == outcomes[1]


@given(
    total=st.integers(-(10**38) + 1, 10**38 - 1),
    k=st.integers(0, 18),
    whole=st.integers(1, 10**9),
    data=st.data(),
)
def test_scaling_every_quantity_by_a_common_power_of_ten_keeps_every_split(total: int, k: int, whole: int, data: st.DataObject) -> None:
    """The reasoning the core rests on, on Python ints: with quantities q = Q·10^k, _part's
    total·10^18/q and unit·x/10^18 are the rationals total·10^(18-k)/Q and unit·X/10^(18-k),
    so the half-even splits are the same integers."""
    end = data.draw(st.integers(0, whole))
    start = data.draw(st.integers(0, end))
    scale = 10**k

    assert wash._part(total, whole, start, end, 10 ** (18 - k)) == wash._part(total, whole * scale, start * scale, end * scale)


@given(st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9998, 12, 31)), st.booleans())
def test_the_core_computes_anniversaries_as_holding_does(day: dt.date, month_end_rule: bool) -> None:
    from taxlens.lots import _washcore

    epoch = dt.date(1970, 1, 1).toordinal()
    expected = anniversary(day, month_end_rule=month_end_rule).toordinal() - epoch
    assert _washcore.anniversary(day.toordinal() - epoch, month_end_rule) == expected


def test_anniversaries_at_month_ends_and_leap_days_and_out_of_range() -> None:
    from taxlens.lots import _washcore

    epoch = dt.date(1970, 1, 1).toordinal()
    for year in (1900, 2000, 2023, 2024, 2100):
        for month in range(1, 13):
            for day in (28, 29, 30, 31):
                try:
                    date = dt.date(year, month, day)
                except ValueError:
                    continue
                for rule in (True, False):
                    want = anniversary(date, month_end_rule=rule).toordinal() - epoch
                    assert _washcore.anniversary(date.toordinal() - epoch, rule) == want, (date, rule)
    assert _washcore.anniversary(dt.date(9999, 1, 1).toordinal() - epoch, True) is None  # year 10000: datetime has none
    assert _washcore.anniversary(dt.date(1, 1, 1).toordinal() - epoch - 1, True) is None


def test_amounts_pass_through_the_core_as_128_bit_values_not_python_ints() -> None:
    """The buffers the core reads and writes are Arrow Decimal128's: values past 2^64 and
    negative ones survive the round trip."""
    values = [0, 1, -1, 2**64 + 3, -(2**100), 10**38 - 1, -(10**38) + 1, None]
    column = pl.Series(values, dtype=pl.Int128).reinterpret(dtype=DECIMAL)
    data, valid = wash._units_buffer(column)  # type: ignore[misc]
    back = wash._decimal_column(memoryview(data.tobytes()), memoryview(valid.tobytes()))
    assert back.dtype == DECIMAL and back.to_physical().to_list() == values
    assert Decimal(back[3]) == Decimal(2**64 + 3).scaleb(-18)
