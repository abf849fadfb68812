"""What the commands print: progress on a terminal, and one-line summaries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from coursemart.cli.app import err

if TYPE_CHECKING:
    from coursemart.generate import GenerateResult
    from coursemart.load import LoadResult


@contextmanager
def progress_bar(
    description: str, total: int | None, quiet: bool
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal; a no-op when quiet or not interactive."""
    if quiet or not err.is_terminal:
        yield lambda advance: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda advance: bar.advance(task, advance)


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
