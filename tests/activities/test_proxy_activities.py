"""The proxy activities: ``hold_proxy`` owns a proxy for as long as it runs, ``proxy_ready`` waits for it, and
on a real worker the whole contract the drill workflow follows (worker_queue → hold_proxy → proxy_ready →
apply_fault / revert_fault on the worker's own queue → cancel the hold) works end to end."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import httpx
import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from gameday.activities.proxy import HELD
from gameday.activities.proxy.activities import hold_proxy, proxy_ready
from gameday.activities.store import Store
from gameday.model.drill import LatencyFault, ProxyTarget, Target
from gameday.model.proxy_records import ProxyHoldInput, ProxyStatus, WorkerQueue, WorkerQueueRequest
from gameday.model.records import FaultInput, FaultRecord, Record
from gameday.worker.main import build_worker
from tests.docker_support import free_port

pytestmark = pytest.mark.integration


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client cut off by a killed proxy is expected here, not a failure to print


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = _QuietServer(("127.0.0.1", 0), _Ok)
    server.daemon_threads = True
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def hold_input(upstream: str, port: int) -> ProxyHoldInput:
    target = ProxyTarget(listen=f"127.0.0.1:{port}", upstream=upstream)
    return ProxyHoldInput(run_id=f"run-{uuid.uuid4().hex[:8]}", target_name="link", target=target)


# --- one activity at a time --------------------------------------------------------------------------------


async def test_hold_proxy_serves_until_cancelled_then_stops_the_proxy(upstream: str) -> None:
    port = free_port()
    inp = hold_input(upstream, port)
    env = ActivityEnvironment()
    holding = asyncio.create_task(env.run(hold_proxy, inp))

    ready = await ActivityEnvironment().run(proxy_ready, inp)
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"http://127.0.0.1:{port}/")).text == "ok"
    env.cancel()
    final = await holding

    assert ready.listen == f"127.0.0.1:{port}"
    assert final.stopped_at is not None and final.connections == 1 and final.bytes_downstream > 0
    assert not HELD.holds(inp.run_id, "link")
    assert refused(port)  # no hold, no proxy


async def test_a_proxy_that_cannot_listen_fails_both_hold_and_ready_non_retryably(upstream: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        inp = hold_input(upstream, taken.getsockname()[1])

        with pytest.raises(ApplicationError) as hold_error:
            await ActivityEnvironment().run(hold_proxy, inp)
        with pytest.raises(ApplicationError) as ready_error:
            await ActivityEnvironment().run(proxy_ready, inp)

    for raised in (hold_error, ready_error):
        assert raised.value.type == "ProxyListenError" and raised.value.non_retryable
        assert "cannot listen" in str(raised.value)


# --- the contract, on a real worker ------------------------------------------------------------------------


class ContractInput(Record):
    run_id: str
    shared_queue: str
    target: ProxyTarget
    fault: LatencyFault


class ContractResult(Record):
    queue: WorkerQueue
    ready: ProxyStatus
    applied: FaultRecord
    reverted: FaultRecord
    final: ProxyStatus


@workflow.defn(name="ProxyContractWorkflow", sandboxed=False)
class ProxyContractWorkflow:
    """The sequence DrillWorkflow follows for a proxy target, reduced to one proxy and one toxic."""

    def __init__(self) -> None:
        self._applied = False
        self._release = False

    @workflow.query
    def applied(self) -> bool:
        return self._applied

    @workflow.signal
    def release(self) -> None:
        self._release = True

    @workflow.run
    async def run(self, inp: ContractInput) -> ContractResult:
        once, short = RetryPolicy(maximum_attempts=1), timedelta(seconds=30)
        queue = await workflow.execute_activity(
            "worker_queue",
            WorkerQueueRequest(run_id=inp.run_id),
            result_type=WorkerQueue,
            task_queue=inp.shared_queue,
            start_to_close_timeout=short,
        )
        hold_inp = ProxyHoldInput(run_id=inp.run_id, target_name="link", target=inp.target)
        hold = workflow.start_activity(
            "hold_proxy",
            hold_inp,
            result_type=ProxyStatus,
            task_queue=queue.task_queue,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=5),
            retry_policy=once,
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        ready = await workflow.execute_activity(
            "proxy_ready",
            hold_inp,
            result_type=ProxyStatus,
            task_queue=queue.task_queue,
            start_to_close_timeout=short,
            heartbeat_timeout=timedelta(seconds=5),
            retry_policy=once,
        )
        target = Target(proxy=inp.target)
        record = FaultRecord(index=0, label=inp.fault.label, target="link", kind="proxy", action=inp.fault.action)
        fi = FaultInput(run_id=inp.run_id, index=0, target_name="link", target=target, fault=inp.fault, record=record)
        applied = await workflow.execute_activity(
            "apply_fault", fi, result_type=FaultRecord, task_queue=queue.task_queue, start_to_close_timeout=short
        )
        self._applied = True
        await workflow.wait_condition(lambda: self._release)
        reverted = await workflow.execute_activity(
            "revert_fault",
            fi.model_copy(update={"record": applied}),
            result_type=FaultRecord,
            task_queue=queue.task_queue,
            start_to_close_timeout=short,
            schedule_to_start_timeout=timedelta(seconds=10),
        )
        hold.cancel()
        final = await hold
        return ContractResult(queue=queue, ready=ready, applied=applied, reverted=reverted, final=final)


async def test_the_proxy_contract_holds_on_a_real_worker(client: Client, upstream: str, tmp_path: Path) -> None:
    port = free_port()
    shared = f"test-{uuid.uuid4()}"
    run_id = f"proxy-contract-{uuid.uuid4().hex[:8]}"
    fault = LatencyFault(action="latency", target="link", latency=timedelta(milliseconds=200))
    inp = ContractInput(
        run_id=run_id,
        shared_queue=shared,
        target=ProxyTarget(listen=f"127.0.0.1:{port}", upstream=upstream),
        fault=fault,
    )
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    contract_queue = f"contract-{uuid.uuid4()}"
    async with (
        build_worker(client, shared, store) as gameday,
        Worker(client, task_queue=contract_queue, workflows=[ProxyContractWorkflow]),
    ):
        handle = await client.start_workflow(ProxyContractWorkflow.run, inp, id=run_id, task_queue=contract_queue)
        deadline = time.monotonic() + 20
        while not await handle.query(ProxyContractWorkflow.applied):
            assert time.monotonic() < deadline, "the toxic was never applied"
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient() as http:
            start = time.perf_counter()
            assert (await http.get(f"http://127.0.0.1:{port}/")).text == "ok"
            slowed = time.perf_counter() - start
        await handle.signal(ProxyContractWorkflow.release)
        result = await handle.result()

    assert result.queue.task_queue == gameday.worker_queue != shared
    assert result.ready.listen == f"127.0.0.1:{port}" and result.ready.task_queue == gameday.worker_queue
    assert result.applied.changed["task_queue"] == gameday.worker_queue
    assert slowed > 0.19
    assert "removed toxic" in result.reverted.output
    assert result.final.stopped_at is not None and result.final.connections == 1
    assert refused(port)


def _worker_process(address: str, queue: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    """``gameday worker`` in its own process, so the test can SIGKILL it."""
    env = {
        **os.environ,
        "GAMEDAY_TEMPORAL_ADDRESS": address,
        "GAMEDAY_TASK_QUEUE": queue,
        "GAMEDAY_DATABASE_URL": f"sqlite:///{tmp_path / 'results.db'}",
    }
    gameday = Path(sysconfig.get_path("scripts")) / "gameday"
    command = [str(gameday)] if gameday.exists() else [sys.executable, "-m", "gameday.cli.main"]
    with open(tmp_path / "worker.log", "ab") as log:
        return subprocess.Popen([*command, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)


async def test_a_killed_worker_takes_its_proxy_and_toxics_with_it(
    client: Client, upstream: str, tmp_path: Path
) -> None:
    port = free_port()
    shared = f"test-{uuid.uuid4()}"
    run_id = f"proxy-killed-{uuid.uuid4().hex[:8]}"
    fault = LatencyFault(action="latency", target="link", latency=timedelta(seconds=5))
    inp = ContractInput(
        run_id=run_id,
        shared_queue=shared,
        target=ProxyTarget(listen=f"127.0.0.1:{port}", upstream=upstream),
        fault=fault,
    )
    worker_process = _worker_process(client.service_client.config.target_host, shared, tmp_path)
    contract_queue = f"contract-{uuid.uuid4()}"
    try:
        async with Worker(client, task_queue=contract_queue, workflows=[ProxyContractWorkflow]):
            handle = await client.start_workflow(ProxyContractWorkflow.run, inp, id=run_id, task_queue=contract_queue)
            deadline = time.monotonic() + 30
            while not await handle.query(ProxyContractWorkflow.applied):
                assert time.monotonic() < deadline, "the toxic was never applied"
                await asyncio.sleep(0.05)
            assert not refused(port)

            worker_process.send_signal(signal.SIGKILL)
            worker_process.wait(timeout=10)

            assert refused(port)  # no proxy: clients are refused, not stuck behind a 5 s toxic
            await handle.terminate("test over")
    finally:
        if worker_process.poll() is None:
            worker_process.kill()
            worker_process.wait()
