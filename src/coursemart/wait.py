"""Wait until the warehouse accepts connections, then run a command: for containers started
together with their database, where the database may still be starting.

    python -m coursemart.wait [--timeout SECONDS] [-- COMMAND ARGS...]

The warehouse is the one in the settings (``COURSEMART_WAREHOUSE``, or the file named by
``COURSEMART_WAREHOUSE_FILE``). Without a command it only waits, so it also serves as an init step.
It exits with 1 and a one-line message when the warehouse is still unreachable after the timeout.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING

from coursemart.config import Settings
from coursemart.errors import CoursemartError

if TYPE_CHECKING:
    from coursemart.warehouse import Warehouse


class WarehouseUnreachableError(CoursemartError):
    """The warehouse did not accept a connection in time."""


def wait_for_warehouse(url: str | Warehouse, *, timeout: float, interval: float = 1.0) -> int:
    """Try ``SELECT 1`` on the warehouse until it works; return the number of attempts it took.

    Raises ``WarehouseUnreachableError`` naming the last error once ``timeout`` seconds are over.
    """
    from coursemart import warehouse

    target = warehouse.Warehouse.from_url(url)  # parsed once, not on every attempt
    argument = target.dialect.connect_timeout_argument
    connect_args = {argument: max(1, round(min(timeout, 5)))} if argument else {}
    deadline = time.monotonic() + timeout
    attempts = 0
    while True:
        attempts += 1
        engine = target.engine(connect_args=connect_args)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            return attempts
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if time.monotonic() + interval > deadline:
                raise WarehouseUnreachableError(
                    f"the warehouse {target.display} did not accept a connection within "
                    f"{timeout:g} s ({attempts} attempts; last: {problem}): check "
                    "COURSEMART_WAREHOUSE and that the database is running"
                ) from exc
            time.sleep(interval)
        finally:
            engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Wait for the warehouse, then replace this process with the command, if any."""
    parser = argparse.ArgumentParser(prog="python -m coursemart.wait", description=__doc__)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (60)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        wait_for_warehouse(Settings().warehouse_url, timeout=args.timeout)
    except CoursemartError as exc:
        print(f"coursemart: {exc}", file=sys.stderr)
        return exc.exit_code
    if command:
        sys.stdout.flush()
        os.execvp(command[0], command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
