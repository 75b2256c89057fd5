"""A drill with traffic, end to end on a real dev server: load from the steady state to the end of verify,
measured per window as faults come and go, and observe.expect judged on the windows under fault."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.records import Verdict
from tests.harness import HttpService, finish, running_worker, start_drill

pytestmark = pytest.mark.integration


def _drill(name: str, service: HttpService, expect: str) -> str:
    return f"""
name: {name}
targets:
  svc: {{process: {{pidfile: "{service.pidfile}"}}}}
hypothesis:
  - {{name: up, mode: edge, http: {{url: "{service.url}", timeout: 500ms}}}}
faults:
  - {{name: freeze, target: svc, action: pause}}
observe:
  duration: 1500ms
  traffic: {{url: "{service.url}", rate: 40/s, timeout: 300ms, baseline: 1s}}
  {expect}
recovery: {{within: 10s, interval: 100ms}}
"""


async def test_traffic_is_measured_before_during_the_fault_and_after_and_a_missed_expectation_deviates(
    client: Client, service: HttpService, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    drill = _drill("traffic-pause", service, "expect: {availability: 99%, latency_p95: 200ms}")
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "traffic_pause")

    assert record.verdict == Verdict.DEVIATED, record.summary
    assert "availability" in record.summary
    traffic = record.traffic
    assert traffic is not None
    windows = {w.name: w for w in traffic.phases}
    assert list(windows) == ["before", "during freeze", "rollback", "after"][: len(windows)]
    assert {"before", "during freeze", "after"} <= set(windows)
    before, during = windows["before"], windows["during freeze"]
    assert before.sent >= 20 and before.ok >= 0.8 * before.sent  # healthy: the odd timeout on a loaded machine
    # The paused service answers nothing: every request of the window times out.
    assert during.sent >= 40 and during.timeouts >= during.sent * 0.9
    assert windows["after"].ok > 0
    assert traffic.total.sent == sum(w.sent for w in traffic.phases)
    assert len(traffic.timeline.second) >= 3
    assert store.get(record.run_id) == record  # windows, histograms and timeline stored exactly


async def test_expectations_that_hold_keep_the_verdict_resilient(
    client: Client, service: HttpService, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    drill = (
        _drill("traffic-calm", service, "expect: {availability: 99%}")
        .replace(
            "{name: freeze, target: svc, action: pause}",
            "{name: nothing, target: sh, action: run, run: 'true', revert: 'true'}",
        )
        .replace("  svc: {", "  sh: {command: {}}\n  svc: {")
    )
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "traffic_calm")
    assert record.verdict == Verdict.RESILIENT, record.summary
    assert record.traffic is not None and record.traffic.total.ok > 0
