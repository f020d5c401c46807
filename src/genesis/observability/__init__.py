"""Reusable observability for Quart services: RED, GenAI and service metrics, /metrics serving
(also across Hypercorn workers) and monitoring assets (rules, alerts, dashboards).

Two lines instrument any Quart app::

    from genesis.observability import Metrics
    metrics = Metrics(app, track="stable", version="1.0.0", revision="abc123")
"""

from genesis.observability._exposition import (
    MetricsServer,
    mark_worker_dead,
    prepare_multiprocess_dir,
    scrape_registry,
    start_metrics_server,
)
from genesis.observability._extension import TRACKS, Metrics
from genesis.observability._genai import GenAIMetrics, GenAIOperation
from genesis.observability._http import UNMATCHED_ROUTE
from genesis.observability._service import CircuitState, JobOutcome, KeysReload, ServiceMetrics
from genesis.observability.assets import compose_file, monitoring_dir

__all__ = [
    "TRACKS",
    "UNMATCHED_ROUTE",
    "CircuitState",
    "GenAIMetrics",
    "GenAIOperation",
    "JobOutcome",
    "KeysReload",
    "Metrics",
    "MetricsServer",
    "ServiceMetrics",
    "compose_file",
    "mark_worker_dead",
    "monitoring_dir",
    "prepare_multiprocess_dir",
    "scrape_registry",
    "start_metrics_server",
]
