"""A real Prometheus server (Debian package `prometheus`, 2.42) on 127.0.0.1, owned by one test.

Nothing stands in for Prometheus: the gate, the recording rules and the alerts are judged
against what a real server scraped and evaluated. This module writes its config to a tmp dir,
keeps its TSDB there, changes scrape targets and rule files at run time through
`POST /-/reload`, and wraps the HTTP query API. Scrapes and rule evaluations take time, so
tests wait for an expected answer with `wait_for` instead of sleeping.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.processes import ManagedProcess, free_port, http_ok

RuleFile = str | Mapping[str, Any]


class PrometheusError(RuntimeError):
    """Prometheus refused a request (bad PromQL, bad config on reload, ...)."""

    def __init__(self, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        # Prometheus' own errorType, e.g. "bad_data" for PromQL that does not parse.
        self.error_type = error_type


@dataclass(frozen=True)
class ScrapeJob:
    """One `scrape_configs` entry with static targets such as `127.0.0.1:9100`."""

    name: str
    targets: Sequence[str]
    labels: Mapping[str, str] = field(default_factory=dict)
    metrics_path: str = "/metrics"
    scrape_interval: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a scrape job needs a name")
        if isinstance(self.targets, str):
            raise ValueError(
                f"targets must be a list of host:port, got the string {self.targets!r}"
            )
        for target in self.targets:
            if "://" in target or ":" not in target:
                raise ValueError(f"a target is host:port without a scheme, got {target!r}")

    def to_config(self, default_interval: str) -> dict[str, Any]:
        interval = self.scrape_interval or default_interval
        return {
            "job_name": self.name,
            "metrics_path": self.metrics_path,
            "scrape_interval": interval,
            # Prometheus rejects a timeout longer than the interval (the default timeout is 10s).
            "scrape_timeout": interval,
            "static_configs": [{"targets": list(self.targets), "labels": dict(self.labels)}],
        }


@dataclass(frozen=True)
class Sample:
    """One element of an instant query result (a vector element or a scalar)."""

    labels: dict[str, str]
    value: float
    timestamp: float


def parse_samples(data: Mapping[str, Any]) -> list[Sample]:
    """Samples of an instant query's `data` (resultType vector or scalar)."""
    kind = data.get("resultType")
    if kind == "scalar":
        timestamp, value = data["result"]
        return [Sample({}, float(value), float(timestamp))]
    if kind == "vector":
        return [
            Sample(dict(item["metric"]), float(item["value"][1]), float(item["value"][0]))
            for item in data["result"]
        ]
    raise PrometheusError(f"expected a vector or scalar result, got {kind!r}")


def _timestamp(value: float | datetime) -> str:
    return str(value.timestamp() if isinstance(value, datetime) else value)


class PrometheusServer:
    """One prometheus process with its config, rules and TSDB under `workdir`."""

    def __init__(
        self,
        workdir: Path,
        *,
        binary: str = "prometheus",
        jobs: Sequence[ScrapeJob] = (),
        rule_files: Mapping[str, RuleFile] | None = None,
        alertmanagers: Sequence[str] = (),
        scrape_interval: str = "1s",
        evaluation_interval: str | None = None,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        name: str = "prometheus",
    ) -> None:
        self.name = name
        self.binary = binary
        self.workdir = workdir
        self.config_path = workdir / f"{name}.yml"
        self.rules_dir = workdir / f"{name}-rules"
        self.data_dir = workdir / f"{name}-data"
        self.port = port if port is not None else free_port()
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval or scrape_interval
        self.jobs: list[ScrapeJob] = list(jobs)
        self.rule_files: dict[str, RuleFile] = dict(rule_files or {})
        self.alertmanagers = list(alertmanagers)
        self.extra_args = list(extra_args)
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- config ---------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "rule_files": [str(self.rules_dir / name) for name in sorted(self.rule_files)],
            "scrape_configs": [job.to_config(self.scrape_interval) for job in self.jobs],
        }
        if self.alertmanagers:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": list(self.alertmanagers)}]}]
            }
        return config

    def _write_config(self) -> None:
        self.rules_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.rules_dir.iterdir():
            if stale.name not in self.rule_files:
                stale.unlink()
        for name, rules in self.rule_files.items():
            if "/" in name or not name.endswith((".yml", ".yaml")):
                raise ValueError(f"rule file names are plain *.yml names, got {name!r}")
            text = rules if isinstance(rules, str) else json.dumps(rules, indent=2)
            (self.rules_dir / name).write_text(text)
        # JSON is valid YAML, so the config needs no YAML library.
        self.config_path.write_text(json.dumps(self.config(), indent=2))

    def configure(
        self,
        *,
        jobs: Sequence[ScrapeJob] | None = None,
        rule_files: Mapping[str, RuleFile] | None = None,
        alertmanagers: Sequence[str] | None = None,
    ) -> None:
        """Replace the given parts of the config; a running server reloads it at once."""
        if jobs is not None:
            self.jobs = list(jobs)
        if rule_files is not None:
            self.rule_files = dict(rule_files)
        if alertmanagers is not None:
            self.alertmanagers = list(alertmanagers)
        self._write_config()
        if self.is_running:
            self.reload()

    def set_targets(self, *jobs: ScrapeJob) -> None:
        self.configure(jobs=jobs)

    def reload(self) -> None:
        """POST /-/reload; Prometheus answers only after it applied (or rejected) the config."""
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30):
                return
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()
            raise PrometheusError(
                f"Prometheus rejected its new config ({exc.code}): {detail}\n"
                f"config: {self.config_path}\nlast log lines:\n{self.log_tail()}"
            ) from exc

    # -- lifecycle ------------------------------------------------------------------------------

    def argv(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            *self.extra_args,
        ]

    @property
    def is_running(self) -> bool:
        proc = self._process.proc if self._process is not None else None
        return proc is not None and proc.poll() is None

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        if self.is_running:
            raise RuntimeError(f"{self.name} is already running on port {self.port}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        process = ManagedProcess(self.name, self.argv(), log_dir=self.workdir, cwd=self.workdir)
        self._process = process
        process.start()
        process.wait_ready(lambda: http_ok(f"{self.url}/-/ready"), timeout=timeout)
        return self

    def stop(self, grace: float = 10.0) -> int | None:
        if self._process is None:
            return None
        return self._process.stop(grace=grace)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        return self._process.log_tail(lines) if self._process is not None else "(not started)"

    def log_tails(self, lines: int = 40) -> list[tuple[str, str]]:
        return [(self.name, self.log_tail(lines))] if self._process is not None else []

    # -- HTTP API -------------------------------------------------------------------------------

    def api(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET (or POST with form params) an /api/v1 endpoint; returns its `data`."""
        url = f"{self.url}/api/v1/{path.lstrip('/')}"
        body = urllib.parse.urlencode(params).encode() if params else None
        request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                payload = json.load(response)
        except urllib.error.HTTPError as exc:
            raw = exc.read().decode(errors="replace")
            try:
                error = json.loads(raw)
            except ValueError:
                error = {"error": raw.strip()}
            raise PrometheusError(
                f"{path} {dict(params or {})} failed ({exc.code}):"
                f" {error.get('errorType')}: {error.get('error')}",
                error.get("errorType"),
            ) from exc
        if payload.get("status") != "success":
            raise PrometheusError(f"{path} failed: {payload}")
        return payload["data"]

    def query(self, promql: str, at: float | datetime | None = None) -> dict[str, Any]:
        """Instant query; returns `data` ({"resultType", "result"})."""
        params = {"query": promql}
        if at is not None:
            params["time"] = _timestamp(at)
        data: dict[str, Any] = self.api("query", params)
        return data

    def samples(self, promql: str, at: float | datetime | None = None) -> list[Sample]:
        return parse_samples(self.query(promql, at))

    def query_range(
        self, promql: str, start: float | datetime, end: float | datetime, step: float | str
    ) -> list[dict[str, Any]]:
        """Range query; returns the matrix (`[{"metric": {...}, "values": [[t, "v"], ...]}]`)."""
        data = self.api(
            "query_range",
            {
                "query": promql,
                "start": _timestamp(start),
                "end": _timestamp(end),
                "step": str(step),
            },
        )
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[Sample]], bool] = bool,
        timeout: float = 15.0,
        interval: float = 0.2,
    ) -> list[Sample]:
        """Poll an instant query until `predicate(samples)` holds (by default: any sample)."""
        deadline = time.monotonic() + timeout
        last: list[Sample] | str = "(no answer yet)"
        while True:
            try:
                samples = self.samples(promql)
            except PrometheusError as exc:
                if exc.error_type == "bad_data":
                    raise  # a PromQL syntax error will not fix itself by waiting
                last = str(exc)
            else:
                if predicate(samples):
                    return samples
                last = samples
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{promql!r} did not satisfy the predicate within {timeout}s; last answer:"
                    f" {last}\ntargets: {self.targets()}\nlast log lines:\n{self.log_tail()}"
                )
            time.sleep(interval)

    def targets(self) -> list[dict[str, Any]]:
        """Active targets with their `health` ('up', 'down', 'unknown') and `lastError`."""
        data = self.api("targets", None)
        active: list[dict[str, Any]] = data["activeTargets"]
        return active

    def wait_for_targets_up(self, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Wait until every configured target was scraped successfully at least once."""
        expected = sum(len(job.targets) for job in self.jobs)
        deadline = time.monotonic() + timeout
        while True:
            active = self.targets()
            if len(active) == expected and all(t["health"] == "up" for t in active):
                return active
            if time.monotonic() >= deadline:
                summary = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in active]
                raise AssertionError(
                    f"expected {expected} targets up within {timeout}s, got {summary}"
                )
            time.sleep(0.2)

    def rules(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self.api("rules", None)["groups"]
        return groups

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.api("alerts", None)["alerts"]
        return alerts


__all__ = [
    "PrometheusError",
    "PrometheusServer",
    "RuleFile",
    "Sample",
    "ScrapeJob",
    "parse_samples",
]
