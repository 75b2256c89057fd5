"""Probe modes on a real dev server: each probe runs only in the parts of the drill its mode names."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.loader import DrillFileError, parse_drill
from gameday.model.records import Phase, Verdict
from tests.harness import HttpService, drill_from_yaml, finish, running_worker, start_drill

pytestmark = pytest.mark.integration


async def test_each_probe_runs_only_in_the_phases_of_its_mode(
    client: Client, service: HttpService, tmp_path: Path
) -> None:
    drill = f"""
name: probe-modes
targets:
  svc: {{process: {{pidfile: "{service.pidfile}"}}}}
hypothesis:
  - {{name: edge, mode: edge, http: {{url: "{service.url}", timeout: 200ms}}}}
  - {{name: before, mode: before, tcp: {{port: {service.port}}}}}
  - {{name: during, mode: during, command: {{run: "true"}}}}
  - {{name: after, mode: after, command: {{run: "true"}}}}
faults:
  - {{target: svc, action: pause}}
observe: {{duration: 600ms, interval: 100ms}}
recovery: {{within: 10s, interval: 100ms, consecutive: 2}}
"""
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    async with running_worker(client, store) as queue:
        record = await finish(await start_drill(client, queue, drill), "probe_modes")
    # The paused service fails "edge" probes, but edge probes do not run under fault: no deviation.
    assert record.verdict == Verdict.RESILIENT, record.summary
    ran = {(p.probe, p.phase) for p in record.probes}
    assert ran == {
        ("edge", Phase.PREFLIGHT),
        ("before", Phase.PREFLIGHT),
        ("during", Phase.OBSERVE),
        ("edge", Phase.VERIFY),
        ("after", Phase.VERIFY),
    }
    assert record.time_to_recovery is not None


def test_a_guardrail_must_watch_a_probe_that_runs_during_the_observation() -> None:
    with pytest.raises(DrillFileError) as raised:
        parse_drill(
            """
name: bad-guard
hypothesis:
  - {name: pre, mode: before, tcp: {port: 9}}
observe:
  guardrails:
    - {name: g, probe: pre, failing: 1}
""",
            file="bad.yaml",
        )
    assert "bad.yaml:7:" in str(raised.value) and "does not run during the observation" in str(raised.value)


def test_probe_mode_defaults_to_always() -> None:
    drill = drill_from_yaml("name: d\nhypothesis: [{name: p, tcp: {port: 9}}]")
    assert [p.name for p in drill.probes_for("before")] == ["p"] == [p.name for p in drill.probes_for("during")]
