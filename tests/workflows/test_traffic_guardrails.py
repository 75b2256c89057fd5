"""Guardrails on the traffic's own measurements (PRODUCT.md's ``{error_rate: "> 50%", for: 10s}``), end to end on
a real dev server: a condition held for its ``for`` stops the drill like ``gameday stop``; one that does not last
that long never does."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.records import FaultState, Verdict
from tests.harness import HttpService, finish, running_worker, start_drill

pytestmark = pytest.mark.integration


def _drill(name: str, service: HttpService, duration: str, guardrail: str) -> str:
    return f"""
name: {name}
targets:
  svc: {{process: {{pidfile: "{service.pidfile}"}}}}
hypothesis:
  - {{name: up, mode: edge, http: {{url: "{service.url}", timeout: 500ms}}}}
faults:
  - {{name: freeze, target: svc, action: pause}}
observe:
  duration: {duration}
  traffic: {{url: "{service.url}", rate: 40/s, timeout: 300ms, baseline: 1s}}
  guardrails:
    - {guardrail}
recovery: {{within: 10s, interval: 100ms}}
"""


async def test_a_traffic_guardrail_held_for_its_for_stops_the_drill_and_reverts_like_a_person_would(
    client: Client, store: Store, service: HttpService
) -> None:
    drill = _drill("traffic-guarded", service, "5m", '{error_rate: "> 50%", for: 2s}')
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "traffic_guarded")

    # Without the guardrail this drill would hold the frozen service for 5 minutes.
    assert record.verdict == Verdict.ABORTED, record.summary
    assert record.stop is not None and record.stop.by == "guardrail"
    assert "guardrail 'error_rate > 50% for 2s' breached: traffic error rate 100% > 50% for " in record.stop.reason
    assert record.faults[0].state == FaultState.REVERTED
    assert service.state() in ("S", "R")
    assert record.time_to_safe is not None and record.time_to_safe >= 0
    traffic = record.traffic
    assert traffic is not None
    during = next(w for w in traffic.phases if w.name == "during freeze")
    # It tripped after at least 2 s of the fault's seconds, all failing (40/s: 80 requests or more).
    assert during.timeouts >= 2 * 40 * 0.9
    assert store.get(record.run_id) == record


async def test_a_traffic_guardrail_whose_condition_does_not_last_its_for_never_stops_the_drill(
    client: Client, store: Store, service: HttpService
) -> None:
    drill = _drill("traffic-guard-short", service, "1500ms", '{name: sustained outage, error_rate: "> 50%", for: 1m}')
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "traffic_guard_short")

    # The fault's window (1.5 s, every request failing) is far shorter than the minute the condition must last.
    assert record.stop is None, record.stop
    assert record.verdict == Verdict.RESILIENT, record.summary
    during = next(w for w in (record.traffic.phases if record.traffic else []) if w.name == "during freeze")
    assert during.timeouts >= during.sent * 0.9  # the condition did hold, second after second, for 1.5 s
