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
from taxlens.money import QUANTUM, SCALE

_ZERO = pl.lit(Decimal(0), dtype=DECIMAL)
_POSITION = ("scope", "symbol")
_ROOM = pl.lit(Decimal(10**19), dtype=DECIMAL)  # a tenth of Decimal(38,18)'s range
_WHOLE_ROOM = pl.lit(10**19, dtype=pl.Int128)


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
    by_position = events.lazy().select(
        "seq", "kind", "date", "quantity", "amount", "method",
        pl.col("seq").min().over(_POSITION).alias("_pos"),  # an integer id: cheaper windows
    )
    # Decimal(38,18) stops at 1e20 and polars raises past it (the loop's Python decimals would
    # not): running totals and unit amounts (amount ÷ quantity) must stay well inside it.
    # Whole shares as exact Int128 bound a position's totals without overflowing anything.
    whole = pl.col("quantity").to_physical().abs() // 10**SCALE + 1
    amount = pl.col("amount").abs()
    fits = (amount < _ROOM) & (amount * pl.lit(QUANTUM, dtype=DECIMAL) <= pl.col("quantity"))  # unit ≤ ~1e18
    by_position = by_position.with_columns(
        (fits.fill_null(True) & (whole.sum().over("_pos") < _WHOLE_ROOM)).alias("_fits"),
    ).with_columns(pl.col("_fits").all().over("_pos"))
    # Staged with_columns, not nested windows: a window inside a window is evaluated slowly.
    q = pl.when(pl.col("_fits")).then(pl.col("quantity")).otherwise(_ZERO)  # no overflow when masked

    def running(expr: pl.Expr) -> pl.Expr:
        # ``order_by`` gives seq order inside each position without re-sorting the frame.
        return expr.over("_pos", order_by="seq")

    latest_acquired = running(pl.when(acq).then(pl.col("date")).cum_max())
    # seq is unique, so what was bought at a sale's row is what came before it
    bought = running(pl.when(acq).then(q).otherwise(_ZERO).cum_sum())
    sold = running(pl.when(dis).then(q).otherwise(_ZERO).cum_sum())
    row_ok = (
        pl.col("_fits")
        & (acq | (dis & (pl.col("method") == "fifo")))
        & (pl.col("quantity") > 0)
        & (~acq | (pl.col("amount").is_not_null() & (pl.col("date") == latest_acquired)))
        & (~dis | (sold <= bought))
    ).fill_null(False)  # a null anywhere in the test sends the position to the loop
    verdict = by_position.with_columns(row_ok.alias("_ok")).select(pl.col("_ok").all().over("_pos").alias("fast"))
    return verdict.collect().to_series()


def book_fifo(events: pl.DataFrame, *, month_end_rule: bool = True) -> Booked:
    """Book ``events`` (EVENT_SCHEMA) of positions that ``fast_positions`` accepts, all at once.

    Returns the same ``Booked`` as ``book_loop`` on these events, frame for frame (``.equals``):
    lots in ``seq`` order, disposal slices in (sale ``seq``, FIFO) order; no problems or errors
    (fast positions have none). Events of other positions give wrong results: filter first.
    """
    assert set(EVENT_SCHEMA) <= set(events.columns), "events must have EVENT_SCHEMA's columns"
    # The matching runs on a narrow numeric frame; strings are gathered once at the end by row
    # number (sorting wide string frames costs more than the matching). Positions get an
    # integer id (their first seq): sort and asof-group on integers, never on (scope, symbol)
    # strings (performance.md, pitfall 3).
    ev = (
        events.select(
            pl.int_range(pl.len()).alias("_row"), "seq", (pl.col("kind") == ACQUIRE).alias("_acq"),
            "date", "quantity", "amount", pl.col("seq").min().over(_POSITION).alias("_pos"),
        )
        .sort("seq").sort("_pos", maintain_order=True)  # two 1-key sorts: 3x faster than one 2-key sort
        .with_columns(
            # A_k for acquires, S_j for disposes: running totals per (position, side).
            pl.col("quantity").cum_sum().over("_pos", "_acq").alias("_end"),
            pl.when(pl.col("_acq")).then(_ZERO).otherwise(pl.col("quantity")).sum().over("_pos").alias("_sold"),
        )
    )
    lots, sales = ev.filter("_acq"), ev.filter(~pl.col("_acq"))
    sales = sales.select(
        "_pos", "seq", "_row", pl.col("date").alias("disposed"), pl.col("quantity").alias("_q"),
        pl.col("amount").alias("_p"), pl.col("_end").alias("_s"), (pl.col("_end") - pl.col("quantity")).alias("_s0"),
        (pl.col("amount") / pl.col("quantity")).alias("_v"),  # P ÷ S, once per sale
    )
    keys = lots.select(
        "_pos", pl.col("seq").alias("_lot_seq"), pl.col("_row").alias("_lot_row"), pl.col("date").alias("acquired"),
        pl.col("quantity").alias("_Q"), pl.col("amount").alias("_B"), pl.col("_end").alias("_a"),
        (pl.col("_end") - pl.col("quantity")).alias("_a0"), (pl.col("amount") / pl.col("quantity")).alias("_u"),
    )
    closing_sales = _next(sales, "_s", keys, "_a", exact=True).with_columns(pl.col("_s").alias("_c"))
    closing_lots = (
        _next(keys, "_a", sales, "_s", exact=False)
        .filter(pl.col("_s0") < pl.col("_a"))  # also drops lots past the last sale (null _s0)
        .with_columns(pl.col("_a").alias("_c"))
    )
    start, end = pl.max_horizontal("_a0", "_s0"), pl.col("_c")  # the slice is [start, end) on both axes
    lot_part, sale_part = ("_B", "_Q", "_u"), ("_p", "_q", "_v")
    basis = _share(*lot_part, end - pl.col("_a0")) - _share(*lot_part, start - pl.col("_a0"))
    proceeds = _share(*sale_part, end - pl.col("_s0")) - _share(*sale_part, start - pl.col("_s0"))
    slices = (
        pl.concat([closing_sales, closing_lots.select(closing_sales.columns)])
        .select(
            "_row", "_lot_row", pl.col("_lot_seq").alias("lot_seq"), "acquired", "disposed", "seq", (end - start).alias("quantity"),
            proceeds.alias("proceeds"), basis.alias("cost_basis"),
        )
        .sort("lot_seq").sort("seq", maintain_order=True)  # (sale, FIFO): what the loop writes
    )
    # Freed before the wide outputs are built: at their peak only inputs and outputs are held.
    del ev, sales, keys, closing_sales, closing_lots
    sale = events.select("scope", "account", "symbol", "method", pl.col("trade_id").alias("sell_trade_id"), "currency", "source")
    lot_id = events.select(pl.col("trade_id").alias("lot_id"))
    disposals = (
        pl.concat([slices, sale[slices["_row"]], lot_id[slices["_lot_row"]]], how="horizontal")
        .with_columns(
            pl.lit(None, dtype=pl.String).alias("adjustment_code"),
            _ZERO.alias("adjustment"),
            (pl.col("proceeds") - pl.col("cost_basis")).alias("gain"),
            term_expr(pl.col("acquired"), pl.col("disposed"), month_end_rule=month_end_rule, dates=slices["acquired"]).alias("term"),
        )
        .select(list(DISPOSAL_SCHEMA))
        .cast(DISPOSAL_SCHEMA)  # type: ignore[arg-type]
    )

    # What each lot gave up: the part of [A_k − Q_k, A_k) below the position's total sold.
    lot_start = pl.col("_end") - pl.col("quantity")
    used = pl.min_horizontal(pl.max_horizontal(pl.col("_sold") - lot_start, _ZERO), pl.col("quantity"))
    unit = pl.col("amount") / pl.col("quantity")
    opened = lots.sort("seq").select(
        "_row", pl.col("date").alias("acquired"), pl.col("date").alias("adjusted_acquired"), "quantity",
        pl.col("amount").alias("cost_basis"), pl.col("amount").alias("adjusted_basis"),
        (pl.col("quantity") - used).alias("open_quantity"),
        (pl.col("amount") - _share("amount", "quantity", unit, used)).alias("open_basis"), "seq",
    )
    lot_strings = events.select("scope", "account", "symbol", pl.col("trade_id").alias("lot_id"), "currency", "source")
    lot_frame = (
        pl.concat([opened, lot_strings[opened["_row"]]], how="horizontal")
        .select(list(LOT_SCHEMA))
        .cast(LOT_SCHEMA)  # type: ignore[arg-type]
    )
    return Booked(lot_frame, disposals, [], [])


def _next(left: pl.DataFrame, left_on: str, right: pl.DataFrame, right_on: str, *, exact: bool) -> pl.DataFrame:
    """Each ``left`` row with the first ``right`` row of its position whose ``right_on`` is
    ≥ ``left_on`` (> when not ``exact``); both frames are sorted by (position, key)."""
    return left.join_asof(
        right, left_on=left_on, right_on=right_on, by="_pos", strategy="forward",
        allow_exact_matches=exact, check_sortedness=False,  # polars can't check within groups
    )


def _share(total: str, whole: str, unit: str | pl.Expr, part: pl.Expr) -> pl.Expr:
    """F(part) for ``total`` spread over ``whole``: ``total`` when part == whole, else
    unit × part, where ``unit`` is total ÷ whole; polars rounds each half-even to 18 places,
    as ``engine._Lot.basis_at`` does with div18 and mul18."""
    unit = pl.col(unit) if isinstance(unit, str) else unit
    return pl.when(part == pl.col(whole)).then(pl.col(total)).otherwise(unit * part)
