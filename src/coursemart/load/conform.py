"""A part file's rows typed as the lake's columns. A value that cannot be represented (an id
beyond BIGINT, text that is not UTF-8, nanoseconds, an instant no microsecond timestamp holds)
never crashes a load: it is flagged with its reason in the :data:`PROBLEM` column, and the row is
refused by :func:`coursemart.load.validate.check`."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from coursemart import model
from coursemart.lake.parquet import INT64_MAX, ids_as_int64

#: The column :func:`conform` adds: why a row's values cannot be represented (null when they can).
PROBLEM: Final = "conform_problem"
#: Microseconds per unit of the timestamp types a file may hold.
PER_MICROSECOND: Final = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 1}


def conform(table: pa.Table) -> pa.Table:
    """The course columns with the lake's types, in order, and a :data:`PROBLEM` column.

    Timestamps without a time zone are read as UTC; dictionary-encoded text is read as the
    strings it holds; a value out of its column's range is made null and its row flagged.
    """
    columns, problems = [], []
    for expected in model.COURSES_SCHEMA:
        column = table[expected.name].combine_chunks() if table.num_rows else table[expected.name]
        typed, problem = conform_column(column, expected.name, expected.type)
        columns.append(typed)
        problems.append(problem)
    first = pa.nulls(table.num_rows, pa.string())
    for problem in reversed([p for p in problems if p is not None]):  # the first column wins
        first = pc.if_else(pc.is_valid(problem), problem, first)
    schema = pa.schema([pa.field(f.name, f.type, nullable=True) for f in model.COURSES_SCHEMA])
    return pa.Table.from_arrays(
        [*columns, first], schema=schema.append(pa.field(PROBLEM, pa.string()))
    )


def conform_column(column: Any, name: str, target: pa.DataType) -> tuple[Any, Any | None]:
    """``column`` as ``target`` and the reason for each value that cannot be (None if all can)."""
    if pa.types.is_null(column.type):
        return pa.nulls(len(column), target), None
    if len(column) == 0:
        return pc.cast(column, target), None
    if pa.types.is_integer(target):
        return integers(column, name, target)
    if pa.types.is_string(target):
        return text(column, name)
    return instants(column, name)


def integers(column: Any, name: str, target: pa.DataType) -> tuple[Any, Any | None]:
    """Integers of any width as ``target``; those beyond its range are null and flagged."""
    try:
        return pc.cast(column, target), None
    except pa.ArrowInvalid:
        pass
    info = np.iinfo(target.to_pandas_dtype())
    raw = pc.fill_null(column, 0).to_numpy(zero_copy_only=False)
    outside = raw > info.max
    if np.issubdtype(raw.dtype, np.signedinteger):
        outside |= raw < info.min
    bad = pa.array(outside)
    reason = pc.binary_join_element_wise(
        f"out-of-range {name}: ",
        pc.cast(column, pa.string()),
        f" is outside {info.min} to {info.max}",
        "",
    )
    typed = pc.cast(pc.if_else(bad, pa.scalar(None, column.type), column), target)
    return typed, pc.if_else(bad, reason, pa.scalar(None, pa.string()))


def text(column: Any, name: str) -> tuple[Any, Any | None]:
    """Text as UTF-8 strings: dictionary-encoded and large strings are read as their values;
    bytes that are not UTF-8 are flagged (and shown with backslash escapes)."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    strings = pc.cast(column, pa.string()) if not pa.types.is_string(column.type) else column
    try:
        strings.validate(full=True)
        return strings, None
    except pa.ArrowInvalid:
        pass
    raw = strings.view(pa.binary()).to_pylist()
    decoded = [None if v is None else v.decode("utf-8", "backslashreplace") for v in raw]
    valid = [v is None or _is_utf8(v) for v in raw]
    reasons = [
        None if ok else f"invalid UTF-8 {name}: {shown}"
        for ok, shown in zip(valid, decoded, strict=True)
    ]
    return pa.array(decoded, pa.string()), pa.array(reasons, pa.string())


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def instants(column: Any, name: str) -> tuple[Any, Any | None]:
    """Dates and timestamps of any unit as UTC microseconds; a naive timestamp is UTC. A
    nanosecond part, or an instant beyond what microseconds hold, is flagged."""
    if pa.types.is_date(column.type):
        return pc.assume_timezone(pc.cast(column, pa.timestamp("us")), "UTC"), None
    unit, zone = column.type.unit, column.type.tz
    raw = pc.fill_null(pc.cast(column, pa.int64()), 0).to_numpy(zero_copy_only=False)
    if unit == "ns":
        bad = raw % 1_000 != 0
        why = "sub-microsecond {name}: {value} has nanoseconds; coursemart keeps microseconds"
    else:
        bad = np.abs(raw) > INT64_MAX // PER_MICROSECOND[unit]
        why = "impossible {name}: {value} {unit} from 1970 is beyond any date a timestamp holds"
    reasons = None
    if bad.any():
        mask = pa.array(bad)
        values = pc.cast(pc.cast(column, pa.int64()), pa.string()).to_pylist()
        reasons = pa.array(
            [
                why.format(name=name, value=v, unit=unit) if b else None
                for v, b in zip(values, bad, strict=True)
            ],
            pa.string(),
        )
        column = pc.if_else(mask, pa.scalar(None, column.type), column)
    typed = pc.cast(column, pa.timestamp("us", zone)) if unit != "us" else column
    typed = pc.assume_timezone(typed, "UTC") if zone is None else pc.cast(typed, model.TIMESTAMP)
    return typed, reasons


__all__ = ["PROBLEM", "conform", "ids_as_int64"]
