"""The safe path survives evictions: on a worker that caches no workflow, every activation replays the drill from
its history and is then evicted (every task of the workflow cancelled), yet a stopped drill with a revert that
fails before it succeeds, an early revert and a pause/resume still ends with every fault reverted (real dev server,
real processes)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.records import Approve, FaultState, Phase, StopRequest, Verdict
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.harness import HttpService, finish, running_worker, start_drill, wait_phase, wait_until_async

pytestmark = pytest.mark.integration


class _FlakyRestore:
    """``PUT /flag`` answers 200; ``PUT /flag/restore`` answers 503 ``failures`` times, then 200."""

    def __init__(self, failures: int) -> None:
        self.restores = 0
        self.failures = failures
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                status = 200
                if self.path == "/flag/restore":
                    service.restores += 1
                    status = 503 if service.restores <= service.failures else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> _FlakyRestore:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _drill(service: HttpService, flags: _FlakyRestore, early: Path, held: Path, pause: str) -> str:
    return f"""
name: evicted-every-task
targets:
  svc: {{process: {{pidfile: "{service.pidfile}"}}}}
  sh: {{command: {{}}}}
  flags: {{http: {{base_url: "{flags.url}"}}}}
faults:
  - {{name: freeze, target: svc, action: pause}}
  - {{name: early, target: sh, action: run, run: "touch {early}", revert: "rm -f {early}", duration: 1s}}
  - {{name: held, target: sh, action: run, run: "sleep 2; touch {held}", revert: "rm -f {held}"}}
  - name: flag off
    target: flags
    action: call
    request: {{method: PUT, path: /flag}}
    revert: {{method: PUT, path: /flag/restore}}
pause: {{faults: {pause}}}
observe: {{duration: 5m}}
"""


async def test_a_stopped_drill_with_a_failing_then_succeeding_revert_reverts_everything_when_every_task_is_evicted(
    client: Client, store: Store, service: HttpService, tmp_path: Path
) -> None:
    early, held = tmp_path / "early", tmp_path / "held"
    with _FlakyRestore(failures=3) as flags:
        async with running_worker(client, store, max_cached_workflows=0) as queue:
            handle = await start_drill(client, queue, _drill(service, flags, early, held, "hold"))
            await wait_phase(handle, Phase.OBSERVE, within=60)
            await wait_until_async(lambda: not early.exists(), what="the early revert")
            await handle.signal("emergency_stop", StopRequest(reason="incident", by="alice"))
            record = await finish(handle, "evicted_stop", within=120)

    assert record.verdict == Verdict.ABORTED, record.summary
    assert {f.label: f.state for f in record.faults} == dict.fromkeys(
        ["freeze", "early", "held", "flag off"], FaultState.REVERTED
    )
    assert flags.restores == 4  # three 503s, then the one that took
    assert service.state() != "T"
    assert not early.exists() and not held.exists()


async def test_a_paused_drill_whose_faults_were_reverted_and_applied_again_reverts_everything_under_eviction(
    client: Client, store: Store, service: HttpService, tmp_path: Path
) -> None:
    early, held = tmp_path / "early", tmp_path / "held"
    with _FlakyRestore(failures=2) as flags:
        async with running_worker(client, store, max_cached_workflows=0) as queue:
            handle = await start_drill(client, queue, _drill(service, flags, early, held, "revert"))
            await wait_phase(handle, Phase.INJECT, within=60)  # 'held' takes 2s to apply: paused after inject
            await handle.signal(DrillWorkflow.pause, Approve(by="alice"))
            await wait_phase(handle, Phase.PAUSED, within=60)
            await wait_until_async(lambda: flags.restores >= 3, what="the pause's revert of 'flag off' to succeed")
            await handle.signal(DrillWorkflow.resume, Approve(by="alice"))
            await wait_phase(handle, Phase.OBSERVE, within=60)
            await handle.signal("emergency_stop", StopRequest(reason="incident", by="alice"))
            record = await finish(handle, "evicted_pause_stop", within=120)

    assert record.verdict == Verdict.ABORTED, record.summary
    assert {f.label: f.state for f in record.faults} == dict.fromkeys(
        ["freeze", "early", "held", "flag off"], FaultState.REVERTED
    )
    assert service.state() != "T"
    assert not early.exists() and not held.exists()
