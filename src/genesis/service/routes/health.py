"""`/livez` and `/readyz`, with Kubernetes semantics."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response

from genesis.service.schemas import Liveness, Readiness
from genesis.service.state import service_state

health = Blueprint("health", __name__)


@health.get("/livez")
@document_response(Liveness, 200)
async def livez() -> dict[str, object]:
    """Liveness: the process serves requests. It never checks dependencies."""
    return Liveness().model_dump()


@health.get("/readyz")
@document_response(Readiness, 200)
@document_response(Readiness, 503)
async def readyz() -> tuple[dict[str, object], int]:
    """Readiness: starting, draining or a required dependency down answers 503."""
    report = await service_state().readiness.report()
    body = Readiness(
        status="ready" if report.ready else "not ready", state=report.state, checks=report.checks
    )
    return body.model_dump(), 200 if report.ready else 503
