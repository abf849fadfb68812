"""Optional API keys, in ``Authorization: Bearer``, ``x-api-key``, ``x-functions-key`` or
``?code=``, compared in constant time.

The guard is installed only when keys are configured, so the OpenAPI document shows the security
schemes exactly when they are needed.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from typing import Annotated, Final

from fastapi import Request, Security
from fastapi.security import (
    APIKeyHeader,
    APIKeyQuery,
    HTTPAuthorizationCredentials,
    HTTPBearer,
)
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import SecretStr
from starlette.datastructures import Headers, QueryParams

from coursemart.config import MAX_API_KEY_LENGTH

#: Longest key looked at; longer ones are refused without comparing.
MAX_KEY_LENGTH: Final = MAX_API_KEY_LENGTH
UNAUTHORIZED_MESSAGE: Final = (
    "missing or invalid API key: send it as Authorization: Bearer <key>, in the x-api-key "
    "header, the x-functions-key header or the code query parameter"
)
#: The challenges of a 401: the bearer token (RFC 6750), or a key in a header.
CHALLENGE: Final = 'Bearer realm="coursemart", ApiKey realm="coursemart"'

bearer = HTTPBearer(
    scheme_name="Bearer",
    auto_error=False,
    description="An API key as a bearer token (Authorization: Bearer <key>), as Prometheus, "
    "generated OpenAPI clients and most HTTP libraries send it.",
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


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (the scheme in any case), read
    as FastAPI's ``HTTPBearer`` reads it; ``None`` for any other header or none."""
    scheme, token = get_authorization_scheme_param(authorization)
    return token if scheme.lower() == "bearer" and token else None


def presented_keys(headers: Headers, query_string: bytes) -> tuple[str | None, ...]:
    """What a request presents as keys, in the four places (``None`` where absent)."""
    return (
        bearer_token(headers.get("authorization")),
        headers.get("x-api-key"),
        headers.get("x-functions-key"),
        QueryParams(query_string).get("code"),
    )


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
    token: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    api_key: Annotated[str | None, Security(api_key_header)],
    functions_key: Annotated[str | None, Security(functions_key_header)],
    code: Annotated[str | None, Security(code_query)],
) -> None:
    """Refuse the request (401) unless one of its keys is a configured key."""
    keys: Sequence[SecretStr] = request.app.state.settings.api_keys
    presented = (token.credentials if token else None, api_key, functions_key, code)
    if not any_key_is_valid(presented, keys):
        raise UnauthorizedError(UNAUTHORIZED_MESSAGE)
