"""Wash sales (IRC §1091; tax-rules.md §3): one chronological pass per (household, group).

Runs after booking, on its lots and disposal slices. For every slice sold at a loss in a
taxable account, in order of sale, the shares acquired within 30 days before or after (same
household, substantially-identical group) are matched earliest first, each replacement share
used once (Reg. §1.1091-1(b)–(e)). The matched part of the loss is disallowed: the slice gets
code ``W`` and the amount (Form 8949 columns f and g), and the replacement shares get it added
to their basis with the sold shares' holding period tacked on, or, when they were bought in a
tax-advantaged account, the loss is gone for good (Rev. Rul. 2008-5).

Shares are tracked as ranges of a lot: a lot's sales take its shares in order (that is how the
booking consumes a lot), so the shares sold so far are a prefix ``[0, sold)``, and replacement
shares are handed out from ``max(sold, free)`` on. A later slice of a lot covers
``[c, c + q)`` and is cut where adjusted ranges begin and end; every piece then carries its own
basis, adjusted acquisition date and term. A replacement is sold after the loss that adjusted
it, so a single pass resolves chains. Between sales, booking may change lots (``_marks``): a
split resizes one (its shares, sold ones included, counted in the latest split's units), and
the pass moves the lot's ranges to the new units as it reaches the split; a transfer moves a
run of a lot's shares to a new lot in another account, and the pass moves their part of each
range with them, and what is left of them to hand out as replacements. So each deferred loss
stays with the same shares.

Interpretations (tax-rules §3.3, each the prevailing reading):
* shares of the lot being sold are never its replacement (WS-12); neither are other shares sold
  in the same sale, nor shares already sold before the loss sale;
* the window uses actual trade dates, never wash-adjusted ones;
* the adjusted acquisition date is ``replacement acquired − days the sold shares were held``.

All amounts are integer units of 1e-18 (DECIMAL(38,18)'s physical value), split with the same
half-even cumulative rule as booking, so the disallowed parts of a loss add up to it exactly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from taxlens.errors import RowError
from taxlens.ingest.frame import DECIMAL
from taxlens.lots import cores
from taxlens.lots.frames import (
    ACQUIRE,
    CARRIED_SCHEMA,
    DISPOSAL_SCHEMA,
    LOT_SCHEMA,
    TRANSFER_OUT,
    WASH_SCHEMA,
)
from taxlens.lots.holding import anniversary
from taxlens.money import SCALE, cents, div_units, plain

# The compiled core (taxlens/lots/_washcore.c, built by setup.py): optional, see apply_wash_sales.
_washcore, _WASHCORE_ERROR = cores.load("_washcore")

WINDOW = 30  # days either side of the sale (the 61-day period)
TAXABLE, ADVANTAGED, OUTSIDE = "taxable", "advantaged", "outside"
DEFERRED, PERMANENT, INFO = "deferred", "permanent", "info"
_EPOCH = dt.date(1970, 1, 1).toordinal()
_UNIT = 10**SCALE  # one share or dollar in units of 1e-18

#: Disposals after the pass: booking's columns plus what the wash pass decides.
WASHED_DISPOSAL_SCHEMA: dict[str, pl.DataType] = {
    **DISPOSAL_SCHEMA,
    "adjusted_acquired": pl.Date(),  # acquired, moved back by tacked holding periods
    "wash_basis": DECIMAL,  # the part of cost_basis that is a loss deferred by an earlier wash
}
#: Lots after the pass: a lot whose shares were partly used as replacements is cut into rows
#: (same lot_id and seq), one per range with its own adjusted basis and date.
WASHED_LOT_SCHEMA: dict[str, pl.DataType] = {**LOT_SCHEMA, "open_adjusted_basis": DECIMAL}


@dataclass(frozen=True)
class WashSettings:
    """Who and what the rule spans. ``accounts``: (account, household, role) for configured
    accounts; any other account is taxable and in ``default_household``."""

    apply: bool = True
    crypto: bool = False
    accounts: tuple[tuple[str, str, str], ...] = ()
    default_household: str = "self"
    groups: tuple[tuple[str, str], ...] = ()  # (symbol, group name)
    renamed: tuple[tuple[str, str], ...] = ()  # (symbol, the name of its rename group): one security to a broker


@dataclass
class Washed:
    lots: pl.DataFrame  # WASHED_LOT_SCHEMA
    disposals: pl.DataFrame  # WASHED_DISPOSAL_SCHEMA
    washes: pl.DataFrame  # WASH_SCHEMA
    problems: list[RowError] = field(default_factory=list)
    core: str = "none"  # the pass that ran: "compiled", "python", or "none" (nothing to wash)
    fallback: str | None = None  # why the compiled core was asked for but the Python pass ran
    carried: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=CARRIED_SCHEMA))  # losses gone out of sight


def _part(total: int, whole: int, start: int, end: int, one: int = _UNIT) -> int:
    """F(end) − F(start) for ``total`` spread over ``whole``, where F(x) = total at x = whole
    and unit × x otherwise (booking's cumulative half-even split: parts add up exactly).
    ``one``: one share in quantity units (10^18; the C core's scaled quantities use less)."""
    if start == 0 and end == whole:
        return total
    # taxlens.money's div_units and mul_units inlined (whole > 0): this runs for every range a
    # slice cuts, and the calls cost more than the arithmetic.
    unit, r = divmod(total * one, whole)
    if 2 * r > whole or (2 * r == whole and unit & 1):
        unit += 1
    if end == whole:
        hi = total
    else:
        hi, r = divmod(unit * end, one)
        if 2 * r > one or (2 * r == one and hi & 1):
            hi += 1
    if not start:
        return hi
    lo, r = divmod(unit * start, one)
    if 2 * r > one or (2 * r == one and lo & 1):
        lo += 1
    return hi - lo


def apply_wash_sales(
    lots: pl.DataFrame, disposals: pl.DataFrame, events: pl.DataFrame, crypto: frozenset[str],
    settings: WashSettings, *, month_end_rule: bool = True, core: str | None = None, splits: pl.DataFrame | None = None,
    moves: pl.DataFrame | None = None,
) -> Washed:
    """The wash-sale pass over booking's ``lots`` (LOT_SCHEMA) and ``disposals``
    (DISPOSAL_SCHEMA, in (sale, slice) order) for the ``events`` they were booked from.
    ``crypto``: the symbols that are digital assets. ``splits`` and ``moves``: the lots booking
    resized in splits (SPLIT_SCHEMA) and moved by transfers (MOVE_SCHEMA), whose adjusted shares
    the pass follows through them. Returns the adjusted lots and disposals, one row per wash
    match, and problems (adjustments taxlens could not carry).

    ``core`` picks the pass (default: $TAXLENS_WASH_CORE, else "auto"): "auto" runs the
    compiled core when it is built, "compiled" requires it (ImportError if it is not built),
    "python" runs the pure-Python pass, the reference. The compiled core hands a run it cannot
    do exactly (amounts too large for 128 bits at the run's quantity scale, dates datetime
    cannot hold, ...) to the Python pass; both give the same frames."""
    core = _core_choice(core)
    base_lots = lots.with_columns(pl.col("open_basis").alias("open_adjusted_basis"))
    base_disposals = disposals.with_columns(
        pl.col("acquired").alias("adjusted_acquired"), pl.lit(0, dtype=pl.Int128).reinterpret(dtype=DECIMAL).alias("wash_basis")
    )
    empty = pl.DataFrame(schema=WASH_SCHEMA)
    if not settings.apply or disposals.height == 0:
        return Washed(base_lots, base_disposals, empty)

    def tag(frame: pl.DataFrame) -> pl.DataFrame:
        return _scoped(frame, settings)

    acquired_seqs = events.filter(pl.col("kind") == ACQUIRE).select("seq")
    d = tag(base_disposals.with_row_index("_i")).filter(pl.col("_role") != OUTSIDE)
    lt = (
        tag(base_lots.with_row_index("_i"))
        .filter(pl.col("_role") != OUTSIDE)
        .with_columns(pl.col("seq").is_in(acquired_seqs["seq"].implode()).alias("_cand"))
    )
    if moves is not None and moves.height:
        lt = _moved_in(lt, moves)
    # Each (household, group) as one integer, _g (null for a null symbol, whose group matches
    # none): the axis and the filters work on it rather than on pairs of strings.
    hh_ids = {h: i for i, h in enumerate(sorted({settings.default_household, *(h for _, h, _ in settings.accounts)}))}
    groups = pl.concat([d["_grp"], lt["_grp"]]).drop_nulls().unique().sort()
    grp_ids = dict(zip(groups.to_list(), range(groups.len()), strict=True))
    group_id = (
        pl.col("_hh").replace_strict(hh_ids, return_dtype=pl.Int64) * len(grp_ids)
        + pl.col("_grp").replace_strict(grp_ids, default=None, return_dtype=pl.Int64)
    ).alias("_g")
    d, lt = d.with_columns(group_id), lt.with_columns(group_id)
    # Each slice's lot, found once for the filter below (_own_cand) and the pass (_lot).
    found = _lot_rows(d, lt)
    if found is not None:
        lot, strict = found
        d = d.with_columns(lot.alias("_lot"), lt["_cand"].gather(strict).fill_null(False).alias("_own_cand"))
    busy = _groups_with_a_possible_wash(d, lt)
    if not busy:
        return Washed(base_lots, base_disposals, empty)
    # Groups where a split or transfer changed lots go to the Python pass, which follows shares
    # through them; the rest (all, usually) to the compiled core when it runs. Groups never
    # share a lot or a slice, so the passes' rows merge back as one pass would give them.
    # A transfer out of a busy group may carry deferred losses into a group with no wash of its
    # own (another household's account): that group joins the Python pass to receive them.
    marks = _marks(splits, moves, lt, events)
    arrivals = _arrival_groups(marks, lt, busy)
    if core == "python":
        parts = [(busy + arrivals, True)]
    else:
        marked = _marked_groups(marks, lt)
        unmarked, followed = [g for g in busy if g not in marked], [g for g in busy if g in marked] + arrivals
        parts = [(groups, follow) for groups, follow in ((unmarked, False), (followed, True)) if groups]
    lots_parts, slice_parts, wash_parts, problems, carried = [], [], [], [], []
    ran: set[str] = set()
    fallback = None
    with _gc_paused():
        for part, follow in parts:
            dp, ltp = _narrowed(d, lt, part, found is not None)
            run = _Pass(settings, crypto, month_end_rule)
            run.load(dp, ltp, _marks(splits, moves, ltp, events) if follow else [])
            out = None
            if core != "python":
                out, why = run.compiled()
                fallback = fallback or why
            if out is None:
                run.go()
                out = run.output()
                ran.add("python")
            else:
                ran.add("compiled")
            problems += run.carry_problems()
            carried.append(run.carried_frame())
            if len(parts) == 1:  # the usual case: each frame built at once, its pieces freed
                lots, slices = _replaced(base_lots, [run.lot_pieces(base_lots, out.ranges)]), _replaced(base_disposals, [run.slice_pieces(out)])
                washes = run.washes_frame(base_lots, out.matches)
            else:
                lots_parts.append(run.lot_pieces(base_lots, out.ranges))
                slice_parts.append(run.slice_pieces(out))
                wash_parts.append(run.washes_frame(base_lots, out.matches).with_columns(run.d["_i"].gather(out.matches["j"]).alias("_at")))
            # Freed while the collector is still off: once on, it would first scan all of it again.
            del run, out
        if len(parts) > 1:
            lots, slices = _replaced(base_lots, lots_parts), _replaced(base_disposals, slice_parts)
            washes = pl.concat(wash_parts).sort("_at", maintain_order=True).drop("_at")
            del lots_parts, slice_parts, wash_parts
        washed = Washed(
            lots, slices, washes, problems,
            "python" if ran == {"python"} else "compiled" if ran == {"compiled"} else "compiled+python",
            fallback if "python" in ran else None,
            _dated(pl.concat(carried), events),
        )
    return washed


def _dated(carried: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """``carried`` (``_Pass.carried_frame``) with each transfer's tax date, in seq order."""
    if carried.height == 0:
        return pl.DataFrame(schema=CARRIED_SCHEMA)
    dates = events.filter(pl.col("kind") == TRANSFER_OUT).select("seq", "date")
    return carried.join(dates, on="seq", how="left").sort("seq", maintain_order=True).select(list(CARRIED_SCHEMA)).cast(CARRIED_SCHEMA)  # type: ignore[arg-type]


def _arrival_groups(marks: list[_Mark], lt: pl.DataFrame, busy: list[int]) -> list[int]:
    """The groups, not in ``busy``, of lots that transfers out of a busy group moved shares to."""
    g, washing = lt["_g"], set(busy)
    found = {g[m[5]] for m in marks if m[1] == _MOVE and m[2] >= 0 and m[5] >= 0 and g[m[2]] in washing}
    return sorted(x for x in found if x is not None and x not in washing)


def _marked_groups(marks: list[_Mark], lt: pl.DataFrame) -> set[int]:
    """The groups (``_g``) of the lots ``marks`` change (rows of ``lt``, both ends of a move)."""
    rows = {m[2] for m in marks if m[2] >= 0} | {m[5] for m in marks if m[1] == _MOVE and m[5] >= 0}
    return set(lt["_g"].gather(sorted(rows)).drop_nulls().to_list()) if rows else set()


def _narrowed(d: pl.DataFrame, lt: pl.DataFrame, groups: list[int], with_lot: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The slices ``d`` and lots ``lt`` of ``groups`` only, each slice's ``_lot`` (when
    ``with_lot``) renumbered to the kept lots: a slice whose lot is filtered out has none, as a
    lookup in the filtered lots would find."""
    wanted = pl.Series(groups, dtype=pl.Int64).implode()
    keep = lt["_g"].is_in(wanted)
    d = d.filter(pl.col("_g").is_in(wanted))
    if with_lot and not keep.all():
        row = pl.select(pl.when(keep).then(keep.cum_sum() - 1)).to_series()
        d = d.with_columns(row.gather(d["_lot"]).alias("_lot"))
    return d, lt.filter(keep)


def _replaced(base: pl.DataFrame, parts: list[tuple[pl.Series, pl.DataFrame] | None]) -> pl.DataFrame:
    """``base`` with the rows the passes replaced (``parts``: each pass's ascending rows and
    their new rows, or None) replaced, as one pass would have: the parts' rows never overlap."""
    found = [p for p in parts if p is not None]
    if not found:
        return base
    if len(found) == 1:
        return _replace_rows(base, *found[0])
    rows = pl.concat([r for r, _ in found])
    order = rows.to_frame("r").with_row_index("at").sort("r", maintain_order=True)["at"]  # a stable merge
    return _replace_rows(base, rows.gather(order), pl.concat([n for _, n in found]).select(found[0][1].columns)[order])


def _core_choice(core: str | None) -> str:
    """"compiled" or "python" for the pass (``cores.choose``; $TAXLENS_WASH_CORE)."""
    return cores.choose("wash-sale", "TAXLENS_WASH_CORE", _washcore, _WASHCORE_ERROR, core)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The pass keeps millions of small lists and tuples alive until its frames are built:
    the cyclic collector would rescan them again and again (a quarter of the time on a dense
    history) and find nothing, as the pass makes no cycles."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _groups_with_a_possible_wash(d: pl.DataFrame, lt: pl.DataFrame) -> list[int]:
    """The (household, group) pairs, as their ``_g``, where some taxable loss slice has an
    acquisition of another lot in its window: the only places a wash (and so a chain) can
    start. One sorted axis, no pairs enumerated."""
    losses = d.filter((pl.col("_role") == TAXABLE) & (pl.col("gain") < 0) & pl.col("lot_seq").is_not_null())
    cands = lt.filter("_cand")
    if losses.height == 0 or cands.height == 0:
        return []
    # Whether the sold lot is itself an acquisition: the lot with the slice's (scope, lot_seq,
    # lot_id), nulls matching nothing, every match counted (as a left join does). _own_cand
    # when _lot_rows found it; else (lots opened by one event in several rows: transfers) a
    # join on the three keys.
    if "_own_cand" not in losses.columns:
        losses = losses.join(
            lt.select("scope", pl.col("seq").alias("lot_seq"), "lot_id", pl.col("_cand").alias("_own_cand")),
            on=["scope", "lot_seq", "lot_id"], how="left",
        )
    span = 1 << 20  # days since 1970 fit in 20 bits until the year 4840

    def axis(day: str) -> pl.Expr:  # groups side by side on one integer axis
        return pl.col("_g") * span + pl.col(day).cast(pl.Int32).cast(pl.Int64)

    cx = np.sort(cands.filter(pl.col("_g").is_not_null()).select(axis("acquired"))["_g"].to_numpy())
    s = losses.filter(pl.col("_g").is_not_null()).select(
        "_g", axis("disposed").alias("x"), axis("acquired").alias("own"), pl.col("_own_cand").fill_null(False)
    )
    sx, own = s["x"].to_numpy(), s["own"].to_numpy()
    first, stop = _windows(cx, sx)
    count = stop - first
    # The sold lot itself may sit in the window; another acquisition must be there too.
    own_in = (own >= sx - WINDOW) & (own <= sx + WINDOW) & s["_own_cand"].to_numpy()
    hit = count > own_in.astype(np.int64)
    return sorted(s["_g"].filter(pl.Series(hit)).unique().to_list())


def _lot_rows(d: pl.DataFrame, lt: pl.DataFrame) -> tuple[pl.Series, pl.Series] | None:
    """Each slice's lot as a row of ``lt`` (null: none), the lot with the slice's (scope,
    lot_seq, lot_id): with nulls matching nulls as in a dict, and (the second) with nulls
    matching nothing as in a join; a null lot_seq matches nothing either way. Found by a join on
    lot_seq alone, one integer column, the other two keys then compared: so only when the
    lots' seqs are unique, as they are unless a transfer moved several lots in one event; None
    otherwise, and the callers join on all three."""
    if lt["seq"].n_unique() != lt.height:
        return None
    found = d.select("scope", "lot_seq", "lot_id").join(
        lt.select(pl.col("scope").alias("_scope"), pl.col("seq").alias("lot_seq"), pl.col("lot_id").alias("_lot_id"))
        .with_row_index("_lot"),
        on="lot_seq", how="left", maintain_order="left",
    )
    scope, lot_id, seq = pl.col("scope"), pl.col("lot_id"), pl.col("lot_seq")
    dict_like = scope.eq_missing(pl.col("_scope")) & lot_id.eq_missing(pl.col("_lot_id")) & seq.is_not_null()
    join_like = ((scope == pl.col("_scope")) & (lot_id == pl.col("_lot_id"))).fill_null(False) & seq.is_not_null()
    found = found.select(pl.when(dict_like).then("_lot").alias("dict"), pl.when(join_like).then("_lot").alias("join"))
    return found["dict"], found["join"]


def _windows(axis: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For days ``x`` on the (sorted) axis, the positions [first, stop) of the acquisitions at
    most WINDOW days away. One binary search per distinct day (days × groups: few), as a
    search per key in sale order would miss the cache on nearly every key."""
    days, at = np.unique(x, return_inverse=True)
    return np.searchsorted(axis, days - WINDOW, side="left")[at], np.searchsorted(axis, days + WINDOW, side="right")[at]


_SPAN = 1 << 20  # days since 1970 fit in 20 bits until the year 4840: groups side by side on one axis
_END = 1 << 62  # more days than any holding period: a start for a minimum or (negated) a maximum
#: One range of a lot's shares given a deferred loss: (start, end, loss added, days tacked).
_Seg = tuple[int, int, int, int]


class _Pass:
    """The pass's state as flat lists indexed by lot (a row of ``lt``) or slice (a row of ``d``),
    not an object per lot: the loop indexes lists, and there are far fewer objects to build and
    free. Output goes to flat lists, one record after another, cut into columns by slicing when
    the frames are built; the frames do the arithmetic that no decision in the loop needs on
    the columns (polars' DECIMAL(38,18) arithmetic is taxlens.money's, digit for digit).

    ``load`` reads the columns both passes run on; ``go`` (with ``output``) is the pure-Python
    pass, the reference, and ``compiled`` the same pass in taxlens/lots/_washcore.c. Both give
    a ``_Out``, from which the frames are built."""

    def __init__(self, settings: WashSettings, crypto: frozenset[str], month_end_rule: bool) -> None:
        self.settings, self.crypto, self.month_end_rule = settings, crypto, month_end_rule
        self.anniversaries: dict[int, int] = {}
        # Output, one record after another. Slices kept whole but changed, _ROW fields each:
        # (slice, loss disallowed, deferred loss carried in, tacked days); slices cut into a
        # piece per term, _SPLIT_ROW fields each: (slice, quantity, proceeds, basis, adjustment,
        # gain, adjusted acquired, wash basis); and matches, _MATCH fields each: (slice, lot,
        # first share used, shares, disallowed, tacked days).
        self.rows: list[int] = []
        self.split_rows: list[int | None] = []
        self.w: list[int] = []

    def _anniversary(self, acquired: int) -> int:
        day = dt.date.fromordinal(acquired + _EPOCH)
        ann = self.anniversaries[acquired] = anniversary(day, month_end_rule=self.month_end_rule).toordinal() - _EPOCH
        return ann

    def load(self, d: pl.DataFrame, lt: pl.DataFrame, marks: list[_Mark] | None = None) -> None:
        """Read the slices ``d``, lots ``lt`` and the splits and transfers that changed the lots
        between sales (``_marks``): what the pass runs on."""
        self.d = d = d.sort("_i")
        self.lt = lt
        self.marks = marks or []
        # (transfer seq, lot row) -> [shares, deferred loss, source] a transfer out of sight took away, in units
        self.carried_out: dict[tuple[int, int], list[Any]] = {}
        # Acquisitions of every (household, group) on one axis, group g's day x at g·_SPAN + x,
        # in (group, date, seq) order: a window never reaches into another group.
        cand = lt.with_row_index("_k").filter("_cand")
        # Same-day acquisitions in the order they were made (_moved_in: a moved lot's is its
        # purchase's, not its arrival's).
        order = "_order" if "_order" in lt.columns else "seq"
        on_axis = cand.select("_k", (pl.col("_g") * _SPAN + pl.col("acquired").cast(pl.Int32)).alias("_x"), order).sort(
            "_x", order, maintain_order=True
        )
        self.axis_lots = on_axis["_k"]  # the lots (rows of lt) in axis order
        self.taxable = lt["_role"] == TAXABLE
        axis = on_axis["_x"].to_numpy()
        # Each slice's lot as an index, found by a join rather than per-slice lookups: by
        # (scope, seq, lot_id), the last one of equal keys, nulls matching nulls as in a dict; a
        # shortfall slice (null lot_seq) has none.
        if "_lot" in d.columns:  # found by _lot_rows
            lot = d["_lot"]
        else:  # lots opened by one event in several rows (transfers): join on the three keys
            key = ["scope", "lot_seq", "lot_id"]
            lot_keys = lt.select("scope", pl.col("seq").alias("lot_seq"), "lot_id").with_row_index("_lot").unique(
                subset=key, keep="last"
            )
            lot = d.select(key).join(lot_keys, on=key, how="left", nulls_equal=True, maintain_order="left").select(
                pl.when(pl.col("lot_seq").is_not_null()).then("_lot").alias("_lot")
            )["_lot"]
        found = d.select(
            lot.alias("_lot"),
            # A slice can start a wash only if it is a taxable sale of a group with
            # acquisitions: x, its day on the acquisitions' axis, is null otherwise.
            pl.when((pl.col("_role") == TAXABLE) & pl.col("_g").is_in(cand["_g"].unique().implode()))
            .then(pl.col("_g") * _SPAN + pl.col("disposed").cast(pl.Int32)).alias("_x"),
            (pl.lit(self.settings.crypto) | ~pl.col("symbol").is_in(pl.Series(sorted(self.crypto), dtype=pl.String).implode()).fill_null(False))
            .alias("_applies"),
        ).with_columns(
            # A slice carrying no deferred loss is left as it is unless it is a loss to wash.
            ((d["gain"] < 0) & pl.col("_x").is_not_null()).fill_null(False).alias("_loss"),
        )
        assert found.height == d.height
        self.applies, self.slice_lot, self.slice_loss = found["_applies"], found["_lot"], found["_loss"]
        # Each slice's window as positions on the axis, [first, stop): a sorted search for all
        # slices at once rather than a bisection per loss.
        x = found["_x"].fill_null(0).to_numpy()
        first, self.window_stop = _windows(axis, x)
        self.window_first = pl.Series(first, dtype=pl.Int64).set(found["_x"].is_null(), None)  # type: ignore[arg-type]
        seq = d["seq"]
        self.sale_start = seq.ne_missing(seq.shift(1)).fill_null(True)  # the first slice of each sale
        # Basis less proceeds (the loss, before any deferred loss the shares carry): the one
        # amount the loop needs; the frames take proceeds and basis from the columns. (Like
        # every DECIMAL sum here, it raises rather than wraps past 10^20.)
        self.cost = d["cost_basis"].cast(DECIMAL) - d["proceeds"].cast(DECIMAL)

    def _lists(self) -> None:
        """The Python pass's state: the columns as lists, and the per-lot lists it updates."""
        d, lt = self.d, self.lt
        units = lambda f, c: f.get_column(c).cast(DECIMAL).to_physical().to_list()  # noqa: E731
        days = lambda f, c: f.get_column(c).cast(pl.Date).to_physical().to_list()  # noqa: E731
        n_lots = lt.height
        # Per lot: shares [0, sold) are sold; replacement shares are handed out from
        # max(sold, free); segs: the adjusted ranges in share order (None until the first),
        # and p: segs[:p] end before the shares sold so far, so no later slice reaches them.
        self.qty: list[int] = units(lt, "quantity")
        # A lot a split resized starts at its size before the first split (the lots frame has
        # its last size); _resize gives it each later one as the pass reaches the split.
        for mark in reversed(self.marks):
            if mark[1] == _SPLIT:
                self.qty[mark[2]] = mark[4]
        self.sold, self.free, self.p = [0] * n_lots, [0] * n_lots, [0] * n_lots
        self.segs: list[list[_Seg] | None] = [None] * n_lots
        self.group = _Group(self.axis_lots.to_list(), self.qty, self.sold, self.free, self.taxable.to_list(), self.segs, self.w)
        # A lot shares arrive as by transfer holds none to hand out until they arrive (_move).
        for mark in self.marks:
            if mark[1] == _MOVE and mark[5] >= 0:
                self.group.pending.add(mark[5])
                self.free[mark[5]] = self.qty[mark[5]]
        self.applies_: list[bool] = self.applies.to_list()
        self.slice_lot_: list[int | None] = self.slice_lot.to_list()
        self.window_first_: list[int | None] = self.window_first.to_list()
        self.window_stop_: list[int] = self.window_stop.tolist()
        self.slice_loss_: list[bool] = self.slice_loss.to_list()
        self.slice_q = units(d, "quantity")
        self.cost_: list[int | None] = self.cost.to_physical().to_list()
        self.acquired, self.disposed = days(d, "acquired"), days(d, "disposed")
        n = d.height
        starts = pl.arg_where(self.sale_start, eager=True).to_list() if n else []
        self.sales = list(zip(starts, [*starts[1:], n], strict=True))
        self.sale_seq: list[int] = d["seq"].gather(starts).to_list() if n else []

    def go(self) -> None:
        """The pass: every slice in order of sale, cut by the deferred losses its shares carry,
        its loss washed against the replacements in its window."""
        self._lists()
        lot_, first_, stop_, loss_, app_ = self.slice_lot_, self.window_first_, self.window_stop_, self.slice_loss_, self.applies_
        q_, cost_, acq_, disp_ = self.slice_q, self.cost_, self.acquired, self.disposed
        sold, segs_, p_ = self.sold, self.segs, self.p
        match, out = self.group.match, self.rows
        c0_ = [0] * len(lot_)
        marks, mark, sale_seq = self.marks, 0, self.sale_seq
        for sale, (k, end) in enumerate(self.sales):
            # Splits before this sale resize their lots first: shares, sold and adjusted
            # ranges all in the units the sale's slices count in.
            while mark < len(marks) and marks[mark][0] < sale_seq[sale]:
                self._changed(marks[mark])
                mark += 1
            # Every slice of the sale takes its shares first: none of them can replace another.
            for j in range(k, end):
                lot = lot_[j]
                if lot is not None:
                    c0_[j] = sold[lot]
                    sold[lot] += q_[j]
            for j in range(k, end):
                lot = lot_[j]
                if lot is None:
                    continue  # a shortfall: no shares to carry or to wash
                q, segs = q_[j], segs_[lot]
                if segs is not None:
                    # Skip the ranges that end before this slice's shares [c0, c1): the lot's
                    # slices come in share order, so they never reach them again.
                    c0, p, last = c0_[j], p_[lot], len(segs)
                    c1 = c0 + q
                    while p < last and segs[p][1] <= c0:
                        p += 1
                    p_[lot] = p
                    if p < last and (segs[p][0] < c1 or segs[p][0] <= c0):
                        s, e, adj, tack = segs[p]
                        if s <= c0 and c1 <= e:  # inside one range (the common case): one piece
                            adj_in = adj if s == c0 and e == c1 else _part(adj, e - s, c0 - s, c1 - s)
                        else:
                            merged = self._carried(segs, p, c0, c1, acq_[j], disp_[j])
                            if merged is None:  # shares of both terms: a piece each
                                self._pieces(j, lot, self._by_term(_cut(segs, p, c0, c1), acq_[j], disp_[j]))
                                continue
                            adj_in, tack = merged
                    elif loss_[j]:
                        adj_in = tack = 0
                    else:
                        continue  # unchanged: no deferred loss in it and no loss to wash
                elif loss_[j]:
                    adj_in = tack = 0
                else:
                    continue
                # The slice as one piece: its own proceeds, and its basis plus the loss it carries.
                cost = cost_[j]
                disallowed = 0
                if cost is not None and cost + adj_in > 0:
                    first = first_[j]
                    if first is not None:
                        disallowed = match(j, lot, q, cost + adj_in, first, stop_[j], app_[j], disp_[j] - acq_[j] + tack)
                if disallowed or adj_in:
                    out.extend((j, disallowed, adj_in, tack))
        for later in marks[mark:]:  # splits and transfers after the last sale: the lots' final state
            self._changed(later)

    def _changed(self, mark: _Mark) -> None:
        if mark[1] == _SPLIT:
            self._resize(*mark[2:])
        else:
            self._move(mark[0], *mark[2:])

    def _move(self, seq: int, k: int, start: int, m: int, to: int, source: str) -> None:
        """Shares ``[start, start + m)`` of lot ``k`` moved by transfer ``seq`` to lot ``to`` (-1: a
        lot the pass does not see, or none): they leave ``k`` as a sale would; the deferred loss
        on them, cut as a slice would cut it, goes with them to ``to``'s shares ``[0, m)`` with
        its tacked days, and so does what is left of them to hand out as replacements. Where it
        cannot follow them, it says so."""
        sold, free = self.sold, self.free
        used = 0
        if k >= 0:
            used = max(min(max(free[k], sold[k]), start + m) - start, 0)  # moved shares already a replacement
            sold[k] = start + m
        if to >= 0:
            free[to] = used
            self.group.pending.discard(to)
        segs, carried = self.segs[k] if k >= 0 else None, []
        for s, e, adj, tack in segs or ():
            lo, hi = max(s, start), min(e, start + m)
            if lo < hi:
                carried.append((lo - start, hi - start, adj if (lo, hi) == (s, e) else _part(adj, e - s, lo - s, hi - s), tack))
        if carried and to < 0:
            away = self.carried_out.setdefault((seq, k), [0, 0, source])
            away[0] += sum(hi - lo for lo, hi, _, _ in carried)
            away[1] += sum(adj for _, _, adj, _ in carried)
        elif carried:
            kept = self.segs[to]
            self.segs[to] = carried if kept is None else kept + carried

    def _resize(self, k: int, sold_before: int, before: int, sold_after: int, after: int) -> None:
        """Lot ``k`` resized by a split, as booking resized it (sold before, quantity before,
        sold after, quantity after): its sold shares, its next replacement share and its
        adjusted ranges move to the new units, each point mapped in proportion within the sold
        part and within the rest, so the ranges still tile the lot and every deferred loss and
        tacked day stays with its shares."""

        def moved(x: int) -> int:
            if x >= before:
                return after
            if x <= sold_before:
                return _scaled(x, sold_after, sold_before)
            return sold_after + _scaled(x - sold_before, after - sold_after, before - sold_before)

        cut = self.sold[k]
        self.qty[k], self.sold[k], self.free[k] = after, moved(cut), moved(self.free[k])
        segs = self.segs[k]
        if segs is None:
            return
        # A range the sold shares end inside is cut there first: its sold part keeps what the
        # slices took (F over the whole range, as they took it) and the rest the remainder, so
        # the later slices, dividing the rest over its new size, still add up to the loss.
        done: list[_Seg] = []
        rest: list[_Seg] = []
        for seg in segs:
            s, e, adj, tack = seg
            if e <= cut:
                done.append(seg)
            elif s >= cut:
                rest.append(seg)
            else:
                took = _part(adj, e - s, 0, cut - s)
                done.append((s, cut, took, tack))
                rest.append((cut, e, adj - took, tack))
        segs[:] = _remapped(done, moved, after) + _remapped(rest, moved, after)
        self.p[k] = 0  # re-skipped from the start: cheap, as a lot's ranges are few

    def _carried(self, segs: list[_Seg], k: int, c0: int, c1: int, acquired: int, disposed: int) -> tuple[int, int] | None:
        """Shares [c0, c1) of a lot (``segs[k]``: its first range that ends after c0) as one
        piece: (deferred loss, tacked days), or None when they are not all of one term. Merged
        shares keep the fewest tacked days among them (the latest adjusted date: never a longer
        holding period than every share had), which is what keeps chains from cutting lots
        ever finer; the amount stays an exact sum. The anniversary of a date never moves back as
        the date moves on, so the shares with the most and the fewest tacked days decide."""
        adj_sum, fewest, most = 0, _END, -_END
        at, n = c0, len(segs)
        while at < c1:
            if k == n or c1 <= segs[k][0]:  # the rest is past the ranges: nothing deferred
                fewest, most = min(fewest, 0), max(most, 0)
                break
            s, e, adj, tack = segs[k]
            if at < s:  # a gap before the range: nothing deferred
                fewest, most = min(fewest, 0), max(most, 0)
                at = s
            stop = c1 if c1 < e else e
            adj_sum += adj if at == s and stop == e else _part(adj, e - s, at - s, stop - s)
            if tack < fewest:
                fewest = tack
            if tack > most:
                most = tack
            at = stop
            k += 1
        anns = self.anniversaries
        latest, earliest = anns.get(acquired - fewest), anns.get(acquired - most)
        if latest is None:
            latest = self._anniversary(acquired - fewest)
        if earliest is None:
            earliest = self._anniversary(acquired - most)
        if (disposed > latest) != (disposed > earliest):
            return None
        return adj_sum, fewest

    def _by_term(self, pieces: list[tuple[int, int, int]], acquired: int, disposed: int) -> list[list[int]]:
        """``pieces`` (quantity, deferred loss, tacked days) merged by term, in the order the
        terms first appear: one short and one long, each with the fewest tacked days of its
        shares and the exact sums of their quantities and amounts."""
        merged: dict[bool, list[int]] = {}
        for pq, adj, tack in pieces:
            ann = self.anniversaries.get(acquired - tack)
            if ann is None:
                ann = self._anniversary(acquired - tack)
            entry = merged.get(disposed > ann)
            if entry is None:
                merged[disposed > ann] = [pq, adj, tack]
            else:
                entry[0] += pq
                entry[1] += adj
                if tack < entry[2]:
                    entry[2] = tack
        return list(merged.values())

    def _pieces(self, j: int, lot: int, pieces: list[list[int]]) -> None:
        """Wash what is a loss among the (several) ``pieces`` of slice ``j`` and record their
        rows, each with its part of the slice's proceeds and basis."""
        q, acquired, disposed = self.slice_q[j], self.acquired[j], self.disposed[j]
        first, stop = self.window_first_[j], self.window_stop_[j]
        proceeds, basis = (self.d[c].cast(DECIMAL).to_physical()[j] for c in ("proceeds", "cost_basis"))
        cum = 0
        for pq, adj_in, tack in pieces:
            pp = None if proceeds is None else _part(proceeds, q, cum, cum + pq)
            pb = None if basis is None else _part(basis, q, cum, cum + pq)
            cum += pq
            b = None if pb is None else pb + adj_in
            gain = None if b is None or pp is None else pp - b
            adj_acq = acquired - tack
            disallowed = 0
            if gain is not None and gain < 0 and first is not None:
                disallowed = self.group.match(j, lot, pq, -gain, first, stop, self.applies_[j], disposed - adj_acq)
            self.split_rows.extend((j, pq, pp, b, disallowed, None if gain is None else gain + disallowed, adj_acq, adj_in))

    def output(self) -> _Out:
        """The Python pass's records (``rows``, ``split_rows``, ``w``) as columns."""
        rows, split_rows, w = self.rows, self.split_rows, self.w
        matches = pl.DataFrame([
            pl.Series("j", w[0::_MATCH], dtype=pl.UInt32), pl.Series("k", w[1::_MATCH], dtype=pl.UInt32),
            _decimals(w[2::_MATCH]).alias("start"), _decimals(w[3::_MATCH]).alias("m"), _decimals(w[4::_MATCH]).alias("amount"),
            pl.Series("held", w[5::_MATCH], dtype=pl.Int32),
        ])
        # The adjusted ranges are the matches where the rule applied to a taxable replacement,
        # as _Group.match kept them in segs; a lot's were made in share order, which a stable
        # sort by lot keeps. Where splits or transfers changed lots, segs hold them as they end
        # (the same ranges otherwise, but gathering them from segs takes 1.4 s longer at 1M).
        if self.marks:
            kept = [(k, *seg) for k, segs in enumerate(self.segs) if segs for seg in segs]
            ranges = pl.DataFrame([
                pl.Series("k", [r[0] for r in kept], dtype=pl.UInt32),
                *(_decimals([r[c] for r in kept]).alias(name) for c, name in ((1, "s"), (2, "e"), (3, "adj"))),
                pl.Series("tack", [r[4] for r in kept], dtype=pl.Int32),
            ])
        else:
            ranges = matches.filter(self.applies.gather(matches["j"]) & self.taxable.gather(matches["k"])).select(
                "k", pl.col("start").alias("s"), (pl.col("start") + pl.col("m")).alias("e"), pl.col("amount").alias("adj"),
                pl.col("held").alias("tack"),
            ).sort("k", maintain_order=True)
        return _Out(
            pl.DataFrame([
                pl.Series("j", rows[0::_ROW], dtype=pl.UInt32), _decimals(rows[1::_ROW]).alias("adjustment"),
                _decimals(rows[2::_ROW]).alias("wash_basis"), pl.Series("tack", rows[3::_ROW], dtype=pl.Int32),
            ]),
            pl.DataFrame([
                pl.Series("j", split_rows[0::_SPLIT_ROW], dtype=pl.UInt32),
                *(_decimals(split_rows[c::_SPLIT_ROW]).alias(name)
                  for c, name in ((1, "quantity"), (2, "proceeds"), (3, "cost_basis"), (4, "adjustment"))),
                pl.Series("adjusted_acquired", split_rows[6::_SPLIT_ROW], dtype=pl.Int32),
                _decimals(split_rows[7::_SPLIT_ROW]).alias("wash_basis"), _decimals(split_rows[5::_SPLIT_ROW]).alias("gain"),
            ]),
            matches,
            ranges,
        )

    def compiled(self) -> tuple[_Out | None, str | None]:
        """The pass in the compiled core, on the loaded columns: (its output, None), or (None,
        why) when it cannot be exact here and the Python pass must run instead."""
        assert _washcore is not None  # cores.load gives none on a big-endian machine
        d, lt = self.d, self.lt
        if self.marks:
            return None, "lots changed by splits or transfers (the compiled core does not follow shares through them)"
        with_lot = self.slice_lot.is_not_null()
        # What the Python pass would trip over (None in arithmetic) is left to it.
        if lt["quantity"].null_count() or (with_lot & (d["quantity"].is_null() | d["acquired"].is_null() | d["disposed"].is_null())).any():
            return None, "a null quantity or date"
        lot_qty, q, cost, proceeds, basis = (
            _units_buffer(c) for c in (lt["quantity"], d["quantity"], self.cost, d["proceeds"], d["cost_basis"])
        )
        if lot_qty is None or q is None or cost is None or proceeds is None or basis is None:  # pragma: no cover
            return None, "DECIMAL columns not as 128-bit Arrow arrays"
        days = lambda c: d[c].cast(pl.Date).to_physical().fill_null(0).to_numpy()  # noqa: E731  (Int32)
        result = _washcore.run(
            lot_qty[0], _bytes(self.taxable), self.axis_lots.cast(pl.Int64).to_numpy(),
            self.slice_lot.fill_null(-1).cast(pl.Int64).to_numpy(), self.window_first.fill_null(-1).to_numpy(),
            self.window_stop.astype(np.int64), _bytes(self.slice_loss), _bytes(self.applies),
            q[0], cost[0], cost[1], proceeds[0], proceeds[1], basis[0], basis[1],
            np.ascontiguousarray(days("acquired"), dtype=np.int32), np.ascontiguousarray(days("disposed"), dtype=np.int32),
            _bytes(self.sale_start), self.month_end_rule,
        )
        if isinstance(result, str):
            return None, result
        r = {name: memoryview(column) for name, column in result.items() if name != "scale"}  # columns, not copied
        u32 = lambda c: pl.Series(c, np.frombuffer(r[c], dtype=np.uint32))  # noqa: E731
        i32 = lambda c: pl.Series(c, np.frombuffer(r[c], dtype=np.int32))  # noqa: E731
        dec = lambda c, valid=None: _decimal_column(r[c], None if valid is None else r[valid]).alias(c)  # noqa: E731
        return _Out(
            pl.DataFrame([
                u32("rows_j").alias("j"), dec("rows_disallowed").alias("adjustment"), dec("rows_adj_in").alias("wash_basis"),
                i32("rows_tack").alias("tack"),
            ]),
            pl.DataFrame([
                u32("split_j").alias("j"), dec("split_q").alias("quantity"), dec("split_proceeds", "split_proceeds_valid").alias("proceeds"),
                dec("split_basis", "split_basis_valid").alias("cost_basis"), dec("split_disallowed").alias("adjustment"),
                i32("split_adjusted_acquired").alias("adjusted_acquired"), dec("split_adj_in").alias("wash_basis"),
                dec("split_gain", "split_gain_valid").alias("gain"),
            ]),
            pl.DataFrame([
                u32("w_j").alias("j"), u32("w_k").alias("k"), dec("w_start").alias("start"), dec("w_m").alias("m"),
                dec("w_amount").alias("amount"), i32("w_held").alias("held"),
            ]),
            pl.DataFrame([
                u32("ranges_k").alias("k"), dec("ranges_s").alias("s"), dec("ranges_e").alias("e"), dec("ranges_adj").alias("adj"),
                i32("ranges_tack").alias("tack"),
            ]),
        ), None

    # -- frames ----------------------------------------------------------------------------------

    def slice_pieces(self, out: _Out) -> tuple[pl.Series, pl.DataFrame] | None:
        """The slices the pass changed, as rows of the base disposals (ascending) and the pieces
        that replace them (``_replaced`` puts them in); None when it changed none."""
        if not (out.rows.height or out.split.height):
            return None
        j, adj, wash_basis, tack = out.rows.get_columns()
        # A slice kept whole: its quantity and proceeds, and the loss it carries added to its basis.
        whole = self.d.select("quantity", "proceeds", "cost_basis", "acquired")[j].select(
            pl.lit(j).alias("j"), pl.col("quantity").cast(DECIMAL), pl.col("proceeds").cast(DECIMAL),
            (pl.col("cost_basis").cast(DECIMAL) + wash_basis).alias("cost_basis"), adj.alias("adjustment"),
            (pl.col("acquired").cast(pl.Int32) - tack).alias("adjusted_acquired"), wash_basis.alias("wash_basis"),
        ).with_columns((pl.col("proceeds") - pl.col("cost_basis") + pl.col("adjustment")).alias("gain"))
        pieces = pl.concat([whole, out.split]).sort("j", maintain_order=True)
        # The term of each adjusted date, from the anniversary of each distinct one.
        anns = self.anniversaries
        ann = {a: anns[a] if a in anns else self._anniversary(a) for a in pieces["adjusted_acquired"].unique().to_list()}
        pieces = pieces.with_columns(
            pl.when(pl.col("adjustment") != 0).then(pl.lit("W")).alias("adjustment_code"),
            pl.when(self.d["disposed"].cast(pl.Date).to_physical().gather(pieces["j"])
                    > pl.col("adjusted_acquired").replace_strict(ann, return_dtype=pl.Int32)).then(pl.lit("long")).otherwise(pl.lit("short"))
            .alias("term"),
            pl.col("adjusted_acquired").cast(pl.Date),
        )
        return self.d["_i"].gather(pieces["j"]), pieces.drop("j")

    def lot_pieces(self, base: pl.DataFrame, segs: pl.DataFrame) -> tuple[pl.Series, pl.DataFrame] | None:
        """Every lot that received adjustments (``segs``: the adjusted ranges) cut into its
        ranges, the adjusted ones and the gaps between them, covering [0, quantity): rows of the
        base lots (``base``, ascending) and the rows that replace them (``_replaced`` puts them
        in); None when no lot was adjusted. Computed on the columns, as polars multiplies and
        divides DECIMAL(38,18) exactly as mul_units and div_units do."""
        if segs.height == 0:
            return None
        zero = pl.lit(0, dtype=pl.Int128).reinterpret(dtype=DECIMAL)
        k, s, e = pl.col("k"), pl.col("s"), pl.col("e")
        # Ranges in order from a sort key: 3p + 1 for the adjusted range at position p, 3p for
        # the gap before it, 3p + 2 for the gap after it when it is its lot's last.
        lots = self.lt.select("_i", "quantity")[segs["k"]]
        segs = segs.with_columns(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("at"), lots["quantity"].alias("q"),
            pl.when(k == k.shift(1)).then(e.shift(1)).otherwise(zero).alias("before"),  # where the previous range ends
            (k != k.shift(-1)).fill_null(True).alias("last"),
        )
        ranges = pl.concat([
            segs.select("k", "s", "e", "adj", "tack", (3 * pl.col("at") + 1).alias("at")),
            segs.filter(s > pl.col("before")).select("k", pl.col("before").alias("s"), s.alias("e"), zero.alias("adj"),
                                                     pl.lit(0, pl.Int32).alias("tack"), (3 * pl.col("at")).alias("at")),
            segs.filter(pl.col("last") & (e < pl.col("q"))).select("k", e.alias("s"), pl.col("q").alias("e"), zero.alias("adj"),
                                                                 pl.lit(0, pl.Int32).alias("tack"), (3 * pl.col("at") + 2).alias("at")),
        ]).sort("at").drop("at")
        row = self.lt["_i"].gather(ranges["k"])
        lot = base.select("quantity", "cost_basis", "open_quantity", "acquired")[row]
        # Each range's basis is F(e) − F(s): the lot's basis spread over its shares as _part does,
        # F(x) = basis at x = quantity, unit × x below. Of the shares still open, [open_s, e):
        # none (nothing), all (the range's own) or the later part (split as _part splits it).
        # One step per column, so each product is computed once.
        q, b, adj = pl.col("quantity"), pl.col("cost_basis"), pl.col("adj")
        unit, f_e, cb, open_s, open_q, ob = (pl.col(c) for c in ("unit", "f_e", "cb", "open_s", "open_q", "ob"))
        used = q - pl.col("open_quantity")
        cut = (
            pl.concat([ranges, lot], how="horizontal")
            .with_columns((b / q).alias("unit"), pl.when(s > used).then(s).otherwise(used).alias("open_s"))
            .with_columns(pl.when(e == q).then(b).otherwise(unit * e).alias("f_e"),
                          pl.when(e > open_s).then(e - open_s).otherwise(zero).alias("open_q"))
            .with_columns((f_e - unit * s).alias("cb"), (open_q == 0).alias("none_open"), (open_s == s).alias("all_open"))
            .with_columns(
                pl.when("none_open").then(pl.when(b.is_not_null()).then(zero)).when("all_open").then(cb)
                .otherwise(f_e - unit * open_s).alias("ob"),
                pl.when("none_open").then(zero).when("all_open").then(adj).otherwise(adj - adj / (e - s) * (open_s - s)).alias("oadj"),
            )
            .select(
                (e - s).alias("quantity"), cb.alias("cost_basis"), (cb + adj).alias("adjusted_basis"), open_q.alias("open_quantity"),
                ob.alias("open_basis"), (ob + pl.col("oadj")).alias("open_adjusted_basis"),
                (pl.col("acquired").cast(pl.Int32) - pl.col("tack")).cast(pl.Date).alias("adjusted_acquired"),
            )
        )
        return row, cut

    def washes_frame(self, lots: pl.DataFrame, w: pl.DataFrame) -> pl.DataFrame:
        """The matches ``w`` as WASH_SCHEMA rows: the loss slice's columns gathered from the
        slices by row, the replacement's from ``lots`` (the base lots frame) by row."""
        if not w.height:
            return pl.DataFrame(schema=WASH_SCHEMA)
        sale = self.d.select(
            pl.col("_hh").alias("household"), pl.col("_grp").alias("wash_group"), "account", "symbol", "sell_trade_id",
            "disposed", "lot_id", "seq", "source",
        )[w["j"]]
        rep = lots.select(
            pl.col("account").alias("replacement_account"), pl.col("symbol").alias("replacement_symbol"),
            pl.col("lot_id").alias("replacement_lot_id"), pl.col("acquired").alias("replacement_acquired"),
            pl.col("seq").alias("replacement_seq"),
        )[self.lt["_i"].gather(w["k"])]
        # Where the rule does not apply (crypto, unless configured) a match is only listed.
        applies = self.applies.gather(w["j"])
        role = self.lt["_role"].gather(w["k"])
        frame = pl.concat([sale, rep], how="horizontal").with_columns(
            w["m"].alias("quantity"), w["amount"].alias("disallowed"), w["held"].alias("tacked_days"),
            pl.when(~applies).then(pl.lit(INFO)).when(role == ADVANTAGED).then(pl.lit(PERMANENT)).otherwise(pl.lit(DEFERRED))
            .alias("status"),
        )
        # A broker sees its own account's wash sales of one security: one symbol, or a rename's two.
        renamed = dict(self.settings.renamed)

        def security(column: str) -> pl.Expr:
            return pl.col(column).replace_strict(renamed, default=pl.col(column), return_dtype=pl.String) if renamed else pl.col(column)

        return frame.with_columns(
            ((pl.col("replacement_account") == pl.col("account")) & (security("replacement_symbol") == security("symbol"))
             & (pl.col("status") != INFO)).alias("broker_reported")
        ).select(list(WASH_SCHEMA)).cast(WASH_SCHEMA)  # type: ignore[arg-type]

    def carry_problems(self) -> list[RowError]:
        """Where the pass could not follow adjusted shares through a transfer: how many, and
        the deferred loss they took along, to the cent (a transfer's lots together)."""
        per_transfer: dict[str, list[int]] = {}
        for shares, loss, source in self.carried_out.values():
            total = per_transfer.setdefault(source, [0, 0])
            total[0] += shares
            total[1] += loss
        return [
            RowError.at(source, f"a transfer moved {plain(Decimal(shares).scaleb(-SCALE))} shares carrying "
                                f"{cents(Decimal(loss).scaleb(-SCALE))} of losses deferred by wash sales where taxlens does not "
                                "follow them (an account not in the data, or outside the wash-sale scope): the loss goes with "
                                "them, into their basis there (add it by hand)")
            for source, (shares, loss) in per_transfer.items()
        ]

    def carried_frame(self) -> pl.DataFrame:
        """``carried_out`` as rows of CARRIED_SCHEMA but ``date`` (the caller has the events)."""
        keys = list(self.carried_out)
        rows = pl.Series([k for _, k in keys], dtype=pl.UInt32)
        return pl.DataFrame([
            self.lt["account"].gather(rows), self.lt["symbol"].gather(rows), self.lt["lot_id"].gather(rows),
            _decimals([v[0] for v in self.carried_out.values()]).alias("quantity"),
            _decimals([v[1] for v in self.carried_out.values()]).alias("amount"),
            pl.Series("seq", [seq for seq, _ in keys], dtype=pl.Int64),
            pl.Series("source", [v[2] for v in self.carried_out.values()], dtype=pl.String),
        ])


_ROW, _SPLIT_ROW, _MATCH = 4, 8, 6  # fields per record of _Pass.rows, _Pass.split_rows and _Pass.w


@dataclass
class _Out:
    """What a pass decided, as columns (j: a slice, a row of ``d``; k: a lot, a row of ``lt``),
    whichever pass ran: the frames are built from these alone."""

    rows: pl.DataFrame  # slices kept whole but changed: j, adjustment (disallowed), wash_basis (deferred loss in), tack
    split: pl.DataFrame  # slices cut by term: j, quantity, proceeds, cost_basis, adjustment, adjusted_acquired, wash_basis, gain
    matches: pl.DataFrame  # j, k, start (first replacement share used), m (shares), amount (disallowed), held (days)
    ranges: pl.DataFrame  # adjusted ranges in (lot, share) order: k, shares [s, e), adj (loss added), tack (days)


def _moved_in(lt: pl.DataFrame, moves: pl.DataFrame) -> pl.DataFrame:
    """``lt`` with the lots transfers moved shares into (MOVE_SCHEMA's arrivals) marked as
    acquisitions (``_cand``): shares a transfer moved are still those bought on their date, so
    the lot they arrive as is a replacement like the one they left (from the move on:
    _Group.pending). ``_order`` ranks same-day acquisitions: a lot's seq, or for an arrival its
    purchase's (followed back through every move)."""
    first: dict[tuple[Any, ...], int] = {}
    for scope, lot_seq, lot_id, to_scope, to_seq, to_lot_id in moves.filter(pl.col("to_seq").is_not_null()).sort("seq", maintain_order=True).select(
        "scope", "lot_seq", "lot_id", "to_scope", "to_seq", "to_lot_id"
    ).iter_rows():
        first[(to_scope, to_seq, to_lot_id)] = first.get((scope, lot_seq, lot_id), lot_seq)
    arrived = pl.DataFrame(
        [(*key, seq) for key, seq in first.items()], schema={"scope": pl.String, "seq": pl.Int64, "lot_id": pl.String, "_first": pl.Int64},
        orient="row",
    )
    return lt.join(arrived, on=["scope", "seq", "lot_id"], how="left", nulls_equal=True, maintain_order="left").with_columns(
        (pl.col("_cand") | pl.col("_first").is_not_null()).alias("_cand"), pl.col("_first").fill_null(pl.col("seq")).alias("_order"),
    ).drop("_first")


def _remapped(segs: list[_Seg], moved: Callable[[int], int], size: int) -> list[_Seg]:
    """``segs`` (ranges in share order) with their ends ``moved`` to a lot's new units (of
    ``size`` shares). A sliver a reverse split leaves without a unit gives its loss to a
    neighbour (the range before it, or else the next): never lost."""
    kept: list[_Seg] = []
    pending = 0
    for s, e, adj, tack in segs:
        ns, ne = moved(s), moved(e)
        if ns == ne:
            if kept:
                ps, pe, padj, ptack = kept[-1]
                kept[-1] = (ps, pe, padj + adj, ptack)
            else:
                pending += adj
            continue
        kept.append((ns, ne, adj + pending, tack))
        pending = 0
    if pending:  # every range was a sliver: one unit of the lot carries them all
        at = min(moved(segs[0][0]), size - 1)
        kept.append((at, at + 1, pending, segs[0][3]))
    return kept


def _scaled(x: int, to: int, whole: int) -> int:
    """``x`` of ``whole`` units as units of ``to``: x × to ÷ whole, rounded half to even (0
    when ``whole`` is 0), so 0 and ``whole`` land exactly on 0 and ``to``."""
    return div_units(x * to, whole * _UNIT) if whole else 0


_SPLIT, _MOVE = 0, 1
#: A change to lots between sales, in seq order: (seq, _SPLIT, lot row, sold before, quantity
#: before, sold after, quantity after) or (seq, _MOVE, lot row or -1, start, shares, row it
#: arrived as or -1, the transfer's source), in units; -1: a lot the pass does not see.
_Mark = tuple[Any, ...]


def _marks(splits: pl.DataFrame | None, moves: pl.DataFrame | None, lt: pl.DataFrame, events: pl.DataFrame) -> list[_Mark]:
    """The splits (SPLIT_SCHEMA) and transfers (MOVE_SCHEMA) that changed lots of ``lt``,
    matched to its rows by scope, lot_seq and lot_id, as ``_Mark``s in seq order (a transfer's
    pieces in the order it took them)."""
    if lt.height == 0 or ((splits is None or splits.height == 0) and (moves is None or moves.height == 0)):
        return []
    key = ["scope", "lot_seq", "lot_id"]
    rows = lt.select("scope", pl.col("seq").alias("lot_seq"), "lot_id").with_row_index("_k")
    rows = rows.unique(subset=key, keep="last", maintain_order=True)
    marks: list[_Mark] = []
    units = lambda f, c: f[c].cast(DECIMAL).to_physical().to_list()  # noqa: E731
    if splits is not None and splits.height:
        found = splits.join(rows, on=key, how="inner", nulls_equal=True, maintain_order="left")
        marks += zip(found["seq"].to_list(), [_SPLIT] * found.height, found["_k"].to_list(),
                     *(units(found, c) for c in ("sold_before", "quantity_before", "sold_after", "quantity_after")), strict=True)
    if moves is not None and moves.height:
        arrived = rows.select(pl.col("scope").alias("to_scope"), pl.col("lot_seq").alias("to_seq"), pl.col("lot_id").alias("to_lot_id"),
                              pl.col("_k").alias("_to"))
        # A move whose lot the pass does not see (an account outside the rule) still fills the
        # lot it arrives as, if the pass sees that one: -1 stands for the lot it does not see.
        found = (
            moves.join(rows, on=key, how="left", nulls_equal=True, maintain_order="left")
            .join(arrived, on=["to_scope", "to_seq", "to_lot_id"], how="left", nulls_equal=True, maintain_order="left")
            .filter(pl.col("_k").is_not_null() | pl.col("_to").is_not_null())
            .join(events.select("seq", "source"), on="seq", how="left", maintain_order="left")
        )
        marks += zip(found["seq"].to_list(), [_MOVE] * found.height, found["_k"].fill_null(-1).to_list(), units(found, "start"),
                     units(found, "quantity"), found["_to"].fill_null(-1).to_list(), found["source"].to_list(), strict=True)
    marks.sort(key=lambda mark: mark[0])  # stable: one event's marks keep their order
    return marks


def _units_buffer(column: pl.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """A DECIMAL(38,18) column as (16-byte little-endian two's complement values, one per row:
    Arrow Decimal128's data buffer, the physical units as __int128; 1 where not null, one byte
    per row) for the compiled core; None if polars does not hand it over as Decimal128."""
    arr = column.cast(DECIMAL).to_arrow()
    if isinstance(arr, pa.ChunkedArray):  # pragma: no cover - a Series converts to one array
        arr = arr.combine_chunks()
    if not pa.types.is_decimal128(arr.type):  # pragma: no cover
        return None
    n = len(arr)
    data = np.frombuffer(arr.buffers()[1], dtype=np.uint8)[16 * arr.offset : 16 * (arr.offset + n)] if n else np.zeros(0, np.uint8)
    return data, _bytes(column.is_not_null())


def _bytes(flags: pl.Series) -> np.ndarray:
    """A Boolean column (nulls as False) as one byte per row."""
    return flags.fill_null(False).to_numpy().view(np.uint8)


def _decimal_column(units: memoryview, valid: memoryview | None = None) -> pl.Series:
    """DECIMAL(38,18) from the compiled core's 16-byte values (and one byte per row, 1 where
    not null), through an Arrow Decimal128 array: no value passes through a Python int."""
    n = units.nbytes // 16
    validity = None
    if valid is not None:
        flags = np.frombuffer(valid, dtype=np.bool_)
        if not flags.all():
            validity = pa.py_buffer(np.packbits(flags, bitorder="little"))
    return pl.Series(pa.Array.from_buffers(pa.decimal128(38, SCALE), n, [validity, pa.py_buffer(units)]))


def _decimals(units: Sequence[int | None]) -> pl.Series:
    """DECIMAL(38,18) from units, as booking builds its columns."""
    from taxlens.lots._loopfast import FastLoop

    return FastLoop._decimals(units)


def _replace_rows(base: pl.DataFrame, rows: pl.Series, new: pl.DataFrame) -> pl.DataFrame:
    """``base`` with row ``rows[k]`` replaced by ``new``'s row k in the columns ``new`` has (the
    others copied): a row named n times becomes n rows in its place, in ``new``'s order.
    ``rows`` must be ascending. Gathers by position, instead of concatenating and sorting."""
    n = base.height
    r = rows.to_numpy()
    count = np.bincount(r, minlength=n)
    named = count > 0
    if count.max() > 1 and all(new[c].dtype == base[c].dtype for c in new.columns):
        # Rows repeated (a lot cut into ranges): each column gathered once, the replaced ones
        # from new and base one after the other, rather than all of base and then choosing.
        src = np.repeat(np.arange(n, dtype=np.int64), np.where(named, count, 1))
        named = named[src]
        pick = pl.Series(np.where(named, np.cumsum(named, dtype=np.int64) - 1, new.height + src), dtype=pl.UInt32)
        take = pl.Series(src, dtype=pl.UInt32)
        return pl.DataFrame([
            pl.concat([new[c], base[c]], rechunk=False).gather(pick) if c in new.columns else base[c].gather(take) for c in base.columns
        ])
    if count.max() > 1:
        src = np.repeat(np.arange(n, dtype=np.uint32), np.where(named, count, 1))
        base, named = base[src], named[src]
    # Row i of the result takes new's row at the running count of named rows (new is in order).
    at = pl.Series(np.cumsum(named, dtype=np.int64) - 1).clip(0).cast(pl.UInt32)
    is_new = pl.Series(named)
    return base.with_columns(
        pl.when(is_new).then(new[c].gather(at)).otherwise(pl.col(c)).alias(c) for c in new.columns
    )


def _cut(segs: list[_Seg], k: int, c0: int, c1: int) -> list[tuple[int, int, int]]:
    """Shares [c0, c1) of a lot as pieces (quantity, deferred loss they carry, tacked days);
    ``segs[k]`` is the first range that ends after c0."""
    out: list[tuple[int, int, int]] = []
    at, n = c0, len(segs)
    while at < c1:
        if k == n:
            out.append((c1 - at, 0, 0))
            break
        s, e, adj, tack = segs[k]
        if at < s:
            stop = c1 if c1 < s else s
            out.append((stop - at, 0, 0))
            at = stop
            continue
        stop = c1 if c1 < e else e
        out.append((stop - at, adj if at == s and stop == e else _part(adj, e - s, at - s, stop - s), tack))
        at = stop
        k += 1
    return out


class _Group:
    """The acquisitions of every (household, group) as lots (rows of ``lt``) in (group, date,
    seq) order, with exhausted lots skipped in near-constant time (a union-find "next live
    lot" pointer). Works on the pass's per-lot lists and records matches into its ``w``."""

    __slots__ = ("free", "lots", "nxt", "pending", "qty", "segs", "sold", "taxable", "w")

    def __init__(
        self, lots: list[int], qty: list[int], sold: list[int], free: list[int], taxable: list[bool],
        segs: list[list[_Seg] | None], w: list[int],
    ) -> None:
        self.lots = lots
        self.nxt = list(range(len(lots) + 1))  # the last one: past every lot, always live
        self.qty, self.sold, self.free, self.taxable, self.segs, self.w = qty, sold, free, taxable, segs, w
        self.pending: set[int] = set()  # lots a transfer has yet to fill: empty now, never skipped for good

    def match(self, j: int, sold_lot: int, q: int, loss: int, first: int, stop: int, applies: bool, held: int) -> int:
        """Replacements among acquisitions [first, stop) (the window) for ``q`` shares of lot
        ``sold_lot`` sold by slice ``j`` at a ``loss`` (> 0), earliest first: records each
        match, marks the shares used and, when the rule ``applies`` to a taxable replacement,
        adds the loss to its range. Returns the loss disallowed (0 when the rule does not apply)."""
        lots, nxt, qty, sold, free, taxable, segs_, w = self.lots, self.nxt, self.qty, self.sold, self.free, self.taxable, self.segs, self.w
        i = first
        need, matched, total = q, 0, 0
        # The loss is split as _part(loss, q, matched, matched + m) does, dividing once: each
        # part is F(its end) − F(its start), and F(start) is the previous part's F(end).
        # div_units and mul_units are inlined (half-even, as theirs).
        unit = lo = 0
        while need > 0:
            if nxt[i] != i:  # skip exhausted lots, compressing the path
                root = nxt[i]
                while nxt[root] != root:
                    root = nxt[root]
                while nxt[i] != root:
                    nxt[i], i = root, nxt[i]
                i = root
            if i >= stop:
                break
            k = lots[i]
            start, qk = free[k], qty[k]
            if sold[k] > start:
                start = sold[k]
            if start >= qk:
                if k not in self.pending:
                    nxt[i] = i + 1  # used up or sold: never a replacement again
                i += 1
                continue
            if k == sold_lot:
                i += 1
                continue
            m = qk - start
            if need < m:
                m = need
            end = matched + m
            if end == q:
                amount = loss - lo if matched else loss
            else:
                if not matched:
                    unit, r = divmod(loss * _UNIT, q)  # div_units(loss, q); loss, q > 0
                    if 2 * r > q or (2 * r == q and unit & 1):
                        unit += 1
                hi, r = divmod(unit * end, _UNIT)  # mul_units(unit, end)
                if 2 * r > _UNIT or (2 * r == _UNIT and hi & 1):
                    hi += 1
                amount, lo = hi - lo, hi
            matched = end
            need -= m
            end = free[k] = start + m
            if applies:
                total += amount
                if taxable[k]:
                    segs = segs_[k]
                    if segs is None:
                        segs_[k] = [(start, end, amount, held)]
                    else:
                        segs.append((start, end, amount, held))
            w.extend((j, k, start, m, amount, held))
            if end >= qk:
                nxt[i] = i + 1
            i += 1
        return total


def _scoped(frame: pl.DataFrame, settings: WashSettings) -> pl.DataFrame:
    """``frame`` (``account``, ``symbol``) with whom and what the rule spans for each row: its
    household (``_hh``), its account's role (``_role``) and its symbol's group (``_grp``)."""
    households = {a: h for a, h, _ in settings.accounts}
    roles = {a: r for a, _, r in settings.accounts}
    return frame.with_columns(
        pl.col("account").replace_strict(households, default=settings.default_household, return_dtype=pl.String).alias("_hh"),
        pl.col("account").replace_strict(roles, default=TAXABLE, return_dtype=pl.String).alias("_role"),
        pl.col("symbol").replace_strict(dict(settings.groups), default=pl.col("symbol"), return_dtype=pl.String).alias("_grp"),
    )


def bought_before(lots: pl.DataFrame, purchases: pl.DataFrame, settings: WashSettings, crypto: frozenset[str]) -> pl.Series:
    """For each of ``lots`` (``account``, ``symbol``, ``lot_id``, ``price_date``), the shares of
    its symbol (or symbol group) bought in its household, tax-advantaged accounts included, in
    the 30 days up to ``price_date``, its own purchase left out: what would make a loss sale of
    it on that date a wash sale (to that many shares, as far as no earlier loss used them; a
    purchase in the 30 days after would too). Null where the rule does not apply: no date, a
    lot outside a taxable account, a digital asset unless [wash_sales] crypto is set.
    ``purchases``: buys and reinvestments (``id``, ``account``, ``symbol``, ``trade_date``,
    ``quantity``), ``Store.purchases``. Quantities are as bought (a split since is not applied)."""
    key = ["_hh", "_grp", "price_date"]
    held = _scoped(lots.select("account", "symbol", "lot_id", "price_date"), settings).with_row_index("_row")
    applies = (pl.col("_role") == TAXABLE) & pl.col("price_date").is_not_null()
    if not settings.crypto:
        applies &= ~pl.col("symbol").is_in(list(crypto))
    windows = held.filter(applies).select(key).unique()
    bought = (
        _scoped(purchases, settings).filter(pl.col("_role") != OUTSIDE)
        .join(windows, on=["_hh", "_grp"])
        .filter(pl.col("trade_date").is_between(pl.col("price_date") - pl.duration(days=30), pl.col("price_date")))
    )
    total = bought.group_by(key).agg(pl.col("quantity").sum().alias("_total"))
    own = bought.group_by([*key, pl.col("id").alias("lot_id")]).agg(pl.col("quantity").sum().alias("_own"))
    counted = (
        held.join(total, on=key, how="left").join(own, on=[*key, "lot_id"], how="left")
        .sort("_row")
        .select(pl.when(applies).then(pl.col("_total").fill_null(0) - pl.col("_own").fill_null(0)).cast(DECIMAL))
    )
    return counted.to_series().alias("bought_last_30_days")


def matches(washes: pl.DataFrame) -> int:
    """How many wash matches ``washes`` holds: its rows, or, for totals (``Store.booked_totals``),
    the matches they count (``n``)."""
    return int(washes.get_column("n").sum()) if "n" in washes.columns else washes.height


#: The columns ``wash_summary`` reads of each frame.
WASH_SUMMARY_COLUMNS = {
    "washes": ("disposed", "status", "disallowed", "broker_reported"), "disposals": ("disposed", "wash_basis", "adjustment"),
    "carried_out": ("date", "amount"),
}


def wash_summary(
    washes: pl.DataFrame, disposals: pl.DataFrame, year: int | None = None, carried: pl.DataFrame | None = None,
) -> dict[str, Decimal | int]:
    """Totals of the wash sales of loss sales in ``year`` (every year when None): disallowed
    (deferred + permanent), deferred into replacement lots, permanently lost to tax-advantaged
    purchases, the part the brokers' 1099-B would not show (another account, another symbol of
    the group, or an IRA purchase), crypto matches listed only as information, the deferred
    losses that left with shares for where taxlens does not follow them by the end of the year
    (``carried``, CARRIED_SCHEMA), and those still sitting in open lots then (every deferral up
    to then, less what later sales of the replacement shares released and what left)."""
    washes_all = washes
    if year is not None:
        washes = washes.filter(pl.col("disposed").dt.year() == year)
    status = pl.col("status")

    def total(expr: pl.Expr, where: pl.Expr) -> Decimal:
        value = washes.filter(where).select(expr.sum()).item() if washes.height else None
        return Decimal(value) if value is not None else Decimal(0)

    amount = pl.col("disallowed")
    applied = status != INFO
    out: dict[str, Decimal | int] = {
        "washes": matches(washes.filter(applied)),
        "disallowed": total(amount, applied),
        "deferred": total(amount, status == DEFERRED),
        "permanent": total(amount, status == PERMANENT),
        "not_on_1099": total(amount, applied & ~pl.col("broker_reported")),
        "info": total(amount, status == INFO),
    }
    last = dt.date(year, 12, 31) if year is not None else dt.date.max
    gone = carried.filter(pl.col("date") <= last).select(pl.col("amount").sum()).item() if carried is not None else None
    out["carried_out"] = carried_out = Decimal(gone or 0)
    out["still_deferred"] = still_deferred(washes_all, disposals, last, carried_out)
    return out


def still_deferred(washes: pl.DataFrame, disposals: pl.DataFrame, through: dt.date, carried_out: Decimal = Decimal(0)) -> Decimal:
    """Losses deferred by wash sales up to ``through`` that are still in the basis of shares
    open then: deferred so far, less the deferred basis of replacement shares sold so far, and
    less ``carried_out``, what shares moved out of sight took along so far."""
    deferred = washes.filter((pl.col("status") == DEFERRED) & (pl.col("disposed") <= through)).select(pl.col("disallowed").sum()).item()
    released = disposals.filter(pl.col("disposed") <= through).select(pl.col("wash_basis").sum()).item()
    return Decimal(deferred or 0) - Decimal(released or 0) - carried_out
