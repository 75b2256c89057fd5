"""The ``notify`` file section, the notify records through Temporal's converter, and the worker's settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from gameday.activities.notify.messages import STATUS_EMOJI, VERDICT_EMOJI
from gameday.config.notify import NotifyConfig
from gameday.model.notify_records import Notify, NotifyEvent, NotifyWhat, PhaseDone, SlackThread
from gameday.model.records import Phase, StepStatus, Verdict
from tests.activities.notify.drill_events import ABORTED, PHASES, STARTED, TOKEN, event


def test_the_file_section_reads_as_in_product_md() -> None:
    notify = Notify.model_validate({"slack": {"channel": "#gameday"}, "webhook": True})

    assert notify.slack is not None and notify.slack.channel == "#gameday" and notify.webhook
    assert Notify.model_validate({}) == Notify(slack=None, webhook=False)


@pytest.mark.parametrize(
    "section",
    [{"slack": {"channel": "game day"}}, {"slack": {}}, {"slack": {"channel": "#g", "token": "x"}}, {"email": 1}],
)
def test_a_bad_section_is_refused(section: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Notify.model_validate(section)


@pytest.mark.parametrize("what", [STARTED, PHASES[2], ABORTED])
def test_events_cross_temporal_s_converter_unchanged(what: NotifyWhat) -> None:
    sent = event(what, SlackThread(channel="C0GAMEDAY", ts="1700000000.000001"), webhook=True)
    converter = pydantic_data_converter.payload_converter

    [payload] = converter.to_payloads([sent])
    [back] = converter.from_payloads([payload], [NotifyEvent])

    assert back == sent and type(back.what) is type(what)


def test_messages_know_every_verdict_and_step_status() -> None:
    # notify_records carries these as strings (drill.py imports it, so it cannot import records.py).
    assert set(VERDICT_EMOJI) == {v.value for v in Verdict}
    assert set(STATUS_EMOJI) == {s.value for s in StepStatus}
    # ... and the workflow passes its enums as they are.
    done = PhaseDone(phase=Phase.OBSERVE, status=StepStatus.OK)
    assert done.model_dump(mode="json") == {
        "kind": "phase",
        "phase": "observe",
        "status": "ok",
        "detail": "",
        "seconds": None,
    }


def test_the_worker_reads_its_settings_and_never_shows_secrets() -> None:
    config = NotifyConfig.from_env(
        {
            "GAMEDAY_SLACK_TOKEN": f" {TOKEN} ",
            "GAMEDAY_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T1/B1/hook-secret",
            "GAMEDAY_WEBHOOK_URL": "https://chat.example/hooks/webhook-secret",
        }
    )

    assert config.slack_token == TOKEN and config.slack_mode == "bot token"
    assert config.slack_api_url == "https://slack.com/api/"
    for secret in (TOKEN, "hook-secret", "webhook-secret"):
        assert secret not in repr(config)
    assert NotifyConfig.from_env({}).slack_mode == "off"
