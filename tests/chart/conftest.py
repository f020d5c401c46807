"""Chart tests: static ones render with real Helm; kube ones install on the test cluster."""

from __future__ import annotations

import pytest

from image.genesis_image import BuiltImage, build_test_image


@pytest.fixture(scope="session")
def genesis_image() -> BuiltImage:
    return build_test_image()
