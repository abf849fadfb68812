"""Secrets kept out of everything coursemart prints or logs, and control characters too (a
logged path or a quoted value must not forge a line or recolour a terminal)."""

from __future__ import annotations

import re
from urllib.parse import unquote

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


#: A query parameter or ``key=value`` pair whose name holds one of these words is a secret too
#: (``secret``, ``key``, ``sslpassword``, ``client_secret``, ``sas_token``, ``api_key``, …).
SECRET_WORDS = ("secret", "key", "password", "token", "credential", "sig", "sas")


def is_secret_name(name: str) -> bool:
    """Whether a parameter called ``name`` holds a secret."""
    lowered = name.lower()
    return lowered in SECRET_QUERY_KEYS or any(word in lowered for word in SECRET_WORDS)


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
            secret = is_secret_name(key)
            pairs.append(f"{key}=***" if equals and secret else pair)
        rest = f"{path}?{'&'.join(pairs)}"
    return f"{scheme}://{rest}"


#: ``key=value`` pairs whose value is a secret wherever they appear (connection strings, SAS
#: tokens, query strings outside a URL).
SECRET_PAIR = re.compile(
    r"(?i)\b(SharedAccessSignature|pwd|code|[\w-]*(?:secret|key|password|token|credential|sig|sas)"
    r"[\w-]*)=([^;&\s'\"]+)"
)
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def mask_text(text: str) -> str:
    """``text`` with every URL masked (:func:`mask_url`) and every secret ``key=value`` pair's
    value replaced by ``***``: for messages that may quote a lake or warehouse URL, a
    connection string or a library's error."""
    masked = URL.sub(lambda match: mask_url(match.group()), text)
    return SECRET_PAIR.sub(lambda match: f"{match.group(1)}=***", masked)


#: Characters that must not reach a log line or a terminal as they are: C0 and C1 controls
#: (line breaks, escape sequences) and DEL.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """``text`` with each control character written as ``\\xNN``."""
    return CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def mask_values(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every occurrence of a ``secrets`` value replaced by ``***``, also where it
    was percent-encoded (then the whole text is shown decoded)."""
    decoded = unquote(text)
    found = [secret for secret in secrets if secret and (secret in text or secret in decoded)]
    if not found:
        return text
    shown = text if all(secret in text for secret in found) else decoded
    for secret in sorted(found, key=len, reverse=True):
        shown = shown.replace(secret, "***")
    return shown
