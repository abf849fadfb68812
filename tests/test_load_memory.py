"""A load's memory: a SQLite load of a million courses peaks at about 470–490 MiB (README,
Loading; it was 655–671 MiB with a 256 MiB page cache)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from coursemart.generate import generate

#: A guard against the 655–671 MiB of before, above the 466–490 MiB measured (README, Loading).
PEAK_MIB = 560

#: Runs the load as its child and prints the child's peak resident set in KiB. Linux counts,
#: in a child's peak, the memory of the process it was forked from (the test runner's, which
#: grows over a whole suite); a small launcher makes the peak the load's own, as `time -v` shows.
LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def load_peak_kib(command: list[str], environment: dict[str, str]) -> tuple[int, int]:
    """The exit code and peak resident set (KiB) of ``command``, measured by the launcher."""
    launched = [sys.executable, "-c", LAUNCHER, *command]
    output = subprocess.run(launched, env=environment, capture_output=True, text=True, check=True)
    code, peak = output.stdout.split()
    return int(code), int(peak)


def test_the_launcher_measures_its_child_not_the_test_runner() -> None:
    ballast = bytearray(600 * 2**20)  # the runner's own memory, touched page by page
    ballast[::4096] = b"\1" * len(ballast[::4096])
    code, peak = load_peak_kib([sys.executable, "-c", "pass"], dict(os.environ))
    assert code == 0
    assert peak / 1024 < 100  # a bare interpreter, not the runner's 600 MiB
    del ballast


@pytest.mark.slow
def test_a_sqlite_load_of_a_million_courses_peaks_under_560_mib(
    lake_dir: Path, sqlite_url: str
) -> None:
    generate(str(lake_dir), courses=1_000_000, seed=7)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COURSEMART_")}
    command = [sys.executable, "-m", "coursemart", "load", "-q", "--lake", str(lake_dir)]

    code, peak = load_peak_kib([*command, "--warehouse", sqlite_url], environment)

    assert code == 0
    assert peak / 1024 < PEAK_MIB
