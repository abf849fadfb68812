"""The fault suite: loads killed at seeded random moments, and a PostgreSQL server that crashes
mid-load. After each, one more load must bring the warehouse exactly to the lake's state: every
course from the greatest batch, each batch in the manifest once, the refused rows once."""

from __future__ import annotations

import os
import random
import shutil
import signal
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

from coursemart import model
from coursemart.generate import generate
from coursemart.lake import open_lake
from tests.conftest import WINDOW, new_warehouse, unavailable
from tests.test_load import expected_courses, load_command, query, stored_courses, write_raw_batch

KILLS_PER_DATABASE = 12
REFUSED = (900_002, 900_003)  # an unknown category, an empty name


def faulty_lake(lake_dir: Path) -> None:
    """Three batches (new courses, rescheduled ones) and a batch with two refused rows."""
    generate(str(lake_dir), courses=150_000, seed=1, window=WINDOW, chunk_rows=50_000)
    generate(str(lake_dir), courses=50_000, seed=2, window=WINDOW, reschedule=0.2)
    rows = pa.table(
        {
            "course_id": pa.array([900_001, 900_002, 900_003], pa.int64()),
            "course_name": ["Ceramics", "Ceramics", ""],
            "category_id": pa.array([3, 99, 3], pa.int32()),
            "level_id": pa.array([101, 101, 101], pa.int32()),
            "start_date": pa.array([datetime(2026, 6, 1, 9, tzinfo=UTC)] * 3, model.TIMESTAMP),
        }
    )
    write_raw_batch(lake_dir, rows)


def assert_exactly_the_lake(lake_dir: Path, url: str) -> None:
    """The warehouse holds what the lake says, each batch and version once, each refused row
    once."""
    lake = open_lake(str(lake_dir))
    expected = expected_courses(lake_dir)
    for refused_id in REFUSED:
        del expected[refused_id]
    assert stored_courses(url) == expected
    loaded = [
        row[0] for row in query(url, "SELECT batch_id FROM coursemart_batches ORDER BY batch_id")
    ]
    assert loaded == lake.committed_batches()
    versions = [row[0] for row in query(url, "SELECT version FROM coursemart_versions")]
    assert sorted(versions) == list(range((lake.latest_version() or 0) + 1))  # each once
    visible = [load_id for load_id, shown in lake.rejected_loads().items() if shown]
    refused = [row for load_id in visible for row in lake.read_rejected(load_id)]
    assert sorted(row["course_id"] for row in refused) == sorted(REFUSED)
    assert all(shown for shown in lake.rejected_loads().values())


def run(command: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def load_seconds(tmp_path_factory: pytest.TempPathFactory) -> float:
    """How long a whole load of the faulty lake takes here (to spread kills over it)."""
    folder = tmp_path_factory.mktemp("timing")
    faulty_lake(folder / "lake")
    began = time.monotonic()
    finished = run([*load_command(folder / "lake", f"sqlite:///{folder / 'w.db'}"), "-q"])
    assert finished.returncode == 0, finished.stderr
    return time.monotonic() - began


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("seed", range(KILLS_PER_DATABASE))
def test_a_load_killed_at_a_random_moment_is_finished_exactly_by_the_next(
    lake_dir: Path, tmp_path: Path, backend: str, seed: int, load_seconds: float
) -> None:
    moment = random.Random(seed).uniform(0.05, load_seconds * 1.1)
    faulty_lake(lake_dir)
    for url in new_warehouse(backend, tmp_path):
        command = [*load_command(lake_dir, url), "-q"]
        victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(moment)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=60)

        finished = run(command)

        assert finished.returncode == 0, finished.stderr
        assert_exactly_the_lake(lake_dir, url)


def waiting_backend(engine: sa.Engine, holder: int, within: float = 60) -> int:
    """The process id of the server backend that waits for a lock ``holder`` holds."""
    deadline = time.monotonic() + within
    with engine.connect() as watcher:
        while time.monotonic() < deadline:
            found = watcher.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                (holder,),
            ).first()
            watcher.rollback()
            if found is not None:
                return int(found[0])
            time.sleep(0.05)
    raise AssertionError(f"no backend waited for a lock of {holder} within {within} s")


def seconds_until_gone(engine: sa.Engine, pid: int, within: float) -> float:
    """Seconds until the server backend ``pid`` has ended (``within`` if it did not)."""
    began = time.monotonic()
    with engine.connect() as watcher:
        while time.monotonic() - began < within:
            alive = watcher.exec_driver_sql(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).first()
            watcher.rollback()
            if alive is None:
                return time.monotonic() - began
            time.sleep(0.05)
    return within


def test_a_killed_postgresql_loader_does_not_keep_the_load_lock(
    lake_dir: Path, postgres_url: str
) -> None:
    """A loader killed in the middle of a statement (here waiting for a table lock that another
    session holds) leaves no server backend holding the load lock once PostgreSQL sees its
    client gone (within about a second), so the next load starts at once."""
    generate(str(lake_dir), courses=1_000, seed=1, window=WINDOW)
    assert run([*load_command(lake_dir, postgres_url), "-q"]).returncode == 0
    generate(str(lake_dir), courses=1_000, seed=2, window=WINDOW)
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as holder:
            holder.exec_driver_sql("LOCK TABLE courses IN ACCESS EXCLUSIVE MODE")
            holder_pid = holder.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            loader = subprocess.Popen(
                [*load_command(lake_dir, postgres_url), "-q", "--wait", "60"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                pid = waiting_backend(engine, holder_pid)
            finally:
                loader.kill()
                loader.wait()
            gone = seconds_until_gone(engine, pid, within=10)
            holder.rollback()
        again = run([*load_command(lake_dir, postgres_url), "-q", "--wait", "0"])
    finally:
        engine.dispose()

    assert gone < 5, "the killed loader's backend still waited, holding the load lock"
    assert again.returncode == 0, again.stderr
    assert stored_courses(postgres_url) == expected_courses(lake_dir)


# ---------------------------------------------------------------------------------------------
# A PostgreSQL server of the test's own, crashed mid-load


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postgres_binaries() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        unavailable("PostgreSQL's server binaries are not installed (/usr/lib/postgresql/*/bin)")
    return found[-1].parent


class PrivateServer:
    """A PostgreSQL cluster in a temporary folder, on a free port, run as the postgres user."""

    def __init__(self, folder: Path) -> None:
        self.bin = postgres_binaries()
        self.data, self.port = folder / "data", free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(folder.parent, "postgres")
            shutil.chown(folder, "postgres")
        self.as_postgres(
            [str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]
        )

    def as_postgres(self, command: list[str]) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        options = [
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-k",
            str(self.data),
            "-h",
            "127.0.0.1",
        ]
        self.process = subprocess.Popen(
            [*prefix, str(self.bin / "postgres"), *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait_until_ready()

    def wait_until_ready(self, timeout: float = 120) -> None:
        """Until the server accepts a session and answers a query, as a user's retry would wait:
        after a crash it listens before recovery has finished ("the database system is starting
        up"), so an open port is not enough."""
        import psycopg

        deadline = time.monotonic() + timeout
        problem = "no attempt"
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.url, connect_timeout=5, autocommit=True) as probe:
                    probe.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                problem = str(exc).strip()
                time.sleep(0.2)
        raise AssertionError(f"the private PostgreSQL server is not ready: {problem}")

    def wait_for(self, statement: str, timeout: float = 120) -> None:
        """Until a backend runs a statement LIKE ``statement``."""
        import psycopg

        deadline = time.monotonic() + timeout
        with psycopg.connect(self.url, autocommit=True) as watcher:
            while time.monotonic() < deadline:
                found = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE state = 'active' AND query LIKE %s",
                    (statement,),
                ).fetchone()
                if found and found[0]:
                    return
                time.sleep(0.01)
        raise AssertionError(f"no backend ran {statement!r} within {timeout} s")

    def crash(self) -> None:
        """SIGKILL the postmaster (by its own pid) and its backends, as a power cut would."""
        assert self.process is not None
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        subprocess.run(["pkill", "-KILL", "-f", f"postgres.*{self.data}"], check=False)
        time.sleep(1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def private_postgres() -> Iterator[PrivateServer]:
    if shutil.which("runuser") is None and os.geteuid() == 0:
        unavailable("runuser is missing: a private PostgreSQL server cannot run as root")
    folder = Path(tempfile.mkdtemp(prefix="coursemart-pg-"))  # outside pytest's private tree
    try:
        server = PrivateServer(folder / "pg")
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_postgresql_crash_mid_load_loses_nothing_and_the_next_load_completes(
    lake_dir: Path, private_postgres: PrivateServer
) -> None:
    faulty_lake(lake_dir)
    command = [*load_command(lake_dir, private_postgres.url), "-q"]
    victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    private_postgres.wait_for("COPY %")  # the loader is writing rows

    private_postgres.crash()
    _, complaint = victim.communicate(timeout=120)
    private_postgres.start()  # crash recovery replays the log
    finished = run(command)

    assert victim.returncode == 1
    assert complaint.strip().startswith("coursemart: error: warehouse: ")
    assert len(complaint.strip().splitlines()) == 1
    assert finished.returncode == 0, finished.stderr
    assert_exactly_the_lake(lake_dir, private_postgres.url)
