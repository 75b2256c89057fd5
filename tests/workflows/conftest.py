"""Real parts most drill tests need: a results database of their own and a loopback HTTP service process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gameday.activities.store import Store
from tests.harness import HttpService


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A fresh SQLite results database in the test's directory."""
    return Store(f"sqlite:///{tmp_path / 'results.db'}")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[HttpService]:
    """An HTTP server in its own process (so a fault can pause it), stopped and never left paused."""
    svc = HttpService.start(tmp_path)
    yield svc
    svc.stop()
