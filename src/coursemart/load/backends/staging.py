"""An optional capability: merging a staging table that someone else filled (the Spark engine's
executors) into ``courses``. Backends that can, inherit :class:`MergesStages`."""

from __future__ import annotations

from abc import ABC, abstractmethod

from coursemart.errors import CoursemartError
from coursemart.load.backends.base import Backend


class MergesStages(ABC):
    """A backend that merges rows staged by another writer."""

    @abstractmethod
    def merge_stage(self, stage: str, where: str, *, distinct: bool = False) -> None:
        """Merge the rows of ``stage`` matching ``where`` into ``courses``.

        ``distinct``: some rows were staged twice (identical copies), keep one of each.
        """


def stage_merger(backend: Backend) -> MergesStages:
    """``backend`` as a stage merger; a clear refusal for a database that cannot be one."""
    if isinstance(backend, MergesStages):
        return backend
    raise CoursemartError(
        f"the Spark engine cannot load into {backend.connection.dialect.name} warehouses: "
        "use PostgreSQL, MariaDB/MySQL or SQL Server, or --engine local"
    )
