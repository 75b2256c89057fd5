"""A secret a drill references (``${env:NAME}``) leaves the worker only inside the request it was meant for.

A real echo server on loopback writes the request's headers back into every answer: into an HTTP fault's body
(stored as the fault's output), a failing revert's body (its error, retried), a Prometheus-style error (a probe's
problem). The drill runs on a real ``gameday worker`` process; the value never appears in the workflow's history,
the SQL results, the reports or the worker's log.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from gameday.activities.secrets import MASK
from gameday.activities.store import Store
from gameday.model.records import FaultState, Verdict
from gameday.report.run import render
from tests.harness import WorkerProcesses, finish, start_drill

pytestmark = pytest.mark.integration


class EchoServer:
    """Answers every request with its own headers, as text (a Prometheus-shaped error on ``/api/v1/query``).

    ``/flaky`` answers 500 the first time and 200 after. ``tokens`` holds each ``Authorization`` header received.
    """

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self._flaky_calls = 0
        echo = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if auth := self.headers.get("Authorization"):
                    echo.tokens.append(auth)
                headers = "".join(f"{name}: {value}\n" for name, value in self.headers.items())
                status = 200
                if self.path.startswith("/api/v1/query"):
                    body = json.dumps({"status": "error", "errorType": "bad_data", "error": headers}).encode()
                else:
                    if self.path.startswith("/flaky"):
                        echo._flaky_calls += 1
                        status = 500 if echo._flaky_calls == 1 else 200
                    body = f"you sent:\n{headers}".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def texts_in_history(history_json: str) -> str:
    """The history as text, with every base64 payload decoded too (payload data is base64 in the JSON form)."""
    found = [history_json]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and len(value) >= 8:
            with contextlib.suppress(binascii.Error, ValueError):
                found.append(base64.b64decode(value, validate=True).decode("utf-8", "replace"))

    walk(json.loads(history_json))
    return "\n".join(found)


async def test_a_resolved_secret_echoed_by_the_server_never_reaches_history_sql_reports_or_the_worker_log(
    client: Client, echo: EchoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    monkeypatch.setenv("DRILL_ECHO_TOKEN", token)
    monkeypatch.setenv("GAMEDAY_DRILL_SECRETS", "DRILL_ECHO_TOKEN")
    database = tmp_path / "results.db"
    queue = f"secrets-{uuid.uuid4()}"
    drill = f"""
name: echo-secret
max_duration: 2m
revert_grace: 1m
targets:
  echo: {{http: {{base_url: "{echo.url}", headers: {{Authorization: "Bearer ${{env:DRILL_ECHO_TOKEN}}"}}}}}}
hypothesis:
  - name: echoing prometheus
    prometheus: {{url: "{echo.url}", query: up, max: 1, headers: {{X-Token: "${{env:DRILL_ECHO_TOKEN}}"}}}}
    mode: during
faults:
  - target: echo
    action: call
    request: {{method: PUT, path: /flags}}
    revert: {{method: PUT, path: /flaky}}
observe: {{duration: 1s, interval: 250ms}}
"""
    workers = WorkerProcesses(client.service_client.config.target_host, queue, f"sqlite:///{database}", tmp_path)
    workers.start()
    try:
        handle = await start_drill(client, queue, drill)
        record = await finish(handle, "secret_echo")
        history = (await handle.fetch_history()).to_json()
    finally:
        workers.stop_all()

    # The value was sent, and echoed: what follows would be meaningless otherwise.
    assert f"Bearer {token}" in echo.tokens
    assert record.verdict == Verdict.DEVIATED, record.summary
    assert [f.state for f in record.faults] == [FaultState.REVERTED]
    assert MASK in record.faults[0].output
    assert any(MASK in problem for result in record.probes for problem in result.problems)

    assert "/flaky" in history and "answered 500" in history  # the failed revert attempt is in the history
    assert token not in texts_in_history(history)
    with sqlite3.connect(database) as sql:
        dump = "\n".join(sql.iterdump())
    assert "[secret]" in dump and token not in dump
    stored = Store(f"sqlite:///{database}").get(record.run_id)
    assert stored is not None
    for fmt in ("md", "json", "html"):
        assert token not in render(stored, fmt)
    log = (tmp_path / "worker-1.log").read_text()
    assert "applied call echo" in log and token not in log
