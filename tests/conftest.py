"""Shared fixtures: exact decimals enforced, no colour, golden files with --update-golden."""

from __future__ import annotations

import decimal
import difflib
import os
from pathlib import Path

import pytest
from hypothesis import settings

os.environ["NO_COLOR"] = "1"
os.environ.pop("TAXLENS_DB", None)

settings.register_profile("default", max_examples=50, deadline=None)
settings.register_profile("ci", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

GOLDEN = Path(__file__).parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite golden files with the current output (review the diff before committing)",
    )


@pytest.fixture(autouse=True)
def _trap_floats() -> None:
    """Mixing floats into Decimal arithmetic raises in tests (Decimal(0.1), Decimal < float)."""
    decimal.getcontext().traps[decimal.FloatOperation] = True


class Golden:
    """Compare text with a golden file; with --update-golden, write it instead."""

    def __init__(self, update: bool) -> None:
        self.update = update

    def check(self, path: Path, actual: str) -> None:
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
            return
        if not path.exists():
            pytest.fail(f"golden file {path} is missing; run pytest --update-golden and review it")
        expected = path.read_text(encoding="utf-8")
        if expected != actual:
            diff = "".join(
                difflib.unified_diff(
                    expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                    fromfile=str(path), tofile="actual",
                )
            )
            pytest.fail(f"output differs from {path}:\n{diff}")


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    return Golden(bool(request.config.getoption("--update-golden")))


@pytest.fixture
def book():  # type: ignore[no-untyped-def]
    """A fresh in-memory taxlens book with default settings."""
    import taxlens

    with taxlens.open_book(":memory:", taxlens.Config()) as b:
        yield b


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run the taxlens CLI in tmp_path (so ./taxlens.duckdb and ./taxlens.toml are there)."""
    from click.testing import CliRunner

    from taxlens.cli import cli

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def book_with():  # type: ignore[no-untyped-def]
    """In-memory books, each with a taxlens.toml given as a dict (``Config.model_validate``)."""
    import taxlens

    opened = []

    def make(settings: dict[str, object]):  # type: ignore[no-untyped-def]
        b = taxlens.open_book(":memory:", taxlens.Config.model_validate(settings))
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.close()


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    """Write a fixture file (dedented text, or raw bytes) and return its path."""
    import textwrap

    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path
