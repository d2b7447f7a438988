"""The Alpaca adapter: identification, tax dates, symbols, fees and exact error messages.

All activity objects here are synthetic, built from the documented fields (formats.md §1).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from taxlens.errors import FileError
from taxlens.ingest import ADAPTERS, Context, Extracted, Source
from taxlens.ingest.alpaca import Alpaca

ADAPTER = Alpaca()


def fill(**fields: str) -> dict[str, str]:
    """A documented FILL object, with ``fields`` overriding its values."""
    base = {
        "id": "20250304143512104::8f0e2c1a-7d3b-4e5f-a6b7-c8d9e0f1a2b3",
        "activity_type": "FILL",
        "transaction_time": "2025-03-04T14:35:12.104381Z",
        "type": "fill",
        "price": "235.12",
        "qty": "10",
        "side": "buy",
        "symbol": "AAPL",
        "leaves_qty": "0",
        "order_id": "1c9e6f0a-2b3c-4d5e-8f90-a1b2c3d4e5f6",
        "cum_qty": "10",
        "order_status": "filled",
    }
    return {**base, **fields}


def source(value: Any, name: str = "acts.json") -> Source:
    text = value if isinstance(value, str) else json.dumps(value, indent=2)
    return Source.from_bytes(name, text.encode())


def extract(value: Any, context: Context | None = None) -> Extracted:
    return ADAPTER.extract(source(value), context or Context())


def rows(extracted: Extracted) -> list[dict[str, Any]]:
    return extracted.trades.to_dicts()


def messages(extracted: Extracted) -> list[str]:
    return [str(e) for e in extracted.errors]


def test_registered() -> None:
    assert isinstance(ADAPTERS["alpaca"], Alpaca)


# -- identify ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        json.dumps([fill()]),
        json.dumps({"activities": [fill()]}),
        json.dumps(fill()) + "\n" + json.dumps(fill(id="2")) + "\n",
        "id,activity_type,date,net_amount\n1,CSD,2025-01-02,100\n",
        "\ufeff[\n  {\"activity_type\": \"DIV\"}\n]",
    ],
    ids=["array", "wrapper", "jsonl", "csv", "bom"],
)
def test_identify_true(text: str) -> None:
    assert ADAPTER.identify(source(text))


@pytest.mark.parametrize(
    "text",
    [
        "date,account,symbol,side,quantity,price\n2025-01-02,A,VTI,buy,1,2\n",
        "id,type,date\n1,CSD,2025-01-02\n",  # no activity_type column
        json.dumps([{"id": "1", "type": "buy"}]),  # JSON, but not activities
    ],
    ids=["generic-csv", "csv-without-activity_type", "other-json"],
)
def test_identify_false(text: str) -> None:
    assert not ADAPTER.identify(source(text))


# -- fills --------------------------------------------------------------------------------------


def test_new_year_fill_is_a_prior_year_trade_in_new_york() -> None:
    new_year = "2026-01-01T01:30:00.123456Z"
    out = extract([fill(transaction_time=new_year, symbol="BTC/USD", side="sell")])
    (trade,) = rows(out)
    assert trade["trade_date"] == dt.date(2025, 12, 31)
    assert trade["ts"] == dt.datetime(2026, 1, 1, 1, 30, 0, 123456, tzinfo=dt.UTC)
    in_utc = extract([fill(transaction_time=new_year)], Context(timezone=ZoneInfo("UTC")))
    assert rows(in_utc)[0]["trade_date"] == dt.date(2026, 1, 1)


def test_partial_fills_stay_separate_trades() -> None:
    parts = [
        fill(id="a", type="partial_fill", qty="3", price="235.12"),
        fill(id="b", type="partial_fill", qty="5", price="235.14"),
        fill(id="c", type="fill", qty="2", price="235.15"),
    ]
    trades = rows(extract(parts))
    assert [t["broker_trade_id"] for t in trades] == ["a", "b", "c"]
    assert [t["quantity"] for t in trades] == [Decimal(3), Decimal(5), Decimal(2)]
    assert {t["order_id"] for t in trades} == {"1c9e6f0a-2b3c-4d5e-8f90-a1b2c3d4e5f6"}
    assert all(t["fee"] == 0 for t in trades)


def test_fractional_quantity_is_exact() -> None:
    (trade,) = rows(extract([fill(qty="0.38962051", price="128.33")]))
    assert trade["quantity"] == Decimal("0.38962051")
    assert trade["price"] == Decimal("128.33")


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [("BTC/USD", ("BTC", "crypto", "USD")), ("BTCUSD", ("BTC", "crypto", "USD")),
     ("ETH/BTC", ("ETH", "crypto", "BTC")), ("SOLUSDT", ("SOL", "crypto", "USDT")),
     ("AAPL", ("AAPL", "equity", "USD"))],
)
def test_symbols(symbol: str, expected: tuple[str, str, str]) -> None:
    (trade,) = rows(extract([fill(symbol=symbol)]))
    assert (trade["symbol"], trade["asset_class"], trade["currency"]) == expected


def test_sell_short_is_stored_for_booking_to_refuse() -> None:
    assert rows(extract([fill(side="sell_short")]))[0]["action"] == "sell_short"


def test_order_status_canceled_fill_is_still_a_trade() -> None:
    # A partial fill of an order canceled later really happened: only `status` ignores a row.
    out = extract([fill(order_status="canceled", type="partial_fill")])
    assert out.trades.height == 1


def test_account_precedence() -> None:
    acts = [fill(account_id="c8f1ef5d"), fill(id="2")]
    assert [t["account"] for t in rows(extract(acts))] == ["c8f1ef5d", "Alpaca"]
    assert {t["account"] for t in rows(extract(acts, Context(account="Bot")))} == {"Bot"}


def test_a_large_coin_quantity_keeps_every_digit() -> None:
    # 11 integer digits + 18 decimals: more than the default 28-digit context holds.
    qty = "12345678901.123456789012345678"
    (trade,) = rows(extract([fill(symbol="SHIB/USD", qty=qty, price="0.00001234")]))
    assert trade["quantity"] == Decimal(qty)


# -- non-trade activities -----------------------------------------------------------------------


def nta(kind: str, **fields: str) -> dict[str, str]:
    base = {"id": f"{kind}-1", "activity_type": kind, "date": "2025-05-15", "status": "executed"}
    return {**base, **fields}


def test_coin_fee_and_usd_fee() -> None:
    coin = nta("CFEE", net_amount="0", symbol="ETHUSD", qty="-0.000195", price="1884.5",
               description="Coin Pair Transaction Fee (Non USD)")
    usd = nta("CFEE", net_amount="-0.25", symbol="BTCUSD",
              description="Coin Pair Transaction Fee (USD)")
    a, b = rows(extract([coin, usd]))
    assert (a["action"], a["symbol"], a["fee"], a["fee_currency"], a["quantity"]) == (
        "fee", "ETH", Decimal("0.000195"), "ETH", Decimal(0))
    assert a["price"] == Decimal("1884.5")
    assert (b["symbol"], b["fee"], b["fee_currency"], b["amount"]) == (
        "BTC", Decimal("0.25"), "USD", Decimal("-0.25"))


def test_regulatory_fee_without_symbol() -> None:
    (trade,) = rows(extract([nta("FEE", net_amount="-0.03", description="REG fee")]))
    assert (trade["action"], trade["symbol"], trade["asset_class"]) == ("sale_fee", "USD", "cash")
    assert (trade["fee"], trade["fee_currency"], trade["ts"]) == (Decimal("0.03"), "USD", None)


@pytest.mark.parametrize(
    ("kind", "fields", "action", "quantity", "note"),
    [
        ("DIV", {"net_amount": "1.02", "symbol": "T", "qty": "2"}, "dividend", "2", None),
        ("DIVROC", {"net_amount": "3.15", "symbol": "O"}, "dividend", "0", "return of capital"),
        ("DIVNRA", {"net_amount": "-0.47", "symbol": "O"}, "withholding", "0", None),
        ("INT", {"net_amount": "1.27"}, "interest", "0", None),
        ("CSD", {"net_amount": "5000"}, "deposit", "0", None),
        ("CSW", {"net_amount": "-200"}, "withdrawal", "0", None),
        ("CIL", {"net_amount": "12.34", "symbol": "NVDA", "qty": "0.25"}, "cash_in_lieu", "0.25",
         None),
        ("JNLC", {"net_amount": "-150"}, "withdrawal", "0", None),
        ("ACATC", {"net_amount": "900"}, "deposit", "0", None),
        ("SPLIT", {"symbol": "NVDA", "qty": "30"}, "split_in", "30", None),
        ("SPLIT", {"symbol": "NVDA", "qty": "-40"}, "split_out", "40", None),
        ("JNLS", {"symbol": "MSFT", "qty": "7.5"}, "transfer_in", "7.5", None),
        ("ACATS", {"symbol": "SPY", "qty": "-0.45"}, "transfer_out", "0.45", None),
    ],
)
def test_non_trade_actions(
    kind: str, fields: dict[str, str], action: str, quantity: str, note: str | None,
) -> None:
    (trade,) = rows(extract([nta(kind, **fields)]))
    assert (trade["action"], trade["quantity"], trade["note"]) == (action, Decimal(quantity), note)
    assert trade["trade_date"] == dt.date(2025, 5, 15) and trade["ts"] is None
    if "net_amount" in fields:
        assert trade["amount"] == Decimal(fields["net_amount"])


def test_canceled_and_memo_are_counted_not_imported() -> None:
    out = extract([nta("CSW", net_amount="-200", status="canceled"), nta("MEM", net_amount="0")])
    assert out.trades.height == 0 and not out.errors
    assert out.ignored == {"canceled": 1, "MEM": 1}


# -- errors --------------------------------------------------------------------------------------


def test_bad_number_message() -> None:
    out = ADAPTER.extract(source([fill(qty="1O")], "bad.json"), Context())
    assert messages(out) == ["bad.json:2: qty '1O' is not a number (expected a number such as 10 or 0.38962051)"]
    assert out.trades.height == 0


def test_unknown_activity_type_message() -> None:
    (message,) = messages(extract([fill(), nta("XYZ", net_amount="1")]))
    assert message.startswith(
        "acts.json:16: activity_type 'XYZ' is not handled by the alpaca adapter (expected one of FILL, FEE, CFEE,"
    )
    assert message.endswith(", MEM, SWP)")


def test_options_are_errors_not_skips() -> None:
    assert messages(extract([nta("OPTRD", net_amount="-120")])) == [
        ("acts.json:2: activity_type 'OPTRD' is not supported: options are not supported by taxlens yet "
         "(expected a trade, fee, income, cash or share-transfer activity)")
    ]


def test_field_errors_are_all_reported() -> None:
    bad = fill(transaction_time="2025-03-04 14:35:12", side="hold", price="-1")
    assert messages(extract(bad)) == [
        ("acts.json:1: transaction_time '2025-03-04 14:35:12' has no UTC offset "
         "(expected an ISO 8601 UTC time such as 2025-03-04T14:35:12.104381Z)"),
        "acts.json:1: side 'hold' is not a known side (expected buy, sell or sell_short)",
        "acts.json:1: price '-1' is negative (expected 0 or more)",
    ]


def test_bad_date_and_missing_amount() -> None:
    assert messages(extract([nta("DIV", date="05/15/2025", net_amount="1"), nta("FEE")])) == [
        "acts.json:2: date '05/15/2025' is not a date (expected a date YYYY-MM-DD such as 2025-03-14)",
        "acts.json:9: net_amount '' is missing (expected a number such as -0.03 or 1.02)",
    ]


def test_compact_json_puts_every_object_on_line_1() -> None:
    out = extract(json.dumps([fill(qty="x"), fill(qty="y")]))
    assert [e.line for e in out.errors] == [1, 1]


def test_wrapper_object_lines() -> None:
    text = ('{\n  "next_page_token": null,\n  "activities": [\n'
            '    {"activity_type": "FILL", "qty": "z"}\n  ]\n}')
    errors = extract(text).errors
    assert errors and {e.line for e in errors} == {4}


def test_jsonl_lines() -> None:
    text = json.dumps(fill()) + "\n\n" + json.dumps(fill(qty="-1")) + "\n"
    (error,) = extract(text).errors
    assert error.line == 3


def test_invalid_json_is_a_file_error() -> None:
    with pytest.raises(FileError) as info:
        extract('[\n  {"activity_type": "FILL",\n  "qty": }\n]')
    assert str(info.value).startswith("acts.json:3: is not valid JSON: Expecting value")


def test_json_without_activities_is_a_file_error() -> None:
    with pytest.raises(FileError, match="has no activities"):
        extract({"account": "x"})


def test_csv_ragged_row_and_missing_column() -> None:
    text = "id,activity_type,date,net_amount\n1,CSD,2025-01-02,100\n2,CSD,2025-01-03\n"
    out = ADAPTER.extract(Source.from_bytes("a.csv", text.encode()), Context())
    assert messages(out) == ["a.csv:3: row has 3 fields (expected 4, as in the header)"]
    assert out.trades.height == 1
    with pytest.raises(FileError, match="missing column 'activity_type'"):
        ADAPTER.extract(Source.from_bytes("b.csv", b"id,date\n1,2025-01-02\n"), Context())
