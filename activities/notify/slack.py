"""Posting to Slack with slack_sdk: the Web API with a bot token (threads, updates) or an incoming webhook.

Short 429 waits are taken inside the call by slack_sdk's rate-limit retry handler; a longer ``Retry-After``
would hold the activity past its timeout, so it is handed to Temporal instead (``NotifyRateLimited`` with
``next_retry_delay``). Connection errors and 5xx are not retried here either: each activity attempt stays short
and Temporal's retry policy, stated at the call site, decides the rest.

slack_sdk logs whole requests at DEBUG (an incoming webhook's secret URL, bodies) whenever its logger's *own*
level is unset, whatever the handlers; :data:`SDK_LOG` is set to WARNING so those lines are never even built.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient
from temporalio.exceptions import ApplicationError

from gameday.activities.notify import errors
from gameday.activities.notify.messages import Message
from gameday.model.notify_records import SlackThread

DEFAULT_API_URL = "https://slack.com/api/"
REQUEST_TIMEOUT = 10
"""Seconds one HTTP request may take (slack_sdk wants an int)."""
INLINE_RETRY_AFTER_MAX = 5.0
"""A 429 asking to wait up to this long is waited out in the activity; longer goes back to Temporal."""
INLINE_RATE_LIMIT_RETRIES = 2

SDK_LOG = logging.getLogger("gameday.notify.slack_sdk")
SDK_LOG.setLevel(logging.WARNING)

PERMANENT_ERRORS = frozenset(
    {
        "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission",
        "missing_scope", "not_allowed_token_type", "channel_not_found", "not_in_channel", "is_archived",
        "msg_too_long", "no_text", "invalid_blocks", "invalid_arguments", "message_not_found",
        "cant_update_message", "edit_window_closed", "restricted_action", "ekm_access_denied",
    }
)  # fmt: skip
"""Slack error codes that no retry can fix."""

WEBHOOK_PERMANENT_STATUSES = frozenset({400, 403, 404, 410})
"""Incoming webhook answers that no retry can fix: bad payload, forbidden, gone, channel archived."""


class ShortRateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's rate-limit handler, limited to waits the activity can afford (see module docstring)."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = errors.retry_after(response.headers)
        return wait is None or wait <= INLINE_RETRY_AFTER_MAX


class SlackBot:
    """The Slack Web API with a bot token: ``chat.postMessage`` and ``chat.update``.

    Args:
        token: the bot token (``xoxb-…``); sent only in the Authorization header.
        api_url: base URL of the Web API (a Slack-compatible server, or a fake in tests).
    """

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL) -> None:
        self._secrets = (token,)
        self._client = AsyncWebClient(
            token=token,
            base_url=api_url or DEFAULT_API_URL,
            timeout=REQUEST_TIMEOUT,
            logger=SDK_LOG,
            retry_handlers=[ShortRateLimitRetry(max_retry_count=INLINE_RATE_LIMIT_RETRIES)],
        )

    async def post(self, channel: str, message: Message, thread: SlackThread | None = None) -> SlackThread:
        """Post ``message`` to ``channel``, in ``thread`` when given; returns where it landed.

        Raises:
            ApplicationError: see :mod:`activities.notify.errors`.
        """
        extra: dict[str, Any] = {"thread_ts": thread.ts} if thread else {}
        target = thread.channel if thread else channel
        try:
            response = await self._client.chat_postMessage(
                channel=target, text=message.text, blocks=message.blocks, unfurl_links=False, **extra
            )
        except (SlackApiError, ClientError, TimeoutError, OSError) as err:
            raise self._failure("chat.postMessage", err) from None
        return SlackThread(channel=str(response["channel"]), ts=str(response["ts"]))

    async def update(self, thread: SlackThread, message: Message) -> None:
        """Rewrite the message at ``thread`` (the parent) with ``message``.

        Raises:
            ApplicationError: see :mod:`activities.notify.errors`.
        """
        try:
            await self._client.chat_update(
                channel=thread.channel, ts=thread.ts, text=message.text, blocks=message.blocks
            )
        except (SlackApiError, ClientError, TimeoutError, OSError) as err:
            raise self._failure("chat.update", err) from None

    def _failure(self, method: str, err: BaseException) -> ApplicationError:
        what = f"Slack {method}"
        if not isinstance(err, SlackApiError):
            return errors.unreachable(what, err, self._secrets)
        status = int(err.response.status_code)
        code = str(err.response.get("error") or "")
        if status == 429 or code == "ratelimited":
            return errors.rate_limited(what, errors.retry_after(err.response.headers), self._secrets)
        return errors.answered(what, status, code, self._secrets, permanent=code in PERMANENT_ERRORS)


class SlackIncomingWebhook:
    """A Slack incoming webhook: one message per call, to the channel the webhook was made for; no threads.

    Args:
        url: the webhook URL, itself a secret (``https://hooks.slack.com/services/…``).
    """

    def __init__(self, url: str) -> None:
        self._secrets = errors.url_secrets(url)
        self._client = AsyncWebhookClient(
            url,
            timeout=REQUEST_TIMEOUT,
            logger=SDK_LOG,
            retry_handlers=[ShortRateLimitRetry(max_retry_count=INLINE_RATE_LIMIT_RETRIES)],
        )

    async def send(self, message: Message) -> None:
        """Send ``message``.

        Raises:
            ApplicationError: see :mod:`activities.notify.errors`.
        """
        what = "Slack incoming webhook"
        try:
            response = await self._client.send(text=message.text, blocks=message.blocks, unfurl_links=False)
        except (ClientError, TimeoutError, OSError) as err:
            raise errors.unreachable(what, err, self._secrets) from None
        if response.status_code == 200:
            return
        if response.status_code == 429:
            raise errors.rate_limited(what, errors.retry_after(response.headers), self._secrets)
        permanent = response.status_code in WEBHOOK_PERMANENT_STATUSES
        raise errors.answered(what, response.status_code, response.body[:100], self._secrets, permanent=permanent)
