"""Exceptions a user can act on: each message says what failed, where, and what to do."""

from __future__ import annotations


class CoursemartError(Exception):
    """Base of every error coursemart reports without a traceback."""

    exit_code = 1


class InputError(CoursemartError):
    """The user asked for something impossible (bad option value, bad path): exit code 2."""

    exit_code = 2


class LakeError(CoursemartError):
    """The lake cannot be read or written."""


class UnwritableLakeError(LakeError, InputError):
    """The lake path is a file, or cannot be written: a usage problem, exit code 2."""

    exit_code = 2


def missing_lake(shown: str) -> LakeError:
    """What ``load`` and ``status`` say of a lake that does not exist (``shown``: masked)."""
    return LakeError(f"no lake at {shown!r}: run `coursemart generate` first, or fix --lake")


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM): unwinds like Ctrl-C, so that what was half
    written is rolled back or removed."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (its class name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def failure_text(exc: BaseException) -> str:
    """What failed, in one line: a coursemart error as it is, a database error as the
    database's own first line (no SQL, no parameters), anything else with its class."""
    if isinstance(exc, CoursemartError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt | Terminated):
        return "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else "terminated"
    if is_database_error(exc):
        return f"warehouse: {first_line(getattr(exc, 'orig', None) or exc)}"
    return f"{type(exc).__name__}: {first_line(exc)}"


#: Database drivers whose errors may reach a command unwrapped (bulk paths use the driver).
DATABASE_DRIVERS = frozenset({"psycopg", "psycopg2", "pymysql", "MySQLdb", "sqlite3", "pyodbc"})


def is_database_error(exc: BaseException) -> bool:
    """An error of SQLAlchemy (which keeps the driver's as ``orig``) or of a driver itself."""
    module = type(exc).__module__.split(".")[0]
    return module == "sqlalchemy" or module in DATABASE_DRIVERS
