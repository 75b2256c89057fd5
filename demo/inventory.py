"""The demo's dependency: a tiny inventory service the shop API calls for every product list.

Run it as ``python -m gameday.demo.inventory --port P --pidfile F``. It answers ``GET /items`` (a JSON list of
products with stock counts, after ~5 ms of "database" time) and ``GET /health``, on 127.0.0.1 only.

The pidfile is how a drill finds this process (``targets: {inventory: {process: {pidfile: ...}}}``), so
it is written atomically once the port is bound (a reader never sees a half-written pid, and a second
copy that fails to bind never overwrites the first one's pid) and removed on SIGTERM/SIGINT. After
SIGKILL it stays behind, stale: readers must check that the pid is alive.

:func:`serve_until_terminated` is shared with ``gameday.demo.shop_api``: both services have the same lifecycle.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

ITEMS: tuple[dict[str, object], ...] = (
    {"sku": "TEA-001", "name": "Green tea, 100 g", "stock": 42},
    {"sku": "MUG-002", "name": "Stoneware mug", "stock": 17},
    {"sku": "POT-003", "name": "Cast-iron teapot", "stock": 5},
    {"sku": "KET-004", "name": "Gooseneck kettle", "stock": 0},
)
"""The whole catalogue: fixed, so a cached copy is indistinguishable from a live one except by ``source``."""

LOOKUP_DELAY_S = 0.005
"""Simulated storage time per ``/items`` request, so live and cached answers differ measurably."""


class QuietHandler(BaseHTTPRequestHandler):
    """Base handler for the demo services: JSON replies, no per-request access log on stderr."""

    protocol_version = "HTTP/1.1"

    def send_json(self, status: int, body: object) -> None:
        """Send ``body`` as a JSON response with an explicit length (keeps HTTP/1.1 clients simple)."""
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Drop access logs: the demo runs inside a drill whose own output matters."""


class QuietServer(ThreadingHTTPServer):
    """A threading server whose worker threads never block exit and whose dropped clients stay silent."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up (the shop API's 200 ms timeout while we were paused) is expected here.
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class InventoryHandler(QuietHandler):
    """``GET /items`` and ``GET /health``; anything else is a 404."""

    def do_GET(self) -> None:
        if self.path == "/items":
            time.sleep(LOOKUP_DELAY_S)
            self.send_json(200, list(ITEMS))
        elif self.path == "/health":
            self.send_json(200, {"status": "ok"})
        else:
            self.send_json(404, {"error": f"no such path: {self.path}"})


def write_pidfile(path: Path) -> None:
    """Write this process's pid to ``path`` atomically (temporary file in the same directory, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def remove_pidfile(path: Path) -> None:
    """Remove ``path`` if it still names this process (a newer copy may have taken it over)."""
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text().strip()) == os.getpid():
            path.unlink()


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # unwinds serve_forever() in the main thread, so the finally block runs


def _exit_with_parent(parent: int) -> None:
    """End this process (as SIGTERM does: pidfile removed) once its parent is gone and it has been reparented."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def serve_until_terminated(
    server: ThreadingHTTPServer, pidfile: Path | None, *, exit_with_parent: bool = False
) -> None:
    """Serve until SIGTERM or SIGINT, with the pidfile present exactly while the server is up.

    Args:
        server: a server already bound to its port.
        pidfile: where to write this process's pid, or ``None`` for no pidfile.
        exit_with_parent: also stop when the process that started this one dies (even by SIGKILL), so a demo
            system never outlives the ``gameday`` command that serves it, holding its ports.
    """
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    if exit_with_parent:
        threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    try:
        if pidfile is not None:
            write_pidfile(pidfile)
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if pidfile is not None:
            remove_pidfile(pidfile)


def main(argv: list[str] | None = None) -> None:
    """Parse ``--port`` and ``--pidfile``, bind 127.0.0.1 and serve until terminated."""
    parser = argparse.ArgumentParser(
        prog="python -m gameday.demo.inventory", description="The gameday demo's inventory service."
    )
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument("--pidfile", type=Path, required=True, help="file that holds this process's pid")
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the starting process dies")
    args = parser.parse_args(argv)
    server = QuietServer(("127.0.0.1", args.port), InventoryHandler)
    serve_until_terminated(server, args.pidfile, exit_with_parent=args.exit_with_parent)


if __name__ == "__main__":
    main()
