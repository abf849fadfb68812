"""The rows a load refuses, collected and written under ``_rejected/load_id=<id>/``."""

from __future__ import annotations

from typing import Final

import pyarrow as pa

from coursemart.lake import Lake

REJECTED_FLUSH_ROWS: Final = 100_000


class RejectedRows:
    """Collects refused rows (with their batch and file) and writes them in parts."""

    def __init__(self, lake: Lake, load_id: str, warehouse: str = "") -> None:
        self.lake = lake
        self.load_id = load_id
        self.warehouse = warehouse
        self.folder = lake.rejected_dir(load_id)
        self.rows = 0
        self.parts = 0
        self.pending: list[pa.Table] = []
        self.pending_rows = 0

    def add(self, rows: pa.Table, batch_id: str, path: str) -> None:
        if rows.num_rows == 0:
            return
        rows = rows.append_column("batch_id", pa.array([batch_id] * rows.num_rows, pa.string()))
        rows = rows.append_column("source_file", pa.array([path] * rows.num_rows, pa.string()))
        self.pending.append(rows)
        self.pending_rows += rows.num_rows
        if self.pending_rows >= REJECTED_FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        by_schema: dict[pa.Schema, list[pa.Table]] = {}
        for table in self.pending:  # a file with a foreign schema gets a part of its own
            by_schema.setdefault(table.schema, []).append(table)
        for tables in by_schema.values():
            table = pa.concat_tables(tables)
            self.lake.write_rejected(self.load_id, table, self.parts, self.warehouse)
            self.parts += 1
            self.rows += table.num_rows
        self.pending, self.pending_rows = [], 0

    def discard(self) -> None:
        """Remove what a failed load wrote: its rows were never loaded nor refused for good."""
        self.pending = []
        self.lake.discard_rejected(self.load_id)  # also a part cut short by a full disk
