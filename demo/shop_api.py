"""The demo's service under test: a shop API that survives its inventory dependency stalling.

Run it as ``python -m gameday.demo.shop_api --port P --inventory-url URL [--pidfile F] [--orders-db FILE]``.
On 127.0.0.1 it serves:

- ``GET /products``: the inventory's ``/items`` (200 ms timeout) through a circuit breaker, as
  ``{"source": "live"|"cache", "fetched_at": ..., "products": [...]}``. A failed call, or any call the
  breaker refuses, is answered from the last good response (the cache fallback); with nothing cached, 503.
- ``GET /checkout`` (or ``POST``): the cart priced from the same product list, live or from the cache, as
  ``{"source": "live"|"cache", "items": n, "in_stock": n, ...}``; 503 with nothing cached.
- ``PUT /orders/ID`` (a JSON object body): stores the order in a SQLite file and answers 201 (new) or 200 (stored
  again) only once committed. A write needs the inventory (it checks stock there): while the inventory does not
  answer, the write waits for it, up to ``--order-wait`` (10 s), retrying; after that it answers 503 and nothing is
  stored. So a stalled dependency delays writes, and no acknowledged write is ever lost.
  ``GET /orders/ID``: 200 ``{"id": ..., "copies": n, "order": {...}, "stored_at": ...}`` (``copies``: how many
  writes stored it), or 404.
- ``GET /health``: always 200, ``{"status": "ok"|"degraded", "degraded": bool, "level": LEVEL, "breaker": {...},
  "source": ..., "dependency": {...}}``. ``level`` is ``optimal`` (breaker closed, serving live), ``degraded``
  (breaker open or half-open, serving the cache) or ``unavailable`` (not closed and nothing cached: /products and
  /checkout answer 503). ``breaker`` is ``{"state": "CLOSED"|"OPEN"|"HALF_OPEN", "failures": n, ...}``.
- ``GET /metrics``: Prometheus text exposition: ``shop_http_requests_total{method,path,status}``,
  ``shop_http_request_duration_seconds`` (a histogram by path), ``shop_dependency_up`` (1 while the last call to
  the inventory succeeded), ``shop_breaker_state`` (0 closed, 1 open, 2 half-open), ``shop_orders_stored_total``.

The breaker (each figure a flag or a ``GAMEDAY_DEMO_*`` environment variable, small by default so a drill sees the
whole cycle in seconds): CLOSED → OPEN after ``--breaker-failures`` (2) consecutive failed calls; OPEN answers
from the cache at once; after ``--breaker-cooldown`` (1 s) it is HALF_OPEN: one trial call goes out at a time, at
most one per ``--breaker-trial-interval`` (0.5 s), the rest served from the cache; ``--breaker-successes`` (2)
successful trials in a row close it, a failed one opens it again. A health check (or a metrics scrape) runs a due
trial itself, so recovery does not wait for traffic.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import re
import sqlite3
import sys
import tempfile
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
COOLDOWN_S = 1.0
TRIAL_INTERVAL_S = 0.5
SUCCESSES_TO_CLOSE = 2
ORDER_WAIT_S = 10.0
"""How long a write waits for the inventory before it gives up (503, nothing stored)."""
ORDER_RETRY_S = 0.1
MAX_BODY = 64 * 1024
"""Largest request body an order may have."""
FETCH_ERRORS = (OSError, HTTPException, ValueError)
"""Everything a failed inventory call raises: refused, timed out, cut off, not 200, not a JSON list."""
NOTHING_CACHED = {"error": "inventory unavailable and nothing cached", "source": "none"}
ORDER_ID = re.compile(r"^/orders/([A-Za-z0-9._-]{1,128})$")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the request-duration histogram, Prometheus' default buckets."""

# Loopback only: an HTTP(S)_PROXY in the environment must not sit between the API and its dependency.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BreakerState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


BREAKER_GAUGE = {BreakerState.CLOSED: 0, BreakerState.OPEN: 1, BreakerState.HALF_OPEN: 2}
"""``shop_breaker_state``'s value for each state."""


class CircuitBreaker:
    """Counts consecutive failures of the dependency and decides whether the next call may go out."""

    def __init__(
        self,
        failures_to_open: int = FAILURES_TO_OPEN,
        cooldown_s: float = COOLDOWN_S,
        trial_interval_s: float = TRIAL_INTERVAL_S,
        successes_to_close: int = SUCCESSES_TO_CLOSE,
    ) -> None:
        self.failures_to_open = failures_to_open
        self.cooldown_s = cooldown_s
        self.trial_interval_s = trial_interval_s
        self.successes_to_close = successes_to_close
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._successes = 0
        self._opened_at = 0.0
        self._last_trial = 0.0
        self._trial_out = False
        self._lock = threading.Lock()

    def _current(self) -> BreakerState:
        """The state now (lock held): OPEN turns HALF_OPEN once the cool-down has passed."""
        if self._state is BreakerState.OPEN and time.monotonic() - self._opened_at >= self.cooldown_s:
            self._state = BreakerState.HALF_OPEN
            self._successes = 0
        return self._state

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._current()

    @property
    def trial_due(self) -> bool:
        """Half-open, no trial out, and the last one long enough ago: a trial call may go out now."""
        with self._lock:
            return self._trial_allowed()

    def _trial_allowed(self) -> bool:
        return (
            self._current() is BreakerState.HALF_OPEN
            and not self._trial_out
            and time.monotonic() - self._last_trial >= self.trial_interval_s
        )

    def allow(self) -> bool:
        """Whether this caller may call the dependency now; in half-open, one trial at a time."""
        with self._lock:
            if self._current() is BreakerState.CLOSED:
                return True
            if self._trial_allowed():
                self._trial_out = True
                self._last_trial = time.monotonic()
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._trial_out = False
            self._failures = 0
            if self._current() is BreakerState.HALF_OPEN:
                self._successes += 1
                if self._successes >= self.successes_to_close:
                    self._state = BreakerState.CLOSED
            elif self._state is BreakerState.OPEN:
                pass  # a call let out before the breaker opened: it proves little, the cool-down stands
            else:
                self._state = BreakerState.CLOSED

    def record_failure(self) -> None:
        with self._lock:
            self._trial_out = False
            self._failures += 1
            state = self._current()
            if state is BreakerState.HALF_OPEN or (
                state is BreakerState.CLOSED and self._failures >= self.failures_to_open
            ):
                self._state = BreakerState.OPEN
                self._opened_at = time.monotonic()

    def describe(self) -> dict[str, object]:
        """The breaker as ``/health`` shows it."""
        with self._lock:
            state = self._current()
            return {
                "state": state.value,
                "failures": self._failures,
                "failures_to_open": self.failures_to_open,
                "cooldown_s": self.cooldown_s,
                "successes_to_close": self.successes_to_close,
                "half_open_successes": self._successes if state is BreakerState.HALF_OPEN else 0,
            }


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
        self.dependency_up = True
        """Whether the last call to the inventory succeeded (``shop_dependency_up``)."""
        self.last_dependency_error = ""

    def fetch(self) -> Snapshot:
        """One call to the inventory, outside the breaker; notes whether the dependency answered."""
        try:
            with _OPENER.open(self.items_url, timeout=INVENTORY_TIMEOUT_S) as response:
                products = json.loads(response.read())
            if not isinstance(products, list):
                raise ValueError("inventory /items did not return a JSON list")
        except FETCH_ERRORS as err:
            self.dependency_up = False
            self.last_dependency_error = f"{err.__class__.__name__}: {err}"[:200]
            raise
        self.dependency_up = True
        self.last_dependency_error = ""
        return Snapshot(products, datetime.now(UTC).isoformat(timespec="milliseconds"))

    def warm(self, within_s: float = 3.0) -> bool:
        """Fill the cache before serving, so the very first outage already has something to serve."""
        deadline = time.monotonic() + within_s
        while True:
            try:
                self._cache = self.fetch()
                return True
            except FETCH_ERRORS:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.1)

    def products(self) -> tuple[Snapshot, str] | None:
        """The product list and where it came from (``"live"`` or ``"cache"``), or ``None`` if there is none."""
        if self.breaker.allow():
            try:
                snapshot = self.fetch()
            except Exception:  # any failure counts, and frees a half-open trial slot
                self.breaker.record_failure()
            else:
                self.breaker.record_success()
                self._cache = snapshot
                return snapshot, "live"
        cached = self._cache
        return (cached, "cache") if cached is not None else None

    def run_due_trial(self) -> None:
        """Run the half-open trial when one is due, so a quiet service still closes its breaker."""
        if self.breaker.trial_due:
            self.products()

    def health(self) -> dict[str, object]:
        """The ``/health`` body; runs the half-open trial itself when one is due."""
        self.run_due_trial()
        breaker = self.breaker.describe()
        if breaker["state"] == BreakerState.CLOSED.value:
            level, source = "optimal", "live"
        elif self._cache is not None:
            level, source = "degraded", "cache"
        else:
            level, source = "unavailable", "none"
        return {
            "status": "ok" if level == "optimal" else "degraded",
            "degraded": level != "optimal",
            "level": level,
            "breaker": breaker,
            "source": source,
            "dependency": {"name": "inventory", "up": self.dependency_up, "error": self.last_dependency_error},
        }


class OrderUnavailable(RuntimeError):
    """The inventory did not answer within the order wait, or the orders database refused the write (locked by
    another process past the same wait, disk full…): the write was not stored."""


class Orders:
    """Orders in a SQLite file: a write is acknowledged only after its transaction committed (synchronous FULL).

    Every stored write is a row of ``order_writes``; ``copies`` of an order is how many rows it has (a retried
    PUT stores it again, visibly).
    """

    def __init__(self, path: Path, catalog: Catalog, wait_s: float = ORDER_WAIT_S) -> None:
        self.path = path
        self.catalog = catalog
        self.wait_s = wait_s
        self.stored = 0
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        # A write waits for the file's lock as long as for the inventory (sqlite's busy timeout), then is refused.
        self._db = sqlite3.connect(str(path), timeout=wait_s, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS order_writes (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, "
            "body TEXT NOT NULL, stored_at TEXT NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS order_writes_id ON order_writes (id)")

    def _check_stock(self) -> None:
        """Wait for the inventory to answer (retrying), at most ``wait_s``; it is the write's dependency."""
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                self.catalog.fetch()
                return
            except FETCH_ERRORS:
                if time.monotonic() >= deadline:
                    raise OrderUnavailable(f"inventory did not answer within {self.wait_s:g}s") from None
                time.sleep(ORDER_RETRY_S)

    def put(self, order_id: str, body: dict[str, object]) -> bool:
        """Store the order once the inventory answered; ``True`` if it is new. Raises :class:`OrderUnavailable`."""
        self._check_stock()
        stored_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as err:
                raise OrderUnavailable(f"the orders database refused the write: {err}") from None
            try:
                seen = self._db.execute("SELECT 1 FROM order_writes WHERE id = ? LIMIT 1", (order_id,)).fetchone()
                self._db.execute(
                    "INSERT INTO order_writes (id, body, stored_at) VALUES (?, ?, ?)",
                    (order_id, json.dumps(body), stored_at),
                )
                self._db.execute("COMMIT")
            except BaseException as err:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                if isinstance(err, sqlite3.Error):
                    raise OrderUnavailable(f"the orders database refused the write: {err}") from None
                raise
            self.stored += 1
        return seen is None

    def get(self, order_id: str) -> dict[str, object] | None:
        with self._lock:
            rows = self._db.execute(
                "SELECT body, stored_at FROM order_writes WHERE id = ? ORDER BY seq", (order_id,)
            ).fetchall()
        if not rows:
            return None
        body, stored_at = rows[-1]
        return {"id": order_id, "copies": len(rows), "order": json.loads(body), "stored_at": stored_at}


class Metrics:
    """Request counters and latency histograms, rendered in the Prometheus text exposition format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = {}
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (method, path, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            buckets = self._buckets.setdefault(path, [0] * len(LATENCY_BUCKETS))
            index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
            for i in range(index, len(LATENCY_BUCKETS)):
                buckets[i] += 1
            self._sums[path] = self._sums.get(path, 0.0) + seconds
            self._counts[path] = self._counts.get(path, 0) + 1

    def render(self, catalog: Catalog, orders: Orders) -> str:
        lines = [
            "# HELP shop_http_requests_total Requests answered, by method, path and status.",
            "# TYPE shop_http_requests_total counter",
        ]
        with self._lock:
            for (method, path, status), count in sorted(self._requests.items()):
                lines.append(f'shop_http_requests_total{{method="{method}",path="{path}",status="{status}"}} {count}')
            lines += [
                "# HELP shop_http_request_duration_seconds Time to answer a request, by path.",
                "# TYPE shop_http_request_duration_seconds histogram",
            ]
            for path, buckets in sorted(self._buckets.items()):
                for bound, count in zip(LATENCY_BUCKETS, buckets, strict=True):
                    lines.append(f'shop_http_request_duration_seconds_bucket{{path="{path}",le="{bound:g}"}} {count}')
                total = self._counts[path]
                lines.append(f'shop_http_request_duration_seconds_bucket{{path="{path}",le="+Inf"}} {total}')
                lines.append(f'shop_http_request_duration_seconds_sum{{path="{path}"}} {self._sums[path]:.6f}')
                lines.append(f'shop_http_request_duration_seconds_count{{path="{path}"}} {total}')
        lines += [
            "# HELP shop_dependency_up Whether the last call to the inventory succeeded (1) or failed (0).",
            "# TYPE shop_dependency_up gauge",
            f"shop_dependency_up {int(catalog.dependency_up)}",
            "# HELP shop_breaker_state The circuit breaker toward the inventory: 0 closed, 1 open, 2 half-open.",
            "# TYPE shop_breaker_state gauge",
            f"shop_breaker_state {BREAKER_GAUGE[catalog.breaker.state]}",
            "# HELP shop_orders_stored_total Order writes committed to the orders database.",
            "# TYPE shop_orders_stored_total counter",
            f"shop_orders_stored_total {orders.stored}",
        ]
        return "\n".join(lines) + "\n"


class ShopServer(QuietServer):
    """The HTTP server, carrying the :class:`Catalog`, :class:`Orders` and :class:`Metrics` its handlers share."""

    def __init__(self, port: int, catalog: Catalog, orders: Orders) -> None:
        super().__init__(("127.0.0.1", port), ShopHandler)
        self.catalog = catalog
        self.orders = orders
        self.metrics = Metrics()


class ShopHandler(QuietHandler):
    """``/products``, ``/checkout``, ``/orders/ID``, ``/health`` and ``/metrics``; anything else is a 404."""

    def _shop(self) -> ShopServer:
        return cast(ShopServer, self.server)

    def _answer(self, status: int, body: object, path: str, started: float) -> None:
        self.send_json(status, body)
        self._shop().metrics.observe(self.command, path, status, time.monotonic() - started)

    def do_GET(self) -> None:
        started = time.monotonic()
        shop = self._shop()
        if self.path == "/products":
            result = shop.catalog.products()
            if result is None:
                self._answer(503, NOTHING_CACHED, self.path, started)
            else:
                snapshot, source = result
                body = {"source": source, "fetched_at": snapshot.fetched_at, "products": snapshot.products}
                self._answer(200, body, self.path, started)
        elif self.path == "/checkout":
            self._checkout(started)
        elif self.path == "/health":
            self._answer(200, shop.catalog.health(), self.path, started)
        elif self.path == "/metrics":
            shop.catalog.run_due_trial()
            payload = shop.metrics.render(shop.catalog, shop.orders).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        elif match := ORDER_ID.match(self.path):
            order = shop.orders.get(match.group(1))
            if order is None:
                self._answer(404, {"error": f"no order {match.group(1)}"}, "/orders", started)
            else:
                self._answer(200, order, "/orders", started)
        else:
            self._answer(404, {"error": f"no such path: {self.path}"}, "other", started)

    def do_POST(self) -> None:
        started = time.monotonic()
        if self.path == "/checkout":
            self._read_body()
            self._checkout(started)
        else:
            self._read_body()
            self._answer(404, {"error": f"no such path: {self.path}"}, "other", started)

    def do_PUT(self) -> None:
        started = time.monotonic()
        raw = self._read_body()
        match = ORDER_ID.match(self.path)
        if match is None:
            self._answer(404, {"error": f"no such path: {self.path}"}, "other", started)
            return
        if raw is None:
            self._answer(413, {"error": f"an order is at most {MAX_BODY} bytes"}, "/orders", started)
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._answer(400, {"error": "an order is a JSON object"}, "/orders", started)
            return
        try:
            new = self._shop().orders.put(match.group(1), body)
        except OrderUnavailable as err:
            self._answer(503, {"error": f"not stored: {err}"}, "/orders", started)
            return
        self._answer(201 if new else 200, {"id": match.group(1), "stored": True}, "/orders", started)

    def _read_body(self) -> bytes | None:
        """The request's body; ``None`` (and the connection closed after the answer) when it is too large."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = MAX_BODY + 1
        if length > MAX_BODY or length < 0:
            if 0 < length <= 16 * MAX_BODY:  # drained, so the client reads the answer instead of a reset
                while length > 0 and (chunk := self.rfile.read(min(length, MAX_BODY))):
                    length -= len(chunk)
            self.close_connection = True
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _checkout(self, started: float) -> None:
        result = self._shop().catalog.products()
        if result is None:
            self._answer(503, NOTHING_CACHED, "/checkout", started)
            return
        snapshot, source = result
        products = [p for p in snapshot.products if isinstance(p, dict)]
        in_stock = sum(1 for p in products if isinstance(p.get("stock"), int) and p["stock"] > 0)
        body = {"source": source, "fetched_at": snapshot.fetched_at, "items": len(products), "in_stock": in_stock}
        self._answer(200, body, "/checkout", started)


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def main(argv: list[str] | None = None) -> None:
    """Parse the options, warm the cache, bind 127.0.0.1 and serve until terminated."""
    parser = argparse.ArgumentParser(prog="python -m gameday.demo.shop_api", description="The gameday demo's shop API.")
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument("--inventory-url", required=True, help="base URL of the inventory, e.g. http://127.0.0.1:8001")
    parser.add_argument("--pidfile", type=Path, default=None, help="file that holds this process's pid")
    parser.add_argument(
        "--orders-db", type=Path, default=None, help="SQLite file of the orders (default: orders.db beside the pidfile)"
    )
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the starting process dies")
    figures = (
        ("--breaker-failures", "GAMEDAY_DEMO_BREAKER_FAILURES", FAILURES_TO_OPEN, "consecutive failures that open it"),
        ("--breaker-cooldown", "GAMEDAY_DEMO_BREAKER_COOLDOWN", COOLDOWN_S, "seconds open before half-open"),
        ("--breaker-trial-interval", "GAMEDAY_DEMO_BREAKER_TRIAL_INTERVAL", TRIAL_INTERVAL_S, "seconds between trials"),
        ("--breaker-successes", "GAMEDAY_DEMO_BREAKER_SUCCESSES", SUCCESSES_TO_CLOSE, "trial successes that close it"),
        ("--order-wait", "GAMEDAY_DEMO_ORDER_WAIT", ORDER_WAIT_S, "seconds a write waits for the inventory"),
    )
    for flag, env, default, what in figures:
        parser.add_argument(flag, type=float, default=_env_float(env, default), help=f"{what} (${env}, {default:g})")
    args = parser.parse_args(argv)
    breaker = CircuitBreaker(
        failures_to_open=max(1, int(args.breaker_failures)),
        cooldown_s=args.breaker_cooldown,
        trial_interval_s=args.breaker_trial_interval,
        successes_to_close=max(1, int(args.breaker_successes)),
    )
    catalog = Catalog(args.inventory_url, breaker)
    orders_db = args.orders_db
    if orders_db is None:
        directory = args.pidfile.parent if args.pidfile is not None else Path(tempfile.mkdtemp(prefix="shop-orders-"))
        orders_db = directory / "orders.db"
    orders = Orders(orders_db, catalog, wait_s=args.order_wait)
    if not catalog.warm():
        print(f"shop_api: inventory at {args.inventory_url} unreachable; starting with an empty cache", file=sys.stderr)
    serve_until_terminated(ShopServer(args.port, catalog, orders), args.pidfile, exit_with_parent=args.exit_with_parent)


if __name__ == "__main__":
    main()
