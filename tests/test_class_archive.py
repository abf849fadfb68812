"""The Spark driver JVM's class archive: recorded once, mapped afterwards, never a failure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from coursemart.engines import class_archive
from tests.conftest import unavailable


def spark_home(tmp_path: Path, jars: int = 2) -> Path:
    home = tmp_path / "spark"
    (home / "jars").mkdir(parents=True)
    for number in range(jars):
        (home / "jars" / f"lib-{number}.jar").write_bytes(b"jar %d" % number)
    return home


def test_the_first_plan_records_and_the_next_maps_what_was_recorded(tmp_path: Path) -> None:
    home, folder = spark_home(tmp_path), tmp_path / "cache"

    first = class_archive.plan(folder, home, "-Duser.timezone=UTC")
    assert first is not None and first.record
    assert f"-XX:ArchiveClassesAtExit={first.unfinished}" in first.java_options
    first.unfinished.write_bytes(b"archive")  # what the JVM writes at its exit
    assert class_archive.finish(first)

    second = class_archive.plan(folder, home, "-Duser.timezone=UTC")
    assert second is not None and not second.record
    assert second.path == first.path and second.path.read_bytes() == b"archive"
    assert f"-XX:SharedArchiveFile={second.path}" in second.java_options
    assert list(folder.iterdir()) == [first.path]


def test_the_archive_name_changes_with_the_jars_the_java_and_the_options(tmp_path: Path) -> None:
    home = spark_home(tmp_path)
    java = class_archive.java_binary()
    assert java is not None
    jars = home / "jars"
    base = class_archive.fingerprint(java, jars, "-Da=1")

    assert class_archive.fingerprint(java, jars, "-Da=1") == base
    assert class_archive.fingerprint(java, jars, "-Da=2") != base
    (jars / "lib-0.jar").write_bytes(b"a newer jar")
    assert class_archive.fingerprint(java, jars, "-Da=1") != base
    (jars / "extra.jar").write_bytes(b"added")
    assert len({base, class_archive.fingerprint(java, jars, "-Da=1")}) == 2


def test_an_empty_recording_is_not_kept_and_stale_ones_are_removed(tmp_path: Path) -> None:
    home, folder = spark_home(tmp_path), tmp_path / "cache"
    chosen = class_archive.plan(folder, home, "")
    assert chosen is not None
    chosen.unfinished.write_bytes(b"")
    assert not class_archive.finish(chosen)
    assert not chosen.path.exists() and not chosen.unfinished.exists()

    stale, fresh = folder / "a.jsa.1.unfinished", folder / "b.jsa.2.unfinished"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    old = time.time() - class_archive.STALE_SECONDS - 60
    os.utime(stale, (old, old))
    class_archive.plan(folder, home, "")
    assert not stale.exists() and fresh.exists()  # a fresh one may belong to a running JVM


def test_no_plan_without_jars_a_writable_cache_or_a_path_spark_can_pass_on(tmp_path: Path) -> None:
    assert class_archive.plan(tmp_path / "cache", tmp_path / "no-spark", "") is None
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    home = spark_home(tmp_path)
    assert class_archive.plan(blocker / "cache", home, "") is None
    assert class_archive.plan(tmp_path / "my cache", home, "") is None
    assert class_archive.plan(tmp_path / "cache", home, "") is not None


PROBE = """
import json, sys
from coursemart.engines import spark as engine

session = engine.session("local[1]", jvm_cache=sys.argv[1])
recording = engine.recording() is not None
pid = engine._driver_pid(session)
maps = open(f"/proc/{pid}/maps").read().splitlines()
mapped = sorted({line.split()[-1] for line in maps if line.rstrip().endswith(".jsa")})
count = session.range(3).count()
engine.stop(session)
print(json.dumps({"recording": recording, "count": count, "mapped": mapped}))
"""


def probe(cache: Path) -> dict[str, object]:
    """Start Spark in a fresh process with ``cache``, run a job, stop; what the JVM mapped."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(cache)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[warning][cds]" not in done.stderr  # the recording JVM's notes are not shown
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_real_driver_records_the_archive_maps_it_next_time_and_survives_damage(
    tmp_path: Path,
) -> None:
    if shutil.which("java") is None:
        unavailable("Java is not installed: the Spark engine needs Java 17+")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        unavailable("pyspark is not installed: pip install 'coursemart[spark]'")
    cache = tmp_path / "cache"

    first = probe(cache)
    archives = list(cache.glob("*.jsa"))
    second = probe(cache)
    archive = archives[0]
    archive.chmod(0o644)
    with archive.open("r+b") as damaged:  # flip bytes in the middle: the checksum catches it
        damaged.seek(archive.stat().st_size // 2)
        damaged.write(os.urandom(4096))
    third = probe(cache)

    assert first["recording"] is True and first["count"] == 3
    assert len(archives) == 1 and not list(cache.glob("*.unfinished"))
    assert second == {"recording": False, "count": 3, "mapped": second["mapped"]}
    assert str(archive) in second["mapped"]  # type: ignore[operator]
    assert third["count"] == 3 and str(archive) not in third["mapped"]  # type: ignore[operator]
    assert not archive.exists()  # refused, so removed: the next run records a good one


def test_an_empty_cache_setting_turns_the_archive_off() -> None:
    from coursemart.engines import spark as engine

    assert engine._archive_plan("", "-Duser.timezone=UTC") is None
