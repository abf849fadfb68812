"""Secrets kept out of everything coursemart prints or logs."""

from __future__ import annotations

SECRET_QUERY_KEYS = frozenset({"password", "pwd", "odbc_connect", "sas_token", "account_key"})


def mask_url(url: str) -> str:
    """A URL safe to print: the password (and secret query values) replaced by ``***``.

    ``scheme://user:secret@host/db`` -> ``scheme://user:***@host/db``; a password may itself hold
    ``/`` or ``@``, so the URL is parsed from the right. Text that is not a URL is returned as is.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority_end = rest.rfind("@")
    if authority_end != -1:
        userinfo, rest = rest[:authority_end], rest[authority_end:]
        user, colon, _password = userinfo.partition(":")
        rest = (f"{user}:***" if colon else user) + rest
    path, question, query = rest.partition("?")
    if question:
        pairs = []
        for pair in query.split("&"):
            key, equals, _value = pair.partition("=")
            secret = key.lower() in SECRET_QUERY_KEYS
            pairs.append(f"{key}=***" if equals and secret else pair)
        rest = f"{path}?{'&'.join(pairs)}"
    return f"{scheme}://{rest}"
