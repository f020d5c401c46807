"""GenAI client instruments after the OpenTelemetry GenAI semantic conventions."""

from __future__ import annotations

import time
from types import TracebackType

from prometheus_client import Histogram

from genesis.observability._instruments import Children, Instruments


class _GenAIChildren:
    """The GenAI families' children, shared by every operation of one `GenAIMetrics`."""

    def __init__(self, instruments: Instruments) -> None:
        self.duration: Children[Histogram] = Children(instruments.genai_duration)
        self.tokens: Children[Histogram] = Children(instruments.genai_tokens)
        self.first_chunk: Children[Histogram] = Children(instruments.genai_first_chunk)


class GenAIOperation:
    """One provider call, measured from `async with` entry to exit.

    Duration is always recorded, with `error_type` set when the block raised or `fail()` was
    called (empty otherwise, which PromQL treats as absent). Time to first chunk is recorded
    on the first `first_chunk()` call only, so a streaming loop can call it for every chunk.
    """

    def __init__(
        self, children: _GenAIChildren, *, operation: str, provider: str, model: str, track: str
    ) -> None:
        for name, value in (("operation", operation), ("provider", provider), ("model", model)):
            if not value:
                raise ValueError(f"GenAI {name} must be a non-empty string")
        self._children = children
        # Positional, in GENAI_LABELS order.
        self._labels = (operation, provider, model, track)
        self._started = 0.0
        self._first_chunk_seen = False
        self._error_type = ""

    async def __aenter__(self) -> GenAIOperation:
        self._started = time.perf_counter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and not self._error_type:
            # The class name is low-cardinality and names the failure (APITimeoutError, ...).
            self._error_type = exc_type.__qualname__
        self._children.duration(*self._labels, self._error_type).observe(
            time.perf_counter() - self._started
        )

    def first_chunk(self) -> None:
        """Mark that a streamed chunk arrived; only the first call is recorded."""
        if self._first_chunk_seen:
            return
        self._first_chunk_seen = True
        self._children.first_chunk(*self._labels).observe(time.perf_counter() - self._started)

    def usage(self, *, input_tokens: int | None = None, output_tokens: int | None = None) -> None:
        """Record the token counts the provider reported; unknown counts are left out."""
        for token_type, count in (("input", input_tokens), ("output", output_tokens)):
            if count is None:
                continue
            if count < 0:
                raise ValueError(f"{token_type} token count must be >= 0, got {count}")
            self._children.tokens(*self._labels, token_type).observe(count)

    def fail(self, error_type: str) -> None:
        """Mark the operation failed without raising (e.g. a refusal answered as data)."""
        if not error_type:
            raise ValueError("error_type must be a non-empty string")
        self._error_type = error_type


class GenAIMetrics:
    """Factory for `GenAIOperation`s bound to one registry and track."""

    def __init__(self, instruments: Instruments, track: str) -> None:
        self._children = _GenAIChildren(instruments)
        self._track = track

    def operation(self, *, operation: str, provider: str, model: str) -> GenAIOperation:
        """Measure one call: `async with metrics.genai.operation(...) as op:`.

        `model` must be the model the service resolved, never raw client input, or clients
        could create series at will.
        """
        return GenAIOperation(
            self._children,
            operation=operation,
            provider=provider,
            model=model,
            track=self._track,
        )
