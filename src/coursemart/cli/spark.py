"""The Spark engine from the command line: the session a command runs in, and
``coursemart spark-warmup``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

from coursemart.cli.app import app, err, say, settings
from coursemart.cli.options import (
    Engine,
    QuietOption,
    SparkConfOption,
    SparkMasterOption,
    spark_conf_pairs,
)

if TYPE_CHECKING:
    from coursemart.config import Settings


def spark_arguments(master: str | None, conf: list[str] | None) -> list[str]:
    """The ``--spark-master``/``--spark-conf`` options as given, to hand to a warm-up."""
    arguments = ["--spark-master", master] if master else []
    for pair in conf or []:
        arguments += ["--spark-conf", pair]
    return arguments


@contextmanager
def engine_session(
    config: Settings, engine: Engine | None, master: str | None, conf: list[str] | None
) -> Iterator[Any]:
    """A Spark session for ``--engine spark`` (stopped afterwards), else None.

    When the driver JVM's class archive is missing, this run starts without it, and once it has
    succeeded a warm-up records the archive in the background for the runs after it.
    """
    chosen = engine.value if engine is not None else config.engine
    if chosen != "spark":
        yield None
        return
    from coursemart.engines import class_archive
    from coursemart.engines import spark as spark_engine
    from coursemart.engines.spark import driver, warmup

    folder = class_archive.folder_from_setting(config.spark_jvm_cache)
    session = spark_engine.session(
        master or config.spark_master,
        {**config.spark_conf, **spark_conf_pairs(conf)},
        jars=config.jdbc_jars.split(":"),
        jvm_cache=folder,
        record_missing=False,
    )
    try:
        yield session
    except BaseException:
        spark_engine.stop(session, keep_archive=False)
        raise
    spark_engine.stop(session)
    missing = driver.missing_archive()
    if missing is not None and folder is not None:
        log = warmup.start_in_background(spark_arguments(master, conf), folder)
        typer.echo(
            "coursemart: recording Spark's class archive in the background, so that later Spark "
            f"runs start sooner (once; log: {log})",
            err=True,
        )


@app.command("spark-warmup")
def spark_warmup(
    *,
    spark_master: SparkMasterOption = None,
    spark_conf: SparkConfOption = None,
    quiet: QuietOption = False,
) -> None:
    """Record the Spark driver JVM's class archive now (about 30 s, once per Spark and Java
    install), so that every later --engine spark run starts sooner."""
    from coursemart.engines import class_archive
    from coursemart.engines.spark import warmup

    config = settings()
    folder = class_archive.folder_from_setting(config.spark_jvm_cache)
    if folder is None:
        err.print("coursemart: COURSEMART_SPARK_JVM_CACHE is empty: no class archive is kept")
        return
    began = time.monotonic()
    path = warmup.warm_up(
        spark_master or config.spark_master,
        {**config.spark_conf, **spark_conf_pairs(spark_conf)},
        config.jdbc_jars.split(":"),
        folder,
    )
    if not quiet:
        if path is None:
            say(f"nothing to record: the class archive in {folder} is there or being recorded")
        else:
            say(f"recorded the class archive {path} ({time.monotonic() - began:.1f} s)")
