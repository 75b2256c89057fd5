"""Real parts for drill tests: a loopback HTTP service in its own process, a worker on a fresh task queue,
and a way to run a drill given as YAML text and get its record back."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from gameday.activities.notify.activities import NotifyActivities
from gameday.activities.notify.alert import AlertActivities
from gameday.activities.store import Store
from gameday.model.drill import Drill
from gameday.model.records import DrillInput, FaultRecord, FaultState, Phase, RunRecord, StepRecord, StepStatus
from gameday.worker.main import build_worker
from gameday.workflows.drill_workflow import DrillWorkflow

HISTORIES = Path(__file__).parent / "histories"
DEMO_PORTS_LOCK = Path(tempfile.gettempdir()) / "gameday-tests-demo-ports.lock"
"""Held by every test that serves the demo on its documented ports (8000, 8001, ``/tmp/gameday-demo``)."""
CHECK_WITHIN = 3.0
"""Seconds one check of :func:`eventually` may take before it counts as "not yet"."""

_SERVER = r"""
import os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f: f.write(str(os.getpid()))
os.replace(tmp, sys.argv[1])
with open(sys.argv[2], "w") as f: f.write(str(srv.server_address[1]))
srv.serve_forever()
"""


@contextmanager
def demo_ports() -> Iterator[None]:
    """Hold the machine-wide lock on the demo's documented ports while the block runs.

    The README tour (``gameday dev --demo``) and the examples' runner both serve the demo on 127.0.0.1:8000/8001
    with its pidfiles in ``/tmp/gameday-demo``: two test processes doing it at once would drill each other's demo.
    Each waits here for the other (``flock``: released when the holder exits, however it exits).
    The examples' runner also serves Alertmanager on the port ``examples/alerts/`` documents (127.0.0.1:9093)
    under this lock.
    """
    with DEMO_PORTS_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class HttpService:
    """A real HTTP server in its own process (so a fault can SIGSTOP it), answering 200 "ok" on every path."""

    process: subprocess.Popen[bytes]
    pidfile: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def state(self) -> str:
        """The process state letter from /proc: 'T' when stopped, 'S'/'R' when running."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0]

    @classmethod
    def start(cls, workdir: Path) -> HttpService:
        pidfile, portfile = workdir / "service.pid", workdir / "service.port"
        proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(pidfile), str(portfile)])
        wait_until(lambda: portfile.exists() and portfile.read_text().strip() != "", what="HTTP service to start")
        return cls(proc, pidfile, int(portfile.read_text()))

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # never leave a stopped process behind
            self.process.kill()
        self.process.wait(timeout=10)


def wait_until(condition: Callable[[], bool], *, what: str, timeout: float = 15.0) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds (a bound, not a claim)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


async def wait_until_async(condition: Callable[[], object], *, what: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def eventually(check: Callable[[], Awaitable[bool]], *, what: str, within: float = 15.0) -> None:
    """Await ``check`` until it answers true (a query, a describe…); fail with ``what`` after ``within`` seconds.

    Each check is itself bounded: a query racing the workflow's completion has been seen to get no answer at
    all from the dev server (the client sets no deadline), and an unbounded await would hang the test.
    """
    deadline = time.monotonic() + within
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for {what}")
        try:
            if await asyncio.wait_for(check(), min(CHECK_WITHIN, remaining)):
                return
        except (TimeoutError, RPCError):
            pass
        await asyncio.sleep(0.02)


async def wait_phase(handle: WorkflowHandle[DrillWorkflow, RunRecord], phase: Phase, within: float = 30.0) -> None:
    """Wait until the drill's ``status`` query reports ``phase``."""

    async def reached() -> bool:
        return (await handle.query(DrillWorkflow.status, rpc_timeout=timedelta(seconds=CHECK_WITHIN))).phase == phase

    await eventually(reached, what=f"phase {phase.value}", within=within)


def worker_process(address: str, queue: str, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    """``gameday worker`` in a process of its own, so a test can SIGKILL it; output appended to ``log``."""
    env = {
        **os.environ,
        "GAMEDAY_TEMPORAL_ADDRESS": address,
        "GAMEDAY_TASK_QUEUE": queue,
        "GAMEDAY_DATABASE_URL": database_url,
    }
    gameday = Path(sysconfig.get_path("scripts")) / "gameday"
    command = [str(gameday)] if gameday.exists() else [sys.executable, "-m", "gameday.cli.main"]
    with open(log, "ab") as out:
        return subprocess.Popen([*command, "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)


@dataclass
class WorkerProcesses:
    """The ``gameday worker`` processes of one crash test: started in turn, killed at will, all stopped at the end."""

    address: str
    queue: str
    database_url: str
    logs: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def on_new_queue(cls, client: Client, prefix: str, directory: Path) -> WorkerProcesses:
        """Workers for ``client``'s server on a fresh queue ``PREFIX-<uuid>``, their SQLite results and logs in
        ``directory`` (``results.db``, ``worker-<n>.log``)."""
        queue = f"{prefix}-{uuid.uuid4()}"
        return cls(client.service_client.config.target_host, queue, f"sqlite:///{directory / 'results.db'}", directory)

    def start(self) -> subprocess.Popen[bytes]:
        """One more worker, its output in ``worker-<n>.log``."""
        log = self.logs / f"worker-{len(self.started) + 1}.log"
        self.started.append(worker_process(self.address, self.queue, self.database_url, log))
        return self.started[-1]

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL: no shutdown, no last heartbeat, as a crash."""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=15)


@asynccontextmanager
async def running_worker(
    client: Client,
    store: Store,
    alerts: AlertActivities | None = None,
    notify: NotifyActivities | None = None,
    *,
    max_cached_workflows: int = 1000,
    freeze_query_timeout: timedelta | None = None,
) -> AsyncIterator[str]:
    """A worker with everything registered, on a task queue of its own; yields the task queue.

    ``max_cached_workflows=0``: every activation replays the drill from its history and is then evicted.
    ``freeze_query_timeout``: one read of the freeze state, when a test makes it unreadable (the worker's
    default otherwise).
    """
    options: dict[str, Any] = {} if freeze_query_timeout is None else {"freeze_query_timeout": freeze_query_timeout}
    task_queue = f"test-{uuid.uuid4()}"
    worker = build_worker(
        client,
        task_queue,
        store,
        alerts=alerts,
        notify=notify,
        fail_on_workflow_bug=True,
        max_cached_workflows=max_cached_workflows,
        **options,
    )
    async with worker:
        yield task_queue


def drill_from_yaml(text: str) -> Drill:
    return Drill.model_validate(yaml.safe_load(text))


async def start_drill(
    client: Client, task_queue: str, text: str, run_id: str | None = None
) -> WorkflowHandle[DrillWorkflow, RunRecord]:
    drill = drill_from_yaml(text)
    run_id = run_id or f"drill-{drill.name}-{uuid.uuid4().hex[:8]}"
    return await client.start_workflow(
        DrillWorkflow.run,
        DrillInput(run_id=run_id, drill=drill, source="test", started_by="pytest"),
        id=run_id,
        task_queue=task_queue,
    )


async def finish(handle: WorkflowHandle[DrillWorkflow, RunRecord], name: str, within: float = 120.0) -> RunRecord:
    """Wait for the drill's record; save its history for the replay test when GAMEDAY_RECORD_HISTORIES is set.

    A drill that does not finish within ``within`` seconds fails the test with the tail of its history, so a
    hang says where it hangs.
    """
    try:
        record = await asyncio.wait_for(handle.result(), within)
    except TimeoutError:
        history = await handle.fetch_history()
        tail = "\n".join(f"  {e.event_id} {e.WhichOneof('attributes')}" for e in history.events[-25:])
        raise AssertionError(f"drill {handle.id} did not finish within {within}s; last events:\n{tail}") from None
    await save_history(handle, name)
    return record


async def save_history(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Keep a finished workflow's history for the replay test, when GAMEDAY_RECORD_HISTORIES is set."""
    if os.environ.get("GAMEDAY_RECORD_HISTORIES"):
        HISTORIES.mkdir(exist_ok=True)
        history = await handle.fetch_history()
        (HISTORIES / f"{name}.json").write_text(history.to_json())


def process_state(pid: int) -> str:
    """The process state letter from /proc/<pid>/status: ``T`` when stopped, ``S`` sleeping."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    raise AssertionError(f"no State in /proc/{pid}/status")


@contextmanager
def sleeping_process(directory: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A real sleeping process and its pidfile in ``directory``: a drill's target, never left stopped behind."""
    proc = subprocess.Popen(["sleep", "600"])
    pidfile = directory / "sleeper.pid"
    pidfile.write_text(f"{proc.pid}\n")
    try:
        yield proc, pidfile
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait(timeout=10)


# --- RunRecord builders for report and status tests: times in seconds after the run's start ``t0`` ------------


def step(
    t0: datetime,
    phase: Phase,
    start: float,
    end: float | None = None,
    detail: str = "",
    status: StepStatus = StepStatus.OK,
) -> StepRecord:
    """A phase of a recorded run, from ``start`` to ``end`` seconds after ``t0`` (still running without ``end``)."""
    return StepRecord(
        phase=phase,
        status=status,
        started_at=t0 + timedelta(seconds=start),
        ended_at=None if end is None else t0 + timedelta(seconds=end),
        detail=detail,
    )


def reverted_fault(
    t0: datetime,
    index: int,
    label: str,
    target: str,
    kind: str,
    action: str,
    applied: float,
    reverted: float,
    **more: Any,
) -> FaultRecord:
    """A fault of a recorded run, applied and reverted ``applied`` and ``reverted`` seconds after ``t0``."""
    return FaultRecord(
        index=index,
        label=label,
        target=target,
        kind=kind,
        action=action,
        state=FaultState.REVERTED,
        applied_at=t0 + timedelta(seconds=applied),
        reverted_at=t0 + timedelta(seconds=reverted),
        **more,
    )
