"""What a fault provider has done so far, sent with every heartbeat of its activity (issue 16).

A provider that works in steps (a Chaos Toolkit method, its rollbacks) calls :func:`report` after each step with
its output so far (a bounded string). ``activities/faults/activities.py`` heartbeats it, last one wins, so:

* a retried attempt of the same activity (a revert whose worker died) reads it back with :func:`previous` and
  skips the steps already done;
* when the worker dies mid-apply, the workflow reads it from the heartbeat timeout's ``last_heartbeat_details``
  (``PARTIAL_OUTPUT_PATCH`` in ``workflows/drill_workflow.py``) into the fault's record, which its revert gets.

The detail is ``{"partial_output": TEXT}``: plain JSON through the data converter, already scrubbed and bounded by
the provider (at most ``MAX_OUTPUT_BYTES``).
"""

from __future__ import annotations

from contextvars import ContextVar

from temporalio import activity

from gameday.model.records import PARTIAL_OUTPUT as KEY
from gameday.model.records import partial_output

_holder: ContextVar[list[dict[str, str]] | None] = ContextVar("fault_progress", default=None)


def holder() -> list[dict[str, str]]:
    """A fresh holder for one activity's progress, made current; :func:`details` reads it for each heartbeat."""
    found: list[dict[str, str]] = []
    _holder.set(found)
    return found


def report(output: str) -> None:
    """The provider's output so far; heartbeated at once and with every heartbeat after (outside an activity:
    nothing)."""
    found = _holder.get()
    if found is None:
        return
    found[:] = [{KEY: output}]
    if activity.in_activity():
        activity.heartbeat(*found)


def previous() -> str | None:
    """The output so far a previous attempt of this activity last heartbeated, if any."""
    if not activity.in_activity():
        return None
    return partial_output(activity.info().heartbeat_details)
