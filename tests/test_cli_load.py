"""``coursemart load``, ``run`` and ``status`` from the command line."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from coursemart.generate import generate
from coursemart.lake import open_lake
from tests.conftest import WINDOW, CliResult

Cli = Callable[..., CliResult]


def test_load_prints_a_one_line_summary_then_nothing_to_do(
    cli: Cli, lake_dir: Path, sqlite_url: str
) -> None:
    generate(str(lake_dir), courses=1_000, seed=1, window=WINDOW)

    first = cli("load", "--lake", str(lake_dir), "--warehouse", sqlite_url)
    second = cli("load", "--lake", str(lake_dir), "--warehouse", sqlite_url)

    assert first.exit_code == 0, first.stderr
    assert first.stdout.count("\n") == 1
    assert first.stdout.startswith("loaded 1 batch (version 0, load ")
    assert "1,000 rows read, 1,000 loaded, 0 rejected" in first.stdout
    assert second.stdout.startswith("nothing to do: every committed version is already loaded")


def test_load_reports_rejected_rows_and_where_they_are(
    cli: Cli, lake_dir: Path, sqlite_url: str
) -> None:
    generate(str(lake_dir), courses=100, seed=1, window=WINDOW)
    (lake_dir / "categories.csv").write_text('"category_id","category_name"\n1,"Technology"\n')

    result = cli("load", "--lake", str(lake_dir), "--warehouse", sqlite_url)

    assert result.exit_code == 0, result.stderr
    assert "rejected rows (unknown category_id: " in result.stdout
    assert f"{lake_dir}/_rejected/load_id=" in result.stdout


def test_run_generates_and_loads(cli: Cli, lake_dir: Path, sqlite_url: str) -> None:
    result = cli("run", "--courses", "500", "--lake", str(lake_dir), "--warehouse", sqlite_url)

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("generated batch ")
    assert lines[1].startswith("loaded 1 batch ")
    count = sqlite3.connect(sqlite_url.removeprefix("sqlite:///")).execute(
        "SELECT COUNT(*) FROM courses"
    )
    assert count.fetchone() == (500,)


def test_a_second_run_loads_without_generating_unless_courses_are_asked_for(
    cli: Cli, lake_dir: Path, sqlite_url: str
) -> None:
    lake, database = str(lake_dir), sqlite_url.removeprefix("sqlite:///")
    assert cli("run", "-n", "300", "--lake", lake, "--warehouse", sqlite_url).exit_code == 0

    again = cli("run", "--lake", lake, "--warehouse", sqlite_url)
    count_after_rerun = sqlite3.connect(database).execute("SELECT COUNT(*) FROM courses").fetchone()
    more = cli("run", "--courses", "200", "--lake", lake, "--warehouse", sqlite_url)
    count_after_more = sqlite3.connect(database).execute("SELECT COUNT(*) FROM courses").fetchone()

    assert again.exit_code == 0, again.stderr
    assert "already has courses: nothing generated" in again.stdout
    assert "nothing to do" in again.stdout
    assert count_after_rerun == (300,)
    assert more.exit_code == 0, more.stderr
    assert count_after_more == (500,)
    assert len(open_lake(lake).committed_batches()) == 2


def test_run_on_an_empty_lake_generates_the_default_catalog(
    cli: Cli, lake_dir: Path, sqlite_url: str
) -> None:
    result = cli("run", "--lake", str(lake_dir), "--warehouse", sqlite_url, "--quiet")

    assert result.exit_code == 0, result.stderr
    count = sqlite3.connect(sqlite_url.removeprefix("sqlite:///")).execute(
        "SELECT COUNT(*) FROM courses"
    )
    assert count.fetchone() == (100_000,)


def test_load_uses_the_configured_warehouse(
    cli: Cli, lake_dir: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    monkeypatch.setenv("COURSEMART_LAKE", str(lake_dir))
    monkeypatch.setenv("COURSEMART_WAREHOUSE", sqlite_url)

    assert cli("load", "-q").exit_code == 0
    assert Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_a_second_loader_that_cannot_get_the_lock_exits_clearly(
    cli: Cli, lake_dir: Path, sqlite_url: str
) -> None:
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)
    assert cli("load", "-q", "--lake", str(lake_dir), "--warehouse", sqlite_url).exit_code == 0
    generate(str(lake_dir), courses=10, seed=2, window=WINDOW)
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # what a running load holds
    try:
        result = cli("load", "--lake", str(lake_dir), "--warehouse", sqlite_url, "--wait", "0.2")
    finally:
        holder.execute("ROLLBACK")

    assert result.exit_code == 3
    assert result.stderr.startswith(
        "coursemart: error: another coursemart load is running on sqlite:///"
    )
    assert "try again when it has finished, or wait longer with --wait" in result.stderr
    assert cli("load", "-q", "--lake", str(lake_dir), "--warehouse", sqlite_url).exit_code == 0


@pytest.mark.parametrize("command", ["load", "status"])
def test_a_missing_lake_says_to_generate(
    cli: Cli, tmp_path: Path, sqlite_url: str, command: str
) -> None:
    nowhere = tmp_path / "nowhere"

    result = cli(command, "--lake", str(nowhere), "--warehouse", sqlite_url)

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"coursemart: error: no lake at '{nowhere}': run `coursemart generate` first, "
        "or fix --lake\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "soon"], "--since: 'soon' is not a date"),
        (["--wait", "-1"], "Invalid value for '--wait'"),
        (["--warehouse", "not a url"], "is not a SQLAlchemy URL"),
    ],
)
def test_bad_load_options_exit_2(cli: Cli, lake_dir: Path, args: list[str], message: str) -> None:
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)

    result = cli("load", "--lake", str(lake_dir), *args)

    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("written", ["2026-13-01", "2026-02-30", "1/31/2026", "2026-01-01T25:00"])
def test_a_date_that_is_not_one_says_how_to_write_one(
    cli: Cli, lake_dir: Path, sqlite_url: str, written: str
) -> None:
    result = cli("load", "--lake", str(lake_dir), "--warehouse", sqlite_url, "--since", written)

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"coursemart: error: --since: '{written}' is not a date; write it as YYYY-MM-DD "
        "(e.g. 2026-01-31), or with a time as 2026-01-31T09:00 (UTC) or 2026-01-31T09:00+02:00\n"
    )


@pytest.mark.parametrize(
    "written",
    ["2026-06-01", "2026-06-01T00:00:00", "2026-06-01T02:00:00+02:00", "2026-06-01T00:00Z"],
)
def test_since_takes_a_day_or_an_instant(
    cli: Cli, lake_dir: Path, sqlite_url: str, written: str
) -> None:
    from datetime import UTC, datetime

    import pyarrow.parquet as pq

    generate(str(lake_dir), courses=1_000, seed=1, window=WINDOW)
    starts = pq.read_table(next(lake_dir.glob("courses/*/part-*.parquet")))["start_date"]
    june = datetime(2026, 6, 1, tzinfo=UTC)
    kept = sum(1 for start in starts.to_pylist() if start >= june)

    result = cli("load", "--lake", str(lake_dir), "--warehouse", sqlite_url, "--since", written)

    assert result.exit_code == 0, result.stderr
    database = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    (count,) = database.execute("SELECT COUNT(*) FROM courses").fetchone()
    assert 0 < count == kept < 1_000


def test_status_shows_counts_pending_versions_and_loads(
    cli: Cli, lake_dir: Path, sqlite_url: str
) -> None:
    generate(str(lake_dir), courses=300, seed=1, window=WINDOW)
    cli("load", "-q", "--lake", str(lake_dir), "--warehouse", sqlite_url)
    waiting = generate(str(lake_dir), courses=7, seed=2, window=WINDOW)

    result = cli("status", "--lake", str(lake_dir), "--warehouse", sqlite_url)

    assert result.exit_code == 0, result.stderr
    assert (
        "rows:      categories 5, levels 3, courses 300, coursemart_batches 1, "
        "cancelled courses 0\n" in result.stdout
    )
    assert "pending:   1 version, 7 rows" in result.stdout
    assert f"  version 1  write  batch {waiting.batch_id}  7 rows" in result.stdout
    assert "loaded" in result.stdout.split("latest loads:")[1]


def test_status_before_any_load(cli: Cli, lake_dir: Path, sqlite_url: str) -> None:
    first = generate(str(lake_dir), courses=5, seed=1, window=WINDOW)
    database = Path(sqlite_url.removeprefix("sqlite:///"))

    result = cli("status", "--lake", str(lake_dir), "--warehouse", sqlite_url)

    assert result.exit_code == 0, result.stderr
    assert f"no warehouse file {database} yet: `coursemart load` creates it" in result.stdout
    assert "pending:   1 version, 5 rows" in result.stdout
    assert f"  version 0  create table  batch {first.batch_id}  5 rows" in result.stdout
    assert not database.exists()


def test_status_of_an_empty_warehouse(cli: Cli, lake_dir: Path, postgres_url: str) -> None:
    generate(str(lake_dir), courses=5, seed=1, window=WINDOW)

    result = cli("status", "--lake", str(lake_dir), "--warehouse", postgres_url)

    assert result.exit_code == 0, result.stderr
    assert "warehouse not initialised: `coursemart load` creates its tables" in result.stdout


def test_status_masks_the_warehouse_password(cli: Cli, lake_dir: Path, postgres_url: str) -> None:
    generate(str(lake_dir), courses=5, seed=1, window=WINDOW)
    secret_url = postgres_url.replace("postgres@", "postgres:hunter2@")

    result = cli("status", "--lake", str(lake_dir), "--warehouse", secret_url)

    assert result.exit_code == 0, result.stderr
    assert "postgres:***@127.0.0.1" in result.stdout
    assert "hunter2" not in result.stdout + result.stderr


def test_pending_rows_count_only_versions_not_yet_loaded(lake_dir: Path, sqlite_url: str) -> None:
    from coursemart.load import load
    from coursemart.status import pending_rows

    generate(str(lake_dir), courses=300, seed=1, window=WINDOW)
    assert pending_rows(str(lake_dir), sqlite_url) == 300
    load(str(lake_dir), sqlite_url)
    generate(str(lake_dir), courses=7, seed=2, window=WINDOW)

    assert pending_rows(str(lake_dir), sqlite_url) == 7


def on_a_terminal(*args: str) -> tuple[int, list[str]]:
    """``coursemart ARGS…`` in a process whose stderr is a terminal (a pseudo-terminal here);
    its exit code and the distinct lines the terminal showed, in order."""
    import pty

    main, terminal = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COURSEMART_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "coursemart", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
        env=environment | {"TERM": "xterm", "COLUMNS": "100"},
    )
    os.close(terminal)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the process ended: the terminal is closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    code = process.wait(timeout=60)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode(errors="replace"))
    lines: list[str] = []
    for line in (line.strip() for line in re.split(r"[\r\n]+", text)):
        if line and line not in lines:
            lines.append(line)
    return code, lines


def test_load_shows_the_merge_and_the_commit_as_phases_of_their_own(
    lake_dir: Path, sqlite_url: str
) -> None:
    generate(str(lake_dir), courses=100_000, seed=1, window=WINDOW)

    code, lines = on_a_terminal("load", "--lake", str(lake_dir), "--warehouse", sqlite_url)

    assert code == 0, lines
    read = next(i for i, line in enumerate(lines) if re.match(r"loading .* 100000/100000 ", line))
    merging = [i for i, line in enumerate(lines) if line.startswith("merging ")]
    committing = [i for i, line in enumerate(lines) if line.startswith("committing ")]
    assert merging and committing, lines
    assert read < merging[0] < committing[0]
    # a phase counts no rows and shows its own clock, which runs (a bar at its end stops its own)
    for i in merging + committing:
        assert re.fullmatch(r"(merging|committing) ━+ +\d:\d\d:\d\d", lines[i]), lines[i]
