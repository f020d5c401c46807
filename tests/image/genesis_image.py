"""The genesis image as the tests build it: `nox -s build`'s own code on a local Debian base.

No registry is reachable on these machines, so the base is made once with debootstrap
(`localhost/genesis-base:bookworm`, found by name afterwards) instead of pulling
python:3.12-slim. The image is built once per session and shared by tests/image and
tests/chart (which loads it into the test cluster).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from genesis.pipeline.build import (
    BuildOptions,
    BuildResult,
    build,
    ensure_debian_base,
    image_exists,
)
from harness.kube.images import podman, podman_env

ROOT = Path(__file__).resolve().parents[2]
TEST_REPOSITORY = "localhost/genesis"
TEST_TAG = "test"

_lock = threading.Lock()
# The one image of the session (a dict, so no `global` statement is needed to fill it).
_built: dict[str, BuiltImage] = {}


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    result: BuildResult


def require_image_tools() -> None:
    if shutil.which("podman") is None:
        pytest.skip("podman not found: install the Debian packages 'podman runc'")
    if not image_exists("podman", "localhost/genesis-base:bookworm", podman_env()) and (
        shutil.which("debootstrap") is None
    ):
        pytest.skip("debootstrap not found (it makes the base image): install 'debootstrap'")


def build_test_image() -> BuiltImage:
    """Build (once per session) and return the image; skips when podman is missing."""
    require_image_tools()
    with _lock:
        if "image" not in _built:
            env = podman_env()
            base = ensure_debian_base(env=env)
            result = build(
                BuildOptions(
                    root=ROOT,
                    image=TEST_REPOSITORY,
                    base_image=base,
                    engine="podman",
                    extra_tags=[TEST_TAG],
                    environ=env,
                )
            )
            print(result.summary())
            _built["image"] = BuiltImage(f"{TEST_REPOSITORY}:{TEST_TAG}", result)
        return _built["image"]


@dataclass
class Container:
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.name, *command, check=False)

    def wait_ready(self, timeout: float = 15) -> float:
        """Seconds until /readyz answered 200."""
        started = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as answer:
                    if answer.status == 200:
                        return time.monotonic() - started
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() - started > timeout:
                logs = podman("logs", self.name, check=False)
                raise AssertionError(
                    f"/readyz did not answer within {timeout} s:\n{logs.stdout}{logs.stderr}"
                )
            time.sleep(0.1)


ContainerFactory = Callable[..., Container]
