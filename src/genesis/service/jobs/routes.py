"""`/v1/jobs`: a chat completion run in the background by `genesis worker`.

`POST /v1/jobs` takes a chat completion body and answers 202 with the job and its
`Location`; `GET /v1/jobs/{id}` shows its state, `DELETE` cancels it, `GET /v1/jobs` lists
the caller's recent jobs. A job belongs to the API key that made it (its name): any other
key is told it does not exist. Without Redis there is no queue, and the routes say so (503).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import structlog
from pydantic import ValidationError
from quart import Blueprint, Quart, Response, current_app, request
from quart_schema import document_querystring, document_request, document_response

from genesis.observability import ServiceMetrics
from genesis.service.auth import authorize_model, current_key
from genesis.service.errors import SERVER_ERROR, APIError, error_response
from genesis.service.jobs.model import JobList, JobListQuery, JobObject
from genesis.service.limits import enforce_request_limits
from genesis.service.ratelimit import token_reservation
from genesis.service.routes.body import describe_validation_error, parse_body
from genesis.service.routes.chat import _check_model
from genesis.service.schemas import ChatCompletionRequest, ErrorResponse
from genesis.service.settings import Settings
from genesis.service.state import service_state

if TYPE_CHECKING:
    # saq and redis come with the `redis` extra; the core install never imports them.
    from genesis.service.jobs.queue import JobQueue

_KEY = "genesis.jobs"
log = structlog.get_logger("genesis.jobs")

jobs_api = Blueprint("jobs", __name__, url_prefix="/v1")


def _queue() -> JobQueue:
    queue = current_app.extensions.get(_KEY)
    if queue is None:
        raise APIError(
            503,
            "Async jobs need Redis, and this instance has none: set GENESIS_REDIS_URL and run "
            "`genesis worker` (docs/operations.md, Workers)",
            type=SERVER_ERROR,
            code="jobs_unavailable",
        )
    return cast("JobQueue", queue)


def _not_found(job_id: str) -> APIError:
    return APIError(404, f"No job found with id '{job_id}'", param="job_id", code="job_not_found")


def _dump(job: JobObject) -> dict[str, object]:
    return job.model_dump(mode="json")


@jobs_api.post("/jobs")
@document_request(ChatCompletionRequest)
@document_response(JobObject, 202)
@document_response(ErrorResponse, 400)
@document_response(ErrorResponse, 401)
@document_response(ErrorResponse, 403)
@document_response(ErrorResponse, 404)
@document_response(ErrorResponse, 413)
@document_response(ErrorResponse, 429)
@document_response(ErrorResponse, 503)
async def create_job() -> tuple[dict[str, object], int, dict[str, str]]:
    """Queue a chat completion to run in the background.

    The body is a chat completion request without streaming. Answers 202 with the job; poll
    its `Location` (`GET /v1/jobs/{id}`) until the status is succeeded, failed or cancelled.
    """
    queue = _queue()
    body = await parse_body(ChatCompletionRequest)
    if body.stream:
        raise APIError(
            400,
            "A job cannot stream: leave out `stream` (or set it to false) and read the result "
            "from GET /v1/jobs/{id}",
            param="stream",
            code="invalid_value",
        )
    state = service_state()
    enforce_request_limits(body, state.request_limits)
    _check_model(state.provider, body.model)
    key = current_key()
    authorize_model(key, body.model)
    if state.limiter is not None:
        # The reservation (prompt estimate plus max_tokens) stands: the worker that spends
        # the tokens later has no admission to settle.
        await state.limiter.admit(key, token_reservation(body))
    job = await queue.enqueue(key.name, body.model_dump(mode="json", exclude_none=True), body.model)
    return _dump(job), 202, {"Location": f"/v1/jobs/{job.id}"}


@jobs_api.get("/jobs")
@document_querystring(JobListQuery)
@document_response(JobList, 200)
@document_response(ErrorResponse, 400)
@document_response(ErrorResponse, 401)
@document_response(ErrorResponse, 503)
async def list_jobs() -> dict[str, object]:
    """List the caller's jobs, newest first; finished ones stay until their TTL runs out."""
    queue = _queue()
    try:
        query = JobListQuery.model_validate(request.args.to_dict())
    except ValidationError as error:
        message, param = describe_validation_error(error)
        raise APIError(400, message, param=param, code="invalid_value") from None
    jobs, has_more = await queue.list(current_key().name, query.limit)
    return JobList(data=jobs, has_more=has_more).model_dump(mode="json")


@jobs_api.get("/jobs/<string:job_id>")
@document_response(JobObject, 200)
@document_response(ErrorResponse, 401)
@document_response(ErrorResponse, 404)
@document_response(ErrorResponse, 503)
async def retrieve_job(job_id: str) -> dict[str, object]:
    """Show a job: its status, attempts, and the result or the error."""
    job = await _queue().get(current_key().name, job_id)
    if job is None:
        raise _not_found(job_id)
    return _dump(job)


@jobs_api.delete("/jobs/<string:job_id>")
@document_response(JobObject, 200)
@document_response(ErrorResponse, 401)
@document_response(ErrorResponse, 404)
@document_response(ErrorResponse, 503)
async def cancel_job(job_id: str) -> dict[str, object]:
    """Cancel a queued or running job (a running one stops within about a second).

    A job that has already finished is returned unchanged.
    """
    job = await _queue().cancel(current_key().name, job_id)
    if job is None:
        raise _not_found(job_id)
    return _dump(job)


def install_jobs(app: Quart, settings: Settings, metrics: ServiceMetrics | None = None) -> None:
    """Add `/v1/jobs` to the app; with GENESIS_REDIS_URL, its queue opens and closes with it."""
    app.register_blueprint(jobs_api)
    if settings.redis_url is None:
        app.extensions[_KEY] = None
        return
    try:
        from genesis.service.jobs.queue import JobQueue
    except ImportError as error:  # pragma: no cover - the test environment has the extra
        raise RuntimeError(
            f"GENESIS_REDIS_URL is set but {error.name} is missing: install genesis[redis]"
        ) from error
    from redis.exceptions import RedisError

    queue = JobQueue(settings, metrics)
    app.extensions[_KEY] = queue

    @app.errorhandler(RedisError)
    async def _redis_down(error: RedisError) -> Response:
        log.warning("redis unavailable for jobs", error_type=type(error).__name__)
        return error_response(
            APIError(
                503,
                "The job queue (Redis) is unreachable right now; retry shortly",
                type=SERVER_ERROR,
                code="jobs_unavailable",
                headers={"Retry-After": "1"},
            )
        )

    @app.after_serving
    async def _close_jobs() -> None:
        await queue.aclose()
