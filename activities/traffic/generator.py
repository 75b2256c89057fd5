"""The schedule: request *i* is due at ``start + i / rate``, whatever happened to the requests before it.

A slow or stalled target piles requests up in flight instead of slowing the schedule down, and each latency
is measured from the instant its request was *due*, so a one-second stall shows up as a second of growing
latencies (no coordinated omission, unlike a closed loop of "send, wait, send").

The generator runs on an event loop of its own, in its own thread (see ``activities.traffic.run``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

from gameday.activities.traffic.ids import WriteIds
from gameday.activities.traffic.measurements import Measurements
from gameday.activities.traffic.send import Outcome, PreparedRequest, open_session, send
from gameday.activities.traffic.weights import WeightedCycle
from gameday.activities.traffic.windows import Window
from gameday.model.traffic import SecondStats

LATE_AFTER = 0.010
"""Seconds; a request that leaves later than this after its intended time is counted ``late``."""
EARLY = 0.001
"""Seconds a request may go out before its intended time. Event-loop timers wake up to 1ms late (epoll and
libuv count in milliseconds), so the scheduler wakes this much early and sends what is due by then: its
timer slack stays out of the latencies, and the arrival rate is unchanged."""
MAX_NAP = 0.05
"""Seconds the scheduler sleeps at most, so that a stop, an abort and closed seconds are seen this soon."""
MAX_BATCH = 1000
"""Requests started at most per scheduler turn before the responses get a turn (catching up after a stall)."""


@dataclass(frozen=True, slots=True)
class _Pending:
    """A request counted as sent, started now or waiting for a free connection."""

    request: PreparedRequest
    due: float
    windows: tuple[Window, Window]
    ident: int | None = None
    """The write's id, when its endpoint holds ``{{id}}``."""

    @property
    def deadline(self) -> float:
        return self.due + self.request.timeout


class Generator:
    """Sends ``requests`` at ``rate`` until ``end`` (a ``time.monotonic()`` instant), recording into ``measurements``.

    Args:
        requests: The endpoints, chosen by weight.
        rate: Requests per second.
        max_in_flight: Requests in flight at once (so connections open at once); more wait, in order.
        measurements: Where every request is counted.
        end: When to stop sending.
        deliver: Called (on this thread) with each batch of newly closed seconds.
        ids: Where the ids of writes (endpoints holding ``{{id}}``) come from and their 2xx answers go.
    """

    def __init__(
        self,
        requests: Sequence[PreparedRequest],
        rate: float,
        max_in_flight: int,
        measurements: Measurements,
        end: float,
        deliver: Callable[[list[SecondStats]], None],
        ids: WriteIds | None = None,
    ) -> None:
        self._ids = ids
        self._requests = list(requests)
        self._picker = WeightedCycle([r.weight for r in requests])
        self._interval = 1.0 / rate
        self._max_in_flight = max_in_flight
        self._measurements = measurements
        self._end = end
        self._deliver = deliver
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: deque[_Pending] = deque()
        self._session: aiohttp.ClientSession | None = None
        # Plain flags, set from the caller's thread: a bool assignment is atomic, and they are polled.
        self.stopping = False
        """Stop sending; requests in flight still complete."""
        self.aborting = False
        """Stop now: requests in flight are abandoned (the caller was cancelled)."""

    async def run(self) -> None:
        """Send until ``end`` or :attr:`stopping`, then wait for what is in flight (unless :attr:`aborting`)."""
        try:
            async with open_session(self._max_in_flight) as session:
                self._session = session
                await self._schedule()
                while self._tasks and not self.aborting:
                    # Every request ends by its deadline, so this ends within one timeout.
                    await asyncio.wait(self._tasks, timeout=MAX_NAP)
                    self._expire_waiting()
                    self._flush()
        finally:
            self.aborting = True  # no more admissions while in-flight requests are cancelled
            for task in self._tasks:
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks)
        self._flush(final=True)

    async def _schedule(self) -> None:
        start = time.monotonic()
        index = 0
        due = start
        while not (self.stopping or self.aborting) and due < self._end:
            now = time.monotonic()
            batch = 0
            # Requests due while we were late still go out, late: skipping them would hide the generator's
            # own stall, and their latency (from the intended time) tells how late they were.
            while due <= now + EARLY and due < self._end and batch < MAX_BATCH:
                self._fire(due)
                index += 1
                batch += 1
                due = start + index * self._interval
            self._expire_waiting()
            self._flush()
            nap = due - EARLY - time.monotonic()
            # Never a sub-millisecond nap: libuv would round it to 0 and spin; epoll rounds it up anyway.
            await asyncio.sleep(min(max(nap, EARLY), MAX_NAP) if nap > 0 else 0)
        self._measurements.stopped_sending(min(time.monotonic(), self._end))

    def _fire(self, due: float) -> None:
        windows = self._measurements.sending(due)
        request = self._requests[self._picker.next()]
        ident = None
        if request.writes and self._ids is not None:
            ident = self._ids.issue()
            request = request.with_id(ident)
        pending = _Pending(request, due, windows, ident)
        if len(self._tasks) < self._max_in_flight:
            self._start(pending)
        else:
            self._waiting.append(pending)

    def _start(self, pending: _Pending) -> None:
        task = asyncio.create_task(self._one(pending))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self.aborting:
            return
        now = time.monotonic()
        while self._waiting and len(self._tasks) < self._max_in_flight:
            pending = self._waiting.popleft()
            if now >= pending.deadline:
                self._timed_out(pending)
            else:
                self._start(pending)

    async def _one(self, pending: _Pending) -> None:
        assert self._session is not None
        started = time.monotonic()
        # From the intended time when the request starts late (waiting for a free connection, or for an
        # overloaded generator: counted ``late``); from its real start when it starts up to EARLY before it.
        base = min(pending.due, started)
        outcome, status = await send(self._session, pending.request, base + pending.request.timeout)
        if pending.ident is not None and 200 <= status < 300 and self._ids is not None:
            self._ids.acknowledged(pending.ident)
        late = started - pending.due > LATE_AFTER
        self._measurements.completed(pending.windows, outcome, time.monotonic() - base, late)

    def _expire_waiting(self) -> None:
        """Count requests that waited for a free connection until their deadline as timeouts, without sending.

        Waiting here rather than in aiohttp's pool matters when every connection is busy (a stalled target, or
        an overloaded generator): a request that gave up costs a deque entry instead of a task, a timer and a
        cancellation, so the generator stays on its schedule and recovers as soon as the target does.
        """
        now = time.monotonic()
        while self._waiting and now >= self._waiting[0].deadline:
            self._timed_out(self._waiting.popleft())

    def _timed_out(self, pending: _Pending) -> None:
        self._measurements.completed(pending.windows, Outcome.TIMEOUT, pending.request.timeout, late=True)

    def _flush(self, *, final: bool = False) -> None:
        closed = self._measurements.closed_seconds(final=final)
        if closed:
            self._deliver(closed)
