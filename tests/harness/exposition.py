"""Reading a /metrics page in tests: one sum over matching samples, one settled scrape."""

from __future__ import annotations

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def sample_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def settled_metrics(url: str, timeout: float = 10.0) -> str:
    """The /metrics text once no request is in flight.

    A client has its answer a moment before the server has counted it (the counting happens
    after the last byte is sent), so a scrape right after the last answer may miss it. The
    middleware counts a request before it leaves `http_requests_in_flight`, so a scrape that
    sees nothing in flight has every answered request counted.
    """
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(url, timeout=5) as response:  # loopback
            text: str = response.read().decode()
        in_flight = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("http_requests_in_flight")
        )
        if in_flight == 0:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{in_flight:g} request(s) still in flight after {timeout}s")
        time.sleep(0.05)
