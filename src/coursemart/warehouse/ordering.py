"""Batch ids compared by code point on every database, as the lake (and Python) compares them.

"The greatest batch id wins" has to mean one order everywhere. A column's collation would give
another: MariaDB's ``utf8mb4_general_ci`` and a PostgreSQL database made with an ICU or
``en_US`` locale (the official image's default) put ``b-1`` before ``B-2``, and ICU puts ``x_1``
before ``x-1``: the reverse of the lake's order, so an older row would win. Every comparison of
batch ids goes through :func:`code_point_order` (a backend's own SQL) or :class:`by_code_point`
(SQLAlchemy expressions). Batch ids are ASCII (``lake.contents.batch_id_problem``), so a
binary comparison is the code-point order.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from coursemart.warehouse.dialects import dialect_for


def code_point_order(dialect: str, expression: str) -> str:
    """``expression`` (SQL text) as the database SQLAlchemy calls ``dialect`` compares it by
    code point (its dialect's ``code_point_format``; SQLite compares text so already)."""
    return dialect_for(dialect).code_point_order(expression)


class by_code_point(FunctionElement[str]):  # noqa: N801 - reads as a SQL function
    """A string expression compared by code point on every database."""

    type = sa.String()
    inherit_cache = True


@compiles(by_code_point)
def _by_code_point(element: by_code_point, compiler: Any, **kw: Any) -> str:
    return code_point_order(compiler.dialect.name, f"({compiler.process(element.clauses, **kw)})")
