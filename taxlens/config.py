"""taxlens.toml: the household's accounts and the settings every stage reads.

```toml
timezone = "America/New_York"      # the taxpayer's time zone: it decides each trade's tax date

[accounts."Schwab IRA ...876"]
type = "roth_ira"                  # taxable | traditional_ira | roth_ira | 401k | hsa
owner = "sam"                      # household member
```

[lots]
method = "fifo"                    # fifo | lifo | hifo | taxmin | specific; per account: method =,
                                   # per account and tax year: methods = { 2025 = "hifo" }

[wash_sales]
apply = true                       # false: gains as if the rule did not exist (what-if only)
crypto = false                     # the rule does not cover digital assets (2026): listed as info
households = [["sam", "alex"]]     # owners filing jointly: their accounts wash each other
groups = { sp500 = ["SPY", "IVV", "VOO"] }  # substantially identical (opt-in; default: same symbol)
tax_advantaged = ["traditional_ira", "roth_ira"]  # purchases here make a washed loss permanent

Accounts found in the data but not listed here are taxable, owned by the default owner, and are
listed by ``taxlens accounts`` so the user can add them.
"""

from __future__ import annotations

import os
import re
import tomllib
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from taxlens.errors import ConfigError
from taxlens.models import AccountType

CONFIG_FILE = "taxlens.toml"
DEFAULT_TIMEZONE = "America/New_York"
DEFAULT_OWNER = "self"


class LotMethod(StrEnum):
    FIFO = "fifo"
    LIFO = "lifo"
    HIFO = "hifo"
    TAXMIN = "taxmin"
    SPECIFIC = "specific"


class AccountConfig(BaseModel):
    """One account's settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: AccountType = AccountType.TAXABLE
    owner: str = DEFAULT_OWNER
    method: LotMethod | None = None  # lot selection for this account's sales
    methods: dict[int, LotMethod] = Field(default_factory=dict)  # per tax year: {2025 = "hifo"}


class LotsConfig(BaseModel):
    """[lots]: how sales pick lots."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: LotMethod = LotMethod.FIFO
    holding_period_month_end: bool = True  # HP-6: see taxlens/lots/holding.py
    crypto_scope: Literal["account", "universal"] = "account"  # universal: pooled, pre-2025 only
    selections: str | None = None  # lot-selection CSV: sell_trade_id,lot_id,quantity


class WashConfig(BaseModel):
    """[wash_sales]: how the wash-sale rule (tax-rules.md §3) is applied across the household."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    apply: bool = True  # false: report gains as if §1091 did not exist (a what-if, not a filing)
    crypto: bool = False  # apply to digital assets too; the law (2026) does not, so by default
    #                       crypto washes are only listed as information
    households: list[list[str]] = Field(default_factory=list)  # owners filing jointly: [["sam", "alex"]]
    groups: dict[str, list[str]] = Field(default_factory=dict)  # substantially identical: {sp500 = ["SPY", "IVV"]}
    tax_advantaged: list[AccountType] = Field(
        default_factory=lambda: [AccountType.TRADITIONAL_IRA, AccountType.ROTH_IRA]
    )  # a purchase here washes a loss for good (Rev. Rul. 2008-5); other non-taxable types are outside

    @field_validator("households")
    @classmethod
    def _one_household_each(cls, value: list[list[str]]) -> list[list[str]]:
        seen: set[str] = set()
        for members in value:
            for owner in members:
                if owner in seen:
                    raise ValueError(f"owner {owner!r} is in two households")
                seen.add(owner)
        return value

    @field_validator("groups")
    @classmethod
    def _one_group_each(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        seen: dict[str, str] = {}
        for name, symbols in value.items():
            for symbol in symbols:
                if symbol in seen:
                    raise ValueError(f"symbol {symbol!r} is in groups {seen[symbol]!r} and {name!r}")
                seen[symbol] = name
        return value


class TaxConfig(BaseModel):
    """[tax]: the taxpayer profile the tax estimate needs (tax-rules.md §6)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    year: int | None = None  # default: the year audited
    filing_status: Literal["single", "mfj", "mfs", "hoh", "qss"] = "single"
    other_income: Decimal = Decimal(0)  # ordinary income before the deduction: wages, interest, ...
    qualified_dividends: Decimal = Decimal(0)
    deduction: Decimal | None = None  # None: the standard deduction for the year and status
    state_rate: Decimal = Decimal(0)  # flat state rate on taxable income, e.g. 0.05
    marginal_rate: Decimal | None = None  # a flat rate on net gains instead of the schedules
    carryover_short: Decimal = Decimal(0)  # capital losses carried into the year, positive
    carryover_long: Decimal = Decimal(0)


class AuditConfig(BaseModel):
    """[audit]: the thresholds of the safety checks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    concentration_cap: Decimal = Decimal("0.15")  # largest position as a share of the portfolio
    busy_week: int = 100  # trades in one week that count as a burst
    typical_month: tuple[int, int] = (40, 60)  # a typical rebalancer's trades per month
    expected_fees: Decimal | None = None  # what the user expected to pay in the year
    near_long_term_days: int = 30  # short-term gains sold this close to turning long-term


class SimulateConfig(BaseModel):
    """[simulate]: what the policy simulator aims at and starts from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    targets: dict[str, Decimal] = Field(default_factory=dict)  # symbol -> weight, summing to 1
    prices: str | None = None  # CSV of daily closes: date,symbol,close[,dividend,split]
    cash: Decimal | None = None  # start from this much cash instead of the real lots
    commission: Decimal = Decimal(0)  # per trade
    spread_bps: Decimal = Decimal(0)
    fractional: bool = True


class Config(BaseModel):
    """The whole of taxlens.toml; every field has a default so no file is needed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = DEFAULT_TIMEZONE
    accounts: dict[str, AccountConfig] = Field(default_factory=dict)
    lots: LotsConfig = Field(default_factory=LotsConfig)
    wash_sales: WashConfig = Field(default_factory=WashConfig)
    tax: TaxConfig = Field(default_factory=TaxConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    simulate: SimulateConfig = Field(default_factory=SimulateConfig)
    path: str | None = Field(default=None, exclude=True)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (expected e.g. America/New_York)") from exc
        return value

    def account(self, name: str) -> AccountConfig:
        """Return the account's settings, defaulting to a taxable account of the default owner."""
        return self.accounts.get(name, AccountConfig())


_TOML_AT = re.compile(r"^(?P<what>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$", re.S)


def toml_error(name: str | os.PathLike[str], exc: tomllib.TOMLDecodeError) -> str:
    """``exc`` as ``name:LINE: message (column C)``, the place first as in every other
    taxlens message (tomllib gives it at the end: "... (at line 4, column 6)")."""
    m = _TOML_AT.match(str(exc))
    if m is None:
        return f"{name}: {exc}"
    return f"{name}:{m['line']}: {m['what']} (column {m['column']})"


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load taxlens.toml from ``path``, or from the working directory when it exists there.

    Returns the defaults when no file is given and none is in the working directory. Raises
    ConfigError naming the file and the offending key.
    """
    explicit = path is not None
    file = Path(path) if path is not None else Path(CONFIG_FILE)
    if not file.exists():
        if explicit:
            raise ConfigError(f"{file}: config file not found")
        return Config()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(toml_error(file, exc)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: {exc}") from exc
    try:
        return Config.model_validate({**data, "path": str(file)})
    except ValidationError as exc:
        text = file.read_text(encoding="utf-8")
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            line = _line_of(text, loc)
            where = f"{file}:{line}" if line else str(file)
            problems.append(f"{where}: {'.'.join(loc)}: {err['msg']}")
        raise ConfigError("; ".join(problems)) from exc


_TABLE = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")


def _line_of(text: str, loc: list[str]) -> int | None:
    """The line of the TOML key at ``loc`` (e.g. ["accounts", "IRA", "type"]): the key's own line
    inside the table that holds it, else the table's header line, else None."""

    def parts(header: str) -> list[str]:
        return [p.strip().strip('"').strip("'") for p in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', header)]

    table: list[str] = []
    best: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if m := _TABLE.match(line):
            table = parts(m.group(1))
            if table == loc[: len(table)] and len(table) == len(loc):
                best = best or number
            continue
        if m := _KEY.match(line):
            key = m.group(1).strip('"').strip("'")
            path = [*table, key]
            if path == loc:
                return number
            if path == loc[: len(path)] and best is None:
                best = number  # an inline table or array holding the key
    return best
