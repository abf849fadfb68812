"""The one settings object: environment variables prefixed ``COURSEMART_``, an optional ``.env``.

Any setting can also be read from a file named by ``COURSEMART_<NAME>_FILE`` (for secrets mounted
by an orchestrator); a value given directly wins over the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from coursemart.errors import InputError
from coursemart.masking import is_secret_name, mask_url

ENV_PREFIX = "COURSEMART_"
#: Longest API key: longer ones are never compared (see ``api.auth``).
MAX_API_KEY_LENGTH = 512


class FileSecretsSource(PydanticBaseSettingsSource):
    """Reads ``COURSEMART_<NAME>_FILE``: the setting's value is the file's content, stripped."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = f"{ENV_PREFIX}{field_name.upper()}_FILE"
        path = os.environ.get(variable)
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text(encoding="utf-8").strip(), field_name, False
        except OSError as exc:
            raise InputError(f"{variable}: cannot read {path}: {exc.strerror}") from exc

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class Settings(BaseSettings):
    """coursemart's configuration. Every field is ``COURSEMART_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,  # a refused value may be a secret (a key, a URL's password)
    )

    lake: str = "./data/lake"
    """Where the lake lives: a local folder or an fsspec URL (``abfs://container/prefix``, ``s3://…``)."""

    warehouse: SecretStr = SecretStr("sqlite:///data/warehouse.db")
    """SQLAlchemy URL of the warehouse. It may hold a password, so it is shown masked."""

    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    """Comma-separated API keys; when empty the API is open."""

    engine: Literal["local", "spark"] = "local"
    """Engine for generate and load: in-process pyarrow or Apache Spark."""

    spark_master: str = "local[*]"
    """Spark master URL for ``--engine spark``."""

    spark_conf: dict[str, str] = Field(default_factory=dict)
    """Extra Spark configuration as JSON, e.g. ``{"spark.executor.memory": "4g"}``."""

    spark_jvm_cache: str | None = None
    """Folder of the Spark driver JVM's class archive, which makes later Spark runs start sooner
    (default ``~/.cache/coursemart/spark-jvm``); empty turns it off."""

    jdbc_jars: str = "/usr/share/java/postgresql.jar:/usr/share/java/mariadb-java-client.jar"
    """Colon-separated JDBC driver jars handed to Spark."""

    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    """Comma-separated origins allowed by CORS; empty means CORS is off."""

    load_wait: float = Field(default=30.0, ge=0)
    """Seconds a load waits for another load on the same warehouse before giving up."""

    follow_interval: float = Field(default=0.5, ge=0.05, le=3600)
    """Seconds between two looks at the lake's log by ``coursemart load --follow``."""

    failpoint: str | None = None
    """For reliability tests only: the load checkpoint at which the loader kills itself
    (``before_commit``, or ``before_commit:SIGTERM`` for another signal than SIGKILL)."""

    cache_seconds: int = Field(default=10, ge=0, le=86400)
    """``Cache-Control: max-age`` the API sends with its answers."""

    cursor_key: SecretStr | None = None
    """Secret that signs the API's paging cursors; every worker and instance of a deployment
    must share it. Unset: derived from the warehouse URL (shared too, but not secret)."""

    access_log: bool = False
    """Write one log line per request (API keys masked). Off by default: behind a proxy that
    logs, the server's own line costs time and says nothing new."""

    forwarded_allow_ips: Annotated[tuple[str, ...], NoDecode] = ()
    """Comma-separated addresses (or networks) of the proxies in front of the API whose
    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed, ``*`` for any; empty (the
    default): none, and the client is whoever opened the connection."""

    max_head_bytes: int = Field(default=65536, ge=1024, le=1 << 24)
    """Largest request head (request line and headers) the API's server reads, in bytes; a
    longer one is answered 431 and its connection closed."""

    head_seconds: float = Field(default=10.0, gt=0, le=3600)
    """Seconds a client has to send a request's head once it has connected (or, on a kept-alive
    connection, once the request began); a slower one is answered 408 and its connection closed
    (one that sent nothing is closed)."""

    log_format: Literal["text", "json"] = "text"
    """Server logs as text lines, or as one JSON object per line (with a request id)."""

    @field_validator("api_keys", "cors_origins", "forwarded_allow_ips", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("api_keys")
    @classmethod
    def _printable_ascii_keys(cls, keys: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        """HTTP headers carry ASCII only, so a key with other characters could never match
        there: refuse it now rather than accept it in ``?code=`` alone."""
        for position, key in enumerate(keys, start=1):
            text = key.get_secret_value()
            if not (text.isascii() and text.isprintable()) or " " in text:
                raise ValueError(
                    f"key {position} holds a character other than printable ASCII "
                    "(letters, digits, punctuation; no spaces)"
                )
            if len(text) > MAX_API_KEY_LENGTH:
                raise ValueError(f"key {position} is longer than {MAX_API_KEY_LENGTH} characters")
        return keys

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            FileSecretsSource(settings_cls),
            file_secret_settings,
        )

    @property
    def warehouse_url(self) -> str:
        """The warehouse URL in clear, for creating engines; never print it."""
        return self.warehouse.get_secret_value()

    def display(self) -> dict[str, str]:
        """Every setting as text safe to print (passwords, keys and secret values masked), in
        the order the fields are declared: what ``coursemart config`` shows."""
        return {name: shown(name, getattr(self, name)) for name in type(self).model_fields}


#: What an empty setting means, where it means more than "not set".
EMPTY: Final = {
    "api_keys": "none (API open)",
    "cors_origins": "off",
    "forwarded_allow_ips": "none (X-Forwarded-For is not believed)",
    "spark_jvm_cache": "~/.cache/coursemart/spark-jvm (the default)",
    "failpoint": "off",
    "cursor_key": "(not set: derived from the warehouse URL)",
}


def shown(name: str, value: object) -> str:
    """One setting's value as text safe to print."""
    if value is None or value == () or value == {}:
        return EMPTY.get(name, "(not set)")
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return mask_url(secret) if "://" in secret else "*** (set)"
    if isinstance(value, tuple):
        if all(isinstance(item, SecretStr) for item in value):
            return f"{len(value)} configured"
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        masked = {key: "***" if is_secret_name(key) else item for key, item in value.items()}
        return json.dumps(masked)
    if isinstance(value, bool):
        return "on" if value else "off"
    return mask_url(str(value))
