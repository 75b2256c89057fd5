"""The ids of the traffic's writes (``{{id}}``): one per request, only 2xx answers acknowledged, and unique across a
traffic resumed from a lost attempt's heartbeat."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from gameday.activities.traffic import TrafficRun
from gameday.model.traffic import Traffic, TrafficSummary
from tests.activities.traffic.conftest import Target


def _after(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_each_write_gets_the_next_id_and_only_2xx_answers_are_acknowledged(target: Target) -> None:
    config = Traffic.model_validate(
        {
            "rate": "100/s",
            "method": "POST",
            "json": {"order": "{{id}}"},
            "endpoints": [{"url": f"{target.url}/ok"}, {"url": f"{target.url}/status/503"}, {"url": target.url}],
        }
    )
    summary = await TrafficRun(config).run(until=_after(1))

    ids = summary.ids
    assert ids is not None
    # Every endpoint takes the section's body, so each request is a write; round-robin from the first id: the
    # second of every three answers 503.
    acknowledged = list(ids.id_ranges())
    assert ids.next_id - ids.first_id == summary.total.sent
    assert acknowledged and all((i - ids.first_id) % 3 != 1 for i in acknowledged)  # the 503s are not acknowledged
    assert ids.acknowledged == len(acknowledged) == summary.total.ok


async def test_a_resumed_traffic_never_gives_an_id_twice_and_keeps_the_acknowledged_ones(target: Target) -> None:
    config = Traffic.model_validate(
        {"rate": "100/s", "url": f"{target.url}/ok", "method": "PUT", "body": "order {{id}}"}
    )
    first = TrafficRun(config)
    lost = asyncio.create_task(first.run(until=_after(30)))
    await asyncio.sleep(1.0)
    saved = TrafficSummary.model_validate_json(first.snapshot().model_dump_json())  # its last heartbeat
    await asyncio.sleep(0.3)  # it goes on giving ids after that heartbeat, then its worker is lost
    lost.cancel()
    await asyncio.gather(lost, return_exceptions=True)
    given = first.snapshot().ids

    summary = await TrafficRun(config, resume=saved).run(until=_after(1))

    assert saved.ids is not None and given is not None and summary.ids is not None
    assert given.next_id > saved.ids.next_id
    assert summary.ids.first_id >= given.next_id  # past every id the lost attempt gave
    before, now = set(saved.ids.id_ranges()), set(summary.ids.id_ranges())
    assert before <= now and len(now - before) >= 50
    assert summary.ids.acknowledged == len(now)
    # The writes the lost attempt acknowledged after its last heartbeat are not in `now`: said, as an upper bound.
    assert summary.ids.unaccounted >= given.next_id - saved.ids.next_id > 0


async def test_two_runs_never_share_an_id_so_a_durable_store_cannot_pass_an_old_write_for_a_new_one(
    target: Target,
) -> None:
    config = Traffic.model_validate({"rate": "100/s", "url": f"{target.url}/ok", "method": "PUT", "body": "{{id}}"})
    first = await TrafficRun(config).run(until=_after(0.3))
    second = await TrafficRun(config).run(until=_after(0.3))

    assert first.ids is not None and second.ids is not None
    assert first.ids.acknowledged and second.ids.acknowledged
    assert set(first.ids.id_ranges()).isdisjoint(second.ids.id_ranges())
    assert second.ids.first_id >= first.ids.next_id  # still one sequence: a later run's ids come after
