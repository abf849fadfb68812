"""Where Spark writes in the warehouse: the JDBC target and the staging table of a load."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import sqlalchemy as sa

from coursemart import warehouse
from coursemart.warehouse import Warehouse

STAGE_PREFIX: Final = "coursemart_stage_"


@dataclass(frozen=True)
class JdbcTarget:
    """The warehouse as Spark's JDBC writer and the executors' COPY reach it."""

    url: str
    properties: dict[str, str] = field(repr=False)
    #: A libpq URI for executors to COPY with, when the warehouse is PostgreSQL.
    copy_conninfo: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, target: Warehouse) -> JdbcTarget:
        url, properties = jdbc_target(target)
        conninfo = None
        if target.dialect.executors_copy:
            conninfo = target.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return cls(url, properties, conninfo)


def jdbc_target(target: str | Warehouse) -> tuple[str, dict[str, str]]:
    """The JDBC URL and connection properties for a warehouse's SQLAlchemy URL (its dialect's;
    an :class:`InputError` for a database Spark does not load)."""
    parsed = Warehouse.from_url(target)
    return parsed.dialect.jdbc_target(parsed.url)


def stage_table(load_id: str, *, unlogged: bool = False) -> sa.Table:
    """A staging table for one load: the course columns, no keys, and the batch's position.

    ``unlogged`` (PostgreSQL): no write-ahead log for a scratch table that is dropped anyway.
    """
    name = STAGE_PREFIX + "".join(ch if ch.isalnum() else "_" for ch in load_id.lower())
    columns = [sa.Column(c.name, c.type, nullable=False) for c in warehouse.courses.columns]
    return sa.Table(
        name,
        sa.MetaData(),
        *columns,
        sa.Column("batch_seq", sa.Integer, nullable=False),
        prefixes=["UNLOGGED"] if unlogged else [],
    )


def drop_stale_stages(connection: sa.engine.Connection) -> None:
    """Remove staging tables left by Spark loads that died before their commit."""
    for name in sa.inspect(connection).get_table_names():
        if name.startswith(STAGE_PREFIX):
            connection.exec_driver_sql(f"DROP TABLE {name}")


def staged_ids(engine: sa.engine.Engine, stage: sa.Table, seq: int) -> tuple[int, bool]:
    """Distinct course ids staged for batch ``seq``, and whether some were staged twice (a task
    that Spark retried after it had written)."""
    query = sa.select(sa.func.count(sa.distinct(stage.c.course_id)), sa.func.count()).where(
        stage.c.batch_seq == seq
    )
    with engine.connect() as connection:
        distinct, total = connection.execute(query).one()
    return int(distinct), int(total) != int(distinct)
