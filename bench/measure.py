"""Run a benchmark case in a fresh process and report its wall time and peak memory; record
what every benchmark measured, with the machine it ran on, in ``bench/results/<name>.json``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import sqlalchemy as sa

PG_SERVER = os.environ.get(
    "COURSEMART_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432"
)
MARIADB_SERVER = os.environ.get("COURSEMART_BENCH_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")


#: Where every benchmark writes its results, and ``--quick`` runs theirs (not committed).
RESULTS = Path(__file__).parent / "results"
QUICK_RESULTS = RESULTS / "quick"


#: The start of a wrk Lua script whose requests are random: each wrk thread seeds its own.
LUA_SEEDED = """
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end
function init(args)
  math.randomseed(os.time() * 31 + id)
end
"""


def load_average() -> float:
    """The machine's 1-minute load average now (2 cores: above 2 means work was waiting)."""
    return round(os.getloadavg()[0], 2)


@dataclass(frozen=True)
class Measurement:
    name: str
    seconds: float
    peak_mib: float
    #: The 1-minute load average when the case started (other work on the shared machine).
    load: float = field(default_factory=load_average)


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
    load = load_average()
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
    return Measurement(name, seconds, peak_kib / 1024, load)


def coursemart_command(*arguments: str) -> list[str]:
    """The ``coursemart`` command installed beside this interpreter, as users run it."""
    script = Path(sys.executable).with_name("coursemart")
    return [str(script) if script.exists() else "coursemart", *arguments]


def run_command(
    name: str, command: list[str], env: dict[str, str] | None = None
) -> tuple[Measurement, str]:
    """Run a shipped command as users do: its wall time (interpreter start included), its peak
    resident memory, and what it printed.

    The peak is measured by GNU time, whose own few MiB are all that could be counted with the
    command's (a Python parent's memory would be: Linux carries it into a child across exec).
    """
    time_command = shutil.which("time", path="/usr/bin:/bin") or "/usr/bin/time"
    with tempfile.NamedTemporaryFile("r", suffix=".time") as peak_file:
        load = load_average()
        began = time.perf_counter()
        done = subprocess.run(
            [time_command, "-f", "%M", "-o", peak_file.name, *command],
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - began
        if done.returncode != 0:
            raise SystemExit(f"{name} failed ({' '.join(command)}):\n{done.stdout}{done.stderr}")
        peak_kib = int(peak_file.read().split()[-1])
    return Measurement(name, seconds, peak_kib / 1024, load), done.stdout.strip()


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


# ---------------------------------------------------------------------------------------------
# Results: what each benchmark measured, where and when, for bench/report.py


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """``--quick`` (small sizes, short runs, results apart) and ``--results DIR``."""
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and short runs (results kept apart)"
    )
    parser.add_argument(
        "--results", type=Path, help="folder for the results (default: bench/results)"
    )


def results_folder(args: argparse.Namespace) -> Path:
    """Where this run writes: ``--results``, else bench/results (bench/results/quick)."""
    chosen: Path = args.results or (QUICK_RESULTS if args.quick else RESULTS)
    return chosen


def versions() -> dict[str, str]:
    """Versions of what the figures depend on: Python, the libraries, the servers' clients."""
    found = {"python": platform.python_version()}
    for package in (
        "coursemart", "pyarrow", "numpy", "sqlalchemy", "psycopg", "fastapi", "uvicorn",
        "pandas", "pyspark", "datasette", "sqlite-utils", "deltalake",
    ):  # fmt: skip
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    import sqlite3

    found["sqlite"] = sqlite3.sqlite_version
    return found


def machine() -> dict[str, Any]:
    """The machine the figures were measured on."""
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        memory_kib = int(meminfo.readline().split()[1])
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(memory_kib / 2**20, 1),
        "system": f"{platform.system()} {platform.release()}",
    }


def postgres_version(url: str = f"{PG_SERVER}/postgres") -> str | None:
    """The PostgreSQL server's version, or None when it cannot be reached."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.exec_driver_sql("SHOW server_version").scalar_one()).split()[0]
    except sa.exc.OperationalError:
        return None
    finally:
        engine.dispose()


class Results:
    """One benchmark run's record: started when made, written by :meth:`save`."""

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        self.name = name
        self.folder = results_folder(args)
        self.started = datetime.now(UTC)
        self.load_at_start = load_average()
        self.arguments = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}

    def save(self, data: dict[str, Any]) -> Path:
        """Write ``data`` with the machine, the versions, the dates and the load averages."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.name}.json"
        record = {
            "benchmark": self.name,
            "started": self.started.isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "load_at_start": self.load_at_start,
            "load_at_end": load_average(),
            "arguments": self.arguments,
            "machine": machine(),
            "versions": {**versions(), "postgresql": postgres_version()},
            **data,
        }
        path.write_text(json.dumps(record, indent=1, default=_plain) + "\n")
        print(f"results written to {path}")
        return path


def _plain(value: object) -> object:
    if isinstance(value, Measurement):
        return asdict(value)
    raise TypeError(f"cannot record {type(value).__name__}")
