"""``observe.watch`` with ``expect.sequence`` and ``expect.detect`` on a real drill (issue 15).

Real parts: a dev Temporal server, a worker, a loopback service whose breaker and ``degraded`` flag follow files a
``command`` fault touches (``tests/watched_service.py``), and the results database the report reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.records import Phase, Verdict
from gameday.report.html import render_html
from gameday.report.run import render_json, render_markdown
from tests.harness import finish, running_worker, start_drill
from tests.watched_service import DEGRADES_AFTER, WatchedService, watched_service

pytestmark = pytest.mark.integration

INTERVAL = 0.1


@pytest.fixture
def service(tmp_path: Path) -> Iterator[WatchedService]:
    with watched_service(tmp_path) as running:
        yield running


def _drill(name: str, service: WatchedService, detector: str, more: str = "") -> str:
    run, revert = service.fault_commands()
    url = service.health
    return f"""
name: {name}
targets: {{sh: {{command: {{}}}}}}
hypothesis:
  - name: closed-again
    mode: after
    http: {{url: "{url}", body_json: {{path: breaker.state, equals: CLOSED}}, record: breaker.state}}
faults:
  - {{name: trip, target: sh, action: run, run: {json.dumps(run)}, revert: {json.dumps(revert)}}}
observe:
  duration: 1500ms
  interval: {INTERVAL * 1000:.0f}ms
  watch:
    - name: breaker
      http: {{url: "{url}", record: breaker.state}}
    - name: says-degraded
      http: {{url: "{url}", body_json: {{path: degraded, equals: true}}}}
    - name: deaf
      http: {{url: "{url}", body_json: {{path: paged, equals: true}}}}
  expect:
    sequence: {{probe: breaker, values: [CLOSED, OPEN, HALF_OPEN, CLOSED], within: 30s}}
    detect: {{probe: {detector}, within: 5s}}
{more}recovery: {{within: 10s, interval: 100ms}}
"""


async def test_watch_judges_sequence_and_detection_and_names_a_silent_failure(
    client: Client, service: WatchedService, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    async with running_worker(client, store) as queue:
        held = await finish(
            await start_drill(client, queue, _drill("watch-held", service, "says-degraded")), "watch_held"
        )
        fault_at = service.fault_at()
        silent = await finish(await start_drill(client, queue, _drill("watch-silent", service, "deaf")), "watch_silent")
        # nothing listens on port 9: the alerts are never read, so that line cannot be judged
        unread = '    alerts: {from: {alertmanager: "http://127.0.0.1:9"}, fire: [BreakerOpen]}\n'
        unjudged = await finish(
            await start_drill(client, queue, _drill("watch-unread", service, "says-degraded", unread)), "watch_unread"
        )

    assert held.verdict == Verdict.RESILIENT, held.summary
    sequence, detect = held.expectations
    assert (sequence.name, sequence.held) == ("sequence", True), sequence
    assert (detect.name, detect.held) == ("detect", True), detect
    [breaker] = [w for w in held.watch if w.name == "breaker"]
    assert breaker.values[-4:] == ["CLOSED", "OPEN", "HALF_OPEN", "CLOSED"]
    # The truth: ``degraded`` turned true DEGRADES_AFTER after the fault's command ran; the fault counts from its
    # applied time, a little after. The first sample that saw it is at most one interval late (a sample is timed
    # from its start: slack for a request that reached a loaded machine's server late, either way).
    applied = held.faults[0].applied_at
    assert applied is not None and held.time_to_detect is not None
    truth = fault_at + DEGRADES_AFTER - applied.timestamp()
    assert truth - 0.25 <= held.time_to_detect <= truth + INTERVAL + 0.25, (held.time_to_detect, truth)
    [after] = [p for p in held.probes if p.phase is Phase.VERIFY]
    assert after.recorded == "CLOSED"

    assert silent.verdict == Verdict.DEVIATED, silent.summary
    assert "silent failure: 'deaf' never detected the fault" in silent.summary
    assert silent.time_to_detect is None

    # sequence and detect held, alerts could not be judged: evidence incomplete, never RESILIENT
    assert unjudged.verdict == Verdict.INCONCLUSIVE, unjudged.summary
    assert [e.held for e in unjudged.expectations] == [True, True, None]
    assert "not judged: alerts (not judged: alerts not read from http://127.0.0.1:9" in unjudged.summary

    # What a script reads: plain keys in `report --format json`, from the results database.
    stored = store.get(held.run_id)
    assert stored is not None
    data = json.loads(render_json(stored))
    assert data["time_to_detect"] == pytest.approx(held.time_to_detect)
    assert [w["values"] for w in data["watch"] if w["name"] == "breaker"] == [breaker.values]
    assert [e["name"] for e in data["expectations"]] == ["sequence", "detect"]
    report = render_markdown(stored)
    assert "## Watch (observe.watch)" in report and "Time to detect" in report and "HALF_OPEN at +" in report
    page = render_html(stored)
    assert '<section id="watch">' in page and "HALF_OPEN at +" in page
    assert 'data-phase="watch"' in page and "watch breaker: OPEN, held from" in page  # the timeline's watch lanes
    (tmp_path / "report.html").write_text(page)
