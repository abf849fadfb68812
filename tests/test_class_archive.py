"""The Spark driver JVM's class archive: recorded once, mapped afterwards, never a failure."""

from __future__ import annotations

import json
import mmap
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coursemart.engines import class_archive
from tests.conftest import WINDOW, unavailable
from tests.test_load import expected_courses, stored_courses


@pytest.fixture
def java() -> Path:
    found = class_archive.java_binary()
    if found is None:
        unavailable("Java is not installed: the Spark engine needs Java 17+")
    assert found is not None
    return found


def spark_home(tmp_path: Path, jars: int = 2) -> Path:
    home = tmp_path / "spark"
    (home / "jars").mkdir(parents=True)
    for number in range(jars):
        (home / "jars" / f"lib-{number}.jar").write_bytes(b"jar %d" % number)
    return home


def test_the_first_plan_records_and_the_next_maps_what_was_recorded(
    java: Path, tmp_path: Path
) -> None:
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
    other = class_archive.plan(folder, home, "-Duser.timezone=UTC", "spark.driver.memory=40g")
    assert other is not None and other.record and other.path != first.path


def test_the_archive_name_changes_with_the_jars_the_java_and_the_options(
    java: Path, tmp_path: Path
) -> None:
    jars = spark_home(tmp_path) / "jars"
    base = class_archive.fingerprint(java, jars, ["-Da=1"])

    assert class_archive.fingerprint(java, jars, ["-Da=1"]) == base
    assert class_archive.fingerprint(java, jars, ["-Da=2"]) != base
    (jars / "lib-0.jar").write_bytes(b"a newer jar")
    changed = class_archive.fingerprint(java, jars, ["-Da=1"])
    assert changed != base
    (jars / "extra.jar").write_bytes(b"added")
    assert class_archive.fingerprint(java, jars, ["-Da=1"]) not in (base, changed)


def test_an_empty_recording_is_not_kept_and_old_files_are_removed(
    java: Path, tmp_path: Path
) -> None:
    home, folder = spark_home(tmp_path), tmp_path / "cache"
    chosen = class_archive.plan(folder, home, "")
    assert chosen is not None
    chosen.unfinished.write_bytes(b"")
    assert not class_archive.finish(chosen)
    assert not chosen.path.exists() and not chosen.unfinished.exists()

    stale, fresh = folder / "a.jsa.1.unfinished", folder / "b.jsa.2.unfinished"
    unused, used = folder / "spark-0000.jsa", folder / "spark-1111.jsa"
    for path in (stale, fresh, unused, used):
        path.write_bytes(b"x")
    dead_run = time.time() - class_archive.STALE_SECONDS - 60
    long_unused = time.time() - class_archive.UNUSED_DAYS * 86_400 - 60
    os.utime(stale, (dead_run, dead_run))
    os.utime(unused, (long_unused, long_unused))
    class_archive.plan(folder, home, "")
    assert not stale.exists() and not unused.exists()
    assert fresh.exists() and used.exists()  # a fresh one may belong to a running JVM


def test_no_plan_where_an_archive_cannot_be_used_safely(java: Path, tmp_path: Path) -> None:
    home = spark_home(tmp_path)
    assert class_archive.plan(tmp_path / "cache", tmp_path / "no-spark", "") is None
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert class_archive.plan(blocker / "cache", home, "") is None
    assert class_archive.plan(tmp_path / "my cache", home, "") is None  # Spark would split it
    assert class_archive.plan(tmp_path / "cache", home, "-Xshare:off") is None
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # others could plant classes in the driver
    assert class_archive.plan(shared, home, "") is None
    assert class_archive.plan(tmp_path / "cache", home, "") is not None


def test_java_versions_are_read_from_the_release_file(tmp_path: Path) -> None:
    for text, version in (('JAVA_VERSION="17.0.15"', 17), ('JAVA_VERSION="1.8.0_402"', 8)):
        (tmp_path / "bin").mkdir(exist_ok=True)
        (tmp_path / "release").write_text(f'IMPLEMENTOR="x"\n{text}\n')
        assert class_archive.java_feature_version(tmp_path / "bin" / "java") == version
    (tmp_path / "release").unlink()
    assert class_archive.java_feature_version(tmp_path / "bin" / "java") is None


def test_a_mapped_file_is_recognised_in_the_process_memory_map(tmp_path: Path) -> None:
    if not Path("/proc/self/maps").exists():
        unavailable("/proc is not mounted")
    archive, other = tmp_path / "a.jsa", tmp_path / "b.jsa"
    archive.write_bytes(b"\0" * 8192)
    other.write_bytes(b"\0" * 8192)
    with archive.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ):
        assert class_archive.mapped(os.getpid(), archive) is True
        assert class_archive.mapped(os.getpid(), other) is False
    assert class_archive.mapped(os.getpid(), archive) is False


def test_no_archive_for_a_driver_this_process_does_not_launch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyspark")
    from pyspark import SparkContext

    from coursemart.engines.spark import driver as engine

    monkeypatch.setattr(SparkContext, "_gateway", None)
    for variable in ("PYSPARK_GATEWAY_PORT", "PYSPARK_SUBMIT_ARGS", "SPARK_REMOTE"):
        with monkeypatch.context() as patched:
            patched.setenv(variable, "1")
            assert engine._archive_plan(tmp_path, "", {}) is None
    assert engine._archive_plan(tmp_path, "", {"spark.remote": "sc://host"}) is None
    assert class_archive.folder_from_setting("") is None
    assert class_archive.folder_from_setting(None) == class_archive.default_folder()


PROBE = """
import json, sys
from pathlib import Path
from coursemart.engines.spark import driver as engine

conf = {"spark.driver.extraJavaOptions": "-Dcoursemart.probe=yes"}
session = engine.session("local[1]", conf, jvm_cache=Path(sys.argv[1]))
recording = engine.recording() is not None
pid = engine._driver_pid(session)
maps = open(f"/proc/{pid}/maps").read().splitlines()
mapped = sorted({line.split()[-1] for line in maps if line.rstrip().endswith(".jsa")})
system = session.sparkContext._jvm.java.lang.System
properties = [system.getProperty("coursemart.probe"), system.getProperty("user.timezone")]
count = session.range(3).count()
engine.stop(session)
found = {"recording": recording, "count": count, "mapped": mapped, "properties": properties}
print(json.dumps(found))
"""


def probe(cache: Path) -> dict[str, object]:
    """Start Spark in a fresh process with ``cache``, run a job, stop; what the JVM mapped."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(cache)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["properties"] == ["yes", "UTC"]  # the user's options join coursemart's own
    return result


def spark_run(cache: Path, lake: Path, warehouse: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "coursemart", "run", "--engine", "spark", "-n", "2000"]
    command += ["--spark-master", "local[1]", "--lake", str(lake), "--warehouse", warehouse]
    command += ["--start", WINDOW.start.isoformat(), "--end", WINDOW.end.isoformat()]
    command += ["--spark-conf", "spark.driver.extraJavaOptions=-Dcoursemart.probe=yes"]
    environment = {**os.environ, "COURSEMART_SPARK_JVM_CACHE": str(cache)}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)


def wait_for_archive(cache: Path, timeout: float = 300) -> list[Path]:
    """The archives in ``cache`` once a background warm-up has finished recording one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        archives = list(cache.glob("*.jsa"))
        if archives and not list(cache.glob("*.unfinished")):
            return archives
        time.sleep(1)
    log = cache / "warmup.log"
    raise AssertionError(
        f"no archive after {timeout} s: {log.read_text()[-2000:] if log.exists() else ''}"
    )


def test_spark_runs_record_the_archive_off_the_path_map_it_next_time_and_survive_damage(
    tmp_path: Path, postgres_url: str
) -> None:
    if shutil.which("java") is None:
        unavailable("Java is not installed: the Spark engine needs Java 17+")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        unavailable("pyspark is not installed: pip install 'coursemart[spark]'")
    cache, lake = tmp_path / "cache", tmp_path / "lake"

    failed = spark_run(cache, tmp_path / "other-lake", "sqlite:///" + str(tmp_path / "w.db"))
    assert failed.returncode == 2, failed.stderr[-2000:]  # Spark loads no SQLite: usage error
    assert "class archive" not in failed.stderr  # a failed run starts no recording
    assert not list(cache.glob("*.jsa")) and not (cache / "warmup.log").exists()

    first = spark_run(cache, lake, postgres_url)  # no archive yet: this run does not record one
    assert first.returncode == 0, first.stderr[-2000:]
    assert "recording Spark's class archive in the background" in first.stderr
    assert "[warning][cds]" not in first.stderr  # the recording JVM's notes are not shown
    generated, loaded = first.stdout.strip().splitlines()[-2:]
    assert generated.startswith("generated batch ") and "2,000 rows" in generated
    assert loaded.startswith("loaded 1 batch ") and "2,000 loaded" in loaded
    assert stored_courses(postgres_url) == expected_courses(lake)
    archives = wait_for_archive(cache)  # the warm-up the first run left behind records it
    assert len(archives) == 1 and not list(cache.glob("*.unfinished"))

    second = probe(cache)
    assert second["recording"] is False and second["count"] == 3
    assert str(archives[0]) in second["mapped"]  # type: ignore[operator]

    archive = archives[0]
    archive.chmod(0o644)
    with archive.open("r+b") as damaged:  # flip bytes in the middle: the checksum catches it
        damaged.seek(archive.stat().st_size // 2)
        damaged.write(os.urandom(4096))
    third = probe(cache)
    assert third["count"] == 3 and str(archive) not in third["mapped"]  # type: ignore[operator]
    assert not archive.exists()  # refused, so removed: the next run records a good one
