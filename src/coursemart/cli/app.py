"""The Typer application every command registers on, and the consoles it writes to."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from coursemart.errors import Terminated

app = typer.Typer(
    name="coursemart",
    help="Course-catalog datamart: generate a catalog into the lake, load it into the warehouse, "
    "serve it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: instant, and no markup library loaded to print it
)
if TYPE_CHECKING:
    from coursemart.config import Settings

err = Console(stderr=True)
out = Console()


def _show_version(asked: bool) -> None:
    if asked:
        from coursemart import __version__

        say(f"coursemart {__version__}")
        raise typer.Exit


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_show_version,
            help="Print coursemart's version and exit.",
        ),
    ] = False,
) -> None:
    """The options of ``coursemart`` itself (the help text is the app's)."""


def say(text: str) -> None:
    """One line on standard output, exactly as given (no markup, no wrapping)."""
    out.print(text, highlight=False, soft_wrap=True, markup=False)


def settings() -> Settings:
    """The configuration from the environment and ``.env`` (read when a command runs)."""
    from coursemart.config import Settings

    return Settings()


def stop_gracefully_on_sigterm() -> None:
    """For commands that write: SIGTERM unwinds like Ctrl-C (transactions roll back, partial
    files go), unless this process was started with SIGTERM ignored, which it then keeps.
    (``serve`` leaves SIGTERM to uvicorn, which shuts down gracefully.)"""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)


def _terminate(signum: int, frame: object) -> None:
    raise Terminated
