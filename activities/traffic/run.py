"""The public face of the traffic engine: start a run, mark its phases, snapshot it, resume it.

The generator runs on an event loop of its own, in a thread of its own: thousands of requests a second on
the worker's loop would delay its heartbeats (and so a stop) and every other activity's timing. That loop
is uvloop's where it is installed: on this project's machine it sends ~1.6x the requests per CPU-second of
asyncio's own loop (docs/BENCHMARKS.md). Both threads share the GIL, so the worker's loop still gets its
turn at least every ``sys.getswitchinterval()`` (5ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from datetime import datetime

from gameday.activities.traffic.generator import Generator
from gameday.activities.traffic.ids import WriteIds
from gameday.activities.traffic.measurements import Measurements
from gameday.activities.traffic.send import PreparedRequest
from gameday.model.traffic import SecondStats, Traffic, TrafficSummary

OnSecond = Callable[[SecondStats], None]


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where it is installed (Linux and macOS), asyncio's own elsewhere."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class TrafficRun:
    """One run of ``observe.traffic``: :meth:`run` it, :meth:`mark` its phases, :meth:`snapshot` it any time.

    Args:
        config: The traffic section of the drill.
        phase: Name of the first phase.
        resume: A :meth:`snapshot` of an earlier run of the same traffic (e.g. the heartbeat details of a
            lost worker's attempt): counts, histograms and timeline continue from it, and the time between
            it and now is recorded as a :class:`~model.traffic.Gap`.
    """

    def __init__(self, config: Traffic, *, phase: str = "traffic", resume: TrafficSummary | None = None) -> None:
        self._config = config
        self._requests = [PreparedRequest.of(e) for e in config.resolved()]
        self._measurements = Measurements(config.rate, phase, resume)
        self._ids: WriteIds | None = None
        if any(r.writes for r in self._requests):
            now = self._measurements.offset(time.monotonic())
            self._ids = WriteIds(resume.ids if resume is not None else None, now, config.rate)
        self._generator: Generator | None = None
        self._finished = False
        self._stop_requested = False

    @property
    def started_at(self) -> datetime:
        """Wall-clock start of the run (of its first attempt, when resumed)."""
        return self._measurements.started_at

    def mark(self, phase: str) -> None:
        """Start phase ``phase`` now: requests intended from now on count in it; the previous phase ends."""
        self._measurements.mark(phase)

    def phase_at(self, second: float) -> str:
        """The phase (``before``, ``during pause db``…) of the requests intended ``second`` s after the start."""
        return self._measurements.phase_at(second)

    def stop(self) -> None:
        """Stop sending; :meth:`run` then waits for the requests in flight and returns."""
        self._stop_requested = True
        if self._generator is not None:
            self._generator.stopping = True

    def snapshot(self) -> TrafficSummary:
        """What was measured so far (a few ms; safe while running): also the state to resume from."""
        summary = self._measurements.summary(finished=self._finished)
        if self._ids is None:
            return summary
        return summary.model_copy(update={"ids": self._ids.state()})

    async def run(self, until: datetime, on_second: OnSecond | None = None) -> TrafficSummary:
        """Send the traffic until ``until`` (or :meth:`stop`), then wait for the requests in flight.

        Args:
            until: When to stop sending (aware, or naive UTC).
            on_second: Called on the caller's event loop with each second of the timeline, once all of that
                second's requests have completed (normally milliseconds after it ends, at most a timeout). It
                runs as a loop callback: an exception it raises is logged by the loop, not raised here.

        Returns:
            The final summary (``finished=True``). If this coroutine is cancelled, requests in flight are
            abandoned and the cancellation propagates; :meth:`snapshot` still tells what was measured.

        Raises:
            RuntimeError: if this run was already started: resume a new one from its snapshot instead.
        """
        if self._generator is not None:
            raise RuntimeError("a TrafficRun runs once; resume a new one from its snapshot()")
        loop = asyncio.get_running_loop()

        def deliver(points: list[SecondStats]) -> None:
            if on_second is not None:
                for point in points:
                    loop.call_soon_threadsafe(on_second, point)

        generator = Generator(
            self._requests,
            self._config.rate,
            self._config.max_in_flight,
            self._measurements,
            self._measurements.monotonic_at(until),
            deliver,
            self._ids,
        )
        generator.stopping = self._stop_requested
        self._generator = generator
        done: asyncio.Future[None] = loop.create_future()
        threading.Thread(target=self._thread, args=(generator, loop, done), name="gameday-traffic", daemon=True).start()
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            generator.aborting = True
            with contextlib.suppress(Exception):
                await done  # the generator notices within MAX_NAP and abandons what is in flight
            raise
        self._finished = True
        return self.snapshot()

    @staticmethod
    def _thread(generator: Generator, loop: asyncio.AbstractEventLoop, done: asyncio.Future[None]) -> None:
        error: BaseException | None = None
        try:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                runner.run(generator.run())
        except BaseException as exc:  # handed to the caller's loop, which raises it from run()
            error = exc

        def settle() -> None:
            if done.done():
                return
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

        # Queued after every second the generator delivered, so on_second has seen them all when run() returns.
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle)
