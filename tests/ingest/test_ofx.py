"""OFX/QFX investment statement adapter: both syntaxes, every transaction type, dates, SECLIST,
the INVPOSLIST check, row and file errors, and damaged files."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taxlens.errors import FileError, TaxlensError
from taxlens.ingest import Context, Source, identify
from taxlens.ingest.base import Extracted
from taxlens.ingest.ofx import Ofx

SGML_HEADER = (
    "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\nCHARSET:1252\n"
    "COMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n"
)
XML_HEADER = '<?xml version="1.0" encoding="utf-8" ?><?OFX OFXHEADER="200" VERSION="202" SECURITY="NONE"?>'

SECLIST = (
    "<STOCKINFO><SECINFO><SECID><UNIQUEID>111111111</UNIQUEID><UNIQUEIDTYPE>CUSIP</UNIQUEIDTYPE></SECID>"
    "<SECNAME>ALPHA CORP</SECNAME><TICKER>ALPH</TICKER></SECINFO></STOCKINFO>"
    "<MFINFO><SECINFO><SECID><UNIQUEID>222222222</UNIQUEID><UNIQUEIDTYPE>CUSIP</UNIQUEIDTYPE></SECID>"
    "<SECNAME>BETA FUND</SECNAME><TICKER>BETAX</TICKER></SECINFO><MFTYPE>OPENEND</MFTYPE></MFINFO>"
)


def secid(uid: str = "111111111") -> str:
    return f"<SECID><UNIQUEID>{uid}</UNIQUEID><UNIQUEIDTYPE>CUSIP</UNIQUEIDTYPE></SECID>"


def invtran(fitid: str = "F1", when: str = "20250303", memo: str | None = None) -> str:
    memo_tag = f"<MEMO>{memo}</MEMO>" if memo else ""
    return f"<INVTRAN><FITID>{fitid}</FITID><DTTRADE>{when}</DTTRADE>{memo_tag}</INVTRAN>"


def to_sgml(xml: str) -> str:
    """The OFX 1.x form of an XML body: leaf end tags dropped, one tag per line."""
    sgml = re.sub(r"(<([A-Z][A-Z0-9.]*)>[^<]+)</\2>", r"\1", xml)
    return re.sub(r"><", ">\n<", sgml)


def document(txns: str, *, poslist: str | None = None, seclist: str = SECLIST, acct: str | None = None) -> str:
    """An XML OFX 2.x investment statement around ``txns``."""
    acct = acct if acct is not None else "<BROKERID>broker.example</BROKERID><ACCTID>12345</ACCTID>"
    pos = f"<INVPOSLIST>{poslist}</INVPOSLIST>" if poslist is not None else ""
    return (
        "<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>"
        "<DTSERVER>20250630</DTSERVER><LANGUAGE>ENG</LANGUAGE></SONRS></SIGNONMSGSRSV1>"
        "<INVSTMTMSGSRSV1><INVSTMTTRNRS><TRNUID>1</TRNUID><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>"
        f"<INVSTMTRS><DTASOF>20250630</DTASOF><CURDEF>USD</CURDEF><INVACCTFROM>{acct}</INVACCTFROM>"
        f"<INVTRANLIST><DTSTART>20250101</DTSTART><DTEND>20250630</DTEND>{txns}</INVTRANLIST>{pos}"
        "</INVSTMTRS></INVSTMTTRNRS></INVSTMTMSGSRSV1>"
        f"<SECLISTMSGSRSV1><SECLIST>{seclist}</SECLIST></SECLISTMSGSRSV1></OFX>"
    )


def render(body: str, syntax: str) -> str:
    return XML_HEADER + body if syntax == "xml" else SGML_HEADER + to_sgml(body) + "\n"


def extract(txns: str, syntax: str = "sgml", *, context: Context | None = None, **kw: str | None) -> Extracted:
    text = render(document(txns, **kw), syntax)  # type: ignore[arg-type]
    return Ofx().extract(Source.from_bytes("s.ofx", text.encode()), context or Context())


def rows(extracted: Extracted) -> list[dict[str, object]]:
    assert [str(e) for e in extracted.errors] == []
    return list(extracted.trades.iter_rows(named=True))


SYNTAXES = pytest.mark.parametrize("syntax", ["sgml", "xml"])


def buy(kind: str = "BUYSTOCK", buytype: str | None = "BUY", uid: str = "111111111", units: str = "10",
        price: str = "25.5", total: str = "-256.00", extra: str = "<COMMISSION>0.75</COMMISSION><FEES>0.25</FEES>",
        when: str = "20250303") -> str:
    bt = f"<BUYTYPE>{buytype}</BUYTYPE>" if buytype else ""
    return (
        f"<{kind}><INVBUY>{invtran(when=when)}{secid(uid)}<UNITS>{units}</UNITS><UNITPRICE>{price}</UNITPRICE>"
        f"{extra}<TOTAL>{total}</TOTAL><SUBACCTSEC>CASH</SUBACCTSEC><SUBACCTFUND>CASH</SUBACCTFUND></INVBUY>{bt}</{kind}>"
    )


def sell(kind: str = "SELLSTOCK", selltype: str | None = "SELL", uid: str = "111111111", units: str = "-4",
         total: str = "+119.00", extra: str = "<COMMISSION>1.00</COMMISSION>") -> str:
    st_ = f"<SELLTYPE>{selltype}</SELLTYPE>" if selltype else ""
    return (
        f"<{kind}><INVSELL>{invtran()}{secid(uid)}<UNITS>{units}</UNITS><UNITPRICE>30</UNITPRICE>{extra}"
        f"<TOTAL>{total}</TOTAL><SUBACCTSEC>CASH</SUBACCTSEC><SUBACCTFUND>CASH</SUBACCTFUND></INVSELL>{st_}</{kind}>"
    )


# -- identify ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [SGML_HEADER + "<OFX>\n", XML_HEADER + "<OFX></OFX>", '<?OFX OFXHEADER="200"?>\n<OFX>', "\n<OFX>\n<SIGNONMSGSRSV1>"],
    ids=["sgml", "xml", "xml-no-prolog", "bare"],
)
def test_identify_true(text: str) -> None:
    source = Source.from_bytes("s.ofx", text.encode())
    assert Ofx().identify(source)
    assert identify(source).NAME == "ofx"


@pytest.mark.parametrize(
    "text",
    [
        "date,account,symbol,side,quantity,price\n2025-01-02,A,VTI,buy,1,2\n",
        '<?xml version="1.0"?>\n<FlexQueryResponse queryName="q"><FlexStatements/></FlexQueryResponse>',
        "Some text mentioning <OFX> later\n",
    ],
    ids=["csv", "flex-xml", "later-mention"],
)
def test_identify_false(text: str) -> None:
    assert not Ofx().identify(Source.from_bytes("s.csv", text.encode()))


# -- transactions ----------------------------------------------------------------------------


@SYNTAXES
def test_buystock_sums_fees_and_keeps_total_as_cash(syntax: str) -> None:
    (row,) = rows(extract(buy(), syntax))
    assert (row["account"], row["symbol"], row["asset_class"], row["action"]) == ("broker.example 12345", "ALPH", "equity", "buy")
    assert (row["quantity"], row["price"], row["fee"], row["amount"]) == (
        Decimal(10), Decimal("25.5"), Decimal(1), Decimal(-256),
    )
    assert row["broker_trade_id"] == "F1" and row["trade_date"] == dt.date(2025, 3, 3) and row["ts"] is None


@SYNTAXES
def test_buy_types_and_zero_padded_numbers(syntax: str) -> None:
    out = rows(extract(
        buy(buytype="BUYTOCOVER   ", units="+0000000000005.00000", total="-00000000000127.5000", extra="")
        + buy("BUYMF", uid="222222222") + buy("BUYOTHER", buytype=None), syntax,
    ))
    assert [(r["action"], r["asset_class"]) for r in out] == [("buy_to_cover", "equity"), ("buy", "fund"), ("buy", "equity")]
    assert (out[0]["quantity"], out[0]["amount"]) == (Decimal(5), Decimal("-127.5"))


@SYNTAXES
def test_sells_take_direction_from_the_element_not_the_sign(syntax: str) -> None:
    out = rows(extract(
        sell() + sell(units="4") + sell("SELLSTOCK", "SELLSHORT") + sell("SELLMF", uid="222222222")
        + sell("SELLOTHER", None), syntax,
    ))
    assert [r["action"] for r in out] == ["sell", "sell", "sell_short", "sell", "sell"]
    assert {(r["quantity"], r["amount"], r["fee"]) for r in out} == {(Decimal(4), Decimal(119), Decimal(1))}


@SYNTAXES
def test_withholding_on_a_sale_is_split_out_and_proceeds_stay_gross(syntax: str) -> None:
    sale, tax = rows(extract(sell(total="95.20", extra="<COMMISSION>1</COMMISSION><WITHHOLDING>23.80</WITHHOLDING>"), syntax))
    assert (sale["action"], sale["amount"]) == ("sell", Decimal(119))
    assert (tax["action"], tax["amount"], tax["symbol"]) == ("withholding", Decimal("-23.8"), "ALPH")


@SYNTAXES
def test_reinvest_is_income_plus_a_purchase(syntax: str) -> None:
    txn = (
        f"<REINVEST>{invtran('R1', '20180621160000.000[-5:EST]')}{secid('222222222')}<INCOMETYPE>DIV</INCOMETYPE>"
        "<TOTAL>-93.20976</TOTAL><SUBACCTSEC>CASH</SUBACCTSEC><UNITS>31.704</UNITS><UNITPRICE>2.94</UNITPRICE></REINVEST>"
    )
    income, purchase = rows(extract(txn, syntax))
    assert (income["action"], income["amount"], income["symbol"]) == ("dividend", Decimal("93.20976"), "BETAX")
    assert (purchase["action"], purchase["quantity"], purchase["price"], purchase["amount"]) == (
        "reinvest", Decimal("31.704"), Decimal("2.94"), Decimal("-93.20976"),
    )
    assert purchase["ts"] == dt.datetime(2018, 6, 21, 21, tzinfo=dt.UTC)
    assert purchase["trade_date"] == dt.date(2018, 6, 21)


@SYNTAXES
@pytest.mark.parametrize(
    ("incometype", "action", "note"),
    [("DIV", "dividend", None), ("INTEREST", "interest", None),
     ("CGLONG", "dividend", "long-term capital gain distribution"),
     ("CGSHORT", "dividend", "short-term capital gain distribution")],
)
def test_income_types(syntax: str, incometype: str, action: str, note: str | None) -> None:
    txn = (f"<INCOME>{invtran()}{secid()}<INCOMETYPE>{incometype}</INCOMETYPE><TOTAL>12.40</TOTAL>"
           "<SUBACCTSEC>CASH</SUBACCTSEC><SUBACCTFUND>CASH</SUBACCTFUND></INCOME>")
    (row,) = rows(extract(txn, syntax))
    assert (row["action"], row["amount"], row["quantity"], row["note"]) == (action, Decimal("12.4"), Decimal(0), note)


@SYNTAXES
def test_invexpense_is_a_fee_or_foreign_tax_by_memo(syntax: str) -> None:
    fee = f"<INVEXPENSE>{invtran(memo='ADR FEE')}{secid()}<TOTAL>0.30</TOTAL></INVEXPENSE>"
    tax = f"<INVEXPENSE>{invtran(memo='DIV - ALPHA Foreign Stk W/HLTD')}{secid()}<TOTAL>-21.89</TOTAL></INVEXPENSE>"
    a, b = rows(extract(fee + tax, syntax))
    assert (a["action"], a["amount"], a["fee"]) == ("fee", Decimal("-0.3"), Decimal("0.3"))
    assert (b["action"], b["amount"], b["fee"]) == ("withholding", Decimal("-21.89"), Decimal(0))


@SYNTAXES
def test_transfers_in_and_out(syntax: str) -> None:
    def transfer(way: str, units: str, extra: str = "") -> str:
        return (f"<TRANSFER>{invtran()}{secid('222222222')}<SUBACCTSEC>CASH</SUBACCTSEC><UNITS>{units}</UNITS>"
                f"<TFERACTION>{way}</TFERACTION><POSTYPE>LONG</POSTYPE>{extra}</TRANSFER>")

    a, b, c = rows(extract(
        transfer("IN", "223.828") + transfer("OUT", "-5")
        + transfer("IN", "1", "<AVGCOSTBASIS>50.5</AVGCOSTBASIS><DTPURCHASE>20190315</DTPURCHASE>"), syntax,
    ))
    assert (a["action"], a["quantity"], a["note"], a["amount"]) == ("transfer_in", Decimal("223.828"), "basis unknown", None)
    assert (b["action"], b["quantity"]) == ("transfer_out", Decimal(5))
    assert c["note"] == "AVGCOSTBASIS 50.5; purchased 2019-03-15"


@SYNTAXES
def test_splits_give_the_share_delta_and_cash_in_lieu(syntax: str) -> None:
    def split(old: str, new: str, extra: str = "") -> str:
        return (f"<SPLIT>{invtran()}{secid()}<SUBACCTSEC>CASH</SUBACCTSEC><OLDUNITS>{old}</OLDUNITS>"
                f"<NEWUNITS>{new}</NEWUNITS><NUMERATOR>2</NUMERATOR><DENOMINATOR>1</DENOMINATOR>{extra}</SPLIT>")

    forward, reverse, cash = rows(extract(split("10", "20") + split("100", "25.5", "<FRACCASH>3.20</FRACCASH>"), syntax))
    assert (forward["action"], forward["quantity"], forward["note"]) == ("split_in", Decimal(10), "split 2:1")
    assert (reverse["action"], reverse["quantity"]) == ("split_out", Decimal("74.5"))
    assert (cash["action"], cash["amount"]) == ("cash_in_lieu", Decimal("3.2"))


@SYNTAXES
def test_bank_transactions(syntax: str) -> None:
    def bank(kind: str, amount: str) -> str:
        return (f"<INVBANKTRAN><STMTTRN><TRNTYPE>{kind}</TRNTYPE><DTPOSTED>20250102</DTPOSTED><TRNAMT>{amount}</TRNAMT>"
                f"<FITID>B{kind}</FITID><NAME>ACH &amp; CO</NAME></STMTTRN><SUBACCTFUND>CASH</SUBACCTFUND></INVBANKTRAN>")

    out = rows(extract(bank("CREDIT", "5000") + bank("DEBIT", "-250.00") + bank("INT", "0.42") + bank("SRVCHG", "-5"), syntax))
    assert [(r["action"], r["amount"], r["symbol"], r["asset_class"]) for r in out] == [
        ("deposit", Decimal(5000), "USD", "cash"), ("withdrawal", Decimal(-250), "USD", "cash"),
        ("interest", Decimal("0.42"), "USD", "cash"), ("fee", Decimal(-5), "USD", "cash"),
    ]
    assert out[0]["note"] == "ACH & CO"


def test_journals_are_ignored_and_counted() -> None:
    out = extract(f"<JRNLFUND>{invtran()}<SUBACCTTO>MARGIN</SUBACCTTO><SUBACCTFROM>CASH</SUBACCTFROM>"
                  "<TOTAL>100</TOTAL></JRNLFUND>" + buy())
    assert out.rows_read == 2 and out.ignored == {"JRNLFUND": 1} and out.trades.height == 1


# -- dates, accounts, securities ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "ts", "day"),
    [
        ("20250303", None, dt.date(2025, 3, 3)),
        ("20250303000000.000[-5:EST]", None, dt.date(2025, 3, 3)),  # midnight = no time: no shift
        ("20250303000000", None, dt.date(2025, 3, 3)),
        ("20230714170000.000", dt.datetime(2023, 7, 14, 17, tzinfo=dt.UTC), dt.date(2023, 7, 14)),  # GMT
        ("20250303010000.000", dt.datetime(2025, 3, 3, 1, tzinfo=dt.UTC), dt.date(2025, 3, 2)),  # 20:00 in New York
        ("20250227233000.000[-8:PST]", dt.datetime(2025, 2, 28, 7, 30, tzinfo=dt.UTC), dt.date(2025, 2, 28)),
        ("20250303120000[+5.5:IST]", dt.datetime(2025, 3, 3, 6, 30, tzinfo=dt.UTC), dt.date(2025, 3, 3)),
        ("202503031530", dt.datetime(2025, 3, 3, 15, 30, tzinfo=dt.UTC), dt.date(2025, 3, 3)),
    ],
)
def test_dates(when: str, ts: dt.datetime | None, day: dt.date) -> None:
    (row,) = rows(extract(buy(when=when)))
    assert (row["ts"], row["trade_date"]) == (ts, day)


def test_tax_date_is_in_the_taxpayers_zone() -> None:
    context = Context(timezone=ZoneInfo("America/Los_Angeles"))
    (row,) = rows(extract(buy(when="20250227233000.000[-8:PST]"), context=context))
    assert row["trade_date"] == dt.date(2025, 2, 27)


def test_account_names() -> None:
    assert rows(extract(buy(), acct="<ACCTID>999</ACCTID>"))[0]["account"] == "999"
    assert rows(extract(buy(), acct=""))[0]["account"] == "OFX"
    assert rows(extract(buy(), context=Context(account="Roth")))[0]["account"] == "Roth"


def test_security_missing_from_seclist_keeps_its_id_with_a_warning() -> None:
    out = extract(buy(uid="999999999") + buy(uid="999999999"))
    assert [r["symbol"] for r in rows(out)] == ["999999999", "999999999"]
    assert len(out.warnings) == 1 and "security 999999999 (CUSIP) is not in the file's SECLIST" in out.warnings[0]


def test_decimal_comma_and_empty_sgml_leaf() -> None:
    text = render(document(buy(price="25,5", total="-255,00", extra="")), "sgml").replace(
        "<DTTRADE>20250303", "<DTTRADE>20250303\n<MEMO>"
    )
    out = Ofx().extract(Source.from_bytes("s.ofx", text.encode()), Context())
    (row,) = rows(out)
    assert (row["price"], row["amount"], row["note"]) == (Decimal("25.5"), Decimal(-255), None)


def test_several_statements_in_one_file() -> None:
    body = document(buy())
    second = re.search(r"<INVSTMTTRNRS>.*</INVSTMTTRNRS>", body)
    assert second
    body = body.replace("</INVSTMTMSGSRSV1>", second.group(0).replace("12345", "67890") + "</INVSTMTMSGSRSV1>")
    out = Ofx().extract(Source.from_bytes("s.ofx", (XML_HEADER + body).encode()), Context())
    assert [r["account"] for r in rows(out)] == ["broker.example 12345", "broker.example 67890"]


# -- positions -------------------------------------------------------------------------------


def position(units: str, uid: str = "111111111", kind: str = "POSSTOCK") -> str:
    return (f"<{kind}><INVPOS>{secid(uid)}<HELDINACCT>CASH</HELDINACCT><POSTYPE>LONG</POSTYPE>"
            f"<UNITS>{units}</UNITS><UNITPRICE>1</UNITPRICE><MKTVAL>1</MKTVAL></INVPOS></{kind}>")


@SYNTAXES
def test_positions_that_differ_from_the_transactions_give_a_warning(syntax: str) -> None:
    out = extract(buy() + sell() + buy(uid="222222222", units="3"), syntax,
                  poslist=position("55.55") + position("3", "222222222", "POSMF"))
    (warning,) = out.warnings
    assert re.fullmatch(
        r"s\.ofx:\d+: positions in the file's transactions \(6\) differ from its position list \(55\.55\) for "
        r"ALPH in broker\.example 12345: earlier history is missing or the file leaves out some transactions",
        warning,
    )


def test_positions_that_agree_or_are_absent_give_no_warning() -> None:
    assert extract(buy() + sell(), poslist=position("6.000")).warnings == []
    assert extract(buy() + sell()).warnings == []  # no INVPOSLIST: nothing to check
    sold_out = extract(buy(units="4") + sell(), poslist="")
    assert sold_out.warnings == []


def test_a_position_sold_out_of_the_list_is_compared_with_zero() -> None:
    (warning,) = extract(buy(), poslist=position("1", "222222222", "POSMF")).warnings
    assert "transactions (10) differ from its position list (0) for ALPH" in warning


# -- errors ------------------------------------------------------------------------------------


def line_of(text: str, needle: str, nth: int = 0) -> int:
    at = [m.start() for m in re.finditer(re.escape(needle), text)][nth]
    return text.count("\n", 0, at) + 1


def test_bad_rows_give_file_line_errors_at_the_opening_tag() -> None:
    txns = (
        buy(units="ten") + buy(when="20250230") + buy(uid="") + sell(selltype="SOLD")
        + f"<INCOME>{invtran()}{secid()}<INCOMETYPE>BONUS</INCOMETYPE><TOTAL>1</TOTAL></INCOME>"
        + f"<BUYOPT><INVBUY>{invtran()}{secid()}<UNITS>1</UNITS></INVBUY></BUYOPT>"
        + f"<CLOSURE>{invtran()}</CLOSURE>" + buy(units="0") + buy(total="1e5") + buy()
    )
    text = render(document(txns), "sgml")
    out = Ofx().extract(Source.from_bytes("s.ofx", text.encode()), Context())
    assert out.rows_read == 10 and out.trades.height == 1
    lines = [line_of(text, "<BUYSTOCK>", 0), line_of(text, "<BUYSTOCK>", 1), line_of(text, "<BUYSTOCK>", 2),
             line_of(text, "<SELLSTOCK>"), line_of(text, "<INCOME>"), line_of(text, "<BUYOPT>"),
             line_of(text, "<CLOSURE>"), line_of(text, "<BUYSTOCK>", 3), line_of(text, "<BUYSTOCK>", 4)]
    assert [e.line for e in out.errors] == lines
    assert [str(e).split(": ", 1)[1] for e in out.errors] == [
        "UNITS 'ten' is not a number (expected a number of shares such as 10 or 0.76817)",
        "DTTRADE '20250230' is not a date (expected a date such as 20230714 or 20230714170000.000[-5:EST])",
        "UNIQUEID '' is missing (expected the SECID of the security, such as a CUSIP)",
        "SELLTYPE 'SOLD' is not a sell type (expected SELL or SELLSHORT)",
        "INCOMETYPE 'BONUS' is not an income type (expected one of DIV, INTEREST, CGLONG, CGSHORT, MISC)",
        "<BUYOPT>: options are not supported yet (add it as trades in the generic CSV)",
        "<CLOSURE> is not an OFX investment transaction taxlens knows (expected one of BUYSTOCK, BUYMF, BUYOTHER, "
        "SELLSTOCK, SELLMF, SELLOTHER, REINVEST, INCOME, INVEXPENSE, MARGININTEREST, TRANSFER, SPLIT, INVBANKTRAN)",
        "UNITS '0' is zero (expected a number of shares such as 10 or 0.76817)",
        "TOTAL '1e5' is not a number (expected an amount such as -1344.27)",
    ]
    assert all(str(e).startswith(f"s.ofx:{e.line}: ") for e in out.errors)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("OFXHEADER:100\n\nno body\n", r"s\.ofx: has no <OFX> element"),
        (SGML_HEADER + "<OFX>\n<SIGNONMSGSRSV1>\n<SONRS>\n<STATUS>\n<CODE>0\n</STATUS>\n", r"ends inside <SONRS> \(opened on line 13\): it is truncated"),
        (SGML_HEADER + "<OFX>\n<INVSTMTMSGSRSV1>\n<INVSTMTRS>\n<DTASOF>2025", r"ends inside the value of <DTASOF>"),
        (SGML_HEADER + "<OFX>\n</INVTRANLIST>\n</OFX>\n", r"s\.ofx:12: </INVTRANLIST> closes no open element"),
        (SGML_HEADER + "<OFX>\n<A B=1>\n</OFX>\n", r"s\.ofx:12: unreadable tag <A B=1>"),
        (SGML_HEADER + "<OFX>\n</SONRS>junk\n</OFX>\n", r"closes no open element"),
        (SGML_HEADER + "<OFX>\n<A>\n</A>stray\n</OFX>\n", r"s\.ofx:13: unexpected text 'stray' between tags"),
        (SGML_HEADER + "<OFX><BANKMSGSRSV1><STMTRS><CURDEF>USD</STMTRS></BANKMSGSRSV1></OFX>", r"bank or credit-card"),
        (SGML_HEADER + "<OFX><SIGNONMSGSRSV1></SIGNONMSGSRSV1></OFX>", r"has no investment statement"),
    ],
    ids=["no-ofx", "truncated", "truncated-value", "stray-end", "bad-tag", "stray-end-2", "stray-text", "bank", "empty"],
)
def test_file_errors(text: str, message: str) -> None:
    with pytest.raises(FileError, match=message):
        Ofx().extract(Source.from_bytes("s.ofx", text.encode()), Context())


# -- damaged files -----------------------------------------------------------------------------

FUZZ_BODY = document(
    buy() + sell(total="95", extra="<WITHHOLDING>24</WITHHOLDING>")
    + f"<REINVEST>{invtran()}{secid('222222222')}<INCOMETYPE>DIV</INCOMETYPE><TOTAL>-9</TOTAL><UNITS>1</UNITS>"
    "<UNITPRICE>9</UNITPRICE></REINVEST>"
    + f"<SPLIT>{invtran()}{secid()}<OLDUNITS>6</OLDUNITS><NEWUNITS>12</NEWUNITS><FRACCASH>1</FRACCASH></SPLIT>"
    + f"<TRANSFER>{invtran()}{secid()}<UNITS>2</UNITS><TFERACTION>OUT</TFERACTION></TRANSFER>"
    + "<INVBANKTRAN><STMTTRN><TRNTYPE>CREDIT</TRNTYPE><DTPOSTED>20250102</DTPOSTED><TRNAMT>5</TRNAMT>"
    "</STMTTRN></INVBANKTRAN>",
    poslist=position("10"),
)
FUZZ_TEXTS = {"sgml": render(FUZZ_BODY, "sgml"), "xml": render(FUZZ_BODY, "xml")}


@given(
    syntax=st.sampled_from(["sgml", "xml"]),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["drop-tag", "drop-text", "truncate", "swap-tags", "insert"]),
            st.floats(0, 1), st.sampled_from(["<", ">", "</OFX>", "<UNITS>", "</INVTRAN>", "-", "[", "\n", "&"]),
        ),
        min_size=1, max_size=4,
    ),
)
def test_damaged_statements_fail_cleanly(syntax: str, edits: list[tuple[str, float, str]]) -> None:
    text = FUZZ_TEXTS[syntax]
    for how, where, junk in edits:
        tags = list(re.finditer(r"<[^<>]*>", text))
        if not tags:
            break
        tag = tags[int(where * (len(tags) - 1))]
        if how == "drop-tag":
            text = text[:tag.start()] + text[tag.end():]
        elif how == "drop-text":
            end = text.find("<", tag.end())
            text = text[:tag.end()] + text[end if end >= 0 else len(text):]
        elif how == "truncate":
            text = text[:int(where * len(text))]
        elif how == "swap-tags":
            other = tags[min(tags.index(tag) + 1, len(tags) - 1)]
            text = text[:tag.start()] + other.group(0) + text[tag.end():other.start()] + tag.group(0) + text[other.end():]
        else:
            text = text[:tag.end()] + junk + text[tag.end():]
    try:
        out = Ofx().extract(Source.from_bytes("x", text.encode()), Context())
    except TaxlensError:
        return
    assert out.rows_read >= out.trades.height // 2
    assert all(str(e).startswith("x:") for e in out.errors)
