"""The booking loop of ``engine.py`` on integers: same rules, same digits, far fewer objects.

``engine._Loop`` states the rules on Decimals and named rows; this module runs the same steps
with every quantity and amount held as a Python int counting 1e-18 (the storage scale), so
mul18/div18 become integer half-even divisions and no Decimal is built per event. Events are
read column by column (polars' physical i128 for DECIMAL(38,18), i32 days for dates); output
columns are int lists turned back into DECIMAL(38,18) by reinterpreting i128, and the columns a
row copies from its event (scope, account, …, source) are gathered by event index at the end.

Every step mirrors ``engine._Loop`` line for line (including lots left at zero, the lazy heap
pops and the stable TaxMin sort), so both give the same frames; tests/test_fifo.py and
tests/lots hold the loop to the vectorised FIFO and the worksheets.

``book_events`` (what ``engine.book_loop`` runs) hands the positions of plain acquisitions and
sales (fifo, lifo, hifo, taxmin; no splits, transfers or specific-ID) to a compiled core,
taxlens/lots/_bookcore.c, which books them as FastLoop does on 128-bit integers, and FastLoop
books the rest; the rows are merged into FastLoop's order. The core gives back any position it
cannot book exactly (see the C file), and FastLoop books it. tests/lots/test_book_core.py
holds the two to the same frames; $TAXLENS_BOOK_CORE=python books everything with FastLoop.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Sequence
from decimal import Decimal

import numpy as np
import polars as pl
import pyarrow as pa

from taxlens.errors import RowError
from taxlens.ingest.frame import DECIMAL
from taxlens.lots import cores
from taxlens.lots.engine import Booked, Selections
from taxlens.lots.frames import (
    ACQUIRE,
    DISPOSAL_SCHEMA,
    DISPOSE,
    LOT_SCHEMA,
    MOVE_SCHEMA,
    SPLIT_IN,
    SPLIT_OUT,
    SPLIT_SCHEMA,
    TRANSFER_IN,
    TRANSFER_OUT,
)
from taxlens.lots.holding import anniversary
from taxlens.money import PRECISION, SCALE, plain
from taxlens.money import div_units as _div
from taxlens.money import mul_units as _mul

_UNIT = 10**SCALE  # the inlined multiply in the slice loop needs it
_MAX = 10**38  # DECIMAL(38,18) holds |units| < 10^38
_EPOCH = dt.date(1970, 1, 1).toordinal()

# The compiled core (taxlens/lots/_bookcore.c, built by setup.py): optional, see book_events.
_bookcore, _BOOKCORE_ERROR = cores.load("_bookcore")


def _dec(units: int) -> Decimal:
    """Units back to a Decimal (only for messages; the caller runs in the wide context)."""
    return Decimal(units).scaleb(-SCALE)


def exact_units(value: Decimal) -> int | None:
    """``value`` in units when it is exact at the storage scale, else None."""
    scaled = value.scaleb(SCALE)
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        return None
    units = int(scaled)
    return units if abs(units) < _MAX else None


class _Lot:
    """engine._Lot on units, with its unit basis u = div18(B, Q) and F(used) cached."""

    __slots__ = ("acquired", "b", "fused", "key", "lot_id", "q", "row", "seq", "u", "used")

    def __init__(self, seq: int, key: int, lot_id: str | None, acquired: int | None, q: int, b: int | None, row: int) -> None:
        self.seq, self.key, self.lot_id, self.acquired, self.row = seq, key, lot_id, acquired, row
        self.q, self.b, self.used = q, b, 0
        self.u = None if b is None or q == 0 else _div(b, q)
        self.fused = None if b is None else (b if q == 0 else 0)  # F(0)

    def reset(self, q: int, b: int | None) -> None:
        self.q, self.b, self.used = q, b, 0
        self.u = None if b is None or q == 0 else _div(b, q)
        self.fused = self.at(0)

    def at(self, c: int) -> int | None:
        """F(c) (engine._Lot.basis_at)."""
        if self.b is None:
            return None
        if c == self.q:
            return self.b
        return _mul(self.u, c)  # type: ignore[arg-type]

    def take(self, shares: int) -> int | None:
        before = self.fused
        self.used += shares
        after = self.fused = self.at(self.used)
        return None if before is None or after is None else after - before


class _Position:
    __slots__ = ("dirty", "heaps", "lots")

    def __init__(self) -> None:
        self.lots: dict[int, _Lot] = {}
        self.heaps: dict[str, list[tuple[tuple[object, ...], int]]] = {}
        self.dirty = False  # a lot may sit at zero remaining without having been consumed


def _order(method: str, lot: _Lot) -> tuple[object, ...]:
    """engine.ORDER on units and day numbers (same comparisons, so the same order)."""
    if method == "fifo":
        return (lot.acquired, lot.seq)
    if method == "lifo":
        return (-lot.acquired, -lot.seq)  # type: ignore[operator]
    if method == "hifo":
        return (0 if lot.b is not None else 1, -(lot.u or 0), lot.acquired, lot.seq)
    raise KeyError(method)


class FastLoop:
    def __init__(self, selections: Selections | None, month_end_rule: bool) -> None:
        self.selections = selections or {}
        self.month_end_rule = month_end_rule
        self.positions: dict[tuple[str, str], _Position] = {}
        self.problems: list[RowError] = []
        self.problem_seqs: list[int] = []  # each problem's event (book_events merges by it)
        self.errors: list[RowError] = []
        # Each transfer key's lots on the way: (seq, lot id, acquired, shares, basis, and the
        # record of the move in m_marks, which the transfer in completes).
        self.in_transit: dict[str, list[tuple[int, str | None, int | None, int, int | None, list[int | None]]]] = {}
        self.keys = 0
        self.anniversaries: dict[int, int] = {}
        # Output columns: lots (one entry per lot, updated in place) and disposal slices.
        self.l_ev: list[int] = []
        self.l_lot_id: list[str | None] = []
        self.l_acq: list[int | None] = []
        self.l_qty: list[int] = []
        self.l_basis: list[int | None] = []
        self.l_open_q: list[int] = []
        self.l_open_b: list[int | None] = []
        self.d_ev: list[int] = []
        self.d_qty: list[int] = []
        self.d_acq: list[int | None] = []
        self.d_proc: list[int | None] = []
        self.d_basis: list[int | None] = []
        self.d_gain: list[int | None] = []
        self.d_term: list[str | None] = []
        self.d_lot_id: list[str | None] = []
        self.d_lot_ev: list[int | None] = []  # the lot's opening event (its row's seq)
        # Lots resized by splits: (lot row, split event, sold before, quantity before, sold
        # after, quantity after), for the wash-sale pass (frames.SPLIT_SCHEMA).
        self.s_marks: list[tuple[int, int, int, int, int, int]] = []
        # Pieces of lots transfers moved: [lot row, transfer out event, start, shares, the row
        # they arrived as (None until then)].
        self.m_marks: list[list[int | None]] = []

    # -- helpers -------------------------------------------------------------------------------

    def _term(self, acquired: int | None, disposed: int) -> str | None:
        if acquired is None:
            return None
        ann = self.anniversaries.get(acquired)
        if ann is None:
            day = dt.date.fromordinal(acquired + _EPOCH)
            ann = self.anniversaries[acquired] = anniversary(day, month_end_rule=self.month_end_rule).toordinal() - _EPOCH
        return "long" if disposed > ann else "short"

    def _problem(self, i: int, message: str, *, error: bool = False) -> None:
        (self.errors if error else self.problems).append(RowError.at(self.sources[i], message))
        if not error:
            self.problem_seqs.append(self.seqs[i])

    def _open(self, i: int, q: int, b: int | None, acquired: int | None, lot_id: str | None, seq: int) -> _Lot:
        self.keys += 1
        row = len(self.l_ev)
        self.l_ev.append(i)
        self.l_lot_id.append(lot_id)
        self.l_acq.append(acquired)
        self.l_qty.append(q)
        self.l_basis.append(b)
        self.l_open_q.append(q)
        self.l_open_b.append(b)
        return _Lot(seq, self.keys, lot_id, acquired, q, b, row)

    def _add(self, pos: _Position, lot: _Lot) -> None:
        pos.lots[lot.key] = lot
        if lot.q == 0:
            pos.dirty = True
        for method, heap in pos.heaps.items():
            heapq.heappush(heap, (_order(method, lot), lot.key))

    def _sync(self, lot: _Lot) -> None:
        self.l_open_q[lot.row] = lot.q - lot.used
        self.l_open_b[lot.row] = None if lot.b is None else lot.b - lot.fused  # type: ignore[operator]

    def _close_empty(self, pos: _Position, touched: list[_Lot]) -> None:
        # Only lots consumed just now can have reached zero, unless one was opened at zero.
        lots = pos.lots
        if pos.dirty:
            for key in [k for k, lot in lots.items() if lot.q == lot.used]:
                del lots[key]
            pos.dirty = False
            return
        for lot in touched:
            if lot.q == lot.used:
                lots.pop(lot.key, None)

    # -- the loop ------------------------------------------------------------------------------

    def run(self, events: pl.DataFrame) -> Booked:
        evs = events.sort("seq")
        self.book(evs)
        return Booked(self._lots_frame(evs).sort("seq"), self._disposals_frame(evs), self.problems, self.errors,
                      splits=self._splits_frame(evs), moves=self._moves_frame(evs))

    def book(self, evs: pl.DataFrame) -> None:
        """The loop proper, on ``evs`` in seq order; ``_lots_frame`` and ``_disposals_frame`` then
        give its rows in the order it made them."""
        col = evs.get_column
        self._kinds = kinds = col("kind").to_list()
        scopes = col("scope").to_list()
        self.accounts = col("account").to_list()
        self.symbols = symbols = col("symbol").to_list()
        self.dates = col("date").cast(pl.Date).to_physical().to_list()
        self.quantities = col("quantity").cast(DECIMAL).to_physical().to_list()
        self.amounts = col("amount").cast(DECIMAL).to_physical().to_list()
        self.trade_ids = col("trade_id").to_list()
        self.lot_ids = col("lot_id").to_list()
        self.methods = col("method").to_list()
        self.transfer_keys = col("transfer_key").to_list()
        self.sources = col("source").to_list()
        self.seqs = col("seq").to_list()
        positions = self.positions
        acquire, dispose, split = self.acquire, self.dispose, self.split
        transfer_out, transfer_in = self.transfer_out, self.transfer_in
        for i, kind in enumerate(kinds):
            key = (scopes[i], symbols[i])
            pos = positions.get(key)
            if pos is None:
                pos = positions[key] = _Position()
            if kind == DISPOSE:
                dispose(i, pos)
            elif kind == ACQUIRE:
                acquire(i, pos)
            elif kind == SPLIT_IN or kind == SPLIT_OUT:
                split(i, pos)
            elif kind == TRANSFER_OUT:
                transfer_out(i, pos)
            elif kind == TRANSFER_IN:
                transfer_in(i, pos)
            else:
                raise KeyError(kind)

    def acquire(self, i: int, pos: _Position) -> None:
        q, amount = self.quantities[i], self.amounts[i]
        self._add(pos, self._open(i, q, amount, self.dates[i], self.trade_ids[i], self.seqs[i]))
        if amount is None:  # only ACQUIRE events come here (unpaired transfers: events.py reports them)
            self._problem(i, f"{self.symbols[i]} {plain(_dec(q))} acquired with no cost basis: "
                             "its sales are booked as basis unknown (add it as an opening lot)")

    def _consume(self, i: int, pos: _Position, quantity: int, method: str) -> list[tuple[_Lot, int, int | None]]:
        """engine._Loop._consume: take ``quantity`` in ``method``'s order."""
        if method == "specific":
            return self._consume_specific(i, pos, quantity)
        taken: list[tuple[_Lot, int, int | None]] = []
        need = quantity
        sync = self._sync
        if method == "taxmin":
            amount = self.amounts[i]
            unit_proceeds = _div(amount, quantity) if amount is not None else 0
            disposed = self.dates[i]
            term = self._term

            def order(lot: _Lot) -> tuple[object, ...]:
                unit = lot.u if lot.b is not None else None
                if lot.b is None:
                    return (4, 0, lot.acquired, lot.seq)
                if unit is None:  # a lot of zero quantity with a basis: div18 by zero, as engine
                    raise ZeroDivisionError("division by zero")
                loss = unit_proceeds < unit
                long_term = term(lot.acquired, disposed) == "long"
                rank = (0 if not long_term else 1) if loss else (2 if long_term else 3)
                return (rank, -unit, lot.acquired, lot.seq)

            for lot in sorted(pos.lots.values(), key=order):
                if need == 0:
                    break
                remaining = lot.q - lot.used
                shares = need if need < remaining else remaining
                taken.append((lot, shares, lot.take(shares)))
                sync(lot)
                need -= shares
        else:
            heap = pos.heaps.get(method)
            lots = pos.lots
            if heap is None:
                heap = [(_order(method, lot), key) for key, lot in lots.items()]
                heapq.heapify(heap)
                pos.heaps[method] = heap
            # engine._Position.ordered and the caller's loop, fused.
            while heap:
                candidate = lots.get(heap[0][1])
                if candidate is None or candidate.q == candidate.used:
                    heapq.heappop(heap)
                    continue
                if need == 0:
                    break
                lot = candidate
                q, b = lot.q, lot.b
                remaining = q - lot.used
                shares = need if need < remaining else remaining
                used = lot.used = lot.used + shares  # lot.take(shares) and self._sync(lot), inlined
                self.l_open_q[lot.row] = q - used
                if b is None:
                    taken.append((lot, shares, None))
                    self.l_open_b[lot.row] = None
                else:
                    before = lot.fused
                    after = lot.fused = b if used == q else _mul(lot.u, used)  # type: ignore[arg-type]
                    taken.append((lot, shares, after - before))  # type: ignore[operator]
                    self.l_open_b[lot.row] = b - after
                need -= shares
                if q - used > 0:
                    break
        self._close_empty(pos, [t[0] for t in taken])
        return taken

    def _consume_specific(self, i: int, pos: _Position, quantity: int) -> list[tuple[_Lot, int, int | None]]:
        trade_id = self.trade_ids[i]
        picks: list[tuple[str, int, Decimal]]
        chosen_picks = self.selections.get(str(trade_id))
        if chosen_picks is None:
            if not self.lot_ids[i]:
                self._problem(i, f"sale {trade_id} names no lot (specific identification needs a lot_id or a lot-selection file)", error=True)
                return []
            picks = [(str(self.lot_ids[i]), quantity, _dec(quantity))]
        else:
            picks = [(lot_id, exact_units(Decimal(shares)), shares) for lot_id, shares in chosen_picks]  # type: ignore[misc]
        by_id = {lot.lot_id: lot for lot in pos.lots.values()}
        taken: list[tuple[_Lot, int, int | None]] = []
        failed = False
        for lot_id, shares, shown in picks:
            lot = by_id.get(lot_id)
            if lot is None:
                failed = True
                self._problem(i, f"sale {trade_id} names lot {lot_id!r}, which is not open in {self.accounts[i]} {self.symbols[i]}", error=True)
            elif shares > lot.q - lot.used:
                failed = True
                self._problem(i, f"sale {trade_id} takes {plain(shown)} from lot {lot_id!r}, which has {plain(_dec(lot.q - lot.used))} left", error=True)
            else:
                taken.append((lot, shares, lot.take(shares)))
                self._sync(lot)
        chosen = sum(s for _, s, _ in taken)
        if not failed and chosen != quantity:
            self._problem(i, f"sale {trade_id} of {plain(_dec(quantity))} selects lots holding {plain(_dec(chosen))}", error=True)
        self._close_empty(pos, [t[0] for t in taken])
        return taken

    def dispose(self, i: int, pos: _Position) -> None:
        quantity = self.quantities[i]
        method = str(self.methods[i])
        taken = self._consume(i, pos, quantity, method)
        proceeds = self.amounts[i]
        disposed = self.dates[i]
        # G(x) for the sale's proceeds; G(start) of a slice is G(end) of the one before.
        unit = None if proceeds is None or quantity == 0 else _div(proceeds, quantity)
        start, g_start = 0, 0 if proceeds is None else (proceeds if quantity == 0 else _mul(unit, 0))  # type: ignore[arg-type]
        booked = 0
        d_ev, d_qty, d_acq, d_proc = self.d_ev, self.d_qty, self.d_acq, self.d_proc
        d_basis, d_gain, d_term, d_lot_id, d_lot_ev = self.d_basis, self.d_gain, self.d_term, self.d_lot_id, self.d_lot_ev
        term = self._term
        for lot, shares, basis in taken:
            booked += shares
            end = start + shares
            if proceeds is None:
                amount = None
            else:
                if end == quantity:
                    g_end = proceeds
                else:  # _mul(unit, end), inlined
                    g_end, r = divmod(unit * end, _UNIT)  # type: ignore[operator]
                    if 2 * r > _UNIT or (2 * r == _UNIT and g_end & 1):
                        g_end += 1
                amount = g_end - g_start
                g_start = g_end
            start = end
            d_ev.append(i)
            d_qty.append(shares)
            d_acq.append(lot.acquired)
            d_proc.append(amount)
            d_basis.append(basis)
            d_gain.append(None if basis is None or amount is None else amount - basis)
            d_term.append(term(lot.acquired, disposed))
            d_lot_id.append(lot.lot_id)
            d_lot_ev.append(self.l_ev[lot.row])
        if booked < quantity and method != "specific":
            short = quantity - booked
            amount = None if proceeds is None else proceeds - g_start
            d_ev.append(i)
            d_qty.append(short)
            d_acq.append(None)
            d_proc.append(amount)
            d_basis.append(None)
            d_gain.append(None)
            d_term.append(None)
            d_lot_id.append(None)
            d_lot_ev.append(None)
            self._problem(i, f"sale of {plain(_dec(quantity))} {self.symbols[i]} in {self.accounts[i]} exceeds the {plain(_dec(booked))} held; "
                             f"{plain(_dec(short))} booked with unknown basis (add opening lots: README, \"Partial histories\")")

    def split(self, i: int, pos: _Position) -> None:
        held = sum(lot.q - lot.used for lot in pos.lots.values())
        shares = self.quantities[i]
        delta = shares if self._kinds[i] == SPLIT_IN else -shares
        if held == 0 or held + delta < 0:
            self._problem(i, f"split of {plain(_dec(abs(delta)))} {self.symbols[i]} in {self.accounts[i]} with {plain(_dec(held))} held: not applied")
            return
        target, ratio = held + delta, _div(held + delta, held)
        lots = sorted(pos.lots.values(), key=lambda lot: lot.key)
        given = 0
        last = len(lots) - 1
        for n, lot in enumerate(lots):
            new_quantity = target - given if n == last else _mul(lot.q - lot.used, ratio)
            given += new_quantity
            remaining_basis = None if lot.b is None else lot.b - (lot.fused or 0)
            lot.reset(new_quantity, remaining_basis)
            row = lot.row
            sold_before, before = self.l_qty[row] - self.l_open_q[row], self.l_qty[row]
            sold_after = _mul(sold_before, ratio)
            self.l_qty[row] = sold_after + new_quantity
            self.s_marks.append((row, i, sold_before, before, sold_after, self.l_qty[row]))
            self._sync(lot)
        pos.heaps.clear()  # unit bases changed
        pos.dirty = True
        self._close_empty(pos, [])

    def transfer_out(self, i: int, pos: _Position) -> None:
        quantity = self.quantities[i]
        taken = self._consume(i, pos, quantity, "fifo")
        moved = sum(s for _, s, _ in taken)
        if moved < quantity:
            self._problem(i, f"transfer out of {plain(_dec(quantity))} {self.symbols[i]} exceeds the {plain(_dec(moved))} held in {self.accounts[i]}")
        moves: list[list[int | None]] = [
            [lot.row, i, self.l_qty[lot.row] - self.l_open_q[lot.row] - shares, shares, None] for lot, shares, _ in taken
        ]
        self.m_marks += moves
        tkey = self.transfer_keys[i]
        if tkey:
            self.in_transit[str(tkey)] = [
                (lot.seq, lot.lot_id, lot.acquired, shares, basis, move) for (lot, shares, basis), move in zip(taken, moves, strict=True)
            ]

    def transfer_in(self, i: int, pos: _Position) -> None:
        tkey = self.transfer_keys[i]
        arriving = self.in_transit.pop(str(tkey), None) if tkey else None
        if arriving is None:
            q, amount = self.quantities[i], self.amounts[i]
            self._add(pos, self._open(i, q, amount, self.dates[i], self.trade_ids[i], self.seqs[i]))
            return  # not an ACQUIRE: unpaired transfers are reported by events.py
        for seq, lot_id, acquired, q, b, move in arriving:
            lot = self._open(i, q, b, acquired, lot_id, seq)
            self._add(pos, lot)
            move[4] = lot.row

    # -- frames --------------------------------------------------------------------------------

    @staticmethod
    def _decimals(units: Sequence[int | None]) -> pl.Series:
        """DECIMAL(38,18) from units: i128 reinterpreted (the units *are* its physical values)."""
        try:
            series = pl.Series(units, dtype=pl.Int128)
            in_range = series.is_empty() or series.abs().max() < _MAX  # type: ignore[operator]
        except (OverflowError, TypeError, pl.exceptions.ComputeError):
            in_range = False
        if in_range:
            return series.reinterpret(dtype=DECIMAL)
        # Out of DECIMAL(38,18)'s range: let polars treat the Decimals as engine's rows would.
        return pl.Series([None if u is None else _dec(u) for u in units], dtype=DECIMAL)

    @staticmethod
    def _dates(days: list[int | None]) -> pl.Series:
        return pl.Series(days, dtype=pl.Int32).cast(pl.Date)

    def _lots_frame(self, evs: pl.DataFrame) -> pl.DataFrame:
        if not self.l_ev:
            return pl.DataFrame(schema=LOT_SCHEMA)
        src = evs.select("scope", "account", "symbol", "currency", "seq", "source")[pl.Series(self.l_ev, dtype=pl.UInt32)]
        acquired = self._dates(self.l_acq)
        basis = self._decimals(self.l_basis)
        columns = {
            "scope": src["scope"], "account": src["account"], "symbol": src["symbol"],
            "lot_id": pl.Series(self.l_lot_id, dtype=pl.String),
            "acquired": acquired, "adjusted_acquired": acquired,
            "quantity": self._decimals(self.l_qty), "cost_basis": basis, "adjusted_basis": basis,
            "open_quantity": self._decimals(self.l_open_q), "open_basis": self._decimals(self.l_open_b),
            "currency": src["currency"], "seq": src["seq"], "source": src["source"],
        }
        return pl.DataFrame([s.alias(name) for name, s in columns.items()]).cast(LOT_SCHEMA)  # type: ignore[arg-type]

    def _lot_keys(self, evs: pl.DataFrame, rows: Sequence[int | None]) -> tuple[pl.Series, pl.Series, pl.Series]:
        """Scope, seq and lot id (LOT_SCHEMA's key of a lot) of the lot ``rows`` (None: null)."""
        lot = evs.select("scope", "seq")[pl.Series([None if r is None else self.l_ev[r] for r in rows], dtype=pl.UInt32)]
        return lot["scope"], lot["seq"], pl.Series([None if r is None else self.l_lot_id[r] for r in rows], dtype=pl.String)

    def _splits_frame(self, evs: pl.DataFrame) -> pl.DataFrame:
        """The lots splits resized (``s_marks``) as SPLIT_SCHEMA rows, in the order of the splits."""
        if not self.s_marks:
            return pl.DataFrame(schema=SPLIT_SCHEMA)
        rows, events, *amounts = zip(*self.s_marks, strict=True)
        columns = {
            **dict(zip(("scope", "lot_seq", "lot_id"), self._lot_keys(evs, rows), strict=True)),
            "seq": evs["seq"].gather(pl.Series(events, dtype=pl.UInt32)),
            **{name: self._decimals(list(a)) for name, a in zip(("sold_before", "quantity_before", "sold_after", "quantity_after"), amounts, strict=True)},
        }
        return pl.DataFrame([s.alias(name) for name, s in columns.items()]).cast(SPLIT_SCHEMA)  # type: ignore[arg-type]

    def _moves_frame(self, evs: pl.DataFrame) -> pl.DataFrame:
        """The pieces of lots transfers moved (``m_marks``) as MOVE_SCHEMA rows, in the order moved."""
        if not self.m_marks:
            return pl.DataFrame(schema=MOVE_SCHEMA)
        rows, events, starts, shares, arrived = zip(*self.m_marks, strict=True)
        columns = {
            **dict(zip(("scope", "lot_seq", "lot_id"), self._lot_keys(evs, rows), strict=True)),
            "seq": evs["seq"].gather(pl.Series(events, dtype=pl.UInt32)),
            "start": self._decimals(list(starts)), "quantity": self._decimals(list(shares)),
            **dict(zip(("to_scope", "to_seq", "to_lot_id"), self._lot_keys(evs, arrived), strict=True)),
        }
        return pl.DataFrame([s.alias(name) for name, s in columns.items()]).cast(MOVE_SCHEMA)  # type: ignore[arg-type]

    def _disposals_frame(self, evs: pl.DataFrame) -> pl.DataFrame:
        n = len(self.d_ev)
        if not n:
            return pl.DataFrame(schema=DISPOSAL_SCHEMA)
        src = evs.select("scope", "account", "symbol", "date", "method", "trade_id", "currency", "seq", "source")[
            pl.Series(self.d_ev, dtype=pl.UInt32)
        ]
        columns = {
            "scope": src["scope"], "account": src["account"], "symbol": src["symbol"],
            "quantity": self._decimals(self.d_qty), "acquired": self._dates(self.d_acq), "disposed": src["date"],
            "proceeds": self._decimals(self.d_proc), "cost_basis": self._decimals(self.d_basis),
            "adjustment_code": pl.Series([None] * n, dtype=pl.String),
            "adjustment": pl.Series([0] * n, dtype=pl.Int128).reinterpret(dtype=DECIMAL),
            "gain": self._decimals(self.d_gain), "term": pl.Series(self.d_term, dtype=pl.String),
            "method": src["method"], "sell_trade_id": src["trade_id"],
            "lot_id": pl.Series(self.d_lot_id, dtype=pl.String),
            "currency": src["currency"], "seq": src["seq"],
            "lot_seq": evs["seq"].gather(pl.Series(self.d_lot_ev, dtype=pl.UInt32)),
            "source": src["source"],
        }
        return pl.DataFrame([s.alias(name) for name, s in columns.items()]).cast(DISPOSAL_SCHEMA)  # type: ignore[arg-type]


# -- the compiled core -------------------------------------------------------------------------

#: Which loop books the positions the compiled core can take: "auto" (the core when built),
#: "compiled" (the core, or ImportError when it is not built), "python" (FastLoop for all).
_CORE_METHODS = {"fifo": 0, "lifo": 1, "hifo": 2, "taxmin": 3}
#: Why the core left a position to FastLoop (its 'failed' codes, see _bookcore.c).
FALLBACK_REASONS = {1: "a quantity or amount outside what the core books", 2: "128-bit overflow", 3: "a result outside DECIMAL(38,18)"}
_LAST_YEAR = 9998  # the last year whose anniversary datetime can hold (FastLoop._term)


def core_choice(core: str | None = None) -> str:
    """"compiled" or "python" for booking (``cores.choose``; $TAXLENS_BOOK_CORE)."""
    return cores.choose("booking", "TAXLENS_BOOK_CORE", _bookcore, _BOOKCORE_ERROR, core)


def core_positions(evs: pl.DataFrame) -> pl.Series:
    """For each event (row-aligned with ``evs``): True when its (scope, symbol) position is one the
    compiled core books: only acquisitions and sales, quantities > 0, dates and seqs known
    (acquisitions' dates within datetime's range, for their anniversaries), every sale by fifo,
    lifo, hifo or taxmin.
    Amounts may be null (basis or proceeds unknown), as FastLoop allows."""
    kind = pl.col("kind")
    ok = (
        kind.is_in([ACQUIRE, DISPOSE]) & (pl.col("quantity") > 0) & pl.col("date").is_not_null() & pl.col("seq").is_not_null()
        & pl.when(kind == ACQUIRE).then(pl.col("date").dt.year().is_between(1, _LAST_YEAR))
        .otherwise(pl.col("method").is_in(list(_CORE_METHODS)))
    ).fill_null(False)
    return evs.select(ok.all().over("scope", "symbol")).to_series()


def book_events(events: pl.DataFrame, *, selections: Selections | None = None, month_end_rule: bool = True,
                core: str | None = None) -> Booked:
    """FastLoop's ``run``, with the positions ``core_positions`` picks booked by the compiled core
    (taxlens/lots/_bookcore.c) and the rest by FastLoop: the same frames, problems and errors,
    row for row (tests/lots/test_book_core.py holds them to it). A position the core cannot book
    exactly (an overflow, a value outside DECIMAL(38,18)) goes to FastLoop too."""
    evs = events.sort("seq")
    if core_choice(core) == "python":
        return FastLoop(selections, month_end_rule).run(evs)
    eligible = core_positions(evs)
    if not eligible.any():
        return FastLoop(selections, month_end_rule).run(evs)
    mask = eligible.to_numpy()
    cevs = evs.filter(eligible)
    result, pos = _run_core(cevs, month_end_rule)
    failed = np.frombuffer(result["failed"], dtype=np.uint8)
    back = failed[pos] != 0  # events of positions the core left to FastLoop
    if back.any():
        mask = mask.copy()
        mask[np.flatnonzero(mask)[back]] = False
    lots, disposals = _core_frames(cevs, result)
    problems = _core_problems(cevs, result, back)
    if mask.all():
        if not _strictly_increasing(lots["seq"]):
            lots = lots.sort("seq")
        return Booked(lots, disposals, [p for _, p in problems], [])
    loop = FastLoop(selections, month_end_rule)
    levs = evs.filter(~pl.Series(mask))
    loop.book(levs)
    # FastLoop on every event would list lots in opening order (so by seq) and then sort them;
    # the merged rows are in that same order, so the same sort gives the same frame.
    lots = pl.concat([lots, loop._lots_frame(levs)]).sort("seq", maintain_order=True)
    if not _strictly_increasing(lots["seq"]):
        lots = lots.sort("seq")
    disposals = pl.concat([disposals, loop._disposals_frame(levs)]).sort("seq", maintain_order=True)
    problems += zip(loop.problem_seqs, loop.problems, strict=True)
    problems.sort(key=lambda p: p[0])  # stable: an event's own problems keep their order
    return Booked(lots, disposals, [p for _, p in problems], loop.errors, splits=loop._splits_frame(levs), moves=loop._moves_frame(levs))


def _strictly_increasing(seq: pl.Series) -> bool:
    """True when sorting by ``seq`` can only leave the rows as they are."""
    return seq.len() < 2 or bool((seq.diff().slice(1) > 0).all())


def _run_core(cevs: pl.DataFrame, month_end_rule: bool) -> tuple[dict[str, bytes], np.ndarray]:
    """The compiled core on ``cevs`` (seq order): its result and each event's position number."""
    assert _bookcore is not None
    kind = pl.col("kind")
    cols = cevs.with_row_index("_row").select(  # a position's number: the rank of its first row
        pl.col("_row").min().over("scope", "symbol").rank("dense").cast(pl.Int32).sub(1).alias("pos"),
        (kind == DISPOSE).cast(pl.UInt8).alias("dispose"),
        pl.col("method").replace_strict(_CORE_METHODS, default=0, return_dtype=pl.UInt8).alias("method"),
        pl.col("date").cast(pl.Date).to_physical().cast(pl.Int32).alias("day"),
    )
    pos = cols["pos"].to_numpy()
    days = cols["day"].to_numpy()
    acquire = cols["dispose"].to_numpy() == 0
    # Anniversaries (holding.anniversary) of the acquisition dates: a lookup, one per distinct day.
    known = np.unique(days[acquire])
    after = np.array([_anniversary_day(int(d), month_end_rule) for d in known], dtype=np.int32)
    ann = np.zeros(len(days), dtype=np.int32)
    if len(known):
        ann[acquire] = after[np.searchsorted(known, days[acquire])]
    qty, _ = _units_buffer(cevs["quantity"])
    amount, amount_valid = _units_buffer(cevs["amount"])
    n_positions = int(pos.max()) + 1 if len(pos) else 0
    result = _bookcore.run(
        pos, cols["dispose"].to_numpy(), cols["method"].to_numpy(), qty, amount, amount_valid,
        np.ascontiguousarray(days, dtype=np.int32), ann, np.ascontiguousarray(cevs["seq"].to_numpy(), dtype=np.int64),
        n_positions,
    )
    return result, pos


def _anniversary_day(day: int, month_end_rule: bool) -> int:
    return anniversary(dt.date.fromordinal(day + _EPOCH), month_end_rule=month_end_rule).toordinal() - _EPOCH


def _core_frames(cevs: pl.DataFrame, r: dict[str, bytes]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The core's lots and disposal slices as FastLoop's frames (before its sort of the lots)."""
    lot_ev = pl.Series(np.frombuffer(r["lot_ev"], dtype=np.uint32))
    src = cevs.select(
        "scope", "account", "symbol", "trade_id", pl.col("date").cast(pl.Date), pl.col("quantity").cast(DECIMAL),
        pl.col("amount").cast(DECIMAL), "currency", "seq", "source",
    )[lot_ev]
    lots = pl.DataFrame([
        src["scope"], src["account"], src["symbol"], src["trade_id"].alias("lot_id"),
        src["date"].alias("acquired"), src["date"].alias("adjusted_acquired"),
        src["quantity"], src["amount"].alias("cost_basis"), src["amount"].alias("adjusted_basis"),
        _decimal_column(r["lot_open_q"]).alias("open_quantity"),
        _decimal_column(r["lot_open_b"], r["lot_open_b_valid"]).alias("open_basis"),
        src["currency"], src["seq"], src["source"],
    ]).cast(LOT_SCHEMA)  # type: ignore[arg-type]
    ev = pl.Series(np.frombuffer(r["ev"], dtype=np.uint32))
    n = ev.len()
    src = cevs.select("scope", "account", "symbol", pl.col("date").cast(pl.Date), "method", "trade_id", "currency", "seq", "source")[ev]
    lot = pl.Series(np.frombuffer(r["lot"], dtype=np.int32))
    term = pl.Series(np.frombuffer(r["term"], dtype=np.int8))
    slices = pl.DataFrame({"lot": lot, "term": term}).select(
        pl.when(pl.col("lot") >= 0).then(pl.col("lot")).cast(pl.UInt32).alias("lot"),
        pl.when(pl.col("term") == 1).then(pl.lit("long")).when(pl.col("term") == 0).then(pl.lit("short")).alias("term"),
    )
    of_lot = cevs.select(pl.col("date").cast(pl.Date), "trade_id", "seq").select(pl.all().gather(slices["lot"]))
    disposals = pl.DataFrame([
        src["scope"], src["account"], src["symbol"], _decimal_column(r["qty"]).alias("quantity"),
        of_lot["date"].alias("acquired"), src["date"].alias("disposed"),
        _decimal_column(r["proceeds"], r["proceeds_valid"]).alias("proceeds"),
        _decimal_column(r["basis"], r["basis_valid"]).alias("cost_basis"),
        pl.Series("adjustment_code", [None] * n, dtype=pl.String),
        pl.Series("adjustment", np.zeros(n, dtype=np.int64)).cast(pl.Int128).reinterpret(dtype=DECIMAL),
        _decimal_column(r["gain"], r["gain_valid"]).alias("gain"), slices["term"],
        src["method"], src["trade_id"].alias("sell_trade_id"), of_lot["trade_id"].alias("lot_id"),
        src["currency"], src["seq"], of_lot["seq"].alias("lot_seq"), src["source"],
    ]).cast(DISPOSAL_SCHEMA)  # type: ignore[arg-type]
    return lots, disposals


def _core_problems(cevs: pl.DataFrame, r: dict[str, bytes], back: np.ndarray) -> list[tuple[int, RowError]]:
    """FastLoop's problems for the events the core booked, with their seqs: acquisitions with no
    cost basis, and sales larger than what was held (the slices with no lot)."""
    out: list[tuple[int, RowError]] = []
    unknown = cevs.filter((pl.col("kind") == ACQUIRE) & pl.col("amount").is_null() & ~pl.Series(back))
    for seq, symbol, q, source in unknown.select(
        "seq", "symbol", pl.col("quantity").cast(DECIMAL).to_physical(), "source"
    ).iter_rows():
        out.append((seq, RowError.at(source, f"{symbol} {plain(_dec(q))} acquired with no cost basis: "
                                             "its sales are booked as basis unknown (add it as an opening lot)")))
    rows = np.flatnonzero(np.frombuffer(r["lot"], dtype=np.int32) < 0)  # shortfall slices
    if len(rows):
        ev = pl.Series(np.frombuffer(r["ev"], dtype=np.uint32)[rows])
        short = _decimal_column(np.frombuffer(r["qty"], dtype=np.uint8).reshape(-1, 16)[rows].tobytes()).to_physical()
        sales = cevs.select("seq", "symbol", "account", pl.col("quantity").cast(DECIMAL).to_physical(), "source")[ev]
        for (seq, symbol, account, quantity, source), s in zip(sales.iter_rows(), short.to_list(), strict=True):
            out.append((seq, RowError.at(source, (
                f"sale of {plain(_dec(quantity))} {symbol} in {account} exceeds the {plain(_dec(quantity - s))} held; "
                f"{plain(_dec(s))} booked with unknown basis (add opening lots: README, \"Partial histories\")"
            ))))
    out.sort(key=lambda p: p[0])
    return out


def _units_buffer(column: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """A DECIMAL(38,18) column as (16-byte little-endian two's complement values, one per row:
    Arrow Decimal128's data buffer, the physical units as __int128; 1 where not null, one byte
    per row) for the compiled core."""
    arr = column.cast(DECIMAL).to_arrow()
    if isinstance(arr, pa.ChunkedArray):  # pragma: no cover - a Series converts to one array
        arr = arr.combine_chunks()
    if not pa.types.is_decimal128(arr.type):  # pragma: no cover
        raise TypeError(f"DECIMAL column handed over as {arr.type}, not decimal128")
    n = len(arr)
    data = np.frombuffer(arr.buffers()[1], dtype=np.uint8)[16 * arr.offset : 16 * (arr.offset + n)] if n else np.zeros(0, np.uint8)
    return data, column.is_not_null().to_numpy().view(np.uint8)


def _decimal_column(units: bytes, valid: bytes | None = None) -> pl.Series:
    """DECIMAL(38,18) from the core's 16-byte values (and one byte per row, 1 where not null),
    through an Arrow Decimal128 array: no value passes through a Python int."""
    n = len(units) // 16
    validity = None
    if valid is not None:
        flags = np.frombuffer(valid, dtype=np.bool_)
        if not flags.all():
            validity = pa.py_buffer(np.packbits(flags, bitorder="little"))
    return pl.Series(pa.Array.from_buffers(pa.decimal128(PRECISION, SCALE), n, [validity, pa.py_buffer(units)]))
