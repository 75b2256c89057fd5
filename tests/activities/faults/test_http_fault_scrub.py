"""An HTTP fault's answer is scrubbed before it is cut: a secret echoed across the output limit never leaves the
worker in part (a real echo server on loopback)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gameday.activities.faults.command import OUTPUT_LIMIT
from gameday.activities.faults.errors import ApplyError
from gameday.activities.faults.http import call
from gameday.model.drill import HttpRequest, HttpTarget

SECRET = "tok-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def echo_at_the_limit() -> Iterator[str]:
    """Answers with padding, then the request's ``Authorization`` header straddling the output limit."""

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status = 503 if self.path == "/fail" else 200
            prefix = f"{status} "  # what the fault's output starts with
            body = ("x" * (OUTPUT_LIMIT - len(prefix) - 10) + str(self.headers.get("Authorization"))).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_a_secret_echoed_across_the_output_limit_is_masked_not_cut_in_half(
    echo_at_the_limit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAMEDAY_DRILL_SECRETS", "FLAGS_TOKEN")
    monkeypatch.setenv("FLAGS_TOKEN", SECRET)
    target = HttpTarget(base_url=echo_at_the_limit, headers={"Authorization": "${env:FLAGS_TOKEN}"})

    answer = await call(target, HttpRequest(method="PUT", path="/ok"), ApplyError)
    with pytest.raises(ApplyError) as failed:
        await call(target, HttpRequest(method="PUT", path="/fail"), ApplyError)

    for text in (answer, str(failed.value)):
        assert SECRET[:8] not in text  # not even the part before the cut
        assert len(text) <= OUTPUT_LIMIT + 200
    assert answer.startswith("200 xxx")
