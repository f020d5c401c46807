"""The Prometheus HTTP API client: the gate's only way to the metrics (an I/O adapter).

`/api/v1/query` and `/api/v1/query_range` over httpx, with a timeout per request, retries with
exponential backoff on connection errors and 5xx answers, and bearer-token or basic auth read
from files. Every failure becomes a `PrometheusError` whose message quotes what Prometheus
itself said (`bad_data: 1:5: parse error: ...`), or why it could not be reached, so the person
reading a gate's report sees the cause without a debugger. Secrets are never part of a message
or a repr, and neither is a password embedded in the URL.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF = 0.5
_MAX_BACKOFF = 10.0
_MAX_QUOTED = 300  # characters of a non-API answer worth quoting


class PrometheusError(RuntimeError):
    """A query could not be answered; the message says why in Prometheus' own words.

    `kind` is `unreachable` (connection refused, timeouts, 5xx after every retry), `query`
    (Prometheus rejected or could not execute the query: bad PromQL, a result it cannot
    evaluate), `response` (the answer is not the Prometheus API, e.g. a wrong URL) or
    `auth` (a credentials file could not be read, or Prometheus refused the credentials).
    """

    def __init__(self, message: str, kind: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.error_type = error_type  # Prometheus' errorType, e.g. "bad_data"


@dataclass(frozen=True)
class Sample:
    """One element of an instant query's answer (a vector element, or a scalar)."""

    labels: Mapping[str, str]
    timestamp: float
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query's answer: (timestamp, value) points in time order."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


# --- credentials -----------------------------------------------------------------------------


def _read_secret(path: str | Path, what: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        # The OS message names the file and the reason, never the content.
        raise PrometheusError(
            f"cannot read the {what} file {str(path)!r}: {exc.strerror}", "auth"
        ) from None
    if not text:
        raise PrometheusError(f"the {what} file {str(path)!r} is empty", "auth")
    return text


class BearerToken(httpx.Auth):
    """`Authorization: Bearer <token>` with the token read once from a file."""

    def __init__(self, token_file: str | Path) -> None:
        self._token = _read_secret(token_file, "bearer token")
        self.source = str(token_file)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return f"BearerToken(token_file={self.source!r})"


def basic_auth(username: str, password_file: str | Path) -> httpx.BasicAuth:
    """HTTP basic auth whose password comes from a file (httpx keeps it out of reprs)."""
    if not username or ":" in username:
        raise PrometheusError(
            "a basic-auth username must be non-empty and cannot contain ':'", "auth"
        )
    return httpx.BasicAuth(username, _read_secret(password_file, "basic-auth password"))


def credentials(
    bearer_token_file: str | Path | None = None,
    username: str | None = None,
    password_file: str | Path | None = None,
) -> httpx.Auth | None:
    """The auth the command line asked for; mixing both kinds is an error, not a guess."""
    if bearer_token_file and (username or password_file):
        raise PrometheusError(
            "choose either a bearer token file or basic auth (username and password file), "
            "not both",
            "auth",
        )
    if bearer_token_file:
        return BearerToken(bearer_token_file)
    if username or password_file:
        if not (username and password_file):
            raise PrometheusError("basic auth needs both a username and a password file", "auth")
        return basic_auth(username, password_file)
    return None


def redact(url: str) -> str:
    """The URL without a `user:password@` part, fit for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


# --- the client ------------------------------------------------------------------------------


def _timestamp(value: float) -> str:
    return f"{value:.3f}"


def _float(text: Any) -> float:
    # Prometheus sends values as strings, including "NaN", "+Inf" and "-Inf".
    return float(text)


class PrometheusClient:
    """A synchronous client for one Prometheus server (`with PrometheusClient(url) as p:`)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        auth: httpx.Auth | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PrometheusError(
                f"{redact(url)!r} is not a Prometheus URL; give one like http://127.0.0.1:9090",
                "response",
            )
        if timeout <= 0 or retries < 0 or backoff < 0:
            raise ValueError("timeout must be positive, retries and backoff not negative")
        self.url = url.rstrip("/")
        self.display_url = redact(self.url)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._http = httpx.Client(
            auth=auth,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": "genesis-gate"},
        )

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"PrometheusClient({self.display_url!r})"

    # -- API ------------------------------------------------------------------------------------

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """Instant query; a vector or a scalar answer as samples (a scalar has no labels)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = _timestamp(at)
        data = self._call("query", params)
        kind, result = data.get("resultType"), data.get("result") or []
        if kind == "scalar":
            timestamp, value = result
            return [Sample({}, float(timestamp), _float(value))]
        if kind == "vector":
            return [
                Sample(dict(item["metric"]), float(item["value"][0]), _float(item["value"][1]))
                for item in result
            ]
        raise PrometheusError(
            f"the query gave a {kind} where a number per series was expected "
            "(an instant vector or a scalar); a range selector such as [5m] needs a function "
            "around it, e.g. rate(...[5m])",
            "query",
        )

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """Range query from `start` to `end` (unix seconds) at `step` seconds."""
        if not (math.isfinite(step) and step > 0):
            raise ValueError(f"step must be a positive number of seconds, got {step}")
        if end < start:
            raise ValueError(f"the range ends ({end}) before it starts ({start})")
        params = {
            "query": promql,
            "start": _timestamp(start),
            "end": _timestamp(end),
            "step": f"{step:g}",
        }
        data = self._call("query_range", params)
        if data.get("resultType") != "matrix":
            raise PrometheusError(
                f"a range query gave a {data.get('resultType')}, not a matrix", "response"
            )
        return [
            Series(
                dict(item["metric"]),
                tuple((float(t), _float(v)) for t, v in item["values"]),
            )
            for item in data["result"]
        ]

    # -- transport ------------------------------------------------------------------------------

    def _call(self, endpoint: str, params: Mapping[str, str]) -> dict[str, Any]:
        url = f"{self.url}/api/v1/{endpoint}"
        # Ask Prometheus to give up no later than we do, so an abandoned query stops there too.
        form = {**params, "timeout": f"{self.timeout:g}s"}
        attempts = self.retries + 1
        last = ""
        for attempt in range(attempts):
            if attempt:
                self._sleep(min(self.backoff * 2 ** (attempt - 1), _MAX_BACKOFF))
            try:
                # POST with a form: long PromQL does not hit URL length limits.
                response = self._http.post(url, data=form)
            except httpx.TimeoutException:
                last = f"no answer within {self.timeout:g}s"
                continue
            except httpx.TransportError as exc:
                last = _transport_reason(exc)
                continue
            if response.status_code >= 500:
                last = _describe(response)
                continue
            return self._payload(response)
        raise PrometheusError(
            f"Prometheus at {self.display_url} is unreachable after {attempts} attempt"
            f"{'s' if attempts > 1 else ''}: {last}",
            "unreachable",
        )

    def _payload(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code in (401, 403):
            raise PrometheusError(
                f"Prometheus at {self.display_url} refused the credentials "
                f"({response.status_code}): {_describe(response)}",
                "auth",
            )
        body = _json(response)
        if body is None or "status" not in body:
            raise PrometheusError(
                f"{self.display_url} answered {response.status_code} with something that is "
                f"not the Prometheus API ({_describe(response)}); is the URL right?",
                "response",
            )
        if body["status"] != "success":
            error_type = body.get("errorType")
            raise PrometheusError(
                f"Prometheus rejected the query ({error_type}): {body.get('error')}",
                "query",
                error_type,
            )
        data: dict[str, Any] = body.get("data") or {}
        return data


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _describe(response: httpx.Response) -> str:
    """Prometheus' own words where it gave some, else the start of the answer."""
    body = _json(response)
    if body is not None and "error" in body:
        return f"HTTP {response.status_code}, {body.get('errorType')}: {body['error']}"
    text = " ".join(response.text.split())[:_MAX_QUOTED]
    return f"HTTP {response.status_code}" + (f": {text}" if text else "")


def _transport_reason(exc: httpx.TransportError) -> str:
    # httpx passes the socket's own words through ("[Errno 111] Connection refused").
    return str(exc) or type(exc).__name__
