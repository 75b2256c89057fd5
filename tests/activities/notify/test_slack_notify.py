"""``notify_slack`` against the fake Slack on loopback, slack_sdk pointed at it through ``base_url``.

Each test sends events the way DrillWorkflow will: the thread from one result goes into the next event.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from gameday.activities.notify import errors
from gameday.activities.notify.activities import NotifyActivities, SlackProgress
from gameday.model.notify_records import DrillStopped, NotifyResult, NotifyWhat, SlackThread
from tests.activities.notify.drill_events import (
    ABORTED,
    DEVIATED,
    GUARDRAIL,
    PHASES,
    RUN_ID,
    STARTED,
    TOKEN,
    event,
)
from tests.fakes.slack import FakeSlack, Posted

UI = "http://ui.example:8233"


def bot(slack: FakeSlack, token: str = TOKEN) -> NotifyActivities:
    return NotifyActivities(slack_token=token, slack_api_url=slack.api_url, ui_url=UI)


async def send_in_order(acts: NotifyActivities, whats: list[NotifyWhat]) -> list[NotifyResult]:
    """Send each event with the thread the previous result gave back, as the workflow keeps it."""
    results: list[NotifyResult] = []
    thread: SlackThread | None = None
    for what in whats:
        result = await ActivityEnvironment().run(acts.notify_slack, event(what, thread))
        thread = result.thread
        results.append(result)
    return results


def shown(message: Posted) -> str:
    """What people see of a message: its fallback text and every text in its blocks."""
    return message.text + "\n" + json.dumps(message.blocks)


async def test_a_full_drill_is_one_parent_with_a_thread_of_phases_updated_with_the_verdict(slack: FakeSlack) -> None:
    results = await send_in_order(bot(slack), [STARTED, *PHASES, DEVIATED])

    [parent] = slack.parents()
    assert all(r.delivered and r.thread == SlackThread(channel="C0GAMEDAY", ts=parent.ts) for r in results)
    replies = slack.thread(parent)
    assert [r.text.split(":")[1].split()[0] for r in replies[:-1]] == [p.phase for p in PHASES]
    assert "p95 410ms &gt; 300ms" in shown(replies[2])  # escaped for mrkdwn
    assert "DEVIATED" in replies[-1].text
    assert [c.path for c in slack.calls] == ["/api/chat.postMessage"] * 7 + ["/api/chat.update"]
    assert all(c.authorization == f"Bearer {TOKEN}" for c in slack.calls)
    # The parent now shows the verdict and its figures, with the links.
    assert parent.updates == 1
    assert parent.blocks[0]["text"]["text"] == ":large_yellow_circle: DEVIATED: checkout-db-outage"
    for figure in ("*Faults reverted*\\n2/2", "*Time to recovery*\\n4.5 s", "*Time to safe*\\nn/a"):
        assert figure in shown(parent)
    assert f"{UI}/namespaces/default/workflows/{RUN_ID}" in shown(parent)
    assert "https://reports.example/runs/1" in shown(parent)


async def test_the_start_message_says_what_targets_and_who(slack: FakeSlack) -> None:
    await send_in_order(bot(slack), [STARTED])

    [parent] = slack.messages
    text = shown(parent)
    assert parent.channel == "C0GAMEDAY" and parent.thread_ts is None
    assert ":test_tube: Drill started: checkout-db-outage" in text
    for fact in ("alice", "payments", RUN_ID, "db: docker shop-db", "db-link latency 250ms", "database stalls"):
        assert fact in text


async def test_an_aborted_drill_says_why_in_the_thread(slack: FakeSlack) -> None:
    await send_in_order(bot(slack), [STARTED, PHASES[0], PHASES[1], GUARDRAIL, PHASES[3], PHASES[4], ABORTED])

    [parent] = slack.parents()
    replies = slack.thread(parent)
    assert [r.text for r in replies][2] == "checkout-db-outage: guardrail tripped: error_rate 62% > 50% for 10s"
    assert ":rotating_light: *Guardrail tripped*: error_rate 62% &gt; 50% for 10s" in shown(replies[2])
    assert "observe" not in " ".join(r.text for r in replies)
    assert parent.blocks[0]["text"]["text"] == ":octagonal_sign: ABORTED: checkout-db-outage"
    assert "*Time to safe*\\n310 ms" in shown(parent)


async def test_a_person_stopping_is_named(slack: FakeSlack) -> None:
    await send_in_order(bot(slack), [STARTED, DrillStopped(reason="customers complain", by="bob")])

    [reply] = slack.thread(slack.parents()[0])
    assert reply.text == "checkout-db-outage: stopped by bob: customers complain"


async def test_a_429_with_retry_after_is_waited_out_and_posted_once(slack: FakeSlack) -> None:
    slack.rate_limit_next, slack.retry_after = 1, 1

    [result] = await send_in_order(bot(slack), [STARTED])

    assert result.delivered
    assert [c.status for c in slack.calls] == [429, 200]
    assert len(slack.messages) == 1


async def test_a_long_retry_after_is_left_to_temporal(slack: FakeSlack) -> None:
    slack.rate_limit_next, slack.retry_after = 1, 30

    with pytest.raises(ApplicationError) as raised:
        await send_in_order(bot(slack), [STARTED])

    assert raised.value.type == errors.RATE_LIMITED and not raised.value.non_retryable
    assert raised.value.next_retry_delay == timedelta(seconds=30)
    assert len(slack.calls) == 1


async def test_slack_down_raises_a_retryable_error_without_the_token(
    slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    acts = bot(slack)
    await slack.stop()

    with pytest.raises(ApplicationError) as raised:
        await send_in_order(acts, [STARTED])

    assert raised.value.type == errors.UNREACHABLE and not raised.value.non_retryable
    assert raised.value.__cause__ is None  # no cause with request details goes to history
    assert TOKEN not in str(raised.value) and TOKEN not in repr(raised.value.details)
    assert TOKEN not in caplog.text


async def test_a_bad_token_is_not_retried_and_not_shown(slack: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "xoxb-wrong-token-123456"

    with pytest.raises(ApplicationError) as raised:
        await send_in_order(bot(slack, wrong), [STARTED])

    assert raised.value.type == errors.REJECTED and raised.value.non_retryable
    assert raised.value.message == "Slack chat.postMessage answered 200: invalid_auth"
    assert wrong not in caplog.text and TOKEN not in caplog.text


async def test_a_retried_verdict_does_not_post_its_reply_twice(slack: FakeSlack) -> None:
    [start] = await send_in_order(bot(slack), [STARTED])
    slack.fail_next["/api/chat.update"] = 500
    env = ActivityEnvironment()
    beats: list[object] = []
    env.on_heartbeat = beats.append
    with pytest.raises(ApplicationError) as raised:
        await env.run(bot(slack).notify_slack, event(DEVIATED, start.thread))
    assert raised.value.type == errors.UNAVAILABLE and not raised.value.non_retryable

    # Temporal's retry brings back the attempt's last heartbeat.
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=beats[-1:])
    result = await env.run(bot(slack).notify_slack, event(DEVIATED, start.thread))

    [parent] = slack.parents()
    assert SlackProgress.model_validate(beats[-1]).replied
    assert result.thread == start.thread and parent.updates == 1
    assert len(slack.thread(parent)) == 1


async def test_without_a_start_message_the_first_event_becomes_the_parent(slack: FakeSlack) -> None:
    results = await send_in_order(bot(slack), [PHASES[0], PHASES[1], DEVIATED])

    [parent] = slack.parents()
    assert slack.calls[0].body["text"].startswith("checkout-db-outage: preflight ok")
    assert "thread_ts" not in slack.calls[0].body
    assert len(slack.thread(parent)) == 2 and parent.updates == 1
    assert {r.thread.ts for r in results if r.thread} == {parent.ts}


async def test_an_incoming_webhook_gets_one_message_per_event(slack: FakeSlack) -> None:
    acts = NotifyActivities(slack_webhook_url=slack.incoming_webhook_url, ui_url=UI)

    results = await send_in_order(acts, [STARTED, PHASES[0], GUARDRAIL, ABORTED])

    assert all(r.delivered and r.thread is None for r in results)
    assert [c.path.startswith("/hooks/") for c in slack.calls] == [True] * 4
    assert [c.body["text"] for c in slack.calls][
        2
    ] == "checkout-db-outage: guardrail tripped: error_rate 62% > 50% for 10s"
    assert slack.calls[3].body["blocks"][0]["text"]["text"] == ":octagonal_sign: ABORTED: checkout-db-outage"


async def test_an_incoming_webhook_gone_is_not_retried_and_its_url_not_shown(slack: FakeSlack) -> None:
    slack.fail_next[urlsplit(slack.incoming_webhook_url).path] = 404

    with pytest.raises(ApplicationError) as raised:
        await send_in_order(NotifyActivities(slack_webhook_url=slack.incoming_webhook_url), [STARTED])

    assert raised.value.type == errors.REJECTED and raised.value.non_retryable
    assert TOKEN not in str(raised.value) and "B0FAKE" in slack.calls[0].path


async def test_a_worker_without_slack_settings_sends_nothing_and_says_so(slack: FakeSlack) -> None:
    [result] = await send_in_order(NotifyActivities(), [STARTED])

    assert not result.delivered and "GAMEDAY_SLACK_TOKEN" in result.note
    assert slack.calls == []
