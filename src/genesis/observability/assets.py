"""Where the monitoring assets shipped with the package live (a view on genesis.assets)."""

from __future__ import annotations

from pathlib import Path

from genesis.assets import asset_path


def monitoring_dir() -> Path:
    """Folder with prometheus/, alertmanager/ and dashboards/ (scrape config, rules, alerts,
    rule tests, Alertmanager config and templates, Grafana dashboards)."""
    return asset_path("monitoring")


def compose_file() -> Path:
    """The compose file of the monitoring stack (Prometheus, Alertmanager, Grafana), which
    mounts the other monitoring assets from their places next to it."""
    return monitoring_dir() / "compose" / "compose.yaml"
