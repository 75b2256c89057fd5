"""Docker fixtures for the activity tests (see ``tests/docker_support.py``): one engine and image per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.docker_support import Containers, Engine, build_image, engine


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Engine]:
    """The Docker engine: running already, or started for this session; fail in CI / skip elsewhere if neither."""
    yield from engine()


@pytest.fixture(scope="session")
def docker_image(docker_engine: Engine) -> str:
    return build_image(docker_engine.client)


@pytest.fixture
def containers(docker_engine: Engine, docker_image: str) -> Iterator[Containers]:
    """Test containers of the busybox image; all removed at teardown, whatever the test did to them."""
    made = Containers(docker_engine.client, docker_image)
    try:
        yield made
    finally:
        made.cleanup()
