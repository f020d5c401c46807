"""The framework's ceiling: a proxy of a few lines, Quart + httpx, no features.

It forwards the body to the upstream and the upstream's bytes back (streams as they arrive).
No auth, limits, validation, metrics, logs or retries: whatever genesis costs beyond this is
genesis' own. Served by Hypercorn like genesis:
`BENCH_UPSTREAM=http://127.0.0.1:PORT hypercorn benchmarks.service.bare:app --workers N`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
from quart import Quart, Response, request

app = Quart(__name__)
UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:8001")
LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)


@app.before_serving
async def _open() -> None:
    app.extensions["upstream"] = httpx.AsyncClient(base_url=UPSTREAM, limits=LIMITS, timeout=60)


@app.after_serving
async def _close() -> None:
    await app.extensions["upstream"].aclose()


@app.get("/livez")
async def livez() -> str:
    return "ok"


@app.post("/v1/chat/completions")
async def chat() -> Response:
    body = await request.get_data()
    client: httpx.AsyncClient = app.extensions["upstream"]
    upstream = await client.send(
        client.build_request(
            "POST",
            "/v1/chat/completions",
            content=body,
            headers={"content-type": "application/json"},
        ),
        stream=True,
    )
    content_type = upstream.headers.get("content-type", "application/json")
    if content_type.startswith("text/event-stream"):

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for piece in upstream.aiter_raw():
                    yield piece
            finally:
                await upstream.aclose()

        response = Response(relay(), upstream.status_code, {"content-type": content_type})
        response.timeout = None
        return response
    data = await upstream.aread()
    return Response(data, upstream.status_code, {"content-type": content_type})
