from __future__ import annotations

from decimal import Decimal

import pytest

from taxlens.money import D, NotANumber, cents, fits, plain


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10", "10"),
        ("0.38962051", "0.38962051"),
        ("1,234.50", "1234.50"),
        ("$1,259.59", "1259.59"),
        ("-$40503.61", "-40503.61"),
        ("($18,740.00)", "-18740.00"),
        ("€3302.6508979077133026", "3302.6508979077133026"),
        ("+00000000000007.9500", "7.9500"),
        (" 2.5 ", "2.5"),
        ("1E-8", "1E-8"),
    ],
)
def test_D_parses_broker_numbers_exactly(text: str, expected: str) -> None:
    assert D(text) == Decimal(expected)


@pytest.mark.parametrize("text", ["", "1O", "1.2.3", "$", "--5", "nan", "inf", "1,2a"])
def test_D_rejects_what_is_not_a_number(text: str) -> None:
    with pytest.raises(NotANumber):
        D(text)


def test_fits_storage_scale() -> None:
    assert fits(Decimal("0.000000000000000001")) is None
    assert fits(Decimal("0.0000000000000000001")) == "has more than 18 decimal places"
    assert fits(Decimal("1" + "0" * 20)) == "is too large (at most 20 digits before the decimal point)"
    # 12 integer digits + 18 decimals exceed the default 28-digit context: still a clean answer.
    assert fits(Decimal("123456789012.123456789012345678")) is None
    assert fits(Decimal("99999999999999999999.123456789012345678")) is None


def test_cents_rounds_half_up_only_when_rendering() -> None:
    assert cents(Decimal("2.675")) == Decimal("2.68")
    assert cents(Decimal("-2.675")) == Decimal("-2.68")
    assert plain(Decimal("1.500000000000000000")) == "1.5"
    assert plain(Decimal("0E-18")) == "0"
    assert plain(Decimal("1E+2")) == "100"


def test_to_scale_leaves_a_huge_value_for_fits_to_reject() -> None:
    """A price of 1e999 (a damaged export) must become a row error, not an exception."""
    from taxlens.money import fits, to_scale

    huge = D("1e999")
    assert to_scale(huge) == huge
    assert fits(to_scale(huge)) == "is too large (at most 20 digits before the decimal point)"
