"""Typed errors. The library raises these and never prints; cli.py turns them into messages.

Exit codes (cli.py): 1 for data problems (every TaxlensError), 2 for usage errors (click's own).
"""

from __future__ import annotations

from dataclasses import dataclass


class TaxlensError(Exception):
    """Base class: a problem with the user's data, files or settings."""


@dataclass(frozen=True)
class RowError:
    """One unreadable row: a value, not an exception, so that all of a file's errors are collected.

    ``str()`` is ``path:line: message``, the form editors jump to.
    """

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"

    @classmethod
    def at(cls, source: object, message: str) -> RowError:
        """The error for a ``path:line`` source reference (line 0 when it has none)."""
        path, _, line = str(source).rpartition(":")
        return cls(path, int(line) if line.isdigit() else 0, message)


class FileError(TaxlensError):
    """A whole file can't be read (empty, wrong encoding, unknown layout, missing columns)."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class RowErrors(TaxlensError):
    """A file had unreadable rows, so nothing from it was imported."""

    def __init__(self, path: str, errors: list[RowError]) -> None:
        self.path = path
        self.errors = errors
        n = len(errors)
        super().__init__(
            f"{path}: {n} row{'s' if n != 1 else ''} could not be read; nothing was imported "
            "from this file (--skip-bad-rows imports the rest)"
        )


class FormatError(TaxlensError):
    """No adapter, or more than one, recognises a file; or --format names no adapter."""


class ConfigError(TaxlensError):
    """taxlens.toml (or a column-mapping file) is invalid."""


class StoreError(TaxlensError):
    """The database can't be opened or migrated."""
