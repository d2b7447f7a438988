"""Partial histories: opening lots supply what the exports don't reach back to."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import write

SALES = "date,account,symbol,side,quantity,price,fee,trade_id\n2025-03-03,Alpaca,VTI,sell,14,300,0,S1\n"
OPENING = "account,symbol,acquired,quantity,cost_basis,lot_id\nAlpaca,VTI,2021-03-15,12.5,2543.10,OPEN-1\nAlpaca,VTI,2024-06-01,3,600.00,OPEN-2\n"


def test_without_opening_lots_the_sale_is_booked_against_unknown_basis(book, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sales = write(tmp_path, "sales.csv", SALES)
    book.ingest([sales])
    booked = book.booked()
    assert booked.disposals.select("quantity", "cost_basis", "lot_id").rows() == [(14, None, None)]
    assert [str(p) for p in booked.problems] == [
        f"{sales}:2: sale of 14 VTI in Alpaca exceeds the 0 held; 14 booked with unknown basis "
        '(add opening lots: README, "Partial histories")'
    ]


def test_opening_lots_cover_the_sale(book, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    book.ingest([write(tmp_path, "open.csv", OPENING), write(tmp_path, "sales.csv", SALES)])
    booked = book.booked()
    assert booked.problems == []
    # 12.5 long-term from OPEN-1 (all 2543.10), 1.5 of OPEN-2's 3 (half of 600.00), short-term.
    assert [(str(q), str(b), t, lot) for q, b, t, lot in booked.disposals.select("quantity", "cost_basis", "term", "lot_id").rows()] == [
        ("12.500000000000000000", "2543.100000000000000000", "long", "OPEN-1"),
        ("1.500000000000000000", "300.000000000000000000", "short", "OPEN-2"),
    ]
    left = book.lots(open_only=True)
    assert left.select("lot_id", "quantity", "cost_basis").rows() == [("OPEN-2", 1.5, 300)]
