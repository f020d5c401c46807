"""Fixtures of the image tests: the image, built by genesis.pipeline.build, and containers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.kube.images import podman
from harness.processes import free_port
from image.genesis_image import BuiltImage, Container, ContainerFactory, build_test_image


@pytest.fixture(scope="session")
def genesis_image() -> BuiltImage:
    return build_test_image()


@pytest.fixture
def run_container(genesis_image: BuiltImage) -> Iterator[ContainerFactory]:
    """`run_container("--read-only", env={...})` starts the image, published on 127.0.0.1."""
    started: list[str] = []

    def start(*options: str, env: dict[str, str] | None = None) -> Container:
        port = free_port()
        name = f"genesis-image-test-{port}"
        # No API keys file in these containers: authentication off (the image's env is dev).
        settings = {"GENESIS_AUTH": "off", **(env or {})}
        env_args = [arg for key, value in settings.items() for arg in ("-e", f"{key}={value}")]
        podman(
            "run",
            "--detach",
            "--name",
            name,
            "--publish",
            f"127.0.0.1:{port}:8000",
            *env_args,
            *options,
            genesis_image.ref,
        )
        started.append(name)
        return Container(name, port)

    yield start
    for name in started:
        podman("rm", "--force", "--time", "0", name, check=False)
