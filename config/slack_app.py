"""Settings of ``gameday slack``: Slack Socket Mode tokens and who may press its buttons.

Both tokens are secrets: they come from the listener's environment only, never from a drill, and ``repr`` hides
them. The allowlist is Slack user ids (``U…``) and/or one user group (``S…``, read with
``usergroups.users.list``); with neither, the listener does not start (nobody could press anything).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from gameday.activities.notify.slack import DEFAULT_API_URL


@dataclass(frozen=True)
class SlackAppConfig:
    """What the Slack listener needs.

    Attributes:
        app_token: app-level token, ``xapp-…``, scope ``connections:write`` (``GAMEDAY_SLACK_APP_TOKEN``): opens
            the Socket Mode websocket, so Slack needs no public endpoint of ours.
        bot_token: the bot token the worker posts with (``GAMEDAY_SLACK_TOKEN``): ephemeral refusals,
            ``users.info``, ``usergroups.users.list``, the parent's update after an approval.
        api_url: base URL of the Slack Web API (``GAMEDAY_SLACK_API_URL``), for tests.
        allowed_users: Slack user ids allowed to stop, approve and freeze (``GAMEDAY_SLACK_ALLOWED_USERS``,
            comma-separated).
        allowed_group: a Slack user group id whose members are allowed too (``GAMEDAY_SLACK_ALLOWED_GROUP``).
    """

    app_token: str = field(default="", repr=False)
    bot_token: str = field(default="", repr=False)
    api_url: str = DEFAULT_API_URL
    allowed_users: frozenset[str] = frozenset()
    allowed_group: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SlackAppConfig:
        """Read the ``GAMEDAY_*`` variables (of ``env``, else of the process)."""
        env = os.environ if env is None else env
        users = env.get("GAMEDAY_SLACK_ALLOWED_USERS", "")
        return cls(
            app_token=env.get("GAMEDAY_SLACK_APP_TOKEN", "").strip(),
            bot_token=env.get("GAMEDAY_SLACK_TOKEN", "").strip(),
            api_url=env.get("GAMEDAY_SLACK_API_URL", "").strip() or DEFAULT_API_URL,
            allowed_users=frozenset(u.strip() for u in users.split(",") if u.strip()),
            allowed_group=env.get("GAMEDAY_SLACK_ALLOWED_GROUP", "").strip(),
        )

    @property
    def enabled(self) -> bool:
        """An app token is set: the listener should run (``gameday dev`` starts it then)."""
        return bool(self.app_token)

    def problem(self) -> str:
        """Why the listener cannot run with these settings, in one line; empty when it can."""
        if not self.app_token.startswith("xapp-"):
            return "GAMEDAY_SLACK_APP_TOKEN must be an app-level token (xapp-…) with connections:write"
        if not self.bot_token:
            return "GAMEDAY_SLACK_TOKEN (the bot token, xoxb-…) is required too"
        if not self.allowed_users and not self.allowed_group:
            return "set GAMEDAY_SLACK_ALLOWED_USERS (user ids) or GAMEDAY_SLACK_ALLOWED_GROUP: nobody may press yet"
        return ""
