"""Validation of lake rows before anything is written: pure functions over Arrow data.

Each refused row gets the reason of the first rule it breaks; good rows come out with exactly the
warehouse's column types.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from coursemart import model
from coursemart.errors import LakeError
from coursemart.lake.parquet import INT64_MAX, INT64_MIN
from coursemart.load.conform import PROBLEM, ids_as_int64

EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Rules:
    """What a course row must satisfy to be loaded."""

    categories: frozenset[int]
    levels: frozenset[int]
    earliest: datetime = EARLIEST
    latest: datetime = LATEST
    max_name_length: int = model.MAX_NAME_LENGTH


@dataclass(frozen=True)
class Checked:
    """Rows split into those to load and those refused (with a ``reason`` column)."""

    good: pa.Table
    rejected: pa.Table

    @property
    def read(self) -> int:
        return int(self.good.num_rows + self.rejected.num_rows)


@dataclass
class Counts:
    """Rows read, loaded and rejected; read = loaded + rejected, always."""

    read: int = 0
    loaded: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, checked: Checked) -> None:
        self.read += checked.read
        self.loaded += checked.good.num_rows
        self.rejected += checked.rejected.num_rows
        count_reasons(checked.rejected, self.reasons)

    def merge(self, other: Counts) -> None:
        """Add another batch's counts to these."""
        self.read += other.read
        self.loaded += other.loaded
        self.rejected += other.rejected
        for reason, count in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count


def count_reasons(rejected: pa.Table, reasons: dict[str, int]) -> None:
    """Add the rejected rows' reason kinds to ``reasons``."""
    if rejected.num_rows:
        for item in pc.value_counts(reason_kinds(rejected["reason"])).to_pylist():
            reasons[item["values"]] = reasons.get(item["values"], 0) + item["counts"]


def reason_kinds(reasons: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The kind of each reason: its text before the first colon (``unknown category_id``)."""
    return pc.utf8_trim_whitespace(pc.list_element(pc.split_pattern(reasons, ":", max_splits=1), 0))


# ---------------------------------------------------------------------------------------------
# Schema


def schema_problems(schema: pa.Schema) -> list[str]:
    """What keeps a file's columns from being read as courses; empty when they can be."""
    repeated = sorted({name for name in schema.names if schema.names.count(name) > 1})
    if repeated:  # which of the two is the course's? Neither is read.
        return [f"column {name} appears {schema.names.count(name)} times" for name in repeated]
    problems = []
    for expected in model.COURSES_SCHEMA:
        if expected.name not in schema.names:
            problems.append(f"missing column {expected.name}")
            continue
        actual = schema.field(expected.name).type
        if not _convertible(actual, expected.type):
            problems.append(f"column {expected.name} is {actual}, expected {expected.type}")
    return problems


def _convertible(actual: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_null(actual):  # a column with no value at all: each row is refused as null
        return True
    if pa.types.is_dictionary(actual):
        return _convertible(actual.value_type, expected)
    if pa.types.is_integer(expected):
        return bool(pa.types.is_integer(actual))
    if pa.types.is_string(expected):
        return bool(
            pa.types.is_string(actual)
            or pa.types.is_large_string(actual)
            or pa.types.is_string_view(actual)  # Polars writes its strings so
        )
    if pa.types.is_timestamp(expected):
        return bool(pa.types.is_timestamp(actual) or pa.types.is_date(actual))
    return bool(actual == expected)


def reject_all(table: pa.Table, reason: str) -> Checked:
    """Every row refused for the same reason (a file whose schema cannot be loaded); a column
    name that repeats is numbered (``course_name``, ``course_name_2``) so the rows can be kept."""
    taken: dict[str, int] = {}
    names = []
    for name in table.column_names:
        taken[name] = taken.get(name, 0) + 1
        names.append(name if taken[name] == 1 else f"{name}_{taken[name]}")
    table = table.rename_columns(names)
    rejected = table.append_column("reason", pa.array([reason] * table.num_rows, pa.string()))
    return Checked(good=model.COURSES_SCHEMA.empty_table(), rejected=rejected)


# ---------------------------------------------------------------------------------------------
# Rows

#: Widest id range checked with a bitmap of one bit per id (256 MiB); wider ranges sort.
MAX_BITMAP_IDS: Final = 2**31


def duplicate_ids(
    id_arrays: Iterable[pa.Array | pa.ChunkedArray], id_range: tuple[int, int] | None = None
) -> pa.Array:
    """Course ids that occur more than once across ``id_arrays`` (one batch's ids, streamed).

    With the batch's ``id_range`` (from the Parquet footers), a bitmap of one bit per id in the
    range replaces holding every id: 100 million ids take 12 MiB, whatever the number of rows.
    The range only sizes the bitmap: footers are written by whoever wrote the file, and ids
    outside the range they state (a false minimum, ids beyond BIGINT) are checked by sorting.
    """
    chunks = (ids_as_int64(array) for array in id_arrays)
    if id_range is not None:
        low, high = max(id_range[0], INT64_MIN), min(id_range[1], INT64_MAX)
        if 0 < high - low + 1 <= MAX_BITMAP_IDS:
            return _repeated_in_range(chunks, low, high)
    return _repeated(list(chunks))


def _repeated(chunks: list[np.ndarray]) -> pa.Array:
    """Ids seen twice, found by sorting them all."""
    if not chunks:
        return pa.array([], pa.int64())
    ids = np.sort(np.concatenate(chunks))
    return pa.array(np.unique(ids[1:][ids[1:] == ids[:-1]]), pa.int64())


def _repeated_in_range(chunks: Iterable[np.ndarray], low: int, high: int) -> pa.Array:
    """Ids seen twice, marking each in a bitmap over ``low … high`` (eight ids a byte); ids
    outside the range are kept apart and sorted (none, when the footers told the truth)."""
    seen = np.zeros((high - low) // 8 + 1, dtype=np.uint8)
    repeated: list[np.ndarray] = []
    outside: list[np.ndarray] = []
    for ids in chunks:
        inside = (ids >= low) & (ids <= high)
        if not inside.all():
            outside.append(ids[~inside])
            ids = ids[inside]
        offsets, counts = np.unique(ids - low, return_counts=True)  # sorted, once each
        where, bits = offsets >> 3, np.left_shift(1, offsets & 7).astype(np.uint8)
        repeated.append(offsets[((seen[where] & bits) != 0) | (counts > 1)] + low)
        if len(where):  # ids sharing a byte: their bits are joined before the byte is written
            starts = np.flatnonzero(np.r_[True, where[1:] != where[:-1]])
            seen[where[starts]] |= np.bitwise_or.reduceat(bits, starts)
    found = np.concatenate(repeated) if repeated else np.array([], dtype=np.int64)
    beyond = _repeated(outside).to_numpy(zero_copy_only=False)
    return pa.array(np.unique(np.concatenate([found, beyond])), pa.int64())


Mask: TypeAlias = Any  # a pyarrow Array or ChunkedArray (pyarrow has no type hints)
Rule: TypeAlias = tuple[Callable[[pa.Table], Mask], Callable[[pa.Table], Mask | str]]


def _row_rules(rules: Rules, duplicates: pa.Array) -> list[Rule]:
    """(broken, reason) per rule, in the order they are checked; each a function of the rows."""
    problem: Rule = (
        lambda t: pc.is_valid(t[PROBLEM]) if PROBLEM in t.column_names else _none(t),
        lambda t: t[PROBLEM],
    )
    nulls = [_null(column) for column in model.COURSES_SCHEMA.names]
    return [problem, *nulls, *_value_rules(rules, duplicates), *_name_rules(rules.max_name_length)]


def _null(column: str) -> Rule:
    return (lambda t: pc.is_null(t[column]), lambda t: f"null {column}")


def _text(column: Mask) -> Mask:
    return pc.cast(column, pa.string())


def _value_rules(rules: Rules, duplicates: pa.Array) -> list[Rule]:
    """Ids, the dimension keys and the start date."""
    known_categories = pa.array(sorted(rules.categories), pa.int32())
    known_levels = pa.array(sorted(rules.levels), pa.int32())
    earliest = pa.scalar(rules.earliest, model.TIMESTAMP)
    latest = pa.scalar(rules.latest, model.TIMESTAMP)
    window = f" is outside {rules.earliest:%Y-%m-%d} to {rules.latest:%Y-%m-%d}"
    return [
        (
            lambda t: pc.less_equal(t["course_id"], 0),
            lambda t: _join("non-positive course_id: ", _text(t["course_id"])),
        ),
        (
            lambda t: pc.is_in(t["course_id"], value_set=duplicates),
            lambda t: _join("duplicate course_id: ", _text(t["course_id"]), " twice in the batch"),
        ),
        (
            lambda t: pc.invert(pc.is_in(t["category_id"], value_set=known_categories)),
            lambda t: _join("unknown category_id: ", _text(t["category_id"])),
        ),
        (
            lambda t: pc.invert(pc.is_in(t["level_id"], value_set=known_levels)),
            lambda t: _join("unknown level_id: ", _text(t["level_id"])),
        ),
        (
            lambda t: pc.or_(
                pc.less(t["start_date"], earliest), pc.greater_equal(t["start_date"], latest)
            ),
            lambda t: _join(
                "impossible start_date: ",
                pc.strftime(t["start_date"].cast(pa.timestamp("s", "UTC")), "%Y-%m-%dT%H:%M:%SZ"),
                window,
            ),
        ),
    ]


def _name_rules(longest: int) -> list[Rule]:
    """The course name: not empty, no NUL, at most ``longest`` characters."""
    return [
        (
            lambda t: pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(t["course_name"])), 0),
            lambda t: "empty course_name",
        ),
        (
            lambda t: pc.match_substring(t["course_name"], "\x00"),
            lambda t: _join(
                "NUL in course_name: ", pc.replace_substring(t["course_name"], "\x00", "\\x00")
            ),
        ),
        (
            lambda t: pc.greater(pc.utf8_length(t["course_name"]), longest),
            lambda t: _join(
                "over-long course_name: ",
                _text(pc.utf8_length(t["course_name"])),
                f" characters, at most {longest}",
            ),
        ),
    ]


def check(
    table: pa.Table,
    rules: Rules,
    duplicates: pa.Array | None = None,
    extras: Sequence[str] = (),
) -> Checked:
    """Split conformed rows into good and rejected, each rejected row with its first reason.

    Columns beyond the course columns are carried along with the rejected rows; those named in
    ``extras`` (columns the lake's table gained) also with the good ones, after the course columns.

    The rules are first evaluated as cheap boolean masks over all rows; reason texts are built
    only for the (usually few) rows that break one.
    """
    row_rules = _row_rules(
        rules, duplicates if duplicates is not None else pa.array([], pa.int64())
    )
    refused: Mask = pa.array(np.zeros(table.num_rows, dtype=bool))
    for broken, _ in row_rules:
        refused = pc.or_(refused, pc.fill_null(broken(table), False))
    if not pc.any(refused).as_py():
        return Checked(good=_lake_columns(table, extras), rejected=_empty_rejected(table))
    bad = table.filter(refused)
    reason: Mask = pa.nulls(bad.num_rows, pa.string())
    for broken, message in reversed(row_rules):  # the first rule is applied last, so it wins
        text = message(bad)
        value = text if isinstance(text, str) else pc.fill_null(text, "")
        reason = pc.if_else(pc.fill_null(broken(bad), False), value, reason)
    good = _lake_columns(table.filter(pc.invert(refused)), extras)
    if PROBLEM in bad.column_names:
        bad = bad.drop_columns([PROBLEM])
    return Checked(good=good, rejected=bad.append_column("reason", reason))


def _none(table: pa.Table) -> Mask:
    return pa.array(np.zeros(table.num_rows, dtype=bool))


def _lake_columns(table: pa.Table, extras: Sequence[str] = ()) -> pa.Table:
    """The course columns with the lake's (non-null) types, then ``extras``; other columns stay
    with rejects."""
    core = table.select(model.COURSES_SCHEMA.names).cast(model.COURSES_SCHEMA)
    for name in extras:
        core = core.append_column(name, table[name])
    return core


def _empty_rejected(table: pa.Table) -> pa.Table:
    schema = table.schema
    if PROBLEM in schema.names:
        schema = schema.remove(schema.get_field_index(PROBLEM))
    return schema.append(pa.field("reason", pa.string())).empty_table()


def _join(*parts: Mask | str) -> Mask:
    return pc.binary_join_element_wise(*parts, "")


# ---------------------------------------------------------------------------------------------
# Dimension snapshots


class DimensionError(LakeError):
    """A dimension snapshot has a row that cannot be loaded."""


def dimension_rows(snapshot: pa.Table, schema: pa.Schema, path: str) -> list[dict[str, object]]:
    """The snapshot's rows, checked: both columns present, no nulls, no duplicate id or name."""
    missing = [name for name in schema.names if name not in snapshot.column_names]
    if missing:
        raise DimensionError(
            f"{path}: missing column {', '.join(missing)}; expected {schema.names}"
        )
    rows: list[dict[str, object]] = snapshot.select(schema.names).to_pylist()
    key, label = schema.names
    seen_keys: set[object] = set()
    seen_labels: set[object] = set()
    longest = model.MAX_DIMENSION_NAME_LENGTH
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        where = f"{path} line {line}"
        if row[key] is None or row[label] is None or not str(row[label]).strip():
            raise DimensionError(f"{where}: {key} and {label} must both be given; fix the file")
        if len(str(row[label])) > longest:
            raise DimensionError(
                f"{where}: {label} is {len(str(row[label]))} characters long, at most {longest}"
            )
        if "\x00" in str(row[label]):
            raise DimensionError(f"{where}: {label} holds a NUL character; remove it")
        if row[key] in seen_keys or row[label] in seen_labels:
            raise DimensionError(f"{where}: {key} {row[key]} or {label} {row[label]!r} repeats")
        seen_keys.add(row[key])
        seen_labels.add(row[label])
    return rows
