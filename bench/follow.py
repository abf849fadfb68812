"""Follow benchmark: how soon a commit in the lake is served, with the shipped follower.

A writer outside coursemart (delta-rs's ``write_deltalake``) appends a batch of 100 courses every
200 ms for 60 s; ``coursemart load --follow`` (its default interval) loads them into the
warehouse while ``coursemart serve`` answers a client that asks for the newest course every
20 ms. Each batch's courses start later than every course before them, so the newest course
tells which batches are served: the time from each commit to its courses being served, p50
and p99, on SQLite and PostgreSQL. During the PostgreSQL run the follower is SIGKILLed 5 times
and started again at once; after the writer stops, the warehouse must equal the lake.
Then an idle follower is watched: its CPU time and resident memory over ``--idle`` seconds.

    python bench/follow.py [--quick] [--seconds 60] [--idle 600]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from measure import (  # noqa: E402
    Results,
    add_run_options,
    coursemart_command,
    postgres_database,
    table,
)

BATCH = 100
EVERY = 0.2
FIRST_ID = 10_000_000
#: Each batch starts after every course before it, a minute per batch from here.
EPOCH = datetime(2099, 1, 1, tzinfo=UTC)


def outside_batch(number: int) -> pa.Table:
    """Batch ``number`` as another writer makes it: 100 new courses, later than all before."""
    first = FIRST_ID + number * BATCH
    moment = EPOCH + timedelta(minutes=number)
    return pa.table(
        {
            "course_id": pa.array(range(first, first + BATCH), pa.int64()),
            "course_name": [f"Streaming Analytics {i}" for i in range(first, first + BATCH)],
            "category_id": pa.array([1] * BATCH, pa.int32()),
            "level_id": pa.array([101] * BATCH, pa.int32()),
            "start_date": pa.array([moment] * BATCH, pa.timestamp("us", "UTC")),
            "batch_id": [f"{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}-w{number:05d}"] * BATCH,
        }
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spawn(arguments: list[str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(coursemart_command(*arguments), stdout=handle, stderr=handle)


@contextmanager
def serving(warehouse: str, scratch: Path) -> Any:
    port = free_port()
    process = spawn(["serve", "--warehouse", warehouse, "--port", str(port)], scratch / "serve.log")
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/health", timeout=2).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise SystemExit("coursemart serve did not start") from None
            time.sleep(0.2)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def newest_id(base: str) -> int | None:
    """The id of the course served first (the latest start)."""
    try:
        with urllib.request.urlopen(base + "/v1/courses/recent?limit=1", timeout=5) as answer:
            rows = json.loads(answer.read())["data"]
    except OSError:
        return None
    return int(rows[0]["course_id"]) if rows else None


def run_database(
    name: str, warehouse: str, scratch: Path, seconds: float, kills: int
) -> dict[str, Any]:
    """One run: writer, follower (killed ``kills`` times), client; the latencies."""
    from deltalake import write_deltalake

    from coursemart.generate import generate

    lake = scratch / f"lake-{name}"
    generate(str(lake), courses=10_000, seed=1)
    uri = str(lake / "courses")
    follow = ["load", "--follow", "--lake", str(lake), "--warehouse", warehouse, "-q"]
    log = scratch / f"follow-{name}.log"
    subprocess.run(coursemart_command("load", "--lake", str(lake), "--warehouse", warehouse, "-q"))
    follower = spawn(follow, log)
    committed: dict[int, float] = {}
    served: dict[int, float] = {}
    done = threading.Event()
    with serving(warehouse, scratch) as base:

        def client() -> None:
            while not done.is_set() or len(served) < len(committed):
                top = newest_id(base)
                now = time.monotonic()
                if top is not None and top >= FIRST_ID:
                    reached = (top - FIRST_ID) // BATCH
                    for number in range(reached + 1):
                        served.setdefault(number, now)
                if done.is_set() and time.monotonic() - stop_at > 120:
                    return
                time.sleep(0.02)

        stop_at = float("inf")
        watcher = threading.Thread(target=client, daemon=True)
        watcher.start()
        kill_times = sorted(seconds * (k + 1) / (kills + 1) for k in range(kills))
        began = time.monotonic()
        number = 0
        while time.monotonic() - began < seconds:
            write_deltalake(uri, outside_batch(number), mode="append")
            committed[number] = time.monotonic()
            number += 1
            if follower.poll() is not None:  # a restart found the killed one's lock still held
                follower = spawn(follow, log)
            if kill_times and time.monotonic() - began >= kill_times[0]:
                kill_times.pop(0)
                follower.send_signal(signal.SIGKILL)
                follower.wait()
                follower = spawn(follow, log)
            time.sleep(max(0.0, EVERY - (time.monotonic() - committed[number - 1])))
        stop_at = time.monotonic()
        done.set()
        watcher.join(timeout=180)
    follower.send_signal(signal.SIGTERM)
    follower.wait(timeout=120)
    latencies = [served[n] - committed[n] for n in committed if n in served]
    missing = [n for n in committed if n not in served]
    equal = warehouse_equals_lake(str(lake), warehouse)
    return {
        "database": name,
        "commits": len(committed),
        "served": len(latencies),
        "missing": len(missing),
        "kills": kills,
        "p50_seconds": statistics.median(latencies) if latencies else None,
        "p99_seconds": quantile(latencies, 0.99) if latencies else None,
        "max_seconds": max(latencies) if latencies else None,
        "warehouse_equals_lake": equal,
    }


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def warehouse_equals_lake(lake: str, warehouse: str) -> bool:
    """Each course of the lake (greatest batch wins) in the warehouse, and nothing else."""
    import sqlalchemy as sa
    from deltalake import DeltaTable

    rows = pa.table(DeltaTable(f"{lake}/courses").to_pyarrow_table())
    newest = rows.group_by("course_id").aggregate([("batch_id", "max")])
    expected = set(
        zip(newest["course_id"].to_pylist(), newest["batch_id_max"].to_pylist(), strict=True)
    )
    engine = sa.create_engine(warehouse)
    try:
        with engine.connect() as connection:
            stored = {
                tuple(row)
                for row in connection.exec_driver_sql("SELECT course_id, batch_id FROM courses")
            }
            versions = connection.exec_driver_sql(
                "SELECT COUNT(*), COUNT(DISTINCT version) FROM coursemart_versions"
            ).one()
    finally:
        engine.dispose()
    return stored == expected and versions[0] == versions[1]


def idle_cost(scratch: Path, seconds: float) -> dict[str, Any]:
    """CPU and resident memory of a follower with nothing to do, sampled every 5 s."""
    from coursemart.generate import generate

    lake = scratch / "lake-idle"
    generate(str(lake), courses=1_000, seed=1)
    warehouse = f"sqlite:///{scratch / 'idle.db'}"
    process = spawn(
        ["load", "--follow", "--lake", str(lake), "--warehouse", warehouse, "-q"],
        scratch / "idle.log",
    )
    time.sleep(10)  # its first load done
    ticks = os.sysconf("SC_CLK_TCK")

    def sample() -> tuple[float, float]:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        return cpu, rss

    first_cpu, first_rss = sample()
    began = time.monotonic()
    memory = [first_rss]
    while time.monotonic() - began < seconds:
        time.sleep(5)
        memory.append(sample()[1])
    last_cpu, last_rss = sample()
    elapsed = time.monotonic() - began
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    return {
        "seconds": round(elapsed, 1),
        "cpu_share_of_one_core": (last_cpu - first_cpu) / elapsed,
        "rss_first_mib": round(first_rss, 1),
        "rss_last_mib": round(last_rss, 1),
        "rss_max_mib": round(max(memory), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, help="how long the writer writes (default 60)")
    parser.add_argument("--idle", type=float, help="idle follower watched this long (600)")
    parser.add_argument("--keep", help="work in this folder and keep it (lakes, logs)")
    add_run_options(parser)
    args = parser.parse_args()
    seconds = args.seconds or (15.0 if args.quick else 60.0)
    idle = args.idle or (30.0 if args.quick else 600.0)
    record = Results("follow", args)
    runs = []
    with tempfile.TemporaryDirectory(prefix="coursemart-follow-") as folder:
        scratch = Path(args.keep) if args.keep else Path(folder)
        scratch.mkdir(parents=True, exist_ok=True)
        print(f"SQLite: writing for {seconds:.0f} s ...", flush=True)
        runs.append(run_database("sqlite", f"sqlite:///{scratch / 'w.db'}", scratch, seconds, 0))
        with postgres_database() as url:
            print(f"PostgreSQL: writing for {seconds:.0f} s, 5 kills ...", flush=True)
            runs.append(run_database("postgresql", url, scratch, seconds, 5))
        print(f"an idle follower for {idle:.0f} s ...", flush=True)
        idle_result = idle_cost(scratch, idle)
    rows = [["database", "commits", "served", "kills", "p50 s", "p99 s", "max s", "equal"]]
    for run in runs:
        rows.append(
            [
                run["database"],
                str(run["commits"]),
                str(run["served"]),
                str(run["kills"]),
                f"{run['p50_seconds']:.2f}",
                f"{run['p99_seconds']:.2f}",
                f"{run['max_seconds']:.2f}",
                str(run["warehouse_equals_lake"]),
            ]
        )
    print(table(rows))
    checks = [
        f"{run['database']}: p99 commit-to-served < 2 s: {run['p99_seconds']:.2f} s "
        f"({'met' if run['p99_seconds'] < 2 else 'MISSED'}); nothing lost or duplicated: "
        f"{'met' if run['missing'] == 0 and run['warehouse_equals_lake'] else 'MISSED'}"
        for run in runs
    ]
    share = idle_result["cpu_share_of_one_core"]
    growth = idle_result["rss_last_mib"] - idle_result["rss_first_mib"]
    checks.append(
        f"idle follower < 2% of a core: {share:.2%} ({'met' if share < 0.02 else 'MISSED'}); "
        f"memory {idle_result['rss_first_mib']}→{idle_result['rss_last_mib']} MiB over "
        f"{idle_result['seconds']:.0f} s ({'flat' if growth < 5 else 'GROWING'})"
    )
    print("targets: " + "; ".join(checks))
    record.save({"runs": runs, "idle": idle_result, "checks": checks})


if __name__ == "__main__":
    main()
