"""``${env:NAME}`` header references, resolved from the worker's environment at send time, only for the variables
the worker is told it may give out (``GAMEDAY_DRILL_SECRETS``), and scrubbed from whatever text they reach."""

from __future__ import annotations

import pytest

from gameday.activities.secrets import MASK, SecretMissing, SecretRefused, resolve, scrub


def test_every_reference_in_a_value_is_replaced_and_plain_values_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMEDAY_DRILL_SECRETS", "GD_USER, GD_PASS")
    monkeypatch.setenv("GD_USER", "bot")
    monkeypatch.setenv("GD_PASS", "pa$$")
    headers = {"Authorization": "Basic ${env:GD_USER}:${env:GD_PASS}", "X-Team": "payments", "X-Odd": "${env:}"}
    resolved = resolve(headers)
    assert resolved.headers == {"Authorization": "Basic bot:pa$$", "X-Team": "payments", "X-Odd": "${env:}"}
    assert set(resolved.values) == {"bot", "pa$$"}


def test_a_missing_variable_is_named_and_no_other_value_leaks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMEDAY_DRILL_SECRETS", "GD_SET,GD_MISSING")
    monkeypatch.setenv("GD_SET", "visible-secret")
    monkeypatch.delenv("GD_MISSING", raising=False)
    with pytest.raises(SecretMissing) as raised:
        resolve({"A": "${env:GD_SET}", "B": "${env:GD_MISSING}"})
    assert "GD_MISSING" in str(raised.value) and "visible-secret" not in str(raised.value)


def test_without_an_allowlist_nothing_resolves_and_the_error_names_the_variable_and_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GAMEDAY_DRILL_SECRETS", raising=False)
    monkeypatch.setenv("FLAGS_TOKEN", "tok-never-sent")
    with pytest.raises(SecretRefused) as raised:
        resolve({"Authorization": "Bearer ${env:FLAGS_TOKEN}"})
    message = str(raised.value)
    assert "FLAGS_TOKEN" in message and "GAMEDAY_DRILL_SECRETS=FLAGS_TOKEN" in message
    assert "tok-never-sent" not in message


def test_only_listed_names_and_prefixes_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMEDAY_DRILL_SECRETS", "FLAGS_TOKEN,DRILL_*")
    for name in ("FLAGS_TOKEN", "DRILL_API_KEY", "HOME_TOKEN"):
        monkeypatch.setenv(name, f"value-of-{name}")

    assert resolve({"A": "${env:FLAGS_TOKEN}", "B": "${env:DRILL_API_KEY}"}).headers == {
        "A": "value-of-FLAGS_TOKEN",
        "B": "value-of-DRILL_API_KEY",
    }
    with pytest.raises(SecretRefused) as raised:
        resolve({"C": "${env:HOME_TOKEN}"})
    assert "HOME_TOKEN is not in this worker's GAMEDAY_DRILL_SECRETS (FLAGS_TOKEN, DRILL_*)" in str(raised.value)


@pytest.mark.parametrize(
    "name",
    [
        "GAMEDAY_SLACK_TOKEN",
        "GAMEDAY_DATABASE_URL",
        "GAMEDAY_ALERT_WEBHOOK",
        "TEMPORAL_API_KEY",
        "DATABASE_URL",
        "DRILL_DATABASE_URL",
        "DRILL_SLACK_BOT_TOKEN",
        "DRILL_WEBHOOK_URL",
        "PGPASSWORD",
    ],
)
def test_gamedays_own_settings_never_resolve_even_when_listed(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("GAMEDAY_DRILL_SECRETS", f"{name},DRILL_*,GAMEDAY_*")
    monkeypatch.setenv(name, "xoxb-worker-own-secret")
    with pytest.raises(SecretRefused) as raised:
        resolve({"Authorization": f"Bearer ${{env:{name}}}"})
    assert name in str(raised.value) and "never" in str(raised.value)
    assert "xoxb-worker-own-secret" not in str(raised.value)


def test_an_allowlist_entry_that_is_not_a_name_refuses_and_says_which(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMEDAY_DRILL_SECRETS", "FLAGS_TOKEN,*")
    monkeypatch.setenv("FLAGS_TOKEN", "tok")
    with pytest.raises(SecretRefused) as raised:
        resolve({"A": "${env:FLAGS_TOKEN}"})
    assert "'*'" in str(raised.value)


def test_scrub_masks_a_value_as_written_json_escaped_and_percent_encoded() -> None:
    value = 'tok/"quoted" +1'
    text = f'echo: {value} | {{"h": "tok/\\"quoted\\" +1"}} | ?t=tok%2F%22quoted%22%20%2B1'
    assert scrub(text, [value]) == f'echo: {MASK} | {{"h": "{MASK}"}} | ?t={MASK}'
    assert scrub("nothing here", [value]) == "nothing here"
    assert scrub("keep all", ["", "zz"]) == "keep all"
