"""Alpaca's end-of-day regulatory FEE: a selling expense spread over that day's sales."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from taxlens import Book
from tests.conftest import write


def fill(when: str, side: str, qty: str, price: str, n: int) -> dict[str, str]:
    return {"id": f"{when[:10].replace('-', '')}0000000{n:02d}::f{n}", "activity_type": "FILL", "transaction_time": when,
            "type": "fill", "price": price, "qty": qty, "side": side, "symbol": "VTI", "order_id": f"o{n}"}


def fee(date: str, amount: str, n: int) -> dict[str, str]:
    return {"id": f"{date.replace('-', '')}170000000::fee{n}", "activity_type": "FEE", "date": date,
            "net_amount": amount, "description": "REG/TAF fee", "status": "executed"}


def test_the_days_fee_reduces_that_days_sales_pro_rata(book: Book, tmp_path: Path) -> None:
    # Two sales on 2025-03-03 with proceeds 1000.00 and 3000.00 share a 0.08 fee 1:3 →
    # 0.02 and 0.06. The 0.05 fee on 2025-03-04, a day without sales, reduces nothing.
    activities = [
        fill("2025-01-02T15:00:00Z", "buy", "40", "100", 1),
        fill("2025-03-03T15:00:00Z", "sell", "10", "100", 2),
        fill("2025-03-03T16:00:00Z", "sell", "30", "100", 3),
        fee("2025-03-03", "-0.08", 4),
        fee("2025-03-04", "-0.05", 5),
    ]
    path = write(tmp_path, "activities.json", json.dumps(activities, indent=1))
    book.ingest([path])
    booked = book.booked()
    assert [(str(p), str(b)) for p, b in booked.disposals.select("proceeds", "cost_basis").rows()] == [
        ("999.980000000000000000", "1000.000000000000000000"),
        ("2999.940000000000000000", "3000.000000000000000000"),
    ]
    assert [p.message for p in booked.problems] == [
        "fee of 0.05 on 2025-03-04 in Alpaca has no sale that day to reduce: it is left out of every gain"
    ]


def test_a_fee_that_does_not_divide_evenly_still_adds_up(book: Book, tmp_path: Path) -> None:
    # 0.10 over three equal sales of 100: F(100) = 0.033333333333333333, F(200) = 0.066666666666666667
    # (half-even), F(300) = 0.10, so the cuts are …333, …334 and …333, and they total 0.10.
    activities = [fill("2025-01-02T15:00:00Z", "buy", "3", "100", 1)] + [
        fill(f"2025-03-03T1{i}:00:00Z", "sell", "1", "100", 2 + i) for i in range(3)
    ] + [fee("2025-03-03", "-0.10", 9)]
    book.ingest([write(tmp_path, "activities.json", json.dumps(activities, indent=1))])
    proceeds = [p for (p,) in book.booked().disposals.select("proceeds").rows()]
    assert sum(proceeds) == 300 - Decimal("0.10")
    assert [str(p) for p in proceeds] == ["99.966666666666666667", "99.966666666666666666", "99.966666666666666667"]
