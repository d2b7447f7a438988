"""taxlens: a local, private, tax-aware trade-frequency analyzer.

The public API (``import taxlens``): ``open_book`` returns a ``Book`` over a DuckDB file, whose
``ingest``, ``trades``, ``accounts``, ``gains``, ``lots`` and ``booked`` return reports and polars
frames. ``cli.py`` is a thin layer over it. Pipeline stages live in subpackages: ``ingest/``
(exports → trades), ``lots/`` (trades → lots and disposals), ``report/`` (frames → text).
"""

from taxlens.api import Book, FileResult, IngestReport, ingest, open_book
from taxlens.config import Config, load_config
from taxlens.errors import ConfigError, FileError, FormatError, RowError, RowErrors, StoreError, TaxlensError
from taxlens.models import AccountType, Action, AssetClass, Trade

__version__ = "0.1.0"

__all__ = [
    "AccountType", "Action", "AssetClass", "Book", "Config", "ConfigError", "FileError",
    "FileResult", "FormatError", "IngestReport", "RowError", "RowErrors", "StoreError",
    "TaxlensError", "Trade", "ingest", "load_config", "open_book",
]
