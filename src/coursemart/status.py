"""What is loaded and what is waiting: the data behind ``coursemart status``."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from coursemart import warehouse
from coursemart.errors import missing_lake
from coursemart.lake import open_lake
from coursemart.load import manifest
from coursemart.masking import mask_url
from coursemart.warehouse import Warehouse


@dataclass(frozen=True)
class StatusReport:
    warehouse_url: str
    lake_url: str
    initialised: bool
    #: A SQLite warehouse whose file does not exist yet: the file.
    missing_file: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    pending: list[tuple[str, int]] = field(default_factory=list)
    loads: list[manifest.LoadRecord] = field(default_factory=list)


def _loaded(
    target: Warehouse, *, details: bool = True
) -> tuple[bool, manifest.Position | None, dict[str, int], list[manifest.LoadRecord]]:
    """Whether the warehouse has coursemart's tables, how far it loaded the lake's table and,
    with ``details``, its row counts (cancelled courses among them) and latest loads. A SQLite
    file that does not exist is not created (nor its folder): it has no tables."""
    if target.sqlite_file is not None and not target.sqlite_file.exists():
        return False, None, {}, []
    engine = target.engine(read_only=True)
    try:
        with engine.connect() as connection:
            names = set(sa.inspect(connection).get_table_names())
            if not {t.name for t in warehouse.metadata.sorted_tables} <= names:
                return False, None, {}, []
            position = manifest.lake_position(connection)
            if not details:
                return True, position, {}, []
            counts = manifest.row_counts(connection)
            counts["cancelled courses"] = manifest.cancelled_courses(connection)
            return True, position, counts, manifest.latest_loads(connection)
    finally:
        engine.dispose()


def _pending(lake_url: str, position: manifest.Position | None) -> list[tuple[str, int]]:
    """The table's versions after ``position``: a label for each and the rows it added."""
    lake = open_lake(lake_url)
    if not lake.exists() or not lake.is_delta():
        return []
    latest = int(lake.delta().version())
    first = 0 if position is None else position.version + 1
    found = []
    for commit in lake.commits(first, latest) if first <= latest else []:
        label = f"version {commit.version}  {commit.operation.lower() or 'commit'}"
        if commit.changes:  # a delete: the rows it removed, not those of the files it rewrote
            rows = sum(lake.file_rows(file.path) for file in commit.changes)
            found.append((label + "  removes", rows))
            continue
        rows = sum(
            file.rows if file.rows is not None else lake.file_rows(file.path)
            for file in commit.added
        )
        batch = commit.batch_id or next((f.batch_id for f in commit.added if f.batch_id), None)
        found.append((label + (f"  batch {batch}" if batch else ""), rows))
    return found


def status(lake_url: str, warehouse: str | Warehouse) -> StatusReport:
    """Row counts, the latest loads, and the committed versions not loaded yet; a lake that
    does not exist is an error, as for ``load``."""
    target = Warehouse.from_url(warehouse)
    lake = open_lake(lake_url)
    if not lake.exists():
        raise missing_lake(lake.display)
    initialised, position, counts, loads = _loaded(target)
    missing = target.sqlite_file is not None and not target.sqlite_file.exists()
    return StatusReport(
        warehouse_url=target.display,
        lake_url=mask_url(lake_url),
        initialised=initialised,
        missing_file=str(target.sqlite_file) if missing else None,
        counts=counts,
        pending=_pending(lake_url, position),
        loads=loads,
    )


def pending_rows(lake_url: str, warehouse: str | Warehouse) -> int:
    """Rows in versions waiting to be loaded (for a progress bar): no counting of tables."""
    _, position, _, _ = _loaded(Warehouse.from_url(warehouse), details=False)
    return sum(rows for _, rows in _pending(lake_url, position))


def render(report: StatusReport) -> str:
    """The report as text."""
    lines = [f"warehouse: {report.warehouse_url}", f"lake:      {report.lake_url}"]
    if report.missing_file is not None:
        lines.append(f"no warehouse file {report.missing_file} yet: `coursemart load` creates it")
    elif not report.initialised:
        lines.append("warehouse not initialised: `coursemart load` creates its tables")
    else:
        lines.append(
            "rows:      " + ", ".join(f"{name} {count:,}" for name, count in report.counts.items())
        )
    pending_total = sum(rows for _, rows in report.pending)
    count = len(report.pending)
    lines.append(f"pending:   {count} version{'' if count == 1 else 's'}, {pending_total:,} rows")
    lines.extend(f"  {label}  {rows:,} rows" for label, rows in report.pending)
    if report.loads:
        lines.append("latest loads:")
        header = ("load_id", "status", "batches", "read", "loaded", "rejected", "finished (UTC)")
        table = [header] + [
            (
                load.load_id,
                load.status,
                f"{load.batches:,}",
                f"{load.rows_read:,}",
                f"{load.rows_loaded:,}",
                f"{load.rows_rejected:,}",
                f"{load.finished_at:%Y-%m-%d %H:%M:%S}",
            )
            for load in report.loads
        ]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines.extend(
            "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in table
        )
        failed = [load for load in report.loads if load.status == "failed" and load.message]
        lines.extend(f"  {load.load_id} failed: {load.message}" for load in failed[:3])
    return "\n".join(lines)
