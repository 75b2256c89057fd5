"""The ids of a traffic's writes: one per request to an endpoint holding ``{{id}}``, the 2xx answers remembered.

Shared by the generator's thread (:meth:`WriteIds.issue`, :meth:`WriteIds.acknowledged`) and the caller's
(:meth:`WriteIds.state`, for heartbeats): each method takes the lock, briefly.
"""

from __future__ import annotations

import threading
import time

from gameday.model.data_loss import AckedIds


def first_id_of_run() -> int:
    """A new traffic's first id: its start in milliseconds since the epoch, times 1000.

    Ids stay sequential within a run, and a second run against the same durable store (the demo's orders, a
    team's staging database) never reuses the first's ids, so an old write cannot pass for a new one at read-back,
    nor count as its duplicate. Below 2**53 until the year 2255, so JavaScript and JSON tools read them exactly.
    """
    return int(time.time() * 1000) * 1000


class WriteIds:
    """Ids given out and acknowledged in one attempt of a traffic, resumable from :meth:`state`.

    Args:
        resume: The last state of a lost attempt (its heartbeat), or ``None`` for a new traffic.
        now: Seconds after the traffic's start (when resuming, past every id the lost attempt may have given).
        rate: The traffic's rate.
    """

    def __init__(self, resume: AckedIds | None, now: float, rate: float) -> None:
        self._lock = threading.Lock()
        if resume is not None:
            start = resume.resumed(now, rate)
        else:
            first = first_id_of_run()
            start = AckedIds(attempt_start=now, next_id=first, first_id=first)
        self._start = start
        self._next = start.next_id
        self._ranges = start.id_ranges()

    def issue(self) -> int:
        """The next id (unique within the run)."""
        with self._lock:
            ident = self._next
            self._next += 1
            return ident

    def acknowledged(self, ident: int) -> None:
        """The write of ``ident`` was answered 2xx."""
        with self._lock:
            self._ranges.add(ident)

    def state(self) -> AckedIds:
        """The compact state, for a heartbeat or the result (encoded in the caller's thread: ms for the largest)."""
        with self._lock:
            copied = self._ranges.copy()
            next_id = self._next
        return self._start.model_copy(
            update={
                "next_id": next_id,
                "acknowledged": copied.acknowledged,
                "ranges": copied.encode(),
                "kept": copied.kept,
            }
        )
