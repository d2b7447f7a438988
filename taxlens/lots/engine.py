"""The general booking loop: every method, splits, transfers and shortfalls.

Booking turns a stream of lot events (``frames.EVENT_SCHEMA``) into lots and disposals. Lots
live per scope (account) and symbol; a sale consumes open lots in the order its method gives:

    method   lots consumed first
    fifo     the earliest acquired                       (the default, Reg. §1.1012-1(c)(1))
    lifo     the latest acquired
    hifo     the highest basis per share
    taxmin   short-term losses, then long-term losses (largest loss per share first), then
             long-term gains, then short-term gains (highest basis per share first)
    specific the lot the sale names (``lot_id``, or a lot-selection file)

Worked example (fifo)::

    2024-01-02  buy   5 VTI  for 1000.00   → lot A
    2024-02-01  buy   4 VTI  for  840.00   → lot B
    2024-03-01  sell  7 VTI  for 1540.00   → A: 5 sh, basis 1000.00, proceeds 1100.00
                                             B: 2 sh, basis  420.00, proceeds  440.00

Amounts are split pro rata with one rule, shared with the vectorised FIFO so both give the same
digits: a lot of quantity Q and basis B has unit basis u = B ÷ Q (half-even, 18 places); the
basis of the slice from c0 to c1 shares into the lot is F(c1) − F(c0), with F(c) = u × c
(half-even) and F(Q) = B. Slices therefore add up to B exactly, whatever the rounding. Proceeds
are split across a sale's slices the same way.

A sale larger than what is held books the excess as a "basis unknown" slice (no lot, no basis,
no gain) and records a problem pointing at the sale: never a zero basis, never a crash.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Context, Decimal, localcontext

import polars as pl

from taxlens.errors import RowError
from taxlens.lots.frames import (
    ACQUIRE,
    CARRIED_SCHEMA,
    DISPOSAL_SCHEMA,
    DISPOSE,
    EVENT_SCHEMA,
    LOT_SCHEMA,
    MOVE_SCHEMA,
    SPLIT_IN,
    SPLIT_OUT,
    SPLIT_SCHEMA,
    TRANSFER_IN,
    TRANSFER_OUT,
    WASH_SCHEMA,
)
from taxlens.lots.holding import term
from taxlens.money import PRECISION, ZERO, div18, mul18, plain

#: Lot-selection file: sale trade id → [(lot id, quantity)].
Selections = dict[str, list[tuple[str, Decimal]]]


@dataclass
class _Lot:
    """An open lot, private to the loop (the one mutable structure, as in beancount's Inventory)."""

    seq: int  # the acquisition's event order (FIFO/LIFO tie-break); kept when a lot moves
    key: int  # unique among all lots
    lot_id: str
    acquired: dt.date
    quantity: Decimal  # Q: as acquired, or as reset by a split or a transfer
    basis: Decimal | None  # B: None when unknown
    used: Decimal = ZERO  # c: shares of Q already consumed
    row: dict[str, object] = field(default_factory=dict)  # its output row (updated in place)

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.used

    def unit(self) -> Decimal | None:
        return None if self.basis is None else div18(self.basis, self.quantity)

    def basis_at(self, shares: Decimal) -> Decimal | None:
        """F(c): basis of the first ``shares`` of the lot."""
        if self.basis is None:
            return None
        if shares == self.quantity:
            return self.basis
        return mul18(div18(self.basis, self.quantity), shares)

    def take(self, shares: Decimal) -> Decimal | None:
        """Consume ``shares``; return their basis (None when unknown)."""
        before = self.basis_at(self.used)
        self.used += shares
        after = self.basis_at(self.used)
        return None if before is None or after is None else after - before


def _slice_amount(total: Decimal | None, quantity: Decimal, start: Decimal, end: Decimal) -> Decimal | None:
    """G(end) − G(start) for a sale of ``quantity`` with net proceeds ``total`` (None: unknown)."""
    if total is None:
        return None

    def g(x: Decimal) -> Decimal:
        return total if x == quantity else mul18(div18(total, quantity), x)

    return g(end) - g(start)


#: Static lot order per method (taxmin depends on the sale, see ``_taxmin_order``).
ORDER: dict[str, Callable[[_Lot], tuple[object, ...]]] = {
    "fifo": lambda lot: (lot.acquired, lot.seq),
    "lifo": lambda lot: (-lot.acquired.toordinal(), -lot.seq),
    "hifo": lambda lot: (0 if lot.basis is not None else 1, -(lot.unit() or ZERO), lot.acquired, lot.seq),
}


def _taxmin_order(lot: _Lot, unit_proceeds: Decimal, disposed: dt.date, month_end_rule: bool) -> tuple[object, ...]:
    unit = lot.unit()
    if unit is None:
        return (4, ZERO, lot.acquired, lot.seq)
    loss = unit_proceeds < unit
    long_term = term(lot.acquired, disposed, month_end_rule=month_end_rule) == "long"
    rank = {(True, False): 0, (True, True): 1, (False, True): 2, (False, False): 3}[(loss, long_term)]
    return (rank, -unit, lot.acquired, lot.seq)


@dataclass
class _Position:
    lots: dict[int, _Lot] = field(default_factory=dict)  # open lots by key
    heaps: dict[str, list[tuple[tuple[object, ...], int]]] = field(default_factory=dict)

    def add(self, lot: _Lot) -> None:
        self.lots[lot.key] = lot
        for method, heap in self.heaps.items():
            heapq.heappush(heap, (ORDER[method](lot), lot.key))

    def held(self) -> Decimal:
        return sum((lot.remaining for lot in self.lots.values()), ZERO)

    def ordered(self, method: str) -> Iterable[_Lot]:
        """Open lots in ``method``'s order (static orders: a heap kept across sales)."""
        heap = self.heaps.get(method)
        if heap is None:
            heap = [(ORDER[method](lot), key) for key, lot in self.lots.items()]
            heapq.heapify(heap)
            self.heaps[method] = heap
        while heap:
            key = heap[0][1]
            lot = self.lots.get(key)
            if lot is None or lot.remaining == 0:
                heapq.heappop(heap)  # closed: drop lazily
                continue
            yield lot
            if lot.remaining > 0:
                return  # the caller stopped before finishing this lot

    def close_empty(self) -> None:
        for key in [k for k, lot in self.lots.items() if lot.remaining == 0]:
            del self.lots[key]


@dataclass
class Booked:
    """Booking's result: every lot, every disposal slice, and the problems found."""

    lots: pl.DataFrame
    disposals: pl.DataFrame
    problems: list[RowError]  # shortfalls and transfers without basis: booked, but flagged
    errors: list[RowError]  # specific-ID selections that can't be honoured: results unreliable
    washes: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=WASH_SCHEMA))  # wash-sale matches
    splits: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SPLIT_SCHEMA))  # lots splits resized
    moves: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=MOVE_SCHEMA))  # lots transfers moved
    carried: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=CARRIED_SCHEMA))  # deferred losses gone out of sight


class _Loop:
    def __init__(self, selections: Selections | None, month_end_rule: bool) -> None:
        self.selections = selections or {}
        self.month_end_rule = month_end_rule
        self.positions: dict[tuple[str, str], _Position] = {}
        self.lots: list[dict[str, object]] = []
        self.disposals: list[dict[str, object]] = []
        self.problems: list[RowError] = []
        self.errors: list[RowError] = []
        # Each transfer key's lots on the way, with the record of each move (``moves``), which
        # the transfer in completes.
        self.in_transit: dict[str, list[tuple[_Lot, dict[str, object]]]] = {}
        self.keys = 0
        self.splits: list[dict[str, object]] = []
        self.moves: list[dict[str, object]] = []

    def run(self, events: pl.DataFrame) -> Booked:
        handlers = {
            ACQUIRE: self.acquire, DISPOSE: self.dispose, SPLIT_IN: self.split, SPLIT_OUT: self.split,
            TRANSFER_OUT: self.transfer_out, TRANSFER_IN: self.transfer_in,
        }
        for ev in events.sort("seq").iter_rows(named=True):
            handlers[ev["kind"]](ev, self.positions.setdefault((ev["scope"], ev["symbol"]), _Position()))
        lots = pl.DataFrame(self.lots, schema=LOT_SCHEMA) if self.lots else pl.DataFrame(schema=LOT_SCHEMA)
        disposals = pl.DataFrame(self.disposals, schema=DISPOSAL_SCHEMA) if self.disposals else pl.DataFrame(schema=DISPOSAL_SCHEMA)
        splits = pl.DataFrame(self.splits, schema=SPLIT_SCHEMA)
        moves = pl.DataFrame(self.moves, schema=MOVE_SCHEMA)
        return Booked(lots.sort("seq"), disposals, self.problems, self.errors, splits=splits, moves=moves)

    def _problem(self, ev: dict[str, object], message: str, *, error: bool = False) -> None:
        (self.errors if error else self.problems).append(RowError.at(ev["source"], message))

    def _open(self, ev: dict[str, object], quantity: Decimal, basis: Decimal | None, acquired: dt.date, lot_id: str, seq: int) -> _Lot:
        self.keys += 1
        row: dict[str, object] = {
            "scope": ev["scope"], "account": ev["account"], "symbol": ev["symbol"], "lot_id": lot_id,
            "acquired": acquired, "adjusted_acquired": acquired, "quantity": quantity,
            "cost_basis": basis, "adjusted_basis": basis, "open_quantity": quantity,
            "open_basis": basis, "currency": ev["currency"], "seq": ev["seq"], "source": ev["source"],
        }
        self.lots.append(row)
        return _Lot(seq=seq, key=self.keys, lot_id=lot_id, acquired=acquired, quantity=quantity, basis=basis, row=row)

    def _sync(self, lot: _Lot) -> None:
        lot.row["open_quantity"] = lot.remaining
        full = lot.basis_at(lot.quantity)
        used = lot.basis_at(lot.used)
        lot.row["open_basis"] = None if full is None or used is None else full - used

    def acquire(self, ev: dict[str, object], pos: _Position) -> None:
        lot = self._open(ev, ev["quantity"], ev["amount"], ev["date"], ev["trade_id"], ev["seq"])  # type: ignore[arg-type]
        pos.add(lot)
        if ev["amount"] is None and ev["kind"] == ACQUIRE:  # unpaired transfers are reported by events.py
            self._problem(ev, f"{ev['symbol']} {plain(ev['quantity'])} acquired with no cost basis: "  # type: ignore[arg-type]
                              "its sales are booked as basis unknown (add it as an opening lot)")

    def _consume(self, ev: dict[str, object], pos: _Position, quantity: Decimal) -> list[tuple[_Lot, Decimal, Decimal | None]]:
        """Take ``quantity`` from the position in the sale's method order: [(lot, shares, basis)]."""
        method = str(ev["method"])
        taken: list[tuple[_Lot, Decimal, Decimal | None]] = []
        need = quantity
        if method == "specific":
            return self._consume_specific(ev, pos, quantity)
        if method == "taxmin":
            unit_proceeds = div18(ev["amount"], quantity) if ev["amount"] is not None else ZERO  # type: ignore[arg-type]
            candidates: Iterable[_Lot] = sorted(
                pos.lots.values(), key=lambda lot: _taxmin_order(lot, unit_proceeds, ev["date"], self.month_end_rule)  # type: ignore[arg-type]
            )
        else:
            candidates = pos.ordered(method)
        for lot in candidates:
            if need == 0:
                break
            shares = min(need, lot.remaining)
            taken.append((lot, shares, lot.take(shares)))
            self._sync(lot)
            need -= shares
        pos.close_empty()
        return taken

    def _consume_specific(self, ev: dict[str, object], pos: _Position, quantity: Decimal) -> list[tuple[_Lot, Decimal, Decimal | None]]:
        picks = self.selections.get(str(ev["trade_id"]))
        if picks is None:
            if not ev["lot_id"]:
                self._problem(ev, f"sale {ev['trade_id']} names no lot (specific identification needs a lot_id or a lot-selection file)", error=True)
                return []
            picks = [(str(ev["lot_id"]), quantity)]
        by_id = {lot.lot_id: lot for lot in pos.lots.values()}
        taken = []
        failed = False
        for lot_id, shares in picks:
            lot = by_id.get(lot_id)
            if lot is None:
                failed = True
                self._problem(ev, f"sale {ev['trade_id']} names lot {lot_id!r}, which is not open in {ev['account']} {ev['symbol']}", error=True)
            elif shares > lot.remaining:
                failed = True
                self._problem(ev, f"sale {ev['trade_id']} takes {plain(shares)} from lot {lot_id!r}, which has {plain(lot.remaining)} left", error=True)
            else:
                taken.append((lot, shares, lot.take(shares)))
                self._sync(lot)
        chosen = sum((s for _, s, _ in taken), ZERO)
        if not failed and chosen != quantity:
            self._problem(ev, f"sale {ev['trade_id']} of {plain(quantity)} selects lots holding {plain(chosen)}", error=True)
        pos.close_empty()
        return taken

    def dispose(self, ev: dict[str, object], pos: _Position) -> None:
        quantity: Decimal = ev["quantity"]  # type: ignore[assignment]
        taken = self._consume(ev, pos, quantity)
        booked = sum((shares for _, shares, _ in taken), ZERO)
        proceeds: Decimal | None = ev["amount"]  # type: ignore[assignment]
        start = ZERO
        for lot, shares, basis in taken:
            end = start + shares
            self._slice(ev, lot, shares, _slice_amount(proceeds, quantity, start, end), basis)
            start = end
        if booked < quantity and str(ev["method"]) != "specific":
            short = quantity - booked
            self._slice(ev, None, short, _slice_amount(proceeds, quantity, start, quantity), None)
            self._problem(ev, f"sale of {plain(quantity)} {ev['symbol']} in {ev['account']} exceeds the {plain(booked)} held; "
                              f"{plain(short)} booked with unknown basis (add opening lots: README, \"Partial histories\")")

    def _slice(self, ev: dict[str, object], lot: _Lot | None, shares: Decimal, proceeds: Decimal | None, basis: Decimal | None) -> None:
        acquired = lot.acquired if lot else None
        self.disposals.append({
            "scope": ev["scope"], "account": ev["account"], "symbol": ev["symbol"], "quantity": shares,
            "acquired": acquired, "disposed": ev["date"], "proceeds": proceeds, "cost_basis": basis,
            "adjustment_code": None, "adjustment": ZERO,
            "gain": None if basis is None or proceeds is None else proceeds - basis,
            "term": None if acquired is None else term(acquired, ev["date"], month_end_rule=self.month_end_rule),  # type: ignore[arg-type]
            "method": ev["method"], "sell_trade_id": ev["trade_id"], "lot_id": lot.lot_id if lot else None,
            "currency": ev["currency"], "seq": ev["seq"], "lot_seq": lot.row["seq"] if lot else None,
            "source": ev["source"],
        })

    def split(self, ev: dict[str, object], pos: _Position) -> None:
        """Shares added (split_in) or removed (split_out) pro rata across the open lots; each
        lot keeps its remaining basis and its dates (a reset lot: Q = new quantity, c = 0)."""
        held = pos.held()
        shares = ev["quantity"]
        assert isinstance(shares, Decimal)
        delta = shares if ev["kind"] == SPLIT_IN else -shares
        if held == 0 or held + delta < 0:
            self._problem(ev, f"split of {plain(abs(delta))} {ev['symbol']} in {ev['account']} with {plain(held)} held: not applied")
            return
        target, ratio = held + delta, div18(held + delta, held)
        lots = sorted(pos.lots.values(), key=lambda lot: lot.key)
        given = ZERO
        for i, lot in enumerate(lots):
            new_quantity = target - given if i == len(lots) - 1 else mul18(lot.remaining, ratio)
            given += new_quantity
            remaining_basis = None if lot.basis is None else lot.basis - (lot.basis_at(lot.used) or ZERO)
            lot.quantity, lot.basis, lot.used = new_quantity, remaining_basis, ZERO
            # The lot's size in post-split shares: what it had sold, scaled, plus what remains.
            sold_before = lot.row["quantity"] - lot.row["open_quantity"]  # type: ignore[operator]
            before, sold_after = lot.row["quantity"], mul18(sold_before, ratio)
            lot.row["quantity"] = sold_after + new_quantity
            self.splits.append({
                "scope": lot.row["scope"], "lot_seq": lot.row["seq"], "lot_id": lot.row["lot_id"], "seq": ev["seq"],
                "sold_before": sold_before, "quantity_before": before, "sold_after": sold_after, "quantity_after": lot.row["quantity"],
            })
            self._sync(lot)
        pos.heaps.clear()  # unit bases changed
        pos.close_empty()

    def transfer_out(self, ev: dict[str, object], pos: _Position) -> None:
        """Lots leave the scope (FIFO), not a sale; with a transfer_key they wait for their
        transfer_in, otherwise they have left the household's records."""
        moving = {**ev, "method": "fifo"}
        taken = self._consume(moving, pos, ev["quantity"])  # type: ignore[arg-type]
        moved = sum((s for _, s, _ in taken), ZERO)
        if moved < ev["quantity"]:  # type: ignore[operator]
            self._problem(ev, f"transfer out of {plain(ev['quantity'])} {ev['symbol']} exceeds the {plain(moved)} held in {ev['account']}")  # type: ignore[arg-type]
        moves = [
            {"scope": lot.row["scope"], "lot_seq": lot.row["seq"], "lot_id": lot.row["lot_id"], "seq": ev["seq"],
             "start": lot.row["quantity"] - lot.row["open_quantity"] - shares, "quantity": shares,  # type: ignore[operator]
             "to_scope": None, "to_seq": None, "to_lot_id": None}
            for lot, shares, _ in taken
        ]
        self.moves += moves
        if ev["transfer_key"]:
            self.in_transit[str(ev["transfer_key"])] = [
                (_Lot(seq=lot.seq, key=0, lot_id=lot.lot_id, acquired=lot.acquired, quantity=shares, basis=basis), move)
                for (lot, shares, basis), move in zip(taken, moves, strict=True)
            ]

    def transfer_in(self, ev: dict[str, object], pos: _Position) -> None:
        """Lots arrive with the basis and dates they left with; unpaired, basis unknown."""
        arriving = self.in_transit.pop(str(ev["transfer_key"]), None) if ev["transfer_key"] else None
        if arriving is None:
            self.acquire({**ev, "amount": ev["amount"]}, pos)
            return
        for moved, move in arriving:
            pos.add(self._open(ev, moved.quantity, moved.basis, moved.acquired, moved.lot_id, moved.seq))
            move.update(to_scope=ev["scope"], to_seq=ev["seq"], to_lot_id=moved.lot_id)


def book_loop(events: pl.DataFrame, *, selections: Selections | None = None, month_end_rule: bool = True,
              core: str | None = None) -> Booked:
    """Book ``events`` (EVENT_SCHEMA) one by one, for every method: the same rules as
    ``book_reference``, run on integer units by ``_loopfast`` (about 10x faster), so it gives
    the same frames to the last digit (tests/lots/test_loop_reference.py holds it to that).
    Positions of plain acquisitions and sales go to its compiled core when built (``core``:
    "auto", "compiled" or "python", else $TAXLENS_BOOK_CORE; see ``_loopfast.book_events``)."""
    assert set(EVENT_SCHEMA) <= set(events.columns), "events must have EVENT_SCHEMA's columns"
    from taxlens.lots._loopfast import book_events

    return book_events(events, selections=selections, month_end_rule=month_end_rule, core=core)


def book_reference(events: pl.DataFrame, *, selections: Selections | None = None, month_end_rule: bool = True) -> Booked:
    """The rules as written above, on Decimals and named rows: slow, and the statement
    ``book_loop`` and the vectorised FIFO are tested against."""
    assert set(EVENT_SCHEMA) <= set(events.columns), "events must have EVENT_SCHEMA's columns"
    # Sums and differences of DECIMAL(38,18) values need 38 digits; Python's default context
    # keeps 28 and would round a wei-sized quantity next to a large one.
    with localcontext(Context(prec=2 * PRECISION)):
        return _Loop(selections, month_end_rule).run(events)
