"""Secrets kept out of everything coursemart prints or logs."""

from __future__ import annotations

import re

SECRET_QUERY_KEYS = frozenset(
    {
        "password",
        "pwd",
        "odbc_connect",
        "sas_token",
        "account_key",
        "sig",
        "signature",
        "x-amz-signature",
        "x-amz-security-token",
        "access_token",
        "client_secret",
        "code",
    }
)


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


#: ``key=value`` pairs whose value is a secret wherever they appear (connection strings, SAS
#: tokens, query strings outside a URL).
SECRET_PAIR = re.compile(
    r"(?i)\b(AccountKey|SharedAccessSignature|sig|signature|password|pwd|sas_token|"
    r"account_key|client_secret|x-amz-signature|x-amz-security-token|access_token|code)"
    r"=([^;&\s'\"]+)"
)
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def mask_text(text: str) -> str:
    """``text`` with every URL masked (:func:`mask_url`) and every secret ``key=value`` pair's
    value replaced by ``***``: for messages that may quote a lake or warehouse URL, a
    connection string or a library's error."""
    masked = URL.sub(lambda match: mask_url(match.group()), text)
    return SECRET_PAIR.sub(lambda match: f"{match.group(1)}=***", masked)
