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
it, so a single pass resolves chains.

Interpretations (tax-rules §3.3, each the prevailing reading):
* shares of the lot being sold are never its replacement (WS-12); neither are other shares sold
  in the same sale, nor shares already sold before the loss sale;
* the window uses actual trade dates, never wash-adjusted ones;
* the adjusted acquisition date is ``replacement acquired − days the sold shares were held``.

All amounts are integer units of 1e-18 (DECIMAL(38,18)'s physical value), split with the same
half-even cumulative rule as booking, so the disallowed parts of a loss add up to it exactly.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import gc
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import polars as pl

from taxlens.errors import RowError
from taxlens.ingest.frame import DECIMAL
from taxlens.lots.frames import ACQUIRE, DISPOSAL_SCHEMA, LOT_SCHEMA, SPLIT_IN, SPLIT_OUT, TRANSFER_IN, TRANSFER_OUT
from taxlens.lots.holding import anniversary
from taxlens.money import div_units, mul_units

WINDOW = 30  # days either side of the sale (the 61-day period)
TAXABLE, ADVANTAGED, OUTSIDE = "taxable", "advantaged", "outside"
DEFERRED, PERMANENT, INFO = "deferred", "permanent", "info"
_EPOCH = dt.date(1970, 1, 1).toordinal()

#: Disposals after the pass: booking's columns plus what the wash pass decides.
WASHED_DISPOSAL_SCHEMA: dict[str, pl.DataType] = {
    **DISPOSAL_SCHEMA,
    "adjusted_acquired": pl.Date(),  # acquired, moved back by tacked holding periods
    "wash_basis": DECIMAL,  # the part of cost_basis that is a loss deferred by an earlier wash
}
#: Lots after the pass: a lot whose shares were partly used as replacements is cut into rows
#: (same lot_id and seq), one per range with its own adjusted basis and date.
WASHED_LOT_SCHEMA: dict[str, pl.DataType] = {**LOT_SCHEMA, "open_adjusted_basis": DECIMAL}
WASH_SCHEMA: dict[str, pl.DataType] = {
    "household": pl.String(),
    "wash_group": pl.String(),
    "account": pl.String(),
    "symbol": pl.String(),
    "sell_trade_id": pl.String(),
    "disposed": pl.Date(),
    "lot_id": pl.String(),
    "quantity": DECIMAL,
    "disallowed": DECIMAL,
    "replacement_account": pl.String(),
    "replacement_symbol": pl.String(),
    "replacement_lot_id": pl.String(),
    "replacement_acquired": pl.Date(),
    "replacement_seq": pl.Int64(),
    "tacked_days": pl.Int32(),
    "status": pl.String(),
    "broker_reported": pl.Boolean(),
    "seq": pl.Int64(),
    "source": pl.String(),
}


@dataclass(frozen=True)
class WashSettings:
    """Who and what the rule spans. ``accounts``: (account, household, role) for configured
    accounts; any other account is taxable and in ``default_household``."""

    apply: bool = True
    crypto: bool = False
    accounts: tuple[tuple[str, str, str], ...] = ()
    default_household: str = "self"
    groups: tuple[tuple[str, str], ...] = ()  # (symbol, group name)


@dataclass
class Washed:
    lots: pl.DataFrame  # WASHED_LOT_SCHEMA
    disposals: pl.DataFrame  # WASHED_DISPOSAL_SCHEMA
    washes: pl.DataFrame  # WASH_SCHEMA
    problems: list[RowError] = field(default_factory=list)


class _Lot:
    """One lot's shares as the pass sees them (mutable, private)."""

    __slots__ = ("acquired", "free", "i", "p", "q", "role", "segs", "seq", "sold")

    def __init__(self, i: int, q: int, acquired: int, role: str, seq: int) -> None:
        self.i, self.q, self.acquired, self.role, self.seq = i, q, acquired, role, seq
        self.sold = 0  # shares [0, sold) are sold
        self.free = 0  # replacement shares are handed out from max(sold, free)
        self.segs: list[tuple[int, int, int, int]] = []  # (start, end, adjustment, tacked days), in order
        self.p = 0  # segs[:p] end before the shares sold so far: no later slice reaches them


def _part(total: int, whole: int, start: int, end: int) -> int:
    """F(end) − F(start) for ``total`` spread over ``whole``, where F(x) = total at x = whole
    and unit × x otherwise (booking's cumulative half-even split: parts add up exactly)."""
    if start == 0 and end == whole:
        return total
    unit = div_units(total, whole)
    hi = total if end == whole else mul_units(unit, end)
    return hi - (mul_units(unit, start) if start else 0)


def apply_wash_sales(
    lots: pl.DataFrame, disposals: pl.DataFrame, events: pl.DataFrame, crypto: frozenset[str],
    settings: WashSettings, *, month_end_rule: bool = True,
) -> Washed:
    """The wash-sale pass over booking's ``lots`` (LOT_SCHEMA) and ``disposals``
    (DISPOSAL_SCHEMA, in (sale, slice) order) for the ``events`` they were booked from.
    ``crypto``: the symbols that are digital assets. Returns the adjusted lots and disposals,
    one row per wash match, and problems (adjustments taxlens could not carry)."""
    base_lots = lots.with_columns(pl.col("open_basis").alias("open_adjusted_basis"))
    base_disposals = disposals.with_columns(
        pl.col("acquired").alias("adjusted_acquired"), pl.lit(0, dtype=pl.Int128).reinterpret(dtype=DECIMAL).alias("wash_basis")
    )
    empty = pl.DataFrame(schema=WASH_SCHEMA)
    if not settings.apply or disposals.height == 0:
        return Washed(base_lots, base_disposals, empty)

    households = {a: h for a, h, _ in settings.accounts}
    roles = {a: r for a, _, r in settings.accounts}
    group_of = dict(settings.groups)

    def tag(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pl.col("account").replace_strict(households, default=settings.default_household, return_dtype=pl.String).alias("_hh"),
            pl.col("account").replace_strict(roles, default=TAXABLE, return_dtype=pl.String).alias("_role"),
            pl.col("symbol").replace_strict(group_of, default=pl.col("symbol"), return_dtype=pl.String).alias("_grp"),
        )

    acquired_seqs = events.filter(pl.col("kind") == ACQUIRE).select("seq")
    d = tag(base_disposals.with_row_index("_i")).filter(pl.col("_role") != OUTSIDE)
    lt = (
        tag(base_lots.with_row_index("_i"))
        .filter(pl.col("_role") != OUTSIDE)
        .with_columns(pl.col("seq").is_in(acquired_seqs["seq"].implode()).alias("_cand"))
    )
    busy = _groups_with_a_possible_wash(d, lt)
    if not busy:
        return Washed(base_lots, base_disposals, empty)
    busy_keys = pl.DataFrame(busy, schema={"_hh": pl.String, "_grp": pl.String}, orient="row")
    d = d.join(busy_keys, on=["_hh", "_grp"], how="semi", maintain_order="left")
    lt = lt.join(busy_keys, on=["_hh", "_grp"], how="semi", maintain_order="left")
    run = _Pass(settings, crypto, month_end_rule)
    with _gc_paused():
        run.load(d, lt)
        run.go()
        problems = run.carry_problems(events, base_lots)
        return Washed(
            run.lots_frame(base_lots), run.disposals_frame(base_disposals), run.washes_frame(base_lots), problems,
        )


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


def _groups_with_a_possible_wash(d: pl.DataFrame, lt: pl.DataFrame) -> list[tuple[str, str]]:
    """(household, group) pairs where some taxable loss slice has an acquisition of another lot
    in its window: the only places a wash (and so a chain) can start. One sorted axis, no pairs
    enumerated."""
    losses = d.filter((pl.col("_role") == TAXABLE) & (pl.col("gain") < 0) & pl.col("lot_seq").is_not_null()).join(
        lt.select("scope", pl.col("seq").alias("lot_seq"), "lot_id", pl.col("_cand").alias("_own_cand")),
        on=["scope", "lot_seq", "lot_id"], how="left",
    )
    cands = lt.filter("_cand")
    if losses.height == 0 or cands.height == 0:
        return []
    keys = pl.concat([losses.select("_hh", "_grp"), cands.select("_hh", "_grp")]).unique().with_row_index("_g")
    span = 1 << 20  # days since 1970 fit in 20 bits until the year 4840

    def axis(day: str) -> pl.Expr:  # groups side by side on one integer axis
        return pl.col("_g").cast(pl.Int64) * span + pl.col(day).cast(pl.Int32).cast(pl.Int64)

    cx = np.sort(cands.join(keys, on=["_hh", "_grp"]).select(axis("acquired"))["_g"].to_numpy())
    s = losses.join(keys, on=["_hh", "_grp"]).select(
        "_hh", "_grp", axis("disposed").alias("x"), axis("acquired").alias("own"), pl.col("_own_cand").fill_null(False)
    )
    sx, own = s["x"].to_numpy(), s["own"].to_numpy()
    count = np.searchsorted(cx, sx + WINDOW, side="right") - np.searchsorted(cx, sx - WINDOW, side="left")
    # The sold lot itself may sit in the window; another acquisition must be there too.
    own_in = (own >= sx - WINDOW) & (own <= sx + WINDOW) & s["_own_cand"].to_numpy()
    hit = count > own_in.astype(np.int64)
    return sorted({(h, g) for h, g in s.filter(pl.Series(hit)).select("_hh", "_grp").unique().iter_rows()})


class _Pass:
    def __init__(self, settings: WashSettings, crypto: frozenset[str], month_end_rule: bool) -> None:
        self.settings, self.crypto, self.month_end_rule = settings, crypto, month_end_rule
        self.anniversaries: dict[int, int] = {}
        # Output: disposal pieces as (row of the slice they come from, quantity, proceeds, basis,
        # adjustment, gain, adjusted acquired, term, wash basis), and matches.
        self.rows: list[tuple[int, int, int | None, int | None, int, int | None, int, str, int]] = []
        self.w: list[tuple[int, int, int, int, int, str]] = []
        self.touched: dict[int, _Lot] = {}  # lots with adjusted ranges, by lots-frame row

    def _anniversary(self, acquired: int) -> int:
        day = dt.date.fromordinal(acquired + _EPOCH)
        ann = self.anniversaries[acquired] = anniversary(day, month_end_rule=self.month_end_rule).toordinal() - _EPOCH
        return ann

    def _term(self, acquired: int, disposed: int) -> str:
        ann = self.anniversaries.get(acquired)
        if ann is None:
            ann = self._anniversary(acquired)
        return "long" if disposed > ann else "short"

    def _by_term(self, pieces: list[tuple[int, int, int]], acquired: int, disposed: int) -> list[tuple[int, int, int]]:
        """The pieces of a slice merged by term: (quantity, deferred loss, tacked days), at most
        one short and one long. Merged shares keep the fewest tacked days among them (the
        latest adjusted date: never a longer holding period than every share had), which is
        what keeps chains from cutting lots ever finer; their amounts stay exact sums."""
        if len(pieces) == 1:
            return pieces
        anns, terms = self.anniversaries, set()
        for _, _, tack in pieces:
            ann = anns.get(acquired - tack)
            terms.add(disposed > (self._anniversary(acquired - tack) if ann is None else ann))
        if len(terms) == 1:  # the common case: all of one term
            return [(sum(p[0] for p in pieces), sum(p[1] for p in pieces), min(p[2] for p in pieces))]
        merged: dict[str, list[int]] = {}
        for pq, adj, tack in pieces:
            term = self._term(acquired - tack, disposed)
            entry = merged.get(term)
            if entry is None:
                merged[term] = [pq, adj, tack]
            else:
                entry[0] += pq
                entry[1] += adj
                if tack < entry[2]:
                    entry[2] = tack
        return [(q, adj, tack) for q, adj, tack in merged.values()]

    def load(self, d: pl.DataFrame, lt: pl.DataFrame) -> None:
        self.d = d.sort("_i")
        self.lt = lt

    def go(self) -> None:
        d, lt = self.d, self.lt
        units = lambda f, c: f.get_column(c).cast(DECIMAL).to_physical().to_list()  # noqa: E731
        days = lambda f, c: f.get_column(c).cast(pl.Date).to_physical().to_list()  # noqa: E731
        lots = [
            _Lot(*row)
            for row in zip(lt["_i"].to_list(), units(lt, "quantity"), days(lt, "acquired"), lt["_role"].to_list(), lt["seq"].to_list(),
                           strict=True)
        ]
        # Acquisitions, grouped by (household, group) in their order in the frame.
        cand = lt.with_row_index("_k").filter("_cand").group_by("_hh", "_grp", maintain_order=True).agg("_k")
        self.groups: dict[tuple[str, str], _Group] = {
            (hh, grp): _Group(sorted((lots[k] for k in ks), key=lambda lot: (lot.acquired, lot.seq))) for hh, grp, ks in cand.iter_rows()
        }
        group_list = list(self.groups.values())
        # Each slice's lot and group as indexes, found by joins rather than per-slice lookups.
        # A lot is found by (scope, seq, lot_id), the last one of equal keys, nulls matching nulls
        # as in a dict; a shortfall slice (null lot_seq) has none.
        key = ["scope", "lot_seq", "lot_id"]
        lot_keys = lt.select("scope", pl.col("seq").alias("lot_seq"), "lot_id").with_row_index("_lot").unique(
            subset=key, keep="last"
        )
        group_keys = pl.DataFrame(list(self.groups), schema={"_hh": pl.String, "_grp": pl.String}, orient="row").with_row_index("_g")
        found = (
            d.select("_i", *key, "_hh", "_grp", "_role", "symbol")
            .join(lot_keys, on=key, how="left", nulls_equal=True, maintain_order="left")
            .join(group_keys, on=["_hh", "_grp"], how="left", nulls_equal=True, maintain_order="left")
            .select(
                pl.when(pl.col("lot_seq").is_not_null()).then("_lot").alias("_lot"),
                # A slice can start a wash only if it is a taxable sale of a group with acquisitions.
                pl.when(pl.col("_role") == TAXABLE).then("_g").alias("_g"),
                (pl.lit(self.settings.crypto) | ~pl.col("symbol").is_in(pl.Series(sorted(self.crypto), dtype=pl.String).implode()).fill_null(False))
                .alias("_applies"),
            )
        )
        assert found.height == d.height
        lot_ = [None if k is None else lots[k] for k in found["_lot"].to_list()]
        grp_ = [None if g is None else group_list[g] for g in found["_g"].to_list()]
        app_ = found["_applies"].to_list()
        n = d.height
        i_, q_, proc_, basis_ = d["_i"].to_list(), units(d, "quantity"), units(d, "proceeds"), units(d, "cost_basis")
        acq_, disp_, gain_ = days(d, "acquired"), days(d, "disposed"), units(d, "gain")
        seq = d["seq"]
        starts = pl.arg_where(seq.ne_missing(seq.shift(1)).fill_null(True), eager=True).to_list() if n else []
        bounds = zip(starts, [*starts[1:], n], strict=True)
        anns, out, w, touched = self.anniversaries, self.rows, self.w, self.touched
        c0_ = [0] * n
        for k, end in bounds:
            # Every slice of the sale takes its shares first: none of them can replace another.
            for j in range(k, end):
                lot = lot_[j]
                if lot is not None:
                    c0_[j] = lot.sold
                    lot.sold += q_[j]
            for j in range(k, end):
                lot = lot_[j]
                if lot is None:
                    continue  # a shortfall: no shares to carry or to wash
                q, group, segs = q_[j], grp_[j], lot.segs
                carried = False
                if segs:
                    # Skip the ranges that end before this slice's shares [c0, c0 + q): the
                    # lot's slices come in share order, so they never reach them again.
                    c0, p, last = c0_[j], lot.p, len(segs)
                    while p < last and segs[p][1] <= c0:
                        p += 1
                    lot.p = p
                    carried = p < last and (segs[p][0] < c0 + q or segs[p][0] <= c0)
                if carried:
                    pieces = _cut(segs, p, c0, c0 + q)
                    if len(pieces) > 1:
                        pieces = self._by_term(pieces, acq_[j], disp_[j])
                        if len(pieces) > 1:
                            self._pieces(j, lot, group, pieces, q, proc_[j], basis_[j], acq_[j], disp_[j], app_[j], i_[j])
                            continue
                    _, adj_in, tack = pieces[0]
                else:
                    g = gain_[j]
                    if g is None or g >= 0 or group is None:
                        continue  # unchanged: no deferred loss in it and no loss to wash
                    adj_in = tack = 0
                # The slice as one piece (the common case, inlined): its own proceeds and basis.
                pp, pb = proc_[j], basis_[j]
                b = None if pb is None else pb + adj_in
                gain = None if b is None or pp is None else pp - b
                adj_acq = acq_[j] - tack
                disposed = disp_[j]
                disallowed = 0
                if gain is not None and gain < 0 and group is not None:
                    applies = app_[j]
                    held = disposed - adj_acq
                    for rep, m, amount in group.match(lot, q, -gain, disposed, applies, held):
                        if applies:
                            w.append((j, rep.i, m, amount, held, PERMANENT if rep.role == ADVANTAGED else DEFERRED))
                            disallowed += amount
                            if rep.role == TAXABLE:
                                touched[rep.i] = rep
                        else:
                            w.append((j, rep.i, m, amount, held, INFO))
                if not (disallowed or adj_in):
                    continue
                ann = anns.get(adj_acq)
                if ann is None:
                    ann = self._anniversary(adj_acq)
                out.append((i_[j], q, pp, b, disallowed, None if gain is None else gain + disallowed, adj_acq,
                            "long" if disposed > ann else "short", adj_in))

    def _pieces(
        self, j: int, lot: _Lot, group: _Group | None, pieces: list[tuple[int, int, int]], q: int, proceeds: int | None,
        basis: int | None, acquired: int, disposed: int, applies: bool, i: int,
    ) -> None:
        """Wash what is a loss among the (several) ``pieces`` of slice ``j`` and record their rows."""
        rows = []
        cum = 0
        for pq, adj_in, tack in pieces:
            pp = None if proceeds is None else _part(proceeds, q, cum, cum + pq)
            pb = None if basis is None else _part(basis, q, cum, cum + pq)
            cum += pq
            b = None if pb is None else pb + adj_in
            gain = None if b is None or pp is None else pp - b
            adj_acq = acquired - tack
            disallowed = 0
            if gain is not None and gain < 0 and group is not None:
                held = disposed - adj_acq
                for rep, m, amount in group.match(lot, pq, -gain, disposed, applies, held):
                    status = (PERMANENT if rep.role == ADVANTAGED else DEFERRED) if applies else INFO
                    self.w.append((j, rep.i, m, amount, held, status))
                    if applies:
                        disallowed += amount
                        if rep.role == TAXABLE:
                            self.touched[rep.i] = rep
            rows.append((i, pq, pp, b, disallowed, None if gain is None else gain + disallowed, adj_acq,
                         self._term(adj_acq, disposed), adj_in))
        self.rows.extend(rows)

    # -- frames ----------------------------------------------------------------------------------

    def disposals_frame(self, base: pl.DataFrame) -> pl.DataFrame:
        """``base`` with the slices of the groups the pass ran on replaced by their pieces."""
        if not self.rows:
            return base
        from taxlens.lots._loopfast import FastLoop

        dec = FastLoop._decimals
        p_i, p_q, p_proc, p_basis, p_adj, p_gain, p_adj_acq, p_term, p_wash_basis = (list(c) for c in zip(*self.rows, strict=True))
        pieces = base.with_row_index("_i")[pl.Series(p_i, dtype=pl.UInt32)].with_columns(
            dec(p_q).alias("quantity"), dec(p_proc).alias("proceeds"), dec(p_basis).alias("cost_basis"),
            dec(p_adj).alias("adjustment"), dec(p_gain).alias("gain"),
            pl.Series(p_adj_acq, dtype=pl.Int32).cast(pl.Date).alias("adjusted_acquired"),
            pl.Series(p_term, dtype=pl.String).alias("term"), dec(p_wash_basis).alias("wash_basis"),
            pl.Series(["W" if a else None for a in p_adj], dtype=pl.String).alias("adjustment_code"),
        )
        rest = base.with_row_index("_i").filter(~pl.col("_i").is_in(pl.Series(p_i, dtype=pl.UInt32).implode()))
        return pl.concat([rest, pieces.select(rest.columns)]).sort("_i", maintain_order=True).drop("_i")

    def lots_frame(self, base: pl.DataFrame) -> pl.DataFrame:
        """``base`` with every lot that received adjustments cut into its ranges."""
        if not self.touched:
            return base
        from taxlens.lots._loopfast import FastLoop

        dec = FastLoop._decimals
        rows = base.with_row_index("_i")
        order = sorted(self.touched)
        touched = rows[pl.Series(order, dtype=pl.UInt32)]
        qs = touched["quantity"].cast(DECIMAL).to_physical().to_list()
        bs = touched["cost_basis"].cast(DECIMAL).to_physical().to_list()
        oq = touched["open_quantity"].cast(DECIMAL).to_physical().to_list()
        acq = touched["acquired"].cast(pl.Date).to_physical().to_list()
        out: list[tuple[int, int, int | None, int | None, int, int | None, int | None, int]] = []
        for i, q, b, open_q_all, acquired in zip(order, qs, bs, oq, acq, strict=True):
            used = q - open_q_all
            # The basis is split as _part(b, q, s, e) does, dividing once per lot: the ranges
            # run [0, q) in order, so each one's F(s) is the previous one's F(e).
            unit = div_units(b, q) if b is not None and q else 0
            lo = 0
            for s, e, adj, tack in _ranges(self.touched[i].segs, q):
                if b is None:
                    cb = ob = None
                else:
                    hi = b if e == q else mul_units(unit, e)
                    cb, lo = hi - lo, hi
                open_s = s if s > used else used
                open_q = e - open_s if e > open_s else 0
                if not open_q:
                    ob = None if b is None else 0
                    oadj = 0
                elif open_s == s:
                    ob, oadj = cb, adj
                else:
                    ob = None if b is None else hi - mul_units(unit, open_s)  # open_s = used > 0
                    oadj = _part(adj, e - s, open_s - s, e - s)
                out.append((i, e - s, cb, None if cb is None else cb + adj, open_q, ob, None if ob is None else ob + oadj,
                            acquired - tack))
        r_i, *values, adj_acq = (list(c) for c in zip(*out, strict=True))
        cols = dict(zip(("quantity", "cost_basis", "adjusted_basis", "open_quantity", "open_basis", "open_adjusted_basis"), values,
                        strict=True))
        cut = rows[pl.Series(r_i, dtype=pl.UInt32)].with_columns(
            *(dec(cols[c]).alias(c) for c in ("quantity", "cost_basis", "adjusted_basis", "open_quantity", "open_basis", "open_adjusted_basis")),
            pl.Series(adj_acq, dtype=pl.Int32).cast(pl.Date).alias("adjusted_acquired"),
        )
        rest = rows.filter(~pl.col("_i").is_in(pl.Series(order, dtype=pl.UInt32).implode()))
        return pl.concat([rest, cut.select(rest.columns)]).sort("_i", maintain_order=True).drop("_i")

    def washes_frame(self, lots: pl.DataFrame) -> pl.DataFrame:
        """The matches as WASH_SCHEMA rows: the loss slice's columns gathered from the slices by
        row, the replacement's from ``lots`` (the base lots frame) by row."""
        if not self.w:
            return pl.DataFrame(schema=WASH_SCHEMA)
        from taxlens.lots._loopfast import FastLoop

        j, lot_row, m, amount, held, status = (list(c) for c in zip(*self.w, strict=True))
        sale = self.d.select(
            pl.col("_hh").alias("household"), pl.col("_grp").alias("wash_group"), "account", "symbol", "sell_trade_id",
            "disposed", "lot_id", "seq", "source",
        )[pl.Series(j, dtype=pl.UInt32)]
        rep = lots.select(
            pl.col("account").alias("replacement_account"), pl.col("symbol").alias("replacement_symbol"),
            pl.col("lot_id").alias("replacement_lot_id"), pl.col("acquired").alias("replacement_acquired"),
            pl.col("seq").alias("replacement_seq"),
        )[pl.Series(lot_row, dtype=pl.UInt32)]
        frame = pl.concat([sale, rep], how="horizontal").with_columns(
            FastLoop._decimals(m).alias("quantity"), FastLoop._decimals(amount).alias("disallowed"),
            pl.Series(held, dtype=pl.Int32).alias("tacked_days"), pl.Series(status, dtype=pl.String).alias("status"),
        )
        return frame.with_columns(
            ((pl.col("replacement_account") == pl.col("account")) & (pl.col("replacement_symbol") == pl.col("symbol"))
             & (pl.col("status") != INFO)).alias("broker_reported")
        ).select(list(WASH_SCHEMA)).cast(WASH_SCHEMA)  # type: ignore[arg-type]

    def carry_problems(self, events: pl.DataFrame, lots: pl.DataFrame) -> list[RowError]:
        """Adjusted lots in positions with splits or transfers: the ranges this pass tracks do
        not follow shares through those yet, so say where to check by hand. ``lots``: the base
        lots frame."""
        if not self.touched:
            return []
        touched = lots.select("account", "symbol")[pl.Series(list(self.touched), dtype=pl.UInt32)].unique()
        moves = events.filter(pl.col("kind").is_in([SPLIT_IN, SPLIT_OUT, TRANSFER_IN, TRANSFER_OUT])).join(
            touched, on=["account", "symbol"]
        )
        first = moves.sort("seq").group_by("account", "symbol", maintain_order=True).first()
        return [
            RowError.at(r["source"], f"{r['symbol']} in {r['account']} has wash-sale adjustments and a {r['kind'].replace('_', ' ')}: "
                                     "taxlens does not carry the adjustments through it yet; check these lots' adjusted basis by hand")
            for r in first.iter_rows(named=True)
        ]


def _ranges(segs: list[tuple[int, int, int, int]], q: int) -> list[tuple[int, int, int, int]]:
    """The lot's shares [0, q) as consecutive ranges: adjusted ones and the gaps between."""
    out: list[tuple[int, int, int, int]] = []
    at = 0
    for s, e, adj, tack in segs:
        if s > at:
            out.append((at, s, 0, 0))
        out.append((s, e, adj, tack))
        at = e
    if at < q:
        out.append((at, q, 0, 0))
    return out


def _cut(segs: list[tuple[int, int, int, int]], k: int, c0: int, c1: int) -> list[tuple[int, int, int]]:
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
    """The acquisitions of one (household, group) in (date, seq) order, with exhausted lots
    skipped in near-constant time (a union-find "next live lot" pointer)."""

    __slots__ = ("dates", "lots", "nxt")

    def __init__(self, lots: list[_Lot]) -> None:
        self.lots = lots
        self.dates = [lot.acquired for lot in lots]
        self.nxt = list(range(len(lots) + 1))

    def _find(self, i: int) -> int:
        nxt = self.nxt
        root = i
        while nxt[root] != root:
            root = nxt[root]
        while nxt[i] != root:
            nxt[i], i = root, nxt[i]
        return root

    def match(self, sold: _Lot, q: int, loss: int, day: int, applies: bool, held: int) -> list[tuple[_Lot, int, int]]:
        """Replacements for ``q`` shares of ``sold`` sold on ``day`` at a ``loss`` (> 0):
        [(lot, shares, disallowed)], earliest acquisition first. Marks the shares used and,
        when the rule ``applies`` to a taxable replacement, adds the loss to its range."""
        out: list[tuple[_Lot, int, int]] = []
        lots, dates, nxt, n = self.lots, self.dates, self.nxt, len(self.lots)
        i = self._find(bisect.bisect_left(dates, day - WINDOW))
        need, matched = q, 0
        last = day + WINDOW
        # The loss is split as _part(loss, q, matched, matched + m) does, dividing once: each
        # part is F(its end) − F(its start), and F(start) is the previous part's F(end).
        unit = lo = 0
        while need > 0 and i < n and dates[i] <= last:
            lot = lots[i]
            start = lot.free if lot.free > lot.sold else lot.sold
            if start >= lot.q:
                nxt[i] = i + 1  # used up or sold: never a replacement again
                i = self._find(i + 1)
                continue
            if lot is sold:
                i = self._find(i + 1)
                continue
            m = lot.q - start
            if need < m:
                m = need
            end = matched + m
            if end == q:
                amount = loss - lo if matched else loss
            else:
                if not matched:
                    unit = div_units(loss, q)
                hi = mul_units(unit, end)
                amount, lo = hi - lo, hi
            matched = end
            need -= m
            lot.free = start + m
            if applies and lot.role == TAXABLE:
                lot.segs.append((start, start + m, amount, held))
            out.append((lot, m, amount))
            if lot.free >= lot.q:
                nxt[i] = i + 1
            i += 1
            if nxt[i] != i:
                i = self._find(i)
        return out


def wash_summary(washes: pl.DataFrame, disposals: pl.DataFrame, year: int | None = None) -> dict[str, Decimal | int]:
    """Totals of the wash sales of loss sales in ``year`` (every year when None): disallowed
    (deferred + permanent), deferred into replacement lots, permanently lost to tax-advantaged
    purchases, the part the brokers' 1099-B would not show (another account, another symbol of
    the group, or an IRA purchase), crypto matches listed only as information, and the
    deferred losses still sitting in open lots at the end of the year (every deferral up to
    then, less what later sales of the replacement shares released)."""
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
        "washes": washes.filter(applied).height,
        "disallowed": total(amount, applied),
        "deferred": total(amount, status == DEFERRED),
        "permanent": total(amount, status == PERMANENT),
        "not_on_1099": total(amount, applied & ~pl.col("broker_reported")),
        "info": total(amount, status == INFO),
    }
    last = dt.date(year, 12, 31) if year is not None else dt.date.max
    out["still_deferred"] = still_deferred(washes_all, disposals, last)
    return out


def still_deferred(washes: pl.DataFrame, disposals: pl.DataFrame, through: dt.date) -> Decimal:
    """Losses deferred by wash sales up to ``through`` that are still in the basis of shares
    open then: deferred so far, less the deferred basis of replacement shares sold so far."""
    deferred = washes.filter((pl.col("status") == DEFERRED) & (pl.col("disposed") <= through)).select(pl.col("disallowed").sum()).item()
    released = disposals.filter(pl.col("disposed") <= through).select(pl.col("wash_basis").sum()).item()
    return Decimal(deferred or 0) - Decimal(released or 0)
