"""Real parts the probe tests measure: a loopback HTTP server, a TCP listener and a port nobody listens on.

The HTTP server answers by path, so a test states what it wants in the URL:

- ``/ok`` — 200 ``ok``
- ``/status/<code>`` — that status
- ``/slow/<ms>`` — 200 ``ok`` after sleeping that many milliseconds
- ``/text/<words>`` — 200 with ``<words>`` as the body
- ``/redirect`` — 302 to ``/ok``
- ``/recovers-at/<unix time>`` — 503 before that instant, 200 ``ok`` from then on
- ``/json/<key>`` — 200 with ``JSON_DOCUMENTS[key]`` as the body (a test changes it between samples)
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import pytest_asyncio

JSON_DOCUMENTS: dict[str, str] = {}
"""Bodies ``/json/<key>`` answers, set by the tests (each test its own key)."""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        match parts:
            case ["ok"]:
                self._answer(200, "ok")
            case ["status", code]:
                self._answer(int(code), f"status {code}")
            case ["slow", ms]:
                time.sleep(int(ms) / 1000)
                self._answer(200, "ok")
            case ["text", words]:
                self._answer(200, words)
            case ["redirect"]:
                self._answer(302, "", location="/ok")
            case ["json", key] if key in JSON_DOCUMENTS:
                self._answer(200, JSON_DOCUMENTS[key])
            case ["recovers-at", instant]:
                self._answer(200 if time.time() >= float(instant) else 503, "recovering")
            case _:
                self._answer(404, "no such endpoint")

    def _answer(self, status: int, body: str, location: str | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output for failures


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that timed out closed its socket: writing the late answer fails, as intended


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """Base URL (``http://127.0.0.1:<port>``) of the loopback HTTP server, started once per session."""
    httpd = _QuietServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, name="probe-test-http", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A TCP port with a listener: the kernel completes connections into its backlog."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        yield listener.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A TCP port nobody listens on: connecting is refused."""
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port: int = probe_socket.getsockname()[1]
    return port


@pytest_asyncio.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    """A client like the activities use: redirects are not followed."""
    async with httpx.AsyncClient(follow_redirects=False) as client:
        yield client


@pytest.fixture
def eventually() -> Callable[[Callable[[], bool]], Awaitable[None]]:
    """Wait until a condition holds (polling), failing after a few seconds: no fixed sleeps in tests."""

    async def wait(condition: Callable[[], bool], within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition still false after {within}s")
            await asyncio.sleep(0.01)

    return wait
