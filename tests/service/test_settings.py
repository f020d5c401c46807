"""Settings: environment, .env files per environment, *_FILE secrets, refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from genesis.service.settings import (
    DEFAULT_OPENAI_MODEL,
    OFFLINE_MODEL,
    Settings,
    WorkerSettings,
    load_settings,
)

SECRET = "sk-test-secret-value-0123456789"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Settings read the real process environment and the working directory's .env files.
    for name in list(os.environ):
        if name.startswith("GENESIS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_embedded_default_needs_nothing() -> None:
    settings = load_settings()
    assert settings.provider == "offline"
    assert settings.host == "127.0.0.1"
    assert settings.served_model == OFFLINE_MODEL
    assert not settings.faults_enabled


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENESIS_PORT", "9001")
    monkeypatch.setenv("GENESIS_TRACK", "canary")
    monkeypatch.setenv("GENESIS_PROVIDER", "openai")
    monkeypatch.setenv("GENESIS_OPENAI_BASE_URL", "http://127.0.0.1:1/v1/")
    settings = load_settings()
    assert settings.port == 9001
    assert settings.track == "canary"
    assert settings.openai_base_url == "http://127.0.0.1:1/v1"
    assert settings.served_model == DEFAULT_OPENAI_MODEL


def test_env_files_per_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("GENESIS_PORT=8001\nGENESIS_MODEL=base-model\n")
    # Staging needs a keys file or an explicit GENESIS_AUTH=off (docs/operations.md).
    (tmp_path / ".env.staging").write_text("GENESIS_PORT=8002\nGENESIS_AUTH=off\n")
    assert load_settings().port == 8001
    monkeypatch.setenv("GENESIS_ENV", "staging")
    staged = load_settings()
    assert staged.port == 8002, "the environment's own file wins over .env"
    assert staged.model == "base-model"
    monkeypatch.setenv("GENESIS_PORT", "8003")
    assert load_settings().port == 8003, "the process environment wins over files"
    assert load_settings(port=8004).port == 8004, "explicit overrides (CLI flags) win"


def test_unknown_setting_in_env_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GENESIS_PROT=8001\n")
    with pytest.raises(ValidationError, match="genesis_prot"):
        load_settings()


def test_secret_from_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(SECRET + "\n")
    monkeypatch.setenv("GENESIS_OPENAI_API_KEY_FILE", str(key_file))
    settings = load_settings()
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == SECRET


def test_secret_file_problems_are_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENESIS_OPENAI_API_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValidationError, match=r"cannot read .*missing: No such file"):
        load_settings()
    (tmp_path / "empty").write_text("\n")
    monkeypatch.setenv("GENESIS_OPENAI_API_KEY_FILE", str(tmp_path / "empty"))
    with pytest.raises(ValidationError, match="is empty"):
        load_settings()
    (tmp_path / "key").write_text(SECRET)
    monkeypatch.setenv("GENESIS_OPENAI_API_KEY_FILE", str(tmp_path / "key"))
    monkeypatch.setenv("GENESIS_OPENAI_API_KEY", SECRET)
    with pytest.raises(ValidationError, match="not both") as caught:
        load_settings()
    assert SECRET not in str(caught.value)


def test_secrets_never_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENESIS_OPENAI_API_KEY", SECRET)
    settings = load_settings()
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert SECRET not in settings.model_dump_json()


def test_faults_refused_in_prod(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"ops:sha256:{'0' * 64}\n")
    assert Settings(fault_error_rate=0.5).faults_enabled
    with pytest.raises(ValidationError, match="refused when GENESIS_ENV=prod"):
        Settings(env="prod", api_keys_file=keys, fault_error_rate=0.1)
    with pytest.raises(ValidationError, match="refused when GENESIS_ENV=prod"):
        Settings(env="prod", api_keys_file=keys, fault_latency_ms=100)
    assert not Settings(env="prod", api_keys_file=keys).faults_enabled


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("fault_error_rate", 1.5, "less than or equal to 1"),
        ("port", 0, "greater than or equal to 1"),
        ("workers", 0, "greater than or equal to 1"),
        ("provider", "anthropic", "'offline' or 'openai'"),
        ("openai_base_url", "ftp://x", "must start with http"),
        ("track", "purple", "'stable', 'canary', 'blue' or 'green'"),
    ],
)
def test_invalid_values_are_explained(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**{field: value})


def test_openai_default_endpoint_needs_a_key() -> None:
    with pytest.raises(ValidationError, match="needs GENESIS_OPENAI_API_KEY"):
        Settings(provider="openai")
    assert Settings(provider="openai", openai_base_url="http://127.0.0.1:1").provider == "openai"


def test_the_worker_serves_no_api_so_it_needs_no_api_keys() -> None:
    # The image's defaults: a non-loopback host, which the API refuses to serve without keys.
    with pytest.raises(ValidationError, match="needs GENESIS_API_KEYS_FILE"):
        Settings(host="0.0.0.0", env="prod")
    worker = WorkerSettings(host="0.0.0.0", env="prod")
    assert worker.key_ring is None
    # Every other rule still holds for the worker.
    with pytest.raises(ValidationError, match="GENESIS_REDIS_URL must start with"):
        WorkerSettings(redis_url="http://redis:6379")
