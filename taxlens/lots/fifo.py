"""Vectorised FIFO: booking as two joins, for the positions that need nothing else.

Most positions are plain: FIFO sales only, no splits or transfers, a known basis for every lot,
and never a sale larger than what is held. For them booking needs no loop (performance.md §2(b)).
On a position's cumulative-acquired axis lot k covers [A_k − Q_k, A_k); on its cumulative-sold
axis sale j covers [S_j − q_j, S_j). Because no sale outruns the lots bought before it, the two
axes line up and FIFO's slices are exactly the overlaps. Every slice ends either at a sale end
or at a lot end strictly inside a sale, so two forward ``join_asof`` find them all::

    sale end S_j  → the first lot with A_k ≥ S_j           (the slice closing the sale)
    lot end  A_k  → the first sale with S_j > A_k, kept if  (the slice closing the lot;
                    the sale started before A_k)            strict, so shared ends count once)

Worked example: lots A = [0, 5), B = [5, 9); sale [0, 7). Sale end 7 → lot B, slice [5, 7);
lot end 5 → the sale, slice [0, 5). Lot end 9 is past everything sold: B stays open 2.

Amounts follow the loop's pro-rata rule (``engine.py``): slice basis F(c1) − F(c0) with
F(c) = (B ÷ Q) × c and F(Q) = B; proceeds the same with the sale's quantity and net proceeds.
polars' Decimal(38,18) ``/`` and ``*`` round half-even to 18 places exactly as ``div18`` and
``mul18`` do, and the axis arithmetic is exact Decimal addition, so both paths agree to the
last digit.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from taxlens.ingest.frame import DECIMAL
from taxlens.lots.engine import Booked
from taxlens.lots.frames import ACQUIRE, DISPOSAL_SCHEMA, DISPOSE, EVENT_SCHEMA, LOT_SCHEMA
from taxlens.lots.holding import term_expr

_ZERO = pl.lit(Decimal(0), dtype=DECIMAL)
_POSITION = ("scope", "symbol")
_ROOM = 1e19  # a tenth of Decimal(38,18)'s range


def fast_positions(events: pl.DataFrame) -> pl.Series:
    """For each event (row-aligned with ``events``): True when its (scope, symbol) position may
    be booked by ``book_fifo``, False when it must go to the loop.

    A position qualifies when all its events are acquires or disposes with quantity > 0, every
    dispose uses "fifo", every acquire has a basis (non-null amount), acquire dates never go
    back in ``seq`` order (so the loop's FIFO order, (acquired, seq), is plain ``seq`` order),
    no sale ever exceeds what was acquired before it (cumulative sold ≤ cumulative acquired at
    each sale), and its amounts stay well inside Decimal(38,18). All by window expressions.
    """
    acq, dis = pl.col("kind") == ACQUIRE, pl.col("kind") == DISPOSE
    # Decimal(38,18) stops at 1e20 and polars raises past it, where the loop's Python decimals
    # would not: positions whose running totals or unit amounts (amount ÷ quantity) could get
    # near it go to the loop. A float screen with a 10x margin: it only decides the path.
    f_q, f_amount = pl.col("quantity").cast(pl.Float64), pl.col("amount").cast(pl.Float64).abs()
    fits = (f_q.abs().sum().over(_POSITION) < _ROOM) & (f_amount < _ROOM) & (f_amount < f_q * _ROOM)
    q = pl.when(fits.all().over(_POSITION)).then(pl.col("quantity")).otherwise(_ZERO)

    def running(expr: pl.Expr) -> pl.Expr:
        # ``order_by`` gives seq order inside each position without re-sorting the frame.
        return expr.over(_POSITION, order_by="seq")

    bought = running(pl.when(acq).then(q).otherwise(_ZERO).cum_sum())
    sold = running(pl.when(dis).then(q).otherwise(_ZERO).cum_sum())
    latest_acquired = running(pl.when(acq).then(pl.col("date")).cum_max())
    row_ok = (
        (acq | (dis & (pl.col("method") == "fifo")))
        & (pl.col("quantity") > 0)
        & fits.fill_null(True)  # a null amount is judged below
        & (~acq | (pl.col("amount").is_not_null() & (pl.col("date") == latest_acquired)))
        & (~dis | (sold <= bought))  # seq is unique, so ``bought`` at a sale is what came before it
    ).fill_null(False)  # a null anywhere in the test sends the position to the loop
    return events.select(row_ok.all().over(_POSITION).alias("fast")).to_series()


def book_fifo(events: pl.DataFrame, *, month_end_rule: bool = True) -> Booked:
    """Book ``events`` (EVENT_SCHEMA) of positions that ``fast_positions`` accepts, all at once.

    Returns the same ``Booked`` as ``book_loop`` on these events, frame for frame (``.equals``):
    lots in ``seq`` order, disposal slices in (sale ``seq``, FIFO) order; no problems or errors
    (fast positions have none). Events of other positions give wrong results: filter first.
    """
    assert set(EVENT_SCHEMA) <= set(events.columns), "events must have EVENT_SCHEMA's columns"
    acq = pl.col("kind") == ACQUIRE
    # An integer id per position (its first seq): sorting and asof-grouping on integers, never
    # on (scope, symbol) strings (performance.md, pitfall 3). One sort for the whole booking.
    ev = (
        events.select(list(EVENT_SCHEMA))
        .with_columns(pl.col("seq").min().over(_POSITION).alias("_pos"))
        .sort("_pos", "seq")
        .with_columns(
            # A_k for acquires, S_j for disposes: running totals per (position, side).
            pl.col("quantity").cum_sum().over("_pos", "kind").alias("_end"),
            pl.when(acq).then(_ZERO).otherwise(pl.col("quantity")).sum().over("_pos").alias("_sold"),
        )
    )
    lots = ev.filter(acq)
    sales = ev.filter(~acq).select(
        "_pos", "seq", "scope", "account", "symbol", pl.col("date").alias("disposed"),
        pl.col("quantity").alias("_q"), pl.col("amount").alias("_p"), pl.col("_end").alias("_s"),
        (pl.col("_end") - pl.col("quantity")).alias("_s0"),
        "method", pl.col("trade_id").alias("sell_trade_id"), "currency", "source",
    )
    keys = lots.select(
        "_pos", pl.col("seq").alias("_lot_seq"), pl.col("trade_id").alias("lot_id"),
        pl.col("date").alias("acquired"), pl.col("quantity").alias("_Q"), pl.col("amount").alias("_B"),
        pl.col("_end").alias("_a"), (pl.col("_end") - pl.col("quantity")).alias("_a0"),
    )
    asof = {"by": "_pos", "strategy": "forward", "check_sortedness": False}  # sorted within each _pos
    closing_sales = sales.join_asof(keys, left_on="_s", right_on="_a", **asof).with_columns(pl.col("_s").alias("_c"))
    closing_lots = (
        keys.join_asof(sales, left_on="_a", right_on="_s", allow_exact_matches=False, **asof)
        .filter(pl.col("_s0") < pl.col("_a"))  # also drops lots past the last sale (null _s0)
        .with_columns(pl.col("_a").alias("_c"))
    )
    columns = closing_sales.columns
    slices = pl.concat([closing_sales, closing_lots.select(columns)]).with_columns(
        pl.max_horizontal("_a0", "_s0").alias("_o")  # the slice is [_o, _c) on both axes
    )
    start, end = pl.col("_o"), pl.col("_c")
    basis = _share(pl.col("_B"), pl.col("_Q"), end - pl.col("_a0")) - _share(pl.col("_B"), pl.col("_Q"), start - pl.col("_a0"))
    proceeds = _share(pl.col("_p"), pl.col("_q"), end - pl.col("_s0")) - _share(pl.col("_p"), pl.col("_q"), start - pl.col("_s0"))
    disposals = (
        slices.sort("seq", "_lot_seq")
        .with_columns((end - start).alias("quantity"), proceeds.alias("proceeds"), basis.alias("cost_basis"))
        .with_columns(
            pl.lit(None, dtype=pl.String).alias("adjustment_code"),
            _ZERO.alias("adjustment"),
            (pl.col("proceeds") - pl.col("cost_basis")).alias("gain"),
            term_expr(pl.col("acquired"), pl.col("disposed"), month_end_rule=month_end_rule).alias("term"),
        )
        .select(list(DISPOSAL_SCHEMA))
        .cast(DISPOSAL_SCHEMA)  # type: ignore[arg-type]
    )

    # What each lot gave up: the part of [A_k − Q_k, A_k) below the position's total sold.
    used = pl.min_horizontal(pl.max_horizontal(pl.col("_sold") - pl.col("_end") + pl.col("quantity"), _ZERO), pl.col("quantity"))
    lot_frame = (
        lots.sort("seq")
        .select(
            "scope", "account", "symbol", pl.col("trade_id").alias("lot_id"), pl.col("date").alias("acquired"),
            pl.col("date").alias("adjusted_acquired"), "quantity", pl.col("amount").alias("cost_basis"),
            pl.col("amount").alias("adjusted_basis"), (pl.col("quantity") - used).alias("open_quantity"),
            (pl.col("amount") - _share(pl.col("amount"), pl.col("quantity"), used)).alias("open_basis"),
            "currency", "seq", "source",
        )
        .cast(LOT_SCHEMA)  # type: ignore[arg-type]
    )
    return Booked(lot_frame, disposals, [], [])


def _share(total: pl.Expr, whole: pl.Expr, part: pl.Expr) -> pl.Expr:
    """F(part) for ``total`` spread over ``whole``: total when part == whole, else
    (total ÷ whole) × part, each step rounded half-even to 18 places (``engine.basis_at``)."""
    return pl.when(part == whole).then(total).otherwise((total / whole) * part)
