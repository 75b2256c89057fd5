"""Time to recovery: from the moment the system was last faulted to the moment its hypothesis held again.

Pure arithmetic on the records, so the workflow can call it (no I/O, no clock).

The system was last faulted when its last fault was reverted, early reverts included: a fault with its own
``duration`` may be reverted during the observation, long before verify begins. Verify's checks only start
after the observation and the rollback, so counting to its first check would report that wait as time to
recover. When every recovery probe also ran during the observation, the observation's ticks after the last
revert are checks too: the hypothesis held again at the first tick of the streak that ran on into verify.
"""

from __future__ import annotations

from datetime import datetime

from gameday.model.drill import Drill, Probe
from gameday.model.records import FaultRecord, ObserveResult, VerifyResult


def recovery_probes(drill: Drill, observed: list[Probe]) -> list[str]:
    """The names of the probes that judge recovery, if every one of them runs in the observation; else ``[]``.

    Only then can the observation's ticks stand for verify's checks.
    """
    names = [probe.name for probe in drill.probes_for("after")]
    running = {probe.name for probe in observed}
    return names if names and all(name in running for name in names) else []


def last_faulted(faults: list[FaultRecord]) -> datetime | None:
    """When the system was last faulted: the latest revert of any fault (early reverts included)."""
    return max((f.reverted_at for f in faults if f.reverted_at is not None), default=None)


def time_to_recovery(
    since: datetime | None, observed: ObserveResult | None, verified: VerifyResult, consecutive: int
) -> float | None:
    """Seconds from ``since`` (:func:`last_faulted`) to the first check of the healthy streak that recovery ended with.

    Args:
        since: when the system was last faulted; ``None`` if no fault was reverted.
        observed: the observation's result (``held_since``/``held_until`` set when its ticks checked the
            recovery probes), ``None`` if there was none.
        verified: verify's result; its figure counts from ``since`` to its own streak.
        consecutive: ``recovery.consecutive``: when verify's first that many checks held, its streak began in the
            observation, if the observation's last ticks held after ``since``.

    Returns:
        ``None`` if the system did not recover.
    """
    if not verified.recovered:
        return None
    streak_from_first_check = verified.attempts <= consecutive
    if (
        since is not None
        and observed is not None
        and observed.held_since is not None
        and observed.held_until is not None
        and since <= observed.held_until
        and streak_from_first_check
    ):
        return max(0.0, (observed.held_since - since).total_seconds())
    return verified.time_to_recovery
