"""``coursemart generate``, ``load`` and ``run``: resolve the settings, then hand off.

Heavy libraries (pyarrow, SQLAlchemy, PySpark) are imported inside the commands, so that
``--help`` and the light commands start instantly.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from coursemart.cli.app import app, err, say, settings, stop_gracefully_on_sigterm
from coursemart.cli.options import (
    DEFAULT_COURSES,
    CoursesOption,
    EndOption,
    EngineOption,
    FollowOption,
    IntervalOption,
    LakeOption,
    QuietOption,
    RescheduleOption,
    RunCoursesOption,
    SeedOption,
    SinceOption,
    SparkConfOption,
    SparkMasterOption,
    StartOption,
    WaitOption,
    WarehouseOption,
)
from coursemart.cli.output import generate_summary, load_progress, load_summary, progress_bar
from coursemart.cli.spark import engine_session
from coursemart.errors import InputError
from coursemart.masking import mask_url

if TYPE_CHECKING:
    from coursemart.config import Settings


@dataclass(frozen=True)
class GenerateOptions:
    """What ``generate`` (and the first half of ``run``) was asked for."""

    courses: int
    seed: int
    start: datetime | None
    end: datetime | None
    reschedule: float

    def window(self) -> Any:
        """The start-date window from ``--start``/``--end``, defaults around today."""
        from coursemart.generate import Window, default_window

        default = default_window()
        first: date = self.start.date() if self.start else default.start
        last: date = self.end.date() if self.end else default.end
        return Window(first, last)


def write_batch(
    config: Settings, spark: Any, lake_url: str, options: GenerateOptions, quiet: bool
) -> None:
    """``coursemart generate`` with resolved settings, on the local engine or on ``spark``."""
    window = options.window()
    asked = {"courses": options.courses, "seed": options.seed, "window": window}
    if spark is not None:
        from coursemart.engines import spark as spark_engine

        result = spark_engine.generate(spark, lake_url, **asked, reschedule=options.reschedule)
    else:
        from coursemart.generate import generate

        with progress_bar("generating", options.courses, quiet) as advance:
            result = generate(lake_url, **asked, reschedule=options.reschedule, progress=advance)
    if not quiet:
        say(generate_summary(result))


@app.command()
def generate(
    *,
    courses: CoursesOption = DEFAULT_COURSES,
    seed: SeedOption = 0,
    lake: LakeOption = None,
    start: StartOption = None,
    end: EndOption = None,
    reschedule: RescheduleOption = 0.0,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
    spark_conf: SparkConfOption = None,
    quiet: QuietOption = False,
) -> None:
    """Generate a synthetic catalog and commit it to the lake as one new batch."""
    stop_gracefully_on_sigterm()
    config = settings()
    options = GenerateOptions(courses, seed, start, end, reschedule)
    with engine_session(config, engine, spark_master, spark_conf) as spark:
        write_batch(config, spark, lake or config.lake, options, quiet)


def kill_at(failpoint: str | None) -> Callable[[str], None] | None:
    """The loader checkpoint hook for ``COURSEMART_FAILPOINT=<checkpoint>[:<signal>]``: send
    this process the signal (SIGKILL by default) at that point."""
    if not failpoint:
        return None
    from coursemart.load import CHECKPOINTS

    point, _, name = failpoint.partition(":")
    kill = getattr(signal, name or "SIGKILL", None)
    if point not in CHECKPOINTS or not isinstance(kill, signal.Signals):
        raise InputError(
            f"COURSEMART_FAILPOINT must be one of {', '.join(CHECKPOINTS)}, "
            "optionally followed by :SIGTERM or another signal"
        )

    def checkpoint(reached: str) -> None:
        if reached == point:
            os.kill(os.getpid(), kill)

    return checkpoint


@dataclass(frozen=True)
class LoadOptions:
    """What ``load`` (and the second half of ``run``) was asked for."""

    warehouse: str | None
    since: datetime | None
    wait: float | None
    #: Seconds between looks at the lake's log when following it; None: load once.
    follow: float | None = None


def load_lake(
    config: Settings, spark: Any, lake_url: str, options: LoadOptions, quiet: bool
) -> None:
    """``coursemart load`` with resolved settings, on the local engine or on ``spark``."""
    warehouse_url = options.warehouse or config.warehouse_url
    wait = config.load_wait if options.wait is None else options.wait
    from coursemart.load.stage import LoadJob, run_load

    failpoint = kill_at(config.failpoint)
    job = LoadJob.create(
        lake_url, warehouse_url, since=options.since, wait=wait, checkpoint=failpoint
    )
    folder = job.warehouse.missing_folder
    if folder is not None:  # a mistyped path shows here, before anything is written there
        warn(f"{folder} does not exist: creating it for the warehouse {job.warehouse.display}")
    if options.follow is not None:
        follow_lake(job, spark, options.follow, quiet)
        return
    if spark is not None:
        from coursemart.engines.spark import SparkLoad

        result = run_load(job, SparkLoad(spark, job.warehouse))
    else:
        from coursemart.load.local import LocalLoad
        from coursemart.status import pending_rows

        interactive = not quiet and err.is_terminal
        total = pending_rows(lake_url, warehouse_url) if interactive else None
        with load_progress(total, quiet) as (advance, phase):

            def checkpoint(point: str) -> None:
                phase(point)
                if failpoint is not None:
                    failpoint(point)

            result = run_load(replace(job, progress=advance, checkpoint=checkpoint), LocalLoad())
    report_load(result, quiet)


def report_load(result: Any, quiet: bool) -> None:
    """A load's warnings on stderr and its summary line."""
    for warning in result.warnings:
        warn(warning)
    if not quiet:
        say(load_summary(result))


def warn(text: str) -> None:
    err.print(f"coursemart: warning: {text}", markup=False, highlight=False, soft_wrap=True)


def follow_lake(job: Any, spark: Any, interval: float, quiet: bool) -> None:
    """``load --follow``: every pending version now, then each new one as it appears."""
    from coursemart.load.follow import FollowEvents, follow

    def make_part() -> Any:
        if spark is not None:
            from coursemart.engines.spark import SparkLoad

            return SparkLoad(spark, job.warehouse)
        from coursemart.load.local import LocalLoad

        return LocalLoad()

    if not quiet:
        say(f"following {job.lake.display} every {interval:g} s into {job.warehouse.display}")
    follow(job, make_part, FollowEvents(lambda r: report_load(r, quiet), warn), interval=interval)


@app.command("load")
def load_command(
    *,
    lake: LakeOption = None,
    warehouse: WarehouseOption = None,
    since: SinceOption = None,
    wait: WaitOption = None,
    follow: FollowOption = False,
    interval: IntervalOption = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
    spark_conf: SparkConfOption = None,
    quiet: QuietOption = False,
) -> None:
    """Load the lake's new committed versions into the warehouse, exactly once (--follow: and
    keep loading each new one as it appears)."""
    stop_gracefully_on_sigterm()
    config = settings()
    options = LoadOptions(warehouse, since, wait, following(config, follow, interval))
    with engine_session(config, engine, spark_master, spark_conf) as spark:
        load_lake(config, spark, lake or config.lake, options, quiet)


def following(config: Settings, follow: bool, interval: float | None) -> float | None:
    """The follow interval asked for, or None when not following."""
    if not follow:
        if interval is not None:
            raise InputError("--interval is for --follow: add --follow, or drop --interval")
        return None
    return config.follow_interval if interval is None else interval


@app.command()
def run(
    *,
    courses: RunCoursesOption = None,
    seed: SeedOption = 0,
    lake: LakeOption = None,
    warehouse: WarehouseOption = None,
    start: StartOption = None,
    end: EndOption = None,
    reschedule: RescheduleOption = 0.0,
    since: SinceOption = None,
    wait: WaitOption = None,
    follow: FollowOption = False,
    interval: IntervalOption = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
    spark_conf: SparkConfOption = None,
    quiet: QuietOption = False,
) -> None:
    """Generate a batch (into an empty lake, or when --courses is given), then load every new
    version into the warehouse (--follow: and keep loading new ones as they appear)."""
    stop_gracefully_on_sigterm()
    config = settings()
    lake_url = lake or config.lake
    loading = LoadOptions(warehouse, since, wait, following(config, follow, interval))
    if courses is None and lake_has_courses(lake_url):
        if not quiet:
            say(
                f"lake {mask_url(lake_url)} already has courses: nothing generated "
                "(pass --courses N to add N more)"
            )
        options = None
    else:
        options = GenerateOptions(courses or DEFAULT_COURSES, seed, start, end, reschedule)
    with engine_session(config, engine, spark_master, spark_conf) as spark:
        if options is not None:
            write_batch(config, spark, lake_url, options, quiet)
        load_lake(config, spark, lake_url, loading, quiet)


def lake_has_courses(lake_url: str) -> bool:
    """Whether the lake has at least one committed batch."""
    from coursemart.lake import open_lake

    lake = open_lake(lake_url)
    return lake.exists() and bool(lake.committed_batches())
