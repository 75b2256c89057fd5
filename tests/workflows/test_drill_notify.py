"""DrillWorkflow tells Slack as phases complete: a real drill on the dev server, slack_sdk against the fake Slack
on loopback; the token never reaches the history or the results database; Slack down costs the drill nothing."""

from __future__ import annotations

import base64
import re
import sqlite3
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.notify.activities import NotifyActivities
from gameday.activities.store import Store
from gameday.model.records import FaultState, Phase, StepStatus, StopRequest, Verdict
from tests.activities.notify.drill_events import TOKEN
from tests.fakes.slack import FakeSlack
from tests.harness import finish, running_worker, start_drill, wait_phase

pytestmark = pytest.mark.integration


def notify_drill(name: str, marker: Path, observe: str = "5m", *, extra: str = "") -> str:
    """A drill that notifies ``#gameday`` and holds one ``command`` fault (``marker`` there) for ``observe``;
    ``extra`` is YAML added at its top level."""
    return f"""
name: {name}
team: payments
notify: {{slack: {{channel: "#gameday"}}, give_up_after: 3s}}
{extra}
targets:
  sh: {{command: {{}}}}
hypothesis:
  - name: always
    command: {{run: "true"}}
faults:
  - {{name: flag on, target: sh, action: run, run: "touch {marker}", revert: "rm -f {marker}"}}
observe: {{duration: {observe}, interval: 100ms}}
"""


async def test_a_drill_posts_its_start_then_each_phase_in_a_thread_and_updates_the_parent_with_the_verdict(
    client: Client, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    slack = await FakeSlack(token=TOKEN).start()
    try:
        notify = NotifyActivities(slack_token=TOKEN, slack_api_url=slack.api_url)
        async with running_worker(client, store, notify=notify) as queue:
            handle = await start_drill(client, queue, notify_drill("notify-full", tmp_path / "m", "300ms"))
            record = await finish(handle, "notify_full")
            history = _decoded((await handle.fetch_history()).to_json())
    finally:
        await slack.stop()

    assert record.verdict == Verdict.RESILIENT
    [parent] = slack.parents()
    replies = slack.thread(parent)
    texts = [m.text for m in replies]
    assert parent.channel == "C0GAMEDAY" and "notify-full" in parent.text
    phases = ["preflight", "inject", "observe", "rollback", "verify"]
    assert [next(p for p in phases if p in t.lower()) for t in texts[: len(phases)]] == phases
    assert "RESILIENT" in texts[-1] and parent.updates == 1
    assert all(c.authorization == f"Bearer {TOKEN}" for c in slack.calls)
    assert TOKEN not in history
    assert not _in_database(tmp_path / "results.db", TOKEN)


async def test_a_stopped_drill_says_who_and_why_in_its_thread(client: Client, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    slack = await FakeSlack(token=TOKEN).start()
    try:
        notify = NotifyActivities(slack_token=TOKEN, slack_api_url=slack.api_url)
        async with running_worker(client, store, notify=notify) as queue:
            handle = await start_drill(client, queue, notify_drill("notify-stop", tmp_path / "m", "5m"))
            await wait_phase(handle, Phase.OBSERVE)
            await handle.signal("emergency_stop", StopRequest(reason="[inc-7] checkout errors", by="alice"))
            record = await finish(handle, "notify_stop")
    finally:
        await slack.stop()
    assert record.verdict == Verdict.ABORTED
    [parent] = slack.parents()
    thread = " ".join(m.text for m in slack.thread(parent))
    assert "[inc-7] checkout errors" in thread and "alice" in thread and "ABORTED" in thread


async def test_slack_down_the_drill_still_reverts_and_completes_and_the_failure_is_recorded(
    client: Client, tmp_path: Path
) -> None:
    marker = tmp_path / "m"
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    slack = await FakeSlack(token=TOKEN).start()
    await slack.stop()  # the address answers nothing: Slack is down for the whole drill
    notify = NotifyActivities(slack_token=TOKEN, slack_api_url=slack.api_url)
    async with running_worker(client, store, notify=notify) as queue:
        record = await finish(
            await start_drill(client, queue, notify_drill("notify-down", marker, "300ms")), "notify_down"
        )
    assert record.verdict == Verdict.RESILIENT
    assert not marker.exists() and record.faults[0].state == FaultState.REVERTED
    step = next(s for s in record.steps if s.phase == Phase.NOTIFY)
    assert step.status == StepStatus.FAILED and "notify_slack" in step.detail and TOKEN not in step.detail
    saved = store.get(record.run_id)
    assert saved is not None and any(s.phase == Phase.NOTIFY for s in saved.steps)


def _decoded(history_json: str) -> str:
    return re.sub(
        r'"data": "([A-Za-z0-9+/=]+)"', lambda m: base64.b64decode(m[1]).decode(errors="replace"), history_json
    )


def _in_database(path: Path, needle: str) -> bool:
    with sqlite3.connect(path) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return any(needle in str(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"'))
