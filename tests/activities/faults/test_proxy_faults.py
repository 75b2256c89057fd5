"""Proxy toxics through the fault activities: each toxic measured with a real client, through a real proxy,
against a real loopback HTTP server. Timings are only sanity bounds; bench/ measures accuracy."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from gameday.activities.faults.activities import apply_fault, revert_fault
from gameday.activities.proxy import HELD, FaultProxy
from gameday.model.drill import (
    BandwidthFault,
    BlackholeFault,
    CloseAfterFault,
    LatencyFault,
    ProxyTarget,
    ResetFault,
    SliceFault,
    Target,
)
from gameday.model.records import FaultInput, FaultRecord, FaultState

if TYPE_CHECKING:  # fixture types only: test modules never import conftest at run time
    from conftest import FaultInputFactory

pytestmark = pytest.mark.integration

TARGET = "link"


class _Handler(BaseHTTPRequestHandler):
    """``GET /bytes/<n>`` answers n bytes; anything else answers ``ok``. Keep-alive (HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    requests: list[str] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        size = int(self.path.split("/")[2]) if self.path.startswith("/bytes/") else 2
        body = b"x" * size if self.path.startswith("/bytes/") else b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    """A real HTTP server on loopback, in a thread (so the proxy's event loop never serves it)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@dataclass
class Held:
    """A proxy held for a run, as ``hold_proxy`` would hold it, and how to reach it."""

    run_id: str
    proxy: FaultProxy
    target: Target

    @property
    def port(self) -> int:
        return int(self.proxy.address.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest_asyncio.fixture
async def held(upstream: int) -> AsyncIterator[Held]:
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    proxy = FaultProxy("127.0.0.1:0", f"127.0.0.1:{upstream}", seed=1)
    await proxy.start()
    HELD.hold(run_id, TARGET, proxy, task_queue="test")
    target = Target(proxy=ProxyTarget(listen=proxy.address, upstream=f"127.0.0.1:{upstream}"))
    try:
        yield Held(run_id, proxy, target)
    finally:
        HELD.release(run_id, TARGET)
        await proxy.stop()


@pytest.fixture
def toxic_input(fault_input: FaultInputFactory, held: Held) -> Any:
    """The activity argument for a toxic fault on the held proxy (run id and target name of the hold)."""

    def build(fault: Any) -> FaultInput:
        return fault_input(held.target, fault).model_copy(update={"run_id": held.run_id, "target_name": TARGET})

    return build


def then(inp: FaultInput, record: FaultRecord) -> FaultInput:
    return inp.model_copy(update={"record": record})


async def timed_get(client: httpx.AsyncClient, url: str) -> float:
    start = time.perf_counter()
    response = await client.get(url)
    assert response.status_code == 200
    return time.perf_counter() - start


async def raw_exchange(port: int, path: str = "/", wait: float = 2.0) -> tuple[bytes, list[int]]:
    """Send one HTTP/1.0 request on a raw socket; return all bytes read and the size of each read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        await writer.drain()
        data, reads = b"", []
        async with asyncio.timeout(wait):
            while chunk := await reader.read(65536):
                data += chunk
                reads.append(len(chunk))
        return data, reads
    finally:
        writer.close()


# --- each toxic --------------------------------------------------------------------------------------------


async def test_latency_adds_its_delay_to_one_request_and_the_revert_removes_it(
    activity_env: ActivityEnvironment, toxic_input: Any, held: Held
) -> None:
    inp = toxic_input(LatencyFault(action="latency", target=TARGET, latency=timedelta(milliseconds=200)))
    async with httpx.AsyncClient() as client:
        before = await timed_get(client, held.url)  # also opens the kept-alive connection

        record = await activity_env.run(apply_fault, inp)
        slowed = await timed_get(client, held.url)  # the same, already open connection

        reverted = await activity_env.run(revert_fault, then(inp, record))
        after = await timed_get(client, held.url)

    assert held.proxy.stats.connections == 1  # the toxic reached a connection opened before it
    assert 0.19 < slowed - before < 1.0
    assert after < 0.15
    assert record.state == FaultState.APPLIED and reverted.state == FaultState.REVERTED
    assert record.changed["toxiproxy_type"] == "latency" and record.changed["latency_ms"] == "200"
    assert record.changed["stream"] == "downstream" and record.changed["open_connections"] == "1"
    assert held.proxy.toxics == []


async def test_removing_a_latency_toxic_releases_the_data_it_holds_at_once(
    activity_env: ActivityEnvironment, toxic_input: Any, held: Held
) -> None:
    inp = toxic_input(LatencyFault(action="latency", target=TARGET, latency=timedelta(seconds=30)))
    record = await activity_env.run(apply_fault, inp)
    async with httpx.AsyncClient(timeout=10) as client:
        pending = asyncio.create_task(timed_get(client, held.url))
        await asyncio.sleep(0.2)
        assert not pending.done()

        await activity_env.run(revert_fault, then(inp, record))
        elapsed = await pending

    assert elapsed < 5  # not the 30 s the toxic asked for


async def test_upstream_latency_delays_the_request_side(
    activity_env: ActivityEnvironment, toxic_input: Any, held: Held
) -> None:
    fault = LatencyFault(action="latency", target=TARGET, latency=timedelta(milliseconds=150), stream="upstream")
    inp = toxic_input(fault)
    record = await activity_env.run(apply_fault, inp)
    async with httpx.AsyncClient() as client:
        elapsed = await timed_get(client, held.url)
    await activity_env.run(revert_fault, then(inp, record))

    assert elapsed > 0.14


async def test_a_toxic_with_zero_toxicity_leaves_connections_alone(
    activity_env: ActivityEnvironment, toxic_input: Any, held: Held
) -> None:
    inp = toxic_input(LatencyFault(action="latency", target=TARGET, latency=timedelta(seconds=2), toxicity=0.0))
    record = await activity_env.run(apply_fault, inp)
    async with httpx.AsyncClient() as client:
        elapsed = await timed_get(client, held.url)
    await activity_env.run(revert_fault, then(inp, record))

    assert elapsed < 1


async def test_bandwidth_caps_the_transfer_rate(
    activity_env: ActivityEnvironment, toxic_input: Any, held: Held
) -> None:
    inp = toxic_input(BandwidthFault(action="bandwidth", target=TARGET, rate=100))  # 100 KB/s
    record = await activity_env.run(apply_fault, inp)
    async with httpx.AsyncClient(timeout=10) as client:
        start = time.perf_counter()
        response = await client.get(f"{held.url}/bytes/50000")
        elapsed = time.perf_counter() - start
    await activity_env.run(revert_fault, then(inp, record))

    assert len(response.content) == 50_000
    assert elapsed > 0.4  # 50 KB at 100 KB/s is half a second


async def test_reset_resets_the_connection(activity_env: ActivityEnvironment, toxic_input: Any, held: Held) -> None:
    inp = toxic_input(ResetFault(action="reset", target=TARGET))
    record = await activity_env.run(apply_fault, inp)

    with pytest.raises(ConnectionResetError):
        await raw_exchange(held.port)

    await activity_env.run(revert_fault, then(inp, record))
    data, _ = await raw_exchange(held.port)
    assert data.endswith(b"ok")
    assert record.changed["toxiproxy_type"] == "reset_peer"


async def test_blackhole_accepts_then_never_answers_until_reverted(
    activity_env: ActivityEnvironment, toxic_input: Any, held: Held
) -> None:
    inp = toxic_input(BlackholeFault(action="blackhole", target=TARGET))
    record = await activity_env.run(apply_fault, inp)
    _Handler.requests.clear()

    async with httpx.AsyncClient(timeout=0.5) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"{held.url}/swallowed")
    assert _Handler.requests == ["/swallowed"]  # the request got through: only the answer is swallowed

    await activity_env.run(revert_fault, then(inp, record))
    async with httpx.AsyncClient(timeout=2) as client:
        assert (await client.get(held.url)).status_code == 200


async def test_blackhole_with_a_timeout_closes_the_connection(
    activity_env: ActivityEnvironment, toxic_input: Any, held: Held
) -> None:
    inp = toxic_input(BlackholeFault(action="blackhole", target=TARGET, timeout=timedelta(milliseconds=200)))
    record = await activity_env.run(apply_fault, inp)

    data, _ = await raw_exchange(held.port, wait=5)  # ends by the proxy closing, well before the wait

    await activity_env.run(revert_fault, then(inp, record))
    assert data == b""


async def test_slice_splits_the_answer_into_small_pieces(
    activity_env: ActivityEnvironment, toxic_input: Any, held: Held
) -> None:
    plain, plain_reads = await raw_exchange(held.port, "/bytes/4000")
    fault = SliceFault(
        action="slice", target=TARGET, average_size=100, size_variation=20, delay=timedelta(milliseconds=1)
    )
    inp = toxic_input(fault)
    record = await activity_env.run(apply_fault, inp)

    sliced, reads = await raw_exchange(held.port, "/bytes/4000")

    await activity_env.run(revert_fault, then(inp, record))
    assert sliced == plain  # every byte, in order
    assert len(plain_reads) <= 3 and len(reads) > 10
    assert record.changed["toxiproxy_type"] == "slicer"


async def test_close_after_lets_that_many_bytes_through_then_closes(
    activity_env: ActivityEnvironment, toxic_input: Any, held: Held
) -> None:
    inp = toxic_input(CloseAfterFault(action="close_after", target=TARGET, bytes=1000))
    record = await activity_env.run(apply_fault, inp)

    data, _ = await raw_exchange(held.port, "/bytes/5000")

    await activity_env.run(revert_fault, then(inp, record))
    assert len(data) == 1000
    assert record.changed["toxiproxy_type"] == "limit_data" and record.changed["bytes"] == "1000"


# --- without the proxy -------------------------------------------------------------------------------------


async def test_apply_without_a_held_proxy_is_a_non_retryable_apply_error(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory
) -> None:
    target = Target(proxy=ProxyTarget(listen="127.0.0.1:1", upstream="127.0.0.1:2"))
    inp = fault_input(target, LatencyFault(action="latency", target=TARGET, latency=timedelta(milliseconds=1)))

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, inp)

    assert raised.value.type == "FaultApplyError" and raised.value.non_retryable
    assert "no proxy is held" in str(raised.value)


async def test_revert_without_a_held_proxy_is_done_the_toxic_went_with_it(
    activity_env: ActivityEnvironment, toxic_input: Any, held: Held
) -> None:
    inp = toxic_input(LatencyFault(action="latency", target=TARGET, latency=timedelta(milliseconds=1)))
    record = await activity_env.run(apply_fault, inp)
    HELD.release(held.run_id, TARGET)
    await held.proxy.stop()  # the hold ended (the drill is over, or its worker died)

    reverted = await activity_env.run(revert_fault, then(inp, record))

    assert reverted.state == FaultState.REVERTED
    assert "stopped with its hold" in reverted.output
