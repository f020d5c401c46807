"""Settings of the chat service, from `GENESIS_*` environment variables and `.env` files.

One model is the single source of truth: the CLI, the app factory, the worker and
docs/configuration.md (checked by a test) all read it.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from genesis.service.keys import KeyRing, KeysFileError

Environment = Literal["dev", "staging", "prod"]
ProviderName = Literal["offline", "openai"]
AuthMode = Literal["auto", "on", "off"]
Track = Literal["stable", "canary", "blue", "green"]

OFFLINE_MODEL = "genesis-offline-demo"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"

# Secrets that may also arrive as a file (`GENESIS_X_FILE`), the way Kubernetes and
# Docker mount them; the value is read once at start-up and kept as a SecretStr.
SECRET_FIELDS: tuple[str, ...] = ("openai_api_key", "redis_url")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

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
    openai_http_client: Literal["aiohttp", "httpx"] = Field(
        "aiohttp",
        description="The SDK's HTTP transport for the upstream: `aiohttp` (the SDK's "
        "`DefaultAioHttpClient`, about a third less CPU per call) or `httpx` (the SDK's "
        "default; it honours HTTP_PROXY/HTTPS_PROXY and SSL_CERT_FILE from the environment).",
    )
    openai_max_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Retries of a failed upstream call (connect errors, timeouts, 429, 5xx; "
        "never another 4xx), with exponential backoff and full jitter; the SDK's own retries "
        "are off.",
    )
    openai_total_timeout: float = Field(
        120.0,
        gt=0,
        description="Seconds one upstream attempt may take in all (a stream: until its first "
        "chunk); then it counts as a timeout and may be retried.",
    )
    openai_retry_base_seconds: float = Field(
        0.25, gt=0, description="Backoff before the first retry; it doubles for each next one."
    )
    openai_retry_max_seconds: float = Field(
        4.0, gt=0, description="Longest backoff between two attempts."
    )
    openai_retry_after_max_seconds: float = Field(
        10.0,
        ge=0,
        description="Longest upstream `Retry-After` genesis waits out before retrying; asked "
        "for longer, it answers the client at once, passing the Retry-After on.",
    )
    request_deadline_seconds: float = Field(
        300.0,
        gt=0,
        description="Most seconds one chat completion may spend upstream, all attempts, "
        "backoff and (for a stream) every chunk included; then 504 `upstream_timeout` (or, "
        "mid-stream, an error event and `[DONE]`).",
    )
    circuit_failure_threshold: int = Field(
        5,
        ge=0,
        description="Consecutive upstream failures (connect errors, timeouts, 5xx) that open "
        "the circuit breaker, answering 503 `upstream_unavailable` without calling the "
        "upstream; 0 turns the breaker off.",
    )
    circuit_cooldown_seconds: float = Field(
        30.0,
        ge=0,
        description="How long an open circuit stays open before one probe request may try "
        "the upstream again (success closes it, failure reopens it).",
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
        30.0,
        ge=0,
        description="On SIGTERM, how long in-flight requests (in `genesis worker`: running "
        "jobs) may take to finish.",
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
    max_messages: int = Field(
        512, ge=1, description="Most messages one chat completion may carry; more get 400."
    )
    max_total_chars: int = Field(
        400_000,
        ge=1,
        description="Most characters of message content one chat completion may carry; more "
        "get 413.",
    )
    max_tokens: int = Field(
        16_384,
        ge=1,
        description="Largest `max_tokens` (or `max_completion_tokens`) a request may ask for; "
        "larger get 400.",
    )
    auth: AuthMode = Field(
        "auto",
        description="API key authentication of `/v1/*`: `on` (needs GENESIS_API_KEYS_FILE), "
        "`off` (refused when env is prod), or `auto`: on when a keys file is set, off only on "
        "the embedded default (env dev, loopback host), refused otherwise.",
    )
    api_keys_file: Path | None = Field(
        None,
        description="File of accepted API keys, one `NAME:sha256:HEX` per line (create lines "
        "with `genesis keys new NAME`; see docs/operations.md).",
    )
    api_keys_reload_seconds: float = Field(
        10.0,
        ge=0,
        description="How often the keys file is checked for changes, so keys rotate without a "
        "restart (a file that does not parse is refused and the previous keys stay); 0: read "
        "once at start-up.",
    )
    redis_url: SecretStr | None = Field(
        None,
        description="Redis shared by every replica for rate limits, the cache and "
        "conversations (`redis://`, `rediss://` or `unix://`); unset: in-process state, one "
        "instance only.",
    )
    redis_url_file: Path | None = Field(
        None, description="File holding the Redis URL (instead of GENESIS_REDIS_URL)."
    )
    job_queues: str = Field(
        "chat",
        pattern=r"^[A-Za-z0-9_.\-]{1,64}(,[A-Za-z0-9_.\-]{1,64})*$",
        description="Job queues, comma-separated: `POST /v1/jobs` enqueues to the first, "
        "`genesis worker` consumes every one (jobs need GENESIS_REDIS_URL).",
    )
    job_concurrency: int = Field(
        4, ge=1, le=256, description="Jobs one `genesis worker` process runs at once, per queue."
    )
    job_timeout_seconds: float = Field(
        300.0,
        gt=0,
        description="Most seconds one attempt of a job may run; then the job fails with "
        "`job_timeout` (not retried).",
    )
    job_max_attempts: int = Field(
        4,
        ge=1,
        le=20,
        description="Attempts a job gets in all: retries after a retryable upstream error "
        "(429, 502, 503, 504) and runs after its worker died count; bad requests (4xx) are "
        "never retried.",
    )
    job_retry_base_seconds: float = Field(
        1.0,
        ge=0,
        description="Backoff before a job's first retry; it doubles for each next one, with "
        "full jitter.",
    )
    job_retry_max_seconds: float = Field(
        60.0, gt=0, description="Longest backoff between two attempts of a job."
    )
    job_pickup_seconds: int = Field(
        60,
        ge=10,
        le=3600,
        description="A job whose worker died (SIGKILL, OOM, lost node) runs again on another "
        "worker within this many seconds: workers heartbeat their jobs and sweep for silent "
        "ones.",
    )
    job_result_ttl_seconds: int = Field(
        3600,
        ge=1,
        description="Seconds a succeeded or cancelled job and its result stay readable "
        "(`GET /v1/jobs/{id}`).",
    )
    job_failed_ttl_seconds: int = Field(
        604_800,
        ge=1,
        description="Seconds a failed job stays readable and listed in `GET /v1/jobs`.",
    )
    cache_ttl_seconds: int = Field(
        0,
        ge=0,
        le=86_400 * 30,
        description="Seconds an exact-match cached answer of a non-streaming chat completion "
        "is served; 0 turns the response cache off.",
    )
    conversation_ttl_seconds: int = Field(
        0,
        ge=0,
        le=86_400 * 30,
        description="Seconds a server-side conversation (`/v1/conversations`) lives after its "
        "last write; 0 turns conversations off (the routes answer 404). On Redis when "
        "GENESIS_REDIS_URL is set, else in the process (one instance only).",
    )
    conversation_max_messages: int = Field(
        256,
        ge=1,
        le=100_000,
        description="Most messages one conversation may hold; an append past it gets 400.",
    )
    conversation_max_chars: int = Field(
        200_000,
        ge=1,
        le=100_000_000,
        description="Most characters of message content one conversation may hold; an append "
        "past it gets 413.",
    )
    rate_limit_rpm: int = Field(
        0, ge=0, description="Requests per minute allowed to each API key; 0 means unlimited."
    )
    rate_limit_tpm: int = Field(
        0,
        ge=0,
        description="Tokens per minute allowed to each API key (prompt estimate plus "
        "`max_tokens`, settled to actual usage); 0 means unlimited.",
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
    log_content: bool = Field(
        False,
        description="Put prompts and completions in the request log lines (debugging only; "
        "refused when env is prod).",
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

    _key_ring: KeyRing | None = PrivateAttr(None)

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
    def _redis_url_scheme(self) -> Settings:
        if self.redis_url is not None and not self.redis_url.get_secret_value().startswith(
            _REDIS_SCHEMES
        ):
            # The URL may hold a password: the message names the setting, not the value.
            raise ValueError("GENESIS_REDIS_URL must start with redis://, rediss:// or unix://")
        return self

    @model_validator(mode="after")
    def _authentication(self) -> Settings:
        if self.auth == "off":
            if self.env == "prod":
                raise ValueError("GENESIS_AUTH=off is refused when GENESIS_ENV=prod")
            if self.api_keys_file is not None:
                raise ValueError("set either GENESIS_AUTH=off or GENESIS_API_KEYS_FILE, not both")
            return self
        if self.api_keys_file is None:
            if self.auth == "auto" and self.env == "dev" and _is_loopback(self.host):
                return self
            if self.auth == "on":
                reason = "GENESIS_AUTH=on"
            elif self.env != "dev":
                reason = f"GENESIS_ENV={self.env}"
            else:
                reason = "a GENESIS_HOST other than loopback"
            raise ValueError(
                f"{reason} needs GENESIS_API_KEYS_FILE (create keys with "
                "`genesis keys new NAME`); to serve without authentication set GENESIS_AUTH=off "
                "(refused in prod)"
            )
        try:
            ring = KeyRing.load(self.api_keys_file)
        except KeysFileError as error:
            raise ValueError(f"GENESIS_API_KEYS_FILE: {error}") from None
        if not ring.keys:
            raise ValueError(f"GENESIS_API_KEYS_FILE: {self.api_keys_file} holds no keys")
        self._key_ring = ring
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
    def _refuse_content_logs_in_prod(self) -> Settings:
        if self.env == "prod" and self.log_content:
            # Prompts are user data: production logs must not become a copy of them.
            raise ValueError("GENESIS_LOG_CONTENT=true is refused when GENESIS_ENV=prod")
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

    @property
    def job_queue_names(self) -> tuple[str, ...]:
        """GENESIS_JOB_QUEUES as names; the first is where the API enqueues."""
        return tuple(self.job_queues.split(","))

    @property
    def key_ring(self) -> KeyRing | None:
        """The accepted API keys, read at start-up; None when authentication is off."""
        return self._key_ring


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def env_files(environment: str, directory: Path | None = None) -> tuple[Path, ...]:
    """`.env` then `.env.<environment>`: the later file wins, the process environment beats both."""
    base = directory or Path.cwd()
    return (base / ".env", base / f".env.{environment}")


class WorkerSettings(Settings):
    """The settings of `genesis worker`: the same model, minus the API's authentication.

    The worker serves no API, only /metrics: whether `/v1` needs keys is not its concern, so
    the image's defaults (GENESIS_HOST=0.0.0.0) start a worker without a keys file.
    """

    # Same name as the parent's validator, so pydantic runs this one in its place.
    @model_validator(mode="after")
    def _authentication(self) -> WorkerSettings:
        return self


def load_settings(
    directory: Path | None = None, *, model: type[Settings] = Settings, **overrides: Any
) -> Settings:
    """Settings from overrides (CLI flags), then the environment, then the `.env` files."""
    environment = overrides.get("env") or os.environ.get("GENESIS_ENV") or "dev"
    return model(_env_file=env_files(str(environment), directory), **overrides)


def settings_table() -> str:
    """The Markdown table of every setting, as docs/configuration.md holds it."""
    rows = ["| variable | default | description |", "| --- | --- | --- |"]
    for name, info in Settings.model_fields.items():
        default = info.get_default(call_default_factory=True)
        shown = "(none)" if default is None else f"`{default}`"
        rows.append(f"| `GENESIS_{name.upper()}` | {shown} | {info.description} |")
    return "\n".join(rows)
