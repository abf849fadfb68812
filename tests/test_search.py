"""Search in the warehouse: each database's own text index finds a course when each word of the
query starts a word of its name (any order, any case, with or without accents), the same on
SQLite, PostgreSQL and MariaDB, kept up to date by every load."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from coursemart import model, warehouse
from coursemart.generate import generate
from coursemart.load import load
from coursemart.search import fold, matching_ids, query_words, search_names
from coursemart.warehouse.dialects import dialect_for
from coursemart.warehouse.dialects.postgres import listing_index_covers
from coursemart.warehouse.schema import LISTING_INDEX
from tests.conftest import WINDOW, empty_warehouse, execute, new_warehouse
from tests.test_load import query, write_raw_batch

NAMES = {
    101: "Café Crème Brûlée for Beginners",
    102: "CAFE CREME: Advanced Pastry",
    103: "C++ & Node.js for Data Science",
    104: "Introduction to Python 3",
    105: "Python-Powered Data Pipelines",
    106: "Watercolor Landscapes for Beginners",
    107: "Ærø Sailing Basics",
    108: "Straße und Stadt",
}


def named_courses(names: dict[int, str]) -> pa.Table:
    ids = list(names)
    return pa.table(
        {
            "course_id": pa.array(ids, pa.int64()),
            "course_name": pa.array(list(names.values())),
            "category_id": pa.array([1] * len(ids), pa.int32()),
            "level_id": pa.array([101] * len(ids), pa.int32()),
            "start_date": pa.array(
                [datetime(2026, 3, 1, 9, tzinfo=UTC)] * len(ids), model.TIMESTAMP
            ),
        }
    )


def expected(names: dict[int, str], query: str) -> set[int]:
    """The reference: each query word starts a word of the folded name."""
    words = query_words(query)
    folded = dict(zip(names, fold(pa.array(list(names.values()))).to_pylist(), strict=True))
    return {
        ident
        for ident, name in folded.items()
        if words and all(any(w.startswith(q) for w in name.split()) for q in words)
    }


def search(url: str, query: str) -> set[int]:
    engine = warehouse.create_engine(url)
    try:
        with engine.connect() as connection:
            statement = matching_ids(query_words(query), dialect_for(connection.dialect.name))
            return {int(row[0]) for row in connection.execute(statement)}
    finally:
        engine.dispose()


QUERIES = [
    ("cafe", {101, 102}),
    ("Café", {101, 102}),
    ("CRÈME cafe", {101, 102}),
    ("brul", {101}),
    ("for beginners", {101, 106}),
    ("beginners for", {101, 106}),
    ("c node", {103}),
    ("js", {103}),
    ("python", {104, 105}),
    ("pyth 3", {104}),
    ("powered", {105}),
    ("data", {103, 105}),
    ("stra", {108}),
    ("aer", set()),  # Æ is a letter of its own, not A and E
    ("nothing like it", set()),
    ("ream", set()),  # inside a word, not at its start
]


@pytest.mark.parametrize(("query", "ids"), QUERIES)
def test_each_word_starts_a_word_of_the_name_on_every_database(
    lake_dir: Path, warehouse_url: str, query: str, ids: set[int]
) -> None:
    generate(str(lake_dir), courses=1, seed=1, window=WINDOW)  # the dimensions
    write_raw_batch(lake_dir, named_courses(NAMES))
    load(str(lake_dir), warehouse_url)

    assert search(warehouse_url, query) == ids == expected(NAMES, query)


#: Names each database's own tokenizer used to read its own way (Greek final sigma, digits
#: without a decomposition, letters that older Unicode tables call marks, words longer than a
#: FULLTEXT token, Turkish dotless i): folded once, before any database tokenizes, they answer
#: alike everywhere.
UNUSUAL_NAMES = {
    201: "ΟΔΟΣ ΙΣΤΟΡΙΑΣ",
    202: "Οδός της ιστορίας",
    203: "Курс ٣ للمبتدئين",
    204: "Python ३ अभ्यास",
    205: "ᦀᦰᦂᦱ ᦑᦲ",
    206: "a" * 90 + " marathon",
    207: "Sabah ılık su",
    208: "Kemik ilik",
    209: "Route 66 ①②",
    210: "Straße bauen",
    211: "Go for C programmers",
    212: "R in 3 days",
    213: "C#, F# and .NET",
}

UNUSUAL_QUERIES = [
    ("οδος", {201, 202}),
    ("ΟΔΌΣ", {201, 202}),
    ("ιστορ", {201, 202}),
    ("ιστοριας", {201, 202}),
    ("٣", {203}),
    ("курс ٣", {203}),
    ("३", {204}),
    ("python ३", {204}),
    ("ᦀᦰᦂ", {205}),
    ("ᦀᦰᦂᦱ ᦑ", {205}),
    ("a" * 50, {206}),
    ("a" * 90, {206}),
    ("aaa marathon", {206}),
    ("ılık", {207}),
    ("ı", {207}),
    ("ilik", {208}),
    ("il", {208}),
    ("66", {209}),
    ("1", {209}),
    ("12", {209}),
    ("straße", {210}),
    ("strase", set()),
    ("STRASSE", set()),
    ("go", {211}),
    ("g", {211}),
    ("c", {211, 213}),
    ("r", {209, 212}),
    ("r 3", {212}),
    ("c go", {211}),
    ("f", {211, 213}),
]


@pytest.mark.parametrize(("query", "ids"), UNUSUAL_QUERIES)
def test_unusual_letters_and_digits_answer_alike_on_every_database(
    lake_dir: Path, warehouse_url: str, query: str, ids: set[int]
) -> None:
    generate(str(lake_dir), courses=1, seed=1, window=WINDOW)  # the dimensions
    write_raw_batch(lake_dir, named_courses(UNUSUAL_NAMES))
    load(str(lake_dir), warehouse_url)

    assert search(warehouse_url, query) == ids == expected(UNUSUAL_NAMES, query)


@pytest.fixture
def mariadb_url(tmp_path: Path) -> Iterator[str]:
    yield from new_warehouse("mariadb", tmp_path)


@pytest.mark.parametrize("query", ["c", "go", "r 3", "py", "c go"])
def test_mariadb_reads_short_words_from_its_fulltext_index_not_the_table(
    tmp_path: Path, mariadb_url: str, query: str
) -> None:
    url = mariadb_url
    generate(str(tmp_path / "lake"), courses=200, seed=1, window=WINDOW)
    load(str(tmp_path / "lake"), url)
    statement = matching_ids(query_words(query), dialect_for("mariadb"))
    engine = warehouse.create_engine(url)
    try:
        with engine.connect() as connection:
            compiled = statement.compile(connection)
            explain = f"EXPLAIN {compiled}"
            plan = connection.exec_driver_sql(explain, compiled.params).mappings().all()
    finally:
        engine.dispose()

    assert [row["type"] for row in plan] == ["fulltext"]


#: How Datasette finds a table's FTS index (``datasette.utils.detect_fts_sql``, 0.65): the
#: content table's name double-quoted or bracketed in the virtual table's SQL.
DATASETTE_DETECT_FTS = """
    select name from sqlite_master
    where rootpage = 0
      and (sql like :double_quoted or sql like :bracketed
           or (tbl_name = :table and sql like '%VIRTUAL TABLE%USING FTS%'))
"""


def test_datasette_finds_the_sqlite_text_index_of_the_courses(sqlite_url: str) -> None:
    empty_warehouse(sqlite_url)
    parameters = {
        "double_quoted": '%VIRTUAL TABLE%USING FTS%content="courses"%',
        "bracketed": "%VIRTUAL TABLE%USING FTS%content=[courses]%",
        "table": "courses",
    }
    with contextlib.closing(sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))) as database:
        found = database.execute(DATASETTE_DETECT_FTS, parameters).fetchall()

    assert found == [("courses_search",)]


def test_names_folded_by_an_earlier_folding_are_folded_again_once(
    lake_dir: Path, warehouse_url: str
) -> None:
    generate(str(lake_dir), courses=1, seed=1, window=WINDOW)
    write_raw_batch(lake_dir, named_courses(UNUSUAL_NAMES))
    load(str(lake_dir), warehouse_url)
    # A warehouse of the earlier folding: final sigma kept, long words whole, no record, and on
    # MariaDB the default collation (which takes ı for i and ß for s).
    if not warehouse_url.startswith(("sqlite", "postgresql")):
        execute(
            warehouse_url,
            "ALTER TABLE courses MODIFY search_name TEXT CHARACTER SET utf8mb4 "
            "COLLATE utf8mb4_general_ci NOT NULL",
        )
    for ident, name in UNUSUAL_NAMES.items():
        earlier = name.lower()  # Python's lower case: final sigma kept
        execute(
            warehouse_url,
            f"UPDATE courses SET search_name = '{earlier}' WHERE course_id = {ident}",
        )
    execute(warehouse_url, "DELETE FROM coursemart_search")

    engine = warehouse.create_engine(warehouse_url)
    try:
        with engine.begin() as connection:
            changed = warehouse.ensure_schema(connection)
            again = warehouse.ensure_schema(connection)
    finally:
        engine.dispose()

    differ = sum(
        1
        for ident, name in UNUSUAL_NAMES.items()
        if search_names(pa.array([name]))[0].as_py() != name.lower()
    )
    assert f"courses.search_name (folded again: folding 2, {differ} rows)" in changed
    assert again == []
    stored = dict(query(warehouse_url, "SELECT course_id, search_name FROM courses"))
    assert stored[201] == "οδοσ ιστοριασ"
    assert stored[206] == "a" * 40 + " marathon"
    for query_text, ids in UNUSUAL_QUERIES:
        assert search(warehouse_url, query_text) == ids, query_text


def test_a_generated_catalog_answers_alike_on_every_database(
    lake_dir: Path, warehouse_url: str
) -> None:
    generate(str(lake_dir), courses=3_000, seed=4, window=WINDOW)
    load(str(lake_dir), warehouse_url)
    rows = query(warehouse_url, "SELECT course_id, course_name FROM courses")
    names = {int(str(ident)): str(name) for ident, name in rows}

    for asked in ("machine learning", "intro", "watercolor begin", "advanced", "yoga", "to"):
        assert search(warehouse_url, asked) == expected(names, asked), asked


def test_the_index_follows_renames_and_reschedules(lake_dir: Path, warehouse_url: str) -> None:
    generate(str(lake_dir), courses=1, seed=1, window=WINDOW)
    write_raw_batch(lake_dir, named_courses({201: "Pottery Wheel Basics"}))
    load(str(lake_dir), warehouse_url)
    write_raw_batch(lake_dir, named_courses({201: "Glass Blowing Basics"}))

    load(str(lake_dir), warehouse_url)

    assert search(warehouse_url, "glass") == {201}
    assert search(warehouse_url, "pottery") == set()
    assert search(warehouse_url, "basics") == {201}


def test_a_load_leaves_postgresql_the_statistics_its_searches_are_planned_by(
    lake_dir: Path, postgres_url: str
) -> None:
    generate(str(lake_dir), courses=2_000, seed=1, window=WINDOW)

    load(str(lake_dir), postgres_url)

    analysed = query(
        postgres_url,
        "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() "
        "AND tablename = 'courses'",
    )
    assert analysed[0][0] > 0


def test_postgresql_listing_index_holds_what_a_search_tests(postgres_url: str) -> None:
    empty_warehouse(postgres_url)

    included = query(
        postgres_url,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY (i.indkey) WHERE i.indexrelid = to_regclass("
        "'ix_courses_start_date_course_id') ORDER BY array_position(i.indkey::int2[], a.attnum)",
    )
    assert [name for (name,) in included] == [
        "start_date",
        "course_id",
        "search_name",
        "category_id",
        "level_id",
    ]


def test_a_postgresql_warehouse_made_before_gets_the_covering_listing_index(
    lake_dir: Path, postgres_url: str
) -> None:
    generate(str(lake_dir), courses=500, seed=1, window=WINDOW)
    load(str(lake_dir), postgres_url)
    execute(postgres_url, "DROP INDEX ix_courses_start_date_course_id")
    execute(
        postgres_url,
        "CREATE INDEX ix_courses_start_date_course_id ON courses (start_date DESC, course_id DESC)",
    )
    engine = warehouse.create_engine(postgres_url)
    try:
        with engine.begin() as connection:
            assert not listing_index_covers(connection, LISTING_INDEX)
            added = warehouse.ensure_schema(connection)
            assert listing_index_covers(connection, LISTING_INDEX)
            again = warehouse.ensure_schema(connection)
    finally:
        engine.dispose()

    assert added == ["ix_courses_start_date_course_id (with search_name, category_id, level_id)"]
    assert again == []
    assert search(postgres_url, "python") == {
        course_id
        for course_id, name in query(postgres_url, "SELECT course_id, search_name FROM courses")
        if any(word.startswith("python") for word in name.split())
    }
