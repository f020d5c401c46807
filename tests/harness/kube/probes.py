"""First contact with a Service that may have no endpoints yet, from source ports no one else uses.

Why: a SYN to a NodePort that kube-proxy does not yet route (no ready endpoints, or its next
sync still pending) is REJECTed in the INPUT chain, after conntrack has confirmed it. That
leaves an un-NATed SYN_SENT entry on the node for 120 s (nf_conntrack_tcp_timeout_syn_sent),
and kube-proxy clears stale entries for UDP only. A later connection that reuses the same
source port follows the stale entry to the bare NodePort, where nothing listens, and is
refused (kubernetes/kubernetes#48719, #101607). A load test opening ~150 connections a second
wraps the kernel's ephemeral ports in well under 120 s, so each refused readiness probe could
cost one load request: the one-in-ten "Connection refused" the chart's rollout test once had.

So probes come from ports below the ephemeral range: their stale entries never meet a port the
kernel hands to any other client, and a rollout's load measures the rollout, not its own setup.
"""

from __future__ import annotations

import errno
import http.client
import itertools
import time
from pathlib import Path
from urllib.parse import urlsplit

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
POOL_SIZE = 4_000
# Where the pool would start if /proc did not say (Linux's default range starts at 32768).
DEFAULT_EPHEMERAL_LOW = 32_768


class ProbeError(OSError):
    """No answer yet: refused, reset, timed out, or no free source port in the pool."""


def _pool() -> itertools.cycle[int]:
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = DEFAULT_EPHEMERAL_LOW
    start = max(1_024, low - POOL_SIZE)
    return itertools.cycle(range(start, low))


# One cycle per test process: consecutive probes never reuse a port within POOL_SIZE probes.
_PORTS = _pool()


def probe(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET `url` on a new connection from a pool port; (status, body) of whatever answered."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"probe takes an http:// URL with a host, not {url!r}")
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    for _ in range(50):
        connection = http.client.HTTPConnection(
            parts.hostname, parts.port or 80, timeout=timeout, source_address=("", next(_PORTS))
        )
        try:
            connection.request("GET", path)
            answer = connection.getresponse()
            return answer.status, answer.read()
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                continue  # another socket holds this pool port: take the next one
            raise ProbeError(error.errno, f"{url}: {error}") from error
        except http.client.HTTPException as error:
            raise ProbeError(errno.EPROTO, f"{url}: {error!r}") from error
        finally:
            connection.close()
    raise ProbeError(errno.EADDRINUSE, f"{url}: every probe source port tried was in use")


def wait_until_ok(url: str, timeout: float = 60.0, interval: float = 0.3) -> bytes:
    """The body of the first 200 answer of `url`; AssertionError with the last failure if none."""
    deadline = time.monotonic() + timeout
    last = "nothing answered"
    while True:
        try:
            status, body = probe(url)
            if status == 200:
                return body
            last = f"HTTP {status}"
        except ProbeError as error:
            last = str(error)
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never answered 200 within {timeout:.0f} s: {last}")
        time.sleep(interval)
