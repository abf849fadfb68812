"""The lake: one layout for every engine and every storage.

```
<lake>/categories.csv                        dimension snapshot, replaced atomically
<lake>/levels.csv
<lake>/courses/_delta_log/…                  the Delta table's log: one commit per generate,
                                             delete or outside write
<lake>/courses/batch_id=<id>/part-*.parquet  data files, partitioned by batch; only those the log
                                             names exist for readers
<lake>/_rejected/load_id=<id>/part-*.parquet rows the loader refused, with a ``reason`` column
```

Local folders and fsspec URLs (``file://``, ``abfs://``, ``s3://``; not ``memory://``, which
delta-rs cannot see) go through the same code: a :class:`Lake` is opened once from its URL, and
its methods are the verbs.
"""

from __future__ import annotations

from coursemart.lake.contents import Batch, SuccessRecord, batch_id_problem
from coursemart.lake.delta_log import Commit, DataFile
from coursemart.lake.dimensions import DimensionFiles
from coursemart.lake.legacy import LegacyBatches, Listing
from coursemart.lake.parquet import PARQUET_COMPRESSION, ROW_GROUP_ROWS
from coursemart.lake.rejected import RejectedFiles
from coursemart.lake.store import (
    BATCH_PREFIX,
    COURSES_DIR,
    DIMENSIONS,
    REJECTED_DIR,
    SUCCESS,
    connect,
    new_id,
)
from coursemart.lake.writer import BatchFiles, BatchWriter, is_sorted_by_start


class Lake(BatchFiles, LegacyBatches, DimensionFiles, RejectedFiles):
    """A lake root on some filesystem: the courses table, dimension snapshots, rejected rows,
    and the batch folders of the earlier layout (for conversion)."""


def open_lake(url: str, *, create: bool = False) -> Lake:
    """Open the lake at ``url`` (folder or fsspec URL); ``create`` makes sure it is writable."""
    fs, root, arrow_fs = connect(url, create=create)
    return Lake(url=url, fs=fs, root=root, arrow_fs=arrow_fs)


__all__ = [
    "BATCH_PREFIX",
    "COURSES_DIR",
    "DIMENSIONS",
    "PARQUET_COMPRESSION",
    "REJECTED_DIR",
    "ROW_GROUP_ROWS",
    "SUCCESS",
    "Batch",
    "BatchWriter",
    "Commit",
    "DataFile",
    "Lake",
    "Listing",
    "SuccessRecord",
    "batch_id_problem",
    "is_sorted_by_start",
    "new_id",
    "open_lake",
]
