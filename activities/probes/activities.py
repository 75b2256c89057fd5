"""The probe activities: check the hypothesis once, observe it over a window, wait for it to hold again.

Each takes one record from ``model.records`` and heartbeats at least every ``probes.heartbeat.HEARTBEAT_EVERY``
seconds, even while a slow sample is in flight, because a cancel reaches a running activity only through
its heartbeat. A probe that fails is data in the result, never an exception.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import random
from collections.abc import Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast

import httpx
from temporalio import activity

from gameday.activities import policy
from gameday.activities.probes import coverage
from gameday.activities.probes.guardrails import GuardrailWatch
from gameday.activities.probes.heartbeat import handled_workflow_cancel, heartbeated, heartbeating
from gameday.activities.probes.judge import Sample, Tally, distinct, judge, judge_tally
from gameday.activities.probes.ticks import FixedRate
from gameday.model.drill import Guardrail, Probe
from gameday.model.kinds import registry
from gameday.model.records import (
    GuardrailBreach,
    ObserveInput,
    ObserveProgress,
    ObserveResult,
    Phase,
    ProbeInput,
    ProbeResult,
    VerifyInput,
    VerifyResult,
)

MAX_LATENCIES = 20_000
"""Latencies kept per probe in the observation's heartbeat details, so the details stay bounded."""
LATENCY_BUDGET = 40_000
"""Latencies kept for all probes together (~10 bytes each in the heartbeat details: ~400 KB at most, whatever
the number of probes); each keeps ``min(MAX_LATENCIES, LATENCY_BUDGET // probes)``."""
MIN_INTERVAL = 0.01
"""Seconds; a shorter schedule interval (or zero) is treated as this, as the drill model requires."""

T = TypeVar("T")


async def take_sample(probe: Probe, client: httpx.AsyncClient) -> Sample:
    """Take one sample with the module of the probe's kind (``http``, ``tcp``, ``command``, ``prometheus``).

    A probe this worker's policy refuses is a failed sample that says so, and runs nothing.
    """
    worker_policy = policy.current()
    if refusals := worker_policy.probe_refusals(f"probe {probe.name!r}", probe):
        return Sample(ok=False, latency=0.0, problem=policy.refused(refusals, worker_policy).message)
    kind = registry.probe_kind(probe.kind.value)
    if kind is None:
        return Sample(ok=False, latency=0.0, problem=f"this worker has no sampler for {probe.kind} probes")
    sampler = cast(Sampler, importlib.import_module(kind.sampler))
    return await sampler.take_sample(probe.spec, client)


class Sampler(Protocol):
    """A probe kind's module (``model/kinds/probe_<kind>.py`` names it): one sample of one probe."""

    async def take_sample(self, spec: Any, client: httpx.AsyncClient) -> Sample: ...


@activity.defn(name="check_hypothesis")
async def check_hypothesis(request: ProbeInput) -> list[ProbeResult]:
    """Take each probe's ``samples`` samples and judge them (preflight, or any one-off check).

    Probes run concurrently with each other; a probe's own samples run one after another.
    """
    async with _http_client() as client, heartbeating(lambda: ()):
        return await _check(request.probes, request.phase, client)


@activity.defn(name="observe")
async def observe(request: ObserveInput) -> ObserveResult:
    """Sample every probe once per ``interval`` until ``ends_at``, then judge each over the whole window.

    After each tick the guardrails are checked; the first breach ends the window at once with ``breach``
    set, so the workflow can roll back within one interval of the target starting to fail.

    Ticks follow a fixed-rate schedule from the start of this attempt (:class:`FixedRate`): a tick whose probes
    are slow overlaps the next ones, up to a bound past which ticks are counted missed; a worker that stalled does
    not catch up in a burst. Progress goes out as heartbeat details after each tick, and a retried
    attempt resumes from them. A cancel from the workflow ends the window early with the partial result
    (``interrupted=True``); any other cancel (worker shutdown, pause, reset) propagates so that Temporal
    retries the attempt, which then resumes.

    The result says how much of the window the probes covered (:mod:`activities.probes.coverage`): a resumed
    attempt records the stretch since the lost one's last tick as a gap, with its cause.
    """
    progress = _resumed_progress()
    # A later attempt that picks up heartbeated progress: the stretch since its last tick is a gap in the evidence.
    resumed_by = activity.info().attempt if progress.ends_at is not None else None
    attempt_started = datetime.now(UTC)
    loop = asyncio.get_running_loop()
    start = loop.time()
    if progress.ends_at is None:
        floor = request.ends_at if request.ends_at.tzinfo else request.ends_at.replace(tzinfo=UTC)
        now = datetime.now(UTC)
        progress.ends_at = max(floor, now + request.duration) if request.duration else floor
        progress.started_at = progress.ends_at - request.duration if request.duration else now
    ends_at = _aware(progress.ends_at)
    if progress.started_at is None:  # progress heartbeated by a worker older than coverage
        progress.started_at = ends_at - request.duration if request.duration else attempt_started
    # The window ends at a wall-clock instant (so a retry resumes it); the schedule runs on the monotonic clock.
    deadline = start + (ends_at - datetime.now(UTC)).total_seconds()
    interval = max(request.interval.total_seconds(), MIN_INTERVAL)
    interrupted = False
    breach: GuardrailBreach | None = None
    watch = GuardrailWatch(request.guardrails)
    keep = min(MAX_LATENCIES, LATENCY_BUDGET // max(1, len(request.probes)))
    switches = [(guard, _stop_probe(guard)) for guard in request.guardrails if guard.stop_when is not None]
    schedule = FixedRate(interval)
    probes = [*request.probes, *(probe for _, probe in switches)]

    def due(n: int) -> None:
        # Coverage follows the schedule: a tick due (started, or missed behind slow probes) is the worker watching.
        now = datetime.now(UTC)
        coverage.note_tick(progress, now, interval, resumed_by=resumed_by if n == 0 else None)
        progress.last_started_at = now

    # Ticks overlap, so they can end out of order: a slow old tick answering after later ones failed must not
    # read as a recovery. Recovery follows the ticks' start times: an outcome is applied once every tick that
    # started before it has ended (or was cancelled).
    in_flight: set[datetime] = set()
    outcomes: dict[datetime, dict[str, Sample]] = {}

    def settle() -> None:
        for began in sorted(outcomes):
            if any(other < began for other in in_flight):
                break
            _note_recovery(progress, request, outcomes.pop(began), began)

    async def tick(n: int) -> None:
        began = datetime.now(UTC)
        if n == 0 and resumed_by is not None:
            progress.held_since = progress.held_until = None  # unknown during the gap
        in_flight.add(began)
        try:
            await sampled(began)
        finally:
            in_flight.discard(began)
            settle()

    async def sampled(began: datetime) -> None:
        nonlocal breach
        samples = await _all(take_sample(probe, client) for probe in probes)
        progress.last_tick_at = datetime.now(UTC)
        measured = dict(zip((p.name for p in request.probes), samples, strict=False))
        for probe in request.probes:
            _record(progress, probe.name, measured[probe.name], keep)
        outcomes[began] = measured
        for (guard, _), sample in zip(switches, samples[len(request.probes) :], strict=True):
            watch.record(guard, sample, began)
        for guard in request.guardrails:
            if guard.probe is not None:
                watch.record(guard, measured[guard.probe], began)
        progress.ticks += 1
        progress.missed = previous_missed + schedule.missed
        activity.heartbeat(progress.model_copy(deep=True))
        if breach is None and (crossed := watch.breach()) is not None:
            breach = GuardrailBreach(guardrail=crossed[0].name, detail=crossed[1], at=datetime.now(UTC))
            activity.logger.warning("guardrail %r breached: %s", breach.guardrail, breach.detail)
            schedule.stop.set()  # the window ends now: ticks still running are cancelled

    previous_missed = progress.missed  # a resumed attempt adds to what earlier attempts missed
    async with _http_client() as client, heartbeating(lambda: (progress.model_copy(deep=True),)):
        try:
            # A tick every interval, whatever the probes take: slow ones overlap the next (activities.probes.ticks).
            await schedule.run(tick, start=start, deadline=deadline, on_due=due)
        except asyncio.CancelledError:
            if not handled_workflow_cancel():
                raise
            interrupted = True  # answered by returning what was observed
    progress.missed = previous_missed + schedule.missed
    at = datetime.now(UTC)
    results = [judge_tally(probe, Phase.OBSERVE, _tally(progress, probe.name), at) for probe in request.probes]
    ticked = progress.last_tick_at is not None and progress.last_tick_at >= attempt_started
    return ObserveResult(
        results=results,
        ticks=progress.ticks,
        deviated=any(not result.ok for result in results),
        interrupted=interrupted or breach is not None,
        breach=breach,
        coverage=coverage.finish(progress, min(at, ends_at), interval, resumed_by=resumed_by, ticked=ticked),
        held_since=progress.held_since if request.recovery_probes else None,
        held_until=progress.held_until if request.recovery_probes and progress.held_since else None,
    )


def _note_recovery(progress: ObserveProgress, request: ObserveInput, measured: dict[str, Sample], at: datetime) -> None:
    """Keep since when every recovery probe held at each tick (each tick's sample judged as verify would)."""
    if not request.recovery_probes:
        return
    probes = [probe for probe in request.probes if probe.name in request.recovery_probes]
    held = len(probes) == len(request.recovery_probes) and all(
        judge(probe, Phase.VERIFY, [measured[probe.name]], at).ok for probe in probes
    )
    if not held:
        progress.held_since = progress.held_until = None
        return
    if progress.held_since is None:
        progress.held_since = at
    progress.held_until = at


@activity.defn(name="verify_recovery")
async def verify_recovery(request: VerifyInput) -> VerifyResult:
    """Check the whole hypothesis every ``interval`` until it holds ``consecutive`` times in a row, or ``within``
    has elapsed.

    A check that starts within the window counts even if it ends after it. ``time_to_recovery`` is the seconds
    from ``since`` (the last revert; else the start of this activity) to the start of the first check of the
    healthy streak: the moment the system was back, as later checks confirmed.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    since = _aware(request.since) if request.since is not None else datetime.now(UTC)
    deadline = start + request.within.total_seconds()
    interval = max(request.interval.total_seconds(), MIN_INTERVAL)
    attempts, streak = 0, 0
    streak_started: datetime | None = None
    healthy_at: datetime | None = None
    async with _http_client() as client, heartbeating(lambda: (f"attempt {attempts}",)):
        tick = 0
        while True:
            began = datetime.now(UTC)
            results = await _check(request.probes, Phase.VERIFY, client)
            attempts += 1
            held = all(result.ok for result in results)
            if held:
                streak += 1
                if streak == 1:
                    streak_started, healthy_at = began, datetime.now(UTC)
            else:
                streak, streak_started, healthy_at = 0, None, None
            activity.heartbeat(f"attempt {attempts}: {streak}/{request.consecutive} in a row held")
            if streak >= request.consecutive and streak_started is not None:
                return VerifyResult(
                    recovered=True,
                    results=results,
                    attempts=attempts,
                    time_to_recovery=max(0.0, (streak_started - since).total_seconds()),
                    healthy_at=healthy_at,
                )
            tick = max(tick + 1, math.ceil((loop.time() - start) / interval))
            if start + tick * interval >= deadline:
                return VerifyResult(recovered=False, results=results, attempts=attempts)
            await asyncio.sleep(start + tick * interval - loop.time())


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def _check(probes: list[Probe], phase: Phase, client: httpx.AsyncClient) -> list[ProbeResult]:
    async def run(probe: Probe) -> ProbeResult:
        samples: list[Sample] = []
        for _ in range(probe.samples):
            samples.append(await take_sample(probe, client))
            activity.heartbeat(f"{probe.name}: {len(samples)}/{probe.samples} samples")
        return judge(probe, phase, samples, datetime.now(UTC))

    return await _all(run(probe) for probe in probes)


async def _all(coroutines: Iterable[Coroutine[object, object, T]]) -> list[T]:
    """Run concurrently, results in order; an error cancels the rest and propagates as itself, not as a group."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coroutines]
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None
    return [task.result() for task in tasks]


def _stop_probe(guard: Guardrail) -> Probe:
    """A guardrail's kill-switch probe, shaped as a probe so every probe kind's sampler serves it."""
    assert guard.stop_when is not None
    return Probe(name=f"guardrail {guard.name}", http=guard.stop_when.http, command=guard.stop_when.command)


def _http_client() -> httpx.AsyncClient:
    # One client per activity run pools connections across its samples and leaves no state between runs.
    return httpx.AsyncClient(follow_redirects=False)


def _resumed_progress() -> ObserveProgress:
    """The progress a previous attempt heartbeated, or a fresh one."""
    progress = heartbeated(ObserveProgress)
    return progress if progress is not None else ObserveProgress()


def _record(progress: ObserveProgress, name: str, sample: Sample, keep: int = MAX_LATENCIES) -> None:
    count = progress.counts.get(name, 0) + 1
    progress.counts[name] = count
    latency = round(sample.latency, 6) if sample.ok else None
    kept = progress.samples.setdefault(name, [])
    if len(kept) < keep:
        kept.append(latency)
    else:
        # Reservoir sampling: every sample of a long window is equally likely to be kept, so the percentiles
        # are not biased towards its start.
        slot = random.randrange(count)
        if slot < len(kept):
            kept[slot] = latency
    if sample.value is not None:
        progress.recorded[name] = sample.value
    if not sample.ok:
        progress.failures[name] = progress.failures.get(name, 0) + 1
        if sample.problem:
            progress.problems[name] = distinct([*progress.problems.get(name, []), sample.problem])


def _tally(progress: ObserveProgress, name: str) -> Tally:
    return Tally(
        samples=progress.counts.get(name, 0),
        failures=progress.failures.get(name, 0),
        latencies=[latency for latency in progress.samples.get(name, []) if latency is not None],
        reasons=progress.problems.get(name, []),
        recorded=progress.recorded.get(name),
    )
