"""Adapter golden pairs: every fixture under tests/golden/adapters/<format>/ is identified by
exactly that format, and its normalized trades and messages equal the files beside it.

For ``x.csv`` the expected output is ``x.csv.trades.csv`` (normalized trades) and
``x.csv.log.txt`` (rows read, ignored actions, row errors, warnings). A fixture without its
expected files fails; regenerate with ``pytest --update-golden`` and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from taxlens.ingest import ADAPTERS, Context, Source, identify
from taxlens.ingest.frame import to_csv

ROOT = Path(__file__).parents[1] / "golden" / "adapters"
OUTPUTS = (".trades.csv", ".log.txt")
FIXTURES = sorted(
    p for p in ROOT.glob("*/*") if p.is_file() and not p.name.endswith(OUTPUTS) and p.name != "README.md"
)


def render_log(extracted) -> str:  # type: ignore[no-untyped-def]
    lines = [f"rows_read: {extracted.rows_read}", f"trades: {extracted.trades.height}"]
    for action, count in sorted(extracted.ignored.items()):
        lines.append(f"ignored: {action}: {count}")
    lines += [f"error: {e}" for e in extracted.errors]
    lines += [f"warning: {w}" for w in extracted.warnings]
    return "\n".join(lines) + "\n"


def test_every_adapter_has_a_golden_pair() -> None:
    folders = {p.parent.name for p in FIXTURES}
    assert set(ADAPTERS) <= folders, f"no golden fixture for {sorted(set(ADAPTERS) - folders)}"


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_pair(fixture: Path, golden) -> None:  # type: ignore[no-untyped-def]
    name = f"{fixture.parent.name}/{fixture.name}"
    source = Source.from_bytes(name, fixture.read_bytes())
    adapter = identify(source)
    assert adapter.NAME == fixture.parent.name
    extracted = adapter.extract(source, Context())
    golden.check(fixture.with_name(fixture.name + ".trades.csv"), to_csv(extracted.trades))
    golden.check(fixture.with_name(fixture.name + ".log.txt"), render_log(extracted))
