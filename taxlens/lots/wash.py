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


def _share(total: int, whole: int, part: int) -> int:
    """F(part) of ``total`` spread over ``whole``: booking's cumulative half-even split."""
    if part == whole:
        return total
    return mul_units(div_units(total, whole), part)


def _part(total: int, whole: int, start: int, end: int) -> int:
    return _share(total, whole, end) - _share(total, whole, start)


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
        run.lots_frame(base_lots), run.disposals_frame(base_disposals), run.washes_frame(), problems,
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
        acq_, disp_ = days(d, "acquired"), days(d, "disposed")
        seq_, lseq_, scope_, lid_ = d["seq"].to_list(), d["lot_seq"].to_list(), d["scope"].to_list(), d["lot_id"].to_list()
        role_, hh_, grp_, sym_ = d["_role"].to_list(), d["_hh"].to_list(), d["_grp"].to_list(), d["symbol"].to_list()
        acc_, tid_, src_ = d["account"].to_list(), d["sell_trade_id"].to_list(), d["source"].to_list()
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
                q, proceeds, basis = q_[j], proc_[j], basis_[j]
                pieces = [(q, 0, 0)] if lot is None or not lot.segs else _cut(lot.segs, c0, c0 + q)
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
                    adj_acq = None if acq_[j] is None else acq_[j] - tack
                    disallowed = 0
                    if gain is not None and gain < 0 and role_[j] == TAXABLE and lot is not None:
                        applies = self.settings.crypto or sym_[j] not in self.crypto
                        group = self.groups.get((hh_[j], grp_[j]))
                        if group is not None:
                            held = disp_[j] - adj_acq  # type: ignore[operator]
                            for rep, m, amount in group.match(lot, pq, -gain, disp_[j], applies, held):
                                if applies:
                                    disallowed += amount
                                status = (PERMANENT if rep.role == ADVANTAGED else DEFERRED) if applies else INFO
                                self.w.append((
                                    hh_[j], grp_[j], acc_[j], sym_[j], tid_[j], disp_[j], lid_[j], m, amount,
                                    rep.account, rep.symbol, rep.lot_id, rep.acquired, rep.seq, held, status,
                                    rep.account == acc_[j] and rep.symbol == sym_[j] and status != INFO,
                                    seq_[j], src_[j],
                                ))
                                if applies and rep.role == TAXABLE:
                                    self.touched[rep.i] = rep
                    self.p_i.append(i_[j])
                    self.p_q.append(pq)
                    self.p_proc.append(pp)
                    self.p_basis.append(b)
                    self.p_adj.append(disallowed)
                    self.p_gain.append(None if gain is None else gain + disallowed)
                    self.p_adj_acq.append(adj_acq)
                    self.p_term.append(None if adj_acq is None else self._term(adj_acq, disp_[j]))
                    self.p_wash_basis.append(adj_in)
            k = end

    # -- frames ----------------------------------------------------------------------------------

    def disposals_frame(self, base: pl.DataFrame) -> pl.DataFrame:
        """``base`` with the slices of the groups the pass ran on replaced by their pieces."""
        from taxlens.lots._loopfast import FastLoop

        dec = FastLoop._decimals
        done = pl.Series(self.d["_i"].to_list(), dtype=pl.UInt32)
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

    def washes_frame(self) -> pl.DataFrame:
        if not self.w:
            return pl.DataFrame(schema=WASH_SCHEMA)
        from taxlens.lots._loopfast import FastLoop

        cols = list(zip(*self.w, strict=True))
        names = list(WASH_SCHEMA)
        data: dict[str, pl.Series] = {}
        for name, values in zip(names, cols, strict=True):
            if WASH_SCHEMA[name] == DECIMAL:
                data[name] = FastLoop._decimals(list(values))  # type: ignore[arg-type]
            elif WASH_SCHEMA[name] == pl.Date():
                data[name] = pl.Series(values, dtype=pl.Int32).cast(pl.Date)
            else:
                data[name] = pl.Series(values, dtype=WASH_SCHEMA[name])
        return pl.DataFrame([s.alias(n) for n, s in data.items()])

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
