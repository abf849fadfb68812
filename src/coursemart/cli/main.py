"""The entry point: run a command; every error is one line on stderr with its exit code."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
from typing import Any, NoReturn

import typer

from coursemart.cli.app import app
from coursemart.errors import (
    CoursemartError,
    InputError,
    Terminated,
    failure_text,
    first_line,
    is_database_error,
)
from coursemart.masking import escape_controls, mask_text

#: Libraries a lake on object storage raises from: their errors are the lake's, in one line.
STORAGE_LIBRARIES = frozenset(
    {"fsspec", "adlfs", "azure", "s3fs", "botocore", "aiobotocore", "aiohttp"}
)
#: Drivers that log what they ignore while unwinding (psycopg: "error ignored terminating
#: <psycopg.Copy [BAD]>" after the server died mid-COPY). The error that ends the command is
#: coursemart's one line; their lines would print before it through logging's last resort.
QUIET_LIBRARIES = ("psycopg", "pymysql", "pyodbc")

try:  # recent Typer vendors click under typer._click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older Typer uses click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; errors are one line on stderr: exit 2 for bad input, 1 otherwise."""
    command = typer.main.get_command(app)
    quiet_libraries()
    handler = signal.getsignal(signal.SIGTERM)  # commands may change it; run in-process, put back
    try:
        return run(command, argv)
    finally:
        if handler is not None and signal.getsignal(signal.SIGTERM) is not handler:
            signal.signal(signal.SIGTERM, handler)


def entry() -> NoReturn:
    """The ``coursemart`` console command: :func:`main`, then a quick exit.

    Once the command has finished, its output is flushed and the exit handlers run (temporary
    folders, Spark's gateway, logging), as at any exit; what is skipped is the interpreter's
    teardown of every imported module, which with pyarrow, SQLAlchemy and delta-rs loaded took
    0.1–0.3 s: a fifth of a load that finds nothing to do. A command that left a thread running
    exits the usual way, which waits for it.
    """
    code = main()
    if any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, or a closed stream
            code = code or 1
    os._exit(code)


def quiet_libraries() -> None:
    """Keep drivers' own log lines off stderr: only coursemart's lines may show there."""
    for name in QUIET_LIBRARIES:
        library = logging.getLogger(name)
        if not any(isinstance(handler, logging.NullHandler) for handler in library.handlers):
            library.addHandler(logging.NullHandler())
        library.propagate = False


def run(command: Any, argv: list[str] | None) -> int:
    """Run ``command`` with ``argv``; every error is one line on stderr with its exit code."""
    try:
        result: Any = command.main(args=argv, prog_name="coursemart", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("coursemart: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("coursemart: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except click_errors.NoArgsIsHelpError:
        return 2  # the help text is already printed
    except click_errors.UsageError as exc:
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        print(f"coursemart: error: {exc.format_message()}{where}", file=sys.stderr)
        return 2
    except click_errors.ClickException as exc:
        print(f"coursemart: error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        message, code = describe(exc)
        if message is None:
            raise
        print(f"coursemart: error: {one_line(mask_text(message))}", file=sys.stderr)
        return code
    return result if isinstance(result, int) else 0


def one_line(message: str, longest: int = 2000) -> str:
    """A message on one line: line breaks as spaces, other control characters escaped
    (data quoted in a message may hold anything), at most ``longest`` characters."""
    flat = " ".join(message.splitlines())
    shown = escape_controls(flat)
    return shown if len(shown) <= longest else shown[: longest - 1] + "…"


def describe(exc: Exception) -> tuple[str | None, int]:
    """The one-line message and exit code for an error a user can act on; (None, 1) for a bug.

    The libraries whose errors are recognised are only looked up if already imported: a
    command that never touched SQLAlchemy cannot have raised its error.
    """
    if isinstance(exc, CoursemartError):
        return str(exc), exc.exit_code
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):
        return settings_problem(exc), InputError.exit_code
    settings_module = sys.modules.get("pydantic_settings")
    if settings_module is not None and isinstance(exc, settings_module.SettingsError):
        return f"{exc} (fix the environment or .env)", InputError.exit_code
    if is_database_error(exc):
        return failure_text(exc), 1
    if isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in STORAGE_LIBRARIES:
        return f"lake: {type(exc).__name__}: {first_line(exc)}", 1
    return None, 1


def settings_problem(exc: Any) -> str:
    """One line naming each bad setting by its environment variable."""
    from coursemart.config import ENV_PREFIX

    problems = [
        f"{ENV_PREFIX}{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
        for error in exc.errors()
    ]
    return "; ".join(problems) + " (fix the environment or .env)"
