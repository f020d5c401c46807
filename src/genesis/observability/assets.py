"""Where the monitoring assets shipped with the package live (a view on genesis.assets)."""

from __future__ import annotations

from pathlib import Path

from genesis.assets import asset_path


def monitoring_dir() -> Path:
    """Folder with prometheus/, alertmanager/ and dashboards/ (scrape config, rules, alerts,
    rule tests, Alertmanager config and templates, Grafana dashboards)."""
    return asset_path("monitoring")
