"""A tiny loopback service whose health a drill's ``command`` fault flips through files (issue 15's watch tests).

``fault`` present (the fault's ``run`` touches it): the breaker is ``CLOSED`` for :data:`OPENS_AFTER`, then
``OPEN``; ``degraded`` turns true :data:`DEGRADES_AFTER` after the file's time (the detection's truth, read from
``fault_at``). The revert removes ``fault`` and touches ``recovered``: ``HALF_OPEN`` for :data:`HALF_OPEN_FOR`, then
``CLOSED``. ``/health`` answers ``{"breaker": {"state": ...}, "degraded": ...}``; ``/metrics`` the gauge
``service_degraded`` in Prometheus text format (0 or 1), for the alert tests (``tests/alerting.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.loopback import serve_loopback

OPENS_AFTER = 0.3
DEGRADES_AFTER = 0.5
HALF_OPEN_FOR = 0.3


@dataclass(frozen=True)
class WatchedService:
    url: str
    """Base URL, ``http://127.0.0.1:PORT``."""
    directory: Path

    @property
    def health(self) -> str:
        return f"{self.url}/health"

    def fault_commands(self) -> tuple[str, str]:
        """``(run, revert)`` of the command fault that breaks and repairs the service."""
        d = self.directory
        return (
            f"date +%s.%N > {d}/fault_at && touch {d}/fault && rm -f {d}/recovered",
            f"rm -f {d}/fault && touch {d}/recovered",
        )

    def fault_at(self) -> float:
        """When the last fault was applied (epoch seconds), as its command wrote it."""
        return float((self.directory / "fault_at").read_text())


def state(directory: Path, now: float) -> dict[str, object]:
    fault, recovered = directory / "fault", directory / "recovered"
    if fault.exists():
        since = float((directory / "fault_at").read_text() or now) if (directory / "fault_at").exists() else now
        age = now - since
        return {"breaker": {"state": "OPEN" if age >= OPENS_AFTER else "CLOSED"}, "degraded": age >= DEGRADES_AFTER}
    if recovered.exists() and now - recovered.stat().st_mtime < HALF_OPEN_FOR:
        return {"breaker": {"state": "HALF_OPEN"}, "degraded": False}
    return {"breaker": {"state": "CLOSED"}, "degraded": False}


@contextmanager
def watched_service(directory: Path) -> Iterator[WatchedService]:
    """Serve on a free loopback port until the block ends."""

    def answer(path: str) -> tuple[bytes, str]:
        health = state(directory, time.time())
        if path.startswith("/metrics"):
            return (
                f"# TYPE service_degraded gauge\nservice_degraded {int(bool(health['degraded']))}\n".encode(),
                "text/plain; version=0.0.4",
            )
        return json.dumps(health).encode(), "application/json"

    with serve_loopback(answer, "watched-service") as url:
        yield WatchedService(url, directory)
