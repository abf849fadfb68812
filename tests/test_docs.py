"""The documentation says what the product does: exit codes, settings, benchmark labels."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from coursemart.generate import generate
from tests.conftest import WINDOW, CliResult

ROOT = Path(__file__).resolve().parent.parent
Cli = Callable[..., CliResult]


def documented_exit_codes() -> dict[int, str]:
    """docs/operations.md's table of exit codes: what each code is documented for."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    return {int(code): when for code, when in re.findall(r"^\| (\d+) \| (.+) \|$", text, re.M)}


@pytest.fixture
def taken_port() -> Iterator[str]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield str(listener.getsockname()[1])


#: (what the documentation calls the case, the command) for the codes a command returns.
CASES = [
    ("success", ["--version"]),
    ("a lake that does not exist", ["load", "--lake", "{tmp}/nowhere"]),
    ("a lake that does not exist", ["status", "--lake", "{tmp}/nowhere"]),
    ("an unreadable lake file", ["load", "--lake", "{lake}"]),
    ("an unknown option", ["load", "--bogus"]),
    ("an option's bad value", ["generate", "--courses", "0", "--lake", "{tmp}/new"]),
    ("a date that is not one", ["load", "--since", "2026-13-01"]),
    ("a lake path that is a file", ["generate", "--lake", "{tmp}/file.txt"]),
    ("a malformed warehouse URL", ["load", "--warehouse", "postgresql://h:99999/db"]),
    ("a missing database driver", ["status", "--lake", "{lake}", "--warehouse", "mssql://h/db"]),
    ("a port that is taken", ["serve", "--check", "--port", "{port}"]),
    ("no command at all", []),
]


@pytest.mark.parametrize(("case", "command"), CASES, ids=[case for case, _ in CASES])
def test_each_documented_exit_code_is_the_one_a_command_returns(
    cli: Cli, tmp_path: Path, taken_port: str, case: str, command: list[str]
) -> None:
    lake = tmp_path / "lake"
    generate(str(lake), courses=10, seed=1, window=WINDOW)
    (tmp_path / "file.txt").write_text("not a lake")
    if case == "an unreadable lake file":
        part = next(lake.glob("courses/*/part-*.parquet"))  # the size _SUCCESS records
        part.write_bytes(b"x" * part.stat().st_size)
    places = {"tmp": str(tmp_path), "lake": str(lake), "port": taken_port}
    args = [arg.format(**places) for arg in command]
    if command and command[0] in ("load", "status") and "--warehouse" not in command:
        args += ["--warehouse", f"sqlite:///{tmp_path / 'warehouse.db'}"]
    if command and command[0] == "load" and "--lake" not in command:
        args += ["--lake", str(lake)]

    result = cli(*args)

    documented = [code for code, when in documented_exit_codes().items() if case in when]
    assert documented == [result.exit_code], (case, result.exit_code, result.stderr)


@pytest.mark.parametrize(
    ("signum", "case"), [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")]
)
def test_the_documented_exit_codes_of_an_interrupted_command(
    lake_dir: Path, signum: int, case: str
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "coursemart", "generate", "-n", "20000000", "--lake", str(lake_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: [
            signal.signal(s, signal.SIG_DFL) for s in (signal.SIGINT, signal.SIGTERM)
        ],
    )
    deadline = time.monotonic() + 60
    while not list(lake_dir.glob("courses/batch_id=*/part-*.parquet")):  # under way
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signum)
    process.wait(timeout=60)

    documented = [code for code, when in documented_exit_codes().items() if case in when]
    assert documented == [process.returncode]


def test_every_setting_is_in_the_readmes_settings_table() -> None:
    from coursemart.config import ENV_PREFIX, Settings

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(rf"`({ENV_PREFIX}[A-Z_]+)`", section))
    for_tests_only = {"failpoint"}  # docs/reliability.md: never set in production

    wanted = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields} - {
        f"{ENV_PREFIX}{name.upper()}" for name in for_tests_only
    }
    assert wanted - listed == set()


def test_the_benchmarks_page_names_each_results_database() -> None:
    results = json.loads((ROOT / "bench" / "results" / "load.json").read_text(encoding="utf-8"))
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mariadb": "MariaDB"}
    rows = re.findall(r"^\| (\w+) \| ([^|]+?) \| ([\d.,]+ s) \|", page, re.M)
    shown = {(contender, time): database for database, contender, time in rows}

    for result in results["results"]:
        taken = result["seconds"]
        time_text = f"{taken:,.2f} s" if taken < 10 else f"{taken:,.1f} s"
        assert shown[(result["contender"], time_text)] == names[result["database"]], result


def test_each_headline_figure_of_the_readme_says_where_and_when_it_was_measured() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- figures: written by bench/report.py -->", 1)[1]
    lines = [line for line in block.split("<!-- /figures -->")[0].splitlines() if line[:2] == "- "]

    assert len(lines) >= 4
    for line in lines:
        assert re.search(r"\(\d+-core .+, \d{4}-\d{2}-\d{2}, load average [\d.]+\)$", line), line


def test_the_readmes_transcripts_quote_no_time_of_their_own() -> None:
    """A summary line's time in an example would be a second figure for a measurement the
    Performance section gives (it said 4.6 s for a load measured at 8.78 s)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    summaries = re.findall(r"^(?:generated batch|loaded \d+ batch).*$", readme, re.M)

    assert summaries
    for summary in summaries:
        assert summary.endswith(", … s"), summary
