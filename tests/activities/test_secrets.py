"""``${env:NAME}`` header references, resolved from the worker's environment at send time."""

from __future__ import annotations

import pytest

from activities.secrets import SecretMissing, resolve


def test_every_reference_in_a_value_is_replaced_and_plain_values_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GD_USER", "bot")
    monkeypatch.setenv("GD_PASS", "pa$$")
    headers = {"Authorization": "Basic ${env:GD_USER}:${env:GD_PASS}", "X-Team": "payments", "X-Odd": "${env:}"}
    assert resolve(headers) == {"Authorization": "Basic bot:pa$$", "X-Team": "payments", "X-Odd": "${env:}"}


def test_a_missing_variable_is_named_and_no_other_value_leaks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GD_SET", "visible-secret")
    monkeypatch.delenv("GD_MISSING", raising=False)
    with pytest.raises(SecretMissing) as raised:
        resolve({"A": "${env:GD_SET}", "B": "${env:GD_MISSING}"})
    assert "GD_MISSING" in str(raised.value) and "visible-secret" not in str(raised.value)
