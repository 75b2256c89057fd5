"""Docker fixtures for the activity tests (see ``tests/docker_support.py``): one engine and image per session.
PostgreSQL fixtures (see ``tests/pg_support.py``): one server per session, one empty database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.docker_support import Containers, Engine, build_image, engine
from tests.pg_support import PostgresServer


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session; fail in CI / skip elsewhere if Debian's postgresql is missing."""
    server = PostgresServer.create()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database (no tables, no migrations); the server is running again at teardown."""
    yield postgres_server.create_database()
    if not postgres_server.running():  # a test that stopped it and failed before starting it again
        postgres_server.start()
