"""The observation's clock: ticks started at a fixed rate, whatever the probes take.

``observe.interval: 1s`` means a tick every second. A tick whose probes are slow (a stalled target that only times
out) does not push the next one back: it keeps running while the next starts on time, so a one-minute window at
``1s`` takes its 60 ticks even when each probe needs 3 s. At most :data:`MAX_IN_FLIGHT` ticks run at once; a tick
due while that many are still running is *missed*, and counted (the record's coverage says how many). A worker
that was frozen does not catch up in a burst either: the ticks it slept through are gone, and the coverage shows
the stretch as a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable

MAX_IN_FLIGHT = 10
"""Ticks running at once, at most: probes ten intervals slow still keep the rate; slower ones miss ticks."""


class FixedRate:
    """Run ``tick(n)`` at ``start + n * interval`` (loop time) until ``deadline``, or until :attr:`stop` is set.

    Attributes:
        interval: seconds between tick starts.
        max_in_flight: ticks that may run at once.
        missed: ticks not started because ``max_in_flight`` were still running.
        stop: set it (a guardrail breach) to end the schedule at once: running ticks are cancelled.
    """

    def __init__(self, interval: float, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.interval = interval
        self.max_in_flight = max_in_flight
        self.missed = 0
        self.stop = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._failed: list[BaseException] = []

    async def run(
        self,
        tick: Callable[[int], Awaitable[None]],
        *,
        start: float,
        deadline: float,
        on_due: Callable[[int], None] | None = None,
    ) -> None:
        """Returns at ``deadline`` once the ticks running then are done (or at once after :attr:`stop`).

        ``on_due(n)`` is called as each tick comes due, started or missed: a stretch without a call is one where the
        schedule itself did not run (a frozen worker), whatever the probes were doing.

        Raises:
            BaseException: the first error a tick raised (the others are cancelled); a cancellation of the caller
                cancels the running ticks and waits for them before it propagates.
        """
        loop = asyncio.get_running_loop()
        try:
            n = 0
            while (due := start + n * self.interval) < deadline and await self._until(due - loop.time()):
                if on_due is not None:
                    on_due(n)
                if len(self._running) >= self.max_in_flight:
                    self.missed += 1
                else:
                    self._start(tick(n))
                n = max(n + 1, math.ceil((loop.time() - start) / self.interval))
            else:
                # Hold until the end of the window, not its last tick: the faults are held until then.
                await self._until(deadline - loop.time())
            if self.stop.is_set():
                await self._cancel_running()
            while self._running and not self._failed:
                await asyncio.wait(set(self._running), return_when=asyncio.FIRST_EXCEPTION)
            self._raise_failed()
        except BaseException:
            await self._cancel_running()
            raise

    async def _until(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless stopped meanwhile; whether to go on (not stopped, no tick failed)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=max(0.0, seconds))
        self._raise_failed()
        return not self.stop.is_set()

    def _start(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._running.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._failed.append(task.exception())  # type: ignore[arg-type]

    def _raise_failed(self) -> None:
        if self._failed:
            raise self._failed[0]

    async def _cancel_running(self) -> None:
        for task in self._running:
            task.cancel()
        if self._running:
            await asyncio.wait(set(self._running))
