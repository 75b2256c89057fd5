"""The notification activities, ``notify_slack`` and ``notify_webhook``: one drill event each, one channel each.

Two activities rather than one, so a failing webhook is retried without posting to Slack again, and the other
way round. Both are best effort for the drill: the workflow records their failures and never waits on them on
its safety path (see ``docs/ARCHITECTURE.md``, Notifications).

Slack with a bot token keeps one thread per drill. The first message that lands becomes the parent (normally
the start); its :class:`SlackThread` goes back to the workflow in :class:`NotifyResult`, and the workflow passes it
in every later event, so the thread survives worker crashes. Within one activity, what was already posted is
heartbeated (:class:`SlackProgress`), so a retry after a crash or a failed ``chat.update`` does not post it twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel
from temporalio import activity

from gameday.activities.notify import webhook
from gameday.activities.notify.messages import Links, finished, render
from gameday.activities.notify.slack import DEFAULT_API_URL, SlackBot, SlackIncomingWebhook
from gameday.model.notify_records import DrillFinished, NotifyEvent, NotifyResult, SlackThread


class SlackProgress(BaseModel):
    """Heartbeat details of ``notify_slack``: what this event has posted so far."""

    thread: SlackThread | None = None
    replied: bool = False
    """This event's own message is posted (a reply, or the parent itself)."""


class NotifyActivities:
    """``notify_slack`` and ``notify_webhook``, bound to the worker's secrets and Web UI address.

    Args:
        slack_token: Slack bot token (``GAMEDAY_SLACK_TOKEN``); threads and updates. Wins over the webhook.
        slack_webhook_url: Slack incoming webhook (``GAMEDAY_SLACK_WEBHOOK_URL``); one message per event.
        slack_api_url: base URL of the Slack Web API (``GAMEDAY_SLACK_API_URL``).
        webhook_url: where ``notify_webhook`` POSTs events as JSON (``GAMEDAY_WEBHOOK_URL``).
        ui_url: the Temporal Web UI base, for a link to the run.
        slack_buttons: put Stop drill (and Approve, at a gate) buttons on the parent (``gameday slack``
            answers them); the verdict's ``chat.update`` removes them.
        namespace: the Temporal namespace of the runs.
    """

    def __init__(
        self,
        *,
        slack_token: str = "",
        slack_webhook_url: str = "",
        slack_api_url: str = DEFAULT_API_URL,
        webhook_url: str = "",
        slack_buttons: bool = False,
        ui_url: str = "",
        namespace: str = "default",
    ) -> None:
        self._slack_bot = SlackBot(slack_token, slack_api_url) if slack_token else None
        self._slack_hook = SlackIncomingWebhook(slack_webhook_url) if slack_webhook_url else None
        self._webhook_url = webhook_url
        self._buttons = slack_buttons
        self._ui_url = ui_url.rstrip("/")
        self._namespace = namespace

    def all(self) -> Sequence[Callable[..., Any]]:
        """The activities, for ``Worker(activities=...)``."""
        return [self.notify_slack, self.notify_webhook]

    @activity.defn(name="notify_slack")
    async def notify_slack(self, event: NotifyEvent) -> NotifyResult:
        """Post ``event`` to Slack: to the drill's thread with a bot token, as its own message with a webhook.

        Returns:
            Whether it was sent, and the thread to pass in the next event (unchanged without a bot token).

        Raises:
            ApplicationError: ``NotifyUnreachable``, ``NotifyRateLimited``, ``NotifyUnavailable`` (retryable)
                or ``NotifyRejected`` (not retryable); never with a token or webhook URL in its text.
        """
        if event.notify.slack is None:
            return NotifyResult(delivered=False, thread=event.thread, note="the drill has no notify.slack")
        links = self._links(event)
        if self._slack_bot is not None:
            thread = await self._post_in_thread(self._slack_bot, event, links)
            activity.logger.info("Slack: %s of run %s posted", event.what.kind, event.run_id)
            return NotifyResult(delivered=True, thread=thread)
        if self._slack_hook is not None:
            await self._slack_hook.send(render(event, links))
            activity.logger.info("Slack webhook: %s of run %s sent", event.what.kind, event.run_id)
            return NotifyResult(delivered=True, thread=event.thread)
        note = "the worker has neither GAMEDAY_SLACK_TOKEN nor GAMEDAY_SLACK_WEBHOOK_URL"
        activity.logger.warning("Slack: %s of run %s not sent: %s", event.what.kind, event.run_id, note)
        return NotifyResult(delivered=False, thread=event.thread, note=note)

    @activity.defn(name="notify_webhook")
    async def notify_webhook(self, event: NotifyEvent) -> NotifyResult:
        """POST ``event`` as JSON to the worker's generic webhook.

        Raises:
            ApplicationError: as ``notify_slack``; never with the webhook URL in its text.
        """
        if not event.notify.webhook:
            return NotifyResult(delivered=False, thread=event.thread, note="the drill has no notify.webhook")
        if not self._webhook_url:
            note = "the worker has no GAMEDAY_WEBHOOK_URL"
            activity.logger.warning("webhook: %s of run %s not sent: %s", event.what.kind, event.run_id, note)
            return NotifyResult(delivered=False, thread=event.thread, note=note)
        links = self._links(event)
        await webhook.post(self._webhook_url, webhook.payload(event, render(event, links), links))
        activity.logger.info("webhook: %s of run %s sent", event.what.kind, event.run_id)
        return NotifyResult(delivered=True, thread=event.thread)

    async def _post_in_thread(self, bot: SlackBot, event: NotifyEvent, links: Links) -> SlackThread:
        """Post the event as a reply (or as the parent if there is none yet); the verdict also rewrites the parent."""
        progress = _resumed_progress()
        parent = event.thread or progress.thread
        assert event.notify.slack is not None
        if not progress.replied:
            if parent is None:
                parent = await bot.post(event.notify.slack.channel, render(event, links, buttons=self._buttons))
                _heartbeat(SlackProgress(thread=parent, replied=True))
                return parent  # the first message is the parent: nothing to reply to or update
            await bot.post(event.notify.slack.channel, render(event, links), thread=parent)
            _heartbeat(SlackProgress(thread=parent, replied=True))
        assert parent is not None
        if isinstance(event.what, DrillFinished) and event.thread is not None:
            await bot.update(parent, finished(event, event.what, links))
        return parent

    def _links(self, event: NotifyEvent) -> Links:
        web_ui = f"{self._ui_url}/namespaces/{self._namespace}/workflows/{event.run_id}" if self._ui_url else ""
        report = event.what.report_url if isinstance(event.what, DrillFinished) else ""
        return Links(web_ui=web_ui, report=report)


def _resumed_progress() -> SlackProgress:
    """What an earlier attempt of this activity heartbeated, if anything."""
    details = activity.info().heartbeat_details
    return SlackProgress.model_validate(details[0]) if details else SlackProgress()


def _heartbeat(progress: SlackProgress) -> None:
    activity.heartbeat(progress.model_dump(mode="json"))
