"""Shared fixtures: temporary lakes, the CLI in-process, and the real database servers.

A test that needs a server it cannot reach is skipped with the reason, except with ``CI=true``,
where it fails: CI must never pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from coursemart.cli import main
from coursemart.generate import Window

IN_CI = os.environ.get("CI", "").lower() == "true"

#: A fixed window, so that tests do not depend on today's date.
WINDOW = Window(date(2026, 1, 1), date(2026, 12, 31))


def unavailable(reason: str) -> None:
    """Skip (on a laptop) or fail (in CI) a test whose service cannot be had."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``coursemart ARGS…`` in this process; returns its exit code and output."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
