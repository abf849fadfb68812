"""Credentials for delta-rs's object store, from the ones fsspec already holds.

The lake's files go through fsspec (adlfs for ``abfs://``/``az://``, s3fs for ``s3://``) and its
commits through delta-rs, whose object store (Rust's ``object_store`` crate) takes its own
configuration keys. For Azure, adlfs reads an account's credentials from its arguments or from
``AZURE_STORAGE_CONNECTION_STRING``, ``AZURE_STORAGE_ACCOUNT_NAME``/``_KEY`` and
``AZURE_STORAGE_SAS_TOKEN``; object_store reads no connection string, so this module turns what
adlfs holds into object_store's keys (``account_name``, ``account_key``, ``sas_token``,
``azure_storage_endpoint``, ``allow_http``, ``use_emulator``, ``msi_endpoint``). Service
principals (``AZURE_STORAGE_CLIENT_ID``/``_SECRET``/``TENANT_ID``) and S3's ``AWS_*`` variables
are read by both libraries themselves. With no key at all, both sign in with the host's managed
identity: adlfs finds App Service's and Container Apps' token endpoint (``IDENTITY_ENDPOINT``)
itself, object_store only when given it (it reads ``IDENTITY_HEADER`` itself).

Azurite (the emulator) answers with path-style addresses (``http://host:port/<account>``) and
does not implement the listing parameter (``startFrom``) object_store uses to read a table's log
from a version on: object_store must be told it talks to the emulator (``use_emulator``), and it
takes the emulator's address only from the ``AZURITE_BLOB_STORAGE_URL`` environment variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

AZURE_SCHEMES: Final = frozenset({"abfs", "abfss", "az"})
#: The variable object_store reads the emulator's address from (no configuration key exists).
EMULATOR_URL_VARIABLE: Final = "AZURITE_BLOB_STORAGE_URL"
#: Where Azurite listens when a connection string says ``UseDevelopmentStorage=true``.
DEVELOPMENT_STORAGE: Final = "http://127.0.0.1:10000"
DEVELOPMENT_ACCOUNT: Final = "devstoreaccount1"


@dataclass(frozen=True)
class DeltaStorage:
    """What delta-rs needs to reach a lake: its object store's options and, for Azurite, the
    emulator's address (which object_store reads from the environment)."""

    options: dict[str, str] = field(default_factory=dict)
    emulator_url: str | None = None


def connection_string_parts(text: str) -> dict[str, str]:
    """``Key=value;…`` as a dict, keys as written (values may hold ``=``: SAS, keys)."""
    parts = (item.split("=", 1) for item in text.split(";") if "=" in item)
    return {key.strip(): value.strip() for key, value in parts}


def azure_storage(
    *,
    connection_string: str | None = None,
    account_name: str | None = None,
    account_key: str | None = None,
    sas_token: str | None = None,
    account_host: str | None = None,
    identity_endpoint: str | None = None,
) -> DeltaStorage:
    """object_store's options for an Azure storage account, from the credentials adlfs takes:
    a connection string (account key or SAS, Azurite's included) wins over account name with
    key or SAS token, as it does in adlfs; with neither, the managed identity's token endpoint
    (``identity_endpoint``) where the host has one."""
    options: dict[str, str] = {}
    endpoint: str | None = None
    if connection_string:
        parts = connection_string_parts(connection_string)
        if parts.get("UseDevelopmentStorage", "").lower() == "true":
            return DeltaStorage(
                {"use_emulator": "true", "account_name": DEVELOPMENT_ACCOUNT}, DEVELOPMENT_STORAGE
            )
        account_name = parts.get("AccountName")
        account_key = parts.get("AccountKey")
        sas_token = parts.get("SharedAccessSignature")
        endpoint = parts.get("BlobEndpoint")
        if not endpoint and account_name:
            protocol = parts.get("DefaultEndpointsProtocol", "https")
            suffix = parts.get("EndpointSuffix", "core.windows.net")
            if (protocol, suffix) != ("https", "core.windows.net"):
                endpoint = f"{protocol}://{account_name}.blob.{suffix}"
    elif account_host:
        endpoint = f"https://{account_host}"
    emulator_url = None
    if endpoint:
        address = urlsplit(endpoint.rstrip("/"))
        account_in_path = address.path.strip("/")
        if account_in_path:  # path-style addressing: the emulator's (Azurite)
            head, _, last = account_in_path.rpartition("/")
            account_name = account_name or last
            emulator_url = f"{address.scheme}://{address.netloc}" + (f"/{head}" if head else "")
            options["use_emulator"] = "true"
        else:
            account_name = account_name or address.netloc.split(".", 1)[0]
            options["azure_storage_endpoint"] = f"{address.scheme}://{address.netloc}"
            if address.scheme == "http":
                options["allow_http"] = "true"
    if account_name:
        options["account_name"] = account_name
    if account_key:
        options["account_key"] = account_key
    if sas_token:
        options["sas_token"] = sas_token.lstrip("?")
    if identity_endpoint and not (account_key or sas_token):
        options["msi_endpoint"] = identity_endpoint
    return DeltaStorage(options, emulator_url)


def delta_storage(url: str, fs: Any) -> DeltaStorage:
    """What delta-rs needs for the lake at ``url``, from the credentials of its fsspec
    filesystem ``fs``; nothing for S3 and other stores, whose variables delta-rs reads itself."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in AZURE_SCHEMES:
        return DeltaStorage()

    def credential(name: str) -> str | None:
        value = getattr(fs, name, None)
        return str(value) if value else None

    return azure_storage(
        connection_string=credential("connection_string"),
        account_name=credential("account_name"),
        account_key=credential("account_key"),
        sas_token=credential("sas_token"),
        account_host=credential("account_host"),
        identity_endpoint=os.environ.get("IDENTITY_ENDPOINT"),
    )


def delta_storage_options(url: str, fs: Any) -> dict[str, str]:
    """Storage options for delta-rs on the lake at ``url`` (see :func:`delta_storage`). For
    Azurite, points object_store at the emulator the connection string names (through the one
    variable object_store reads it from), so fsspec and delta-rs reach the same service."""
    storage = delta_storage(url, fs)
    if storage.emulator_url is not None:
        os.environ[EMULATOR_URL_VARIABLE] = storage.emulator_url
    return storage.options
