"""Report: renderers from frames to text. Last stage of the pipeline.

Files: ``listing.py`` (any frame as a rich table, CSV or JSON, for the listing commands).
"""
