"""``coursemart load``, ``run`` and ``status`` from the command line."""

from __future__ import annotations

import sqlite3
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
    assert "try again when it has finished" in result.stderr
    assert cli("load", "-q", "--lake", str(lake_dir), "--warehouse", sqlite_url).exit_code == 0


def test_load_without_a_lake_says_to_generate(cli: Cli, tmp_path: Path, sqlite_url: str) -> None:
    result = cli("load", "--lake", str(tmp_path / "nowhere"), "--warehouse", sqlite_url)

    assert result.exit_code == 1
    assert "no lake at" in result.stderr and "run `coursemart generate` first" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "soon"], "Invalid value for '--since'"),
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

    result = cli("status", "--lake", str(lake_dir), "--warehouse", sqlite_url)

    assert result.exit_code == 0, result.stderr
    assert "warehouse not initialised" in result.stdout
    assert "pending:   1 version, 5 rows" in result.stdout
    assert f"  version 0  create table  batch {first.batch_id}  5 rows" in result.stdout


def test_status_masks_the_warehouse_password(cli: Cli, lake_dir: Path, postgres_url: str) -> None:
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
