"""MariaDB/MySQL's bulk path (``LOAD DATA LOCAL INFILE``) and its fallback (batched
``INSERT … ON DUPLICATE KEY UPDATE``) where ``local_infile`` is refused, against real servers: the
shared test server, and one of our own started with ``--local-infile=0`` (a global setting that
the shared server must keep)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from coursemart import model, warehouse
from coursemart.generate import generate
from coursemart.load import CHECKPOINTS, load
from coursemart.load.backends import mysql as mysql_backend
from coursemart.load.backends import with_lineage
from coursemart.load.backends.mysql import BulkLoadError, MySQLBackend, bulk_refusal
from tests.conftest import WINDOW, new_warehouse, snapshot, stop, unavailable
from tests.test_load import course_count, load_command, query, run_load, write_raw_batch

BIGGEST = 2**63 - 1
#: Names that CSV, ``LOAD DATA`` and their escapes could each get wrong.
NAMES = [
    "Quotes \"double\" and 'single'",
    'Comma, "quoted", comma',
    'ends with a quote"',
    '"starts with a quote',
    '""',
    '","',
    ",",
    "Tab\tinside",
    "Back\\slash, \\N, \\t and a last \\",
    "Line\nbreak",
    "Windows\r\nline break",
    "ends with a line break\n",
    "NULL",
    "\\N",
    "Ünïcödé — 日本語の講座 🚀",
    "  spaces around  ",
    "界" * model.MAX_NAME_LENGTH,
    "🚀" * model.MAX_NAME_LENGTH,
]
STARTS = [
    datetime(2026, 3, 1, 12, 34, 56, 123456, tzinfo=UTC),
    datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]
GENERATED = 1_000
LATER = "20990101T000000.000000Z-0001"
REFUSED_BY_CLIENT = "the client has local_infile off (local_infile=0 in the warehouse URL)"
REFUSED_BY_SERVER = "the server has local_infile off (SET GLOBAL local_infile = ON turns it on)"


def nasty_courses() -> pa.Table:
    """Every name of :data:`NAMES` twice: once on a course that exists (ids from 1, so it goes
    through the staging table and the merge) and once on a new one (the largest BIGINT ids, so
    straight into ``courses``)."""
    known = list(range(1, len(NAMES) + 1))
    new = [BIGGEST - n for n in range(len(NAMES))]
    count = 2 * len(NAMES)
    return pa.table(
        {
            "course_id": pa.array(known + new, pa.int64()),
            "course_name": pa.array(NAMES * 2, pa.string()),
            "category_id": pa.array([1 + n % 5 for n in range(count)], pa.int32()),
            "level_id": pa.array([101 + n % 3 for n in range(count)], pa.int32()),
            "start_date": pa.array([STARTS[n % 3] for n in range(count)], model.TIMESTAMP),
        },
        model.COURSES_SCHEMA,
    )


def stored(url: str, ids: list[int]) -> dict[int, tuple[object, ...]]:
    """The stored rows of ``ids``, as the database returns them."""
    listed = ", ".join(str(i) for i in ids)
    rows = query(
        url,
        "SELECT course_id, course_name, category_id, level_id, start_date, batch_id "
        f"FROM courses WHERE course_id IN ({listed})",
    )
    return {int(str(row[0])): row[1:] for row in rows}


@pytest.fixture
def mariadb_url(tmp_path: Path) -> Iterator[str]:
    yield from new_warehouse("mariadb", tmp_path)


@pytest.fixture
def other_mariadb_url(tmp_path: Path) -> Iterator[str]:
    yield from new_warehouse("mariadb", tmp_path / "other")


@pytest.fixture(scope="module")
def refusing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A MariaDB server of our own with ``local_infile`` off; yields its admin URL."""
    binary = shutil.which("mariadbd", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/libexec")
    if binary is None:
        unavailable("mariadbd is not installed (apt-get install mariadb-server)")
    assert binary is not None
    folder = tmp_path_factory.mktemp("mariadb")
    (folder / "data").mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [binary, "--no-defaults", f"--datadir={folder / 'data'}", "--skip-grant-tables"]
    command += ["--bind-address=127.0.0.1", f"--port={port}", f"--socket={folder / 'socket'}"]
    command += [f"--pid-file={folder / 'pid'}", "--local-infile=0"]
    command += ["--innodb-buffer-pool-size=32M", "--character-set-server=utf8mb4"]
    command += ["--user=root"] if os.geteuid() == 0 else []
    with open(folder / "error.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"mysql+pymysql://root@127.0.0.1:{port}"
    try:
        wait_for(process, url, folder / "error.log")
        yield url
    finally:
        stop(process)


def wait_for(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Wait up to 30 s for the server at ``url`` to answer, then create its ``test`` database."""
    engine = sa.create_engine(f"{url}/", isolation_level="AUTOCOMMIT")
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                with engine.connect() as connection:
                    connection.exec_driver_sql("CREATE DATABASE test")
                return
            except sa.exc.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace").splitlines()[-5:]
                    unavailable("mariadbd --local-infile=0 did not start: " + " | ".join(tail))
                time.sleep(0.2)
    finally:
        engine.dispose()


def same_rows(tables: dict[str, list[tuple[object, ...]]]) -> dict[str, object]:
    """What two loads of one lake must agree on: courses, dimensions and the batches loaded."""
    agreed: dict[str, object] = {name: tables[name] for name in ("courses", "categories", "levels")}
    agreed["batches"] = [row[0] for row in tables["coursemart_batches"]]
    return agreed


def refusal_of(url: str) -> str | None:
    engine = warehouse.create_engine(url)
    try:
        with engine.connect() as connection:
            return bulk_refusal(connection)
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------


def test_the_loader_may_bulk_load_where_server_and_client_allow_it(
    mariadb_url: str, refusing_server: str
) -> None:
    assert refusal_of(mariadb_url) is None
    assert refusal_of(mariadb_url + "?local_infile=0") == REFUSED_BY_CLIENT
    assert refusal_of(f"{refusing_server}/test") == REFUSED_BY_SERVER


@pytest.mark.parametrize(
    ("read_only", "query_string", "offered"),
    [(False, "", True), (True, "", False), (False, "?local_infile=0", False)],
)
def test_only_writing_connections_offer_local_infile_to_the_server(
    mariadb_url: str, read_only: bool, query_string: str, offered: bool
) -> None:
    from pymysql.constants import CLIENT

    engine = warehouse.create_engine(mariadb_url + query_string, read_only=read_only)
    try:
        with engine.connect() as connection:
            flags = connection.connection.driver_connection.client_flag
    finally:
        engine.dispose()
    assert bool(flags & CLIENT.LOCAL_FILES) is offered


def test_names_dates_and_the_largest_bigint_round_trip_exactly(
    lake_dir: Path, mariadb_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    generate(str(lake_dir), courses=GENERATED, seed=1, window=WINDOW)
    rows = nasty_courses()
    write_raw_batch(lake_dir, rows, batch_id=LATER)

    result = load(str(lake_dir), mariadb_url)

    assert (result.rows_loaded, result.rows_rejected) == (GENERATED + rows.num_rows, 0)
    assert course_count(mariadb_url) == GENERATED + len(NAMES)
    expected = {
        row["course_id"]: (
            row["course_name"],
            row["category_id"],
            row["level_id"],
            row["start_date"].replace(tzinfo=None),
            LATER,
        )
        for row in rows.to_pylist()
    }
    assert stored(mariadb_url, list(expected)) == expected
    assert [r for r in caplog.records if r.name == "coursemart.load"] == []  # no fallback


@pytest.mark.parametrize("refused_by", ["client", "server"])
def test_where_local_infile_is_refused_the_load_says_so_and_stores_the_same_rows(
    lake_dir: Path,
    mariadb_url: str,
    other_mariadb_url: str,
    refusing_server: str,
    refused_by: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    generate(str(lake_dir), courses=GENERATED, seed=1, window=WINDOW)
    generate(str(lake_dir), courses=500, seed=2, window=WINDOW, reschedule=0.2)
    write_raw_batch(lake_dir, nasty_courses(), batch_id=LATER)
    load(str(lake_dir), mariadb_url)
    if refused_by == "client":
        refused = other_mariadb_url + "?local_infile=0"
    else:
        refused = f"{refusing_server}/test"

    with caplog.at_level(logging.WARNING, logger="coursemart.load"):
        result = load(str(lake_dir), refused)

    reason = REFUSED_BY_CLIENT if refused_by == "client" else REFUSED_BY_SERVER
    assert [record.getMessage() for record in caplog.records] == [
        f"coursemart: {warehouse.Warehouse.from_url(refused).display}: {reason}; loading with "
        "batched INSERT … ON DUPLICATE KEY UPDATE instead of LOAD DATA LOCAL INFILE (slower)"
    ]
    assert result.rows_loaded == GENERATED + 700 + 2 * len(NAMES)
    assert same_rows(snapshot(refused)) == same_rows(snapshot(mariadb_url))


def test_the_notice_is_one_line_on_the_load_commands_stderr(
    lake_dir: Path, mariadb_url: str
) -> None:
    generate(str(lake_dir), courses=100, seed=1, window=WINDOW)
    url = mariadb_url + "?local_infile=0"

    done = subprocess.run(
        load_command(lake_dir, url), capture_output=True, text=True, timeout=300, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"coursemart: {url}: {REFUSED_BY_CLIENT}; loading with batched INSERT … ON DUPLICATE "
        "KEY UPDATE instead of LOAD DATA LOCAL INFILE (slower)"
    ]
    assert course_count(url) == 100


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_a_first_bulk_load_killed_at_any_point_leaves_courses_empty(
    lake_dir: Path, tmp_path: Path, mariadb_url: str, checkpoint: str
) -> None:
    generate(str(lake_dir), courses=3_000, seed=1, window=WINDOW)
    generate(str(lake_dir), courses=1_000, seed=2, window=WINDOW, reschedule=0.2)

    spool = tmp_path / "tmp"
    spool.mkdir()

    killed = run_load(lake_dir, mariadb_url, COURSEMART_FAILPOINT=checkpoint, TMPDIR=str(spool))

    assert killed.returncode == -9, killed.stderr
    assert list(spool.iterdir()) == []  # the rows' files had no name: nothing is left behind
    assert course_count(mariadb_url) == 0
    assert query(mariadb_url, "SELECT COUNT(*) FROM coursemart_batches") == [(0,)]
    finished = run_load(lake_dir, mariadb_url)
    assert finished.returncode == 0, finished.stderr
    assert course_count(mariadb_url) == 4_000


def with_dimensions(connection: sa.Connection) -> None:
    """coursemart's tables and the seed dimensions, committed."""
    warehouse.ensure_schema(connection)
    connection.execute(warehouse.categories.insert(), model.categories_table().to_pylist())
    connection.execute(warehouse.levels.insert(), model.levels_table().to_pylist())
    connection.commit()


def test_where_open_files_have_no_path_the_rows_file_is_named_until_discarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mysql_backend, "OPEN_FILES", str(tmp_path / "no such folder"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rows = mysql_backend.RowFile()

    rows.add(with_lineage(nasty_courses(), LATER))
    path = Path(rows.ready())
    named = [p.name for p in tmp_path.iterdir()]
    rows.discard()

    assert path.parent == tmp_path and named == [path.name]
    assert path.name.startswith("coursemart-load-") and path.suffix == ".csv"
    assert list(tmp_path.iterdir()) == []


def test_a_first_bulk_load_leaves_the_sessions_checks_on(mariadb_url: str) -> None:
    rows = with_lineage(nasty_courses(), LATER)
    engine = warehouse.create_engine(mariadb_url)
    try:
        with engine.connect() as connection:
            with_dimensions(connection)
            backend = MySQLBackend(connection, mariadb_url)
            backend.begin()
            backend.write_courses(rows)
            backend.merge_courses()
            checks = connection.exec_driver_sql("SELECT @@unique_checks, @@foreign_key_checks")
            assert tuple(checks.one()) == (1, 1)
            connection.commit()
    finally:
        engine.dispose()
    assert course_count(mariadb_url) == rows.num_rows


def test_a_row_the_server_would_alter_fails_the_load_and_nothing_is_written(
    mariadb_url: str,
) -> None:
    rows = with_lineage(nasty_courses(), LATER)
    names = ["x" * (model.MAX_NAME_LENGTH + 1)] + rows["course_name"].to_pylist()[1:]
    one_too_long = rows.set_column(1, "course_name", pa.array(names))
    engine = warehouse.create_engine(mariadb_url)
    try:
        with engine.connect() as connection:
            with_dimensions(connection)
            backend = MySQLBackend(connection, mariadb_url)
            backend.begin()
            backend.write_courses(one_too_long)
            with pytest.raises(BulkLoadError) as refused:
                backend.merge_courses()
            connection.rollback()
    finally:
        engine.dispose()
    assert str(refused.value) == (
        "LOAD DATA into courses stored 36 of 36 checked rows, with 1 warning(s): Data truncated "
        "for column 'course_name' at row 1; nothing was loaded. Do the table's columns still "
        "match coursemart's? (SHOW CREATE TABLE courses)"
    )
    assert course_count(mariadb_url) == 0
