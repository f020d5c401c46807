"""Structured logging: one JSON object per line for machines, readable lines for people.

Reusable by any service: `configure_logging(level="info", fmt="auto")`. Keys that look
like credentials are masked before rendering, as a second line of defence behind code
that never logs secrets in the first place.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

LogFormat = Literal["auto", "json", "console"]

_SENSITIVE = ("authorization", "api_key", "apikey", "password", "secret", "token", "cookie")
MASK = "[redacted]"


def _is_sensitive(key: str) -> bool:
    lowered = key.lower()
    # Token *counts* (prompt_tokens, max_tokens...) are data, not credentials.
    if lowered.endswith(("_tokens", "tokens")) or lowered.startswith("token_"):
        return False
    return any(marker in lowered for marker in _SENSITIVE)


def mask_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask values whose key names a credential."""
    for key in list(event):
        if _is_sensitive(key):
            event[key] = MASK
    return event


def configure_logging(level: str = "info", fmt: LogFormat = "auto") -> None:
    """Route structlog and the standard library (Hypercorn, Quart) through one renderer."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_secrets,
    ]
    structlog.configure(
        processors=[
            # First: a line below the level is dropped before any processor runs for it.
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
