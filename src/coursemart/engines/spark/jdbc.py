"""Where Spark writes in the warehouse: the JDBC target and the staging table of a load."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import sqlalchemy as sa

from coursemart import warehouse
from coursemart.errors import InputError
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
        if target.backend == "postgresql":
            conninfo = target.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return cls(url, properties, conninfo)


def jdbc_target(target: str | Warehouse) -> tuple[str, dict[str, str]]:
    """The JDBC URL and connection properties for a warehouse's SQLAlchemy URL."""
    url = Warehouse.from_url(target).url
    backend = url.get_backend_name()
    host = url.host or "127.0.0.1"
    properties = {"user": url.username or "", "password": url.password or ""}
    if backend == "postgresql":
        jdbc = f"jdbc:postgresql://{host}:{url.port or 5432}/{url.database}"
        properties["driver"] = "org.postgresql.Driver"
        properties["reWriteBatchedInserts"] = "true"
        options = " ".join(str(v) for v in _as_list(url.query.get("options")))
        for option in options.split():
            if option.startswith("-csearch_path="):
                properties["currentSchema"] = option.split("=", 1)[1]
    elif backend in ("mysql", "mariadb"):
        # jdbc:mysql: gets Spark's MySQL dialect (backticks); permitMysqlScheme lets MariaDB's
        # driver accept that scheme
        jdbc = f"jdbc:mysql://{host}:{url.port or 3306}/{url.database}?permitMysqlScheme"
        properties["driver"] = "org.mariadb.jdbc.Driver"
        properties["rewriteBatchedStatements"] = "true"
        properties["sessionVariables"] = "time_zone='+00:00'"
    elif backend == "mssql":
        jdbc = (
            f"jdbc:sqlserver://{host}:{url.port or 1433};databaseName={url.database};encrypt=true"
        )
        properties["driver"] = "com.microsoft.sqlserver.jdbc.SQLServerDriver"
    else:
        raise InputError(
            f"the Spark engine loads into PostgreSQL, MariaDB/MySQL or SQL Server, not {backend}: "
            "use --engine local"
        )
    return jdbc, properties


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, tuple | list) else [value]


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
