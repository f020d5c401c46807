"""A real HTTP server that stands in for Slack's incoming webhooks (and any JSON webhook).

Slack cannot be reached from here, so Alertmanager posts to this server instead: the same
protocol (a JSON POST answered `200 ok`), recorded for the test to inspect.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: Any  # the decoded JSON payload


class WebhookReceiver:
    """Records every JSON POST; `wait_for(predicate)` returns the first matching delivery."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._deliveries: list[Delivery] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(b"invalid_payload")
                    return
                receiver._record(Delivery(self.path, dict(self.headers), body))
                # Slack answers a valid incoming-webhook post with a plain "ok".
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    def url(self, path: str = "/slack") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _record(self, delivery: Delivery) -> None:
        with self._changed:
            self._deliveries.append(delivery)
            self._changed.notify_all()

    @property
    def deliveries(self) -> list[Delivery]:
        with self._changed:
            return list(self._deliveries)

    def wait_for(self, predicate: Callable[[Delivery], bool], timeout: float = 30.0) -> Delivery:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for delivery in self._deliveries:
                    if predicate(delivery):
                        return delivery
                left = deadline - time.monotonic()
                if left <= 0:
                    bodies = [d.body for d in self._deliveries]
                    raise AssertionError(
                        f"no matching webhook delivery within {timeout}s; got: {bodies}"
                    )
                self._changed.wait(left)

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
