"""Errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, for every failure.

Views raise `APIError`; the handlers registered here turn it, Werkzeug's HTTP exceptions
and anything unexpected into that shape, so no client ever sees an HTML error page.
"""

from __future__ import annotations

import structlog
from quart import Quart, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from genesis.service.schemas import ErrorDetail, ErrorResponse

log = structlog.get_logger("genesis.service")

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


class APIError(Exception):
    """An error answered to the client; `message` must never carry a secret."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> ErrorResponse:
        return ErrorResponse(
            error=ErrorDetail(
                message=self.message, type=self.type, param=self.param, code=self.code
            )
        )


def error_response(error: APIError) -> Response:
    response = jsonify(error.body().model_dump())
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def _from_http_exception(exc: HTTPException) -> APIError:
    status = exc.code or 500
    if status == 404:
        return APIError(404, f"Unknown route: {request.method} {request.path}", code="not_found")
    if status == 405:
        allowed = (
            ", ".join(sorted(exc.valid_methods or [])) if hasattr(exc, "valid_methods") else ""
        )
        return APIError(
            405,
            f"Method {request.method} is not allowed on {request.path}"
            + (f"; allowed: {allowed}" if allowed else ""),
            code="method_not_allowed",
            headers={"Allow": allowed} if allowed else None,
        )
    if status == 413:
        limit = request.max_content_length
        return APIError(
            413,
            f"Request body is larger than the limit of {limit} bytes (GENESIS_MAX_BODY_BYTES)",
            code="request_too_large",
        )
    if status >= 500:
        return APIError(status, "Internal server error", type=SERVER_ERROR, code="internal_error")
    return APIError(status, exc.description or exc.name, code=exc.name.lower().replace(" ", "_"))


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(APIError)
    async def _api_error(error: APIError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        return error_response(_from_http_exception(error))

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        # The traceback goes to the log; the client gets no internals.
        log.exception("unhandled error", path=request.path, error_type=type(error).__name__)
        return error_response(
            APIError(500, "Internal server error", type=SERVER_ERROR, code="internal_error")
        )
