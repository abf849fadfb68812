"""Configuration: environment, .env, secret files, and masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from coursemart.config import Settings, mask_url


def test_defaults_run_on_a_laptop(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("COURSEMART_LAKE", "COURSEMART_WAREHOUSE", "COURSEMART_API_KEYS"):
        monkeypatch.delenv(name, raising=False)

    settings = Settings()

    assert settings.lake == "./data/lake"
    assert settings.warehouse_url == "sqlite:///data/warehouse.db"
    assert settings.api_keys == ()
    assert settings.engine == "local"


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("COURSEMART_LAKE=abfs://lake/prefix\nCOURSEMART_ENGINE=spark\n")
    monkeypatch.setenv("COURSEMART_API_KEYS", "alpha, beta,")
    monkeypatch.setenv("COURSEMART_ENGINE", "local")

    settings = Settings()

    assert settings.lake == "abfs://lake/prefix"
    assert settings.engine == "local", "the environment wins over .env"
    assert [key.get_secret_value() for key in settings.api_keys] == ["alpha", "beta"]


def test_secrets_can_come_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "warehouse-url"
    secret.write_text("postgresql://app:s3cret@db/coursemart\n")
    monkeypatch.delenv("COURSEMART_WAREHOUSE", raising=False)
    monkeypatch.setenv("COURSEMART_WAREHOUSE_FILE", str(secret))

    assert Settings().warehouse_url == "postgresql://app:s3cret@db/coursemart"


def test_secrets_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSEMART_WAREHOUSE", "postgresql://app:s3cret@db/coursemart")
    monkeypatch.setenv("COURSEMART_API_KEYS", "topsecretkey")

    settings = Settings()
    shown = " ".join([repr(settings), str(settings), str(settings.display())])

    assert "s3cret" not in shown
    assert "topsecretkey" not in shown
    assert settings.display()["warehouse"] == "postgresql://app:***@db/coursemart"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:p@h:5432/d", "postgresql://u:***@h:5432/d"),
        ("mysql+pymysql://root@127.0.0.1/test", "mysql+pymysql://root@127.0.0.1/test"),
        ("sqlite:///data/warehouse.db", "sqlite:///data/warehouse.db"),
        ("abfs://container/prefix", "abfs://container/prefix"),
        ("./data/lake", "./data/lake"),
        ("mssql+pyodbc://u:p%40ss@srv/db?driver=x", "mssql+pyodbc://u:***@srv/db?driver=x"),
        ("postgresql://app:Zx/9+q@db/wh", "postgresql://app:***@db/wh"),
        ("postgresql://app:a@b@db/wh", "postgresql://app:***@db/wh"),
        (
            "postgresql://db/wh?password=s3&sslmode=require",
            "postgresql://db/wh?password=***&sslmode=require",
        ),
        (
            "mssql+pyodbc://srv/db?odbc_connect=DRIVER%3Dx%3BPWD%3Dk",
            "mssql+pyodbc://srv/db?odbc_connect=***",
        ),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_config_lists_every_setting_of_the_settings_object(monkeypatch: pytest.MonkeyPatch) -> None:
    from coursemart.cli import main

    monkeypatch.setenv("COURSEMART_SPARK_CONF", '{"spark.hadoop.fs.azure.account.key.a": "k3y"}')
    monkeypatch.setenv("COURSEMART_API_KEYS", "first,second")
    shown = Settings().display()

    assert list(shown) == list(Settings.model_fields)
    assert shown["api_keys"] == "2 configured"
    assert "k3y" not in shown["spark_conf"] and '"***"' in shown["spark_conf"]
    assert shown["load_wait"] == "30.0" and shown["failpoint"] == "off"
    assert main(["config"]) == 0
