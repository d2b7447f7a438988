"""Exact decimals for money and quantities: parsing broker strings, scales, rounding for output.

Never construct a Decimal from a float. Amounts are stored unrounded; ``cents()`` rounds only
when a report or form is rendered.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, InvalidOperation

#: Every quantity, price and amount is stored as DECIMAL(38, SCALE): 20 integer digits and
#: 18 decimals, enough for wei-level crypto quantities and any real account's cash.
PRECISION = 38
SCALE = 18
QUANTUM = Decimal(1).scaleb(-SCALE)
ZERO = Decimal(0)
_MAX_ABS = Decimal(10) ** (PRECISION - SCALE)
# Quantizing to 18 places needs room for 20 + 18 digits: the default context has only 28.
_WIDE = Context(prec=PRECISION + 2)

_CURRENCY_SIGNS = "$€£¥"
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class NotANumber(ValueError):
    """Raised by ``D()`` with the reason the text is not a number."""


def D(text: str) -> Decimal:
    """Parse a broker's number string exactly.

    Accepts thousands separators (``1,234.5``), currency signs (``$``, ``-$40.00``, ``€3.1``),
    accounting negatives (``($18.00)``), a leading ``+`` and surrounding spaces. Raises
    ``NotANumber`` for anything else, including the empty string.
    """
    s = text.strip()
    negative = False
    if s.startswith("(") and s.endswith(")"):
        negative, s = True, s[1:-1].strip()
    if s[:1] in "+-" and len(s) > 1 and s[1] in _CURRENCY_SIGNS:
        negative ^= s[0] == "-"
        s = s[1:]
    s = s.lstrip(_CURRENCY_SIGNS).replace(",", "").strip()
    if not _NUMBER.match(s):
        raise NotANumber("is not a number")
    try:
        value = Decimal(s)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid literals
        raise NotANumber("is not a number") from exc
    return -value if negative else value


def fits(value: Decimal) -> str | None:
    """Return why ``value`` can't be stored exactly at DECIMAL(38,18), or None if it can."""
    if not value.is_finite():
        return "is not a finite number"
    if value and value.adjusted() >= PRECISION - SCALE:  # abs() would overflow on 1e9999999
        return f"is too large (at most {PRECISION - SCALE} digits before the decimal point)"
    if value != value.quantize(QUANTUM, rounding=ROUND_HALF_EVEN, context=_WIDE):
        return f"has more than {SCALE} decimal places"
    return None


def to_scale(value: Decimal) -> Decimal:
    """Round to the storage scale (half-even). Only for informational figures such as a price
    a broker computed with more digits than it has meaning; quantities must fit exactly. A value
    too large for the storage scale is returned as it is, for ``fits`` to reject."""
    if value and value.adjusted() >= PRECISION - SCALE:
        return value
    return value.quantize(QUANTUM, rounding=ROUND_HALF_EVEN, context=_WIDE)


def cents(value: Decimal) -> Decimal:
    """Round an amount to cents for a report or form (half up, as brokers and the IRS round)."""
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def plain(value: Decimal | None) -> str:
    """Format a decimal without exponent or trailing zeros (``1.500000`` → ``1.5``, ``0`` → ``0``)."""
    if value is None:
        return ""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


_UNIT = 10**SCALE


def _units(value: Decimal) -> int:
    """``value`` as an integer count of 1e-18 (it must fit the storage scale exactly)."""
    return int(value.scaleb(SCALE, context=_WIDE).to_integral_exact(context=_WIDE))


def mul_units(a: int, b: int) -> int:
    """a × b on integer units of 1e-18, rounded half to even: the booking loop's hot path."""
    q, r = divmod(a * b, _UNIT)
    twice = 2 * r
    if twice > _UNIT or (twice == _UNIT and q & 1):
        q += 1
    return q


def div_units(a: int, b: int) -> int:
    """a ÷ b on integer units of 1e-18, rounded half to even (b ≠ 0)."""
    num, den = a * _UNIT, b
    if den < 0:
        num, den = -num, -den
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q & 1):
        q += 1
    return q


def mul18(a: Decimal, b: Decimal) -> Decimal:
    """a × b rounded half-even to 18 decimals: exactly what polars does for Decimal(38,18).

    Booking uses this in its loop and polars uses it in its frames, so both paths agree to the
    last digit.
    """
    return Decimal(mul_units(_units(a), _units(b))).scaleb(-SCALE, context=_WIDE)


def div18(a: Decimal, b: Decimal) -> Decimal:
    """a ÷ b rounded half-even to 18 decimals, as polars divides Decimal(38,18); b must not be 0."""
    return Decimal(div_units(_units(a), _units(b))).scaleb(-SCALE, context=_WIDE)
