"""Where a worker sends drill notifications: Slack and webhook settings from its environment only.

The token and the webhook URLs are secrets: they live in the worker's environment, never in workflow inputs,
history or SQL, and ``repr`` hides them so a logged config cannot leak them. The drill file only says *whether*
to notify and which channel (``notify:``, ``model/notify_records.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from gameday.activities.notify.activities import NotifyActivities
from gameday.activities.notify.slack import DEFAULT_API_URL


@dataclass(frozen=True)
class NotifyConfig:
    """Notification settings of one worker.

    Attributes:
        slack_token: Slack bot token, ``xoxb-…`` (``GAMEDAY_SLACK_TOKEN``): a thread per drill, the parent
            updated with the verdict. Used rather than the incoming webhook when both are set.
        slack_webhook_url: Slack incoming webhook URL (``GAMEDAY_SLACK_WEBHOOK_URL``): one message per event,
            in the webhook's own channel.
        slack_api_url: base URL of the Slack Web API (``GAMEDAY_SLACK_API_URL``), for Slack-compatible
            servers and tests.
        webhook_url: where every event is POSTed as JSON when a drill asks for ``notify.webhook``
            (``GAMEDAY_WEBHOOK_URL``).
    """

    slack_token: str = field(default="", repr=False)
    slack_webhook_url: str = field(default="", repr=False)
    slack_api_url: str = DEFAULT_API_URL
    webhook_url: str = field(default="", repr=False)
    slack_buttons: bool = False
    """Put **Stop drill** / **Approve** buttons on each drill's parent message (``GAMEDAY_SLACK_BUTTONS``; on by
    default when ``GAMEDAY_SLACK_APP_TOKEN`` is set): only useful where ``gameday slack`` runs."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifyConfig:
        """Read the ``GAMEDAY_*`` variables (of ``env``, else of the process)."""
        env = os.environ if env is None else env
        return cls(
            slack_token=env.get("GAMEDAY_SLACK_TOKEN", "").strip(),
            slack_webhook_url=env.get("GAMEDAY_SLACK_WEBHOOK_URL", "").strip(),
            slack_api_url=env.get("GAMEDAY_SLACK_API_URL", "").strip() or DEFAULT_API_URL,
            webhook_url=env.get("GAMEDAY_WEBHOOK_URL", "").strip(),
            slack_buttons=_flag(env.get("GAMEDAY_SLACK_BUTTONS", ""), default=bool(env.get("GAMEDAY_SLACK_APP_TOKEN"))),
        )

    @property
    def slack_mode(self) -> str:
        """How Slack is reached, in words safe to print: ``bot token``, ``incoming webhook`` or ``off``."""
        if self.slack_token:
            return "bot token"
        return "incoming webhook" if self.slack_webhook_url else "off"

    def activities(self, ui_url: str = "", namespace: str = "default") -> NotifyActivities:
        """The notification activities bound to these settings (register ``.all()`` on the worker)."""
        return NotifyActivities(
            slack_token=self.slack_token,
            slack_webhook_url=self.slack_webhook_url,
            slack_api_url=self.slack_api_url,
            webhook_url=self.webhook_url,
            slack_buttons=self.slack_buttons,
            ui_url=ui_url,
            namespace=namespace,
        )


def _flag(value: str, *, default: bool) -> bool:
    value = value.strip().lower()
    if not value:
        return default
    return value not in ("0", "false", "no", "off")
