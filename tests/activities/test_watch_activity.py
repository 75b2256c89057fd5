"""The ``watch`` activity against a loopback service (issue 15): a retried attempt resumes from the last heartbeat
(a lost worker loses no change already seen), and ``record`` keeps the JSON value with every sample."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from gameday.activities.probes.watch import watch
from gameday.model.drill import Probe
from gameday.model.records import WatchInput
from gameday.model.watch import WatchProgress
from tests.watched_service import watched_service


async def test_a_retried_watch_resumes_from_its_heartbeat(tmp_path: Path) -> None:
    earlier = WatchProgress(started_at=datetime.now(UTC) - timedelta(seconds=5), ticks=7)
    lost = earlier.probe("breaker", "breaker.state")
    lost.note(datetime.now(UTC) - timedelta(seconds=5), "OPEN", True, None)
    heartbeats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: heartbeats.append(details[0] if details else None)
    # The second attempt, handed the first one's last heartbeat (plain JSON, as the data converter delivers it).
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=[earlier.model_dump(mode="json")])
    with watched_service(tmp_path) as service:
        probe = Probe.model_validate({"name": "breaker", "http": {"url": service.health, "record": "breaker.state"}})
        request = WatchInput(
            run_id="r",
            probes=[probe],
            interval=timedelta(milliseconds=100),
            until=datetime.now(UTC) + timedelta(milliseconds=600),
        )
        progress = await env.run(watch, request)

    [breaker] = progress.probes
    assert progress.started_at == earlier.started_at and progress.ticks > earlier.ticks
    assert breaker.values == ["OPEN", "CLOSED"]  # the lost attempt's OPEN, then what this one saw
    assert breaker.samples == progress.ticks - earlier.ticks + 1
    assert heartbeats and all(isinstance(h, WatchProgress) for h in heartbeats)


async def test_a_watch_stopped_by_its_workflow_takes_one_last_sample_so_it_ends_on_the_state_verify_saw(
    tmp_path: Path,
) -> None:
    env = ActivityEnvironment()
    with watched_service(tmp_path) as service:
        probe = Probe.model_validate({"name": "breaker", "http": {"url": service.health, "record": "breaker.state"}})
        request = WatchInput(
            run_id="r",
            probes=[probe],
            interval=timedelta(seconds=30),  # no second tick of its own before the stop
            until=datetime.now(UTC) + timedelta(minutes=1),
        )
        running = asyncio.create_task(env.run(watch, request))
        await asyncio.sleep(0.5)  # the first tick (CLOSED) is taken
        (tmp_path / "fault_at").write_text(str(time.time() - 60))
        (tmp_path / "fault").touch()  # the breaker is OPEN from now on
        env.cancel()  # the workflow stops the watch after verify
        progress = await running

    [breaker] = progress.probes
    assert progress.ticks == 2 and breaker.values == ["CLOSED", "OPEN"]
