"""The command line: summaries, one-line errors with exit code 2, interruption by a real signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from coursemart.lake import open_lake
from tests.conftest import CliResult
from tests.serving import Served, serving

Cli = Callable[..., CliResult]


def test_generate_prints_a_one_line_summary(cli: Cli, lake_dir: Path) -> None:
    result = cli("generate", "--courses", "2500", "--seed", "3", "--lake", str(lake_dir))

    assert result.exit_code == 0, result.stderr
    (batch_id,) = open_lake(str(lake_dir)).committed_batches()
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"generated batch {batch_id}: 2,500 rows")
    assert "KiB" in lines[0] and lines[0].endswith(" s")


def test_quiet_prints_nothing(cli: Cli, lake_dir: Path) -> None:
    result = cli("generate", "--courses", "10", "--lake", str(lake_dir), "--quiet")

    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert len(open_lake(str(lake_dir)).committed_batches()) == 1


def test_lake_defaults_to_the_configuration(
    cli: Cli, lake_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COURSEMART_LAKE", str(lake_dir))

    assert cli("generate", "--courses", "10", "-q").exit_code == 0
    assert len(open_lake(str(lake_dir)).committed_batches()) == 1


def test_window_and_reschedule_options(cli: Cli, lake_dir: Path) -> None:
    lake = str(lake_dir)
    assert (
        cli(
            "generate", "-n", "100", "--lake", lake, "--start", "2025-01-01", "--end", "2025-01-31"
        ).exit_code
        == 0
    )
    result = cli("generate", "-n", "10", "--lake", lake, "--reschedule", "0.5")

    assert result.exit_code == 0, result.stderr
    assert "50 rescheduled" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--courses", "-5"], "Invalid value for '--courses'"),
        (["--courses", "0"], "Invalid value for '--courses'"),
        (["--bogus"], "No such option: --bogus"),
        (
            ["--start", "2026-05-01", "--end", "2026-01-01"],
            "--start 2026-05-01 is after --end 2026-01-01",
        ),
        (
            ["--start", "yesterday"],
            "--start: 'yesterday' is not a date; write it as YYYY-MM-DD (e.g. 2026-01-31)",
        ),
        (["--end", "2026-02-30"], "--end: '2026-02-30' is not a date; write it as YYYY-MM-DD"),
        (["--reschedule", "1.5"], "Invalid value for '--reschedule'"),
    ],
)
def test_bad_options_give_one_line_and_exit_code_2(
    cli: Cli, lake_dir: Path, args: list[str], message: str
) -> None:
    result = cli("generate", "--lake", str(lake_dir), *args)

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("coursemart: error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not lake_dir.exists()


def test_a_lake_path_that_is_a_file_is_refused(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "lake.txt"
    target.write_text("not a lake")

    result = cli("generate", "--courses", "10", "--lake", str(target))

    assert result.exit_code == 2
    assert (
        result.stderr
        == f"coursemart: error: lake path '{target}' is a file, not a folder: choose a folder\n"
    )
    assert target.read_text() == "not a lake"


def test_an_unwritable_lake_is_refused(cli: Cli, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions: use a read-only filesystem
            locked = Path("/proc/coursemart-lake")
        result = cli("generate", "--courses", "10", "--lake", str(locked))
    finally:
        (tmp_path / "locked").chmod(0o700)

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert f"'{locked}'" in result.stderr
    assert "writable" in result.stderr


def test_a_bad_setting_names_the_variable(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSEMART_ENGINE", "hadoop")

    result = cli("config")

    assert result.exit_code == 2
    assert result.stderr.startswith("coursemart: error: COURSEMART_ENGINE: ")


def test_config_shows_masked_settings(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSEMART_WAREHOUSE", "postgresql://app:hunter2@db/cm")

    result = cli("config")

    assert result.exit_code == 0
    assert "warehouse = postgresql://app:***@db/cm" in result.stdout
    assert "hunter2" not in result.stdout


def test_every_command_and_option_has_help(cli: Cli) -> None:
    from typer.main import get_command

    from coursemart.cli import app

    group = get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert command.help, f"{name} has no help"
        for param in command.params:
            assert getattr(param, "help", None), f"{name} {param.name} has no help"


def test_version_prints_the_installed_version(cli: Cli) -> None:
    from importlib.metadata import version

    result = cli("--version")

    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        f"coursemart {version('coursemart')}\n",
        "",
    )


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "coursemart", "--help"], capture_output=True, text=True
    )

    assert done.returncode == 0
    assert "generate" in done.stdout


def test_the_command_exits_quickly_with_its_output_and_code(tmp_path: Path) -> None:
    """The console command skips the interpreter's teardown, not the output nor the code: a
    long output through a pipe arrives whole, an error keeps its exit status and its line, and
    exit handlers still run (a temporary folder made by the command is gone)."""
    command = str(Path(sys.executable).with_name("coursemart"))
    env = {**os.environ, "COURSEMART_LAKE": str(tmp_path / "lake")}
    helped = subprocess.run([command, "generate", "--help"], capture_output=True, text=True)
    refused = subprocess.run(
        [command, "generate", "--courses", "0"], capture_output=True, text=True, env=env
    )
    script = (
        "import atexit, pathlib, sys, tempfile\n"
        "from coursemart.cli.main import entry\n"
        "folder = tempfile.TemporaryDirectory()\n"
        f"pathlib.Path({str(tmp_path / 'made')!r}).write_text(folder.name)\n"
        "atexit.register(print, 'handler ran')\n"
        "sys.argv = ['coursemart', 'config']\n"
        "entry()\n"
    )
    configured = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env
    )

    assert helped.returncode == 0 and helped.stdout.rstrip().endswith("Show this message and exit.")
    assert refused.returncode == 2 and "--courses" in refused.stderr
    assert configured.returncode == 0, configured.stderr
    assert "lake" in configured.stdout and configured.stdout.rstrip().endswith("handler ran")
    assert not Path((tmp_path / "made").read_text()).exists()


def default_signal_handlers() -> None:
    """In a child before it runs: SIGINT and SIGTERM as a terminal would deliver them."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_killing_generate_part_way_leaves_no_committed_batch(lake_dir: Path, signum: int) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coursemart",
            "generate",
            "--courses",
            "20000000",
            "--lake",
            str(lake_dir),
            "-q",
        ],
        stderr=subprocess.PIPE,
        preexec_fn=default_signal_handlers,  # a suite started in the background ignores SIGINT
    )
    deadline = time.monotonic() + 60
    while not list(lake_dir.glob("courses/batch_id=*/part-00001.parquet")):
        assert process.poll() is None, "generate ended before it could be interrupted"
        assert time.monotonic() < deadline, "generate wrote no part file in 60 s"
        time.sleep(0.02)

    process.send_signal(signum)
    process.wait(timeout=60)

    assert process.returncode != 0
    lake = open_lake(str(lake_dir))
    assert lake.committed_batches() == []
    assert lake.max_course_id() == 0


@contextmanager
def serving_a_catalog(tmp_path: Path, lake_dir: Path, **env: str) -> Iterator[Served]:
    """``coursemart serve`` on a free port over a small warehouse; its output is kept in ``log``."""
    from coursemart.generate import generate
    from coursemart.load import load
    from tests.conftest import WINDOW

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    generate(str(lake_dir), courses=20, seed=1, window=WINDOW)
    load(str(lake_dir), url)
    with serving(url, **env) as served:
        yield served


def test_serve_answers_on_localhost(tmp_path: Path, lake_dir: Path) -> None:
    with serving_a_catalog(tmp_path, lake_dir) as served:
        assert served.status("/ready") == 200
        assert served.status("/v1/courses/recent?limit=5") == 200

    assert f"at http://127.0.0.1:{served.port}" in served.log
    assert "no API keys configured" in served.log


def test_serve_keeps_api_keys_out_of_the_access_log(tmp_path: Path, lake_dir: Path) -> None:
    with serving_a_catalog(
        tmp_path, lake_dir, COURSEMART_API_KEYS="k3y-s3cret", COURSEMART_ACCESS_LOG="true"
    ) as served:
        assert served.status("/api/GetRecentCourses?code=k3y-s3cret&limit=1") == 200

    assert "GET /api/GetRecentCourses?code=***&limit=1" in served.log
    assert "k3y-s3cret" not in served.log


def test_a_second_generate_on_a_local_lake_waits_for_the_first(lake_dir: Path) -> None:
    import fcntl

    from coursemart.generate import generate

    generate(str(lake_dir), courses=100, seed=1)
    with open(lake_dir / ".generate.lock", "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # as a running generate holds it
        waiting = subprocess.Popen(
            [sys.executable, "-m", "coursemart", "generate", "-n", "50", "--lake", str(lake_dir)],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        assert waiting.poll() is None, "the second generate did not wait"
        assert len(open_lake(str(lake_dir)).committed_batches()) == 1
        fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    out, _ = waiting.communicate(timeout=60)

    assert waiting.returncode == 0
    assert "ids 101–150" in out


def test_a_drivers_own_log_line_never_reaches_stderr() -> None:
    """psycopg logs "error ignored terminating <psycopg.Copy [BAD]>" while a COPY unwinds after
    the server died; only coursemart's one-line error may show. (In a process of its own:
    pytest's log capture would hide what logging's last resort prints.)"""
    script = (
        "import logging; from coursemart.cli import main; main(['config']); "
        "logging.getLogger('psycopg').warning('error ignored terminating <psycopg.Copy [BAD]>')"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )

    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""


@pytest.mark.parametrize("command", ["status", "serve"])
def test_status_and_serve_check_create_no_sqlite_file_nor_its_folder(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    import socket

    monkeypatch.chdir(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    options = ["--lake", "."] if command == "status" else ["--check", "--port", port]

    result = cli(command, *options, "--warehouse", "sqlite:///x/none.db")

    assert result.exit_code == 0, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_load_says_when_it_creates_the_sqlite_warehouse_s_folder(
    cli: Cli, tmp_path: Path, lake_dir: Path
) -> None:
    from coursemart.generate import generate

    generate(str(lake_dir), courses=10, seed=1)
    url = f"sqlite:///{tmp_path / 'new' / 'folder' / 'w.db'}"

    first = cli("load", "-q", "--lake", str(lake_dir), "--warehouse", url)
    again = cli("load", "-q", "--lake", str(lake_dir), "--warehouse", url)

    assert first.exit_code == 0 and (tmp_path / "new" / "folder" / "w.db").exists()
    assert first.stderr == (
        f"coursemart: warning: {tmp_path / 'new' / 'folder'} does not exist: creating it for "
        f"the warehouse {url}\n"
    )
    assert again.stderr == ""


@pytest.mark.parametrize("made", ["no file", "an empty file", "an empty PostgreSQL schema"])
def test_serving_a_warehouse_never_loaded_says_what_to_run(
    tmp_path: Path, request: pytest.FixtureRequest, made: str
) -> None:
    import json

    if made == "an empty PostgreSQL schema":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'data' / 'warehouse.db'}"
        if made == "an empty file":
            (tmp_path / "data").mkdir()
            (tmp_path / "data" / "warehouse.db").touch()

    with serving(url) as served:
        ready = served.get("/ready")
        listing = served.get("/v1/courses/recent")

    run = "run `coursemart load` (or `make run`) to create it"
    for status, _, body in (ready, listing):
        assert status == 503
        message = json.loads(body)["message"]
        assert message.endswith(run), message
        assert "retry" not in message
    if made == "no file":
        assert "the warehouse does not exist yet" in json.loads(ready[2])["message"]
        assert f"no warehouse at {tmp_path / 'data' / 'warehouse.db'} yet: {run}" in served.log
        assert not (tmp_path / "data").exists()
    else:
        assert "the warehouse has no coursemart tables yet" in json.loads(ready[2])["message"]
