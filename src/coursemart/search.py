"""Search words: course names and queries folded the same way, so that every database's text
index answers alike.

A name is folded to lower case without accents, its words separated by single spaces
(``"Café Crème — for Beginners"`` → ``"cafe creme for beginners"``); the loader stores the folded
name beside the name (``courses.search_name``), and a query is folded by the very same function.
A query matches a course when each of its words starts a word of the course's name, in any order.
"""

from __future__ import annotations

from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

#: Words of a query that count (the rest are ignored), and the longest word.
MAX_WORDS: Final = 8
MAX_WORD_LENGTH: Final = 40


def fold(names: Any) -> Any:
    """Course names (an Arrow string array) folded for search: NFKD, accents removed, lower
    case, every run of characters other than letters and digits one space, trimmed."""
    folded = pc.utf8_normalize(names, "NFKD")
    folded = pc.replace_substring_regex(folded, r"\p{Mn}+", "")
    folded = pc.utf8_lower(folded)
    folded = pc.replace_substring_regex(folded, r"[^\p{L}\p{N}]+", " ")
    return pc.utf8_trim_whitespace(folded)


def query_words(query: str) -> list[str]:
    """The words a query searches for, folded as names are (at most :data:`MAX_WORDS`, each cut
    to :data:`MAX_WORD_LENGTH`); empty when it holds no letter or digit."""
    folded = fold(pa.array([query], pa.string()))[0].as_py() or ""
    words = list(dict.fromkeys(word[:MAX_WORD_LENGTH] for word in folded.split()))
    return words[:MAX_WORDS]


def matching_ids(words: list[str], dialect: str) -> Any:
    """``SELECT course_id FROM courses`` where each of ``words`` (folded, non-empty) starts a
    word of the name, through the database's own text index."""
    import sqlalchemy as sa

    if dialect == "sqlite":
        expression = " AND ".join(f'"{word}"*' for word in words)
        return (
            sa.select(sa.column("rowid"))
            .select_from(sa.table("courses_search"))
            .where(sa.text("courses_search MATCH :expression").bindparams(expression=expression))
        )
    courses = sa.table("courses", sa.column("course_id"), sa.column("search_name"))
    if dialect == "postgresql":
        terms = " & ".join(f"{word}:*" for word in words)
        condition: Any = sa.text(
            "to_tsvector('simple', search_name) @@ to_tsquery('simple', :terms)"
        ).bindparams(terms=terms)
        return sa.select(courses.c.course_id).where(condition)
    conditions = [_starts_a_word(courses.c.search_name, word) for word in words]
    indexed = [word for word in words if len(word) >= FULLTEXT_MIN_LENGTH]
    if dialect in ("mysql", "mariadb") and indexed:
        expression = " ".join(f"+{word}*" for word in indexed)
        match = sa.text("MATCH (search_name) AGAINST (:expression IN BOOLEAN MODE)").bindparams(
            expression=expression
        )
        conditions.insert(0, match)
    return sa.select(courses.c.course_id).where(*conditions)


#: InnoDB's FULLTEXT indexes words of at least this many characters (innodb_ft_min_token_size):
#: a shorter query word is matched by LIKE alone.
FULLTEXT_MIN_LENGTH: Final = 3


def _starts_a_word(column: Any, word: str) -> Any:
    """``column`` (a folded name) has a word starting with ``word``."""
    import sqlalchemy as sa

    spaced = sa.literal(" ") + column
    return spaced.like(f"% {word}%")
