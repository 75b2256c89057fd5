"""Time to recovery counts from the moment the system was last faulted, early reverts included, and ends at the
first check of the healthy streak recovery ended with, even when that check was a tick of the observation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.records import FaultState, ObserveResult, Phase, RunRecord, VerifyResult
from gameday.workflows.recovery import time_to_recovery
from tests.harness import HttpService, finish, running_worker, start_drill


def _drill(service: HttpService, fault: str) -> str:
    return f"""
name: early-revert-recovery
targets:
  svc: {{process: {{pidfile: "{service.pidfile}"}}}}
  shell: {{command: {{}}}}
hypothesis:
  - {{name: up, http: {{url: "{service.url}", timeout: 200ms}}}}
faults:
  - {fault}
observe: {{duration: 3s, interval: 100ms}}
recovery: {{within: 10s, interval: 100ms}}
"""


def _observe_end(record: RunRecord) -> datetime:
    step = next(s for s in record.steps if s.phase is Phase.OBSERVE)
    assert step.ended_at is not None
    return step.ended_at


@pytest.mark.integration
async def test_a_fault_that_never_hurt_recovers_in_zero_seconds_from_its_early_revert(
    client: Client, service: HttpService, tmp_path: Path
) -> None:
    # The case: errors 0% throughout, yet 10.3 s reported (the wait from the early revert to verify).
    drill = _drill(service, '{target: shell, action: run, run: "true", revert: "true", duration: 300ms}')
    async with running_worker(client, Store(f"sqlite:///{tmp_path / 'r.db'}")) as queue:
        record = await finish(await start_drill(client, queue, drill), "ttr_harmless")
    fault = record.faults[0]
    assert fault.state is FaultState.REVERTED and fault.reverted_at is not None
    assert fault.reverted_at < _observe_end(record), "the fault was reverted early, during the observation"
    assert record.time_to_recovery == 0.0, record.steps


@pytest.mark.integration
async def test_recovery_from_an_early_revert_is_seen_by_the_observation_not_at_verify(
    client: Client, service: HttpService, tmp_path: Path
) -> None:
    drill = _drill(service, "{target: svc, action: pause, duration: 500ms}")
    async with running_worker(client, Store(f"sqlite:///{tmp_path / 'r.db'}")) as queue:
        record = await finish(await start_drill(client, queue, drill), "ttr_pause")
    fault = record.faults[0]
    assert fault.reverted_at is not None and fault.reverted_at < _observe_end(record)
    assert record.time_to_recovery is not None
    # Counted from the early revert, and ended by a tick of the observation: before verify began.
    recovered_at = fault.reverted_at + timedelta(seconds=record.time_to_recovery)
    assert recovered_at <= _observe_end(record), (record.time_to_recovery, record.steps)


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _observed(held_since: float | None, held_until: float | None) -> ObserveResult:
    return ObserveResult(
        results=[],
        ticks=10,
        deviated=False,
        held_since=None if held_since is None else _at(held_since),
        held_until=None if held_until is None else _at(held_until),
    )


VERIFIED = VerifyResult(recovered=True, results=[], attempts=1, time_to_recovery=12.0)


def test_held_at_every_tick_around_the_last_revert_is_zero() -> None:
    assert time_to_recovery(_at(5), _observed(1, 9), VERIFIED, consecutive=1) == 0.0


def test_failing_ticks_after_the_last_revert_count_until_the_streak_began() -> None:
    assert time_to_recovery(_at(5), _observed(6.5, 9), VERIFIED, consecutive=1) == 1.5


def test_a_revert_after_the_last_tick_leaves_it_to_verify() -> None:
    assert time_to_recovery(_at(9.5), _observed(1, 9), VERIFIED, consecutive=1) == 12.0


def test_a_streak_broken_at_verify_leaves_it_to_verify() -> None:
    verified = VERIFIED.model_copy(update={"attempts": 3})
    assert time_to_recovery(_at(5), _observed(1, 9), verified, consecutive=1) == 12.0
    assert time_to_recovery(_at(5), _observed(1, 9), verified, consecutive=3) == 0.0


def test_no_observation_evidence_or_no_recovery() -> None:
    assert time_to_recovery(_at(5), _observed(None, None), VERIFIED, consecutive=1) == 12.0
    assert time_to_recovery(_at(5), None, VERIFIED, consecutive=1) == 12.0
    failed = VerifyResult(recovered=False, results=[], attempts=5)
    assert time_to_recovery(_at(5), _observed(1, 9), failed, consecutive=1) is None
