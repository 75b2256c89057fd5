"""``observe.expect.alerts`` against a real Prometheus and Alertmanager (issue 15).

Real parts: a dev Temporal server, a worker, the loopback service of ``tests/watched_service.py`` (its ``/metrics``
gauge ``service_degraded`` follows the drill's ``command`` fault), Prometheus scraping it and evaluating the rules
below every 200ms, Alertmanager receiving the alerts (``tests/alerting.py``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
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
      # Still firing for ~2s after the service recovered: past the end of verify.
      - {alert: ServiceLingering, expr: "max_over_time(service_degraded[2s]) == 1"}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WatchedService, Alerting]]:
    """One service, Prometheus and Alertmanager for the module's drills (run one after another)."""
    workdir = tmp_path_factory.mktemp("alerting")
    (workdir / "svc").mkdir()
    with (
        watched_service(workdir / "svc") as service,
        alerting(workdir, scrape=[service.url.removeprefix("http://")], rules=RULES) as running,
    ):
        # AlwaysOn fires from Prometheus's first evaluation: listed before any drill starts, it is "already firing"
        _wait_alert(running, "AlwaysOn", listed=True)
        yield service, running


def _wait_alert(alerts: Alerting, name: str, *, listed: bool, within: float = 30.0) -> None:
    """Wait until Alertmanager lists ``name`` (``listed``) or no longer does; bounded: a stuck alert fails here."""
    deadline = time.monotonic() + within
    with httpx.Client(timeout=2.0) as http:
        while True:
            shown = http.get(f"{alerts.alertmanager}/api/v2/alerts").json()
            if any(a.get("labels", {}).get("alertname") == name for a in shown) == listed:
                return
            assert time.monotonic() < deadline, f"{name} {'not yet' if listed else 'still'} listed after {within:g}s"
            time.sleep(0.2)


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


async def test_an_alert_still_firing_when_verify_ends_is_watched_until_it_resolves(
    client: Client, stack: tuple[WatchedService, Alerting], tmp_path: Path
) -> None:
    # ServiceLingering keeps firing ~2s after the service recovers, so verify (one healthy check) ends first: the
    # workflow's alerts-only follow-up watch waits for its resolution, at most resolve_within past the recovery.
    service, alerts = stack
    # The module's earlier drill degraded the same service: its ServiceLingering must be over before this drill
    # starts, or it is (rightly) an alert already firing before the first fault.
    await asyncio.to_thread(_wait_alert, alerts, "ServiceLingering", listed=False)
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    source = f'{{alertmanager: "{alerts.alertmanager}"}}'
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, _drill("lingering", service, source, "[ServiceLingering]"))
        record = await finish(handle, "alerts_lingering")
        history = await handle.fetch_history()

    assert record.verdict == Verdict.RESILIENT, record.summary
    watches = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "watch"
    ]
    assert len(watches) == 2, "the drill's watch, then the alerts-only one after verify"
    [line] = record.expectations
    assert line.held is True and "ServiceLingering fired after" in line.actual, line
    assert "s after recovery" in line.actual and "still firing" not in line.actual, line.actual
    lingering = next(a for a in record.alerts if a.name == "ServiceLingering")
    assert lingering.resolved_at is not None and record.ended_at is not None
    assert lingering.resolved_at <= record.ended_at
