"""Render docs/benchmarks.md and its charts (docs/img/*.png) from the benchmarks' results.

Every benchmark in bench/ records what it measured in bench/results/<name>.json, with the
machine, the versions, the date and the load average; this script turns those files into the
page and the pictures, and the README's block of headline figures, so that every number shown
comes from a committed script. The prose (what each figure means and why it is what it is)
lives here, beside the code that fills in the numbers.

    python bench/report.py [--quick] [--results DIR] [--out docs/benchmarks.md]

With ``--quick`` it reads bench/results/quick/ and writes bench/results/quick/benchmarks.md (and
its img/), leaving docs/ and the README alone.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from coursemart.load.validate import MAX_BITMAP_IDS  # noqa: E402
from measure import QUICK_RESULTS, RESULTS  # noqa: E402

ROOT = Path(__file__).parent.parent
README_BLOCK = re.compile(
    r"(<!-- figures: written by bench/report.py -->\n).*?(<!-- /figures -->)", re.DOTALL
)
Record = dict[str, Any]
COLOURS = {"coursemart": "#1f77b4", "anchor": "#b0b0b0", "floor": "#ff7f0e"}
#: How each database a result names is written on the page.
DATABASE_NAMES = {
    "sqlite": "SQLite",
    "postgresql": "PostgreSQL",
    "mariadb": "MariaDB",
    "mysql": "MySQL",
    "mssql": "SQL Server",
}


# ---------------------------------------------------------------------------------------------
# Formatting


def number(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def seconds(value: float) -> str:
    return f"{value:,.2f} s" if value < 10 else f"{value:,.1f} s"


def mib(value: float) -> str:
    return f"{value:,.0f} MiB"


def rate(rows: float, taken: float) -> str:
    per_second = rows / taken
    return f"{per_second / 1e6:.2f} M rows/s" if per_second >= 1e6 else f"{per_second:,.0f} rows/s"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def when(record: Record) -> str:
    """When and under what load a benchmark ran."""
    return (
        f"measured {record['started'][:16].replace('T', ' ')} UTC, load average "
        f"{record['load_at_start']:.1f} at the start and {record['load_at_end']:.1f} at the end"
    )


def command(name: str) -> str:
    """The benchmark command that wrote the results called ``name``."""
    return "bench/scale.py --huge" if name == "scale-huge" else f"bench/{name}.py"


def checks(record: Record) -> str:
    return "\n".join(f"- {line}" for line in record.get("checks", record.get("goals", [])))


def missing(name: str, command: str) -> str:
    return f"_Not measured in this run: `{command}` writes `bench/results/{name}.json`._"


def save(figure: plt.Figure, images: Path, name: str) -> str:
    """Write the figure as ``images/name.png``; its Markdown, relative to the page."""
    images.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(images / f"{name}.png", dpi=110)
    plt.close(figure)
    return f"![{name}]({images.name}/{name}.png)"


def log_log(axes: Axes, xlabel: str, ylabel: str) -> None:
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, which="both", alpha=0.3)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axes.yaxis.set_minor_formatter(NullFormatter())


def bars(axes: Axes, labels: list[str], values: list[float], colours: list[str]) -> None:
    """Horizontal bars, first label on top, each with its value."""
    positions = list(range(len(labels)))[::-1]
    axes.barh(positions, values, color=colours)
    axes.set_yticks(positions, labels)
    for y, value in zip(positions, values, strict=True):
        axes.text(value, y, f" {value:,.2f}" if value < 100 else f" {value:,.0f}", va="center")


# ---------------------------------------------------------------------------------------------
# The page's head: where, when, with what


def header(results: dict[str, Record]) -> str:
    first = next(iter(results.values()))
    machine, versions = first["machine"], first["versions"]
    runs = markdown_table(
        ["benchmark", "when and under what load"],
        [[f"`{command(name)}`", when(r)] for name, r in results.items()],
    )
    listed = ", ".join(f"{name} {version}" for name, version in versions.items() if version)
    return f"""# Benchmarks

This page and its charts are written by `bench/report.py` from the results that `make bench`
(and `make bench-scale`) record in `bench/results/*.json`: every figure here comes from those
scripts. Each benchmark compares coursemart with named anchors measured in the same run and
prints the ratios; each case runs in its own process, so a peak memory is that process's own.

Machine: {machine["cores"]} cores ({machine["cpu"]}), {machine["memory_gib"]} GiB of memory,
{machine["system"]}, shared with other work: the load average is given with each run (on 2 cores,
above 2 means work was waiting for a core, and every time is longer than on a quiet machine).
Versions: {listed}.

{runs}"""


# ---------------------------------------------------------------------------------------------
# Generate


def generate_section(results: dict[str, Record], images: Path) -> str:
    record = results.get("generate")
    if record is None:
        return "## Generate (`bench/generate.py`)\n\n" + missing("generate", "bench/generate.py")
    found = {(r["engine"], r["courses"]): r for r in record["results"]}
    rows = []
    for n in record["sizes"]:
        ours, theirs = found["coursemart", n], found["original", n]
        rows.append(
            [
                number(n),
                f"{seconds(ours['seconds'])} ({rate(n, ours['seconds'])})",
                f"{seconds(theirs['seconds'])} ({rate(n, theirs['seconds'])})",
                f"{theirs['seconds'] / ours['seconds']:.1f}×",
                mib(ours["peak_mib"]),
                mib(theirs["peak_mib"]),
                f"{ours['load']:.1f}",
            ]
        )
    header = ["courses", "coursemart", "original", "speed-up", "coursemart peak"]
    text = markdown_table([*header, "original peak", "load avg"], rows)
    small, large = min(record["sizes"]), max(record["sizes"])
    growth = found["coursemart", large]["peak_mib"] / found["coursemart", small]["peak_mib"]
    theirs_growth = found["original", large]["peak_mib"] / found["original", small]["peak_mib"]
    chart = generate_chart(record, found, images)
    return f"""## Generate (`bench/generate.py`)

Anchor: the original notebook's approach, a per-row Python loop building a list of tuples (name
and start date made one row at a time), turned into a pandas frame and written as Parquet. Times
exclude interpreter start and imports ({when(record)}).

{text}

{checks(record)}

Peak memory at {number(large)} courses is {growth:.2f}× that at {number(small)}: the generator
holds at most two chunks of 250,000 rows at a time. The original's grows with the row count
({theirs_growth:.1f}×).

{chart}

How: every possible name (opening × subject × closing, about 49,000 strings) is built once, so a
chunk's names are one Arrow `take`; start dates are drawn as integers and ordered by a 16-bit
quarter-hour key (numpy's radix sort) before any string exists, so part files come out sorted by
`start_date` with no table sort; two threads each build and write a chunk (numpy and the Parquet
writer release the GIL); Parquet dictionaries only for the columns that repeat (names,
categories, levels), which makes files a fifth smaller and writes a third faster."""


def generate_chart(record: Record, found: dict[tuple[str, int], Record], images: Path) -> str:
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    sizes = record["sizes"]
    for engine, colour in (("coursemart", COLOURS["coursemart"]), ("original", COLOURS["anchor"])):
        left.plot(sizes, [found[engine, n]["seconds"] for n in sizes], "o-", color=colour)
        right.plot(sizes, [found[engine, n]["peak_mib"] for n in sizes], "o-", color=colour)
    log_log(left, "courses", "seconds")
    log_log(right, "courses", "peak MiB")
    left.legend(["coursemart", "original notebook"])
    left.set_title("generate: time")
    right.set_title("generate: peak memory")
    return save(figure, images, "generate")


# ---------------------------------------------------------------------------------------------
# Load


def load_section(results: dict[str, Record], images: Path) -> str:
    record = results.get("load")
    if record is None:
        return "## Load (`bench/load.py`)\n\n" + missing("load", "bench/load.py")
    n = record["rows"]
    rows = []
    for r in record["results"]:
        moved = (
            0
            if "re-run" in r["contender"]
            else n * (1.05 if "incremental" in r["contender"] else 1)
        )
        rows.append(
            [
                DATABASE_NAMES.get(r["database"], r["database"]),
                r["contender"],
                seconds(r["seconds"]),
                rate(moved, r["seconds"]) if moved else "",
                mib(r["peak_mib"]),
                f"{r['load']:.1f}",
            ]
        )
    text = markdown_table(["database", "contender", "time", "rows/s", "peak", "load avg"], rows)
    chart = load_chart(record, images)
    memory = record.get("memory", {})
    memory_line = ""
    if len(memory) == 2:
        small, large = sorted(memory, key=int)
        memory_line = (
            f"A {number(int(large))}-course load into PostgreSQL peaks at "
            f"{mib(memory[large]['peak_mib'])}, against {mib(memory[small]['peak_mib'])} for "
            f"{number(int(small))} ({number(int(large))} rows in "
            f"{seconds(memory[large]['seconds'])}). "
        )
    return f"""## Load (`bench/load.py`)

Every contender loads the same {number(n)} new courses into an identical, freshly created
warehouse table (coursemart's DDL: primary key, both foreign keys, the `(start_date, course_id)`
index, the `batch_id` lineage column), the dimensions already in place. `pandas.to_sql`,
`sqlite-utils` and Spark append to that table, as the original job appended. Times exclude
interpreter start, except for "coursemart load command", which is the whole `coursemart load`
command as a user runs it (interpreter start, imports, reading, validation, writing, commit).
Peaks are each process's own high-water mark (psql's and Spark's JVM memory is not counted);
{when(record)}.

{text}

{checks(record)}

{chart}

Why coursemart beats `psql \\copy` on its own table: `\\copy` fires the foreign-key trigger for
every row and updates the primary key and the index row by row. coursemart has already checked
every category and level id against the dimension tables under the load lock, share-locks them
until commit, and skips the per-row triggers (`session_replication_role = replica`, when the role
may; see [reliability.md](reliability.md)). New ids go straight into `courses` by COPY; only ids
that may already exist go through the staging table and `INSERT … ON CONFLICT` (and, once the
listing index outgrows the server's shared buffers, every row, the new ids then inserted in that
index's order: see the scaling section). Into an empty
table (this benchmark's full load) the indexes are dropped and built again after the rows, inside
the load's transaction
([reliability.md](reliability.md#a-first-load-builds-the-indexes-after-the-rows)); the
incremental load keeps them and updates them row by row, which is why it is slower.

{sqlite_breakdown(record)}
SQLite's anchor is its own floor: `INSERT INTO courses SELECT … FROM` the same rows, with the
values coursemart binds, already in an attached SQLite file, into the same table with the same
indexes and search-index triggers, through a connection with coursemart's settings. That is the
B-tree work alone, with no parsing and no Python. In the lake's order (by `start_date`) the
table's own B-tree (keyed by `course_id`) is written at random places. coursemart stages each
batch in a temporary table and moves it into `courses` with one `INSERT … SELECT … ORDER BY
course_id`, so the floor in `course_id` order is the stricter anchor for it. What coursemart's
whole command adds on top: starting Python and importing pyarrow and SQLAlchemy, reading and
validating the Parquet files, and turning every row into Python values for the driver's prepared
statement into the temporary table (SQLite has no bulk path that takes columns). One statement
per batch matters for the FTS5 search index: the same rows inserted a statement at a time (as
prepared batches straight into `courses`) took three times as long, 25 s against 9 s for a
million courses (2026-11-29). Building the secondary index after the rows, as PostgreSQL first
loads do, saves little on SQLite, so SQLite loads keep their index.

{memory_line}Duplicate ids inside a batch are found with a bitmap over the batch's id range (from
the Parquet footers) instead of holding every id, so a load's memory follows the chunk size, not
the row count."""


def sqlite_breakdown(record: Record) -> str:
    """Where the whole SQLite load command's time goes, from the run's own rows."""
    found = {r["contender"]: r["seconds"] for r in record["results"] if r["database"] == "sqlite"}
    names = ("coursemart load command", "coursemart full", "SQLite INSERT … SELECT")
    if not all(name in found for name in names):
        return ""
    whole, library, floor = (found[name] for name in names)
    ordered = found.get("SQLite INSERT … SELECT, in course_id order")
    against_ordered = (
        f" and {seconds(ordered)} in `course_id` order, the order coursemart writes in "
        f"({whole / ordered:.2f}× it)"
        if ordered
        else ""
    )
    return (
        f"Where the whole SQLite command's {seconds(whole)} go: {seconds(whole - library)} "
        f"starting Python and importing, {seconds(library)} the load itself (reading, "
        "validating, staging the rows as Python values, and SQLite's B-tree work). SQLite's own "
        f"floor for the same rows takes {seconds(floor)} in the lake's order "
        f"(the whole command is {whole / floor:.2f}× it){against_ordered}.\n"
    )


def load_chart(record: Record, images: Path) -> str:
    entries = [r for r in record["results"] if "re-run" not in r["contender"]]
    figure, axes = plt.subplots(figsize=(9, 0.42 * len(entries) + 1.2))
    labels = [f"{r['database']}: {r['contender']}" for r in entries]
    colours = [
        COLOURS["coursemart"]
        if r["contender"].startswith("coursemart")
        else COLOURS["floor"]
        if "SELECT" in r["contender"]
        else COLOURS["anchor"]
        for r in entries
    ]
    bars(axes, labels, [r["seconds"] for r in entries], colours)
    axes.set_xscale("log")
    axes.set_xlabel(
        f"seconds to load {number(record['rows'])} courses (log scale; shorter is better)"
    )
    axes.set_title("load: coursemart (blue), SQLite's own floor (orange), the usual ways (grey)")
    return save(figure, images, "load")


# ---------------------------------------------------------------------------------------------
# Spark


def spark_section(results: dict[str, Record], images: Path) -> str:
    record = results.get("spark")
    if record is None:
        return "## Spark (`bench/spark.py`)\n\n" + missing("spark", "bench/spark.py")
    header, *rows = record["table"]
    text = markdown_table(header, rows)
    taken = record["seconds"]
    figure, axes = plt.subplots(figsize=(9, 2.2))
    labels = list(taken)
    colours = [COLOURS["anchor"] if k == "original" else COLOURS["coursemart"] for k in labels]
    bars(axes, labels, list(taken.values()), colours)
    axes.set_xlabel(f"seconds, end to end, {number(record['rows'])} courses, Spark local[2]")
    chart = save(figure, images, "spark")
    seconds = record.get("warm_up_seconds")
    warmed = f", done {seconds:.0f} s after the run returned" if seconds else ""
    return f"""## Spark (`bench/spark.py`)

End to end, {number(record["rows"])} courses generated, written to a lake and loaded into a fresh
PostgreSQL database, Spark in `local[2]`, each timed from its command's start (JVM start included;
the original's generate and load are two Spark applications, as its two notebooks were).
coursemart runs twice, each on a fresh lake and database: first as the first Spark run on a
machine (no class archive yet: once it has succeeded, a warm-up records one in the
background{warmed}), then, that warm-up finished, as every later run goes (the archive
mapped); {when(record)}.

{text}

{checks(record)}

{chart}

Where coursemart's time goes: Python imports, starting the JVM and the Spark session (shorter
with the class archive mapped), generating (Spark scheduling and starting Python workers; the work
itself is the local engine's fraction of a second), reading, validating and COPYing into the
unlogged staging table, and PostgreSQL's merge and index build. The original spends its time in a
per-row Python loop, a pandas-to-Spark conversion, two JVM start-ups and row-by-row JDBC inserts,
and skips the validation, the merge and the bookkeeping that make coursemart's re-run correct.
The first Spark run on a machine also writes the class archive, once. The Spark engine is for
data that outgrows one machine; on one machine the local engine does the same generate and load
in a few seconds (see the scaling curves below)."""


# ---------------------------------------------------------------------------------------------
# Delta lake


def delta_section(results: dict[str, Record], images: Path) -> str:
    """The Delta lake's acceptance figures, each against its anchors of the same run."""
    record = results.get("delta")
    title = "## Delta lake (`bench/delta.py`)"
    if record is None:
        return f"{title}\n\n" + missing("delta", "bench/delta.py")
    parts = [
        f"""{title}

What moving the lake to a Delta table costs, each figure beside anchors measured in the same run:
the machine is shared and its speed varies twofold from day to day, so only a same-run ratio
compares. {when(record)[0].upper() + when(record)[1:]}; the load average is also given per case
(on these 2 cores, a `python -c pass` that takes 0.01 s on a quiet machine is the measure of how
busy it was)."""
    ]
    for name, render in (
        ("generate", delta_generate),
        ("load", delta_load),
        ("noop", delta_noop),
        ("cancel", delta_cancel),
    ):
        if name in record:
            parts.append(f"{render(record[name])}\n\n{part_when(record, record[name])}")
    parts.append(f"Checks, as `bench/delta.py` printed them:\n\n{checks(record)}")
    return "\n\n".join(parts)


def part_when(record: Record, part: Record) -> str:
    """When one part of a multi-part benchmark was measured (parts may come from several runs:
    ``--parts`` measures some and keeps the others)."""
    finished = part.get("measured", record["finished"])
    return (
        f"_This part: finished {finished[:16].replace('T', ' ')} UTC, load average "
        f"{part.get('load_at_start', record['load_at_start']):.1f} when it started._"
    )


def _medians(runs: list[Record], key: str, value: str) -> dict[Any, float]:
    grouped: dict[Any, list[float]] = {}
    for run in runs:
        grouped.setdefault(run[key], []).append(run[value])
    return {k: sorted(v)[len(v) // 2] for k, v in grouped.items()}


def delta_generate(part: Record) -> str:
    rows = []
    for n in part["sizes"]:
        runs = [r for r in part["runs"] if r["courses"] == n]
        medians = _medians(runs, "commit", "seconds")
        ours, anchor = medians["delta"], medians["_SUCCESS"]
        loads = ", ".join(f"{r['load']:.1f}" for r in runs)
        rows.append(
            [
                number(n),
                f"{seconds(ours)} ({rate(n, ours)})",
                f"{seconds(anchor)} ({rate(n, anchor)})",
                f"{anchor / ours:.2f}×",
                loads,
            ]
        )
    text = markdown_table(
        ["courses", "Delta commit", "`_SUCCESS` commit (anchor)", "Delta's rows/s", "load avg"],
        rows,
    )
    return f"""### Generate through Delta

`coursemart.generate.generate` into a fresh lake, {part["repeat"]} run(s) of each (medians; the
two alternate which goes first), times after imports. The anchor is the same function in its own
process with `BatchWriter.commit` replaced, in that process only, by the previous release's
commit: a `_SUCCESS` file listing the parts (`{{"batch_id", "rows", "max_id", "parts"}}`) written
with fsspec. Everything else is the same code (chunks, part files, their statistics), so the
ratio is the price of the Delta commit: importing delta-rs and writing the log's first version
with an add action (and statistics) per part file.

{text}"""


def delta_load(part: Record) -> str:
    rows = []
    for database, contenders in part["medians"].items():
        for contender, median in contenders.items():
            runs = [
                r for r in part["runs"] if r["database"] == database and r["contender"] == contender
            ]
            cpu = [r["cpu_seconds"] for r in runs if "cpu_seconds" in r]
            rows.append(
                [
                    {"postgresql": "PostgreSQL", "mariadb": "MariaDB"}.get(database, "SQLite"),
                    contender,
                    seconds(median),
                    ", ".join(f"{r['seconds']:.1f}" for r in runs),
                    ", ".join(f"{c:.1f}" for c in cpu),
                    ", ".join(f"{r['load']:.1f}" for r in runs),
                ]
            )
    text = markdown_table(
        ["database", "contender", "median", "runs (s)", "CPU (s)", "load avg"], rows
    )
    today = part.get("today", {})
    then = ", ".join(
        f"{name} {seconds(r['seconds'])} (load {r['load']:.1f})" for name, r in today.items()
    )
    return f"""### Load {number(part["rows"])} new courses

Each contender loads the same courses into a new database, in {part["repeat"]} round(s)
(medians), the order reversed every other round. "coursemart load (library)" is
`load(lake, url)` after imports into tables made by coursemart's DDL, as `bench/load.py`
measures it; its anchors are `psql \\copy` of the same rows into the same schema, and the
library figures `bench/results/load.json` held before the Delta lake ({then}, measured
{next(iter(today.values()))["started"][:10] if today else "?"}). Because the machine's speed
varies, the previous release's own `coursemart load` command (a checkout of release 8442716)
also runs in the same rounds on a lake it generated itself with the same seed, size and dates
(the same rows: checked), beside today's command; both are whole commands into an empty
database, timed by GNU time (wall and CPU).

{text}"""


def delta_noop(part: Record) -> str:
    rows = [
        [
            name.split(", ", 1)[0] or "(anchor)",
            name.split(", ", 1)[-1],
            f"{figures['median']:.2f} s",
            f"{figures['max']:.2f} s",
            f"{figures['median_cpu']:.2f} s",
        ]
        for name, figures in part["summary"].items()
    ]
    text = markdown_table(["database", "lake", "median", "max", "median CPU"], rows)
    last = part.get("last_checkpoint") or {}
    return f"""### A load with nothing to do, on a lake of {number(part["commits"])} commits

The whole `coursemart load` command, interpreter start included, its output piped (as a script
or a scheduler runs it). The lake's {number(part["commits"])} commits were made by as many
100-course generates in one process ({part["build_seconds"]:.0f} s); delta-rs wrote
{len(part["checkpoints"])} checkpoints (the last at version {last.get("version", "?")}), so
opening the table reads one checkpoint and the commits after it. Each warehouse was loaded once,
then the nothing-to-do load ran {len(part["runs"]) // max(len(part["summary"]), 1)} times in
rounds with its anchors: the same command on a one-commit lake, the previous release's on a
one-batch lake, and the interpreter alone.

{text}"""


def delta_cancel(part: Record) -> str:
    rows = [
        [r["name"], seconds(r["seconds"]), seconds(r["cpu_seconds"]), mib(r["peak_mib"]),
         f"{r['load']:.1f}"]
        for r in part["runs"]
    ]  # fmt: skip
    text = markdown_table(["step", "time", "CPU", "peak", "load avg"], rows)
    cancels, courses = number(part["cancellations"]), number(part["courses"])
    operation = part.get("delete_operation", "DELETE")
    return f"""### {cancels} cancellations into {courses} courses

A {courses}-course lake loaded into PostgreSQL; `coursemart cancel` of {cancels} random ids (one
Delta commit, here a `{operation}`: up to 5,000 ids a delete, more a merge against a table of
the ids; either rewrites the files holding them and commits the deleted rows as change data);
then the `coursemart load` that applies them: it reads the change data files alone, COPYs their
(course, batch) rows into a temporary
table and removes the courses with one `DELETE … USING`. The anchor is the database's floor for
that last step: psql copying as many other (course, batch) rows into a temporary table and one
`DELETE … USING` it. Whole commands, timed by GNU time.

{text}"""


# ---------------------------------------------------------------------------------------------
# API


def api_section(results: dict[str, Record], images: Path) -> str:
    record = results.get("api")
    if record is None:
        return "## API (`bench/api.py`)\n\n" + missing("api", "bench/api.py")
    rows = [
        [
            r["name"],
            number(r["requests_per_second"]),
            f"{r['p50_ms']:.1f} ms",
            f"{r['p99_ms']:.1f} ms",
            number(r["requests"]),
            str(r["bad"]),
        ]
        for r in record["results"]
    ]
    header = ["server, warehouse", "requests/s", "p50", "p99", "requests", "failed"]
    text = markdown_table(header, rows)
    served = [r for r in record["results"] if r["requests"]]
    figure, axes = plt.subplots(figsize=(9, 0.42 * len(served) + 1.2))
    colours = [
        COLOURS["coursemart"] if r["name"].startswith("coursemart") else COLOURS["anchor"]
        for r in served
    ]
    bars(axes, [r["name"] for r in served], [r["requests_per_second"] for r in served], colours)
    axes.set_xscale("log")
    axes.set_xlabel("requests/s, wrk -t2 -c32 (log scale; longer is better)")
    chart = save(figure, images, "api")
    by_name = {r["name"]: r for r in record["results"]}
    logged = [r for r in record["results"] if r["name"].endswith("--access-log")]
    access = ""
    if logged and logged[0]["name"].removesuffix(", --access-log") in by_name:
        plain = by_name[logged[0]["name"].removesuffix(", --access-log")]
        drop = 1 - logged[0]["requests_per_second"] / plain["requests_per_second"]
        access = f" (in this run it costs {drop:.0%} of the cached requests/s)"
    return f"""## API (`bench/api.py`)

The shipped server, measured as users start it: `coursemart serve --warehouse … --workers N`
(default logging: no access log), over one SQLite file of {number(record["courses"])} generated
courses, then the same courses in PostgreSQL. Each server is started afresh on 127.0.0.1, warmed
with one request, and loaded with `wrk -t2 -c32 --latency` for a page of 50 courses
(`/v1/courses/recent?limit=50`); "gzip" runs ask for the same page with `Accept-Encoding: gzip`,
as browsers and HTTP libraries do (the compressed body is made once and kept beside the plain
one); "uncached" runs ask for a different `until` (a random minute) on
every request, so every answer is read from the database. "Search" runs add `q=` with a word of
the generated catalog's vocabulary (155 words, one at random per request) to the uncached
request; each word is first asked once, one request at a time (the "first search" figures: its
matches read through the database's text index), then warm-up runs of the same length until
requests/s stops rising by a tenth (every worker has then read every word's matches, which it
keeps per data version; see [api.md](api.md)), then the measured run. Anchor, in the same run:
Datasette serving the same file, asked for the same page as a user writes it
(`/warehouse/vw_most_recent_courses.json?_sort_desc=start_date&_size=50`, which counts the view's
rows on every request) and with `&_nocount=1&_nofacet=1&_nosuggest=1`, its fastest form, against
which the targets are checked. wrk, the servers and the database share the machine's two cores
({when(record)}): compare ratios within one run, not figures across runs.

{text}

{checks(record)}

{chart}

Where the speed comes from:

- **Nothing per request that can be done once per data version.** A page's JSON body and ETag
  are made once per data version and normalized query and kept in memory; a repeated request
  (same path and query string, same data version) is answered from that cache by the first
  layer that sees it.
- **No framework work for plain requests.** Catalog requests whose parameters are all in plain
  form are parsed, checked by the routes' own functions and answered before FastAPI's routing,
  validation and dependency injection; anything unusual goes on to FastAPI, and a test checks
  that both answer alike.
- **No ORM layer on the rows.** Listings run SQL compiled once per shape on the pooled driver
  connection; rows become JSON through orjson, with no pydantic model per course (the models only
  document the answers). SQLite reads go through a memory map of the file and run in the event
  loop, where a thread hand-off cost more than the read.
- **A search's matches read once.** The text index is asked once per data version for the
  courses a search matches (when at most 100,000 do); every page of that search, whatever its
  filters, cursor and direction, is then a binary search in memory and a read of one page of
  rows by id. A search matching more courses scans the listing in order, where matches are
  close together (on PostgreSQL through the listing index alone, which holds the folded names).
- **No long pauses.** The caches hold only strings, bytes and flat tuples, which the garbage
  collector does not track, and start-up's objects are frozen out of its passes.
- **The access log is off by default**: `--access-log` turns it on{access}, with API keys masked
  and the request id on each line.

See [api.md](api.md)."""


# ---------------------------------------------------------------------------------------------
# Scaling


def scale_runs(results: dict[str, Record]) -> list[Record]:
    return [results[name] for name in ("scale", "scale-huge") if name in results]


def scale_label(record: Record) -> str:
    largest = max(p["courses"] for p in record["points"])
    started, load = record["started"][:10], record["load_at_start"]
    return f"run of {started} (up to {number(largest)}, load {load:.1f})"


def scale_section(results: dict[str, Record], images: Path) -> str:
    runs = scale_runs(results)
    if not runs:
        return "## Scaling (`bench/scale.py`)\n\n" + missing("scale", "bench/scale.py")
    parts = [scale_intro(runs)]
    charts = [scale_time_chart(runs, images), scale_memory_chart(runs, images)]
    parts.append("\n\n".join(charts))
    for record in runs:
        parts.append(scale_tables(record))
    parts.append(scale_api_chart(runs, images))
    parts.append(scale_disk_chart(runs, images))
    parts.append(SCALE_WHY)
    return "\n\n".join(parts)


def scale_intro(runs: list[Record]) -> str:
    record = runs[-1]
    kinds = ", ".join(f"`{k['name']}` (`{k['path']}`)" for k in record["kinds"])
    skipped = sorted({s for r in runs for p in r["points"] for s in p["skipped"]})
    skipped_line = "\n" + "".join(f"\n- not measured: {s}" for s in skipped) if skipped else ""
    return f"""## Scaling (`bench/scale.py`, `make bench-scale`)

The commands users run, with their defaults, at each size on a fresh lake and a fresh PostgreSQL
database: `coursemart generate --courses N`, `coursemart load --warehouse postgresql://…` (a
first load), the same load again with nothing to do, then `coursemart serve` (one worker, its
default) measured by `wrk -t2 -c32 -d{record["duration"]}s` for each request kind ({kinds}),
cached (one URL repeated) and uncached (a random `until` on every request); then, from 10^6 on,
{number(record["increment"])} new courses generated and loaded into the warehouse that holds N.
Before the API runs, `VACUUM (ANALYZE)` and a checkpoint, as autovacuum would after a bulk load
(this server runs with autovacuum off). Times include the interpreter's start; peaks are each
command's own (GNU time); disk is the lake's files, the database's size and the WAL the load
wrote. While a load runs, `pg_stat_activity` is sampled every 0.2 s to show where its time
goes. The 10^6 warehouse is kept and measured again right after the largest size (API, then
{number(record["increment"])} more new courses), so that the largest size is compared with a
measurement that met the same load on this shared machine. What to run where, from these
curves: [scaling-and-cost.md](scaling-and-cost.md).{skipped_line}"""


def stage_series(record: Record, stage: str, field: str) -> tuple[list[int], list[float]]:
    points = [p for p in record["points"] if stage in p["stages"]]
    return [p["courses"] for p in points], [p["stages"][stage][field] for p in points]


SCALE_STAGES = ("generate", "load", "load, nothing to do", "serve")


def scale_time_chart(runs: list[Record], images: Path) -> str:
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for record, marker in zip(runs, ("o-", "s--"), strict=False):
        increment = f"load {number(record['increment'])} new"
        for stage, colour in zip((*SCALE_STAGES[:3], increment), plt.cm.tab10.colors, strict=False):
            x, y = stage_series(record, stage, "seconds")
            if x:
                axes.plot(x, y, marker, color=colour, label=f"{stage}, {scale_label(record)}")
    log_log(axes, "courses in the warehouse", "seconds (command, start to end)")
    axes.legend(fontsize=7)
    axes.set_title("time against size (log–log); slope 1 = linear")
    return save(figure, images, "scale-time")


def scale_memory_chart(runs: list[Record], images: Path) -> str:
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for record, marker in zip(runs, ("o-", "s--"), strict=False):
        for stage, colour in zip(SCALE_STAGES, plt.cm.tab10.colors, strict=False):
            x, y = stage_series(record, stage, "peak_mib")
            if x:
                axes.plot(x, y, marker, color=colour, label=f"{stage}, {scale_label(record)}")
    axes.axhline(1024, color="red", linewidth=0.8, label="goal: under 1 GiB")
    log_log(axes, "courses in the warehouse", "peak resident memory, MiB")
    axes.set_yticks([100, 150, 200, 300, 500, 1000, 2000, 4000])
    axes.legend(fontsize=7)
    axes.set_title("peak memory of each command against size (log–log)")
    return save(figure, images, "scale-memory")


def scale_api_chart(runs: list[Record], images: Path) -> str:
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for record, marker in zip(runs, ("o-", "s--"), strict=False):
        series: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
        for p in record["points"]:
            for r in p["api"]:
                x, y = series.setdefault((r["kind"], r["mode"]), ([], []))
                x.append(p["courses"])
                y.append(r["p99_ms"])
        for ((kind, mode), (x, y)), colour in zip(
            series.items(), plt.cm.tab10.colors, strict=False
        ):
            axes.plot(
                x, y, marker, color=colour, label=f"p99 {kind}, {mode}, {scale_label(record)}"
            )
    log_log(axes, "courses in the warehouse", "p99 latency, ms (32 connections)")
    axes.legend(fontsize=7)
    axes.set_title("API p99 against warehouse size: flat is the goal")
    return save(figure, images, "scale-api")


def scale_disk_chart(runs: list[Record], images: Path) -> str:
    figure, axes = plt.subplots(figsize=(8, 4.5))
    record = runs[-1]
    for key, colour in zip(("lake", "database", "wal_written"), plt.cm.tab10.colors, strict=False):
        x = [p["courses"] for p in record["points"]]
        axes.plot(
            x, [p["disk"][key] / 2**20 for p in record["points"]], "o-", color=colour, label=key
        )
    log_log(axes, "courses", "MiB on disk")
    axes.legend()
    axes.set_title(
        f"disk: the lake's Parquet, the database, the WAL of the first load ({scale_label(record)})"
    )
    return save(figure, images, "scale-disk")


def scale_tables(record: Record) -> str:
    return "\n\n".join(
        [
            f"### {scale_label(record).capitalize()}: {when(record)}{scale_method(record)}",
            scale_stage_table(record),
            scale_disk_table(record),
            scale_api_table(record),
            scale_activity(record),
            checks(record) and "Goals, the largest size against 10^6:\n\n" + checks(record),
        ]
    )


def scale_method(record: Record) -> str:
    """A note for a run made before the 10^6 warehouse was measured again after the largest."""
    again = any(r["mode"].endswith("after the largest") for p in record["points"] for r in p["api"])
    return (
        ""
        if again
        else (
            "\n\nThis run compares the largest size with the 10^6 measurements made before it (the "
            "10^6 warehouse was not yet measured again right after the largest size); its "
            "incremental floor was PostgreSQL's own `INSERT … SELECT` of the rows, not a COPY."
        )
    )


def moved_rows(point: Record, stage: str) -> int:
    if stage in ("generate", "load"):
        return int(point["courses"])
    words = stage.split()
    if words[0] in ("generate", "load") and words[1][0].isdigit():
        return int(words[1].replace(",", ""))
    return 0


def scale_stage_table(record: Record) -> str:
    rows = []
    for p in record["points"]:
        for stage, m in p["stages"].items():
            moved = moved_rows(p, stage)
            rows.append(
                [
                    number(p["courses"]),
                    stage,
                    seconds(m["seconds"]),
                    rate(moved, m["seconds"]) if moved else "",
                    mib(m["peak_mib"]) if m["peak_mib"] else "(the server's)",
                    f"{m['load']:.1f}",
                ]
            )
    header = ["courses", "command", "time", "rows/s", "peak memory", "load avg"]
    return markdown_table(header, rows)


def scale_disk_table(record: Record) -> str:
    rows = [
        [
            number(p["courses"]),
            mib(p["disk"]["lake"] / 2**20),
            mib(p["disk"]["database"] / 2**20),
            mib(p["disk"]["courses_table"] / 2**20),
            mib(p["disk"]["courses_indexes"] / 2**20),
            mib(p["disk"]["wal_written"] / 2**20),
            seconds(p["settle_seconds"]),
        ]
        for p in record["points"]
    ]
    header = ["courses", "lake", "database", "courses table", "its indexes", "WAL of the load"]
    return markdown_table([*header, "VACUUM ANALYZE"], rows)


def scale_api_table(record: Record) -> str:
    rows = [
        [
            number(p["courses"]),
            f"{r['kind']}, {r['mode']}",
            number(r["requests_per_second"]),
            f"{r['p50_ms']:.1f} ms",
            f"{r['p99_ms']:.1f} ms",
            str(r["bad"]),
            f"{r['load']:.1f}",
        ]
        for p in record["points"]
        for r in p["api"]
    ]
    header = ["warehouse", "request", "requests/s", "p50", "p99", "failed", "load avg"]
    return markdown_table(header, rows)


def scale_activity(record: Record) -> str:
    lines = []
    for p in record["points"]:
        spent = ", ".join(f"{k}: {v:.1f} s" for k, v in p["load_activity"].items())
        if spent:
            lines.append(f"- {number(p['courses'])}: {spent}")
    return "Where each load's time went, as PostgreSQL saw its session:\n\n" + "\n".join(lines)


SCALE_WHY = f"""Why the curves have these shapes:

- **generate** is linear in the rows (a constant rate once Python has started) and its memory is
  flat: two chunks of 250,000 rows at a time, whatever the size.
- **load** (a first load) is linear too for the rows themselves: the local engine streams the
  Parquet files a record batch at a time and COPYs them, so its memory is flat. Into an empty
  table the indexes are built after the rows, by sorting; a sort grows a little faster than the
  rows (n log n), and past `maintenance_work_mem` PostgreSQL sorts on disk. The WAL is about the
  size of the table and its indexes: every row and every index page is written twice, once to
  the WAL and once to the table.
- **a load's memory** is flat: the check for ids repeated inside a batch is a bitmap of one bit
  per id of the batch's id range (up to {number(MAX_BITMAP_IDS)} ids; 10^8 ids take 12 MiB), so
  a load of 10^8 courses peaks where a load of 10^6 does (an earlier check, a byte per id and then
  every id held and sorted, had peaked at 2,642 MiB at 10^8).
- **a load with nothing to do** reads the manifest and the lake's listing of batches, not the
  rows: its time is the interpreter's start and a few queries, whatever the size.
- **an incremental load** of new courses into a full warehouse writes the new rows at the end of
  the table and of the primary key, but each of them belongs at a random place of the listing
  index `(start_date, course_id)` (new courses start on dates spread over the whole window). Once
  that index is larger than PostgreSQL's shared buffers (128 MiB here: from about 2M courses on),
  the loader stages the batch and inserts its new ids in the index's order, so that each index
  page is visited once, in turn, rather than read again and again at random (in PostgreSQL's
  view of the session, that insert is counted as "merge"). What still grows with the history
  is the number of index pages the new rows touch: each is read when it is not in memory, and
  written whole to the WAL the first time it changes after a checkpoint.
- **the API** reads one page of an index by keyset, so its cost follows the page size, not the
  table's, as long as the index's upper levels and the pages read stay in memory. Cached answers
  do not touch the database at all: a change in their p99 from one size to another is the
  machine's (its load average is beside each figure), not the warehouse's.
- **uncached searches** follow the page too, not the table. On PostgreSQL the listing index also
  holds each course's folded name, category and level, so a search for a common word reads that
  index in order, testing each folded name there, and no table row for the courses it passes
  over (an index-only scan); then it reads the page's 50 rows. Whether a word is that common (more
  than 50,000 matches) is judged from the 10,000 most recent courses of that same index (a few
  milliseconds), not by counting its matches in the text index, which reads a table row for each
  match. At 10^6 each of the run's words has fewer matches: they are read once through the text
  index and kept in memory, and the run's p99 is those first reads. From 10^7 on every word of
  the run is common, and every request is such a scan."""


# ---------------------------------------------------------------------------------------------
# README


def provenance(record: Record) -> str:
    """Where and when a benchmark ran, for a figure quoted away from its page."""
    machine = record["machine"]
    return (
        f"{machine['cores']}-core {machine['cpu']}, {record['started'][:10]}, load average "
        f"{record['load_at_start']:.1f}"
    )


def readme_figures(results: dict[str, Record]) -> str:
    """The README's block of headline figures, one line per benchmark that ran, each with the
    machine and the date it came from."""
    scale = "scale-huge" if "scale-huge" in results else "scale"
    headlines = (
        (scale, scale_headline),
        ("load", load_headline),
        ("generate", generate_headline),
        ("api", api_headline),
    )
    lines = [
        f"{line} ({provenance(results[name])})"
        for name, headline in headlines
        if (line := headline(results))
    ]
    if not lines:
        return ""
    return (
        "\n".join(f"- {line}" for line in lines)
        + "\n\nEvery figure, its anchors and its conditions: "
        "[docs/benchmarks.md](docs/benchmarks.md).\n"
    )


def scale_headline(results: dict[str, Record]) -> str:
    record = results.get("scale-huge") or results.get("scale")
    if record is None:
        return ""
    largest = max(record["points"], key=lambda p: p["courses"])
    stages = largest["stages"]
    total = stages["generate"]["seconds"] + stages["load"]["seconds"]
    peak = max(m["peak_mib"] for p in record["points"] for m in p["stages"].values())
    return (
        f"{number(largest['courses'])} courses generated and loaded into PostgreSQL in "
        f"{seconds(total)}, no command above {mib(peak)} of memory"
    )


def load_headline(results: dict[str, Record]) -> str:
    record = results.get("load")
    if record is None:
        return ""
    found = {(r["database"], r["contender"]): r["seconds"] for r in record["results"]}
    parts = []
    if ("postgresql", "psql \\copy") in found:
        ratio = found["postgresql", "psql \\copy"] / found["postgresql", "coursemart full"]
        parts.append(
            f"into PostgreSQL {seconds(found['postgresql', 'coursemart full'])}, "
            f"{ratio:.1f}× faster than `psql \\copy`"
        )
    floor = found.get(("sqlite", "SQLite INSERT … SELECT"))
    whole = found.get(("sqlite", "coursemart load command"))
    if floor and whole:
        parts.append(
            f"into SQLite the whole `coursemart load` in {seconds(whole)}, {whole / floor:.1f}× "
            "SQLite's own `INSERT … SELECT` of the same rows"
        )
    return f"{number(record['rows'])} courses loaded: " + "; ".join(parts) if parts else ""


def generate_headline(results: dict[str, Record]) -> str:
    record = results.get("generate")
    if record is None:
        return ""
    n = max(record["sizes"])
    found = {(r["engine"], r["courses"]): r for r in record["results"]}
    ours, theirs = found["coursemart", n], found["original", n]
    return (
        f"{number(n)} courses generated in {seconds(ours['seconds'])} "
        f"({rate(n, ours['seconds'])}), {theirs['seconds'] / ours['seconds']:.0f}× the "
        f"original notebook's loop, in {mib(ours['peak_mib'])}"
    )


def api_headline(results: dict[str, Record]) -> str:
    record = results.get("api")
    if record is None:
        return ""
    ours = [r for r in record["results"] if r["name"].startswith("coursemart")]
    best = max(
        (r for r in ours if "uncached" not in r["name"]), key=lambda r: r["requests_per_second"]
    )
    return (
        f"the API ({best['name']}): {number(best['requests_per_second'])} requests/s, "
        f"p99 {best['p99_ms']:.1f} ms, over {number(record['courses'])} courses"
    )


def update_readme(results: dict[str, Record]) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = readme_figures(results)
    if block and README_BLOCK.search(text):
        readme.write_text(README_BLOCK.sub(lambda m: m.group(1) + block + m.group(2), text))


# ---------------------------------------------------------------------------------------------


def targets_section(results: dict[str, Record], images: Path) -> str:
    """Every target and goal the benchmarks checked, as they printed them."""
    parts = ["## Targets and goals at a glance"]
    for name, record in results.items():
        if checks(record):
            parts.append(f"`{command(name)}` ({when(record)}):\n\n{checks(record)}")
    return "\n\n".join(parts)


def startup_section(results: dict[str, Record], images: Path) -> str:
    """The shipped commands' start-up, whole process, against the interpreter alone."""
    record = results.get("startup")
    if record is None:
        return "## Start-up\n\n" + missing("startup", command("startup"))
    rows = [
        [
            f"`{r['command']}`",
            seconds(r["seconds"]),
            mib(r["peak_mib"]),
            "anchor" if r["goal"] is None else f"≤ {r['goal']} s",
            number(r["load"], 1),
        ]
        for r in record["results"]
    ]
    table = markdown_table(["command", "median", "peak", "goal", "load average"], rows)
    return f"""## Start-up (`bench/startup.py`)

Each command runs {record["runs"]} times, whole process as users start it (interpreter, imports,
work); the median counts. Heavy libraries are imported only by the commands that use them: help
and `config` never load pyarrow, SQLAlchemy or the API (a test guards it,
`tests/test_startup.py`). {when(record)[0].upper() + when(record)[1:]}.

{table}

{checks(record)}"""


def attacks_section(results: dict[str, Record], images: Path) -> str:
    """The server's memory, open files and a bystander's answers under each attack."""
    record = results.get("attacks")
    if record is None:
        return "## The server under attack\n\n" + missing("attacks", command("attacks"))
    rows = [
        [
            run["attack"],
            seconds(run["seconds"]),
            f"{mib(run['rss_before_mib'])} → {mib(run['rss_max_mib'])} → "
            f"{mib(run['rss_after_mib'])}",
            number(run["open_files_max"]),
            f"{run['bystander_failures']} of {number(run['bystander_requests'])}",
            f"{run['bystander_p50_ms']} / {run['bystander_p99_ms']} / {run['bystander_max_ms']} ms",
        ]
        for run in record["runs"]
    ]
    table = markdown_table(
        ["attack", "took", "memory: before → highest → after", "open files", "failed",
         "bystander p50 / p99 / max"],
        rows,
    )  # fmt: skip
    return f"""## The server under attack (`bench/attacks.py`)

`coursemart serve` as it ships (one worker, default settings) over a SQLite catalog of
{number(record["courses"])} courses, while a bystander asks for a page of the listing every 50 ms.
The attacks: 20 connections sending headers that never end (up to 50 MB each); 1,100 connections
sending a byte of their request each second for 30 s; 20,000 requests with distinct 60 KB query
strings; distinct two-word searches, 8 at once. {when(record)[0].upper() + when(record)[1:]}.

{table}

{checks(record)}"""


SECTIONS: tuple[Callable[[dict[str, Record], Path], str], ...] = (
    targets_section,
    startup_section,
    generate_section,
    load_section,
    delta_section,
    spark_section,
    api_section,
    attacks_section,
    scale_section,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="render the --quick run's results")
    parser.add_argument("--results", type=Path, help="folder of the results")
    parser.add_argument("--out", type=Path, help="the page to write")
    args = parser.parse_args()
    folder = args.results or (QUICK_RESULTS if args.quick else RESULTS)
    out = args.out or (folder / "benchmarks.md" if args.quick else ROOT / "docs" / "benchmarks.md")
    results = {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
    if not results:
        raise SystemExit(f"no results in {folder}: run the benchmarks first (make bench)")
    images = out.parent / "img"
    page = [header(results), *(section(results, images) for section in SECTIONS)]
    out.write_text("\n\n".join(page) + "\n")
    if not args.quick and out == ROOT / "docs" / "benchmarks.md":
        update_readme(results)
    print(f"wrote {out} and its charts in {images}")


if __name__ == "__main__":
    main()
