"""``observe.expect.alerts`` against a real Prometheus and Alertmanager (issue 15).

Real parts: a dev Temporal server, a worker, the loopback service of ``tests/watched_service.py`` (its ``/metrics``
gauge ``service_degraded`` follows the drill's ``command`` fault), Prometheus scraping it and evaluating the rules
below every 200ms, Alertmanager receiving the alerts (``tests/alerting.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.records import Verdict
from gameday.report.run import render_markdown
from tests.alerting import Alerting, alerting
from tests.harness import finish, running_worker, start_drill
from tests.watched_service import WatchedService, watched_service

pytestmark = pytest.mark.integration

RULES = """
groups:
  - name: drill
    rules:
      - {alert: ServiceDegraded, expr: service_degraded == 1}
      - {alert: AlwaysOn, expr: vector(1)}
"""


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[WatchedService, Alerting]]:
    (tmp_path / "svc").mkdir()
    with (
        watched_service(tmp_path / "svc") as service,
        alerting(tmp_path, scrape=[service.url.removeprefix("http://")], rules=RULES) as running,
    ):
        yield service, running


def _drill(name: str, service: WatchedService, source: str, fire: str) -> str:
    run, revert = service.fault_commands()
    return f"""
name: {name}
targets: {{sh: {{command: {{}}}}}}
hypothesis:
  - name: not-degraded
    mode: after
    http: {{url: "{service.health}", body_json: {{path: degraded, equals: false}}}}
faults:
  - {{name: trip, target: sh, action: run, run: {json.dumps(run)}, revert: {json.dumps(revert)}}}
observe:
  duration: 2500ms
  interval: 200ms
  expect:
    alerts: {{from: {source}, fire: {fire}, within: 20s, resolve_within: 20s}}
recovery: {{within: 10s, interval: 100ms}}
"""


async def test_expected_alerts_fire_and_resolve_and_a_missing_one_deviates(
    client: Client, stack: tuple[WatchedService, Alerting], tmp_path: Path
) -> None:
    service, alerts = stack
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    via_am = f'{{alertmanager: "{alerts.alertmanager}"}}'
    via_prom = f'{{prometheus: "{alerts.prometheus}"}}'
    async with running_worker(client, store) as queue:
        held = await finish(
            await start_drill(client, queue, _drill("am", service, via_am, "[ServiceDegraded]")), "alerts_am"
        )
        missed = await finish(
            await start_drill(client, queue, _drill("prom", service, via_prom, "[ServiceDegraded, NeverFires]")),
            "alerts_prom",
        )

    assert held.verdict == Verdict.RESILIENT, held.summary
    [line] = held.expectations
    assert line.name == "alerts" and line.held is True, line
    assert "ServiceDegraded fired after" in line.actual and "firing before the first fault: AlwaysOn" in line.actual
    degraded = next(a for a in held.alerts if a.name == "ServiceDegraded")
    assert degraded.resolved_at is not None  # seen resolved after recovery

    assert missed.verdict == Verdict.DEVIATED, missed.summary
    assert "alert NeverFires never fired" in missed.summary
    [prom_line] = missed.expectations
    assert "ServiceDegraded fired after" in prom_line.actual

    stored = store.get(held.run_id)
    assert stored is not None
    report = render_markdown(stored)
    assert "## Alerts" in report and "| AlwaysOn | no (already firing) |" in report
