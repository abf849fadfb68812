"""A class-data-sharing archive for the Spark driver's JVM: the same run starts seconds sooner.

Most of a short Spark run's start-up is the JVM loading and verifying Spark's classes. The JVM can
record the classes it loaded into an archive when it exits (``-XX:ArchiveClassesAtExit``) and map
that archive at its next start (``-XX:SharedArchiveFile``). coursemart does this for the driver JVM
it launches itself (any master; not when ``spark-submit`` or Databricks started the driver):

- the first Spark run on a machine records the archive, which costs that run some seconds while
  the JVM writes it on stop;
- the archive is named by everything it depends on (the Java binary, Spark's jars, the JVM
  options), so an upgrade simply records a new one; the JVM itself refuses an archive that does
  not match and starts without it;
- it is written under a temporary name and renamed into place, so a reader never sees half of one;
- the JVM checks the archive's checksum before using it; one it refuses (damaged) is removed, and
  the next run records it again.

``COURSEMART_SPARK_JVM_CACHE`` names the folder (default ``~/.cache/coursemart/spark-jvm``);
empty turns the archive off.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: Unfinished archives older than this are from runs that died before they could rename theirs
#: (recording one takes well under a minute).
STALE_SECONDS: Final = 600.0


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/coursemart/spark-jvm``, or ``~/.cache/coursemart/spark-jvm``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "coursemart" / "spark-jvm"


@dataclass(frozen=True)
class Plan:
    """What the driver JVM should do with the archive, and the file it concerns.

    ``record``: no archive yet, so this JVM writes ``unfinished`` at exit and :func:`finish`
    renames it to ``path``; otherwise the JVM maps ``path``.
    """

    path: Path
    unfinished: Path
    record: bool

    @property
    def java_options(self) -> str:
        if self.record:  # the JVM's notes on classes it cannot archive are not for the user
            return f"-XX:ArchiveClassesAtExit={self.unfinished} -Xlog:cds=off -Xlog:cds+dynamic=off"
        # the checksum costs a fraction of a second and turns a damaged archive into a warning
        return f"-XX:SharedArchiveFile={self.path} -XX:+VerifySharedSpaces"


def fingerprint(java: Path, jars: Path, java_options: str) -> str:
    """A short hash of what an archive depends on: the Java binary, the jars and the options."""
    digest = hashlib.sha256(java_options.encode())
    for path in [java, *sorted(jars.glob("*.jar"))]:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def java_binary() -> Path | None:
    """The ``java`` Spark's launch scripts run: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not found or not os.path.exists(found):
        return None
    return Path(found).resolve()


def plan(folder: Path, spark_home: Path, java_options: str) -> Plan | None:
    """The archive for a driver JVM started with ``java_options``, or None when there can be none
    (no Java found, no jars folder, the cache folder cannot be written, or its path has white
    space, which Spark's option string would split)."""
    java, jars = java_binary(), spark_home / "jars"
    if java is None or not jars.is_dir() or any(ch.isspace() for ch in str(folder)):
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale(folder)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    path = folder / f"spark-{fingerprint(java, jars, java_options)}.jsa"
    unfinished = folder / f"{path.name}.{os.getpid()}.unfinished"
    return Plan(path=path, unfinished=unfinished, record=not path.exists())


def finish(chosen: Plan) -> bool:
    """After the recording JVM has exited: put its archive in place. True when one was."""
    if not chosen.record:
        return False
    try:
        if chosen.unfinished.stat().st_size == 0:
            chosen.unfinished.unlink()
            return False
        os.replace(chosen.unfinished, chosen.path)
    except OSError:
        return False
    return True


def mapped(pid: int, archive: Path) -> bool | None:
    """Whether the JVM ``pid`` has ``archive`` mapped (None where ``/proc`` cannot tell)."""
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
            return any(line.rstrip().endswith(str(archive)) for line in maps)
    except OSError:
        return None


def discard_if_unused(chosen: Plan, pid: int) -> bool:
    """After a JVM started with ``chosen``: if it refused the archive (damaged, or made for
    another JVM), remove it so that the next run records a good one. True when removed."""
    if chosen.record or mapped(pid, chosen.path) is not False:
        return False
    try:
        chosen.path.unlink()
    except OSError:
        return False
    return True


def _remove_stale(folder: Path) -> None:
    now = time.time()
    for leftover in folder.glob("*.unfinished"):
        try:
            if now - leftover.stat().st_mtime > STALE_SECONDS:
                leftover.unlink()
        except OSError:
            continue
