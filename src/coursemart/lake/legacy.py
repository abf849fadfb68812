"""The lake's earlier layout: one folder per generate run, committed by ``_SUCCESS``.

``coursemart lake convert`` reads it to commit each whole batch into the Delta table, in place.
Folders and files are listed, never globbed, so every name is taken literally.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coursemart.lake.contents import (
    Batch,
    SuccessRecord,
    batch_id_problem,
    file_problems,
    is_part_file,
    row_problems,
)
from coursemart.lake.parquet import ParquetFiles
from coursemart.lake.store import BATCH_PREFIX, COURSES_DIR, SUCCESS


def below(folder: str, path: str) -> str:
    """``path`` relative to ``folder`` (filesystems differ on a leading ``/``)."""
    base, full = folder.strip("/"), path.strip("/")
    return full[len(base) + 1 :] if full.startswith(base + "/") else ""


@dataclass(frozen=True)
class Listing:
    """The batch folders of a lake: committed ones (valid ids, ``_SUCCESS`` present), folders
    still being written, and folders skipped with the reason."""

    committed: tuple[str, ...] = ()
    uncommitted: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()

    def warnings(self) -> list[str]:
        """One line per skipped folder, naming it."""
        return [f"skipped {COURSES_DIR}/{name}: {why}" for name, why in self.skipped]


def _folder_problem(name: str, info: dict[str, Any]) -> str | None:
    """Why a ``batch_id=`` folder is not read, or None."""
    if info.get("islink"):
        return "is a symbolic link: coursemart does not follow links in the lake; copy the batch in"
    problem = batch_id_problem(name[len(BATCH_PREFIX) :])
    return f"its batch id {problem}; rename the folder" if problem else None


class LegacyBatches(ParquetFiles):
    """The batch folders of a lake made before the Delta table: listed and checked against
    their ``_SUCCESS`` by ``coursemart lake convert``."""

    def _entries(self, folder: str) -> list[dict[str, Any]]:
        """What ``folder`` holds (name, type, size), listed literally; empty when missing."""
        self.fs.invalidate_cache(folder)  # object stores cache listings: a batch may be new
        try:
            entries: list[dict[str, Any]] = self.fs.ls(folder, detail=True)
        except FileNotFoundError:
            return []
        return entries

    def listing(self) -> Listing:
        """Every ``batch_id=`` folder, in one listing of ``courses/`` two levels deep.

        A folder whose name is not a valid batch id, or that is a symbolic link, is skipped
        (never half-read); the caller warns about it.
        """
        courses = self.path(COURSES_DIR)
        self.fs.invalidate_cache(courses)
        try:
            found = self.fs.find(courses, maxdepth=2, withdirs=True, detail=True)
        except FileNotFoundError:
            return Listing()
        folders: dict[str, bool] = {}
        skipped: dict[str, str] = {}
        for path, info in found.items():
            folder, _, name = below(courses, str(path)).partition("/")
            if not folder.startswith(BATCH_PREFIX) or folder in skipped:
                continue
            if not name:
                problem = _folder_problem(folder, info)
                if problem:
                    skipped[folder] = problem
                    folders.pop(folder, None)
                    continue
            done = name == SUCCESS and info.get("type") == "file"
            folders[folder] = folders.get(folder, False) or done
        ids = {folder[len(BATCH_PREFIX) :]: done for folder, done in folders.items()}
        return Listing(
            committed=tuple(sorted(batch_id for batch_id, done in ids.items() if done)),
            uncommitted=tuple(sorted(batch_id for batch_id, done in ids.items() if not done)),
            skipped=tuple(sorted(skipped.items())),
        )

    def legacy_files(self, batch_id: str) -> list[str]:
        """The part files of a batch, in order."""
        names = [str(e["name"]).rstrip("/") for e in self._entries(self.batch_dir(batch_id))]
        return sorted(name for name in names if is_part_file(name.rsplit("/", 1)[-1]))

    def success_record(self, batch_id: str) -> SuccessRecord:
        """What the batch's ``_SUCCESS`` says it holds."""
        return SuccessRecord.parse(self.fs.cat_file(f"{self.batch_dir(batch_id)}/{SUCCESS}"))

    def open_legacy_batch(self, batch_id: str) -> Batch:
        """A committed batch checked against its ``_SUCCESS`` before any row is read.

        Names and sizes are compared first (an incomplete copy is refused without reading it),
        then the footers' row counts. Files that are not part files are noted, never read.
        """
        folder = self.batch_dir(batch_id)
        files = {
            str(e["name"]).rstrip("/").rsplit("/", 1)[-1]: int(e.get("size") or 0)
            for e in self._entries(folder)
            if e.get("type") == "file"
        }
        record = self.success_record(batch_id)
        sizes = {name: size for name, size in files.items() if is_part_file(name)}
        notes = tuple(
            f"batch {batch_id}: {name} is not a part file (part-*.parquet): not read"
            for name in sorted(set(files) - set(sizes) - {SUCCESS})
        )
        problems = file_problems(record, sizes)
        if problems:
            return Batch(batch_id, problems=tuple(problems), notes=notes)
        parts = tuple(f"{folder}/{name}" for name in sorted(sizes))
        footers = {path: self.footer(path) for path in parts}
        rows = {path.rsplit("/", 1)[-1]: int(footers[path].num_rows) for path in parts}
        problems = row_problems(record, rows)
        return Batch(batch_id, parts, footers, tuple(problems), notes)
