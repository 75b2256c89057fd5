"""The traffic generator against a real loopback server: rate, percentiles, stalls, error classes, phases.

Assertions are on counts and on latencies the server itself imposes; none depends on how fast this machine
is, beyond loose sanity bounds (other test runs share its two cores).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from gameday.activities.traffic import TrafficRun
from gameday.model.traffic import SecondStats, Traffic, TrafficSummary
from tests.activities.traffic.conftest import Target


def traffic(**fields: object) -> Traffic:
    return Traffic.model_validate(fields)


def after(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_rate_is_held_as_counted_intended_sends(target: Target) -> None:
    run = TrafficRun(traffic(url=f"{target.url}/ok", rate="200/s"))

    summary = await run.run(until=after(2))

    # 2 s at 200/s, from the moment run() started to `until`: 400, within 5%.
    assert 380 <= summary.total.sent <= 420
    assert summary.total.ok == summary.total.sent
    assert summary.finished
    assert summary.total.availability == 1.0


async def test_percentiles_match_the_injected_delays(target: Target) -> None:
    # 70% answered after 10ms, 22% after 50ms, 8% after 200ms: p50 in the first group, p90 in the second,
    # p95/p99/max in the third, each at least 2% away from a group boundary.
    endpoints = [
        {"url": f"{target.url}/delay/10", "weight": 70},
        {"url": f"{target.url}/delay/50", "weight": 22},
        {"url": f"{target.url}/delay/200", "weight": 8},
    ]
    run = TrafficRun(traffic(endpoints=endpoints, rate="100/s"))

    latency = (await run.run(until=after(3))).total.latency

    assert latency is not None
    for measured, injected in [
        (latency.p50, 0.010),
        (latency.p90, 0.050),
        (latency.p95, 0.200),
        (latency.p99, 0.200),
    ]:
        # Never below what the server imposed; above it by the loopback round trip and scheduling only (the
        # bound is loose: other test runs share this machine's two cores).
        assert injected <= measured <= injected * 1.10 + 0.015, (measured, injected)
    assert 0.200 <= latency.max <= 0.500  # one request: whatever the machine did at that instant


async def test_a_one_second_stall_shows_in_p99_not_just_in_a_few_requests(target: Target) -> None:
    run = TrafficRun(traffic(url=f"{target.url}/ok", rate="200/s", timeout="5s"))
    sending = asyncio.create_task(run.run(until=after(4)))
    await asyncio.sleep(1.5)

    await target.stall(1.0)
    summary = await sending

    total = summary.total
    assert total.latency is not None
    assert total.ok == total.sent
    # Every request due during the stall waited for its end: ~200 of ~800, latencies spread over 0..1s.
    # A closed-loop generator would have sent only its few in-flight requests and hidden the rest.
    assert total.latency.max >= 0.95
    assert total.latency.p99 >= 0.8
    assert total.latency.p90 >= 0.4
    slow_seconds = [p for p in summary.timeline.points() if p.latency is not None and p.latency.max >= 0.5]
    assert slow_seconds, "the stall shows in the per-second timeline"


async def test_waiting_for_a_free_connection_counts_in_latency_and_can_time_out(target: Target) -> None:
    # Two connections to a 100ms endpoint serve 20/s; 50/s arrive: the rest wait, from their intended time.
    run = TrafficRun(traffic(url=f"{target.url}/delay/100", rate="50/s", timeout="1s", max_in_flight=2))

    total = (await run.run(until=after(1.5))).total

    assert total.completed == total.sent
    assert total.ok + total.timeouts == total.sent
    assert 10 <= total.ok <= 45
    assert total.timeouts >= 20
    assert total.late >= 40, "requests that waited for a connection did not leave on time"
    assert total.latency is not None
    assert total.latency.p50 >= 0.5
    assert total.latency.max >= 1.0


async def test_error_classes_are_counted(target: Target, closed_port: int) -> None:
    endpoints = [
        {"url": f"{target.url}/ok", "weight": 4},
        {"url": f"{target.url}/status/404", "weight": 3},
        {"url": f"{target.url}/status/503", "weight": 2},
        {"url": f"{target.url}/hang", "weight": 1},
        {"url": f"{target.url}/close", "weight": 1},
        {"url": f"http://127.0.0.1:{closed_port}/", "weight": 1},
    ]
    run = TrafficRun(traffic(endpoints=endpoints, rate="120/s", timeout="800ms"))

    total = (await run.run(until=after(1))).total

    sent = total.sent
    assert sent > 100
    # Weighted round-robin is deterministic: each share is exact to within one request.
    for count, weight in [
        (total.ok, 4),
        (total.status_4xx, 3),
        (total.status_5xx, 2),
        (total.timeouts, 1),
        (total.connection_errors, 2),
    ]:
        assert abs(count - sent * weight / 12) <= 1.5, (count, weight, sent)
    assert total.completed == sent
    assert total.error_rate is not None and abs(total.error_rate - 8 / 12) < 0.02
    assert total.latency is not None and total.latency.max >= 0.8  # the timeouts waited their full 800ms


async def test_phases_split_the_measurements_where_they_were_marked(target: Target) -> None:
    run = TrafficRun(traffic(url=f"{target.url}/", rate="100/s"), phase="before")
    sending = asyncio.create_task(run.run(until=after(3)))

    await asyncio.sleep(1)
    await target.control("delay/100")
    run.mark("during")
    await asyncio.sleep(1)
    await target.control("delay/0")  # restored before the window ends, so "after" measures no delayed request
    run.mark("after")
    summary = await sending

    before, during, after_ = summary.phases
    assert [p.name for p in summary.phases] == ["before", "during", "after"]
    assert before.end == during.start and during.end == after_.start
    assert all(p.latency is not None for p in summary.phases)
    assert before.latency and before.latency.p50 < 0.05
    assert during.latency and during.latency.p50 >= 0.1
    assert after_.latency and after_.latency.p50 < 0.05
    assert sum(p.sent for p in summary.phases) == summary.total.sent
    throughput = during.throughput
    assert throughput is not None and 80 <= throughput <= 120


async def test_each_second_is_reported_once_in_order(target: Target) -> None:
    seen: list[SecondStats] = []
    run = TrafficRun(traffic(url=f"{target.url}/ok", rate="50/s"))

    summary = await run.run(until=after(2.5), on_second=seen.append)

    assert [p.second for p in seen] == [0, 1, 2]
    assert seen == summary.timeline.points()
    assert sum(p.sent for p in seen) == summary.total.sent
    assert all(p.throughput == p.sent for p in seen)
    assert not summary.open_seconds


async def test_stop_ends_the_run_early(target: Target) -> None:
    run = TrafficRun(traffic(url=f"{target.url}/ok", rate="100/s"))
    sending = asyncio.create_task(run.run(until=after(60)))
    await asyncio.sleep(0.5)

    run.stop()
    summary = await asyncio.wait_for(sending, timeout=10)

    assert summary.finished
    assert 0 < summary.total.sent < 200
    assert summary.phases[-1].end is not None


async def test_a_run_resumes_from_a_snapshot_of_a_lost_attempt(target: Target) -> None:
    config = traffic(url=f"{target.url}/ok", rate="100/s")
    first = TrafficRun(config, phase="during")
    lost = asyncio.create_task(first.run(until=after(30)))
    await asyncio.sleep(1.2)
    # What a heartbeat carries, through JSON as Temporal's converter sends it; then the worker is lost.
    details = first.snapshot().model_dump_json()
    lost.cancel()
    await asyncio.gather(lost, return_exceptions=True)
    await asyncio.sleep(0.3)
    saved = TrafficSummary.model_validate_json(details)

    second = TrafficRun(config, resume=saved)
    second.mark("after")
    summary = await second.run(until=after(1))

    assert not saved.finished and saved.phases[-1].end is None
    assert summary.started_at == saved.started_at
    assert [p.name for p in summary.phases] == ["during", "after"]
    assert summary.phases[0].sent >= saved.phases[0].sent
    assert summary.total.sent == sum(p.sent for p in summary.phases)
    (gap,) = summary.gaps
    assert gap.start == saved.elapsed and gap.end - gap.start >= 0.3
    seconds = [p.second for p in summary.timeline.points()]
    assert seconds == sorted(set(seconds)) and seconds[0] == 0 and seconds[-1] >= 2
    # Histograms were merged across the two attempts: they hold every completed request.
    assert summary.total.completed >= saved.total.completed + 90
