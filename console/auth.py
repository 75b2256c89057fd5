"""Who may look and who may press what: the console's own environment, never a drill's.

- ``GAMEDAY_CONSOLE_USERS``: ``alice:SECRET,bob:SECRET2``: each person signs in with the login form (a cookie)
  or HTTP basic auth.
- ``GAMEDAY_CONSOLE_TOKEN``: one bearer token (``Authorization: Bearer ...``), for scripts; it acts as
  ``GAMEDAY_CONSOLE_TOKEN_USER`` (default ``token``).
- ``GAMEDAY_CONSOLE_ACTIONS``: which actions are enabled, comma-separated, of ``stop``, ``approve``, ``freeze``,
  ``schedules`` (or ``all``). Default none: the console is read-only and every action answers 403.

With neither users nor token, every page is open to whoever reaches the port (bound to loopback by default) and
no action is enabled whatever ``GAMEDAY_CONSOLE_ACTIONS`` says: an action must name a person.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

ACTIONS = ("stop", "approve", "freeze", "schedules")
COOKIE = "gameday_console"


@dataclass(frozen=True)
class ConsoleAuth:
    users: dict[str, str] = field(default_factory=dict)
    """user → secret."""
    token: str | None = None
    token_user: str = "token"
    actions: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ConsoleAuth:
        env = os.environ if env is None else env
        users: dict[str, str] = {}
        for item in env.get("GAMEDAY_CONSOLE_USERS", "").split(","):
            name, sep, secret = item.strip().partition(":")
            if not item.strip():
                continue
            if not sep or not name or not secret:
                raise ValueError("GAMEDAY_CONSOLE_USERS: write user:secret pairs separated by commas")
            users[name] = secret
        wanted = {a.strip().lower() for a in env.get("GAMEDAY_CONSOLE_ACTIONS", "").split(",") if a.strip()}
        if "all" in wanted:
            wanted = set(ACTIONS)
        unknown = wanted - set(ACTIONS)
        if unknown:
            raise ValueError(
                f"GAMEDAY_CONSOLE_ACTIONS: unknown {', '.join(sorted(unknown))}: some of {', '.join(ACTIONS)} or all"
            )
        return cls(
            users=users,
            token=env.get("GAMEDAY_CONSOLE_TOKEN") or None,
            token_user=env.get("GAMEDAY_CONSOLE_TOKEN_USER", "token") or "token",
            actions=frozenset(wanted),
        )

    @property
    def required(self) -> bool:
        """Whether a person must sign in to see anything."""
        return bool(self.users or self.token)

    @property
    def may_act(self) -> bool:
        """Whether any action is enabled for a signed-in person."""
        return self.required and bool(self.actions)

    def may(self, user: str | None, action: str) -> bool:
        return self.required and user is not None and action in self.actions

    def cookie_for(self, user: str) -> str:
        return f"{user}:{self._mac(user)}"

    def _mac(self, user: str) -> str:
        # Keyed by the user's own secret: changing it signs every old cookie out.
        key = self.users[user].encode()
        return hmac.new(key, f"gameday-console:{user}".encode(), hashlib.sha256).hexdigest()

    def check_password(self, user: str, secret: str) -> bool:
        known = self.users.get(user)
        return known is not None and hmac.compare_digest(known.encode(), secret.encode())

    def who(self, authorization: str | None, cookie: str | None) -> str | None:
        """The signed-in person, from a bearer token, basic auth or the login cookie; ``None`` when none holds."""
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and self.token and hmac.compare_digest(value.encode(), self.token.encode()):
                return self.token_user
            if scheme.lower() == "basic":
                try:
                    user, _, secret = base64.b64decode(value).decode().partition(":")
                except ValueError:
                    return None
                return user if self.check_password(user, secret) else None
        if cookie:
            user, _, mac = cookie.rpartition(":")
            if user in self.users and hmac.compare_digest(mac, self._mac(user)):
                return user
        return None
