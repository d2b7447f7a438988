"""The compiled booking core (taxlens/lots/_bookcore.c) against FastLoop, frame for frame.

``book_events`` books the positions of plain acquisitions and sales (fifo, lifo, hifo, taxmin)
in C and the rest with FastLoop; with ``core="python"`` FastLoop books everything. Both must
give the same lots, disposal slices, problems and errors, row for row, on any history: random
ones (shortfalls, unknown amounts, negative proceeds, dates out of order, mixed scales and
methods, and positions the core must leave to FastLoop), ones that force the core to give a
position back (18-decimal quantities with large amounts), and the core must be built and used
for an ordinary history, or this file fails.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from decimal import Context, Decimal, localcontext
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import taxlens
from taxlens.config import WashConfig
from taxlens.lots import _loopfast
from taxlens.lots._loopfast import FastLoop, book_events, core_choice, core_positions
from taxlens.lots.engine import Booked, book_loop
from taxlens.lots.frames import EVENT_SCHEMA

METHODS = ("fifo", "lifo", "hifo", "taxmin")
SCOPES = ("A", "B")
SYMBOLS = ("VTI", "BTC")
BASE = dt.date(2023, 1, 31)  # a month end: anniversaries under both rules differ around it
DAYS = st.sampled_from([0, 0, 1, 28, 29, 30, 59, 365, 366, 367, 400, 730])
#: Quantities: small ones, whose unit amounts often round at exactly one half (half-even must
#: pick the even neighbour), and large ones, at scales from whole shares to 18 decimals.
QUANTITIES = st.builds(
    lambda units, scale: Decimal(units).scaleb(-scale),
    st.one_of(st.integers(min_value=1, max_value=12), st.integers(min_value=1, max_value=10**7)),
    st.sampled_from([0, 0, 1, 2, 6, 8, 18]),
)
AMOUNTS = st.one_of(
    st.none(),
    st.builds(lambda cents: Decimal(cents).scaleb(-2), st.integers(min_value=-10**6, max_value=10**12)),
    st.sampled_from([Decimal("33.333333333333333333"), Decimal("0.000000000000000001"), Decimal("7"),
                     Decimal("-0.000000000000000005"), Decimal("66.666666666666666667"), Decimal("0.000000000000000015")]),
    st.builds(lambda units, scale: Decimal(units).scaleb(-scale),
              st.integers(min_value=0, max_value=10**15), st.integers(min_value=0, max_value=18)),
)
#: Prices for amounts of quantity × price: sales at a lot's own unit basis sit on TaxMin's
#: line between a loss and a gain.
PRICES = st.sampled_from([Decimal("10"), Decimal("10.5"), Decimal("0.01"), Decimal("1234.56"), Decimal("-3")])
#: Amounts up to ~1e19 (units ~1e37): the core books them where quantities are whole, and gives
#: the position back to FastLoop where 18-decimal quantities would overflow 128 bits.
BIG_AMOUNTS = st.one_of(
    AMOUNTS,
    st.builds(lambda units, scale: Decimal(units).scaleb(-scale),
              st.integers(min_value=-10**37, max_value=10**37), st.sampled_from([18, 18, 10])),
)


def _amount(draw: st.DrawFn, quantity: Decimal, big: bool) -> Decimal | None:
    if draw(st.integers(min_value=0, max_value=3)) == 0:
        with localcontext(Context(prec=80)):
            return (quantity * draw(PRICES)).quantize(Decimal(1).scaleb(-18))
    return draw(BIG_AMOUNTS if big else AMOUNTS)


Row = tuple[object, ...]


def _frame(rows: list[Row]) -> pl.DataFrame:
    return pl.DataFrame([(seq, *row) for seq, row in enumerate(rows, start=1)], schema=EVENT_SCHEMA, orient="row")


@st.composite
def histories(draw: st.DrawFn, *, method: str | None = None, others: bool = True, big: bool = False) -> pl.DataFrame:
    """Events of up to four positions in one random seq order. Sales use ``method`` (else each
    draws one) and may exceed what is held; dates wander back and forth (FIFO and LIFO order by
    date, then seq). With ``others``, some positions also get a split, a transfer or a
    specific-ID sale, so FastLoop books them beside the core's."""
    rows: list[Row] = []
    n = draw(st.integers(min_value=1, max_value=60))
    held: dict[tuple[str, str], int] = {}
    for i in range(n):
        scope, symbol = draw(st.sampled_from(SCOPES)), draw(st.sampled_from(SYMBOLS))
        date = BASE + dt.timedelta(days=draw(DAYS) + draw(DAYS))
        quantity = draw(QUANTITIES)
        kind = draw(st.sampled_from(["acquire", "acquire", "dispose"]))
        if kind == "dispose" and held.get((scope, symbol)) and draw(st.booleans()):
            quantity = Decimal(draw(st.integers(min_value=1, max_value=held[(scope, symbol)]))).scaleb(-18)
        units = int(quantity.scaleb(18))
        held[(scope, symbol)] = max(0, held.get((scope, symbol), 0) + (units if kind == "acquire" else -units))
        sale_method = (method or draw(st.sampled_from(METHODS))) if kind == "dispose" else None
        lot_id, key = None, None
        if others and draw(st.integers(min_value=0, max_value=12)) == 0:
            kind = draw(st.sampled_from(["split_in", "split_out", "transfer_out", "transfer_in", "dispose"]))
            sale_method = "specific" if kind == "dispose" else None
            lot_id = f"T{draw(st.integers(min_value=1, max_value=i + 1))}" if kind == "dispose" else None
            key = "k1" if kind.startswith("transfer") else None
        amount = _amount(draw, quantity, big) if kind in ("acquire", "dispose") else None
        rows.append((scope, scope, symbol, kind, date, quantity, amount, f"T{i + 1}", lot_id, sale_method, key, "USD", f"t.csv:{i + 2}"))
    return _frame(rows)


def _same(ours: Booked, theirs: Booked) -> None:
    assert ours.lots.schema == theirs.lots.schema
    assert ours.lots.equals(theirs.lots)
    assert ours.disposals.schema == theirs.disposals.schema
    assert ours.disposals.equals(theirs.disposals)
    assert ours.problems == theirs.problems
    assert ours.errors == theirs.errors


def _both(events: pl.DataFrame, month_end_rule: bool = True) -> tuple[Any, Any]:
    """(core's result or exception, FastLoop's result or exception)."""
    out = []
    for core in ("compiled", "python"):
        try:
            out.append(book_loop(events, month_end_rule=month_end_rule, core=core))
        except Exception as exc:  # both must fail alike (a value outside DECIMAL(38,18))
            out.append(exc)
    return out[0], out[1]


def _check(events: pl.DataFrame, month_end_rule: bool = True) -> None:
    ours, theirs = _both(events, month_end_rule)
    if isinstance(theirs, Exception):
        assert type(ours) is type(theirs) and str(ours) == str(theirs)
    else:
        assert isinstance(ours, Booked), ours
        _same(ours, theirs)


class Spy:
    """Records what the compiled core returned (calls pass through)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from taxlens.lots import _bookcore

        self.results: list[dict[str, bytes]] = []
        real = _bookcore.run

        def run(*args: Any) -> Any:
            result = real(*args)
            self.results.append(result)
            return result

        monkeypatch.setattr(_bookcore, "run", run)
        monkeypatch.delenv("TAXLENS_BOOK_CORE", raising=False)

    def failed(self) -> list[int]:
        return list(self.results[-1]["failed"])


CASES = settings(max_examples=max(25, getattr(settings.default, "max_examples", 50) // 2), deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("method", METHODS)
@CASES
@given(data=st.data())
def test_the_core_gives_fastloops_frames_for_each_method(method: str, data: st.DataObject) -> None:
    events = data.draw(histories(method=method, others=False))
    _check(events, data.draw(st.booleans()))


@given(histories(), st.booleans())
def test_the_core_and_fastloop_together_give_fastloops_frames(events: pl.DataFrame, month_end_rule: bool) -> None:
    """Mixed methods, and positions with splits, transfers or specific-ID sales beside the
    core's: the merged frames, problems and errors are FastLoop's, in FastLoop's order."""
    _check(events, month_end_rule)


@CASES
@given(histories(big=True), st.booleans())
def test_large_amounts_are_booked_exactly_or_given_back(events: pl.DataFrame, month_end_rule: bool) -> None:
    _check(events, month_end_rule)


def _rows(*specs: tuple[str, str, str, str, str | None, str | None]) -> pl.DataFrame:
    """Events from (scope, symbol, kind, quantity, amount, method), a day apart."""
    return _frame([
        (scope, scope, symbol, kind, BASE + dt.timedelta(days=40 * i), Decimal(q), None if a is None else Decimal(a),
         f"T{i + 1}", None, m, None, "USD", f"t.csv:{i + 2}")
        for i, (scope, symbol, kind, q, a, m) in enumerate(specs)
    ])


def test_an_18_decimal_position_with_large_amounts_goes_back_to_fastloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """div(B, Q) needs B × 10^18 ÷ Q: with quantities to the wei and a basis of 10^15 that is
    past 128 bits, so the core gives the ETH position back; VTI (whole shares) stays in C."""
    spy = Spy(monkeypatch)
    events = _rows(
        ("A", "ETH", "acquire", "1.123456789012345678", "1000000000000000", None),
        ("A", "VTI", "acquire", "10", "1000.10", None),
        ("A", "ETH", "acquire", "0.000000000000000003", "999999999999999.99", None),
        ("A", "VTI", "dispose", "4", "500", "hifo"),
        ("A", "ETH", "dispose", "1", "2000000000000000", "lifo"),
        ("A", "ETH", "dispose", "1", "7", "taxmin"),  # more than is left: a shortfall
        ("A", "VTI", "dispose", "7", "900", "lifo"),  # a shortfall too
    )
    ours = book_loop(events)
    assert spy.failed() == [2, 0]  # ETH (first seen) overflowed; VTI booked
    theirs = book_loop(events, core="python")
    _same(ours, theirs)
    assert [p.message.split(" exceeds")[0] for p in ours.problems] == ["sale of 1 ETH in A", "sale of 7 VTI in A"]


def test_a_result_outside_decimal_38_18_fails_alike() -> None:
    """A gain of −1.8e20 can't be stored: FastLoop raises building its frame, and the core,
    giving that position back, raises the same."""
    events = _rows(("A", "X", "acquire", "1", "90000000000000000000", None), ("A", "X", "dispose", "1", "-90000000000000000000", "lifo"))
    ours, theirs = _both(events)
    assert isinstance(theirs, Exception) and type(ours) is type(theirs) and str(ours) == str(theirs)


def test_a_position_failing_midway_is_left_out_and_the_others_stand() -> None:
    """X books two sales, then one whose gain is out of range: none of X's rows come out, and
    Y's are FastLoop's for Y alone."""
    events = _rows(
        ("A", "X", "acquire", "5", "90000000000000000000", None),
        ("A", "Y", "acquire", "3", "30", None),
        ("A", "X", "dispose", "1", "10", "fifo"),
        ("A", "Y", "dispose", "2", "40", "taxmin"),
        ("A", "X", "dispose", "1", "-90000000000000000000", "fifo"),
        ("A", "Y", "acquire", "1", "11", None),
    )
    evs = events.sort("seq")
    result, _ = _loopfast._run_core(evs, True)
    assert list(result["failed"]) == [3, 0]  # F_RANGE for X, Y booked
    lots, disposals = _loopfast._core_frames(evs, result)
    alone = FastLoop(None, True).run(events.filter(pl.col("symbol") == "Y"))
    assert lots.equals(alone.lots)
    assert disposals.equals(alone.disposals)


def test_the_core_is_built_and_books_an_ordinary_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the public API, booked with LIFO: every position goes to the compiled core and
    none comes back. Fails (rather than skips) when the extension was not built."""
    from taxlens.lots import _bookcore  # ImportError here: `pip install -e .` did not build it

    spy = Spy(monkeypatch)  # (clears $TAXLENS_BOOK_CORE)
    assert _bookcore.__file__ and core_choice() == "compiled"
    csv = (
        "date,account,symbol,side,quantity,price,fee,currency,asset_class,trade_id,lot_id\n"
        "2023-01-03,Alpaca,VTI,buy,10,200.00,1.00,USD,equity,T1,\n"
        "2023-02-01,Alpaca,VTI,buy,5,210.50,0,USD,equity,T2,\n"
        "2023-03-01,Coinbase,BTC,buy,0.12345678,24000,2.50,USD,crypto,T3,\n"
        "2024-04-01,Alpaca,VTI,sell,12,250,1.00,USD,equity,T4,\n"
        "2024-05-01,Coinbase,BTC,sell,0.1,60000,3,USD,crypto,T5,\n"
    )
    with tempfile.TemporaryDirectory() as folder, taxlens.open_book(":memory:", taxlens.Config(wash_sales=WashConfig(apply=False))) as book:
        path = Path(folder) / "history.csv"
        path.write_text(csv, encoding="utf-8")
        assert book.ingest([path]).ok
        booked = book.booked(method="lifo")
    assert spy.results, "the compiled booking core was not called"
    assert spy.failed() == [0, 0]
    assert booked.disposals.select("lot_id", "quantity").rows() == [("T2", Decimal(5)), ("T1", Decimal(7)), ("T3", Decimal("0.1"))]


def test_core_positions_picks_plain_positions_only() -> None:
    events = _rows(
        ("A", "X", "acquire", "1", "1", None), ("A", "X", "dispose", "1", None, "hifo"),
        ("A", "Y", "acquire", "1", None, None), ("A", "Y", "dispose", "1", "1", "specific"),
        ("B", "X", "acquire", "1", "1", None), ("B", "X", "split_in", "1", None, None),
        ("B", "Y", "acquire", "0", "1", None),
    )
    assert core_positions(events).to_list() == [True, True, False, False, False, False, False]


def test_the_core_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAXLENS_BOOK_CORE", "python")
    assert core_choice() == "python"
    assert core_choice("compiled") == "compiled"
    monkeypatch.setenv("TAXLENS_BOOK_CORE", "fast")
    with pytest.raises(ValueError, match="booking core 'fast'"):
        core_choice()
    monkeypatch.setattr(_loopfast, "_bookcore", None)
    assert core_choice("auto") == "python"
    with pytest.raises(ImportError, match="not built"):
        core_choice("compiled")
    events = _rows(("A", "X", "acquire", "1", "1", None), ("A", "X", "dispose", "2", "3", "lifo"))
    _same(book_events(events, core="auto"), FastLoop(None, True).run(events))


def test_decimal_buffers_round_trip_at_the_limits() -> None:
    """DECIMAL(38,18) ↔ 16-byte buffers, as the core reads and writes them, with nulls."""
    top = 10**38 - 1
    values = [Decimal(f"{top}e-18"), Decimal(f"-{top}e-18"), None, Decimal("0.000000000000000001"), Decimal(0)]
    column = pl.Series(values, dtype=pl.Decimal(38, 18))
    data, valid = _loopfast._units_buffer(column)
    assert valid.tolist() == [1, 1, 0, 1, 1]
    assert np.frombuffer(data.tobytes(), dtype=np.uint64)[:2].tolist() == [top & (2**64 - 1), top >> 64]
    assert _loopfast._decimal_column(data.tobytes(), valid.tobytes()).to_list() == values
