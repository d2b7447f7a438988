"""Lots: stored trades → tax lots and disposals. Second stage of the pipeline, after ingest.

Files: ``events.py`` (trades → lot events: amounts, order, transfers paired), ``holding.py``
(short or long term), ``fifo.py`` (the vectorised FIFO for plain positions), ``engine.py`` (the
loop for every method, splits, transfers and shortfalls, and its Decimal reference),
``_loopfast.py`` (that loop on integer units), ``_bookcore.c`` (the same loop in C for plain
LIFO/HIFO/TaxMin positions), ``wash.py`` with ``_washcore.c`` (the wash-sale pass, its loop in
C), ``frames.py`` (the event, lot and disposal schemas) and ``book.py`` (routing, settings,
totals). All pure: frames in, frames out. Each C core has its Python twin as the reference and
fallback (TAXLENS_BOOK_CORE / TAXLENS_WASH_CORE = auto, compiled or python).
"""
