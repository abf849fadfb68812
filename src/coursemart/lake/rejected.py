"""Rejected rows: what the loader refused, with a ``reason`` column, one folder per load."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from coursemart.lake.parquet import PARQUET_COMPRESSION
from coursemart.lake.store import Store


class RejectedFiles(Store):
    """``<lake>/_rejected/load_id=<id>/part-*.parquet``."""

    def write_rejected(self, load_id: str, table: pa.Table, part: int = 0) -> str:
        """Write rows the loader refused (with their ``reason`` column); returns the path."""
        folder = self.rejected_dir(load_id)
        self.fs.makedirs(folder, exist_ok=True)
        path = f"{folder}/part-{part:05d}.parquet"
        pq.write_table(table, path, filesystem=self.arrow_fs, compression=PARQUET_COMPRESSION)
        return path

    def read_rejected(self, load_id: str) -> list[dict[str, Any]]:
        """All rows rejected by ``load_id``, part by part (parts may differ in their columns)."""
        rows: list[dict[str, Any]] = []
        for path in self.rejected_parts(load_id):
            rows.extend(pq.read_table(path, filesystem=self.arrow_fs).to_pylist())
        return rows

    def rejected_parts(self, load_id: str) -> list[str]:
        """The part files of a load's rejected rows, in order."""
        try:
            names = self.fs.ls(self.rejected_dir(load_id), detail=False)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if n.rsplit("/", 1)[-1].startswith("part-"))

    def discard_rejected(self, load_id: str) -> None:
        """Remove a load's rejected rows (the load failed: they were never refused for good)."""
        folder = self.rejected_dir(load_id)
        if self.fs.exists(folder):
            self.fs.rm(folder, recursive=True)
