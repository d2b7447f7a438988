"""The frames booking passes around: events in, lots and disposals out.

Booking never sees trades directly: ``events.py`` turns stored trades into lot events (with the
lot scope, the method for each sale and the amounts already fixed), and both booking paths, the
vectorised FIFO (``fifo.py``) and the general loop (``engine.py``), read these events and write
the same lots and disposals, to the last digit.
"""

from __future__ import annotations

import polars as pl

from taxlens.ingest.frame import DECIMAL

#: One lot-affecting event. ``seq`` is the order events apply in (unique). ``scope`` is the lot
#: pool (the account, or a pooled crypto scope). Kinds: acquire (a new lot: buy, reinvestment,
#: income, opening lot), dispose (a sale; ``amount`` is the proceeds net of fees), split_in and
#: split_out (shares added to or removed from the open lots pro rata, basis and dates kept),
#: transfer_out and transfer_in (lots leaving one scope and, when ``transfer_key`` pairs them,
#: arriving in another with their basis and dates).
EVENT_SCHEMA: dict[str, pl.DataType] = {
    "seq": pl.Int64(),
    "scope": pl.String(),
    "account": pl.String(),
    "symbol": pl.String(),
    "kind": pl.String(),
    "date": pl.Date(),
    "quantity": DECIMAL,  # > 0
    "amount": DECIMAL,  # acquire: total basis with fees (null: unknown); dispose: net proceeds
    "trade_id": pl.String(),  # the trade's id as outputs show it (the source's own id if any)
    "lot_id": pl.String(),  # dispose under specific-ID: the lot it names
    "method": pl.String(),  # dispose: fifo | lifo | hifo | taxmin | specific
    "transfer_key": pl.String(),  # pairs a transfer_out with its transfer_in
    "currency": pl.String(),
    "source": pl.String(),  # path:line of the trade
}

#: Every lot ever opened, with what is still open. ``quantity`` and ``cost_basis`` are as
#: acquired (after splits); ``open_quantity``/``open_basis`` remain. ``cost_basis`` is null when
#: the basis is unknown (a transfer in with no basis).
LOT_SCHEMA: dict[str, pl.DataType] = {
    "scope": pl.String(),
    "account": pl.String(),
    "symbol": pl.String(),
    "lot_id": pl.String(),
    "acquired": pl.Date(),
    "adjusted_acquired": pl.Date(),
    "quantity": DECIMAL,
    "cost_basis": DECIMAL,
    "adjusted_basis": DECIMAL,
    "open_quantity": DECIMAL,
    "open_basis": DECIMAL,
    "currency": pl.String(),
    "seq": pl.Int64(),
    "source": pl.String(),
}

#: One row per lot slice sold (what Form 8949 needs). A sale that exceeds the lots held books
#: its excess as a slice with a null ``lot_id`` and null basis ("basis unknown"), never zero.
DISPOSAL_SCHEMA: dict[str, pl.DataType] = {
    "scope": pl.String(),
    "account": pl.String(),
    "symbol": pl.String(),
    "quantity": DECIMAL,
    "acquired": pl.Date(),
    "disposed": pl.Date(),
    "proceeds": DECIMAL,
    "cost_basis": DECIMAL,
    "adjustment_code": pl.String(),
    "adjustment": DECIMAL,
    "gain": DECIMAL,
    "term": pl.String(),
    "method": pl.String(),
    "sell_trade_id": pl.String(),
    "lot_id": pl.String(),
    "currency": pl.String(),
    "seq": pl.Int64(),  # the sale's event
    "lot_seq": pl.Int64(),  # the lot's ``seq`` in the lots frame (null for a shortfall slice)
    "source": pl.String(),  # the sale's path:line
}

#: One row per lot a split resized (booking records them for the wash-sale pass, which follows
#: adjusted shares through splits): the lot (scope, lot_seq, lot_id as in LOT_SCHEMA), the split
#: event's seq, and the lot's shares sold so far and its whole quantity, before and after (the
#: lot's ``quantity`` counts sold shares in the units of the latest split, as booking keeps it).
SPLIT_SCHEMA: dict[str, pl.DataType] = {
    "scope": pl.String(),
    "lot_seq": pl.Int64(),
    "lot_id": pl.String(),
    "seq": pl.Int64(),
    "sold_before": DECIMAL,
    "quantity_before": DECIMAL,
    "sold_after": DECIMAL,
    "quantity_after": DECIMAL,
}

#: One row per piece of a lot a transfer moved (booking records them for the wash-sale pass,
#: which moves adjusted shares with them): the lot left (scope, lot_seq, lot_id), the transfer
#: out's seq, the lot's shares it took ([start, start + quantity) in the lot's units), and the
#: lot they arrived as (null when they never arrived: an unpaired transfer out).
MOVE_SCHEMA: dict[str, pl.DataType] = {
    "scope": pl.String(),
    "lot_seq": pl.Int64(),
    "lot_id": pl.String(),
    "seq": pl.Int64(),
    "start": DECIMAL,
    "quantity": DECIMAL,
    "to_scope": pl.String(),
    "to_seq": pl.Int64(),
    "to_lot_id": pl.String(),
}

ACQUIRE, DISPOSE = "acquire", "dispose"
SPLIT_IN, SPLIT_OUT = "split_in", "split_out"
TRANSFER_IN, TRANSFER_OUT = "transfer_in", "transfer_out"
METHODS = ("fifo", "lifo", "hifo", "taxmin", "specific")

#: One row per wash-sale match (lots/wash.py): a loss slice and the replacement shares it
#: was matched to, with the disallowed amount and whether it is deferred, permanent or info.
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

#: Losses deferred by wash sales that left with their shares for an account taxlens does not
#: follow (a transfer out with no transfer in): one row per transfer and lot, the shares that
#: carried adjustments and the loss deferred in them. They stay in those shares' basis there,
#: out of sight: ``still_deferred`` stops counting them from ``date`` on.
CARRIED_SCHEMA: dict[str, pl.DataType] = {
    "account": pl.String(),
    "symbol": pl.String(),
    "lot_id": pl.String(),
    "date": pl.Date(),
    "quantity": DECIMAL,
    "amount": DECIMAL,
    "seq": pl.Int64(),
    "source": pl.String(),
}
