"""Options shared by several commands, declared once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated

import typer

from coursemart.errors import InputError

#: Courses a generate run adds when not told (also coursemart.generate.DEFAULT_COURSES).
DEFAULT_COURSES = 100_000

LakeOption = Annotated[
    str | None,
    typer.Option(
        "--lake",
        metavar="PATH|URL",
        help="Lake folder or fsspec URL (abfs://…, s3://…). Default: COURSEMART_LAKE, ./data/lake.",
        show_default=False,
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar and no summary line.")
]
CoursesOption = Annotated[
    int,
    typer.Option("--courses", "-n", min=1, metavar="N", help="Number of new courses to generate."),
]
RunCoursesOption = Annotated[
    int | None,
    typer.Option(
        "--courses",
        "-n",
        min=1,
        metavar="N",
        help="Generate this many new courses first. Default: 100,000 into an empty lake, none "
        "into a lake that already has courses (a second run only loads).",
        show_default=False,
    ),
]
SeedOption = Annotated[
    int, typer.Option("--seed", metavar="N", help="Random seed; same seed, same rows.")
]
#: How a day is written, with an example, for the messages of the date options.
DAY_FORMAT = "YYYY-MM-DD (e.g. 2026-01-31)"


def day_option(option: str) -> Callable[[str], datetime]:
    """The parser of a date option: ``2026-01-31``; anything else is a one-line error that
    shows how to write one."""

    def parse(text: str) -> datetime:
        try:
            return datetime.combine(date.fromisoformat(text.strip()), time())
        except ValueError:
            raise InputError(
                f"{option}: {text!r} is not a date; write it as {DAY_FORMAT}"
            ) from None

    return parse


def instant_option(option: str) -> Callable[[str], datetime]:
    """The parser of a date-or-time option: ``2026-01-31``, ``2026-01-31T09:00`` (UTC) or
    ``2026-01-31T09:00:00+02:00``; anything else is a one-line error that shows how."""

    def parse(text: str) -> datetime:
        try:
            return datetime.fromisoformat(text.strip())
        except ValueError:
            raise InputError(
                f"{option}: {text!r} is not a date; write it as {DAY_FORMAT}, or with a time "
                "as 2026-01-31T09:00 (UTC) or 2026-01-31T09:00+02:00"
            ) from None

    return parse


StartOption = Annotated[
    datetime | None,
    typer.Option(
        "--start",
        metavar="YYYY-MM-DD",
        parser=day_option("--start"),
        help="First day of the start-date window (YYYY-MM-DD). Default: a year before today.",
        show_default=False,
    ),
]
EndOption = Annotated[
    datetime | None,
    typer.Option(
        "--end",
        metavar="YYYY-MM-DD",
        parser=day_option("--end"),
        help="Last day of the start-date window (YYYY-MM-DD). Default: half a year after today.",
        show_default=False,
    ),
]
RescheduleOption = Annotated[
    float,
    typer.Option(
        "--reschedule",
        metavar="FRACTION",
        min=0.0,
        max=1.0,
        help="Fraction of the courses already in the lake to move to a new start date (same id).",
    ),
]
WarehouseOption = Annotated[
    str | None,
    typer.Option(
        "--warehouse",
        metavar="URL",
        help="SQLAlchemy URL of the warehouse. Default: COURSEMART_WAREHOUSE, "
        "sqlite:///data/warehouse.db.",
        show_default=False,
    ),
]
SinceOption = Annotated[
    datetime | None,
    typer.Option(
        "--since",
        metavar="DATE",
        parser=instant_option("--since"),
        help="Load only courses starting at or after this date (UTC): 2026-01-01, "
        "2026-01-01T09:00:00 or 2026-01-01T09:00:00+02:00.",
        show_default=False,
    ),
]
WaitOption = Annotated[
    float | None,
    typer.Option(
        "--wait",
        metavar="SECONDS",
        min=0,
        help="Seconds to wait for another load on the same warehouse. Default: "
        "COURSEMART_LOAD_WAIT, 30.",
        show_default=False,
    ),
]


class Engine(StrEnum):
    local = "local"
    spark = "spark"


EngineOption = Annotated[
    Engine | None,
    typer.Option(
        "--engine",
        metavar="local|spark",
        help="local (pyarrow, in-process) or spark. Default: COURSEMART_ENGINE, local.",
        show_default=False,
    ),
]
SparkMasterOption = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        metavar="URL",
        help="Spark master URL for --engine spark. Default: COURSEMART_SPARK_MASTER, local[*].",
        show_default=False,
    ),
]
SparkConfOption = Annotated[
    list[str] | None,
    typer.Option(
        "--spark-conf",
        metavar="KEY=VALUE",
        help="Spark configuration KEY=VALUE for --engine spark; repeat for several.",
        show_default=False,
    ),
]


def spark_conf_pairs(pairs: list[str] | None) -> dict[str, str]:
    """``["a=1", "b=2"]`` -> ``{"a": "1", "b": "2"}``; a pair without ``=`` is a usage error."""
    conf: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--spark-conf {pair!r} is not KEY=VALUE")
        conf[key.strip()] = value
    return conf


FollowOption = Annotated[
    bool,
    typer.Option(
        "--follow",
        help="After loading what is pending, keep watching the lake's table and load each new "
        "version as it appears (SIGTERM or Ctrl-C stops it between loads).",
    ),
]
IntervalOption = Annotated[
    float | None,
    typer.Option(
        "--interval",
        min=0.05,
        metavar="SECONDS",
        help="With --follow: seconds between looks at the table's log. Default: "
        "COURSEMART_FOLLOW_INTERVAL, 0.5.",
        show_default=False,
    ),
]
