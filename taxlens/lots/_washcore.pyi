"""Type stub for the compiled wash-sale core (taxlens/lots/_washcore.c); see wash.py."""

from typing import Any

def run(
    lot_qty: Any, lot_taxable: Any, axis_lots: Any, slice_lot: Any, first: Any, stop: Any, loss: Any, applies: Any,
    q: Any, cost: Any, cost_valid: Any, proceeds: Any, proceeds_valid: Any, basis: Any, basis_valid: Any,
    acquired: Any, disposed: Any, sale_start: Any, month_end_rule: bool, /,
) -> dict[str, Any] | str:
    """The pass on flat buffers: the output columns (buffers) and "scale", or why it cannot be exact here."""

def anniversary(day: int, month_end_rule: bool, /) -> int | None:
    """taxlens.lots.holding.anniversary on days since 1970-01-01 (None outside datetime's range)."""
