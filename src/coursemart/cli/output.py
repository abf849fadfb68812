"""What the commands print: progress on a terminal, and one-line summaries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

from coursemart.cli.app import err

if TYPE_CHECKING:
    from rich.progress import Progress, Task, TaskID
    from rich.text import Text

    from coursemart.generate import GenerateResult
    from coursemart.load import LoadResult


def _progress() -> Progress:
    """A transient rich progress display on stderr: label, bar, count, elapsed, remaining."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Count(MofNCompleteColumn):
        """Done of total; nothing for a phase that counts nothing (no total)."""

        def render(self, task: Task) -> Text:
            return Text("") if task.total is None else super().render(task)

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        Count(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    return Progress(*columns, console=err, transient=True)


@contextmanager
def progress_bar(
    description: str, total: int | None, quiet: bool
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal; a no-op when quiet or not interactive."""
    if quiet or not err.is_terminal:
        yield lambda advance: None
        return
    with _progress() as bar:
        task = bar.add_task(description, total=total)
        yield lambda advance: bar.advance(task, advance)


#: What a load's second phase is called on its progress line, by the checkpoint that starts it.
LOAD_PHASES: Final = {"after_staging": "merging", "before_commit": "committing"}


@contextmanager
def load_progress(
    total: int | None, quiet: bool
) -> Iterator[tuple[Callable[[int], None], Callable[[str], None]]]:
    """A load's progress on a terminal: the rows read and staged, then each merge and the
    commit on a line of their own whose clock runs (the rows' bar has stopped at its end).
    Yields the frame's ``progress`` and ``checkpoint`` hooks; no-ops when quiet or not
    interactive."""
    if quiet or not err.is_terminal:
        yield (lambda rows: None), (lambda point: None)
        return
    with _progress() as bar:
        reading = bar.add_task("loading", total=total)
        phase: list[TaskID] = []

        def advance(rows: int) -> None:
            bar.advance(reading, rows)

        def reached(point: str) -> None:
            while phase:  # a batch merged: its line goes
                bar.remove_task(phase.pop())
            if point in LOAD_PHASES:
                phase.append(bar.add_task(LOAD_PHASES[point], total=None))

        yield advance, reached


def human_bytes(size: int) -> str:
    """``12345678`` -> ``11.8 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def generate_summary(result: GenerateResult) -> str:
    """The one-line summary of a generate run."""
    return (
        f"generated batch {result.batch_id}: {result.rows:,} rows "
        f"({result.new_courses:,} new, ids {result.first_id:,}–{result.last_id:,}; "
        f"{result.rescheduled:,} rescheduled), {human_bytes(result.bytes)}, "
        f"{result.seconds:.1f} s"
    )


def load_summary(result: LoadResult) -> str:
    """The one-line summary of a load."""
    if result.status == "nothing to do":
        return f"nothing to do: every committed version is already loaded (load {result.load_id})"
    versions = result.versions
    span = (
        f"version {versions[0]}"
        if len(versions) == 1
        else f"versions {versions[0]}–{versions[-1]}"
        if versions
        else "no version"
    )
    line = (
        f"loaded {len(result.batches)} batch{'es' if len(result.batches) != 1 else ''} "
        f"({span}, load {result.load_id}): {result.rows_read:,} rows read, "
        f"{result.rows_loaded:,} loaded, {result.rows_rejected:,} rejected"
    )
    if result.cancelled:
        line += f", {result.cancelled:,} cancelled courses removed"
    if result.rows_skipped:
        line += f", {result.rows_skipped:,} before --since skipped"
    line += f", {result.seconds:.1f} s"
    if result.rejected_path:
        reasons = ", ".join(f"{k}: {v:,}" for k, v in sorted(result.reasons.items()))
        line += f"; rejected rows ({reasons}) in {result.rejected_path}"
    return line
