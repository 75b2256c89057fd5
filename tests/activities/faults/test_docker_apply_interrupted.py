"""A worker that dies (or freezes) mid-apply of a docker fault: another worker brings the container back to the
state captured before the apply, and the record says what was really done.

The first worker talks to the engine through a socket that passes every request on but holds back the answer to
the fault's own engine call: the engine has done (or is doing) it, the worker never hears so, and the test kills
or freezes the worker at that moment, as a crash between "the engine acted" and "the record was returned".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from docker.models.containers import Container
from sqlmodel import Session
from temporalio.client import Client

from gameday.activities.ledger import FaultLedger
from gameday.activities.store import Store
from gameday.activities.sweep import sweep
from gameday.activities.tables import LedgerRow
from gameday.model.records import FaultState
from tests.docker_support import Containers
from tests.harness import WorkerProcesses, finish, start_drill, wait_until_async

pytestmark = pytest.mark.integration

ENGINE = "/var/run/docker.sock"
MUTATION = re.compile(
    rb"POST /v[\d.]+/(containers/[^/ ]+/(pause|stop|kill|restart|update)|networks/[^/ ]+/disconnect|exec/[^/ ]+/start)"
)
"""The engine calls a fault makes; everything else (inspect, list, version, exec create) is answered."""


@dataclass
class HoldingSocket:
    """A unix socket in front of the engine that holds back the answers to fault calls; ``seen`` fault calls."""

    path: Path
    seen: list[bytes] = field(default_factory=list)
    _connections: set[asyncio.Task[None]] = field(default_factory=set)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, held: list[bool]) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if not held[0]:
                    writer.write(data)
                    await writer.drain()
        writer.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)
        engine_r, engine_w = await asyncio.open_unix_connection(ENGINE)
        held = [False]
        answers = asyncio.create_task(self._pipe(engine_r, client_w, held))
        buffer = b""
        with contextlib.suppress(ConnectionError, OSError):
            while data := await client_r.read(65536):
                engine_w.write(data)
                await engine_w.drain()
                buffer = (buffer + data)[-4096:]
                call = MUTATION.search(buffer)
                if call and not held[0]:
                    held[0] = True  # from now on this connection hears nothing back
                    self.seen.append(call.group(0))
        engine_w.close()
        answers.cancel()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[HoldingSocket]:
        server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        try:
            yield self
        finally:
            server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)


def state(box: Container) -> dict[str, Any]:
    """What a revert must restore: status, networks, CPU and memory limits."""
    box.reload()
    host = box.attrs["HostConfig"]
    return {
        "status": box.status,
        "networks": sorted((box.attrs["NetworkSettings"]["Networks"] or {}).keys()),
        "cpu": (host.get("NanoCpus") or 0, max(host.get("CpuQuota") or 0, 0)),  # -1 and 0 both mean no quota
        "memory": host.get("Memory") or 0,
    }


@dataclass(frozen=True)
class Case:
    fault: str
    """The fault's YAML flow mapping, ``{net}`` replaced by the container's network."""
    applied: Callable[[Container], bool]
    """The engine has acted (or started to): the moment the worker is killed."""
    frozen: bool = False
    """SIGSTOP the worker instead of SIGKILL (it stays frozen until the drill is over)."""


def _status_is(*wanted: str) -> Callable[[Container], bool]:
    def check(box: Container) -> bool:
        box.reload()
        return box.status in wanted

    return check


def _always(_box: Container) -> bool:
    return True


CASES = {
    # Each docker action once, interrupted at its own engine call, the worker SIGKILLed; and the worker frozen
    # (SIGSTOP) once, on pause: it keeps its connections open and answers nothing, a different way to the same
    # takeover. Every action's revert and both ways to lose a worker are covered, none twice.
    "pause (worker frozen)": Case("{action: pause}", _status_is("paused"), frozen=True),
    "stop": Case("{action: stop, timeout: 15s}", _always),  # PID 1 ignores SIGTERM: the stop takes 15 s
    "kill": Case("{action: kill, signal: KILL}", _status_is("exited")),
    "restart": Case("{action: restart, timeout: 12s}", _always),
    "disconnect": Case("{action: disconnect, network: {net}}", lambda box: state(box)["networks"] == []),
    "limit_cpu": Case("{action: limit_cpu, cpus: 0.5}", lambda box: state(box)["cpu"][1] > 0),
    "limit_memory": Case("{action: limit_memory, memory: 48m}", lambda box: state(box)["memory"] == 48 * 1024 * 1024),
    "exec": Case(
        '{action: exec, run: "sleep 40; touch /tmp/late", revert: "rm -f /tmp/late", timeout: 60s}',
        lambda box: bool(box.client.api.inspect_container(box.id).get("ExecIDs")) if box.client else False,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_a_worker_dying_mid_apply_leaves_the_container_as_it_was_before_the_fault(
    client: Client, containers: Containers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    case = CASES[name]
    net = containers.network()
    box = containers.sleeper(network=net, mem_limit="64m")  # sleep as PID 1: SIGTERM is ignored
    before = state(box)
    database_url = f"sqlite:///{tmp_path / 'results.db'}"
    drill = f"""
name: docker-apply-interrupted
targets:
  box: {{docker: {{container: {box.name}}}}}
faults:
  - {{target: box, {case.fault.replace("{net}", net)[1:-1]}}}
observe: {{duration: 1s}}
max_duration: 3m
"""
    workers = WorkerProcesses(client.service_client.config.target_host, f"dock-{uuid.uuid4()}", database_url, tmp_path)
    socket = HoldingSocket(tmp_path / "engine.sock")
    async with socket.running():
        monkeypatch.setenv("DOCKER_HOST", f"unix://{socket.path}")
        first = workers.start()
        monkeypatch.delenv("DOCKER_HOST")
        try:
            handle = await start_drill(client, workers.queue, drill)
            await wait_until_async(lambda: bool(socket.seen), what="the fault's engine call", within=60)
            await wait_until_async(lambda: case.applied(box), what="the engine to act", within=30)
            if case.frozen:
                os.kill(first.pid, signal.SIGSTOP)
            else:
                workers.kill(first)
            workers.start()
            record = await finish(handle, f"docker_interrupted_{name}", within=150)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(timeout=10)
            workers.stop_all()

    [fault] = record.faults
    assert fault.state == FaultState.FAILED and fault.reverted_at is not None, fault
    assert "nothing to revert" not in fault.output, fault.output
    assert state(box) == before, fault.output
    if name == "exec":
        top = box.top()["Processes"] or []
        assert not any("sleep 40" in " ".join(p) for p in top), "the interrupted exec was killed"
        assert box.exec_run(["test", "-e", "/tmp/late"]).exit_code == 1
    store = Store(database_url)
    assert FaultLedger(store).state(record.run_id, 0) == FaultState.REVERTED
    with Session(store.engine) as session:
        row = session.get(LedgerRow, (record.run_id, 0))
        assert row is not None and row.spec["before"]["containers"] == box.id, "the ledger carries the capture"


async def test_the_sweep_restores_a_labelled_pick_whose_workflow_died_mid_apply_from_the_ledger(
    client: Client, containers: Containers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = uuid.uuid4().hex[:8]
    fleet = [containers.sleeper(labels={"app": app}) for _ in range(3)]
    database_url = f"sqlite:///{tmp_path / 'results.db'}"
    drill = f"""
name: docker-sweep-interrupted
targets:
  fleet: {{docker: {{labels: {{app: "{app}"}}, count: 1}}}}
faults:
  - {{target: fleet, action: pause}}
observe: {{duration: 1s}}
"""
    workers = WorkerProcesses(client.service_client.config.target_host, f"dock-{uuid.uuid4()}", database_url, tmp_path)
    socket = HoldingSocket(tmp_path / "engine.sock")
    async with socket.running():
        monkeypatch.setenv("DOCKER_HOST", f"unix://{socket.path}")
        first = workers.start()
        monkeypatch.delenv("DOCKER_HOST")
        try:
            handle = await start_drill(client, workers.queue, drill)
            await wait_until_async(
                lambda: any(state(box)["status"] == "paused" for box in fleet), what="one container paused", within=60
            )
            workers.kill(first)
            await handle.terminate("the drill's workflow is lost")  # nothing left but the ledger
        finally:
            workers.stop_all()

    report = await sweep(Store(database_url), client)

    assert [state(box)["status"] for box in fleet] == ["running"] * 3
    [swept] = report.faults
    assert swept.reverted and swept.workflow == "TERMINATED", swept
    assert FaultLedger(Store(database_url)).state(handle.id, 0) == FaultState.REVERTED
