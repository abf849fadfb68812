"""What a committed batch holds: the record its ``_SUCCESS`` keeps, and the check a loader runs
before reading it.

``_SUCCESS`` is JSON: ``{"batch_id", "rows", "max_id", "parts": [{"file", "rows", "bytes"}, …]}``.
Version 0.1 of coursemart recorded only the number of parts (``"parts": 2``); other tools write
an empty ``_SUCCESS`` (Hadoop, Spark). A batch is loaded only when what its folder holds matches
its record; with no record to compare, what is there is what the batch holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from coursemart import model
from coursemart.lake.parquet import column_range

#: A batch id: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit, at most
#: as long as the warehouse's manifest column. Glob characters, spaces and slashes never pass.
BATCH_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def batch_id_problem(batch_id: str) -> str | None:
    """Why ``batch_id`` cannot name a batch, or None when it can."""
    if len(batch_id) > model.MAX_ID_LENGTH:
        return f"is {len(batch_id)} characters long, longer than {model.MAX_ID_LENGTH}"
    if not BATCH_ID.fullmatch(batch_id):
        return "holds characters other than letters, digits, '.', '_' and '-'"
    return None


def is_part_file(name: str) -> bool:
    """``part-00000.parquet`` and the like: the files a batch's rows are in."""
    return name.startswith("part-") and name.endswith(".parquet")


@dataclass(frozen=True)
class PartRecord:
    """One part file as ``_SUCCESS`` records it."""

    file: str
    rows: int
    bytes: int


@dataclass(frozen=True)
class SuccessRecord:
    """What ``_SUCCESS`` says a batch holds; every field None for a marker without a record."""

    rows: int | None = None
    parts: tuple[PartRecord, ...] | None = None
    part_count: int | None = None
    #: The largest course id in the batch, so that the next generate need not read footers.
    max_id: int | None = None

    def to_json(self, batch_id: str) -> bytes:
        parts = [part.__dict__ for part in self.parts or ()]
        document = {"batch_id": batch_id, "rows": self.rows, "max_id": self.max_id, "parts": parts}
        return json.dumps(document).encode()

    @classmethod
    def parse(cls, data: bytes) -> SuccessRecord:
        """The record in a ``_SUCCESS`` file's bytes; an empty or foreign marker records nothing."""
        try:
            document = json.loads(data.decode("utf-8")) if data.strip() else None
        except (UnicodeDecodeError, ValueError):
            document = None
        if not isinstance(document, dict):
            return cls()
        rows, parts, largest = document.get("rows"), document.get("parts"), document.get("max_id")
        rows = rows if isinstance(rows, int) else None
        largest = largest if isinstance(largest, int) else None
        if isinstance(parts, int):
            return cls(rows=rows, part_count=parts)
        if isinstance(parts, list) and all(_is_part(item) for item in parts):
            records = tuple(PartRecord(p["file"], p["rows"], p["bytes"]) for p in parts)
            return cls(rows=rows, parts=records, max_id=largest)
        return cls(rows=rows)


def _is_part(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("file"), str)
        and isinstance(item.get("rows"), int)
        and isinstance(item.get("bytes"), int)
    )


def file_problems(record: SuccessRecord, sizes: Mapping[str, int]) -> list[str]:
    """How the part files found (name -> bytes) differ from the record, before reading any."""
    if record.parts is not None:
        listed = {part.file: part for part in record.parts}
        problems = [f"{name} is missing" for name in sorted(set(listed) - set(sizes))]
        problems += [
            f"{name} is not listed in _SUCCESS" for name in sorted(set(sizes) - set(listed))
        ]
        problems += [
            f"{name} has {sizes[name]:,} bytes, _SUCCESS says {listed[name].bytes:,}"
            for name in sorted(set(sizes) & set(listed))
            if sizes[name] != listed[name].bytes
        ]
        return problems
    if record.part_count is not None and record.part_count != len(sizes):
        return [f"{len(sizes)} part files, _SUCCESS says {record.part_count}"]
    return []


def row_problems(record: SuccessRecord, rows: Mapping[str, int]) -> list[str]:
    """How the row counts in the part files' footers (name -> rows) differ from the record."""
    problems = [
        f"{part.file} has {rows[part.file]:,} rows, _SUCCESS says {part.rows:,}"
        for part in record.parts or ()
        if part.file in rows and rows[part.file] != part.rows
    ]
    total = sum(rows.values())
    if record.rows is not None and total != record.rows:
        problems.append(f"{total:,} rows, _SUCCESS says {record.rows:,}")
    return problems


@dataclass(frozen=True)
class Batch:
    """A committed batch as a loader reads it: its part files (full paths, in order) with their
    footers, and why it must be refused, if it must."""

    batch_id: str
    parts: tuple[str, ...] = ()
    footers: Mapping[str, Any] = field(default_factory=dict, repr=False)
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    #: The table version that committed the batch's files (None in the earlier layout).
    version: int | None = None

    @property
    def refused(self) -> bool:
        return bool(self.problems)

    @property
    def rows(self) -> int:
        """Rows in the batch, from its footers."""
        return sum(int(self.footers[path].num_rows) for path in self.parts)

    def schema(self, path: str) -> Any:
        """The Arrow schema of one of the batch's part files, from its footer."""
        return self.footers[path].schema.to_arrow_schema()

    def id_range(self, paths: Sequence[str]) -> tuple[int, int] | None:
        """(smallest, largest) ``course_id`` in ``paths`` from their footers; None if unknown."""
        spans = [
            column_range(self.footers[p], "course_id") for p in paths if self.footers[p].num_rows
        ]
        if not spans or any(span is None for span in spans):
            return None
        return min(s[0] for s in spans if s), max(s[1] for s in spans if s)

    def refusal(self) -> str:
        """One line naming the batch and what does not match."""
        return (
            f"batch {self.batch_id} does not match its _SUCCESS ({'; '.join(self.problems)}): "
            "not loaded; it will be loaded once it is whole"
        )
