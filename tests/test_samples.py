"""The bundled sample exports: reproducible from their generator, and they ingest cleanly."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import polars as pl

import taxlens

SAMPLES = Path(__file__).parents[1] / "sample_exports"


def test_generator_reproduces_the_committed_files() -> None:
    result = subprocess.run(
        [sys.executable, str(SAMPLES / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_sample_year_ingests_cleanly_into_the_configured_accounts() -> None:
    exports = sorted(p for p in SAMPLES.glob("*/*") if p.is_file())
    with taxlens.open_book(":memory:", SAMPLES / "taxlens.toml") as book:
        report = book.ingest(exports)
        assert report.ok, [str(e) for f in report.files for e in f.errors] + [str(f.problem) for f in report.files]
        assert [(Path(f.path).parent.name, f.adapter) for f in report.files] == [
            ("alpaca", "alpaca"), ("coinbase", "coinbase"), ("schwab", "schwab"),
        ]
        accounts = book.accounts()
        assert accounts.select("account", "type", "configured").rows() == [
            ("Alpaca", "taxable", True),
            ("Coinbase", "taxable", True),
            ("Schwab Roth IRA ...123", "roth_ira", True),
        ]
        alpaca = book.trades(account="Alpaca", year=2025)
        fills = alpaca.filter(pl.col("action").is_in(["buy", "sell"]))
        per_month = fills.group_by(pl.col("trade_date").dt.month()).len().sort("trade_date")["len"].to_list()
        assert len(per_month) == 12
        assert all(40 <= n <= 60 for month, n in enumerate(per_month, 1) if month != 4), per_month
        volatile_week = fills.filter(pl.col("trade_date").is_between(dt.date(2025, 4, 7), dt.date(2025, 4, 11)))
        assert volatile_week.height > 100
