"""What is loaded and what is waiting: the data behind ``coursemart status``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import sqlalchemy as sa

from coursemart import lake as lakes
from coursemart import warehouse
from coursemart.config import mask_url
from coursemart.load import manifest


@dataclass(frozen=True)
class StatusReport:
    warehouse_url: str
    lake_url: str
    initialised: bool
    counts: dict[str, int] = field(default_factory=dict)
    pending: list[tuple[str, int]] = field(default_factory=list)
    loads: list[manifest.LoadRecord] = field(default_factory=list)


def _loaded(
    warehouse_url: str, *, details: bool = True
) -> tuple[bool, set[str], dict[str, int], list[manifest.LoadRecord]]:
    """Whether the warehouse has coursemart's tables, its loaded batch ids and, with
    ``details``, its row counts and latest loads."""
    engine = warehouse.create_engine(warehouse_url, read_only=not _missing_sqlite(warehouse_url))
    try:
        with engine.connect() as connection:
            names = set(sa.inspect(connection).get_table_names())
            if not {t.name for t in warehouse.metadata.sorted_tables} <= names:
                return False, set(), {}, []
            done = manifest.loaded_batch_ids(connection)
            if not details:
                return True, done, {}, []
            return True, done, manifest.row_counts(connection), manifest.latest_loads(connection)
    finally:
        engine.dispose()


def _missing_sqlite(warehouse_url: str) -> bool:
    """True for a SQLite file not created yet (it cannot be opened read-only)."""
    url = warehouse.normalize_url(warehouse_url)
    file = url.database or ""
    return (
        url.get_backend_name() == "sqlite"
        and file not in ("", ":memory:")
        and not os.path.exists(file)
    )


def _pending(lake_url: str, done: set[str]) -> list[tuple[str, int]]:
    lake = lakes.open_lake(lake_url)
    committed = lakes.committed_batches(lake) if lake.fs.exists(lake.root) else []
    return [(b, lakes.batch_row_count(lake, b)) for b in committed if b not in done]


def status(lake_url: str, warehouse_url: str) -> StatusReport:
    """Row counts, the latest loads, and the committed batches not loaded yet."""
    initialised, done, counts, loads = _loaded(warehouse_url)
    return StatusReport(
        warehouse_url=mask_url(warehouse_url),
        lake_url=mask_url(lake_url),
        initialised=initialised,
        counts=counts,
        pending=_pending(lake_url, done),
        loads=loads,
    )


def pending_rows(lake_url: str, warehouse_url: str) -> int:
    """Rows in batches waiting to be loaded (for a progress bar): no counting of tables."""
    _, done, _, _ = _loaded(warehouse_url, details=False)
    return sum(rows for _, rows in _pending(lake_url, done))


def render(report: StatusReport) -> str:
    """The report as text."""
    lines = [f"warehouse: {report.warehouse_url}", f"lake:      {report.lake_url}"]
    if not report.initialised:
        lines.append("warehouse not initialised: `coursemart load` creates its tables")
    else:
        lines.append(
            "rows:      " + ", ".join(f"{name} {count:,}" for name, count in report.counts.items())
        )
    pending_total = sum(rows for _, rows in report.pending)
    lines.append(f"pending:   {len(report.pending)} batches, {pending_total:,} rows")
    lines.extend(f"  {batch_id}  {rows:,} rows" for batch_id, rows in report.pending)
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
