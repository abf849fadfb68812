"""A class-data-sharing archive for the Spark driver's JVM: the same run starts seconds sooner.

Most of a short Spark run's start-up is the JVM loading and verifying Spark's classes. The JVM can
record the classes it loaded into an archive when it exits (``-XX:ArchiveClassesAtExit``) and map
that archive at its next start (``-XX:SharedArchiveFile``). The coursemart commands do this for
the driver JVM they launch themselves (not when ``spark-submit``, Databricks or Spark Connect
provide the driver):

- the first Spark run on a machine records the archive, which costs that run some seconds while
  the JVM writes it on stop (a run that fails or is interrupted records nothing);
- the archive is named by everything it depends on (the Java binary, Spark's jars, the JVM
  options and settings), so an upgrade simply records a new one; archives unused for
  :data:`UNUSED_DAYS` days are removed;
- it is written under a temporary name and renamed into place, so a reader never sees half of one;
- the JVM checks the archive's checksum before using it; one it refuses (damaged) is removed, and
  the next run records it again;
- only a folder of the user's own that nobody else may write is used: the archive holds code the
  driver runs.

``COURSEMART_SPARK_JVM_CACHE`` names the folder (default ``~/.cache/coursemart/spark-jvm``);
empty turns the archive off.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: Unfinished archives older than this are from runs that died before they could rename theirs
#: (recording one takes well under a minute).
STALE_SECONDS: Final = 600.0
#: Archives not used for this long are removed (each is about 170 MB).
UNUSED_DAYS: Final = 30
#: ``-XX:ArchiveClassesAtExit`` needs Java 13; Spark 4 needs 17 anyway.
MINIMUM_JAVA: Final = 13
#: JVM options that decide class sharing themselves: with any of them, coursemart stays out.
OWN_SHARING_OPTIONS: Final = ("-Xshare", "SharedArchiveFile", "ArchiveClassesAtExit")


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/coursemart/spark-jvm``, or ``~/.cache/coursemart/spark-jvm``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "coursemart" / "spark-jvm"


def folder_from_setting(setting: str | None) -> Path | None:
    """``COURSEMART_SPARK_JVM_CACHE``: unset means the default folder, empty means off."""
    if setting is None:
        return default_folder()
    return Path(setting).expanduser() if setting.strip() else None


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


def fingerprint(java: Path, jars: Path, context: Iterable[str]) -> str:
    """A short hash of what an archive depends on: the Java binary, the jars, and ``context``
    (the JVM options and whatever else shapes the driver JVM)."""
    digest = hashlib.sha256("\0".join(context).encode())
    for path in [java, *sorted(jars.glob("*.jar"))]:
        status = path.stat()
        digest.update(f"{path}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def java_binary() -> Path | None:
    """The ``java`` Spark's launch scripts run: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not found or not os.path.exists(found):
        return None
    return Path(found).resolve()


def java_feature_version(java: Path) -> int | None:
    """The Java feature version (17 for 17.0.15) from the ``release`` file of ``java``'s home."""
    try:
        release = (java.parent.parent / "release").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = re.search(r'^JAVA_VERSION="(?:1\.)?(\d+)', release, re.MULTILINE)
    return int(found.group(1)) if found else None


def plan(folder: Path, spark_home: Path, java_options: str, *context: str) -> Plan | None:
    """The archive for a driver JVM started with ``java_options``, or None when there can be none:
    no Java 13+ found, no jars folder, options that decide class sharing themselves, a cache
    folder that cannot be written or that others may write, or a path with white space (Spark's
    option string would split it)."""
    java, jars = java_binary(), spark_home / "jars"
    if java is None or not jars.is_dir() or any(ch.isspace() for ch in str(folder)):
        return None
    if any(option in java_options for option in OWN_SHARING_OPTIONS):
        return None
    version = java_feature_version(java)
    if version is None or version < MINIMUM_JAVA:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder = folder.resolve()  # the JVM's memory map names the real path
        if not _private(folder):
            return None
        _remove_old(folder)
        name = f"spark-{fingerprint(java, jars, [java_options, *context])}.jsa"
    except OSError:
        return None
    path = folder / name
    unfinished = folder / f"{name}.{uuid.uuid4().hex}.unfinished"
    if path.exists():
        try:
            os.utime(path)  # used now: not removed as unused
        except OSError:
            pass
        return Plan(path=path, unfinished=unfinished, record=False)
    return Plan(path=path, unfinished=unfinished, record=True)


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
    """Whether the JVM ``pid`` has ``archive`` mapped (None where ``/proc`` cannot tell).

    A mapping counts by its device and inode, or by its path: another run may have replaced the
    file since (the map then says ``(deleted)``), and on some filesystems the numbers differ.
    """
    try:
        status = archive.stat()
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
            lines = maps.read().splitlines()
    except OSError:
        return None
    device = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}"
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) < 6:
            continue
        path = fields[5].removesuffix(" (deleted)")
        if path == str(archive) or (fields[3] == device and fields[4] == str(status.st_ino)):
            return True
    return False


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


def _private(folder: Path) -> bool:
    """The folder is the user's own and nobody else may write to it."""
    status = folder.stat()
    owned = not hasattr(os, "getuid") or status.st_uid == os.getuid()
    return owned and not status.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _remove_old(folder: Path) -> None:
    """Remove unfinished archives of runs that died, and archives unused for a long time."""
    now = time.time()
    limits = (("*.unfinished", STALE_SECONDS), ("spark-*.jsa", UNUSED_DAYS * 86_400.0))
    for pattern, seconds in limits:
        for leftover in folder.glob(pattern):
            try:
                if now - leftover.stat().st_mtime > seconds:
                    leftover.unlink()
            except OSError:
                continue
