"""MariaDB and MySQL: naive UTC instants, byte-wise names (a binary collation), and an InnoDB
FULLTEXT index for search."""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from coursemart import model
from coursemart.errors import InputError
from coursemart.search import word_conditions
from coursemart.warehouse.dialects.base import Dialect, jdbc_credentials

#: The text index: InnoDB FULLTEXT over the folded names (made without stopwords, so that "for"
#: and "with" count). The stored folded name pads words of one or two characters to three
#: (``search.search_names``): InnoDB indexes no shorter word.
TEXT_INDEX: Final = "ix_courses_search"
#: The dimension tables' names, unique in each.
DIMENSION_NAMES: Final = (("categories", "category_name"), ("levels", "level_name"))


class MySQL(Dialect):
    names = ("mysql", "mariadb")
    driver_extra = "mysql"
    connect_timeout_argument = "connect_timeout"
    code_point_format = "BINARY {}"
    courses_estimate = (
        "SELECT COALESCE(MAX(TABLE_ROWS), 0) FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'courses'"
    )
    text_default = ""  # TEXT columns take no DEFAULT
    text_index = TEXT_INDEX

    def check_url(self, url: URL, shown: str) -> None:
        charset = url.query.get("charset")
        if url.get_driver_name() == "pymysql" and isinstance(charset, str):
            from pymysql.charset import charset_by_name

            if charset_by_name(charset) is None:
                raise InputError(
                    f"warehouse URL {shown!r}: MariaDB and MySQL know no character set "
                    f"{charset!r}: name one they know, such as utf8mb4, or leave charset out"
                )

    def engine(self, url: URL, *, read_only: bool, lock_timeout: float, **kwargs: Any) -> Engine:
        """Sessions in UTC; writers through PyMySQL offer ``LOAD DATA LOCAL INFILE``."""
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("init_command", "SET time_zone = '+00:00'")
        if bulk_loads(url, read_only):
            connect_args.setdefault("local_infile", True)
        return super().engine(
            url, read_only=read_only, lock_timeout=lock_timeout, connect_args=connect_args, **kwargs
        )

    def reader(self, engine: Engine) -> Engine:
        sa.event.listen(engine, "connect", _reader_session)
        return engine

    def begin_read(self, connection: Connection) -> None:
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")

    def exact_names(self, connection: Connection, existing: set[str]) -> list[str]:
        """Compare dimension names byte by byte, as SQLite and PostgreSQL do.

        The default collation holds ``ART`` and ``Art``, ``Straße`` and ``Strase``, ``Health ``
        and ``Health`` for one name: the unique name would make the merge rename the other row
        and skip the new one, whose courses would then vanish from the view. A binary collation
        without padding makes names distinct exactly where they differ. Tables just made get it
        at once; those of an ``existing`` warehouse change once (two small tables), and are
        returned.
        """
        found = connection.exec_driver_sql(  # one round trip: each load runs it
            "SELECT TABLE_NAME, COLLATION_NAME, VERSION() FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND COLUMN_NAME IN ('category_name', 'level_name')"
        ).all()
        current = {str(table): name for table, name, _ in found}
        collation = binary_collation(str(found[0][2]))
        changed = []
        for table, column in DIMENSION_NAMES:
            if current.get(table) != collation:
                connection.exec_driver_sql(
                    f"ALTER TABLE {table} MODIFY {column} "
                    f"VARCHAR({model.MAX_DIMENSION_NAME_LENGTH}) "
                    f"CHARACTER SET utf8mb4 COLLATE {collation} NOT NULL"
                )
                if table in existing:
                    changed.append(f"{table}.{column} ({collation})")
        return changed

    def prepare_search_column(self, connection: Connection) -> list[str]:
        """Compare the folded names byte by byte: the default collation takes ``ı`` for ``i``
        and ``ß`` for ``s``, unlike the folding and the other databases."""
        version = str(connection.exec_driver_sql("SELECT VERSION()").scalar())
        collation = binary_collation(version)
        kind = sa.UnicodeText().compile(dialect=connection.dialect)
        # The change rebuilds the table's FULLTEXT index, with the session's stopwords.
        connection.exec_driver_sql("SET SESSION innodb_ft_enable_stopword = OFF")
        connection.exec_driver_sql(
            f"ALTER TABLE courses MODIFY search_name {kind} "
            f"CHARACTER SET utf8mb4 COLLATE {collation} NOT NULL"
        )
        return [f"courses.search_name ({collation})"]

    def create_text_index(self, connection: Connection, *, rebuild: bool) -> None:
        connection.exec_driver_sql("SET SESSION innodb_ft_enable_stopword = OFF")
        connection.exec_driver_sql(
            f"ALTER TABLE courses ADD FULLTEXT INDEX {TEXT_INDEX} (search_name)"
        )

    def search_text(self, words: tuple[str, ...]) -> str:
        return " ".join(f"+{word}*" for word in words)

    def matching(self, words: int) -> Any:
        courses = sa.table("courses", sa.column("course_id"), sa.column("search_name"))
        match = sa.text("MATCH (search_name) AGAINST (:search IN BOOLEAN MODE)")
        return sa.select(courses.c.course_id).where(
            match, *word_conditions(courses.c.search_name, words)
        )

    def jdbc_target(self, url: URL) -> tuple[str, dict[str, str]]:
        # jdbc:mysql: gets Spark's MySQL dialect (backticks); permitMysqlScheme lets MariaDB's
        # driver accept that scheme
        host = url.host or "127.0.0.1"
        jdbc = f"jdbc:mysql://{host}:{url.port or 3306}/{url.database}?permitMysqlScheme"
        properties = jdbc_credentials(url)
        properties["driver"] = "org.mariadb.jdbc.Driver"
        properties["rewriteBatchedStatements"] = "true"
        properties["sessionVariables"] = "time_zone='+00:00'"
        return jdbc, properties


def binary_collation(version: str) -> str:
    """The utf8mb4 collation that compares bytes and keeps trailing spaces, for a server whose
    ``VERSION()`` is ``version``."""
    if "mariadb" in version.lower():
        return "utf8mb4_nopad_bin"
    return "utf8mb4_0900_bin" if int(version.split(".")[0]) >= 8 else "utf8mb4_bin"


def bulk_loads(url: URL, read_only: bool) -> bool:
    """Whether an engine offers ``LOAD DATA LOCAL INFILE`` (the loader's bulk path).

    Only writers using PyMySQL, and not when the URL itself says ``local_infile=0``; readers
    never, since a server may ask a client with it for any file the client can read.
    """
    return not read_only and url.get_driver_name() == "pymysql" and "local_infile" not in url.query


def _reader_session(dbapi_connection: Any, _: object) -> None:
    """A new reading connection: every transaction read-only."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET SESSION TRANSACTION READ ONLY")
