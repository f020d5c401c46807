"""The Quart app factory of the chat service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quart import Quart
from quart_schema import Info, OpenAPIProvider, QuartSchema

from genesis import __version__
from genesis.observability import Metrics
from genesis.service.errors import register_error_handlers
from genesis.service.faults import FaultInjector
from genesis.service.providers import Provider, build_provider
from genesis.service.readiness import Readiness
from genesis.service.routes.chat import api
from genesis.service.routes.health import health
from genesis.service.routes.web import WEB_DIST, web_blueprint
from genesis.service.schemas import ChatCompletionChunk, ErrorResponse
from genesis.service.settings import Settings, load_settings
from genesis.service.state import ServiceState, service_state

_STREAM_PATH = "/v1/chat/completions"
_REF = "#/components/schemas/{model}"


class _GenesisOpenAPI(OpenAPIProvider):
    """quart-schema's document, plus the SSE media type of streaming completions and the
    models this instance serves (they are configuration, so the document says them live)."""

    def schema(self) -> dict[str, Any]:
        document = super().schema()
        operation = document["paths"][_STREAM_PATH]["post"]
        operation["requestBody"]["required"] = True
        request_schema = operation["requestBody"]["content"]["application/json"]["schema"]
        request_schema["properties"]["model"]["enum"] = service_state().provider.models()
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
    app.register_blueprint(api)
    app.register_blueprint(health)
    app.register_blueprint(web_blueprint(web_dist))

    state = ServiceState(
        settings=settings,
        provider=provider or build_provider(settings),
        readiness=Readiness(),
        faults=FaultInjector(settings.fault_error_rate, settings.fault_latency_ms)
        if settings.faults_enabled
        else None,
        metrics=Metrics(app, track=settings.track, version=__version__, revision=settings.revision),
    )
    if settings.readiness_checks_upstream:
        state.readiness.add_check("upstream", state.provider.check)
    state.attach(app)

    @app.before_serving
    async def _started() -> None:
        state.readiness.mark_ready()

    @app.after_serving
    async def _stopping() -> None:
        state.readiness.begin_drain()
        await state.provider.aclose()

    return app
