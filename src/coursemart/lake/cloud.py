"""Credentials for delta-rs's object store, from the settings fsspec already uses."""

from __future__ import annotations

import os
from typing import Any


def _connection_string_parts(text: str) -> dict[str, str]:
    parts = (item.split("=", 1) for item in text.split(";") if "=" in item)
    return {key.strip(): value.strip() for key, value in parts}


def delta_storage_options(url: str, fs: Any) -> dict[str, str]:
    """Options for delta-rs on the lake at ``url``: an Azure connection string (Azurite's
    included) or account name and key become object_store's keys; S3 and the rest read their
    usual environment variables themselves."""
    scheme = url.split("://", 1)[0].lower()
    options: dict[str, str] = {}
    if scheme in ("abfs", "abfss", "az", "adl"):
        text = os.environ.get("AZURE_STORAGE_CONNECTION_STRING") or getattr(
            fs, "connection_string", None
        )
        if text:
            parts = _connection_string_parts(text)
            if "AccountName" in parts:
                options["account_name"] = parts["AccountName"]
            if "AccountKey" in parts:
                options["account_key"] = parts["AccountKey"]
            if "SharedAccessSignature" in parts:
                options["sas_token"] = parts["SharedAccessSignature"]
            endpoint = parts.get("BlobEndpoint")
            if endpoint:
                options["azure_storage_endpoint"] = endpoint.rstrip("/")
                if endpoint.startswith("http://"):
                    options["allow_http"] = "true"
        account = getattr(fs, "account_name", None)
        if account and "account_name" not in options:
            options["account_name"] = str(account)
        key = getattr(fs, "account_key", None)
        if key and "account_key" not in options:
            options["account_key"] = str(key)
    return options
