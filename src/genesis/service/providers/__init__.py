"""Model providers behind one small interface (`Provider`)."""

from __future__ import annotations

from genesis.observability import ServiceMetrics
from genesis.service.providers.base import Provider
from genesis.service.providers.offline import OfflineProvider
from genesis.service.settings import Settings

__all__ = ["OfflineProvider", "Provider", "build_provider"]


def build_provider(settings: Settings, metrics: ServiceMetrics | None = None) -> Provider:
    if settings.provider == "openai":
        # The SDK takes seconds to import; the embedded default never pays for it.
        from genesis.service.providers.openai import OpenAIProvider

        return OpenAIProvider(settings, metrics)
    return OfflineProvider(settings.served_model)
