"""``coursemart cancel`` and ``coursemart lake convert|vacuum``: changes to the lake itself."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from coursemart.cli.app import app, say, settings, stop_gracefully_on_sigterm
from coursemart.cli.options import LakeOption, QuietOption

lake_app = typer.Typer(
    help="Keep the lake: convert a lake of batch folders, remove leftovers of killed writes.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(lake_app, name="lake")

CourseIds = Annotated[
    list[int] | None,
    typer.Argument(
        metavar="[COURSE_ID]...", help="Ids of the courses to cancel.", show_default=False
    ),
]
BeforeOption = Annotated[
    datetime | None,
    typer.Option(
        "--before",
        metavar="YYYY-MM-DD",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
        help="Cancel every course starting before this day (UTC).",
        show_default=False,
    ),
]


@app.command()
def cancel(
    course_ids: CourseIds = None,
    *,
    before: BeforeOption = None,
    lake: LakeOption = None,
    quiet: QuietOption = False,
) -> None:
    """Cancel courses: delete them from the lake's table (one Delta commit); the next load
    removes them from the warehouse."""
    from coursemart.lake import open_lake
    from coursemart.lake.upkeep import cancel as cancel_courses

    stop_gracefully_on_sigterm()
    target = open_lake(lake or settings().lake)
    result = cancel_courses(target, list(course_ids or []), before)
    if quiet:
        return
    if result.version is None:
        say("nothing cancelled: no course matched")
    else:
        say(f"cancelled {result.rows:,} course rows (version {result.version}); load to apply")


@lake_app.command("convert")
def convert(*, lake: LakeOption = None, quiet: QuietOption = False) -> None:
    """Turn a lake of batch folders (courses/batch_id=<id>/ + _SUCCESS) into a Delta table, in
    place: one commit per whole batch; warehouses loaded from it need no reload."""
    from coursemart.lake import open_lake
    from coursemart.lake.upkeep import convert as convert_lake

    stop_gracefully_on_sigterm()
    target = open_lake(lake or settings().lake)
    result = convert_lake(target)
    if quiet:
        return
    say(
        f"converted {len(result.converted):,} batches into the Delta table "
        f"{target.display}/courses"
        + (f" (now at version {result.version})" if result.version is not None else "")
        + (f"; {len(result.already):,} were already in it" if result.already else "")
    )
    for name, why in result.left_aside:
        say(f"left aside courses/batch_id={name}: {why}")


@lake_app.command("vacuum")
def vacuum(
    *,
    lake: LakeOption = None,
    retention_hours: Annotated[
        int,
        typer.Option(
            "--retention-hours",
            min=0,
            help="Keep files the table stopped naming less than this long ago (time travel "
            "and loads behind by that long need them).",
        ),
    ] = 168,
    quiet: QuietOption = False,
) -> None:
    """Remove the files of killed writes (never committed), and the files the table stopped
    naming longer ago than --retention-hours."""
    from coursemart.lake import open_lake
    from coursemart.lake.upkeep import FOREIGN_GRACE_SECONDS
    from coursemart.lake.upkeep import vacuum as vacuum_lake

    stop_gracefully_on_sigterm()
    target = open_lake(lake or settings().lake)
    result = vacuum_lake(
        target, retention_hours=retention_hours, grace_seconds=FOREIGN_GRACE_SECONDS
    )
    if not quiet:
        say(
            f"removed {len(result.folders):,} uncommitted batch folders and "
            f"{len(result.files):,} files no longer in the table"
        )
