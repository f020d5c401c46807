"""The API keys in use, re-read when the keys file changes: rotate keys without a restart.

Kubernetes updates a mounted Secret by swapping a symlink, editors replace the file or write it
in place; each changes the inode, size or mtime that one `stat` per interval compares. A new
file that does not parse, or holds no keys, is refused whole: the service keeps the keys it has
and logs why (the error names a line, never its content), so a bad edit locks nobody out.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import structlog

from genesis.observability import KeysReload, ServiceMetrics
from genesis.service.keys import KeyRing, KeysFileError

log = structlog.get_logger("genesis.service")

# What identifies one version of the file: (device, inode, size, mtime in ns); None if absent.
Signature = tuple[int, int, int, int] | None


def _signature(path: Path) -> Signature:
    try:
        stat = os.stat(path)  # follows the symlink a Secret mount swaps
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


class LiveKeyRing:
    """The accepted keys (`.ring`), swapped whole when `refresh()` finds a good new file."""

    def __init__(
        self,
        ring: KeyRing,
        path: Path,
        metrics: ServiceMetrics,
        *,
        per_key_limits_enforced: bool,
    ) -> None:
        self.ring = ring
        self._path = path
        self._metrics = metrics
        # Without a rate limiter (none was needed at start-up), new rpm=/tpm= options wait.
        self._per_key_limits_enforced = per_key_limits_enforced
        self._seen = _signature(path)

    def refresh(self) -> bool:
        """Re-read the file if it changed since the last look; True if new keys now apply."""
        seen = _signature(self._path)
        if seen == self._seen:
            return False
        # Remembered even when the new version is refused: it is reported once, not per look.
        self._seen = seen
        try:
            ring = KeyRing.load(self._path)
            if not ring.keys:
                raise KeysFileError(f"{self._path} holds no keys")
        except KeysFileError as error:
            log.error(
                "api keys file refused; the previous keys stay in use",
                error=str(error),
                keys=len(self.ring),
            )
            self._metrics.keys_reload(KeysReload.REFUSED)
            return False
        before = {key.name for key in self.ring.keys}
        after = {key.name for key in ring.keys}
        self.ring = ring
        self._metrics.keys_reload(KeysReload.APPLIED)
        log.info(
            "api keys reloaded",
            keys=len(ring),
            added=sorted(after - before),
            removed=sorted(before - after),
        )
        if not self._per_key_limits_enforced and any(key.rpm or key.tpm for key in ring.keys):
            log.warning(
                "per-key rpm=/tpm= limits apply after a restart: this instance started "
                "without a rate limiter"
            )
        return True

    async def watch(self, interval_seconds: float) -> None:
        """Refresh every `interval_seconds` until cancelled (the app's shutdown does that)."""
        while True:
            await asyncio.sleep(interval_seconds)
            self.refresh()
