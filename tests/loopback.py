"""One loopback HTTP service for tests: a thread of this process answering every GET from a function of its path."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serve_loopback(answer: Callable[[str], tuple[bytes, str | None]], name: str) -> Iterator[str]:
    """Serve on a free loopback port until the block ends; yields the base URL, ``http://127.0.0.1:PORT``.

    Every GET is answered 200 with ``answer(path)``: ``(body, content_type)``, no Content-Type header where that
    is ``None``. ``name`` names the serving thread.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, kind = answer(self.path)
            self.send_response(200)
            if kind is not None:
                self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
