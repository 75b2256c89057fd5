"""Slack buttons and ``/gameday`` (issue 18): real drills on the dev server, ``SlackListener`` connected by Socket
Mode to the fake Slack on loopback, which sends block_actions and slash-command envelopes and checks their acks.

One fake Slack, one worker and one listener for the module; each test runs its own drill.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from gameday.activities.notify.activities import NotifyActivities
from gameday.activities.notify.messages import APPROVE_ACTION, CONTROLS_BLOCK, STOP_ACTION
from gameday.activities.store import Store
from gameday.config.slack_app import SlackAppConfig
from gameday.model.records import Phase, RunRecord, StepStatus, Verdict
from gameday.worker.slack_app import SlackListener
from gameday.workflows.drill_workflow import DrillWorkflow
from tests.activities.notify.drill_events import TOKEN
from tests.fakes.slack import FakeSlack, Posted
from tests.harness import eventually, finish, running_worker, start_drill, wait_phase
from tests.workflows.test_drill_notify import notify_drill

pytestmark = pytest.mark.integration

ALICE, BOB, MALLORY = "U0ALICE", "U0BOB", "U0MALLORY"
ONCALL = "S0ONCALL"
"""A user group: Bob is allowed through it, Alice by id, Mallory not at all."""


@dataclass
class Slack:
    client: Client
    fake: FakeSlack
    queue: str


@pytest_asyncio.fixture(scope="module")
async def slack(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Slack]:
    client = dev_env.client
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('slack') / 'results.db'}")
    fake = await FakeSlack(token=TOKEN, users={ALICE: "Alice", BOB: "Bob", MALLORY: "Mallory"}).start()
    fake.groups[ONCALL] = [BOB]
    config = SlackAppConfig(
        app_token=fake.app_token,
        bot_token=TOKEN,
        api_url=fake.api_url,
        allowed_users=frozenset({ALICE}),
        allowed_group=ONCALL,
    )
    notify = NotifyActivities(slack_token=TOKEN, slack_api_url=fake.api_url, slack_buttons=True)
    try:
        async with running_worker(client, store, notify=notify) as queue:
            listener = SlackListener(config, client, queue)
            await listener.start()
            await fake.connected()
            try:
                yield Slack(client, fake, queue)
            finally:
                await listener.close()
    finally:
        await fake.stop()


async def _parent(fake: FakeSlack, run_id: str) -> Posted:
    """The run's thread parent, once posted."""

    def find() -> Posted | None:
        return next((m for m in fake.parents() if run_id in m.text), None)

    async def posted() -> bool:
        return find() is not None

    await eventually(posted, what=f"the parent message of {run_id}")
    found = find()
    assert found is not None
    return found


def _buttons(message: Posted) -> dict[str, str]:
    """action_id → value of the parent's buttons."""
    return {
        e["action_id"]: e["value"]
        for b in message.blocks
        if b.get("block_id") == CONTROLS_BLOCK
        for e in b.get("elements", [])
    }


async def _observing(slack: Slack, name: str, marker: Path) -> tuple[WorkflowHandle[DrillWorkflow, RunRecord], Posted]:
    handle = await start_drill(slack.client, slack.queue, notify_drill(name, marker))
    await wait_phase(handle, Phase.OBSERVE)
    return handle, await _parent(slack.fake, handle.id)


async def test_stop_pressed_by_an_allowed_user_stops_the_drill_says_who_in_the_thread_and_the_buttons_go(
    slack: Slack, tmp_path: Path
) -> None:
    marker = tmp_path / "flag"
    handle, parent = await _observing(slack, "slack-stop", marker)
    assert _buttons(parent) == {STOP_ACTION: handle.id}, "no Approve without a gate"
    assert marker.exists()

    envelope = await slack.fake.click(ALICE, STOP_ACTION, handle.id, parent)
    assert (await slack.fake.ack(envelope)) == {"envelope_id": envelope}
    record = await finish(handle, "slack_stop")

    assert record.verdict == Verdict.ABORTED
    assert record.stop is not None and record.stop.by == "Alice via Slack"
    assert not marker.exists(), "the fault was reverted"
    assert any("Stopped* by Alice via Slack" in m.blocks[0]["text"]["text"] for m in slack.fake.thread(parent))
    assert parent.updates == 1 and "ABORTED" in parent.text
    assert _buttons(parent) == {}, "the verdict's update took the buttons away"

    await slack.fake.ack(await slack.fake.click(ALICE, STOP_ACTION, handle.id, parent))  # a stale Slack client

    async def told() -> bool:
        return any(e.user == ALICE and "already finished" in e.text for e in slack.fake.ephemerals)

    await eventually(told, what="an ephemeral 'already finished' to Alice")


async def test_a_click_by_someone_not_allowed_is_refused_and_the_drill_goes_on_until_slash_stop(
    slack: Slack, tmp_path: Path
) -> None:
    handle, parent = await _observing(slack, "slack-refused", tmp_path / "flag")

    envelope = await slack.fake.click(MALLORY, STOP_ACTION, handle.id, parent)
    await slack.fake.ack(envelope)

    async def refused() -> bool:
        return any(e.user == MALLORY and "not allowed" in e.text for e in slack.fake.ephemerals)

    await eventually(refused, what="an ephemeral refusal to Mallory")
    assert (await handle.query(DrillWorkflow.status)).phase == Phase.OBSERVE

    envelope = await slack.fake.slash(BOB, f"stop {handle.id} checkout errors")  # allowed through the group
    ack = await slack.fake.ack(envelope)
    assert ack["payload"]["text"] == f"stop sent to {handle.id} by Bob via Slack"
    record = await finish(handle, "slack_slash_stop")
    assert record.verdict == Verdict.ABORTED
    assert record.stop is not None and (record.stop.by, record.stop.reason) == ("Bob via Slack", "checkout errors")


async def test_approve_pressed_at_the_gate_lets_the_drill_go_on(slack: Slack, tmp_path: Path) -> None:
    marker = tmp_path / "flag"
    extra = "approval: {before: inject, timeout: 1m}"
    handle = await start_drill(
        slack.client, slack.queue, notify_drill("slack-gate", marker, observe="300ms", extra=extra)
    )
    await wait_phase(handle, Phase.APPROVAL)
    parent = await _parent(slack.fake, handle.id)
    assert _buttons(parent) == {STOP_ACTION: handle.id, APPROVE_ACTION: handle.id}

    await slack.fake.ack(await slack.fake.click(ALICE, APPROVE_ACTION, handle.id, parent))
    record = await finish(handle, "slack_approve")

    assert record.verdict == Verdict.RESILIENT, record.summary
    gate = next(s for s in record.steps if s.phase == Phase.APPROVAL)
    assert gate.status == StepStatus.OK and gate.detail.startswith("approved by Alice via Slack")
    assert _buttons(parent) == {}


async def test_slash_freeze_stops_what_runs_and_unfreeze_lifts_it(slack: Slack, tmp_path: Path) -> None:
    handle, _ = await _observing(slack, "slack-freeze", tmp_path / "flag")

    refused = await slack.fake.ack(await slack.fake.slash(MALLORY, "freeze"))
    assert "not allowed" in refused["payload"]["text"]
    frozen = await slack.fake.ack(await slack.fake.slash(ALICE, "freeze incident INC-9"))
    assert frozen["payload"]["text"].startswith("frozen by Alice via Slack: incident INC-9")
    record = await finish(handle, "slack_freeze")
    assert record.verdict == Verdict.ABORTED and record.stop is not None
    assert record.stop.reason == "frozen: incident INC-9"

    status = await slack.fake.ack(await slack.fake.slash(MALLORY, "status"))  # read-only: anyone
    assert "FROZEN" in status["payload"]["text"]
    lifted = await slack.fake.ack(await slack.fake.slash(ALICE, "unfreeze"))
    assert lifted["payload"]["text"] == "unfrozen by Alice via Slack: drills may start again"


def test_the_listener_refuses_to_start_when_nobody_may_press() -> None:
    from typer.testing import CliRunner

    from gameday.cli.main import app

    env = {"GAMEDAY_SLACK_APP_TOKEN": "xapp-1-x", "GAMEDAY_SLACK_TOKEN": TOKEN, "GAMEDAY_SLACK_ALLOWED_USERS": ""}
    result = CliRunner().invoke(app, ["slack"], env=env)
    assert result.exit_code == 1
    assert "GAMEDAY_SLACK_ALLOWED_USERS" in result.output and "xapp-1-x" not in result.output
