"""The ``observe`` activity: a fixed-rate schedule over a wall-clock window, resumable and interruptible."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.activity import ActivityCancellationDetails
from temporalio.testing import ActivityEnvironment

from gameday.activities.probes import observe
from gameday.activities.probes.activities import MAX_LATENCIES
from gameday.model.drill import Probe
from gameday.model.records import ObserveInput, ObserveProgress, Phase

Eventually = Callable[[Callable[[], bool]], Awaitable[None]]


def _probe(name: str, **fields: Any) -> Probe:
    return Probe.model_validate({"name": name, **fields})


def _window(probes: list[Probe], seconds: float, interval_ms: int = 200) -> ObserveInput:
    return ObserveInput(
        run_id="r1",
        probes=probes,
        interval=timedelta(milliseconds=interval_ms),
        ends_at=datetime.now(UTC) + timedelta(seconds=seconds),
    )


def _recording_env(resume_from: object = None) -> tuple[ActivityEnvironment, list[ObserveProgress]]:
    env = ActivityEnvironment()
    if resume_from is not None:
        env.info = dataclasses.replace(ActivityEnvironment.default_info(), heartbeat_details=[resume_from])
    beats: list[ObserveProgress] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    return env, beats


async def test_observe_ticks_at_the_interval_and_heartbeats_progress(server: str, closed_port: int) -> None:
    env, beats = _recording_env()
    probes = [_probe("api", http={"url": f"{server}/ok"}), _probe("db", tcp={"port": closed_port})]

    result = await env.run(observe, _window(probes, seconds=1.0))

    assert 3 <= result.ticks <= 7
    assert [(r.probe, r.phase, r.samples, r.ok) for r in result.results] == [
        ("api", Phase.OBSERVE, result.ticks, True),
        ("db", Phase.OBSERVE, result.ticks, False),
    ]
    assert result.results[1].problems[-1] == "connection refused"
    assert result.deviated
    assert not result.interrupted
    last = beats[-1]
    assert last.ticks == result.ticks
    assert last.counts == {"api": result.ticks, "db": result.ticks}
    assert last.failures == {"db": result.ticks}
    assert last.samples["db"] == [None] * result.ticks  # a failed sample keeps no latency
    assert [beat.ticks for beat in beats] == sorted(beat.ticks for beat in beats)


async def test_a_slow_probe_does_not_hold_back_the_ticks_after_it(tmp_path: Path) -> None:
    env, _ = _recording_env()
    flag = tmp_path / "slow-once"
    # The first sample takes 0.5 s (five 100 ms ticks); every later one is instant.
    slow_once = _probe("slow-once", command={"run": f"test -e {flag} || {{ touch {flag}; sleep 0.5; }}"})

    result = await env.run(observe, _window([slow_once], seconds=1.0, interval_ms=100))

    # The ticks due while the slow one ran started on time beside it: waiting for it, only 5 or 6 would run.
    assert 8 <= result.ticks <= 10
    assert result.results[0].ok
    assert result.coverage is not None and result.coverage.ticks_missed == 0


async def test_probes_slower_than_the_interval_keep_the_rate_by_overlapping_ticks() -> None:
    """observe.interval is a rate: a 3 s window at 200 ms takes its 15 ticks though each probe takes 600 ms."""
    env, _ = _recording_env()
    slow = _probe("slow", command={"run": "sleep 0.6"})

    result = await env.run(observe, _window([slow], seconds=3.0, interval_ms=200))

    assert result.coverage is not None and result.coverage.ticks_expected == 15
    assert result.ticks >= 11  # one after another, 600 ms each, at most 5 would fit
    assert result.results[0].samples == result.ticks and result.results[0].ok
    assert result.coverage.ticks_missed == 0 and result.coverage.covered == 1.0


@pytest.mark.parametrize("as_json", [True, False], ids=["decoded-json", "typed-model"])
async def test_observe_resumes_from_the_progress_a_previous_attempt_heartbeated(server: str, as_json: bool) -> None:
    earlier = ObserveProgress(
        ticks=7,
        samples={"api": [0.01] * 5 + [None] * 2},
        failures={"api": 2},
        counts={"api": 7},
        problems={"api": ["status 503 (expected 200)"]},
    )
    env, beats = _recording_env(resume_from=earlier.model_dump(mode="json") if as_json else earlier)
    probes = [_probe("api", http={"url": f"{server}/ok"}, tolerance={"error_rate": "50%"})]

    result = await env.run(observe, _window(probes, seconds=0.5))

    new_ticks = result.ticks - 7
    assert new_ticks >= 1
    api = result.results[0]
    assert (api.samples, api.failures) == (7 + new_ticks, 2)
    assert api.problems == ["status 503 (expected 200)"]
    assert beats[-1].samples["api"][:7] == earlier.samples["api"]


async def test_observe_keeps_at_most_the_bounded_number_of_latencies_per_probe(server: str) -> None:
    full = ObserveProgress(ticks=MAX_LATENCIES, samples={"api": [0.01] * MAX_LATENCIES}, counts={"api": MAX_LATENCIES})
    env, beats = _recording_env(resume_from=full)
    probes = [_probe("api", http={"url": f"{server}/ok"})]

    result = await env.run(observe, _window(probes, seconds=0.3, interval_ms=50))

    assert result.results[0].samples > MAX_LATENCIES
    assert len(beats[-1].samples["api"]) == MAX_LATENCIES


async def test_observe_returns_partial_result_when_cancelled(server: str, eventually: Eventually) -> None:
    env, beats = _recording_env()
    probes = [_probe("api", http={"url": f"{server}/ok"})]
    task = asyncio.create_task(env.run(observe, _window(probes, seconds=30, interval_ms=100)))
    await eventually(lambda: bool(beats) and beats[-1].ticks >= 2)

    env.cancel()
    result = await task

    assert result.interrupted
    assert result.ticks >= 2
    assert result.results[0].samples == result.ticks
    assert result.results[0].ok
    assert not result.deviated


async def test_observe_reraises_a_cancel_from_worker_shutdown_so_the_attempt_is_retried(
    server: str, eventually: Eventually
) -> None:
    env, beats = _recording_env()
    probes = [_probe("api", http={"url": f"{server}/ok"})]
    task = asyncio.create_task(env.run(observe, _window(probes, seconds=30, interval_ms=100)))
    await eventually(lambda: bool(beats))

    env.cancel(ActivityCancellationDetails(worker_shutdown=True))

    with pytest.raises(asyncio.CancelledError):
        await task


async def test_observe_with_no_probes_waits_out_the_window_while_heartbeating() -> None:
    env, beats = _recording_env()
    ends_at = datetime.now(UTC) + timedelta(seconds=1.2)

    result = await env.run(
        observe, ObserveInput(run_id="r1", probes=[], interval=timedelta(milliseconds=200), ends_at=ends_at)
    )

    assert datetime.now(UTC) >= ends_at
    assert 3 <= result.ticks <= 8
    assert (result.results, result.deviated, result.interrupted) == ([], False, False)
    assert beats[-1].ticks == result.ticks


async def test_a_late_start_does_not_shorten_the_window_when_its_duration_is_given(server: str) -> None:
    # The workflow computed ends_at when it scheduled the activity; a busy worker started it 800 ms later.
    late = ObserveInput(
        run_id="r1",
        probes=[_probe("api", http={"url": f"{server}/ok"})],
        interval=timedelta(milliseconds=100),
        ends_at=datetime.now(UTC) + timedelta(milliseconds=200),
        duration=timedelta(seconds=1),
    )
    env, beats = _recording_env()
    started = datetime.now(UTC)

    result = await env.run(observe, late)

    assert datetime.now(UTC) - started >= timedelta(seconds=1)
    assert result.ticks >= 8  # a whole second of 100 ms ticks, not the 200 ms left of the scheduled window
    assert beats[-1].ends_at is not None and beats[-1].ends_at >= started + timedelta(seconds=1)


async def test_a_slow_old_success_ending_after_later_failures_is_no_recovery(tmp_path: Path) -> None:
    env, _ = _recording_env()
    flag = tmp_path / "slow-first"
    # The first tick succeeds but answers after 0.8 s; every tick started after it fails at once. The window
    # waits for the slow tick, so it is the last to end: by start time the system was failing, not recovered.
    probe = _probe("api", command={"run": f"test -e {flag} && exit 1; touch {flag}; sleep 0.8"})
    request = _window([probe], seconds=0.5, interval_ms=100).model_copy(update={"recovery_probes": ["api"]})

    result = await env.run(observe, request)

    assert result.ticks >= 3
    assert result.results[0].failures == result.ticks - 1
    assert result.held_since is None and result.held_until is None


def test_a_guardrail_counts_failures_in_a_row_by_start_time_not_by_arrival() -> None:
    from gameday.activities.probes.guardrails import GuardrailWatch
    from gameday.activities.probes.judge import Sample
    from gameday.model.drill import Guardrail

    guard = Guardrail(name="g", probe="api", failing=3)
    watch = GuardrailWatch([guard])
    t0 = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    down = Sample(ok=False, latency=0.01, problem="503")
    watch.record(guard, down, t0 + timedelta(seconds=1))
    watch.record(guard, down, t0 + timedelta(seconds=2))
    # The tick started at t0 answers now, slowly, with a success: it came before the failures, it ends nothing.
    watch.record(guard, Sample(ok=True, latency=2.5), t0)
    assert watch.breach() is None
    watch.record(guard, down, t0 + timedelta(seconds=3))

    crossed = watch.breach()

    assert crossed is not None and crossed[1] == "3 failed samples in a row (limit 3)"
    # A success that did start after them ends the run.
    watch.record(guard, Sample(ok=True, latency=0.01), t0 + timedelta(seconds=4))
    assert watch.breach() is None or "in a row" not in watch.breach()[1]  # type: ignore[index]


async def test_ticks_due_while_ten_still_run_are_missed_and_said_in_the_record() -> None:
    """A probe far slower than the interval: at most 10 ticks overlap, the ones due meanwhile are missed, counted
    in the coverage and said in the words the record and the report show."""
    env, _ = _recording_env()
    stalled = _probe("stalled", command={"run": "sleep 0.8"})

    result = await env.run(observe, _window([stalled], seconds=1.0, interval_ms=20))

    coverage = result.coverage
    assert coverage is not None and coverage.ticks_expected == 50
    assert coverage.ticks_missed > 0 and result.ticks <= coverage.ticks_expected - coverage.ticks_missed
    assert f"{coverage.ticks_missed} tick(s) missed (probes slower than the interval)" in coverage.describe()
