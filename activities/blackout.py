"""The ``check_blackout`` activity: is a scheduled drill starting inside one of its schedule's blackout windows?

An activity, not workflow code: it reads the clock and the time-zone database. The windows are the texts the
schedule was given (``activities/schedule_times.py`` parses them the same way ``gameday schedule`` does).
"""

from __future__ import annotations

from temporalio import activity

from gameday.activities.schedule_times import in_blackout
from gameday.model.records import BlackoutCheck


@activity.defn(name="check_blackout")
async def check_blackout(check: BlackoutCheck) -> str:
    """The blackout covering now, as written, or ``""`` when the drill may run."""
    return in_blackout(check.blackouts, check.time_zone)
