"""Failures a careful user meets: a full disk, a database that refuses a row, a malformed URL,
secrets in URLs, a load killed after refusing rows. Each ends in one line and the right exit code,
with nothing half-written and the failure in the load history."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from coursemart import model
from coursemart.generate import generate
from coursemart.lake import open_lake
from coursemart.load import load
from coursemart.masking import mask_text
from tests.conftest import (
    AZURITE_KEY,
    WINDOW,
    CliResult,
    execute,
    new_warehouse,
    snapshot,
    unavailable,
)
from tests.test_load import course_count, load_command, query, run_load, write_raw_batch

Cli = Callable[..., CliResult]


def one_line_error(result: CliResult, code: int) -> str:
    """The single stderr line of a failed command (asserting there is exactly one)."""
    assert result.exit_code == code, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("coursemart: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# ---------------------------------------------------------------------------------------------
# A full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on an 8 MiB tmpfs that fills up quickly (needs root to mount)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        unavailable(f"cannot mount a small tmpfs to fill up: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_disk_that_fills_up_during_generate_leaves_no_committed_batch(
    cli: Cli, small_disk: Path
) -> None:
    lake = small_disk / "lake"
    assert cli("generate", "-n", "1000", "-q", "--lake", str(lake)).exit_code == 0
    (first,) = open_lake(str(lake)).committed_batches()

    result = cli("generate", "-n", "2000000", "--lake", str(lake))

    line = one_line_error(result, 1)
    assert "No space left on device" in line
    table = open_lake(str(lake))
    assert (table.latest_version(), table.committed_batches()) == (0, [first])
    assert table.uncommitted_batches() == []  # the second one's files are gone
    assert sorted(p.name for p in (lake / "courses").iterdir()) == [
        "_delta_log",
        f"batch_id={first}",
    ]


def test_a_disk_that_fills_up_during_a_sqlite_load_leaves_the_warehouse_as_it_was(
    cli: Cli, lake_dir: Path, small_disk: Path
) -> None:
    url = f"sqlite:///{small_disk / 'warehouse.db'}"
    generate(str(lake_dir), courses=1_000, seed=1, window=WINDOW)
    assert cli("load", "-q", "--lake", str(lake_dir), "--warehouse", url).exit_code == 0
    before = snapshot(url)
    generate(str(lake_dir), courses=200_000, seed=2, window=WINDOW)

    result = cli("load", "--lake", str(lake_dir), "--warehouse", url)

    assert "database or disk is full" in one_line_error(result, 1)
    after = snapshot(url)
    assert {k: v for k, v in after.items() if k != "coursemart_loads"} == {
        k: v for k, v in before.items() if k != "coursemart_loads"
    }
    assert (
        cli("load", "-q", "--lake", str(lake_dir), "--warehouse", url).exit_code == 1
    )  # still full


def test_a_disk_that_fills_up_while_writing_rejected_rows_leaves_no_partial_file(
    cli: Cli, small_disk: Path, sqlite_url: str
) -> None:
    lake = small_disk / "lake"
    generate(str(lake), courses=10, seed=1, window=WINDOW)
    count = 200_000
    refused = pa.table(  # rows with an unknown category, each refused with its own reason
        {
            "course_id": pa.array(range(1_000, 1_000 + count), pa.int64()),
            "course_name": pa.array([f"Course {i}" for i in range(count)]),
            "category_id": pa.array(range(100, 100 + count), pa.int32()),
            "level_id": pa.array([101] * count, pa.int32()),
            "start_date": pa.array([0] * count, pa.int64()).cast(model.TIMESTAMP),
        }
    )
    write_raw_batch(lake, refused)
    free = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"\0" * max(0, free.f_bavail * free.f_frsize - 100_000))

    result = cli("load", "--lake", str(lake), "--warehouse", sqlite_url)

    assert "No space left on device" in one_line_error(result, 1)
    assert not (lake / "_rejected").exists() or not any((lake / "_rejected").iterdir())
    assert snapshot(sqlite_url)["courses"] == []
    last = snapshot(sqlite_url)["coursemart_loads"][-1]
    assert last[3] == "failed" and "No space left on device" in str(last[9])


# ---------------------------------------------------------------------------------------------
# Every failure is recorded


def test_a_failure_the_database_raises_is_recorded_with_its_message(
    lake_dir: Path, postgres_url: str, cli: Cli
) -> None:
    generate(str(lake_dir), courses=100, seed=1, window=WINDOW)
    assert cli("load", "-q", "--lake", str(lake_dir), "--warehouse", postgres_url).exit_code == 0
    with_check = "ALTER TABLE courses ADD CONSTRAINT no_art CHECK (category_id <> 3) NOT VALID"
    execute(postgres_url, with_check)  # a rule a DBA added that coursemart does not know
    generate(str(lake_dir), courses=100, seed=2, window=WINDOW)

    result = cli("load", "--lake", str(lake_dir), "--warehouse", postgres_url)

    line = one_line_error(result, 1)
    assert 'violates check constraint "no_art"' in line
    last = snapshot(postgres_url)["coursemart_loads"][-1]
    assert last[3] == "failed"
    assert str(last[9]).startswith("warehouse: ") and "no_art" in str(last[9])
    assert "INSERT" not in str(last[9])  # the database's message, not the SQL


# ---------------------------------------------------------------------------------------------
# Malformed warehouse URLs, and secrets


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://app:pw@db:notaport/x", "is not a SQLAlchemy URL"),
        ("postgresql://[::1/x", "is not a SQLAlchemy URL"),
        ("not a url", "is not a SQLAlchemy URL"),
        ("oracle://app:pw@db/x", "not 'oracle'"),
        ("mysql://app:pw@db:99999/x", "port 99999 is not between 1 and 65535"),
        ("sqlite://", "names no file"),
        ("sqlite:///:memory:", "names no file"),
        ("mssql://app:pw@db/x", "pip install 'coursemart[mssql]'"),
        ("postgresql://app:pw@rd@db/x", "holds a raw '@': write it as %40"),
        ("mysql+pymysql://app:pw@db/x?charset=bogus", "no character set 'bogus'"),
    ],
)
def test_a_malformed_warehouse_url_is_one_line_and_exit_2(
    cli: Cli, lake_dir: Path, url: str, message: str
) -> None:
    generate(str(lake_dir), courses=10, seed=1, window=WINDOW)

    result = cli("load", "--lake", str(lake_dir), "--warehouse", url)

    line = one_line_error(result, 2)
    assert message in line
    assert ":pw@" not in line and "rd@db" not in line


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("s3://AKIAEXAMPLE:VerySecret@bucket/lake", "s3://AKIAEXAMPLE:***@bucket/lake"),
        (
            "cannot read abfs://c@acct.dfs.core.windows.net/x?sv=2024&sig=Zm9v%2Bbar&se=1 now",
            "cannot read abfs://c@acct.dfs.core.windows.net/x?sv=2024&sig=***&se=1 now",
        ),
        (  # the emulator's published development key, the same for every Azurite
            f"DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};x",
            "DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;AccountKey=***;x",
        ),
        ("token sig=abc&se=2030 expired", "token sig=***&se=2030 expired"),
        ("GET /api/x?code=KEY123 200", "GET /api/x?code=*** 200"),
        ("postgresql://app:p@ss/w@db/x failed", "postgresql://app:***@db/x failed"),
        ("nothing secret here", "nothing secret here"),
        (  # any parameter named for a secret
            "cannot open lake 'abfs://c/p?secret=S1&key=K1&sslpassword=P1&api_key=A1&n=2'",
            "cannot open lake 'abfs://c/p?secret=***&key=***&sslpassword=***&api_key=***&n=2'",
        ),
        ("client_secret=S2; refresh_token=T2 x=3", "client_secret=***; refresh_token=*** x=3"),
    ],
)
def test_secrets_are_masked_wherever_they_appear_in_a_message(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_credentials_in_a_lake_url_never_reach_output_or_the_load_history(
    cli: Cli, azurite: str, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    lakes = [
        "abfs://nosuchcontainer/lake?sig=TOPSECRET1&se=2030",
        "abfs://nosuchcontainer/lake?secret=TOPSECRET4&key=TOPSECRET5",
        "s3://AKIAEXAMPLE:TOPSECRET2@bucket/lake",
        "memory://app:TOPSECRET3@bucket/lake",
    ]
    outputs = [cli("load", "--lake", lake, "--warehouse", sqlite_url) for lake in lakes]
    outputs.append(cli("status", "--lake", lakes[0], "--warehouse", sqlite_url))

    for result in outputs:
        assert "TOPSECRET" not in result.stdout + result.stderr, result
        assert "Traceback" not in result.stderr
    assert all(result.exit_code in (0, 1, 2) for result in outputs)
    database = Path(sqlite_url.removeprefix("sqlite:///"))
    tables = snapshot(sqlite_url) if database.exists() else {}
    assert all("TOPSECRET" not in str(row) for row in tables.get("coursemart_loads", []))


# ---------------------------------------------------------------------------------------------
# Rejected rows appear with their load's commit


def bad_batch(lake_dir: Path) -> None:
    generate(str(lake_dir), courses=1_000, seed=1, window=WINDOW)
    rows = pa.table(
        {
            "course_id": pa.array([5_000, 5_001], pa.int64()),
            "course_name": ["Ceramics", "Ceramics"],
            "category_id": pa.array([99, 1], pa.int32()),
            "level_id": pa.array([101, 101], pa.int32()),
            "start_date": pa.array([0, 0], pa.int64()).cast(model.TIMESTAMP),
        }
    )
    write_raw_batch(lake_dir, rows)


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("checkpoint", ["after_staging", "during_merge", "before_commit"])
def test_rows_refused_by_a_load_that_never_committed_are_never_seen_nor_kept(
    lake_dir: Path, sqlite_url: str, checkpoint: str, signal_name: str
) -> None:
    bad_batch(lake_dir)

    killed = run_load(lake_dir, sqlite_url, COURSEMART_FAILPOINT=f"{checkpoint}:{signal_name}")
    lake = open_lake(str(lake_dir))
    hidden = lake.rejected_loads()
    finished = load(str(lake_dir), sqlite_url)

    assert killed.returncode in (-9, -15, 1, 143), killed.stderr
    assert all(not visible for visible in hidden.values())
    assert lake.rejected_loads() == {finished.load_id: True}  # the dead load's rows are gone
    assert [row["course_id"] for row in lake.read_rejected(finished.load_id)] == [5_000]
    assert course_count(sqlite_url) == 1_001


def test_rows_refused_by_a_load_that_committed_just_before_a_crash_are_published_next_time(
    lake_dir: Path, sqlite_url: str
) -> None:
    bad_batch(lake_dir)
    first = load(str(lake_dir), sqlite_url)
    lake = open_lake(str(lake_dir))
    (Path(lake.rejected_dir(first.load_id)) / "_SUCCESS").unlink()  # as if it crashed then
    assert lake.read_rejected(first.load_id) == []

    load(str(lake_dir), sqlite_url)

    assert [row["course_id"] for row in lake.read_rejected(first.load_id)] == [5_000]
    assert all(lake.rejected_loads().values())


def test_rows_refused_by_a_load_on_postgresql_are_visible_after_its_commit(
    lake_dir: Path, tmp_path: Path
) -> None:
    for url in new_warehouse("postgresql", tmp_path):
        bad_batch(lake_dir)
        result = load(str(lake_dir), url)
        assert open_lake(str(lake_dir)).read_rejected(result.load_id)[0]["course_id"] == 5_000


def test_a_lake_loaded_into_two_warehouses_keeps_each_one_s_refused_rows(
    lake_dir: Path, tmp_path: Path
) -> None:
    """A load into one warehouse, paused before its commit with its refused rows written, and a
    whole load of the same lake into another warehouse meanwhile: neither settles (removes) the
    other's rows; each publishes its own."""
    bad_batch(lake_dir)
    first_url, other_url = (f"sqlite:///{tmp_path / name}.db" for name in ("first", "other"))
    paused = subprocess.Popen(
        [*load_command(lake_dir, first_url), "-q"],
        env={**os.environ, "COURSEMART_FAILPOINT": "before_commit:SIGSTOP"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not Path(f"/proc/{paused.pid}/stat").read_text().split(") ")[1].startswith("T"):
            assert paused.poll() is None and time.monotonic() < deadline, "the load never paused"
            time.sleep(0.05)
        other = load(str(lake_dir), other_url)
    finally:
        paused.send_signal(signal.SIGCONT)
        _, errors = paused.communicate(timeout=120)

    assert paused.returncode == 0, errors
    (first_load,) = [row[0] for row in query(first_url, "SELECT load_id FROM coursemart_loads")]
    lake = open_lake(str(lake_dir))
    assert [row["course_id"] for row in lake.read_rejected(first_load)] == [5_000]
    assert [row["course_id"] for row in lake.read_rejected(other.load_id)] == [5_000]
    assert lake.rejected_owner(first_load) != lake.rejected_owner(other.load_id) != ""
