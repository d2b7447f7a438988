"""Ingest: broker exports → normalized trades → the store. First stage of the pipeline.

Files: ``base.py`` (the Adapter protocol, Source, Context, Extracted), ``csvscan.py`` (CSV
records with true line numbers), ``rows.py`` and ``brokercsv.py`` (row readers for the
low-volume CSVs), ``exchange.py`` (spent/received → trades, for crypto exchanges), ``frame.py``
(the normalized frame and its identity hashes), one module per source (``generic.py``, with
``fastcsv.py`` its lean path for regular files, ``alpaca.py``, ``ibkr.py``,
``ibkr_statement.py``, ``ibkr_history.py``, ``coinbase.py``, ``schwab.py``, ``fidelity.py``,
``robinhood.py``, ``vanguard.py``, ``etrade.py``, ``kraken.py``, ``binance.py``, ``ofx.py``,
``openlots.py``), and this registry.
"""

from __future__ import annotations

from taxlens.errors import FormatError
from taxlens.ingest.alpaca import Alpaca
from taxlens.ingest.base import Adapter, Context, Extracted, Source
from taxlens.ingest.binance import Binance
from taxlens.ingest.coinbase import Coinbase
from taxlens.ingest.etrade import Etrade
from taxlens.ingest.fidelity import Fidelity
from taxlens.ingest.generic import GenericCsv, Layout, load_mapping
from taxlens.ingest.ibkr import IbkrFlex
from taxlens.ingest.ibkr_history import IbkrHistory
from taxlens.ingest.ibkr_statement import IbkrStatement
from taxlens.ingest.kraken import Kraken
from taxlens.ingest.ofx import Ofx
from taxlens.ingest.openlots import OpeningLots
from taxlens.ingest.robinhood import Robinhood, RobinhoodCrypto
from taxlens.ingest.schwab import Schwab
from taxlens.ingest.vanguard import Vanguard

#: Every built-in adapter, in the order `taxlens formats` lists them. Explicit on purpose.
ADAPTERS: dict[str, Adapter] = {
    adapter.NAME: adapter
    for adapter in (
        GenericCsv(),
        Alpaca(),
        IbkrFlex(),
        Coinbase(),
        Schwab(),
        Ofx(),
        Kraken(),
        Binance(),
        Fidelity(),
        Robinhood(),
        RobinhoodCrypto(),
        Vanguard(),
        Etrade(),
        IbkrStatement(),
        IbkrHistory(),
        OpeningLots(),
    )
}


def adapter_named(name: str) -> Adapter:
    """The adapter for ``--format NAME``; FormatError lists the names if there is none."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise FormatError(f"unknown format {name!r} (expected one of {', '.join(ADAPTERS)})") from None


def identify(source: Source) -> Adapter:
    """The one adapter that recognises ``source``.

    Raises FormatError when none does (listing the formats) or when several do (listing them,
    so the user can pass --format).
    """
    matches = [a for a in ADAPTERS.values() if a.identify(source)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise FormatError(
            f"{source.name}: not a format taxlens recognises (known: {', '.join(ADAPTERS)}); "
            "pass --format NAME, or --mapping FILE for any other CSV"
        )
    raise FormatError(
        f"{source.name}: matches several formats ({', '.join(a.NAME for a in matches)}); "
        "pass --format NAME to choose"
    )


__all__ = [
    "ADAPTERS", "Adapter", "Context", "Extracted", "GenericCsv", "Layout", "Source",
    "adapter_named", "identify", "load_mapping",
]
