"""The synthetic catalog: realistic course names and start dates, vectorised and streamed.

Rows are built a chunk at a time with numpy and pyarrow compute (no per-row Python), so memory
stays flat however many courses are asked for. The output depends only on the seed, the first
course id and the date window: two runs with the same seed on empty lakes write the same rows.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from coursemart import model, vocabulary
from coursemart.errors import InputError
from coursemart.lake import BatchWriter, Lake, new_id, open_lake
from coursemart.lake.parquet import INT64_MAX, ids_as_int64
from coursemart.lake.upkeep import remove_leftovers

DEFAULT_COURSES: Final = 100_000
CHUNK_ROWS: Final = 250_000
PAST_DAYS: Final = 365
FUTURE_DAYS: Final = 180
#: Courses start on a quarter hour between 08:00 and 19:45 UTC.
FIRST_SLOT, LAST_SLOT, SLOT_SECONDS = 32, 80, 900
LEVEL_WEIGHTS: Final = (0.45, 0.35, 0.20)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Window:
    """Start dates fall on days ``start`` to ``end``, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise InputError(
                f"--start {self.start} is after --end {self.end}: give a start on or before the end"
            )

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def default_window(today: date | None = None) -> Window:
    """A year before today to half a year after it."""
    today = today or datetime.now(UTC).date()
    return Window(today - timedelta(days=PAST_DAYS), today + timedelta(days=FUTURE_DAYS))


@dataclass(frozen=True)
class GenerateRequest:
    """What a generate run is asked for, checked once for both engines."""

    courses: int = DEFAULT_COURSES
    seed: int = 0
    window: Window = field(default_factory=default_window)
    reschedule: float = 0.0

    def __post_init__(self) -> None:
        if self.courses < 1:
            raise InputError(f"--courses must be at least 1, got {self.courses}")
        if not 0.0 <= self.reschedule <= 1.0:
            raise InputError(
                f"--reschedule must be a fraction between 0 and 1, got {self.reschedule}"
            )


@dataclass(frozen=True)
class GenerateResult:
    batch_id: str
    rows: int
    new_courses: int
    rescheduled: int
    first_id: int
    last_id: int
    bytes: int
    seconds: float


# ---------------------------------------------------------------------------------------------
# Pure builders: numpy generator in, Arrow arrays out.


@dataclass(frozen=True)
class _Vocabulary:
    """Every possible name, built once, so a chunk's names are one ``take`` from it.

    The name of (opening o, subject s, closing c) is at ``(o * subjects + s) * closings + c``.
    """

    names: pa.Array
    openings: int
    subject_offset: np.ndarray
    subject_count: np.ndarray
    closings: int
    plain: int
    tools: tuple[int, int]
    levels: dict[int, tuple[int, int]]


def _build_vocabulary() -> _Vocabulary:
    category_ids = [cid for cid, _ in model.CATEGORIES]
    subjects: list[str] = []
    offset = np.zeros(max(category_ids) + 1, dtype=np.int64)
    count = np.zeros(max(category_ids) + 1, dtype=np.int64)
    for cid in category_ids:
        offset[cid] = len(subjects)
        count[cid] = len(vocabulary.SUBJECTS[cid])
        subjects.extend(vocabulary.SUBJECTS[cid])
    closings = list(vocabulary.CLOSINGS)
    tools = (len(closings), len(closings) + len(vocabulary.TOOL_CLOSINGS))
    closings.extend(vocabulary.TOOL_CLOSINGS)
    levels: dict[int, tuple[int, int]] = {}
    for level_id, words in vocabulary.LEVEL_CLOSINGS.items():
        levels[level_id] = (len(closings), len(closings) + len(words))
        closings.extend(words)
    names = [f"{o}{s}{c}" for o in vocabulary.OPENINGS for s in subjects for c in closings]
    return _Vocabulary(
        names=pa.array(names, pa.string()),
        openings=len(vocabulary.OPENINGS),
        subject_offset=offset,
        subject_count=count,
        closings=len(closings),
        plain=len(vocabulary.CLOSINGS),
        tools=tools,
        levels=levels,
    )


_VOCABULARY: Final = _build_vocabulary()


def _pick(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """For each row, a uniform integer in ``[low, high)``."""
    picked: np.ndarray = low + (rng.random(len(low)) * (high - low)).astype(np.int64)
    return picked


def course_names(
    rng: np.random.Generator, category_ids: np.ndarray, level_ids: np.ndarray
) -> pa.Array:
    """Names such as "Applied Machine Learning with Python" for each (category, level) row."""
    words = _VOCABULARY
    n = len(category_ids)
    opening = rng.integers(0, words.openings, n)
    first_subject = words.subject_offset[category_ids]
    subject = _pick(rng, first_subject, first_subject + words.subject_count[category_ids])
    closing = rng.integers(0, words.plain, n)
    roll = rng.random(n)
    tool = rng.integers(words.tools[0], words.tools[1], n)
    closing = np.where((category_ids == 1) & (roll < 0.30), tool, closing)
    level_low = np.zeros(n, dtype=np.int64)
    level_high = np.ones(n, dtype=np.int64)
    for level_id, (low, high) in words.levels.items():
        level_low[level_ids == level_id] = low
        level_high[level_ids == level_id] = high
    closing = np.where(roll > 0.80, _pick(rng, level_low, level_high), closing)
    subjects = int(words.subject_count.sum())
    return words.names.take(pa.array((opening * subjects + subject) * words.closings + closing))


def start_seconds(rng: np.random.Generator, n: int, window: Window) -> np.ndarray:
    """Start times (UTC epoch seconds) on quarter hours of office time, uniform over the days."""
    start = window.start
    origin = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())
    days = rng.integers(0, window.days, n)
    slots = rng.integers(FIRST_SLOT, LAST_SLOT, n)
    seconds: np.ndarray = origin + days * 86_400 + slots * SLOT_SECONDS
    return seconds


def _slot_keys(seconds: np.ndarray, window: Window) -> np.ndarray:
    """Sort keys in the same order as ``seconds``: the quarter-hour index from the window's
    start, as 16-bit integers when they fit, which numpy sorts with a radix sort."""
    if window.days * 96 >= 2**16:
        return seconds
    start = window.start
    origin = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())
    keys: np.ndarray = ((seconds - origin) // SLOT_SECONDS).astype(np.uint16)
    return keys


def timestamps(seconds: np.ndarray) -> pa.Array:
    """Epoch seconds as Arrow UTC timestamps."""
    return pa.array(seconds * 1_000_000, pa.int64()).cast(model.TIMESTAMP)


def course_chunk(seed: int, first_id: int, n: int, window: Window) -> pa.Table:
    """``n`` new courses with ids ``first_id`` … ``first_id + n - 1``; pure in its arguments.

    Rows come out sorted by ``start_date`` then ``course_id``, as the lake stores them.
    """
    rng = np.random.default_rng([seed, first_id])
    category_keys = np.array([cid for cid, _ in model.CATEGORIES], dtype=np.int64)
    level_keys = np.array([lid for lid, _ in model.LEVELS], dtype=np.int64)
    seconds = start_seconds(rng, n, window)
    order = np.argsort(_slot_keys(seconds, window), kind="stable")
    categories = category_keys[rng.integers(0, len(category_keys), n)]
    levels = level_keys[rng.choice(len(level_keys), n, p=LEVEL_WEIGHTS)]
    return pa.table(
        {
            "course_id": pa.array(order + first_id),
            "course_name": course_names(rng, categories, levels),
            "category_id": pa.array(categories.astype(np.int32)),
            "level_id": pa.array(levels.astype(np.int32)),
            "start_date": timestamps(seconds[order]),
        },
        schema=model.COURSES_SCHEMA,
    )


def rescheduled_courses(
    lake: Lake, fraction: float, seed: int, next_id: int, window: Window
) -> pa.Table:
    """A sample of ``fraction`` of the lake's courses, each as it stands now (the row of its
    greatest batch: a later rename is kept), with a new start date.

    Batches of other writers are read as the loader reads them (nullable columns, other
    widths: :func:`~coursemart.load.conform.conform`); a course whose current row the loader
    would refuse (a null name, a file it cannot read as courses) is not rescheduled.
    """
    empty = model.COURSES_SCHEMA.empty_table()
    batches = lake.committed_batches()
    if fraction <= 0 or not batches:
        return empty
    id_arrays = [
        ids_as_int64(rb.column(0)) for _, rb in lake.read_batches(batches, columns=["course_id"])
    ]
    ids = np.unique(np.concatenate(id_arrays)) if id_arrays else np.array([], np.int64)
    rng = np.random.default_rng([seed, next_id, 1])
    chosen = np.sort(rng.choice(ids, size=round(fraction * len(ids)), replace=False))
    if len(chosen) == 0:
        return empty
    found = current_rows(lake, batches, pa.array(chosen, pa.int64()))
    moved = timestamps(start_seconds(rng, found.num_rows, window))
    return found.append_column("start_date", moved).cast(model.COURSES_SCHEMA)


def current_rows(lake: Lake, batches: list[str], wanted: pa.Array) -> pa.Table:
    """The current row of each course in ``wanted`` (that of its greatest batch, by code
    point), without its start date; courses whose current row is incomplete are left out."""
    from coursemart.load.conform import PROBLEM, conform
    from coursemart.load.validate import schema_problems

    columns = ["course_id", "course_name", "category_id", "level_id"]
    pieces = []
    for batch_id, record_batch in lake.read_batches(batches):
        if schema_problems(record_batch.schema):
            continue  # the loader refuses these rows: none is a course's current row
        rows = conform(pa.Table.from_batches([record_batch]))
        rows = rows.filter(pc.and_(pc.is_null(rows[PROBLEM]), pc.is_in(rows["course_id"], wanted)))
        batch = pa.array([batch_id] * rows.num_rows, pa.string())
        pieces.append(rows.select(columns).append_column("batch_id", batch))
    if not pieces:
        return model.COURSES_SCHEMA.empty_table().select(columns)
    found = pa.concat_tables(pieces)
    order = found.sort_by([("course_id", "ascending"), ("batch_id", "descending")])
    ids = order["course_id"].to_numpy()
    first = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])[: len(ids)]  # each course's first
    return order.take(pa.array(first)).select(columns).drop_null()


# ---------------------------------------------------------------------------------------------
# The stage: one frame for both engines

WORKERS: Final = 2

#: An engine's part of a generate run: writes the new courses (and the rescheduled ones) into
#: the batch, given the lake, the writer and the first new id; returns how many were rescheduled.
WriteRows = Callable[[Lake, BatchWriter, int], int]


def generate_batch(
    lake_url: str, request: GenerateRequest, write_rows: WriteRows
) -> GenerateResult:
    """One committed batch: the dimension snapshots, the next id range, the rows, ``_SUCCESS``.

    Course ids continue after the largest id already in the lake. The dimension CSVs are replaced
    first, so a reader that sees the batch also sees its categories and levels.
    """
    began = time.perf_counter()
    lake = open_lake(lake_url, create=True)
    lake.write_dimension("categories", model.categories_table())
    lake.write_dimension("levels", model.levels_table())
    if not lake.is_delta() and lake.has_batch_folders():
        raise lake.not_a_table()
    with lake.generate_lock():
        if lake.is_local:  # no other generate runs: a marked folder is a killed one's
            remove_leftovers(lake, grace_seconds=math.inf)
        largest, seen = lake.largest_course_id()
        first_id = largest + 1
        if first_id + request.courses - 1 > INT64_MAX:
            raise InputError(
                f"the lake's largest course_id is {first_id - 1:,}: no room below 2^63 for "
                f"{request.courses:,} more; ask for fewer courses"
            )
        with lake.batch_writer(new_id(), model.COURSES_SCHEMA) as writer:
            writer.continue_after(largest, seen)
            moved = write_rows(lake, writer, first_id)
            writer.commit()
    return GenerateResult(
        batch_id=writer.batch_id,
        rows=writer.rows,
        new_courses=request.courses,
        rescheduled=moved,
        first_id=first_id,
        last_id=first_id + request.courses - 1,
        bytes=writer.bytes,
        seconds=time.perf_counter() - began,
    )


def generate(
    lake_url: str,
    *,
    courses: int = DEFAULT_COURSES,
    seed: int = 0,
    window: Window | None = None,
    reschedule: float = 0.0,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> GenerateResult:
    """Write one committed batch of ``courses`` new courses (and rescheduled ones) to the lake."""
    request = GenerateRequest(courses, seed, window or default_window(), reschedule)
    advance = progress or (lambda rows: None)

    def write_rows(lake: Lake, writer: BatchWriter, first_id: int) -> int:
        moved = rescheduled_courses(lake, reschedule, seed, first_id, request.window)
        if moved.num_rows:
            writer.write_part(moved, part=0)
        write_chunks(writer, request, first_id, chunk_rows, 1 if moved.num_rows else 0, advance)
        return int(moved.num_rows)

    return generate_batch(lake_url, request, write_rows)


def write_chunks(
    writer: BatchWriter,
    request: GenerateRequest,
    first_id: int,
    chunk_rows: int,
    first_part: int,
    progress: Progress,
) -> None:
    """Build and write the new courses, a chunk per part file.

    Chunks are built and written on WORKERS threads (numpy and Parquet release the GIL); at most
    WORKERS chunks are in flight, so memory does not grow with the row count.
    """

    def build_and_write(part: int, offset: int) -> int:
        size = min(chunk_rows, request.courses - offset)
        chunk = course_chunk(request.seed, first_id + offset, size, request.window)
        writer.write_part(chunk, part=part)
        return size

    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="generate") as pool:
        in_flight: deque[Future[int]] = deque()
        offsets = range(0, request.courses, chunk_rows)
        for part, offset in enumerate(offsets, start=first_part):
            in_flight.append(pool.submit(build_and_write, part, offset))
            if len(in_flight) >= WORKERS:
                progress(in_flight.popleft().result())
        while in_flight:
            progress(in_flight.popleft().result())
