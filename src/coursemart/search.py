"""Search words: course names and queries folded the same way, so that every database's text
index answers alike.

A name is folded to lower case without accents, its words separated by single spaces
(``"Café Crème — for Beginners"`` → ``"cafe creme for beginners"``); the loader stores the folded
name beside the name (``courses.search_name``, its short words padded: :func:`search_names`), and
a query is folded by the very same function.
A query matches a course when each of its words starts a word of the course's name, in any order.

Folding happens here, once, so that no database's tokenizer, locale or collation decides what a
letter is: Greek final sigma is folded to sigma, every word is cut to :data:`MAX_WORD_LENGTH`
(InnoDB's FULLTEXT holds no word over 84 characters), and the rest is Unicode's own lower case,
free of locale (Turkish ``I`` folds to ``i``; ``ı`` stays a letter of its own).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from coursemart.warehouse.dialects import Dialect

#: Words of a query that count (the rest are ignored), and the longest word.
MAX_WORDS: Final = 8
MAX_WORD_LENGTH: Final = 40
#: The folding's version: a warehouse whose names were folded by an earlier one is folded again
#: once (warehouse/search_index.py).
FOLDING: Final = 2


def fold(names: Any) -> Any:
    """Course names (an Arrow string array) folded for search: NFKD, accents removed, lower
    case with final sigma as sigma, every run of characters other than letters and digits one
    space, each word cut to :data:`MAX_WORD_LENGTH`, trimmed."""
    folded = pc.utf8_normalize(names, "NFKD")
    folded = pc.replace_substring_regex(folded, r"\p{Mn}+", "")
    folded = pc.utf8_lower(folded)
    folded = pc.replace_substring(folded, "ς", "σ")
    folded = pc.replace_substring_regex(folded, r"[^\p{L}\p{N}]+", " ")
    folded = pc.replace_substring_regex(folded, rf"(\S{{{MAX_WORD_LENGTH}}})\S+", r"\1")
    return pc.utf8_trim_whitespace(folded)


def search_names(names: Any) -> Any:
    """Course names (an Arrow string array) as ``courses.search_name`` stores them: folded, and
    each word of one or two characters padded to three with ``_`` (``"go for c"`` →
    ``"go_ for c__"``). InnoDB's FULLTEXT indexes no shorter word, so that a search for ``go`` or
    ``c`` would read the whole table; the other databases' tokenizers take ``_`` for a space,
    and a query, folded without padding, has no ``_``: every answer stays the same."""
    folded = fold(names)
    if isinstance(folded, pa.ChunkedArray):
        return pa.chunked_array([_padded(chunk) for chunk in folded.chunks], pa.string())
    return _padded(folded)


def _padded(folded: pa.Array) -> pa.Array:
    """Folded names (one array) with their words of one or two characters padded with ``_``."""
    words = pc.split_pattern(folded, " ")
    padded = pc.utf8_rpad(words.flatten(), width=3, padding="_")
    joined = pc.binary_join(pa.ListArray.from_arrays(words.offsets, padded), " ")
    empty = pc.equal(folded, "")  # no word at all: nothing to pad
    return pc.if_else(empty, folded, joined) if pc.any(empty).as_py() else joined


@functools.lru_cache(maxsize=4096)
def query_words(query: str) -> tuple[str, ...]:
    """The words a query searches for, folded as names are (at most :data:`MAX_WORDS`, each cut
    to :data:`MAX_WORD_LENGTH`); empty when it holds no letter or digit. Remembered: folding
    compiles its patterns each time, and the same queries come back."""
    folded = fold(pa.array([query], pa.string()))[0].as_py() or ""
    words = tuple(dict.fromkeys(word[:MAX_WORD_LENGTH] for word in folded.split()))
    return words[:MAX_WORDS]


#: Bind parameters of a search: the index's expression and one LIKE pattern per word.
PARAMETERS: Final = ("search", *(f"word_{i}" for i in range(MAX_WORDS)))


def values(words: tuple[str, ...], dialect: Dialect) -> dict[str, str]:
    """The bind parameters that search ``words``: a ``LIKE`` pattern per word, and the text
    index's query where the database has one."""
    found = {f"word_{i}": f"% {word}%" for i, word in enumerate(words)}
    text = dialect.search_text(words)
    if text is not None:
        found["search"] = text
    return found


def word_conditions(search_name: Any, words: int) -> list[Any]:
    """``search_name`` (a folded name) has a word starting with each of ``:word_0`` … (patterns
    ``% word%``): a scan's test, and the exact test behind a FULLTEXT index."""
    import sqlalchemy as sa

    spaced = sa.literal(" ") + search_name
    return [spaced.like(sa.bindparam(f"word_{i}", type_=sa.String())) for i in range(words)]


def matching_ids(words: tuple[str, ...], dialect: Dialect) -> Any:
    """``SELECT course_id`` of the courses matching ``words``, with its values bound: through
    the database's text index where it can answer, else by testing every folded name."""
    import sqlalchemy as sa

    bound = values(words, dialect)
    if dialect.indexed:
        return dialect.matching(len(words)).params(**bound)
    courses = sa.table("courses", sa.column("course_id"), sa.column("search_name"))
    conditions = word_conditions(courses.c.search_name, len(words))
    return sa.select(courses.c.course_id).where(*conditions).params(**bound)
