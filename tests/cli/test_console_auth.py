"""``console/auth.py``: who the console's environment lets in, and what they may press (pure, no server)."""

from __future__ import annotations

import base64

import pytest

from gameday.console.auth import ConsoleAuth


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def test_read_only_by_default_and_no_action_without_a_person() -> None:
    nobody = ConsoleAuth.from_env({"GAMEDAY_CONSOLE_ACTIONS": "all"})
    assert not nobody.required and not nobody.may_act
    assert not nobody.may(None, "stop")
    signed = ConsoleAuth.from_env({"GAMEDAY_CONSOLE_USERS": "alice:s1"})
    assert signed.required and not signed.may("alice", "stop")  # no GAMEDAY_CONSOLE_ACTIONS: read-only


def test_users_sign_in_by_basic_auth_or_cookie_and_the_token_acts_as_its_user() -> None:
    auth = ConsoleAuth.from_env(
        {
            "GAMEDAY_CONSOLE_USERS": "alice:s1, bob:s2",
            "GAMEDAY_CONSOLE_TOKEN": "t0k",
            "GAMEDAY_CONSOLE_TOKEN_USER": "ci",
            "GAMEDAY_CONSOLE_ACTIONS": "stop,approve",
        }
    )
    assert auth.who(basic("alice", "s1"), None) == "alice"
    assert auth.who(basic("alice", "s2"), None) is None
    assert auth.who("Bearer t0k", None) == "ci" and auth.who("Bearer nope", None) is None
    cookie = auth.cookie_for("bob")
    assert auth.who(None, cookie) == "bob"
    assert auth.who(None, cookie.replace("bob", "alice", 1)) is None  # a cookie names no one else
    assert auth.may("alice", "stop") and auth.may("ci", "approve") and not auth.may("alice", "freeze")
    changed = ConsoleAuth.from_env({"GAMEDAY_CONSOLE_USERS": "bob:new"})
    assert changed.who(None, cookie) is None  # a new secret signs old cookies out


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"GAMEDAY_CONSOLE_USERS": "alice"}, "user:secret"),
        ({"GAMEDAY_CONSOLE_ACTIONS": "stop,launch"}, "unknown launch"),
    ],
)
def test_a_bad_setting_is_one_clear_error(env: dict[str, str], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        ConsoleAuth.from_env(env)
