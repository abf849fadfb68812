"""The ``coursemart`` command: thin Typer commands that hand off to the library."""

from __future__ import annotations

import copy
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy.exc import SQLAlchemyError

from coursemart import generate as generating
from coursemart import lake as lakes
from coursemart import status as statuses
from coursemart.load import CHECKPOINTS, LoadResult, load

try:  # recent Typer vendors click under typer._click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older Typer uses click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]
from coursemart.config import ENV_PREFIX, Settings, mask_url
from coursemart.errors import CoursemartError, InputError

app = typer.Typer(
    name="coursemart",
    help="Course-catalog datamart: generate a catalog into the lake, load it into the warehouse, "
    "serve it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()

# ---------------------------------------------------------------------------------------------
# Shared options

LakeOption = Annotated[
    str | None,
    typer.Option(
        "--lake",
        help="Lake folder or fsspec URL (abfs://…, s3://…). Default: COURSEMART_LAKE, ./data/lake.",
        show_default=False,
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar and no summary line.")
]
CoursesOption = Annotated[
    int,
    typer.Option("--courses", "-n", min=1, help="Number of new courses to generate."),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed; same seed, same rows.")]
StartOption = Annotated[
    datetime | None,
    typer.Option(
        "--start",
        formats=["%Y-%m-%d"],
        help="First day of the start-date window (YYYY-MM-DD). Default: a year before today.",
        show_default=False,
    ),
]
EndOption = Annotated[
    datetime | None,
    typer.Option(
        "--end",
        formats=["%Y-%m-%d"],
        help="Last day of the start-date window (YYYY-MM-DD). Default: half a year after today.",
        show_default=False,
    ),
]
RescheduleOption = Annotated[
    float,
    typer.Option(
        "--reschedule",
        min=0.0,
        max=1.0,
        help="Fraction of the courses already in the lake to move to a new start date (same id).",
    ),
]


WarehouseOption = Annotated[
    str | None,
    typer.Option(
        "--warehouse",
        help="SQLAlchemy URL of the warehouse. Default: COURSEMART_WAREHOUSE, "
        "sqlite:///data/warehouse.db.",
        show_default=False,
    ),
]
SinceOption = Annotated[
    datetime | None,
    typer.Option(
        "--since",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
        help="Load only courses starting at or after this date (UTC), e.g. 2026-01-01.",
        show_default=False,
    ),
]
WaitOption = Annotated[
    float | None,
    typer.Option(
        "--wait",
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
        help="local (pyarrow, in-process) or spark. Default: COURSEMART_ENGINE, local.",
        show_default=False,
    ),
]
SparkMasterOption = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help="Spark master URL for --engine spark. Default: COURSEMART_SPARK_MASTER, local[*].",
        show_default=False,
    ),
]
SparkConfOption = Annotated[
    list[str] | None,
    typer.Option(
        "--spark-conf",
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


@contextmanager
def engine_session(
    config: Settings, engine: Engine | None, master: str | None, conf: list[str] | None
) -> Iterator[Any]:
    """A Spark session for ``--engine spark`` (stopped afterwards), else None."""
    chosen = engine.value if engine is not None else config.engine
    if chosen != "spark":
        yield None
        return
    from coursemart.engines import class_archive
    from coursemart.engines import spark as spark_engine

    session = spark_engine.session(
        master or config.spark_master,
        {**config.spark_conf, **spark_conf_pairs(conf)},
        jars=config.jdbc_jars.split(":"),
        jvm_cache=class_archive.folder_from_setting(config.spark_jvm_cache),
    )
    archive = spark_engine.recording()
    if archive is not None:
        typer.echo(
            f"coursemart: first Spark run with these jars here: recording the JVM's class archive "
            f"in {archive.path.parent} (once; later runs start faster)",
            err=True,
        )
    try:
        yield session
    except BaseException:
        spark_engine.stop(session, keep_archive=False)  # a failed run records no archive
        raise
    spark_engine.stop(session)


def settings() -> Settings:
    """The configuration from the environment and ``.env``."""
    return Settings()


def window_from(start: datetime | None, end: datetime | None) -> generating.Window:
    """The start-date window from the ``--start``/``--end`` options, defaults around today."""
    default = generating.default_window()
    return generating.Window(
        start.date() if start else default.start, end.date() if end else default.end
    )


@contextmanager
def progress_bar(
    description: str, total: int | None, quiet: bool
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal; a no-op when quiet or not interactive."""
    if quiet or not err.is_terminal:
        yield lambda advance: None
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda advance: bar.advance(task, advance)


def human_bytes(size: int) -> str:
    """``12345678`` -> ``11.8 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def generate_summary(result: generating.GenerateResult) -> str:
    """The one-line summary of a generate run."""
    return (
        f"generated batch {result.batch_id}: {result.rows:,} rows "
        f"({result.new_courses:,} new, ids {result.first_id:,}–{result.last_id:,}; "
        f"{result.rescheduled:,} rescheduled), {human_bytes(result.bytes)}, "
        f"{result.seconds:.1f} s"
    )


# ---------------------------------------------------------------------------------------------
# Commands


def run_generate(
    config: Settings,
    spark: Any,
    *,
    courses: int,
    seed: int,
    lake: str | None,
    start: datetime | None,
    end: datetime | None,
    reschedule: float,
    quiet: bool,
) -> None:
    """``coursemart generate`` with resolved settings, on the local engine or on ``spark``."""
    window = window_from(start, end)
    lake_url = lake or config.lake
    if spark is not None:
        from coursemart.engines import spark as spark_engine

        result = spark_engine.generate(
            spark, lake_url, courses=courses, seed=seed, window=window, reschedule=reschedule
        )
    else:
        with progress_bar("generating", courses, quiet) as advance:
            result = generating.generate(
                lake_url,
                courses=courses,
                seed=seed,
                window=window,
                reschedule=reschedule,
                progress=advance,
            )
    if not quiet:
        out.print(generate_summary(result), highlight=False, soft_wrap=True)


@app.command()
def generate(
    *,
    courses: CoursesOption = generating.DEFAULT_COURSES,
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
    config = settings()
    with engine_session(config, engine, spark_master, spark_conf) as spark:
        run_generate(
            config,
            spark,
            courses=courses,
            seed=seed,
            lake=lake,
            start=start,
            end=end,
            reschedule=reschedule,
            quiet=quiet,
        )


def load_summary(result: LoadResult) -> str:
    """The one-line summary of a load."""
    if result.status == "nothing to do":
        return f"nothing to do: every committed batch is already loaded (load {result.load_id})"
    line = (
        f"loaded {len(result.batches)} batch{'es' if len(result.batches) != 1 else ''} "
        f"(load {result.load_id}): {result.rows_read:,} rows read, {result.rows_loaded:,} loaded, "
        f"{result.rows_rejected:,} rejected"
    )
    if result.rows_skipped:
        line += f", {result.rows_skipped:,} before --since skipped"
    line += f", {result.seconds:.1f} s"
    if result.rejected_path:
        reasons = ", ".join(f"{k}: {v:,}" for k, v in sorted(result.reasons.items()))
        line += f"; rejected rows ({reasons}) in {result.rejected_path}"
    return line


def kill_at(failpoint: str | None) -> Callable[[str], None] | None:
    """The loader checkpoint hook for ``COURSEMART_FAILPOINT``: SIGKILL self at that point."""
    if not failpoint:
        return None
    if failpoint not in CHECKPOINTS:
        raise InputError(f"COURSEMART_FAILPOINT must be one of {', '.join(CHECKPOINTS)}")

    def checkpoint(name: str) -> None:
        if name == failpoint:
            os.kill(os.getpid(), signal.SIGKILL)

    return checkpoint


def run_load(
    config: Settings,
    spark: Any,
    *,
    lake: str | None,
    warehouse: str | None,
    since: datetime | None,
    wait: float | None,
    quiet: bool,
) -> None:
    """``coursemart load`` with resolved settings, on the local engine or on ``spark``."""
    lake_url = lake or config.lake
    warehouse_url = warehouse or config.warehouse_url
    wait_seconds = config.load_wait if wait is None else wait
    checkpoint = kill_at(config.failpoint)
    if spark is not None:
        from coursemart.engines import spark as spark_engine

        result = spark_engine.load(
            spark, lake_url, warehouse_url, since=since, wait=wait_seconds, checkpoint=checkpoint
        )
    else:
        interactive = not quiet and err.is_terminal
        total = statuses.pending_rows(lake_url, warehouse_url) if interactive else None
        with progress_bar("loading", total, quiet) as advance:
            result = load(
                lake_url,
                warehouse_url,
                since=since,
                wait=wait_seconds,
                progress=advance,
                checkpoint=checkpoint,
            )
    if not quiet:
        out.print(load_summary(result), highlight=False, soft_wrap=True)


@app.command("load")
def load_command(
    *,
    lake: LakeOption = None,
    warehouse: WarehouseOption = None,
    since: SinceOption = None,
    wait: WaitOption = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
    spark_conf: SparkConfOption = None,
    quiet: QuietOption = False,
) -> None:
    """Load new committed lake batches into the warehouse, exactly once."""
    config = settings()
    with engine_session(config, engine, spark_master, spark_conf) as spark:
        run_load(config, spark, lake=lake, warehouse=warehouse, since=since, wait=wait, quiet=quiet)


RunCoursesOption = Annotated[
    int | None,
    typer.Option(
        "--courses",
        "-n",
        min=1,
        help="Generate this many new courses first. Default: 100,000 into an empty lake, none "
        "into a lake that already has courses (a second run only loads).",
        show_default=False,
    ),
]


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
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
    spark_conf: SparkConfOption = None,
    quiet: QuietOption = False,
) -> None:
    """Generate a batch (into an empty lake, or when --courses is given), then load every new
    batch into the warehouse."""
    config = settings()
    lake_url = lake or config.lake
    if courses is None and lake_has_courses(lake_url):
        if not quiet:
            out.print(
                f"lake {mask_url(lake_url)} already has courses: nothing generated "
                "(pass --courses N to add N more)",
                highlight=False,
                soft_wrap=True,
            )
        generate_now = 0
    else:
        generate_now = courses or generating.DEFAULT_COURSES
    with engine_session(config, engine, spark_master, spark_conf) as spark:
        if generate_now:
            run_generate(
                config,
                spark,
                courses=generate_now,
                seed=seed,
                lake=lake,
                start=start,
                end=end,
                reschedule=reschedule,
                quiet=quiet,
            )
        run_load(config, spark, lake=lake, warehouse=warehouse, since=since, wait=wait, quiet=quiet)


def lake_has_courses(lake_url: str) -> bool:
    """Whether the lake has at least one committed batch."""
    lake = lakes.open_lake(lake_url)
    return bool(lake.fs.exists(lake.root) and lakes.committed_batches(lake))


HostOption = Annotated[
    str,
    typer.Option(
        "--host",
        help="Address to listen on: 127.0.0.1 is this machine only, 0.0.0.0 every interface.",
    ),
]
PortOption = Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port to listen on.")]
WorkersOption = Annotated[
    int,
    typer.Option(
        "--workers", min=1, help="Worker processes; each has its own connection pool and cache."
    ),
]


class HideQuerySecrets(logging.Filter):
    """Masks ``?code=<API key>`` (and other secret query values) in access-log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                hide_query_secrets(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def access_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration, its access lines passed through HideQuerySecrets."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["hide_secrets"] = {"()": f"{__name__}.HideQuerySecrets"}
    config["handlers"]["access"]["filters"] = ["hide_secrets"]
    return config


def hide_query_secrets(path: str) -> str:
    """``/api/x?code=abc&limit=5`` -> ``/api/x?code=***&limit=5``."""
    return re.sub(r"(?i)([?&](?:code|api_key|key)=)[^&\s]*", r"\1***", path)


@app.command()
def serve(
    *,
    warehouse: WarehouseOption = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    workers: WorkersOption = 1,
) -> None:
    """Serve the read-only API and the web page at http://HOST:PORT (Ctrl-C stops)."""
    import uvicorn

    if warehouse:  # workers are processes of their own: they read settings from the environment
        os.environ[f"{ENV_PREFIX}WAREHOUSE"] = warehouse
    config = settings()  # a bad setting fails here, with the usual one-line message
    where = f"http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''})"
    out.print(
        f"serving {mask_url(config.warehouse_url)} at {where}", highlight=False, soft_wrap=True
    )
    if not config.api_keys:
        err.print("coursemart: no API keys configured (COURSEMART_API_KEYS): the API is open")
    uvicorn.run(
        "coursemart.api:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        server_header=False,
        log_config=access_log_config(),
    )


@app.command()
def status(*, lake: LakeOption = None, warehouse: WarehouseOption = None) -> None:
    """Show the latest loads, the batches waiting to be loaded and the rows per table."""
    config = settings()
    report = statuses.status(lake or config.lake, warehouse or config.warehouse_url)
    out.print(statuses.render(report), highlight=False, soft_wrap=True)


@app.command()
def config() -> None:
    """Show the configuration in force, with passwords and keys masked."""
    for name, value in settings().display().items():
        out.print(f"{name} = {value}", highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------------------------
# Entry point


def settings_problem(exc: ValidationError) -> str:
    """One line naming each bad setting by its environment variable."""
    problems = [
        f"{ENV_PREFIX}{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
        for error in exc.errors()
    ]
    return "; ".join(problems) + " (fix the environment or .env)"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; errors are one line on stderr: exit 2 for bad input, 1 otherwise."""
    command = typer.main.get_command(app)
    try:
        result: Any = command.main(args=argv, prog_name="coursemart", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("coursemart: interrupted", file=sys.stderr)
        return 130
    except click_errors.NoArgsIsHelpError:
        return 2  # the help text is already printed
    except click_errors.UsageError as exc:
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        print(f"coursemart: error: {exc.format_message()}{where}", file=sys.stderr)
        return 2
    except click_errors.ClickException as exc:
        print(f"coursemart: error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except CoursemartError as exc:
        print(f"coursemart: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValidationError as exc:
        print(f"coursemart: error: {settings_problem(exc)}", file=sys.stderr)
        return InputError.exit_code
    except SettingsError as exc:
        print(f"coursemart: error: {exc} (fix the environment or .env)", file=sys.stderr)
        return InputError.exit_code
    except SQLAlchemyError as exc:
        print(f"coursemart: error: {database_problem(exc)}", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0


def database_problem(exc: SQLAlchemyError) -> str:
    """The database's own message, first line only, without SQL, parameters or passwords."""
    original = getattr(exc, "orig", None) or exc
    first = str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__
    return f"warehouse: {first}"
