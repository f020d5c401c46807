"""The Quart app factory of the chat service."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from quart import Quart
from quart_schema import Info, OpenAPIProvider, QuartSchema

from genesis import __version__
from genesis.observability import Metrics, ServiceMetrics
from genesis.service.auth import install_auth
from genesis.service.cache import ResponseCache
from genesis.service.conversations import install_conversations
from genesis.service.conversations.model import ID_PATTERN as CONVERSATION_ID_PATTERN
from genesis.service.errors import register_error_handlers
from genesis.service.faults import FaultInjector
from genesis.service.jobs import install_jobs
from genesis.service.keys_reload import LiveKeyRing
from genesis.service.limits import RequestLimits
from genesis.service.providers import Provider, build_provider
from genesis.service.ratelimiter import RateLimiter
from genesis.service.readiness import Readiness
from genesis.service.requestlog import install_request_log
from genesis.service.routes.chat import api
from genesis.service.routes.health import health
from genesis.service.routes.web import WEB_DIST, web_blueprint
from genesis.service.schemas import ChatCompletionChunk, ErrorResponse
from genesis.service.settings import Settings, load_settings
from genesis.service.state import ServiceState, service_state
from genesis.service.stores import Store, open_store

_STREAM_PATH = "/v1/chat/completions"
_JOBS_PATH = "/v1/jobs"
_APPEND_PATH = "/v1/conversations/{conversation_id}/messages"
_REF = "#/components/schemas/{model}"
# How often readiness is evaluated for genesis_ready when no probe asks (a Redis PING each).
READINESS_WATCH_SECONDS = 5.0


class _GenesisOpenAPI(OpenAPIProvider):
    """quart-schema's document, plus the SSE media type of streaming completions and the
    models this instance serves (they are configuration, so the document says them live)."""

    def schema(self) -> dict[str, Any]:
        document = super().schema()
        state = service_state()
        # A job (/v1/jobs) takes a chat completion body, checked the same way.
        for path in (_STREAM_PATH, _JOBS_PATH):
            body = document["paths"][path]["post"]["requestBody"]
            body["required"] = True
            properties = body["content"]["application/json"]["schema"]["properties"]
            properties["model"]["enum"] = state.provider.models()
            # The request limits are configuration too (limits.py enforces them).
            properties["messages"]["maxItems"] = state.settings.max_messages
            for name in ("max_tokens", "max_completion_tokens"):
                for option in properties[name].get("anyOf", []):
                    if option.get("type") == "integer":
                        option["maximum"] = state.settings.max_tokens
        for operations in document["paths"].values():
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    if parameter["name"] == "conversation_id":
                        parameter["schema"]["pattern"] = CONVERSATION_ID_PATTERN
        # A create may come without a body; an append needs one.
        document["paths"][_APPEND_PATH]["post"]["requestBody"]["required"] = True
        # A job's result is read from the job, never streamed.
        document["paths"][_JOBS_PATH]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]["properties"]["stream"]["const"] = False
        operation = document["paths"][_STREAM_PATH]["post"]
        if state.settings.key_ring is not None:
            _require_bearer(document)
        ok = operation["responses"][200]
        components = document["components"]["schemas"]
        for model in (ChatCompletionChunk, ErrorResponse):
            model_schema = model.model_json_schema(ref_template=_REF)
            components.update(model_schema.pop("$defs", {}))
            components[model.__name__] = model_schema
        # Before OpenAPI 3.2, an event stream's `schema` describes one event.
        ok["content"]["text/event-stream"] = {
            "schema": {
                "type": "object",
                "description": "One Server-Sent Event: a chat.completion.chunk as JSON, an "
                "error in OpenAI's shape, or the closing `[DONE]`.",
                "required": ["data"],
                "properties": {
                    "data": {
                        "type": "string",
                        "anyOf": [
                            {"const": "[DONE]"},
                            {
                                "contentMediaType": "application/json",
                                "contentSchema": {
                                    "anyOf": [
                                        {"$ref": _REF.format(model="ChatCompletionChunk")},
                                        {"$ref": _REF.format(model="ErrorResponse")},
                                    ]
                                },
                            },
                        ],
                    }
                },
            }
        }
        return document


def _require_bearer(document: dict[str, Any]) -> None:
    """Say in the document that every /v1 operation needs `Authorization: Bearer KEY`."""
    document.setdefault("components", {}).setdefault("securitySchemes", {})["apiKey"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from `genesis keys new NAME` (docs/operations.md).",
    }
    for path, operations in document["paths"].items():
        if path.startswith("/v1/"):
            for operation in operations.values():
                operation["security"] = [{"apiKey": []}]


def create_app(
    settings: Settings | None = None,
    *,
    provider: Provider | None = None,
    web_dist: Path = WEB_DIST,
) -> Quart:
    """Build the chat service; `settings` default to the environment (`GENESIS_*`).

    `web_dist` holds the built chat page served at `/` (the Vite build of web/).
    """
    settings = settings or load_settings()
    app = Quart("genesis.service")
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        # Quart's default would let an unreadable request hold a worker for a minute.
        BODY_TIMEOUT=30,
        # Background tasks run during the drain and grace too; this is the extra time they
        # get once the server stopped, inside the worker's own stop margin (server.py).
        BACKGROUND_TASK_SHUTDOWN_TIMEOUT=2,
        PROVIDE_AUTOMATIC_OPTIONS=True,
    )
    QuartSchema(
        app,
        info=Info(title="genesis chat service", version=__version__),
        openapi_provider_class=_GenesisOpenAPI,
        redoc_ui_path=None,
        scalar_ui_path=None,
    )
    register_error_handlers(app)
    metrics = Metrics(app, track=settings.track, version=__version__, revision=settings.revision)
    keys = _live_keys(settings, metrics.service)
    install_auth(app, keys)
    app.register_blueprint(api)
    app.register_blueprint(health)
    app.register_blueprint(web_blueprint(web_dist))

    install_jobs(app, settings, metrics.service)
    install_conversations(app, settings)
    state = ServiceState(
        settings=settings,
        provider=provider or build_provider(settings, metrics.service),
        readiness=Readiness(observe=metrics.service.ready),
        faults=FaultInjector(settings.fault_error_rate, settings.fault_latency_ms)
        if settings.faults_enabled
        else None,
        metrics=metrics,
        request_limits=RequestLimits(
            max_messages=settings.max_messages,
            max_total_chars=settings.max_total_chars,
            max_tokens=settings.max_tokens,
        ),
        store=_shared_store(settings),
    )
    if state.store is not None and _rate_limited(settings):
        state.limiter = RateLimiter(
            state.store,
            rpm=settings.rate_limit_rpm,
            tpm=settings.rate_limit_tpm,
            metrics=state.metrics.service,
        )
    if state.store is not None and settings.cache_ttl_seconds:
        state.cache = ResponseCache(
            state.store, settings.cache_ttl_seconds, metrics=state.metrics.service
        )
    if settings.readiness_checks_upstream:
        state.readiness.add_check("upstream", state.provider.check)
    if settings.redis_url is not None and state.store is not None:
        # Shared limits are the point of Redis: an instance that cannot reach it must not
        # take traffic (it would refuse every request it rate-limits).
        state.readiness.add_check("redis", state.store.check)
    state.attach(app)
    # Last, so it wraps every other middleware: its duration and request id cover it all.
    install_request_log(
        app,
        log_content=settings.log_content,
        connection_close=lambda: state.readiness.state == "draining",
    )

    watching: list[asyncio.Task[None]] = []

    @app.before_serving
    async def _started() -> None:
        if keys is not None and settings.api_keys_reload_seconds:
            watching.append(asyncio.create_task(keys.watch(settings.api_keys_reload_seconds)))
        state.readiness.mark_ready()
        watching.append(asyncio.create_task(state.readiness.watch(READINESS_WATCH_SECONDS)))

    @app.after_serving
    async def _stopping() -> None:
        state.readiness.begin_drain()
        for task in watching:
            task.cancel()
        await state.provider.aclose()
        if state.limiter is not None:
            await state.limiter.aclose()
        if state.store is not None:
            await state.store.aclose()

    return app


def _live_keys(settings: Settings, metrics: ServiceMetrics) -> LiveKeyRing | None:
    if settings.key_ring is None or settings.api_keys_file is None:
        return None
    return LiveKeyRing(
        settings.key_ring,
        settings.api_keys_file,
        metrics,
        per_key_limits_enforced=_rate_limited(settings),
    )


def _rate_limited(settings: Settings) -> bool:
    ring = settings.key_ring
    per_key = ring is not None and any(key.rpm or key.tpm for key in ring.keys)
    return bool(settings.rate_limit_rpm or settings.rate_limit_tpm or per_key)


def _shared_store(settings: Settings) -> Store | None:
    """Redis when configured; in-process memory only when a feature needs state."""
    if settings.redis_url is not None:
        return open_store(settings.redis_url.get_secret_value())
    if _rate_limited(settings) or settings.cache_ttl_seconds:
        return open_store(None)
    return None
