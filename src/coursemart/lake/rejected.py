"""Rejected rows: what the loader refused, with a ``reason`` column, one folder per load.

A load writes its refused rows as it goes, but they become visible only when the load has
committed: ``_SUCCESS`` is written into the folder then, as for batches. A folder without it
belongs to a load that died or was rolled back, or that committed just before a crash, or that
is still running; the next load into the same warehouse settles each one of that warehouse
(:meth:`RejectedFiles.settle_rejected`): a folder's ``_WAREHOUSE`` file names the warehouse its
load writes to, and a lake loaded into several warehouses keeps their folders apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from coursemart.lake.parquet import PARQUET_COMPRESSION
from coursemart.lake.store import LOAD_PREFIX, REJECTED_DIR, SUCCESS, Store

#: In a folder of refused rows: the warehouse its load writes to.
OWNER: Final = "_WAREHOUSE"


class RejectedFiles(Store):
    """``<lake>/_rejected/load_id=<id>/part-*.parquet`` and its ``_SUCCESS``."""

    def write_rejected(
        self, load_id: str, table: pa.Table, part: int = 0, warehouse: str = ""
    ) -> str:
        """Write rows the loader refused (with their ``reason`` column) for its load into
        ``warehouse`` (:attr:`Warehouse.identity`); returns the path."""
        folder = self.rejected_dir(load_id)
        if not self.fs.exists(f"{folder}/{OWNER}"):
            self.fs.makedirs(folder, exist_ok=True)
            self.fs.pipe_file(f"{folder}/{OWNER}", warehouse.encode())
        path = f"{folder}/part-{part:05d}.parquet"
        pq.write_table(table, path, filesystem=self.arrow_fs, compression=PARQUET_COMPRESSION)
        return path

    def publish_rejected(self, load_id: str) -> None:
        """Make a committed load's rejected rows visible."""
        folder = self.rejected_dir(load_id)
        if self.fs.exists(folder):
            self.fs.pipe_file(f"{folder}/{SUCCESS}", b"")

    def rejected_loads(self) -> dict[str, bool]:
        """Every load with a rejected-rows folder, and whether its rows are visible."""
        root = self.path(REJECTED_DIR)
        self.fs.invalidate_cache(root)
        try:
            found = self.fs.find(root, maxdepth=2, withdirs=True, detail=False)
        except FileNotFoundError:
            return {}
        loads: dict[str, bool] = {}
        for path in found:
            parts = str(path).rstrip("/").split("/")
            folder, name = (parts[-2], parts[-1]) if parts[-1] == SUCCESS else (parts[-1], "")
            if folder.startswith(LOAD_PREFIX):
                load_id = folder[len(LOAD_PREFIX) :]
                loads[load_id] = loads.get(load_id, False) or name == SUCCESS
        return loads

    def settle_rejected(
        self, committed: Callable[[list[str]], set[str]], warehouse: str = ""
    ) -> None:
        """For each folder of rows not yet visible that belongs to ``warehouse``'s loads (or to
        no warehouse in particular, as earlier releases wrote them): publish it if its load
        committed (the ``committed`` function says which of the load ids did), else remove it.
        Another warehouse's folders are its own loads' business: one may be running."""
        hidden = [
            load_id
            for load_id, visible in self.rejected_loads().items()
            if not visible and self.rejected_owner(load_id) in ("", warehouse)
        ]
        if not hidden:
            return
        done = committed(hidden)
        for load_id in hidden:
            if load_id in done:
                self.publish_rejected(load_id)
            else:
                self.discard_rejected(load_id)

    def rejected_owner(self, load_id: str) -> str:
        """The warehouse a folder of refused rows belongs to ("" when it does not say)."""
        try:
            return bytes(self.fs.cat_file(f"{self.rejected_dir(load_id)}/{OWNER}")).decode()
        except FileNotFoundError:
            return ""

    def read_rejected(self, load_id: str) -> list[dict[str, Any]]:
        """All visible rows rejected by ``load_id``, part by part (parts may differ in their
        columns); none while the load has not committed."""
        folder = self.rejected_dir(load_id)
        if not self.fs.exists(f"{folder}/{SUCCESS}"):
            return []
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
