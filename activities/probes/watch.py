"""The ``watch`` activity: ``observe.watch`` probes sampled (and alerts polled) every interval, recorded, never judged.

Started by the workflow as the first fault is applied, cancelled after verify (``workflows/watch_hold.py``). What it
keeps is a :class:`~model.watch.WatchProgress`: per probe the collapsed changes of its recorded value and of
whether its assertion held, per alert when it fired and resolved; bounded whatever the drill says, heartbeated
every tick, so an attempt retried on another worker resumes from it. A cancel from the workflow returns what was
seen, after one last sample (the state verify ended on); any other cancel (worker shutdown) propagates so that
Temporal retries the attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import httpx
from temporalio import activity

from gameday.activities.probes import alerts
from gameday.activities.probes.activities import take_sample
from gameday.activities.probes.heartbeat import handled_workflow_cancel, heartbeated, heartbeating
from gameday.activities.probes.judge import Sample
from gameday.model.records import WatchInput
from gameday.model.watch import WatchProgress

MIN_INTERVAL = 0.01
LAST_SAMPLE_WITHIN = 2.0
"""Seconds the last sample, taken when the workflow stops the watch, may take before it is given up."""


@activity.defn(name="watch")
async def watch(request: WatchInput) -> WatchProgress:
    """Sample every watch probe (and read the firing alerts) once per ``interval`` until cancelled or ``until``.

    With ``until_resolved``, returns as soon as every one of those alerts that fired has resolved.
    """
    progress = _resumed(request)
    if progress.started_at is None:
        progress.started_at = datetime.now(UTC)
    for probe in request.probes:
        progress.probe(probe.name, probe.http.record if probe.http is not None else None)
    interval = max(request.interval.total_seconds(), MIN_INTERVAL)
    until = request.until if request.until.tzinfo else request.until.replace(tzinfo=UTC)
    refused = alerts.refusal(request.alerts) if request.alerts is not None else None
    loop = asyncio.get_running_loop()
    start = loop.time()
    polled_here = False
    beat = heartbeating(lambda: (progress.model_copy(deep=True),))
    async with httpx.AsyncClient(follow_redirects=False) as client, beat:
        try:
            n = 0
            while datetime.now(UTC) < until:
                polled_here = await _tick(request, progress, client, refused) or polled_here
                activity.heartbeat(progress.model_copy(deep=True))
                if request.until_resolved and polled_here and progress.resolved(request.until_resolved):
                    break
                n = max(n + 1, int((loop.time() - start) / interval) + 1)
                left = (until - datetime.now(UTC)).total_seconds()
                await asyncio.sleep(max(0.0, min(start + n * interval - loop.time(), left)))
        except asyncio.CancelledError:
            if not handled_workflow_cancel():
                raise
            # Stopped after verify: one last sample, so the watch ends on the state verify ended on (a breaker's
            # final CLOSED seen by verify would otherwise fall between two ticks). Bounded: the stop must not wait.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_tick(request, progress, client, refused), LAST_SAMPLE_WITHIN)
    return progress


async def _tick(request: WatchInput, progress: WatchProgress, client: httpx.AsyncClient, refused: str | None) -> bool:
    """One sample of each probe and one read of the alerts, together; whether the alerts were read."""
    at = datetime.now(UTC)

    async def read_alerts() -> set[str] | str:
        if request.alerts is None:
            return ""
        if refused is not None:
            return refused
        try:
            return await alerts.firing(request.alerts, client)
        except ValueError as error:
            return str(error)

    sampling = asyncio.gather(*(take_sample(p, client) for p in request.probes))
    samples: list[Sample]
    samples, firing = await asyncio.gather(sampling, read_alerts())
    keep = progress.keep(len(request.probes))
    for probe, sample in zip(request.probes, samples, strict=True):
        progress.probe(probe.name, None).note(at, sample.value, sample.ok, sample.problem, keep)
    progress.ticks += 1
    progress.last_at = at
    if isinstance(firing, set):
        progress.note_alerts(at, firing)
        return True
    if firing:
        progress.alerts_problem = firing[:200]
    return False


def _resumed(request: WatchInput) -> WatchProgress:
    """The progress a lost attempt heartbeated, else the one the workflow handed over, else a fresh one."""
    progress = heartbeated(WatchProgress)
    if progress is not None:
        return progress
    return request.resume.model_copy(deep=True) if request.resume is not None else WatchProgress()
