"""Lake paths as Spark's executors and Hadoop filesystems name them."""

from __future__ import annotations

from typing import Any

from coursemart.lake import Lake


def executor_lake(lake: Lake) -> str:
    """The lake as executors open it: an absolute folder or the URL."""
    return lake.root if lake.is_local else lake.url


def hadoop_path(lake: Lake, path: str) -> str:
    """The path as Spark's Hadoop filesystems name it.

    Local lakes become ``file://``; Azure lakes (``abfs://container/prefix``, ``az://``) become
    ``abfss://container@<account>.dfs.core.windows.net/prefix`` with the account fsspec knows;
    ``s3://`` becomes ``s3a://``; other schemes are kept.
    """
    if lake.is_local:
        return f"file://{path}"
    scheme = lake.url.split("://", 1)[0].lower()
    account = _azure_account(lake.fs)
    if scheme in ("abfs", "abfss", "az") and account:
        container, _, rest = path.lstrip("/").partition("/")
        return f"abfss://{container}@{account}.dfs.core.windows.net/{rest}"
    if scheme in ("s3", "s3a"):
        return f"s3a://{path.lstrip('/')}"
    return f"{scheme}://{path.lstrip('/')}"


def _azure_account(fs: Any) -> str | None:
    """The storage account of an adlfs filesystem, given directly or in its connection string."""
    account = getattr(fs, "account_name", None)
    if account:
        return str(account)
    for part in str(getattr(fs, "connection_string", "") or "").split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "accountname" and value:
            return value.strip()
    return None
