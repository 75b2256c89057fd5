"""One failing revert holds no other fault: rollback keeps reverse order for each revert's first attempt, and a
revert that fails is retried on its own while the others go on (real dev server, a real paused process)."""

from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.records import FaultState, Phase, StopRequest, Verdict
from gameday.report.run import render_markdown
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.harness import HttpService, eventually, finish, running_worker, start_drill, wait_phase, wait_until_async

pytestmark = pytest.mark.integration


class _FlagService:
    """A real HTTP service on loopback: ``PUT /flag`` answers 200; ``PUT /flag/restore`` answers 503 until
    :meth:`heal`, counting the calls."""

    def __init__(self) -> None:
        self.restores = 0
        self.healed = threading.Event()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                status = 200
                if self.path == "/flag/restore":
                    service.restores += 1
                    status = 200 if service.healed.is_set() else 503
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> _FlagService:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


async def test_a_revert_answering_503_does_not_hold_the_pause_of_another_fault_while_it_retries(
    client: Client, store: Store, service: HttpService
) -> None:
    with _FlagService() as flags:
        drill = f"""
name: one-stuck-revert
targets:
  svc: {{process: {{pidfile: {service.pidfile}}}}}
  flags: {{http: {{base_url: "{flags.url}"}}}}
faults:
  - {{name: freeze, target: svc, action: pause}}
  - name: flag off
    target: flags
    action: call
    request: {{method: PUT, path: /flag}}
    revert: {{method: PUT, path: /flag/restore}}
observe: {{duration: 5m}}
"""
        async with running_worker(client, store) as queue:
            handle = await start_drill(client, queue, drill)
            await wait_phase(handle, Phase.OBSERVE)
            assert service.state() == "T"
            await handle.signal("emergency_stop", StopRequest(reason="incident", by="alice"))

            # The flag's revert (first in reverse order) keeps failing; the pause is reverted meanwhile.
            await wait_until_async(lambda: flags.restores >= 2, what="the 503 revert to be retried")
            await wait_until_async(lambda: service.state() != "T", what="the paused process to be resumed")
            assert not flags.healed.is_set()

            async def pause_reverted_while_flag_retries() -> bool:
                status = await handle.query(DrillWorkflow.status, rpc_timeout=timedelta(seconds=3))
                states = {f.label: f.state for f in status.faults}
                return states == {"freeze": FaultState.REVERTED, "flag off": FaultState.APPLIED}

            await eventually(pause_reverted_while_flag_retries, what="freeze reverted while 'flag off' retries")
            flags.healed.set()
            record = await finish(handle, "revert_independent")

    assert record.verdict == Verdict.ABORTED, record.summary
    freeze, flag = record.faults
    assert freeze.state == flag.state == FaultState.REVERTED
    assert freeze.reverted_at is not None and flag.reverted_at is not None
    assert freeze.reverted_at < flag.reverted_at  # the pause did not wait for the 503s to end
    assert record.time_to_safe is not None


async def test_a_revert_that_never_succeeds_leaves_the_others_reverted_and_time_to_safe_covers_them(
    client: Client, store: Store, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    # A guardrail on the fault's own marker stops the drill at its first tick; the stuck revert then retries only
    # until max_duration + revert_grace from submission.
    drill = f"""
name: stuck-beside-fine
max_duration: 6s
revert_grace: 1s
targets:
  sh: {{command: {{}}}}
hypothesis:
  - {{name: no marker, command: {{run: "test ! -e {marker}"}}, mode: during}}
faults:
  - {{name: fine, target: sh, action: run, run: "touch {marker}", revert: "rm -f {marker}"}}
  - {{name: stuck, target: sh, action: run, run: "true", revert: "echo cannot undo >&2; exit 1"}}
observe:
  duration: 5s
  interval: 100ms
  guardrails:
    - {{name: marker seen, probe: no marker, failing: 1}}
"""
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "revert_stuck_beside_fine")

    assert record.verdict == Verdict.ERROR
    assert record.stop is not None and record.stop.by == "guardrail"
    states = {f.label: f.state for f in record.faults}
    assert states == {"fine": FaultState.REVERTED, "stuck": FaultState.NOT_REVERTED}
    assert not marker.exists()
    assert record.time_to_safe is not None  # the reverts that succeeded; the record names the one that did not
    saved = store.get(record.run_id)
    assert saved is not None
    assert "NOT REVERTED: stuck" in render_markdown(saved)
