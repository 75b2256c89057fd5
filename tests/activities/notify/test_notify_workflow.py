"""Notifications from a workflow on the real dev server: the thread kept in workflow state, a Slack outage
recorded and never in the way, and the token nowhere in the history or the worker's logs.

``NotifyDrillWorkflow`` (``notify_workflow.py``) sends events the way DrillWorkflow will, via ``NotifySender``.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from gameday.activities.notify.activities import NotifyActivities
from gameday.model.notify_records import Notify, SlackNotify
from tests.activities.notify.drill_events import ABORTED, DEVIATED, GUARDRAIL, PHASES, STARTED, TOKEN
from tests.activities.notify.notify_workflow import NotifyDrillInput, NotifyDrillResult, NotifyDrillWorkflow
from tests.fakes.slack import FakeSlack

pytestmark = pytest.mark.integration

NOTIFY = Notify(slack=SlackNotify(channel="#gameday"), webhook=True)


async def run_drill(client: Client, slack: FakeSlack, inp: NotifyDrillInput) -> tuple[NotifyDrillResult, str]:
    """Run the stand-in drill on a fresh task queue; its result and its history as JSON, payloads decoded."""
    acts = NotifyActivities(slack_token=TOKEN, slack_api_url=slack.api_url, webhook_url=slack.webhook_url)
    queue = f"notify-{uuid.uuid4()}"
    async with Worker(client, task_queue=queue, workflows=[NotifyDrillWorkflow], activities=acts.all()):
        handle = await client.start_workflow(NotifyDrillWorkflow.run, inp, id=inp.run_id, task_queue=queue)
        result = await handle.result()
        history = await handle.fetch_history()
    return result, decoded(history.to_json())


def decoded(history_json: str) -> str:
    """The history with every payload's base64 ``data`` as text, so a token inside an input or result shows."""
    return re.sub(
        r'"data": "([A-Za-z0-9+/=]+)"', lambda m: base64.b64decode(m[1]).decode(errors="replace"), history_json
    )


async def test_a_drill_s_thread_is_kept_by_the_workflow(client: Client, slack: FakeSlack) -> None:
    slack.fail_next["/api/chat.update"] = 500  # retried by Temporal: the verdict's reply must not be posted twice
    inp = NotifyDrillInput(
        run_id=f"notify-{uuid.uuid4()}", notify=NOTIFY, events=[STARTED, *PHASES, DEVIATED], rollback_after=3
    )

    result, history = await run_drill(client, slack, inp)

    [parent] = slack.parents()
    assert result.failures == [] and result.thread is not None and result.thread.ts == parent.ts
    assert len(slack.thread(parent)) == 6 and parent.updates == 1
    assert [c.status for c in slack.calls if c.path == "/api/chat.update"] == [500, 200]
    hooks = [c for c in slack.calls if c.path == "/webhook"]
    assert [c.body["what"]["kind"] for c in hooks] == ["started"] + ["phase"] * 5 + ["finished"]
    assert parent.ts in history and "#gameday" in history  # payloads are decoded
    assert TOKEN not in history


async def test_slack_down_is_recorded_and_does_not_hold_the_rollback(
    client: Client, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await slack.stop()
    inp = NotifyDrillInput(
        run_id=f"notify-{uuid.uuid4()}",
        notify=Notify(slack=SlackNotify(channel="#gameday")),
        events=[STARTED, GUARDRAIL, ABORTED],
        rollback_after=1,
        schedule_to_close_seconds=1.5,
    )

    result, history = await run_drill(client, slack, inp)

    assert result.log == ["rolled back; notification failures so far: 0", "flushed"]
    assert result.failures == [  # one line for the outage, with a count, not one per event
        "notify_slack: 3 notification(s) not delivered (started, stopped, finished): "
        "Slack chat.postMessage unreachable: ClientConnectorError"
    ]
    assert result.thread is None
    assert "NotifyUnreachable" in history and TOKEN not in history
    assert "unreachable" in caplog.text and TOKEN not in caplog.text
