"""Recording the Spark driver JVM's class archive off the user's path: once after installing
(``coursemart spark-warmup``), or in the background after the first Spark run that found none.

The warm-up starts Spark with the same driver settings as the runs it prepares (the archive is
named by them), runs a small generate with rescheduling on a temporary lake (reading, writing,
shuffling and Arrow hand-offs: the classes a run loads), and stops the JVM, which writes the
archive. One warm-up at a time per cache folder (a lock file); a second one finds it taken and
does nothing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from coursemart.engines.spark import driver
from coursemart.engines.spark.generation import generate

LOCK: Final = ".warmup.lock"
LOG: Final = "warmup.log"
#: The niceness of a warm-up started in the background: the lowest priority there is.
BACKGROUND_NICENESS: Final = 19


def warm_up(master: str, conf: dict[str, str], jars: Sequence[str], folder: Path) -> Path | None:
    """Record the class archive in ``folder`` now; the archive's path, or None when there is
    none to record (it exists, another warm-up is recording it, or Spark is not launched here)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(folder / LOCK, "a+b") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        spark = driver.session(master, conf, jars, app_name="coursemart-warmup", jvm_cache=folder)
        plan = driver.recording()
        try:
            if plan is not None:
                exercise(spark)
        except BaseException:
            driver.stop(spark, keep_archive=False)
            raise
        driver.stop(spark)
        return plan.path if plan is not None and plan.path.exists() else None


def exercise(spark: driver.SparkSession) -> None:
    """A small run on a temporary lake that loads the classes a real run does."""
    with tempfile.TemporaryDirectory(prefix="coursemart-warmup-") as scratch:
        lake = str(Path(scratch) / "lake")
        generate(spark, lake, courses=2_000, seed=0)
        generate(spark, lake, courses=100, seed=1, reschedule=0.5)


def start_in_background(arguments: Sequence[str], folder: Path) -> Path:
    """Run ``coursemart spark-warmup ARGUMENTS`` detached from this process (it goes on after
    the command that started it returns, see :func:`in_background`); its output goes to a log
    in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    log = folder / LOG
    command = [sys.executable, "-m", "coursemart", "spark-warmup", "--quiet", *arguments]
    in_background(command, log, {**os.environ, "COURSEMART_SPARK_JVM_CACHE": str(folder)})
    return log


def in_background(
    command: Sequence[str], log: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """Start ``command`` in the background, its output appended to ``log``.

    It runs at the lowest CPU priority (``nice -n 19``, which its JVM and Python workers
    inherit), so that a user's next command, often started right away, takes the cores it needs
    and the warm-up uses what that command leaves idle. It gets a process group of its own (a
    Ctrl-C on the next command does not reach it) but stays in the user's session: Linux
    schedules each session as one group (autogroup), and in a session of its own the warm-up's
    niceness would rank it only against itself, as heavy as the user's whole session.
    """
    with open(log, "ab") as output:
        return subprocess.Popen(
            [*background_priority(), *command],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            process_group=0,
            env=env,
        )


def background_priority() -> list[str]:
    """The command prefix that runs a program at the lowest CPU priority, where there is one."""
    nice = shutil.which("nice")
    return [nice, "-n", str(BACKGROUND_NICENESS)] if nice else []
