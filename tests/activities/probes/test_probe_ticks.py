"""The observation's clock (``activities.probes.ticks.FixedRate``): ticks start on schedule and overlap slow ones;
past the bound on ticks in flight, a tick is missed and counted; a stop cancels the running ticks."""

from __future__ import annotations

import asyncio

from gameday.activities.probes.ticks import FixedRate


class Probed:
    """Ticks that each take ``seconds``, recording how many ran at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started: list[int] = []
        self.finished: list[int] = []
        self.running = 0
        self.most = 0

    async def tick(self, n: int) -> None:
        self.started.append(n)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.running -= 1
        self.finished.append(n)


async def test_slow_ticks_overlap_the_next_ones_instead_of_delaying_them() -> None:
    probed, schedule = Probed(seconds=0.5), FixedRate(interval=0.2)
    now = asyncio.get_running_loop().time()

    await schedule.run(probed.tick, start=now, deadline=now + 2.0)

    assert probed.most >= 2  # a tick started while the one before was still running
    assert len(probed.started) >= 7  # of 10 due; one after another, 0.5 s each, at most 4 would fit
    assert sorted(probed.finished) == sorted(probed.started)  # the run waits for the ticks it started
    assert schedule.missed == 0


async def test_a_tick_due_while_too_many_run_is_missed_and_counted() -> None:
    probed, schedule = Probed(seconds=0.5), FixedRate(interval=0.2, max_in_flight=1)
    now = asyncio.get_running_loop().time()

    await schedule.run(probed.tick, start=now, deadline=now + 2.0)

    assert probed.most == 1
    assert schedule.missed >= 1 and len(probed.started) + schedule.missed <= 10


async def test_a_stop_ends_the_schedule_at_once_and_cancels_the_running_ticks() -> None:
    probed, schedule = Probed(seconds=30.0), FixedRate(interval=0.1)
    now = asyncio.get_running_loop().time()

    async def tick(n: int) -> None:
        if n == 2:
            schedule.stop.set()  # as a guardrail breach does, from within a tick
        await probed.tick(n)

    await asyncio.wait_for(schedule.run(tick, start=now, deadline=now + 60), timeout=20)

    assert probed.started == [0, 1, 2] and probed.finished == [] and probed.running == 0


async def test_a_tick_that_fails_fails_the_schedule_and_the_others_are_cancelled() -> None:
    probed, schedule = Probed(seconds=30.0), FixedRate(interval=0.1)
    now = asyncio.get_running_loop().time()

    async def tick(n: int) -> None:
        if n == 2:
            raise RuntimeError("probe crashed")
        await probed.tick(n)

    try:
        await asyncio.wait_for(schedule.run(tick, start=now, deadline=now + 60), timeout=20)
    except RuntimeError as err:
        assert str(err) == "probe crashed"
    else:
        raise AssertionError("the tick's error was swallowed")
    assert probed.running == 0
