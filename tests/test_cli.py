"""The command line: exit codes, exact messages, formats, help on every command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from taxlens.cli import cli
from tests.conftest import write

HEADER = "date,account,symbol,side,quantity,price,fee\n"
ROWS = "2025-01-02,Alpaca,VTI,buy,10,250.50,0.35\n2025-01-15,Alpaca,VTI,sell,4,251,0\n"


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run taxlens in an empty working directory (so ./taxlens.duckdb is a fresh file)."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


def test_ingest_then_list(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "t.csv", HEADER + ROWS)
    result = run("ingest", "t.csv")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "t.csv (generic): 2 rows, 2 trades added"
    assert "Accounts not in taxlens.toml, treated as taxable: Alpaca" in result.output
    assert (tmp_path / "taxlens.duckdb").exists()

    listed = run("trades", "--format", "csv")
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0].startswith("id,trade_date,ts,account,account_type,owner,symbol,asset_class,action,quantity,price,fee")
    assert lines[1].split(",")[1:11] == ["2025-01-02", "", "Alpaca", "taxable", "self", "VTI", "equity", "buy", "10", "250.5"]

    as_json = json.loads(run("trades", "--format", "json", "--year", "2025", "--symbol", "VTI").output)
    assert [t["quantity"] for t in as_json] == ["10", "4"]  # exact decimals as strings

    again = run("ingest", "t.csv")
    assert again.exit_code == 0
    assert again.output.splitlines()[0] == "t.csv: already imported, nothing added"


def test_bad_rows_exit_1_and_name_every_row(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "bad.csv", HEADER + ROWS + "2025-01-20,Alpaca,VTI,buy,1O,1,0\n2025-01-21,Alpaca,VTI,hold,1,1,0\n")
    result = run("ingest", "bad.csv")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "bad.csv:4: quantity '1O' is not a number (expected a number such as 10 or 0.5)",
        "bad.csv:5: side 'hold' is not a known side (expected buy or sell)",
        "Error: 1 of 1 files not imported (2 bad rows; fix them or pass --skip-bad-rows)",
    ]
    skipped = run("ingest", "--skip-bad-rows", "bad.csv")
    assert skipped.exit_code == 1
    assert "bad.csv (generic): 4 rows, 2 trades added, 2 bad rows skipped" in skipped.output
    assert skipped.output.splitlines()[-1] == "Error: 2 bad rows skipped"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty.csv: file is empty"),
        (b"date,account,symbol,side,quantity,price\n2025-01-02,Caf\xe9,VTI,buy,1,1\n",
         "empty.csv:2: byte 0xe9 is not UTF-8 text (expected UTF-8; for a Latin-1 or Windows export pass --encoding cp1252)"),
        (b"hello,world\n1,2\n", "empty.csv: not a format taxlens recognises (known: "),
    ],
)
def test_unreadable_files_give_one_clear_line(run, tmp_path: Path, content: bytes, message: str) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "empty.csv", content)
    result = run("ingest", "empty.csv")
    assert result.exit_code == 1
    assert result.output.startswith(message)
    assert result.output.splitlines()[-1] == "Error: 1 of 1 files not imported"


def test_latin1_reads_with_its_encoding(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "l1.csv", "date,account,symbol,side,quantity,price\n2025-01-02,Café,VTI,buy,1,1\n".encode("latin-1"))
    assert run("ingest", "--encoding", "latin-1", "l1.csv").exit_code == 0
    assert "Café" in run("accounts").output


def test_a_forced_format_that_does_not_fit_says_what_is_missing(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "t.csv", HEADER + ROWS)
    result = run("ingest", "--format", "schwab", "t.csv")
    assert result.exit_code == 1
    assert result.output.startswith("t.csv")
    assert "Error: 1 of 1 files not imported" in result.output
    unknown = run("ingest", "--format", "nope", "t.csv")
    assert unknown.exit_code == 2
    assert "Invalid value for '--format': 'nope' is not one of 'generic'," in unknown.output


def test_db_option_and_environment(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "t.csv", HEADER + ROWS)
    assert run("--db", "a.duckdb", "ingest", "-q", "t.csv").output == ""
    assert (tmp_path / "a.duckdb").exists()
    assert run("ingest", "-q", "t.csv", env={"TAXLENS_DB": str(tmp_path / "b.duckdb")}).exit_code == 0
    assert (tmp_path / "b.duckdb").exists() and not (tmp_path / "taxlens.duckdb").exists()


def test_reading_commands_before_any_ingest(run) -> None:  # type: ignore[no-untyped-def]
    result = run("trades")
    assert result.exit_code == 1
    assert result.output == "Error: taxlens.duckdb: no taxlens database here yet (run `taxlens ingest`)\n"


def test_accounts_lists_configured_and_unconfigured(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "taxlens.toml", '[accounts."Roth"]\ntype = "roth_ira"\nowner = "sam"\n')
    write(tmp_path, "t.csv", HEADER + ROWS)
    run("ingest", "t.csv")
    out = run("accounts", "--format", "csv").output.splitlines()
    assert out == [
        "account,type,owner,configured,adapter,trades,first_date,last_date",
        "Alpaca,taxable,self,no,generic,2,2025-01-02,2025-01-15",
        "Roth,roth_ira,sam,yes,,0,,",
    ]


def test_a_bad_config_is_a_clear_error(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "taxlens.toml", '[accounts."Roth"]\ntype = "roth"\n')
    result = run("accounts")
    assert result.exit_code == 1
    assert result.output.startswith("Error: taxlens.toml:2: accounts.Roth.type: Input should be")


def test_formats_lists_every_adapter(run) -> None:  # type: ignore[no-untyped-def]
    from taxlens.ingest import ADAPTERS

    out = run("formats", "--format", "csv").output
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == list(ADAPTERS)


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help(run, name: str) -> None:  # type: ignore[no-untyped-def]
    result = run(name, "--help")
    assert result.exit_code == 0
    assert cli.commands[name].help
    assert "Usage: cli " in result.output or "Usage: taxlens " in result.output


def test_formats_name_lists_every_action_and_why_ignored(run) -> None:  # type: ignore[no-untyped-def]
    from taxlens.ingest import ADAPTERS

    out = run("formats", "schwab", "--format", "csv").output.splitlines()
    assert out[0] == "source action,taxlens action,note"
    adapter = ADAPTERS["schwab"]
    assert len(out) - 1 == len(adapter.ACTIONS) + len(adapter.IGNORED)
    assert "Buy,buy," in out
    table = run("formats", "alpaca").output
    assert table.startswith("alpaca: Alpaca account activities")


def test_duckdb_never_writes_a_progress_bar_into_our_output(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """DuckDB prints a progress bar to stdout on queries over ~2 s; CSV output must stay CSV."""
    from taxlens.store import Store

    with Store(tmp_path / "p.duckdb") as store:
        assert store.con.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]


@pytest.mark.parametrize("command", [["gains"], ["lots"], ["files"], ["wash"], ["report"], ["audit"]])  # audit without exports is a read
def test_reading_commands_never_create_a_database(run, tmp_path: Path, command: list[str]) -> None:  # type: ignore[no-untyped-def]
    result = run(*command)
    assert result.exit_code == 1
    assert result.output == "Error: taxlens.duckdb: no taxlens database here yet (run `taxlens ingest`)\n"
    assert not (tmp_path / "taxlens.duckdb").exists()


def test_accounts_before_any_ingest_lists_the_configured_ones(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "taxlens.toml", '[accounts."Roth"]\ntype = "roth_ira"\n')
    assert run("accounts", "--format", "csv").output.splitlines()[1] == "Roth,roth_ira,self,yes,,0,,"
    assert not (tmp_path / "taxlens.duckdb").exists()


def test_gains_says_what_of_its_totals_an_ira_sold(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`gains` lists every account's sales; its totals did too, with nothing to tell an IRA's
    sale (not taxed, not on Form 8949) from a taxable one. A second line now says."""
    write(tmp_path, "taxlens.toml", '[accounts."Roth"]\ntype = "roth_ira"\n')
    write(tmp_path, "t.csv", HEADER + ROWS + "2025-01-02,Roth,VTI,buy,5,250.00,0\n2025-02-03,Roth,VTI,sell,5,260.00,0\n")
    assert run("ingest", "-q", "t.csv").exit_code == 0
    result = run("gains", "--format", "csv")
    assert result.exit_code == 0
    # Alpaca: 4 × 251 − 4 × (2505.35 / 10) = 1004 − 1002.14 = 1.86. Roth: 1300 − 1250 = 50.
    assert result.stderr.splitlines()[-2:] == [
        "2 lot slices sold: proceeds 2304.00, basis 2252.14; short-term gains 51.86, losses 0.00; long-term gains 0.00, losses 0.00",
        "of which 1 in tax-advantaged accounts (not taxed, not on Form 8949): proceeds 1300.00, basis 1250.00, gain 50.00",
    ]
    # A taxable account alone has no such line.
    assert "tax-advantaged" not in run("gains", "--account", "Alpaca", "--format", "csv").stderr
