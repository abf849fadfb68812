"""``python -m coursemart.wait``: wait for the warehouse, then run the command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coursemart.wait import WarehouseUnreachableError, wait_for_warehouse


@pytest.fixture
def unreachable() -> Iterator[str]:
    """A PostgreSQL URL on a port held but not listening, with a password never to be printed."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"postgresql+psycopg://app:s3cret@127.0.0.1:{held.getsockname()[1]}/coursemart"


def wait_command(*args: str, warehouse: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSEMART_")}
    env["COURSEMART_WAREHOUSE"] = warehouse
    command = [sys.executable, "-m", "coursemart.wait", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_a_warehouse_that_answers_is_reached_at_the_first_attempt(postgres_url: str) -> None:
    assert wait_for_warehouse(postgres_url, timeout=5) == 1


def test_an_unreachable_warehouse_is_named_with_its_password_masked_after_the_timeout(
    unreachable: str,
) -> None:
    started = time.monotonic()

    with pytest.raises(WarehouseUnreachableError) as caught:
        wait_for_warehouse(unreachable, timeout=1.5, interval=0.5)

    assert 1.0 <= time.monotonic() - started < 10
    message = str(caught.value)
    assert "app:***@127.0.0.1" in message and "s3cret" not in message
    assert "did not accept a connection within 1.5 s" in message


def test_the_command_runs_once_the_warehouse_answers(tmp_path: Path) -> None:
    sqlite = f"sqlite:///{tmp_path}/warehouse.db"
    code = "import sys; print('ran', sys.argv[1])"

    result = wait_command("--", sys.executable, "-c", code, "pipeline", warehouse=sqlite)

    assert (result.returncode, result.stdout) == (0, "ran pipeline\n")


def test_the_command_does_not_run_when_the_warehouse_never_answers(unreachable: str) -> None:
    result = wait_command("--timeout", "1", "--", "echo", "ran", warehouse=unreachable)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("coursemart: the warehouse postgresql+psycopg://app:***@")
    assert len(result.stderr.strip().splitlines()) == 1
