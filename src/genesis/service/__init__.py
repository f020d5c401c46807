"""The OpenAI-compatible chat service: app factory, settings, providers, health."""

from genesis.service.app import create_app
from genesis.service.settings import Settings, load_settings

__all__ = ["Settings", "create_app", "load_settings"]
