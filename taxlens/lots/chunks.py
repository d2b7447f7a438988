"""Which trades to book together, so that a long history is booked a chunk at a time.

Booking holds every trade, lot and disposal of what it books in memory, about 1.4 GB per
million trades at its peak. Most of booking never looks beyond one symbol, so a book can be
split into chunks of symbols and each chunk booked on its own, with the same result. Only
four rules cross symbols, and their symbols stay in one chunk:

- wash-sale groups: substantially identical symbols named together in taxlens.toml;
- a day's ``sale_fee``, spread over that day's sales in the account, of every symbol;
- pooled ("universal") crypto, handed out to the accounts in one order on 2025-01-01;
- a rename: a transfer out of one symbol and in of another, in one account at one moment.

The order of events across chunks comes from one pass over all the trades first
(``events.event_ranks``): each event's ``seq`` is the one the whole book would give it.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from taxlens.lots.events import Settings

#: Trades per chunk: booking peaks at about 1.2 GB a million trades without the wash-sale pass
#: and 2.4 GB with it, so a chunk takes about 2.4 GB either way (and fewer, larger chunks are
#: quicker: at 10M trades without wash sales, 2M-trade chunks take 52 s, 1M-trade ones 58 s).
CHUNK_TRADES, CHUNK_TRADES_WITHOUT_WASH = 1_000_000, 2_000_000


@dataclass(frozen=True)
class Chunk:
    """One chunk: its symbols (every trade of them but sale fees) and its sale fees (by the
    ``trade_list`` view's ``trade_id``), and how many trades that is."""

    symbols: tuple[str, ...]
    fee_ids: tuple[str, ...]
    trades: int


def plan(keys: pl.DataFrame, settings: Settings, crypto: frozenset[str], target: int = CHUNK_TRADES) -> tuple[list[Chunk], pl.Series]:
    """Split the trades into chunks of about ``target`` trades (a chunk that must hold more,
    holds more). ``keys`` has a row per stored trade: ``symbol``, ``account``, ``trade_date``,
    ``action`` and ``fee_id`` (the ``trade_id`` of a sale fee, else null); ``crypto`` is the
    crypto symbols. Returns the chunks and each row's chunk number (UInt32).

    Symbols that must be booked together (wash-sale groups, a sale fee's day, pooled crypto,
    renames) form one component; components are packed into chunks in order of their first symbol."""
    parent: dict[object, object] = {}

    def find(x: object) -> object:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # type: ignore[index]
            x = parent[x]
        return x

    def union(a: object, b: object) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb, key=repr)] = min(ra, rb, key=repr)

    counts = keys.filter(pl.col("fee_id").is_null()).group_by("symbol").len().sort("symbol")
    present = set(counts.get_column("symbol").to_list())
    groups: dict[str, list[str]] = {}
    for symbol, name in settings.wash.groups:
        if symbol in present:
            groups.setdefault(name, []).append(symbol)
    pooled = sorted(crypto & present) if settings.crypto_universal else []
    for members in [*groups.values(), pooled]:
        for other in members[1:]:
            union(members[0], other)

    # A transfer out and in of another symbol in one account on one day may be a rename
    # (events._pair_transfers pairs them by the instant): both symbols in one chunk.
    outs = keys.filter(pl.col("action") == "transfer_out").select("account", "trade_date", "symbol").unique()
    ins = keys.filter(pl.col("action") == "transfer_in").select("account", "trade_date", pl.col("symbol").alias("_to")).unique()
    for symbol, to in outs.join(ins, on=["account", "trade_date"]).filter(pl.col("symbol") != pl.col("_to")).select("symbol", "_to").sort(pl.all()).iter_rows():
        union(symbol, to)

    fees = keys.filter(pl.col("fee_id").is_not_null())
    fee_days = fees.select("account", "trade_date").unique()
    sold = keys.filter(pl.col("action").is_in(["sell", "fee"])).select("account", "trade_date", "symbol").unique()
    for account, day, symbol in fee_days.join(sold, on=["account", "trade_date"]).sort(pl.all()).iter_rows():
        union(("fee", account, day), symbol)

    fee_roots = {fee_id: find(("fee", account, day)) for fee_id, account, day in fees.select("fee_id", "account", "trade_date").iter_rows()}
    sizes: dict[object, int] = {}
    for symbol, n in counts.iter_rows():
        root = find(symbol)
        sizes[root] = sizes.get(root, 0) + n
    for root in fee_roots.values():
        sizes[root] = sizes.get(root, 0) + 1
    number: dict[object, int] = {}
    filled: list[int] = []
    for root in sorted(sizes, key=repr):  # symbols (str) before fee days (tuple): a fixed order
        if not filled or (filled[-1] and filled[-1] + sizes[root] > target):
            filled.append(0)
        number[root] = len(filled) - 1
        filled[-1] += sizes[root]

    chunk_of_symbol = {symbol: number[find(symbol)] for symbol in present}
    chunk_of_fee = {fee_id: number[root] for fee_id, root in fee_roots.items()}
    chunk = keys.select(
        pl.when(pl.col("fee_id").is_null())
        .then(pl.col("symbol").replace_strict(chunk_of_symbol, default=None, return_dtype=pl.UInt32))
        .otherwise(pl.col("fee_id").replace_strict(chunk_of_fee, default=None, return_dtype=pl.UInt32))
    ).to_series()
    chunks = [
        Chunk(
            symbols=tuple(sorted(s for s, k in chunk_of_symbol.items() if k == i)),
            fee_ids=tuple(f for f, k in chunk_of_fee.items() if k == i),
            trades=n,
        )
        for i, n in enumerate(filled)
    ]
    return chunks, chunk
