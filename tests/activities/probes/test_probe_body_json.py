"""``body_json`` on an http probe, against a loopback server whose JSON changes between samples (issue 15)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from gameday.activities.probes import http
from gameday.activities.probes.judge import Sample
from gameday.model.drill import HttpProbe
from tests.activities.probes.conftest import JSON_DOCUMENTS


def _serve(key: str, document: Any) -> None:
    JSON_DOCUMENTS[key] = json.dumps(document)


async def _sample(server: str, key: str, body_json: dict[str, Any]) -> Sample:
    spec = HttpProbe.model_validate({"url": f"{server}/json/{key}", "body_json": body_json})
    async with httpx.AsyncClient() as client:
        return await http.take_sample(spec, client)


async def test_equals_follows_the_served_value(server: str) -> None:
    test = {"path": "breaker.state", "equals": "CLOSED"}
    _serve("breaker", {"breaker": {"state": "CLOSED"}})
    assert (await _sample(server, "breaker", test)).ok

    _serve("breaker", {"breaker": {"state": "OPEN"}})
    sample = await _sample(server, "breaker", test)
    assert not sample.ok
    assert sample.problem == "breaker.state is 'OPEN', expected 'CLOSED'"


async def test_equals_keeps_json_types_apart(server: str) -> None:
    _serve("typed", {"degraded": True, "level": 1})
    assert (await _sample(server, "typed", {"path": "degraded", "equals": True})).ok
    assert (await _sample(server, "typed", {"path": "level", "equals": 1})).ok
    sample = await _sample(server, "typed", {"path": "level", "equals": True})
    assert sample.problem == "level is 1, expected true"


async def test_in_accepts_any_listed_value(server: str) -> None:
    test = {"path": "level", "in": ["optimal", "degraded"]}
    _serve("level", {"level": "degraded"})
    assert (await _sample(server, "level", test)).ok
    _serve("level", {"level": "down"})
    sample = await _sample(server, "level", test)
    assert sample.problem == "level is 'down', expected one of 'optimal', 'degraded'"


async def test_matches_searches_the_value(server: str) -> None:
    _serve("version", {"build": {"version": "2.14.1"}})
    assert (await _sample(server, "version", {"path": "build.version", "matches": r"^2\.14\."})).ok
    sample = await _sample(server, "version", {"path": "build.version", "matches": r"^3\."})
    assert sample.problem == r"build.version is '2.14.1', expected to match '^3\\.'"


@pytest.mark.parametrize(
    ("compare", "ok"), [("< 5", True), ("<= 3", True), ("> 3", False), (">= 3", True), (">= 4", False)]
)
async def test_compare_against_a_number(server: str, compare: str, ok: bool) -> None:
    _serve("queue", {"queue": {"depth": 3}})
    sample = await _sample(server, "queue", {"path": "queue.depth", "compare": compare})
    assert sample.ok is ok
    if not ok:
        assert sample.problem == f"queue.depth is 3, expected {compare}"


async def test_compare_on_a_text_says_a_number_was_expected(server: str) -> None:
    _serve("queue-text", {"queue": {"depth": "many"}})
    sample = await _sample(server, "queue-text", {"path": "queue.depth", "compare": "< 5"})
    assert sample.problem == "queue.depth is 'many', expected a number < 5"


async def test_jmespath_expressions_reach_into_lists(server: str) -> None:
    _serve("deps", {"dependencies": [{"name": "db", "up": True}, {"name": "cache", "up": False}]})
    test = {"path": "dependencies[?name=='cache'].up | [0]", "equals": False}
    assert (await _sample(server, "deps", test)).ok


async def test_a_missing_value_is_a_failed_sample(server: str) -> None:
    _serve("partial", {"breaker": {}})
    sample = await _sample(server, "partial", {"path": "breaker.state", "equals": "CLOSED"})
    assert not sample.ok
    assert sample.problem == "breaker.state: no value"


async def test_a_body_that_is_not_json_is_a_failed_sample(server: str) -> None:
    spec = HttpProbe.model_validate(
        {"url": f"{server}/text/all-good", "body_json": {"path": "breaker.state", "equals": "CLOSED"}}
    )
    async with httpx.AsyncClient() as client:
        sample = await http.take_sample(spec, client)
    assert not sample.ok
    assert sample.problem == "body is not JSON"


async def test_a_body_over_the_cap_is_not_parsed(server: str) -> None:
    JSON_DOCUMENTS["huge"] = json.dumps({"pad": "x" * http.MAX_JSON_BODY})
    sample = await _sample(server, "huge", {"path": "pad", "matches": "x"})
    assert not sample.ok
    assert sample.problem is not None and "larger than" in sample.problem


async def test_a_long_value_is_clipped_in_the_problem(server: str) -> None:
    _serve("long", {"state": "y" * 500})
    sample = await _sample(server, "long", {"path": "state", "equals": "CLOSED"})
    assert sample.problem is not None and len(sample.problem) < 200


async def test_a_function_given_the_wrong_type_is_a_failed_sample(server: str) -> None:
    _serve("typed-fn", {"queue": 3})
    sample = await _sample(server, "typed-fn", {"path": "length(queue)", "compare": "< 5"})
    assert not sample.ok
    assert sample.problem is not None and sample.problem.startswith("length(queue): ")


async def test_a_secret_cut_by_the_clip_never_leaves_the_probe_in_a_value_or_a_problem(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-t0k3n-abcdefghij"
    monkeypatch.setenv("GAMEDAY_DRILL_SECRETS", "PROBE_TOKEN")
    monkeypatch.setenv("PROBE_TOKEN", secret)
    # the server echoes the token so that the clip of a value (200) and of a problem's value (80) cuts through it
    _serve("echo", {"state": "y" * 190 + secret, "short": "y" * 70 + secret})
    spec = HttpProbe.model_validate(
        {
            "url": f"{server}/json/echo",
            "headers": {"Authorization": "Bearer ${env:PROBE_TOKEN}"},
            "body_json": {"path": "short", "equals": "CLOSED"},
            "record": "state",
        }
    )
    async with httpx.AsyncClient() as client:
        sample = await http.take_sample(spec, client)
    assert sample.value is not None and sample.problem is not None
    for text in (sample.value, sample.problem):
        assert secret[:6] not in text, text
