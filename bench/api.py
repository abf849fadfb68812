"""API benchmark: coursemart against Datasette over the same 1,000,000-course SQLite warehouse.

One warehouse is generated and loaded, then served in turn by ``coursemart serve`` exactly as
users start it (its default logging; 1 and 2 workers) and by Datasette; each server is loaded with
``wrk -t2 -c32 -d10s --latency`` for a page of 50 courses, most recent first, and stopped. Every
server listens on 127.0.0.1 only. "Uncached" runs ask for a different ``until`` (a random minute)
on every request, so every answer is read from the database. The 2-worker server is also
measured with ``--access-log``, to show what the access log costs. The same courses are then
loaded into a fresh PostgreSQL database and served by coursemart.

Datasette is measured twice: with the URL a user would write
(``vw_most_recent_courses.json?_sort_desc=start_date&_size=50``), and with its counts, facets and
suggestions turned off (``&_nocount=1&_nofacet=1&_nosuggest=1``), its fastest form of that page.
The targets are checked against the faster of the two: with 2 workers, cached answers at least
40x Datasette's requests/s with a p99 under 25 ms, asked plainly and with
``Accept-Encoding: gzip`` as browsers and HTTP libraries send it (Datasette does not compress),
uncached ones at least 10x with a p99 under 40 ms; the default 1-worker server's p99 under 50 ms.

    python bench/api.py [--courses 1000000] [--duration 10] [--workers 1,2] [--no-postgres]
                        [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from coursemart.generate import generate  # noqa: E402
from coursemart.load import load  # noqa: E402
from measure import LUA_SEEDED, Results, add_run_options, table  # noqa: E402

COURSEMART_PATH = "/v1/courses/recent?limit=50"
#: What real clients send: the "gzip" runs ask for compressed answers.
GZIP = ("Accept-Encoding: gzip",)
DATASETTE_PATH = "/warehouse/vw_most_recent_courses.json?_sort_desc=start_date&_size=50"
DATASETTE_FAST = "&_nocount=1&_nofacet=1&_nosuggest=1"
POSTGRES_ADMIN = os.environ.get(
    "COURSEMART_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
POSTGRES_DATABASE = "coursemart_bench"
#: Uncached reads: every request asks for a different ``until`` (a random minute of 2026).
RANDOM_UNTIL_LUA = (
    LUA_SEEDED
    + """
function request()
  local t = 1767225600 + math.random(0, 365 * 24 * 60) * 60
  local moment = os.date("!%Y-%m-%dT%H:%M:00Z", t)
  return wrk.format("GET", "/v1/courses/recent?limit=50&until=" .. moment)
end
"""
)


def search_words() -> list[str]:
    """Every word of the generated catalog's subjects: what the search runs ask for."""
    from coursemart import vocabulary

    names = (name for subject in vocabulary.SUBJECTS.values() for name in subject)
    return sorted({word.lower() for name in names for word in name.split() if word.isalpha()})


def search_lua() -> str:
    """Searches: every request a random word of the catalog's vocabulary and a random
    ``until`` (so every answer is read, none repeated from the response cache)."""
    listed = ", ".join(f'"{word}"' for word in search_words())
    return RANDOM_UNTIL_LUA.replace(
        '  return wrk.format("GET", "/v1/courses/recent?limit=50&until=" .. moment)',
        f"  local words = {{{listed}}}\n"
        "  local word = words[math.random(#words)]\n"
        '  local path = "/v1/courses/recent?limit=50&q=" .. word .. "&until=" .. moment\n'
        '  return wrk.format("GET", path)',
    )


def first_searches(base: str) -> str:
    """Each vocabulary word asked once, one request at a time, before any other search: what
    a search costs when its matches are read from the text index (per data version and
    process). The run after it measures searches whose matches are already in memory."""
    took = []
    for word in search_words():
        started = time.perf_counter()
        urllib.request.urlopen(f"{base}{COURSEMART_PATH}&q={word}", timeout=60).read()
        took.append((time.perf_counter() - started) * 1000)
    took.sort()
    p50, p99 = took[len(took) // 2], took[min(len(took) - 1, int(len(took) * 0.99))]
    return f"first search of each of {len(took)} words: p50 {p50:.1f} ms, p99 {p99:.1f} ms"


@dataclass(frozen=True)
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS_MS[unit]


def parse_wrk(name: str, output: str) -> Result:
    """Requests/s, p50, p99, request count and bad answers from ``wrk --latency`` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    done = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if not (rps and done):
        raise SystemExit(f"cannot read wrk's output for {name}:\n{output}")
    bad = int(non_2xx.group(1)) if non_2xx else 0
    bad += sum(int(n) for n in errors.groups()) if errors else 0
    return Result(
        name,
        float(rps.group(1)),
        _milliseconds(p50.group(1)) if p50 else float("nan"),
        _milliseconds(p99.group(1)) if p99 else float("nan"),
        int(done.group(1)),
        bad,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(
    command: list[str],
    ready_url: str,
    env: dict[str, str] | None = None,
    stop: signal.Signals = signal.SIGTERM,
) -> Iterator[None]:
    """Run a server in its own process group until the block ends; wait until it answers.

    ``stop`` is the first signal sent to the group (SIGINT lets GNU time report its command).
    """
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise SystemExit(f"server exited: {' '.join(command)}\n{log.read().decode()}")
            try:
                with urllib.request.urlopen(ready_url, timeout=60):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise SystemExit(f"server did not answer {ready_url}") from None
                time.sleep(0.2)
        time.sleep(2)  # every worker started, not just the first one to answer
        yield
    finally:
        _stop(process, stop)
        log.close()


def _stop(process: subprocess.Popen[bytes], first: signal.Signals = signal.SIGTERM) -> None:
    for sig, wait in ((first, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_wrk(
    name: str,
    url: str,
    duration: int,
    script: str | None = None,
    connections: int = 32,
    headers: tuple[str, ...] = (),
) -> Result:
    """``wrk -t2 -c32 -d<duration>s --latency`` against ``url`` (fewer connections if asked),
    each request with ``headers`` (``Name: value``)."""
    fields = dict(header.split(": ", 1) for header in headers)
    with urllib.request.urlopen(urllib.request.Request(url, headers=fields), timeout=60) as first:
        first.read()  # warm: first answer, caches, pages
        if "Accept-Encoding" in fields and not first.headers.get("Content-Encoding"):
            raise SystemExit(f"{name}: the server did not compress its answer")
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "30s"]
    command.append("--latency")
    for header in headers:
        command += ["-H", header]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        if script:
            lua.write(script)
            lua.flush()
            command += ["-s", lua.name]
        done = subprocess.run([*command, url], check=True, capture_output=True, text=True)
    if done.stderr.strip():  # e.g. a Lua error: wrk goes on without the script
        raise SystemExit(f"wrk failed for {name}: {done.stderr.strip()}")
    result = parse_wrk(name, done.stdout)
    print(
        f"  {name}: {result.requests_per_second:,.0f} requests/s, p50 {result.p50_ms:.1f} ms, "
        f"p99 {result.p99_ms:.1f} ms ({result.requests:,} requests, {result.bad} bad)",
        flush=True,
    )
    return result


#: Warm-up runs at most, before a measured run.
WARM_UPS = 6


def warm_up(name: str, url: str, duration: int, script: str) -> None:
    """Runs of ``script`` until requests/s stops rising by a tenth (every process has read
    what it keeps per data version, e.g. each search's matches), at most :data:`WARM_UPS`."""
    previous = 0.0
    for attempt in range(1, WARM_UPS + 1):
        result = run_wrk(f"{name} (warm-up {attempt})", url, duration, script)
        if result.requests_per_second < previous * 1.1:
            return
        previous = result.requests_per_second


def coursemart(
    name: str,
    warehouse_url: str,
    workers: int,
    duration: int,
    *,
    uncached: bool = False,
    access_log: bool = False,
    notes: list[str] | None = None,
) -> list[Result]:
    """Serve ``warehouse_url`` with ``coursemart serve``, as users start it, and measure it
    (what is not a wrk run, such as the first searches, is added to ``notes``)."""
    port = free_port()
    command = [
        sys.executable, "-m", "coursemart", "serve", "--warehouse", warehouse_url,
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    if access_log:
        command.append("--access-log")
    env = {"COURSEMART_API_KEYS": ""}
    base = f"http://127.0.0.1:{port}"
    with serving(command, f"{base}/ready", env):
        results = [run_wrk(name, base + COURSEMART_PATH, duration)]
        if uncached:
            results.append(run_wrk(f"{name}, gzip", base + COURSEMART_PATH, duration, headers=GZIP))
            results.append(
                run_wrk(f"{name}, uncached", base + COURSEMART_PATH, duration, RANDOM_UNTIL_LUA)
            )
            first = f"{name}, {first_searches(base)}"
            print(f"  {first}", flush=True)
            if notes is not None:
                notes.append(first)
            warm_up(f"{name}, search", base + COURSEMART_PATH, duration, search_lua())
            results.append(
                run_wrk(f"{name}, search", base + COURSEMART_PATH, duration, search_lua())
            )
    return results


def datasette(database: Path, duration: int) -> list[Result]:
    """Serve the SQLite file with Datasette (a fresh server per URL) and measure it."""
    results = []
    for name, query in (("datasette", ""), ("datasette, no counts/facets", DATASETTE_FAST)):
        port = free_port()
        command = [
            sys.executable, "-m", "datasette", "serve", str(database),
            "-h", "127.0.0.1", "-p", str(port),
        ]  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        with serving(command, f"{base}/-/versions.json"):
            result = run_wrk(name, base + DATASETTE_PATH + query, duration)
        results.append(result)
        if result.requests <= result.bad:  # no good answer under 32 connections: one at a time
            port = free_port()
            command[-1] = str(port)
            base = f"http://127.0.0.1:{port}"
            with serving(command, f"{base}/-/versions.json"):
                url = base + DATASETTE_PATH + query
                results.append(run_wrk(f"{name}, 1 connection", url, duration, connections=1))
    return results


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database for the benchmark (``None`` if no server), dropped after."""
    admin = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {POSTGRES_DATABASE} WITH (FORCE)")
            connection.exec_driver_sql(f"CREATE DATABASE {POSTGRES_DATABASE}")
    except sa.exc.OperationalError as exc:
        print(f"PostgreSQL skipped: {POSTGRES_ADMIN.split('@')[-1]} is not reachable ({exc.orig})")
        admin.dispose()
        yield None
        return
    try:
        url = make_url(POSTGRES_ADMIN).set(database=POSTGRES_DATABASE)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {POSTGRES_DATABASE} WITH (FORCE)")
        admin.dispose()


def settle(url: str) -> None:
    """Vacuum, analyze and checkpoint after the bulk load, so that the server's background work
    after a load (autovacuum, checkpoints) does not compete with the measurement."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("VACUUM (ANALYZE)")
            connection.exec_driver_sql("CHECKPOINT")
    finally:
        engine.dispose()


def missing_tools() -> list[str]:
    """What the benchmark needs and cannot find, with how to get it."""
    missing = []
    if not shutil.which("wrk"):
        missing.append("wrk (apt-get install -y wrk)")
    if importlib.util.find_spec("datasette") is None:
        missing.append("datasette (pip install datasette)")
    return missing


def timed_load(lake: str, url: str, label: str) -> None:
    began = time.perf_counter()
    result = load(lake, url)
    print(
        f"loaded {result.rows_loaded:,} courses into {label} in {time.perf_counter() - began:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--courses", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts to measure")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite and Datasette only")
    add_run_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.courses, args.duration = min(args.courses, 100_000), min(args.duration, 2)
    record = Results("api", args)
    missing = missing_tools()
    if missing:
        print(f"API benchmark skipped: missing {', '.join(missing)}")
        return
    worker_counts = [int(n) for n in args.workers.split(",")]
    results: list[Result] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="coursemart-bench-api-") as scratch:
        lake, database = str(Path(scratch) / "lake"), Path(scratch) / "warehouse.db"
        began = time.perf_counter()
        generate(lake, courses=args.courses, seed=1)
        print(f"generated {args.courses:,} courses in {time.perf_counter() - began:.1f} s")
        timed_load(lake, f"sqlite:///{database}", "SQLite")
        sqlite_url = f"sqlite:///{database}"
        for workers in worker_counts:
            name = f"coursemart sqlite, {workers} worker{'s' if workers > 1 else ''}"
            results += coursemart(
                name, sqlite_url, workers, args.duration, uncached=True, notes=notes
            )
        workers = worker_counts[-1]
        name = f"coursemart sqlite, {workers} worker{'s' if workers > 1 else ''}, --access-log"
        results += coursemart(name, sqlite_url, workers, args.duration, access_log=True)
        results += datasette(database, args.duration)
        if not args.no_postgres:
            with postgres_database() as postgres_url:
                if postgres_url:
                    timed_load(lake, postgres_url, "PostgreSQL")
                    settle(postgres_url)
                    workers = worker_counts[-1]
                    name = f"coursemart postgresql, {workers} worker{'s' if workers > 1 else ''}"
                    results += coursemart(
                        name, postgres_url, workers, args.duration, uncached=True, notes=notes
                    )
    checks = report(results, worker_counts) + notes
    record.save(
        {"courses": args.courses, "results": [asdict(r) for r in results], "checks": checks}
    )


def report(results: list[Result], worker_counts: list[int]) -> list[str]:
    rows = [["server", "requests/s", "p50 ms", "p99 ms", "requests", "bad"]]
    rows += [
        [
            r.name,
            f"{r.requests_per_second:,.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            f"{r.requests:,}",
            str(r.bad),
        ]
        for r in results
    ]
    print(table(rows))
    by_name = {r.name: r for r in results}
    theirs = [r for r in results if r.name.startswith("datasette") and r.requests > r.bad]
    fastest = max(theirs, key=lambda r: r.requests_per_second)
    most = worker_counts[-1]
    several = f"coursemart sqlite, {most} worker{'s' if most > 1 else ''}"
    for ours in (by_name[several], by_name[f"{several}, gzip"], by_name[f"{several}, uncached"]):
        for anchor in theirs:
            ratio = ours.requests_per_second / anchor.requests_per_second
            print(f"{ours.name} vs {anchor.name}: {ratio:,.1f}x")
    verdicts = []
    for ours, times, p99 in (
        (by_name[several], 40, 25.0),
        (by_name[f"{several}, gzip"], 40, 25.0),
        (by_name[f"{several}, uncached"], 10, 40.0),
        (by_name[f"{several}, search"], 10, 40.0),
    ):
        ratio = ours.requests_per_second / fastest.requests_per_second
        verdicts.append(
            f"{ours.name}: >={times}x Datasette: {ratio:,.1f}x "
            f"({'met' if ratio >= times else 'MISSED'}), p99 < {p99:.0f} ms: {ours.p99_ms:.1f} ms "
            f"({'met' if ours.p99_ms < p99 else 'MISSED'})"
        )
    default = by_name.get("coursemart sqlite, 1 worker")
    if default is not None:
        verdicts.append(
            f"{default.name} (the default): p99 < 50 ms: {default.p99_ms:.1f} ms "
            f"({'met' if default.p99_ms < 50 else 'MISSED'})"
        )
    print("targets:\n  " + "\n  ".join(verdicts))
    return verdicts


if __name__ == "__main__":
    main()
