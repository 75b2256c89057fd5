"""The generic webhook: each drill event POSTed as JSON, for teams on chat tools other than Slack.

The body is the event as the workflow sent it (``run_id``, ``drill_name``, ``team``, ``at``, ``what`` with its
``kind``), minus the Slack-only fields, plus ``text`` (one line, which Mattermost, Rocket.Chat and most chat
webhooks display as is) and ``url`` (the run in the Temporal Web UI). The URL is a secret of the worker's: never
logged, and scrubbed from every error. Sent with aiohttp rather than httpx because httpx logs every request's
full URL at INFO.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from gameday.activities.notify import errors
from gameday.activities.notify.messages import Links, Message
from gameday.model.notify_records import NotifyEvent

TIMEOUT = 10.0
"""Seconds one POST may take; the workflow's retry policy decides how often it is tried."""
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 413, 422})
"""Answers that no retry can fix; other failures (408, 429, 5xx) are retried."""


def payload(event: NotifyEvent, message: Message, links: Links) -> dict[str, Any]:
    """The JSON body for ``event``."""
    body = event.model_dump(mode="json", exclude={"notify", "thread"})
    return {**body, "text": message.text, "url": links.web_ui, "report_url": links.report}


async def post(url: str, body: dict[str, Any]) -> None:
    """POST ``body`` to ``url``.

    Raises:
        ApplicationError: see :mod:`activities.notify.errors`.
    """
    what = "webhook"
    secrets = errors.url_secrets(url)
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session,
            session.post(url, json=body) as response,
        ):
            status, headers = response.status, response.headers
    except (aiohttp.ClientError, TimeoutError, OSError) as err:
        raise errors.unreachable(what, err, secrets) from None
    if 200 <= status < 300:
        return
    if status == 429:
        raise errors.rate_limited(what, errors.retry_after(headers), secrets)
    raise errors.answered(what, status, "", secrets, permanent=status in PERMANENT_STATUSES)
