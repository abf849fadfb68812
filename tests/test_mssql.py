"""SQL Server / Azure SQL statements. No SQL Server runs in CI: these check the generated SQL."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mssql as mssql_dialect

from coursemart import warehouse
from coursemart.load.backends import mssql


def test_tables_compile_for_sql_server() -> None:
    dialect = mssql_dialect.dialect()
    ddl = str(sa.schema.CreateTable(warehouse.courses).compile(dialect=dialect))

    assert "course_id BIGINT NOT NULL" in ddl
    assert "start_date DATETIMEOFFSET NOT NULL" in ddl
    assert "FOREIGN KEY(category_id) REFERENCES categories (category_id)" in ddl
    index = str(
        sa.schema.CreateIndex(next(iter(warehouse.courses.indexes))).compile(dialect=dialect)
    )
    assert (
        index == "CREATE INDEX ix_courses_start_date_course_id "
        "ON courses (start_date DESC, course_id DESC)"
    )


def test_the_view_has_no_order_by_for_sql_server() -> None:
    ddl = warehouse.view_ddl(mssql_dialect.dialect())

    assert ddl.startswith("CREATE VIEW vw_most_recent_courses AS SELECT courses.course_id")
    assert "JOIN categories ON courses.category_id = categories.category_id" in ddl
    assert "ORDER BY" not in ddl


def test_staging_table_mirrors_courses_without_keys() -> None:
    ddl = mssql.staging_ddl()

    assert ddl.startswith("CREATE TABLE #coursemart_stage (")
    assert "start_date DATETIMEOFFSET NOT NULL" in ddl
    assert "PRIMARY KEY" not in ddl and "FOREIGN KEY" not in ddl


def test_merge_inserts_new_rows_and_takes_a_course_only_from_a_greater_batch() -> None:
    sql = mssql.merge_sql(warehouse.courses, "#coursemart_stage AS s")

    assert sql == (
        "MERGE INTO courses WITH (HOLDLOCK) AS t USING #coursemart_stage AS s "
        "ON t.course_id = s.course_id "
        "WHEN MATCHED AND (s.batch_id COLLATE Latin1_General_100_BIN2 > "
        "t.batch_id COLLATE Latin1_General_100_BIN2) "
        "THEN UPDATE SET t.course_name = s.course_name, t.category_id = s.category_id, "
        "t.level_id = s.level_id, t.start_date = s.start_date, t.search_name = s.search_name, "
        "t.batch_id = s.batch_id "
        "WHEN NOT MATCHED BY TARGET THEN "
        "INSERT (course_id, course_name, category_id, level_id, start_date, search_name, batch_id) "
        "VALUES (s.course_id, s.course_name, s.category_id, s.level_id, s.start_date, "
        "s.search_name, s.batch_id);"
    )


def test_a_dimension_merge_updates_only_changed_rows() -> None:
    sql = mssql.merge_sql(warehouse.levels, "(VALUES (:a, :b)) AS s (level_id, level_name)")

    assert "WHEN MATCHED AND (EXISTS (SELECT s.level_name EXCEPT SELECT t.level_name))" in sql


def test_dimension_merge_quotes_reserved_names() -> None:
    table = sa.Table(
        "levels",
        sa.MetaData(),
        sa.Column("key", sa.Integer, primary_key=True),
        sa.Column("name", sa.String),
    )

    sql = mssql.merge_sql(table, "(VALUES (:key_0, :name_0)) AS s ([key], name)")

    assert "ON t.[key] = s.[key]" in sql


def test_the_load_lock_is_a_session_applock() -> None:
    sql = mssql.applock_sql(2.5)

    assert "sp_getapplock @Resource = N'coursemart-load'" in sql
    assert "@LockOwner = 'Session'" in sql and "@LockTimeout = 2500" in sql


def test_sql_server_urls_get_the_pyodbc_driver() -> None:
    url = warehouse.normalize_url("mssql://app:secret@server.database.windows.net/coursemart")

    assert url.drivername == "mssql+pyodbc"
