"""A long observation keeps the Temporal history small: one heartbeating activity per window, not one per tick.

An hour at 1 s intervals is 3600 ticks; a 1 s-interval hour would take an hour to test, so the clock is
shortened instead: 2000 ticks at 10 ms, with traffic and a guardrail, must stay far under the 300-event bound
(issue 5) that an hour must meet, because nothing in the history grows with the ticks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.records import Phase, Verdict
from tests.harness import HttpService, finish, running_worker, start_drill

pytestmark = pytest.mark.integration

HISTORY_BOUND = 300


async def test_two_thousand_observation_ticks_with_traffic_cost_a_fixed_small_history(
    client: Client, service: HttpService, tmp_path: Path
) -> None:
    drill = f"""
name: long-observation
targets:
  sh: {{command: {{}}}}
hypothesis:
  - {{name: up, http: {{url: "{service.url}", timeout: 500ms}}}}
faults:
  - {{target: sh, action: run, run: "true", revert: "true"}}
observe:
  duration: 20s
  interval: 10ms
  traffic: {{url: "{service.url}", rate: 20/s, baseline: 0s}}
  guardrails:
    - {{name: down, probe: up, failing: 50}}
"""
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, drill)
        record = await finish(handle, "long_observation", within=180)
        events = len((await handle.fetch_history()).events)

    assert record.verdict == Verdict.RESILIENT, record.summary
    observed = next(p for p in record.probes if p.phase == Phase.OBSERVE)
    assert observed.samples >= 500, "the shortened clock really ran many ticks (2000 due; fewer on a loaded machine)"
    print(f"history: {events} events for {observed.samples} observation ticks")
    assert events < HISTORY_BOUND, f"{events} events for {observed.samples} ticks"
