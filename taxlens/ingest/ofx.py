"""OFX / QFX investment statements (``INVSTMTRS``): OFX 1.x SGML and OFX 2.x XML (formats.md §9).

Layout: a header (``OFXHEADER:100`` lines for SGML, ``<?OFX OFXHEADER="200" …?>`` for XML),
then ``<OFX>`` with a sign-on, one ``INVSTMTRS`` per account (``INVACCTFROM{BROKERID, ACCTID}``,
``INVTRANLIST`` of transaction aggregates, ``INVPOSLIST`` of end positions) and a ``SECLIST``
that maps each security's ``UNIQUEID`` (a CUSIP) to its ``TICKER``. QFX is the same with Intuit
tags (``INTU.BID``) added.

Parser choice: a small hand-written reader below (``_parse``) turns both syntaxes into one tree
of ``_Node`` with the line of every opening tag, which row errors need and no library gives.
ofxtools is the best-maintained parser but is GPL-3.0-only, which taxlens (MIT) should not
depend on; ofxparse (MIT) is unmaintained since 2021, pulls in beautifulsoup4/lxml/six, turns
missing COMMISSION/FEES into 0 and shifts dates to naive UTC. The OFX work left after the tree
(numbers, dates, SECLIST joins) is ours either way, so no dependency is added.

Quirks this adapter handles:

- SGML leaf tags are not closed (``<UNITS>10``) and a file may be one long line; an element
  with no text that is never closed is an empty leaf, not an aggregate.
- Numbers may be zero-padded with a ``+`` (Fidelity) or use a decimal comma; BUYTYPE may have
  trailing spaces. UNITS and TOTAL signs differ between institutions (Fidelity gives negative
  UNITS in SELLSTOCK), so the direction comes from the element and TFERACTION, never a sign.
- TOTAL is the cash truth (UNITPRICE is rounded). Tax withheld on a sale or income is split
  out as a ``withholding`` trade, so proceeds and income stay gross.
- ``REINVEST`` is income and purchase in one aggregate: it becomes a dividend (or interest)
  and a reinvest with opposite amounts. Fidelity's INCOME plus a BUYSTOCK "REINVESTMENT" are
  simply two rows, each imported once.
- E*TRADE books foreign tax as ``INVEXPENSE``: a MEMO that says tax was withheld makes it a
  ``withholding`` rather than a ``fee``.
- Dates are ``YYYYMMDD[HHMMSS[.XXX]][[offset:TZ]]``; no offset means GMT. A time gives ``ts``
  (the UTC instant) and the tax date in the taxpayer's zone; a bare date, or a time of exactly
  ``000000`` (what institutions write for "no time"), is a date only, so it never shifts a day.
- TRANSFER usually carries no cost basis: the note says "basis unknown" (or AVGCOSTBASIS).
- A security missing from SECLIST keeps its UNIQUEID as the symbol, with a warning.
- Positions: the share movements of the file's transactions are compared, per security that
  moved, with INVPOSLIST; a difference is a warning (a statement usually covers only part of
  the history).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from pydantic import ValidationError

from taxlens.errors import FileError, RowError
from taxlens.ingest.base import Context, Extracted, Source
from taxlens.ingest.frame import from_trades
from taxlens.ingest.rows import Problem, problem
from taxlens.models import Action, AssetClass, Trade
from taxlens.money import PRECISION, SCALE, fits, plain, to_scale

# -- the tree ------------------------------------------------------------------------------


@dataclass
class _Node:
    """One element: an aggregate (``children``) or a leaf (``text``), and its opening line."""

    tag: str
    line: int
    text: str | None = None
    children: list[_Node] = field(default_factory=list)

    def iter(self, tag: str) -> Iterator[_Node]:
        """Every descendant named ``tag``, in document order."""
        stack = list(reversed(self.children))
        while stack:
            node = stack.pop()
            if node.tag == tag:
                yield node
            stack.extend(reversed(node.children))

    def find(self, tag: str) -> _Node | None:
        return next(self.iter(tag), None)

    def value(self, tag: str) -> str | None:
        """The stripped text of the first descendant ``tag``; None when there is none."""
        node = self.find(tag)
        if node is None:
            return None
        return (node.text or "").strip()


_TAG = re.compile(r"<([^<>]*)>")
_NAME = re.compile(r"^(/?)([A-Za-z][A-Za-z0-9._-]*)\s*(/?)$")
_ROOT = re.compile(r"<OFX\s*>", re.IGNORECASE)


def _parse(source: Source) -> _Node:
    """The ``<OFX>`` element of an SGML or XML file. Raises FileError when it is not well formed.

    SGML leaves have no end tag: an opening tag followed by text is a leaf (an XML end tag right
    after it is consumed). An element opened without text is an aggregate until proved
    otherwise: if an end tag of an enclosing element arrives while it is still open, it was an
    empty leaf, and what it seemed to contain moves up beside it.
    """
    text = source.text
    start = _ROOT.search(text)
    if start is None:
        raise FileError(source.name, "has no <OFX> element (expected an OFX header followed by <OFX>)")
    line = text.count("\n", 0, start.start()) + 1
    root = _Node("OFX", line)
    stack: list[_Node] = [root]
    leaf: _Node | None = None  # the element just opened (or the leaf just read), on top of stack
    pos = start.end()
    for match in _TAG.finditer(text, pos):
        between = text[pos:match.start()]
        text_line = line + between.count("\n", 0, len(between) - len(between.lstrip()))
        line += between.count("\n")
        pos = match.end()
        inner = match.group(1).strip()
        if inner[:1] in ("?", "!"):  # processing instruction, comment, doctype
            continue
        if between.strip():
            if leaf is None or leaf.text is not None:
                snippet = between.strip()[:40]
                raise FileError(source.name, f"unexpected text {snippet!r} between tags (expected a tag)", text_line)
            leaf.text = html.unescape(between.strip())
            stack.pop()
        parts = _NAME.match(inner)
        if parts is None:
            raise FileError(source.name, f"unreadable tag <{inner[:40]}> (expected <NAME> or </NAME>)", line)
        closing, tag, empty = parts.group(1), parts.group(2).upper(), parts.group(3)
        if closing:
            if leaf is not None and leaf.text is not None and leaf.tag == tag:
                leaf = None  # an XML leaf's end tag
                continue
            leaf = None
            depth = next((i for i in range(len(stack) - 1, -1, -1) if stack[i].tag == tag), None)
            if depth is None:
                raise FileError(source.name, f"</{tag}> closes no open element (the file is damaged)", line)
            while len(stack) - 1 > depth:
                _empty_leaf(stack.pop(), stack[-1])
            if depth == 0:
                return root
            stack.pop()
            continue
        node = _Node(tag, line, "" if empty else None)
        stack[-1].children.append(node)
        leaf = None if empty else node
        if not empty:
            stack.append(node)
    if leaf is not None and leaf.text is None and text[pos:].strip():
        raise FileError(source.name, f"the file ends inside the value of <{leaf.tag}>: it is truncated", leaf.line)
    while len(stack) > 1 and not stack[-1].children:  # unclosed empty leaves at the very end
        _empty_leaf(stack.pop(), stack[-1])
    if len(stack) > 1:
        raise FileError(
            source.name,
            f"the file ends inside <{stack[-1].tag}> (opened on line {stack[-1].line}): it is truncated",
        )
    return root


def _empty_leaf(node: _Node, parent: _Node) -> None:
    """``node`` was never closed, so it is an empty leaf: its children become its siblings."""
    at = len(parent.children) - 1 - parent.children[::-1].index(node)
    parent.children[at + 1:at + 1] = node.children
    node.children, node.text = [], ""


# -- values ----------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")
_DATE = re.compile(
    r"^(\d{4})(\d{2})(\d{2})"
    r"(?:(\d{2})(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"\s*(?:\[\s*([+-]?\d{1,2}(?:[.,]\d{1,2})?)\s*(?::\s*([A-Za-z]*)\s*)?\])?$"
)
_DATE_HINT = "a date such as 20230714 or 20230714170000.000[-5:EST]"
_LIMIT = Decimal(10) ** (PRECISION - SCALE)


class _Txn:
    """One transaction aggregate; its readers raise Problem naming the OFX element."""

    def __init__(self, node: _Node) -> None:
        self.node = node

    def text(self, tag: str) -> str:
        return self.node.value(tag) or ""

    def need(self, tag: str, hint: str) -> str:
        value = self.text(tag)
        if not value:
            raise problem(tag, value, f"is missing (expected {hint})")
        return value

    def number(self, tag: str, hint: str, *, required: bool = True, exact: bool = True) -> Decimal | None:
        """The element as an exact Decimal; None when absent and not ``required``.

        ``exact`` values must fit DECIMAL(38,18); the others (prices) are rounded to it.
        """
        text = self.text(tag)
        if not text:
            if required:
                raise problem(tag, text, f"is missing (expected {hint})")
            return None
        value = _number(text)
        if value is None:
            raise problem(tag, text, f"is not a number (expected {hint})")
        if abs(value) >= _LIMIT:
            raise problem(tag, text, f"is too large (expected {hint})")
        if not exact:
            return to_scale(value)
        if why := fits(value):
            raise problem(tag, text, f"{why} (expected {hint})")
        return value

    def units(self, tag: str = "UNITS") -> Decimal:
        """A required, non-zero number of shares, as a positive quantity."""
        value = self.number(tag, "a number of shares such as 10 or 0.76817") or Decimal(0)
        if value == 0:
            raise problem(tag, self.text(tag), "is zero (expected a number of shares such as 10 or 0.76817)")
        return abs(value)

    def when(self, tag: str, context: Context) -> tuple[dt.datetime | None, dt.date]:
        """(UTC instant or None, tax date) of a date element."""
        return _when(tag, self.need(tag, _DATE_HINT), context)

    def memo(self) -> str | None:
        return " ".join(self.text("MEMO").split()) or None


def _number(text: str) -> Decimal | None:
    """An OFX number: optional sign, zero padding, a decimal point or comma; None if not one."""
    s = text.strip()
    if "," in s and "." not in s:
        s = s.replace(",", ".")
    if not _NUMBER.match(s):
        return None
    try:
        return Decimal(s)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
        return None


def _when(tag: str, text: str, context: Context) -> tuple[dt.datetime | None, dt.date]:
    match = _DATE.match(text)
    if match is None:
        raise problem(tag, text, f"is not a date (expected {_DATE_HINT})")
    y, mo, d, h, mi, s, frac, offset, _zone = match.groups()
    try:
        day = dt.date(int(y), int(mo), int(d))
        if h is None or (int(h), int(mi), int(s or 0), int(frac or 0)) == (0, 0, 0, 0):
            return None, day  # a date only: "000000" is how institutions write "no time"
        micro = int((frac or "0").ljust(6, "0"))
        local = dt.datetime(day.year, day.month, day.day, int(h), int(mi), int(s or 0), micro)
        hours = Decimal((offset or "0").replace(",", "."))
        if abs(hours) > 14:
            raise ValueError("offset out of range")
        zone = dt.timezone(dt.timedelta(minutes=int(hours * 60)))
        instant = local.replace(tzinfo=zone).astimezone(dt.UTC)
        return instant, instant.astimezone(context.timezone).date()
    except (ValueError, OverflowError) as exc:  # no such day or time; beyond year 1..9999
        raise problem(tag, text, f"is not a date (expected {_DATE_HINT})") from exc


# -- the adapter ------------------------------------------------------------------------------

_BUYS = {"BUYSTOCK": "BUYTYPE", "BUYMF": "BUYTYPE", "BUYOTHER": None}
_SELLS = {"SELLSTOCK": "SELLTYPE", "SELLMF": "SELLTYPE", "SELLOTHER": None}
_INCOME = {
    "DIV": (Action.DIVIDEND, "dividend"),
    "INTEREST": (Action.INTEREST, "interest"),
    "CGLONG": (Action.DIVIDEND, "long-term capital gain distribution"),
    "CGSHORT": (Action.DIVIDEND, "short-term capital gain distribution"),
    "MISC": (Action.DIVIDEND, "miscellaneous income"),
}
_BANK = {"INT": Action.INTEREST, "DIV": Action.DIVIDEND, "FEE": Action.FEE, "SRVCHG": Action.FEE}
_UNSUPPORTED = {
    "RETOFCAP": "a return of capital reduces the basis of the lots, which is not supported yet",
    **dict.fromkeys(("BUYOPT", "SELLOPT", "CLOSUREOPT"), "options are not supported yet"),
    **dict.fromkeys(("BUYDEBT", "SELLDEBT"), "bonds (accrued interest) are not supported yet"),
}
_JOURNAL = "a move between sub-accounts (cash, margin, short) of the same account: holdings do not change"
_CLASSES = {
    "STOCKINFO": AssetClass.EQUITY, "MFINFO": AssetClass.FUND, "OPTINFO": AssetClass.OPTION,
    "DEBTINFO": AssetClass.BOND, "OTHERINFO": AssetClass.OTHER,
}
_DEFAULT_CLASS = {"BUYMF": AssetClass.FUND, "SELLMF": AssetClass.FUND, "BUYOTHER": AssetClass.OTHER,
                  "SELLOTHER": AssetClass.OTHER}
_TAX_MEMO = re.compile(r"W/H|WITHH|TAX\s+WITHHELD|FOREIGN\s+TAX|FGN\s+TAX", re.IGNORECASE)
_FEE_TAGS = ("COMMISSION", "FEES", "TAXES", "LOAD")
_MONEY_HINT = "an amount such as -1344.27"

#: Builds a Trade from an action, extra note parts and fields (see ``_transaction``).
_Make = Callable[..., Trade]


@dataclass(frozen=True)
class _Security:
    symbol: str
    asset_class: AssetClass


@dataclass
class _Statement:
    """What one INVSTMTRS's transactions need: account, currency, securities, messages."""

    path: str
    account: str
    currency: str
    context: Context
    securities: dict[str, _Security]
    warnings: list[str]
    unknown: set[str] = field(default_factory=set)
    moves: defaultdict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))


class Ofx:
    """OFX/QFX investment statements, SGML (1.x) or XML (2.x)."""

    NAME: ClassVar[str] = "ofx"
    TITLE: ClassVar[str] = "OFX / QFX investment statement (Quicken/Money download)"
    IDENTIFIED_BY: ClassVar[str] = (
        'an OFX header (OFXHEADER:100, or <?OFX OFXHEADER="200" …?>) or an <OFX> element at the start'
    )
    EXAMPLE: ClassVar[str] = (
        "OFXHEADER:100\nDATA:OFXSGML\n…\n<OFX>…<INVSTMTRS>…<INVTRANLIST>\n"
        "<BUYSTOCK><INVBUY><INVTRAN><FITID>230712_B_0<DTTRADE>20230712170000.000</INVTRAN>"
        "<SECID><UNIQUEID>92826C839<UNIQUEIDTYPE>CUSIP</SECID><UNITS>5.55<UNITPRICE>242.21"
        "<TOTAL>-1344.27…</INVBUY><BUYTYPE>BUY</BUYSTOCK>"
    )
    ACTIONS: ClassVar[dict[str, str]] = {
        "BUYSTOCK": "buy (BUYTYPE BUYTOCOVER: buy_to_cover)",
        "BUYMF": "buy (BUYTYPE BUYTOCOVER: buy_to_cover)",
        "BUYOTHER": "buy",
        "SELLSTOCK": "sell (SELLTYPE SELLSHORT: sell_short)",
        "SELLMF": "sell (SELLTYPE SELLSHORT: sell_short)",
        "SELLOTHER": "sell",
        "REINVEST": "dividend (or interest, by INCOMETYPE) + reinvest",
        "INCOME": "dividend (DIV, CGLONG, CGSHORT, MISC) or interest (INTEREST)",
        "INVEXPENSE": "fee, or withholding when MEMO says tax was withheld",
        "MARGININTEREST": "fee",
        "TRANSFER": "transfer_in or transfer_out (TFERACTION)",
        "SPLIT": "split_in or split_out (NEWUNITS - OLDUNITS); FRACCASH: cash_in_lieu",
        "INVBANKTRAN": "deposit or withdrawal (sign of TRNAMT); TRNTYPE INT: interest, DIV: dividend, "
        "FEE/SRVCHG: fee",
        "WITHHOLDING (in INCOME, SELL*)": "withholding",
    }
    IGNORED: ClassVar[dict[str, str]] = {"JRNLSEC": _JOURNAL, "JRNLFUND": _JOURNAL}

    def identify(self, source: Source) -> bool:
        """True when the file starts with an OFX header or the <OFX> element."""
        head = source.head.lstrip()
        if re.match(r"OFXHEADER\s*:", head, re.IGNORECASE) or re.match(r"<OFX\s*>", head, re.IGNORECASE):
            return True
        return bool(re.match(r"(<\?xml[^>]*>\s*)?<\?OFX\s[^>]*OFXHEADER", head, re.IGNORECASE))

    def extract(self, source: Source, context: Context) -> Extracted:
        """Every transaction of every INVSTMTRS as trades, an ignored journal, or a RowError.

        Raises FileError when the file is not a well-formed OFX investment statement.
        """
        root = _parse(source)
        statements = list(root.iter("INVSTMTRS"))
        if not statements:
            if root.find("STMTRS") or root.find("CCSTMTRS"):
                raise FileError(source.name, "is an OFX bank or credit-card statement, not an investment "
                                "statement (expected <INVSTMTRS>)")
            raise FileError(source.name, "has no investment statement (expected <INVSTMTRS> in <INVSTMTMSGSRSV1>)")
        securities = _securities(root)
        trades: list[Trade] = []
        errors: list[RowError] = []
        warnings: list[str] = []
        ignored: Counter[str] = Counter()
        rows_read = 0
        for stmt in statements:
            state = _Statement(
                source.name, context.account or _account(stmt), (stmt.value("CURDEF") or "USD").upper(),
                context, securities, warnings,
            )
            tranlist = next((c for c in stmt.children if c.tag == "INVTRANLIST"), None)
            for node in tranlist.children if tranlist else []:
                if node.tag in ("DTSTART", "DTEND"):
                    continue
                rows_read += 1
                if node.tag in self.IGNORED:
                    ignored[node.tag] += 1
                    continue
                try:
                    trades.extend(_transaction(node, state))
                except Problem as exc:
                    errors.append(RowError(source.name, node.line, str(exc)))
                except ValidationError as exc:  # a value the model refuses that the checks missed
                    message = exc.errors()[0].get("msg", "invalid value")
                    errors.append(RowError(source.name, node.line, f"<{node.tag}> {message}"))
            warnings.extend(_check_positions(stmt, state))
        return Extracted(
            trades=from_trades(trades), errors=errors, rows_read=rows_read, ignored=ignored, warnings=warnings,
        )


def _account(stmt: _Node) -> str:
    """``BROKERID ACCTID`` from INVACCTFROM (either alone when the other is missing)."""
    acct = next((c for c in stmt.children if c.tag == "INVACCTFROM"), None)
    parts = [acct.value("BROKERID") or "", acct.value("ACCTID") or ""] if acct else []
    return " ".join(p for p in parts if p) or "OFX"


def _securities(root: _Node) -> dict[str, _Security]:
    """SECLIST as UNIQUEID -> (ticker, asset class); a blank TICKER keeps the UNIQUEID."""
    out: dict[str, _Security] = {}
    seclist = root.find("SECLIST")
    for info in seclist.children if seclist else []:
        uid = info.value("UNIQUEID")
        if uid:
            ticker = (info.value("TICKER") or "").upper()
            out[uid] = _Security(ticker or uid, _CLASSES.get(info.tag, AssetClass.OTHER))
    return out


def _security(tx: _Txn, state: _Statement, default: AssetClass = AssetClass.EQUITY) -> tuple[str, str, AssetClass]:
    """(UNIQUEID, symbol, asset class) of the transaction's SECID."""
    secid = tx.node.find("SECID")
    uid = (secid.value("UNIQUEID") or "") if secid else ""
    if not uid:
        raise problem("UNIQUEID", uid, "is missing (expected the SECID of the security, such as a CUSIP)")
    known = state.securities.get(uid)
    if known is not None:
        return uid, known.symbol, known.asset_class
    if uid not in state.unknown:
        state.unknown.add(uid)
        kind = (secid.value("UNIQUEIDTYPE") if secid else None) or "UNIQUEID"
        state.warnings.append(
            f"{state.path}:{tx.node.line}: security {uid} ({kind}) is not in the file's SECLIST, so "
            "its id is used as the symbol"
        )
    return uid, uid.upper(), default


def _transaction(node: _Node, state: _Statement) -> list[Trade]:
    """The trades one transaction aggregate stands for. Raises Problem for a bad element."""
    tag = node.tag
    tx = _Txn(node)
    if tag in _UNSUPPORTED:
        raise Problem(f"<{tag}>: {_UNSUPPORTED[tag]} (add it as trades in the generic CSV)")
    if tag == "INVBANKTRAN":
        return _bank(tx, state)
    known = [*_BUYS, *_SELLS, "REINVEST", "INCOME", "INVEXPENSE", "MARGININTEREST", "TRANSFER", "SPLIT"]
    if tag not in known:
        raise Problem(
            f"<{tag}> is not an OFX investment transaction taxlens knows "
            f"(expected one of {', '.join([*known, 'INVBANKTRAN'])})"
        )
    ts, trade_date = tx.when("DTTRADE", state.context)
    base: dict[str, Any] = {
        "line": node.line, "account": state.account, "timestamp": ts, "trade_date": trade_date,
        "currency": _currency(tx, state), "broker_trade_id": tx.text("FITID") or None,
    }
    notes = [m] if (m := tx.memo()) else []

    def trade(action: Action, *extra: str | None, **fields: Any) -> Trade:
        note = "; ".join(n for n in (*extra, *notes) if n) or None
        return Trade(**base, action=action, note=note, **fields)

    if tag == "MARGININTEREST":
        total = abs(tx.number("TOTAL", _MONEY_HINT) or Decimal(0))
        return [trade(Action.FEE, "margin interest", symbol=base["currency"], asset_class=AssetClass.CASH,
                      amount=-total, fee=total)]
    uid, symbol, asset_class = _security(tx, state, _DEFAULT_CLASS.get(tag, AssetClass.EQUITY))
    sec: dict[str, Any] = {"symbol": symbol, "asset_class": asset_class}

    if tag in _BUYS or tag in _SELLS:
        buying = tag in _BUYS
        action = _direction(tx, (_BUYS if buying else _SELLS)[tag], buying)
        quantity = tx.units()
        price = abs(tx.number("UNITPRICE", "a price such as 242.21", exact=False) or Decimal(0))
        fee = sum((abs(tx.number(t, _MONEY_HINT, required=False) or Decimal(0)) for t in _FEE_TAGS), Decimal(0))
        cash = tx.number("TOTAL", _MONEY_HINT, required=False)
        withheld = Decimal(0) if buying else _withheld(tx)
        amount = None if cash is None else (-abs(cash) if buying else abs(cash) + withheld)
        state.moves[uid] += quantity if action in (Action.BUY, Action.BUY_TO_COVER) else -quantity
        out = [trade(action, **sec, quantity=quantity, price=price, fee=fee, amount=amount)]
        if withheld:
            out.append(trade(Action.WITHHOLDING, "tax withheld on the sale", **sec, amount=-withheld))
        return out
    if tag == "REINVEST":
        kind, label = _income_type(tx)
        quantity = tx.units()
        price = abs(tx.number("UNITPRICE", "a price such as 2.94", exact=False) or Decimal(0))
        total = abs(tx.number("TOTAL", _MONEY_HINT) or Decimal(0))
        fee = sum((abs(tx.number(t, _MONEY_HINT, required=False) or Decimal(0)) for t in _FEE_TAGS), Decimal(0))
        state.moves[uid] += quantity
        return [
            trade(kind, f"{label}, reinvested", **sec, amount=total),
            trade(Action.REINVEST, **sec, quantity=quantity, price=price, fee=fee, amount=-total),
        ]
    if tag == "INCOME":
        kind, label = _income_type(tx)
        total = tx.number("TOTAL", _MONEY_HINT) or Decimal(0)
        withheld = _withheld(tx)
        exempt = "tax-exempt" if tx.text("TAXEXEMPT").upper() == "Y" else None
        out = [trade(kind, label if kind is Action.DIVIDEND and label != "dividend" else None, exempt, **sec,
                     amount=total + withheld)]
        if withheld:
            out.append(trade(Action.WITHHOLDING, f"tax withheld on the {label}", **sec, amount=-withheld))
        return out
    if tag == "INVEXPENSE":
        total = abs(tx.number("TOTAL", _MONEY_HINT) or Decimal(0))
        if _TAX_MEMO.search(tx.text("MEMO")):
            return [trade(Action.WITHHOLDING, **sec, amount=-total)]
        return [trade(Action.FEE, **sec, amount=-total, fee=total)]
    if tag == "TRANSFER":
        return [_transfer(tx, state, uid, trade, sec)]
    return _split(tx, state, uid, trade, sec)


def _direction(tx: _Txn, type_tag: str | None, buying: bool) -> Action:
    value = tx.text(type_tag).upper() if type_tag else ""
    if buying:
        options = {"": Action.BUY, "BUY": Action.BUY, "BUYTOCOVER": Action.BUY_TO_COVER}
    else:
        options = {"": Action.SELL, "SELL": Action.SELL, "SELLSHORT": Action.SELL_SHORT}
    if value not in options:
        names = " or ".join(k for k in options if k)
        raise problem(type_tag or "", value, f"is not a {'buy' if buying else 'sell'} type (expected {names})")
    return options[value]


def _income_type(tx: _Txn) -> tuple[Action, str]:
    value = tx.text("INCOMETYPE").upper()
    if value not in _INCOME:
        what = "is not an income type" if value else "is missing"
        raise problem("INCOMETYPE", value, f"{what} (expected one of {', '.join(_INCOME)})")
    return _INCOME[value]


def _withheld(tx: _Txn) -> Decimal:
    """Federal and state tax withheld (positive); part of TOTAL but not a cost of the trade."""
    return sum(
        (abs(tx.number(t, _MONEY_HINT, required=False) or Decimal(0)) for t in ("WITHHOLDING", "STATEWITHHOLDING")),
        Decimal(0),
    )


def _currency(tx: _Txn, state: _Statement) -> str:
    """CURRENCY's CURSYM (the amounts are in it); with ORIGCURRENCY they were converted to CURDEF."""
    cur = next((c for c in tx.node.iter("CURRENCY")), None)
    symbol = (cur.value("CURSYM") or "").upper() if cur else ""
    if cur is not None and not re.fullmatch(r"[A-Z]{3}", symbol):
        raise problem("CURSYM", symbol, "is not a currency code (expected e.g. USD)")
    return symbol or state.currency


def _transfer(tx: _Txn, state: _Statement, uid: str, trade: _Make, sec: dict[str, Any]) -> Trade:
    way = tx.text("TFERACTION").upper()
    if way not in ("IN", "OUT"):
        raise problem("TFERACTION", way, f"{'is not IN or OUT' if way else 'is missing'} (expected IN or OUT)")
    if tx.text("POSTYPE").upper() == "SHORT":
        raise problem("POSTYPE", "SHORT", "is a short position: short positions are not supported")
    quantity = tx.units()
    price = tx.number("UNITPRICE", "a price such as 78.34", required=False, exact=False)
    basis = tx.number("AVGCOSTBASIS", _MONEY_HINT, required=False)
    purchased = None
    if tx.text("DTPURCHASE"):
        _, day = tx.when("DTPURCHASE", state.context)
        purchased = f"purchased {day.isoformat()}"
    cost = f"AVGCOSTBASIS {plain(basis)}" if basis is not None else "basis unknown"
    state.moves[uid] += quantity if way == "IN" else -quantity
    action = Action.TRANSFER_IN if way == "IN" else Action.TRANSFER_OUT
    return trade(action, cost if way == "IN" else None, purchased, **sec, quantity=quantity,
                 price=abs(price) if price is not None else None)


def _split(tx: _Txn, state: _Statement, uid: str, trade: _Make, sec: dict[str, Any]) -> list[Trade]:
    old = tx.number("OLDUNITS", "the number of shares before the split") or Decimal(0)
    new = tx.number("NEWUNITS", "the number of shares after the split") or Decimal(0)
    delta = abs(new) - abs(old)
    if delta == 0:
        raise problem("NEWUNITS", tx.text("NEWUNITS"), "equals OLDUNITS (expected a split that changes the shares)")
    num, den = tx.text("NUMERATOR"), tx.text("DENOMINATOR")
    ratio = f"split {num}:{den}" if num and den else "split"
    state.moves[uid] += delta
    action = Action.SPLIT_IN if delta > 0 else Action.SPLIT_OUT
    out = [trade(action, ratio, **sec, quantity=abs(delta))]
    cash = tx.number("FRACCASH", _MONEY_HINT, required=False)
    if cash:
        out.append(trade(Action.CASH_IN_LIEU, f"{ratio}: cash for fractional shares", **sec, amount=abs(cash)))
    return out


def _bank(tx: _Txn, state: _Statement) -> list[Trade]:
    """An INVBANKTRAN: cash in or out, interest, dividend or fee, read from its STMTTRN."""
    kind = tx.need("TRNTYPE", "a TRNTYPE such as CREDIT, DEBIT, INT or FEE").upper()
    ts, trade_date = tx.when("DTPOSTED", state.context)
    amount = tx.number("TRNAMT", _MONEY_HINT) or Decimal(0)
    currency = _currency(tx, state)
    words = [w for w in (" ".join(tx.text("NAME").split()), tx.memo()) if w]
    base: dict[str, Any] = {
        "line": tx.node.line, "account": state.account, "timestamp": ts, "trade_date": trade_date,
        "currency": currency, "symbol": currency, "asset_class": AssetClass.CASH,
        "broker_trade_id": tx.text("FITID") or None, "note": "; ".join(dict.fromkeys(words)) or None,
    }
    action = _BANK.get(kind) or (Action.WITHDRAWAL if amount < 0 else Action.DEPOSIT)
    if action is Action.FEE:
        return [Trade(**base, action=action, amount=-abs(amount), fee=abs(amount))]
    return [Trade(**base, action=action, amount=amount)]


def _check_positions(stmt: _Node, state: _Statement) -> list[str]:
    """Warnings where the file's share movements differ from INVPOSLIST, per security that moved."""
    poslist = next((c for c in stmt.children if c.tag == "INVPOSLIST"), None)
    if poslist is None:
        return []
    held: defaultdict[str, Decimal] = defaultdict(Decimal)
    lines: dict[str, int] = {}
    for pos in poslist.iter("INVPOS"):
        uid = pos.value("UNIQUEID") or ""
        units = _number(pos.value("UNITS") or "")
        if not uid or units is None or not units.is_finite():
            continue
        held[uid] += -abs(units) if (pos.value("POSTYPE") or "").upper() == "SHORT" else units
        lines.setdefault(uid, pos.line)
    out = []
    for uid, moved in state.moves.items():
        listed = held.get(uid, Decimal(0))
        if moved != listed:
            known = state.securities.get(uid)
            symbol = known.symbol if known else uid
            out.append(
                f"{state.path}:{lines.get(uid, poslist.line)}: positions in the file's transactions "
                f"({plain(moved)}) differ from its position list ({plain(listed)}) for {symbol} in "
                f"{state.account}: earlier history is missing or the file leaves out some transactions"
            )
    return out
