"""Query parameters: parsing and checking them, pure, with messages that name the parameter."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, WithJsonSchema

#: ISO 8601 date, or date and time with optional seconds, fraction and offset.
INSTANT_PATTERN: Final = (
    r"^\d{4}-\d{2}-\d{2}"
    r"([Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:\d{2})?)?$"
)
_INSTANT: Final = re.compile(INSTANT_PATTERN)
#: Longest category or level name accepted in a filter (the columns hold 100 characters).
MAX_NAME_LENGTH: Final = 100


class ParameterError(ValueError):
    """A query parameter has a value the API cannot use."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


def parse_instant(value: object) -> datetime:
    """``2026-03-01``, ``2026-03-01T09:00``, ``…T09:00:00Z``, ``…+02:00`` -> aware UTC datetime.

    A date is midnight UTC; a date-time without an offset is UTC.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and _INSTANT.match(value):
        try:
            moment = (
                datetime.combine(date.fromisoformat(value), time())
                if len(value) == 10
                else datetime.fromisoformat(value.upper())
            )
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a real date or time ({exc})") from exc
    else:
        raise ValueError(
            "must be an ISO 8601 date or date-time, e.g. 2026-03-01 or 2026-03-01T09:00:00Z"
        )
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise ValueError(f"{value!r} is out of the range of dates") from exc


def _instant_schema(description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "pattern": INSTANT_PATTERN,
        "description": description,
        "examples": ["2026-03-01", "2026-03-01T09:00:00Z"],
    }


#: An instant given as ISO 8601 text; naive means UTC.
Instant = Annotated[
    datetime,
    BeforeValidator(parse_instant),
    WithJsonSchema(_instant_schema("ISO 8601 date or date-time; without an offset it is UTC.")),
]


def check_range(since: datetime | None, until: datetime | None) -> None:
    """``until`` must not come before ``since``: the listing is ``since <= start_date < until``
    (``since == until`` is an empty range, a valid question with no courses)."""
    if since is not None and until is not None and until < since:
        raise ParameterError(
            "until",
            f"must not be before since ({since.isoformat()}): the range is [since, until)",
        )


def resolve_dimension(parameter: str, value: str, known: Sequence[tuple[int, str]]) -> int:
    """A category or level given by id (``3``) or by name (``art``, any case) -> its id."""
    text = value.strip()
    for key, name in known:
        if text == str(key) or text.casefold() == name.casefold():
            return key
    choices = ", ".join(f"{key} {name}" for key, name in known) or "none: the warehouse is empty"
    raise ParameterError(parameter, f"{value!r} is neither the id nor the name of one ({choices})")


def unknown_parameter_message(name: str, accepted: Sequence[str], path: str) -> str:
    """Why ``name`` is refused on ``path``: what it may have meant, and every parameter the
    route takes (``code`` last: it is the key's, not a filter)."""
    meant = difflib.get_close_matches(name.casefold(), accepted, n=1)
    hint = f" (did you mean {meant[0]}?)" if meant else ""
    filters = [parameter for parameter in accepted if parameter != "code"]
    takes = ", ".join(filters) + " and code" if filters else "no parameter but code"
    return f"is not a parameter of {path}{hint}; it takes {takes}"
