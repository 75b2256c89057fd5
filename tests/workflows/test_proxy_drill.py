"""A drill through a fault proxy, end to end on a real dev server: the proxy is held for the whole drill, a
latency toxic is applied and removed through it, and the proxy is let go when the drill ends, on every path."""

from __future__ import annotations

import socket

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.records import FaultState, Phase, StopRequest, Verdict
from gameday.worker.devserver import free_port, port_open
from tests.harness import HttpService, finish, running_worker, start_drill, wait_phase

pytestmark = pytest.mark.integration


def _drill(name: str, service: HttpService, listen: int, observe: str) -> str:
    return f"""
name: {name}
targets:
  link: {{proxy: {{listen: "127.0.0.1:{listen}", upstream: "127.0.0.1:{service.port}"}}}}
hypothesis:
  - name: answers fast through the proxy
    http: {{url: "http://127.0.0.1:{listen}/", timeout: 2s}}
    tolerance: {{latency_max: 150ms}}
faults:
  - {{target: link, action: latency, latency: 300ms}}
observe: {{duration: {observe}, interval: 200ms}}
recovery: {{within: 10s, interval: 100ms}}
"""


async def test_a_latency_toxic_on_a_held_proxy_breaks_the_latency_tolerance_then_recovers(
    client: Client, store: Store, service: HttpService
) -> None:
    listen = free_port()
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, _drill("proxy-latency", service, listen, "1s")), "proxy")
    assert record.verdict == Verdict.DEVIATED, record.summary
    observed = next(p for p in record.probes if p.phase == Phase.OBSERVE)
    assert observed.latency_max is not None and observed.latency_max >= 0.3
    verified = [p for p in record.probes if p.phase == Phase.VERIFY]
    assert verified and verified[-1].ok
    assert record.faults[0].state == FaultState.REVERTED
    preflight = next(s for s in record.steps if s.phase == Phase.PREFLIGHT)
    assert "proxy(ies) listening" in preflight.detail
    assert not port_open(listen), "the proxy is let go when the drill ends"


async def test_a_stopped_proxy_drill_removes_the_toxic_and_lets_the_proxy_go(
    client: Client, store: Store, service: HttpService
) -> None:
    listen = free_port()
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, _drill("proxy-stop", service, listen, "5m"))
        await wait_phase(handle, Phase.OBSERVE)
        await handle.signal("emergency_stop", StopRequest(reason="enough", by="test"))
        record = await finish(handle, "proxy_stop")
    assert record.verdict == Verdict.ABORTED
    assert record.faults[0].state == FaultState.REVERTED
    assert not port_open(listen)


async def test_a_proxy_that_cannot_listen_fails_preflight_and_injects_nothing(
    client: Client, store: Store, service: HttpService
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with running_worker(client, store) as queue:
            record = await finish(
                await start_drill(client, queue, _drill("proxy-taken", service, port, "1s")), "proxy_taken"
            )
    assert record.verdict == Verdict.ERROR
    assert "proxy not started" in record.summary and "cannot listen" in record.summary
    assert record.faults == []
