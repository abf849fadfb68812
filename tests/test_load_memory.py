"""A load's memory: a SQLite load of a million courses peaks at about 400 MiB (README, Loading;
it was 655–671 MiB with a 256 MiB page cache)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from coursemart.generate import generate

PEAK_MIB = (
    500  # a guard against the 655–671 MiB of before; one full run on a busy machine went over 450
)


@pytest.mark.slow
def test_a_sqlite_load_of_a_million_courses_peaks_under_500_mib(
    lake_dir: Path, sqlite_url: str
) -> None:
    generate(str(lake_dir), courses=1_000_000, seed=7)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COURSEMART_")}
    command = [sys.executable, "-m", "coursemart", "load", "-q", "--lake", str(lake_dir)]
    process = subprocess.Popen([*command, "--warehouse", sqlite_url], env=environment)

    _, status, usage = os.wait4(process.pid, 0)  # the load's own peak, as `time -v` shows it
    process.returncode = os.waitstatus_to_exitcode(status)

    assert process.returncode == 0
    assert usage.ru_maxrss / 1024 < PEAK_MIB
