"""genesis: a metric-gated delivery pipeline for async Python services."""

__version__ = "0.1.0"

__all__ = ["__version__"]
