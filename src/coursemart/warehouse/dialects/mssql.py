"""SQL Server: timezone-aware instants (``DATETIMEOFFSET``), no text index (a search reads
``search_name`` with ``LIKE``)."""

from __future__ import annotations

from sqlalchemy.engine import URL, Connection

from coursemart.warehouse.dialects.base import Dialect, jdbc_credentials


class SQLServer(Dialect):
    names = ("mssql",)
    driver_extra = "mssql"
    aware_instants = True
    connect_timeout_argument = "timeout"
    add_column = "ADD"
    code_point_format = "{} COLLATE Latin1_General_100_BIN2"

    def has_text_index(self, connection: Connection) -> bool:
        return True  # nothing to make

    def jdbc_target(self, url: URL) -> tuple[str, dict[str, str]]:
        host = url.host or "127.0.0.1"
        jdbc = (
            f"jdbc:sqlserver://{host}:{url.port or 1433};databaseName={url.database};encrypt=true"
        )
        properties = jdbc_credentials(url)
        properties["driver"] = "com.microsoft.sqlserver.jdbc.SQLServerDriver"
        return jdbc, properties
