"""The ``check_hypothesis`` activity: every probe's samples, judged, with heartbeats all along."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from gameday.activities.probes import check_hypothesis
from gameday.model.drill import Probe
from gameday.model.records import Phase, ProbeInput

Eventually = Callable[[Callable[[], bool]], Awaitable[None]]


def _probe(name: str, **fields: Any) -> Probe:
    return Probe.model_validate({"name": name, **fields})


def _recording_env() -> tuple[ActivityEnvironment, list[tuple[Any, ...]]]:
    env = ActivityEnvironment()
    beats: list[tuple[Any, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    return env, beats


async def test_check_hypothesis_judges_every_probe_in_order_and_heartbeats_each_sample(
    server: str, closed_port: int
) -> None:
    env, beats = _recording_env()
    probes = [
        _probe("api", http={"url": f"{server}/ok"}, samples=3),
        _probe("db", tcp={"port": closed_port}, samples=2),
        _probe("disk", command={"run": "test -d /"}),
    ]

    results = await env.run(check_hypothesis, ProbeInput(run_id="r1", phase=Phase.PREFLIGHT, probes=probes))

    assert [(r.probe, r.kind, r.samples, r.ok) for r in results] == [
        ("api", "http", 3, True),
        ("db", "tcp", 2, False),
        ("disk", "command", 1, True),
    ]
    assert all(r.phase == Phase.PREFLIGHT for r in results)
    assert "connection refused" in results[1].problems
    sample_beats = [details for details in beats if details]
    assert len(sample_beats) == 6
    assert ("api: 3/3 samples",) in sample_beats


async def test_check_hypothesis_heartbeats_while_a_slow_sample_is_in_flight(server: str) -> None:
    env, beats = _recording_env()
    probes = [_probe("slow", http={"url": f"{server}/slow/1200"})]

    await env.run(check_hypothesis, ProbeInput(run_id="r1", phase=Phase.PREFLIGHT, probes=probes))

    background_beats = [details for details in beats if not details]
    assert len(background_beats) >= 2  # one every 0.5 s while the 1.2 s request ran


async def test_check_hypothesis_cancelled_mid_sample_raises_and_kills_the_command(
    tmp_path: Path, eventually: Eventually
) -> None:
    env, beats = _recording_env()
    pidfile = tmp_path / "probe.pid"
    probes = [_probe("hang", command={"run": f"echo $$ > {pidfile}; sleep 30", "timeout": "60s"})]
    task = asyncio.create_task(env.run(check_hypothesis, ProbeInput(run_id="r1", phase=Phase.PREFLIGHT, probes=probes)))
    await eventually(lambda: bool(beats) and pidfile.exists())

    env.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    shell = int(pidfile.read_text())
    await eventually(lambda: not Path(f"/proc/{shell}").exists())
