"""Dimension snapshots: ``categories.csv`` and ``levels.csv``, replaced atomically."""

from __future__ import annotations

import io
import os
import uuid

import pyarrow as pa
import pyarrow.csv as pacsv

from coursemart.errors import LakeError
from coursemart.lake.store import Store


class DimensionFiles(Store):
    """Reading and replacing the dimension CSVs."""

    def write_dimension(self, name: str, table: pa.Table) -> None:
        """Replace ``<name>.csv`` atomically: readers see the old file or the new one."""
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer)
        self.put_atomically(self.dimension_path(name), buffer.getvalue())

    def read_dimension(self, name: str, schema: pa.Schema | None = None) -> pa.Table:
        """Read ``<name>.csv`` (with ``schema``'s column types, when given)."""
        path = self.dimension_path(name)
        try:
            data = self.fs.cat_file(path)
        except FileNotFoundError as exc:
            raise LakeError(f"{path} is missing: run `coursemart generate` first") from exc
        convert = pacsv.ConvertOptions(column_types=schema) if schema is not None else None
        try:
            return pacsv.read_csv(io.BytesIO(data), convert_options=convert)
        except pa.ArrowException as exc:
            raise LakeError(f"cannot read {path}: {exc}") from exc

    def put_atomically(self, path: str, data: bytes) -> None:
        """Write a whole file so that readers see either the old content or the new."""
        if self.is_local:
            temporary = f"{path}.{uuid.uuid4().hex}.tmp"
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        else:
            # One PUT of a whole object is atomic on blob stores.
            self.fs.pipe_file(path, data)
