"""Run a benchmark case in a fresh process and report its wall time and peak memory."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

PG_SERVER = os.environ.get(
    "COURSEMART_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432"
)
MARIADB_SERVER = os.environ.get("COURSEMART_BENCH_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")


@dataclass(frozen=True)
class Measurement:
    name: str
    seconds: float
    peak_mib: float


# The child's own high-water mark (VmHWM): unlike ru_maxrss it does not count the memory of the
# parent it was forked from. Processes the child starts (psql, a JVM) are not counted.
PEAK = (
    "for _line in open('/proc/self/status'):\n"
    "    if _line.startswith('VmHWM:'):\n"
    "        print('BENCH_PEAK', _line.split()[1], flush=True)\n"
)


def run_case(name: str, code: str, env: dict[str, str] | None = None) -> Measurement:
    """Run ``code`` with this interpreter in a child process: its time and its max RSS.

    The peak is the child's high-water resident memory. The time is that of ``code`` alone,
    after the interpreter has started: a line
    ``BENCH_START`` in ``code`` marks where the clock starts (after imports), else it starts
    with the process.
    """
    timed = code.replace("BENCH_START", "import time as _t; _began = _t.perf_counter()")
    if "_began" not in timed:
        timed = "import time as _t; _began = _t.perf_counter()\n" + timed
    timed += "\nprint('BENCH_SECONDS', _t.perf_counter() - _began, flush=True)\n" + PEAK
    process = subprocess.Popen(
        [sys.executable, "-c", timed],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, _usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark case {name!r} failed with status {status}:\n{output}")
    seconds = float(output.rsplit("BENCH_SECONDS", 1)[1].split()[0])
    peak_kib = int(output.rsplit("BENCH_PEAK", 1)[1].split()[0])
    return Measurement(name, seconds, peak_kib / 1024)


def table(rows: list[list[str]]) -> str:
    """Left-aligned text table."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
    )


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database on the benchmark server; dropped afterwards."""
    name = f"cm_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@contextmanager
def mariadb_database() -> Iterator[str]:
    """A new, empty database on the benchmark's MariaDB/MySQL server; dropped afterwards."""
    name = f"cm_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{MARIADB_SERVER}/", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield f"{MARIADB_SERVER}/{name}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()
