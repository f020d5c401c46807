"""The prometheus-client internals genesis' scrape fast paths read are what they expect.

If one of these fails after upgrading prometheus-client, its private attributes or its
multi-process file layout changed: scrapes still work (they fall back to the public, slower
path and log why), but `_client_internals.py` must be brought up to date, or the fast paths
retired, before the upgrade ships.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from prometheus_client import Counter
from prometheus_client.registry import Collector

from genesis.observability import _client_internals, _text_format


def _fast(registry: Collector) -> bytes:
    return _text_format._render(registry, fast=True, strict=True)


def test_the_internals_are_what_the_fast_paths_read() -> None:
    assert _client_internals.fast_path_problem(_fast) is None
    assert _text_format.fast_path_enabled()


def test_the_probe_notices_a_renderer_that_drifted(monkeypatch: pytest.MonkeyPatch) -> None:
    def drifted(counter: object, output: list[str]) -> None:
        output.append("# HELP something else\n")

    renderers: dict[Any, Any] = _text_format._FAST_RENDERERS
    monkeypatch.setitem(renderers, cast(Any, Counter), drifted)
    problem = _client_internals.fast_path_problem(_fast)
    assert problem is not None
    assert "differs from generate_latest" in problem


def test_the_probe_notices_a_changed_file_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_client_internals, "_FIRST_ENTRY", 16)
    problem = _client_internals.fast_path_problem(_fast)
    assert problem is not None


def test_the_probe_notices_missing_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    def renamed(child: object) -> object:
        return child._renamed_value  # type: ignore[attr-defined]

    monkeypatch.setattr(_client_internals, "counter_parts", renamed)
    problem = _client_internals.fast_path_problem(_fast)
    assert problem is not None
    assert "_renamed_value" in problem
