"""Type stub of the compiled booking core (taxlens/lots/_bookcore.c, built by setup.py)."""

from typing import Any

def run(
    pos: Any,  # int32 per event: its position, 0 .. n_positions - 1
    kind: Any,  # uint8: 0 acquire, 1 dispose
    method: Any,  # uint8: 0 fifo, 1 lifo, 2 hifo, 3 taxmin (sales)
    qty: Any,  # 16 bytes per event: DECIMAL(38,18) units as __int128
    amount: Any,  # 16 bytes per event
    amount_valid: Any,  # uint8: 1 where amount is not null
    date: Any,  # int32: days since 1970-01-01
    ann: Any,  # int32: the acquisition's anniversary (acquisitions)
    seq: Any,  # int64
    n_positions: int,
    /,
) -> dict[str, bytes]: ...
