"""``notify_webhook``: each event POSTed as JSON to the worker's generic webhook (the fake's ``/webhook``)."""

from __future__ import annotations

import logging

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from gameday.activities.notify import errors
from gameday.activities.notify.activities import NotifyActivities
from tests.activities.notify.drill_events import GUARDRAIL, RUN_ID, STARTED, event
from tests.fakes.slack import FakeSlack

SECRET_WEBHOOK_PATH = "/webhook?key=s3cr3t-webhook-key-42"


async def test_each_event_is_posted_as_json_with_text_and_link(slack: FakeSlack) -> None:
    acts = NotifyActivities(webhook_url=slack.webhook_url, ui_url="http://ui.example/")

    result = await ActivityEnvironment().run(acts.notify_webhook, event(GUARDRAIL, webhook=True))

    assert result.delivered
    [call] = slack.calls
    assert call.body == {
        "run_id": RUN_ID,
        "drill_name": "checkout-db-outage",
        "team": "payments",
        "at": "2025-01-01T14:00:00Z",
        "what": {"kind": "stopped", "reason": "error_rate 62% > 50% for 10s", "by": "guardrail"},
        "text": "checkout-db-outage: guardrail tripped: error_rate 62% > 50% for 10s",
        "url": f"http://ui.example/namespaces/default/workflows/{RUN_ID}",
        "report_url": "",
    }


async def test_a_drill_without_notify_webhook_posts_nothing(slack: FakeSlack) -> None:
    acts = NotifyActivities(webhook_url=slack.webhook_url)

    result = await ActivityEnvironment().run(acts.notify_webhook, event(STARTED))

    assert not result.delivered and slack.calls == []


async def test_a_failing_webhook_is_reported_without_its_url(
    slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    acts = NotifyActivities(webhook_url=slack.webhook_url.replace("/webhook", SECRET_WEBHOOK_PATH))
    slack.fail_next["/webhook"] = 503

    with pytest.raises(ApplicationError) as unavailable:
        await ActivityEnvironment().run(acts.notify_webhook, event(STARTED, webhook=True))
    await slack.stop()
    with pytest.raises(ApplicationError) as down:
        await ActivityEnvironment().run(acts.notify_webhook, event(STARTED, webhook=True))

    assert (unavailable.value.type, unavailable.value.non_retryable) == (errors.UNAVAILABLE, False)
    assert unavailable.value.message == "webhook answered 503"
    assert (down.value.type, down.value.non_retryable) == (errors.UNREACHABLE, False)
    for text in (unavailable.value.message, down.value.message, caplog.text):
        assert "s3cr3t" not in text


def test_scrub_hides_a_webhook_url_and_its_key_parts() -> None:
    url = "https://hooks.slack.com/services/T0001/B0002/XXXXXXXXXXXXXXXX"
    secrets = errors.url_secrets(url)

    assert errors.scrub(f"POST {url} failed; key XXXXXXXXXXXXXXXX", secrets) == "POST [secret] failed; key [secret]"
