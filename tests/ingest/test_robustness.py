"""Damaged exports never crash an adapter: every outcome is trades, row errors or a TaxlensError."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taxlens.errors import TaxlensError
from taxlens.ingest import ADAPTERS, Context, Source

ROOT = Path(__file__).parents[1] / "golden" / "adapters"
FIXTURES = sorted(
    p for p in ROOT.glob("*/*")
    if p.is_file() and not p.name.endswith((".trades.csv", ".log.txt")) and p.name != "README.md"
)

DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 40)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.sampled_from([b'"', b",", b"\n", b"\r", b"-", b"x", b"\xc3\xa9", b"<", b"}", b"1e999", b"\t"])),
    st.tuples(st.just("duplicate-line"), st.floats(0, 1)),
)


def damage(data: bytes, how: tuple) -> bytes:  # type: ignore[type-arg]
    at = int(how[1] * len(data))
    if how[0] == "truncate":
        return data[:at]
    if how[0] == "delete":
        return data[:at] + data[at + how[2]:]
    if how[0] == "insert":
        return data[:at] + how[2] + data[at:]
    lines = data.splitlines(keepends=True)
    i = min(int(how[1] * len(lines)), len(lines) - 1)
    return b"".join(lines[: i + 1] + lines[i:])


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
@given(how=st.lists(DAMAGE, min_size=1, max_size=3))
def test_damaged_fixture_fails_cleanly(fixture: Path, how: list[tuple]) -> None:  # type: ignore[type-arg]
    data = fixture.read_bytes()
    for h in how:
        data = damage(data, h)
    adapter = ADAPTERS[fixture.parent.name]
    try:
        source = Source.from_bytes("x", data)
        extracted = adapter.extract(source, Context())
    except TaxlensError:
        return
    assert extracted.rows_read >= 0
    assert all(str(e).startswith("x:") for e in extracted.errors)
