"""Delta lake benchmark: what the lake's move to a Delta table costs, each figure against anchors
measured in the same run (the machine is shared, and its speed varies twofold from day to day).

1. generate: ``coursemart.generate.generate`` into a fresh lake, committing through Delta,
   against the same generator finishing with the previous release's commit. The anchor runs the
   same function in its own process with ``BatchWriter.commit`` replaced, in that process only,
   by the previous release's commit: a ``_SUCCESS`` file written with fsspec, JSON
   ``{"batch_id", "rows", "max_id", "parts": [{"file", "rows", "bytes"}]}``. Everything else
   (the chunks, the part files, their statistics) is the same code, so the ratio is the price of
   the Delta commit alone. Target: Delta at >= 0.9x the anchor's rows/s.
2. load: 1M new courses into PostgreSQL, MariaDB and SQLite. ``load(lake, url)`` (the library
   call, after imports, into a warehouse made by coursemart's DDL, as bench/load.py measures it)
   against ``psql \\copy`` of the same rows into the same schema (PostgreSQL, target <= 1.5x),
   and against the figures bench/results/load.json held before the Delta lake (release
   8442716, read from git; target <= 1.1x). Since the machine's speed varies, the previous
   release's own ``coursemart load`` command (``--previous``, a checkout of that release) loads
   a lake it generated itself (same seed, size and dates) in the same run, beside today's
   command: both whole commands into an empty database (target <= 1.1x).
3. nothing to do: the whole ``coursemart load`` command (interpreter start included, output
   piped, as a script runs it) on a lake of 1,000 commits (1,000 small generates in one
   process; delta-rs checkpoints the log every 100 commits), loaded once; then timed ``--runs``
   times into SQLite and PostgreSQL (target: median < 0.8 s). Anchors: the same command on a
   one-commit lake, and the previous release's on a one-batch lake.
4. cancellations: a 10^7-course lake loaded into PostgreSQL; ``coursemart cancel`` of 10^5
   random ids (timed), then the ``coursemart load`` that applies them (target < 10 s). Anchor:
   the database's own floor for the same work, psql copying another 10^5 (id, batch) rows into
   a temporary table and one ``DELETE … USING`` it.

Whole commands are timed by GNU time: wall, CPU (user + system) and peak memory.

    python bench/delta.py [--parts generate,load,noop,cancel] [--previous PATH] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from coursemart.generate import Window, default_window, generate  # noqa: E402
from coursemart.lake import open_lake  # noqa: E402
from load import LOAD, batch_parquet, count, prepare, psql_copy  # noqa: E402
from measure import (  # noqa: E402
    Measurement,
    Results,
    add_run_options,
    coursemart_command,
    load_average,
    mariadb_database,
    postgres_database,
    run_case,
    table,
)

PARTS = ("generate", "load", "noop", "cancel")
#: The release before the Delta lake, whose committed load figures are "today's".
PREVIOUS_RELEASE = "8442716"
PREVIOUS = os.environ.get("COURSEMART_BENCH_PREVIOUS")

DELTA_GENERATE = """
from coursemart.generate import generate
BENCH_START
result = generate({lake!r}, courses={n}, seed=1)
assert result.rows == {n}, result
"""

#: The previous release's commit, put in place of the Delta commit in the anchor's process.
SUCCESS_COMMIT = """
import json
from coursemart.lake.writer import BatchWriter

def commit_with_success(self):
    parts = [
        {"file": path.rsplit("/", 1)[-1],
          "rows": json.loads(self.statistics[path])["numRecords"],
          "bytes": self.lake.fs.size(path)}
        for path in sorted(self.parts)
    ]
    record = {"batch_id": self.batch_id, "rows": self.rows, "max_id": self.max_id,
              "parts": parts}
    self.lake.fs.pipe_file(f"{self.lake.batch_dir(self.batch_id)}/_SUCCESS",
                           json.dumps(record).encode())
    self.committed = True

BatchWriter.commit = commit_with_success
"""

#: Many small commits in one process: a lake with a long log.
MANY_COMMITS = """
from coursemart.generate import generate
for seed in range({commits}):
    generate({lake!r}, courses={courses}, seed=seed)
"""


@dataclass(frozen=True)
class Timed:
    """A whole command's run: wall seconds, CPU seconds (user + system), peak, load average."""

    name: str
    seconds: float
    cpu_seconds: float
    peak_mib: float
    load: float


def run_timed(name: str, command: list[str]) -> tuple[Timed, str]:
    """Run a command as users do, timed by GNU time; what it printed."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        load = load_average()
        began = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%U %S %M", "-o", report.name, *command],
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - began
        if done.returncode != 0:
            shown = " ".join(command[:8]) + (" …" if len(command) > 8 else "")
            raise SystemExit(
                f"{name} failed (exit status {done.returncode}: {shown}):\n"
                f"{done.stdout[-2000:]}{done.stderr[-2000:]}{report.read()}"
            )
        user, system, peak = report.read().split()[-3:]
    timed = Timed(name, seconds, float(user) + float(system), int(peak) / 1024, load)
    return timed, done.stdout.strip()


def previous_command(previous: str | None, *arguments: str) -> list[str] | None:
    return None if previous is None else [previous, *arguments]


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def window_arguments(window: Window) -> list[str]:
    return ["--start", window.start.isoformat(), "--end", window.end.isoformat()]


# ---------------------------------------------------------------------------------------------
# 1. generate


def generate_part(sizes: list[int], repeat: int, scratch: Path) -> dict[str, Any]:
    """Each size ``repeat`` times, Delta and the ``_SUCCESS`` anchor alternating first."""
    runs: list[dict[str, Any]] = []
    for n in sizes:
        for attempt in range(repeat):
            order = ["delta", "_SUCCESS"] if attempt % 2 == 0 else ["_SUCCESS", "delta"]
            for commit in order:
                lake = scratch / f"generate-{commit.strip('_')}-{n}"
                code = DELTA_GENERATE.format(lake=str(lake), n=n)
                if commit == "_SUCCESS":
                    code = SUCCESS_COMMIT + code
                print(f"generate {n:,} courses, {commit} commit ...", flush=True)
                measured = run_case(f"generate, {commit} commit", code)
                check_generated(lake, n, delta=commit == "delta")
                shutil.rmtree(lake)
                runs.append({"courses": n, "commit": commit, **asdict(measured)})
    checks = []
    rows = [["courses", "commit", "median s", "rows/s", "runs (s)", "load avg"]]
    for n in sizes:
        medians = {}
        for commit in ("delta", "_SUCCESS"):
            mine = [r for r in runs if r["courses"] == n and r["commit"] == commit]
            medians[commit] = median([r["seconds"] for r in mine])
            rows.append(
                [
                    f"{n:,}",
                    commit,
                    f"{medians[commit]:.2f}",
                    f"{n / medians[commit]:,.0f}",
                    ", ".join(f"{r['seconds']:.2f}" for r in mine),
                    ", ".join(f"{r['load']:.1f}" for r in mine),
                ]
            )
        speed = medians["_SUCCESS"] / medians["delta"]
        checks.append(
            f"generate {n:,}: Delta at {speed:.2f}x the _SUCCESS commit's rows/s "
            f"({n / medians['delta']:,.0f} vs {n / medians['_SUCCESS']:,.0f}; "
            f"target >=0.9x: {verdict(speed >= 0.9)})"
        )
    print(table(rows))
    return {"sizes": sizes, "repeat": repeat, "runs": runs, "checks": checks}


def check_generated(lake: Path, n: int, *, delta: bool) -> None:
    """The run committed all ``n`` rows the way it was meant to."""
    courses = lake / "courses"
    if delta:
        files = open_lake(str(lake)).live_files()
        assert sum(file.rows or 0 for file in files) == n, f"{lake}: not {n:,} rows committed"
        return
    assert not (courses / "_delta_log").exists(), f"{lake}: the anchor made a Delta table"
    (success,) = courses.glob("batch_id=*/_SUCCESS")
    assert json.loads(success.read_text())["rows"] == n, f"{success}: not {n:,} rows"


# ---------------------------------------------------------------------------------------------
# 2. load


PSQL_COPY = "psql \\copy"
#: Today's figures (bench/results/load.json before the Delta lake): the library call.
TODAY_CONTENDER = "coursemart full"


def todays_figures() -> dict[str, dict[str, Any]]:
    """The library-call load figures committed in bench/results/load.json at the release
    before the Delta lake, by database; empty without git."""
    try:
        text = subprocess.run(
            ["git", "show", f"{PREVIOUS_RELEASE}:bench/results/load.json"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    record = json.loads(text)
    return {
        r["database"]: {**r, "started": record["started"], "rows": record["rows"]}
        for r in record["results"]
        if r["contender"] == TODAY_CONTENDER
    }


def load_part(n: int, repeat: int, previous: str | None, scratch: Path) -> dict[str, Any]:
    """The load contenders, each ``repeat`` times in alternating order."""
    window = default_window()
    lake = str(scratch / "load-lake")
    first = generate(lake, courses=n, seed=1, window=window)
    parquet = batch_parquet(lake, first.batch_id, scratch / "load-batch.parquet")
    old_lake = str(scratch / "load-lake-previous")
    make_old = previous_command(
        previous, "generate", "-q", "-n", str(n), "--seed", "1", "--lake", old_lake
    )
    if make_old:
        subprocess.run([*make_old, *window_arguments(window)], check=True)
        same_rows(lake, old_lake)
    else:
        print("previous release skipped: give --previous (its coursemart command)")

    def library(url: str) -> Measurement:
        prepare(url)
        return run_case("coursemart load (library)", LOAD.format(lake=lake, url=url))

    def command(url: str) -> Timed:
        return run_timed("coursemart load", coursemart_command("load", "-q", *where(lake, url)))[0]

    def old_command(url: str) -> Timed:
        assert make_old is not None
        arguments = previous_command(previous, "load", "-q", *where(old_lake, url))
        assert arguments is not None
        return run_timed("previous release: coursemart load", arguments)[0]

    def psql(url: str) -> Measurement:
        prepare(url)
        return psql_copy(url, parquet.with_suffix(".csv"))

    contenders: list[tuple[str, str, Callable[[str], Measurement | Timed]]] = []
    for database in ("postgresql", "mariadb", "sqlite"):
        if database == "postgresql":
            contenders.append((database, PSQL_COPY, psql))
        contenders.append((database, "coursemart load (library)", library))
        contenders.append((database, "coursemart load command", command))
        if make_old:
            contenders.append((database, "previous release: coursemart load command", old_command))
    runs: list[dict[str, Any]] = []
    for attempt in range(repeat):
        for database in ("postgresql", "mariadb", "sqlite"):
            mine = [c for c in contenders if c[0] == database]
            print(f"load {n:,} courses into {database} (run {attempt + 1}) ...", flush=True)
            for _, contender, measure_it in mine if attempt % 2 == 0 else mine[::-1]:
                with warehouse_url(database, scratch) as url:
                    measured = measure_it(url)
                    assert count(url) == n, f"{contender} into {database}: not {n:,} rows"
                runs.append({"database": database, "contender": contender, **asdict(measured)})
    return {"rows": n, "repeat": repeat, "runs": runs, **load_checks(runs, todays_figures(), n)}


def same_rows(lake: str, old_lake: str) -> None:
    """Both lakes hold the same courses (the previous release's generator, same seed and dates)."""
    import pyarrow.parquet as pq

    ours = pa.concat_tables(
        pq.read_table(path)
        for path in open_lake(lake).batch_files(open_lake(lake).committed_batches()[0])
    )
    theirs = pq.read_table(Path(old_lake) / "courses", partitioning=None)
    keys = [("course_id", "ascending")]
    assert ours.sort_by(keys).equals(theirs.select(ours.column_names).sort_by(keys)), (
        f"{old_lake} does not hold the rows of {lake}"
    )


def where(lake: str, url: str) -> list[str]:
    return ["--lake", lake, "--warehouse", url]


class warehouse_url:  # noqa: N801 - used as a context manager, like the helpers it picks from
    """A new, empty database of the kind named; dropped (or deleted) afterwards."""

    def __init__(self, database: str, scratch: Path) -> None:
        self.database, self.scratch = database, scratch
        self.context: Any = None

    def __enter__(self) -> str:
        if self.database == "sqlite":
            self.path = self.scratch / f"warehouse-{time.monotonic_ns()}.db"
            return f"sqlite:///{self.path}"
        self.context = postgres_database() if self.database == "postgresql" else mariadb_database()
        return str(self.context.__enter__())

    def __exit__(self, *exc: object) -> None:
        if self.context is not None:
            self.context.__exit__(*exc)
            return
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def load_checks(
    runs: list[dict[str, Any]], today: dict[str, dict[str, Any]], courses: int
) -> dict[str, Any]:
    """The medians, and the three comparisons: psql \\copy, today's figures, the previous
    release in the same run."""
    medians: dict[str, dict[str, float]] = {}
    rows = [["database", "contender", "median s", "runs (s)", "cpu s", "load avg"]]
    for r in runs:
        medians.setdefault(r["database"], {}).setdefault(r["contender"], 0.0)
    for database, contenders in medians.items():
        for contender in contenders:
            mine = [r for r in runs if r["database"] == database and r["contender"] == contender]
            contenders[contender] = median([r["seconds"] for r in mine])
            rows.append(
                [
                    database,
                    contender,
                    f"{contenders[contender]:.2f}",
                    ", ".join(f"{r['seconds']:.2f}" for r in mine),
                    ", ".join(f"{r['cpu_seconds']:.2f}" for r in mine if "cpu_seconds" in r),
                    ", ".join(f"{r['load']:.1f}" for r in mine),
                ]
            )
    print(table(rows))
    checks = []
    pg = medians.get("postgresql", {})
    if PSQL_COPY in pg:
        ours, anchor = pg["coursemart load (library)"], pg[PSQL_COPY]
        checks.append(
            f"postgresql: coursemart load is {ours / anchor:.2f}x the time of psql \\copy "
            f"({ours:.2f} s vs {anchor:.2f} s; target <=1.5x: {verdict(ours / anchor <= 1.5)})"
        )
    for database, contenders in medians.items():
        ours = contenders["coursemart load (library)"]
        if database in today and today[database]["rows"] == courses:
            then = today[database]
            ratio = ours / then["seconds"]
            checks.append(
                f"{database}: coursemart load is {ratio:.2f}x the time of the figure before the "
                f"Delta lake ({ours:.2f} s vs {then['seconds']:.2f} s measured "
                f"{then['started'][:10]} at load {then['load']:.1f}; target <=1.1x: "
                f"{verdict(ratio <= 1.1)})"
            )
        old = contenders.get("previous release: coursemart load command")
        if old is not None:
            ratio = contenders["coursemart load command"] / old
            checks.append(
                f"{database}: coursemart load command is {ratio:.2f}x the time of the previous "
                f"release's in the same run ({contenders['coursemart load command']:.2f} s vs "
                f"{old:.2f} s; target <=1.1x: {verdict(ratio <= 1.1)})"
            )
    return {"medians": medians, "today": today, "checks": checks}


# ---------------------------------------------------------------------------------------------
# 3. nothing to do


def noop_part(commits: int, runs: int, previous: str | None, scratch: Path) -> dict[str, Any]:
    """A lake of ``commits`` commits, loaded once; then the nothing-to-do load timed."""
    lake = str(scratch / "noop-lake")
    print(f"noop: {commits:,} commits ...", flush=True)
    began = time.perf_counter()
    code = MANY_COMMITS.format(lake=lake, commits=commits, courses=100)
    subprocess.run([sys.executable, "-c", code], check=True)
    built = time.perf_counter() - began
    log = Path(lake) / "courses" / "_delta_log"
    checkpoints = sorted(path.name for path in log.glob("*.checkpoint*.parquet"))
    last = json.loads((log / "_last_checkpoint").read_text()) if checkpoints else None
    print(f"{commits:,} commits in {built:.0f} s; {len(checkpoints)} checkpoints, last {last}")
    small_lake, old_lake = str(scratch / "noop-small"), str(scratch / "noop-previous")
    generate(small_lake, courses=100, seed=1)
    make_old = previous_command(previous, "generate", "-q", "-n", "100", "--lake", old_lake)
    if make_old:
        subprocess.run(make_old, check=True)
    with ExitStack() as stack:
        sqlite_url = f"sqlite:///{scratch / 'noop.db'}"
        pg_url = stack.enter_context(postgres_database())
        cases = [
            (
                "sqlite",
                f"{commits:,} commits",
                coursemart_command(*load_arguments(lake, sqlite_url)),
            ),
            (
                "postgresql",
                f"{commits:,} commits",
                coursemart_command(*load_arguments(lake, pg_url)),
            ),
        ]
        small_url = f"sqlite:///{scratch / 'noop-small.db'}"
        cases.append(
            ("sqlite", "1 commit", coursemart_command(*load_arguments(small_lake, small_url)))
        )
        if make_old:
            old_sqlite = f"sqlite:///{scratch / 'noop-previous.db'}"
            old_pg = stack.enter_context(postgres_database())
            for database, url in (("sqlite", old_sqlite), ("postgresql", old_pg)):
                arguments = previous_command(previous, *load_arguments(old_lake, url))
                assert arguments is not None
                cases.append((database, "previous release, 1 batch", arguments))
        cases.append(("", "python -c pass", [sys.executable, "-c", "pass"]))
        first_loads, measured = noop_runs(cases, runs)
    return {
        "commits": commits,
        "build_seconds": built,
        "checkpoints": checkpoints,
        "last_checkpoint": last,
        "first_loads": first_loads,
        **noop_checks(measured, commits),
    }


def load_arguments(lake: str, url: str) -> list[str]:
    """``coursemart load`` as a script runs it (its summary line printed, no progress bar)."""
    return ["load", *where(lake, url)]


def noop_runs(
    cases: list[tuple[str, str, list[str]]], runs: int
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Each case's first load (timed, apart), then ``runs`` rounds of nothing-to-do loads."""
    first_loads = {}
    for database, case, command in cases:
        timed, _ = run_timed(f"first load, {case}", command)
        first_loads[f"{database}, {case}"] = timed.seconds
    measured = []
    for _ in range(runs):
        for database, case, command in cases:
            timed, printed = run_timed(case, command)
            assert database == "" or printed.startswith("nothing to do"), printed
            measured.append({"database": database, "case": case, **asdict(timed)})
    return first_loads, measured


def noop_checks(measured: list[dict[str, Any]], commits: int) -> dict[str, Any]:
    rows = [["database", "lake", "median s", "max s", "median cpu s", "runs (s)", "load avg"]]
    summary: dict[str, dict[str, float]] = {}
    for database, case in dict.fromkeys((m["database"], m["case"]) for m in measured):
        mine = [m for m in measured if m["database"] == database and m["case"] == case]
        seconds = [m["seconds"] for m in mine]
        summary[f"{database}, {case}"] = {
            "median": median(seconds),
            "max": max(seconds),
            "median_cpu": median([m["cpu_seconds"] for m in mine]),
        }
        rows.append(
            [
                database,
                case,
                f"{median(seconds):.3f}",
                f"{max(seconds):.3f}",
                f"{summary[f'{database}, {case}']['median_cpu']:.3f}",
                ", ".join(f"{s:.2f}" for s in seconds),
                ", ".join(f"{m['load']:.1f}" for m in mine),
            ]
        )
    print(table(rows))
    checks = []
    for database in ("sqlite", "postgresql"):
        ours = summary.get(f"{database}, {commits:,} commits")
        if ours is None:
            continue
        line = (
            f"{database}: nothing-to-do load, whole command, {commits:,} commits: median "
            f"{ours['median']:.2f} s, max {ours['max']:.2f} s (target <0.8 s: "
            f"{verdict(ours['median'] < 0.8)})"
        )
        old = summary.get(f"{database}, previous release, 1 batch")
        if old is not None:
            line += (
                f"; {ours['median'] / old['median']:.2f}x the previous release's on one batch "
                f"({old['median']:.2f} s) in the same run"
            )
        checks.append(line)
    return {"runs": measured, "summary": summary, "checks": checks}


# ---------------------------------------------------------------------------------------------
# 4. cancellations


CANCEL_FLOOR = """
CREATE TEMP TABLE floor_removed (course_id bigint, batch_id text);
\\copy floor_removed FROM {csv!r} (FORMAT csv)
DELETE FROM courses USING floor_removed AS removed
 WHERE courses.course_id = removed.course_id AND courses.batch_id <= removed.batch_id;
"""


def cancel_part(n: int, cancels: int, scratch: Path) -> dict[str, Any]:
    """``cancels`` random courses cancelled in an ``n``-course lake loaded into PostgreSQL."""
    lake = str(scratch / "cancel-lake")
    print(f"cancel: generating {n:,} courses ...", flush=True)
    batch = generate(lake, courses=n, seed=1).batch_id
    rng = np.random.default_rng(7)
    chosen = rng.choice(n, size=2 * cancels, replace=False) + 1
    cancelled, others = sorted(chosen[:cancels].tolist()), np.sort(chosen[cancels:])
    with postgres_database() as url:
        print(f"cancel: loading {n:,} courses into PostgreSQL ...", flush=True)
        first, _ = run_timed(
            "coursemart load (first)", coursemart_command(*load_arguments(lake, url))
        )
        cancel, said = run_timed(
            "coursemart cancel",
            coursemart_command("cancel", "--lake", lake, *map(str, cancelled)),
        )
        print(said)
        table_ = open_lake(lake).delta()
        history = table_.history(1)[0]
        assert history["operation"] in ("DELETE", "MERGE"), history
        applied, said = run_timed(
            "coursemart load (cancellations)", coursemart_command(*load_arguments(lake, url))
        )
        print(said)
        assert count(url) == n - cancels, f"not {n - cancels:,} courses after the load"
        csv = scratch / "floor-removed.csv"
        csv.write_text("".join(f"{course_id},{batch}\n" for course_id in others.tolist()))
        script = scratch / "floor.sql"
        script.write_text(CANCEL_FLOOR.format(csv=str(csv)))
        database = url.rsplit("/", 1)[1]
        floor, _ = run_timed(
            "psql: COPY + DELETE … USING",
            ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres",
             "-d", database, "-1", "-f", str(script)],
        )  # fmt: skip
        assert count(url) == n - 2 * cancels
    checks = [
        f"postgresql: {cancels:,} cancellations applied into {n:,} courses by coursemart load in "
        f"{applied.seconds:.2f} s (target <10 s: {verdict(applied.seconds < 10)}); "
        f"{applied.seconds / floor.seconds:.2f}x psql's COPY + DELETE … USING of as many "
        f"({floor.seconds:.2f} s); coursemart cancel took {cancel.seconds:.2f} s"
    ]
    runs = [first, cancel, applied, floor]
    print(table([["step", "s", "cpu s", "peak MiB", "load avg"]] + [
        [t.name, f"{t.seconds:.2f}", f"{t.cpu_seconds:.2f}", f"{t.peak_mib:.0f}", f"{t.load:.1f}"]
        for t in runs
    ]))  # fmt: skip
    return {
        "courses": n,
        "cancellations": cancels,
        "delete_operation": history["operation"],
        "delete_metrics": history.get("operationMetrics"),
        "runs": [asdict(t) for t in runs],
        "checks": checks,
    }


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help="which benchmarks to run")
    parser.add_argument("--sizes", help="generate: comma-separated course counts")
    parser.add_argument("--repeat", type=int, help="runs of each generate and load case")
    parser.add_argument(
        "--previous",
        default=PREVIOUS,
        help="the previous release's coursemart command (default: COURSEMART_BENCH_PREVIOUS)",
    )
    add_run_options(parser)
    args = parser.parse_args()
    parts = [part for part in args.parts.split(",") if part]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}: choose among {', '.join(PARTS)}")
    quick = args.quick
    sizes = [int(s) for s in (args.sizes or ("100000" if quick else "1000000,10000000")).split(",")]
    repeat = args.repeat or (1 if quick else 3)
    record = Results("delta", args)
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="coursemart-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        for part in parts:
            started = load_average()
            if part == "generate":
                found[part] = generate_part(sizes, repeat, scratch)
            elif part == "load":
                found[part] = load_part(
                    50_000 if quick else 1_000_000, repeat, args.previous, scratch
                )
            elif part == "noop":
                found[part] = noop_part(100 if quick else 1_000, 5, args.previous, scratch)
            else:
                found[part] = cancel_part(
                    100_000 if quick else 10_000_000, 1_000 if quick else 100_000, scratch
                )
            found[part]["load_at_start"] = started
            found[part]["measured"] = datetime.now(UTC).isoformat(timespec="seconds")
            print("\n".join(found[part]["checks"]), flush=True)
    print("targets:\n" + "\n".join(line for part in parts for line in found[part]["checks"]))
    found = {**earlier_parts(record.folder / "delta.json", parts), **found}
    ordered = [part for part in PARTS if part in found]
    checks = [line for part in ordered for line in found[part]["checks"]]
    record.save({**{part: found[part] for part in ordered}, "parts": ordered, "checks": checks})


def earlier_parts(path: Path, ran: list[str]) -> dict[str, Any]:
    """The parts of an earlier results file that this run did not measure (``--parts`` names
    some): kept, each with the time it was measured, so that one file holds every part."""
    if not path.exists():
        return {}
    earlier = json.loads(path.read_text())
    return {
        part: {**earlier[part], "measured": earlier[part].get("measured", earlier["finished"])}
        for part in PARTS
        if part not in ran and part in earlier
    }


if __name__ == "__main__":
    main()
