"""The demo's service under test: a shop API that survives its inventory dependency stalling.

Run it as ``python -m gameday.demo.shop_api --port P --inventory-url URL [--pidfile F]``. On 127.0.0.1 it serves:

- ``GET /products``: the inventory's ``/items`` (200 ms timeout) through a circuit breaker, as
  ``{"source": "live"|"cache", "fetched_at": ..., "products": [...]}``. A failed call, or any call the
  open breaker refuses, is answered from the last good response; with nothing cached, 503.
- ``GET /health``: always 200, ``{"status": "ok"|"degraded", "level": 0|1|2, "breaker": ..., "source": ...}``.
  Level 0: breaker closed, serving live. Level 1: breaker open or half-open, serving the cache.
  Level 2: breaker not closed and nothing cached (``source`` is then ``"none"``; /products answers 503).

The breaker: closed → open after 2 consecutive failures; open answers from the cache at once; 1 s later
the next request (or health check, so recovery does not wait for traffic) is the one half-open trial;
its success closes the breaker, its failure opens it for another second.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from http.client import HTTPException
from pathlib import Path
from typing import cast

from gameday.demo.inventory import QuietHandler, QuietServer, serve_until_terminated

INVENTORY_TIMEOUT_S = 0.2
FAILURES_TO_OPEN = 2
RETRY_AFTER_S = 1.0
FETCH_ERRORS = (OSError, HTTPException, ValueError)
"""Everything a failed inventory call raises: refused, timed out, cut off, not 200, not a JSON list."""

# Loopback only: an HTTP(S)_PROXY in the environment must not sit between the API and its dependency.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Counts consecutive failures of the dependency and decides whether the next call may go out."""

    def __init__(self, failures_to_open: int = FAILURES_TO_OPEN, retry_after_s: float = RETRY_AFTER_S) -> None:
        self.failures_to_open = failures_to_open
        self.retry_after_s = retry_after_s
        self.state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._lock = threading.Lock()

    @property
    def trial_due(self) -> bool:
        """Open, and long enough ago that a half-open trial may go out."""
        with self._lock:
            return self.state is BreakerState.OPEN and time.monotonic() - self._opened_at >= self.retry_after_s

    def allow(self) -> bool:
        """Whether this caller may call the dependency now; in half-open, exactly one caller may."""
        with self._lock:
            if self.state is BreakerState.CLOSED:
                return True
            if self.state is BreakerState.OPEN and time.monotonic() - self._opened_at >= self.retry_after_s:
                self.state = BreakerState.HALF_OPEN
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self.state = BreakerState.CLOSED
            self._failures = 0

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self.state is BreakerState.HALF_OPEN or self._failures >= self.failures_to_open:
                self.state = BreakerState.OPEN
                self._opened_at = time.monotonic()


@dataclass(frozen=True)
class Snapshot:
    """One good answer from the inventory, kept as the cache."""

    products: list[object]
    fetched_at: str
    """When the inventory produced it, ISO 8601 UTC."""


class Catalog:
    """The product list: live from the inventory while the breaker allows, else the last good snapshot."""

    def __init__(self, inventory_url: str, breaker: CircuitBreaker | None = None) -> None:
        self.items_url = inventory_url.rstrip("/") + "/items"
        self.breaker = breaker or CircuitBreaker()
        self._cache: Snapshot | None = None

    def _fetch(self) -> Snapshot:
        with _OPENER.open(self.items_url, timeout=INVENTORY_TIMEOUT_S) as response:
            products = json.loads(response.read())
        if not isinstance(products, list):
            raise ValueError("inventory /items did not return a JSON list")
        return Snapshot(products, datetime.now(UTC).isoformat(timespec="milliseconds"))

    def warm(self, within_s: float = 3.0) -> bool:
        """Fill the cache before serving, so the very first outage already has something to serve."""
        deadline = time.monotonic() + within_s
        while True:
            try:
                self._cache = self._fetch()
                return True
            except FETCH_ERRORS:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.1)

    def products(self) -> tuple[Snapshot, str] | None:
        """The product list and where it came from (``"live"`` or ``"cache"``), or ``None`` if there is none."""
        if self.breaker.allow():
            try:
                snapshot = self._fetch()
            except FETCH_ERRORS:
                self.breaker.record_failure()
            else:
                self.breaker.record_success()
                self._cache = snapshot
                return snapshot, "live"
        cached = self._cache
        return (cached, "cache") if cached is not None else None

    def health(self) -> dict[str, object]:
        """The ``/health`` body; runs the half-open trial itself when one is due."""
        if self.breaker.trial_due:
            self.products()
        state = self.breaker.state
        if state is BreakerState.CLOSED:
            level, source = 0, "live"
        elif self._cache is not None:
            level, source = 1, "cache"
        else:
            level, source = 2, "none"
        return {"status": "ok" if level == 0 else "degraded", "level": level, "breaker": state.value, "source": source}


class ShopServer(QuietServer):
    """The HTTP server, carrying the one :class:`Catalog` its handlers share."""

    def __init__(self, port: int, catalog: Catalog) -> None:
        super().__init__(("127.0.0.1", port), ShopHandler)
        self.catalog = catalog


class ShopHandler(QuietHandler):
    """``GET /products`` and ``GET /health``; anything else is a 404."""

    def do_GET(self) -> None:
        catalog = cast(ShopServer, self.server).catalog
        if self.path == "/products":
            result = catalog.products()
            if result is None:
                self.send_json(503, {"error": "inventory unavailable and nothing cached", "source": "none"})
            else:
                snapshot, source = result
                self.send_json(
                    200, {"source": source, "fetched_at": snapshot.fetched_at, "products": snapshot.products}
                )
        elif self.path == "/health":
            self.send_json(200, catalog.health())
        else:
            self.send_json(404, {"error": f"no such path: {self.path}"})


def main(argv: list[str] | None = None) -> None:
    """Parse the options, warm the cache, bind 127.0.0.1 and serve until terminated."""
    parser = argparse.ArgumentParser(prog="python -m gameday.demo.shop_api", description="The gameday demo's shop API.")
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument("--inventory-url", required=True, help="base URL of the inventory, e.g. http://127.0.0.1:8001")
    parser.add_argument("--pidfile", type=Path, default=None, help="file that holds this process's pid")
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the starting process dies")
    args = parser.parse_args(argv)
    catalog = Catalog(args.inventory_url)
    if not catalog.warm():
        print(f"shop_api: inventory at {args.inventory_url} unreachable; starting with an empty cache", file=sys.stderr)
    serve_until_terminated(ShopServer(args.port, catalog), args.pidfile, exit_with_parent=args.exit_with_parent)


if __name__ == "__main__":
    main()
