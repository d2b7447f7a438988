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
import datetime as dt
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

    __slots__ = ("account", "acquired", "free", "i", "lot_id", "q", "role", "segs", "seq", "sold", "symbol")

    def __init__(self, i: int, q: int, acquired: int, role: str, account: str, symbol: str, lot_id: str, seq: int) -> None:
        self.i, self.q, self.acquired, self.role = i, q, acquired, role
        self.account, self.symbol, self.lot_id, self.seq = account, symbol, lot_id, seq
        self.sold = 0  # shares [0, sold) are sold
        self.free = 0  # replacement shares are handed out from max(sold, free)
        self.segs: list[list[int]] = []  # [start, end, adjustment, tacked days], in order


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
    run.load(d, lt)
    run.go()
    problems = run.carry_problems(events)
    return Washed(
        run.lots_frame(base_lots), run.disposals_frame(base_disposals), run.washes_frame(base_lots), problems,
    )


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
        # Output: disposal pieces (index of the slice they come from + their numbers) and matches.
        self.p_i: list[int] = []
        self.p_q: list[int] = []
        self.p_proc: list[int | None] = []
        self.p_basis: list[int | None] = []
        self.p_adj: list[int] = []
        self.p_gain: list[int | None] = []
        self.p_adj_acq: list[int | None] = []
        self.p_term: list[str | None] = []
        self.p_wash_basis: list[int] = []
        self.w: list[tuple[object, ...]] = []
        self.touched: dict[int, _Lot] = {}  # lots with adjusted ranges, by lots-frame row

    def _term(self, acquired: int, disposed: int) -> str:
        ann = self.anniversaries.get(acquired)
        if ann is None:
            day = dt.date.fromordinal(acquired + _EPOCH)
            ann = self.anniversaries[acquired] = anniversary(day, month_end_rule=self.month_end_rule).toordinal() - _EPOCH
        return "long" if disposed > ann else "short"

    def _by_term(self, pieces: list[tuple[int, int, int]], acquired: int, disposed: int) -> list[tuple[int, int, int]]:
        """The pieces of a slice merged by term: (quantity, deferred loss, tacked days), at most
        one short and one long. Merged shares keep the fewest tacked days among them (the
        latest adjusted date: never a longer holding period than every share had), which is
        what keeps chains from cutting lots ever finer; their amounts stay exact sums."""
        if len(pieces) == 1:
            return pieces
        merged: dict[str, list[int]] = {}
        for pq, adj, tack in pieces:
            entry = merged.get(self._term(acquired - tack, disposed))
            if entry is None:
                merged[self._term(acquired - tack, disposed)] = [pq, adj, tack]
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
        # Lots, grouped by (household, group).
        l_i = lt["_i"].to_list()
        l_q, l_acq = units(lt, "quantity"), days(lt, "acquired")
        l_role, l_acc, l_sym = lt["_role"].to_list(), lt["account"].to_list(), lt["symbol"].to_list()
        l_id, l_seq, l_scope = lt["lot_id"].to_list(), lt["seq"].to_list(), lt["scope"].to_list()
        l_cand, l_hh, l_grp = lt["_cand"].to_list(), lt["_hh"].to_list(), lt["_grp"].to_list()
        by_key: dict[tuple[str, int, str], _Lot] = {}
        cands: dict[tuple[str, str], list[_Lot]] = {}
        for k in range(len(l_i)):
            made = _Lot(l_i[k], l_q[k], l_acq[k], l_role[k], l_acc[k], l_sym[k], l_id[k], l_seq[k])
            by_key[(l_scope[k], l_seq[k], l_id[k])] = made
            if l_cand[k]:
                cands.setdefault((l_hh[k], l_grp[k]), []).append(made)
        self.groups: dict[tuple[str, str], _Group] = {
            g: _Group(sorted(ls, key=lambda lot: (lot.acquired, lot.seq))) for g, ls in cands.items()
        }
        # Disposal slices, in (sale, slice) order.
        n = d.height
        i_, q_, proc_, basis_ = d["_i"].to_list(), units(d, "quantity"), units(d, "proceeds"), units(d, "cost_basis")
        acq_, disp_, gain_ = days(d, "acquired"), days(d, "disposed"), units(d, "gain")
        seq_, lseq_, scope_, lid_ = d["seq"].to_list(), d["lot_seq"].to_list(), d["scope"].to_list(), d["lot_id"].to_list()
        hh_, grp_, sym_ = d["_hh"].to_list(), d["_grp"].to_list(), d["symbol"].to_list()
        groups = self.groups
        # A slice can start a wash only if it is a taxable sale of a group with acquisitions.
        can_wash = (
            d.select((pl.col("_role") == TAXABLE) & pl.struct("_hh", "_grp").is_in(
                pl.DataFrame(list(groups), schema={"_hh": pl.String, "_grp": pl.String}, orient="row").to_struct().implode()
            ))
            .to_series().to_list()
        )
        self.changed: list[int] = []
        k = 0
        while k < n:
            end = k + 1
            while end < n and seq_[end] == seq_[k]:
                end += 1
            # Every slice of the sale takes its shares first: none of them can replace another.
            ranges: list[tuple[_Lot | None, int]] = []
            for j in range(k, end):
                taken = by_key.get((scope_[j], lseq_[j], lid_[j])) if lseq_[j] is not None else None
                if taken is None:
                    ranges.append((None, 0))
                else:
                    ranges.append((taken, taken.sold))
                    taken.sold += q_[j]
            for j in range(k, end):
                lot, c0 = ranges[j - k]
                q = q_[j]
                carried = lot is not None and lot.segs and lot.segs[-1][1] > c0 and _carries(lot.segs, c0, c0 + q)
                if not carried:
                    g = gain_[j]
                    if g is None or g >= 0 or lot is None or not can_wash[j]:
                        continue  # unchanged: no deferred loss in it and no loss to wash
                    pieces = [(q, 0, 0)]
                else:
                    pieces = self._by_term(_cut(lot.segs, c0, c0 + q), acq_[j], disp_[j])  # type: ignore[union-attr]
                self._slice(j, lot, pieces, q, proc_[j], basis_[j], acq_[j], disp_[j], can_wash[j],
                            (hh_[j], grp_[j], sym_[j]), i_[j])
            k = end

    def _slice(
        self, j: int, lot: _Lot | None, pieces: list[tuple[int, int, int]], q: int, proceeds: int | None,
        basis: int | None, acquired: int, disposed: int, can_wash: bool, about: tuple[object, ...], i: int,
    ) -> None:
        """Wash what is a loss among ``pieces`` of slice ``j`` and record its output rows."""
        hh, grp, sym = about
        changed = len(pieces) > 1 or pieces[0][1] != 0
        rows = []
        cum = 0
        for pq, adj_in, tack in pieces:
            if len(pieces) == 1:
                pp, pb = proceeds, basis
            else:
                pp = None if proceeds is None else _part(proceeds, q, cum, cum + pq)
                pb = None if basis is None else _part(basis, q, cum, cum + pq)
            cum += pq
            b = None if pb is None else pb + adj_in
            gain = None if b is None or pp is None else pp - b
            adj_acq = acquired - tack
            disallowed = 0
            if gain is not None and gain < 0 and can_wash and lot is not None:
                applies = self.settings.crypto or sym not in self.crypto
                held = disposed - adj_acq
                for rep, m, amount in self.groups[(hh, grp)].match(lot, pq, -gain, disposed, applies, held):  # type: ignore[index]
                    status = (PERMANENT if rep.role == ADVANTAGED else DEFERRED) if applies else INFO
                    self.w.append((j, rep.i, m, amount, held, status))
                    if applies:
                        disallowed += amount
                        if rep.role == TAXABLE:
                            self.touched[rep.i] = rep
            if disallowed:
                changed = True
            rows.append((pq, pp, b, disallowed, None if gain is None else gain + disallowed, adj_acq, self._term(adj_acq, disposed), adj_in))
        if not changed:
            return
        self.changed.append(i)
        for pq, pp, b, disallowed, gain, adj_acq, term, adj_in in rows:
            self.p_i.append(i)
            self.p_q.append(pq)
            self.p_proc.append(pp)
            self.p_basis.append(b)
            self.p_adj.append(disallowed)
            self.p_gain.append(gain)
            self.p_adj_acq.append(adj_acq)
            self.p_term.append(term)
            self.p_wash_basis.append(adj_in)

    # -- frames ----------------------------------------------------------------------------------

    def disposals_frame(self, base: pl.DataFrame) -> pl.DataFrame:
        """``base`` with the slices of the groups the pass ran on replaced by their pieces."""
        from taxlens.lots._loopfast import FastLoop

        dec = FastLoop._decimals
        done = pl.Series(self.changed, dtype=pl.UInt32)
        pieces = base.with_row_index("_i")[pl.Series(self.p_i, dtype=pl.UInt32)].with_columns(
            dec(self.p_q).alias("quantity"), dec(self.p_proc).alias("proceeds"), dec(self.p_basis).alias("cost_basis"),
            dec(self.p_adj).alias("adjustment"), dec(self.p_gain).alias("gain"),
            pl.Series(self.p_adj_acq, dtype=pl.Int32).cast(pl.Date).alias("adjusted_acquired"),
            pl.Series(self.p_term, dtype=pl.String).alias("term"), dec(self.p_wash_basis).alias("wash_basis"),
            pl.Series(["W" if a else None for a in self.p_adj], dtype=pl.String).alias("adjustment_code"),
        )
        rest = base.with_row_index("_i").filter(~pl.col("_i").is_in(done.implode()))
        return pl.concat([rest, pieces.select(rest.columns)]).sort("_i", maintain_order=True).drop("_i")

    def lots_frame(self, base: pl.DataFrame) -> pl.DataFrame:
        """``base`` with every lot that received adjustments cut into its ranges."""
        if not self.touched:
            return base
        from taxlens.lots._loopfast import FastLoop

        dec = FastLoop._decimals
        rows = base.with_row_index("_i")
        touched = rows[pl.Series(sorted(self.touched), dtype=pl.UInt32)]
        r_i: list[int] = []
        cols: dict[str, list[int | None]] = {k: [] for k in ("quantity", "cost_basis", "adjusted_basis", "open_quantity", "open_basis", "open_adjusted_basis", "adj_acq")}
        qs = touched["quantity"].cast(DECIMAL).to_physical().to_list()
        bs = touched["cost_basis"].cast(DECIMAL).to_physical().to_list()
        oq = touched["open_quantity"].cast(DECIMAL).to_physical().to_list()
        acq = touched["acquired"].cast(pl.Date).to_physical().to_list()
        for t, i in enumerate(touched["_i"].to_list()):
            lot = self.touched[i]
            q, b, used = qs[t], bs[t], qs[t] - oq[t]
            for s, e, adj, tack in _ranges(lot.segs, q):
                cb = None if b is None else _part(b, q, s, e)
                open_s = max(s, used)
                open_q = max(e - open_s, 0)
                ob = None if b is None else (_part(b, q, open_s, e) if open_q else 0)
                oadj = _part(adj, e - s, open_s - s, e - s) if open_q else 0
                r_i.append(i)
                cols["quantity"].append(e - s)
                cols["cost_basis"].append(cb)
                cols["adjusted_basis"].append(None if cb is None else cb + adj)
                cols["open_quantity"].append(open_q)
                cols["open_basis"].append(ob)
                cols["open_adjusted_basis"].append(None if ob is None else ob + oadj)
                cols["adj_acq"].append(acq[t] - tack)
        cut = rows[pl.Series(r_i, dtype=pl.UInt32)].with_columns(
            *(dec(cols[c]).alias(c) for c in ("quantity", "cost_basis", "adjusted_basis", "open_quantity", "open_basis", "open_adjusted_basis")),
            pl.Series(cols["adj_acq"], dtype=pl.Int32).cast(pl.Date).alias("adjusted_acquired"),
        )
        rest = rows.filter(~pl.col("_i").is_in(pl.Series(sorted(self.touched), dtype=pl.UInt32).implode()))
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

    def carry_problems(self, events: pl.DataFrame) -> list[RowError]:
        """Adjusted lots in positions with splits or transfers: the ranges this pass tracks do
        not follow shares through those yet, so say where to check by hand."""
        if not self.touched:
            return []
        touched = pl.DataFrame(
            {"account": [lot.account for lot in self.touched.values()], "symbol": [lot.symbol for lot in self.touched.values()]}
        ).unique()
        moves = events.filter(pl.col("kind").is_in([SPLIT_IN, SPLIT_OUT, TRANSFER_IN, TRANSFER_OUT])).join(
            touched, on=["account", "symbol"]
        )
        first = moves.sort("seq").group_by("account", "symbol", maintain_order=True).first()
        return [
            RowError.at(r["source"], f"{r['symbol']} in {r['account']} has wash-sale adjustments and a {r['kind'].replace('_', ' ')}: "
                                     "taxlens does not carry the adjustments through it yet; check these lots' adjusted basis by hand")
            for r in first.iter_rows(named=True)
        ]


def _ranges(segs: list[list[int]], q: int) -> list[tuple[int, int, int, int]]:
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


def _carries(segs: list[list[int]], c0: int, c1: int) -> bool:
    """Whether shares [c0, c1) of a lot overlap any adjusted range (segs end after c0)."""
    k = bisect.bisect_right(segs, [c0, 1 << 200])
    if k and segs[k - 1][1] > c0:
        return True
    return k < len(segs) and segs[k][0] < c1


def _cut(segs: list[list[int]], c0: int, c1: int) -> list[tuple[int, int, int]]:
    """Shares [c0, c1) of a lot as pieces (quantity, deferred loss they carry, tacked days)."""
    out: list[tuple[int, int, int]] = []
    at = c0
    k = bisect.bisect_right(segs, [c0, 1 << 200]) - 1  # the last range starting at or before c0
    k = max(k, 0)
    while at < c1:
        seg = segs[k] if k < len(segs) else None
        if seg is None or at < seg[0]:
            stop = c1 if seg is None else min(c1, seg[0])
            out.append((stop - at, 0, 0))
            at = stop
            continue
        s, e, adj, tack = seg
        if at >= e:
            k += 1
            continue
        stop = min(c1, e)
        out.append((stop - at, _part(adj, e - s, at - s, stop - s), tack))
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
        lots, dates, n = self.lots, self.dates, len(self.lots)
        i = self._find(bisect.bisect_left(dates, day - WINDOW))
        need, matched = q, 0
        last = day + WINDOW
        while need > 0 and i < n and dates[i] <= last:
            lot = lots[i]
            start = lot.free if lot.free > lot.sold else lot.sold
            if start >= lot.q:
                self.nxt[i] = i + 1  # used up or sold: never a replacement again
                i = self._find(i + 1)
                continue
            if lot is sold:
                i = self._find(i + 1)
                continue
            m = min(need, lot.q - start)
            amount = _part(loss, q, matched, matched + m)
            matched += m
            need -= m
            lot.free = start + m
            if applies and lot.role == TAXABLE:
                lot.segs.append([start, start + m, amount, held])
            out.append((lot, m, amount))
            if lot.free >= lot.q:
                self.nxt[i] = i + 1
            i = self._find(i + 1)
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
