"""Lots: stored trades → tax lots and disposals. Second stage of the pipeline, after ingest.

Files: ``events.py`` (trades → lot events: amounts, order, transfers paired), ``holding.py``
(short or long term), ``fifo.py`` (the vectorised FIFO for plain positions), ``engine.py`` (the
loop for every method, splits, transfers and shortfalls, and its Decimal reference),
``_loopfast.py`` (that loop on integer units), ``frames.py`` (the event, lot and disposal
schemas) and ``book.py`` (routing, settings, totals). All pure: frames in, frames out.
"""
