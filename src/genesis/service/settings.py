"""Settings of the chat service, from `GENESIS_*` environment variables and `.env` files.

One model is the single source of truth: the CLI, the app factory, the worker and
docs/configuration.md (checked by a test) all read it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["dev", "staging", "prod"]
ProviderName = Literal["offline", "openai"]
Track = Literal["stable", "canary", "blue", "green"]

OFFLINE_MODEL = "genesis-offline-demo"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"

# Secrets that may also arrive as a file (`GENESIS_X_FILE`), the way Kubernetes and
# Docker mount them; the value is read once at start-up and kept as a SecretStr.
SECRET_FIELDS: tuple[str, ...] = ("openai_api_key",)

Port = Annotated[int, Field(ge=1, le=65535)]


class Settings(BaseSettings):
    """Every setting of the service; each field is `GENESIS_<NAME>` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="GENESIS_",
        env_file_encoding="utf-8",
        extra="forbid",
        validate_default=True,
        frozen=True,
    )

    env: Environment = Field("dev", description="Deployment environment: dev, staging or prod.")
    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: Port = Field(8000, description="Port of the public HTTP API.")
    workers: int = Field(1, ge=1, le=64, description="Number of Hypercorn worker processes.")
    provider: ProviderName = Field(
        "offline",
        description="Model provider: `offline` (deterministic demo text, no network) or "
        "`openai` (any OpenAI-compatible API).",
    )
    model: str | None = Field(
        None,
        min_length=1,
        description=f"Model name clients ask for. Default: `{OFFLINE_MODEL}` for the offline "
        f"provider, `{DEFAULT_OPENAI_MODEL}` for openai.",
    )
    openai_base_url: str | None = Field(
        None,
        description="Base URL of the OpenAI-compatible upstream (vLLM, Ollama, llama.cpp...). "
        "Default: the OpenAI API.",
    )
    openai_api_key: SecretStr | None = Field(
        None, description="API key for the upstream; required when no base URL is set."
    )
    openai_api_key_file: Path | None = Field(
        None, description="File holding the upstream API key (instead of GENESIS_OPENAI_API_KEY)."
    )
    openai_connect_timeout: float = Field(
        5.0, gt=0, description="Seconds to wait for a connection to the upstream."
    )
    openai_read_timeout: float = Field(
        60.0, gt=0, description="Seconds to wait for each read from the upstream."
    )
    openai_max_retries: int = Field(
        2, ge=0, le=10, description="Retries of failed upstream calls (the SDK's backoff)."
    )
    track: Track = Field(
        "stable", description="Deployment track of this instance: stable, canary, blue or green."
    )
    revision: str = Field(
        "unknown",
        pattern=r"^[\w.+\-]{1,128}$",
        description="Source revision (e.g. the git SHA) reported in `genesis_build_info`.",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address of the `/metrics` endpoint; it has its own port so it is never "
        "public by accident.",
    )
    metrics_port: int = Field(
        9464, ge=0, le=65535, description="Port of the `/metrics` endpoint; 0 turns it off."
    )
    grace_seconds: float = Field(
        30.0, ge=0, description="On SIGTERM, how long in-flight requests may take to finish."
    )
    drain_seconds: float = Field(
        0.0,
        ge=0,
        description="On SIGTERM, how long to report not-ready while still serving, so load "
        "balancers stop sending before the listener closes.",
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body accepted; larger bodies get 413."
    )
    readiness_checks_upstream: bool = Field(
        False,
        description="Count the upstream as a required dependency in /readyz (off by default, "
        "so one provider outage does not empty every pool at once).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest log level written."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="`json` for machines, `console` for people, `auto` picks by TTY."
    )
    fault_error_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Test-only: share of API requests answered 500. Refused when env is prod.",
    )
    fault_latency_ms: int = Field(
        0,
        ge=0,
        le=600_000,
        description="Test-only: delay added to every API request. Refused when env is prod.",
    )

    @field_validator("openai_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        for name in SECRET_FIELDS:
            path: Path | None = getattr(self, f"{name}_file")
            if path is None:
                continue
            env_name = f"GENESIS_{name.upper()}"
            if getattr(self, name) is not None:
                raise ValueError(f"set either {env_name} or {env_name}_FILE, not both")
            try:
                secret = path.read_text(encoding="utf-8").strip()
            except OSError as error:
                raise ValueError(f"{env_name}_FILE: cannot read {path}: {error.strerror}") from None
            if not secret:
                raise ValueError(f"{env_name}_FILE: {path} is empty")
            # Frozen model: the validator is the one place allowed to fill it in.
            object.__setattr__(self, name, SecretStr(secret))
        return self

    @model_validator(mode="after")
    def _refuse_faults_in_prod(self) -> Settings:
        if self.env == "prod" and (self.fault_error_rate > 0 or self.fault_latency_ms > 0):
            raise ValueError(
                "GENESIS_FAULT_ERROR_RATE and GENESIS_FAULT_LATENCY_MS are test-only fault "
                "injection and are refused when GENESIS_ENV=prod"
            )
        return self

    @model_validator(mode="after")
    def _openai_needs_key(self) -> Settings:
        if self.provider == "openai" and self.openai_base_url is None and not self.openai_api_key:
            raise ValueError(
                "GENESIS_PROVIDER=openai with the default OpenAI API needs "
                "GENESIS_OPENAI_API_KEY or GENESIS_OPENAI_API_KEY_FILE "
                "(or set GENESIS_OPENAI_BASE_URL to a server that needs no key)"
            )
        return self

    @property
    def served_model(self) -> str:
        """The model name this instance answers to."""
        if self.model:
            return self.model
        return OFFLINE_MODEL if self.provider == "offline" else DEFAULT_OPENAI_MODEL

    @property
    def faults_enabled(self) -> bool:
        return self.fault_error_rate > 0 or self.fault_latency_ms > 0


def env_files(environment: str, directory: Path | None = None) -> tuple[Path, ...]:
    """`.env` then `.env.<environment>`: the later file wins, the process environment beats both."""
    base = directory or Path.cwd()
    return (base / ".env", base / f".env.{environment}")


def load_settings(directory: Path | None = None, **overrides: Any) -> Settings:
    """Settings from overrides (CLI flags), then the environment, then the `.env` files."""
    environment = overrides.get("env") or os.environ.get("GENESIS_ENV") or "dev"
    return Settings(_env_file=env_files(str(environment), directory), **overrides)


def settings_table() -> str:
    """The Markdown table of every setting, as docs/configuration.md holds it."""
    rows = ["| variable | default | description |", "| --- | --- | --- |"]
    for name, info in Settings.model_fields.items():
        default = info.get_default(call_default_factory=True)
        shown = "(none)" if default is None else f"`{default}`"
        rows.append(f"| `GENESIS_{name.upper()}` | {shown} | {info.description} |")
    return "\n".join(rows)
