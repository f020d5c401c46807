"""A real Alertmanager (Debian package `prometheus-alertmanager`, 0.25) on 127.0.0.1.

Its config and notification log live in the test's tmp dir; clustering is switched off so it
binds no port besides its own web port.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from harness.processes import ManagedProcess, free_port, http_ok


class AlertmanagerServer:
    def __init__(
        self,
        workdir: Path,
        config: str,
        *,
        binary: str = "prometheus-alertmanager",
        name: str = "alertmanager",
    ) -> None:
        self.workdir = workdir
        self.name = name
        self.binary = binary
        self.port = free_port()
        self.config_path = workdir / f"{name}.yml"
        self.data_dir = workdir / f"{name}-data"
        self.config = config
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """host:port, as Prometheus' alerting config wants it."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> AlertmanagerServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config)
        self._process = ManagedProcess(
            self.name,
            [
                self.binary,
                f"--config.file={self.config_path}",
                f"--storage.path={self.data_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            log_dir=self.workdir,
            cwd=self.workdir,
        )
        self._process.start()
        self._process.wait_ready(lambda: http_ok(f"{self.url}/-/ready"), timeout=timeout)
        return self

    def stop(self, grace: float = 10.0) -> int | None:
        return None if self._process is None else self._process.stop(grace=grace)

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=10) as response:
            alerts: list[dict[str, Any]] = json.load(response)
            return alerts

    def log_tail(self, lines: int = 40) -> str:
        return "(not started)" if self._process is None else self._process.log_tail(lines)

    def log_tails(self, lines: int = 40) -> list[tuple[str, str]]:
        return [(self.name, self.log_tail(lines))] if self._process is not None else []

    def __enter__(self) -> AlertmanagerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
