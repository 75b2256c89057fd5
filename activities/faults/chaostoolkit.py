"""Faults on a ``chaostoolkit`` target: play an experiment's method; the revert runs its rollbacks (issue 16).

The method runs as chaoslib's does: activities in order, each with its pauses; a ``background`` activity starts
and the method goes on, all awaited at its end; an activity that fails is recorded ``failed`` and the method goes
on. The record's ``output`` is the method's journal entries as JSON (``{"run": [...]}``), the revert's the
rollbacks' (``{"rollbacks": [...]}``): ``report/journal.py`` reads them back. A failed rollback is recorded, never
retried: the revert does not raise for it, so each rollback runs once.

Both heartbeat their entries so far (``activities/faults/progress.py``): when the worker dies mid-method, the
workflow puts the method's entries done into the fault's record (the revert, and so the journal, gets them); when
it dies mid-revert, the retried revert on another worker skips the rollbacks the dead one finished (their entries
kept) and runs the rest: a rollback runs twice only when its worker died while it ran or before its heartbeat left.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from gameday.activities.ctk.runner import ActivityFailed, Entry, Resolution, resolve_context, run_activity
from gameday.activities.faults import narrow, progress
from gameday.activities.faults.errors import NothingChanged
from gameday.model.budget import MAX_OUTPUT_BYTES
from gameday.model.ctk import ROLLBACKS_WITHIN
from gameday.model.ctk_format import Activity
from gameday.model.kinds.chaostoolkit import ChaosToolkitTarget, MethodFault
from gameday.model.records import FaultInput, FaultRecord


async def capture(inp: FaultInput) -> dict[str, str]:
    """Nothing to read: the rollbacks say themselves what they restore."""
    return {}


async def apply(inp: FaultInput) -> FaultRecord:
    """Play the method; the record's output is its journal entries.

    Raises:
        NothingChanged: the configuration or secrets cannot be resolved here: no activity ran.
    """
    _, fault = narrow(inp, ChaosToolkitTarget, MethodFault)
    try:
        resolution = resolve_context(fault.context)
    except ActivityFailed as exc:
        raise NothingChanged(str(exc)) from exc
    entries = await play(fault.method, resolution, lambda done: progress.report(entries_json("run", done)))
    return inp.record.model_copy(update={"output": entries_json("run", entries)})


async def revert(inp: FaultInput) -> FaultRecord:
    """Run every rollback in order, each once; a failed one is recorded in the output, not raised."""
    _, fault = narrow(inp, ChaosToolkitTarget, MethodFault)
    try:
        resolution = resolve_context(fault.context)
    except ActivityFailed as exc:
        failed = [_unrun(a, str(exc)) for a in fault.rollbacks]
        return inp.record.model_copy(update={"output": entries_json("rollbacks", failed, _method_rows(inp.record))})
    method_rows = _method_rows(inp.record)
    entries = _done_before(fault.rollbacks, progress.previous() or inp.record.output)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ROLLBACKS_WITHIN
    for rollback in fault.rollbacks[len(entries) :]:
        left = deadline - loop.time()
        if left <= 0:
            entries.append(_unrun(rollback, f"not run: the rollbacks ran out of their {ROLLBACKS_WITHIN:g}s"))
            continue
        if rollback.provider.timeout is None or rollback.provider.time_limit > left:
            rollback = rollback.model_copy(update={"provider": rollback.provider.model_copy(update={"timeout": left})})
        entries.append(await run_activity(rollback, resolution))
        progress.report(entries_json("rollbacks", entries, method_rows))
    return inp.record.model_copy(update={"output": entries_json("rollbacks", entries, method_rows)})


def _done_before(rollbacks: list[Activity], text: str | None) -> list[Entry]:
    """The entries of the rollbacks a previous attempt of this revert finished (its worker died), in order: the
    leading ones whose names match, so a changed list never skips a rollback it did not run.

    ``text``: the output that attempt last heartbeated, read back from this attempt's heartbeat details (a
    Temporal retry) or from the record (the workflow put it there when it retries the revert as a new activity).
    """
    try:
        data = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return []
    rows = data.get("rollbacks", []) if isinstance(data, dict) else []
    done: list[Entry] = []
    for rollback, row in zip(rollbacks, rows if isinstance(rows, list) else [], strict=False):
        if not isinstance(row, dict) or row.get("name") != rollback.name:
            break
        try:
            done.append(Entry(**{k: v for k, v in row.items() if k in Entry.__dataclass_fields__}))
        except TypeError:
            break
    return done


def _method_rows(record: FaultRecord) -> list[dict[str, Any]]:
    """The method's entries the apply recorded (none when its worker died mid-method)."""
    try:
        data = json.loads(record.output) if record.output else {}
    except json.JSONDecodeError:
        return []
    rows = data.get("run", []) if isinstance(data, dict) else []
    return rows if isinstance(rows, list) else []


async def play(
    activities: list[Activity], resolution: Resolution, done: Callable[[list[Entry]], None] | None = None
) -> list[Entry]:
    """Run a method: in order, background activities alongside; entries in the order the method lists them.

    ``done`` is told the entries finished so far (method order) after each foreground activity and at the end.
    """
    slots: list[Entry | asyncio.Task[Entry]] = []

    def finished() -> list[Entry]:
        return [
            s if isinstance(s, Entry) else s.result()
            for s in slots
            if isinstance(s, Entry) or (s.done() and not s.cancelled())
        ]

    try:
        for activity in activities:
            if activity.background:
                slots.append(asyncio.create_task(run_activity(activity, resolution)))
            else:
                slots.append(await run_activity(activity, resolution))
                if done is not None:
                    done(finished())
        entries = [slot if isinstance(slot, Entry) else await slot for slot in slots]
        if done is not None:
            done(entries)
        return entries
    finally:
        for slot in slots:
            if isinstance(slot, asyncio.Task) and not slot.done():
                slot.cancel()


def entries_json(key: str, entries: list[Entry], run: list[dict[str, Any]] | None = None) -> str:
    """``{"run": [...], key: [entries]}`` as JSON within the record's output budget: outputs cut, method's last
    first, until it fits."""
    rows: list[dict[str, Any]] = [entry.to_json() for entry in entries]
    data: dict[str, Any] = {"run": run or [], key: rows} if key != "run" else {"run": rows}
    text = json.dumps(data)
    for row in [*reversed(data["run"]), *(reversed(rows) if key != "run" else [])]:
        if len(text.encode()) <= MAX_OUTPUT_BYTES - 64:
            break
        row["output"] = "[cut: over the record's size budget]"
        text = json.dumps(data)
    return text


def _unrun(activity: Activity, why: str) -> Entry:
    return Entry(activity.name, activity.type, "failed", "", "", 0.0, None, why)
