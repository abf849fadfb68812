"""Optional API keys, in ``x-api-key``, ``x-functions-key`` or ``?code=``, compared in
constant time.

The guard is installed only when keys are configured, so the OpenAPI document shows the security
schemes exactly when they are needed.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from typing import Annotated, Final

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, APIKeyQuery
from pydantic import SecretStr

from coursemart.config import MAX_API_KEY_LENGTH

#: Longest key looked at; longer ones are refused without comparing.
MAX_KEY_LENGTH: Final = MAX_API_KEY_LENGTH
UNAUTHORIZED_MESSAGE: Final = (
    "missing or invalid API key: send it in the x-api-key header, the x-functions-key header "
    "or the code query parameter"
)

api_key_header = APIKeyHeader(
    name="x-api-key", scheme_name="ApiKeyHeader", auto_error=False, description="An API key."
)
functions_key_header = APIKeyHeader(
    name="x-functions-key",
    scheme_name="FunctionsKeyHeader",
    auto_error=False,
    description="An API key, as Azure Functions clients send it.",
)
code_query = APIKeyQuery(
    name="code",
    scheme_name="CodeQuery",
    auto_error=False,
    description="An API key in the query string, as Azure Functions clients send it.",
)


class UnauthorizedError(Exception):
    """No valid API key came with a request that needs one."""


def key_is_valid(presented: str, keys: Sequence[SecretStr]) -> bool:
    """Is ``presented`` one of ``keys``? Every key is compared, each in constant time."""
    if not presented or len(presented) > MAX_KEY_LENGTH:
        return False
    candidate = presented.encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(candidate, key.get_secret_value().encode())
    return found


def any_key_is_valid(presented: Iterable[str | None], keys: Sequence[SecretStr]) -> bool:
    """Does any of the presented values (``None`` for absent) match a key?"""
    return any(key_is_valid(value, keys) for value in presented if value is not None)


async def require_api_key(
    request: Request,
    api_key: Annotated[str | None, Security(api_key_header)],
    functions_key: Annotated[str | None, Security(functions_key_header)],
    code: Annotated[str | None, Security(code_query)],
) -> None:
    """Refuse the request (401) unless one of its keys is a configured key."""
    keys: Sequence[SecretStr] = request.app.state.settings.api_keys
    if not any_key_is_valid((api_key, functions_key, code), keys):
        raise UnauthorizedError(UNAUTHORIZED_MESSAGE)
