"""The ``verify_recovery`` activity: check the hypothesis until it holds again, or give up after ``within``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.testing import ActivityEnvironment

from gameday.activities.probes import verify_recovery
from gameday.model.drill import Probe
from gameday.model.records import Phase, VerifyInput


def _verify(url: str, within: float, interval_ms: int = 200, **more: Any) -> VerifyInput:
    probe = Probe.model_validate({"name": "api", "http": {"url": url}})
    return VerifyInput(
        run_id="r1",
        probes=[probe],
        within=timedelta(seconds=within),
        interval=timedelta(milliseconds=interval_ms),
        **more,
    )


def _recording_env() -> tuple[ActivityEnvironment, list[tuple[Any, ...]]]:
    env = ActivityEnvironment()
    beats: list[tuple[Any, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    return env, beats


async def test_verify_recovers_once_the_server_is_healthy_and_reports_time_to_recovery(server: str) -> None:
    env, beats = _recording_env()
    healthy_from = time.time() + 1.0

    result = await env.run(verify_recovery, _verify(f"{server}/recovers-at/{healthy_from}", within=10))

    assert result.recovered
    assert result.attempts >= 2
    assert result.time_to_recovery is not None
    assert 0.5 < result.time_to_recovery < 5  # loose: it became healthy after about a second
    assert [(r.phase, r.ok) for r in result.results] == [(Phase.VERIFY, True)]
    assert (f"attempt {result.attempts}: 1/1 in a row held",) in beats


async def test_verify_holds_at_the_first_attempt_when_already_healthy(server: str) -> None:
    env, _ = _recording_env()

    result = await env.run(verify_recovery, _verify(f"{server}/ok", within=5))

    assert (result.recovered, result.attempts) == (True, 1)


async def test_verify_gives_up_after_within_with_the_last_results(server: str) -> None:
    env, beats = _recording_env()

    result = await env.run(verify_recovery, _verify(f"{server}/status/503", within=0.6))

    assert not result.recovered
    assert result.time_to_recovery is None
    assert 2 <= result.attempts <= 4
    assert result.results[0].problems[-1] == "status 503 (expected 200)"
    assert (f"attempt {result.attempts}: 0/1 in a row held",) in beats


async def test_recovery_needs_consecutive_checks_and_counts_from_the_last_revert(server: str) -> None:
    env, beats = _recording_env()
    healthy_from = time.time() + 1.0
    reverted = datetime.now(UTC) - timedelta(seconds=2)

    result = await env.run(
        verify_recovery, _verify(f"{server}/recovers-at/{healthy_from}", within=10, consecutive=3, since=reverted)
    )

    assert result.recovered
    held = [b for b in beats if isinstance(b[0], str) and b[0].endswith("in a row held")]
    assert held[-3:] == [(f"attempt {result.attempts - 2 + i}: {i + 1}/3 in a row held",) for i in range(3)]
    # Counted from the revert two seconds before the activity, to the start of the healthy streak (~1 s in).
    assert result.time_to_recovery is not None and 2.5 < result.time_to_recovery < 6
    assert result.healthy_at is not None and result.healthy_at > reverted
