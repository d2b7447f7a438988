"""The adapter protocol: what every source adapter is given and what it returns."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Protocol
from zoneinfo import ZoneInfo

import polars as pl

from taxlens.errors import FileError, RowError

HEAD_BYTES = 65536


@dataclass(frozen=True)
class Source:
    """One export file: its bytes (UTF-8, BOM removed), its text, and the name used in messages."""

    name: str  # the path as the user gave it: messages must not show absolute paths
    data: bytes
    sha256: str

    @classmethod
    def read(cls, path: str | Path, *, encoding: str | None = None) -> Source:
        """Read and decode a file. Raises FileError for a missing, empty or undecodable file."""
        name = str(path)
        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError as exc:
            raise FileError(name, "file not found") from exc
        except IsADirectoryError as exc:
            raise FileError(name, "is a directory, not an export file") from exc
        except OSError as exc:
            raise FileError(name, f"cannot read: {exc.strerror}") from exc
        return cls.from_bytes(name, raw, encoding=encoding)

    @classmethod
    def from_bytes(cls, name: str, raw: bytes, *, encoding: str | None = None) -> Source:
        sha = hashlib.sha256(raw).hexdigest()
        # raw.strip() would copy a large file only to learn whether it is blank.
        if not raw or raw.isspace():
            raise FileError(name, "file is empty")
        if encoding is None or encoding.replace("-", "").lower() in ("utf8", "utf8sig"):
            data = raw.removeprefix(b"\xef\xbb\xbf")
            try:
                if not data.isascii():  # ASCII is UTF-8: no need to decode (a copy) to know
                    data.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = data.count(b"\n", 0, exc.start) + 1
                raise FileError(
                    name,
                    f"byte 0x{data[exc.start]:02x} is not UTF-8 text "
                    "(expected UTF-8; for a Latin-1 or Windows export pass --encoding cp1252)",
                    line,
                ) from exc
        else:
            try:
                data = raw.decode(encoding).encode("utf-8")
            except LookupError as exc:
                raise FileError(name, f"unknown encoding {encoding!r}") from exc
            except UnicodeDecodeError as exc:
                line = raw.count(b"\n", 0, exc.start) + 1
                raise FileError(name, f"byte 0x{raw[exc.start]:02x} is not {encoding} text", line) from exc
        if b"\x00" in data:
            line = data.count(b"\n", 0, data.index(b"\x00")) + 1
            raise FileError(name, "contains a NUL byte: this is not a text export", line)
        return cls(name=name, data=data, sha256=sha)

    @cached_property
    def text(self) -> str:
        return self.data.decode("utf-8")

    @cached_property
    def head(self) -> str:
        """The first 64 KiB as text, for cheap identification."""
        return self.data[:HEAD_BYTES].decode("utf-8", errors="ignore")

    def head_lines(self, n: int = 20) -> list[str]:
        """The first ``n`` non-blank lines, stripped."""
        out = [line.strip() for line in self.head.splitlines() if line.strip()]
        return out[:n]


@dataclass(frozen=True)
class Context:
    """Settings an adapter needs: the taxpayer's zone for tax dates, and an account override."""

    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("America/New_York"))
    account: str | None = None  # --account: names the account for sources that don't say


@dataclass
class Extracted:
    """What an adapter got from one file: normalized trades and every row it could not read."""

    trades: pl.DataFrame
    errors: list[RowError]
    rows_read: int
    ignored: Counter[str] = field(default_factory=Counter)  # action text -> rows ignored
    warnings: list[str] = field(default_factory=list)


class Adapter(Protocol):
    """A source format. Instances are stateless; the registry holds one of each."""

    NAME: ClassVar[str]  # the --format value and the trades.adapter column
    TITLE: ClassVar[str]  # a person's name for the format
    IDENTIFIED_BY: ClassVar[str]  # what identify() looks for, for `taxlens formats`
    ACTIONS: ClassVar[dict[str, str]]  # source action -> taxlens action
    IGNORED: ClassVar[dict[str, str]]  # source action -> why it is not imported

    def identify(self, source: Source) -> bool:
        """Cheap check (header lines) that ``source`` is in this format."""
        ...

    def extract(self, source: Source, context: Context) -> Extracted:
        """Every row of ``source`` as a normalized trade, an ignored action, or a RowError.

        Raises FileError when the file as a whole is not in this format (missing columns).
        """
        ...


def missing_columns(source: Source, line: int, header: list[str], required: list[str]) -> None:
    """Raise FileError if ``header`` lacks any of ``required``, naming what it has."""
    missing = [c for c in required if c not in header]
    if missing:
        have = ", ".join(repr(h) for h in header)
        need = ", ".join(repr(m) for m in missing)
        raise FileError(source.name, f"missing column{'s' if len(missing) > 1 else ''} {need} (found {have})", line)
